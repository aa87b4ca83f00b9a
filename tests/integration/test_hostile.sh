#!/usr/bin/env bash
# Hostile requests through a real sidecar pair, checked by what the app served.
#
#   raw bytes (socat)            -> outbound "frontend" =mTLS=> inbound "orders" -> nginx / odd app
#   raw bytes (openssl s_client, frontend's SVID) ======> inbound "orders" -> nginx / odd app
#
# "orders" carries the policies of docs/rbac.md ("Paths are normalised
# before matching"), read from the document: frontend may reach /api/*, and
# /api/admin* is denied to everyone. nginx logs every request line it
# served (and the Host, x-request-id and x-forwarded-client-cert it got),
# so a test fails if anything forbidden was *served*, not only if a status
# differs. Each hostile request is sent both through the outbound listener
# (plain) and straight to the inbound one (mTLS).
#
# Checks:
# - every row of the normalisation table of docs/rbac.md: the status, and
#   for allowed rows the exact request line nginx served;
# - Connection naming Content-Length, Transfer-Encoding, Host, x-request-id
#   or x-forwarded-client-cert: the token is ignored, the body stays a body
#   (no smuggled /api/admin request reaches nginx) and the app still gets
#   Host, the client's x-request-id and the proxy's XFCC;
# - whitespace before a colon, a header name that is not a token, two Host
#   headers, a Host with userinfo or a path, HTTP/0.9, a tab before the version: 400; HTTP/1.2 and HTTP/2.0
#   on HTTP/1: 505; Transfer-Encoding "gzip, chunked": 501; chunk data
#   not followed by CRLF, whitespace after a chunk size: 400;
# - a 204 or 304 with a Content-Length, pipelined before another request on
#   one connection: both answered at once; a response with a transfer
#   coding other than chunked: 502; one whose chunk data is not followed
#   by CRLF is cut off;
# - absolute-form: the authority is the Host nginx gets;
# - http.escaped_slashes: decode on a second inbound proxy;
# - a client that stops reading is logged as a downstream timeout (SI), not
#   an upstream one;
# - outrider explain normalises as the proxy does.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONT=$T/pki/web-frontend
alloc_ports APP ODD_APP IN IN_ODD IN_DEC OUT OUT_ODD OUT_DEC
APP_LOG=$T/app.access

