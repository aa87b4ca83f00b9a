#!/usr/bin/env bash
# HTTP/2 streams sent on as HTTP/1.1 (upstream_protocol http1) against
# hostile clients and a misbehaving app: what reaches the app, and what is
# served, is checked, not only the status.
#
#   h2_h1_client.py / curl / nghttp / h2_abuse.py --(h2c)--> inbound "in-bad"
#       (mtls: disable, http2, upstream_protocol http1, one worker)
#       --(HTTP/1.1)--> h1_bad_app.py (raw sockets; logs every request and
#       on which connection it came)
#   h2_h1_client.py --(h2c)--> outbound "out-hole" (upstream_protocol http1)
#       =(mTLS)=> a port that accepts and never answers the handshake
#
# Request side: bytes that would make a different request line, Host or
# framing at the app (userinfo in the authority, a Host that differs, CR/LF,
# ':' or space in a method, '#' in a path, content-length with chunked,
# connection-specific fields, te other than trailers, empty or upper-case
# names, two content-lengths) are refused and never reach the app; DATA
# longer or shorter than content-length never makes a second request;
# request trailers leave without framing, routing or forged identity fields;
# END_STREAM arriving late still ends the body; a body that arrives after
# the app has answered (the answer held by the client's window) still
# counts against content-length, and the answer is served.
# Response side: content-length with chunked, two content-lengths, 101,
# status 600 and 099, obs-fold, a head over the limit are 502; bytes after a
# response, a body to HEAD or with 204/304 are never served, and the
# connection they came on is not used again; 1xx are dropped; a chunked
# trailer loses its connection-specific and framing fields; a chunked body
# that stalls is reset by timeouts.idle; a request the app answered with a
# 100 before its pooled connection closed is not sent again.
# Lifetime: a stream reset mid-response or mid-request closes the app's
# connection; connections that close while the upstream is still connecting
# leave the proxy sound (run under ASan by the build-san ctest).
# Flow control: a 20 MiB answer to a client whose window is 0 stops reading
# from the app (what the app could send, and the proxy's RSS, stay bounded)
# and the stream is reset by timeouts.idle.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v nghttp >/dev/null || die "nghttp not found (nghttp2-client; scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
alloc_ports APP HOLE IN_BAD OUT_HOLE

APP_LOG=$T/app.jsonl
: >"$APP_LOG"
chmod 0666 "$APP_LOG"
start_bg app /usr/bin/python3 "$OUTRIDER_SRC/tests/integration/h1_bad_app.py" "$APP" "$APP_LOG"
wait_port "$APP" || die "the app does not listen on $APP"
# A peer that accepts and never answers: the upstream stays "connecting".
start_bg hole /usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held, deadline = [], time.time() + 600
while time.time() < deadline:
    held.append(s.accept()[0])' "$HOLE"
wait_port "$HOLE" || die "the hole does not listen on $HOLE"

write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
workers: 1
timeouts: {connect: 2s, handshake: 10s, idle: 2s, drain: 5s}
listeners:
$(inbound_listener in-bad "$IN_BAD" "$APP" http)
    mtls: disable
    http2: true
    upstream_protocol: http1
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
workers: 1
timeouts: {connect: 2s, handshake: 10s, idle: 2s, drain: 5s}
listeners:
$(outbound_listener out-hole "$OUT_HOLE" "$HOLE" "$ORDERS_ID" http)
    http2: true
    upstream_protocol: http1
EOF
start_proxy orders "$T/orders.yaml" "$IN_BAD"
start_proxy frontend "$T/frontend.yaml" "$OUT_HOLE"

