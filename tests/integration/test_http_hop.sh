#!/usr/bin/env bash
# The multiplexed sidecar hop: the HTTP/1.1 requests of an outbound
# `protocol: http` listener travel to the peer sidecar as HTTP/2 streams
# (ALPN outrider.h2) over a small shared pool of mTLS connections, and the
# inbound sidecar gives them to the app as HTTP/1.1.
#
#   curl / h2load --h1 / python --(HTTP/1.1)--> outbound "frontend"
#       out-hop    =(outrider.h2, mTLS)=>  inbound "orders" in-hop    --> app
#       out-nomux  (multiplex: false) =(HTTP/1.1, mTLS)=> in-b        --> app
#       out-fb     =(mTLS; the peer does not offer the hop)=> in-nomux
#                  (multiplex: false)                                 --> app
#       out-ngx    =(mTLS)=> nginx (`ssl http2`, client certs verified)
#       out-ossl   =(mTLS)=> openssl s_server -www
#   The app is hop_app.py: HTTP/1.1, parses every request itself and logs
#   one JSON line per request (version, Host, x-forwarded-client-cert,
#   outrider-orig-proto, expect, body framing and sha256, requests in
#   flight).
# Both sidecars run one worker, so each listener has one pool.
#
# Checks:
# 1. 64 HTTP/1.1 client connections (h2load --h1, 6400 requests, 25/s per
#    connection) all get 200 while the mTLS connections out-hop -> in-hop
#    stay within 1..8; the app got exactly 6400 requests, all HTTP/1.1,
#    none with outrider-orig-proto; both access logs have 6400 lines with
#    protocol HTTP/1.1 and dropped none. The app sees the client's Host and the inbound's
#    x-forwarded-client-cert. 16 requests held 1 s each are in flight at
#    the app at once over at most 8 mTLS connections, and so are 150 (more
#    than one connection's 100 streams). Clients that read none of a 5 MiB
#    answer do not hold up other clients' requests; clients that go away
#    mid-request do not break the shared connection.
#    1280 requests from 64 clients without pause (the load under which the
#    pools run mid-turn) all get 200, over 1..8 connections, and reach the
#    app once each.
# 2. POST of 5 MiB with content-length and chunked: the app gets the same
#    bytes with the same framing; downloads of 5 MiB with content-length,
#    chunked and close-delimited arrive whole (content-length kept, else
#    chunked to the client); HEAD, 204 and 304 carry no body (the next
#    answer on the connection parses); pipelined requests are answered in
#    order.
# 3. Connection: close closes that client connection, not the shared mTLS
#    one; Expect: 100-continue is answered by the outbound at once and not
#    forwarded; an outrider-orig-proto header sent by a client never
#    reaches the app (docs/http2.md: "removed from every request"), whether
#    the request rides the hop, goes over HTTP/1.1 (multiplex: false on
#    either side, HTTP/1.0) or straight to the inbound over mTLS; HTTP/1.0
#    is answered and its connection closed.
# 4. A WebSocket-style Upgrade through the pair: 101, then bytes both ways.
# 5. multiplex: false on the outbound: one mTLS connection per request in
#    flight (more than 8 for 16 clients), all succeed; multiplex: false on
#    the inbound: the outbound falls back to HTTP/1.1, requests succeed.
# 6. A non-Outrider TLS peer (nginx with `ssl http2`, openssl s_server)
#    gets plain HTTP/1.1 and answers.
# 7. The inbound sidecar killed (SIGKILL) mid-load and started again: a
#    client whose response was cut gets its connection closed at once; new
#    requests succeed within a few retries, over at most 8 connections.
# 8. The proxies exit 0 after SIGTERM with no sanitizer report.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
HOP_APP=$(cd "$(dirname "$0")" && pwd)/hop_app.py
command -v h2load >/dev/null || die "h2load not found (nghttp2-client; scripts/install-deps.sh)"
command -v nginx >/dev/null || die "nginx not found (scripts/install-deps.sh installs it)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"
CLIENTS=64
REQUESTS=6400
BIG=$((5 * 1024 * 1024))

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)
alloc_ports APP IN IN_B IN_NOMUX NGX OSSL OUT OUT_NOMUX OUT_FB OUT_NGX OUT_OSSL ADMIN_IN ADMIN_OUT

head -c "$BIG" /dev/urandom >"$T/big.bin"
head -c "$BIG" /dev/urandom >"$T/upload.bin"
head -c 2048 /dev/urandom >"$T/small.bin"
sha() { sha256sum <"$1" | cut -d' ' -f1; }
BIG_SHA=$(sha "$T/big.bin")
UP_SHA=$(sha "$T/upload.bin")
SMALL_SHA=$(sha "$T/small.bin")

