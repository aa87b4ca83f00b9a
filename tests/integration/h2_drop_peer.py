#!/usr/bin/python3
"""A fake peer sidecar whose first HTTP/2 connection dies, for test_http2_retry.sh.

  h2_drop_peer.py --port P --cert C --key K --ca CA --alpn PROTO --drop HOW
                  --log FILE [--go FILE] [--settle S] [--lifetime S]

listens on 127.0.0.1:P with TLS (OpenSSL): it presents C/K, requires a client
certificate verified against CA and selects ALPN PROTO (`h2`, or
`outrider.h2`, the hop between sidecars). It speaks HTTP/2 with the h2
library.

The first connection it accepts waits for the file --go to exist before its
handshake (so that the requests of every client are waiting for it), and
announces SETTINGS_MAX_CONCURRENT_STREAMS = 1 in the same write as the
server's last handshake flight, so that the client reads the limit before it
sends a request: it sends one HEADERS, and holds the others. That stream is
never answered. Once --settle seconds have passed without another stream,
the connection is dropped as HOW says:

  close    FIN (no close_notify, no GOAWAY)
  reset    RST (SO_LINGER 0)
  goaway   GOAWAY(NO_ERROR, last_stream_id = the held stream), then FIN
  goaway0  GOAWAY(NO_ERROR, last_stream_id = 0): the held stream is
           declared unprocessed, then FIN

Every later connection announces 100 streams and answers every request 200
with the body "served <path>\\n".

The log has one line per event, fields space-separated (values never hold
spaces; an absent header is "-"):

  accept conn=N
  tls conn=N alpn=PROTO client=<the client certificate's URI SAN>
  headers conn=N stream=S method=M path=P orig_proto=V  (every request seen)
  served conn=N stream=S method=M path=P                (every request answered)
  drop conn=1 how=HOW last_stream=S                     (before the drop)
  error conn=N reason=...                               (anything unexpected)

The peer exits on its own after --lifetime seconds.
"""
import argparse
import os
import socket
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

LOCK = threading.Lock()


def log(fp, line):
    with LOCK:
        fp.write(line + "\n")
        fp.flush()


class TLSConn:
    """A server-side TLS connection over memory BIOs: what the TLS layer
    writes leaves only on flush(), so the peer decides what shares a write."""

    def __init__(self, sock, ctx):
        self.sock = sock
        self.inc = ssl.MemoryBIO()
        self.out = ssl.MemoryBIO()
        self.tls = ctx.wrap_bio(self.inc, self.out, server_side=True)

    def flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def feed(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("the client closed")
        self.inc.write(data)

    def handshake(self):
        """Completes the handshake; the server's last flight stays unsent."""
        while True:
            try:
                self.tls.do_handshake()
                return
            except ssl.SSLWantReadError:
                self.flush()
                self.feed()

    def read(self):
        """Some plaintext; raises EOFError at the end, socket.timeout on a timeout."""
        while True:
            try:
                data = self.tls.read(65536)
                if not data:
                    raise EOFError("close_notify")
                return data
            except ssl.SSLWantReadError:
                self.flush()
                self.feed()
            except ssl.SSLZeroReturnError:
                raise EOFError("close_notify")

    def write(self, data):
        if data:
            self.tls.write(data)


def client_uri(tls):
    cert = tls.getpeercert() or {}
    uris = [v for k, v in cert.get("subjectAltName", ()) if k == "URI"]
    return uris[0] if uris else "-"


def h2_conn(max_streams):
    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
    conn.local_settings = h2.settings.Settings(
        client=False, initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: max_streams})
    conn.initiate_connection()
    return conn


def headers_line(n, ev):
    h = dict(ev.headers)
    return "conn=%d stream=%d method=%s path=%s orig_proto=%s" % (
        n, ev.stream_id, h.get(":method", "-"), h.get(":path", "-"), h.get("outrider-orig-proto", "-"))


def end_gracefully(sock, seconds):
    """FIN, then read what the client still sends until it closes (so that the
    close sends no RST), for at most `seconds`."""
    try:
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(0.2)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if not sock.recv(65536):
                    break
            except socket.timeout:
                continue
    except OSError:
        pass
    sock.close()


