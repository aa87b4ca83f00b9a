/*
 * Fuzz target: an HTTP/1.1 request head carried on the hop between
 * sidecars as an HTTP/2 request (or_h2_request_from_h1, docs/http2.md), and
 * that request written back as HTTP/1.1 by the inbound sidecar
 * (or_h2_h1_request_head).
 *
 * The first input byte is a control byte, the rest a client's byte stream,
 * taken as proxy/http/http.c takes a request head: collected with
 * or_http_head_collect (bit 1: against a 512-byte limit, else 64 KiB; the
 * same limit bounds the HTTP/2 block, as limits.max_request_headers does),
 * vetted by or_http_head_vet_request, its method named by http-parser, its
 * target normalised (bit 0: escaped slashes decoded, else refused; "*" for
 * OPTIONS only). A request the proxy would multiplex (HTTP/1.1, no Upgrade,
 * not CONNECT, a target of visible ASCII; h2_front.c) is mapped with the
 * :authority h2_front.c gives it: an absolute-form target's authority,
 * else the Host value. What follows the head is ignored.
 *
 * Beyond memory and UB errors, it checks against a model of the mapping
 * written out here: a request is refused exactly when, and for the reason,
 * the first field in block order (pseudo-fields, then the forwarded
 * fields) has a control byte in its value, makes the block larger than the
 * limit (name + value + 32 per field, pseudo-field values counted) or is a
 * content-length that is not 1 to 18 digits, or else the :authority is not
 * host[:port]; a connection-specific or te field never causes a refusal,
 * as none is forwarded; a refused request is freed unused, as h2_front.c
 * does. A mapped request has :method, :scheme http, :authority and :path
 * exactly as given, no Host field, the parsed content length, and exactly
 * the forwarded fields of the head, in order: every field but connection,
 * keep-alive, proxy-connection, te, trailer, transfer-encoding, upgrade,
 * host, expect and what a Connection header names (except content-length,
 * host, x-request-id and x-forwarded-client-cert), each with its name
 * lower-cased (a lower-case token) and its value byte for byte (no CR, LF
 * or NUL), without the spaces and tabs around it (HTTP/1.1 allows them,
 * RFC 9113 8.2.1 does not; the :authority likewise; a request with an
 * empty Host is not mapped but relayed). Written back as
 * HTTP/1.1, it is one head exactly (collecting it ends at its blank line),
 * which the proxy's own checks and framing rules accept and the invariants
 * of head_invariants.h hold for, with the method and target given, and
 * whose field lines are host (the :authority), the mapped fields but te,
 * content-length and the ones the proxy drops, the cookies joined into
 * one, then the body's framing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "fuzz_check.h"
#include "head_invariants.h"
#include "outrider/buf.h"
#include "outrider/http2.h"
#include "outrider/http2_h1.h"
#include "outrider/http_head.h"
#include "outrider/http_path.h"

#define MAX_FIELDS OR_HTTP_MAX_HEADERS

/* A field of the model: a slice of the HTTP/1.1 head, or of a fixed text. */
typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} field;

/* Case-insensitive name comparison, written out again. */
static bool same_name(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y - 'A' + 'a');
        if (x != y)
            return false;
    }
    return true;
}

static bool named(const char *name, size_t len, const char *lower)
{
    return same_name(name, len, lower, strlen(lower));
}

/* A token of any Connection header names `name` (tokens are separated by
 * commas, spaces and tabs). */
static bool connection_lists(const or_http_head *h, const char *name, size_t len)
{
    for (size_t i = 0; i < h->nheaders; i++) {
        const or_http_header *c = &h->headers[i];
        if (!named(c->name, c->name_len, "connection"))
            continue;
        size_t k = 0;
        while (k < c->value_len) {
            while (k < c->value_len && strchr(", \t", c->value[k]) != NULL)
                k++;
            size_t start = k;
            while (k < c->value_len && strchr(", \t", c->value[k]) == NULL)
                k++;
            if (k > start && same_name(c->value + start, k - start, name, len))
                return true;
        }
    }
    return false;
}

/* Whether the field goes into the HTTP/2 block. */
static bool forwarded(const or_http_head *h, const or_http_header *f)
{
    static const char *const never[] = {"connection", "keep-alive", "proxy-connection", "te",
                                        "trailer", "transfer-encoding", "upgrade", "host",
                                        "expect"};
    static const char *const kept[] = {"content-length", "host", "x-request-id",
                                       "x-forwarded-client-cert"};
    for (size_t i = 0; i < sizeof never / sizeof never[0]; i++)
        if (named(f->name, f->name_len, never[i]))
            return false;
    for (size_t i = 0; i < sizeof kept / sizeof kept[0]; i++)
        if (named(f->name, f->name_len, kept[i]))
            return true;
    return !connection_lists(h, f->name, f->name_len);
}

