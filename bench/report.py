#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""report.py - bench/run.sh's raw results to a Markdown report and plots.

    report.py RAW.jsonl OUTDIR

RAW.jsonl: a first line {"meta": {...}} describing the run (commit, date,
kernel, CPU, rounds), then one object per measurement: label, server,
round, the noise around it and the program's own JSON. Writes
OUTDIR/latest.md (medians with min-max of the rounds, noisy measurements
marked, the targets and where we stand) and, with gnuplot, the plots:
throughput.png, server_cpu.png, latency.png (TCP echo), churn.png (daytime
and echo), udp.png, http.png and loops.png, each with units, min-max error
bars and the run's commit, date, kernel and CPU.
"""
import json
import os
import statistics
import subprocess
import sys

raw, outdir = sys.argv[1], sys.argv[2]
lines = [json.loads(l) for l in open(raw) if l.strip()]
meta = next((l["meta"] for l in lines if "meta" in l), {})
rows = [l for l in lines if "label" in l]
ROUNDS = meta.get("rounds", 1)
INDICATIVE = ROUNDS < 2

ECHO_SERVERS = ["evringd-io_uring", "evringd-epoll", "epoll", "libuv", "libevent"]
COST_CLIENTS = ["evring-bench-io_uring", "evring-bench-epoll", "epoll_client"]
NOISY_MARK = "†"

# The loops part: one row per server run, one JSON per client. The
# clients' intervals coincide, so each saw the server's whole CPU time:
# its CPU per message times its messages.
for r in rows:
    run = r["run"]
    if run.get("mode") != "loops":
        continue
    cl = [c for c in run.get("clients", []) if c.get("ops")]
    ops = sum(c["ops"] for c in cl)
    run["ops_per_s"] = sum(c["ops_per_s"] for c in cl) if cl else None
    srv = [c["server_cpu_us_per_op"] * c["ops"] for c in cl if c.get("server_cpu_us_per_op") is not None]
    run["server_cpu_us_per_op"] = statistics.mean(srv) / ops if srv and ops else None


def runs(label, server):
    return [r for r in rows if r["label"] == label and r["server"] == server]


def get(run, key):
    for k in key.split("."):
        if not isinstance(run, dict):
            return None
        run = run.get(k)
    return run


def stat(label, server, key):
    """(median, min, max, rounds, noisy rounds) or None."""
    rs = [r for r in runs(label, server) if get(r["run"], key) is not None]
    if not rs:
        return None
    v = [get(r["run"], key) for r in rs]
    noisy = sum(1 for r in rs if r.get("noise", {}).get("noisy"))
    return statistics.median(v), min(v), max(v), len(v), noisy


def med(label, server, key):
    s = stat(label, server, key)
    return s[0] if s else None


def fmt(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e4:
        return "%.0fk" % (v / 1e3)
    if v >= 100:
        return "%.0f" % v
    return "%.2f" % v


def cell(label, server, key):
    s = stat(label, server, key)
    if not s:
        return "–"
    m, lo, hi, n, noisy = s
    out = fmt(m)
    if n > 1:
        out += " (%s–%s)" % (fmt(lo), fmt(hi))
    return out + (NOISY_MARK if noisy else "")


def labels(prefix):
    seen = []
    for r in rows:
        if r["label"].startswith(prefix) and r["label"] not in seen:
            seen.append(r["label"])
    return seen


def servers_of(label, order=None):
    present = {r["server"] for r in rows if r["label"] == label}
    order = order or sorted(present)
    return [s for s in order if s in present] + sorted(present - set(order))


out = []
w = out.append

# ---- the run ----
made = "`make bench` (bench/run.sh full)" if meta.get("mode") == "full" else "`make bench-quick` (bench/run.sh quick)"
noisy_all = [r for r in rows if r.get("noise", {}).get("noisy")]
others = [r["noise"]["others_pct"] for r in rows if "others_pct" in r.get("noise", {})]
bench_cpus = "CPUs 0 and 1" if meta.get("pinned") else "all CPUs"
w("# evring benchmark results")
w("")
w("- commit %s, run %s by %s" % (meta.get("commit", "?"), meta.get("date", "?"), made))
w("- machine: %s, %s CPUs, Linux %s" % (meta.get("cpu", "?"), meta.get("ncpu", "?"), meta.get("kernel", "?")))
if INDICATIVE:
    w("- **one round: indicative only.** `make bench` runs %s interleaved rounds and reports their medians" % 5)
else:
    w("- %d interleaved rounds: each round runs every part against every server once, in a rotated order; "
      "tables show the median and (min–max) of the rounds" % ROUNDS)
w("- each measurement: %s s after a %s s warm-up (wrk: %s s)" % (meta.get("dur", "?"), meta.get("warm", "?"), meta.get("wrkdur", "?")))
if meta.get("pinned"):
    w("- servers pinned to CPU 0 (`taskset -c 0`), clients to CPU 1; one server at a time, on 127.0.0.1")
w("- server CPU per operation: the server's CPU time over the measured interval (summed from "
  "/proc/PID/task/*/schedstat) divided by the operations, the fair measure when client and server "
  "both saturate a core")
w("- noise: %d of %d measurements were noisy (marked %s): other processes used more than %s %% of %s "
  "while they ran (from /proc/stat, less the server's and the client's own CPU time)%s"
  % (len(noisy_all), len(rows), NOISY_MARK, meta.get("noise_pct", 5), bench_cpus,
     "; median %.0f %%, up to %.0f %%" % (statistics.median(others), max(others)) if others else ""))
w("")

# ---- echo ----
echo_labels = labels("echo c=")
base = "echo c=50 s=64 p=1"
if echo_labels:
    w("## TCP echo (evring-bench echo)")
    w("")
    w("Command: `evring-bench echo -c C -s S -p P -d %s -w %s --server-pid PID 127.0.0.1:PORT`; every echoed byte verified." %
      (meta.get("dur", "DUR"), meta.get("warm", 1)))
    w("")
    for title, key in (("Throughput, messages/s:", "ops_per_s"), ("Server CPU per echoed message, µs:", "server_cpu_us_per_op")):
        w(title)
        w("")
        w("| configuration | " + " | ".join(ECHO_SERVERS) + " |")
        w("|---|" + "---|" * len(ECHO_SERVERS))
        for lb in echo_labels:
            w("| %s | %s |" % (lb, " | ".join(cell(lb, s, key) for s in ECHO_SERVERS)))
        w("")
    w("Latency at c=50 s=64 p=1, µs (medians of the rounds):")
    w("")
    w("| server | p50 | p90 | p99 | p99.9 | max | mean | sd |")
    w("|---|---|---|---|---|---|---|---|")
    for s in ECHO_SERVERS:
        if not runs(base, s):
            continue
        w("| %s | %s |" % (s, " | ".join(fmt(med(base, s, "lat_us." + q)) for q in
                                           ("p50", "p90", "p99", "p999", "max", "mean", "stddev"))))
    w("")

cost = labels("client cost")
if cost:
    lb = cost[0]
    w("## The generator's own cost")
    w("")
    w("Client CPU per echoed 64-byte message (c=50, p=1) against the hand-written epoll echo server: evring-bench "
      "on each of its backends, and a simple epoll client (bench/peers/epoll_client.c: one read and one write per message):")
    w("")
    w("| client | messages/s | client CPU µs per message |")
    w("|---|---|---|")
    for s in servers_of(lb, COST_CLIENTS):
        w("| %s | %s | %s |" % (s, cell(lb, s, "ops_per_s"), cell(lb, s, "client_cpu_us_per_op")))
    w("")

for prefix, title, unit in (("daytime churn", "Connection churn against daytime (evring-bench connect)", "connection"),
                            ("echo churn", "Connection churn against echo (evring-bench connect --close-after)", "connection"),
                            ("udp echo", "UDP echo (evring-bench udp)", "datagram"),
                            ("http wrk", "HTTP plaintext (wrk -t1 -c100)", "request")):
    lbs = labels(prefix)
    if not lbs:
        continue
    churn = unit == "connection"
    w("## " + title)
    w("")
    if prefix == "echo churn":
        w("Each connection sends a line, reads its echo and closes "
          "(`evring-bench connect -c 20 --request 'hello\\n' --close-after 6`).")
        w("")
    if churn:
        w("Connections per second per server core: one second of CPU over the server CPU per connection, "
          "what one loop would accept and close if the clients could keep it busy.")
        w("")
    w("| configuration | server | %ss/s | server CPU µs per %s |%s" % (unit, unit, " connections/s per server core |" if churn else ""))
    w("|---|---|---|---|" + ("---|" if churn else ""))
    for lb in lbs:
        for s in servers_of(lb, ECHO_SERVERS + ["nginx"]):
            line = "| %s | %s | %s | %s |" % (lb, s, cell(lb, s, "ops_per_s"), cell(lb, s, "server_cpu_us_per_op"))
            if churn:
                m = med(lb, s, "server_cpu_us_per_op")
                line += " %s |" % (fmt(1e6 / m) if m else "–")
            w(line)
    w("")

w("## One loop against N (evringd --threads)")
w("")
loop_labels = labels("loops ")
if loop_labels:
    w("evringd on io_uring with 1 and with %d loops, loaded by %d evring-bench processes at once (each `-c C`); "
      "servers and clients unpinned, so they share the machine's %s CPUs:" % (meta.get("threads"), meta.get("threads"), meta.get("ncpu")))
    w("")
    w("| configuration (per client) | loops | messages/s | server CPU µs per message |")
    w("|---|---|---|---|")
    for lb in loop_labels:
        for s in servers_of(lb):
            w("| %s | %s | %s | %s |" % (lb.replace("loops ", "echo "), s.replace("threads=", ""),
                                       cell(lb, s, "ops_per_s"), cell(lb, s, "server_cpu_us_per_op")))
    w("")
else:
    w("Not measured: this evringd has no `--threads`, so it runs one loop only.")
    w("")

idle_lb = labels("idle memory")
if idle_lb:
    lb = idle_lb[0]
    n = meta.get("idle_conns", 15000)
    w("## Memory per idle connection")
    w("")
    w("evringd's resident memory before and while holding {:,} idle connections (one evring-bench idle, "
      "sources spread over 127.1.0.0/16):".format(n))
    w("")
    w("| server | connections held | RSS before (KiB) | RSS holding them (KiB) | bytes per connection |")
    w("|---|---|---|---|---|")
    for s in servers_of(lb, ["evringd-io_uring", "evringd-epoll"]):
        w("| %s | %s | %s | %s | %s |" % (s, cell(lb, s, "held"), cell(lb, s, "server_rss_kib_before"),
                                        cell(lb, s, "server_rss_kib"), cell(lb, s, "server_bytes_per_conn")))
    w("")

# ---- noise ----
if rows:
    w("## Noise")
    w("")
    w("Share of %s that other processes used during each measurement (%% of their time; steal: the hypervisor's):" % bench_cpus)
    w("")
    w("| part | measurements | noisy | others, median | others, max | steal, max | server waited for a CPU, max |")
    w("|---|---|---|---|---|---|---|")
    parts = []
    for r in rows:
        p = r["label"].split(" c=")[0]
        if p not in parts:
            parts.append(p)
    for p in parts:
        ns = [r.get("noise", {}) for r in rows if r["label"].split(" c=")[0] == p]
        o = [x["others_pct"] for x in ns if "others_pct" in x]
        if not o:
            continue
        w("| %s | %d | %d | %.0f %% | %.0f %% | %.0f %% | %.0f %% |" % (
            p, len(ns), sum(1 for x in ns if x.get("noisy")), statistics.median(o), max(o),
            max(x.get("steal_pct", 0) for x in ns), max(x.get("server_wait_pct", 0) for x in ns)))
    w("")

cmds = []
for r in rows:
    c = r.get("cmd")
    if c and c not in cmds:
        cmds.append(c)
if cmds:
    w("## Exact commands")
    w("")
    w("Servers: `build/evringd --backend=B -q -b 127.0.0.1 -s SERVICE:0 --idle-timeout 0 --send-timeout 0` "
      "(UDP: `-s echo/udp:0 --udp-rate off`), `build/peers/NAME -p 0`, `nginx -c bench/peers/nginx.conf`, "
      "each under `taskset -c 0`; clients under `taskset -c 1`:")
    w("")
    w("```")
    for c in cmds:
        w(c)
    w("```")
    w("")

# ---- targets ----
w("## Targets")
w("")
if INDICATIVE:
    w("Indicative: one round per configuration. `make bench` decides.")
    w("")
w("| target | measured | status |")
w("|---|---|---|")


def ratio(a, b):
    return a / b if a is not None and b else None


def noisy_of(*cells):
    return any(s and s[4] for s in cells)


def target(name, value, ok, show, noisy=False):
    if value is None:
        status = "–"
    else:
        status = "met" if ok else "missed"
        if INDICATIVE:
            status = "indicative: " + status
    w("| %s | %s | %s |" % (name, (show + (NOISY_MARK if noisy else "")) if value is not None else "not measured", status))


SCPU = "server_cpu_us_per_op"


def versus(label, a, b, limit, name, at_most=True):
    """A target on the ratio of two servers' CPU per operation."""
    x, y = stat(label, a, SCPU), stat(label, b, SCPU)
    r = ratio(x and x[0], y and y[0])
    target(name, r, r is not None and (r <= limit if at_most else r >= limit),
           "%.2f× (%.2f vs %.2f µs)" % (r, x[0], y[0]) if r else "", noisy_of(x, y))
    return r


