#!/usr/bin/python3
"""The HTTP/1.1 app and raw HTTP/1.1 clients of test_http_hop.sh.

  hop_app.py serve PORT LOG BIG_FILE   the app on 127.0.0.1:PORT
  hop_app.py client PORT CASE          one raw client case (see CASES)

The app parses every request itself (no http.server), so it sees the
request exactly as the proxy sent it, and appends one JSON line per request
to LOG:

  {"n", "conn", "method", "target", "version", "tag" (x-test), "host",
   "xfcc", "orig_proto" (values of every outrider-orig-proto field),
   "expect", "connection", "upgrade", "te", "cl", "framing" ("cl",
   "chunked" or "none"), "chunks", "len", "sha256", "inflight" (requests
   in progress in the app when this one started, itself included)}

where host/xfcc/orig_proto/expect are lists (one entry per field line).

Answers, by path (the query is ignored; every answer has x-target: the
request target):
  POST any             200, content-length, body "framing=F len=N sha256=H"
  /big-cl              BIG_FILE with content-length (HEAD: the head only)
  /big-chunked         BIG_FILE chunked in 64 KiB chunks
  /big-close           BIG_FILE without content-length, then the app closes
  /nocontent           204
  /notmodified         304 with an ETag
  /slow?ms=N           200 "hello hop\\n" after N ms (default 1000)
  /slow-body?ms=N      200 with content-length 10: the head and 5 bytes, the
                       other 5 N ms later (default 3000)
  /ws + Upgrade        101, then every byte is echoed back until EOF
  anything else        200 "hello hop\\n" with content-length
The app closes the connection after a request with Connection: close, an
HTTP/1.0 request without keep-alive, and /big-close.
"""
import hashlib
import itertools
import json
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

HELLO = b"hello hop\n"


class State:
    lock = threading.Lock()
    seq = itertools.count(1)
    conns = itertools.count(1)
    inflight = 0
    log = None
    big = b""


def fields(headers, name):
    return [v for n, v in headers if n == name]


def first(headers, name):
    values = fields(headers, name)
    return values[0] if values else None


