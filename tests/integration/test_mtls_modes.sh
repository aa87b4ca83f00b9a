#!/usr/bin/env bash
# mTLS modes of inbound listeners: strict, permissive and disable, driven by
# plaintext curl and by curl / openssl s_client presenting the frontend SVID.
#
#   curl (plaintext or mTLS) -> inbound "orders" listeners -> nginx (one port each)
#   bash /dev/tcp (sends nothing) or s_client -> in-tcp (permissive) -> banner app
#
# One proxy (rbac.default deny; each listener's own policy by `to: ports`,
# timeouts.detect 200ms, request_headers 2s, text access log) with
#   in-strict  http, no mtls key (strict, the default)
#   in-perm    http, permissive, every request allowed
#   in-pdeny   http, permissive, allowed only with a principal ("*")
#   in-dis     http, disable
#   in-tcp     tcp,  permissive, in front of an app that speaks first
#   in-tcpdeny tcp,  permissive, allowed only with a principal, echo app
# Checks: strict answers mTLS and refuses plaintext (the handshake fails, the
# app sees nothing); permissive answers both, the access log showing tls=none
# and no peer for plaintext, the cipher and the principal for mTLS; with a
# policy that needs a principal, mTLS gets 200 and plaintext 403, which the
# app never sees; disable answers plaintext and refuses a TLS ClientHello;
# a tcp client that sends nothing gets the app's banner once timeouts.detect
# has passed (plaintext, logged tls=none), and an mTLS client on the same
# port gets it too; on in-tcpdeny an mTLS client gets its echo and a
# plaintext one is closed with nothing ("rbac denied ... peer_id=-");
# `outrider check` warns for each permissive and disable
# listener and not for the strict one.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
PKI=$T/pki
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)
CLIENT=$PKI/web-frontend

alloc_ports APP_STRICT APP_PERM APP_PDENY APP_DIS BANNER_APP ECHO_APP \
    IN_STRICT IN_PERM IN_PDENY IN_DIS IN_TCP IN_TCPDENY
ALOG=$T/access.log

write_config "$T/orders.yaml" orders "$PKI/shop-orders" <<EOF
timeouts: {connect: 2s, handshake: 10s, idle: 60s, drain: 5s, request_headers: 2s, detect: 200ms}
access_log: {path: $ALOG, format: text}
rbac:
  default: deny
  policies:
    - name: allow-open-ports
      action: allow
      rules:
        - to: [{ports: [$APP_STRICT, $APP_PERM, $APP_DIS, $BANNER_APP]}]
    - name: allow-principals
      action: allow
      rules:
        - from: [{principals: ["*"]}]
          to: [{ports: [$APP_PDENY, $ECHO_APP]}]
listeners:
$(inbound_listener in-strict "$IN_STRICT" "$APP_STRICT" http)
$(inbound_listener in-perm "$IN_PERM" "$APP_PERM" http)
    mtls: permissive
$(inbound_listener in-pdeny "$IN_PDENY" "$APP_PDENY" http)
    mtls: permissive
$(inbound_listener in-dis "$IN_DIS" "$APP_DIS" http)
    mtls: disable
$(inbound_listener in-tcp "$IN_TCP" "$BANNER_APP" tcp)
    mtls: permissive
$(inbound_listener in-tcpdeny "$IN_TCPDENY" "$ECHO_APP" tcp)
    mtls: permissive
EOF

start_nginx app "$APP_STRICT" "$APP_PERM" "$APP_PDENY" "$APP_DIS" <<'NGINX'
        location / { return 200 "ok\n"; }
NGINX
# Speaks first: a banner on connect, then echoes what it gets.
cat >"$T/banner-app.sh" <<'EOF'
#!/usr/bin/env bash
printf '220 banner from the app\r\n'
exec cat
EOF
chmod +x "$T/banner-app.sh"
start_bg banner-app socat "TCP-LISTEN:$BANNER_APP,bind=127.0.0.1,fork,reuseaddr" "EXEC:$T/banner-app.sh"
wait_port "$BANNER_APP" || die "banner app does not listen"
start_echo_app echo "$ECHO_APP"
start_proxy orders "$T/orders.yaml" "$IN_STRICT" "$IN_PERM" "$IN_PDENY" "$IN_DIS" "$IN_TCP" "$IN_TCPDENY"
LOG=$(proxy_log orders)

