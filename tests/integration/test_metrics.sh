#!/usr/bin/env bash
# Labelled metrics, /stats?format=json, trace context and the Grafana
# dashboard, on a real mesh with known traffic.
#
#   curl -> frontend (out, out-down, out-tcp) =mTLS=> orders (in, in-tcp, 2 workers) -> nginx / echo
#   curl -> billing  (out)                    =mTLS=> orders (in)
#
# Traffic: frontend 3 x 200, 1 x 403 (policy "block"), 2 x 503 (out-down's
# upstream is down); billing 2 x 200 and 1 x 404; two tcp connections of 6
# bytes each way through out-tcp. Then each sidecar's /stats must hold these
# exact counts under the right labels: requests by listener, direction,
# peer (inbound: the caller; outbound: the called peer) and code, histogram
# counts equal to the requests, RBAC denials by policy and caller, pool
# counters, handshakes full/resumed and connect failures. /stats passes
# `promtool check metrics`; ?format=json parses and agrees with the text.
# Trace context: a request without traceparent reaches the app with a
# generated one whose trace ID both access logs carry; one with
# traceparent, tracestate and B3 headers arrives unchanged. Every series the
# dashboard (config-examples/grafana/outrider.json) queries is in a scrape.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

for tool in jq promtool; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh installs it)"
done

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend ns/web/sa/billing
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)
BILLING_ID=$(spiffe_id ns/web/sa/billing)
alloc_ports APP ECHO_APP DOWN IN IN_TCP OUT OUT_DOWN OUT_TCP B_OUT ADMIN_O ADMIN_F ADMIN_B

# The deny policy is scoped by `ports` to nginx's port: on the tcp listener
# its HTTP-only field would match (fail closed) and deny the connection.
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
workers: 2
admin: {listen: 127.0.0.1:$ADMIN_O}
access_log: {path: $T/orders-access.log, format: json}
rbac:
  default: allow
  policies:
    - name: block
      action: deny
      rules:
        - to: [{paths: ["/private*"], ports: [$APP]}]
listeners:
$(inbound_listener in "$IN" "$APP" http)
$(inbound_listener in-tcp "$IN_TCP" "$ECHO_APP" tcp)
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
workers: 1
admin: {listen: 127.0.0.1:$ADMIN_F}
access_log: {path: $T/frontend-access.log, format: text}
listeners:
$(outbound_listener out "$OUT" "$IN" "$ORDERS_ID" http)
$(outbound_listener out-down "$OUT_DOWN" "$DOWN" "$ORDERS_ID" http)
$(outbound_listener out-tcp "$OUT_TCP" "$IN_TCP" "$ORDERS_ID" tcp)
EOF
write_config "$T/billing.yaml" billing "$T/pki/web-billing" <<EOF
workers: 1
admin: {listen: 127.0.0.1:$ADMIN_B}
listeners:
$(outbound_listener out "$B_OUT" "$IN" "$ORDERS_ID" http)
EOF

# shellcheck disable=SC2016 # nginx variables
NGINX_LOG_EXTRA=' tp="$http_traceparent" ts="$http_tracestate" b3="$http_b3" b3t="$http_x_b3_traceid"'
start_nginx app "$APP" <<'NGINX'
        location /missing { return 404 "no\n"; }
        location / { return 200 "ok\n"; }
NGINX
start_echo_app echo "$ECHO_APP"
start_proxy orders "$T/orders.yaml" "$IN" "$IN_TCP" "$ADMIN_O"
start_proxy frontend "$T/frontend.yaml" "$OUT" "$OUT_DOWN" "$OUT_TCP" "$ADMIN_F"
start_proxy billing "$T/billing.yaml" "$B_OUT" "$ADMIN_B"

code() { # code PORT PATH [CURL ARGS...]
    local port=$1 path=$2
    shift 2
    curl -s -o /dev/null -w '%{http_code}' --max-time $((10 * SLOW)) "$@" "http://127.0.0.1:$port$path" || true
}

# --- known traffic
for i in 1 2 3; do
    assert_eq 200 "$(code "$OUT" "/public/$i" -H "x-request-id: f-ok-$i")" "frontend request $i: 200"
done
assert_eq 403 "$(code "$OUT" /private/x)" "frontend /private: 403 by policy block"
for i in 1 2; do
    assert_eq 503 "$(code "$OUT_DOWN" /x)" "frontend to a down upstream $i: 503"
done
for i in 1 2; do
    assert_eq 200 "$(code "$B_OUT" "/public/b$i")" "billing request $i: 200"
done
assert_eq 404 "$(code "$B_OUT" /missing)" "billing /missing: 404"
printf 'hello\n' >"$T/tcp.in"
for i in 1 2; do
    tcp_exchange "$OUT_TCP" "$T/tcp.in" "$T/tcp.out.$i" || true
    assert_eq hello "$(cat "$T/tcp.out.$i")" "tcp connection $i echoes"