APP_LOG=$T/app.jsonl
: >"$APP_LOG"
start_bg app "$PY" "$HOP_APP" serve "$APP" "$APP_LOG" "$T/big.bin"
wait_port "$APP" || die "the app does not listen on $APP" "$(excerpt "$T/app.err")"

# nginx as a TLS peer that knows nothing of the hop: the orders SVID,
# client certificates required and verified against the mesh bundle, and
# HTTP/2 offered by ALPN.
# shellcheck disable=SC2016
NGINX_LOG_EXTRA=' proto="$server_protocol" op="$http_outrider_orig_proto" x="$http_x_test"'
start_nginx ngx <<NGINX
        listen 127.0.0.1:$NGX ssl http2;
        ssl_certificate $T/pki/shop-orders/cert.pem;
        ssl_certificate_key $T/pki/shop-orders/key.pem;
        ssl_client_certificate $T/pki/bundle.pem;
        ssl_verify_client on;
        location / { return 200 "ngx ok\n"; }
NGINX
wait_port "$NGX" || die "nginx does not listen on $NGX" "$(excerpt "$T/ngx.err")"
start_bg ossl openssl s_server -accept "127.0.0.1:$OSSL" -www -Verify 1 -verify_return_error \
    -cert "$T/pki/shop-orders/cert.pem" -key "$T/pki/shop-orders/key.pem" -CAfile "$T/pki/bundle.pem"
wait_port "$OSSL" || die "s_server does not listen on $OSSL"

IN_ALOG=$T/orders-access.log
OUT_ALOG=$T/frontend-access.log
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
workers: 1
access_log: {path: $IN_ALOG, format: json}
admin: {listen: 127.0.0.1:$ADMIN_IN}
listeners:
$(inbound_listener in-hop "$IN" "$APP" http)
$(inbound_listener in-b "$IN_B" "$APP" http)
$(inbound_listener in-nomux "$IN_NOMUX" "$APP" http)
    multiplex: false
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
workers: 1
access_log: {path: $OUT_ALOG, format: json}
admin: {listen: 127.0.0.1:$ADMIN_OUT}
listeners:
$(outbound_listener out-hop "$OUT" "$IN" "$ORDERS_ID" http)
$(outbound_listener out-nomux "$OUT_NOMUX" "$IN_B" "$ORDERS_ID" http)
    multiplex: false
$(outbound_listener out-fb "$OUT_FB" "$IN_NOMUX" "$ORDERS_ID" http)
$(outbound_listener out-ngx "$OUT_NGX" "$NGX" "$ORDERS_ID" http)
$(outbound_listener out-ossl "$OUT_OSSL" "$OSSL" "$ORDERS_ID" http)
EOF
start_proxy orders "$T/orders.yaml" "$IN" "$IN_B" "$IN_NOMUX"
start_proxy frontend "$T/frontend.yaml" "$OUT" "$OUT_NOMUX" "$OUT_FB" "$OUT_NGX" "$OUT_OSSL"

established() { # PORT: established TCP connections to 127.0.0.1:PORT
    ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l
}
# The local addresses of the connections to 127.0.0.1:PORT, one a line, sorted.
conn_ids() {
    ss -Htn state established "( dport = :$1 )" 2>/dev/null | awk '{print $3}' | sort
}

CURL=(curl -sS --http1.1 --max-time $((30 * SLOW)))
# hreq PORT PATH TAG [CURL ARGS...]: one HTTP/1.1 request tagged x-test:
# TAG; prints the status (000 when there was no answer); the body is in
# $T/body, the response head(s) in $T/head.
hreq() {
    local port=$1 path=$2 tag=$3 code
    shift 3
    code=$("${CURL[@]}" -o "$T/body" -D "$T/head" -H "x-test: $tag" -w '%{http_code}' "$@" \
        "http://127.0.0.1:$port$path" 2>>"$T/clients.err") || true
    echo "${code:-000}"
}