# The server's public key, pinned by curl in place of host name checks
# (an SVID carries no DNS name).
server_pin="sha256//$(openssl pkey -in "$PKI/shop-orders/key.pem" -pubout -outform DER |
    openssl dgst -sha256 -binary | base64)"

# app_saw PATH: how many requests for PATH reached the app.
app_saw() { grep -c -F "\"GET $1 HTTP/1.1\"" "$T/app.access" || true; }

# plain_get PORT PATH OUT: status code of a plaintext request (000 when none).
plain_get() {
    curl -s -o "$3" -w '%{http_code}' --max-time $((10 * SLOW)) "http://127.0.0.1:$1$2" \
        2>"$3.err" || true
}

# mtls_get PORT PATH OUT: status code of a request with the frontend SVID.
mtls_get() {
    curl -s -o "$3" -w '%{http_code}' --max-time $((10 * SLOW)) --cacert "$PKI/bundle.pem" -k \
        --pinnedpubkey "$server_pin" --cert "$CLIENT/cert.pem" --key "$CLIENT/key.pem" \
        "https://127.0.0.1:$1$2" 2>"$3.err" || true
}

# s_client_hello PORT OUT: an mTLS handshake with s_client; its exit status.
s_client_hello() {
    timeout $((10 * SLOW)) openssl s_client -connect "127.0.0.1:$1" -CAfile "$PKI/bundle.pem" \
        -cert "$CLIENT/cert.pem" -key "$CLIENT/key.pem" </dev/null >"$2" 2>&1
}

# ---- strict (no mtls key): mTLS only
assert_eq 200 "$(mtls_get "$IN_STRICT" /strict-mtls "$T/strict-mtls")" "strict: mTLS request gets 200"
assert_eq "ok" "$(cat "$T/strict-mtls")" "strict: mTLS request gets the app's answer"
mark_log "$LOG"
code=$(plain_get "$IN_STRICT" /strict-plain "$T/strict-plain")
assert_eq 000 "$code" "strict: plaintext request gets no HTTP response"
assert_logged "$LOG" "handshake failed listener=in-strict peer=127\.0\.0\.1:[0-9]+ " \
    "strict: the plaintext attempt is a failed handshake"
assert_eq 1 "$(app_saw /strict-mtls)" "strict: the app saw the mTLS request"
assert_eq 0 "$(app_saw /strict-plain)" "strict: the app saw nothing of the plaintext attempt"

# ---- permissive: both, told apart in the access log
assert_eq 200 "$(plain_get "$IN_PERM" /perm-plain "$T/perm-plain")" "permissive: plaintext request gets 200"
assert_eq "ok" "$(cat "$T/perm-plain")" "permissive: plaintext request gets the app's answer"
assert_eq 200 "$(mtls_get "$IN_PERM" /perm-mtls "$T/perm-mtls")" "permissive: mTLS request gets 200"
assert_eq 1 "$(app_saw /perm-plain)" "permissive: the app saw the plaintext request"
assert_eq 1 "$(app_saw /perm-mtls)" "permissive: the app saw the mTLS request"
assert_contains "$T/app.access" "\"GET /perm-plain HTTP/1\.1\" .* xfcc=\"-\"" \
    "permissive: a plaintext request reaches the app without x-forwarded-client-cert"
assert_contains "$T/app.access" "\"GET /perm-mtls HTTP/1\.1\" .* xfcc=\"By=[^;]+;URI=$FRONTEND_ID\"" \
    "permissive: an mTLS request reaches the app with the caller in x-forwarded-client-cert"
