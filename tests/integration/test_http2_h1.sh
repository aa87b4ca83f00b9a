#!/usr/bin/env bash
# HTTP/2 requests sent on to HTTP/1.1 upstreams (upstream_protocol,
# docs/http2.md).
#
#   curl/nghttp --(h2c)--> outbound "out" (http2, auto)
#       =(h2 over mTLS, ALPN h2)=> inbound "in" (http2, upstream_protocol http1)
#       --(HTTP/1.1)--> nginx (HTTP/1.1 only)
#   curl --(h2c)--> outbound "out-alpn" (http2, auto)
#       =(mTLS; the peer selects no ALPN: HTTP/1.1)=> inbound "in-h1" (no http2,
#       multiplex: false, so it speaks no HTTP/2 at all) --> nginx
#   curl --(h2c)--> outbound "out-force" (upstream_protocol http1) =(HTTP/1.1)=> "in"
#   curl --(h2c)--> outbound "out-h2only" (upstream_protocol http2) => "in-h1": refused
#   raw frames / nghttp --(h2c)--> inbound "in-plain" (mtls: disable, http2,
#       upstream_protocol http1) --> nginx
#   nghttp --(h2c)--> inbound "in-py" (mtls: disable, http2, http1) --> a
#       python app that answers chunked with a trailer, until close, or badly
#
# Checks: GET of 2 MiB by digest, POST of 2 MiB with content-length and
# without one (chunked to the app), both stored by the app and compared by
# digest, HEAD, 204, 304 and a 404 body; the client always speaks HTTP/2;
# nginx logs HTTP/1.1 and the exact framing of every request; the ALPN
# fallback to a peer without http2; header bytes HTTP/1.1 cannot carry never
# reach the app; a chunked trailer arrives as an HTTP/2 trailer and a
# request trailer leaves as a chunked one; a body framed by the close, an
# invalid response (502 UPE), a closed app (503 UF, and gRPC UNAVAILABLE),
# an app too slow for timeouts.idle (504); upstream_protocol http2 refuses
# a peer without h2; the sidecars' access logs say HTTP/2; the proxies exit
# clean.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "$0")/lib.sh"

command -v nghttp >/dev/null || die "nghttp not found (nghttp2-client; scripts/install-deps.sh)"
command -v jq >/dev/null || die "jq not found (scripts/install-deps.sh installs it)"

make_pki "$T/pki" "$TRUST_DOMAIN" ns/shop/sa/orders ns/web/sa/frontend
ORDERS_ID=$(spiffe_id ns/shop/sa/orders)
alloc_ports APP PY_APP DOWN_APP IN IN_H1 IN_PLAIN IN_PY IN_DOWN OUT OUT_FALLBACK OUT_FORCE OUT_H2ONLY

# The app: nginx, HTTP/1.1 only. /up/ stores PUT bodies; /post/ passes a
# POST on to /up/ as a PUT, so an upload is kept and compared by digest.
mkdir -p "$T/htdocs" "$T/htdocs/up"
head -c $((2 * 1024 * 1024)) /dev/urandom >"$T/htdocs/big.bin"
head -c $((2 * 1024 * 1024 + 17)) /dev/urandom >"$T/upload.bin"
give_to_sandbox "$T/htdocs" "$T/htdocs/up" 2>/dev/null || true
chmod 0777 "$T/htdocs/up"
# shellcheck disable=SC2016
NGINX_LOG_EXTRA=' proto="$server_protocol" cl="$http_content_length" x="$http_x_test" m="$request_method"'
start_nginx app "$APP" <<EOF
        root $T/htdocs;
        client_max_body_size 16m;
        client_body_buffer_size 4m;
        location /up/ { dav_methods PUT; create_full_put_path on; }
        location /post/ {
            proxy_http_version 1.1;
            proxy_method PUT;
            proxy_pass http://127.0.0.1:$APP/up/;
        }
        location = /nocontent { return 204; }
        location = /notmodified { return 304; }
EOF

