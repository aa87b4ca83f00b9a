/*
 * HTTP/2 <-> HTTP/1.1 message mapping: the request head and trailers an
 * HTTP/2 stream is sent with over HTTP/1.1, and the HTTP/2 response head
 * and trailers made from what an HTTP/1.1 upstream answered
 * (outrider/http2_h1.h has the rules).
 *
 * Every byte written into an HTTP/1.1 head is checked here again, even
 * though the HTTP/2 side refused most of it already: a name or value that
 * could end a line or a field never reaches the upstream. A head is built
 * in a scratch buffer and appended only once it is whole.
 */
#include "outrider/http2_h1.h"
#include "outrider/http_chars.h"
#include "outrider/http_path.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_is(const char *name, size_t len, const char *lower)
{
    return len == strlen(lower) && memcmp(name, lower, len) == 0;
}

bool or_h2_field_dropped(const char *name, size_t len)
{
    return name_is(name, len, "x-forwarded-client-cert") || name_is(name, len, OR_HOP_ORIG_PROTO);
}

bool or_h2_trailer_dropped(const char *name, size_t len)
{
    static const char *const names[] = {"content-length", "host", "te", "trailer",
                                        "content-type", "content-encoding", "authorization",
                                        "proxy-authorization", "cookie", "set-cookie"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (name_is(name, len, names[i]))
            return true;
    return or_h2_field_dropped(name, len);
}

/* ---- checks at serialisation ---- */

static bool is_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!or_http_is_tchar((unsigned char)s[i]))
            return false;
    return len > 0;
}

/* A request target: visible ASCII only (no space, no control, no DEL). */
static bool is_target(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
            return false;
    return len > 0;
}

/* A regular field that may be written as `name: value`. */
static or_h2_check field_ok(const char *name, size_t name_len, const char *value,
                            size_t value_len)
{
    if (name_len == 0 || name[0] == ':')
        return OR_H2_BAD_NAME;
    return or_h2_field_check(name, name_len, value, value_len);
}

/* ---- the request ---- */

/* Fields written from elsewhere, or not at all. */
static bool skipped(const char *name, size_t len)
{
    return name_is(name, len, "host") || name_is(name, len, "te") ||
           name_is(name, len, "content-length") || name_is(name, len, "cookie") ||
           or_h2_field_dropped(name, len);
}

static or_h2_check host_line(or_buf *b, const or_h2_request *rq, const char *default_host)
{
    const char *host = default_host;
    size_t len = strlen(default_host);
    if (rq->have_authority && rq->authority.len > 0) {
        host = rq->authority.data;
        len = rq->authority.len;
    } else if (rq->host >= 0) {
        host = or_h2_field_value(&rq->fields, (size_t)rq->host);
        len = rq->fields.v[rq->host].value_len;
    }
    if (!or_http_host_valid(host, len))
        return OR_H2_BAD_HOST;
    return or_http_field_line(b, "host", 4, host, len) == 0 ? OR_H2_OK : OR_H2_NO_MEMORY;
}

/* The cookie fields, joined by "; " into one line. */
static or_h2_check cookie_line(or_buf *b, const or_h2_fields *f)
{
    bool first = true;
    int r = 0;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = or_h2_field_name(f, i);
        if (!name_is(name, f->v[i].name_len, "cookie"))
            continue;
        const char *value = or_h2_field_value(f, i);
        or_h2_check chk = field_ok(name, f->v[i].name_len, value, f->v[i].value_len);
        if (chk != OR_H2_OK)
            return chk;
        r |= or_buf_append(b, first ? "cookie: " : "; ", first ? 8 : 2);
        r |= or_buf_append(b, value, f->v[i].value_len);
        first = false;
    }
    if (!first)
        r |= or_buf_append(b, "\r\n", 2);
    return r == 0 ? OR_H2_OK : OR_H2_NO_MEMORY;
}

typedef enum { KEEP_ALL, SKIP_HEAD, SKIP_TRAILER } field_filter;

static bool filtered(field_filter filter, const char *name, size_t len)
{
    if (filter == SKIP_HEAD)
        return skipped(name, len);
    return filter == SKIP_TRAILER && or_h2_trailer_dropped(name, len);
}

/* Every field of `f` that the filter keeps. */
static or_h2_check field_lines(or_buf *b, const or_h2_fields *f, field_filter filter)
{
    for (size_t i = 0; i < f->n; i++) {
        const char *name = or_h2_field_name(f, i), *value = or_h2_field_value(f, i);
        size_t name_len = f->v[i].name_len, value_len = f->v[i].value_len;
        if (filtered(filter, name, name_len))
            continue;
        or_h2_check chk = field_ok(name, name_len, value, value_len);
        if (chk != OR_H2_OK)
            return chk;
        if (or_http_field_line(b, name, name_len, value, value_len) != 0)
            return OR_H2_NO_MEMORY;
    }
    return OR_H2_OK;
}

