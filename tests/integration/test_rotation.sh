#!/usr/bin/env bash
# Certificates rotate under load without a failed request.
#
#   load (curl loop) -> out (frontend) =mTLS=> in (orders) -> nginx
#
# While a client keeps sending requests through an HTTP sidecar pair, the
# identity files are replaced the way an agent does it (new file, rename):
#   - the orders leaf is re-issued three times: each time a fresh handshake
#     with the inbound listener shows the new serial;
#   - a corrupted certificate is written by hand: the proxy refuses it, says
#     why, and keeps serving the previous certificate;
#   - a root rollover: both bundles get the old and the new root, then both
#     leaves are re-issued under the new root, then the old root is removed;
#     a client certificate from the old root is refused at the end. When the
#     frontend's leaf changes, the pooled mTLS connections that carry the
#     load (the hop) are retired: within 5 s none of them is left and new
#     ones carry the requests.
# The load loop must see only 200s. Both proxies exit 0 on SIGTERM.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
make_pki "$T/pki2" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
mkdir -p "$T/id-orders" "$T/id-frontend"
cp -p "$T/pki/shop-orders/"*.pem "$T/id-orders/"
cp -p "$T/pki/web-frontend/"*.pem "$T/id-frontend/"

alloc_ports APP_PORT IN_PORT OUT_PORT
orders_id=$(spiffe_id ns/shop/sa/orders)
start_http_pair "$T/id-orders" "$T/id-frontend" "$orders_id"

# install_file SRC DIR NAME: replaces DIR/NAME the way an atomic writer does.
install_file() {
    cp -p "$1" "$2/.$3.new"
    mv -f "$2/.$3.new" "$2/$3"
}

# A fresh handshake with the inbound listener: the serial it presents.
serial_now() { served_serial "$IN_PORT" "$T/id-frontend/cert.pem" "$T/id-frontend/key.pem"; }

# wait_serial_change OLD: waits until a fresh handshake shows another serial.
wait_serial_change() {
    local old=$1 now _
    for _ in $(seq 1 $((50 * SLOW))); do
        now=$(serial_now)
        if [ -n "$now" ] && [ "$now" != "$old" ]; then
            echo "$now"
            return 0
        fi
        sleep 0.1
    done
    echo "$old"
}

# The frontend's established mTLS connections to the inbound, by local
# address (the pooled connections of the hop between the sidecars).
hop_conns() {
    ss -Htnp state established "( dport = :$IN_PORT )" 2>/dev/null |
        awk -v pid="pid=${PROC_PID[frontend]}," 'index($0, pid) { print $3 }' | sort
}

start_load "$OUT_PORT"
sleep 0.5

# --- three re-issues of the orders leaf
serial=$(serial_now)
assert_eq "yes" "$([ -n "$serial" ] && echo yes || echo no)" "a fresh handshake shows a serial"
for round in 1 2 3; do
    make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders
    install_file "$T/pki/shop-orders/key.pem" "$T/id-orders" key.pem
    install_file "$T/pki/shop-orders/cert.pem" "$T/id-orders" cert.pem
    new=$(wait_serial_change "$serial")
    if [ "$new" != "$serial" ]; then
        pass "rotation $round: a fresh handshake shows the new serial"
    else
        fail "rotation $round: a fresh handshake shows the new serial" "still $serial"
    fi
    serial=$new
done
assert_contains "$(proxy_log orders)" "identity updated id=$orders_id serial=" "the proxy logs each update"

# --- a corrupted certificate is refused and the old one kept
printf -- '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n' >"$T/garbage.pem"
install_file "$T/garbage.pem" "$T/id-orders" cert.pem
wait_for_match "$(proxy_log orders)" "identity update refused" $((5 * SLOW)) ||
    fail "a corrupted certificate is refused" "no 'identity update refused' line"
assert_contains "$(proxy_log orders)" "identity update refused, keeping the current certificate: cannot load certificate" \
    "the refusal says what is wrong"
assert_eq "$serial" "$(serial_now)" "the previous certificate is still served"
install_file "$T/pki/shop-orders/cert.pem" "$T/id-orders" cert.pem

# --- root rollover: old+new roots, leaves under the new root, old root out
cat "$T/pki/bundle.pem" "$T/pki2/bundle.pem" >"$T/both.pem"
install_file "$T/both.pem" "$T/id-orders" bundle.pem
install_file "$T/both.pem" "$T/id-frontend" bundle.pem
sleep 1
install_file "$T/pki2/shop-orders/key.pem" "$T/id-orders" key.pem
install_file "$T/pki2/shop-orders/cert.pem" "$T/id-orders" cert.pem
serial=$(wait_serial_change "$serial")
hop_before=$(hop_conns)
assert_eq yes "$([ -n "$hop_before" ] && echo yes || echo no)" \
    "the load rides the frontend's pooled mTLS connections (the hop): $(echo $hop_before)"
install_file "$T/pki2/web-frontend/key.pem" "$T/id-frontend" key.pem
install_file "$T/pki2/web-frontend/cert.pem" "$T/id-frontend" cert.pem
retired=no hop_now=""
for _ in $(seq 1 $((50 * SLOW))); do
    hop_now=$(hop_conns)
    if [ -n "$hop_now" ] && [ -z "$(comm -12 <(echo "$hop_before") <(echo "$hop_now"))" ]; then
        retired=yes
        break
    fi
    sleep 0.1
done
assert_eq yes "$retired" \
    "the frontend's new identity retires those connections; requests go on new ones: $(echo $hop_now)"
sleep 1
install_file "$T/pki2/bundle.pem" "$T/id-orders" bundle.pem
install_file "$T/pki2/bundle.pem" "$T/id-frontend" bundle.pem
sleep 1.5
openssl s_client -connect "127.0.0.1:$IN_PORT" -cert "$T/id-frontend/cert.pem" \
    -key "$T/id-frontend/key.pem" </dev/null 2>/dev/null | openssl x509 >"$T/served.pem" 2>/dev/null || true
verdict=$(openssl verify -CAfile "$T/pki2/bundle.pem" "$T/served.pem" 2>&1 | tail -n1 || true)
assert_eq "$T/served.pem: OK" "$verdict" "after the rollover the inbound serves a leaf of the new root"
mark_log "$(proxy_log orders)"
openssl s_client -connect "127.0.0.1:$IN_PORT" -cert "$T/pki/web-frontend/cert.pem" \
    -key "$T/pki/web-frontend/key.pem" </dev/null >/dev/null 2>&1 || true
assert_logged "$(proxy_log orders)" 'handshake failed listener=in peer=[^ ]* reason="unknown CA"' \
    "a client certificate of the removed root is refused"

stop_load "during the rotations"

stop_proxy frontend
stop_proxy orders
