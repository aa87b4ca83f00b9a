#!/usr/bin/env bash
# The README demo: a two-sidecar mesh on loopback.
#
#   curl -> frontend sidecar (outbound) =mTLS=> orders sidecar (inbound) -> HTTP app
#
# It makes a dev PKI in a temp dir (spiffe://cluster.local/ns/shop/sa/orders
# and .../ns/web/sa/frontend), starts a tiny HTTP app (socat), the two
# sidecars, sends a few requests through the pair with curl, then one through
# an outbound listener that expects another identity (which the sidecar
# refuses), prints the responses, the sidecars' log lines about the
# handshakes and identities and the orders sidecar's access log, and stops
# everything with SIGTERM. Both sidecars speak HTTP; the orders sidecar lets
# the frontend GET /orders/* and nothing else (a DELETE is answered 403).
#
# Environment: OUTRIDER_BIN (default build/bin), DEMO_KEEP=1 keeps the temp dir.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
bin=${OUTRIDER_BIN:-$src/build/bin}
outrider=$bin/outrider

for tool in openssl curl socat ss; do
    command -v "$tool" >/dev/null || { echo "demo: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done
[ -x "$outrider" ] || { echo "demo: no $outrider; build first (make build)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/outrider-demo.XXXXXX")
pids=()

stop_all() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
    if [ "${DEMO_KEEP:-0}" = 1 ]; then
        echo "files kept in $work"
    else
        rm -rf "$work"
    fi
}
trap stop_all EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# pick_ports VAR...: free ports on 127.0.0.1, below the ephemeral range.
pick_ports() {
    local var port used=""
    for var in "$@"; do
        while :; do
            port=$((20000 + RANDOM % 12000))
            [ -z "$(ss -Htan "sport = :$port")" ] && [[ "$used " != *" $port "* ]] && break
        done
        used+=" $port"
        printf -v "$var" '%s' "$port"
    done
}

wait_listen() {
    local port=$1 _
    for _ in $(seq 1 200); do
        [ -n "$(ss -Hltn "sport = :$port")" ] && return 0
        sleep 0.05
    done
    echo "demo: nothing listens on $port; logs are in $work" >&2
    DEMO_KEEP=1
    exit 1
}

# run_bg LOG CMD...: in the background, in its own process group.
run_bg() {
    local log=$1
    shift
    setsid "$@" >"$log.out" 2>"$log" </dev/null &
    pids+=($!)
}

app_port="" in_port="" out_port="" wrong_port=""
pick_ports app_port in_port out_port wrong_port

say "a dev PKI in $work/pki"
"$src/config-examples/make-dev-pki.sh" "$work/pki" cluster.local ns/shop/sa/orders ns/web/sa/frontend
for id in shop-orders web-frontend; do
    printf '%-14s %s\n' "$id:" "$(openssl x509 -in "$work/pki/$id/cert.pem" -noout -ext subjectAltName | tail -n 1 | tr -d ' ')"
done

say "the app: a tiny HTTP responder on 127.0.0.1:$app_port"
cat >"$work/app.sh" <<'EOF'
#!/usr/bin/env bash
export LC_ALL=C
request=""
while IFS= read -r line; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
    [ -n "$request" ] || request=$line
done
body="orders app: you sent \"$request\""
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s\n' $((${#body} + 1)) "$body"
EOF
chmod +x "$work/app.sh"
run_bg "$work/app.log" socat "TCP-LISTEN:$app_port,bind=127.0.0.1,fork,reuseaddr" "EXEC:$work/app.sh"
wait_listen "$app_port"

cat >"$work/orders.yaml" <<EOF
service: orders
trust_domain: cluster.local
identity:
  cert: pki/shop-orders/cert.pem
  key: pki/shop-orders/key.pem
  bundle: pki/shop-orders/bundle.pem
workers: 2
listeners:
  - name: inbound
    mode: inbound
    protocol: http
    listen: 127.0.0.1:$in_port
    upstream: 127.0.0.1:$app_port
access_log:
  path: access.log
  format: json
rbac:
  default: deny
  policies:
    - name: frontend-reads-orders
      action: allow
      rules:
        - from:
            - principals: ["spiffe://cluster.local/ns/web/sa/frontend"]
          to:
            - methods: [GET]
              paths: ["/orders/*"]
timeouts: {handshake: 5s, drain: 5s}
EOF

cat >"$work/frontend.yaml" <<EOF
service: frontend
trust_domain: cluster.local
identity:
  cert: pki/web-frontend/cert.pem
  key: pki/web-frontend/key.pem
  bundle: pki/web-frontend/bundle.pem
workers: 2
listeners:
  - name: to-orders
    mode: outbound
    protocol: http
    listen: 127.0.0.1:$out_port
    upstream: 127.0.0.1:$in_port
    peer_identity: spiffe://cluster.local/ns/shop/sa/orders
  - name: to-payments
    mode: outbound
    protocol: tcp
    listen: 127.0.0.1:$wrong_port
    upstream: 127.0.0.1:$in_port
    peer_identity: spiffe://cluster.local/ns/shop/sa/payments
timeouts: {handshake: 5s, drain: 5s}
EOF

say "outrider check"
"$outrider" check -c "$work/orders.yaml"
"$outrider" check -c "$work/frontend.yaml"

say "sidecars: orders (inbound :$in_port -> app) and frontend (outbound :$out_port -> orders)"
run_bg "$work/orders.log" "$outrider" -c "$work/orders.yaml" --log-level debug
orders_pid=${pids[-1]}
run_bg "$work/frontend.log" "$outrider" -c "$work/frontend.yaml" --log-level debug
frontend_pid=${pids[-1]}
wait_listen "$in_port"
wait_listen "$out_port"
wait_listen "$wrong_port"

say "curl through the pair: http://127.0.0.1:$out_port/..."
for path in /orders/1 /orders/2 /orders/3; do
    printf '$ curl http://127.0.0.1:%s%s\n' "$out_port" "$path"
    curl -sS --max-time 10 "http://127.0.0.1:$out_port$path"
done

say "a DELETE the policy does not allow"
printf '$ curl -X DELETE http://127.0.0.1:%s/orders/1\n' "$out_port"
curl -sS --max-time 10 -w '(status %{http_code})\n' -X DELETE "http://127.0.0.1:$out_port/orders/1"

say "curl through to-payments, which expects spiffe://cluster.local/ns/shop/sa/payments"
printf '$ curl http://127.0.0.1:%s/orders/4\n' "$wrong_port"
curl -sS --max-time 10 "http://127.0.0.1:$wrong_port/orders/4" || echo "(refused, as it should be: the peer is orders)"

sleep 0.3
say "orders sidecar log"
grep -E 'listener up|identity|verified|handshake failed|upstream failed' "$work/orders.log" || true
say "frontend sidecar log"
grep -E 'listener up|identity|verified|handshake failed|upstream failed' "$work/frontend.log" || true

say "orders access log ($work/access.log)"
cat "$work/access.log" 2>/dev/null || true

say "stopping the sidecars (SIGTERM)"
for entry in "frontend $frontend_pid" "orders $orders_pid"; do
    name=${entry% *}
    pid=${entry#* }
    kill -TERM "$pid"
    status=0
    wait "$pid" || status=$?
    echo "$name exited with status $status"
done
