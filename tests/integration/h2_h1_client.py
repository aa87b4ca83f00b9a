#!/usr/bin/python3
"""Hand-made HTTP/2 requests for test_http2_h1_abuse.sh: bytes an HTTP/2
client may send that must not become a different HTTP/1.1 request at the
app, or two.

  h2_h1_client.py PORT hostile     one line per hostile request: NAME RESULT
  h2_h1_client.py PORT CASE        one line: CASE RESULT (see CASES)
  h2_h1_client.py PORT abandon N   N requests, each connection closed at once

RESULT is "HEADERS end data=<repr>" (an answer that ended), "HEADERS
partial data=<n bytes>", "RST <code>", "GOAWAY <code>", "EOF" or
"TIMEOUT". Frames and HPACK helpers come from h2_abuse.py.
"""
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from h2_abuse import (CODES, DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, PREFACE,  # noqa: E402
                      RST_STREAM, SETTINGS, WINDOW_UPDATE, frame, hpack_str, literal)


def block(method, path, authority=b"127.0.0.1", fields=()):
    """A request header block: literals without indexing, indexed names."""
    out = b"\x02" + hpack_str(method) + b"\x86" + b"\x04" + hpack_str(path)
    if authority is not None:
        out += b"\x01" + hpack_str(authority)
    for name, value in fields:
        out += literal(name, value)
    return out


def trailers(fields):
    return b"".join(literal(n, v) for n, v in fields)


class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        # a large connection window: a reset stream's DATA in flight must
        # not starve the next one
        self.s.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1 << 30)))
        self.buf = b""
        self.streams = {}

    def send(self, *frames):
        self.s.sendall(b"".join(frames))

    def frames(self, deadline):
        """Yields (type, flags, stream, payload) until the deadline."""
        while time.time() < deadline:
            while len(self.buf) >= 9 and len(self.buf) >= 9 + int.from_bytes(self.buf[:3], "big"):
                n = int.from_bytes(self.buf[:3], "big")
                f = (self.buf[3], self.buf[4], int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF,
                     self.buf[9:9 + n])
                self.buf = self.buf[9 + n:]
                yield f
            self.s.settimeout(max(0.05, deadline - time.time()))
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                return
            if not data:
                yield ("EOF", 0, 0, b"")
                return
            self.buf += data

    def result(self, sid, seconds=10, stop_after_data=False):
        """Reads until stream `sid` ends; its RESULT."""
        head, body = False, b""
        for ftype, flags, stream, payload in self.frames(time.time() + seconds):
            if ftype == "EOF":
                return "EOF"
            if ftype == GOAWAY:
                return "GOAWAY " + CODES.get(struct.unpack(">I", payload[4:8])[0], "?")
            if stream != sid:
                continue
            if ftype == RST_STREAM:
                code = CODES.get(struct.unpack(">I", payload)[0], "?")
                return "RST %s data=%d" % (code, len(body)) if head else "RST " + code
            head = head or ftype == HEADERS
            if ftype == DATA:
                body += payload
                if stop_after_data:
                    return "HEADERS partial data=%d" % len(body)
            if flags & END_STREAM and ftype in (HEADERS, DATA):
                return "HEADERS end data=%r" % body[:64]
        return "TIMEOUT"


def one(port, hblock, body_frames=(), sid=1, seconds=10):
    c = Client(port)
    end = 0 if body_frames else END_STREAM
    c.send(frame(HEADERS, end | END_HEADERS, sid, hblock), *body_frames)
    return c.result(sid, seconds)


HOSTILE = [
    ("userinfo", block(b"GET", b"/h-userinfo", b"127.0.0.1:1@admin.internal")),
    ("host-userinfo", block(b"GET", b"/h-host-userinfo", None, [(b"host", b"a@admin.internal")])),
    ("host-differs", block(b"GET", b"/h-host-differs", fields=[(b"host", b"admin.internal")])),
    ("authority-crlf", block(b"GET", b"/h-authority-crlf", b"a\r\nx-injected: 1")),
    ("method-space", block(b"GET /h-smuggled HTTP/1.1\r\nx:", b"/h-method-space")),
    ("method-colon", block(b"GE:T", b"/h-method-colon")),
    ("path-fragment", block(b"GET", b"/h-path-fragment#/../admin")),
    ("path-space", block(b"GET", b"/h-path space HTTP/1.1")),
    ("cl-and-te", block(b"POST", b"/h-cl-and-te",
                        fields=[(b"content-length", b"5"), (b"transfer-encoding", b"chunked")])),
    ("te-other", block(b"GET", b"/h-te-other", fields=[(b"te", b"trailers, chunked")])),
    ("te-trailers", block(b"GET", b"/h-te-trailers", fields=[(b"te", b"trailers")])),
    ("connection", block(b"GET", b"/h-connection", fields=[(b"connection", b"x-secret")])),
    ("keep-alive", block(b"GET", b"/h-keep-alive", fields=[(b"keep-alive", b"1")])),
    ("upgrade", block(b"GET", b"/h-upgrade", fields=[(b"upgrade", b"websocket")])),
    ("empty-name", block(b"GET", b"/h-empty-name", fields=[(b"", b"1")])),
    ("upper-name", block(b"GET", b"/h-upper-name", fields=[(b"X-Upper", b"1")])),
    ("name-crlf", block(b"GET", b"/h-name-crlf", fields=[(b"x-a\r\nx-injected", b"1")])),
    ("value-cr", block(b"GET", b"/h-value-cr", fields=[(b"x-a", b"1\rx-injected: 1")])),
    ("two-cl", block(b"POST", b"/h-two-cl", fields=[(b"content-length", b"1"),
                                                   (b"content-length", b"2")])),
    ("xfcc", block(b"GET", b"/h-xfcc", fields=[(b"x-forwarded-client-cert", b"By=forged")])),
]