# The python app: HTTP/1.1 answers nginx does not make.
cat >"$T/pyapp.py" <<'EOF'
import http.server, socketserver, sys, time

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        sys.stderr.write("%s %s\n" % (self.command, self.path))

    def do_GET(self):
        if self.path == "/trailers":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Transfer-Encoding: chunked\r\nTrailer: x-checksum\r\n\r\n"
                             b"6\r\nhello \r\n5\r\nworld\r\n0\r\nX-Checksum: abc123\r\n\r\n")
        elif self.path == "/close":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
            self.close_connection = True
        elif self.path == "/slow":
            time.sleep(4)
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nlate")
        elif self.path == "/bad":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nBad Name: 1\r\nContent-Length: 0\r\n\r\n")
            self.close_connection = True
        else:
            self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    def do_POST(self):
        # reads a chunked body by hand; answers with what it found
        body, trailers = b"", []
        te = self.headers.get("Transfer-Encoding", "")
        while te == "chunked":
            size = int(self.rfile.readline().split(b";")[0], 16)
            if size == 0:
                while True:
                    line = self.rfile.readline()
                    if line in (b"\r\n", b""):
                        break
                    trailers.append(line.strip().decode())
                break
            body += self.rfile.read(size)
            self.rfile.readline()
        out = ("te=%s body=%s trailers=%s" % (te, body.decode(), ",".join(trailers))).encode()
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(out) + out)

class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
EOF
start_bg pyapp /usr/bin/python3 "$T/pyapp.py" "$PY_APP"
wait_port "$PY_APP" || die "the python app does not listen on $PY_APP"

IN_ALOG=$T/orders-access.log
OUT_ALOG=$T/frontend-access.log
write_config "$T/orders.yaml" orders "$T/pki/shop-orders" <<EOF
timeouts: {connect: 2s, handshake: 10s, idle: 2s, drain: 5s}
access_log: {path: $IN_ALOG, format: json}
listeners:
$(inbound_listener in "$IN" "$APP" http)
    http2: true
    upstream_protocol: http1
$(inbound_listener in-h1 "$IN_H1" "$APP" http)
    multiplex: false
$(inbound_listener in-plain "$IN_PLAIN" "$APP" http)
    mtls: disable
    http2: true
    upstream_protocol: http1
$(inbound_listener in-py "$IN_PY" "$PY_APP" http)
    mtls: disable
    http2: true
    upstream_protocol: http1
$(inbound_listener in-down "$IN_DOWN" "$DOWN_APP" http)
    mtls: disable
    http2: true
    upstream_protocol: http1
EOF
write_config "$T/frontend.yaml" frontend "$T/pki/web-frontend" <<EOF
access_log: {path: $OUT_ALOG, format: json}
listeners:
$(outbound_listener out "$OUT" "$IN" "$ORDERS_ID" http)
    http2: true
$(outbound_listener out-alpn "$OUT_FALLBACK" "$IN_H1" "$ORDERS_ID" http)
    http2: true
    upstream_protocol: auto
$(outbound_listener out-force "$OUT_FORCE" "$IN" "$ORDERS_ID" http)
    http2: true
    upstream_protocol: http1
$(outbound_listener out-h2only "$OUT_H2ONLY" "$IN_H1" "$ORDERS_ID" http)
    http2: true
    upstream_protocol: http2
EOF
start_proxy orders "$T/orders.yaml" "$IN" "$IN_H1" "$IN_PLAIN" "$IN_PY" "$IN_DOWN"
start_proxy frontend "$T/frontend.yaml" "$OUT" "$OUT_FALLBACK" "$OUT_FORCE" "$OUT_H2ONLY"

# h2 PORT PATH TAG [ARGS...]: an HTTP/2 request (h2c, prior knowledge)
# tagged with x-test: TAG; prints "STATUS VERSION"; the body is in $T/body,
# the response head in $T/head.
h2() {
    local port=$1 path=$2 tag=$3
    shift 3
    curl -sS --http2-prior-knowledge -m $((20 * SLOW)) -o "$T/body" -D "$T/head" \
        -H "x-test: $tag" -w '%{http_code} %{http_version}' "$@" \
        "http://127.0.0.1:$port$path" 2>>"$T/clients.err" || true
}

# assert_app TAG ERE WHAT: nginx's access-log line of the request tagged
# TAG matches ERE.
assert_app() {
    local tag=$1 pattern=$2 what=$3
    wait_for_match "$T/app.access" "x=\"$tag\"" $((5 * SLOW)) || true
    { grep -F "x=\"$tag\"" "$T/app.access" || true; } | head -1 >"$T/app-line"
    assert_contains "$T/app-line" "$pattern" "$what"
}

