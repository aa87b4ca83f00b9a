#!/usr/bin/env bash
# HTTP/1.1 proxying through a real sidecar pair on protocol http:
#
#   curl / socat -> outbound (frontend) =mTLS=> inbound (orders) -> app
#
# The main app is nginx; small socat apps give exact control of the wire
# (a head dump, a hand-written chunked response, a 101 then echo, an app
# that closes without answering, one that never answers). Both proxies run
# one worker, so pooled connections can be counted exactly.
#
# Checks:
# - GET with the body intact; HEAD (headers, no body, and the next request
#   on the same connection still parses); 204 and 304;
# - keep-alive: 20 requests on one client connection and 20 separate
#   clients all reach nginx over one upstream connection;
# - a chunked request body and chunked responses (nginx, and one with chunk
#   extensions and trailers) arrive intact; a 50 MiB download and a 20 MiB
#   upload (PUT, with Expect: 100-continue answered through the pair) arrive
#   intact by sha256; an HTTP/1.0 client gets a chunked answer unchunked;
# - three pipelined requests in one write get three responses in order;
# - Connection: close and HTTP/1.0 close the connection after the response,
#   HTTP/1.0 with keep-alive keeps it; an HTTP/1.0 request without Host is
#   answered (the pair forwards it as HTTP/1.1, which needs a Host);
# - an Upgrade request answered 101 becomes a byte pipe both ways;
# - the app sees exactly one x-forwarded-client-cert, the inbound proxy's
#   "By=<orders>;URI=<frontend>", never a forged one; x-request-id is made
#   (UUID v4) when absent and kept when present;
# - hostile requests are answered by the outbound proxy (400, 414, 431),
#   the connection is closed and the app never sees them: Content-Length
#   with Transfer-Encoding, two Content-Lengths, obs-fold, bare LF, bare CR, NUL,
#   a request line over 8 KiB, headers over the outbound's 16 KiB limit,
#   more than 100 headers; headers over the inbound's 4 KiB limit get the
#   inbound's 431 and never reach the app either; a bad chunk size is found
#   after the head has been forwarded (the body streams), so there the app
#   never gets the complete request, and the bytes behind it never become a
#   request;
# - a client that stalls in its request head (request_headers: 1s) gets 408
#   and the connection is closed within about 2 s;
# - upstream failures behind the inbound: app down -> 503 (flag UF in the
#   inbound access log), app closes without answering -> 502 (UC), app never
#   answers -> 504 after the inbound's idle timeout of 2 s (UT);
# - both proxies exit 0 on SIGTERM with clean sanitizer logs.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)

alloc_ports APP DUMP_APP CHUNK_APP UPG_APP DOWN_APP CLOSE_APP HANG_APP \
    IN_APP IN_DUMP IN_CHUNK IN_UPG IN_DOWN IN_CLOSE IN_HANG \
    OUT_APP OUT_DUMP OUT_CHUNK OUT_UPG OUT_DOWN OUT_CLOSE OUT_HANG

ORDERS_ALOG=$T/orders-access.log
FRONTEND_ALOG=$T/frontend-access.log

# The inbound side: 4 KiB request heads, idle 2s (the 504 case).
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
workers: 1
timeouts: {connect: 2s, handshake: 10s, idle: 2s, request_headers: 1s, drain: 5s}
limits: {max_request_headers: 4KiB}
access_log: {path: $ORDERS_ALOG, format: text}
listeners:
$(inbound_listener in-app "$IN_APP" "$APP" http)
$(inbound_listener in-dump "$IN_DUMP" "$DUMP_APP" http)
$(inbound_listener in-chunk "$IN_CHUNK" "$CHUNK_APP" http)
$(inbound_listener in-upg "$IN_UPG" "$UPG_APP" http)
$(inbound_listener in-down "$IN_DOWN" "$DOWN_APP" http)
$(inbound_listener in-close "$IN_CLOSE" "$CLOSE_APP" http)
$(inbound_listener in-hang "$IN_HANG" "$HANG_APP" http)
EOF

