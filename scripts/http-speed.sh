#!/usr/bin/env bash
# Refreshes/s over HTTP: the reference server against the baseline (what a
# team writes instead: axum + jsonwebtoken/aws-lc + a mutexed map,
# tools/src/bin/baseline.rs), in alternating rounds, with the load generator
# (tools/src/bin/loadgen.rs: SESSIONS chained refresh sessions for SECONDS each
# round).
#
#   scripts/http-speed.sh [ROUNDS] [SECONDS] [SESSIONS]
#
# PIN selects where the processes run:
#   PIN=shared (default)  server and load generator share every core, as a
#                         small deployment would; the load generator's and
#                         the kernel's CPU time competes with the server's.
#   PIN=split             the servers are pinned to core SERVER_CPU (0) and
#                         the load generator to LOAD_CPU (1) with `taskset`,
#                         so the ratio measures the servers' own cost per
#                         refresh (each server gets one whole core). Needs
#                         util-linux's taskset and at least two cores.
#
# BIN_DIR (default target/release) holds `server`, `baseline` and
# `loadgen`; build them first, with or without the aws-lc feature:
#
#   cargo build --release -p token-refresh-examples -p token-refresh-tools [--features token-refresh-examples/aws-lc] --bin server --bin baseline --bin loadgen
#
# Prints each round's figures and the ratio server / baseline of the means.
set -euo pipefail
rounds=${1:-3}
seconds=${2:-10}
sessions=${3:-16}
bin=${BIN_DIR:-target/release/examples}
pin=${PIN:-shared}
server_on=(); load_on=()
case "$pin" in
  shared) ;;
  split)
    command -v taskset >/dev/null || { echo "PIN=split needs taskset (util-linux)" >&2; exit 1; }
    server_on=(taskset -c "${SERVER_CPU:-0}"); load_on=(taskset -c "${LOAD_CPU:-1}") ;;
  *) echo "PIN must be shared or split, not $pin" >&2; exit 1 ;;
esac
echo "mode: PIN=$pin${server_on:+ (servers on CPU ${SERVER_CPU:-0}, load generator on CPU ${LOAD_CPU:-1})}"
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

start() { # NAME BINARY PORT [FLAGS...]
  "${server_on[@]}" "$2" --listen "127.0.0.1:$3" "${@:4}" >"$work/$1.out" 2>"$work/$1.err" &
  pids+=($!)
  for _ in $(seq 1 100); do grep -q '^login body:' "$work/$1.out" 2>/dev/null && break; sleep 0.1; done
  sed -nE 's/^login body: (.*)$/\1/p' "$work/$1.out" | head -1 >"$work/$1.login"
  [ -s "$work/$1.login" ] || { cat "$work/$1.err" >&2; echo "$1 printed no login body" >&2; exit 1; }
}
# Rounds of logins from one body: the per-user login rate limit is off.
# SERVER_FLAGS adds flags to the server (e.g. --no-verify-by-resigning).
# shellcheck disable=SC2086
start server "$bin/server" 18111 --login-rate-limit 0 ${SERVER_FLAGS:-}
start baseline "$bin/baseline" 18112

load() { # NAME PORT -> refreshes/s
  "${load_on[@]}" "$bin/loadgen" --url "http://127.0.0.1:$2/auth/api/v1/authentication-management/session" \
    --login-body "$work/$1.login" --sessions "$sessions" --duration "$seconds" >"$work/$1.load" 2>/dev/null
  sed -nE 's/^\| refreshes\/s \| ([0-9]+) \|$/\1/p' "$work/$1.load"
}
# A short warm-up of each.
seconds_saved=$seconds; seconds=2; load server 18111 >/dev/null; load baseline 18112 >/dev/null; seconds=$seconds_saved

sum_server=0; sum_baseline=0
for round in $(seq 1 "$rounds"); do
  s=$(load server 18111); b=$(load baseline 18112)
  echo "round $round: server $s refreshes/s, baseline $b refreshes/s, ratio $(awk "BEGIN {printf \"%.3f\", $s / $b}")"
  sum_server=$((sum_server + s)); sum_baseline=$((sum_baseline + b))
done
echo "mean: server $((sum_server / rounds)), baseline $((sum_baseline / rounds)), ratio $(awk "BEGIN {printf \"%.3f\", $sum_server / $sum_baseline}")"
