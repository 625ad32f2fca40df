#!/bin/bash
# SPDX-License-Identifier: MIT
#
# bench/run.sh - the benchmark matrix behind `make bench` and
# `make bench-quick`. Never part of the tests.
#
#   bench/run.sh full|quick [BUILD_DIR]
#
# full: REPEAT rounds (default 5); the report and its plots go to
# bench/results/, the committed results. quick: one short round of a
# subset; everything goes to BUILD_DIR/bench/quick/, never to
# bench/results/. Raw results: BUILD_DIR/bench/MODE/raw.jsonl, a first line
# describing the run, then one JSON object per measurement;
# bench/report.py turns them into latest.md and PNG plots.
#
# Rounds are interleaved: each round runs every part against every server
# once (servers in a rotated order), so that a noisy minute spreads over
# all servers instead of spoiling one. Every server runs pinned to CPU 0
# and every client to CPU 1 (when the machine has two); each measurement
# records how much of those CPUs other processes used meanwhile (from
# /proc/stat, less the server's and the client's own CPU time), and the
# report marks it noisy above NOISE_PCT. Every process started here is
# stopped here, by PID; every run is bounded in time; loopback only.
set -euo pipefail

MODE=${1:-full}
BUILD=${2:-build}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
case $MODE in
full) OUT=$BUILD/bench/full RESULTS=bench/results ;;
quick) OUT=$BUILD/bench/quick RESULTS=$BUILD/bench/quick ;;
*) echo "usage: bench/run.sh full|quick [BUILD_DIR]" >&2; exit 2 ;;
esac
RAW=$OUT/raw.jsonl
SLOG=$OUT/server.log
mkdir -p "$OUT" "$RESULTS"
: >"$RAW"
: >"$SLOG"

NOISE_PCT=${NOISE_PCT:-5}
if [ "$MODE" = quick ]; then
	REPEAT=${REPEAT:-1} DUR=${DUR:-2} WARM=1 WRKDUR=${WRKDUR:-2}
	ECHO_CONFIGS="50:64:1 50:64:16"
	LOOP_CONFIGS="50:64:16"
else
	REPEAT=${REPEAT:-5} DUR=${DUR:-5} WARM=1 WRKDUR=${WRKDUR:-5}
	ECHO_CONFIGS="50:64:1 50:64:16 50:4096:1 50:4096:16 500:64:1 500:64:16 500:4096:1 500:4096:16"
	LOOP_CONFIGS="50:64:1 50:64:16"
fi
ECHO_SERVERS="evringd-io_uring evringd-epoll epoll libuv libevent"
CHURN_SERVERS="evringd-io_uring evringd-epoll epoll"
UDP_SERVERS="evringd-io_uring evringd-epoll epoll"
HTTP_SERVERS="evringd-io_uring evringd-epoll nginx"
COST_CLIENTS="evring-bench-io_uring evring-bench-epoll epoll_client"
IDLE_SERVERS="evringd-io_uring evringd-epoll"

NCPU=$(nproc)
if [ "$NCPU" -ge 2 ]; then
	SRV_CPU="taskset -c 0" CLI_CPU="taskset -c 1" BENCH_CPUS="0 1"
else
	SRV_CPU="" CLI_CPU="" BENCH_CPUS="0"
fi
ALL_CPUS=$(seq -s ' ' 0 $((NCPU - 1)))
HZ=$(getconf CLK_TCK)
# Where the kernel accounts interrupt time apart, a task's CPU time leaves
# out the softirq work (the loopback's TCP) done in its context: that work
# is ours, not others'.
IRQ_APART=0
if { zcat /proc/config.gz 2>/dev/null || cat "/boot/config-$(uname -r)" 2>/dev/null; } |
	grep -q '^CONFIG_IRQ_TIME_ACCOUNTING=y'; then
	IRQ_APART=1
fi
THREADS=0 # evringd --threads N for the 1-vs-N-loops part, when it has it
if "$BUILD/evringd" --help 2>&1 | grep -q -- '--threads'; then
	THREADS=$((NCPU < 4 ? NCPU : 4))
	[ "$THREADS" -ge 2 ] || THREADS=0
