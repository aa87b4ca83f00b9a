"""Differential check of the proxy's HTTP/1 parsing against a model.

Generates request targets, chunked bodies and request heads from a seeded
random source, computes what RFC 3986 / RFC 9112 and docs/security.md say
the proxy must make of each with an implementation of its own (urllib.parse
for absolute-form, RFC 3986 5.2.4's remove_dot_segments as the RFC writes
it, a chunked decoder written from the RFC 9112 grammar), runs the same
inputs through tests/tools/http_driver, and reports every disagreement.

usage: http_differential.py DRIVER [COUNT] [SEED]
Exit status 0 when every input agrees; 1 with the first disagreements
listed otherwise.
"""
import random
import re
import subprocess
import sys
import urllib.parse

UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
MAY_STAND = UNRESERVED | set(b"!$&'()*+,;=:@/")
TCHAR = set(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class Refused(Exception):
    pass


# ---- request targets ----

def remove_dot_segments(path):
    """RFC 3986 5.2.4, step by step as the RFC writes it."""
    inp, out = path, ""
    while inp:
        if inp.startswith("../"):
            inp = inp[3:]
        elif inp.startswith("./"):
            inp = inp[2:]
        elif inp.startswith("/./"):
            inp = "/" + inp[3:]
        elif inp == "/.":
            inp = "/"
        elif inp.startswith("/../") or inp == "/..":
            inp = "/" + inp[4:] if inp.startswith("/../") else "/"
            out = out[: out.rfind("/")] if "/" in out else ""
        elif inp in (".", ".."):
            inp = ""
        else:
            m = re.match(r"/?[^/]*", inp)
            out += m.group(0)
            inp = inp[m.end():]
    return out


def canonical(path, decode):
    if re.search(rb"%(?![0-9A-Fa-f]{2})", path):
        raise Refused("escape")

    def escape(m):
        byte = int(m.group(1), 16)
        if byte in (0x2F, 0x5C):
            if not decode:
                raise Refused("slash")
            return b"/"
        return bytes([byte]) if byte in UNRESERVED else b"%%%02X" % byte

    parts = re.split(rb"(%[0-9A-Fa-f]{2})", path)
    out = b""
    for i, part in enumerate(parts):
        if i % 2:
            out += escape(re.match(rb"%(..)", part))
            continue
        for byte in part:
            if byte == 0x5C:
                out += b"/"
            elif byte in MAY_STAND:
                out += bytes([byte])
            else:
                out += b"%%%02X" % byte
    return out


def model_target(target, decode):
    if target == b"*":
        return b"*"
    if b"#" in target:
        raise Refused("fragment")
    if not target.startswith(b"/"):
        text = target.decode("latin-1")
        parts = urllib.parse.urlsplit(text)
        prefix = parts.scheme + "://" + parts.netloc
        if parts.scheme not in ("http", "https") or not text.lower().startswith(prefix.lower()):
            raise Refused("form")
        if not parts.netloc:
            raise Refused("form")
        if "@" in parts.netloc:
            raise Refused("userinfo")
        target = target[len(prefix):]
    path, sep, query = target.partition(b"?")
    path = re.sub(rb"/+", b"/", b"/" + canonical(path, decode))
    path = remove_dot_segments(path.decode("latin-1")).encode("latin-1") or b"/"
    return path + sep + query


TARGET_PIECES = [b"a", b"api", b"admin", b"x", b".", b"..", b"", b"%2e", b"%2E%2e", b".%2e",
                 b"%2f", b"%2F", b"%5c", b"%5C", b"\\", b"%41", b"%7e", b"%7E", b"%zz", b"%",
                 b"%4", b"~", b"%25", b"%252e", b"%3b", b"%3B", b"\xc3\xa9", b'"', b"{", b"|",
                 b";", b"=", b"@", b":", b"..%2f", b"%00", b"\x01", b"%C3%A9", b"a.b", b"...",
                 b".a", b"*"]


def gen_target(rnd):
    segs = [rnd.choice(TARGET_PIECES) for _ in range(rnd.randint(0, 7))]
    path = b"/" + b"/".join(segs)
    if rnd.random() < 0.2:
        path += b"/" * rnd.randint(1, 3)
    if rnd.random() < 0.3:
        path += b"?" + b"/".join(rnd.choice(TARGET_PIECES) for _ in range(rnd.randint(0, 3)))
    r = rnd.random()
    if r < 0.15:
        scheme = rnd.choice([b"http", b"HTTP", b"https", b"HtTpS", b"ftp"])
        host = rnd.choice([b"h", b"orders.shop:8080", b"u@h", b"", b"[::1]:80"])
        path = scheme + b"://" + host + (path if rnd.random() < 0.8 else b"")
    elif r < 0.18:
        path = rnd.choice([b"*", b"a/b", b"", b"#", path + b"#f"])
    return path


def model_target_text(target, decode):
    try:
        return model_target(target, decode).hex()
    except Refused:
        return "!"


def driver_target_text(line):
    return "!" if line.startswith("!") else line


# ---- chunked bodies ----

def model_chunked(body):
    """RFC 9112 7.1 with the proxy's limits; returns the decoded hex, '!' or '?'."""
    pos, out = 0, b""
    # BWS before an extension: spaces only (http-parser refuses a tab there)
    line_re = re.compile(rb"([0-9A-Fa-f]{1,16})((?: *;[\t\x20-\x7e\x80-\xff]*)?)\r\n")
    while True:
        m = line_re.match(body, pos)
        if not m:
            rest = body[pos:]
            partial = re.fullmatch(rb"[0-9A-Fa-f]{0,16}(?: *(?:;[\t\x20-\x7e\x80-\xff]*)?)?\r?",
                                   rest)
            return "?" if partial and (b"\r" not in rest or rest.endswith(b"\r")) else "!"
        size = int(m.group(1), 16)
        pos = m.end()
        if size == 0:
            break
        if len(body) < pos + size:
            return "?"
        out += body[pos:pos + size]
        pos += size
        tail = body[pos:pos + 2]
        if tail != b"\r\n"[: len(tail)]:
            return "!"
        if len(tail) < 2:
            return "?"
        pos += 2
    trailer_re = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[\t\x20-\x7e\x80-\xff]*\r\n")
    while True:
        if body[pos:pos + 2] == b"\r\n":
            return out.hex()
        m = trailer_re.match(body, pos)
        if m:
            pos = m.end()
            continue
        rest = body[pos:]
        ok_prefix = re.fullmatch(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+(?::[\t\x20-\x7e\x80-\xff]*\r?)?)?|\r",
                                 rest)
        return "?" if ok_prefix else "!"


