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
#
# The stream cap: 101 streams opened at once by a client that has not yet
# acknowledged the server's SETTINGS get 100 answers and REFUSED_STREAM for
# the 101st; once the client has acknowledged them, the 101st stream is a
# connection error (nghttp2: GOAWAY PROTOCOL_ERROR, counted protocol_error).
# A stream whose client keeps its window at 0 (SETTINGS_INITIAL_WINDOW_SIZE
# 0, no WINDOW_UPDATE) is reset with CANCEL after timeouts.idle (a second
# proxy with idle 2s), logged SI, while the worker serves other clients;
# PRIORITY frames sent for it every 0.5 s do not count as progress.
#
# Resets on the hop: 100 streams reset after their responses began plus 50
# reset as soon as they were opened, in one second, end a plaintext
# connection (150 RST_STREAM frames, rapid_reset) but not a connection that
# negotiated the sidecar hop (ALPN outrider.h2, mTLS), where only the 50
# premature ones count; a GET after them is answered there.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
command -v nghttpd >/dev/null || die "nghttpd not found (nghttp2-server; scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"
ABUSE=$(dirname "$0")/h2_abuse.py

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
alloc_ports APP IN ADMIN IN_IDLE IN_HOP
mkdir -p "$T/htdocs"
printf 'fine\n' >"$T/htdocs/index.html"
head -c $((1024 * 1024)) /dev/urandom >"$T/htdocs/big.bin"
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
  - name: in-hop
    mode: inbound
    protocol: http
    http2: true
    listen: 127.0.0.1:$IN_HOP
    upstream: 127.0.0.1:$APP
EOF
start_proxy orders "$T/orders.yaml" "$IN" "$IN_HOP"

IDLE_ALOG=$T/idle-access.log
write_config "$T/idle.yaml" idle "$T/pki/shop-orders" <<EOF
workers: 1
timeouts: {connect: 2s, handshake: 10s, idle: 2s, drain: 5s, request_headers: 2s}
access_log: {path: $IDLE_ALOG, format: json}
listeners:
  - name: in-idle
    mode: inbound
    protocol: http
    mtls: disable
    http2: true
    listen: 127.0.0.1:$IN_IDLE
    upstream: 127.0.0.1:$APP
EOF
start_proxy idle "$T/idle.yaml" "$IN_IDLE"

well_behaved() { # [PORT]
    curl -sS --http2-prior-knowledge -m $((10 * SLOW)) -o /dev/null -w '%{http_code}' \
        "http://127.0.0.1:${1:-$IN}/" 2>>"$T/clients.err" || true
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

note "stream cap: 101 streams at once"
assert_eq "refused=201:REFUSED_STREAM answered=100 other=none" \
    "$(timeout $((30 * SLOW)) "$PY" "$ABUSE" "$IN" stream_cap 2>>"$T/clients.err" || true)" \
    "before the client acknowledges SETTINGS, the 101st stream is refused and the first 100 are answered 200"
assert_eq 200 "$(well_behaved)" "... and a well-behaved client gets 200 right after"
assert_eq "refused=none answered=0 other=GOAWAY PROTOCOL_ERROR" \
    "$(timeout $((30 * SLOW)) "$PY" "$ABUSE" "$IN" stream_cap_acked 2>>"$T/clients.err" || true)" \
    "after the client acknowledged SETTINGS, a 101st stream ends the connection with GOAWAY(PROTOCOL_ERROR)"
assert_eq 1 "$(abuse_count protocol_error)" "... counted as protocol_error"
assert_eq 200 "$(well_behaved)" "... and a well-behaved client gets 200 right after"

# stalled NAME CASE WHAT MAX: a client of h2_abuse.py CASE keeps its stream
# window at 0 on a 1 MiB answer; the stream is reset with CANCEL after
# timeouts.idle (2s) and before MAX seconds, and the worker serves others.
stalled() {
    local name=$1 case=$2 what=$3 max=$4 head rst code data secs deadline
    start_bg "$name" "$PY" "$ABUSE" "$IN_IDLE" "$case" /big.bin
    sleep 0.5
    assert_eq 200 "$(well_behaved "$IN_IDLE")" "$what: while the stream is stalled, a well-behaved client on the worker gets 200"
    deadline=$((SECONDS + 30 * SLOW))
    while is_running "$name" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    read -r head rst code data secs <"$T/$name.out" || true
    assert_eq "HEADERS RST CANCEL data=0" "${head:-} ${rst:-} ${code:-} ${data:-}" \
        "$what: the stalled stream gets its response head, no DATA, then RST_STREAM(CANCEL)"
    if awk -v s="${secs:-0}" -v max="$max" -v slow="$SLOW" 'BEGIN { exit !(s >= 1.9 && s < max + 2 * slow) }'; then
        pass "... after timeouts.idle (2s), within ${max}s + 2s x SLOW: ${secs}s"
    else
        fail "... after timeouts.idle (2s), within ${max}s + 2s x SLOW" "reset after ${secs:-?}s"
    fi
    assert_eq 200 "$(well_behaved "$IN_IDLE")" "$what: a well-behaved client gets 200 after the reset"
}

note "zero window: a client that never opens its stream window"
stalled zero zero_window "zero window" 2
wait_for_match "$IDLE_ALOG" '"path":"/big.bin"' $((5 * SLOW)) || true
assert_eq "HTTP/2 200 SI" "$(jq -r 'select(.path=="/big.bin") | "\(.protocol) \(.status) \(.response_flags)"' \
    "$IDLE_ALOG" 2>/dev/null | head -1)" "... logged with its status and flag SI"

note "zero window kept up with PRIORITY frames: PRIORITY is not progress"
stalled zerop zero_window_priority "PRIORITY every 0.5s" 3

note "resets: a plaintext connection counts every RST_STREAM, the sidecar hop only premature ones"
assert_eq "GOAWAY ENHANCE_YOUR_CALM" "$("$PY" "$ABUSE" "$IN" mature_resets 2>&1)" \
    "plaintext: 100 resets of answered streams and 50 premature ones in a second end the connection"
resets=$(abuse_count rapid_reset)
FRONTEND_TLS=$T/pki/web-frontend/cert.pem:$T/pki/web-frontend/key.pem:$T/pki/bundle.pem
assert_eq ALIVE "$(H2_TLS=$FRONTEND_TLS H2_ALPN=outrider.h2 "$PY" "$ABUSE" "$IN_HOP" mature_resets 2>&1)" \
    "the hop (mTLS, ALPN outrider.h2): after the same resets a GET is answered"
assert_eq "$resets" "$(abuse_count rapid_reset)" "... and no rapid_reset is counted"

stop_proxy idle
stop_proxy orders