done

# The tcp connections' metrics are counted when they close.
sleep 0.5

scrape() { # scrape ADMIN_PORT NAME [QUERY] -> $T/NAME
    curl -s -o "$T/$2" -w '%{http_code}' --max-time 5 "http://127.0.0.1:$1/stats${3:-}" || true
}
# value FILE METRIC LABELS: the value of the sample METRIC{LABELS} (labels
# written as in the exposition, in order), or "absent".
value() {
    local line
    line=$(grep -F -- "$2{$3} " "$T/$1" | head -n1)
    [ -n "$line" ] && echo "${line##* }" || echo absent
}
assert_eq 200 "$(scrape "$ADMIN_O" orders.prom)" "orders /stats answers 200"
assert_eq 200 "$(scrape "$ADMIN_F" frontend.prom)" "frontend /stats answers 200"
assert_eq 200 "$(scrape "$ADMIN_B" billing.prom)" "billing /stats answers 200"

# --- orders, inbound: by caller and code, summed over its two workers
in_labels() { echo "listener=\"in\",direction=\"inbound\",peer=\"$1\",code=\"$2\",class=\"$3\""; }
for row in "$FRONTEND_ID 200 2xx 3" "$FRONTEND_ID 403 4xx 1" "$BILLING_ID 200 2xx 2" "$BILLING_ID 404 4xx 1"; do
    read -r peer c cls n <<<"$row"
    l=$(in_labels "$peer" "$c" "$cls")
    assert_eq "$n" "$(value orders.prom outrider_requests_total "$l")" "orders: $n request(s) from ${peer##*/} answered $c"
    assert_eq "$n" "$(value orders.prom outrider_request_duration_seconds_count "$l")" \
        "orders: the duration histogram of ${peer##*/}/$c counts $n"
    assert_eq "$n" "$(value orders.prom outrider_request_duration_seconds_bucket "$l,le=\"+Inf\"")" \
        "orders: its +Inf bucket holds them all"
    assert_eq "$n" "$(value orders.prom outrider_response_size_bytes_count "$l")" \
        "orders: the response size histogram of ${peer##*/}/$c counts $n"
done
assert_eq 7 "$(grep -E '^outrider_requests_total\{' "$T/orders.prom" | awk '{ s += $2 } END { print s }')" \
    "orders: 7 requests in all, no other series"
assert_eq 3 "$(value orders.prom outrider_response_size_bytes_bucket "$(in_labels "$FRONTEND_ID" 200 2xx),le=\"64\"")" \
    "orders: 3-byte responses fall in the 64-byte bucket"
assert_eq 1 "$(value orders.prom outrider_rbac_denied_total "listener=\"in\",policy=\"block\",peer=\"$FRONTEND_ID\"")" \
    "orders: one denial by policy block of the frontend"
assert_eq 1 "$(grep -c '^outrider_rbac_denied_total{' "$T/orders.prom")" "orders: no other denial series"
assert_eq 1 "$(value orders.prom outrider_rbac_policy_decisions_total 'policy="block",decision="deny"')" \
    "orders: the per-policy counter stays"
tcp_labels="listener=\"in-tcp\",direction=\"inbound\",peer=\"$FRONTEND_ID\""
assert_eq 2 "$(value orders.prom outrider_tcp_connections_opened_total "$tcp_labels")" "orders: 2 tcp connections opened"
assert_eq 2 "$(value orders.prom outrider_tcp_connections_closed_total "$tcp_labels")" "orders: 2 tcp connections closed"
assert_eq 12 "$(value orders.prom outrider_tcp_received_bytes_total "$tcp_labels")" "orders: 12 tcp bytes received"
assert_eq 12 "$(value orders.prom outrider_tcp_sent_bytes_total "$tcp_labels")" "orders: 12 tcp bytes sent"
# One pooled connection from each caller: two full handshakes on "in"; the
# frontend resumes its session for the second tcp connection.
assert_eq 2 "$(value orders.prom outrider_tls_handshakes_total 'listener="in",type="full"')" "orders: 2 full handshakes on in"
assert_eq 0 "$(value orders.prom outrider_tls_handshakes_total 'listener="in",type="resumed"')" "orders: none resumed on in"
assert_eq 1 "$(value orders.prom outrider_tls_handshakes_total 'listener="in-tcp",type="full"')" "orders: 1 full handshake on in-tcp"
assert_eq 1 "$(value orders.prom outrider_tls_handshakes_total 'listener="in-tcp",type="resumed"')" "orders: 1 resumed on in-tcp"
assert_eq 2 "$(value orders.prom outrider_tls_handshake_duration_seconds_count 'listener="in-tcp"')" \
    "orders: the handshake histogram of in-tcp counts both handshakes"