# The outbound side: 16 KiB request heads, so that a request line over
# 8 KiB is within the head limit and gets its own answer (414).
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
workers: 1
timeouts: {connect: 2s, handshake: 10s, idle: 10s, request_headers: 1s, drain: 5s}
limits: {max_request_headers: 16KiB}
access_log: {path: $FRONTEND_ALOG, format: text}
listeners:
$(outbound_listener out-app "$OUT_APP" "$IN_APP" "$ORDERS_ID" http)
$(outbound_listener out-dump "$OUT_DUMP" "$IN_DUMP" "$ORDERS_ID" http)
$(outbound_listener out-chunk "$OUT_CHUNK" "$IN_CHUNK" "$ORDERS_ID" http)
$(outbound_listener out-upg "$OUT_UPG" "$IN_UPG" "$ORDERS_ID" http)
$(outbound_listener out-down "$OUT_DOWN" "$IN_DOWN" "$ORDERS_ID" http)
$(outbound_listener out-close "$OUT_CLOSE" "$IN_CLOSE" "$ORDERS_ID" http)
$(outbound_listener out-hang "$OUT_HANG" "$IN_HANG" "$ORDERS_ID" http)
EOF

# --- the apps
mkdir -p "$T/www/up"
printf 'a small static file\n' >"$T/www/small"
head -c $((50 * 1048576)) /dev/urandom >"$T/www/big50"
head -c $((3 * 1048576)) /dev/urandom >"$T/www/chunky"
head -c $((20 * 1048576)) /dev/urandom >"$T/up20"
head -c $((3 * 1048576 + 17)) /dev/urandom >"$T/chunk-up"
sha() { sha256sum <"$1" | cut -d' ' -f1; }

start_nginx app "$APP" <<EOF
        location = /hello { return 200 "hello from nginx\n"; }
        location = /conn { return 200 "conn=\$connection req=\$connection_requests\n"; }
        location /echo/ { return 200 "uri=\$request_uri\n"; }
        location = /nocontent { return 204; }
        location = /notmodified { return 304; }
        location = /post { client_max_body_size 100m; return 200 "posted\n"; }
        location /files/ { alias $T/www/; }
        location /chunked/ {
            alias $T/www/;
            sub_filter 'outrider-test-text-that-never-occurs-0123456789' '';
            sub_filter_once off;
            sub_filter_types *;
        }
        location /upload/ {
            alias $T/www/up/;
            dav_methods PUT;
            client_max_body_size 100m;
        }
EOF
APP_LOG=$T/app.access

printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n' >"$T/dump.response"
start_dump_app dump "$DUMP_APP" "$T/dump.response"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5;name=value\r\nhello\r\n7\r\n, world\r\n1\r\n\n\r\n0\r\nX-Trailer: yes\r\n\r\n' \
    >"$T/chunk.response"
start_dump_app chunk "$CHUNK_APP" "$T/chunk.response"
: >"$T/empty.response"
start_dump_app closer "$CLOSE_APP" "$T/empty.response"
start_bg hang socat "TCP-LISTEN:$HANG_APP,bind=127.0.0.1,fork,reuseaddr" SYSTEM:"cat >/dev/null"
cat >"$T/upgrade.sh" <<'EOF'
#!/usr/bin/env bash
while IFS= read -r line; do
    line=${line%$'\r'}
    [ -z "$line" ] && break
done
printf 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n'
exec cat
EOF
chmod +x "$T/upgrade.sh"
start_bg upgrade socat "TCP-LISTEN:$UPG_APP,bind=127.0.0.1,fork,reuseaddr" "EXEC:$T/upgrade.sh"
wait_port "$HANG_APP" || die "hang app does not listen"
wait_port "$UPG_APP" || die "upgrade app does not listen"

start_proxy orders "$T/orders.yaml" "$IN_APP" "$IN_DUMP" "$IN_CHUNK" "$IN_UPG" "$IN_DOWN" "$IN_CLOSE" "$IN_HANG"
start_proxy frontend "$T/frontend.yaml" "$OUT_APP" "$OUT_DUMP" "$OUT_CHUNK" "$OUT_UPG" "$OUT_DOWN" "$OUT_CLOSE" "$OUT_HANG"
assert_contains "$(proxy_log orders)" "listener up name=in-app mode=inbound protocol=http address=127\.0\.0\.1:$IN_APP workers=1"
assert_contains "$(proxy_log frontend)" "listener up name=out-app mode=outbound protocol=http address=127\.0\.0\.1:$OUT_APP workers=1"

