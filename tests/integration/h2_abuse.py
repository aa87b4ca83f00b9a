#!/usr/bin/python3
"""Hand-made HTTP/2 frames against a plaintext listener, for test_http2_abuse.sh.

  h2_abuse.py PORT CASE

sends the client preface and SETTINGS, then the abuse CASE names, and reads
until the server's GOAWAY or the end of the connection. It prints
"GOAWAY <error code name>", "RST <error code name>", "HEADERS" (a
response on stream 1, for cases that expect an answer), "EOF" or
"TIMEOUT".

Two cases print more:

  stream_cap, stream_cap_acked: 101 requests (HEADERS without END_STREAM,
  so that each stream stays open) in one write, before acknowledging the
  server's SETTINGS or after; then, once a stream is refused (or after 5
  s), an empty DATA frame with END_STREAM on every stream not reset, and
  the answers are read.
  Prints "refused=<stream ids:code,...> answered=<streams whose response
  began with :status 200 and ended> other=<GOAWAY code, other resets, or
  none>".

  zero_window: SETTINGS_INITIAL_WINDOW_SIZE 0 and never a WINDOW_UPDATE,
  then GET PATH (argument 3, default /big.bin); reads until the stream is
  reset. Prints "<HEADERS|NOHEADERS> RST <code> data=<bytes of DATA
  received> <seconds from the request to the reset>".
  stall PATH N SECONDS: N GETs of PATH with a zero window, held SECONDS.
  Prints "heads=<responses begun> data=<DATA bytes> other=<...|none>".

  zero_window_priority: the same as zero_window, sending a PRIORITY frame for the stream
  every 0.5 s (frames that must not count as progress).

  mature_resets: with a zero window, 100 GETs of /big.bin; once their
  responses have begun, RST_STREAM(CANCEL) for all 100 (resets of streams
  with a response, "mature") and 50 more streams reset as soon as they are
  opened (premature), all in one write; then one more GET. Prints "ALIVE"
  when that GET gets its response head, else "GOAWAY <code>", "EOF" or
  "TIMEOUT".

With H2_TLS=CERT:KEY:CA in the environment the connection is TLS with that
client certificate and ALPN $H2_ALPN (default h2), the server verified
against CA (the sidecar hop is ALPN outrider.h2).
"""
import os
import socket
import ssl
import struct
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
CODES = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR",
         5: "STREAM_CLOSED", 6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL",
         9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def hpack_int(value, prefix_bits, first):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s):
    return hpack_int(len(s), 7, 0) + s


# GET / over http, :authority literal (indexed name 1) without indexing
REQUEST = b"\x82\x86\x84" + b"\x01" + hpack_str(b"127.0.0.1")


def literal(name, value):
    """A literal field without indexing, new name."""
    return b"\x00" + hpack_str(name) + hpack_str(value)


def abuse(case):
    if case == "rapid_reset":
        out = b""
        for i in range(400):
            sid = 1 + 2 * i
            out += frame(HEADERS, END_STREAM | END_HEADERS, sid, REQUEST)
            out += frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
        return [out]
    if case == "continuation":
        parts = [frame(HEADERS, 0, 1, REQUEST)]
        parts += [frame(CONTINUATION, 0, 1, literal(b"x-c%d" % i, b"v")) for i in range(200)]
        return [b"".join(parts)]
    if case == "settings":
        return [frame(SETTINGS, 0, 0) * 400]
    if case == "ping":
        return [b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(400))]
    if case == "empty_data":
        return [frame(HEADERS, END_HEADERS, 1, REQUEST) + frame(DATA, 0, 1) * 400]
    if case == "window_update":
        return [frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 1)) * 3000]
    if case == "bomb":
        # one 3000-byte field into the dynamic table, then 1-byte references to it
        block = REQUEST + b"\x40" + hpack_str(b"x-bomb") + hpack_str(b"b" * 3000) + b"\xbe" * 8000
        return [frame(HEADERS, END_STREAM | END_HEADERS, 1, block)]
    if case == "slow_headers":
        return [frame(HEADERS, 0, 1, REQUEST)]  # and no CONTINUATION ever
    if case == "oversized":
        block = REQUEST + literal(b"x-big", b"a" * 15000) + literal(b"x-big2", b"a" * 15000) \
            + literal(b"x-big3", b"a" * 15000) + literal(b"x-big4", b"a" * 15000) \
            + literal(b"x-big5", b"a" * 10000)
        return [frame(HEADERS, 0, 1, block[:16384])] + \
            [frame(CONTINUATION, END_HEADERS if i + 16384 >= len(block) else 0, 1, block[i:i + 16384])
             for i in range(16384, len(block), 16384)]
    raise SystemExit("unknown case " + case)


