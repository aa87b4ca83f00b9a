#!/usr/bin/env bash
# RBAC through real sidecar pairs on protocol http (and one tcp listener).
#
#   curl -> outbound "frontend" (ns/web/sa/frontend) =mTLS=> inbound "orders" -> nginx
#   curl -> outbound "ops"      (ns/ops/sa/bot)      =mTLS=> inbound "orders" -> nginx
#
# "orders" has rbac.default deny and its policies in policies.yaml next to
# its config. Each inbound listener forwards to its own nginx port and gets
# its own policies, tied to it by `to: ports` (the destination port is the
# application's, the listener's upstream port, as in Istio), so one proxy
# shows every policy shape. A second inbound proxy, "open", has rbac.default allow
# and one inline deny policy.
#
# Checks, each with a request that is allowed and one that is denied (403
# from the inbound proxy, relayed by the outbound; the app never sees it):
# principals, namespaces, not_principals, ip_blocks (127.0.0.0/8 allows,
# 10.0.0.0/8 does not), methods + paths, hosts, when (x-tenant), deny beats
# allow, a dry_run deny does not block, audit does not allow, rbac.default
# deny (no policy) and allow (inline policies); every decision is in the
# inbound's JSON access log with the deciding policy; a dry_run and an audit
# match are logged by name. A 403 and a 200 on one keep-alive connection:
# both answered, one client connection, one mTLS connection. A tcp inbound
# listener whose deny policy names the client closes the connection right
# after the handshake (no data) and logs "rbac denied". `outrider explain`
# on the same config: exit 0 and the allowing policy for an allowed request,
# exit 2 and the denying policy for a denied one.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend ns/ops/sa/bot
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)
OPS_ID=$(spiffe_id ns/ops/sa/bot)

# Inbound listeners of "orders", by name; each gets an outbound listener on
# both client proxies.
NAMES=(prin ns notp ip ip10 ops hosts when deny dry audit none)
alloc_ports OPEN_APP ECHO_APP IN_TCP IN_OPEN OUT_F_TCP OUT_O_TCP OUT_F_OPEN
declare -A APP IN OUT_F OUT_O
p_app='' p_in='' p_f='' p_o=''
for n in "${NAMES[@]}"; do
    alloc_ports p_app p_in p_f p_o
    APP[$n]=$p_app
    IN[$n]=$p_in
    OUT_F[$n]=$p_f
    OUT_O[$n]=$p_o
done

ALOG=$T/orders-access.log
OPEN_ALOG=$T/open-access.log
mkdir -p "$T/orders"
listeners=""
for n in "${NAMES[@]}"; do
    listeners+=$(inbound_listener "in-$n" "${IN[$n]}" "${APP[$n]}" http)$'\n'
done
write_config "$T/orders/config.yaml" orders "$T/pki/shop-orders" <<EOF
rbac:
  default: deny
  policies: policies.yaml
access_log: {path: $ALOG, format: json}
listeners:
$listeners$(inbound_listener in-tcp "$IN_TCP" "$ECHO_APP" tcp)
EOF

