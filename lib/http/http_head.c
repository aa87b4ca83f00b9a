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
 *
 * or_http_msg, at the end, is a whole message (head and body) for the small
 * endpoints: the admin server, outrider-ca and the HTTP/1 client. This file
 * is the HTTP/1 kit's only user of http-parser.
 */
#include "outrider/http_head.h"
#include "outrider/http_path.h"

#include "outrider/http_chars.h"

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
    if (h->raw.len == 0) {
        *used = skipped;
        return OR_HEAD_MORE; /* only empty lines so far */
    }
    size_t end = find_end(h);
    h->scanned = h->raw.len;
    /* A request or status line starts with a token character: anything else
     * (a TLS ClientHello on a plaintext port, say) is handed over at once for
     * or_http_head_check to refuse, rather than waited on until a timeout. */
    if (end == 0 && !or_http_is_tchar((unsigned char)h->raw.data[0]))
        end = h->raw.len;
    if (end == 0) {
        *used = skipped + take;
        return h->raw.len >= limit ? OR_HEAD_TOO_BIG : OR_HEAD_MORE;
    }
    h->raw.len = end;
    h->complete = true;
    *used = skipped + (end - before);
    return OR_HEAD_DONE;
}

static size_t token_len(const char *p, const char *end)
{
    const char *t = p;
    while (t < end && or_http_is_tchar((unsigned char)*t))
        t++;
    return (size_t)(t - p);
}

/* Every line after the first is `token ":" ...`: no whitespace before the
 * colon (RFC 9112 5.1), no empty or non-token name. */
static int check_field_names(const char *p, const char *end, const char **why)
{
    const char *line = memchr(p, '\n', (size_t)(end - p));
    for (line = line ? line + 1 : end; line < end && *line != '\r';) {
        size_t n = token_len(line, end);
        if (n == 0 || line + n >= end || line[n] != ':') {
            *why = n > 0 && (line[n] == ' ' || line[n] == '\t')
                       ? "whitespace between a header name and its colon"
                       : "a header name that is empty or not a token";
            return 400;
        }
        const char *nl = memchr(line, '\n', (size_t)(end - line));
        line = nl ? nl + 1 : end;
    }
    return 0;
}

/* RFC 9112 3: method SP request-target SP HTTP-version CRLF, with single
 * spaces and nothing else; HTTP/0.9 (no version) is refused. */
static int check_request_line(const char *p, const char *end, const char **why)
{
    size_t m = token_len(p, end);
    const char *t = p + m;
    if (m == 0 || t >= end || *t != ' ') {
        *why = "the request line does not start with a method and one space";
        return 400;
    }
    const char *target = ++t;
    while (t < end && (unsigned char)*t > ' ' && *t != 0x7f)
        t++;
    if (t == target || end - t < 11 || *t != ' ' || memcmp(t + 1, "HTTP/", 5) != 0 ||
        t[6] < '0' || t[6] > '9' || t[7] != '.' || t[8] < '0' || t[8] > '9' || t[9] != '\r') {
        *why = "the request line is not `method SP target SP HTTP/x.y`";
        return 400;
    }
    if (t[6] != '1' || (t[8] != '0' && t[8] != '1')) {
        *why = "only HTTP/1.0 and HTTP/1.1 are spoken here";
        return 505;
    }
    return 0;
}

