/*
 * HTTP/2 header blocks: the checks a request must pass before it is
 * decided and forwarded, and the field lists the session keeps.
 *
 * nghttp2 checks much of this already (its HTTP messaging rules are on);
 * the proxy checks again, on what it forwards, so that what reaches an
 * upstream in either protocol never depends on one library's reading: no
 * CR, LF or NUL in a value (they would split a header when the request
 * goes on as HTTP/1), no field that means something to a connection rather
 * than to a request, one content-length, and an :authority that names the
 * same host as any Host field.
 */
#include "outrider/http2.h"

#include <stdlib.h>
#include <string.h>

#include "outrider/http_chars.h"
#include "outrider/http_path.h"

const char *or_h2_check_text(or_h2_check c)
{
    switch (c) {
    case OR_H2_OK: return "ok";
    case OR_H2_BAD_NAME: return "a header name that is not a lower-case token";
    case OR_H2_BAD_VALUE: return "a control character (CR, LF, NUL) in a header value";
    case OR_H2_CONNECTION_HEADER: return "a connection-specific header";
    case OR_H2_BAD_TE: return "te other than \"trailers\"";
    case OR_H2_PSEUDO_AFTER_REGULAR: return "a pseudo-header after a regular header";
    case OR_H2_DUPLICATE_PSEUDO: return "a pseudo-header twice";
    case OR_H2_UNKNOWN_PSEUDO: return "an unknown pseudo-header";
    case OR_H2_PSEUDO_IN_TRAILERS: return "a pseudo-header in trailers";
    case OR_H2_MISSING_PSEUDO: return "no :method, :scheme or :path";
    case OR_H2_CONNECT: return "CONNECT is not proxied";
    case OR_H2_HOST_MISMATCH: return ":authority and host differ";
    case OR_H2_BAD_HOST: return ":authority or host is not host[:port]";
    case OR_H2_BAD_CONTENT_LENGTH: return "an invalid content-length";
    case OR_H2_BODY_LENGTH: return "DATA does not match content-length";
    case OR_H2_TOO_LARGE: return "header block too large";
    case OR_H2_NO_MEMORY: return "out of memory";
    }
    return "unknown";
}

/* ---- field lists ---- */

int or_h2_fields_add(or_h2_fields *f, const char *name, size_t name_len, const char *value,
                     size_t value_len)
{
    if (name_len > UINT32_MAX || value_len > UINT32_MAX)
        return -1;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        or_h2_field *v = realloc(f->v, cap * sizeof *v);
        if (!v)
            return -1;
        f->v = v;
        f->cap = cap;
    }
    size_t off = f->bytes.len;
    if (or_buf_append(&f->bytes, name, name_len) != 0 || or_buf_append(&f->bytes, "", 1) != 0 ||
        or_buf_append(&f->bytes, value, value_len) != 0 || or_buf_append(&f->bytes, "", 1) != 0) {
        f->bytes.len = off;
        return -1;
    }
    f->v[f->n++] = (or_h2_field){
        .name_off = (uint32_t)off,
        .name_len = (uint32_t)name_len,
        .value_off = (uint32_t)(off + name_len + 1),
        .value_len = (uint32_t)value_len,
    };
    f->size += name_len + value_len + 32;
    return 0;
}

long or_h2_fields_find(const or_h2_fields *f, const char *lower, size_t len)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->v[i].name_len == len && memcmp(or_h2_field_name(f, i), lower, len) == 0)
            return (long)i;
    return -1;
}

void or_h2_fields_reset(or_h2_fields *f)
{
    f->bytes.len = 0;
    f->n = 0;
    f->size = 0;
}

void or_h2_fields_reuse(or_h2_fields *f, size_t keep)
{
    if (f->bytes.cap + f->cap * sizeof *f->v > keep)
        or_h2_fields_free(f);
    or_h2_fields_reset(f);
}

void or_h2_fields_free(or_h2_fields *f)
{
    or_buf_free(&f->bytes);
    free(f->v);
    *f = (or_h2_fields){0};
}

/* ---- one field ---- */

static bool name_is(const char *name, size_t len, const char *lower)
{
    return len == strlen(lower) && memcmp(name, lower, len) == 0;
}

