#!/usr/bin/env bash
# The access log through a real sidecar pair: JSON on the inbound proxy
# ("orders"), text on the outbound one ("frontend").
#
#   curl / socat -> outbound (frontend, text log) =mTLS=> inbound (orders, JSON log) -> nginx / echo
#
# Checks, field by field on both sides:
# - a GET and a POST: status, method, path, protocol, response_flags "-",
#   listener, direction, source, peer_id (the other side's SPIFFE ID),
#   bytes_in (the request body), bytes_out (the response body, as curl
#   counted it), upstream, upstream time, rbac decision, the TLS cipher
#   (the inbound's downstream, the outbound's upstream), and the same
#   request_id on both lines, given by the client or made by the outbound;
# - a 403 from an inline deny policy: flag RBAC, the policy and rule;
# - a 503 (app down): flag UF;
# - a tcp connection: protocol tcp, no method/status, bytes both ways;
# - every JSON line parses (jq); a hostile request target (quotes,
#   backslash, %0a, a byte that is not UTF-8) and a hostile x-request-id
#   give one JSON line that parses back to the same strings, and one text
#   line whose fields stay in place;
# - SIGUSR1 after moving the log away: the next line goes to a new file at
#   the configured path, the moved file keeps its lines;
# - an access_log path in a missing directory makes start-up fail (exit 1)
#   with a message naming the path.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
FRONTEND_ID=$(spiffe_id ns/web/sa/frontend)

alloc_ports APP ECHO_APP DOWN_APP IN_APP IN_DOWN IN_TCP OUT_APP OUT_DOWN OUT_TCP

JLOG=$T/orders-access.log
TLOG=$T/frontend-access.log

# The deny policy is scoped by `ports` to nginx's port (the application
# port behind in-app): on the tcp listener its HTTP-only field would match
# (fail closed) and deny the connection.
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
rbac:
  default: allow
  policies:
    - name: deny-forbidden
      action: deny
      rules:
        - to: [{paths: ["/forbidden/*"], ports: [$APP]}]
access_log: {path: $JLOG, format: json}
listeners:
$(inbound_listener in-app "$IN_APP" "$APP" http)
$(inbound_listener in-down "$IN_DOWN" "$DOWN_APP" http)
$(inbound_listener in-tcp "$IN_TCP" "$ECHO_APP" tcp)
EOF

write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
access_log: {path: $TLOG, format: text}
listeners:
$(outbound_listener out-app "$OUT_APP" "$IN_APP" "$ORDERS_ID" http)
$(outbound_listener out-down "$OUT_DOWN" "$IN_DOWN" "$ORDERS_ID" http)
$(outbound_listener out-tcp "$OUT_TCP" "$IN_TCP" "$ORDERS_ID" tcp)
EOF

start_nginx app "$APP" <<EOF
        location = /hello { return 200 "hello from nginx\n"; }
        location = /post { return 200 "thanks\n"; }
        location / { return 200 "other\n"; }
EOF
start_echo_app echo "$ECHO_APP"
start_proxy orders "$T/orders.yaml" "$IN_APP" "$IN_DOWN" "$IN_TCP"
start_proxy frontend "$T/frontend.yaml" "$OUT_APP" "$OUT_DOWN" "$OUT_TCP"

