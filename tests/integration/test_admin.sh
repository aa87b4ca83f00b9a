#!/usr/bin/env bash
# The admin endpoint and reload, on a running HTTP sidecar pair.
#
#   curl -> out (frontend) =mTLS=> in (orders, admin on loopback) -> nginx
#
# Checks: /live and /ready answer 200; /certs names the SPIFFE ID, serial and
# bundle root; /config is JSON without key material; /stats is Prometheus
# text whose counters follow the traffic (requests by class, RBAC decisions,
# handshake failures by reason); a mutation with GET answers 405 and a read
# with POST 405; an unknown path 404. Reload: a policy change by SIGHUP and
# by POST /reload applies to the next request on the same connection; a
# broken file and a change outside rbac are refused (409) with the reason,
# and traffic goes on under the old config. POST /drain under load: no
# request fails, /ready turns 503, the proxy exits 0.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
alloc_ports APP_PORT IN_PORT OUT_PORT ADMIN_PORT
orders_id=$(spiffe_id ns/shop/sa/orders)
frontend_id=$(spiffe_id ns/web/sa/frontend)

policies() { # policies DENIED_PATH_PREFIX
    cat <<YAML
rbac:
  default: allow
  policies:
    - name: block
      action: deny
      rules:
        - to: [{paths: ["$1*"]}]
YAML
}

orders_config() { # orders_config DENIED_PREFIX [IDLE] [WORKERS]
    write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<CONFIG
workers: ${3:-1}
admin: {listen: 127.0.0.1:$ADMIN_PORT}
timeouts: {connect: 2s, handshake: 10s, idle: ${2:-60s}, drain: 10s}
$(policies "$1")
listeners:
$(inbound_listener in "$IN_PORT" "$APP_PORT" http)
CONFIG
}
orders_config /private
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<CONFIG
listeners:
$(outbound_listener out "$OUT_PORT" "$IN_PORT" "$orders_id" http)
CONFIG

head -c 600000 /dev/urandom >"$T/slow.bin"
start_nginx app "$APP_PORT" <<NGINX
        location /slow { alias $T/slow.bin; limit_rate 300k; }
        location / { return 200 "ok\n"; }
NGINX
start_proxy orders "$T/orders.yaml" "$IN_PORT" "$ADMIN_PORT"
start_proxy frontend "$T/frontend.yaml" "$OUT_PORT"

admin() { # admin METHOD PATH -> body in $T/admin.body, prints the status
    curl -s -o "$T/admin.body" -w '%{http_code}' -X "$1" --max-time 5 "http://127.0.0.1:$ADMIN_PORT$2" || true
}
status_of() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$OUT_PORT$1" || true; }
metric() { grep -E "^$1 " "$T/admin.body" | sed 's/.* //'; }

# --- reads
assert_eq 200 "$(admin GET /live)" "/live answers 200"
assert_eq 200 "$(admin GET /ready)" "/ready answers 200 once listeners and certificates are up"
assert_eq 200 "$(admin GET /certs)" "/certs answers 200"
assert_contains "$T/admin.body" "\"spiffe_id\":\"$orders_id\"" "/certs names the SPIFFE ID"
serial=$(openssl x509 -in "$T/pki/shop-orders/cert.pem" -noout -serial | cut -d= -f2 | sed 's/../&:/g; s/:$//')
assert_contains "$T/admin.body" "\"serial\":\"$serial\"" "/certs shows the serial of the certificate file"
assert_contains "$T/admin.body" '"bundle_roots":\[\{"subject":"O=Outrider dev, CN=Outrider dev root CA"' "/certs lists the bundle root"
assert_eq 200 "$(admin GET /config)" "/config answers 200"
assert_contains "$T/admin.body" "\"listeners\":\[\{\"name\":\"in\",\"mode\":\"inbound\",\"protocol\":\"http\"" "/config lists the listeners"
assert_not_contains "$T/admin.body" "PRIVATE KEY" "/config shows no key material"

# --- methods and paths
assert_eq 405 "$(admin GET /reload)" "GET /reload is refused"
assert_eq 405 "$(admin GET /quitquitquit)" "GET /quitquitquit is refused"
assert_eq 405 "$(admin POST /stats)" "POST /stats is refused"
assert_eq 404 "$(admin GET /nope)" "an unknown path answers 404"