# app_count JQ_CONDITION: how many requests in the app's log match it.
app_count() {
    jq -s "map(select($1)) | length" "$APP_LOG"
}
# app_field TAG JQ_EXPR: JQ_EXPR of the first app-log record tagged TAG
# ("none" when the app got no such request).
app_field() {
    local tag=$1 expr=$2 out
    wait_for_match "$APP_LOG" "\"tag\": \"$tag\"" $((5 * SLOW)) || true
    out=$(jq -c --arg t "$tag" "select(.tag == \$t) | $expr" "$APP_LOG" | head -n1)
    echo "${out:-none}"
}
# alog_summary FILE LISTENER PATH [N]: "COUNT PROTOCOL STATUS" lines of the
# access-log lines of LISTENER for PATH, waiting (bounded) until there are
# N of them.
alog_summary() {
    local file=$1 listener=$2 path=$3 n=${4:-1} q deadline=$((SECONDS + 15 * SLOW))
    # shellcheck disable=SC2016
    q='select(.listener == $l and .path == $p)'
    while [ "$(jq -s --arg l "$listener" --arg p "$path" "map($q) | length" "$file" 2>/dev/null || echo 0)" -lt "$n" ] &&
        [ "$SECONDS" -lt "$deadline" ]; do
        sleep 0.2
    done
    jq -r --arg l "$listener" --arg p "$path" "$q"' | "\(.protocol) \(.status)"' "$file" |
        sort | uniq -c | awk '{print $1, $2, $3}' | paste -sd'|'
}
# load NAME PORT CONN_PORT ARGS...: h2load --h1 in the background (bounded
# by timeout) while the established connections to CONN_PORT are sampled;
# MAX_CONNS is the most seen, MIN_CONNS the fewest (in samples taken while
# the load ran), its output is in $T/NAME.out.
load() {
    local name=$1 port=$2 conn_port=$3 m samples=0 deadline
    shift 3
    start_bg "$name" timeout $((120 * SLOW)) h2load --h1 "$@"
    MAX_CONNS=0 MIN_CONNS=1000000
    deadline=$((SECONDS + 120 * SLOW))
    sleep 0.2
    while is_running "$name" && [ "$SECONDS" -lt "$deadline" ]; do
        m=$(established "$conn_port")
        [ "$m" -gt "$MAX_CONNS" ] && MAX_CONNS=$m
        [ "$m" -lt "$MIN_CONNS" ] && MIN_CONNS=$m
        samples=$((samples + 1))
        sleep 0.1
    done
    wait "${PROC_PID[$name]}" 2>/dev/null || true
    unset "PROC_PID[$name]"
    note "$name: $samples samples of the connections to port $conn_port: max $MAX_CONNS, min $MIN_CONNS"
}
# dropped ADMIN_PORT: outrider_access_log_dropped_total of a proxy.
dropped() {
    curl -sS --max-time $((10 * SLOW)) "http://127.0.0.1:$1/stats" 2>>"$T/clients.err" |
        awk '$1 == "outrider_access_log_dropped_total" { print $2 }'
}
# in_range LOW HIGH VALUE WHAT
in_range() {
    if [ "$3" -ge "$1" ] && [ "$3" -le "$2" ]; then
        pass "$4: $3"
    else
        fail "$4" "expected $1..$2, got $3"
    fi
}

# ---------------------------------------------------------------- 1. many clients, few connections
note "1. $CLIENTS HTTP/1.1 client connections share the hop"
# 25 requests a second per client (1600/s in all): the access logs' rings
# (256 KiB per worker, docs/access-log.md) drop lines, counted, when their
# writer thread cannot keep up, which on 2 loaded cores it sometimes cannot at
# full speed.
load load "$OUT" "$IN" -c "$CLIENTS" -n "$REQUESTS" --rps 25 -H 'x-test: load' "http://127.0.0.1:$OUT/load"
assert_contains "$T/load.out" "requests: $REQUESTS total, $REQUESTS started, $REQUESTS done, $REQUESTS succeeded" \
    "h2load --h1: all $REQUESTS requests over $CLIENTS connections succeed"
assert_contains "$T/load.out" "status codes: $REQUESTS 2xx" "... all of them 2xx"
in_range 1 8 "$MAX_CONNS" "mTLS connections out-hop -> in-hop during the load stay within 1..8"
assert_eq "$REQUESTS" "$(app_count '.tag == "load"')" "the app got exactly the $REQUESTS requests"
assert_eq "$REQUESTS" "$(app_count '.tag == "load" and .version == "HTTP/1.1" and .method == "GET" and .target == "/load"')" \
    "... all of them GET /load HTTP/1.1"
assert_eq 0 "$(app_count '.orig_proto | length > 0')" "... none with an outrider-orig-proto header"
assert_eq "$REQUESTS HTTP/1.1 200" "$(alog_summary "$OUT_ALOG" out-hop /load "$REQUESTS")" \
    "the outbound's access log: $REQUESTS lines, HTTP/1.1 200"
assert_eq "$REQUESTS HTTP/1.1 200" "$(alog_summary "$IN_ALOG" in-hop /load "$REQUESTS")" \
    "the inbound's access log: $REQUESTS lines, HTTP/1.1 200"
assert_eq "0 0" "$(dropped "$ADMIN_OUT") $(dropped "$ADMIN_IN")" "... and neither dropped a line (outrider_access_log_dropped_total)"
q='select(.listener == "out-hop" and .path == "/load") | .peer_id'
assert_eq "$ORDERS_ID" "$(jq -r "$q" "$OUT_ALOG" | sort -u | paste -sd' ')" "... the outbound logs the inbound's SPIFFE ID"
q='select(.listener == "in-hop" and .path == "/load") | .peer_id'
assert_eq "$FRONTEND_ID" "$(jq -r "$q" "$IN_ALOG" | sort -u | paste -sd' ')" "... the inbound logs the outbound's SPIFFE ID"