static or_h2_check framing_lines(or_buf *b, const or_h2_request *rq, or_h2_h1_body body)
{
    int r = 0;
    if (body == OR_H2_H1_BODY_LENGTH) {
        if (rq->content_length < 0)
            return OR_H2_BAD_CONTENT_LENGTH;
        r = or_buf_append_str(b, "content-length: ");
        r |= or_buf_append_uint(b, (uint64_t)rq->content_length);
        r |= or_buf_append(b, "\r\n", 2);
    } else if (body == OR_H2_H1_BODY_CHUNKED) {
        r = or_buf_append_str(b, "transfer-encoding: chunked\r\n");
    }
    r |= or_buf_append(b, "\r\n", 2);
    return r == 0 ? OR_H2_OK : OR_H2_NO_MEMORY;
}

static or_h2_check build_request(or_buf *b, const or_h2_request *rq, const char *target,
                                 size_t target_len, const or_h2_fields *added,
                                 const char *default_host, or_h2_h1_body body)
{
    if (!is_token(rq->method.data, rq->method.len))
        return OR_H2_BAD_VALUE;
    if (!is_target(target, target_len))
        return OR_H2_BAD_VALUE;
    int r = or_buf_append(b, rq->method.data, rq->method.len);
    r |= or_buf_append(b, " ", 1);
    r |= or_buf_append(b, target, target_len);
    r |= or_buf_append(b, " HTTP/1.1\r\n", 11);
    if (r != 0)
        return OR_H2_NO_MEMORY;
    or_h2_check chk = host_line(b, rq, default_host);
    if (chk == OR_H2_OK)
        chk = field_lines(b, &rq->fields, SKIP_HEAD);
    if (chk == OR_H2_OK)
        chk = cookie_line(b, &rq->fields);
    if (chk == OR_H2_OK && added)
        chk = field_lines(b, added, KEEP_ALL);
    if (chk == OR_H2_OK)
        chk = framing_lines(b, rq, body);
    return chk;
}

or_h2_check or_h2_h1_request_head(or_buf *out, const or_h2_request *rq, const char *target,
                                  size_t target_len, const or_h2_fields *added,
                                  const char *default_host, or_h2_h1_body body)
{
    or_buf b = {0};
    or_h2_check chk = build_request(&b, rq, target, target_len, added, default_host, body);
    if (chk == OR_H2_OK && or_buf_append(out, b.data, b.len) != 0)
        chk = OR_H2_NO_MEMORY;
    or_buf_free(&b);
    return chk;
}

or_h2_check or_h2_h1_trailers(or_buf *out, const or_h2_fields *trailers)
{
    or_buf b = {0};
    or_h2_check chk = or_buf_append(&b, "0\r\n", 3) == 0 ? OR_H2_OK : OR_H2_NO_MEMORY;
    if (chk == OR_H2_OK)
        chk = field_lines(&b, trailers, SKIP_TRAILER);
    if (chk == OR_H2_OK && or_buf_append(&b, "\r\n", 2) != 0)
        chk = OR_H2_NO_MEMORY;
    if (chk == OR_H2_OK && or_buf_append(out, b.data, b.len) != 0)
        chk = OR_H2_NO_MEMORY;
    or_buf_free(&b);
    return chk;
}

/* ---- HTTP/1.1 to HTTP/2 ---- */

/* A field of the HTTP/1.1 head that goes into the HTTP/2 block. */
static bool forwarded(const or_http_head *h, const or_http_header *f)
{
    return !or_http_is_hop_by_hop(h, f) && !or_http_name_is(f->name, f->name_len, "host") &&
           !or_http_name_is(f->name, f->name_len, "expect");
}

/* A field value without the whitespace around it: HTTP/1.1 allows it (RFC
 * 9112 5.1), HTTP/2 does not (RFC 9113 8.2.1). Heads come trimmed from
 * http_head.c; trailer lines, read here, do not. */
static void trim(const char **v, size_t *len)
{
    while (*len > 0 && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*len)--;
    }
    while (*len > 0 && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
        (*len)--;
}

