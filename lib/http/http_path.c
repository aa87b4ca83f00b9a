/*
 * http_path: normalising a request target (the rules are in http_path.h).
 *
 * The same request target must mean the same resource to the policy and to
 * the application, or a path rule can be walked around: "/api/../admin"
 * passes an "/api/ prefix" allow and an app resolves it to "/admin". So the
 * proxy decides what the path is, matches its policies on that, and forwards
 * exactly that to the application.
 *
 * Normalising runs in two passes over the output buffer. The first copies
 * the path byte by byte into canonical form: unreserved escapes decoded,
 * other escapes upper-cased, '\' and (when allowed) encoded slashes turned
 * into '/', and bytes that may not appear in a path escaped. After it, a
 * '.' or '/' in the buffer is a real one, so the second pass can work on
 * segments: it compacts the buffer in place, dropping empty segments (runs
 * of '/') and "." segments and letting ".." take back the segment before
 * it. Empty segments are dropped before ".." is applied, as nginx and most
 * servers resolve "/a//../b" (to "/b"). The query is copied after that, as
 * it came.
 */
#include "outrider/http_path.h"

#include "outrider/http_chars.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* pchar (RFC 3986 3.3) less '%', plus '/': what may stand unescaped
 * (unreserved, sub-delims, ':', '@', '/'). */
static bool may_stand(unsigned char c)
{
    static const uint64_t stand[2] = {0x2fffffd200000000, 0x47fffffe87ffffff};
    return or_http_char_in(stand, c);
}

static int put_escape(or_buf *out, unsigned char c)
{
    static const char hex[] = "0123456789ABCDEF";
    char e[3] = {'%', hex[c >> 4], hex[c & 15]};
    return or_buf_append(out, e, 3);
}

/* Pass one: the path in canonical bytes. */
static or_path_status canonical_bytes(const char *p, size_t len, or_escaped_slashes slashes,
                                      or_buf *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        int r;
        if (c == '%') {
            int hi = i + 2 < len ? or_http_hex_value(p[i + 1]) : -1;
            int lo = i + 2 < len ? or_http_hex_value(p[i + 2]) : -1;
            if (hi < 0 || lo < 0)
                return OR_PATH_BAD_ESCAPE;
            unsigned char d = (unsigned char)(hi << 4 | lo);
            i += 2;
            if (d == '/' || d == '\\') {
                if (slashes != OR_SLASHES_DECODE)
                    return OR_PATH_ESCAPED_SLASH;
                r = or_buf_append(out, "/", 1);
            } else if (is_unreserved(d)) {
                r = or_buf_append(out, &d, 1);
            } else {
                r = put_escape(out, d);
            }
        } else if (c == '\\') {
            r = or_buf_append(out, "/", 1);
        } else if (may_stand(c)) {
            r = or_buf_append(out, &c, 1);
        } else {
            r = put_escape(out, c);
        }
        if (r != 0)
            return OR_PATH_NO_MEMORY;
    }
    return OR_PATH_OK;
}

/* Pass two: drops empty and "." segments and applies "..", in place.
 * `b` starts with '/'. Returns the new length. */
static size_t resolve_segments(char *b, size_t len)
{
    size_t w = 0, r = 0;
    bool trailing = false;
    while (r < len) {
        while (r < len && b[r] == '/')
            r++;
        size_t start = r;
        while (r < len && b[r] != '/')
            r++;
        size_t seg = r - start;
        trailing = r == len && (seg == 0 || (seg == 1 && b[start] == '.') ||
                                (seg == 2 && b[start] == '.' && b[start + 1] == '.'));
        if (seg == 0 || (seg == 1 && b[start] == '.'))
            continue;
        if (seg == 2 && b[start] == '.' && b[start + 1] == '.') {
            while (w > 0 && b[w - 1] != '/')
                w--;
            if (w > 0)
                w--; /* the '/' before the segment taken back */
            continue;
        }
        b[w++] = '/';
        memmove(b + w, b + start, seg);
        w += seg;
    }
    if (w == 0 || trailing)
        b[w++] = '/';
    return w;
}

