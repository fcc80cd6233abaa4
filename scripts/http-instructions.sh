#!/usr/bin/env bash
# User-space instructions per refresh of a server over HTTP, counted by
# callgrind (repeatable where throughput on a shared, noisy machine is not):
#
#   scripts/http-instructions.sh BIN_DIR NAME PORT [SECONDS]
#
# NAME is `server` or `baseline` in BIN_DIR (built as scripts/http-speed.sh
# says). The server runs under callgrind; after a warm-up the counters are
# zeroed, the load generator drives 4 chained sessions for SECONDS, and the
# total is divided by the refreshes it reports (4 logins ride along).
set -euo pipefail
bin=$1; name=$2; port=$3; secs=${4:-20}
work=$(mktemp -d)
# The baseline has no login rate limit; the server's is off for the
# load generator's logins from one body.
limit=(); [ "$name" = baseline ] || limit=(--login-rate-limit 0)
valgrind --tool=callgrind --callgrind-out-file=$work/cg.out "$bin/$name" --listen 127.0.0.1:$port "${limit[@]}" >$work/out 2>$work/err &
vpid=$!
for _ in $(seq 1 300); do grep -q '^login body:' $work/out 2>/dev/null && break; sleep 0.2; done
sed -nE 's/^login body: (.*)$/\1/p' $work/out | head -1 > $work/login
url="http://127.0.0.1:$port/auth/api/v1/authentication-management/session"
"$bin/loadgen" --url "$url" --login-body $work/login --sessions 2 --duration 3 >/dev/null 2>&1 || true
callgrind_control --zero $vpid >/dev/null
"$bin/loadgen" --url "$url" --login-body $work/login --sessions 4 --duration $secs > $work/load 2>/dev/null
callgrind_control --dump $vpid >/dev/null
sleep 1
kill $vpid; wait $vpid 2>/dev/null || true
refreshes=$(sed -nE 's/^\| refresh requests \| ([0-9]+) \|$/\1/p' $work/load)
total=$(for f in $work/cg.out.*; do callgrind_annotate "$f" 2>/dev/null | sed -nE 's/^([0-9,]+) \(100.0%\).*PROGRAM TOTALS.*/\1/p'; done | tr -d , | sort -n | tail -1)
echo "$name: $refreshes refreshes, $total instructions, $((total / refreshes)) per refresh"
rm -rf "$work"
