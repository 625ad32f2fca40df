#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""scaling_report.py - bench/scaling.sh's results to the "Scaling" section
of the benchmark report.

    scaling_report.py SCALING.jsonl REPORT.md

Replaces the text between the markers <!-- scaling --> and
<!-- /scaling --> of REPORT.md (appends the section when they are not
there), leaving the rest of the report as it was.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import time

raw, md = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(raw) if l.strip()]
NCPU = os.cpu_count() or 2
SERVERS = ["1 loop", "2 loops", "2 loops, steered", "2 processes"]


def runs(placement, backend, load):
    return [r["run"] for r in rows
            if r["server"] == placement and r["backend"] == backend
            and r["load"] == load]


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def stat(placement, backend, load, key):
    return med([r.get(key) for r in runs(placement, backend, load)])


def own(placement, backend, load):
    """The server's CPU per operation outside the kernel (perf samples)."""
    return med([r["server_own_share"] * r["server_cpu_us_per_op"]
                for r in runs(placement, backend, load)
                if r.get("server_own_share") is not None])


def total(placement, backend, load):
    return med([r["server_cpu_us_per_op"] + r["client_cpu_us_per_op"]
                for r in runs(placement, backend, load)
                if r.get("client_cpu_us_per_op") is not None])


def share(placement, backend, load):
    """The client's CPU as a share of the machine."""
    vals = [r["client_cpu_us_per_op"] * r["ops_per_s"] / 1e6 / NCPU
            for r in runs(placement, backend, load)
            if r.get("client_cpu_us_per_op") is not None]
    return med(vals)


def fmt(v, digits=2):
    if v is None:
        return "–"
    if v >= 1e6:
        return "%.2fM" % (v / 1e6)
    if v >= 1e4:
        return "%.0fk" % (v / 1e3)
    return ("%%.%df" % digits) % v


def pct(a, b):
    if a is None or b is None or not b:
        return "–"
    return "%+.1f %%" % ((a / b - 1) * 100)


def sh(cmd):
    try:
        return subprocess.check_output(cmd, shell=True, text=True).strip()
    except Exception:
        return "?"


out = []
w = out.append
w("<!-- scaling -->")
w("## Scaling: one loop against two")
w("")
cpu = sh("awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo").strip()
w("`make bench-scaling` (bench/scaling.sh), %s, commit %s, %s, %d CPUs, "
  "Linux %s; medians of %d runs of %s."
  % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
     sh("git rev-parse --short HEAD"), cpu, NCPU, platform.release(),
     max((len(runs(p, b, l)) for p in SERVERS for b in ("io_uring", "epoll")
          for l in ("echo p=1",)), default=0),
     "5 s"))
w("")
w("Four servers under the same loads, two clients at once with half the "
  "connections each, one pinned to each CPU: `evring-bench echo -c 25 "
  "-s 64` at depth 1 and 16, twice; `wrk -t1 -c50`, twice. *1 loop*: "
  "`evringd --threads 1` on CPU 0. *2 loops*: `--threads 2 --cpus 0,1`, "
  "the kernel's spread (each client's connections on both loops). *2 "
  "loops, steered*: the same with `--steer-cpu` (a connection goes to the "
  "loop on the CPU of its client). *2 processes*: two `evringd --threads "
  "1`, on CPU 0 and CPU 1, a client each: the control.")
w("")
w("On two CPUs the clients have no CPU of their own: they compete with "
  "the server, and their share of the machine (their CPU time over the "
  "wall time of both CPUs) is in the tables. One loop and two differ for "
  "reasons that owe nothing to sharing: on loopback the kernel charges "
  "the receiving side's TCP work to the sender's context, and a client "
  "whose connections are served on both CPUs wakes and is woken across "
  "CPUs at every message. Two loops of one process, steered, against two "
  "processes of one loop each, under the same loads, isolate what the "
  "loops of a group share; the server's own code "
  "(its CPU outside the kernel, from `perf record -e cpu-clock` samples: "
  "evringd, liburing, libc) is where a cost of sharing would show.")