/* Splits off "scheme://authority" of an absolute-form target. */
static or_path_status absolute_form(const char **p, size_t *len, or_target *t)
{
    size_t skip;
    if (*len >= 7 && strncasecmp(*p, "http://", 7) == 0)
        skip = 7;
    else if (*len >= 8 && strncasecmp(*p, "https://", 8) == 0)
        skip = 8;
    else
        return OR_PATH_BAD_FORM;
    const char *a = *p + skip, *end = *p + *len, *e = a;
    while (e < end && *e != '/' && *e != '?')
        e++;
    if (e == a)
        return OR_PATH_BAD_FORM;
    if (memchr(a, '@', (size_t)(e - a)))
        return OR_PATH_USERINFO;
    t->authority = a;
    t->authority_len = (size_t)(e - a);
    *p = e;
    *len = (size_t)(end - e);
    return OR_PATH_OK;
}

or_path_status or_http_target_normalize(const char *in, size_t len, or_escaped_slashes slashes,
                                        or_buf *out, or_target *t)
{
    *t = (or_target){0};
    out->len = 0;
    if (len == 1 && in[0] == '*') {
        t->path_len = 1;
        return or_buf_append(out, "*", 1) == 0 ? OR_PATH_OK : OR_PATH_NO_MEMORY;
    }
    if (memchr(in, '#', len))
        return OR_PATH_FRAGMENT;
    if (len == 0 || in[0] != '/') {
        or_path_status st = absolute_form(&in, &len, t);
        if (st != OR_PATH_OK)
            return st;
    }
    const char *q = memchr(in, '?', len);
    size_t path_len = q ? (size_t)(q - in) : len;
    if (or_buf_append(out, "/", 1) != 0)
        return OR_PATH_NO_MEMORY;
    or_path_status st = canonical_bytes(in, path_len, slashes, out);
    if (st != OR_PATH_OK)
        return st;
    out->len = resolve_segments(out->data, out->len);
    t->path_len = out->len;
    if (q && or_buf_append(out, q, len - path_len) != 0)
        return OR_PATH_NO_MEMORY;
    return OR_PATH_OK;
}

size_t or_http_host_len(const char *host, size_t len)
{
    const char *cut = len > 0 && host[0] == '[' ? memchr(host, ']', len) : memchr(host, ':', len);
    return cut ? (size_t)(cut - host) + (host[0] == '[') : len;
}

/* RFC 3986 3.2.2-3: an IP-literal of hex digits, ':' and '.', or a
 * reg-name of unreserved, pct-encoded and sub-delims characters; then ":"
 * and digits. */
static bool host_chars(const char *s, size_t len, const uint64_t allowed[2])
{
    for (size_t i = 0; i < len; i++)
        if (!or_http_char_in(allowed, (unsigned char)s[i]))
            return false;
    return len > 0;
}

bool or_http_host_valid(const char *s, size_t len)
{
    if (len == 0)
        return false;
    /* HEXDIG ':' '.'; unreserved, '%' and sub-delims; DIGIT */
    static const uint64_t ip_literal[2] = {0x07ff400000000000, 0x0000007e0000007e};
    static const uint64_t reg_name[2] = {0x2bff7ff200000000, 0x47fffffe87fffffe};
    static const uint64_t digits[2] = {0x03ff000000000000, 0};
    size_t host = or_http_host_len(s, len);
    bool hosts = s[0] == '[' ? host > 2 && s[host - 1] == ']' &&
                                   host_chars(s + 1, host - 2, ip_literal)
                             : host_chars(s, host, reg_name);
    if (!hosts || (host < len && s[host] != ':'))
        return false;
    return host + 1 >= len || host_chars(s + host + 1, len - host - 1, digits);
}

const char *or_http_path_status_text(or_path_status st)
{
    switch (st) {
    case OR_PATH_OK: return "ok";
    case OR_PATH_BAD_ESCAPE: return "a '%' in the path is not followed by two hex digits";
    case OR_PATH_ESCAPED_SLASH: return "an encoded '/' or '\\' (%2F, %5C) in the path";
    case OR_PATH_BAD_FORM: return "the request target is not origin-form, absolute-form or '*'";
    case OR_PATH_USERINFO: return "userinfo in an absolute-form request target";
    case OR_PATH_FRAGMENT: return "a fragment ('#') in the request target";
    case OR_PATH_NO_MEMORY: return "out of memory";
    }
    return "unknown";
}
