#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py - bench/run.sh's raw results to a Markdown report and plots.

    report.py RAW.jsonl OUTDIR MODE

Writes OUTDIR/latest.md (tables of medians with the spread, server CPU per
operation, the targets and where we stand against each) and, with gnuplot,
OUTDIR/throughput.png, OUTDIR/server_cpu.png and OUTDIR/latency.png.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

raw, outdir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
rows = [json.loads(l) for l in open(raw) if l.strip()]

ECHO_SERVERS = ["evringd-io_uring", "evringd-epoll", "epoll", "libuv", "libevent"]


def runs(label, server):
    return [r["run"] for r in rows if r["label"] == label and r["server"] == server]


def med(label, server, key):
    vals = [r[key] for r in runs(label, server) if r.get(key) is not None]
    if not vals:
        return None
    return statistics.median(vals)


def spread(label, server, key):
    vals = [r[key] for r in runs(label, server) if r.get(key) is not None]
    if len(vals) < 2:
        return ""
    return " (%s–%s)" % (fmt(min(vals)), fmt(max(vals)))


def fmt(v, unit=""):
    if v is None:
        return "–"
    if v >= 1e6:
        return "%.2fM%s" % (v / 1e6, unit)
    if v >= 1e4:
        return "%.0fk%s" % (v / 1e3, unit)
    if v >= 100:
        return "%.0f%s" % (v, unit)
    return "%.2f%s" % (v, unit)


def labels(prefix):
    seen = []
    for r in rows:
        if r["label"].startswith(prefix) and r["label"] not in seen:
            seen.append(r["label"])
    return seen


def sh(cmd):
    try:
        return subprocess.check_output(cmd, shell=True, text=True).strip()
    except Exception:
        return "?"