versus(base, "evringd-io_uring", "epoll", 0.95,
       "64-byte echo, depth 1 (c=50): server CPU per message ≤ 0.95× the hand-written epoll server")
for peer, limit in (("libuv", 0.9), ("libevent", 0.65)):
    versus(base, "evringd-io_uring", peer, limit,
           "64-byte echo, depth 1 (c=50): server CPU per message ≤ %.2f× %s" % (limit, peer))
u = stat(base, "evringd-io_uring", SCPU)
p16 = stat("echo c=50 s=64 p=16", "evringd-io_uring", SCPU)
r = ratio(u and u[0], p16 and p16[0])
target("depth 16 costs ≥ 10× less server CPU per message than depth 1 (c=50, 64 B)", r, r is not None and r >= 10,
       "%.1f× less" % r if r else "", noisy_of(u, p16))
for lb in echo_labels:
    if " s=4096 " in lb:
        versus(lb, "evringd-io_uring", "evringd-epoll", 1.0,
               "4 KiB echo (%s): io_uring backend no worse than the epoll backend" % lb[5:])
versus("daytime churn c=20", "evringd-io_uring", "epoll", 0.7,
       "daytime churn: server CPU per connection ≤ 0.7× the hand-written epoll daytime server")
versus("echo churn c=20", "evringd-io_uring", "epoll", 0.7,
       "echo churn: server CPU per connection ≤ 0.7× the hand-written epoll echo server")