assert_eq 1 "$(value orders.prom outrider_upstream_connections_open 'listener="in"' | awk '{ print ($1 >= 1) }')" \
    "orders: at least one pooled connection to the app is open"
assert_eq 0 "$(value orders.prom outrider_metric_label_overflow_total 'listener="in",label="peer"')" "orders: no peer overflow"
assert_contains "$T/orders.prom" \
    '^outrider_bundle_root_expiry_timestamp_seconds\{subject="O=Outrider dev, CN=Outrider dev root CA",sha256="[0-9a-f]{16}"\} [0-9]{10}$' \
    "orders: the bundle root's expiry, by subject and fingerprint"

# --- frontend, outbound: by called peer; the pool; the down upstream
out_labels() { echo "listener=\"$1\",direction=\"outbound\",peer=\"$ORDERS_ID\",code=\"$2\",class=\"$3\""; }
assert_eq 3 "$(value frontend.prom outrider_requests_total "$(out_labels out 200 2xx)")" "frontend: 3 x 200 to orders"
assert_eq 1 "$(value frontend.prom outrider_requests_total "$(out_labels out 403 4xx)")" "frontend: 1 x 403 from orders"
assert_eq 2 "$(value frontend.prom outrider_requests_total "$(out_labels out-down 503 5xx)")" "frontend: 2 x 503 on out-down"
assert_eq 2 "$(value frontend.prom outrider_request_duration_seconds_count "$(out_labels out-down 503 5xx)")" \
    "frontend: the 503s are in the duration histogram"
assert_eq 1 "$(value frontend.prom outrider_upstream_connections_created_total 'listener="out"')" "frontend: one pooled connection made"
assert_eq 1 "$(value frontend.prom outrider_upstream_connections_open 'listener="out"')" "frontend: it is open"
assert_eq 1 "$(value frontend.prom outrider_upstream_connections_idle 'listener="out"')" "frontend: and idle"
assert_eq 0 "$(value frontend.prom outrider_upstream_connections_closed_total 'listener="out"')" "frontend: none closed"
assert_eq 0 "$(value frontend.prom outrider_upstream_requests_waiting 'listener="out"')" "frontend: nothing waits"
assert_eq 0 "$(value frontend.prom outrider_upstream_retries_total 'listener="out"')" "frontend: no retries"
assert_eq 2 "$(value frontend.prom outrider_upstream_connect_failures_total 'listener="out-down",reason="refused"')" \
    "frontend: 2 connections to the down upstream refused"
assert_eq 0 "$(value frontend.prom outrider_upstream_connections_created_total 'listener="out-down"')" "frontend: none made to it"
assert_eq 1 "$(value frontend.prom outrider_tls_handshakes_total 'listener="out",type="full"')" "frontend: 1 full handshake on out"
assert_eq 1 "$(value frontend.prom outrider_tls_handshakes_total 'listener="out-tcp",type="full"')" "frontend: 1 full handshake on out-tcp"
assert_eq 1 "$(value frontend.prom outrider_tls_handshakes_total 'listener="out-tcp",type="resumed"')" "frontend: 1 resumed on out-tcp"
assert_eq 0 "$(value frontend.prom outrider_upstream_handshake_failures_total 'listener="out",reason="unexpected SPIFFE ID"')" \
    "frontend: no handshake failures with the peer"
tcp_out="listener=\"out-tcp\",direction=\"outbound\",peer=\"$ORDERS_ID\""
assert_eq 2 "$(value frontend.prom outrider_tcp_connections_closed_total "$tcp_out")" "frontend: 2 tcp connections to orders closed"
assert_eq 12 "$(value frontend.prom outrider_tcp_sent_bytes_total "$tcp_out")" "frontend: 12 tcp bytes sent back to the client"
assert_eq 2 "$(value billing.prom outrider_requests_total "listener=\"out\",direction=\"outbound\",peer=\"$ORDERS_ID\",code=\"200\",class=\"2xx\"")" \
    "billing: 2 x 200 to orders"

# --- the exposition is valid
for f in orders frontend billing; do
    if promtool check metrics <"$T/$f.prom" >"$T/$f.promtool" 2>&1; then
        pass "$f: promtool check metrics accepts /stats"
    else
        mapfile -t lines < <(head -n 10 "$T/$f.promtool")
        fail "$f: promtool check metrics accepts /stats" "${lines[@]}"
    fi
done