sha() { sha256sum <"$1" | cut -d' ' -f1; }

for via in OUT OUT_FALLBACK OUT_FORCE; do
    port=${!via}
    note "through $via"
    assert_eq "200 2" "$(h2 "$port" /big.bin "get-$via")" "$via: GET of 2 MiB answers 200 over HTTP/2"
    assert_eq "$(sha "$T/htdocs/big.bin")" "$(sha "$T/body")" "$via: the 2 MiB download arrives whole"
    assert_eq "201 2" "$(h2 "$port" "/post/cl-$via.bin" "post-cl-$via" --data-binary @"$T/upload.bin")" \
        "$via: POST of 2 MiB with content-length answers 201"
    assert_eq "$(sha "$T/upload.bin")" "$(sha "$T/htdocs/up/cl-$via.bin")" \
        "$via: the app stored the upload whole"
    # a pipe, so that curl cannot know the length
    # shellcheck disable=SC2002
    assert_eq "201 2" "$(cat "$T/upload.bin" | h2 "$port" "/post/te-$via.bin" "post-te-$via" -X POST -T -)" \
        "$via: POST of 2 MiB without content-length answers 201"
    assert_eq "$(sha "$T/upload.bin")" "$(sha "$T/htdocs/up/te-$via.bin")" \
        "$via: the app stored the streamed upload whole"
done

note "a slow client (the response is read from nginx only as it is taken)"
assert_eq "200 2" "$(h2 "$OUT" /big.bin slow --limit-rate 2M)" "a rate-limited GET of 2 MiB answers 200"
assert_eq "$(sha "$T/htdocs/big.bin")" "$(sha "$T/body")" "... and arrives whole"

note "upstream_protocol http2 to a peer without http2"
assert_eq "503 2" "$(h2 "$OUT_H2ONLY" /big.bin h2only)" "the peer does not pick h2: 503"
assert_contains "$T/frontend.log" 'listener=out-h2only .*did not agree to HTTP/2 \(ALPN none\)' \
    "... and the outbound says why"

note "bodiless answers and errors (through OUT)"
assert_eq "200 2" "$(h2 "$OUT" /big.bin head -I)" "HEAD answers 200"
assert_contains "$T/head" '^content-length: 2097152' "HEAD keeps the content-length"
assert_eq 0 "$(curl -sS --http2-prior-knowledge -m $((20 * SLOW)) -I -o /dev/null \
    -w '%{size_download}' "http://127.0.0.1:$OUT/big.bin" 2>>"$T/clients.err" || true)" "HEAD has no body"
assert_eq "204 2" "$(h2 "$OUT" /nocontent nocontent)" "204 passes"
assert_eq "304 2" "$(h2 "$OUT" /notmodified notmodified)" "304 passes"
assert_eq "404 2" "$(h2 "$OUT" /missing missing)" "404 passes"
assert_contains "$T/body" '404 Not Found' "the 404 body arrives"
assert_not_contains "$T/head" '^(connection|keep-alive|transfer-encoding):' \
    "no connection-specific field reaches the HTTP/2 client"

note "what nginx saw"
wait_for_match "$T/app.access" 'x="missing"' $((5 * SLOW)) || true
assert_not_contains "$T/app.access" 'HTTP/2' "nginx never saw HTTP/2"
for tag in get-OUT get-OUT_FALLBACK get-OUT_FORCE head nocontent notmodified missing; do
    assert_app "$tag" 'proto="HTTP/1.1"' "$tag: nginx logs HTTP/1.1"
done
assert_app get-OUT ' 200 [0-9]+ 2097152 "GET /big.bin HTTP/1.1"' \
    "nginx sent the 2 MiB body"
for via in OUT OUT_FALLBACK OUT_FORCE; do
    assert_app "post-cl-$via" "\"POST /post/cl-$via.bin HTTP/1.1\" te=\"-\".* cl=\"2097169\"" \
        "post-cl-$via: nginx got a POST of HTTP/1.1 with content-length 2097169"
    assert_app "post-te-$via" "\"POST /post/te-$via.bin HTTP/1.1\" te=\"chunked\".* cl=\"-\"" \
        "post-te-$via: nginx got a chunked POST of HTTP/1.1"