versus("udp echo c=50 s=64", "evringd-io_uring", "epoll", 0.95,
       "UDP echo 64 B: server CPU per datagram ≤ 0.95× the recvmmsg/sendmmsg epoll server")
versus("http wrk -t1 -c100", "evringd-io_uring", "nginx", 0.75,
       "HTTP plaintext (wrk -c100): server CPU per request ≤ 0.75× nginx with one worker")
m = stat("idle memory", "evringd-io_uring", "server_bytes_per_conn")
target("≤ 512 bytes of RSS per idle connection at {:,}".format(meta.get("idle_conns", 15000)), m and m[0],
       bool(m) and m[0] <= 512, "%.0f bytes" % m[0] if m else "", noisy_of(m))
if cost:
    ev = stat(cost[0], "evring-bench-io_uring", "client_cpu_us_per_op")
    ep = stat(cost[0], "epoll_client", "client_cpu_us_per_op")
    r = ratio(ev and ev[0], ep and ep[0])
    target("evring-bench (io_uring) client CPU per message ≤ 0.8× a simple epoll client", r, r is not None and r <= 0.8,
           "%.2f× (%.2f vs %.2f µs)" % (r, ev[0], ep[0]) if r else "", noisy_of(ev, ep))
worse = [lb for lb in echo_labels
         if (med(lb, "evringd-io_uring", SCPU) or 0) >= (med(lb, "evringd-epoll", SCPU) or 1e9)]
