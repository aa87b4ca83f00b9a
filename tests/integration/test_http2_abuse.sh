#!/usr/bin/env bash
# HTTP/2 abuse against a plaintext http listener (docs/http2.md, "Limits").
#
# A raw-frame client (h2_abuse.py) plays each attack on a proxy with one
# worker: rapid reset (CVE-2023-44487), a CONTINUATION flood, floods of
# SETTINGS, PING, empty DATA and WINDOW_UPDATE frames, an HPACK bomb, and a
# header block left open. Each connection must end with GOAWAY and
# ENHANCE_YOUR_CALM, be counted under its kind in /stats, and right after it
# a well-behaved client (curl) on the same worker gets 200. A header block
# over limits.max_request_headers gets an answer (431), not a GOAWAY.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
command -v nghttpd >/dev/null || die "nghttpd not found (nghttp2-server; scripts/install-deps.sh)"
ABUSE=$(dirname "$0")/h2_abuse.py

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders
alloc_ports APP IN ADMIN
mkdir -p "$T/htdocs"
printf 'fine\n' >"$T/htdocs/index.html"
start_bg app nghttpd --no-tls -a 127.0.0.1 -d "$T/htdocs" "$APP"
wait_port "$APP" || die "nghttpd does not listen on $APP"

ALOG=$T/access.log
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
workers: 1
timeouts: {connect: 2s, handshake: 10s, idle: 60s, drain: 5s, request_headers: 2s}
admin: {listen: 127.0.0.1:$ADMIN}
access_log: {path: $ALOG, format: json}
listeners:
  - name: in-plain
    mode: inbound
    protocol: http
    mtls: disable
    http2: true
    listen: 127.0.0.1:$IN
    upstream: 127.0.0.1:$APP
EOF
start_proxy orders "$T/orders.yaml" "$IN"

well_behaved() {
    curl -sS --http2-prior-knowledge -m $((10 * SLOW)) -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:$IN/" 2>>"$T/clients.err" || true
}
abuse_count() {
    curl -s "http://127.0.0.1:$ADMIN/stats" | awk -v k="kind=\"$1\"" 'index($0, k) { print $2 }'
}

assert_eq 200 "$(well_behaved)" "a well-behaved client gets 200 before any abuse"

for kind in rapid_reset:rapid_reset continuation:continuation_flood settings:settings_flood \
    ping:ping_flood empty_data:empty_frames window_update:control_flood bomb:header_bomb \
    slow_headers:headers_timeout; do
    case_name=${kind%%:*} counter=${kind#*:}
    note "$case_name"
    assert_eq "GOAWAY ENHANCE_YOUR_CALM" \
        "$(timeout $((20 * SLOW)) "$PY" "$ABUSE" "$IN" "$case_name" 2>>"$T/clients.err" || true)" \
        "$case_name ends the connection with GOAWAY(ENHANCE_YOUR_CALM)"
    assert_eq 1 "$(abuse_count "$counter")" "... counted as $counter"
    assert_eq 200 "$(well_behaved)" "... and a well-behaved client gets 200 right after"
done

note "oversized header block"
assert_eq "HEADERS" "$(timeout $((20 * SLOW)) "$PY" "$ABUSE" "$IN" oversized 2>>"$T/clients.err" || true)" \
    "a header block over max_request_headers is answered, not the connection ended"
wait_for_match "$ALOG" '"status":431' $((5 * SLOW)) || true
assert_contains "$ALOG" '"protocol":"HTTP/2".*"status":431' "... with 431, logged"
assert_eq 200 "$(well_behaved)" "a well-behaved client gets 200 at the end"
assert_contains "$(proxy_log orders)" 'http2 connection ended .*reason=rapid_reset' \
    "the diagnostic log names the abuse"

stop_proxy orders