client() { /usr/bin/python3 "$OUTRIDER_SRC/tests/integration/h2_h1_client.py" "$IN_BAD" "$@" 2>&1 || true; }
# case_out CASE: runs the client's CASE; prints the file holding its line.
case_out() {
    client "$1" >"$T/case-$1.out"
    echo "$T/case-$1.out"
}
# app_q JQ: the app's log through jq -r (one JSON object a line).
app_q() { jq -r "$1" "$APP_LOG"; }
# conn_of PATH: the app connection the request for PATH came on.
conn_of() { app_q "select(.ev==\"req\" and (.line | startswith(\"GET $1 \") or startswith(\"HEAD $1 \"))) | .conn" | tail -1; }
h2() {
    curl -sS --http2-prior-knowledge -m $((10 * SLOW)) -o "$T/body" -D "$T/head" \
        -w '%{http_code} %{http_version}' "$@" 2>>"$T/clients.err" || true
}
url() { echo "http://127.0.0.1:$IN_BAD$1"; }

note "hostile request heads are refused before the app"
client hostile >"$T/hostile.out"
for c in userinfo host-userinfo host-differs authority-crlf method-space method-colon \
    cl-and-te te-other connection keep-alive upgrade empty-name upper-name \
    name-crlf value-cr two-cl; do
    assert_contains "$T/hostile.out" "^$c (RST|GOAWAY) PROTOCOL_ERROR$" "$c is refused"
done
for c in te-trailers xfcc; do
    assert_contains "$T/hostile.out" "^$c HEADERS end" "$c is answered"
done
assert_contains "$T/hostile.out" "^path-fragment HEADERS end data=b\"a fragment" "a '#' in :path answers 400"
assert_contains "$T/hostile.out" "^path-space (RST PROTOCOL_ERROR|HEADERS end)" "a space in :path is refused or escaped"
sleep 0.5
app_q 'select(.ev=="req") | .line' >"$T/app-lines"
app_q 'select(.ev=="req") | .headers[] | join(": ")' >"$T/app-headers"
assert_not_contains "$T/app-lines" 'h-(userinfo|host-userinfo|host-differs|authority-crlf|method|path-fragment|cl-and-te|te-other|connection|keep-alive|upgrade|empty-name|upper-name|name-crlf|value-cr|two-cl)' \
    "no refused request reached the app"
assert_not_contains "$T/app-lines" 'smuggled|admin' "no request line names another resource"
if grep -E -i '^(te|x-forwarded-client-cert|x-injected|connection|keep-alive|upgrade|host: .*(@|admin))' \
    "$T/app-headers" >"$T/app-bad-headers"; then
    fail "no te, forged client certificate, connection field, injected field or foreign host at the app" \
        "$(cat "$T/app-bad-headers")"
else
    pass "no te, forged client certificate, connection field, injected field or foreign host at the app"
fi
bad_lines=$(grep -c -v -E '^[A-Z]+ /[^ ]* HTTP/1\.1$' "$T/app-lines" || true)
assert_eq 0 "$bad_lines" "every request line at the app is METHOD SP target SP HTTP/1.1"

note "request bodies"
assert_contains "$(case_out cl_long)" '^cl_long RST PROTOCOL_ERROR$' "DATA beyond content-length: reset"
assert_contains "$(case_out cl_short)" '^cl_short RST PROTOCOL_ERROR$' "END_STREAM before content-length: reset"
assert_contains "$(case_out trailers_forbidden)" "^trailers_forbidden HEADERS end data=b'got 4'$" \
    "a body with trailers is answered"
assert_contains "$(case_out cl_trailers)" "^cl_trailers HEADERS end data=b'got 4'$" \
    "content-length with trailers is answered"
assert_contains "$(case_out late_end)" "^late_end HEADERS end data=b'got 10'$" "END_STREAM a second later ends the body"
assert_contains "$(case_out early_answer)" "^early_answer HEADERS end data=b'early answer'$" \
    "the app answers before the body: the body still ends the request, and the answer is served"
sleep 0.5
assert_eq "" "$(app_q 'select(.ev=="req" and (.line | test("smuggled"))) | .line')" \
    "the bytes after content-length never became a request at the app"
long_conn=$(app_q 'select(.ev=="req" and (.line | startswith("POST /echo-long "))) | .conn' | tail -1)
if [ -n "$long_conn" ]; then
    assert_eq "AAAAA" "$(app_q "select(.conn==$long_conn and .ev==\"req\") | .body" | head -1)" \
        "the app got exactly content-length bytes"
    assert_eq 1 "$(app_q "select(.conn==$long_conn and .ev==\"req\") | .line" | wc -l)" \
        "... and nothing more on that connection"