def gen_chunked(rnd):
    body = b""
    for _ in range(rnd.randint(0, 4)):
        data = bytes(rnd.choice(b"ab\r\n0;") for _ in range(rnd.randint(1, 12)))
        size = "%x" % len(data)
        size = rnd.choice([size, size.upper(), "0" * rnd.randint(1, 3) + size])
        ext = rnd.choice([b"", b"", b";a=b", b';a="q r"', b" ;x", b";"])
        body += size.encode() + ext + b"\r\n" + data + b"\r\n"
    body += rnd.choice([b"0", b"000"]) + rnd.choice([b"", b";e"]) + b"\r\n"
    if rnd.random() < 0.3:
        body += b"X-T: v\r\n"
    body += b"\r\n"
    if rnd.random() < 0.5:
        body = mutate(rnd, body, b"0123456789abcdefgxX \t;\r\n\x00\x7f:")
    return body


def mutate(rnd, data, alphabet):
    data = bytearray(data)
    for _ in range(rnd.randint(1, 2)):
        op = rnd.random()
        i = rnd.randint(0, len(data))
        if op < 0.4 and data:
            data[min(i, len(data) - 1)] = rnd.choice(alphabet)
        elif op < 0.7:
            data[i:i] = bytes([rnd.choice(alphabet)])
        elif data:
            del data[min(i, len(data) - 1)]
    return bytes(data)


# ---- request heads ----