fi
# 15,000 idle connections from one generator, if the descriptors allow
IDLE_CONNS=$(ulimit -Hn)
[ "$IDLE_CONNS" != unlimited ] || IDLE_CONNS=15200
IDLE_CONNS=$((IDLE_CONNS - 200))
[ "$IDLE_CONNS" -le 15000 ] || IDLE_CONNS=15000

# shellcheck source=bench/servers.sh
. bench/servers.sh

# ---- servers ---------------------------------------------------------------

# server_cmd NAME SERVICE [THREADS]: the command line of a server
server_cmd() {
	local name=$1 svc=$2 threads=${3:-} spec
	case $name in
	evringd-io_uring | evringd-epoll)
		case $svc in
		udp) spec="-s echo/udp:0 --udp-rate off" ;;
		*) spec="-s $svc/tcp:0" ;;
		esac
		# one loop (as the peers have) unless THREADS says otherwise
		spec="$spec --threads ${threads:-1}"
		echo "$BUILD/evringd --backend=${name#evringd-} -q -b 127.0.0.1 $spec --idle-timeout 0 --send-timeout 0"
		;;
	epoll)
		case $svc in
		udp) echo "$BUILD/peers/epoll_udp_echo -p 0" ;;
		*) echo "$BUILD/peers/epoll_$svc -p 0" ;;
		esac
		;;
	libuv) echo "$BUILD/peers/uv_echo -p 0" ;;
	libevent) echo "$BUILD/peers/event_echo -p 0" ;;
	*) log "unknown server $name"; exit 1 ;;
	esac
}

# start_server NAME SERVICE [THREADS]: sets SPID and SPORT. THREADS:
# evringd's loops, unpinned (they need more than one CPU).
start_server() {
	local name=$1 svc=$2 threads=${3:-} pin=$SRV_CPU
	[ "$name" != nginx ] || { start_nginx; return; }
	[ -z "$threads" ] || pin=""
	# shellcheck disable=SC2046
	start_listening "$name" "$pin" $(server_cmd "$name" "$svc" "$threads")
}

# ---- noise -------------------------------------------------------------------

# cpu_jiffies "CPUS": busy, steal and total jiffies of those CPUs. Busy
# leaves out interrupt time where the kernel accounts it apart (see
# IRQ_APART).
cpu_jiffies() {
	awk -v cpus=" $1 " -v apart="$IRQ_APART" '
		/^cpu[0-9]/ {
			n = substr($1, 4)
			if (index(cpus, " " n " ") == 0) next
			busy += $2 + $3 + $4 + (apart ? 0 : $7 + $8)
			steal += $9
			total += $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9
		}
		END { printf "%d %d %d\n", busy, steal, total }' /proc/stat
}

# The CPU time of this shell's finished children (the clients), in ns.
# `times` must run in this shell, never in a $(...) subshell: a subshell
# is a new process whose children so far are none, and would report 0,
# so that a client's own CPU would count as others' noise.
children_ns() {
	times >"$OUT/times"
	CHILDREN_NS=$(awk 'NR == 2 {
		split($1, u, /[ms]/); split($2, s, /[ms]/)
		printf "%.0f\n", ((u[1] + s[1]) * 60 + u[2] + s[2]) * 1e9 }' "$OUT/times")
}

# noise_begin / noise_end CPUS: around one measurement, both called in
# this shell (not in $(...)); noise_end sets NOISE to a JSON object:
# others_pct, the share of the CPUs' time that others used (their busy
# time less the server's and the clients' CPU time); steal_pct (the
# hypervisor's); server_wait_pct, how long the server waited for a
# CPU; elsewhere_pct, how busy the remaining CPUs were.
noise_begin() {
	read -r N_B0 N_S0 N_T0 < <(cpu_jiffies "$1")
	read -r N_OB0 _ N_OT0 < <(cpu_jiffies "$(other_cpus "$1")")
	N_SRV0=$(task_ns "$SPID" 1)
	N_WAIT0=$(task_ns "$SPID" 2)
	children_ns
	N_CH0=$CHILDREN_NS
}