# An ERE matching the text literally.
TRACE_RE="[0-9a-f]{32}" # the trace ID of a generated traceparent
re_escape() { sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"; }
ORDERS_RE=$(re_escape "$ORDERS_ID")
TIME_RE='[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
MS_RE='[0-9]+(\.[0-9]+)?'
# jq regexes: [.] instead of an escaped dot.
TIME_JQ='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[.][0-9]{3}Z$'
# Text-log ERE for one escaped value: no space or quote, except escaped.
ESC_RE='([^ "\\]|\\.)'

CURL=(curl -sS --http1.1 --max-time $((20 * SLOW)))

# request URL [CURL ARGS...]: one request; sets CODE and SIZE (body bytes
# curl received).
request() {
    local url=$1 out
    shift
    out=$("${CURL[@]}" -o /dev/null -w '%{http_code} %{size_download}' "$@" "$url" 2>>"$T/clients.err") || true
    CODE=${out% *}
    SIZE=${out#* }
}

# jline FILTER: the last JSON line of the inbound log that satisfies the jq
# filter, waiting for the writer thread (compact, one line).
jline() {
    local deadline=$((SECONDS + 5 * SLOW)) line
    while :; do
        line=$(jq -c "select($1)" "$JLOG" 2>/dev/null | tail -n1 || true)
        [ -n "$line" ] && break
        [ "$SECONDS" -lt "$deadline" ] || break
        sleep 0.1
    done
    echo "$line"
}

# expect_json WHAT LINE FILTER: LINE satisfies the jq filter.
expect_json() {
    if [ -n "$2" ] && jq -e "$3" >/dev/null 2>&1 <<<"$2"; then
        pass "$1"
    else
        fail "$1" "expected: $3" "     got: ${2:-(no line)}"
    fi
}

# tline ERE: the text log's line matching ERE, waiting for it.
tline() {
    wait_for_match "$TLOG" "$1" $((5 * SLOW)) || true
    grep -E -- "$1" "$TLOG" | tail -n1 || true
}

# expect_text WHAT LINE ERE: the whole text line matches ERE.
expect_text() {
    if [ -n "$2" ] && grep -E -q -- "^$3\$" <<<"$2"; then
        pass "$1"
    else
        fail "$1" "expected a line matching: ^$3\$" "     got: ${2:-(no line)}"
    fi
}

# --- a GET with a client's request id
request "http://127.0.0.1:$OUT_APP/hello" -H 'x-request-id: al-get'
assert_eq "200 17" "$CODE $SIZE" "GET /hello: 200 and 17 body bytes"
j=$(jline '.request_id == "al-get"')
expect_json "inbound JSON line of the GET, field by field" "$j" "
    (.start_time | test(\"$TIME_JQ\")) and (.duration_ms | type == \"number\") and
    .listener == \"in-app\" and .direction == \"inbound\" and (.source | test(\"^127[.]0[.]0[.]1:[0-9]+\$\")) and
    .peer_id == \"$FRONTEND_ID\" and .method == \"GET\" and .path == \"/hello\" and .protocol == \"HTTP/1.1\" and
    .status == 200 and .response_flags == \"-\" and .bytes_in == 0 and .bytes_out == $SIZE and
    .upstream == \"127.0.0.1:$APP\" and (.upstream_time_ms | type == \"number\") and
    .rbac_decision == \"allow\" and .rbac_policy == null and .rbac_rule == null and
    (.tls_cipher | type == \"string\" and length > 0) and .request_id == \"al-get\""
t=$(tline 'request_id=al-get trace_id=[0-9a-f]{32}$')
expect_text "outbound text line of the GET, field by field" "$t" \
    "\[$TIME_RE\] \"GET /hello HTTP/1\.1\" 200 - 0 $SIZE $MS_RE $MS_RE \"127\.0\.0\.1:[0-9]+\" \"$ORDERS_RE\" outbound listener=out-app upstream=127\.0\.0\.1:$IN_APP rbac=- tls=TLS-[A-Z0-9-]+ request_id=al-get trace_id=$TRACE_RE"

# --- a POST with a body, and a request id made by the outbound proxy
printf 'eleven byte' >"$T/post.body"
request "http://127.0.0.1:$OUT_APP/post" --data-binary @"$T/post.body"
assert_eq "200 7" "$CODE $SIZE" "POST /post: 200 and 7 body bytes"
j=$(jline '.path == "/post"')
expect_json "inbound JSON line of the POST: method, bytes_in, bytes_out" "$j" \
    '.method == "POST" and .bytes_in == 11 and .bytes_out == 7 and .status == 200'
rid=$(jq -r .request_id <<<"$j" 2>/dev/null || true)
if grep -Eq '^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' <<<"$rid"; then
    pass "the POST got a generated request id ($rid)"
else
    fail "the POST got a generated request id" "got: $rid"
fi
t=$(tline '"POST /post HTTP/1\.1"')
expect_text "outbound text line of the POST has the same request id" "$t" \
    "\[$TIME_RE\] \"POST /post HTTP/1\.1\" 200 - 11 7 .* request_id=$rid trace_id=$TRACE_RE"

# --- a 403 from the inline deny policy
request "http://127.0.0.1:$OUT_APP/forbidden/thing" -H 'x-request-id: al-403'
assert_eq 403 "$CODE" "GET /forbidden/thing: 403"
j=$(jline '.request_id == "al-403"')
expect_json "inbound JSON line of the 403" "$j" \
    ".status == 403 and .response_flags == \"RBAC\" and .rbac_decision == \"deny\" and
     .rbac_policy == \"deny-forbidden\" and .rbac_rule == 0 and .bytes_out == $SIZE and
     .upstream_time_ms == null and .path == \"/forbidden/thing\" and .listener == \"in-app\""
t=$(tline 'request_id=al-403 trace_id=[0-9a-f]{32}$')
expect_text "outbound text line of the 403" "$t" \
    "\[$TIME_RE\] \"GET /forbidden/thing HTTP/1\.1\" 403 - 0 $SIZE $MS_RE $MS_RE \"127\.0\.0\.1:[0-9]+\" \"$ORDERS_RE\" outbound listener=out-app upstream=127\.0\.0\.1:$IN_APP rbac=- tls=TLS-[A-Z0-9-]+ request_id=al-403 trace_id=$TRACE_RE"

# --- a 503: the app is down
request "http://127.0.0.1:$OUT_DOWN/down" -H 'x-request-id: al-503'
assert_eq 503 "$CODE" "GET /down with the app down: 503"
j=$(jline '.request_id == "al-503"')
expect_json "inbound JSON line of the 503" "$j" \
    ".status == 503 and .response_flags == \"UF\" and .listener == \"in-down\" and
     .upstream == \"127.0.0.1:$DOWN_APP\" and .bytes_out == $SIZE and .rbac_decision == \"allow\""
t=$(tline 'request_id=al-503 trace_id=[0-9a-f]{32}$')
expect_text "outbound text line of the 503" "$t" \
    "\[$TIME_RE\] \"GET /down HTTP/1\.1\" 503 - 0 $SIZE $MS_RE $MS_RE \"127\.0\.0\.1:[0-9]+\" \"$ORDERS_RE\" outbound listener=out-down upstream=127\.0\.0\.1:$IN_DOWN rbac=- tls=TLS-[A-Z0-9-]+ request_id=al-503 trace_id=$TRACE_RE"

# --- a tcp connection
printf 'ping\n' >"$T/ping"
rc=0
tcp_exchange "$OUT_TCP" "$T/ping" "$T/ping.back" || rc=$?
assert_eq "ping" "$(cat "$T/ping.back")" "tcp echo through the pair"
j=$(jline '.listener == "in-tcp"')
expect_json "inbound JSON line of the tcp connection" "$j" \
    ".protocol == \"tcp\" and .method == null and .path == null and .status == null and
     .response_flags == \"-\" and .bytes_in == 5 and .bytes_out == 5 and .direction == \"inbound\" and
     .peer_id == \"$FRONTEND_ID\" and .upstream == \"127.0.0.1:$ECHO_APP\" and .rbac_decision == \"allow\" and
     (.tls_cipher | type == \"string\" and length > 0) and .request_id == null"
t=$(tline 'listener=out-tcp ')
expect_text "outbound text line of the tcp connection" "$t" \
    "\[$TIME_RE\] \"- - tcp\" - - 5 5 $MS_RE ($MS_RE|-) \"127\.0\.0\.1:[0-9]+\" \"$ORDERS_RE\" outbound listener=out-tcp upstream=127\.0\.0\.1:$IN_TCP rbac=- tls=TLS-[A-Z0-9-]+ request_id=- trace_id=-"

# --- hostile strings
printf 'GET /weird?"quoted"\\back%%0aslash\xff HTTP/1.1\r\nHost: orders\r\nx-request-id: id-"with"\\quote\r\nConnection: close\r\n\r\n' \
    >"$T/hostile.in"
rc=0
raw_http "$OUT_APP" "$T/hostile.in" "$T/hostile.out" || rc=$?
note "the hostile request was answered $(http_status "$T/hostile.out")"
wait_for_match "$JLOG" 'weird' $((5 * SLOW)) || true
assert_eq 1 "$(grep -c 'weird' "$JLOG" || true)" "the hostile request is one JSON line"
j=$(grep 'weird' "$JLOG" | tail -n1 || true)
expect_json "the hostile JSON line parses" "$j" '.path | type == "string"'
assert_eq "$(printf '/weird?"quoted"\\back%%0aslash\xef\xbf\xbd')" "$(jq -r .path <<<"$j" 2>/dev/null || true)" \
    "the hostile query parses back intact (the non-UTF-8 byte as U+FFFD)"
assert_eq 'id-"with"\quote' "$(jq -r .request_id <<<"$j" 2>/dev/null || true)" "the hostile request id parses back intact"
wait_for_match "$TLOG" 'weird' $((5 * SLOW)) || true
assert_eq 1 "$(grep -c 'weird' "$TLOG" || true)" "the hostile request is one text line"
t=$(grep 'weird' "$TLOG" | tail -n1 || true)
expect_text "the hostile text line keeps its fields in place" "$t" \
    "\[$TIME_RE\] \"GET $ESC_RE*weird$ESC_RE* HTTP/1\.1\" [0-9]{3} - 0 [0-9]+ $MS_RE $MS_RE \"127\.0\.0\.1:[0-9]+\" \"$ORDERS_RE\" outbound listener=out-app upstream=127\.0\.0\.1:$IN_APP rbac=- tls=TLS-[A-Z0-9-]+ request_id=$ESC_RE+ trace_id=$TRACE_RE"

# --- a failed handshake on an http listener still gets a line
openssl s_client -connect "127.0.0.1:$IN_APP" </dev/null >/dev/null 2>&1 || true
j=$(jline '.response_flags == "DTLS"')
expect_json "a peer without a certificate is logged with flag DTLS" "$j" \
    '.listener == "in-app" and .peer_id == null and .status == null and .tls_cipher == null'

# --- every JSON line parses
nlines=$(wc -l <"$JLOG")
parsed=$(jq -c . "$JLOG" 2>"$T/jq.err" | wc -l || true)
assert_eq "$nlines" "$parsed" "every line of the JSON access log parses ($nlines lines)"
assert_empty "$T/jq.err" "jq reports no parse error"

# --- SIGUSR1 reopens the log
mv "$JLOG" "$JLOG.1"
old_lines=$(wc -l <"$JLOG.1")
kill -USR1 "${PROC_PID[orders]}"
deadline=$((SECONDS + 5 * SLOW))
until [ -e "$JLOG" ] || [ "$SECONDS" -ge "$deadline" ]; do sleep 0.05; done
request "http://127.0.0.1:$OUT_APP/hello" -H 'x-request-id: after-reopen'
assert_eq 200 "$CODE" "a request after SIGUSR1"
assert_contains "$JLOG" '"request_id":"after-reopen"' "after SIGUSR1 the new file at the log path gets the new line"
assert_eq "$old_lines" "$(wc -l <"$JLOG.1")" "the moved file keeps its lines and gets no new one"
assert_contains "$JLOG.1" '"request_id":"al-get"' "the moved file still has the earlier lines"
if is_running orders; then
    pass "the inbound proxy runs on after SIGUSR1"
else
    fail "the inbound proxy runs on after SIGUSR1"
fi

# --- an access log in a missing directory
missing=$T/no-such-dir/access.log
alloc_ports BAD_PORT
write_config "$T/bad.yaml" orders "$T/pki/shop-orders" <<EOF
access_log: {path: $missing, format: json}
listeners:
$(inbound_listener in-bad "$BAD_PORT" "$APP" http)
EOF
rc=0
timeout $((10 * SLOW)) "$OUTRIDER" -c "$T/bad.yaml" >"$T/bad.out" 2>"$T/bad.err" </dev/null || rc=$?
assert_exit 1 "$rc" "start-up with an access log in a missing directory fails"
assert_contains "$T/bad.err" "$(re_escape "$missing")" "the start-up error names the access log path"
check_sanitizers "$T/bad.err" "bad config"

stop_proxy frontend
stop_proxy orders