note "the app sees HTTP/1.1, the client's Host and the inbound's x-forwarded-client-cert"
assert_eq 200 "$(hreq "$OUT" /hello?host host -H 'Host: orders.shop.svc:8080')" "a GET with its own Host answers 200"
assert_eq "hello hop" "$(cat "$T/body")" "... with the app's body"
assert_eq '"HTTP/1.1"' "$(app_field host .version)" "... the app sees HTTP/1.1"
assert_eq '["orders.shop.svc:8080"]' "$(app_field host .host)" "... and exactly the Host the client sent"
assert_eq "[\"By=$ORDERS_ID;URI=$FRONTEND_ID\"]" "$(app_field host .xfcc)" \
    "... and one x-forwarded-client-cert naming both identities"

note "16 slow requests in flight at once over at most 8 mTLS connections"
load hopslow "$OUT" "$IN" -c 16 -n 32 -H 'x-test: hopslow' "http://127.0.0.1:$OUT/slow?ms=1000"
assert_contains "$T/hopslow.out" "requests: 32 total, 32 started, 32 done, 32 succeeded" "16 clients, 32 requests held 1 s: all succeed"
in_range 1 8 "$MAX_CONNS" "... over mTLS connections within 1..8"
inflight=$(jq -s '[.[] | select(.tag == "hopslow") | .inflight] | max // 0' "$APP_LOG")
if [ "$inflight" -gt 8 ]; then
    pass "... while the app had up to $inflight of them in flight at once"
else
    fail "... while the app had more than 8 of them in flight at once" "at most $inflight"
fi

note "150 slow requests in flight at once: more than one connection's stream limit (100)"
load many "$OUT" "$IN" -c 150 -n 150 -H 'x-test: many' "http://127.0.0.1:$OUT/slow?ms=1500"
assert_contains "$T/many.out" "requests: 150 total, 150 started, 150 done, 150 succeeded" "150 clients, 150 requests held 1.5 s: all succeed"
in_range 1 8 "$MAX_CONNS" "... over mTLS connections within 1..8"
assert_eq 150 "$(app_count '.tag == "many" and .version == "HTTP/1.1"')" "... the app got each once"

note "a closed-loop burst: $CLIENTS clients, each sending its next request once it has an answer"
# Many requests (and, at the inbound, many of the app's answers) arrive in
# one loop turn, which is when a pool also runs mid-turn (h2_pool.c, "Early
# runs"). Nothing here observes those runs; the case checks that under
# them every request is answered and reaches the app once.
load burst "$OUT" "$IN" -c "$CLIENTS" -n 1280 -H 'x-test: burst' "http://127.0.0.1:$OUT/load?burst"
assert_contains "$T/burst.out" "requests: 1280 total, 1280 started, 1280 done, 1280 succeeded" \
    "$CLIENTS clients, 1280 requests without pause: all succeed"
assert_contains "$T/burst.out" "status codes: 1280 2xx" "... all of them 2xx"
# (The burst may end before the first sample: the pooled connections it
# used are counted after it instead.)
in_range 1 8 "$(established "$IN")" "... and 1..8 mTLS connections out-hop -> in-hop are open after it"
assert_eq 1280 "$(app_count '.tag == "burst" and .version == "HTTP/1.1" and .target == "/load?burst"')" \
    "... the app got each once, as HTTP/1.1"

note "clients that do not read, and clients that go away, share the connection with others"
start_bg stall "$PY" "$HOP_APP" client "$OUT" stall
sleep 1
start=$(date +%s%N)
codes=$(for i in $(seq 1 10); do hreq "$OUT" "/hello?beside-stall=$i" beside-stall; done | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd' ')
ms=$(elapsed_ms "$start")
assert_eq "200x10" "$codes" "10 requests beside 8 clients that read none of their 5 MiB answer get 200"
if [ "$ms" -lt $((3000 * SLOW)) ]; then
    pass "... in ${ms} ms (not held up by them)"
else
    fail "... without being held up by them" "took ${ms} ms"
fi
assert_eq 200 "$(hreq "$OUT" /big-cl beside-stall-big)" "... and a 5 MiB download beside them answers 200"
assert_eq "$BIG_SHA" "$(sha "$T/body")" "... whole"
deadline=$((SECONDS + 40 * SLOW))
while is_running stall && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
stop_bg stall
assert_contains "$T/stall.out" '^stalled=8 whole=8$' "the 8 stalled clients then get their whole answers"
"$PY" "$HOP_APP" client "$OUT" abort >"$T/abort.out" 2>&1 || true
assert_contains "$T/abort.out" '^aborted=20$' "20 clients went away before their answer"
codes=$(for i in $(seq 1 10); do hreq "$OUT" "/hello?after-abort=$i" after-abort; done | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd' ')
assert_eq "200x10" "$codes" "... the requests after them get 200"
in_range 1 8 "$(established "$IN")" "... over the shared mTLS connections"

