#!/usr/bin/env bash
# HTTP/1.1 requests to an app that speaks only h2c (docs/http2.md, "HTTP/1.1
# requests to an HTTP/2 app"): an inbound listener with
# `upstream_protocol: http2` sends every request to its app as HTTP/2 over
# its pool of h2c connections, whatever the client spoke.
#
#   curl --http1.1 --> outbound "out-h1" (multiplex: false)
#       =(HTTP/1.1 over mTLS)=> inbound "in-app" --(h2c)--> nghttpd (the app)
#   curl --http1.1 --> outbound "out-hop" =(the hop)=> inbound "in-app" --(h2c)--> nghttpd
#
# nghttpd logs every frame it receives, so the checks read what the app was
# served: the request arrived as HTTP/2 HEADERS with its :path, the
# inbound's x-forwarded-client-cert (a client's forged one gone), no
# outrider-orig-proto; bodies arrive whole both ways (content-length,
# chunked, Expect: 100-continue) and come back to the HTTP/1.1 client as
# HTTP/1.1; an RBAC denial never reaches the app; 16 HTTP/1.1 client
# connections share a few h2c connections to the app; the inbound's access
# log has protocol HTTP/1.1; the proxies exit clean.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v nghttpd >/dev/null || die "nghttpd not found (nghttp2-server; scripts/install-deps.sh)"
command -v h2load >/dev/null || die "h2load not found (nghttp2-client; scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)
alloc_ports APP IN OUT_H1 OUT_HOP

mkdir -p "$T/htdocs/admin"
printf 'hello h2c app\n' >"$T/htdocs/hello.txt"
printf 'secret\n' >"$T/htdocs/admin/secret.txt"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/htdocs/big.bin"
head -c $((2 * 1024 * 1024 + 17)) /dev/urandom >"$T/upload.bin"
start_bg app nghttpd --no-tls -a 127.0.0.1 -d "$T/htdocs" --echo-upload -v "$APP"
wait_port "$APP" || die "nghttpd does not listen on $APP"

IN_ALOG=$T/orders-access.log
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<CONFIG
rbac:
  default: allow
  policies:
    - name: deny-admin
      action: deny
      rules:
        - to: [{paths: ["/admin/*"]}]
access_log: {path: $IN_ALOG, format: json}
listeners:
$(inbound_listener in-app "$IN" "$APP" http)
    upstream_protocol: http2
CONFIG
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<CONFIG
listeners:
$(outbound_listener out-h1 "$OUT_H1" "$IN" "$ORDERS_ID" http)
    multiplex: false
$(outbound_listener out-hop "$OUT_HOP" "$IN" "$ORDERS_ID" http)
CONFIG
start_proxy orders "$T/orders.yaml" "$IN"
start_proxy frontend "$T/frontend.yaml" "$OUT_H1" "$OUT_HOP"

# h1_curl PORT PATH [ARGS...]: prints "STATUS VERSION"; the body is in $T/body.
h1_curl() {
    local port=$1 path=$2
    shift 2
    curl -sS --http1.1 -m $((10 * SLOW)) -o "$T/body" -D "$T/head" \
        -w '%{http_code} %{http_version}' "$@" "http://127.0.0.1:$port$path" \
        2>>"$T/clients.err" || true
}

# The fields nghttpd logged for the request with this :path since the mark
# (its lines "[id=C] [time] recv (stream_id=S) name: value").
app_request() {
    tail -c "+$((${LOG_MARK[$T/app.out]:-0} + 1))" "$T/app.out" |
        awk -v p="$1" 'match($0, /recv \(stream_id=[0-9]+\) /) {
                key = $1 " " substr($0, RSTART, RLENGTH)
                f = substr($0, RSTART + RLENGTH)
                blk[key] = blk[key] f "\n"
                if (f == ":path: " p) want[key] = 1
            }
            END { for (k in want) printf "%s", blk[k] }'
}

