#!/usr/bin/env bash
# Where the CPU goes per refresh over HTTP: one server under the load
# generator (16 chained sessions), profiled system-wide with the kernel's
# software clock (`perf record -a -e cpu-clock`: this machine has no
# hardware counters), and every sample put in one bucket: the server's
# Ed25519 and SHA-512, the server's other user-space code, the server's
# kernel time, the load generator, idle, the rest. Each bucket is printed
# as µs of CPU per refresh (its share of the two cores ÷ refreshes/s).
#
#   scripts/http-profile.sh BIN_DIR NAME PORT [SECONDS]
#
# NAME is `server` or `baseline` in BIN_DIR (built as for
# scripts/http-speed.sh), which also holds `loadgen`. Needs `perf`
# (Debian's linux-perf) and root or a permissive perf_event_paranoid.
set -euo pipefail
bin=$1
name=$2
port=$3
seconds=${4:-10}
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"' EXIT

# The baseline has no login rate limit; the server's is off for the
# load generator's logins from one body.
limit=(); [ "$name" = baseline ] || limit=(--login-rate-limit 0)
"$bin/$name" --listen "127.0.0.1:$port" "${limit[@]}" >"$work/out" 2>"$work/err" &
server=$!
pids+=("$server")
for _ in $(seq 1 100); do grep -q '^login body:' "$work/out" 2>/dev/null && break; sleep 0.1; done
sed -nE 's/^login body: (.*)$/\1/p' "$work/out" | head -1 >"$work/login"
[ -s "$work/login" ] || { cat "$work/err" >&2; echo "$name printed no login body" >&2; exit 1; }

"$bin/loadgen" --url "http://127.0.0.1:$port/auth/api/v1/authentication-management/session" \
  --login-body "$work/login" --sessions 16 --duration $((seconds + 4)) >"$work/load" 2>/dev/null &
load=$!
pids+=("$load")
sleep 2
perf record -a -e cpu-clock -F 499 -o "$work/perf.data" -- sleep "$seconds" >/dev/null 2>&1
# perf reports threads; note whose they are while both processes run.
server_threads=$(ls /proc/"$server"/task | tr '\n' ' ')
load_threads=$(ls /proc/"$load"/task | tr '\n' ' ')
wait "$load"
rate=$(sed -nE 's/^\| refreshes\/s \| ([0-9]+) \|$/\1/p' "$work/load")

perf report -i "$work/perf.data" --sort pid,dso,sym --no-children -g none --stdio \
  -F overhead,pid,dso,sym 2>/dev/null | grep -v '^#' | grep -v '^$' |
  awk -v server_threads="$server_threads" -v load_threads="$load_threads" -v rate="$rate" -v name="$name" '
  BEGIN {
    n = split(server_threads, t, " "); for (i = 1; i <= n; i++) is_server[t[i]] = 1
    n = split(load_threads, t, " "); for (i = 1; i <= n; i++) is_load[t[i]] = 1
  }
  {
    share = $1; sub(/%/, "", share)
    split($2, who, ":"); tid = who[1]
    if (tid == 0) bucket = "idle"
    else if (is_server[tid] && /25519|sha512|sha2::|SHA512|subtle::/) bucket = "server: Ed25519 and SHA-512"
    else if (is_server[tid] && $3 == "[kernel.kallsyms]") bucket = "server: kernel"
    else if (is_server[tid]) bucket = "server: other user space"
    else if (is_load[tid]) bucket = "load generator"
    else bucket = "other processes"
    sum[bucket] += share
  }
  END {
    printf "%s: %d refreshes/s\n", name, rate
    order = "server: Ed25519 and SHA-512|server: other user space|server: kernel|load generator|idle|other processes"
    n = split(order, buckets, "|")
    for (i = 1; i <= n; i++) {
      b = buckets[i]
      printf "  %-30s %5.1f %%  %6.1f µs/refresh\n", b, sum[b], sum[b] / 100 * 2e6 / rate
      if (b ~ /^server/) server_total += sum[b]
    }
    printf "  %-30s %5.1f %%  %6.1f µs/refresh\n", "server, all", server_total, server_total / 100 * 2e6 / rate
  }'
