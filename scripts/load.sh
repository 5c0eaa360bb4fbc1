#!/usr/bin/env bash
# Load test of the webhook hot path: wrk → switchboard (release) → nginx answering 204
# as the CRM, with a real redis-server as the store. Reports requests/s, p50/p99
# latency and the relay's peak RSS. Loopback only; bounded in time.
#
#   scripts/load.sh [duration_s=20] [connections=64] [threads=2]
#
# Needs: wrk, nginx, redis-server (apt-get install -y wrk nginx-light redis-server), python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
CONNS=${2:-64}
THREADS=${3:-2}
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
SINK_PORT=$(free_port); REDIS_PORT=$(free_port); RELAY_PORT=$(free_port)

cargo build --release -q

cat > "$WORK/nginx.conf" <<NGINX
worker_processes 1;
daemon on;
pid $WORK/nginx.pid;
error_log $WORK/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK;
  server { listen 127.0.0.1:$SINK_PORT; keepalive_requests 1000000; location / { return 204; } }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null &

KEY=$(python3 -c 'import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())')
TOKEN=$(python3 - "$KEY" <<'PY'
import sys
from cryptography.fernet import Fernet
print(Fernet(sys.argv[1].encode()).encrypt(b"load-test-token").decode())
PY
)
cat > "$WORK/relay.toml" <<TOML
[server]
bind = "127.0.0.1:$RELAY_PORT"
public_url = "http://127.0.0.1:$RELAY_PORT"
[store]
backend = "redis"
redis_url = "redis://127.0.0.1:$REDIS_PORT"
[vault]
keys = ["$KEY"]
[meta]
app_secrets = ["load-secret"]
[delivery]
dedupe_window_s = 2   # the 50k distinct bodies cycle in more than 2 s: no dedupe hits
[log]
level = "warn"
[[tenants]]
id = "load"
crm_url = "http://127.0.0.1:$SINK_PORT/hook"
signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[channels]]
kind = "whatsapp"
id = "106540352242922"
tenant = "load"
token = "$TOKEN"
TOML
./target/release/switchboard --config "$WORK/relay.toml" serve > "$WORK/relay.log" 2>&1 &
RELAY_PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$RELAY_PORT/readyz" >/dev/null && break; sleep 0.1; done

python3 scripts/gen_load_requests.py tests/fixtures/whatsapp/text.json load-secret 50000 "$WORK/requests.lua"
echo "wrk: ${DURATION}s, $CONNS connections, $THREADS threads; one signed WhatsApp text message per request, all distinct"
wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/requests.lua" "http://127.0.0.1:$RELAY_PORT" | tail -3
echo "relay peak RSS: $(grep VmHWM /proc/$RELAY_PID/status | awk '{print $2/1024 " MiB"}')"
curl -s "http://127.0.0.1:$RELAY_PORT/metrics" | grep -E '^switchboard_(webhooks|deliveries)_total' || true
