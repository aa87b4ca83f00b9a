#!/usr/bin/env bash
# Idle TLS connections give their record buffers back and take them again
# (tls_idle.h), against OpenSSL peers in both roles, many thousands of times.
#
#   curl, s_client (OpenSSL clients) =mTLS=> in (orders) -> nginx app
#   s_client =mTLS=> tcp-in (orders) -> echo app
#   curl -> out (frontend) =mTLS=> nginx with ssl_verify_client (OpenSSL
#                                   servers: one ChaCha20, one AES-GCM)
#
# Each keep-alive request leaves the connection idle (buffers released) and
# the next one wakes it, so one curl run of N requests is N release/wake
# cycles on one connection; a wrong record counter after a wake would break
# the very next record (bad MAC on the peer) and fail the run. Checked:
# thousands of small requests on one connection each way, with ChaCha20 and
# with AES-GCM (explicit nonce); pauses between requests (s_client); 1 MiB
# bodies up and down on re-used connections (records split across reads);
# an echoed byte stream on a tcp listener with pauses; connections held idle
# after the handshake hold no buffers (releases - wakes grows by their
# number); the wake and release counters in /stats follow the traffic.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PKI=$T/pki
make_pki "$PKI" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
alloc_ports APP_PORT ECHO_PORT IN_PORT TCP_IN_PORT ORDERS_ADMIN \
    NGX_CHACHA_PORT NGX_GCM_PORT OUT_CHACHA_PORT OUT_GCM_PORT FRONTEND_ADMIN

mkdir -p "$T/www"
head -c 1048576 /dev/urandom >"$T/www/big"
head -c 1048576 /dev/urandom >"$T/upload.bin"
echo ok >"$T/www/small"
BIG_SHA=$(sha256sum <"$T/www/big" | cut -d' ' -f1)

write_config "$T/orders.yaml" orders "$PKI/shop-orders" <<EOF
workers: 1
admin: {listen: 127.0.0.1:$ORDERS_ADMIN}
listeners:
$(inbound_listener in "$IN_PORT" "$APP_PORT" http)
$(inbound_listener tcp-in "$TCP_IN_PORT" "$ECHO_PORT")
EOF
write_config "$T/frontend.yaml" frontend "$PKI/web-frontend" <<EOF
workers: 1
admin: {listen: 127.0.0.1:$FRONTEND_ADMIN}
listeners:
$(outbound_listener out-chacha "$OUT_CHACHA_PORT" "$NGX_CHACHA_PORT" "$ORDERS_ID" http)
$(outbound_listener out-gcm "$OUT_GCM_PORT" "$NGX_GCM_PORT" "$ORDERS_ID" http)
EOF

# app_locations NAME: / serves $T/www; PUT /upload/N stores $T/NAME.up/upload/N.
app_locations() {
    mkdir -p "$T/$1.up/upload"
    cat <<NGINX
        location / { root $T/www; }
        location /upload/ { root $T/$1.up; dav_methods PUT; client_max_body_size 16m; }
NGINX
}
start_nginx app "$APP_PORT" < <(app_locations app)

# nginx as an OpenSSL mTLS server: the orders SVID, client certificates
# required and verified against the mesh bundle, TLS 1.2 with one cipher.
start_tls_nginx() { # start_tls_nginx NAME PORT CIPHER
    start_nginx "$1" <<NGINX
        listen 127.0.0.1:$2 ssl;
        ssl_certificate $PKI/shop-orders/cert.pem;
        ssl_certificate_key $PKI/shop-orders/key.pem;
        ssl_client_certificate $PKI/bundle.pem;
        ssl_verify_client on;
        ssl_protocols TLSv1.2;
        ssl_ciphers $3;
$(app_locations "$1")
NGINX
    wait_port "$2" || die "nginx $1 does not listen on $2"
}
start_tls_nginx ngx-chacha "$NGX_CHACHA_PORT" ECDHE-ECDSA-CHACHA20-POLY1305
start_tls_nginx ngx-gcm "$NGX_GCM_PORT" ECDHE-ECDSA-AES128-GCM-SHA256
start_echo_app echo "$ECHO_PORT"
start_proxy orders "$T/orders.yaml" "$IN_PORT" "$TCP_IN_PORT" "$ORDERS_ADMIN"
start_proxy frontend "$T/frontend.yaml" "$OUT_CHACHA_PORT" "$OUT_GCM_PORT" "$FRONTEND_ADMIN"

