#!/usr/bin/env bash
# HTTP/2 through a real sidecar pair (docs/http2.md).
#
#   curl/nghttp --(h2c prior knowledge)--> outbound "frontend"
#       =(h2 over mTLS, ALPN h2)=> inbound "orders" --(h2c)--> nghttpd (the app)
#   curl --http2 with a client certificate --(ALPN h2)--> inbound "orders"
#
# Checks: GET and POST through the pair (status, bodies of 2 MiB both ways
# by digest, HTTP version 2 at the client); ALPN h2 straight to the inbound
# listener; several requests on one connection with nghttp; an RBAC denial
# answers 403 and never reaches the app (its log shows only allowed paths);
# a malformed request (a connection-specific header) is refused; HTTP/1.1
# on the same listeners still works (to an HTTP/1 app); an app that is down
# answers 503 (flag UF); the access logs carry protocol HTTP/2, :path,
# status and the RBAC decision on both sides; the inbound log names the
# client's SPIFFE ID; the proxies exit clean (no sanitizer report).
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v nghttpd >/dev/null || die "nghttpd not found (nghttp2-server; scripts/install-deps.sh)"
command -v nghttp >/dev/null || die "nghttp not found (nghttp2-client; scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)
alloc_ports APP IN OUT H1_APP H1_IN H1_OUT DOWN_APP DOWN_IN DOWN_OUT ADMIN_IN

# The app: nghttpd over h2c, serving $T/htdocs, echoing uploads, logging
# every frame it receives.
mkdir -p "$T/htdocs/admin" "$T/htdocs/api"
printf 'hello h2\n' >"$T/htdocs/hello.txt"
printf 'secret\n' >"$T/htdocs/admin/secret.txt"
printf 'item\n' >"$T/htdocs/api/item"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/htdocs/big.bin"
head -c $((2 * 1024 * 1024 + 17)) /dev/urandom >"$T/upload.bin"
start_bg app nghttpd --no-tls -a 127.0.0.1 -d "$T/htdocs" --echo-upload -v "$APP"
wait_port "$APP" || die "nghttpd does not listen on $APP"
start_http_app h1app "$H1_APP" "hello h1"

# orders denies /admin/*; access logs in $IN_ALOG and $OUT_ALOG.
start_h2_pair "$ADMIN_IN" deny-admin "/admin/*" \
    "h2:$IN:$APP:$OUT" "h1:$H1_IN:$H1_APP:$H1_OUT" "down:$DOWN_IN:$DOWN_APP:$DOWN_OUT"

# h2c_curl PORT PATH [ARGS...]: prints "STATUS VERSION"; the body is in $T/body.
h2c_curl() {
    local port=$1 path=$2
    shift 2
    curl -sS --http2-prior-knowledge -m $((10 * SLOW)) -o "$T/body" \
        -w '%{http_code} %{http_version}' "$@" "http://127.0.0.1:$port$path" \
        2>>"$T/clients.err" || true
}

note "GET through the pair, h2c -> h2 over mTLS -> h2c"
assert_eq "200 2" "$(h2c_curl "$OUT" /hello.txt)" "GET /hello.txt answers 200 over HTTP/2"
assert_eq "hello h2" "$(cat "$T/body")" "the app's body arrives"

note "2 MiB both ways"
assert_eq "200 2" "$(h2c_curl "$OUT" /big.bin)" "GET of 2 MiB answers 200"
assert_eq "$(sha256sum <"$T/htdocs/big.bin")" "$(sha256sum <"$T/body")" \
    "the 2 MiB download arrives whole"
assert_eq "200 2" "$(h2c_curl "$OUT" /hello.txt --data-binary @"$T/upload.bin")" \
    "POST of 2 MiB answers 200"
assert_eq "$(sha256sum <"$T/upload.bin")" "$(sha256sum <"$T/body")" \
    "the app echoes the 2 MiB upload whole"

note "ALPN h2 straight to the inbound listener"
v=$(curl -sS --http2 -k -m $((10 * SLOW)) -o "$T/body" -w '%{http_code} %{http_version}' \
    --cert "$T/pki/web-frontend/cert.pem" --key "$T/pki/web-frontend/key.pem" \
    "https://127.0.0.1:$IN/hello.txt" 2>>"$T/clients.err" || true)
assert_eq "200 2" "$v" "curl --http2 with a client certificate negotiates h2"
assert_eq "hello h2" "$(cat "$T/body")" "... and gets the body"

note "several requests on one connection (nghttp)"
nghttp -n -s "http://127.0.0.1:$OUT/hello.txt" "http://127.0.0.1:$OUT/api/item" \
    "http://127.0.0.1:$OUT/big.bin" "http://127.0.0.1:$OUT/hello.txt?again" \
    >"$T/nghttp.out" 2>&1 || true
assert_eq 4 "$(grep -cE ' 200 ' "$T/nghttp.out" || true)" \
    "nghttp gets 4 responses of 200 on one connection"

note "RBAC"
mark_log "$T/app.out"
assert_eq "403 2" "$(h2c_curl "$OUT" /admin/secret.txt)" "a denied path answers 403"
assert_eq "403 2" "$(h2c_curl "$OUT" /api/../admin/secret.txt --path-as-is)" \
    "a denied path behind dot segments answers 403"
assert_eq "200 2" "$(h2c_curl "$OUT" /api/item)" "an allowed path after them answers 200"
assert_logged "$T/app.out" ':path: /api/item' "the app saw the allowed request"
assert_not_contains "$T/app.out" ':path: /admin' "the app never saw a denied request"