def model_head(head):
    """The status the proxy answers a complete head with, and its framing."""
    lines = head.split(b"\r\n")
    m = re.fullmatch(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+) (\S+) HTTP/(\d)\.(\d)", lines[0])
    if not m:
        return "400"
    if m.group(1) not in (b"GET", b"POST", b"PUT"):
        return "400"
    if (m.group(3), m.group(4)) not in ((b"1", b"0"), (b"1", b"1")):
        return "505"
    fields = []
    for line in lines[1:-2]:
        fm = re.fullmatch(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*(.*?)[ \t]*", line)
        if not fm:
            return "400"
        fields.append((fm.group(1).lower(), fm.group(2)))
    hosts = [v for n, v in fields if n == b"host"]
    cls = [v for n, v in fields if n == b"content-length"]
    tes = [v for n, v in fields if n == b"transfer-encoding"]
    if len(hosts) > 1:
        return "400"
    if any(not re.fullmatch(rb"\d+", v) for v in cls) or len(cls) > 1:
        return "400"  # even two equal values (RFC 9112 6.3 lets a recipient refuse them)
    if tes:
        codings = [c.strip().lower() for v in tes for c in v.split(b",")]
        if cls or codings[-1] != b"chunked":
            return "400"
        if len(tes) > 1 or len(codings) > 1:
            return "501"
    if m.group(4) == b"1" and not hosts:
        return "400"
    if tes:
        return "0 chunked"
    return "0 cl %d" % int(cls[0]) if cls else "0 none"


def gen_head(rnd):
    method = rnd.choice([b"GET", b"POST", b"PUT"])
    version = rnd.choice([b"HTTP/1.1"] * 6 + [b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0"])
    sep = rnd.choice([b" "] * 8 + [b"\t", b"  "])
    head = method + b" /p" + sep + version + b"\r\n"
    fields = []
    if rnd.random() < 0.9:
        fields.append(b"Host: a")
    if rnd.random() < 0.1:
        fields.append(b"Host: b")
    for _ in range(rnd.randint(0, 2)):
        fields.append(b"Content-Length: " + rnd.choice([b"5", b"5", b"0", b"6", b"05", b"+5", b"5 ", b"x"]))
    for _ in range(rnd.randint(0, 2) if rnd.random() < 0.4 else 0):
        fields.append(b"Transfer-Encoding: " + rnd.choice(
            [b"chunked", b"Chunked", b"chunked ", b"gzip, chunked", b"chunked, gzip", b"gzip", b"identity"]))
    if rnd.random() < 0.15:
        fields.append(rnd.choice([b"Content-Length : 5", b"Transfer-Encoding : chunked", b"Foo Bar: x",
                                  b"Foo@: x", b": x", b"X-Ok: y"]))
    if rnd.random() < 0.2:
        fields.append(b"Connection: " + rnd.choice([b"content-length", b"transfer-encoding", b"host", b"close"]))
    rnd.shuffle(fields)
    return head + b"".join(f + b"\r\n" for f in fields) + b"\r\n"


# ---- running ----

def run_driver(driver, args, inputs):
    text = "".join(x.hex() + "\n" for x in inputs)
    res = subprocess.run([driver] + args, input=text.encode(), capture_output=True, check=True)
    return res.stdout.decode("latin-1").split("\n")[: len(inputs)]


def compare(name, inputs, expected, got, problems):
    for x, e, g in zip(inputs, expected, got):
        if e != g:
            problems.append("%s: input %r: model %s, proxy %s" % (name, x, e, g))


def main():
    driver = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    rnd = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    problems = []
    targets = [gen_target(rnd) for _ in range(count)]
    for mode in ("reject", "decode"):
        expected = [model_target_text(t, mode == "decode") for t in targets]
        got = [driver_target_text(g) for g in run_driver(driver, ["path", mode], targets)]
        compare("path/" + mode, targets, expected, got, problems)
        print("path/%s: %d targets, %d refused" % (mode, count, expected.count("!")))
    bodies = [gen_chunked(rnd) for _ in range(count)]
    expected = [model_chunked(b) for b in bodies]
    compare("chunked", bodies, expected, run_driver(driver, ["chunked"], bodies), problems)
    print("chunked: %d bodies, %d refused, %d incomplete" % (count, expected.count("!"), expected.count("?")))
    heads = [gen_head(rnd) for _ in range(count)]
    expected = [model_head(h) for h in heads]
    compare("head", heads, expected, run_driver(driver, ["head"], heads), problems)
    print("head: %d heads, %d passed on" % (count, sum(e.startswith("0") for e in expected)))
    for p in problems[:20]:
        print("DISAGREE " + p)
    print("%d disagreements" % len(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