# idle_counter ADMIN_PORT NAME: outrider_tls_idle_NAME_total from /stats.
idle_counter() {
    curl -s --max-time 5 "http://127.0.0.1:$1/stats" |
        sed -n "s/^outrider_tls_idle_$2_total \([0-9]*\)$/\1/p"
}

server_pin="sha256//$(openssl pkey -in "$PKI/shop-orders/key.pem" -pubout -outform DER |
    openssl dgst -sha256 -binary | base64)"
MTLS_OPTS=(-sS --max-time $((120 * SLOW)) --cacert "$PKI/bundle.pem" -k
    --pinnedpubkey "$server_pin" --cert "$PKI/web-frontend/cert.pem"
    --key "$PKI/web-frontend/key.pem" --tlsv1.2 --tls-max 1.2)

# summarize FILE: "COUNT x STATUS, ..., CONNECTS connects" (statuses in
# order) from lines of curl -w '%{http_code} %{num_connects}'.
summarize() {
    local codes
    codes=$(awk '{ print $1 }' "$1" | sort | uniq -c | awk '{ printf "%s x %s, ", $1, $2 }')
    echo "${codes}$(awk '{ c += $2 } END { print c + 0 }' "$1") connects"
}

# assert_woke ADMIN_PORT WAKES_BEFORE WHAT: the wake counter grew by at
# least $N, one wake per request.
assert_woke() {
    local wakes=$(($(idle_counter "$1" wakes) - $2))
    if [ "$wakes" -ge "$N" ]; then
        pass "$3 woke for each request ($wakes wakes)"
    else
        fail "$3 woke for each request" "$wakes wakes for $N requests"
    fi
}

# ---- OpenSSL client, many requests on one connection, both ciphers
N=2000
[ "${SLOW:-1}" -gt 1 ] && N=1000
for cipher in ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-GCM-SHA256; do
    wakes0=$(idle_counter "$ORDERS_ADMIN" wakes)
    curl "${MTLS_OPTS[@]}" --ciphers "$cipher" -o /dev/null -w '%{http_code} %{num_connects}\n' \
        "https://127.0.0.1:$IN_PORT/small?[1-$N]" >"$T/inbound-$cipher.codes" 2>"$T/curl.err" || true
    assert_eq "$N x 200, 1 connects" "$(summarize "$T/inbound-$cipher.codes")" \
        "inbound, $cipher: $N requests on one connection from curl all answered 200"
    assert_woke "$ORDERS_ADMIN" "$wakes0" "inbound, $cipher: the connection"
done

# ---- OpenSSL servers behind the outbound sidecar: one pooled connection each
for leg in chacha gcm; do
    port_var=OUT_${leg^^}_PORT
    wakes0=$(idle_counter "$FRONTEND_ADMIN" wakes)
    curl -sS --max-time $((120 * SLOW)) -o /dev/null -w '%{http_code} %{num_connects}\n' \
        "http://127.0.0.1:${!port_var}/small?[1-$N]" >"$T/outbound-$leg.codes" 2>"$T/curl.err" || true
    assert_eq "$N x 200, 1 connects" "$(summarize "$T/outbound-$leg.codes")" \
        "outbound to OpenSSL ($leg): $N requests all answered 200"
    conns=$(awk '{ print $1 }' "$T/ngx-$leg.access" | sort -u | wc -l)
    assert_eq "1 $N" "$conns $(wc -l <"$T/ngx-$leg.access")" \
        "outbound to OpenSSL ($leg): nginx saw all $N requests on one mTLS connection"
    assert_woke "$FRONTEND_ADMIN" "$wakes0" "outbound to OpenSSL ($leg): the pooled connection"
done

