#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/scaling.sh - one loop against two, behind `make bench-scaling`
# (and the end of `make bench`). Never part of the tests.
#
#   bench/scaling.sh [BUILD_DIR]
#
# Four servers, each under the same loads: two clients at once, each with
# half the connections (TCP echo, 64 bytes, depth 1 and 16, 2 x 25
# connections; HTTP, 2 x wrk -t1 -c50), the clients pinned one to each
# CPU:
#
#   1 loop            evringd --threads 1 on CPU 0
#   2 loops           evringd --threads 2 --cpus 0,1: the kernel's spread,
#                     each client's connections on both loops
#   2 loops, steered  the same with --steer-cpu: a connection goes to the
#                     loop on its client's CPU
#   2 processes       two evringd --threads 1, on CPU 0 and CPU 1, a client
#                     each: the control
#
# On two CPUs the clients have no CPU of their own: they compete with the
# server, and each run records their share of the machine. On loopback
# the kernel charges the receiving side's TCP work to the sender's
# context, and a client whose connections are served on both CPUs wakes
# and is woken across CPUs at every message; so one loop and two differ
# for reasons that owe nothing to the loops sharing anything. Two loops of
# one process, steered, against two processes of one loop each, under the
# same loads, is the measure of what the loops share; the server's own
# code (its CPU outside the kernel, sampled with `perf record -e
# cpu-clock`) is where such a cost would show.
#
# Then the mailbox: mailbox-bench, a wake-up per message (ping-pong) and
# bursts (stream), by IORING_OP_MSG_RING and by eventfd; and `strace -f -c`
# on a two-loop evringd under steady echo load: the hot path makes no
# futex or other locking call.
#
# Results: $BUILD/bench/scaling.jsonl, then bench/scaling_report.py writes
# the "Scaling" section of bench/results/latest.md. Every process started
# here is stopped here, by PID; every run is bounded in time.
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$BUILD/bench
RAW=$OUT/scaling.jsonl
REPEAT=${REPEAT:-3}
DUR=${DUR:-5}
WARM=1
mkdir -p "$OUT" bench/results
: >"$RAW"

if [ "$(nproc)" -lt 2 ]; then
	echo "scaling: needs two CPUs" >&2
	exit 1
fi

SPIDS=""
log() { printf '%s\n' "$*" >&2; }

stop_servers() {
	for p in $SPIDS; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	SPIDS=""
}
trap stop_servers EXIT

# start BACKEND THREADS CPUS: one evringd serving echo and http; adds its
# pid to SPIDS, its ports to EPORTS and HPORTS
start() {
	local out=$OUT/scaling.listen.$$ l1 l2
	rm -f "$out"
	mkfifo "$out"
	"$BUILD/evringd" --backend="$1" -q -b 127.0.0.1 -s echo/tcp:0 \
		-s http/tcp:0 --idle-timeout 0 --send-timeout 0 \
		--threads "$2" --cpus "$3" ${4:-} >"$out" 2>>"$OUT/scaling.log" &
	SPIDS="$SPIDS $!"
	{ read -r -t 10 l1 && read -r -t 10 l2; } <"$out"
	rm -f "$out"
	EPORTS="$EPORTS $(printf '%s\n%s\n' "$l1" "$l2" | awk '$2=="echo" {split($4,a,":"); print a[2]}')"
	HPORTS="$HPORTS $(printf '%s\n%s\n' "$l1" "$l2" | awk '$2=="http" {split($4,a,":"); print a[2]}')"
}

# serve SERVER BACKEND: the server of that name
serve() {
	EPORTS="" HPORTS=""
	case $1 in
	"1 loop") start "$2" 1 0 ;;
	"2 loops") start "$2" 2 0,1 ;;
	"2 loops, steered") start "$2" 2 0,1 --steer-cpu ;;
	"2 processes") start "$2" 1 0; start "$2" 1 1 ;;
	esac
	set -- $EPORTS
	EPORT1=$1 EPORT2=${2:-$1}
	set -- $HPORTS
	HPORT1=$1 HPORT2=${2:-$1}
}

record() {
	printf '{"server":"%s","backend":"%s","load":"%s","run":%s}\n' \
		"$1" "$2" "$3" "$4" >>"$RAW"
}