CURL=(curl -sS --http1.1 --max-time $((20 * SLOW)))
BASE=http://127.0.0.1:$OUT_APP

# curl_code URL [CURL ARGS...]: the status code of one request (000 when
# curl got no answer); the body goes to $T/body.
curl_code() {
    local url=$1 code
    shift
    code=$("${CURL[@]}" -o "$T/body" -w '%{http_code}' "$@" "$url" 2>>"$T/clients.err") || true
    echo "${code:-000}"
}

# --- simple requests
assert_eq 200 "$(curl_code "$BASE/hello")" "GET through the pair answers 200"
assert_eq "hello from nginx" "$(cat "$T/body")" "GET: the body is intact"
assert_eq "a small static file" "$("${CURL[@]}" "$BASE/files/small")" "GET of a static file"

"${CURL[@]}" -I -o "$T/head.out" "$BASE/files/small" 2>>"$T/clients.err" || true
assert_eq "HTTP/1.1 200 OK" "$(head -n1 "$T/head.out" | tr -d '\r')" "HEAD answers 200"
assert_contains "$T/head.out" "^[Cc]ontent-[Ll]ength: 20"$'\r'"?$" "HEAD keeps the Content-Length of the GET"
printf 'HEAD /files/small HTTP/1.1\r\nHost: orders\r\n\r\nGET /echo/after-head HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n' >"$T/head-then-get.in"
rc=0
raw_http "$OUT_APP" "$T/head-then-get.in" "$T/head-then-get.out" || rc=$?
assert_eq 2 "$(grep -c '^HTTP/1.1 200' "$T/head-then-get.out")" "HEAD then GET on one connection: two responses"
assert_eq "uri=/echo/after-head" "$(tail -n1 "$T/head-then-get.out")" \
    "the HEAD response has no body: the GET's body follows its head directly"

assert_eq 204 "$(curl_code "$BASE/nocontent")" "204 relayed"
assert_empty "$T/body" "204 has no body"
assert_eq 304 "$(curl_code "$BASE/notmodified")" "304 relayed"
assert_empty "$T/body" "304 has no body"
"${CURL[@]}" -w '%{http_code} %{num_connects}\n' -o /dev/null "$BASE/nocontent" -o /dev/null "$BASE/notmodified" \
    -o /dev/null "$BASE/hello" >"$T/bodiless.out" 2>>"$T/clients.err" || true
assert_eq "204 1|304 0|200 0" "$(paste -sd'|' "$T/bodiless.out")" \
    "204, 304 and 200 on one client connection, in order"

# --- keep-alive: every request reaches nginx on the same upstream connection
urls=()
for i in $(seq 1 20); do urls+=("$BASE/conn?one=$i"); done
"${CURL[@]}" -w '%{num_connects}\n' "${urls[@]}" >"$T/ka-one.out" 2>>"$T/clients.err" || true
assert_eq 20 "$(grep -c '^conn=' "$T/ka-one.out")" "20 requests on one client connection are answered"
assert_eq 1 "$(grep -v '^conn=' "$T/ka-one.out" | awk '{n += $1} END {print n + 0}')" "curl opened one connection for the 20"
: >"$T/ka-sep.out"
for i in $(seq 1 20); do
    "${CURL[@]}" "$BASE/conn?sep=$i" >>"$T/ka-sep.out" 2>>"$T/clients.err" || true
done
assert_eq 20 "$(grep -c '^conn=' "$T/ka-sep.out")" "20 separate clients are answered"
conns=$(cat "$T/ka-one.out" "$T/ka-sep.out" | sed -n 's/^conn=\([0-9]*\) .*/\1/p' | sort -u)
assert_eq 1 "$(grep -c . <<<"$conns")" \
    "the 40 requests reach nginx over one upstream connection (nginx connections: $(paste -sd' ' <<<"$conns"))"
last_req=$(sed -n 's/^conn=[0-9]* req=\([0-9]*\)$/\1/p' "$T/ka-sep.out" | tail -n1)
first_req=$(sed -n 's/^conn=[0-9]* req=\([0-9]*\)$/\1/p' "$T/ka-one.out" | head -n1)
assert_eq 39 "$((last_req - first_req))" "nginx counts the 40 requests on that connection"

