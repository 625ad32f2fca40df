#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh - the benchmark matrix behind `make bench` and
# `make bench-quick`. Never part of the tests.
#
#   bench/run.sh full|quick [BUILD_DIR]
#
# Every server runs pinned to CPU 0 and every client to CPU 1 (when the
# machine has two), one server at a time, on loopback. Each configuration
# runs REPEAT times; results go one JSON object per run to
# $BUILD/bench/raw.jsonl, and bench/report.py turns them into
# bench/results/latest.md and PNG plots. Every process started here is
# stopped here, by PID; every run is bounded in time.
set -euo pipefail

MODE=${1:-full}
BUILD=${2:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
OUT=$BUILD/bench
RAW=$OUT/raw.jsonl
mkdir -p "$OUT" bench/results
: >"$RAW"

if [ "$(nproc)" -ge 2 ]; then
	SRV_CPU="taskset -c 0"
	CLI_CPU="taskset -c 1"
else
	SRV_CPU=""
	CLI_CPU=""
fi

if [ "$MODE" = quick ]; then
	REPEAT=1 DUR=3 WARM=1 WRKDUR=3
	ECHO_CONFIGS="50:64:1 50:64:16"
	ECHO_SERVERS="evringd-io_uring evringd-epoll epoll libuv libevent"
else
	REPEAT=${REPEAT:-3} DUR=${DUR:-5} WARM=1 WRKDUR=${WRKDUR:-5}
	ECHO_CONFIGS="50:64:1 50:64:16 50:4096:1 50:4096:16 500:64:1 500:64:16 500:4096:1 500:4096:16"
	ECHO_SERVERS="evringd-io_uring evringd-epoll epoll libuv libevent"
fi

SPID=""
SPORT=""
SLOG="$OUT/server.log"

log() { printf '%s\n' "$*" >&2; }

# start_server NAME SERVICE: sets SPID and SPORT
start_server() {
	local name=$1 svc=$2 cmd
	case $name in
	evringd-io_uring | evringd-epoll)
		case $svc in
		udp) spec="-s echo/udp:0 --udp-rate off" ;;
		*) spec="-s $svc/tcp:0" ;;
		esac
		# one loop, as the peers have: bench/scaling.sh runs two
		cmd="$BUILD/evringd --backend=${name#evringd-} -q -b 127.0.0.1 $spec --idle-timeout 0 --send-timeout 0 --threads 1"
		;;
	epoll)
		case $svc in
		udp) cmd="$BUILD/peers/epoll_udp_echo -p 0" ;;
		*) cmd="$BUILD/peers/epoll_$svc -p 0" ;;
		esac
		;;
	libuv) cmd="$BUILD/peers/uv_echo -p 0" ;;
	libevent) cmd="$BUILD/peers/event_echo -p 0" ;;
	*) log "unknown server $name"; exit 1 ;;
	esac
	local fifo=$OUT/listen.$$
	rm -f "$fifo"
	mkfifo "$fifo"
	# shellcheck disable=SC2086
	$SRV_CPU $cmd >"$fifo" 2>>"$SLOG" &
	SPID=$!
	local line
	if ! read -r -t 10 line <"$fifo"; then
		log "$name did not start; see $SLOG"
		kill "$SPID" 2>/dev/null || true
		exit 1
	fi
	rm -f "$fifo"
	SPORT=${line##*:}
	SPORT=${SPORT%% *}
}

stop_server() {
	if [ -n "$SPID" ]; then
		kill -TERM "$SPID" 2>/dev/null || true
		wait "$SPID" 2>/dev/null || true
	fi
	SPID=""
}
trap stop_server EXIT

# record LABEL SERVER JSON [COMMAND]: one raw result
record() {
	printf '{"label":"%s","server":"%s","cmd":"%s","run":%s}\n' \
		"$1" "$2" "${4:-}" "$3" >>"$RAW"
}

bench() {
	local label=$1 server=$2
	shift 2
	local r cmd
	cmd="evring-bench $* -d $DUR -w $WARM --server-pid PID 127.0.0.1:PORT"
	for _ in $(seq "$REPEAT"); do
		# shellcheck disable=SC2086
		r=$($CLI_CPU "$BUILD/evring-bench" "$@" -q --json \
			--server-pid "$SPID" -d "$DUR" -w "$WARM" \
			"127.0.0.1:$SPORT") || { log "run failed: $label $server"; continue; }
		record "$label" "$server" "$r" "$cmd"
		log "$label $server: $(printf '%s' "$r" | sed -e 's/.*"ops_per_s":\([0-9.]*\).*"server_cpu_us_per_op":\([0-9.a-z]*\).*/\1 ops\/s, server \2 us\/op/')"
	done
}

# ---- echo --------------------------------------------------------------
for server in $ECHO_SERVERS; do
	start_server "$server" echo
	for cfg in $ECHO_CONFIGS; do
		IFS=: read -r c s p <<<"$cfg"
		bench "echo c=$c s=$s p=$p" "$server" echo -c "$c" -s "$s" -p "$p"
	done
	stop_server
done