/* RFC 9112 4: HTTP/1.x SP 3DIGIT SP reason CRLF (the reason may be empty). */
static int check_status_line(const char *p, const char *end, const char **why)
{
    if (end - p < 14 || memcmp(p, "HTTP/1.", 7) != 0 || (p[7] != '0' && p[7] != '1') ||
        p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
        p[11] > '9' || (p[12] != ' ' && p[12] != '\r')) {
        *why = "the status line is not `HTTP/1.x SP 3DIGIT SP reason`";
        return 400;
    }
    return 0;
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
    int status = is_request ? check_request_line(p, end, why) : check_status_line(p, end, why);
    return status != 0 ? status : check_field_names(p, end, why);
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
    } else if (or_http_name_is(at, len, "host")) {
        if (h->host_at != 0)
            h->duplicate_host = true;
        else
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

/* http-parser skips the whitespace before a field value but keeps what
 * follows it, which is not part of the value either (RFC 9110 5.5): every
 * reader of a value, and what is forwarded, sees it without. */
static void trim_values(or_http_head *h)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        or_http_header *hdr = &h->headers[i];
        while (hdr->value_len > 0 &&
               (hdr->value[hdr->value_len - 1] == ' ' || hdr->value[hdr->value_len - 1] == '\t'))
            hdr->value_len--;
    }
}