class Reader:
    """Frames from a socket, with a deadline; acknowledges SETTINGS."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def frames(self, seconds):
        """Yields (type, flags, stream, payload) until `seconds` pass or the
        connection ends (then yields ("EOF", ...))."""
        deadline = time.time() + seconds
        while True:
            while len(self.buf) >= 9:
                length = struct.unpack(">I", b"\0" + self.buf[:3])[0]
                if len(self.buf) < 9 + length:
                    break
                ftype, flags = self.buf[3], self.buf[4]
                sid = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
                payload = self.buf[9:9 + length]
                self.buf = self.buf[9 + length:]
                if ftype == SETTINGS and not flags & ACK:
                    self.s.sendall(frame(SETTINGS, ACK, 0))
                yield ftype, flags, sid, payload
            left = deadline - time.time()
            if left <= 0:
                return
            self.s.settimeout(left)
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                return
            except OSError:
                data = b""
            if not data:
                yield "EOF", 0, 0, b""
                return
            self.buf += data


def code_of(payload, offset=0):
    return CODES.get(struct.unpack(">I", payload[offset:offset + 4])[0], "?")


def stream_cap(s, ack_first):
    reader = Reader(s)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    if ack_first:
        # the server's SETTINGS, acknowledged by the reader, then its ACK of ours
        for ftype, flags, _, _ in reader.frames(5):
            if ftype == SETTINGS and flags & ACK:
                break
    ids = [1 + 2 * i for i in range(101)]
    s.sendall(b"".join(frame(HEADERS, END_HEADERS, sid, REQUEST) for sid in ids))
    refused, other, answered, ended = [], [], set(), set()

    def take(ftype, flags, sid, payload):
        if ftype == "EOF":
            other.append("EOF")
        elif ftype == GOAWAY:
            other.append("GOAWAY " + code_of(payload, 4))
        elif ftype == RST_STREAM:
            code = code_of(payload)
            if sid in answered or code != "REFUSED_STREAM":
                other.append("RST %d %s" % (sid, code))
            else:
                refused.append("%d:%s" % (sid, code))
        elif ftype == HEADERS and sid not in answered:
            if payload[:1] == b"\x88":  # :status 200, static table index 8
                answered.add(sid)
        if ftype in (HEADERS, DATA) and flags & END_STREAM:
            ended.add(sid)

    for f in reader.frames(5):  # until the 101st is refused, or something else
        take(*f)
        if refused or other:
            break
    if not other:
        s.sendall(b"".join(frame(DATA, END_STREAM, sid, b"") for sid in ids
                           if "%d:REFUSED_STREAM" % sid not in refused))
        for f in reader.frames(10):
            take(*f)
            if other or len(answered & ended) + len(refused) >= len(ids):
                break
    print("refused=%s answered=%d other=%s" % (",".join(refused) or "none",
                                                len(answered & ended), ",".join(other) or "none"))


def zero_window(s, path, priority=False):
    reader = Reader(s)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))
    block = b"\x82\x86\x04" + hpack_str(path) + b"\x01" + hpack_str(b"127.0.0.1")
    start = time.time()
    s.sendall(frame(HEADERS, END_STREAM | END_HEADERS, 1, block))
    head, data, result = "NOHEADERS", 0, "TIMEOUT"
    while result == "TIMEOUT" and time.time() - start < 60:
        for ftype, _, sid, payload in reader.frames(0.5):
            if ftype == "EOF":
                result = "EOF"
                break
            if ftype == GOAWAY:
                result = "GOAWAY " + code_of(payload, 4)
                break
            if sid != 1:
                continue
            if ftype == HEADERS:
                head = "HEADERS"
            elif ftype == DATA:
                data += len(payload)
            elif ftype == RST_STREAM:
                result = "RST " + code_of(payload)
                break
        if priority and result == "TIMEOUT":
            # stream 1 depends on stream 0, weight 16: no progress at all
            s.sendall(frame(PRIORITY, 0, 1, struct.pack(">IB", 0, 15)))
    print("%s %s data=%d %.1f" % (head, result, data, time.time() - start))


def stall(s, path, streams, seconds):
    """Opens `streams` GETs of `path` with SETTINGS_INITIAL_WINDOW_SIZE 0 and
    never a WINDOW_UPDATE: the client takes no response byte. Holds them for
    `seconds`; prints "heads=<streams answered with HEADERS> data=<DATA bytes
    received> other=<resets, GOAWAY, EOF or none>"."""
    reader = Reader(s)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))
    block = b"\x82\x86\x04" + hpack_str(path) + b"\x01" + hpack_str(b"127.0.0.1")
    s.sendall(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, block)
                       for i in range(streams)))
    heads, data, other = set(), 0, []
    for ftype, _, sid, payload in reader.frames(seconds):
        if ftype == "EOF":
            other.append("EOF")
            break
        if ftype == GOAWAY:
            other.append("GOAWAY " + code_of(payload, 4))
        elif ftype == HEADERS:
            heads.add(sid)
        elif ftype == DATA:
            data += len(payload)
        elif ftype == RST_STREAM:
            other.append("RST %d %s" % (sid, code_of(payload)))
    print("heads=%d data=%d other=%s" % (len(heads), data, ",".join(other) or "none"))


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    tls = os.environ.get("H2_TLS")
    if not tls:
        return s
    cert, key, ca = tls.split(":")
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False  # SPIFFE IDs, not host names
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols([os.environ.get("H2_ALPN", "h2")])
    return ctx.wrap_socket(s)