def first_connection(args, fp, sock, ctx):
    """Takes one request and never answers it; then the drop."""
    n = 1
    if args.go:
        deadline = time.monotonic() + args.lifetime
        while not os.path.exists(args.go):
            if time.monotonic() > deadline:
                log(fp, "error conn=1 reason=no-go-file")
                sock.close()
                return
            time.sleep(0.05)
    c = TLSConn(sock, ctx)
    c.handshake()
    log(fp, "tls conn=%d alpn=%s client=%s" % (n, c.tls.selected_alpn_protocol(), client_uri(c.tls)))
    conn = h2_conn(1)
    c.write(conn.data_to_send())
    c.flush()  # the server's Finished and the SETTINGS in one write
    held = None
    settle_end = None
    sock.settimeout(0.05)
    while True:
        if settle_end is not None and time.monotonic() >= settle_end:
            break
        try:
            data = c.read()
        except socket.timeout:
            continue
        except EOFError:
            log(fp, "error conn=1 reason=client-closed-first")
            sock.close()
            return
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            log(fp, "error conn=1 reason=protocol:%s" % type(e).__name__)
            events = []
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                log(fp, "headers " + headers_line(n, ev))
                if held is None:
                    held = ev.stream_id
                else:
                    log(fp, "error conn=1 reason=second-stream:%d" % ev.stream_id)
                settle_end = time.monotonic() + args.settle
        c.write(conn.data_to_send())
        c.flush()
    log(fp, "drop conn=1 how=%s last_stream=%s" % (
        args.drop, held if args.drop == "goaway" else 0 if args.drop == "goaway0" else "-"))
    if args.drop == "reset":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
        return
    if args.drop in ("goaway", "goaway0"):
        conn.close_connection(error_code=0, last_stream_id=held if args.drop == "goaway" else 0)
        c.write(conn.data_to_send())
        c.flush()
    end_gracefully(sock, 2)


def serving_connection(args, fp, sock, ctx, n):
    c = TLSConn(sock, ctx)
    c.handshake()
    log(fp, "tls conn=%d alpn=%s client=%s" % (n, c.tls.selected_alpn_protocol(), client_uri(c.tls)))
    conn = h2_conn(100)
    c.write(conn.data_to_send())
    c.flush()
    requests = {}
    sock.settimeout(0.5)
    while True:
        try:
            data = c.read()
        except socket.timeout:
            continue
        except EOFError:
            break
        try:
            events = conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            log(fp, "error conn=%d reason=protocol:%s" % (n, type(e).__name__))
            break
        for ev in events:
            if isinstance(ev, h2.events.RequestReceived):
                log(fp, "headers " + headers_line(n, ev))
                requests[ev.stream_id] = dict(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id in requests:
                h = requests.pop(ev.stream_id)
                body = ("served %s\n" % h.get(":path", "-")).encode()
                conn.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "text/plain"),
                                                 ("content-length", str(len(body)))])
                conn.send_data(ev.stream_id, body, end_stream=True)
                log(fp, "served conn=%d stream=%d method=%s path=%s" % (
                    n, ev.stream_id, h.get(":method", "-"), h.get(":path", "-")))
            elif isinstance(ev, h2.events.ConnectionTerminated):
                pass
        c.write(conn.data_to_send())
        c.flush()
    sock.close()


def handle(args, fp, sock, ctx, n):
    try:
        if n == 1:
            first_connection(args, fp, sock, ctx)
        else:
            serving_connection(args, fp, sock, ctx, n)
    except (OSError, EOFError, ssl.SSLError) as e:
        log(fp, "error conn=%d reason=%s" % (n, type(e).__name__))
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--alpn", required=True)
    ap.add_argument("--drop", choices=("close", "reset", "goaway", "goaway0"), required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--go")
    ap.add_argument("--settle", type=float, default=0.5)
    ap.add_argument("--lifetime", type=float, default=120)
    args = ap.parse_args()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    ctx.load_verify_locations(args.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.set_alpn_protocols([args.alpn])
    ctx.options |= ssl.OP_NO_TICKET  # every handshake full: no resumption

    fp = open(args.log, "a")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(64)
    lsock.settimeout(0.2)
    deadline = time.monotonic() + args.lifetime
    n = 0
    while time.monotonic() < deadline:
        try:
            sock, _ = lsock.accept()
        except socket.timeout:
            continue
        n += 1
        log(fp, "accept conn=%d" % n)
        threading.Thread(target=handle, args=(args, fp, sock, ctx, n), daemon=True).start()
    lsock.close()
    fp.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