assert_contains "$ALOG" \
    "\"GET /perm-plain HTTP/1\.1\" 200 - .* \"-\" inbound listener=in-perm upstream=127\.0\.0\.1:$APP_PERM rbac=allow:allow-open-ports/0 tls=none request_id=" \
    "permissive: the plaintext request is logged with no peer and tls=none"
assert_contains "$ALOG" \
    "\"GET /perm-mtls HTTP/1\.1\" 200 - .* \"$FRONTEND_ID\" inbound listener=in-perm upstream=127\.0\.0\.1:$APP_PERM rbac=allow:allow-open-ports/0 tls=TLS-ECDHE-ECDSA-WITH-[A-Z0-9-]+ request_id=" \
    "permissive: the mTLS request is logged with its principal and cipher"
assert_contains "$ALOG" \
    "\"GET /strict-mtls HTTP/1\.1\" 200 - .* \"$FRONTEND_ID\" inbound listener=in-strict .* tls=TLS-ECDHE-ECDSA-WITH-[A-Z0-9-]+ request_id=" \
    "strict: the mTLS request is logged as before"

# ---- permissive with a policy that needs a principal
assert_eq 200 "$(mtls_get "$IN_PDENY" /pdeny-mtls "$T/pdeny-mtls")" \
    "principal required: the mTLS request gets 200"
assert_eq 403 "$(plain_get "$IN_PDENY" /pdeny-plain "$T/pdeny-plain")" \
    "principal required: the plaintext request gets 403"
assert_eq 1 "$(app_saw /pdeny-mtls)" "principal required: the app saw the mTLS request"
assert_eq 0 "$(app_saw /pdeny-plain)" "principal required: the app never saw the denied request"
assert_contains "$ALOG" \
    "\"GET /pdeny-plain HTTP/1\.1\" 403 RBAC .* \"-\" inbound listener=in-pdeny .* rbac=deny:-/- tls=none " \
    "principal required: the 403 is logged, decided by rbac.default, tls=none"
assert_contains "$ALOG" \
    "\"GET /pdeny-mtls HTTP/1\.1\" 200 - .* \"$FRONTEND_ID\" inbound listener=in-pdeny .* rbac=allow:allow-principals/0 tls=TLS-" \
    "principal required: the mTLS request is allowed by the principals policy"

# ---- disable: plaintext only
assert_eq 200 "$(plain_get "$IN_DIS" /dis-plain "$T/dis-plain")" "disable: plaintext request gets 200"
assert_contains "$ALOG" "\"GET /dis-plain HTTP/1\.1\" 200 - .* \"-\" inbound listener=in-dis .* tls=none " \
    "disable: the plaintext request is logged with tls=none"
# The ClientHello cannot start an HTTP request line: it is refused with a
# 400 at once, well before timeouts.request_headers (2s).
rc=0
start_ns=$(date +%s%N)
s_client_hello "$IN_DIS" "$T/dis-s_client" || rc=$?
took=$(elapsed_ms "$start_ns")
if [ "$took" -lt $((1500 * SLOW)) ]; then
    pass "disable: a TLS ClientHello is refused at once (${took} ms)"
else
    fail "disable: a TLS ClientHello is refused at once" "took ${took} ms"
fi
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && ! grep -q "Cipher is ECDHE" "$T/dis-s_client"; then
    pass "disable: a TLS ClientHello gets no handshake (s_client status $rc)"
else
    fail "disable: a TLS ClientHello gets no handshake" "s_client status $rc:" \
        "$(head -c 300 "$T/dis-s_client")"
fi
assert_eq 000 "$(mtls_get "$IN_DIS" /dis-mtls "$T/dis-mtls")" "disable: an mTLS request gets no response"
assert_eq 0 "$(app_saw /dis-mtls)" "disable: the app saw nothing of the mTLS attempt"

# ---- tcp, permissive: a client that waits for the server to speak first
start_ns=$(date +%s%N)
banner=$(timeout $((10 * SLOW)) bash -c \
    "exec 3<>/dev/tcp/127.0.0.1/$IN_TCP; IFS= read -r -t $((8 * SLOW)) line <&3; printf '%s' \"\$line\"" \
    2>"$T/banner.err" || true)