# ---------------------------------------------------------------- 2. bodies
note "2. bodies"
assert_eq 200 "$(hreq "$OUT" /upload post-cl --data-binary @"$T/upload.bin" -H 'Content-Type: application/octet-stream')" \
    "POST of 5 MiB with content-length answers 200"
assert_eq "framing=cl len=$BIG sha256=$UP_SHA" "$(cat "$T/body")" "... the app got the body whole (its answer)"
assert_eq "\"cl $BIG $BIG $UP_SHA\"" "$(app_field post-cl '"\(.framing) \(.cl) \(.len) \(.sha256)"')" \
    "... with content-length $BIG (the app's log)"
assert_eq 200 "$(hreq "$OUT" /upload post-te --data-binary @"$T/upload.bin" -H 'Transfer-Encoding: chunked')" \
    "POST of 5 MiB chunked answers 200"
assert_eq "framing=chunked len=$BIG sha256=$UP_SHA" "$(cat "$T/body")" "... the app got the body whole (its answer)"
assert_eq "\"chunked chunked null $BIG $UP_SHA\"" \
    "$(app_field post-te '"\(.framing) \(.te) \(.cl) \(.len) \(.sha256)"')" \
    "... chunked, without content-length (the app's log)"

assert_eq 200 "$(hreq "$OUT" /big-cl get-cl)" "GET of 5 MiB with content-length answers 200"
assert_eq "$BIG_SHA" "$(sha "$T/body")" "... and arrives whole"
assert_contains "$T/head" "^[Cc]ontent-[Ll]ength: $BIG"$'\r'"$" "... with its content-length"
assert_not_contains "$T/head" '^[Tt]ransfer-[Ee]ncoding' "... and no transfer-encoding"
assert_eq 200 "$(hreq "$OUT" /big-chunked get-chunked)" "GET of 5 MiB the app sends chunked answers 200"
assert_eq "$BIG_SHA" "$(sha "$T/body")" "... and arrives whole"
assert_contains "$T/head" '^[Tt]ransfer-[Ee]ncoding: chunked'$'\r''$' "... chunked"
assert_eq 200 "$(hreq "$OUT" /big-close get-close)" "GET of 5 MiB the app ends by closing answers 200"
assert_eq "$BIG_SHA" "$(sha "$T/body")" "... and arrives whole"
assert_contains "$T/head" '^[Tt]ransfer-[Ee]ncoding: chunked'$'\r''$' "... chunked to the client"
assert_not_contains "$T/head" '^[Cc]ontent-[Ll]ength' "... without content-length"
assert_eq "200 $BIG_SHA" "$("${CURL[@]}" -o "$T/slowbody" -w '%{http_code}' --limit-rate 4M \
    "http://127.0.0.1:$OUT/big-cl" 2>>"$T/clients.err" || true) $(sha "$T/slowbody")" \
    "a rate-limited download of 5 MiB arrives whole"

"$PY" "$HOP_APP" client "$OUT" bodiless >"$T/bodiless.out" 2>&1 || true
assert_contains "$T/bodiless.out" "^HEAD /big-cl 200 cl=$BIG te=- body=0$" "HEAD answers 200 with the content-length and no body"
assert_contains "$T/bodiless.out" '^GET /nocontent 204 cl=- te=- body=0$' "204 comes without body or framing"
assert_contains "$T/bodiless.out" '^GET /notmodified 304 cl=[-0-9]+ te=- body=0$' "304 comes without body"
assert_contains "$T/bodiless.out" '^GET /hello 200 cl=10 te=- body=10$' "... and the next answer on that connection parses"
assert_contains "$T/bodiless.out" '^after=none$' "... with nothing after it"

"$PY" "$HOP_APP" client "$OUT" pipeline >"$T/pipeline.out" 2>&1 || true
assert_contains "$T/pipeline.out" '^200 /slow\?ms=500&p=1,200 /hello\?p=2,200 /post\?p=3$' \
    "three pipelined requests (the first slow) are answered in order"

# ---------------------------------------------------------------- 3. connection handling
note "3. Connection: close, Expect: 100-continue, a forged outrider-orig-proto"
assert_eq 200 "$(hreq "$OUT" /hello warm)" "a request before Connection: close answers 200"
before=$(conn_ids "$IN")
"$PY" "$HOP_APP" client "$OUT" close >"$T/close.out" 2>&1 || true
assert_contains "$T/close.out" '^HTTP/1.1 200 OK connection=close body=hello hop after=EOF' \
    "Connection: close: the answer says close and that client connection closes"
