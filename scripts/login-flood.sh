#!/usr/bin/env bash
# One login body replayed N times against the reference server (finding H1
# of the security review): what each ledger keeps afterwards, measured from
# outside — the server's RSS, the Redis keys under its prefix, the
# PostgreSQL rows in its schema.
#
#   scripts/login-flood.sh STORE [LOGINS]
#
# STORE is `memory`, `redis://…` or `postgres://…`, as --store takes it;
# LOGINS defaults to 10 000. BIN_DIR (default target/debug) holds
# the `server` built with the store's feature, e.g.
#
#   cargo build -p token-refresh-examples --features postgres,redis --bin server
#
# The server runs with the default cap (100 live sessions per user) and
# the login rate limit off (LIMIT_FLAG="" for a server without the flag),
# so every login is answered 200. The logins go over one keep-alive
# connection to 127.0.0.1; the run uses a store prefix / schema of its own
# and removes it afterwards.
set -euo pipefail
store=${1:?usage: login-flood.sh STORE [LOGINS]}
logins=${2:-10000}
bin=${BIN_DIR:-target/debug/examples}
limit_flag=${LIMIT_FLAG---login-rate-limit 0}
name="tr_flood_$$"
work=$(mktemp -d)
server_pid=
trap '[ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

prefix_args=()
[ "$store" = memory ] || prefix_args=(--store-prefix "$name")
# shellcheck disable=SC2086 # limit_flag is a flag and its value, or nothing
"$bin/server" --listen 127.0.0.1:0 $limit_flag --store "$store" "${prefix_args[@]}" >"$work/out" 2>"$work/err" &
server_pid=$!
for _ in $(seq 1 300); do grep -q '^login body:' "$work/out" 2>/dev/null && break; sleep 0.1; done
addr=$(sed -nE 's#^listening on http://(.*)$#\1#p' "$work/out" | head -1)
sed -nE 's/^login body: (.*)$/\1/p' "$work/out" | head -1 >"$work/login.json"
[ -s "$work/login.json" ] && [ -n "$addr" ] || { cat "$work/err" >&2; echo "the server did not start" >&2; exit 1; }

rss() { awk '/^VmRSS/ {print $2}' "/proc/$server_pid/status"; }
flood() { # COUNT
  python3 - "$addr" "$work/login.json" "$1" <<'PY'
import http.client, sys
host, port = sys.argv[1].rsplit(":", 1)
body = open(sys.argv[2], "rb").read().strip()
conn = http.client.HTTPConnection(host, int(port), timeout=30)
codes = {}
for _ in range(int(sys.argv[3])):
    conn.request("POST", "/auth/api/v1/authentication-management/session", body,
                 {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.read()
    codes[response.status] = codes.get(response.status, 0) + 1
print(" ".join(f"{code}x{count}" for code, count in sorted(codes.items())))
PY
}
flood 200 >/dev/null # warm-up: buffers, arenas, the first cap's worth of sessions
rss_before=$(rss)
echo "logins: $(flood "$logins")"
rss_after=$(rss)
echo "server RSS: $rss_before -> $rss_after kB ($(( (rss_after - rss_before) * 1024 / logins )) B per login)"
case "$store" in
  postgres://*|postgresql://*)
    echo "PostgreSQL rows in $name.sessions: $(psql "$store" -tAc "SELECT count(*) FROM $name.sessions")"
    psql "$store" -qc "SET client_min_messages = warning; DROP SCHEMA IF EXISTS $name CASCADE" ;;
  redis://*)
    hostport=${store#redis://}; hostport=${hostport%%/*}
    keys=$(redis-cli -h "${hostport%%:*}" -p "${hostport##*:}" --scan --pattern "$name:*" | wc -l)
    echo "Redis keys under $name: $keys"
    redis-cli -h "${hostport%%:*}" -p "${hostport##*:}" --scan --pattern "$name:*" | xargs -r -n 500 redis-cli -h "${hostport%%:*}" -p "${hostport##*:}" DEL >/dev/null ;;
esac
