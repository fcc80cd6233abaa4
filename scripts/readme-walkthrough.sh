#!/usr/bin/env bash
# Runs the README quick start the way a user would:
#
#   1. `cargo run -p token-refresh-examples --bin server -- --listen 127.0.0.1:0`, reading the bound
#      address and the demo login body from its stdout;
#   2. checks that the walkthrough the server prints is the one the document
#      shows (only the address and the login body differ);
#   3. runs the document's curl block and checks every status
#      (login 200, refresh 200, me 200, logout 200, then 401, 401);
#   4. stops the server with SIGTERM and checks it exits cleanly;
#   5. checks `--store` errors exit with code 2 and never print the URL or
#      its password: an unknown scheme, a redis:// URL in a build without the
#      `redis` feature, and (built with all features) unreachable redis:// and
#      postgres:// servers;
#   6. runs the document's own-key block (openssl-made signing key and user)
#      and logs in with it, checking that the JWKS publishes the PEM's public
#      key;
#   7. runs the document's key rotation block: every server it starts comes
#      up, and its JWKS lists the keys the step names;
#   8. runs the walkthrough again on a Redis and on a PostgreSQL ledger
#      (`--store`, built with all features), under a throw-away
#      `--store-prefix` it removes afterwards.
#
# Needs cargo, curl, sed, od and openssl; step 8 needs Redis and PostgreSQL
# (TOKEN_REFRESH_REDIS_URL, TOKEN_REFRESH_POSTGRES_URL, defaults on
# 127.0.0.1 as in the tests), redis-cli and psql. EXAMPLE=actix or
# EXAMPLE=hyper runs the same walkthrough against the other stacks.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
doc="$root/README.md"
example=${EXAMPLE:-server}