cat >"$T/orders/policies.yaml" <<EOF
policies:
  - name: allow-frontend
    action: allow
    rules:
      - from: [{principals: ["$FRONTEND_ID"]}]
        to: [{ports: [${APP[prin]}]}]
  - name: allow-ops-namespace
    action: allow
    rules:
      - from: [{namespaces: ["ops"]}]
        to: [{ports: [${APP[ns]}]}]
  - name: allow-all-but-frontend
    action: allow
    rules:
      - from: [{not_principals: ["$FRONTEND_ID"]}]
        to: [{ports: [${APP[notp]}]}]
  - name: allow-loopback
    action: allow
    rules:
      - from: [{ip_blocks: ["127.0.0.0/8"]}]
        to: [{ports: [${APP[ip]}]}]
  - name: allow-ten
    action: allow
    rules:
      - from: [{ip_blocks: ["10.0.0.0/8"]}]
        to: [{ports: [${APP[ip10]}]}]
  - name: allow-api-reads
    action: allow
    rules:
      - to: [{methods: [GET], paths: ["/api/*"], ports: [${APP[ops]}]}]
  - name: allow-hosts
    action: allow
    rules:
      - to: [{hosts: ["orders.shop", "*.orders.example"], ports: [${APP[hosts]}]}]
  - name: allow-tenants
    action: allow
    rules:
      - to: [{ports: [${APP[when]}]}]
        when:
          - header: x-tenant
            values: ["acme", "beta-*"]
  - name: allow-deny-port
    action: allow
    rules:
      - to: [{ports: [${APP[deny]}]}]
  - name: deny-admin
    action: deny
    rules:
      - to: [{paths: ["/admin/*"], ports: [${APP[deny]}]}]
  - name: allow-dry-port
    action: allow
    rules:
      - to: [{ports: [${APP[dry]}]}]
  - name: dry-run-deny
    action: deny
    dry_run: true
    rules:
      - to: [{paths: ["/dry/*"], ports: [${APP[dry]}]}]
  - name: audit-everything
    action: audit
    rules:
      - to: [{ports: [${APP[audit]}]}]
  - name: allow-audit-reads
    action: allow
    rules:
      - to: [{methods: [GET], ports: [${APP[audit]}]}]
  - name: allow-tcp
    action: allow
    rules:
      - to: [{ports: [$ECHO_APP]}]
  - name: deny-frontend-tcp
    action: deny
    rules:
      - from: [{principals: ["$FRONTEND_ID"]}]
        to: [{ports: [$ECHO_APP]}]
EOF

write_config "$T/open.yaml" orders "$T/pki/shop-orders" <<EOF
rbac:
  default: allow
  policies:
    - name: deny-blocked
      action: deny
      rules:
        - to: [{paths: ["/blocked/*"]}]
access_log: {path: $OPEN_ALOG, format: json}
listeners:
$(inbound_listener in-open "$IN_OPEN" "$OPEN_APP" http)
EOF

f_listeners=""
o_listeners=""
for n in "${NAMES[@]}"; do
    f_listeners+=$(outbound_listener "out-$n" "${OUT_F[$n]}" "${IN[$n]}" "$ORDERS_ID" http)$'\n'
    o_listeners+=$(outbound_listener "out-$n" "${OUT_O[$n]}" "${IN[$n]}" "$ORDERS_ID" http)$'\n'
done
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
listeners:
$f_listeners$(outbound_listener out-tcp "$OUT_F_TCP" "$IN_TCP" "$ORDERS_ID" tcp)
$(outbound_listener out-open "$OUT_F_OPEN" "$IN_OPEN" "$ORDERS_ID" http)
EOF
write_config "$T/ops.yaml" ops "$T/pki/ops-bot" <<EOF
listeners:
$o_listeners$(outbound_listener out-tcp "$OUT_O_TCP" "$IN_TCP" "$ORDERS_ID" tcp)
EOF

app_ports=()
for n in "${NAMES[@]}"; do app_ports+=("${APP[$n]}"); done
start_nginx app "$OPEN_APP" "${app_ports[@]}" <<EOF
        location / { return 200 "app: \$request_method \$request_uri\n"; }
EOF
APP_LOG=$T/app.access
start_echo_app echo "$ECHO_APP"

in_ports=()
f_ports=()
o_ports=()
for n in "${NAMES[@]}"; do
    in_ports+=("${IN[$n]}")
    f_ports+=("${OUT_F[$n]}")
    o_ports+=("${OUT_O[$n]}")
done
start_proxy orders "$T/orders/config.yaml" "${in_ports[@]}" "$IN_TCP"
start_proxy open "$T/open.yaml" "$IN_OPEN"
start_proxy frontend "$T/frontend.yaml" "${f_ports[@]}" "$OUT_F_TCP" "$OUT_F_OPEN"
start_proxy ops "$T/ops.yaml" "${o_ports[@]}" "$OUT_O_TCP"
ORDERS_LOG=$(proxy_log orders)

CURL=(curl -sS --http1.1 --max-time $((20 * SLOW)))