static int on_headers_complete(http_parser *p)
{
    or_http_head *h = head_of(p);
    trim_values(h);
    h->headers_done = true;
    h->major = p->http_major;
    h->minor = p->http_minor;
    h->status = (int)p->status_code;
    h->chunked = (p->flags & F_CHUNKED) != 0;
    h->has_transfer_encoding = p->uses_transfer_encoding;
    h->has_content_length = (p->flags & F_CONTENTLENGTH) != 0;
    h->content_length = h->has_content_length ? p->content_length : 0;
    h->keep_alive = http_should_keep_alive(p) != 0;
    h->upgrade = (p->flags & F_UPGRADE) != 0 && (p->flags & F_CONNECTION_UPGRADE) != 0;
    /* 1xx, 204 and 304 have no body whatever their headers say (RFC 9110
     * 6.4.1); nor has the answer to a HEAD, which the caller marks. */
    bool bodiless = p->type == HTTP_RESPONSE &&
                    (h->status < 200 || h->status == 204 || h->status == 304);
    return h->skip_body || bodiless ? 1 : 0;
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
    if (!h->headers_done) {
        *why = "the head did not parse to its end";
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

/* Headers a Connection token never removes: the ones that frame or route
 * the message, and the ones the proxy guarantees to the application. A
 * token naming one of them is ignored (docs/security.md). */
static bool is_protected(const or_http_header *hdr)
{
    static const char *const kept[] = {"content-length", "host", "x-request-id",
                                       "x-forwarded-client-cert"};
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (or_http_name_is(hdr->name, hdr->name_len, kept[i]))
            return true;
    return false;
}

static bool connection_names(const or_http_head *h, const or_http_header *hdr)
{
    if (h->connection_end == 0 || is_protected(hdr))
        return false; /* most heads have no Connection header: nothing to compare */
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

/* The transfer codings, as the framing needs them: none, exactly "chunked"
 * in one header, or something this proxy cannot pass on unchanged. */
or_http_te or_http_head_te(const or_http_head *h)
{
    if (!h->has_transfer_encoding)
        return OR_TE_NONE;
    const or_http_header *te = NULL;
    for (size_t i = 0; i < h->nheaders; i++) {
        if (!or_http_name_is(h->headers[i].name, h->headers[i].name_len, "transfer-encoding"))
            continue;
        if (te)
            return h->chunked ? OR_TE_OTHER_CODINGS : OR_TE_NOT_CHUNKED;
        te = &h->headers[i];
    }
    if (!h->chunked)
        return OR_TE_NOT_CHUNKED;
    return te && te->value_len == 7 && strncasecmp(te->value, "chunked", 7) == 0
               ? OR_TE_CHUNKED
               : OR_TE_OTHER_CODINGS;
}

/* The framing rules of RFC 9112 6 that a proxy enforces on a request; an
 * origin server (need_host false) lets an HTTP/1.1 request without Host by. */
static int check_request_framing(const or_http_head *h, bool need_host, const char **why)
{
    if (h->duplicate_host) {
        *why = "more than one Host header";
        return 400;
    }
    or_http_te te = or_http_head_te(h);
    if (te == OR_TE_NOT_CHUNKED || (te != OR_TE_NONE && h->has_content_length)) {
        *why = "Transfer-Encoding with Content-Length, or not ending in chunked";
        return 400;
    }
    if (te == OR_TE_OTHER_CODINGS) {
        *why = "a transfer coding other than chunked";
        return 501;
    }
    const or_http_header *host = or_http_head_host(h);
    if (need_host && h->major == 1 && h->minor == 1 && !host) {
        *why = "HTTP/1.1 request without Host";
        return 400;
    }
    if (host && host->value_len > 0 && !or_http_host_valid(host->value, host->value_len)) {
        *why = "a Host that is not host[:port] (userinfo, a path, spaces or other bytes)";
        return 400;
    }
    return 0;
}

int or_http_head_vet_request(or_http_head *h, http_parser *parser, const char **why)
{
    int status = or_http_head_check(h, true, why);
    if (status != 0)
        return status;
    if (or_http_head_parse(h, parser, why) != 0)
        return 400;
    if (h->too_many_headers) {
        *why = "too many header fields";
        return 431;
    }
    if (parser->method == HTTP_CONNECT) {
        *why = "CONNECT is not supported";
        return 405;
    }
    return check_request_framing(h, true, why);
}

int or_http_head_vet_response(or_http_head *h, bool head_request, const char **why)
{
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    h->skip_body = head_request;
    if (or_http_head_check(h, false, why) != 0 || or_http_head_parse(h, &parser, why) != 0)
        return -1;
    if (h->too_many_headers) {
        *why = "too many header fields";
        return -1;
    }
    if (or_http_head_te(h) > OR_TE_CHUNKED) {
        *why = "a transfer coding other than chunked";
        return -1;
    }
    return 0;
}

/* ---- whole messages (or_http_msg) ---- */

static int on_msg_body(http_parser *p, const char *at, size_t len)
{
    or_http_msg *m = p->data;
    if (m->body_len + len > m->body_max) {
        m->state = OR_HTTP_MSG_TOO_LARGE;
        m->why = "body too large";
        http_parser_pause(p, 1);
        return 0;
    }
    char *grown = realloc(m->body, m->body_len + len + 1);
    if (!grown)
        return -1;
    m->body = grown;
    memcpy(m->body + m->body_len, at, len);
    m->body_len += len;
    m->body[m->body_len] = '\0';
    return 0;
}

static int on_msg_complete(http_parser *p)
{
    ((or_http_msg *)p->data)->state = OR_HTTP_MSG_COMPLETE;
    http_parser_pause(p, 1); /* nothing after this message is parsed */
    return 0;
}

static const http_parser_settings msg_body_settings = {
    .on_body = on_msg_body,
    .on_message_complete = on_msg_complete,
};

void or_http_msg_init(or_http_msg *m, bool is_request, size_t head_max, size_t body_max)
{
    memset(m, 0, sizeof *m);
    m->is_request = is_request;
    m->head_max = head_max;
    m->body_max = body_max;
    http_parser_init(&m->parser, is_request ? HTTP_REQUEST : HTTP_RESPONSE);
    m->parser.data = m;
}

void or_http_msg_free(or_http_msg *m)
{
    or_http_head_free(&m->head);
    free(m->body);
    m->body = NULL;
    m->body_len = 0;
}

static or_http_msg_state msg_fail(or_http_msg *m, or_http_msg_state state, const char *why)
{
    m->state = state;
    m->why = why;
    return state;
}

/* The head is whole: check it byte-exact, parse it, apply the framing rules. */
static or_http_msg_state msg_head_done(or_http_msg *m)
{
    const char *why = NULL;
    or_http_head *h = &m->head;
    if (or_http_head_check(h, m->is_request, &why) != 0 || or_http_head_parse(h, &m->parser, &why))
        return msg_fail(m, OR_HTTP_MSG_MALFORMED, why);
    if (h->too_many_headers)
        return msg_fail(m, OR_HTTP_MSG_MALFORMED, "too many header fields");
    if (m->is_request && check_request_framing(h, false, &why) != 0)
        return msg_fail(m, OR_HTTP_MSG_MALFORMED, why);
    if (!m->is_request && or_http_head_te(h) > OR_TE_CHUNKED)
        return msg_fail(m, OR_HTTP_MSG_MALFORMED, "a transfer coding other than chunked");
    m->status = h->status;
    m->method = m->is_request ? http_method_str((enum http_method)m->parser.method) : "";
    if (h->has_content_length && h->content_length > m->body_max)
        return msg_fail(m, OR_HTTP_MSG_TOO_LARGE, "the announced body is too large");
    if (h->message_done)
        m->state = OR_HTTP_MSG_COMPLETE;
    return m->state;
}

/* Body bytes (len 0: the peer closed) through http-parser's framing. */
static or_http_msg_state msg_body(or_http_msg *m, const char *data, size_t len)
{
    size_t n = http_parser_execute(&m->parser, &msg_body_settings, data, len);
    if (m->state != OR_HTTP_MSG_PARTIAL)
        return m->state;
    if (n != len || HTTP_PARSER_ERRNO(&m->parser) != HPE_OK)
        return msg_fail(m, OR_HTTP_MSG_MALFORMED, "malformed body framing");
    if (len == 0)
        return msg_fail(m, OR_HTTP_MSG_MALFORMED, "the message was cut short");
    return m->state;
}

or_http_msg_state or_http_msg_feed(or_http_msg *m, const char *data, size_t len)
{
    if (m->state != OR_HTTP_MSG_PARTIAL || len == 0)
        return m->state;
    if (!m->head.complete) {
        size_t used = 0;
        or_head_status st = or_http_head_collect(&m->head, data, len, m->head_max, &used);
        if (st == OR_HEAD_TOO_BIG)
            return msg_fail(m, OR_HTTP_MSG_MALFORMED, "head too large");
        if (st == OR_HEAD_MORE || msg_head_done(m) != OR_HTTP_MSG_PARTIAL)
            return m->state;
        data += used;
        len -= used;
        if (len == 0)
            return m->state;
    }
    return msg_body(m, data, len);
}

or_http_msg_state or_http_msg_finish(or_http_msg *m)
{
    if (m->state != OR_HTTP_MSG_PARTIAL)
        return m->state;
    if (!m->head.complete)
        return m->head.raw.len == 0 ? m->state
                                    : msg_fail(m, OR_HTTP_MSG_MALFORMED, "the head was cut short");
    return msg_body(m, NULL, 0);
}

/* ---- or_http_framer ---- */

static int framer_on_complete(http_parser *p)
{
    ((or_http_framer *)p->data)->_done = true;
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings framer_settings = {.on_message_complete = framer_on_complete};

void or_http_framer_init(or_http_framer *f)
{
    http_parser_init(&f->_parser, HTTP_RESPONSE);
    f->_parser.data = f;
    f->_done = false;
}

int or_http_framer_feed(or_http_framer *f, const char *data, size_t len)
{
    size_t n = http_parser_execute(&f->_parser, &framer_settings, data, len);
    enum http_errno e = HTTP_PARSER_ERRNO(&f->_parser);
    if (f->_done && (e == HPE_OK || e == HPE_PAUSED) && n == len)
        return 1;
    return f->_done || e != HPE_OK ? -1 : 0;
}

unsigned or_http_framer_status(const or_http_framer *f)
{
    return f->_parser.status_code;
}

bool or_http_framer_keep_alive(const or_http_framer *f)
{
    return http_should_keep_alive(&f->_parser) != 0;
}

int or_http_field_line(or_buf *b, const char *name, size_t name_len, const char *value,
                       size_t value_len)
{
    int r = or_buf_append(b, name, name_len);
    r |= or_buf_append(b, ": ", 2);
    r |= or_buf_append(b, value, value_len);
    return r | or_buf_append(b, "\r\n", 2);
}