work=$(mktemp -d)
server_pid=
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid"
    wait "$server_pid" || true
  fi
  server_pid=
}
redis_url=${TOKEN_REFRESH_REDIS_URL:-redis://127.0.0.1:6379/0}
postgres_url=${TOKEN_REFRESH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
store_prefix="tr_walkthrough_$$_${RANDOM}"
used_store=
cleanup() {
  stop_server
  if [ -n "$used_store" ]; then
    redis-cli -u "$redis_url" --scan --pattern "$store_prefix:*" 2>/dev/null | xargs -r redis-cli -u "$redis_url" del >/dev/null 2>&1 || true
    psql -q "$postgres_url" -c "DROP SCHEMA IF EXISTS $store_prefix CASCADE" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "readme-walkthrough: FAIL: $*" >&2
  for log in "$work"/*.stderr; do [ -f "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }; done
  exit 1
}

# The fenced block between <!-- NAME:begin --> and <!-- NAME:end -->.
doc_block() {
  awk -v begin="<!-- $1:begin -->" -v end="<!-- $1:end -->" '
    $0 == begin { inside = 1; next }
    $0 == end { inside = 0 }
    inside && !/^```/ { print }' "$doc"
}

# Starts the example with extra arguments; waits for `listening on` and sets
# $address. $1 names the run (its stdout/stderr files).
start_server() {
  local name=$1
  shift
  # shellcheck disable=SC2086 # cargo flags, split on purpose
  cargo run --quiet --manifest-path "$root/Cargo.toml" ${server_cargo_flags:-} -p token-refresh-examples --bin "$example" -- --listen 127.0.0.1:0 "$@" >"$work/$name.stdout" 2>"$work/$name.stderr" &
  server_pid=$!
  for _ in $(seq 1 600); do
    grep -qs '^listening on http://' "$work/$name.stdout" && break
    kill -0 "$server_pid" 2>/dev/null || fail "the server exited before listening"
    sleep 0.5
  done
  address=$(sed -n 's|^listening on http://||p' "$work/$name.stdout")
  [ -n "$address" ] || fail "no 'listening on' line"
}

# Every example builds with the examples crate's defaults (no flags).
example_flags=

server_cargo_flags=$example_flags

echo "==> building the $example example"
# shellcheck disable=SC2086 # cargo flags, split on purpose
cargo build --quiet $example_flags -p token-refresh-examples --bin "$example"

echo "==> cargo run -p token-refresh-examples --bin $example -- --listen 127.0.0.1:0"
start_server demo
# The walkthrough is printed right after the listening line; wait for its end.
for _ in $(seq 1 100); do
  [ "$(grep -c 'api/v1/me' "$work/demo.stdout")" -ge 2 ] && break
  sleep 0.1
done
login=$(sed -n 's/^login body: //p' "$work/demo.stdout")
[ -n "$login" ] || fail "no 'login body:' line"
echo "listening on http://$address"

# Same lines in the document and in the server's output, but for the
# address and the login body.
normalize() { sed -e "s|^BASE=http://.*|BASE=<address>|" -e "s|^LOGIN=.*|LOGIN=<login body>|"; }
doc_block walkthrough | normalize >"$work/doc.sh"
sed -n '/^BASE=/,$p' "$work/demo.stdout" | normalize >"$work/printed.sh"
diff -u "$work/doc.sh" "$work/printed.sh" || fail "README.md and the server's printed walkthrough differ"

# Run the document's block as pasted, with this server's address and login body.
doc_block walkthrough |
  sed -e "s|^BASE=http://.*|BASE=http://$address|" -e "s|^LOGIN=.*|LOGIN='$login'|" >"$work/walkthrough.sh"
echo "==> the walkthrough from README.md"
(cd "$work" && bash -euo pipefail walkthrough.sh) >"$work/walkthrough.out" 2>&1 || fail "walkthrough failed: $(cat "$work/walkthrough.out")"
# Tokens elided: the output shape is what matters here.
sed -E 's/eyJ[A-Za-z0-9_.-]+/eyJ…/g' "$work/walkthrough.out"
statuses=$(sed -n 's/^HTTP //p' "$work/walkthrough.out" | tr '\n' ' ')
[ "$statuses" = "200 200 200 200 401 401 " ] || fail "statuses were '$statuses', expected '200 200 200 200 401 401 '"

echo "==> SIGTERM"
kill -TERM "$server_pid"
code=0
wait "$server_pid" || code=$?
server_pid=
[ "$code" -eq 0 ] || fail "the server exited with $code after SIGTERM"
grep -q 'shutting down' "$work/demo.stderr" || fail "no shutdown log line"
echo "stopped cleanly"

# Runs the example with the given arguments (after --, before them the
# cargo flags in $cargo_flags) and expects exit code 2, a message on stderr,
# and the word s3cret (the URL's password) nowhere.
expect_store_error() {
  local name=$1
  shift
  local code=0
  # shellcheck disable=SC2086 # cargo flags, split on purpose
  cargo run --quiet $cargo_flags -p token-refresh-examples --bin "$example" -- "$@" >"$work/$name.stdout" 2>"$work/$name.stderr" || code=$?
  [ "$code" -eq 2 ] || fail "$name: exited with $code, expected 2"
  [ -s "$work/$name.stderr" ] || fail "$name: no message"
  if grep -q s3cret "$work/$name.stderr" "$work/$name.stdout"; then fail "$name: the store URL's password was printed"; fi
  head -n 1 "$work/$name.stderr"
}

echo "==> --store errors: exit code 2, the URL and its password never printed"
cargo_flags=$example_flags
expect_store_error store-scheme --store 'bogus://app:s3cret@127.0.0.1/x'
if grep -q bogus "$work/store-scheme.stderr"; then fail "the unknown --store value was echoed"; fi
expect_store_error store-feature --store 'redis://:s3cret@127.0.0.1:6379/0'
grep -q '`redis` feature' "$work/store-feature.stderr" || fail "the message does not name the redis feature"
cargo build --quiet --all-features -p token-refresh-examples --bin "$example"
cargo_flags=--all-features
expect_store_error store-redis-down --store 'redis://:s3cret@127.0.0.1:1/0'
expect_store_error store-postgres-down --store 'postgres://app:s3cret@127.0.0.1:1/test'

command -v openssl >/dev/null || fail "openssl is needed for the own-key block"
{
  echo "==> own signing key and users (openssl)"
  # The block's last line starts the server; the script starts it itself
  # with the same arguments plus --listen.
  doc_block keys | grep -v '^cargo run' >"$work/keys.sh"
  server_args=$(doc_block keys | sed -n 's/^cargo run -p token-refresh-examples --bin server -- //p')
  (cd "$work" && bash -euo pipefail -c "source keys.sh; printf '%s' \"\$LOGIN\" > login.json")
  # From the work directory, so the block's relative paths resolve.
  pushd "$work" >/dev/null
  # shellcheck disable=SC2086 # the block's arguments, split as a shell would
  start_server keys $server_args
  popd >/dev/null
  status=$(curl -s -o "$work/keys-login.out" -w '%{http_code}' -X POST \
    "http://$address/auth/api/v1/authentication-management/session" \
    -H 'Content-Type: application/json' --data-binary @"$work/login.json")
  [ "$status" = 200 ] || fail "login with the openssl-made user: $status $(cat "$work/keys-login.out")"
  echo "login with openssl-made keys: HTTP $status"
  x=$(openssl pkey -in "$work/key.pem" -pubout -outform DER | tail -c 32 | base64 | tr '+/' '-_' | tr -d '=\n')
  curl -s "http://$address/.well-known/jwks.json" >"$work/jwks.json"
  grep -q "\"x\":\"$x\"" "$work/jwks.json" || fail "JWKS $(cat "$work/jwks.json") does not carry x=$x"
  grep -q '"kid":"key-1"' "$work/jwks.json" || fail "JWKS lacks the kid"
  echo "jwks publishes key.pem's public key: $(cat "$work/jwks.json")"
  stop_server
}

{
  echo "==> key rotation (openssl, three restarts)"
  # Run in the same directory as the own-key block: it uses key.pem and users.json.
  doc_block rotation | grep -v '^cargo run' >"$work/rotation.sh"
  (cd "$work" && bash -euo pipefail rotation.sh) || fail "the rotation block's openssl lines failed"
  expected_keys=(2 2 1)
  mapfile -t starts < <(doc_block rotation | sed -n 's/^cargo run -p token-refresh-examples --bin server -- //p')
  [ "${#starts[@]}" -eq 3 ] || fail "the rotation block has ${#starts[@]} server starts, expected 3"
  step=0
  for rotation_args in "${starts[@]}"; do
    pushd "$work" >/dev/null
    # shellcheck disable=SC2086 # the block's arguments, split as a shell would
    start_server "rotation-$step" $rotation_args
    popd >/dev/null
    keys=$(curl -s "http://$address/.well-known/jwks.json" | grep -o '"kty"' | wc -l)
    [ "$keys" -eq "${expected_keys[$step]}" ] || fail "rotation step $((step + 1)): JWKS has $keys keys, expected ${expected_keys[$step]}"
    echo "step $((step + 1)): $rotation_args -> JWKS with $keys key(s)"
    stop_server
    step=$((step + 1))
  done
}

echo "==> the walkthrough on shared ledgers (--store, all features, --store-prefix $store_prefix)"
server_cargo_flags=--all-features
used_store=yes
for store in "$redis_url" "$postgres_url"; do
  scheme=${store%%://*}
  start_server "shared-$scheme" --store "$store" --store-prefix "$store_prefix"
  for _ in $(seq 1 100); do
    grep -qs '^login body: ' "$work/shared-$scheme.stdout" && break
    sleep 0.1
  done
  login=$(sed -n 's/^login body: //p' "$work/shared-$scheme.stdout")
  [ -n "$login" ] || fail "$scheme: no 'login body:' line"
  doc_block walkthrough |
    sed -e "s|^BASE=http://.*|BASE=http://$address|" -e "s|^LOGIN=.*|LOGIN='$login'|" >"$work/shared.sh"
  (cd "$work" && bash -euo pipefail shared.sh) >"$work/shared.out" 2>&1 || fail "$scheme walkthrough failed: $(cat "$work/shared.out")"
  statuses=$(sed -n 's/^HTTP //p' "$work/shared.out" | tr '\n' ' ')
  [ "$statuses" = "200 200 200 200 401 401 " ] || fail "$scheme: statuses were '$statuses'"
  grep -q "store=$scheme" "$work/shared-$scheme.stderr" || fail "$scheme: the start-up log does not name the store"
  if grep -q "$store" "$work/shared-$scheme.stderr" "$work/shared-$scheme.stdout"; then fail "$scheme: the store URL was printed"; fi
  echo "$scheme: $statuses"
  stop_server
done

echo "readme-walkthrough: OK ($example)"