# --- chunked bodies
code=$(curl_code "$BASE/upload/chunked-up" -X PUT -H 'Transfer-Encoding: chunked' --data-binary @"$T/chunk-up")
assert_eq 201 "$code" "a chunked PUT body is accepted by the app"
assert_contains "$APP_LOG" "\"PUT /upload/chunked-up HTTP/1\.1\" te=\"chunked\"" "the app receives the PUT chunked"
assert_eq "$(sha "$T/chunk-up")" "$(sha "$T/www/up/chunked-up" 2>/dev/null || true)" \
    "the chunked request body arrives intact (sha256)"

curl -sS --http1.1 -D "$T/direct.hdr" -o /dev/null "http://127.0.0.1:$APP/chunked/chunky" 2>>"$T/clients.err" || true
assert_contains "$T/direct.hdr" "^[Tt]ransfer-[Ee]ncoding: chunked" "nginx answers /chunked/ with a chunked body"
"${CURL[@]}" -D "$T/chunked.hdr" -o "$T/chunked.out" "$BASE/chunked/chunky" 2>>"$T/clients.err" || true
assert_contains "$T/chunked.hdr" "^[Tt]ransfer-[Ee]ncoding: chunked" "the chunked response reaches the client chunked"
assert_eq "$(sha "$T/www/chunky")" "$(sha "$T/chunked.out")" "the chunked response arrives intact (sha256)"
"${CURL[@]}" -0 -D "$T/chunked10.hdr" -o "$T/chunked10.out" "$BASE/chunked/chunky" 2>>"$T/clients.err" || true
assert_not_contains "$T/chunked10.hdr" "^[Tt]ransfer-[Ee]ncoding" "an HTTP/1.0 client gets no Transfer-Encoding"
assert_eq "$(sha "$T/www/chunky")" "$(sha "$T/chunked10.out")" "an HTTP/1.0 client gets the chunked body intact"

assert_eq 200 "$(curl_code "http://127.0.0.1:$OUT_CHUNK/ext")" "chunk extensions and trailers: 200"
assert_eq "68656c6c6f2c20776f726c640a" "$(od -An -tx1 "$T/body" | tr -d ' \n')" \
    "chunk extensions and trailers: exact body bytes"

# --- large transfers
start_ns=$(date +%s%N)
code=$(curl_code "$BASE/files/big50")
note "50 MiB download took $(elapsed_ms "$start_ns")ms"
assert_eq 200 "$code" "50 MiB download answers 200"
assert_eq "$(sha "$T/www/big50")" "$(sha "$T/body")" "50 MiB download arrives intact (sha256)"
rm -f "$T/body"

start_ns=$(date +%s%N)
code=$("${CURL[@]}" -v -T "$T/up20" -o /dev/null -w '%{http_code}' "$BASE/upload/up20" 2>"$T/up20.verbose") || true
note "20 MiB upload took $(elapsed_ms "$start_ns")ms"
assert_eq 201 "$code" "20 MiB PUT answers 201"
assert_contains "$T/up20.verbose" "^> Expect: 100-continue" "curl asks for 100-continue"
assert_contains "$T/up20.verbose" "^< HTTP/1.1 100 Continue" "100 Continue comes back through the pair"
assert_eq "$(sha "$T/up20")" "$(sha "$T/www/up/up20" 2>/dev/null || true)" "20 MiB upload arrives intact (sha256)"
rm -f "$T/up20" "$T/www/up/up20"
assert_eq 1 "$(awk -v min=$((20 * 1048576)) '$3 == 201 && $4 > min && $6 == "\"PUT" && $7 == "/upload/up20"' "$APP_LOG" | wc -l)" \
    "the app logs the 20 MiB PUT as 201 with the whole body"

printf 'a posted body\n' >"$T/post.in"
code=$(curl_code "$BASE/post" -H 'Expect: 100-continue' --data-binary @"$T/post.in")
assert_eq 200 "$code" "a POST with Expect: 100-continue is answered"
assert_eq "posted" "$(cat "$T/body")" "the POST's answer is intact"

# --- pipelining: three requests in one write
printf 'GET /echo/p1 HTTP/1.1\r\nHost: orders\r\n\r\nGET /echo/p2 HTTP/1.1\r\nHost: orders\r\n\r\nGET /echo/p3 HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n' \
    >"$T/pipeline.in"
