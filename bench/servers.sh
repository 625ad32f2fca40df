# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# bench/servers.sh - starting and stopping the one server a benchmark
# measures at a time, shared by run.sh and floor.sh (sourced, not run).
#
# The sourcing script sets OUT (a directory of its own, for the fifo),
# SLOG (where the servers' stderr goes) and SRV_CPU (the command that pins
# a server, e.g. "taskset -c 0", or empty). Then:
#
#   start_listening NAME PIN CMD...  runs CMD (pinned with PIN when not
#                      empty), reads the port from its "listen ..." line:
#                      SPID, SPORT
#   start_nginx        nginx from bench/peers/nginx.conf in a private
#                      directory, on a free port: SPID, SPORT
#   stop_server        ends the server and the clients in CLIENTS, by PID
#   task_ns PID FIELD  schedstat FIELD (1: CPU time, 2: time waiting for
#                      a CPU) summed over the threads of PID, in ns
#
# stop_server runs on EXIT: nothing started here outlives the script.

SPID=""
SPORT=""
NGINX_DIR=""
CLIENTS=() # clients running in the background

log() { printf '%s\n' "$*" >&2; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_listening() {
	local name=$1 pin=$2 line fifo=$OUT/listen.$$
	shift 2
	rm -f "$fifo"
	mkfifo "$fifo"
	# shellcheck disable=SC2086
	$pin "$@" >"$fifo" 2>>"$SLOG" &
	SPID=$!
	if ! read -r -t 10 line <"$fifo"; then
		log "$name did not start; see $SLOG"
		rm -f "$fifo"
		stop_server
		exit 1
	fi
	rm -f "$fifo"
	SPORT=${line##*:}
	SPORT=${SPORT%% *}
}

# nginx answers no "listen" line: it runs in the foreground from a private
# directory and is ready when it answers.
start_nginx() {
	NGINX_DIR=$(mktemp -d)
	SPORT=$(free_port)
	sed -e "s|@PORT@|$SPORT|g" -e "s|@PREFIX@|$NGINX_DIR|g" \
		bench/peers/nginx.conf >"$NGINX_DIR/nginx.conf"
	# shellcheck disable=SC2086
	$SRV_CPU nginx -c "$NGINX_DIR/nginx.conf" -p "$NGINX_DIR" \
		-e "$NGINX_DIR/error.log" 2>>"$SLOG" &
	SPID=$!
	for _ in $(seq 50); do
		curl -s -o /dev/null "http://127.0.0.1:$SPORT/" 2>/dev/null && return 0
		sleep 0.1
	done
	log "nginx did not start; see $NGINX_DIR/error.log"
	exit 1
}

stop_server() {
	local p
	for p in "${CLIENTS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	CLIENTS=()
	if [ -n "$SPID" ]; then
		kill -TERM "$SPID" 2>/dev/null || true
		wait "$SPID" 2>/dev/null || true
	fi
	SPID=""
	if [ -n "$NGINX_DIR" ]; then
		rm -rf "$NGINX_DIR"
		NGINX_DIR=""
	fi
}
trap stop_server EXIT

task_ns() {
	[ -n "$1" ] || { echo 0; return; }
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
		awk -v f="$2" '{ s += $f } END { printf "%.0f\n", s }'
}