# --- JSON: parses and agrees with the text
assert_eq 200 "$(scrape "$ADMIN_O" orders.json '?format=json')" "orders /stats?format=json answers 200"
assert_eq 200 "$(scrape "$ADMIN_O" orders2.prom)" "orders /stats again"
if jq -e '.metrics | length > 0' "$T/orders.json" >/dev/null 2>&1; then
    pass "the JSON parses"
else
    fail "the JSON parses" "$(head -c 300 "$T/orders.json")"
fi
assert_eq "$(grep -vc '^#' "$T/orders2.prom")" "$(jq '[.metrics[].samples[]] | length' "$T/orders.json")" \
    "the JSON has as many samples as the text"
assert_eq "$(grep -c '^# TYPE' "$T/orders2.prom")" "$(jq '.metrics | length' "$T/orders.json")" \
    "the JSON has as many families as the text"
assert_eq 3 "$(jq --arg p "$FRONTEND_ID" '.metrics[] | select(.name == "outrider_requests_total") | .samples[]
    | select(.labels.peer == $p and .labels.code == "200" and .labels.listener == "in") | .value' "$T/orders.json")" \
    "JSON: 3 requests from the frontend answered 200"
assert_eq histogram "$(jq -r '.metrics[] | select(.name == "outrider_request_duration_seconds") | .type' "$T/orders.json")" \
    "JSON: the duration family is a histogram"
assert_eq 1 "$(jq --arg p "$FRONTEND_ID" '.metrics[] | select(.name == "outrider_rbac_denied_total") | .samples[]
    | select(.labels.peer == $p and .labels.policy == "block") | .value' "$T/orders.json")" "JSON: the denial"
text_sum=$(grep -E '^outrider_requests_total\{' "$T/orders2.prom" | awk '{ s += $2 } END { print s }')
assert_eq "$text_sum" "$(jq '[.metrics[] | select(.name == "outrider_requests_total") | .samples[].value] | add' "$T/orders.json")" \
    "JSON and text agree on the requests"
assert_eq 400 "$(scrape "$ADMIN_O" bad '?format=xml')" "an unknown format answers 400"

# --- trace context
mark_log "$T/app.access"
assert_eq 200 "$(code "$OUT" /traced -H 'x-request-id: tp-none')" "a request without traceparent"
assert_contains "$T/app.access" 'rid="tp-none".* tp="00-[0-9a-f]{32}-[0-9a-f]{16}-01"' \
    "the app receives a generated traceparent (version 00, sampled)"
tp=$(grep -F 'rid="tp-none"' "$T/app.access" | sed -E 's/.* tp="([^"]*)".*/\1/')
trace=${tp:3:32}
assert_contains "$T/frontend-access.log" "request_id=tp-none trace_id=$trace\$" \
    "the outbound access log carries the generated trace ID"
assert_contains "$T/orders-access.log" "\"request_id\":\"tp-none\",\"trace_id\":\"$trace\"" \
    "the inbound access log carries the same trace ID"
given_tp=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01
assert_eq 200 "$(code "$OUT" /traced2 -H 'x-request-id: tp-given' -H "traceparent: $given_tp" \
    -H 'tracestate: congo=t61rcWkgMzE,rojo=00f067aa0ba902b7' -H 'b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1' \
    -H 'x-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7')" "a request with traceparent, tracestate and B3"
assert_contains "$T/app.access" \
    "rid=\"tp-given\".* tp=\"$given_tp\" ts=\"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7\" b3=\"80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1\" b3t=\"80f198ee56343ba864fe8b2a57d3eff7\"" \
    "the app receives them unchanged"
assert_contains "$T/frontend-access.log" 'request_id=tp-given trace_id=4bf92f3577b34da6a3ce929d0e0e4736$' \
    "the access log carries the given trace ID"
assert_eq 1 "$(grep -c 'rid="tp-given"' "$T/app.access")" "one request, one line"

# --- the dashboard queries only series that exist
DASH=$OUTRIDER_SRC/config-examples/grafana/outrider.json
jq -e . "$DASH" >/dev/null || fail "the dashboard is JSON"
cat "$T/orders.prom" "$T/frontend.prom" >"$T/all.prom"
mapfile -t names < <(jq -r '.. | strings' "$DASH" | grep -oE 'outrider_[a-z0-9_]+' | sort -u)
[ "${#names[@]}" -ge 20 ] || fail "the dashboard queries the metrics" "only ${#names[@]} names found"
missing=()
for n in "${names[@]}"; do
    grep -E -q "^$n(\{| )" "$T/all.prom" || missing+=("$n")
done
if [ "${#missing[@]}" -eq 0 ]; then
    pass "every one of the dashboard's ${#names[@]} series is in a scrape"
else
    fail "every series the dashboard queries is in a scrape" "missing: ${missing[*]}"
fi

stop_proxy billing
stop_proxy frontend
stop_proxy orders