rc=0
raw_http "$OUT_APP" "$T/pipeline.in" "$T/pipeline.out" || rc=$?
assert_eq 3 "$(grep -c '^HTTP/1.1 200' "$T/pipeline.out")" "three pipelined requests get three responses"
assert_eq "uri=/echo/p1|uri=/echo/p2|uri=/echo/p3" "$(grep '^uri=' "$T/pipeline.out" | paste -sd'|')" \
    "pipelined responses come in request order"
if [ "$RAW_MS" -lt 5000 ]; then
    pass "the connection closes after the last pipelined request (Connection: close)"
else
    fail "the connection closes after the last pipelined request (Connection: close)" "open for ${RAW_MS}ms"
fi

# --- connection management
printf 'GET /hello HTTP/1.1\r\nHost: orders\r\nConnection: close\r\n\r\n' >"$T/close.in"
rc=0
raw_http "$OUT_APP" "$T/close.in" "$T/close.out" || rc=$?
assert_eq 200 "$(http_status "$T/close.out")" "Connection: close request answered"
assert_contains "$T/close.out" "^[Cc]onnection: close"$'\r'"$" "the response says Connection: close"
if [ "$RAW_MS" -lt 5000 ]; then
    pass "Connection: close: the proxy closes the connection (${RAW_MS}ms)"
else
    fail "Connection: close: the proxy closes the connection" "still open after ${RAW_MS}ms"
fi

assert_eq 200 "$(curl_code "$BASE/hello" -0)" "an HTTP/1.0 client (curl -0) is answered"
assert_eq "hello from nginx" "$(cat "$T/body")" "HTTP/1.0: the body is intact"
# An HTTP/1.0 request may omit Host; the proxy forwards it as HTTP/1.1,
# which needs one.
printf 'GET /echo/http10 HTTP/1.0\r\n\r\n' >"$T/http10.in"
rc=0
raw_http "$OUT_APP" "$T/http10.in" "$T/http10.out" || rc=$?
assert_eq "uri=/echo/http10" "$(tail -n1 "$T/http10.out")" "HTTP/1.0 without Host is answered"
if [ "$RAW_MS" -lt 5000 ]; then
    pass "HTTP/1.0 without keep-alive: the connection closes after the response"
else
    fail "HTTP/1.0 without keep-alive: the connection closes after the response" "open for ${RAW_MS}ms"
fi
printf 'GET /echo/ka10-a HTTP/1.0\r\nHost: orders\r\nConnection: keep-alive\r\n\r\nGET /echo/ka10-b HTTP/1.0\r\nHost: orders\r\n\r\n' \
    >"$T/ka10.in"
rc=0
raw_http "$OUT_APP" "$T/ka10.in" "$T/ka10.out" || rc=$?
assert_eq "uri=/echo/ka10-a|uri=/echo/ka10-b" "$(grep '^uri=' "$T/ka10.out" | paste -sd'|')" \
    "HTTP/1.0 with Connection: keep-alive: a second request on the connection is answered"
assert_contains "$T/ka10.out" "^[Cc]onnection: keep-alive"$'\r'"$" "HTTP/1.0 keep-alive response says keep-alive"

# --- upgrade: 101, then bytes both ways
rc=0
timeout $((30 * SLOW)) socat -t $((5 * SLOW)) - "TCP:127.0.0.1:$OUT_UPG" >"$T/upgrade.out" 2>>"$T/clients.err" < <(
    printf 'GET /chat HTTP/1.1\r\nHost: orders\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nfirst-payload-in-the-head-write\n'
    sleep 1
    printf 'second-payload-after-101\n'
    sleep 1
) || rc=$?
assert_eq "HTTP/1.1 101 Switching Protocols" "$(head -n1 "$T/upgrade.out" | tr -d '\r')" "Upgrade is answered 101"
assert_contains "$T/upgrade.out" "^[Uu]pgrade: websocket"$'\r'"$" "the 101 carries Upgrade: websocket"
assert_contains "$T/upgrade.out" "^first-payload-in-the-head-write$" \
    "bytes sent right behind the upgrade request are echoed back"
assert_contains "$T/upgrade.out" "^second-payload-after-101$" "bytes sent after the 101 are echoed back"
assert_exit 0 "$rc" "the upgraded connection ends cleanly after the client closes"