def until(reader, done, seconds):
    """Reads until done(type, flags, stream, payload): None; else "GOAWAY
    <code>", "EOF" or "TIMEOUT"."""
    for ftype, flags, sid, payload in reader.frames(seconds):
        if ftype == "EOF":
            return "EOF"
        if ftype == GOAWAY:
            return "GOAWAY " + code_of(payload, 4)
        if done(ftype, flags, sid, payload):
            return None
    return "TIMEOUT"


def mature_resets(s):
    big = b"\x82\x86\x04" + hpack_str(b"/big.bin") + b"\x01" + hpack_str(b"127.0.0.1")
    reader = Reader(s)
    s.sendall(PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0)))
    s.sendall(b"".join(frame(HEADERS, END_STREAM | END_HEADERS, 1 + 2 * i, big) for i in range(100)))
    begun = set()

    def heads(ftype, flags, sid, payload):
        if ftype == HEADERS:
            begun.add(sid)
        return len(begun) == 100

    result = until(reader, heads, 10)
    if result:
        print(result)
        return
    out = b"".join(frame(RST_STREAM, 0, sid, struct.pack(">I", 8)) for sid in sorted(begun))
    for i in range(50):
        sid = 201 + 2 * i
        out += frame(HEADERS, END_STREAM | END_HEADERS, sid, big) + frame(RST_STREAM, 0, sid, struct.pack(">I", 8))
    out += frame(HEADERS, END_STREAM | END_HEADERS, 301, big)
    s.sendall(out)
    print(until(reader, lambda ftype, flags, sid, payload: ftype == HEADERS and sid == 301, 10) or "ALIVE")


def main():
    port, case = int(sys.argv[1]), sys.argv[2]
    s = connect(port)
    if case == "mature_resets":
        mature_resets(s)
        return
    if case in ("stream_cap", "stream_cap_acked"):
        stream_cap(s, case == "stream_cap_acked")
        return
    if case == "stall":
        stall(s, sys.argv[3].encode(), int(sys.argv[4]), float(sys.argv[5]))
        return
    if case in ("zero_window", "zero_window_priority"):
        zero_window(s, (sys.argv[3] if len(sys.argv) > 3 else "/big.bin").encode(),
                    case == "zero_window_priority")
        return
    s.sendall(PREFACE + frame(SETTINGS, 0, 0))
    try:
        for chunk in abuse(case):
            s.sendall(chunk)
    except OSError:
        pass  # the server may end the connection while we still send
    buf = b""
    deadline = time.time() + 10
    result = "TIMEOUT"
    while time.time() < deadline:
        try:
            data = s.recv(65536)
        except socket.timeout:
            break
        except OSError:
            result = "EOF"
            break
        if not data:
            result = "EOF"
            break
        buf += data
        while len(buf) >= 9:
            length = struct.unpack(">I", b"\0" + buf[:3])[0]
            if len(buf) < 9 + length:
                break
            ftype, flags, sid = buf[3], buf[4], struct.unpack(">I", buf[5:9])[0] & 0x7FFFFFFF
            payload = buf[9:9 + length]
            buf = buf[9 + length:]
            if ftype == GOAWAY:
                print("GOAWAY " + CODES.get(struct.unpack(">I", payload[4:8])[0], "?"))
                return
            if ftype == SETTINGS and not flags & ACK and case != "slow_headers":
                s.sendall(frame(SETTINGS, ACK, 0))  # not inside an open header block
            if ftype == RST_STREAM and case in ("oversized",):
                print("RST " + CODES.get(struct.unpack(">I", payload)[0], "?"))
                return
            if ftype == HEADERS and sid == 1 and case in ("oversized",):
                print("HEADERS")
                return
    print(result)


if __name__ == "__main__":
    main()
