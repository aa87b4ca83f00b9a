/*
 * HTTP/1.x message heads.
 *
 * A head is collected into its own buffer until the blank line that ends it,
 * so that it can be checked byte-exact before anything is parsed: http-parser
 * accepts bare LF line ends, bare CR and obs-fold continuation lines, which
 * are exactly the disagreements between parsers that request smuggling
 * exploits, so a proxy rejects them. The checked head is then run through
 * http-parser, whose callbacks record slices of the buffer (method, target,
 * headers) and the framing it derived (Content-Length, chunked, keep-alive,
 * upgrade). The parser pauses at the end of a message, so the caller can
 * keep whatever follows (a pipelined request) for later.
 */
#include "http_head.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void or_http_head_reset(or_http_head *h)
{
    or_buf raw = h->raw;
    memset(h, 0, offsetof(or_http_head, headers));
    h->raw = raw;
    h->raw.len = 0;
}

void or_http_head_free(or_http_head *h)
{
    or_buf_free(&h->raw);
    free(h->headers);
    memset(h, 0, sizeof *h);
}

/* The offset just past the blank line, or 0 if there is none yet. */
static size_t find_end(const or_http_head *h)
{
    const char *p = h->raw.data, *end = p + h->raw.len;
    const char *lf = p + (h->scanned > 2 ? h->scanned - 2 : 0);
    while (lf < end && (lf = memchr(lf, '\n', (size_t)(end - lf))) != NULL) {
        if (lf + 1 < end && lf[1] == '\n')
            return (size_t)(lf + 2 - p);
        if (lf + 2 < end && lf[1] == '\r' && lf[2] == '\n')
            return (size_t)(lf + 3 - p);
        lf++;
    }
    return 0;
}

or_head_status or_http_head_collect(or_http_head *h, const char *data, size_t len, size_t limit,
                                    size_t *used)
{
    size_t skipped = 0;
    while (h->raw.len == 0 && skipped < len && (data[skipped] == '\r' || data[skipped] == '\n'))
        skipped++; /* empty lines before a request line are ignored (RFC 9112 2.2) */
    data += skipped;
    len -= skipped;
    size_t room = limit > h->raw.len ? limit - h->raw.len : 0;
    size_t take = len < room ? len : room;
    size_t before = h->raw.len;
    if (or_buf_append(&h->raw, data, take) != 0)
        return OR_HEAD_TOO_BIG;
    size_t end = find_end(h);
    h->scanned = h->raw.len;
    if (end == 0) {
        *used = skipped + take;
        return h->raw.len >= limit ? OR_HEAD_TOO_BIG : OR_HEAD_MORE;
    }
    h->raw.len = end;
    h->complete = true;
    *used = skipped + (end - before);
    return OR_HEAD_DONE;
}

int or_http_head_check(const or_http_head *h, bool is_request, const char **why)
{
    const char *nl = memchr(h->raw.data, '\n', h->raw.len);
    if (is_request && nl && (size_t)(nl - h->raw.data) > OR_HTTP_MAX_REQUEST_LINE) {
        *why = "request line too long";
        return 414;
    }
    const char *p = h->raw.data, *end = p + h->raw.len;
    if (memchr(p, '\0', h->raw.len)) {
        *why = "NUL byte in the head";
        return 400;
    }
    for (const char *cr = memchr(p, '\r', h->raw.len); cr;
         cr = memchr(cr + 1, '\r', (size_t)(end - cr - 1))) {
        if (cr + 1 == end || cr[1] != '\n') {
            *why = "bare CR in the head";
            return 400;
        }
    }
    for (const char *lf = nl; lf; lf = memchr(lf + 1, '\n', (size_t)(end - lf - 1))) {
        if (lf == p || lf[-1] != '\r') {
            *why = "bare LF in the head";
            return 400;
        }
        if (lf + 1 < end && (lf[1] == ' ' || lf[1] == '\t')) {
            *why = "obs-fold (a header line starting with whitespace)";
            return 400;
        }
    }
    return 0;
}

/* ---- parsing ---- */

static or_http_head *head_of(http_parser *p) { return p->data; }

static int on_url(http_parser *p, const char *at, size_t len)
{
    or_http_head *h = head_of(p);
    if (!h->url)
        h->url = at;
    h->url_len += len;
    return 0;
}