if echo_labels:
    target("io_uring backend below the epoll backend in every echo configuration", len(echo_labels), not worse,
           "all %d" % len(echo_labels) if not worse else "not in: " + ", ".join(worse))
w("")

md = os.path.join(outdir, "latest.md")
# The Scaling section (bench/scaling_report.py, between its markers) is
# kept: `make bench` replaces it afterwards, `SCALING=0` leaves it as is.
scaling = ""
if os.path.exists(md):
    old = open(md).read()
    a, b = old.find("<!-- scaling -->"), old.find("<!-- /scaling -->")
    if a >= 0 and b > a:
        scaling = "\n" + old[a:b + len("<!-- /scaling -->")] + "\n"
with open(md, "w") as f:
    f.write("\n".join(out) + "\n" + scaling)

# ---- plots ----


def gq(s):
    """A gnuplot single-quoted string."""
    return "'" + str(s).replace("'", "''") + "'"


FOOTER = "evring %s · %s · Linux %s · %s, %s CPUs · %s" % (
    meta.get("commit", "?"), meta.get("date", "?"), meta.get("kernel", "?"), meta.get("cpu", "?"), meta.get("ncpu", "?"),
    "one round (indicative)" if INDICATIVE else "median of %d rounds, bars min–max" % ROUNDS)
