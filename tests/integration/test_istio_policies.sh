#!/usr/bin/env bash
# Istio AuthorizationPolicy and PeerAuthentication resources, read as
# written from a directory, enforced by a real sidecar.
#
#   curl -> outbound "frontend" (ns/web/sa/frontend) =mTLS=> inbound "orders" -> nginx
#   curl -> outbound "ops"      (ns/ops/sa/bot)      =mTLS=> inbound "orders" -> nginx
#
# "orders" is the workload app=orders of namespace shop; its config writes
# no `namespace`, so the namespace comes from the SPIFFE ID of its identity
# certificate (ns/shop). Its rbac.policies names a directory holding, one
# file per namespace as operators keep them: a mesh-wide DENY in
# istio-system, a namespace ALLOW (two rules) and an AUDIT policy in shop
# with a STRICT PeerAuthentication, a workload ALLOW selecting app=orders
# and one selecting app=payments (which does not apply), policies of
# namespace web (an allow-all and a deny-all, which must not apply), a
# ConfigMap (skipped with a warning) and a README (not read). No
# rbac.default is written: Istio's rules decide.
#
# For each scope and action, one request that is allowed and one that is
# denied: the status codes; nginx serves exactly the allowed requests, in
# order, and nothing denied reaches it; the inbound's JSON access log names
# the deciding policy as "namespace/name" with its rule index (no policy
# when no ALLOW matched); the AUDIT policy's matches are logged with the
# decision. `outrider check -c` on the config exits 0 and warns about the
# ConfigMap; `outrider explain` on an Istio-decided request names the
# deciding "shop/..." policy, the workload's namespace and the skipped
# policies with "(another namespace)". A DENY on connection.sni refuses a
# client (with a certificate, straight to the inbound listener) that sends
# SNI blocked.example and lets another name through.
#
# mTLS modes from PeerAuthentication: shop's default is STRICT, and a
# workload PeerAuthentication (selector app=orders) makes the workload port
# of a second inbound listener PERMISSIVE (portLevelMtls). Plaintext curl to
# the strict listener gets no HTTP answer; to the permissive one, GET
# /healthz (allowed by a rule without `from`) gets 200 and GET /api/orders
# (which needs the frontend's principal) 403; the second app saw only the
# /healthz request, logged tls_cipher "none".
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend ns/ops/sa/bot
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)
OPS_ID=$(spiffe_id ns/ops/sa/bot)

alloc_ports APP_PORT IN_PORT OUT_F OUT_O APP_PA IN_PA

ALOG=$T/orders-access.log
POLICIES=$T/orders/policies
mkdir -p "$POLICIES"

cat >"$POLICIES/00-istio-system.yaml" <<'EOF'
# Mesh-wide: nobody but ops reads debug endpoints.
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-debug
  namespace: istio-system
spec:
  action: DENY
  rules:
  - from:
    - source:
        notNamespaces: ["ops"]
    to:
    - operation:
        paths: ["/debug/*"]
EOF

cat >"$POLICIES/10-shop.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-frontend
  namespace: shop