after=$(conn_ids "$IN")
if [ -n "$before" ] && [ -z "$(comm -23 <(echo "$before") <(echo "$after"))" ]; then
    pass "... the shared mTLS connection stays ($(echo "$before" | paste -sd' '))"
else
    fail "... the shared mTLS connection stays" "before: $(echo "$before" | paste -sd' ')" "after: $(echo "$after" | paste -sd' ')"
fi
assert_eq 200 "$(hreq "$OUT" /hello after-close)" "... and the next request answers 200"

out=$("${CURL[@]}" -o "$T/body" -D "$T/head" -H 'x-test: expect' -H 'Expect: 100-continue' --expect100-timeout 5 \
    --data-binary @"$T/small.bin" -w '%{http_code} %{time_total}' "http://127.0.0.1:$OUT/upload" 2>>"$T/clients.err" || true)
note "Expect: 100-continue: $out"
assert_eq 200 "${out%% *}" "a POST with Expect: 100-continue answers 200"
if awk -v t="${out#* }" 'BEGIN { exit !(t + 0 < 2) }'; then
    pass "... in ${out#* } s (no wait for curl's expect timeout)"
else
    fail "... in under 2 s" "took ${out#* } s"
fi
assert_contains "$T/head" '^HTTP/1\.1 100 Continue' "... after a 100 Continue"
assert_eq "framing=cl len=2048 sha256=$SMALL_SHA" "$(cat "$T/body")" "... the app got the body whole"
assert_eq '[]' "$(app_field expect .expect)" "... and no expect header"

assert_eq 200 "$(hreq "$OUT" /hello forged-hop -H 'outrider-orig-proto: HTTP/1.1')" "a client's outrider-orig-proto (hop): 200"
assert_eq 200 "$(hreq "$OUT" /hello forged-hop2 -H 'Outrider-Orig-Proto: HTTP/2')" "... in other case and value: 200"
assert_eq 200 "$(hreq "$OUT_NOMUX" /hello forged-nomux -H 'outrider-orig-proto: HTTP/1.1')" \
    "... through an outbound with multiplex: false: 200"
assert_eq 200 "$(hreq "$OUT_FB" /hello forged-fb -H 'outrider-orig-proto: HTTP/1.1')" \
    "... through the HTTP/1.1 fallback: 200"
code=$(curl -sS --http1.1 -k --max-time $((30 * SLOW)) --cert "$T/pki/web-frontend/cert.pem" \
    --key "$T/pki/web-frontend/key.pem" -o /dev/null -w '%{http_code}' -H 'x-test: forged-direct' \
    -H 'outrider-orig-proto: HTTP/1.1' "https://127.0.0.1:$IN/hello" 2>>"$T/clients.err" || true)
assert_eq 200 "$code" "... straight to the inbound over mTLS (HTTP/1.1): 200"
"$PY" "$HOP_APP" client "$OUT" ows >"$T/ows.out" 2>&1 || true
assert_eq "200 body=framing=cl len=5 sha256=$(printf hello | sha256sum | cut -d' ' -f1)" \
    "$(cat "$T/ows.out")" "field values with whitespace after them (content-length too) ride the hop: 200, the body whole"
assert_eq 1 "$(app_count '.tag == "ows" and .version == "HTTP/1.1" and (.orig_proto | length) == 0')" \
    "... the app got it once, as HTTP/1.1"
"$PY" "$HOP_APP" client "$OUT" expect-ows >"$T/expect-ows.out" 2>&1 || true
assert_eq "interim=HTTP/1.1 100 Continue final=200 body=framing=cl len=5 sha256=$(printf hello | sha256sum | cut -d' ' -f1)" \
    "$(cat "$T/expect-ows.out")" "Expect: 100-continue with whitespace after it gets its 100 Continue before the body"
"$PY" "$HOP_APP" client "$OUT" emptyhost >"$T/emptyhost.out" 2>&1 || true
assert_eq "200 body=hello hop" "$(cat "$T/emptyhost.out")" "an empty Host is relayed over HTTP/1.1 as it is: 200"
assert_eq '["HTTP/1.1",[""]]' "$(app_field emptyhost '[.version, .host]')" "... the app got the empty Host"
"$PY" "$HOP_APP" client "$OUT" http10 >"$T/http10.out" 2>&1 || true
assert_contains "$T/http10.out" '^HTTP/1\.[01] body=hello hop after=EOF$' \
    "an HTTP/1.0 request (with the header too) is answered and its connection closes"
for tag in forged-hop forged-hop2 forged-nomux forged-fb forged-direct http10; do
    assert_eq '"HTTP/1.1 []"' "$(app_field "$tag" '"\(.version) \(.orig_proto)"')" \
        "$tag: the app got it as HTTP/1.1, without outrider-orig-proto"