HEAD = """set terminal pngcairo size 1100,560 noenhanced font ',10'
set output {out}
set label 100 {foot} at screen 0.01, screen 0.025 font ',8'
set bmargin 7
set style data histograms
set style histogram errorbars gap 2 lw 1
set style fill solid 0.8 border -1
set key outside right top
set grid ytics
set yrange [0:*]
"""


# eight configurations side by side: their labels slanted, to fit
XROT = "set xtics rotate by 20 right\n"


def datfile(name, xs, series, getter):
    """One line per x: its label, then median, min, max of each series."""
    path = os.path.join(outdir, name + ".dat")
    with open(path, "w") as f:
        for x in xs:
            cols = []
            for s in series:
                v = getter(x, s)
                cols += ["%g %g %g" % (v[0], v[1], v[2])] if v else ["NaN NaN NaN"]
            f.write("%s %s\n" % (gq(x).replace("'", '"'), " ".join(cols)))
    return path


def bars(dat, series, xtitle="", ytitle="", title=""):
    """Clustered bars, one series per name in series; one series: no key."""
    clauses = []
    for i, name in enumerate(series):
        clauses.append("%s using %d:%d:%d%s title %s" % (
            gq(dat) if i == 0 else "''", 2 + 3 * i, 3 + 3 * i, 4 + 3 * i, ":xtic(1)" if i == 0 else "",
            gq(name) if len(series) > 1 else "''"))
    return """set title {t}
set xlabel {x}
set ylabel {y}
plot {c}
""".format(t=gq(title), x=gq(xtitle), y=gq(ytitle), c=", ".join(clauses))


def empty(note, title):
    return """set title {t}
unset xtics
unset ytics
set xrange [0:1]
set yrange [0:1]
set label 1 {n} at graph 0.5, graph 0.5 center
plot NaN notitle
unset label 1
""".format(t=gq(title), n=gq(note))


def stat3(label, key):
    return lambda x, s: (lambda v: v[:3] if v else None)(stat(label(x), s, key))


def plot(png, body):
    gp = HEAD.format(out=gq(os.path.join(outdir, png)), foot=gq(FOOTER)) + body
    subprocess.run(["gnuplot"], input=gp, text=True, check=False)


def two_panels(png, title, dat, series, xtitle, unit):
    """Server CPU per operation and throughput, side by side."""
    return plot(png, "set multiplot layout 1,2 title {t}\nset key inside top right\n".format(t=gq(title)) +
                bars(dat[0], series, xtitle, "server CPU per %s (µs)" % unit, "server CPU per %s (lower is better)" % unit) +
                bars(dat[1], series, xtitle, "%ss per second" % unit, "throughput") + "unset multiplot\n")


