#!/usr/bin/python3
"""An HTTP/1.1 app on raw sockets that misbehaves on purpose, for
test_http2_h1_abuse.sh.

  h1_bad_app.py PORT LOG

Every connection gets a number; every request it reads is logged to LOG
as one JSON line: {"conn": N, "ev": "req", "line": request line,
"headers": [[name, value], ...], "body": body, "trailers": [...]}. A
connection that ends inside a request logs {"ev": "eof", "partial": what
it had}; one that ends at a request boundary logs {"ev": "closed"}; a large
answer logs {"ev": "sent", "bytes": N, "done": bool} when it stops. So a
test asserts what reached the app and on which connection, not only what
the client saw.

The answer depends on the path (ANSWERS below): well-formed ones, and
ones an HTTP/1.1 upstream must never be trusted with: both Content-Length
and chunked, two Content-Lengths, a body to HEAD or with 204, 101, bytes
after the response, bogus status lines, obs-fold, a huge head, a chunked
body that stalls, 20 MiB at once.
"""
import json
import socket
import sys
import threading
import time

LOCK = threading.Lock()
COUNTER = [0]
EXTRA = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"


def log(path, entry):
    with LOCK:
        with open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


class Closed(Exception):
    pass


class Conn:
    def __init__(self, sock):
        self.sock, self.buf = sock, b""

    def more(self):
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            if len(self.buf) > 65536:
                raise Closed()
            self.more()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exactly(self, n):
        while len(self.buf) < n:
            self.more()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def fields(lines):
    return [[k.strip(), v.strip()] for k, _, v in (l.decode("latin1").partition(":") for l in lines)]


def read_request(c, partial):
    """Reads one request; `partial` holds what was read so far."""
    first = c.line()
    partial["line"] = first.decode("latin1")
    head = []
    while True:
        l = c.line()
        if not l:
            break
        head.append(l)
    headers = fields(head)
    partial["headers"] = headers
    if first.split(b" ")[1:2] == [b"/early"]:
        c.sock.sendall(ok(b"early answer"))  # before the body, which it then reads
    names = {k.lower(): v for k, v in headers}
    body, trailers = b"", []
    if names.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(c.line().split(b";")[0], 16)
            if size == 0:
                while True:
                    l = c.line()
                    if not l:
                        break
                    trailers.append(l)
                break
            body += c.exactly(size)
            partial["body"] = body.decode("latin1")
            if c.exactly(2) != b"\r\n":
                raise Closed()
    elif "content-length" in names:
        n = int(names["content-length"])
        while len(c.buf) < n:
            partial["body"] = c.buf.decode("latin1")
            c.more()
        body = c.exactly(n)
    return first.decode("latin1"), headers, body, fields(trailers)


def ok(body=b"ok", extra=b""):
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def chunked_trailers():
    return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
            b"X-Ok: 1\r\nConnection: close\r\nContent-Length: 5\r\nTransfer-Encoding: x\r\n"
            b"Set-Cookie: a=b\r\nHost: evil\r\n\r\n")


ANSWERS = {
    "/ok": ok(),
    "/cl-te": b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"2\r\nok\r\n0\r\n\r\n",
    "/dup-cl": b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    "/head-body": ok(b"EVIL!"),
    "/continue": b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </x>\r\n\r\n" + ok(),
    "/switch": b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n"
               + EXTRA,
    "/nocontent-body": b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nEVIL!",
    "/notmodified-body": b"HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nEVIL!",
    "/extra": ok() + EXTRA,
    "/trailers": chunked_trailers(),
    "/status-600": b"HTTP/1.1 600 Odd\r\nContent-Length: 2\r\n\r\nok",
    "/status-099": b"HTTP/1.1 099 Odd\r\nContent-Length: 2\r\n\r\nok",
    "/fold": b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded: yes\r\nContent-Length: 2\r\n\r\nok",
    "/bighead": b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 70000 + b"\r\nContent-Length: 2\r\n\r\nok",
}


def big(c, conn, logpath, size, pace):
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    c.sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
    sent, piece = 0, b"x" * 65536
    c.sock.settimeout(30)
    try:
        while sent < size:
            n = c.sock.send(piece[: min(len(piece), size - sent)])
            sent += n
            if pace:
                time.sleep(pace)
    except OSError:
        pass
    log(logpath, {"conn": conn, "ev": "sent", "bytes": sent, "done": sent == size})


def answer(c, conn, logpath, target, method):
    """Writes the answer; False when the connection is to be closed."""
    if target == "/stall-chunked":
        c.sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
        time.sleep(8)
        return False
    if target == "/big":
        big(c, conn, logpath, 20 * 1024 * 1024, 0)
        return False
    if target == "/slow-big":
        big(c, conn, logpath, 4 * 1024 * 1024, 0.02)
        return False
    if target == "/extra-late":
        c.sock.sendall(ok())
        time.sleep(0.5)
        c.sock.sendall(EXTRA)
        return True
    if target == "/continue-close":
        c.sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        return False
    if target == "/early":
        return False  # answered after the head
    if target.startswith("/echo"):
        return None
    c.sock.sendall(ANSWERS.get(target, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
    return target not in ("/switch",)


def serve(sock, conn, logpath):
    c = Conn(sock)
    try:
        while True:
            partial = {}
            try:
                line, headers, body, trailers = read_request(c, partial)
            except (Closed, OSError, ValueError):
                ev = "eof" if partial or c.buf else "closed"
                log(logpath, {"conn": conn, "ev": ev, "partial": partial, "rest": c.buf.decode("latin1")})
                return
            log(logpath, {"conn": conn, "ev": "req", "line": line, "headers": headers,
                          "body": body.decode("latin1"), "trailers": trailers})
            method, target = (line.split(" ") + ["", ""])[:2]
            keep = answer(c, conn, logpath, target, method)
            if keep is None:
                c.sock.sendall(ok(b"got %d" % len(body)))
            elif not keep:
                return
    finally:
        sock.close()


def main():
    port, logpath = int(sys.argv[1]), sys.argv[2]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(64)
    while True:
        sock, _ = srv.accept()
        COUNTER[0] += 1
        threading.Thread(target=serve, args=(sock, COUNTER[0], logpath), daemon=True).start()


if __name__ == "__main__":
    main()