done

# ---------------------------------------------------------------- 4. upgrade
note "4. a WebSocket-style Upgrade through the pair"
rc=0
timeout $((30 * SLOW)) socat -t $((5 * SLOW)) - "TCP:127.0.0.1:$OUT" >"$T/upgrade.out" 2>>"$T/clients.err" < <(
    printf 'GET /ws HTTP/1.1\r\nHost: orders\r\nx-test: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\nfirst-payload-in-the-head-write\n'
    sleep 1
    printf 'second-payload-after-101\n'
    sleep 1
) || rc=$?
assert_eq "HTTP/1.1 101 Switching Protocols" "$(head -n1 "$T/upgrade.out" | tr -d '\r')" "Upgrade is answered 101"
assert_contains "$T/upgrade.out" "^[Uu]pgrade: websocket"$'\r'"$" "the 101 carries Upgrade: websocket"
assert_contains "$T/upgrade.out" "^first-payload-in-the-head-write$" "bytes sent right behind the upgrade request are echoed back"
assert_contains "$T/upgrade.out" "^second-payload-after-101$" "bytes sent after the 101 are echoed back"
assert_exit 0 "$rc" "the upgraded connection ends cleanly after the client closes"
assert_eq '"HTTP/1.1 websocket []"' "$(app_field ws '"\(.version) \(.upgrade) \(.orig_proto)"')" \
    "the app got the Upgrade request as HTTP/1.1 with its Upgrade header"
assert_eq 200 "$(hreq "$OUT" /hello after-ws)" "a request after the upgrade answers 200"

# ---------------------------------------------------------------- 5. multiplex: false
note "5. multiplex: false on the outbound"
load nomux "$OUT_NOMUX" "$IN_B" -c 16 -n 32 -H 'x-test: nomux' "http://127.0.0.1:$OUT_NOMUX/slow?ms=1000"
assert_contains "$T/nomux.out" "requests: 32 total, 32 started, 32 done, 32 succeeded" "16 clients, 32 requests held 1 s: all succeed"
if [ "$MAX_CONNS" -gt 8 ]; then
    pass "... over one mTLS connection per request in flight: up to $MAX_CONNS"
else
    fail "... over one mTLS connection per request in flight (more than 8)" "at most $MAX_CONNS"
fi
assert_eq 32 "$(app_count '.tag == "nomux" and .version == "HTTP/1.1" and (.orig_proto | length) == 0')" \
    "... the app got 32 of them as HTTP/1.1, without outrider-orig-proto"
assert_eq "32 HTTP/1.1 200" "$(alog_summary "$OUT_ALOG" out-nomux "/slow?ms=1000" 32)" "... and the outbound logs them HTTP/1.1 200"

note "multiplex: false on the inbound: the outbound falls back to HTTP/1.1"
load fb "$OUT_FB" "$IN_NOMUX" -c 16 -n 32 -H 'x-test: fb' "http://127.0.0.1:$OUT_FB/slow?ms=1000"
assert_contains "$T/fb.out" "requests: 32 total, 32 started, 32 done, 32 succeeded" "16 clients, 32 requests held 1 s: all succeed"
if [ "$MAX_CONNS" -gt 8 ]; then
    pass "... over one mTLS connection per request in flight: up to $MAX_CONNS"
else
    fail "... over one mTLS connection per request in flight (more than 8)" "at most $MAX_CONNS"
fi
assert_eq 32 "$(app_count '.tag == "fb" and .version == "HTTP/1.1" and (.orig_proto | length) == 0')" \
    "... the app got 32 of them as HTTP/1.1, without outrider-orig-proto"
assert_eq 200 "$(hreq "$OUT_FB" /upload post-fb --data-binary @"$T/upload.bin")" "a POST of 5 MiB over the fallback answers 200"
assert_eq "framing=cl len=$BIG sha256=$UP_SHA" "$(cat "$T/body")" "... the app got the body whole"
assert_eq "32 HTTP/1.1 200" "$(alog_summary "$OUT_ALOG" out-fb "/slow?ms=1000" 32)" "the outbound logs the fallback requests HTTP/1.1 200"
assert_eq "32 HTTP/1.1 200" "$(alog_summary "$IN_ALOG" in-nomux "/slow?ms=1000" 32)" "... and so does the inbound"

# ---------------------------------------------------------------- 6. non-Outrider peers
note "6. a TLS peer that is not an Outrider sidecar"
for i in 1 2 3; do
    assert_eq 200 "$(hreq "$OUT_NGX" "/ngx-$i" ngx)" "GET $i to nginx (ssl http2) answers 200"
    assert_eq "ngx ok" "$(cat "$T/body")" "... with nginx's body"