# expect STATUS PORT PATH WHAT [CURL ARGS...]: one request through the
# outbound listener on PORT is answered STATUS.
expect() {
    local want=$1 port=$2 path=$3 what=$4 code
    shift 4
    code=$("${CURL[@]}" -o "$T/body" -w '%{http_code}' "$@" "http://127.0.0.1:$port$path" 2>>"$T/clients.err") ||
        true
    assert_eq "$want" "${code:-000}" "$what: $want"
}

# json_line ID: the inbound access log line of the request with that
# x-request-id, waiting for the writer thread.
json_line() {
    local file=${2:-$ALOG}
    wait_for_match "$file" "\"request_id\":\"$1\"" $((5 * SLOW)) || true
    grep -F "\"request_id\":\"$1\"" "$file" | tail -n1 || true
}

# expect_logged ID JQ_FILTER WHAT [FILE]: the access log line of request ID
# parses and satisfies the jq filter.
expect_logged() {
    local line
    line=$(json_line "$1" "${4:-$ALOG}")
    if [ -n "$line" ] && jq -e "$2" >/dev/null 2>&1 <<<"$line"; then
        pass "$3"
    else
        fail "$3" "expected the log line of request $1 to satisfy: $2" "     got: ${line:-(no line)}"
    fi
}

# --- principals
expect 200 "${OUT_F[prin]}" /x "principals: the listed principal is allowed" -H 'x-request-id: prin-ok'
expect 403 "${OUT_O[prin]}" /x "principals: another principal is denied" -H 'x-request-id: prin-no'
assert_eq "RBAC: access denied" "$(cat "$T/body")" "the 403 comes from the inbound proxy"
expect_logged prin-ok '.rbac_decision == "allow" and .rbac_policy == "allow-frontend" and .rbac_rule == 0 and .status == 200' \
    "principals: the allow is logged with its policy"
expect_logged prin-no '.rbac_decision == "deny" and .rbac_policy == null and .status == 403 and .response_flags == "RBAC"' \
    "principals: the default deny is logged, flag RBAC"

# --- namespaces
expect 200 "${OUT_O[ns]}" /x "namespaces: a peer in ns ops is allowed" -H 'x-request-id: ns-ok'
expect_logged ns-ok ".peer_id == \"$OPS_ID\" and .rbac_policy == \"allow-ops-namespace\"" \
    "namespaces: the allow names the peer and allow-ops-namespace"
expect 403 "${OUT_F[ns]}" /x "namespaces: a peer in ns web is denied"

# --- not_principals
expect 200 "${OUT_O[notp]}" /x "not_principals: another principal is allowed"
expect 403 "${OUT_F[notp]}" /x "not_principals: the excluded principal is denied"

# --- ip_blocks
expect 200 "${OUT_F[ip]}" /x "ip_blocks 127.0.0.0/8: a loopback peer is allowed" -H 'x-request-id: ip-ok'
expect 403 "${OUT_F[ip10]}" /x "ip_blocks 10.0.0.0/8: a loopback peer is denied"
expect_logged ip-ok '.rbac_policy == "allow-loopback"' "ip_blocks: the allow names allow-loopback"

# --- methods and paths
expect 200 "${OUT_F[ops]}" /api/items "GET /api/items is allowed"
expect 200 "${OUT_F[ops]}" '/api/items?page=2' "GET /api/items?page=2 is allowed (the query is not matched)"
expect 403 "${OUT_F[ops]}" /api/items "DELETE /api/items is denied" -X DELETE
expect 403 "${OUT_F[ops]}" /other "GET /other is denied"

# --- hosts
expect 200 "${OUT_F[hosts]}" /x "hosts: Host orders.shop is allowed" -H 'Host: orders.shop'
expect 200 "${OUT_F[hosts]}" /x "hosts: Host eu.orders.example:8443 is allowed (port not matched)" \
    -H 'Host: eu.orders.example:8443'
expect 403 "${OUT_F[hosts]}" /x "hosts: Host evil.example is denied" -H 'Host: evil.example'

# --- when: x-tenant
expect 200 "${OUT_F[when]}" /x "when x-tenant: acme is allowed" -H 'x-tenant: acme'
expect 200 "${OUT_F[when]}" /x "when x-tenant: beta-7 is allowed" -H 'x-tenant: beta-7'
expect 403 "${OUT_F[when]}" /x "when x-tenant: other is denied" -H 'x-tenant: other'
expect 403 "${OUT_F[when]}" /x "when x-tenant: an absent header is denied"