noise_end() {
	local b1 s1 t1 ob1 ot1 srv1 wait1 ch1
	read -r b1 s1 t1 < <(cpu_jiffies "$1")
	read -r ob1 _ ot1 < <(cpu_jiffies "$(other_cpus "$1")")
	srv1=$(task_ns "$SPID" 1)
	wait1=$(task_ns "$SPID" 2)
	children_ns
	ch1=$CHILDREN_NS
	NOISE=$(awk -v b=$((b1 - N_B0)) -v s=$((s1 - N_S0)) -v t=$((t1 - N_T0)) \
		-v ob=$((ob1 - N_OB0)) -v ot=$((ot1 - N_OT0)) \
		-v srv=$((srv1 - N_SRV0)) -v wt=$((wait1 - N_WAIT0)) \
		-v ch=$((ch1 - N_CH0)) -v hz="$HZ" -v ncpu=$(($(wc -w <<<"$1"))) \
		-v lim="$NOISE_PCT" 'BEGIN {
		ns = 1e9 / hz
		others = t ? (b * ns - srv - ch) / (t * ns) * 100 : 0
		if (others < 0) others = 0
		steal = t ? s / t * 100 : 0
		wall = t * ns / ncpu
		waitp = wall ? wt / wall * 100 : 0
		printf "{\"others_pct\":%.1f,\"steal_pct\":%.1f,\"server_wait_pct\":%.1f,", others, steal, waitp
		if (ot) printf "\"elsewhere_pct\":%.1f,", ob / ot * 100
		else printf "\"elsewhere_pct\":null,"
		printf "\"noisy\":%s}\n", (others > lim || steal > lim) ? "true" : "false"
	}')
}

other_cpus() {
	local c out=""
	for c in $ALL_CPUS; do
		case " $1 " in *" $c "*) ;; *) out="$out $c" ;; esac
	done
	echo "$out"
}

# ---- measurements -------------------------------------------------------------

ROUND=0

# record LABEL SERVER RUN_JSON NOISE_JSON COMMAND: one raw result
record() {
	local cmd=${5//\\/\\\\}
	printf '{"label":"%s","server":"%s","round":%d,"cmd":"%s","noise":%s,"run":%s}\n' \
		"$1" "$2" "$ROUND" "$cmd" "$4" "$3" >>"$RAW"
}

summary() {
	printf '%s' "$1" | awk '{
		ops = $0; sub(/.*"ops_per_s":/, "", ops); sub(/[,}].*/, "", ops)
		cpu = $0; sub(/.*"server_cpu_us_per_op":/, "", cpu); sub(/[,}].*/, "", cpu)
		printf "%s ops/s, server %s us/op", ops, cpu }'
}

# bench LABEL SERVER ARGS...: one evring-bench run against the server
bench() {
	local label=$1 server=$2 r noise
	shift 2
	noise_begin "$BENCH_CPUS"
	# shellcheck disable=SC2086
	if ! r=$($CLI_CPU "$BUILD/evring-bench" "$@" -q --json \
		--server-pid "$SPID" -d "$DUR" -w "$WARM" "127.0.0.1:$SPORT"); then
		log "  $label $server: nothing succeeded (see $SLOG)"
		return 0
	fi
	noise_end "$BENCH_CPUS"
	noise=$NOISE
	record "$label" "$server" "$r" "$noise" \
		"evring-bench $* -d $DUR -w $WARM --server-pid PID 127.0.0.1:PORT"
	log "  $label $server: $(summary "$r")"
}

# wrk_run SERVER: HTTP plaintext with wrk, server CPU from schedstat
wrk_run() {
	local server=$1 out cpu0 cpu1 req rps p50 p99 errs noise
	noise_begin "$BENCH_CPUS"
	cpu0=$(task_ns "$SPID" 1)
	# shellcheck disable=SC2086
	out=$($CLI_CPU wrk -t1 -c100 -d"${WRKDUR}s" --latency "http://127.0.0.1:$SPORT/")
	cpu1=$(task_ns "$SPID" 1)
	noise_end "$BENCH_CPUS"
	noise=$NOISE
	req=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
	rps=$(printf '%s\n' "$out" | awk '/Requests\/sec/ {print $2}')
	p50=$(printf '%s\n' "$out" | awk '$1=="50%" {print $2}')
	p99=$(printf '%s\n' "$out" | awk '$1=="99%" {print $2}')
	errs=$(printf '%s\n' "$out" | awk '/Non-2xx|Socket errors/ {n++} END {print n+0}')
	if [ -z "$req" ] || [ "$req" = 0 ]; then
		log "  http $server: no request answered"
		return 0
	fi
	record "http wrk -t1 -c100" "$server" "$(printf '{"mode":"wrk","ops":%s,"ops_per_s":%s,"server_cpu_us_per_op":%s,"wrk_p50":"%s","wrk_p99":"%s","errors":{"wrk":%s}}' \
		"$req" "$rps" "$(awk -v a="$cpu0" -v b="$cpu1" -v n="$req" 'BEGIN {printf "%.3f", (b-a)/1e3/n}')" "$p50" "$p99" "$errs")" \
		"$noise" "wrk -t1 -c100 -d${WRKDUR}s --latency http://127.0.0.1:PORT/"
	log "  http $server: $rps req/s"
}