# --- the policies of docs/rbac.md, verbatim
DOC=$OUTRIDER_SRC/docs/rbac.md
POLICY=$(awk '/^### Paths are normalised before matching/ {s=1} s && /^```yaml/ {y=1; next}
              y && /^```/ {exit} y {print}' "$DOC")
grep -q 'name: no-admin' <<<"$POLICY" || die "no policies found in docs/rbac.md"

write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
$POLICY
access_log: {path: $T/orders-access.log, format: json}
listeners:
$(inbound_listener in "$IN" "$APP" http)
$(inbound_listener in-odd "$IN_ODD" "$ODD_APP" http)
EOF
write_config "$T/decode.yaml" orders "$T/pki/shop-orders" <<EOF
$POLICY
http: {escaped_slashes: decode}
listeners:
$(inbound_listener in-dec "$IN_DEC" "$APP" http)
EOF
write_config "$T/frontend.yaml" frontend "$FRONT" <<EOF
timeouts: {connect: 2s, handshake: 10s, idle: 3s, drain: 5s}
access_log: {path: $T/frontend-access.log, format: text}
listeners:
$(outbound_listener out "$OUT" "$IN" "$ORDERS_ID" http)
$(outbound_listener out-odd "$OUT_ODD" "$IN_ODD" "$ORDERS_ID" http)
$(outbound_listener out-dec "$OUT_DEC" "$IN_DEC" "$ORDERS_ID" http)
EOF

head -c $((16 * 1024 * 1024)) /dev/zero >"$T/big.bin"
start_nginx app "$APP" <<EOF
        location = /api/big { alias $T/big.bin; }
        location / { return 200 "ok\n"; }
EOF

# The odd app: keep-alive HTTP/1.1 by hand, for answers nginx never gives.
cat >"$T/odd.sh" <<'EOF'
#!/usr/bin/env bash
while IFS= read -r line; do
    line=${line%$'\r'}
    [ -n "$line" ] || continue
    echo "$line" >>"$ODD_LOG"
    while IFS= read -r h && [ -n "${h%$'\r'}" ]; do :; done
    case "$line" in
    *" /api/204 "*) printf 'HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n' ;;
    *" /api/304 "*) printf 'HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n' ;;
    *" /api/gzip "*) printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n' ;;
    *" /api/badchunk "*) printf 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXY0\r\n\r\n' ;;
    *) printf 'HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n' ;;
    esac
done
EOF
chmod +x "$T/odd.sh"
export ODD_LOG=$T/odd.requests
: >"$ODD_LOG"
start_bg odd socat "TCP-LISTEN:$ODD_APP,bind=127.0.0.1,fork,reuseaddr" "EXEC:$T/odd.sh"
wait_port "$ODD_APP" || die "the odd app does not listen"

start_proxy orders "$T/orders.yaml" "$IN" "$IN_ODD"
start_proxy decode "$T/decode.yaml" "$IN_DEC"
start_proxy frontend "$T/frontend.yaml" "$OUT" "$OUT_ODD" "$OUT_DEC"

# send VIA PORT INPUT OUTPUT [SECONDS]: the bytes of INPUT to PORT, plain
# (VIA=plain, an outbound listener) or over mTLS as frontend (VIA=tls, an
# inbound listener); the answer in OUTPUT. Returns when the peer closes or
# after SECONDS (default 5).
send() {
    local via=$1 port=$2 input=$3 output=$4 seconds=${5:-5}
    if [ "$via" = plain ]; then
        raw_http "$port" "$input" "$output" "$seconds" || true
    else
        timeout "$seconds" openssl s_client -quiet -connect "127.0.0.1:$port" \
            -CAfile "$T/pki/bundle.pem" -cert "$FRONT/cert.pem" -key "$FRONT/key.pem" \
            <"$input" >"$output" 2>>"$T/clients.err" || true
    fi
}

app_lines() { wc -l <"$APP_LOG"; }

# --- 1. the normalisation table of docs/rbac.md
rows=0
while IFS='|' read -r _ method target forwarded decision _; do
    method=$(xargs <<<"$method")
    target=$(sed -E 's/^ *`?//; s/`? *$//' <<<"$target")
    forwarded=$(sed -E 's/^ *`?//; s/`? *$//' <<<"$forwarded")
    decision=$(xargs <<<"$decision")
    case "$decision" in allow) want=200 ;; deny) want=403 ;; *) want=$decision ;; esac
    for via in plain tls; do
        port=$OUT
        [ "$via" = tls ] && port=$IN
        printf '%s %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' "$method" "$target" >"$T/row.in"
        before=$(app_lines)
        send "$via" "$port" "$T/row.in" "$T/row.out"
        got=$(http_status "$T/row.out")
        if [ "$want" = 200 ]; then
            wait_for_match "$APP_LOG" "\"$method $(sed 's/[][\.*^$?+(){}|/]/\\&/g' <<<"$forwarded") HTTP/1.1\"" \
                $((5 * SLOW)) || true
        fi
        served=$(tail -n +"$((before + 1))" "$APP_LOG" | sed -E 's/.*"([^"]*)" te=.*/\1/')
        expected_served=""
        [ "$want" = 200 ] && expected_served="$method $forwarded HTTP/1.1"
        if [ "$got" = "$want" ] && [ "$served" = "$expected_served" ]; then
            rows=$((rows + 1))
        else
            fail "$via: $method $target" "expected $want and the app to serve: '${expected_served:-nothing}'" \
                "     got $got and the app served: '${served:-nothing}'"
        fi
    done