spec:
  action: ALLOW
  rules:
  - from:
    - source:
        principals: ["cluster.local/ns/web/sa/frontend"]
    to:
    - operation:
        methods: ["GET", "POST"]
        paths: ["/api/*"]
  - to:
    - operation:
        methods: ["GET"]
        paths: ["/healthz"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: audit-writes
  namespace: shop
spec:
  action: AUDIT
  rules:
  - to:
    - operation:
        notMethods: ["GET", "HEAD"]
---
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: default
  namespace: shop
spec:
  mtls:
    mode: STRICT
EOF

cat >"$POLICIES/15-shop-sni.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-sni
  namespace: shop
spec:
  action: DENY
  rules:
  - when:
    - key: connection.sni
      values: ["blocked.example"]
EOF

cat >"$POLICIES/20-shop-workloads.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: orders-ops-reads
  namespace: shop
spec:
  selector:
    matchLabels:
      app: orders
  rules:
  - from:
    - source:
        namespaces: ["ops"]
    to:
    - operation:
        methods: ["GET"]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: payments-open
  namespace: shop
spec:
  selector:
    matchLabels:
      app: payments
  rules:
  - {}
EOF

cat >"$POLICIES/25-orders-mtls.yaml" <<EOF
apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata:
  name: orders-legacy-port
  namespace: shop
spec:
  selector:
    matchLabels:
      app: orders
  portLevelMtls:
    "$APP_PA":
      mode: PERMISSIVE
EOF

cat >"$POLICIES/30-web.yaml" <<'EOF'
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: allow-all
  namespace: web
spec:
  rules:
  - {}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: deny-all
  namespace: web
spec:
  action: DENY
  rules:
  - {}
EOF

cat >"$POLICIES/40-settings.yaml" <<'EOF'
apiVersion: v1
kind: ConfigMap
metadata:
  name: orders-settings
  namespace: shop
data:
  LOG_LEVEL: info
EOF
echo "not: [yaml" >"$POLICIES/README.md"

write_config "$T/orders/config.yaml" orders "$T/pki/shop-orders" <<EOF
labels:
  app: orders
  version: v1
rbac:
  policies: policies
access_log: {path: $ALOG, format: json}
listeners:
$(inbound_listener in "$IN_PORT" "$APP_PORT" http)
$(inbound_listener in-legacy "$IN_PA" "$APP_PA" http)
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
listeners:
$(outbound_listener out "$OUT_F" "$IN_PORT" "$ORDERS_ID" http)
EOF
write_config "$T/ops.yaml" ops "$T/pki/ops-bot" <<EOF
listeners:
$(outbound_listener out "$OUT_O" "$IN_PORT" "$ORDERS_ID" http)
EOF

# --- outrider check: the ConfigMap is skipped with a warning, the rest is valid
STATUS=0
timeout $((20 * SLOW)) "$OUTRIDER" check -c "$T/orders/config.yaml" >"$T/check.out" 2>"$T/check.err" || STATUS=$?
assert_exit 0 "$STATUS" "check: the config with Istio resources is valid"
assert_contains "$T/check.err" "^$POLICIES/40-settings\.yaml:1:1: warning: skipped: v1 ConfigMap is not an AuthorizationPolicy or PeerAuthentication of security\.istio\.io/v1 or v1beta1$" \
    "check: the ConfigMap is skipped with a warning naming its position"
assert_contains "$T/check.err" "^$T/orders/config\.yaml: OK \(identity $ORDERS_ID, [0-9]+ warning\(s\)\)$" \
    "check: OK with the identity"
assert_not_contains "$T/check.err" 'README' "check: README.md in the directory is not read"
assert_not_contains "$T/check.err" ': error: ' "check: no error"

start_nginx app "$APP_PORT" <<'EOF'
        location / { return 200 "app: $request_method $request_uri\n"; }
EOF
start_nginx legacy "$APP_PA" <<'EOF'
        location / { return 200 "legacy: $request_method $request_uri\n"; }
EOF
APP_LOG=$T/app.access
start_proxy orders "$T/orders/config.yaml" "$IN_PORT"
start_proxy frontend "$T/frontend.yaml" "$OUT_F"
start_proxy ops "$T/ops.yaml" "$OUT_O"
ORDERS_LOG=$(proxy_log orders)

CURL=(curl -sS --http1.1 --max-time $((20 * SLOW)))

# expect STATUS PORT METHOD PATH ID WHAT: one request through the outbound
# listener on PORT, with x-request-id ID, is answered STATUS.
expect() {
    local want=$1 port=$2 method=$3 path=$4 id=$5 what=$6 code
    code=$("${CURL[@]}" -o "$T/body" -w '%{http_code}' -X "$method" -H "x-request-id: $id" \
        "http://127.0.0.1:$port$path" 2>>"$T/clients.err") || true
    assert_eq "$want" "${code:-000}" "$what: $want"
}

# expect_logged ID JQ_FILTER WHAT: the access log line of request ID
# satisfies the filter (waiting for the writer thread).
expect_logged() {
    local line
    wait_for_match "$ALOG" "\"request_id\":\"$1\"" $((5 * SLOW)) || true
    line=$(grep -F "\"request_id\":\"$1\"" "$ALOG" | tail -n1 || true)
    if [ -n "$line" ] && jq -e "$2" >/dev/null 2>&1 <<<"$line"; then
        pass "$3"
    else
        fail "$3" "expected the log line of request $1 to satisfy: $2" "     got: ${line:-(no line)}"
    fi
}

allowed() { # POLICY RULE
    printf '.rbac_decision == "allow" and .rbac_policy == "%s" and .rbac_rule == %s and .status == 200' "$1" "$2"
}
denied_by() { # POLICY RULE
    printf '.rbac_decision == "deny" and .rbac_policy == "%s" and .rbac_rule == %s and .status == 403 and .response_flags == "RBAC"' "$1" "$2"
}
NO_ALLOW_MATCHED='.rbac_decision == "deny" and .rbac_policy == null and .rbac_rule == null and .status == 403 and .response_flags == "RBAC"'

# --- namespace ALLOW (shop/allow-frontend): rule 0, rule 1, and no match
expect 200 "$OUT_F" GET /api/orders ns-allow "namespace ALLOW: frontend GET /api/orders"
expect_logged ns-allow "$(allowed shop/allow-frontend 0)" \
    "namespace ALLOW: logged as shop/allow-frontend rule 0"
expect 200 "$OUT_F" GET /healthz ns-allow-rule1 "namespace ALLOW: frontend GET /healthz (rule 1)"
expect_logged ns-allow-rule1 "$(allowed shop/allow-frontend 1)" \
    "namespace ALLOW: logged as shop/allow-frontend rule 1"
expect 403 "$OUT_F" DELETE /api/orders ns-deny "namespace ALLOW applies, no rule matches: frontend DELETE /api/orders"
assert_eq "RBAC: access denied" "$(cat "$T/body")" "the 403 comes from the inbound proxy"
expect_logged ns-deny "$NO_ALLOW_MATCHED" "namespace ALLOW, no match: logged as a deny without a policy"

# --- workload ALLOW (shop/orders-ops-reads, selector app=orders)
expect 200 "$OUT_O" GET /reports wl-allow "workload ALLOW: ops GET /reports"
expect_logged wl-allow "$(allowed shop/orders-ops-reads 0) and .peer_id == \"$OPS_ID\"" \
    "workload ALLOW: logged as shop/orders-ops-reads rule 0 with the peer"
expect 403 "$OUT_O" PUT /reports wl-deny "workload ALLOW, no match: ops PUT /reports"
expect_logged wl-deny "$NO_ALLOW_MATCHED" "workload ALLOW, no match: logged as a deny without a policy"

# --- mesh DENY (istio-system/deny-debug)
expect 403 "$OUT_F" GET /debug/vars mesh-deny "mesh DENY: frontend GET /debug/vars"
expect_logged mesh-deny "$(denied_by istio-system/deny-debug 0)" \
    "mesh DENY: logged as istio-system/deny-debug rule 0"
expect 200 "$OUT_O" GET /debug/vars mesh-pass "mesh DENY excludes ops: ops GET /debug/vars"
expect_logged mesh-pass "$(allowed shop/orders-ops-reads 0)" \
    "mesh DENY not matching: the workload ALLOW decides"

# --- AUDIT (shop/audit-writes): logged with the decision, never deciding
mark_log "$ORDERS_LOG"
expect 200 "$OUT_F" POST /api/orders audit-allow "AUDIT matches, ALLOW allows: frontend POST /api/orders"
expect_logged audit-allow "$(allowed shop/allow-frontend 0)" "AUDIT: the allow is shop/allow-frontend's"
assert_logged "$ORDERS_LOG" "rbac audit policy=shop/audit-writes decision=allow .*peer_id=$FRONTEND_ID request=\"POST /api/orders\"" \
    "AUDIT: the match is logged with decision allow"
mark_log "$ORDERS_LOG"
expect 403 "$OUT_O" DELETE /reports audit-deny "AUDIT matches, no ALLOW does: ops DELETE /reports"
expect_logged audit-deny "$NO_ALLOW_MATCHED" "AUDIT does not allow: logged as a deny without a policy"
assert_logged "$ORDERS_LOG" "rbac audit policy=shop/audit-writes decision=deny .*peer_id=$OPS_ID request=\"DELETE /reports\"" \
    "AUDIT: the match is logged with decision deny"

# --- namespace web's policies do not apply: web/deny-all would deny the
# allowed requests above, web/allow-all would allow the denied ones.
assert_not_contains "$ALOG" '"rbac_policy":"web/' "no decision names a policy of namespace web"

# --- nginx served exactly the allowed requests, in order
wait_for_match "$APP_LOG" '"POST /api/orders ' $((5 * SLOW)) || true
served=$(awk -F'"' '{print $2}' "$APP_LOG" | paste -sd'|')
assert_eq "GET /api/orders HTTP/1.1|GET /healthz HTTP/1.1|GET /reports HTTP/1.1|GET /debug/vars HTTP/1.1|POST /api/orders HTTP/1.1" \
    "$served" "nginx served exactly the allowed requests"
assert_not_contains "$APP_LOG" '"(DELETE|PUT) ' "no denied request reached nginx"

# --- mTLS modes from PeerAuthentication
plain() { # PORT PATH ID: status of a plaintext request straight to an inbound listener
    "${CURL[@]}" -o "$T/body" -w '%{http_code}' -H "x-request-id: $3" "http://127.0.0.1:$1$2" \
        2>>"$T/clients.err" || true
}
assert_eq 000 "$(plain "$IN_PORT" /healthz pa-strict)" \
    "STRICT (namespace PeerAuthentication): plaintext gets no HTTP answer"
assert_eq 200 "$(plain "$IN_PA" /healthz pa-open)" \
    "PERMISSIVE (portLevelMtls): plaintext GET /healthz, allowed without a principal, gets 200"
expect_logged pa-open "$(allowed shop/allow-frontend 1) and .tls_cipher == \"none\" and .peer_id == null" \
    "PERMISSIVE: the plaintext request is logged with tls_cipher none and no peer"
assert_eq 403 "$(plain "$IN_PA" /api/orders pa-denied)" \
    "PERMISSIVE: plaintext GET /api/orders, which needs a principal, gets 403"
expect_logged pa-denied "$NO_ALLOW_MATCHED" "PERMISSIVE: the plaintext 403 is a deny without a policy"
assert_eq "GET /healthz HTTP/1.1" "$(awk -F'"' '{print $2}' "$T/legacy.access" | paste -sd'|')" \
    "PERMISSIVE: the app behind it saw only the allowed plaintext request"
assert_contains "$T/check.err" "shop/orders-legacy-port: spec\.portLevelMtls\.$APP_PA\.mode: PERMISSIVE: traffic where it applies is not protected by mTLS" \
    "check: the PERMISSIVE PeerAuthentication is warned about"
assert_contains "$T/check.err" "listener \"in-legacy\" has mtls permissive" \
    "check: the listener it makes permissive is warned about"

# --- connection.sni: the name a client sends in its ClientHello (Outrider's
# own outbound sends none, so a client with a certificate calls directly)
server_pin="sha256//$(openssl pkey -in "$T/pki/shop-orders/key.pem" -pubout -outform DER |
    openssl dgst -sha256 -binary | base64)"
