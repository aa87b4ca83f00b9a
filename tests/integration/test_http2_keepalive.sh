#!/usr/bin/env bash
# Keepalive on pooled HTTP/2 connections (timeouts.keepalive; docs/http2.md,
# "Upstream connections"): a connection that hears nothing from its peer
# for the keepalive gets a PING, and one that then hears nothing for as
# long again is given up as lost.
#
#   curl --http2 with a client certificate --(ALPN h2)--> inbound "orders"
#       --(h2c, keepalive 1s)--> nghttpd (the app, logging every frame)
#
# Checks: an idle pooled connection gets PINGs about once a keepalive and
# stays (the next request goes on the same connection); with the app
# stopped (SIGSTOP: its kernel still acknowledges bytes, as for a peer
# whose host vanished behind a load balancer, or a hung process), a
# request waiting on the connection fails with 502 (UC) within a few
# keepalives instead of timeouts.idle (60 s here), the sidecar logs why,
# and no connection to the stopped app is left open by the sidecar; once
# the app runs again the next request opens a new connection and answers
# 200; the proxy exits clean.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v nghttpd >/dev/null || die "nghttpd not found (nghttp2-server; scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
alloc_ports APP IN

mkdir -p "$T/htdocs"
printf 'hello keepalive\n' >"$T/htdocs/hello.txt"
start_bg app nghttpd --no-tls -a 127.0.0.1 -d "$T/htdocs" -v "$APP"
wait_port "$APP" || die "nghttpd does not listen on $APP"

IN_ALOG=$T/orders-access.log
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<CONFIG
workers: 1
timeouts: {connect: 2s, handshake: 10s, idle: 60s, drain: 5s, keepalive: 1s}
access_log: {path: $IN_ALOG, format: json}
listeners:
$(inbound_listener in-h2 "$IN" "$APP" http)
    http2: true
CONFIG
start_proxy orders "$T/orders.yaml" "$IN"

# get PATH: prints "STATUS SECONDS"; the body is in $T/body.
get() {
    curl -sS --http2 -k -m $((30 * SLOW)) -o "$T/body" -w '%{http_code} %{time_total}' \
        --cert "$T/pki/web-frontend/cert.pem" --key "$T/pki/web-frontend/key.pem" \
        "https://127.0.0.1:$IN$1" 2>>"$T/clients.err" || true
}
app_conns() { ss -Htn state established "( dport = :$APP )" 2>/dev/null | wc -l; }
app_pings() { grep -c "^\[id=$1\] .*recv PING frame" "$T/app.out" || true; }

note "an idle pooled connection gets PINGs and stays"
r=$(get /hello.txt)
assert_eq "200" "${r% *}" "GET /hello.txt answers 200"
assert_eq "hello keepalive" "$(cat "$T/body")" "... with the app's body"
sleep 3.5
n=$(app_pings 1)
if [ "$n" -ge 2 ] && [ "$n" -le 5 ]; then
    pass "the app got $n PINGs on the idle connection in 3.5 s (keepalive 1s)"
else
    fail "the app gets 2 to 5 PINGs on the idle connection in 3.5 s (keepalive 1s)" "got: $n"
fi
assert_eq 1 "$(app_conns)" "the connection to the app stays open"
r=$(get /hello.txt?again)
assert_eq "200" "${r% *}" "the next request answers 200"
assert_logged "$T/app.out" '^\[id=1\] .*recv \(stream_id=3\) :path: /hello.txt\?again' \
    "... on the same connection (the app's connection 1, its second stream)"
assert_not_contains "$T/app.out" '^\[id=2\]' "the app saw no second connection"

note "a peer that stops answering"
kill -STOP -- "-${PROC_PID[app]}"
r=$(get /hello.txt?stalled)
left=$(app_conns)
kill -CONT -- "-${PROC_PID[app]}"
assert_eq "502" "${r% *}" "a request to the stopped app fails with 502"
assert_eq 0 "$left" "the sidecar left no connection to the stopped app open"
secs=${r#* }
if awk -v s="$secs" 'BEGIN { exit !(s >= 0.9 && s < 8) }'; then
    pass "... after ${secs}s: within a few keepalives, not timeouts.idle (60 s)"
else
    fail "the request fails within a few keepalives (1 s) of the app stopping" "took: ${secs}s"
fi
assert_contains "$(proxy_log orders)" 'reason="no answer to a keepalive PING within 1000 ms"' \
    "the sidecar logs why it gave the connection up"
wait_for_match "$IN_ALOG" '"path":"/hello.txt\?stalled"' $((5 * SLOW)) || true
assert_eq "502 UC" "$(jq -r 'select(.path=="/hello.txt?stalled") | "\(.status) \(.response_flags)"' \
    "$IN_ALOG")" "the access log has 502 UC for it"

note "the app runs again"
r=$(get /hello.txt?after)
assert_eq "200" "${r% *}" "the next request answers 200"
assert_logged "$T/app.out" '^\[id=2\] .*recv \(stream_id=1\) :path: /hello.txt\?after' \
    "... on a new connection"

stop_proxy orders