# --- identity headers
"${CURL[@]}" -o /dev/null -H 'x-forwarded-client-cert: By=spiffe://evil.example/x;URI=spiffe://evil.example/y' \
    -H 'X-Forwarded-Client-Cert: Hash=forged' "http://127.0.0.1:$OUT_DUMP/xfcc" 2>>"$T/clients.err" || true
xfcc=$(grep -i '^x-forwarded-client-cert:' "$T/dump.heads" || true)
assert_eq "1" "$(grep -c . <<<"$xfcc")" "the app sees exactly one x-forwarded-client-cert"
assert_eq "By=$ORDERS_ID;URI=$FRONTEND_ID" "$(sed 's/^[^:]*: *//' <<<"$xfcc" | head -n1)" \
    "x-forwarded-client-cert is the inbound proxy's, naming both identities"
assert_not_contains "$T/dump.heads" "evil|forged" "no forged x-forwarded-client-cert reaches the app"

: >"$T/dump.heads"
"${CURL[@]}" -o /dev/null "http://127.0.0.1:$OUT_DUMP/rid" 2>>"$T/clients.err" || true
rid=$(grep -i '^x-request-id:' "$T/dump.heads" || true)
assert_eq 1 "$(grep -c . <<<"$rid")" "a request without x-request-id reaches the app with one"
if grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' <<<"$(sed 's/^[^:]*: *//' <<<"$rid")"; then
    pass "the generated x-request-id is a UUID v4"
else
    fail "the generated x-request-id is a UUID v4" "got: $rid"
fi
: >"$T/dump.heads"
"${CURL[@]}" -o /dev/null -H 'X-Request-Id: client-chosen-42' "http://127.0.0.1:$OUT_DUMP/rid2" 2>>"$T/clients.err" || true
rid=$(grep -i '^x-request-id:' "$T/dump.heads" || true)
assert_eq "client-chosen-42" "$(sed 's/^[^:]*: *//' <<<"$rid")" "a client's x-request-id is kept, once"

# --- hostile requests: answered by the outbound proxy, connection closed
# hostile NAME STATUS: sends $T/hostile-NAME.in; the answer must be STATUS
# and the proxy must close the connection.
hostile() {
    local name=$1 want=$2 rc=0
    raw_http "$OUT_APP" "$T/hostile-$name.in" "$T/hostile-$name.out" || rc=$?
    assert_eq "$want" "$(http_status "$T/hostile-$name.out")" "hostile $name: answered $want"
    if [ "$RAW_MS" -lt 5000 ]; then
        pass "hostile $name: the connection is closed"
    else
        fail "hostile $name: the connection is closed" "still open after ${RAW_MS}ms"
    fi
}
printf 'POST /hostile/cl-te HTTP/1.1\r\nHost: orders\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled/cl-te HTTP/1.1\r\nHost: orders\r\n\r\n' \
    >"$T/hostile-cl-te.in"
hostile cl-te 400
printf 'POST /hostile/two-cl HTTP/1.1\r\nHost: orders\r\nContent-Length: 5\r\nContent-Length: 44\r\n\r\nhelloGET /smuggled/two-cl HTTP/1.1\r\nHost: orders\r\n\r\n' \
    >"$T/hostile-two-cl.in"
hostile two-cl 400
printf 'PUT /upload/badchunk HTTP/1.1\r\nHost: orders\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\nGET /smuggled/chunk HTTP/1.1\r\nHost: orders\r\n\r\n' \
    >"$T/hostile-bad-chunk.in"
hostile bad-chunk 400
printf 'GET /hostile/obs-fold HTTP/1.1\r\nHost: orders\r\nX-Folded: a\r\n b\r\n\r\n' >"$T/hostile-obs-fold.in"
hostile obs-fold 400
printf 'GET /hostile/bare-lf HTTP/1.1\nHost: orders\n\n' >"$T/hostile-bare-lf.in"
hostile bare-lf 400
printf 'GET /hostile/bare-cr HTTP/1.1\r\nHost: orders\r\nX-A: a\rb\r\n\r\n' >"$T/hostile-bare-cr.in"
hostile bare-cr 400
printf 'GET /hostile/nul HTTP/1.1\r\nHost: orders\r\nX-A: a\0b\r\n\r\n' >"$T/hostile-nul.in"
hostile nul 400
printf 'GET /hostile/bare-lf-late HTTP/1.1\r\nHost: orders\r\nX-A: a\nX-B: b\r\n\r\n' >"$T/hostile-bare-lf-late.in"
hostile bare-lf-late 400
printf 'GET /hostile/long-line?%s HTTP/1.1\r\nHost: orders\r\n\r\n' "$(head -c 9000 /dev/zero | tr '\0' a)" \
    >"$T/hostile-long-line.in"