w("")
for backend in ("io_uring", "epoll"):
    w("### %s" % backend)
    w("")
    w("| load | server | ops/s | server µs/op | own code µs/op | "
      "client µs/op | clients' share | server + client µs/op |")
    w("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for load in ("echo p=1", "echo p=16", "http"):
        for p in SERVERS:
            sv, o, t = (stat(p, backend, load, "server_cpu_us_per_op"),
                        own(p, backend, load), total(p, backend, load))
            cmp = "2 processes" if p.startswith("2 loops") else ""
            w("| %s | %s | %s | %s%s | %s%s | %s | %s | %s |" % (
                load, p, fmt(stat(p, backend, load, "ops_per_s")),
                fmt(sv), " (%s)" % pct(sv, stat("2 processes", backend,
                                                load, "server_cpu_us_per_op"))
                if cmp else "",
                fmt(o, 3), " (%s)" % pct(o, own(cmp, backend, load))
                if cmp and o is not None else "",
                fmt(stat(p, backend, load, "client_cpu_us_per_op")),
                "–" if share(p, backend, load) is None
                else "%.0f %%" % (share(p, backend, load) * 100),
                fmt(t)))
    w("")
    w("(2 loops, in parentheses: the difference from 2 processes.)")
    w("")

w("### The mailbox: a wake-up by MSG_RING or by eventfd")
w("")
w("`mailbox-bench`: two loops pinned to CPUs 0 and 1. *pingpong*: one "
  "message in flight, each one waking its target (a wake-up's latency and "
  "CPU, both loops together, per message); *stream*: bursts of 64, "
  "wake-ups coalesced (a message's own cost). On this VM a wake-up of an "
  "idle vCPU dominates the ping-pong, whatever wakes it.")
w("")
w("| backend | wake-up | mode | wall ns/message | CPU ns/message | "
  "wake-ups / messages |")
w("| --- | --- | --- | --- | --- | --- |")
for backend in ("io_uring", "epoll"):
    for mode in ("pingpong", "stream"):
        rs = runs("mailbox", backend, mode)
        for wake in ("msg_ring", "eventfd"):
            sel = [r for r in rs if r.get("wake") == wake]
            if not sel:
                continue
            w("| %s | %s | %s | %s | %s | %.3f |" % (
                backend, wake, mode, fmt(med([r["ns_per_msg"] for r in sel]), 0),
                fmt(med([r["cpu_ns_per_msg"] for r in sel]), 0),
                med([r["wakes"] / r["n"] for r in sel])))
w("")

w("### System calls of two loops under load")
w("")
w("`strace -f -c` attached for 4 s to `evringd --threads 2` under "
  "`evring-bench echo -c 50 -s 64 -p 1` (strace slows every call: counts, "
  "not speed).")
w("")
for backend in ("io_uring", "epoll"):
    rs = runs("strace 2 loops", backend, "echo p=1")
    if not rs:
        continue
    calls = rs[-1]["syscalls"]
    top = sorted(((n, c) for n, c in calls.items() if n != "total"),
                 key=lambda x: -x[1])
    locks = sum(c for n, c in calls.items() if n in ("futex", "futex_waitv"))
    w("- %s: %s calls; futex: %d. %s" % (
        backend, calls.get("total", sum(c for _, c in top)), locks,
        ", ".join("%s %d" % (n, c) for n, c in top[:6])))
w("<!-- /scaling -->")

section = "\n".join(out) + "\n"
text = open(md).read() if os.path.exists(md) else ""
a, b = text.find("<!-- scaling -->"), text.find("<!-- /scaling -->")
if a >= 0 and b > a:
    text = text[:a] + section + text[b + len("<!-- /scaling -->") + 1:]
else:
    text = text.rstrip("\n") + "\n\n" + section
open(md, "w").write(text)
print("scaling: %s updated" % md)