note "GET over HTTP/1.1 between the sidecars, HTTP/2 to the app"
mark_log "$T/app.out"
assert_eq "200 1.1" "$(h1_curl "$OUT_H1" /hello.txt)" "GET /hello.txt answers 200 over HTTP/1.1"
assert_eq "hello h2c app" "$(cat "$T/body")" "the app's body arrives"
wait_for_match "$T/app.out" ':path: /hello.txt' $((5 * SLOW)) || true
app_request /hello.txt >"$T/req-hello"
assert_contains "$T/req-hello" '^:method: GET$' "the app got the request as HTTP/2 (:method GET)"
assert_contains "$T/req-hello" ":authority: 127.0.0.1:$OUT_H1" "... with the client's Host as :authority"
assert_contains "$T/req-hello" "x-forwarded-client-cert: By=$ORDERS_ID;URI=$FRONTEND_ID" \
    "... with the inbound's x-forwarded-client-cert"
assert_not_contains "$T/req-hello" 'outrider-orig-proto|^connection:|^host:' \
    "... and no outrider-orig-proto, connection or host field"

note "a client's own x-forwarded-client-cert, straight to the inbound over mTLS"
mark_log "$T/app.out"
code=$(curl -sS --http1.1 -k -m $((10 * SLOW)) -o /dev/null -w '%{http_code} %{http_version}' \
    --cert "$T/pki/web-frontend/cert.pem" --key "$T/pki/web-frontend/key.pem" \
    -H 'x-forwarded-client-cert: By=forged' -H 'outrider-orig-proto: HTTP/1.1' \
    "https://127.0.0.1:$IN/hello.txt?direct" 2>>"$T/clients.err" || true)
assert_eq "200 1.1" "$code" "an HTTP/1.1 request with a forged XFCC answers 200"
wait_for_match "$T/app.out" ':path: /hello.txt\?direct' $((5 * SLOW)) || true
app_request '/hello.txt?direct' >"$T/req-direct"
assert_contains "$T/req-direct" "^x-forwarded-client-cert: By=$ORDERS_ID;URI=$FRONTEND_ID\$" \
    "the app got the inbound's x-forwarded-client-cert"
assert_eq 1 "$(grep -c '^x-forwarded-client-cert:' "$T/req-direct" || true)" "... and only that one"
assert_not_contains "$T/req-direct" 'By=forged|outrider-orig-proto' \
    "... not the client's forged one, nor its outrider-orig-proto"

note "bodies both ways"
assert_eq "200 1.1" "$(h1_curl "$OUT_H1" /big.bin)" "GET of 2 MiB answers 200"
assert_eq "$(sha256sum <"$T/htdocs/big.bin")" "$(sha256sum <"$T/body")" \
    "the 2 MiB download arrives whole"
assert_eq "200 1.1" "$(h1_curl "$OUT_H1" /up-cl --data-binary @"$T/upload.bin" -H 'Expect:')" \
    "POST of 2 MiB with content-length answers 200"
assert_eq "$(sha256sum <"$T/upload.bin")" "$(sha256sum <"$T/body")" \
    "the app echoes the content-length upload whole"
assert_eq "200 1.1" "$(h1_curl "$OUT_H1" /up-chunked --data-binary @"$T/upload.bin" \
    -H 'Transfer-Encoding: chunked' -H 'Expect:')" "POST of 2 MiB chunked answers 200"
assert_eq "$(sha256sum <"$T/upload.bin")" "$(sha256sum <"$T/body")" \
    "the app echoes the chunked upload whole"
mark_log "$T/app.out"
r=$(h1_curl "$OUT_H1" /up-expect --data-binary @"$T/upload.bin" -H 'Expect: 100-continue' \
    --expect100-timeout 5)