done < <(awk '/^<!-- normalisation table/ {s=1; next} /^<!-- end of normalisation table/ {exit}
              s && /^\| [A-Z]+ \|/' "$DOC")
note "$rows table checks as docs/rbac.md says"
[ "$rows" -ge 60 ] && pass "every row of the normalisation table, both listener modes ($rows checks)" ||
    fail "the normalisation table was read" "only $rows checks passed"
assert_contains "$APP_LOG" '"GET /api/x\?q=1 HTTP/1.1" .* host="x"' \
    "absolute-form: the app gets the authority as Host"
assert_not_contains "$APP_LOG" '"[A-Z]+ (/api/admin|/secret)' "nothing under /api/admin or /secret was served"

# --- 2. Connection tokens never remove framing or guaranteed headers
SMUGGLED=$'GET /api/admin/secret HTTP/1.1\r\nHost: a\r\n\r\n'
for via in plain tls; do
    port=$OUT
    [ "$via" = tls ] && port=$IN
    printf 'POST /api/cl HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: %d\r\n\r\n%s' \
        "${#SMUGGLED}" "$SMUGGLED" >"$T/smuggle.in"
    send "$via" "$port" "$T/smuggle.in" "$T/smuggle.out" 3
    assert_eq 200 "$(http_status "$T/smuggle.out")" "$via: Connection: content-length: the POST is answered"
    assert_eq 1 "$(grep -c '^HTTP/1.1 ' "$T/smuggle.out")" "$via: Connection: content-length: one response"
    printf 'POST /api/te HTTP/1.1\r\nHost: a\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n' \
        "${#SMUGGLED}" "$SMUGGLED" >"$T/smuggle-te.in"
    send "$via" "$port" "$T/smuggle-te.in" "$T/smuggle-te.out" 3
    assert_eq 200 "$(http_status "$T/smuggle-te.out")" "$via: Connection: transfer-encoding: the POST is answered"
    printf 'GET /api/ids-%s HTTP/1.1\r\nHost: orders.example\r\nx-request-id: rid-%s\r\nx-forwarded-client-cert: By=forged\r\nConnection: host, x-request-id, x-forwarded-client-cert, close\r\n\r\n' \
        "$via" "$via" >"$T/ids.in"
    send "$via" "$port" "$T/ids.in" "$T/ids.out"
    assert_eq 200 "$(http_status "$T/ids.out")" "$via: Connection naming host, x-request-id, xfcc: answered"
    assert_contains "$APP_LOG" "\"GET /api/ids-$via HTTP/1.1\" .*xfcc=\"By=$ORDERS_ID;URI=$(spiffe_id ns/web/sa/frontend)\" rid=\"rid-$via\" host=\"orders.example\"" \
        "$via: the app still gets Host, the client's x-request-id and the proxy's XFCC"
done
wait_for_match "$APP_LOG" '"POST /api/te ' $((5 * SLOW)) || true
assert_eq 4 "$(grep -cE '"POST /api/(cl|te) HTTP/1.1"' "$APP_LOG")" "the four POSTs reach the app once each"
assert_eq 4 "$(grep -E '"POST /api/(cl|te) HTTP/1.1"' "$APP_LOG" | awk -v min="${#SMUGGLED}" '$4 > min' | wc -l)" \
    "each with its smuggled bytes as its body (request_length)"
assert_not_contains "$APP_LOG" '"[A-Z]+ /api/admin' "no smuggled request was served"

# --- 3. lenient parsing is refused, never rewritten
declare -A BAD=(
    [ws-colon-cl]=$'POST /api/x HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\nhello|400'
    [ws-colon-te]=$'POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n|400'
    [name-space]=$'GET /api/x HTTP/1.1\r\nHost: a\r\nFoo Bar: x\r\n\r\n|400'
    [name-byte]=$'GET /api/x HTTP/1.1\r\nHost: a\r\nFoo@: x\r\n\r\n|400'
    [two-hosts]=$'GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n|400'
    [host-userinfo]=$'GET /api/x HTTP/1.1\r\nHost: a:1@admin.internal\r\n\r\n|400'
    [host-path]=$'GET /api/x HTTP/1.1\r\nHost: a/admin\r\n\r\n|400'
    [http09]=$'GET /api/x\r\n\r\n|400'
    [tab-version]=$'GET /api/x\tHTTP/1.1\r\nHost: a\r\n\r\n|400'
    [http12]=$'GET /api/x HTTP/1.2\r\nHost: a\r\n\r\n|505'
    [http20]=$'GET /api/x HTTP/2.0\r\nHost: a\r\n\r\n|505'
    [te-gzip]=$'POST /api/x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n|501'
)
before=$(app_lines)
for name in "${!BAD[@]}"; do
    request=${BAD[$name]%|*}
    want=${BAD[$name]##*|}
    for via in plain tls; do
        port=$OUT
        [ "$via" = tls ] && port=$IN
        printf '%s' "$request" >"$T/bad.in"
        send "$via" "$port" "$T/bad.in" "$T/bad.out"
        assert_eq "$want" "$(http_status "$T/bad.out")" "$via: $name is answered $want"
    done
done
sleep 0.5
assert_eq "$before" "$(app_lines)" "none of the refused requests reached the app"

# A bad chunked body is found while it streams: the head, which was fine,
# may have reached the app already, but nothing after the bad byte does.
SMUGGLED_CHUNK=$'0\r\n\r\nGET /api/admin/chunk HTTP/1.1\r\nHost: a\r\n\r\n'
declare -A BAD_CHUNKS=(
    [chunk-crlf]="5"$'\r\n'"helloXY$SMUGGLED_CHUNK|chunk data not followed by CRLF"
    [chunk-ws]="5 "$'\r\n'"hello"$'\r\n'"$SMUGGLED_CHUNK|bad byte after a chunk size"
)
for name in "${!BAD_CHUNKS[@]}"; do
    body=${BAD_CHUNKS[$name]%|*}
    why=${BAD_CHUNKS[$name]##*|}
    for via in plain tls; do
        port=$OUT
        proxy=frontend
        [ "$via" = tls ] && port=$IN && proxy=orders
        printf 'POST /api/%s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%s' "$name" "$body" >"$T/bad.in"
        send "$via" "$port" "$T/bad.in" "$T/bad.out"
        assert_contains "$(proxy_log "$proxy")" "request rejected listener=(out|in) .* reason=\"$why\"" \
            "$via: $name: the body is refused: $why"
    done
done
sleep 0.5
assert_not_contains "$APP_LOG" '"[A-Z]+ /api/admin' "no request smuggled in a chunked body was served"

# --- 4. responses without a body, and unknown transfer codings
for code in 204 304; do
    printf 'GET /api/%s HTTP/1.1\r\nHost: a\r\n\r\nGET /api/after-%s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' \
        "$code" "$code" >"$T/nobody.in"
    send plain "$OUT_ODD" "$T/nobody.in" "$T/nobody.out" 8
    assert_eq "$code 200" "$(grep -a '^HTTP/1.1 ' "$T/nobody.out" | cut -d' ' -f2 | paste -sd' ')" \
        "a $code with Content-Length: 5, then a pipelined request: both answered"
    if [ "$code" = 204 ]; then
        assert_not_contains "$T/nobody.out" '^[Cc]ontent-[Ll]ength: 5' "the 204's Content-Length is not passed on"
    fi
    if [ "$RAW_MS" -lt $((3000 * SLOW)) ]; then
        pass "the request after the $code is answered at once (${RAW_MS}ms)"
    else
        fail "the request after the $code is answered at once" "took ${RAW_MS}ms"
    fi
done
printf 'GET /api/gzip HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$T/gzip.in"
send plain "$OUT_ODD" "$T/gzip.in" "$T/gzip.out"
assert_eq 502 "$(http_status "$T/gzip.out")" "a response with Transfer-Encoding: gzip, chunked is a 502"
assert_contains "$(proxy_log orders)" 'bad upstream response .*transfer coding other than chunked' \
    "the inbound says why"
printf 'GET /api/badchunk HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' >"$T/badchunk.in"
send tls "$IN_ODD" "$T/badchunk.in" "$T/badchunk.out"
assert_not_contains "$T/badchunk.out" '^0' "a chunked response with bytes for the CRLF after its data is cut, not ended"
assert_contains "$(proxy_log orders)" 'bad upstream response .*chunk data not followed by CRLF' \
    "the inbound says why"

# --- 5. http.escaped_slashes: decode
for pair in '/api/x%2f..%2fadmin|403' '/api/x%2F..%5Cy|200'; do
    IFS='|' read -r target want <<<"$pair"
    printf 'GET %s HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n' "$target" >"$T/dec.in"
    send tls "$IN_DEC" "$T/dec.in" "$T/dec.out"
    assert_eq "$want" "$(http_status "$T/dec.out")" "escaped_slashes: decode: $target is answered $want"
done
assert_contains "$APP_LOG" '"GET /api/y HTTP/1.1"' "escaped_slashes: decode: the app gets the decoded, normalised path"
assert_not_contains "$APP_LOG" '"[A-Z]+ /api/admin' "escaped_slashes: decode: /api/admin is still denied"

# --- 6. a client that stops reading is not an upstream timeout
(
    exec 3<>"/dev/tcp/127.0.0.1/$OUT"
    printf 'GET /api/big HTTP/1.1\r\n' >&3 # the head in two parts: the head timer
    sleep 0.2                                # gives way to the idle timeout
    printf 'Host: a\r\n\r\n' >&3
    sleep $((8 * SLOW))
) &
stall=$!
assert_contains "$(proxy_log frontend)" 'downstream timeout listener=out .*the client stopped reading the response' \
    "a client that stops reading is a downstream timeout"
wait "$stall" 2>/dev/null || true
assert_contains "$T/frontend-access.log" '"GET /api/big HTTP/1.1" 200 SI ' "its access-log line has flag SI"
assert_not_contains "$(proxy_log frontend)" 'upstream timeout' "no upstream timeout is logged for it"

# --- 7. outrider explain normalises as the proxy does
explain() {
    local rc=0
    "$OUTRIDER" explain -c "$T/orders.yaml" --principal "$(spiffe_id ns/web/sa/frontend)" \
        --path "$1" >"$T/explain.out" 2>&1 || rc=$?
    echo "$rc"
}
assert_eq 2 "$(explain '/api/../secret')" "explain: /api/../secret is denied"
assert_contains "$T/explain.out" 'normalises the request target "/api/../secret" to "/secret"' \
    "explain: it says what the path became"
assert_eq 2 "$(explain '/api/%61dmin')" "explain: /api/%61dmin is denied"
assert_contains "$T/explain.out" 'no-admin' "explain: by no-admin"
assert_eq 2 "$(explain '/api/x%2f..%2fadmin')" "explain: an encoded slash is refused"
assert_contains "$T/explain.out" 'DENY with 400' "explain: with 400"
assert_eq 0 "$(explain 'http://x/api/x')" "explain: an absolute-form target is matched by its path"

stop_proxy frontend
stop_proxy decode
stop_proxy orders