static bool is_connection_specific(const char *name, size_t len)
{
    return name_is(name, len, "connection") || name_is(name, len, "keep-alive") ||
           name_is(name, len, "proxy-connection") || name_is(name, len, "transfer-encoding") ||
           name_is(name, len, "upgrade");
}

or_h2_check or_h2_field_check(const char *name, size_t name_len, const char *value,
                              size_t value_len)
{
    size_t start = name_len > 0 && name[0] == ':' ? 1 : 0;
    bool name_ok = name_len > start;
    for (size_t i = start; i < name_len; i++)
        name_ok &= or_http_is_tchar_lower((unsigned char)name[i]);
    if (!name_ok)
        return OR_H2_BAD_NAME;
    unsigned bad = 0; /* a control character other than HTAB, or DEL; no branch per byte */
    for (size_t i = 0; i < value_len; i++) {
        unsigned char ch = (unsigned char)value[i];
        bad |= (unsigned)((ch < 0x20) & (ch != '\t')) | (unsigned)(ch == 0x7f);
    }
    if (bad)
        return OR_H2_BAD_VALUE;
    if (is_connection_specific(name, name_len))
        return OR_H2_CONNECTION_HEADER;
    if (name_is(name, name_len, "te") && !(value_len == 8 && memcmp(value, "trailers", 8) == 0))
        return OR_H2_BAD_TE;
    return OR_H2_OK;
}

or_h2_check or_h2_trailer_field(const char *name, size_t name_len, const char *value,
                                size_t value_len)
{
    if (name_len > 0 && name[0] == ':')
        return OR_H2_PSEUDO_IN_TRAILERS;
    return or_h2_field_check(name, name_len, value, value_len);
}

/* ---- a request block ---- */

void or_h2_request_init(or_h2_request *r, size_t max_size)
{
    *r = (or_h2_request){.content_length = -1, .host = -1, .max_size = max_size};
}

void or_h2_request_reuse(or_h2_request *r, size_t max_size, size_t keep)
{
    or_h2_request kept = {.method = r->method, .scheme = r->scheme, .authority = r->authority,
                          .path = r->path, .fields = r->fields};
    or_buf_reuse(&kept.method, keep);
    or_buf_reuse(&kept.scheme, keep);
    or_buf_reuse(&kept.authority, keep);
    or_buf_reuse(&kept.path, keep);
    or_h2_fields_reuse(&kept.fields, keep);
    or_h2_request_init(r, max_size);
    r->method = kept.method;
    r->scheme = kept.scheme;
    r->authority = kept.authority;
    r->path = kept.path;
    r->fields = kept.fields;
}

void or_h2_request_free(or_h2_request *r)
{
    or_buf_free(&r->method);
    or_buf_free(&r->scheme);
    or_buf_free(&r->authority);
    or_buf_free(&r->path);
    or_h2_fields_free(&r->fields);
}

static or_h2_check set_pseudo(or_buf *b, bool *have, const char *value, size_t len)
{
    if (*have)
        return OR_H2_DUPLICATE_PSEUDO;
    *have = true;
    return or_buf_append(b, value, len) == 0 ? OR_H2_OK : OR_H2_NO_MEMORY;
}

static or_h2_check take_pseudo(or_h2_request *r, const char *name, size_t len, const char *value,
                               size_t value_len)
{
    if (r->saw_regular)
        return OR_H2_PSEUDO_AFTER_REGULAR;
    if (name_is(name, len, ":method"))
        return set_pseudo(&r->method, &r->have_method, value, value_len);
    if (name_is(name, len, ":scheme"))
        return set_pseudo(&r->scheme, &r->have_scheme, value, value_len);
    if (name_is(name, len, ":authority"))
        return set_pseudo(&r->authority, &r->have_authority, value, value_len);
    if (name_is(name, len, ":path"))
        return set_pseudo(&r->path, &r->have_path, value, value_len);
    if (name_is(name, len, ":protocol"))
        return OR_H2_CONNECT; /* extended CONNECT (RFC 8441) */
    return OR_H2_UNKNOWN_PSEUDO;
}