else
    pass "the request with too much DATA did not reach the app"
fi
short_conn=$(app_q 'select(.ev!="req" and .partial.line? and (.partial.line | startswith("POST /echo-short "))) | .conn' | tail -1)
short_req=$(app_q 'select(.ev=="req" and (.line | startswith("POST /echo-short "))) | .line' | wc -l)
assert_eq 0 "$short_req" "the short body never completed a request at the app"
[ -z "$short_conn" ] || assert_eq 0 "$(app_q "select(.conn==$short_conn and .ev==\"req\") | .line" | wc -l)" \
    "... and its connection carried no other request"
assert_eq "ok" "$(app_q 'select(.ev=="req" and (.line | startswith("POST /echo-trailers "))) | .trailers | map(.[0]) | join(",") | ascii_downcase | sub("x-sum";"ok")')" \
    "request trailers reach the app without content-length, host, x-forwarded-client-cert, authorization"
assert_eq "chunked" "$(app_q 'select(.ev=="req" and (.line | startswith("POST /echo-trailers "))) | .headers[] | select(.[0]|ascii_downcase=="transfer-encoding") | .[1]')" \
    "... in a chunked body"
assert_eq "part1part2" "$(app_q 'select(.ev=="req" and (.line | startswith("POST /echo-late "))) | .body')" \
    "the late END_STREAM body reached the app whole"

note "responses that must not be trusted"
for p in cl-te dup-cl switch status-600 status-099 fold bighead; do
    assert_eq "502 2" "$(h2 "$(url "/$p")")" "/$p answers 502"
done
assert_not_contains "$T/clients.err" 'Switching|101' "no 101 reached the HTTP/2 client"
assert_eq "200 2" "$(h2 "$(url /continue)")" "1xx then 200: 200"
assert_eq "ok" "$(cat "$T/body")" "... with the final body"
h2 "$(url /ok)" >/dev/null # leaves an idle connection in the pool
assert_eq "502 2" "$(h2 "$(url /continue-close)")" "a 100, then the pooled connection closes: 502"
assert_eq 1 "$(app_q 'select(.ev=="req" and (.line | startswith("GET /continue-close "))) | .conn' | wc -l)" \
    "... and the request the app has seen is not sent again"

# next_clean WHAT PATH [CURL ARGS]: PATH's answer, then /ok, which must be
# "ok" and come on another app connection.
next_clean() {
    local what=$1 path=$2
    shift 2
    h2 "$@" "$(url "$path")" >"$T/status"
    cp "$T/body" "$T/first-body"
    cat "$T/body" >>"$T/served"
    sleep 0.7
    assert_eq "200 2" "$(h2 "$(url /ok)")" "$what: the next request answers 200"
    cat "$T/body" >>"$T/served"
    assert_eq "ok" "$(cat "$T/body")" "$what: the next request is served its own body"
    local a b
    a=$(conn_of "$path")
    b=$(conn_of /ok)
    if [ -n "$a" ] && [ "$a" != "$b" ]; then
        pass "$what: the connection is not used again"
    else
        fail "$what: the connection is not used again" "conn $a then $b"
    fi
}
next_clean "bytes after a response" /extra
assert_eq "ok" "$(cat "$T/first-body")" "... whose own body is served whole"
next_clean "bytes after a pooled response" /extra-late
next_clean "a body to HEAD" /head-body -I
assert_not_contains "$T/first-body" 'EVIL' "... which is not served"
next_clean "a body with 204" /nocontent-body
assert_eq "204 2" "$(cat "$T/status")" "... which answers 204"
next_clean "a body with 304" /notmodified-body
assert_eq "304 2" "$(cat "$T/status")" "... which answers 304"
assert_not_contains "$T/served" 'EVIL' "no unrequested bytes were served"