if subprocess.call("command -v gnuplot >/dev/null", shell=True) == 0:
    made = []
    if echo_labels:
        xs = [lb.replace("echo ", "") for lb in echo_labels]
        d = datfile("echo_ops", xs, ECHO_SERVERS, stat3(lambda x: "echo " + x, "ops_per_s"))
        plot("throughput.png", "set logscale y\nset yrange [*:*]\n" + XROT +
             bars(d, ECHO_SERVERS, "configuration (c connections, s bytes per message, p messages in flight)",
                  "messages per second (log scale)", "TCP echo throughput"))
        d2 = datfile("echo_cpu", xs, ECHO_SERVERS, stat3(lambda x: "echo " + x, SCPU))
        plot("server_cpu.png", "set logscale y\nset yrange [*:*]\n" + XROT +
             bars(d2, ECHO_SERVERS, "configuration (c connections, s bytes per message, p messages in flight)",
                  "server CPU per message (µs, log scale)", "TCP echo: server CPU per echoed message (lower is better)"))
        qs = ["p50", "p90", "p99", "p999"]
        d3 = datfile("echo_lat", qs, ECHO_SERVERS, lambda q, s: (lambda v: v[:3] if v else None)(stat(base, s, "lat_us." + q)))
        plot("latency.png", "set logscale y\nset yrange [*:*]\n" +
             bars(d3, ECHO_SERVERS, "percentile", "latency (µs, log scale)", "TCP echo latency, c=50 s=64 p=1"))
        made += [d, d2, d3]
    # churn: daytime and echo side by side, a bar per server
    churn_lbs = labels("daytime churn") + labels("echo churn")
    if churn_lbs:
        series = servers_of(churn_lbs[0], ECHO_SERVERS)
        xs = [lb.split(" churn")[0] for lb in churn_lbs]
        by = dict(zip(xs, churn_lbs))
        d = datfile("churn_cpu", xs, series, stat3(lambda x: by[x], SCPU))
        d2 = datfile("churn_ops", xs, series, stat3(lambda x: by[x], "ops_per_s"))
        two_panels("churn.png", "Connection churn, evring-bench connect -c 20 (daytime: read the line; "
                   "echo: send a line, read its echo)", (d, d2), series, "service", "connection")
        made += [d, d2]
    else:
        plot("churn.png", empty("not measured in this run", "Connection churn"))
    for png, prefix, title, unit, order in (
            ("udp.png", "udp echo", "UDP echo, evring-bench udp -c 50 -s 64", "datagram", None),
            ("http.png", "http wrk", "HTTP plaintext, wrk -t1 -c100", "request", None)):
        lbs = labels(prefix)
        if not lbs:
            plot(png, empty("not measured in this run", title))
            continue
        xs = servers_of(lbs[0], ECHO_SERVERS + ["nginx"])
        d = datfile(prefix.split()[0] + "_cpu", xs, ["median"], lambda x, s: (lambda v: v[:3] if v else None)(stat(lbs[0], x, SCPU)))
        d2 = datfile(prefix.split()[0] + "_ops", xs, ["median"], lambda x, s: (lambda v: v[:3] if v else None)(stat(lbs[0], x, "ops_per_s")))
        two_panels(png, title, (d, d2), ["median"], "server", unit)
        made += [d, d2]
    if loop_labels:
        series = servers_of(loop_labels[0])
        xs = [lb.replace("loops ", "") for lb in loop_labels]
        d = datfile("loops_cpu", xs, series, stat3(lambda x: "loops " + x, SCPU))
        d2 = datfile("loops_ops", xs, series, stat3(lambda x: "loops " + x, "ops_per_s"))
        series = [s.replace("threads=", "") + (" loop" if s == "threads=1" else " loops") for s in series]
        two_panels("loops.png", "evringd with 1 loop and with %s (--threads), %s clients at once" %
                   (meta.get("threads"), meta.get("threads")), (d, d2), series,
                   "configuration per client (c connections, s bytes, p in flight)", "message")
        made += [d, d2]
    else:
        plot("loops.png", empty("this evringd has no --threads: one loop only, nothing to compare",
                                "evringd with 1 loop and with N (--threads)"))
    for f in made:
        os.remove(f)
print("report: %s" % md)