done
assert_app head '"HEAD /big.bin HTTP/1.1"' "nginx got the HEAD"

note "header bytes HTTP/1.1 cannot carry (raw frames to in-plain)"
cat >"$T/hostile.py" <<EOF
import socket, struct, sys, time
sys.path.insert(0, "$OUTRIDER_SRC/tests/integration")
from h2_abuse import PREFACE, HEADERS, SETTINGS, RST_STREAM, GOAWAY, END_STREAM, END_HEADERS, CODES, frame, hpack_str, literal

def request(path, name, value):
    block = b"\\x82\\x86\\x04" + hpack_str(path) + b"\\x01" + hpack_str(b"127.0.0.1")
    block += literal(b"x-test", path[1:]) + literal(name, value)
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    buf, deadline = b"", time.time() + 5
    while time.time() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        if not data:
            return "EOF"
        buf += data
        while len(buf) >= 9:
            n = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + n:
                break
            ftype, sid, payload = buf[3], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF, buf[9:9 + n]
            buf = buf[9 + n:]
            if ftype == HEADERS and sid == 1:
                return "HEADERS"
            if ftype == RST_STREAM and sid == 1:
                return "RST " + CODES.get(struct.unpack(">I", payload)[0], "?")
            if ftype == GOAWAY:
                return "GOAWAY " + CODES.get(struct.unpack(">I", payload[4:8])[0], "?")
    return "TIMEOUT"

cases = [(b"/hostile-ok", b"x-fine", b"a value"),
         (b"/hostile-crlf", b"x-evil", b"a\\r\\nx-injected: 1"),
         (b"/hostile-lf", b"x-evil", b"a\\nx-injected: 1"),
         (b"/hostile-nul", b"x-evil", b"a\\x00b"),
         (b"/hostile-colon", b"x-evil:x", b"1"),
         (b"/hostile-space", b"x evil", b"1"),
         (b"/hostile-upper", b"X-Evil", b"1")]
for path, name, value in cases:
    print(path.decode(), request(path, name, value))
EOF
/usr/bin/python3 "$T/hostile.py" "$IN_PLAIN" >"$T/hostile.out" 2>&1 || true
assert_contains "$T/hostile.out" '^/hostile-ok HEADERS$' "a benign request over raw frames is answered"
for c in crlf lf nul colon space upper; do
    assert_contains "$T/hostile.out" "^/hostile-$c (RST PROTOCOL_ERROR|GOAWAY PROTOCOL_ERROR)$" \
        "a field with a $c that HTTP/1.1 cannot carry is refused"
done
wait_for_match "$T/app.access" 'x="hostile-ok"' $((5 * SLOW)) || true
assert_contains "$T/app.access" 'GET /hostile-ok HTTP/1.1' "the benign request reached nginx as HTTP/1.1"
assert_not_contains "$T/app.access" 'hostile-(crlf|lf|nul|colon|space|upper)' \
    "no refused request reached nginx"
assert_not_contains "$T/app.access" 'x-injected' "nothing was injected"

note "a chunked response with a trailer (python app behind in-py)"
nghttp -v "http://127.0.0.1:$IN_PY/trailers" >"$T/trailers.out" 2>&1 || true
assert_contains "$T/trailers.out" 'hello world' "the chunked body arrives"
assert_contains "$T/trailers.out" 'x-checksum: abc123' "the trailer arrives"
data_at=$(grep -n 'recv DATA frame' "$T/trailers.out" | head -1 | cut -d: -f1)
trailer_at=$(grep -n 'x-checksum: abc123' "$T/trailers.out" | tail -1 | cut -d: -f1)
if [ -n "$data_at" ] && [ -n "$trailer_at" ] && [ "$trailer_at" -gt "$data_at" ]; then
    pass "the trailer comes as HTTP/2 trailers, after the DATA"
else
    fail "the trailer comes as HTTP/2 trailers, after the DATA" "DATA at ${data_at:-none}, trailer at ${trailer_at:-none}"