nghttp -v "$(url /trailers)" >"$T/trailers.out" 2>&1 || true
assert_contains "$T/trailers.out" 'x-ok: 1' "a chunked trailer arrives"
assert_not_contains "$T/trailers.out" 'recv \(stream_id=1\) (connection|content-length: 5|transfer-encoding|set-cookie|host):' \
    "... without connection-specific, framing, cookie or host fields"

start=$(date +%s%N)
h2 "$(url /stall-chunked)" >/dev/null
ms=$(elapsed_ms "$start")
assert_eq "first" "$(cat "$T/body")" "a stalled chunked body: what came is served"
if [ "$ms" -lt $((6000 * SLOW)) ]; then pass "... and the stream ends by timeouts.idle (${ms} ms)"
else fail "... and the stream ends by timeouts.idle" "took ${ms} ms"; fi

note "resets"
assert_contains "$(case_out rst_response)" '^rst_response HEADERS partial data=[0-9]+ then HEADERS end' \
    "a reset mid-response, then the same connection serves the next stream"
wait_for_match "$APP_LOG" '"ev": "sent".*"done": false' $((10 * SLOW)) || true
slow_conn=$(conn_of /slow-big)
assert_eq "false" "$(app_q "select(.conn==${slow_conn:-0} and .ev==\"sent\") | .done" | tail -1)" \
    "the reset closed the app's connection before it sent everything"
assert_contains "$(case_out rst_request)" '^rst_request HEADERS end' "a reset mid-request, then the next stream"
wait_for_match "$APP_LOG" 'echo-rst' $((5 * SLOW)) || true
rst_conn=$(app_q 'select(.ev!="req" and .partial.line? and (.partial.line | startswith("POST /echo-rst "))) | .conn' | tail -1)
assert_eq "eof" "$(app_q "select(.conn==${rst_conn:-0}) | .ev" | tail -1)" \
    "the app saw its connection end inside the reset request"
assert_eq 0 "$(app_q 'select(.ev=="req" and (.line | startswith("POST /echo-rst "))) | .line' | wc -l)" \
    "... which never completed"
/usr/bin/python3 "$OUTRIDER_SRC/tests/integration/h2_h1_client.py" "$OUT_HOLE" abandon 20 >"$T/abandon.out" 2>&1 || true
assert_contains "$T/abandon.out" '^abandon done 20$' "20 streams whose connection closed while the upstream was connecting"
sleep 1
assert_eq "200 2" "$(h2 "$(url /ok)")" "the proxy still serves"

note "a client whose window is 0, and 20 MiB from the app"
pid=${PROC_PID[orders]}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }
before=$(rss_kb)
start=$(date +%s%N)
/usr/bin/python3 "$OUTRIDER_SRC/tests/integration/h2_abuse.py" "$IN_BAD" zero_window /big >"$T/zero.out" 2>&1 || true
ms=$(elapsed_ms "$start")
after=$(rss_kb)
assert_contains "$T/zero.out" '^HEADERS RST (CANCEL|INTERNAL_ERROR|NO_ERROR) data=0 ' "the stream is reset, no DATA sent"
if [ "$ms" -lt $((8000 * SLOW)) ]; then pass "... by timeouts.idle (${ms} ms)"
else fail "... by timeouts.idle" "took ${ms} ms"; fi
wait_for_match "$APP_LOG" '"bytes": [0-9]+, "done": (true|false)}' $((10 * SLOW)) || true
big_conn=$(conn_of /big)
sent=$(app_q "select(.conn==${big_conn:-0} and .ev==\"sent\") | .bytes" | tail -1)
if [ -n "$sent" ] && [ "$sent" -lt $((12 * 1024 * 1024)) ]; then
    pass "the app could send only ${sent} of 20 MiB: reads stopped"
else
    fail "the app could send only part of 20 MiB: reads stopped" "sent ${sent:-?}"
fi
growth=$(((after - before) / 1024))
if [ "$growth" -lt 16 ]; then pass "the proxy's RSS grew ${growth} MiB"
else fail "the proxy's RSS stays bounded" "grew ${growth} MiB"; fi

stop_proxy frontend
stop_proxy orders