def case(port, name):
    if name == "cl_long":  # DATA beyond content-length: a second request hidden in the body
        smuggled = b"AAAAAGET /smuggled HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        return one(port, block(b"POST", b"/echo-long", fields=[(b"content-length", b"5")]),
                   [frame(DATA, END_STREAM, 1, smuggled)])
    if name == "cl_short":  # END_STREAM before content-length bytes
        return one(port, block(b"POST", b"/echo-short", fields=[(b"content-length", b"100")]),
                   [frame(DATA, END_STREAM, 1, b"12345")])
    if name == "trailers_forbidden":
        # content-length agrees with the DATA, so that HTTP/2 takes it
        t = [(b"content-length", b"4"), (b"host", b"admin.internal"),
             (b"x-forwarded-client-cert", b"By=forged"), (b"authorization", b"forged"),
             (b"x-sum", b"ok")]
        return one(port, block(b"POST", b"/echo-trailers"),
                   [frame(DATA, 0, 1, b"body"), frame(HEADERS, END_STREAM | END_HEADERS, 1, trailers(t))])
    if name == "cl_trailers":  # content-length and trailers
        return one(port, block(b"POST", b"/echo-cl-trailers", fields=[(b"content-length", b"4")]),
                   [frame(DATA, 0, 1, b"body"),
                    frame(HEADERS, END_STREAM | END_HEADERS, 1, trailers([(b"host", b"evil")]))])
    if name == "late_end":  # END_STREAM on an empty DATA, a second later
        c = Client(port)
        c.send(frame(HEADERS, END_HEADERS, 1, block(b"POST", b"/echo-late")), frame(DATA, 0, 1, b"part1"))
        time.sleep(1)
        c.send(frame(DATA, 0, 1, b"part2"))
        time.sleep(0.5)
        c.send(frame(DATA, END_STREAM, 1, b""))
        return c.result(1)
    if name == "early_answer":
        # The app answers as soon as it has the head; the answer waits in the
        # proxy (the client's stream window is 0) while the body and its
        # END_STREAM arrive, then the window opens. The body still counts
        # against content-length though nobody takes it any more.
        c = Client(port)
        c.send(frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)),
               frame(HEADERS, END_HEADERS, 1, block(b"POST", b"/early", fields=[(b"content-length", b"5")])))
        time.sleep(1)
        c.send(frame(DATA, END_STREAM, 1, b"hello"))
        time.sleep(0.5)
        c.send(frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 65535)))
        return c.result(1)
    if name == "rst_response":  # reset after the first DATA, then a request on the same connection
        c = Client(port)
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block(b"GET", b"/slow-big")))
        first = c.result(1, stop_after_data=True)
        c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
        time.sleep(1)
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, block(b"GET", b"/ok")))
        return first + " then " + c.result(3)
    if name == "rst_request":  # reset while the body is being sent
        c = Client(port)
        c.send(frame(HEADERS, END_HEADERS, 1, block(b"POST", b"/echo-rst")),
               frame(DATA, 0, 1, b"partial-body"))
        time.sleep(0.5)
        c.send(frame(RST_STREAM, 0, 1, struct.pack(">I", 8)))
        time.sleep(0.5)
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 3, block(b"GET", b"/ok")))
        return c.result(3)
    raise SystemExit("unknown case " + name)


def abandon(port, n):
    """Requests whose connection closes at once (the upstream still connecting)."""
    for i in range(n):
        c = Client(port)
        c.send(frame(HEADERS, END_STREAM | END_HEADERS, 1, block(b"GET", b"/abandoned")))
        time.sleep(0.05 * (i % 3))
        c.s.close()
    return "done %d" % n


def main():
    port, what = int(sys.argv[1]), sys.argv[2]
    if what == "hostile":
        for name, hblock in HOSTILE:
            print(name, one(port, hblock), flush=True)
    elif what == "abandon":
        print("abandon", abandon(port, int(sys.argv[3])))
    else:
        print(what, case(port, what))


if __name__ == "__main__":
    main()
