#!/bin/sh
# SPDX-License-Identifier: MIT
#
# bench/spawn.sh BUILD [SECONDS] [RATE] - does starting programs stall
# evringd for its other clients?
#
# evringd serves echo (in-process) and /bin/echo (a program per
# connection, nowait.0: no .max) on 127.0.0.1, pinned to CPU 0;
# spawn-load, on CPU 1, keeps 16 echo clients talking (a 64-byte round
# trip each millisecond) and starts RATE programs a second (default 200)
# for SECONDS (default 10). For each backend and each way of starting a
# program (posix_spawn, the clone used when the user changes), once
# without starts (the baseline) and once with them. One line per run,
# with the time each start took on evringd's spawner thread (its debug
# line: until the child's exec; the loop only queues the start), p50, p99
# and max. The programs run on evringd's CPU (they inherit its affinity),
# as they would on a server of one CPU.
set -eu
build=${1:-build}
secs=${2:-10}
rate=${3:-200}
dir=$(mktemp -d "${TMPDIR:-/tmp}/evring-spawn.XXXXXX")
trap 'kill "$pid" 2>/dev/null; rm -rf "$dir"' EXIT INT TERM
user=$(id -un)
cat >"$dir/conf" <<CONF
127.0.0.1:
0 stream tcp nowait $user echo
0 stream tcp nowait.0 $user /bin/echo echo-prog spawned
CONF
pin() { if command -v taskset >/dev/null; then taskset -c "$@"; else shift; "$@"; fi; }
port_of() { sed -n "s/^listen $1 tcp 127.0.0.1:\([0-9]*\) .*/\1/p" "$dir/out"; }

for backend in io_uring epoll; do
	for way in posix_spawn clone; do
		if [ "$way" = clone ]; then export EVRINGD_SPAWN=clone; else unset EVRINGD_SPAWN; fi
		pin 0 "$build/evringd" --backend "$backend" -v -f "$dir/conf" \
			>"$dir/out" 2>"$dir/log" &
		pid=$!
		for _ in $(seq 50); do [ -n "$(port_of echo-prog)" ] && break; sleep 0.1; done
		e=$(port_of echo) p=$(port_of echo-prog)
		for r in 0 "$rate"; do
			: >"$dir/log"
			printf 'backend=%s spawn=%s rate=%s ' "$backend" "$way" "$r"
			pin 1 "$build/bench/spawn-load" "$e" "$p" "$r" "$secs" 16 |
				tr -d '\n'
			sed -n 's/.*(in \([0-9]*\) us, off the loop)$/\1/p' "$dir/log" |
				sort -n | awk '{ v[NR] = $1 } END {
					if (!NR) { printf "\n"; exit }
					i = int(NR * 0.99); if (i < 1) i = 1
					printf " spawner_p50_us=%d spawner_p99_us=%d spawner_max_us=%d\n", v[int((NR + 1) / 2)], v[i], v[NR] }'
		done
		kill "$pid"; wait "$pid" || true
	done
done
