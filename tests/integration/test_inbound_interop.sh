#!/usr/bin/env bash
# An inbound tcp listener (identity orders) in front of a tiny HTTP app,
# driven by OpenSSL clients: `openssl s_client` and curl.
#
# Accepted: a client with a valid SVID (leaf signed by the root, and leaf
# signed by an intermediate that the client sends along) gets the app's
# answer. Refused: no client certificate, a certificate from another CA, an
# expired one, a not-yet-valid one, and one from the same CA in another
# trust domain. Each refusal is checked from both ends: the client gets no
# app data (and the app sees no request), and the proxy logs
#   handshake failed listener=in peer=127.0.0.1:<port> reason="<reason>"
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PKI=$T/pki
make_pki "$PKI" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
make_pki "$PKI" other.domain foreign=ns/web/sa/frontend
STARTDATE=20200101000000Z ENDDATE=20200102000000Z \
    make_pki "$PKI" "$TRUST_DOMAIN" expired=ns/web/sa/frontend
STARTDATE=20990101000000Z ENDDATE=20990102000000Z \
    make_pki "$PKI" "$TRUST_DOMAIN" future=ns/web/sa/frontend
INTERMEDIATE=1 make_pki "$PKI" "$TRUST_DOMAIN" chained=ns/web/sa/frontend
make_pki "$T/other-pki" "$TRUST_DOMAIN" ns/web/sa/frontend

alloc_ports APP_PORT IN_PORT
write_config "$T/orders.yaml" orders "$PKI/shop-orders" <<EOF
listeners:
$(inbound_listener in "$IN_PORT" "$APP_PORT")
EOF

start_http_app app "$APP_PORT" "hello from orders"
start_proxy orders "$T/orders.yaml" "$IN_PORT"
LOG=$(proxy_log orders)

# The server's public key, pinned by curl in place of host name checks
# (an SVID carries no DNS name).
server_pin="sha256//$(openssl pkey -in "$PKI/shop-orders/key.pem" -pubout -outform DER |
    openssl dgst -sha256 -binary | base64)"

app_requests() { wc -l <"$T/app.requests"; }

# s_client_get OUT [ID_DIR]: one HTTP request with s_client, presenting the
# SVID in ID_DIR (leaf first, then any intermediates), or no certificate.
s_client_get() {
    local out=$1 id_dir=${2:-}
    local args=(-connect "127.0.0.1:$IN_PORT" -CAfile "$PKI/bundle.pem" -verify_return_error -quiet)
    if [ -n "$id_dir" ]; then
        args+=(-cert "$id_dir/cert.pem" -key "$id_dir/key.pem")
        if [ "$(grep -c 'BEGIN CERTIFICATE' "$id_dir/cert.pem")" -gt 1 ]; then
            args+=(-cert_chain "$id_dir/cert.pem")
        fi
    fi
    printf 'GET /s_client HTTP/1.0\r\n\r\n' |
        timeout $((20 * SLOW)) openssl s_client "${args[@]}" >"$out" 2>"$out.err"
}

# curl_get OUT [ID_DIR]: the same with curl (which sends the whole cert.pem chain).
curl_get() {
    local out=$1 id_dir=${2:-}
    local args=(-sS --max-time $((20 * SLOW)) --cacert "$PKI/bundle.pem" -k --pinnedpubkey "$server_pin")
    [ -z "$id_dir" ] || args+=(--cert "$id_dir/cert.pem" --key "$id_dir/key.pem")
    curl "${args[@]}" "https://127.0.0.1:$IN_PORT/curl" >"$out" 2>"$out.err"
}

expect_accepted() {
    local label=$1 id_dir=$2 before rc f=$T/${1// /-}
    before=$(app_requests)
    rc=0
    s_client_get "$f.s_client" "$id_dir" || rc=$?
    assert_contains "$f.s_client" "^hello from orders$" "$label: s_client gets the app's answer"
    rc=0
    curl_get "$f.curl" "$id_dir" || rc=$?
    assert_exit 0 "$rc" "$label: curl"
    assert_eq "hello from orders" "$(cat "$f.curl")" "$label: curl gets the app's answer"
    assert_eq $((before + 2)) "$(app_requests)" "$label: the app saw both requests"
}

# expect_refused LABEL REASON [ID_DIR]
expect_refused() {
    local label=$1 reason=$2 id_dir=${3:-} before rc f=$T/${1// /-}
    local line="handshake failed listener=in peer=127\.0\.0\.1:[0-9]+ reason=\"$reason\""
    before=$(app_requests)

    mark_log "$LOG"
    rc=0
    s_client_get "$f.s_client" "$id_dir" || rc=$?
    if [ "$rc" = 124 ]; then
        fail "$label: s_client is cut off, not left hanging" "s_client still waiting after $((20 * SLOW))s"
    fi
    assert_not_contains "$f.s_client" "hello" "$label: s_client gets no app data"
    assert_logged "$LOG" "$line" "$label: s_client refusal logged with reason \"$reason\""

    mark_log "$LOG"
    rc=0
    curl_get "$f.curl" "$id_dir" || rc=$?
    if [ "$rc" = 0 ]; then
        fail "$label: curl fails" "curl exited 0"
    else
        pass "$label: curl fails (status $rc)"
    fi
    assert_empty "$f.curl" "$label: curl gets no app data"
    assert_logged "$LOG" "$line" "$label: curl refusal logged with reason \"$reason\""

    assert_eq "$before" "$(app_requests)" "$label: the app saw no request"
}

expect_accepted "valid SVID" "$PKI/web-frontend"
expect_accepted "SVID via intermediate" "$PKI/chained"

expect_refused "no client cert" "no client certificate"
expect_refused "other CA" "unknown CA" "$T/other-pki/web-frontend"
expect_refused "expired" "certificate expired" "$PKI/expired"
expect_refused "not yet valid" "certificate not yet valid" "$PKI/future"
expect_refused "other trust domain" "wrong trust domain" "$PKI/foreign"

# Refusals leave the listener serving.
expect_accepted "valid SVID again" "$PKI/web-frontend"

stop_proxy orders