fi
assert_not_contains "$T/trailers.out" 'transfer-encoding' "no transfer-encoding reaches the HTTP/2 client"
assert_eq "200 2" "$(h2 "$IN_PY" /close close)" "a body framed by the close answers 200"
assert_eq "until the end" "$(cat "$T/body")" "... whole"
assert_eq "502 2" "$(h2 "$IN_PY" /bad bad)" "an invalid response head answers 502"
assert_eq "503 2" "$(h2 "$IN_DOWN" /x down)" "an app that is down answers 503"
assert_eq "200 2" "$(h2 "$IN_DOWN" /demo.Svc/Call grpc-down -H 'content-type: application/grpc' \
    -H 'te: trailers' --data-binary '')" "a gRPC request to an app that is down answers trailers-only"
assert_contains "$T/head" '^grpc-status: 14' "... with grpc-status 14 (UNAVAILABLE)"
start=$(date +%s%N)
assert_eq "504 2" "$(h2 "$IN_PY" /slow slow-app)" "an app that does not answer within timeouts.idle: 504"
ms=$(elapsed_ms "$start")
if [ "$ms" -lt $((3900 * SLOW)) ]; then
    pass "... before the app answers (${ms} ms)"
else
    fail "... before the app answers" "took ${ms} ms"
fi

note "request trailers go as chunked trailers (raw frames to in-py)"
cat >"$T/trailers.py" <<EOF2
import socket, sys
sys.path.insert(0, "$OUTRIDER_SRC/tests/integration")
from h2_abuse import PREFACE, DATA, HEADERS, SETTINGS, END_STREAM, END_HEADERS, frame, hpack_str, literal

block = b"\\x83\\x86\\x04" + hpack_str(b"/chunked") + b"\\x01" + hpack_str(b"127.0.0.1")
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(HEADERS, END_HEADERS, 1, block)
          + frame(DATA, 0, 1, b"hello ") + frame(DATA, 0, 1, b"trailers")
          + frame(HEADERS, END_STREAM | END_HEADERS, 1, literal(b"x-sum", b"abc")))
buf, body = b"", b""
while True:
    try:
        data = s.recv(65536)
    except socket.timeout:
        break
    if not data:
        break
    buf += data
    while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
        n = int.from_bytes(buf[:3], "big")
        ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        if ftype == DATA and sid == 1:
            body += buf[9:9 + n]
        buf = buf[9 + n:]
        if sid == 1 and flags & END_STREAM:
            print(body.decode())
            sys.exit(0)
print("no end: " + body.decode())
EOF2
/usr/bin/python3 "$T/trailers.py" "$IN_PY" >"$T/req-trailers.out" 2>&1 || true
assert_contains "$T/req-trailers.out" '^te=chunked body=hello trailers trailers=x-sum: abc$' \
    "the app got the body chunked and the trailer as a chunked trailer"

note "access logs"
wait_for_match "$IN_ALOG" '"path":"/chunked"' $((5 * SLOW)) || true
q='select(.listener=="out" and .path=="/big.bin" and .method=="GET") | "\(.protocol) \(.status)"'
assert_eq "HTTP/2 200" "$(jq -r "$q" "$OUT_ALOG" | head -1)" "the outbound logs the GET as HTTP/2 200"
q='select(.listener=="in" and .path=="/big.bin" and .method=="GET" and .protocol=="HTTP/2")'
q="$q"' | "\(.protocol) \(.status) \(.bytes_out)"'
assert_eq "HTTP/2 200 2097152" "$(jq -r "$q" "$IN_ALOG" | head -1)" \
    "the inbound logs the translated GET as HTTP/2 200 with its bytes"
q='select(.listener=="out-alpn" and .path=="/big.bin") | "\(.protocol) \(.status) \(.peer_id)"'
assert_eq "HTTP/2 200 $ORDERS_ID" "$(jq -r "$q" "$OUT_ALOG" | head -1)" \
    "the ALPN fallback is logged HTTP/2 with the peer's SPIFFE ID"
q='select(.listener=="in-py" and .path=="/bad") | "\(.status) \(.response_flags)"'
assert_eq "502 UPE" "$(jq -r "$q" "$IN_ALOG" | head -1)" "the invalid response is logged UPE"
q='select(.listener=="in-down" and .path=="/x") | "\(.status) \(.response_flags)"'
assert_eq "503 UF" "$(jq -r "$q" "$IN_ALOG" | head -1)" "the app that is down is logged UF"
assert_eq 1 "$(jq -r 'select(.listener=="in" and .path=="/nocontent") | .status' "$IN_ALOG" | wc -l)" \
    "a stream is logged once"

stop_proxy frontend
stop_proxy orders