sni_get() { # NAME ID: status of frontend's mTLS GET /api/orders with SNI NAME
    "${CURL[@]}" -o "$T/body" -w '%{http_code}' -k --pinnedpubkey "$server_pin" \
        --cert "$T/pki/web-frontend/cert.pem" --key "$T/pki/web-frontend/key.pem" \
        -H "x-request-id: $2" --resolve "$1:$IN_PORT:127.0.0.1" "https://$1:$IN_PORT/api/orders" \
        2>>"$T/clients.err" || true
}
assert_eq 403 "$(sni_get blocked.example sni-deny)" "connection.sni: the DENY matches SNI blocked.example"
expect_logged sni-deny "$(denied_by shop/deny-sni 0)" "connection.sni: logged as shop/deny-sni rule 0"
assert_eq 200 "$(sni_get orders.example sni-allow)" "connection.sni: another name passes the DENY"
expect_logged sni-allow "$(allowed shop/allow-frontend 0)" "connection.sni: the ALLOW decides for another name"
assert_eq 2 "$(grep -c -F '"GET /api/orders HTTP/1.1"' "$APP_LOG")" \
    "connection.sni: nginx served the allowed request only (two GET /api/orders in all)"

# --- outrider explain on Istio-decided requests
STATUS=0
timeout $((20 * SLOW)) "$OUTRIDER" explain -c "$T/orders/config.yaml" --principal "$FRONTEND_ID" \
    --method DELETE --path /api/orders >"$T/explain-deny.out" 2>"$T/explain-deny.err" || STATUS=$?
