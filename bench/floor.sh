#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/floor.sh - evringd and evring-bench against the floor of io_uring
# on this machine, behind `make bench-floor`. Never part of the tests.
#
#   bench/floor.sh [BUILD_DIR]
#
# Three things side by side in each part, in interleaved rounds (the order
# rotated by one each round), server on CPU 0 and client on CPU 1:
#
#   evring      evringd (io_uring backend, one loop), or evring-bench
#   floor       floor/uring_floor.c: every io_uring technique that applies
#               and nothing else (no limits, timeouts, logs or modules)
#   peer        the epoll peer the targets are set against (nginx for HTTP)
#
# Parts, those whose targets are set against a peer: echo 64 B depth 1
# (50 connections), daytime churn and echo churn (connect, a line, its
# echo, close; 20 at a time), HTTP (wrk -t1 -c100): the server's CPU per
# operation; and the generator's own cost (50
# connections, 64 B, depth 1, against peers/epoll_echo): the client's CPU
# per operation.
#
# Writes $BUILD/bench/floor/raw.tsv (part, who, round, value) and
# $BUILD/bench/floor/floor.md: per part the median (min-max) in us per
# operation and each one's ratio to the peer, the median of the rounds'
# ratios. REPEAT (rounds, 5) and DUR (seconds measured, 3) from the
# environment. Every process started here is stopped here, by PID.
set -euo pipefail

BUILD=${1:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$BUILD/bench/floor
REPEAT=${REPEAT:-5}
DUR=${DUR:-3}
WARM=1
SRV_CPU="taskset -c 0"
CLI_CPU="taskset -c 1"
BENCH=$BUILD/evring-bench
FLOOR=$BUILD/bench/uring-floor
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
SLOG=$OUT/servers.log
: >"$RAW"
: >"$SLOG"

if [ "$(nproc)" -lt 2 ]; then
	echo "floor: needs two CPUs (server and client apart)" >&2
	exit 1
fi

# shellcheck source=bench/servers.sh
. bench/servers.sh

# start_server WHO SERVICE: sets SPID and SPORT
start_server() {
	case $1 in
	nginx) start_nginx ;;
	evring)
		start_listening "evringd $2" "$SRV_CPU" "$BUILD/evringd" \
			--backend io_uring -q -b 127.0.0.1 -s "$2/tcp:0" \
			--threads 1 --idle-timeout 0 --send-timeout 0
		;;
	floor) start_listening "uring_floor $2" "$SRV_CPU" "$FLOOR" "$2" -p 0 ;;
	peer) start_listening "epoll_$2" "$SRV_CPU" "$BUILD/peers/epoll_$2" -p 0 ;;
	esac
}

json_field() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p"; }

record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$RAW"; }

# the server side: PART WHO ROUND SERVICE evring-bench args...
server_part() {
	local part=$1 who=$2 round=$3 svc=$4 v
	shift 4
	start_server "$who" "$svc"
	v=$($CLI_CPU "$BENCH" "$@" -d "$DUR" -w "$WARM" -q --json \
		--server-pid "$SPID" "127.0.0.1:$SPORT" | json_field server_cpu_us_per_op)
	stop_server
	record "$part" "$who" "$round" "$v"
}

http_part() {
	local who=$1 round=$2 t0 t1 n
	[ "$who" != peer ] || who=nginx
	start_server "$who" http
	$CLI_CPU wrk -t1 -c100 -d"${WARM}s" "http://127.0.0.1:$SPORT/" >/dev/null
	t0=$(task_ns "$SPID" 1)
	n=$($CLI_CPU wrk -t1 -c100 -d"${DUR}s" "http://127.0.0.1:$SPORT/" |
		awk '/requests in/ { print $1 }')
	t1=$(task_ns "$SPID" 1)
	stop_server
	record "http wrk -t1 -c100" "${1}" "$round" \
		"$(awk -v a="$t0" -v b="$t1" -v n="$n" 'BEGIN { printf "%.3f", (b - a) / 1000 / n }')"
}

client_part() {
	local who=$1 round=$2 v
	start_server peer echo
	case $who in
	evring) v=$($CLI_CPU "$BENCH" echo -c 50 -s 64 -p 1 -d "$DUR" -w "$WARM" \
		-q --json "127.0.0.1:$SPORT" | json_field client_cpu_us_per_op) ;;
	floor) v=$($CLI_CPU "$FLOOR" client -c 50 -s 64 -d "$DUR" -w "$WARM" \
		"127.0.0.1:$SPORT" | json_field client_cpu_us_per_op) ;;
	peer) v=$($CLI_CPU "$BUILD/peers/epoll_client" -c 50 -s 64 -d "$DUR" \
		-w "$WARM" "127.0.0.1:$SPORT" | json_field client_cpu_us_per_op) ;;
	esac
	stop_server
	record "client echo 64 B c=50 (client CPU)" "$who" "$round" "$v"
}

WHO=(evring floor peer)
log "floor: $REPEAT rounds of ${DUR}s, $(uname -r), $(date -u +%FT%TZ)"
for round in $(seq "$REPEAT"); do
	# the order rotates by one each round
	order=()
	for i in 0 1 2; do order+=("${WHO[$(((i + round) % 3))]}"); done
	for who in "${order[@]}"; do
		server_part "echo 64 B c=50 p=1" "$who" "$round" echo echo -c 50 -s 64 -p 1
		server_part "daytime churn c=20" "$who" "$round" daytime connect -c 20
		server_part "echo churn c=20" "$who" "$round" echo connect -c 20 \
			--request 'hello\n' --close-after 6
		http_part "$who" "$round"
		client_part "$who" "$round"
	done
	log "floor: round $round of $REPEAT done"
done

python3 - "$RAW" "$OUT/floor.md" "$(git describe --always --dirty 2>/dev/null || echo unknown)" "$(uname -r)" "$REPEAT" "$DUR" <<'EOF'
import collections, statistics, sys, datetime
raw, md, commit, kernel, rounds, dur = sys.argv[1:]
vals = collections.defaultdict(dict)
parts = []
for line in open(raw):
    part, who, rnd, v = line.rstrip("\n").split("\t")
    if part not in parts:
        parts.append(part)
    if v:
        vals[(part, who)][rnd] = float(v)
peer_name = lambda part: "nginx" if part.startswith("http") else (
    "epoll_client" if part.startswith("client") else "epoll peer")
out = [f"# io_uring floor: {commit}, {datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC, kernel {kernel}",
       "", f"{rounds} interleaved rounds of {dur} s; us per operation, median (min-max);",
       "ratio: each round's value over the peer's, median (min-max).", "",
       "| part | evring | floor | peer | evring/peer | floor/peer |", "| --- | --- | --- | --- | --- | --- |"]
def cell(d):
    v = list(d.values())
    return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else "-"
def ratio(d, p):
    r = [d[k] / p[k] for k in d if k in p and p[k] > 0]
    return f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})" if r else "-"
for part in parts:
    e, f, p = (vals[(part, w)] for w in ("evring", "floor", "peer"))
    out.append(f"| {part} | {cell(e)} | {cell(f)} | {cell(p)} ({peer_name(part)}) | {ratio(e, p)} | {ratio(f, p)} |")
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
EOF