static bool has_control(const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return true;
    }
    return false;
}

static bool is_length(const char *v, size_t len)
{
    if (len == 0 || len > 18)
        return false;
    for (size_t i = 0; i < len; i++)
        if (v[i] < '0' || v[i] > '9')
            return false;
    return true;
}

/* What the mapping must answer for the block `pseudo` (4 fields) then
 * `regular` (n fields), under `limit`. */
static or_h2_check expected_check(const field *pseudo, const field *regular, size_t n,
                                  size_t limit)
{
    size_t size = 0;
    for (size_t i = 0; i < 4 + n; i++) {
        const field *f = i < 4 ? &pseudo[i] : &regular[i - 4];
        if (has_control(f->value, f->value_len))
            return OR_H2_BAD_VALUE;
        if (size + f->name_len + f->value_len + 32 > limit)
            return OR_H2_TOO_LARGE;
        size += i < 4 ? f->value_len : f->name_len + f->value_len + 32;
        if (i >= 4 && named(f->name, f->name_len, "content-length") &&
            !is_length(f->value, f->value_len))
            return OR_H2_BAD_CONTENT_LENGTH;
    }
    /* the authority as the HTTP/2 side judges one */
    if (!or_http_host_valid(pseudo[2].value, pseudo[2].value_len))
        return OR_H2_BAD_HOST;
    return OR_H2_OK;
}

static bool buf_is(const or_buf *b, const char *s, size_t len)
{
    return b->len == len && (len == 0 || memcmp(b->data, s, len) == 0);
}

static bool lower_token(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!is_token_byte((unsigned char)s[i]) || (s[i] >= 'A' && s[i] <= 'Z'))
            return false;
    return len > 0;
}

/* The mapped request is the model's: pseudo-fields as given, then exactly
 * the forwarded fields, in order. */
static void check_mapped(const or_h2_request *r, const or_http_head *h, const field *pseudo,
                         const field *regular, size_t n)
{
    FUZZ_REQUIRE(r->have_method && buf_is(&r->method, pseudo[0].value, pseudo[0].value_len));
    FUZZ_REQUIRE(r->have_scheme && buf_is(&r->scheme, "http", 4));
    FUZZ_REQUIRE(r->have_authority &&
                 buf_is(&r->authority, pseudo[2].value, pseudo[2].value_len));
    FUZZ_REQUIRE(r->have_path && buf_is(&r->path, pseudo[3].value, pseudo[3].value_len));
    FUZZ_REQUIRE(r->host == -1);
    FUZZ_REQUIRE(r->content_length == (h->has_content_length ? (int64_t)h->content_length : -1));
    FUZZ_REQUIRE(r->fields.n == n);
    bool grpc = false;
    for (size_t i = 0; i < n; i++) {
        const char *name = or_h2_field_name(&r->fields, i);
        const char *value = or_h2_field_value(&r->fields, i);
        size_t nlen = r->fields.v[i].name_len, vlen = r->fields.v[i].value_len;
        FUZZ_REQUIRE(lower_token(name, nlen));
        FUZZ_REQUIRE(same_name(name, nlen, regular[i].name, regular[i].name_len));
        FUZZ_REQUIRE(vlen == regular[i].value_len &&
                     (vlen == 0 || memcmp(value, regular[i].value, vlen) == 0));
        FUZZ_REQUIRE(memchr(value, '\r', vlen) == NULL && memchr(value, '\n', vlen) == NULL &&
                     memchr(value, '\0', vlen) == NULL);
        FUZZ_REQUIRE(vlen == 0 || (value[0] != ' ' && value[0] != '\t' && value[vlen - 1] != ' ' &&
                                   value[vlen - 1] != '\t'));
        static const char *const banned[] = {"connection", "keep-alive", "proxy-connection",
                                             "te", "trailer", "transfer-encoding", "upgrade",
                                             "host", "expect"};
        for (size_t k = 0; k < sizeof banned / sizeof banned[0]; k++)
            FUZZ_REQUIRE(!named(name, nlen, banned[k]));
        FUZZ_REQUIRE(named(name, nlen, "content-length") || named(name, nlen, "x-request-id") ||
                     named(name, nlen, "x-forwarded-client-cert") ||
                     !connection_lists(h, name, nlen));
        if (named(name, nlen, "content-type") && vlen >= 16 &&
            strncasecmp(value, "application/grpc", 16) == 0)
            grpc = true;
    }
    FUZZ_REQUIRE(r->grpc == grpc);
}

