#!/usr/bin/env bash
# The whole mesh on loopback, certificates from the control plane:
#
#   outrider-ca  <-  outrider-agent (orders), outrider-agent (frontend)
#   load (curl loop) -> out (frontend) =mTLS=> in (orders) -> nginx
#
# The CA issues certificates that live 6 seconds, so each agent renews about
# every 3 seconds, through symlink swaps in its directory. While a client
# keeps sending requests through the HTTP sidecar pair for about 15 seconds:
# every request gets a 200, both proxies log several identity updates, and a
# fresh handshake with the inbound listener shows a new serial over time.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/ca_lib.sh"
[ -x "$AGENT_BIN" ] || die "no outrider-agent binary at $AGENT_BIN"

CA=$T/ca
ca_admin init --dir "$CA" --trust-domain "$TRUST_DOMAIN" 2>"$T/init.err"
alloc_ports CA_PORT APP_PORT IN_PORT OUT_PORT
start_ca ca "$CA" "$CA_PORT" --ttl 6s

orders_id=$(spiffe_id ns/shop/sa/orders)
frontend_id=$(spiffe_id ns/web/sa/frontend)

# start_agent NAME ID: a first certificate with a join token, then the loop.
start_agent() {
    local name=$1 id=$2 token rc=0
    token=$(ca_admin token create --dir "$CA" --spiffe-id "$id")
    local args=(--ca "https://127.0.0.1:$CA_PORT" --ca-bundle "$CA/bundle.d/root.pem"
                --spiffe-id "$id" --dir "$T/id-$name" --status-file "$T/$name.status")
    "$AGENT_BIN" "${args[@]}" --token "$token" --once 2>"$T/$name-once.err" || rc=$?
    assert_eq 0 "$rc" "agent $name gets its first certificate"
    start_bg "agent-$name" "$AGENT_BIN" "${args[@]}"
}
start_agent orders "$orders_id"
start_agent frontend "$frontend_id"

start_http_pair "$T/id-orders" "$T/id-frontend" "$orders_id"


serial_now() { served_serial "$IN_PORT" "$T/id-frontend/cert.pem" "$T/id-frontend/key.pem"; }

start_load "$OUT_PORT"
first=$(serial_now)
sleep $((15 * SLOW))
last=$(serial_now)
stop_load "while the certificates rotated"

if [ -n "$first" ] && [ -n "$last" ] && [ "$first" != "$last" ]; then
    pass "a fresh handshake shows a newer certificate ($first, then $last)"
else
    fail "a fresh handshake shows a newer certificate" "first '$first', last '$last'"
fi
for name in orders frontend; do
    n=$(grep -c "identity updated" "$(proxy_log "$name")" || true)
    if [ "$n" -ge 2 ]; then
        pass "proxy $name took $n certificates from its agent"
    else
        fail "proxy $name takes the agent's certificates" "$n identity updates logged"
    fi
    assert_not_contains "$(proxy_log "$name")" "identity update refused" "proxy $name refused no set"
done

stop_proxy frontend
stop_proxy orders
stop_bg agent-orders
stop_bg agent-frontend
stop_ca ca
