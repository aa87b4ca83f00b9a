#!/usr/bin/env bash
# Keepalive on pooled connections between sidecars (timeouts.keepalive;
# docs/http2.md, "Upstream connections"): a connection over the hop that
# hears nothing from the peer sidecar for the keepalive gets a PING, and
# one that then hears nothing for as long again is given up as lost.
#
#   curl --http1.1 --> outbound "frontend" (keepalive 1s)
#       =(the hop: HTTP/2 over mTLS, ALPN outrider.h2)=> inbound "orders"
#       --(h2c, upstream_protocol: http2; keepalive 1s too)--> nghttpd (the app,
#         logging every frame it receives)
#
# Checks: an idle hop connection carries PINGs (its bytes sent grow with no
# request) and stays (the next request goes on the same connection); the
# inbound's h2c connection to the app gets no PING at all (gRPC servers
# close a connection pinged more than once in 5 minutes without data);
# with the inbound sidecar stopped (SIGSTOP: its kernel still acknowledges
# bytes, as for a peer whose host vanished behind a load balancer, or a
# hung process), a request fails with 502 (UC) within a few keepalives
# instead of timeouts.idle (60 s here), the outbound logs why and keeps no
# connection to it open; once the inbound runs again the next request
# opens a new connection and answers 200; both proxies exit clean.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v nghttpd >/dev/null || die "nghttpd not found (nghttp2-server; scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
alloc_ports APP IN OUT

mkdir -p "$T/htdocs"
printf 'hello keepalive\n' >"$T/htdocs/hello.txt"
start_bg app nghttpd --no-tls -a 127.0.0.1 -d "$T/htdocs" -v "$APP"
wait_port "$APP" || die "nghttpd does not listen on $APP"

TIMEOUTS="timeouts: {connect: 2s, handshake: 10s, idle: 60s, drain: 5s, keepalive: 1s}"
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<CONFIG
workers: 1
$TIMEOUTS
listeners:
$(inbound_listener in "$IN" "$APP" http)
    http2: true
    upstream_protocol: http2
CONFIG
OUT_ALOG=$T/frontend-access.log
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<CONFIG
workers: 1
$TIMEOUTS
access_log: {path: $OUT_ALOG, format: json}
listeners:
$(outbound_listener out "$OUT" "$IN" "$ORDERS_ID" http)
CONFIG
start_proxy orders "$T/orders.yaml" "$IN"
start_proxy frontend "$T/frontend.yaml" "$OUT"

# get PATH: prints "STATUS SECONDS"; the body is in $T/body.
get() {
    curl -sS --http1.1 -m $((30 * SLOW)) -o "$T/body" -w '%{http_code} %{time_total}' \
        "http://127.0.0.1:$OUT$1" 2>>"$T/clients.err" || true
}
# The outbound's established connections to the inbound: "LOCAL_PORT BYTES_SENT" lines.
hop_conns() {
    ss -Htin state established "( dport = :$IN )" 2>/dev/null |
        awk '/^[0-9]/ { n = split($3, a, ":"); port = a[n] }
             /bytes_sent:/ { match($0, /bytes_sent:[0-9]+/); print port, substr($0, RSTART + 11, RLENGTH - 11) }'
}

note "an idle hop connection carries PINGs and stays"
r=$(get /hello.txt)
assert_eq "200" "${r% *}" "GET /hello.txt through the pair answers 200"
assert_eq "hello keepalive" "$(cat "$T/body")" "... with the app's body"
mark_log "$T/app.out"
before=$(hop_conns)
sleep 3.5
after=$(hop_conns)
assert_eq 1 "$(echo "$before" | grep -c .)" "one hop connection after the request"
if [ "${before%% *}" = "${after%% *}" ] && [ "${after#* }" -gt "${before#* }" ]; then
    pass "the idle hop connection sent $((${after#* } - ${before#* })) bytes in 3.5 s without a request (keepalive 1s)"
else
    fail "the idle hop connection sends PINGs and stays" "before: $before" "after: $after"
fi
r=$(get /hello.txt?again)
assert_eq "200" "${r% *}" "the next request answers 200"
assert_eq "${before%% *}" "$(hop_conns | cut -d' ' -f1)" "... on the same hop connection"
assert_eq 0 "$(grep -c 'recv PING frame' "$T/app.out" || true)" \
    "the app's h2c connection got no PING (keepalive 1s on the inbound too)"

note "a peer sidecar that stops answering"
kill -STOP "${PROC_PID[orders]}"
r=$(get /hello.txt?stalled)
left=$(hop_conns | grep -c . || true)
kill -CONT "${PROC_PID[orders]}"
assert_eq "502" "${r% *}" "a request to the stopped inbound fails with 502"
secs=${r#* }
if awk -v s="$secs" 'BEGIN { exit !(s >= 0.9 && s < 8) }'; then
    pass "... after ${secs}s: within a few keepalives, not timeouts.idle (60 s)"
else
    fail "the request fails within a few keepalives (1 s) of the inbound stopping" "took: ${secs}s"
fi
assert_eq 0 "$left" "the outbound left no connection to the stopped inbound open"
assert_contains "$(proxy_log frontend)" 'reason="no answer to a keepalive PING within 1000 ms"' \
    "the outbound logs why it gave the connection up"
wait_for_match "$OUT_ALOG" '"path":"/hello.txt\?stalled"' $((5 * SLOW)) || true
assert_eq "502 UC" "$(jq -r 'select(.path=="/hello.txt?stalled") | "\(.status) \(.response_flags)"' \
    "$OUT_ALOG")" "the access log has 502 UC for it"

note "the inbound runs again"
r=$(get /hello.txt?after)
assert_eq "200" "${r% *}" "the next request answers 200"
now=$(hop_conns | cut -d' ' -f1)
if [ -n "$now" ] && [ "$now" != "${before%% *}" ]; then
    pass "... on a new hop connection"
else
    fail "... on a new hop connection" "before: ${before%% *}" "now: $now"
fi

stop_proxy frontend
stop_proxy orders