/* Fields the inbound's HTTP/1.1 head does not write from the block. */
static bool not_written(const char *name, size_t len)
{
    return named(name, len, "te") || named(name, len, "content-length") ||
           named(name, len, "cookie") || named(name, len, "host") ||
           named(name, len, "x-forwarded-client-cert") || named(name, len, OR_HOP_ORIG_PROTO);
}

static bool header_is(const or_http_header *hdr, const char *name, size_t nlen, const char *value,
                      size_t vlen)
{
    return hdr->name_len == nlen && memcmp(hdr->name, name, nlen) == 0 && hdr->value_len == vlen &&
           (vlen == 0 || memcmp(hdr->value, value, vlen) == 0);
}

/* The request written back as HTTP/1.1, as the inbound's leg frames it. */
static void check_round_trip(const or_h2_request *r, const or_http_head *h, const field *pseudo)
{
    or_h2_h1_body body = r->content_length >= 0 ? OR_H2_H1_BODY_LENGTH
                         : h->message_done      ? OR_H2_H1_BODY_NONE
                                                : OR_H2_H1_BODY_CHUNKED;
    or_buf out = {0};
    FUZZ_REQUIRE(or_h2_h1_request_head(&out, r, pseudo[3].value, pseudo[3].value_len, NULL,
                                       "upstream.invalid:8080", body) == OR_H2_OK);
    or_http_head back;
    memset(&back, 0, sizeof back);
    size_t used = 0;
    FUZZ_REQUIRE(or_http_head_collect(&back, out.data, out.len, 1 << 20, &used) == OR_HEAD_DONE);
    FUZZ_REQUIRE(used == out.len && back.raw.len == out.len);
    require_ends_at_first_blank_line(&back);
    const char *why = NULL;
    FUZZ_REQUIRE(or_http_head_check(&back, true, &why) == 0);
    http_parser parser;
    http_parser_init(&parser, HTTP_REQUEST);
    FUZZ_REQUIRE(or_http_head_vet_request(&back, &parser, &why) == 0);
    require_clean(&back);
    require_parsed(&back);
    require_head_completes(&back, HTTP_REQUEST);
    FUZZ_REQUIRE(strcmp(http_method_str((enum http_method)parser.method), pseudo[0].value) == 0);
    FUZZ_REQUIRE(back.url_len == pseudo[3].value_len &&
                 memcmp(back.url, pseudo[3].value, back.url_len) == 0);
    FUZZ_REQUIRE(back.major == 1 && back.minor == 1);

    /* host, the fields in order, the cookies, the framing */
    size_t k = 0;
    FUZZ_REQUIRE(k < back.nheaders &&
                 header_is(&back.headers[k++], "host", 4, pseudo[2].value, pseudo[2].value_len));
    or_buf cookie = {0};
    bool cookies = false;
    for (size_t i = 0; i < r->fields.n; i++) {
        const char *name = or_h2_field_name(&r->fields, i);
        const char *value = or_h2_field_value(&r->fields, i);
        size_t nlen = r->fields.v[i].name_len, vlen = r->fields.v[i].value_len;
        if (named(name, nlen, "cookie")) {
            FUZZ_REQUIRE(or_buf_append(&cookie, "; ", cookies ? 2 : 0) == 0 &&
                         or_buf_append(&cookie, value, vlen) == 0);
            cookies = true;
        } else if (!not_written(name, nlen)) {
            FUZZ_REQUIRE(k < back.nheaders &&
                         header_is(&back.headers[k++], name, nlen, value, vlen));
        }
    }
    /* an empty last crumb leaves "; " at the end, which a reader drops
     * (field values come trimmed) */
    while (cookie.len > 0 && cookie.data[cookie.len - 1] == ' ')
        cookie.len--;
    if (cookies)
        FUZZ_REQUIRE(k < back.nheaders &&
                     header_is(&back.headers[k++], "cookie", 6, cookie.data, cookie.len));
    if (body == OR_H2_H1_BODY_LENGTH) {
        FUZZ_REQUIRE(k < back.nheaders &&
                     named(back.headers[k].name, back.headers[k].name_len, "content-length"));
        k++;
        FUZZ_REQUIRE(back.has_content_length && !back.chunked &&
                     back.content_length == (uint64_t)r->content_length);
    } else if (body == OR_H2_H1_BODY_CHUNKED) {
        FUZZ_REQUIRE(k < back.nheaders &&
                     header_is(&back.headers[k++], "transfer-encoding", 17, "chunked", 7));
        FUZZ_REQUIRE(back.chunked && !back.has_content_length);
    } else {
        FUZZ_REQUIRE(!back.has_content_length && !back.has_transfer_encoding &&
                     back.message_done);
    }
    FUZZ_REQUIRE(k == back.nheaders);
    or_buf_free(&cookie);
    or_http_head_free(&back);
    or_buf_free(&out);
}

