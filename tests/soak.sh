#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/soak.sh BUILD_DIR [SECONDS] - `make soak`: a mixed load against one
# evringd for SECONDS (default 600), then a check that it is as it was.
#
# Load, in rounds of at most 30 s until the time is up: echo over TCP with
# several sizes and pipeline depths, daytime connection churn, HTTP with
# wrk (when installed), UDP echo datagrams, directory sessions through nc.
# The server is sampled (SIGUSR1 counters, VmRSS, open descriptors) after a
# warm-up round and again after the last round, each time once it has gone
# idle. It must end with every pooled buffer back, nothing queued, no
# connection open, the same descriptors, and resident memory within
# max(10 %, 4 MiB) of the warm sample. Loopback only; every process started
# here is stopped here, by PID.
set -euo pipefail

B=${1:-build}
SECS=${2:-600}
ROUND=30
[ "$SECS" -lt "$ROUND" ] && ROUND=$SECS
OUT=$(mktemp -d)
trap 'kill "$SPID" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$OUT"' EXIT

"$B/evringd" -b 127.0.0.1 -s echo:0 -s daytime:0 -s http/tcp:0 \
	-s directory/tcp:0 --idle-timeout 60s >"$OUT/listen" 2>"$OUT/log" &
SPID=$!
for _ in $(seq 100); do
	[ "$(grep -c '^listen' "$OUT/listen" 2>/dev/null)" -ge 6 ] && break
	sleep 0.1
done
port() { awk -v s="$1" -v p="$2" '$2==s && $3==p {sub(/.*:/,"",$4); print $4; exit}' "$OUT/listen"; }
ECHO=$(port echo tcp)
UECHO=$(port echo udp)
DAY=$(port daytime tcp)
HTTP=$(port http tcp)
DIR=$(port directory tcp)

stat_line() {
	local before
	before=$(grep -c 'stats:' "$OUT/log" || true)
	kill -USR1 "$SPID"
	for _ in $(seq 100); do
		[ "$(grep -c 'stats:' "$OUT/log")" -gt "$before" ] && break
		sleep 0.05
	done
	grep 'stats:' "$OUT/log" | tail -1
}
field() { sed -n "s/.* $1=\([0-9/]*\).*/\1/p" <<<"$2"; }

# sample NAME: wait until idle, then record counters, RSS and fds
sample() {
	local s
	for _ in $(seq 200); do
		s=$(stat_line)
		[ "$(field conns_open "$s")" = 0 ] && [ "$(field bytes_queued "$s")" = 0 ] &&
			[ "$(field bufs_free "$s")" = "$(field bufs_total "$s")" ] && break
		sleep 0.1
	done
	eval "$1_stats=\"\$s\""
	eval "$1_rss=$(awk '/VmRSS/ {print $2}' /proc/$SPID/status)"
	eval "$1_fds=$(ls /proc/$SPID/fd | wc -l)"
}

round() {
	local d=$1 pids=()
	"$B/evring-bench" echo -q -c 40 -s 64 -p 4 -d "$d" -w 0 "127.0.0.1:$ECHO" >/dev/null & pids+=($!)
	"$B/evring-bench" echo -q -c 8 -s 65536 -p 1 -d "$d" -w 0 "127.0.0.1:$ECHO" >/dev/null & pids+=($!)
	"$B/evring-bench" connect -q -c 8 -d "$d" -w 0 "127.0.0.1:$DAY" >/dev/null & pids+=($!)
	if command -v wrk >/dev/null; then
		wrk -t1 -c20 -d"${d}s" "http://127.0.0.1:$HTTP/" >/dev/null & pids+=($!)
	fi
	(
		end=$((SECONDS + d))
		while [ $SECONDS -lt $end ]; do
			printf 'REGISTER s%d %d session\nLOOKUP echo\nLIST\nQUIT\n' $RANDOM $((RANDOM + 1)) |
				nc -q1 127.0.0.1 "$DIR" >/dev/null || true
			head -c $((RANDOM % 1400 + 1)) /dev/urandom | nc -u -w0 127.0.0.1 "$UECHO" >/dev/null 2>&1 || true
		done
	) & pids+=($!)
	for p in "${pids[@]}"; do wait "$p" || true; done
}

echo "soak: evringd pid $SPID, $SECS s of mixed load in rounds of $ROUND s"
round "$ROUND"
sample warm
t0=$SECONDS
rounds=1
while [ $((SECONDS - t0 + ROUND)) -le "$SECS" ]; do
	round "$ROUND"
	rounds=$((rounds + 1))
done
sample end

printf '%-22s %14s %14s\n' "" "after warm-up" "at the end"
printf '%-22s %14s %14s\n' "rss KiB" "$warm_rss" "$end_rss"
printf '%-22s %14s %14s\n' "open fds" "$warm_fds" "$end_fds"
for f in conns_open bufs_free bufs_heap bytes_queued udp_bufs_free timers conns_accepted; do
	printf '%-22s %14s %14s\n' "$f" "$(field $f "$warm_stats")" "$(field $f "$end_stats")"
done

fail=0
limit=$((warm_rss / 10 > 4096 ? warm_rss / 10 : 4096))
[ $((end_rss - warm_rss)) -le "$limit" ] || { echo "soak: RSS grew by $((end_rss - warm_rss)) KiB (allowed $limit)"; fail=1; }
[ "$end_fds" = "$warm_fds" ] || { echo "soak: descriptors $warm_fds -> $end_fds"; fail=1; }
for f in conns_open bytes_queued bufs_heap; do
	[ "$(field $f "$end_stats")" = 0 ] || { echo "soak: $f not 0 at the end"; fail=1; }
done
[ "$(field bufs_free "$end_stats")" = "$(field bufs_total "$end_stats")" ] || { echo "soak: pool buffers missing"; fail=1; }
u=$(field udp_bufs_free "$end_stats")
[ "${u%/*}" = "${u#*/}" ] || { echo "soak: UDP buffers missing ($u)"; fail=1; }
kill -TERM "$SPID"
wait "$SPID" || { echo "soak: evringd exit status $?"; fail=1; }
SPID=
[ $fail = 0 ] && echo "soak: flat after $rounds rounds ($SECONDS s)" || exit 1