assert_exit 2 "$STATUS" "explain: frontend DELETE /api/orders is denied"
assert_contains "$T/explain-deny.out" '^decision: DENY: Istio ALLOW policies apply to this workload and none matched \(what they do not allow is denied\)$' \
    "explain: the deny of applying ALLOW policies"
assert_contains "$T/explain-deny.out" '^policies considered \(service "orders", namespace "shop", 5 apply, default allow\):$' \
    "explain: the namespace from the SPIFFE ID, 5 policies apply"
assert_contains "$T/explain-deny.out" "^  allow \"shop/allow-frontend\" at $POLICIES/10-shop\.yaml:1:1: no match$" \
    "explain: shop/allow-frontend did not match"
assert_contains "$T/explain-deny.out" "^  \"web/allow-all\" \(another namespace\) at $POLICIES/30-web\.yaml:1:1$" \
    "explain: web/allow-all skipped (another namespace)"
assert_contains "$T/explain-deny.out" "^  \"web/deny-all\" \(another namespace\) at $POLICIES/30-web\.yaml:10:1$" \
    "explain: web/deny-all skipped (another namespace)"
assert_contains "$T/explain-deny.out" "^  \"shop/payments-open\" \(selector does not match the workload's labels\) at $POLICIES/20-shop-workloads\.yaml:[0-9]+:1$" \
    "explain: shop/payments-open skipped (selector)"

STATUS=0
timeout $((20 * SLOW)) "$OUTRIDER" explain -c "$T/orders/config.yaml" --principal "$FRONTEND_ID" \
    --method POST --path /api/orders >"$T/explain-allow.out" 2>"$T/explain-allow.err" || STATUS=$?
assert_exit 0 "$STATUS" "explain: frontend POST /api/orders is allowed"
assert_contains "$T/explain-allow.out" "^decision: ALLOW by policy \"shop/allow-frontend\" rule 0 \(action allow, $POLICIES/10-shop\.yaml:1:1\)$" \
    "explain: the decision names shop/allow-frontend rule 0"
assert_contains "$T/explain-allow.out" '^audit: policy "shop/audit-writes" matched$' \
    "explain: the AUDIT match is reported"
check_sanitizers "$T/explain-deny.err" "explain"
check_sanitizers "$T/explain-allow.err" "explain"

stop_proxy frontend
stop_proxy ops
stop_proxy orders