# ---- 1 MiB bodies both ways on re-used connections
# big_run NAME SERVER BASE_URL CURL_OPTION...: 12 downloads of /big, then 12 PUTs of
# 1 MiB to SERVER (an nginx app) on the same connection (curl --next keeps
# it); every file must arrive intact at either end.
big_run() {
    local name=$1 server=$2 base=$3 rc=0 bad=0 f
    shift 3
    curl "$@" -o "$T/$name-#1.big" -w '%{http_code} %{num_connects}\n' "$base/big?[1-12]" \
        --next "$@" -o "$T/$name-#1.put" -w '%{http_code} %{num_connects}\n' -X PUT \
        --data-binary "@$T/upload.bin" "$base/upload/$name-[1-12]" >"$T/$name.codes" 2>"$T/$name.err" || rc=$?
    assert_eq "0 12 x 200, 12 x 201, 1 connects" "$rc $(summarize "$T/$name.codes")" \
        "$name: 12 downloads and 12 uploads of 1 MiB on one connection"
    for f in "$T/$name"-*.big; do
        [ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$BIG_SHA" ] || bad=$((bad + 1))
    done
    assert_eq 0 "$bad" "$name: every download arrived intact"
    bad=0
    for f in $(seq 12); do
        cmp -s "$T/upload.bin" "$T/$server.up/upload/$name-$f" || bad=$((bad + 1))
    done
    assert_eq 0 "$bad" "$name: every upload arrived intact at $server"
}
big_run inbound-big app "https://127.0.0.1:$IN_PORT" "${MTLS_OPTS[@]}"
big_run outbound-big ngx-chacha "http://127.0.0.1:$OUT_CHACHA_PORT" -sS --max-time $((120 * SLOW))
big_run outbound-big-gcm ngx-gcm "http://127.0.0.1:$OUT_GCM_PORT" -sS --max-time $((120 * SLOW))

# ---- pauses: s_client sends a request every 50 ms on one connection
s_client() { # s_client PORT: OpenSSL s_client with the frontend SVID, stdin to the server
    timeout $((60 * SLOW)) openssl s_client -connect "127.0.0.1:$1" -CAfile "$PKI/bundle.pem" \
        -cert "$PKI/web-frontend/cert.pem" -key "$PKI/web-frontend/key.pem" \
        -quiet -no_ign_eof 2>>"$T/s_client.err"
}
{
    for i in $(seq 20); do
        printf 'GET /small?%d HTTP/1.1\r\nHost: orders\r\n\r\n' "$i"
        sleep 0.05
    done
    sleep $((2 * SLOW))
} | s_client "$IN_PORT" >"$T/paused.out" || true
assert_eq 20 "$(grep -c '^HTTP/1.1 200' "$T/paused.out")" \
    "s_client: 20 requests with pauses between them all answered on one connection"

{
    for i in $(seq 20); do
        echo "line $i"
        sleep 0.05
    done
    sleep $((2 * SLOW))
} | s_client "$TCP_IN_PORT" >"$T/echo.out" || true
assert_eq "$(seq 20 | sed 's/^/line /')" "$(cat "$T/echo.out")" \
    "tcp listener: 20 lines with pauses echoed back in order"

# ---- connections held idle after the handshake hold no record buffers
held=40
released0=$(($(idle_counter "$ORDERS_ADMIN" releases) - $(idle_counter "$ORDERS_ADMIN" wakes)))
for i in $(seq $held); do
    start_bg "held-$i" bash -c "sleep $((30 * SLOW)) | openssl s_client -connect 127.0.0.1:$IN_PORT \
        -CAfile $PKI/bundle.pem -cert $PKI/web-frontend/cert.pem -key $PKI/web-frontend/key.pem \
        -quiet -no_ign_eof"
done
deadline=$((SECONDS + 20 * SLOW))
while :; do
    idle_now=$(($(idle_counter "$ORDERS_ADMIN" releases) - $(idle_counter "$ORDERS_ADMIN" wakes) - released0))
    [ "$idle_now" -ge "$held" ] || [ "$SECONDS" -ge "$deadline" ] && break
    sleep 0.2
done
if [ "$idle_now" -ge "$held" ]; then
    pass "$held connections idle after their handshake hold no record buffers"
else
    fail "$held connections idle after their handshake hold no record buffers" \
        "only $idle_now released"
fi
for i in $(seq $held); do
    stop_bg "held-$i"
done

stop_proxy frontend
stop_proxy orders