hostile long-line 414
{
    printf 'GET /hostile/big-head HTTP/1.1\r\nHost: orders\r\n'
    for i in $(seq 1 20); do printf 'X-Big-%d: %s\r\n' "$i" "$(head -c 1000 /dev/zero | tr '\0' b)"; done
    printf '\r\n'
} >"$T/hostile-big-head.in"
hostile big-head 431
{
    printf 'GET /hostile/many-headers HTTP/1.1\r\nHost: orders\r\n'
    for i in $(seq 1 100); do printf 'X-H%d: v\r\n' "$i"; done
    printf '\r\n'
} >"$T/hostile-many-headers.in"
hostile many-headers 431
# 6 KiB of headers: within the outbound's 16 KiB, over the inbound's 4 KiB.
code=$(curl_code "$BASE/hostile/inbound-limit" -H "X-Six-K: $(head -c 6000 /dev/zero | tr '\0' c)")
assert_eq 431 "$code" "headers over the inbound's max_request_headers: 431"
assert_eq 200 "$(curl_code "$BASE/hello")" "the pair serves after the hostile requests"
assert_not_contains "$APP_LOG" "/hostile/|/smuggled/" "the app never sees a hostile or smuggled request"
if [ -e "$T/www/up/badchunk" ]; then
    fail "a request with a bad chunk size is never completed at the app" "the app stored $T/www/up/badchunk"
else
    pass "a request with a bad chunk size is never completed at the app"
fi

# --- slowloris: a partial head is cut after request_headers (1s)
printf 'GET /hostile/slow HTTP/1.1\r\nHost: orders\r\nX-Slow: ' >"$T/slow.in"
rc=0
raw_http "$OUT_APP" "$T/slow.in" "$T/slow.out" 10 || rc=$?
assert_eq 408 "$(http_status "$T/slow.out")" "a stalled request head gets 408"
if [ "$RAW_MS" -ge 900 ] && [ "$RAW_MS" -lt $((2500 + 250 * SLOW)) ]; then
    pass "the stalled connection is closed after about 1s (${RAW_MS}ms)"
else
    fail "the stalled connection is closed after about 1s" "closed after ${RAW_MS}ms"
fi
assert_not_contains "$APP_LOG" "/hostile/slow" "the app never sees the stalled request"

# --- upstream failures behind the inbound proxy
mark_log "$ORDERS_ALOG"
start_ns=$(date +%s%N)
assert_eq 503 "$(curl_code "http://127.0.0.1:$OUT_DOWN/down")" "app down: 503"
assert_logged "$ORDERS_ALOG" "\"GET /down HTTP/1\.1\" 503 UF " "app down: the inbound access log has 503 UF"
assert_eq 502 "$(curl_code "http://127.0.0.1:$OUT_CLOSE/closer")" "app closes without answering: 502"
assert_logged "$ORDERS_ALOG" "\"GET /closer HTTP/1\.1\" 502 UC " "app closes without answering: 502 UC"
start_hang=$(date +%s%N)
assert_eq 504 "$(curl_code "http://127.0.0.1:$OUT_HANG/hang")" "app never answers: 504"
took=$(elapsed_ms "$start_hang")
if [ "$took" -ge 1800 ] && [ "$took" -lt $((3500 + 500 * SLOW)) ]; then
    pass "504 comes after the inbound's idle timeout of 2s (${took}ms)"
else
    fail "504 comes after the inbound's idle timeout of 2s" "took ${took}ms"
fi
assert_logged "$ORDERS_ALOG" "\"GET /hang HTTP/1\.1\" 504 UT " "app never answers: 504 UT"
note "the three upstream failures took $(elapsed_ms "$start_ns")ms"
assert_eq 200 "$(curl_code "$BASE/hello")" "the pair serves after the upstream failures"

stop_proxy frontend
stop_proxy orders
