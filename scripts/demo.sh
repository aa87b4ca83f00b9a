#!/usr/bin/env bash
# The README demo: a two-sidecar mesh on loopback.
#
#   curl -> frontend sidecar (outbound) =mTLS=> orders sidecar (inbound) -> HTTP app
#
# It starts the control plane in a temp dir: outrider-ca for the trust domain
# cluster.local and one outrider-agent per workload, which gets a one-time
# join token, generates its key locally and keeps cert.pem, key.pem and
# bundle.pem fresh (spiffe://cluster.local/ns/shop/sa/orders and
# .../ns/web/sa/frontend). Then it starts a tiny HTTP app (socat), the two
# sidecars, sends a few requests through the pair with curl, then one through
# an outbound listener that expects another identity (which the sidecar
# refuses), prints the responses, the sidecars' log lines about the
# handshakes and identities and the orders sidecar's access log, and stops
# everything with SIGTERM. Both sidecars speak HTTP; the orders sidecar lets
# the frontend GET /orders/* and nothing else (a DELETE is answered 403).
#
# `demo.sh rotation` is the second demo: the CA issues certificates that
# live 10 seconds, and for about 30 seconds the demo sends a request every
# second and shows the serial a fresh handshake with the orders sidecar
# sees, while the agents renew and the sidecars swap certificates live.
#
# Environment: OUTRIDER_BIN (default build/bin), DEMO_KEEP=1 keeps the temp dir.
set -euo pipefail

mode=${1:-basic}
case "$mode" in
basic) ttl=1h ;;
rotation) ttl=10s ;;
*) echo "usage: demo.sh [rotation]" >&2; exit 2 ;;
esac

src=$(cd "$(dirname "$0")/.." && pwd)
bin=${OUTRIDER_BIN:-$src/build/bin}
outrider=$bin/outrider

for tool in openssl curl socat ss setsid; do
    command -v "$tool" >/dev/null || { echo "demo: $tool not found; run scripts/install-deps.sh" >&2; exit 1; }
done
for b in outrider outrider-ca outrider-agent; do
    [ -x "$bin/$b" ] || { echo "demo: no $bin/$b; build first (make build)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/outrider-demo.XXXXXX")
pids=()

# Started as root, the programs switch to 65532:65532 once they are up
# (docs/security.md, "Sandbox"): the demo's directory belongs to that user,
# and the CA's one-shot commands run as it, as they would in a deployment.
as_run_as() {
    if [ "$(id -u)" -eq 0 ]; then
        setpriv --reuid=65532 --regid=65532 --clear-groups -- "$@"
    else
        "$@"
    fi
}
[ "$(id -u)" -ne 0 ] || chown 65532:65532 "$work"

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

app_port="" in_port="" out_port="" wrong_port="" ca_port=""
pick_ports app_port in_port out_port wrong_port ca_port

say "the control plane: outrider-ca on 127.0.0.1:$ca_port and an agent per workload"
as_run_as "$bin/outrider-ca" init --dir "$work/ca" --trust-domain cluster.local
run_bg "$work/ca.log" "$bin/outrider-ca" serve --dir "$work/ca" --listen "127.0.0.1:$ca_port" --ttl "$ttl"
wait_listen "$ca_port"
as_run_as mkdir -p "$work/pki"
for entry in "shop-orders ns/shop/sa/orders" "web-frontend ns/web/sa/frontend"; do
    dir=${entry% *}
    id=spiffe://cluster.local/${entry#* }
    token=$(as_run_as "$bin/outrider-ca" token create --dir "$work/ca" --spiffe-id "$id")
    agent=("$bin/outrider-agent" --ca "https://127.0.0.1:$ca_port" --ca-bundle "$work/ca/bundle.d/root.pem"
           --spiffe-id "$id" --dir "$work/pki/$dir")
    "${agent[@]}" --token "$token" --once 2>>"$work/agents.log"
    run_bg "$work/agent-$dir.log" "${agent[@]}"
    printf '%-14s %s\n' "$dir:" "$(openssl x509 -in "$work/pki/$dir/cert.pem" -noout -ext subjectAltName | tail -n 1 | tr -d ' ')"
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

if [ "$mode" = rotation ]; then
    say "certificates live $ttl: watching the rotation for 30 seconds"
    for _ in $(seq 1 30); do
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$out_port/orders/1" || true)
        serial=$(openssl s_client -connect "127.0.0.1:$in_port" -cert "$work/pki/web-frontend/cert.pem" \
            -key "$work/pki/web-frontend/key.pem" </dev/null 2>/dev/null |
            openssl x509 -noout -serial 2>/dev/null | cut -d= -f2 || true)
        printf '%s  request %s  orders serves serial %s\n' "$(date +%T)" "$code" "${serial:0:16}..."
        sleep 1
    done
    say "identity updates the sidecars logged"
    grep -h 'identity updated' "$work/orders.log" "$work/frontend.log" | cut -c1-160 || true
fi

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
