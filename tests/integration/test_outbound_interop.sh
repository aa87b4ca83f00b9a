#!/usr/bin/env bash
# Outbound tcp listeners (identity frontend, peer_identity orders) against
# OpenSSL mTLS servers: `openssl s_server -www -Verify 1 -verify_return_error`,
# which demands a client certificate verified against the mesh root and
# answers an HTTP GET with a page that prints the client certificate it saw.
#
# Accepted: the server presents spiffe://cluster.local/ns/shop/sa/orders
# (signed by the root, or by an intermediate it sends along); the plaintext
# client gets the page, and the page shows the sidecar's SVID
# (URI:spiffe://cluster.local/ns/web/sa/frontend) as the client certificate.
# Refused: a server presenting another SPIFFE ID from the same CA, a server
# certificate from another CA, and an expired one. The client (socat, which
# half-closes after its request, and curl, which does not) then gets EOF and
# no data, and the proxy logs
#   handshake failed listener=<name> peer=127.0.0.1:<server port> reason="<reason>"
# Were the server's certificate not verified, every refusal case would get
# the page and fail.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PKI=$T/pki
make_pki "$PKI" "$TRUST_DOMAIN" ns/shop/sa/orders ns/shop/sa/payments ns/web/sa/frontend
STARTDATE=20200101000000Z ENDDATE=20200102000000Z \
    make_pki "$PKI" "$TRUST_DOMAIN" expired=ns/shop/sa/orders
INTERMEDIATE=1 make_pki "$PKI" "$TRUST_DOMAIN" chained=ns/shop/sa/orders
make_pki "$T/other-pki" "$TRUST_DOMAIN" ns/shop/sa/orders

ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)

# case name | server identity dir
cases=(
    "good|$PKI/shop-orders"
    "chained|$PKI/chained"
    "wrongid|$PKI/shop-payments"
    "otherca|$T/other-pki/shop-orders"
    "expired|$PKI/expired"
)

declare -A SERVER_PORT=() OUT_PORT=()
listeners=""
for entry in "${cases[@]}"; do
    name=${entry%%|*}
    alloc_ports "SERVER_PORT[$name]" "OUT_PORT[$name]"
    listeners+=$(outbound_listener "out-$name" "${OUT_PORT[$name]}" "${SERVER_PORT[$name]}" "$ORDERS_ID")
    listeners+=$'\n'
done
write_config "$T/frontend.yaml" frontend "$PKI/web-frontend" <<EOF
listeners:
$listeners
EOF

# start_server NAME ID_DIR: s_server with the leaf of ID_DIR and, when
# cert.pem holds more, the rest of it as the chain it sends.
start_server() {
    local name=$1 id_dir=$2 args=()
    args=(-accept "127.0.0.1:${SERVER_PORT[$name]}" -www -Verify 1 -verify_return_error
        -cert "$id_dir/cert.pem" -key "$id_dir/key.pem" -CAfile "$PKI/bundle.pem")
    if [ "$(grep -c 'BEGIN CERTIFICATE' "$id_dir/cert.pem")" -gt 1 ]; then
        awk '/BEGIN CERTIFICATE/ { n++ } n >= 2' "$id_dir/cert.pem" >"$T/$name.chain.pem"
        args+=(-cert_chain "$T/$name.chain.pem")
    fi
    start_bg "server-$name" openssl s_server "${args[@]}"
    wait_port "${SERVER_PORT[$name]}" || die "s_server $name does not listen"
}

for entry in "${cases[@]}"; do
    start_server "${entry%%|*}" "${entry#*|}"
done
start_proxy frontend "$T/frontend.yaml" "${OUT_PORT[@]}"
LOG=$(proxy_log frontend)

printf 'GET / HTTP/1.0\r\n\r\n' >"$T/request"

# get NAME: one request through listener out-NAME; the answer in $T/NAME.page.
get() {
    local rc=0
    tcp_exchange "${OUT_PORT[$1]}" "$T/request" "$T/$1.page" $((15 * SLOW)) || rc=$?
    return "$rc"
}

expect_accepted() {
    local name=$1 rc=0
    get "$name" || rc=$?
    assert_exit 0 "$rc" "$name: client"
    assert_contains "$T/$name.page" "^HTTP/1\.0 200 ok" "$name: the client gets the server's page"
    assert_contains "$T/$name.page" "^Client certificate" "$name: the server saw a client certificate"
    assert_contains "$T/$name.page" "URI:$FRONTEND_ID" "$name: the client certificate is the sidecar's SVID"
}

expect_refused() {
    local name=$1 reason=$2 rc=0
    local line="handshake failed listener=out-$name peer=127\.0\.0\.1:${SERVER_PORT[$name]} reason=\"$reason\""
    mark_log "$LOG"
    get "$name" || rc=$?
    assert_exit 0 "$rc" "$name: the client sees a clean EOF"
    assert_empty "$T/$name.page" "$name: the client gets no data"
    assert_logged "$LOG" "$line" "$name: refusal logged with reason \"$reason\""
    mark_log "$LOG"
    assert_curl_eof "${OUT_PORT[$name]}" "$name"
    assert_logged "$LOG" "$line" "$name: curl's refusal logged with reason \"$reason\""
}

expect_accepted good
expect_accepted chained
expect_refused wrongid "unexpected SPIFFE ID"
expect_refused otherca "unknown CA"
expect_refused expired "certificate expired"
# A second connection (which may resume a session) is accepted just the same.
expect_accepted good

stop_proxy frontend