note "malformed requests"
nghttp -v -H 'transfer-encoding: chunked' "http://127.0.0.1:$OUT/hello.txt" >"$T/nghttp-bad.out" 2>&1 || true
assert_contains "$T/nghttp-bad.out" 'error_code=PROTOCOL_ERROR' \
    "a request with a connection-specific header is reset with PROTOCOL_ERROR"
nghttp -v -H 'x-bad: a'$'\r''b' "http://127.0.0.1:$OUT/hello.txt" >"$T/nghttp-crlf.out" 2>&1 || true
assert_contains "$T/nghttp-crlf.out" 'error_code=PROTOCOL_ERROR' \
    "a request with a CR in a header value is reset with PROTOCOL_ERROR"
assert_eq "200 2" "$(h2c_curl "$OUT" /hello.txt)" "the next request is served"

note "HTTP/1.1 on HTTP/2-capable listeners"
v=$(curl -sS --http1.1 -m $((10 * SLOW)) -o "$T/body" -w '%{http_code} %{http_version}' \
    "http://127.0.0.1:$H1_OUT/x" 2>>"$T/clients.err" || true)
assert_eq "200 1.1" "$v" "an HTTP/1.1 request through the pair answers 200"
assert_eq "hello h1" "$(cat "$T/body")" "... with the HTTP/1 app's body"

note "upstream down"
assert_eq "503 2" "$(h2c_curl "$DOWN_OUT" /hello.txt)" "an app that is down answers 503"

note "access logs"
wait_for_match "$IN_ALOG" '"listener":"in-down"' $((5 * SLOW)) || true
wait_for_match "$OUT_ALOG" '"listener":"out-down"' $((5 * SLOW)) || true
q='select(.protocol=="HTTP/2" and .path=="/hello.txt" and .status==200 and .listener=="in-h2")'
assert_eq "$FRONTEND_ID" "$(jq -r "$q | .peer_id" "$IN_ALOG" | head -1)" \
    "the inbound logs an HTTP/2 request with the client's SPIFFE ID"
assert_eq "deny 403" "$(jq -r 'select(.path=="/admin/secret.txt") | "\(.rbac_decision) \(.status)"' \
    "$IN_ALOG" | head -1)" "the inbound logs the denial"
assert_eq "deny-admin" "$(jq -r 'select(.path=="/admin/secret.txt") | .rbac_policy' "$IN_ALOG" | head -1)" \
    "... with its policy"
assert_eq "403" "$(jq -r 'select(.path=="/admin/secret.txt") | .status' "$OUT_ALOG" | head -1)" \
    "the outbound logs the 403 it relayed"
assert_eq "$ORDERS_ID" "$(jq -r 'select(.path=="/hello.txt" and .status==200) | .peer_id' "$OUT_ALOG" | head -1)" \
    "the outbound line names the server's SPIFFE ID"
assert_eq "UF" "$(jq -r 'select(.listener=="in-down") | .response_flags' "$IN_ALOG" | head -1)" \
    "the failed upstream is logged UF"
assert_eq "2097152" "$(jq -r 'select(.path=="/big.bin" and .listener=="in-h2") | .bytes_out' "$IN_ALOG" | head -1)" \
    "the 2 MiB download is counted in bytes_out"

# Trace context: a request without traceparent gets one made by the
# outbound sidecar; the app sees it and both access logs carry its trace ID.
tid=$(jq -r 'select(.path=="/hello.txt" and .status==200 and .listener=="out-h2") | .trace_id' \
    "$OUT_ALOG" | head -1)
if [[ "$tid" =~ ^[0-9a-f]{32}$ ]]; then
    pass "the outbound logs the trace ID it made for an HTTP/2 request"
else
    fail "the outbound logs the trace ID it made for an HTTP/2 request" "got: $tid"
fi
assert_eq "$tid" "$(jq -r --arg t "$tid" 'select(.trace_id==$t and .listener=="in-h2") | .trace_id' \
    "$IN_ALOG" | head -1)" "the inbound logs the same trace ID"
assert_contains "$T/app.out" "traceparent: 00-$tid-[0-9a-f]{16}-01" "the app got the traceparent"

# HTTP/2 streams feed the request and RBAC metrics like HTTP/1 requests.
log_settled "$IN_ALOG"
curl -sS -m $((10 * SLOW)) "http://127.0.0.1:$ADMIN_IN/stats" >"$T/stats" 2>>"$T/clients.err" || true
ok200=$(jq -r --arg id "$FRONTEND_ID" \
    'select(.listener=="in-h2" and .status==200 and .peer_id==$id) | .status' "$IN_ALOG" | wc -l)
series=$(grep -E "^outrider_requests_total\{listener=\"in-h2\",direction=\"inbound\",peer=\"$FRONTEND_ID\",code=\"200\"" \
    "$T/stats" | awk '{print $2}')
assert_eq "$ok200" "${series:-none}" "requests_total counts every HTTP/2 200 the access log has for the caller on in-h2"
assert_contains "$T/stats" "^outrider_rbac_denied_total\{listener=\"in-h2\",policy=\"deny-admin\",peer=\"$FRONTEND_ID\"\} [1-9]" \
    "rbac_denied_total counts the HTTP/2 denial with its policy and caller"

stop_proxy frontend
stop_proxy orders
