# Sourced by the CI scripts that talk to a running gateway: builds the debug binary
# (wherever cargo puts it), starts it on a free 127.0.0.1 port over a fresh SQLite
# store with the operator API on, and sets:
#   bin    the binary        base   http://127.0.0.1:PORT
#   key    a ciq_ key with every scope and a limit high enough for fuzzing
#   token  the operator token           work   a scratch folder, removed at exit
# The server is stopped and the folder removed when the script exits.

target_dir=$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/debug/ciq-gateway"
cargo build --locked -p ciq-gateway
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export DATABASE_URL="sqlite://$work/ciq.db?mode=rwc"
"$bin" users create --email ci@example.com >/dev/null
key=$("$bin" keys create --user ci@example.com --rate-limit 1000000 \
    --scope leads:create --scope leads:read --scope leads:write --scope webhooks:manage 2>/dev/null)
token=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
CIQ_LISTEN=127.0.0.1:$port CIQ_ADMIN_TOKEN=$token CIQ_UNAUTHENTICATED_LIMIT_PER_MINUTE=1000000 \
    RUST_LOG=warn "$bin" >"$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$work"' EXIT
base="http://127.0.0.1:$port"
for _ in $(seq 1 50); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "$base/healthz" >/dev/null
