#!/usr/bin/env bash
# Measures the session ledger from outside the release server: refreshes/s
# over HTTP (tools/src/bin/loadgen.rs), the server's RSS growth per rotation, and
# what the shared backends hold per session (PostgreSQL rows, Redis keys).
#
#   scripts/measure-ledger.sh STORE [SESSIONS] [SECONDS]
#
# STORE is `memory`, `postgres://…`, `redis://…` or `redis-cluster://…`, as
# the server's --store takes it. BIN_DIR (default target/release)
# names the directory holding `server` and `loadgen`; build them first:
#
#   cargo build --release -p token-refresh-examples -p token-refresh-tools --features token-refresh-examples/postgres,token-refresh-examples/redis --bin server --bin loadgen
#
# SERVER_ARGS adds server flags (all sessions are the demo user's, so more
# than 100 need e.g. SERVER_ARGS="--max-sessions-per-user 10000"). The run
# uses a store prefix / schema of its own and removes it afterwards.
# Traffic goes to 127.0.0.1 only, bounded by SECONDS (default 10).
set -euo pipefail
store=${1:?usage: measure-ledger.sh STORE [SESSIONS] [SECONDS]}
sessions=${2:-32}
seconds=${3:-10}
bin=${BIN_DIR:-target/release/examples}
port=${PORT:-18099}
name="tr_measure_$$"
work=$(mktemp -d)
trap 'kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

prefix_args=()
[ "$store" = memory ] || prefix_args=(--store-prefix "$name")
# shellcheck disable=SC2086 # SERVER_ARGS is a list of flags
"$bin/server" --listen "127.0.0.1:$port" --login-rate-limit 0 --store "$store" "${prefix_args[@]}" ${SERVER_ARGS:-} >"$work/out" 2>"$work/err" &
server_pid=$!
for _ in $(seq 1 100); do grep -q '^login body:' "$work/out" 2>/dev/null && break; sleep 0.1; done
sed -nE 's/^login body: (.*)$/\1/p' "$work/out" | head -1 >"$work/login.json"
[ -s "$work/login.json" ] || { cat "$work/err" >&2; echo "the server printed no login body" >&2; exit 1; }

rss() { awk '/^VmRSS/ {print $2 * 1024}' "/proc/$server_pid/status"; }
load() {
  "$bin/loadgen" --url "http://127.0.0.1:$port/auth/api/v1/authentication-management/session" \
    --login-body "$work/login.json" --sessions "$sessions" --duration "$1"
}
# A first, short run warms up what does not grow with rotations (the
# connections' buffers, the allocator's arenas, the first sessions); the RSS
# growth of the measured run is then what the rotations keep.
load 3 >/dev/null
rss_before=$(rss)
load "$seconds" | tee "$work/load"
rss_after=$(rss)
refreshes=$(sed -nE "s/^\| refresh requests \| ([0-9]+) \|$/\1/p" "$work/load")
echo "refresh requests: $refreshes"
echo "server RSS over the measured run: $rss_before -> $rss_after bytes ($(( (rss_after - rss_before) / refreshes )) B per refresh)"

case "$store" in
  postgres://*|postgresql://*)
    psql "$store" -tAc "SELECT 'rows: ' || (SELECT count(*) FROM information_schema.tables WHERE table_schema = '$name') || ' tables, ' ||
      string_agg(table_name || '=' || (xpath('/row/c/text()', query_to_xml('SELECT count(*) AS c FROM $name.' || table_name, false, true, '')))[1]::text, ' ')
      FROM information_schema.tables WHERE table_schema = '$name'"
    psql "$store" -qc "DROP SCHEMA IF EXISTS $name CASCADE" ;;
  redis://*)
    hostport=${store#redis://}; hostport=${hostport%%/*}
    keys=$(redis-cli -h "${hostport%:*}" -p "${hostport#*:}" --scan --pattern "$name:*" | wc -l)
    echo "redis keys under $name: $keys"
    redis-cli -h "${hostport%:*}" -p "${hostport#*:}" --scan --pattern "$name:*" | xargs -r -n 500 redis-cli -h "${hostport%:*}" -p "${hostport#*:}" del >/dev/null ;;
  redis-cluster://*)
    nodes=${store#redis-cluster://}; first=${nodes%%,*}
    keys=$(redis-cli -c -h "${first%:*}" -p "${first#*:}" --cluster call "$first" EVAL "return #redis.call('KEYS', ARGV[1])" 0 "$name*" 2>/dev/null | awk -F': ' '/^[0-9]/ {s += $2} END {print s + 0}')
    echo "redis cluster keys under $name: $keys"
    redis-cli -h "${first%:*}" -p "${first#*:}" --cluster call "$first" EVAL "for _, k in ipairs(redis.call('KEYS', ARGV[1])) do redis.call('DEL', k) end return 0" 0 "$name*" >/dev/null 2>&1 || true ;;
esac