cpu = sh("awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo").strip()
commit = sh("git rev-parse --short HEAD")
out = []
w = out.append
w("# evring benchmark results")
w("")
w("- date: %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
w("- machine: %s, %d CPUs, Linux %s" % (cpu, os.cpu_count(), platform.release()))
w("- commit: %s; `make %s` (bench/run.sh %s)" % (commit, "bench" if mode == "full" else "bench-quick", mode))
w("- servers pinned to CPU 0 (`taskset -c 0`), clients to CPU 1; one server at a time, on 127.0.0.1")
w("- every configuration ran %d time(s); tables show the median and (min–max)" %
  max([len(runs(r["label"], r["server"])) for r in rows] or [0]))
w("- server CPU per operation is the server's CPU time (from /proc/PID/task/*/schedstat) over the measured interval divided by the operations: the fair measure when client and server both saturate a core")
w("")

# ---- echo ----
echo_labels = labels("echo ")
if echo_labels:
    w("## TCP echo (evring-bench echo)")
    w("")
    w("Command: `evring-bench echo -c C -s S -p P -d %s -w 1 --server-pid PID 127.0.0.1:PORT`; every echoed byte verified." %
      (rows[0]["run"].get("secs") and "DUR" or "DUR"))
    w("")
    w("Throughput, messages/s:")
    w("")
    w("| configuration | " + " | ".join(ECHO_SERVERS) + " |")
    w("|---|" + "---|" * len(ECHO_SERVERS))
    for lb in echo_labels:
        w("| %s | %s |" % (lb, " | ".join(fmt(med(lb, s, "ops_per_s")) + spread(lb, s, "ops_per_s") for s in ECHO_SERVERS)))
    w("")
    w("Server CPU per echoed message, µs:")
    w("")
    w("| configuration | " + " | ".join(ECHO_SERVERS) + " |")
    w("|---|" + "---|" * len(ECHO_SERVERS))
    for lb in echo_labels:
        w("| %s | %s |" % (lb, " | ".join(fmt(med(lb, s, "server_cpu_us_per_op")) + spread(lb, s, "server_cpu_us_per_op") for s in ECHO_SERVERS)))
    w("")
    w("Latency at c=50 s=64 p=1, µs (median of runs): ")
    w("")
    w("| server | p50 | p90 | p99 | p99.9 | max | client CPU µs/op |")
    w("|---|---|---|---|---|---|---|")
    lb = "echo c=50 s=64 p=1"
    for s in ECHO_SERVERS:
        lat = [r["lat_us"] for r in runs(lb, s)]
        if not lat:
            continue
        m = {k: statistics.median([l[k] for l in lat]) for k in ("p50", "p90", "p99", "p999", "max")}
        w("| %s | %s | %s | %s | %s | %s | %s |" % (s, fmt(m["p50"]), fmt(m["p90"]), fmt(m["p99"]), fmt(m["p999"]), fmt(m["max"]),
                                              fmt(med(lb, s, "client_cpu_us_per_op"))))
    w("")

for prefix, title, unit in (("daytime churn", "Connection churn against daytime (evring-bench connect)", "connections"),
                            ("udp echo", "UDP echo (evring-bench udp)", "datagrams"),
                            ("http wrk", "HTTP plaintext (wrk -t1 -c100)", "requests")):
    lbs = labels(prefix)
    if not lbs:
        continue
    w("## " + title)
    w("")
    w("| configuration | server | %s/s | server CPU µs per %s |" % (unit, unit[:-1]))
    w("|---|---|---|---|")
    for lb in lbs:
        for s in sorted({r["server"] for r in rows if r["label"] == lb}):
            w("| %s | %s | %s%s | %s%s |" % (lb, s, fmt(med(lb, s, "ops_per_s")), spread(lb, s, "ops_per_s"),
                                           fmt(med(lb, s, "server_cpu_us_per_op")), spread(lb, s, "server_cpu_us_per_op")))
    w("")

idle = [r for r in rows if r["label"] == "idle memory"]
if idle:
    w("## Memory per idle connection")
    w("")
    w("evringd's resident memory with 1,000 and then 15,000 idle connections (clients in 3 processes, sources spread over 127.1.0.0/16):")
    w("")
    w("| server | RSS at 1,000 (KiB) | RSS at 15,000 (KiB) | bytes per connection |")
    w("|---|---|---|---|")
    for r in idle:
        x = r["run"]
        w("| %s | %s | %s | %s |" % (r["server"], x["rss_kib_1000"], x["rss_kib_15000"], x["bytes_per_conn"]))
    w("")

cc = [r for r in rows if r["label"].startswith("client cost")]
if cc:
    w("## The generator's own cost")
    w("")
    w("Client CPU per echoed 64-byte message (c=50, p=1) against the hand-written epoll echo server, evring-bench against a simple epoll client (bench/peers/epoll_client.c: one read and one write per message):")
    w("")
    w("| client | messages/s | client CPU µs per message |")
    w("|---|---|---|")
    lb = cc[0]["label"]
    for s in ("evring-bench", "epoll_client"):
        w("| %s | %s%s | %s%s |" % (s, fmt(med(lb, s, "ops_per_s")), spread(lb, s, "ops_per_s"),
                                   fmt(med(lb, s, "client_cpu_us_per_op")), spread(lb, s, "client_cpu_us_per_op")))
    w("")

cmds = []
for r in rows:
    c = r.get("cmd")
    if c and c not in cmds:
        cmds.append(c)
if cmds:
    w("## Exact commands")
    w("")
    w("Servers: `build/evringd --backend=B -q -b 127.0.0.1 -s SERVICE:0 --idle-timeout 0 --send-timeout 0` (UDP: `-s echo/udp:0 --udp-rate off`), `build/peers/NAME -p 0`, `nginx -c bench/peers/nginx.conf`, each under `taskset -c 0`; clients under `taskset -c 1`:")
    w("")
    w("```")
    for c in cmds:
        w(c)
    w("```")
    w("")

# ---- targets ----
w("## Targets")
w("")
w("| target | measured | status |")
w("|---|---|---|")


def ratio(a, b):
    return a / b if a is not None and b else None


def target(name, value, ok, show):
    w("| %s | %s | %s |" % (name, show if value is not None else "not measured",
                            "–" if value is None else ("met" if ok else "missed")))


base = "echo c=50 s=64 p=1"
u = med(base, "evringd-io_uring", "server_cpu_us_per_op")
for peer, limit in (("libuv", 0.9), ("libevent", 0.65), ("epoll", 0.95)):
    r = ratio(u, med(base, peer, "server_cpu_us_per_op"))
    target("server CPU per 64-byte echo (c=50, p=1): io_uring ≤ %.2f× %s" % (limit, peer), r,
           r is not None and r <= limit, "%.2f×" % r if r else "")
p16 = med("echo c=50 s=64 p=16", "evringd-io_uring", "server_cpu_us_per_op")
r = ratio(u, p16)
target("p=16 costs ≥ 8× less server CPU per message than p=1", r, r is not None and r >= 8, "%.1f× less" % r if r else "")
h = ratio(med("http wrk -t1 -c100", "evringd-io_uring", "server_cpu_us_per_op"),
          med("http wrk -t1 -c100", "nginx", "server_cpu_us_per_op"))
target("HTTP: server CPU per request ≤ 0.8× nginx", h, h is not None and h <= 0.8, "%.2f×" % h if h else "")
c = ratio(med("daytime churn c=20", "evringd-io_uring", "server_cpu_us_per_op"),
          med("daytime churn c=20", "epoll", "server_cpu_us_per_op"))
target("daytime churn: server CPU per connection ≤ 0.8× hand-written epoll", c, c is not None and c <= 0.8, "%.2f×" % c if c else "")
mem = [r["run"]["bytes_per_conn"] for r in idle if r["server"] == "evringd-io_uring"]
target("≤ 512 bytes of RSS per idle connection at 15,000", mem[0] if mem else None, bool(mem) and mem[0] <= 512,
       "%s bytes" % mem[0] if mem else "")
ccl = [r for r in rows if r["label"].startswith("client cost")]
if ccl:
    lb = ccl[0]["label"]
    ev = med(lb, "evring-bench", "client_cpu_us_per_op")
    ep = med(lb, "epoll_client", "client_cpu_us_per_op")
    target("evring-bench's client CPU per message below a simple epoll client's", ratio(ev, ep),
           ev is not None and ep is not None and ev < ep, "%.2f× (%.2f vs %.2f µs)" % (ev / ep, ev, ep) if ev and ep else "")
worse = [lb for lb in echo_labels
         if (med(lb, "evringd-io_uring", "server_cpu_us_per_op") or 0) >= (med(lb, "evringd-epoll", "server_cpu_us_per_op") or 1e9)]
if echo_labels:
    target("io_uring backend below the epoll backend in every echo configuration", len(echo_labels), not worse,
           "all %d" % len(echo_labels) if not worse else "not in: " + ", ".join(worse))
w("")

md = os.path.join(outdir, "latest.md")
open(md, "w").write("\n".join(out) + "\n")

# ---- plots ----
if echo_labels and subprocess.call("command -v gnuplot >/dev/null", shell=True) == 0:
    dat = os.path.join(outdir, "echo.dat")
    with open(dat, "w") as f:
        f.write("config " + " ".join(ECHO_SERVERS) + "\n")
        for lb in echo_labels:
            f.write('"%s" ' % lb.replace("echo ", "") + " ".join(str(med(lb, s, "ops_per_s") or 0) for s in ECHO_SERVERS) + "\n")
    cdat = os.path.join(outdir, "cpu.dat")
    with open(cdat, "w") as f:
        f.write("config " + " ".join(ECHO_SERVERS) + "\n")
        for lb in echo_labels:
            f.write('"%s" ' % lb.replace("echo ", "") + " ".join(str(med(lb, s, "server_cpu_us_per_op") or 0) for s in ECHO_SERVERS) + "\n")
    ldat = os.path.join(outdir, "latency.dat")
    with open(ldat, "w") as f:
        f.write("q " + " ".join(ECHO_SERVERS) + "\n")
        for q in ("p50", "p90", "p99", "p999"):
            vals = []
            for s in ECHO_SERVERS:
                lat = [r["lat_us"][q] for r in runs(base, s)]
                vals.append(str(statistics.median(lat)) if lat else "0")
            f.write(q + " " + " ".join(vals) + "\n")
    gp = """
set terminal pngcairo size 1100,520 noenhanced font ",10"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key outside right
set xtics rotate by -30
set grid ytics
set output '{o}/throughput.png'
set title 'TCP echo throughput (messages/s, median)'
set logscale y
plot for [i=2:{n}] '{d}' using i:xtic(1) title columnheader(i)
set output '{o}/server_cpu.png'
set title 'Server CPU per echoed message (µs, median; lower is better)'
plot for [i=2:{n}] '{c}' using i:xtic(1) title columnheader(i)
unset logscale y
set output '{o}/latency.png'
set title 'Echo latency percentiles, c=50 s=64 p=1 (µs)'
set logscale y
plot for [i=2:{n}] '{l}' using i:xtic(1) title columnheader(i)
""".format(o=outdir, d=dat, c=cdat, l=ldat, n=len(ECHO_SERVERS) + 1)
    subprocess.run(["gnuplot"], input=gp, text=True, check=False)
    for f in (dat, cdat, ldat):
        os.remove(f)
print("report: %s" % md)