/* Room for one more header; the array starts small and doubles. */
static int grow_headers(or_http_head *h)
{
    if (h->nheaders < h->headers_cap)
        return 0;
    size_t cap = h->headers_cap ? h->headers_cap * 2 : 16;
    if (cap > OR_HTTP_MAX_HEADERS)
        cap = OR_HTTP_MAX_HEADERS;
    or_http_header *grown = realloc(h->headers, cap * sizeof *grown);
    if (!grown)
        return -1;
    h->headers = grown;
    h->headers_cap = cap;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    or_http_head *h = head_of(p);
    if (h->nheaders == OR_HTTP_MAX_HEADERS) {
        h->too_many_headers = true;
        return 0;
    }
    if (grow_headers(h) != 0)
        return -1; /* out of memory: the head is refused */
    if (or_http_name_is(at, len, "connection")) {
        if (h->connection_end == 0)
            h->connection_first = h->nheaders;
        h->connection_end = h->nheaders + 1;
    } else if (h->host_at == 0 && or_http_name_is(at, len, "host")) {
        h->host_at = h->nheaders + 1;
    }
    h->headers[h->nheaders++] = (or_http_header){.name = at, .name_len = len};
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    or_http_head *h = head_of(p);
    if (h->too_many_headers || h->nheaders == 0)
        return 0;
    or_http_header *hdr = &h->headers[h->nheaders - 1];
    if (!hdr->value)
        hdr->value = at;
    hdr->value_len += len;
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    or_http_head *h = head_of(p);
    h->major = p->http_major;
    h->minor = p->http_minor;
    h->status = (int)p->status_code;
    h->chunked = (p->flags & F_CHUNKED) != 0;
    h->has_transfer_encoding = p->uses_transfer_encoding;
    h->has_content_length = (p->flags & F_CONTENTLENGTH) != 0;
    h->content_length = h->has_content_length ? p->content_length : 0;
    h->keep_alive = http_should_keep_alive(p) != 0;
    h->upgrade = (p->flags & F_UPGRADE) != 0 && (p->flags & F_CONNECTION_UPGRADE) != 0;
    return h->skip_body ? 1 : 0;
}

static int on_message_complete(http_parser *p)
{
    head_of(p)->message_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static int on_status(http_parser *p, const char *at, size_t len)
{
    or_http_head *h = head_of(p);
    if (!h->reason)
        h->reason = at;
    h->reason_len += len;
    return 0;
}

static const http_parser_settings head_settings = {
    .on_url = on_url,
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_message_complete = on_message_complete,
};

int or_http_head_parse(or_http_head *h, http_parser *parser, const char **why)
{
    void *saved = parser->data;
    parser->data = h;
    size_t n = http_parser_execute(parser, &head_settings, h->raw.data, h->raw.len);
    parser->data = saved;
    enum http_errno err = HTTP_PARSER_ERRNO(parser);
    if (err != HPE_OK && err != HPE_PAUSED) {
        *why = http_errno_description(err);
        return -1;
    }
    if (err == HPE_OK && n != h->raw.len) {
        *why = "unexpected bytes after the head";
        return -1;
    }
    return 0;
}

/* ---- lookups ---- */

bool or_http_name_is(const char *name, size_t len, const char *lower)
{
    return strlen(lower) == len && strncasecmp(name, lower, len) == 0;
}

const or_http_header *or_http_head_find(const or_http_head *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->nheaders; i++)
        if (h->headers[i].name_len == len && strncasecmp(h->headers[i].name, name, len) == 0)
            return &h->headers[i];
    return NULL;
}

const or_http_header *or_http_head_host(const or_http_head *h)
{
    return h->host_at != 0 ? &h->headers[h->host_at - 1] : NULL;
}

static bool connection_names(const or_http_head *h, const or_http_header *hdr)
{
    for (size_t i = h->connection_first; i < h->connection_end; i++) {
        const or_http_header *c = &h->headers[i];
        if (!or_http_name_is(c->name, c->name_len, "connection"))
            continue;
        const char *p = c->value, *end = c->value + c->value_len;
        while (p < end) {
            while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
                p++;
            const char *tok = p;
            while (p < end && *p != ',' && *p != ' ' && *p != '\t')
                p++;
            if ((size_t)(p - tok) == hdr->name_len &&
                strncasecmp(tok, hdr->name, hdr->name_len) == 0)
                return true;
        }
    }
    return false;
}

bool or_http_is_hop_by_hop(const or_http_head *h, const or_http_header *hdr)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection", "te",
                                      "trailer", "transfer-encoding", "upgrade"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (or_http_name_is(hdr->name, hdr->name_len, hop[i]))
            return true;
    return connection_names(h, hdr);
}