# Nanoseconds of CPU of every server process, every thread.
server_ns() {
	local s=0 p
	for p in $SPIDS; do
		s=$((s + $(cat /proc/"$p"/task/*/schedstat | awk '{s+=$1} END {printf "%.0f", s}')))
	done
	echo "$s"
}

# The share of the servers' CPU spent outside the kernel (their own code,
# liburing, libc), from `perf record -e cpu-clock` samples of the measured
# seconds. Empty without perf.
PERF=$(command -v perf || true)
perf_start() {
	PERF_PID=""
	rm -f "$OUT/perf.data"
	[ -n "$PERF" ] || return 0
	timeout -s INT "$DUR" "$PERF" record -q -e cpu-clock -F 1999 \
		-o "$OUT/perf.data" -p "$(echo $SPIDS | tr ' ' ,)" \
		>/dev/null 2>&1 &
	PERF_PID=$!
}
perf_share() {
	[ -n "$PERF_PID" ] && [ -s "$OUT/perf.data" ] || return 0
	"$PERF" report -i "$OUT/perf.data" --sort dso --stdio 2>/dev/null |
		awk '/^ +[0-9.]+%/ && $2 !~ /kernel/ {s += $1}
		     END {printf "%.4f", s / 100}'
}

# One run of two clients; the servers' CPU over the measured seconds.
# run SERVER BACKEND LOAD CLIENT1 CLIENT2: each client a command that
# prints "OPS CLIENT_CPU_SECONDS" once done.
run() {
	local c0 c1 o1 o2 own t1 t2
	t1=$(mktemp) t2=$(mktemp)
	eval "$4" >"$t1" &
	local p1=$!
	eval "$5" >"$t2" &
	local p2=$!
	sleep "$WARM"
	c0=$(server_ns)
	perf_start
	wait "$p1" "$p2"
	c1=$(server_ns)
	[ -z "$PERF_PID" ] || wait "$PERF_PID" 2>/dev/null || true
	own=$(perf_share)
	read -r o1 u1 <"$t1"
	read -r o2 u2 <"$t2"
	rm -f "$t1" "$t2"
	record "$1" "$2" "$3" "$(awk -v a="$c0" -v b="$c1" -v n1="$o1" \
		-v n2="$o2" -v u1="$u1" -v u2="$u2" -v d="$DUR" -v own="$own" \
		'BEGIN { n = n1 + n2
		printf "{\"ops\":%.0f,\"ops_per_s\":%.1f,\"server_cpu_us_per_op\":%.4f,\"client_cpu_us_per_op\":%.4f%s}",
			n, n / d, (b-a)/1e3/n, (u1+u2)*1e6/n,
			own == "" ? "" : ",\"server_own_share\":" own }')"
	log "$1 $2 $3: $(tail -1 "$RAW" | grep -o '"ops_per_s":[0-9.]*\|"server_cpu_us_per_op":[0-9.]*\|"client_cpu_us_per_op":[0-9.]*' | tr '\n' ' ')"
}

# evring-bench: its measured ops and its CPU over them
echo_client() {
	printf 'taskset -c %s %s echo -c 25 -s 64 -p %s -q --json -d %s -w %s 127.0.0.1:%s | awk %s' \
		"$3" "$BUILD/evring-bench" "$1" "$DUR" "$WARM" "$2" \
		"'{ match(\$0, /\"ops\":[0-9]+/); n = substr(\$0, RSTART+6, RLENGTH-6);
		    match(\$0, /\"client_cpu_us_per_op\":[0-9.]+/); c = substr(\$0, RSTART+23, RLENGTH-23);
		    print n, n * c / 1e6 }'"
}

# wrk: its requests, and its CPU from /usr/bin/time (warm-up included:
# wrk has none, the window starts with it)
http_client() {
	printf '/usr/bin/time -f %%U\\ %%S -o %s.t taskset -c %s wrk -t1 -c50 -d%ss http://127.0.0.1:%s/ | awk %s; true' \
		"$OUT/wrk$2" "$(($2 - 1))" "$((DUR + WARM))" "$1" \
		"'/requests in/ {n = \$1} END {getline t < \"$OUT/wrk$2.t\"; split(t, u, \" \"); print n * $DUR / ($DUR + $WARM), (u[1] + u[2]) * $DUR / ($DUR + $WARM)}'"
}

for backend in io_uring epoll; do
	for rep in $(seq "$REPEAT"); do
		# the servers take turns within each repetition, so that the
		# machine's drift hits them alike
		for server in "1 loop" "2 loops" "2 loops, steered" "2 processes"; do
			serve "$server" "$backend"
			for depth in 1 16; do
				run "$server" "$backend" "echo p=$depth" \
					"$(echo_client $depth $EPORT1 0)" \
					"$(echo_client $depth $EPORT2 1)"
			done
			run "$server" "$backend" "http" \
				"$(http_client $HPORT1 1)" "$(http_client $HPORT2 2)"
			stop_servers
		done
		log "repetition $rep of $REPEAT ($backend) done"
	done
done

# ---- the mailbox: MSG_RING against an eventfd -----------------------------
for backend in io_uring epoll; do
	for wake in auto eventfd; do
		[ "$backend" = epoll ] && [ "$wake" = auto ] && continue
		for mode in pingpong stream; do
			n=200000
			[ "$mode" = stream ] && n=5000000
			for _ in $(seq "$REPEAT"); do
				r=$("$BUILD/mailbox-bench" "$backend" "$wake" "$mode" "$n")
				record "mailbox" "$backend" "$mode" "$r"
				log "mailbox $backend $wake $mode: $r"
			done
		done
	done
done

# ---- strace: the system calls of two loops under steady load ---------------
for backend in io_uring epoll; do
	serve "2 loops" "$backend"
	"$BUILD/evring-bench" echo -c 50 -s 64 -p 1 -q -d 8 -w 0 \
		"127.0.0.1:$EPORT1" >/dev/null &
	cpid=$!
	sleep 2
	st=$OUT/strace.$backend.txt
	timeout -s INT 4 strace -f -c -p $SPIDS -o "$st" 2>/dev/null || true
	wait "$cpid" || true
	stop_servers
	# one JSON object: every call of the summary, by name
	r=$(awk 'NF >= 5 && $NF ~ /^[a-z_0-9]+$/ && $1 ~ /^[0-9.]+$/ {
		calls = $4; name = $NF
		printf "%s\"%s\":%s", sep, name, calls; sep = ","
	} BEGIN {printf "{\"syscalls\":{"} END {printf "}}"}' "$st")
	record "strace 2 loops" "$backend" "echo p=1" "$r"
	log "strace $backend: $r"
done

python3 bench/scaling_report.py "$RAW" bench/results/latest.md
