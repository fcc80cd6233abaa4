#!/usr/bin/env bash
# CI smoke run of every fuzz target: ~20 s each, seeded from fuzz/seeds.
# Fails if any target crashes, leaks, times out or hits an invariant.
#
#   bash fuzz/smoke.sh            # all targets, 20 s each
#   FUZZ_SECONDS=60 bash fuzz/smoke.sh header
#
# Installs cargo-fuzz if missing. Works on a stable toolchain:
# RUSTC_BOOTSTRAP=1 unlocks the sanitizer flags cargo-fuzz passes. Needs a
# C++ compiler (libfuzzer-sys builds libFuzzer).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(header decode refresh login)
fi

# A fresh machine has no cargo-fuzz: install it (from crates.io) rather
# than skip the smoke run.
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    echo "== fuzz smoke: $target (${seconds}s)"
    # -a: debug assertions (integer overflow checks) on. The first corpus
    # directory collects new inputs; fuzz/seeds/<target> is read only.
    log="$(mktemp)"
    if ! cargo fuzz run -O -a "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -max_len=9000 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1; then
        tail -n 80 "$log" >&2
        echo "fuzz/smoke.sh: $target FAILED (crash, leak, timeout or invariant); input saved under fuzz/artifacts/$target" >&2
        exit 1
    fi
    grep -E '^(Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' "$log" || true
    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
    rm -f "$log"
done
echo "fuzz smoke: all targets clean"