# client_cost CLIENT: the generator's own CPU per message, against epoll
client_cost() {
	local client=$1 r noise cmd json=""
	case $client in
	evring-bench-*)
		cmd="evring-bench echo --backend ${client#evring-bench-} -c 50 -s 64 -p 1 -d $DUR -w $WARM"
		json="-q --json"
		;;
	epoll_client) cmd="peers/epoll_client -c 50 -s 64 -d $DUR -w $WARM" ;;
	esac
	noise_begin "$BENCH_CPUS"
	# shellcheck disable=SC2086
	r=$($CLI_CPU "$BUILD"/$cmd $json "127.0.0.1:$SPORT") ||
		{ log "  client cost $client failed"; return 0; }
	noise_end "$BENCH_CPUS"
	noise=$NOISE
	record "client cost c=50 s=64 p=1" "$client" "$r" "$noise" "$cmd 127.0.0.1:PORT"
	log "  client cost $client: $(printf '%s' "$r" | grep -o '"client_cpu_us_per_op":[0-9.]*')"
}

# loops THREADS C S P: evringd with THREADS loops, loaded by as many
# evring-bench processes at once; all unpinned. Each client measures the
# server's CPU over its own interval; the intervals coincide, so the
# server's CPU per message is that time over the clients' messages.
loops() {
	local t=$1 c=$2 s=$3 p=$4 i files=() runs="" noise
	noise_begin "$ALL_CPUS"
	for i in $(seq "$THREADS"); do
		files+=("$OUT/loops.$i")
		"$BUILD/evring-bench" echo -c "$c" -s "$s" -p "$p" -q --json \
			--server-pid "$SPID" -d "$DUR" -w "$WARM" \
			"127.0.0.1:$SPORT" >"$OUT/loops.$i" &
		CLIENTS+=($!)
	done
	for i in "${CLIENTS[@]}"; do wait "$i" || true; done
	CLIENTS=()
	noise_end "$ALL_CPUS"
	noise=$NOISE
	for i in "${files[@]}"; do
		[ -s "$i" ] && runs="$runs${runs:+,}$(cat "$i")"
		rm -f "$i"
	done
	record "loops c=$c s=$s p=$p" "threads=$t" \
		"{\"mode\":\"loops\",\"threads\":$t,\"clients\":[$runs]}" "$noise" \
		"$THREADS x evring-bench echo -c $c -s $s -p $p -d $DUR -w $WARM --server-pid PID 127.0.0.1:PORT"
	log "  loops threads=$t c=$c s=$s p=$p: done"
}

idle_run() {
	local server=$1 r noise
	noise_begin "$BENCH_CPUS"
	# shellcheck disable=SC2086
	r=$($CLI_CPU "$BUILD/evring-bench" idle -q --json -c "$IDLE_CONNS" \
		--sources 64 -w 3 -d 2 --server-pid "$SPID" "127.0.0.1:$SPORT") ||
		{ log "  idle $server: failed"; return 0; }
	noise_end "$BENCH_CPUS"
	noise=$NOISE
	record "idle memory" "$server" "$r" "$noise" \
		"evring-bench idle -c $IDLE_CONNS --sources 64 -w 3 -d 2 --server-pid PID 127.0.0.1:PORT"
	log "  idle $server: $(printf '%s' "$r" | grep -o '"server_bytes_per_conn":[0-9.a-z]*')"
}