/* The value without the spaces and tabs around it, written out again. */
static field trim(field f)
{
    while (f.value_len > 0 && (f.value[0] == ' ' || f.value[0] == '\t')) {
        f.value++;
        f.value_len--;
    }
    while (f.value_len > 0 && (f.value[f.value_len - 1] == ' ' || f.value[f.value_len - 1] == '\t'))
        f.value_len--;
    return f;
}

/* h2_front.c's multiplexable, but for the listener and pool state. */
static bool multiplexable(const or_http_head *h, const http_parser *parser, const or_buf *target,
                          const or_target *tgt)
{
    if (h->upgrade || parser->method == HTTP_CONNECT || h->major != 1 || h->minor != 1)
        return false;
    const or_http_header *host = or_http_head_host(h);
    if (tgt->authority_len == 0 && host &&
        trim((field){"host", 4, host->value ? host->value : "", host->value_len}).value_len == 0)
        return false; /* an empty Host is relayed */
    for (size_t i = 0; i < target->len; i++)
        if ((unsigned char)target->data[i] <= 0x20 || (unsigned char)target->data[i] >= 0x7f)
            return false;
    return true;
}

static void map(const or_http_head *h, const char *method, const or_buf *target,
                const or_target *tgt, size_t limit)
{
    /* h2_front.c's authority_of; an HTTP/1.1 request that passed has a Host */
    const or_http_header *host = or_http_head_host(h);
    const char *authority = "upstream.invalid:8080";
    size_t alen = strlen(authority);
    if (tgt->authority_len > 0) {
        authority = tgt->authority;
        alen = tgt->authority_len;
    } else if (host) {
        authority = host->value;
        alen = host->value_len;
    }
    field pseudo[4] = {
        {":method", 7, method, strlen(method)},
        {":scheme", 7, "http", 4},
        trim((field){":authority", 10, authority, alen}),
        {":path", 5, target->data, target->len},
    };
    field regular[MAX_FIELDS];
    size_t n = 0;
    for (size_t i = 0; i < h->nheaders; i++)
        if (forwarded(h, &h->headers[i]))
            regular[n++] = trim((field){h->headers[i].name, h->headers[i].name_len,
                                        h->headers[i].value ? h->headers[i].value : "",
                                        h->headers[i].value_len});
    or_h2_check want = expected_check(pseudo, regular, n, limit);

    or_h2_request r;
    or_h2_request_init(&r, limit);
    or_h2_check got = or_h2_request_from_h1(&r, h, method, target->data, target->len, authority,
                                            alen);
    FUZZ_REQUIRE(got == want);
    if (got == OR_H2_OK) {
        FUZZ_REQUIRE(or_h2_request_done(&r) == OR_H2_OK);
        check_mapped(&r, h, pseudo, regular, n);
        /* Normalising percent-encodes obs-text, so a target may grow to
         * three times what the request line held: the proxy's own limit on
         * a received request line does not apply to the one it writes. */
        if (strlen(method) + 1 + target->len + 11 <= OR_HTTP_MAX_REQUEST_LINE)
            check_round_trip(&r, h, pseudo);
    }
    /* refused: h2_front.c answers 400 (500 when out of memory) and frees
     * the request unused */
    or_h2_request_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    size_t limit = ctl & 2 ? 512 : 64 * 1024;
    or_escaped_slashes slashes = ctl & 1 ? OR_SLASHES_DECODE : OR_SLASHES_REJECT;
    or_http_head h;
    memset(&h, 0, sizeof h);
    size_t used = 0;
    if (or_http_head_collect(&h, (const char *)data + 1, size - 1, limit, &used) != OR_HEAD_DONE) {
        or_http_head_free(&h);
        return 0;
    }
    http_parser parser;
    http_parser_init(&parser, HTTP_REQUEST);
    const char *why = NULL;
    or_buf target = {0};
    or_target tgt;
    if (or_http_head_vet_request(&h, &parser, &why) == 0) {
        require_clean(&h);
        require_parsed(&h);
        /* http.c's vet_request and take_target */
        char method[24];
        const char *m = http_method_str((enum http_method)parser.method);
        size_t mlen = strnlen(m, sizeof method - 1);
        memcpy(method, m, mlen);
        method[mlen] = '\0';
        or_path_status st = or_http_target_normalize(h.url, h.url_len, slashes, &target, &tgt);
        if (st == OR_PATH_OK && (target.data[0] != '*' || parser.method == HTTP_OPTIONS) &&
            multiplexable(&h, &parser, &target, &tgt))
            map(&h, method, &target, &tgt, limit);
    }
    or_buf_free(&target);
    or_http_head_free(&h);
    return 0;
}