assert_eq "200 1.1" "$r" "POST with Expect: 100-continue answers 200"
assert_contains "$T/head" '^HTTP/1\.1 100 Continue' "... after a 100 Continue from the inbound (curl waits up to 5 s for it)"
assert_eq "$(sha256sum <"$T/upload.bin")" "$(sha256sum <"$T/body")" \
    "the app echoes that upload whole"
app_request /up-expect >"$T/req-expect"
assert_contains "$T/req-expect" 'content-length: 2097169' "the app got its content-length"
assert_not_contains "$T/req-expect" 'expect:' "the app got no Expect field (the sidecar answered it)"

note "RBAC"
mark_log "$T/app.out"
assert_eq "403 1.1" "$(h1_curl "$OUT_H1" /admin/secret.txt)" "a denied path answers 403"
assert_eq "200 1.1" "$(h1_curl "$OUT_H1" /hello.txt?after)" "an allowed path after it answers 200"
wait_for_match "$T/app.out" ':path: /hello.txt\?after' $((5 * SLOW)) || true
assert_logged "$T/app.out" ':path: /hello.txt\?after' "the app saw the allowed request"
assert_not_contains "$T/app.out" ':path: /admin' "the app never saw the denied request"

note "the hop, then HTTP/2 to the app"
mark_log "$T/app.out"
assert_eq "200 1.1" "$(h1_curl "$OUT_HOP" /hello.txt?hop)" "GET over the hop answers 200"
assert_eq "hello h2c app" "$(cat "$T/body")" "... with the app's body"
wait_for_match "$T/app.out" ':path: /hello.txt\?hop' $((5 * SLOW)) || true
app_request '/hello.txt?hop' >"$T/req-hop"
assert_contains "$T/req-hop" "x-forwarded-client-cert: By=$ORDERS_ID;URI=$FRONTEND_ID" \
    "the app got the hop's request as HTTP/2 with the inbound's x-forwarded-client-cert"
assert_not_contains "$T/req-hop" 'outrider-orig-proto' "... and without outrider-orig-proto"

note "16 HTTP/1.1 client connections, few h2c connections to the app"
h2load --h1 -c 16 -n 1600 -m 1 -T $((20 * SLOW)) -N $((20 * SLOW)) \
    "http://127.0.0.1:$OUT_H1/hello.txt" >"$T/h2load.out" 2>&1 &
load=$!
peak=0
for _ in $(seq 1 $((50 * SLOW))); do
    kill -0 "$load" 2>/dev/null || break
    n=$(ss -Htn state established "( dport = :$APP )" 2>/dev/null | wc -l)
    [ "$n" -gt "$peak" ] && peak=$n
    sleep 0.1
done
wait "$load" || true
assert_contains "$T/h2load.out" 'status codes: 1600 2xx' "all 1600 requests answer 200"
if [ "$peak" -ge 1 ] && [ "$peak" -le 4 ]; then
    pass "the inbound used $peak h2c connection(s) to the app for 16 client connections"
else
    fail "the inbound uses at most 4 h2c connections (2 workers) to the app" "peak: $peak"
fi

note "access log"
wait_for_match "$IN_ALOG" '"path":"/hello.txt\?hop"' $((5 * SLOW)) || true
log_settled "$IN_ALOG"
hello_ok() { jq -r 'select(.path=="/hello.txt" and .status==200) | .status' "$IN_ALOG" | wc -l; }
assert_eq "HTTP/1.1 200 $FRONTEND_ID" \
    "$(jq -r 'select(.path=="/hello.txt") | "\(.protocol) \(.status) \(.peer_id)"' "$IN_ALOG" | head -1)" \
    "the inbound logs the request as HTTP/1.1, with its status and caller"
assert_eq "deny 403" "$(jq -r 'select(.path=="/admin/secret.txt") | "\(.rbac_decision) \(.status)"' \
    "$IN_ALOG" | head -1)" "the inbound logs the denial"
assert_eq "1600" "$(($(hello_ok) - 1))" "the inbound logs every request of the load"

stop_proxy frontend
stop_proxy orders