# ---- the generator's own cost: evring-bench against a simple epoll client --
start_server epoll echo
for _ in $(seq "$REPEAT"); do
	r=$($CLI_CPU "$BUILD/evring-bench" echo -c 50 -s 64 -p 1 -q --json \
		-d "$DUR" -w "$WARM" "127.0.0.1:$SPORT")
	record "client cost c=50 s=64 p=1" evring-bench "$r" "evring-bench echo -c 50 -s 64 -p 1"
	r=$($CLI_CPU "$BUILD/peers/epoll_client" -c 50 -s 64 -d "$DUR" -w "$WARM" "127.0.0.1:$SPORT")
	record "client cost c=50 s=64 p=1" epoll_client "$r" "epoll_client -c 50 -s 64"
	log "client cost: $(printf '%s' "$r" | grep -o '"client_cpu_us_per_op":[0-9.]*')"
done
stop_server

# ---- connection churn against daytime ------------------------------------
for server in evringd-io_uring evringd-epoll epoll; do
	start_server "$server" daytime
	bench "daytime churn c=20" "$server" connect -c 20
	stop_server
done

# ---- UDP echo -------------------------------------------------------------
for server in evringd-io_uring evringd-epoll epoll; do
	start_server "$server" udp
	bench "udp echo c=50 s=64" "$server" udp -c 50 -s 64
	stop_server
done

# ---- HTTP plaintext with wrk ---------------------------------------------
wrk_run() {
	local server=$1 url=$2 out cpu0 cpu1 req
	for _ in $(seq "$REPEAT"); do
		cpu0=$(cat /proc/"$SPID"/task/*/schedstat | awk '{s+=$1} END {print s}')
		out=$($CLI_CPU wrk -t1 -c100 -d"${WRKDUR}s" --latency "$url")
		cpu1=$(cat /proc/"$SPID"/task/*/schedstat | awk '{s+=$1} END {print s}')
		req=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
		rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ {print $2}')
		p50=$(printf '%s\n' "$out" | awk '$1=="50%" {print $2}')
		p99=$(printf '%s\n' "$out" | awk '$1=="99%" {print $2}')
		errs=$(printf '%s\n' "$out" | awk '/Non-2xx|Socket errors/ {n++} END {print n+0}')
		record "http wrk -t1 -c100" "$server" "$(printf '{"mode":"wrk","ops":%s,"ops_per_s":%s,"server_cpu_us_per_op":%s,"wrk_p50":"%s","wrk_p99":"%s","errors":{"wrk":%s}}' \
			"$req" "$rps" "$(awk -v a="$cpu0" -v b="$cpu1" -v n="$req" 'BEGIN {printf "%.3f", (b-a)/1e3/n}')" "$p50" "$p99" "$errs")" \
			"wrk -t1 -c100 -d${WRKDUR}s --latency http://127.0.0.1:PORT/"
		log "http $server: $rps req/s"
	done
}

if command -v wrk >/dev/null && "$BUILD/evringd" --help | grep -q '^  http'; then
	for server in evringd-io_uring evringd-epoll; do
		start_server "$server" http
		wrk_run "$server" "http://127.0.0.1:$SPORT/"
		stop_server
	done
	if command -v nginx >/dev/null; then
		prefix=$(mktemp -d)
		port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
		sed -e "s|@PORT@|$port|g" -e "s|@PREFIX@|$prefix|g" bench/peers/nginx.conf >"$prefix/nginx.conf"
		# shellcheck disable=SC2086
		$SRV_CPU nginx -c "$prefix/nginx.conf" -p "$prefix" -e "$prefix/error.log" 2>>"$SLOG" &
		SPID=$!
		for _ in $(seq 50); do
			curl -s -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
			sleep 0.1
		done
		wrk_run nginx "http://127.0.0.1:$port/"
		stop_server
		rm -rf "$prefix"
	fi
fi

# ---- memory per idle connection ------------------------------------------
idle_rss() {
	local n=$1 per=$2 procs pids=() rss
	procs=$(((n + per - 1) / per))
	for i in $(seq "$procs"); do
		local cnt=$per
		[ $((i * per)) -gt "$n" ] && cnt=$((n - (i - 1) * per))
		$CLI_CPU "$BUILD/evring-bench" idle -q -c "$cnt" --sources 64 \
			-w 1 -d 4 "127.0.0.1:$SPORT" >/dev/null &
		pids+=($!)
	done
	sleep 3
	rss=$(awk '/VmRSS/ {print $2}' /proc/"$SPID"/status)
	for p in "${pids[@]}"; do wait "$p" || true; done
	echo "$rss"
}

if [ "$MODE" = full ]; then
	for server in evringd-io_uring evringd-epoll; do
		start_server "$server" echo
		r1=$(idle_rss 1000 5000)
		r2=$(idle_rss 15000 5000)
		record "idle memory" "$server" "$(printf '{"mode":"idle","rss_kib_1000":%s,"rss_kib_15000":%s,"bytes_per_conn":%s}' \
			"$r1" "$r2" "$(awk -v a="$r1" -v b="$r2" 'BEGIN {printf "%.0f", (b-a)*1024/14000}')")" \
			"evring-bench idle -c 5000 --sources 64 (3 processes at 15,000)"
		log "idle memory $server: $r1 KiB at 1000, $r2 KiB at 15000"
		stop_server
	done
fi

python3 bench/report.py "$RAW" bench/results "$MODE"
# the one-loop-against-two section of the report (bench/scaling.sh)
if [ "$MODE" = full ] && [ "$(nproc)" -ge 2 ]; then
	stop_server
	bench/scaling.sh "$BUILD"
fi