# rotate K "WORDS": the words, starting at the K-th (mod their count)
rotate() {
	local k=$1 w i
	read -ra w <<<"$2"
	for ((i = 0; i < ${#w[@]}; i++)); do
		printf '%s ' "${w[(i + k) % ${#w[@]}]}"
	done
}

# ---- the run -----------------------------------------------------------------

meta() {
	local cpu commit
	cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
	# "-dirty" when the sources differ from the commit; the results this
	# run replaces are not sources
	commit=$(git describe --always 2>/dev/null || echo unknown)
	git diff --quiet HEAD -- . ':!bench/results' 2>/dev/null ||
		commit="$commit-dirty"
	printf '{"meta":{"mode":"%s","rounds":%d,"dur":%s,"warm":%s,"wrkdur":%s,"date":"%s","commit":"%s","kernel":"%s","cpu":"%s","ncpu":%d,"pinned":%s,"noise_pct":%s,"threads":%d,"irq_apart":%d,"idle_conns":%d}}\n' \
		"$MODE" "$REPEAT" "$DUR" "$WARM" "$WRKDUR" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
		"$commit" "$(uname -r)" "${cpu:-unknown}" "$NCPU" \
		"$([ -n "$SRV_CPU" ] && echo true || echo false)" "$NOISE_PCT" \
		"$THREADS" "$IRQ_APART" "$IDLE_CONNS" >>"$RAW"
}

round() {
	local k=$((ROUND - 1)) server client cfg c s p t
	for server in $(rotate $k "$ECHO_SERVERS"); do
		start_server "$server" echo
		for cfg in $ECHO_CONFIGS; do
			IFS=: read -r c s p <<<"$cfg"
			bench "echo c=$c s=$s p=$p" "$server" echo -c "$c" -s "$s" -p "$p"
		done
		stop_server
	done
	start_server epoll echo
	for client in $(rotate $k "$COST_CLIENTS"); do
		client_cost "$client"
	done
	stop_server
	for server in $(rotate $k "$CHURN_SERVERS"); do
		start_server "$server" daytime
		bench "daytime churn c=20" "$server" connect -c 20
		stop_server
	done
	# connect, send a line, read its echo, close: a connection that talks
	for server in $(rotate $k "$CHURN_SERVERS"); do
		start_server "$server" echo
		bench "echo churn c=20" "$server" connect -c 20 \
			--request 'hello\n' --close-after 6
		stop_server
	done
	for server in $(rotate $k "$UDP_SERVERS"); do
		start_server "$server" udp
		bench "udp echo c=50 s=64" "$server" udp -c 50 -s 64
		stop_server
	done
	if command -v wrk >/dev/null && "$BUILD/evringd" --help | grep -q '^  http'; then
		for server in $(rotate $k "$HTTP_SERVERS"); do
			[ "$server" != nginx ] || command -v nginx >/dev/null || continue
			start_server "$server" http
			wrk_run "$server"
			stop_server
		done
	fi
	if [ "$THREADS" -gt 0 ]; then
		for t in $(rotate $k "1 $THREADS"); do
			start_server evringd-io_uring echo "$t"
			for cfg in $LOOP_CONFIGS; do
				IFS=: read -r c s p <<<"$cfg"
				loops "$t" "$c" "$s" "$p"
			done
			stop_server
		done
	fi
	if [ "$MODE" = full ]; then
		for server in $(rotate $k "$IDLE_SERVERS"); do
			start_server "$server" echo
			idle_run "$server"
			stop_server
		done
	fi
}

meta
[ "$THREADS" -gt 0 ] || log "evringd has no --threads: no 1-vs-N-loops part"
for ROUND in $(seq "$REPEAT"); do
	log "round $ROUND of $REPEAT"
	round
done
rm -f "$OUT/times"
python3 bench/report.py "$RAW" "$RESULTS"
# the Scaling section of the report: steered loops, MSG_RING against
# eventfd, the system calls of two loops (bench/scaling.sh)
# (SCALING=0 leaves it out: the section of the last run stays as it is)
if [ "$MODE" = full ] && [ "$NCPU" -ge 2 ] && [ "${SCALING:-1}" != 0 ]; then
	stop_server
	bench/scaling.sh "$BUILD"
fi