class Handler(socketserver.StreamRequestHandler):
    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle(self):
        conn = next(State.conns)
        while True:
            line = self.rfile.readline(65537)
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            try:
                method, target, version = line.rstrip(b"\r\n").decode("latin-1").split(" ", 2)
            except ValueError:
                self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            headers = []
            while True:
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers.append((name.strip().lower(), value.strip()))
            with State.lock:
                State.inflight += 1
                inflight = State.inflight
            try:
                keep = self.one(conn, method, target, version, headers, inflight)
            finally:
                with State.lock:
                    State.inflight -= 1
            if not keep:
                try:
                    self.connection.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return

    def read_body(self, headers):
        te, cl = first(headers, "transfer-encoding"), first(headers, "content-length")
        if te is not None:
            body, chunks = bytearray(), 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass
                    return "chunked", bytes(body), chunks
                body += self.rfile.read(size)
                chunks += 1
                self.rfile.readline(16)
        if cl is not None:
            return "cl", self.rfile.read(int(cl)), 0
        return "none", b"", 0

    def one(self, conn, method, target, version, headers, inflight):
        framing, body, chunks = self.read_body(headers)
        path, _, query = target.partition("?")
        connection = (first(headers, "connection") or "").lower()
        keep = "close" not in connection and (version == "HTTP/1.1" or "keep-alive" in connection)
        record = {
            "n": next(State.seq), "conn": conn, "method": method, "target": target,
            "version": version, "tag": first(headers, "x-test"),
            "host": fields(headers, "host"), "xfcc": fields(headers, "x-forwarded-client-cert"),
            "orig_proto": fields(headers, "outrider-orig-proto"), "expect": fields(headers, "expect"),
            "connection": first(headers, "connection"), "upgrade": first(headers, "upgrade"),
            "te": first(headers, "transfer-encoding"), "cl": first(headers, "content-length"),
            "framing": framing, "chunks": chunks, "len": len(body),
            "sha256": hashlib.sha256(body).hexdigest(), "inflight": inflight,
        }
        with State.lock:
            State.log.write(json.dumps(record) + "\n")
            State.log.flush()

        common = "x-target: %s\r\n" % target
        head_only = method == "HEAD"

        def send(status, extra, payload):
            extra = common + extra
            if not keep:
                extra += "Connection: close\r\n"
            head = ("HTTP/1.1 %s\r\n%s\r\n" % (status, extra)).encode("latin-1")
            self.wfile.write(head + payload if payload and not head_only else head)

        if method == "POST":
            out = ("framing=%s len=%d sha256=%s" % (framing, len(body), record["sha256"])).encode()
            send("200 OK", "Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(out), out)
        elif path == "/ws" and first(headers, "upgrade"):
            self.wfile.write(("HTTP/1.1 101 Switching Protocols\r\n%sUpgrade: %s\r\nConnection: Upgrade\r\n\r\n"
                              % (common, first(headers, "upgrade"))).encode("latin-1"))
            while True:
                data = self.rfile.read1(65536)
                if not data:
                    return False
                self.wfile.write(data)
        elif path == "/big-cl":
            send("200 OK", "Content-Type: application/octet-stream\r\nContent-Length: %d\r\n" % len(State.big),
                 State.big)
        elif path == "/big-chunked":
            send("200 OK", "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n", None)
            if not head_only:
                for i in range(0, len(State.big), 65536):
                    part = State.big[i:i + 65536]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                self.wfile.write(b"0\r\n\r\n")
        elif path == "/big-close":
            self.wfile.write(("HTTP/1.1 200 OK\r\n%sContent-Type: application/octet-stream\r\n"
                              "Connection: close\r\n\r\n" % common).encode("latin-1"))
            if not head_only:
                self.wfile.write(State.big)
            return False
        elif path == "/slow-body":
            ms = int(urllib.parse.parse_qs(query).get("ms", ["3000"])[0])
            send("200 OK", "Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(HELLO), HELLO[:5])
            time.sleep(ms / 1000.0)
            if not head_only:
                self.wfile.write(HELLO[5:])
        elif path == "/nocontent":
            send("204 No Content", "", None)
        elif path == "/notmodified":
            send("304 Not Modified", "ETag: \"hop-1\"\r\n", None)
        else:
            if path == "/slow":
                ms = int(urllib.parse.parse_qs(query).get("ms", ["1000"])[0])
                time.sleep(ms / 1000.0)
            send("200 OK", "Content-Type: text/plain\r\nContent-Length: %d\r\n" % len(HELLO), HELLO)
        return keep


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 512


def serve(port, log, big):
    with open(big, "rb") as f:
        State.big = f.read()
    State.log = open(log, "a")
    Server(("127.0.0.1", port), Handler).serve_forever()


# ---------------------------------------------------------------- clients

class Conn:
    def __init__(self, port, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def fill(self):
        if self.eof:
            return False
        data = self.s.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def line(self):
        while b"\r\n" not in self.buf:
            if not self.fill():
                raise EOFError("EOF in a line after %r" % self.buf[:200])
        out, self.buf = self.buf.split(b"\r\n", 1)
        return out.decode("latin-1")

    def take(self, n):
        while len(self.buf) < n:
            if not self.fill():
                raise EOFError("EOF with %d of %d body bytes" % (len(self.buf), n))
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def response(self, method="GET"):
        """(status line, {name: value}, body, framing); 1xx heads are skipped."""
        while True:
            status = self.line()
            headers = {}
            while True:
                h = self.line()
                if not h:
                    break
                name, _, value = h.partition(":")
                headers[name.strip().lower()] = value.strip()
            code = int(status.split(" ")[1])
            if code >= 200 or code == 101:
                break
        if method == "HEAD" or code in (101, 204, 304):
            return status, headers, b"", "none"
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.line().split(";")[0], 16)
                if size == 0:
                    while self.line():
                        pass
                    return status, headers, body, "chunked"
                body += self.take(size)
                self.take(2)
        if "content-length" in headers:
            return status, headers, self.take(int(headers["content-length"])), "cl"
        while self.fill():
            pass
        body, self.buf = self.buf, b""
        return status, headers, body, "close"

    def quiet(self, seconds):
        """What arrives within `seconds` beyond the responses read: "none", "EOF" or a count."""
        self.s.settimeout(seconds)
        try:
            more = self.fill()
        except socket.timeout:
            more = None
        if self.buf:
            return "%d bytes" % len(self.buf)
        return "none" if more is None else "EOF"


def req(method, target, extra=""):
    return ("%s %s HTTP/1.1\r\nHost: orders\r\n%s\r\n" % (method, target, extra)).encode("latin-1")


def case_bodiless(port):
    """HEAD, 204 and 304 on one connection, then a GET: no body bytes may
    appear after a bodiless answer, or the next answer would not parse."""
    c = Conn(port)
    out = []
    for method, target in (("HEAD", "/big-cl"), ("GET", "/nocontent"), ("GET", "/notmodified"),
                           ("HEAD", "/big-close"), ("GET", "/hello")):
        c.s.sendall(req(method, target, "x-test: bodiless\r\n"))
        status, headers, body, framing = c.response(method)
        out.append("%s %s %s cl=%s te=%s body=%d" % (method, target, status.split(" ")[1],
                                                   headers.get("content-length", "-"),
                                                   headers.get("transfer-encoding", "-"), len(body)))
        if target == "/big-close":  # the app closed after it; a new connection for the rest
            c = Conn(port)
    out.append("after=" + c.quiet(1))
    print("\n".join(out))


def case_close(port):
    """Connection: close: the answer says close and the connection ends."""
    c = Conn(port)
    c.s.sendall(req("GET", "/hello?close", "x-test: close\r\nConnection: close\r\n"))
    status, headers, body, _ = c.response()
    start = time.time()
    after = c.quiet(5)
    print("%s connection=%s body=%s after=%s in %.1fs" % (status, headers.get("connection", "-"),
                                                          body.decode().strip(), after, time.time() - start))


def case_pipeline(port):
    """Three pipelined requests, the first slow: the answers in order."""
    c = Conn(port)
    c.s.sendall(req("GET", "/slow?ms=500&p=1", "x-test: pipeline\r\n")
                + req("GET", "/hello?p=2", "x-test: pipeline\r\n")
                + req("POST", "/post?p=3", "x-test: pipeline\r\nContent-Length: 5\r\n") + b"abcde")
    order = []
    for _ in range(3):
        status, headers, body, _ = c.response()
        order.append("%s %s" % (status.split(" ")[1], headers.get("x-target", "-")))
    print(",".join(order))


def case_ows(port):
    """Field values with whitespace after them (which HTTP/1.1 allows and
    HTTP/2 does not): the request is answered as any other."""
    c = Conn(port)
    c.s.sendall(req("POST", "/upload?ows", "x-test: ows \t\r\nContent-Length: 5 \r\nX-Pad:  padded \r\n")
                + b"hello")
    status, headers, body, _ = c.response()
    print("%s body=%s" % (status.split(" ")[1], body.decode().strip()))


def case_expect_ows(port):
    """Expect: 100-continue with whitespace after the value: the 100 comes
    (within 3 s) before the body is sent."""
    c = Conn(port)
    c.s.sendall(req("POST", "/upload?expect-ows", "x-test: expect-ows\r\nContent-Length: 5\r\n"
                                                  "Expect: 100-continue \r\n"))
    c.s.settimeout(3)
    try:
        interim = c.line()
        while c.line():
            pass
    except (socket.timeout, EOFError):
        interim = "none"
    c.s.settimeout(10)
    c.s.sendall(b"hello")
    status, headers, body, _ = c.response()
    print("interim=%s final=%s body=%s" % (interim, status.split(" ")[1], body.decode().strip()))


def case_emptyhost(port):
    """An empty Host (allowed; it cannot be an HTTP/2 :authority)."""
    c = Conn(port)
    c.s.sendall(b"GET /hello?emptyhost HTTP/1.1\r\nHost:\r\nx-test: emptyhost\r\n\r\n")
    status, headers, body, _ = c.response()
    print("%s body=%s" % (status.split(" ")[1], body.decode().strip()))


def case_http10(port):
    """An HTTP/1.0 request: answered, then the connection closes."""
    c = Conn(port)
    c.s.sendall(b"GET /hello?v10 HTTP/1.0\r\nHost: orders\r\nx-test: http10\r\n"
                b"outrider-orig-proto: HTTP/1.1\r\n\r\n")
    status, headers, body, framing = c.response()
    print("%s body=%s after=%s" % (status.split(" ")[0], body.decode().strip(), c.quiet(5)))


def case_stall(port, n=8, seconds=6):
    """N clients ask for /big-cl and read nothing for SECONDS; then each
    reads its whole answer. Prints "stalled=N whole=W" (W: answers that
    arrived whole afterwards)."""
    conns = []
    for i in range(n):
        c = Conn(port, timeout=30)
        c.s.sendall(req("GET", "/big-cl?stall=%d" % i, "x-test: stall\r\n"))
        conns.append(c)
    time.sleep(seconds)
    whole = 0
    for c in conns:
        status, headers, body, _ = c.response()
        whole += status.split(" ")[1] == "200" and len(body) == int(headers.get("content-length", -1))
    print("stalled=%d whole=%d" % (n, whole))


def case_abort(port, n=20):
    """N clients send a slow request and go away before the answer."""
    for i in range(n):
        c = Conn(port)
        c.s.sendall(req("GET", "/slow?ms=2000&abort=%d" % i, "x-test: abort\r\n"))
        time.sleep(0.02)
        c.s.close()
    print("aborted=%d" % n)


CASES = {"bodiless": case_bodiless, "close": case_close, "pipeline": case_pipeline, "http10": case_http10, "ows": case_ows, "emptyhost": case_emptyhost, "expect-ows": case_expect_ows,
         "stall": case_stall, "abort": case_abort}

if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        try:
            CASES[sys.argv[3]](int(sys.argv[2]))
        except Exception as e:  # one line the test can show
            print("error: %s: %s" % (type(e).__name__, e))
            sys.exit(1)