/* One or more decimal digits, no sign, no spaces; -1 otherwise. */
static int64_t parse_length(const char *v, size_t len)
{
    if (len == 0 || len > 18)
        return -1;
    int64_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

static or_h2_check take_regular(or_h2_request *r, const char *name, size_t len, const char *value,
                                size_t value_len)
{
    r->saw_regular = true;
    if (name_is(name, len, "content-length")) {
        int64_t n = parse_length(value, value_len);
        if (n < 0 || (r->content_length >= 0 && r->content_length != n))
            return OR_H2_BAD_CONTENT_LENGTH;
        r->content_length = n;
    }
    if (name_is(name, len, "host")) {
        if (r->host >= 0)
            return OR_H2_HOST_MISMATCH; /* two Host fields */
        r->host = (long)r->fields.n;
    }
    if (name_is(name, len, "content-type") && value_len >= 16 &&
        strncasecmp(value, "application/grpc", 16) == 0)
        r->grpc = true;
    return or_h2_fields_add(&r->fields, name, len, value, value_len) == 0 ? OR_H2_OK
                                                                          : OR_H2_NO_MEMORY;
}

or_h2_check or_h2_request_field(or_h2_request *r, const char *name, size_t name_len,
                                const char *value, size_t value_len)
{
    or_h2_check c = or_h2_field_check(name, name_len, value, value_len);
    if (c != OR_H2_OK)
        return c;
    size_t size = r->fields.size + r->method.len + r->scheme.len + r->authority.len +
                  r->path.len + name_len + value_len + 32;
    if (r->max_size > 0 && size > r->max_size)
        return OR_H2_TOO_LARGE;
    if (name[0] == ':')
        return take_pseudo(r, name, name_len, value, value_len);
    return take_regular(r, name, name_len, value, value_len);
}

static bool same_host(const char *a, size_t alen, const char *b, size_t blen)
{
    alen = or_http_host_len(a, alen);
    blen = or_http_host_len(b, blen);
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

or_h2_check or_h2_request_done(const or_h2_request *r)
{
    if (!r->have_method)
        return OR_H2_MISSING_PSEUDO;
    if (r->method.len == 7 && memcmp(r->method.data, "CONNECT", 7) == 0)
        return OR_H2_CONNECT;
    if (!r->have_scheme || !r->have_path || r->path.len == 0 || r->scheme.len == 0)
        return OR_H2_MISSING_PSEUDO;
    if ((r->have_authority && !or_http_host_valid(r->authority.data, r->authority.len)) ||
        (r->host >= 0 && !or_http_host_valid(or_h2_field_value(&r->fields, (size_t)r->host),
                                             r->fields.v[r->host].value_len)))
        return OR_H2_BAD_HOST;
    if (r->have_authority && r->host >= 0 &&
        !same_host(r->authority.data, r->authority.len, or_h2_field_value(&r->fields, (size_t)r->host),
                   r->fields.v[r->host].value_len))
        return OR_H2_HOST_MISMATCH;
    return OR_H2_OK;
}

or_h2_check or_h2_body_check(int64_t content_length, uint64_t received, bool end)
{
    if (content_length < 0)
        return OR_H2_OK;
    if (received > (uint64_t)content_length || (end && received != (uint64_t)content_length))
        return OR_H2_BODY_LENGTH;
    return OR_H2_OK;
}

const char *or_h2_request_host(const or_h2_request *r, size_t *len)
{
    if (r->have_authority && r->authority.len > 0) {
        *len = or_http_host_len(r->authority.data, r->authority.len);
        return r->authority.data;
    }
    if (r->host < 0)
        return NULL;
    const char *v = or_h2_field_value(&r->fields, (size_t)r->host);
    *len = or_http_host_len(v, r->fields.v[r->host].value_len);
    return v;
}

int64_t or_h2_grpc_timeout_ms(const char *v, size_t len)
{
    int64_t n = len >= 2 && len <= 9 ? parse_length(v, len - 1) : -1;
    if (n < 0)
        return -1;
    switch (v[len - 1]) {
    case 'H': return n * 3600000;
    case 'M': return n * 60000;
    case 'S': return n * 1000;
    case 'm': return n;
    case 'u': return (n + 999) / 1000;
    case 'n': return (n + 999999) / 1000000;
    default: return -1;
    }
}
