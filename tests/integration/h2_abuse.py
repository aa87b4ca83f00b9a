#!/usr/bin/python3
"""Hand-made HTTP/2 frames against a plaintext listener, for test_http2_abuse.sh.

  h2_abuse.py PORT CASE

sends the client preface and SETTINGS, then the abuse CASE names, and reads
until the server's GOAWAY or the end of the connection. It prints
"GOAWAY <error code name>", "RST <error code name>", "HEADERS" (a
response on stream 1, for cases that expect an answer), "EOF" or
"TIMEOUT".
"""
import socket
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


def main():
    port, case = int(sys.argv[1]), sys.argv[2]
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
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