took=$(elapsed_ms "$start_ns")
assert_eq $'220 banner from the app\r' "$banner" "tcp permissive: a silent client gets the app's banner"
if [ "$took" -ge 200 ] && [ "$took" -lt $((5000 * SLOW)) ]; then
    pass "tcp permissive: the banner comes once timeouts.detect (200ms) has passed (${took}ms)"
else
    fail "tcp permissive: the banner comes once timeouts.detect (200ms) has passed" "took ${took}ms"
fi
assert_contains "$ALOG" "\"- - tcp\" - - .* \"-\" inbound listener=in-tcp upstream=127\.0\.0\.1:$BANNER_APP rbac=allow:allow-open-ports/0 tls=none request_id=-" \
    "tcp permissive: the plaintext connection is logged with tls=none"
timeout $((10 * SLOW)) openssl s_client -quiet -connect "127.0.0.1:$IN_TCP" -CAfile "$PKI/bundle.pem" \
    -cert "$CLIENT/cert.pem" -key "$CLIENT/key.pem" < <(sleep $((2 * SLOW))) \
    >"$T/tcp-mtls.out" 2>"$T/tcp-mtls.err" || true
assert_contains "$T/tcp-mtls.out" "^220 banner from the app" "tcp permissive: an mTLS client gets the banner too"
assert_contains "$ALOG" "\"- - tcp\" - .* \"$FRONTEND_ID\" inbound listener=in-tcp .* tls=TLS-ECDHE-ECDSA-WITH-[A-Z0-9-]+ request_id=-" \
    "tcp permissive: the mTLS connection is logged with its principal and cipher"

# ---- tcp, permissive, a principal required (L4 RBAC)
printf 'echo me\n' >"$T/echo.in"
mark_log "$LOG"
rc=0
tcp_exchange "$IN_TCPDENY" "$T/echo.in" "$T/tcpdeny-plain.out" || rc=$?
assert_eq "" "$(cat "$T/tcpdeny-plain.out")" "tcp principal required: a plaintext client gets nothing"
assert_logged "$LOG" "rbac denied listener=in-tcpdeny peer=127\.0\.0\.1:[0-9]+ peer_id=- policy=\(default\)" \
    "tcp principal required: the plaintext connection is denied by rbac.default"
timeout $((10 * SLOW)) openssl s_client -quiet -connect "127.0.0.1:$IN_TCPDENY" -CAfile "$PKI/bundle.pem" \
    -cert "$CLIENT/cert.pem" -key "$CLIENT/key.pem" < <(cat "$T/echo.in"; sleep $((2 * SLOW))) \
    >"$T/tcpdeny-mtls.out" 2>"$T/tcpdeny-mtls.err" || true
assert_contains "$T/tcpdeny-mtls.out" "^echo me$" "tcp principal required: an mTLS client gets its echo"

assert_not_contains "$LOG" "handshake failed listener=in-(perm|pdeny|tcp|tcpdeny) " \
    "no failed handshake on the permissive listeners"

# ---- outrider check: a warning per permissive or disable listener
rc=0
timeout $((20 * SLOW)) "$OUTRIDER" check -c "$T/orders.yaml" >"$T/check.out" 2>"$T/check.err" || rc=$?
assert_exit 0 "$rc" "outrider check of the config"
for l in "in-perm\" has mtls permissive" "in-pdeny\" has mtls permissive" \
    "in-dis\" has mtls disable" "in-tcp\" has mtls permissive" "in-tcpdeny\" has mtls permissive"; do
    assert_contains "$T/check.err" "warning: listener \"$l: traffic on this port is not protected by mTLS" \
        "check warns: listener \"$l"
done
assert_not_contains "$T/check.err" "in-strict\" has mtls" "check does not warn for the strict listener"

stop_proxy orders