# --- deny beats allow
expect 200 "${OUT_F[deny]}" /api/x "deny beats allow: a path no deny matches is allowed"
expect 403 "${OUT_F[deny]}" /admin/users "deny beats allow: /admin/users is denied" -H 'x-request-id: deny-admin'
expect_logged deny-admin '.rbac_decision == "deny" and .rbac_policy == "deny-admin" and .rbac_rule == 0' \
    "deny beats allow: the deny names deny-admin rule 0"

# --- dry_run: never enforced, but logged
mark_log "$ORDERS_LOG"
expect 200 "${OUT_F[dry]}" /dry/run "a dry_run deny does not block" -H 'x-request-id: dry-run-1'
expect_logged dry-run-1 '.rbac_decision == "allow" and .rbac_policy == "allow-dry-port"' \
    "dry_run: the enforced decision is logged as allow"
if grep -F '"request_id":"dry-run-1"' "$ALOG" | grep -q 'dry-run-deny' ||
    tail -c "+$((${LOG_MARK[$ORDERS_LOG]} + 1))" "$ORDERS_LOG" | grep -q 'dry-run-deny'; then
    pass "dry_run: the would-be deny by dry-run-deny is logged"
else
    fail "dry_run: the would-be deny by dry-run-deny is logged" \
        "neither the access log line nor the diagnostic log names policy dry-run-deny" \
        "access log: $(json_line dry-run-1)"
fi

# --- audit: never allows, but logged
mark_log "$ORDERS_LOG"
expect 200 "${OUT_F[audit]}" /x "audit + allow GET: GET is allowed" -H 'x-request-id: audit-get'
expect 403 "${OUT_F[audit]}" /x "audit + allow GET: POST is denied (audit does not allow)" -X POST -d x
expect_logged audit-get '.rbac_policy == "allow-audit-reads"' "audit: the allow policy decides, not the audit one"
if grep -F '"request_id":"audit-get"' "$ALOG" | grep -q 'audit-everything' ||
    tail -c "+$((${LOG_MARK[$ORDERS_LOG]} + 1))" "$ORDERS_LOG" | grep -q 'audit-everything'; then
    pass "audit: the match of audit-everything is logged"
else
    fail "audit: the match of audit-everything is logged" \
        "neither the access log line nor the diagnostic log names policy audit-everything" \
        "access log: $(json_line audit-get)"
fi

# --- rbac.default
expect 403 "${OUT_F[none]}" /x "rbac.default deny: a listener no policy covers denies" -H 'x-request-id: none-1'
expect_logged none-1 '.rbac_decision == "deny" and .rbac_policy == null and .rbac_rule == null' \
    "rbac.default deny: logged without a policy"
expect 200 "$OUT_F_OPEN" /fine "rbac.default allow (inline policies): an unmatched request is allowed" \
    -H 'x-request-id: open-ok'
expect 403 "$OUT_F_OPEN" /blocked/x "rbac.default allow: the inline deny policy denies" -H 'x-request-id: open-no'
expect_logged open-no '.rbac_decision == "deny" and .rbac_policy == "deny-blocked"' \
    "inline deny policy named in the log" "$OPEN_ALOG"
expect_logged open-ok '.rbac_decision == "allow" and .rbac_policy == null' \
    "rbac.default allow logged without a policy" "$OPEN_ALOG"

assert_not_contains "$APP_LOG" '"[A-Z]+ /(admin|blocked|other)' "the app never sees a denied request"

# --- 403 then 200 on one keep-alive connection
"${CURL[@]}" -w '%{http_code} %{num_connects}\n' -o /dev/null -H 'x-request-id: ka-denied' \
    "http://127.0.0.1:${OUT_F[ops]}/private" \
    --next -sS --http1.1 -w '%{http_code} %{num_connects}\n' -o /dev/null -H 'x-request-id: ka-allowed' \
    "http://127.0.0.1:${OUT_F[ops]}/api/after-403" >"$T/ka.out" 2>>"$T/clients.err" || true