done
assert_eq 200 "$(hreq "$OUT_NGX" /ngx-post ngx --data-binary @"$T/small.bin")" "a POST to nginx answers 200"
wait_for_match "$T/ngx.access" '"POST /ngx-post' $((5 * SLOW)) || true
assert_eq 4 "$(grep -c 'proto="HTTP/1.1" op="-" x="ngx"' "$T/ngx.access" || true)" \
    "nginx logged the 4 requests as HTTP/1.1, without outrider-orig-proto"
assert_not_contains "$T/ngx.access" 'HTTP/2' "nginx never saw HTTP/2"
assert_eq 200 "$(hreq "$OUT_OSSL" / ossl)" "GET to openssl s_server answers 200"
assert_contains "$T/body" "URI:$FRONTEND_ID" "... s_server's page shows the sidecar's SVID as the client certificate"

# ---------------------------------------------------------------- 7. the inbound goes away
note "7. the inbound sidecar is killed mid-load and started again"
start_bg kill-load timeout $((60 * SLOW)) h2load --h1 -c 8 -D $((4 * SLOW)) -H 'x-test: kill' "http://127.0.0.1:$OUT/kill"
# a response cut in the middle: the head and half the body are through when
# the inbound dies, the rest would follow 10 s later
# shellcheck disable=SC2016
start_bg cut bash -c 'curl -sS --http1.1 --max-time $2 -o /dev/null -H "x-test: cut" \
    -w "%{http_code} %{size_download}\n" "http://127.0.0.1:$1/slow-body?ms=10000"; echo "rc=$? end=$(date +%s%N)"' \
    cut "$OUT" $((30 * SLOW))
sleep 1
check_sanitizers "$T/orders.log" orders
killed_at=$(date +%s%N)
{
    kill -KILL "${PROC_PID[orders]}"
    wait "${PROC_PID[orders]}" || true
} 2>/dev/null
unset "PROC_PID[orders]"
mv "$T/orders.log" "$T/orders-killed.log"
sleep 0.5
mark_log "$IN_ALOG"
start_proxy orders "$T/orders.yaml" "$IN" "$IN_B" "$IN_NOMUX"
wait "${PROC_PID[kill-load]}" 2>/dev/null || true
unset "PROC_PID[kill-load]"
note "the load across the restart: $(grep -E '^requests:|^status codes:' "$T/kill-load.out" | paste -sd' ')"
resumed=$(tail -c "+$((${LOG_MARK[$IN_ALOG]} + 1))" "$IN_ALOG" | grep -c '"path":"/kill"' || true)
if [ "$resumed" -gt 0 ]; then
    pass "the load's clients carried on through the restarted inbound ($resumed requests)"
else
    fail "the load's clients carried on through the restarted inbound" "no /kill request reached it" \
        "$(excerpt "$T/kill-load.out" 4)"
fi
deadline=$((SECONDS + 30 * SLOW))
while is_running cut && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
stop_bg cut
end=$(sed -n 's/^rc=[0-9]* end=\([0-9]*\)$/\1/p' "$T/cut.out")
cut_ms=$(((${end:-$(date +%s%N)} - killed_at) / 1000000))
note "the cut response: $(paste -sd' ' "$T/cut.out"), ${cut_ms} ms after the kill"
assert_contains "$T/cut.out" '^200 5$' "a client whose response was cut by the kill got the head and 5 of 10 body bytes"
assert_contains "$T/cut.out" '^rc=18 ' "... then its connection closed (curl: partial file), not a timeout"
if [ "$cut_ms" -lt $((5000 * SLOW)) ]; then
    pass "... within ${cut_ms} ms of the kill"
else
    fail "... within $((5 * SLOW)) s of the kill" "${cut_ms} ms"
fi
tries=0 code=000
while [ "$tries" -lt 20 ]; do
    tries=$((tries + 1))
    code=$(hreq "$OUT" /after-restart retry)
    [ "$code" = 200 ] && break
    sleep 0.25
done
assert_eq 200 "$code" "after the restart a request answers 200 (in $tries tries)"
codes=$(for i in $(seq 1 20); do hreq "$OUT" "/after-restart?$i" after-restart; done | sort | uniq -c | awk '{print $2 "x" $1}' | paste -sd' ')
assert_eq "200x20" "$codes" "the 20 requests after it all answer 200"
assert_eq 20 "$(app_count '.tag == "after-restart" and .version == "HTTP/1.1" and (.orig_proto | length) == 0')" \
    "... and reach the app as HTTP/1.1"
in_range 1 8 "$(established "$IN")" "mTLS connections to the restarted inbound"

# ---------------------------------------------------------------- 8. clean exit
note "8. clean exit"
assert_eq 0 "$(app_count '.orig_proto | length > 0')" "no request in the whole run reached the app with outrider-orig-proto"
stop_proxy frontend
stop_proxy orders