static or_h2_check add_h1_field(or_h2_request *r, or_buf *name, const or_http_header *f)
{
    name->len = 0;
    if (or_buf_append(name, f->name, f->name_len) != 0)
        return OR_H2_NO_MEMORY;
    for (size_t k = 0; k < name->len; k++)
        if (name->data[k] >= 'A' && name->data[k] <= 'Z')
            name->data[k] = (char)(name->data[k] - 'A' + 'a');
    return or_h2_request_field(r, name->data, name->len, f->value ? f->value : "", f->value_len);
}

or_h2_check or_h2_request_from_h1(or_h2_request *r, const or_http_head *h, const char *method,
                                  const char *target, size_t target_len, const char *authority,
                                  size_t authority_len)
{
    or_h2_check chk = or_h2_request_field(r, ":method", 7, method, strlen(method));
    if (chk == OR_H2_OK)
        chk = or_h2_request_field(r, ":scheme", 7, "http", 4);
    if (chk == OR_H2_OK)
        chk = or_h2_request_field(r, ":authority", 10, authority, authority_len);
    if (chk == OR_H2_OK)
        chk = or_h2_request_field(r, ":path", 5, target, target_len);
    or_buf name = {0};
    for (size_t i = 0; i < h->nheaders && chk == OR_H2_OK; i++)
        if (forwarded(h, &h->headers[i]))
            chk = add_h1_field(r, &name, &h->headers[i]);
    or_buf_free(&name);
    return chk == OR_H2_OK ? or_h2_request_done(r) : chk;
}

/* ---- the response ---- */

/* Lower-cases `name` into `out` (at most `cap` bytes); false when it is
 * longer. */
static bool lower(const char *name, size_t len, char *out, size_t cap)
{
    if (len > cap)
        return false;
    for (size_t i = 0; i < len; i++)
        out[i] = name[i] >= 'A' && name[i] <= 'Z' ? (char)(name[i] - 'A' + 'a') : name[i];
    return true;
}

/* Adds one field, lower-cased, after the HTTP/2 checks. */
static or_h2_check add_field(or_h2_fields *out, const char *name, size_t name_len,
                             const char *value, size_t value_len)
{
    char lname[256];
    if (!lower(name, name_len, lname, sizeof lname))
        return OR_H2_BAD_NAME;
    or_h2_check chk = field_ok(lname, name_len, value, value_len);
    if (chk != OR_H2_OK)
        return chk;
    return or_h2_fields_add(out, lname, name_len, value, value_len) == 0 ? OR_H2_OK
                                                                          : OR_H2_NO_MEMORY;
}

static bool response_keeps(const or_http_head *h, const or_http_header *hdr)
{
    if (or_http_name_is(hdr->name, hdr->name_len, "trailer"))
        return true; /* hop-by-hop in HTTP/1.1 only: HTTP/2 keeps it */
    if (or_http_is_hop_by_hop(h, hdr))
        return false;
    bool no_length = h->chunked || h->status < 200 || h->status == 204;
    return !(no_length && or_http_name_is(hdr->name, hdr->name_len, "content-length"));
}

or_h2_check or_h2_h1_response_head(const or_http_head *h, or_h2_fields *out)
{
    char status[20];
    if (h->status < 100 || h->status > 999)
        return OR_H2_BAD_VALUE;
    or_uint_text((uint64_t)h->status, 3, status);
    if (or_h2_fields_add(out, ":status", 7, status, 3) != 0)
        return OR_H2_NO_MEMORY;
    for (size_t i = 0; i < h->nheaders; i++) {
        const or_http_header *hdr = &h->headers[i];
        if (!response_keeps(h, hdr))
            continue;
        or_h2_check chk = add_field(out, hdr->name, hdr->name_len, hdr->value ? hdr->value : "",
                                    hdr->value_len);
        if (chk != OR_H2_OK)
            return chk;
    }
    return OR_H2_OK;
}

or_h2_check or_h2_h1_parse_trailers(const char *raw, size_t len, or_h2_fields *out)
{
    const char *p = raw, *end = raw + len;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *stop = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(stop - p));
        size_t vlen = colon ? (size_t)(stop - colon - 1) : 0;
        if (vlen > 0 && colon[vlen] == '\r')
            vlen--;
        char lname[256];
        size_t nlen = colon ? (size_t)(colon - p) : 0;
        if (colon && lower(p, nlen, lname, sizeof lname) && !or_h2_trailer_dropped(lname, nlen)) {
            const char *value = colon + 1;
            trim(&value, &vlen);
            or_h2_check chk = add_field(out, lname, nlen, value, vlen);
            if (chk == OR_H2_NO_MEMORY)
                return chk; /* a field HTTP/2 cannot carry is left out */
        }
        p = eol ? eol + 1 : end;
    }
    return OR_H2_OK;
}