# --- counters follow the traffic
assert_eq 200 "$(status_of /public)" "an allowed request"
assert_eq 403 "$(status_of /private/x)" "a denied request"
openssl s_client -connect "127.0.0.1:$IN_PORT" </dev/null >/dev/null 2>&1 || true
wait_for_match "$(proxy_log orders)" 'reason="no client certificate"' $((5 * SLOW)) || true
assert_eq 200 "$(admin GET /stats)" "/stats answers 200"
assert_eq 1 "$(metric 'outrider_http_responses_total\{class="2xx"\}')" "/stats counts the 2xx"
assert_eq 1 "$(metric 'outrider_http_responses_total\{class="4xx"\}')" "/stats counts the 4xx"
assert_eq 1 "$(metric 'outrider_rbac_decisions_total\{decision="deny"\}')" "/stats counts the RBAC deny"
assert_eq 1 "$(metric 'outrider_rbac_policy_decisions_total\{policy="block",decision="deny"\}')" \
    "/stats counts the deny against the policy that decided it"
assert_eq 1 "$(metric 'outrider_tls_handshake_failures_total\{reason="no client certificate"\}')" \
    "/stats counts the handshake failure by reason"
assert_contains "$T/admin.body" '^outrider_certificate_expiry_timestamp_seconds [0-9]+$' "/stats has the certificate expiry"

# --- reload: SIGHUP, then POST /reload, on one client connection
orders_config /public
kill -HUP "${PROC_PID[orders]}"
wait_for_match "$(proxy_log orders)" "reload applied" $((5 * SLOW)) || fail "SIGHUP reloads" "no 'reload applied' line"
curl -s -o /dev/null -o /dev/null -w '%{http_code}\n' --max-time 10 "http://127.0.0.1:$OUT_PORT/public" \
    "http://127.0.0.1:$OUT_PORT/private/x" >"$T/after-hup" || true
assert_eq "403 200" "$(tr '\n' ' ' <"$T/after-hup" | sed 's/ $//')" "after SIGHUP the new policy decides"
orders_config /other
assert_eq 200 "$(admin POST /reload)" "POST /reload applies a policy change"
assert_eq 200 "$(status_of /public)" "after POST /reload /public is allowed again"
assert_eq 403 "$(status_of /other/y)" "after POST /reload /other is denied"

# --- refused reloads keep the running config
echo "listeners: [" >>"$T/orders.yaml"
assert_eq 409 "$(admin POST /reload)" "a broken file is refused"
assert_contains "$T/admin.body" "orders.yaml:[0-9]+:[0-9]+: error" "the refusal names file:line:col"
orders_config /other 60s 2
assert_eq 409 "$(admin POST /reload)" "a change that needs a restart (workers) is refused"
assert_contains "$T/admin.body" "need a restart; only rbac, timeouts, limits and http reload" "the refusal says why"
assert_eq 403 "$(status_of /other/y)" "traffic goes on under the running policies"
orders_config /other 45s
assert_eq 200 "$(admin POST /reload)" "a new idle timeout is applied"
admin GET /config >/dev/null
assert_contains "$T/admin.body" '"idle":45000' "/config shows the idle timeout in force"
admin GET /stats >/dev/null
assert_eq 3 "$(metric 'outrider_reloads_total\{result="ok"\}')" "/stats counts the applied reloads"
assert_eq 2 "$(metric 'outrider_reloads_total\{result="failed"\}')" "/stats counts the refused reloads"

# --- drain with a request in flight
curl -s -o "$T/slow.out" -w '%{http_code}' --max-time 30 "http://127.0.0.1:$OUT_PORT/slow" >"$T/slow.code" &
slow_pid=$!
sleep 0.5
assert_eq 200 "$(admin POST /drain)" "POST /drain answers 200"
assert_eq 503 "$(admin GET /ready)" "/ready answers 503 while draining"
wait "$slow_pid" || true
assert_eq 200 "$(cat "$T/slow.code")" "the request in flight when the drain began completes"
assert_eq "$(sha256sum <"$T/slow.bin")" "$(sha256sum <"$T/slow.out")" "and its body arrives whole"
pid=${PROC_PID[orders]}
for _ in $(seq 1 $((100 * SLOW))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
rc=0
wait "$pid" || rc=$?
unset "PROC_PID[orders]"
assert_eq 0 "$rc" "after the drain the proxy exits 0 by itself"
check_sanitizers "$T/orders.log" orders

stop_proxy frontend