assert_eq "403 1|200 0" "$(paste -sd'|' "$T/ka.out")" \
    "a 403 then a 200 on one client connection (status, new connections)"
src_denied=$(json_line ka-denied | jq -r .source 2>/dev/null || true)
src_allowed=$(json_line ka-allowed | jq -r .source 2>/dev/null || true)
if [ -n "$src_denied" ] && [ "$src_denied" = "$src_allowed" ]; then
    pass "the inbound proxy kept the mTLS connection after the 403 (both from $src_denied)"
else
    fail "the inbound proxy kept the mTLS connection after the 403" \
        "sources: denied=$src_denied allowed=$src_allowed"
fi
assert_contains "$APP_LOG" '"GET /api/after-403 HTTP/1\.1"' "the request after the 403 reaches the app"

# --- tcp listener: a deny policy closes the connection after the handshake
printf 'ping\n' >"$T/ping"
rc=0
tcp_exchange "$OUT_O_TCP" "$T/ping" "$T/tcp-ops.out" || rc=$?
assert_eq "ping" "$(cat "$T/tcp-ops.out")" "tcp: a principal no deny names gets its echo"
mark_log "$ORDERS_LOG"
rc=0
start_ns=$(date +%s%N)
tcp_exchange "$OUT_F_TCP" "$T/ping" "$T/tcp-frontend.out" || rc=$?
took=$(elapsed_ms "$start_ns")
assert_exit 0 "$rc" "tcp: the denied client's connection ends cleanly"
assert_empty "$T/tcp-frontend.out" "tcp: the denied client gets no data"
if [ "$took" -lt $((3000 * SLOW)) ]; then
    pass "tcp: the denied connection is closed promptly (${took}ms)"
else
    fail "tcp: the denied connection is closed promptly" "took ${took}ms"
fi
assert_logged "$ORDERS_LOG" "rbac denied listener=in-tcp peer=127\.0\.0\.1:[0-9]+ peer_id=$FRONTEND_ID policy=deny-frontend-tcp rule=0" \
    "tcp: the inbound proxy logs rbac denied with the policy"
wait_for_match "$ALOG" "\"listener\":\"in-tcp\".*\"peer_id\":\"$FRONTEND_ID\"" $((5 * SLOW)) || true
line=$(grep '"listener":"in-tcp"' "$ALOG" | grep -F "\"peer_id\":\"$FRONTEND_ID\"" | tail -n1 || true)
if [ -n "$line" ] && jq -e '.protocol == "tcp" and .rbac_decision == "deny" and .rbac_policy == "deny-frontend-tcp" and .response_flags == "RBAC" and .bytes_out == 0' \
    >/dev/null 2>&1 <<<"$line"; then
    pass "tcp: the access log has the denied connection"
else
    fail "tcp: the access log has the denied connection" "got: ${line:-(no line)}"
fi

# --- outrider explain on the same config
STATUS=0
timeout $((20 * SLOW)) "$OUTRIDER" explain -c "$T/orders/config.yaml" --principal "$FRONTEND_ID" \
    --port "${APP[ops]}" --method GET --path /api/items >"$T/explain-allow.out" 2>"$T/explain-allow.err" || STATUS=$?
assert_exit 0 "$STATUS" "explain: GET /api/items is allowed"
assert_contains "$T/explain-allow.out" '^decision: ALLOW by policy "allow-api-reads" rule 0 ' \
    "explain names allow-api-reads"
STATUS=0
timeout $((20 * SLOW)) "$OUTRIDER" explain -c "$T/orders/config.yaml" --principal "$FRONTEND_ID" \
    --port "${APP[deny]}" --path /admin/users >"$T/explain-deny.out" 2>"$T/explain-deny.err" || STATUS=$?
assert_exit 2 "$STATUS" "explain: /admin/users is denied"
assert_contains "$T/explain-deny.out" '^decision: DENY by policy "deny-admin" rule 0 ' "explain names deny-admin"
check_sanitizers "$T/explain-allow.err" "explain"
check_sanitizers "$T/explain-deny.err" "explain"

stop_proxy frontend
stop_proxy ops
stop_proxy open
stop_proxy orders
