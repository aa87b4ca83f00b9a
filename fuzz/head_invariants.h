/*
 * head_invariants: what every collected, checked and parsed HTTP/1 head must
 * satisfy, shared by the request and response head fuzz targets.
 *
 * A collected head is a byte-exact copy of the stream and ends at the first
 * blank line. A head that passed or_http_head_check has no NUL, no bare CR
 * or LF and no obs-fold. A parsed head is one http-parser reads to its end
 * (its blank line ends the headers); its slices (target, reason, names and
 * values) lie inside its buffer and hold no CR or LF; the framing it
 * reports agrees with the header lines a receiver would see: a
 * Content-Length line exists exactly when Content-Length framing was
 * found, and its value is that length; a Transfer-Encoding line is never
 * missed. The lookups agree with each other, and the hop-by-hop test
 * always strips the framing and connection headers and never Host or
 * Content-Length.
 */
#ifndef OUTRIDER_FUZZ_HEAD_INVARIANTS_H
#define OUTRIDER_FUZZ_HEAD_INVARIANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "outrider/http_head.h"

static inline bool slice_inside(const or_http_head *h, const char *p, size_t len)
{
    if (p == NULL)
        return len == 0;
    return p >= h->raw.data && len <= h->raw.len && (size_t)(p - h->raw.data) <= h->raw.len - len;
}

static inline bool has_crlf(const char *p, size_t len)
{
    return len > 0 && (memchr(p, '\r', len) != NULL || memchr(p, '\n', len) != NULL);
}

/* The head is stream[end - raw.len, end): nothing added, dropped or changed. */
static inline void require_copy_of_stream(const or_http_head *h, const uint8_t *stream, size_t end)
{
    FUZZ_REQUIRE(h->raw.len <= end);
    FUZZ_REQUIRE(h->raw.len == 0 || memcmp(h->raw.data, stream + end - h->raw.len, h->raw.len) == 0);
}

/* A complete head ends with its first blank line ("\n\n" or "\n\r\n"). */
/* RFC 9110 tchar, written out again so the check does not lean on the code
 * it checks. */
static inline bool is_token_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static inline void require_ends_at_first_blank_line(const or_http_head *h)
{
    const char *p = h->raw.data;
    size_t n = h->raw.len;
    size_t end = 0;
    for (size_t i = 0; i + 1 < n && end == 0; i++) {
        if (p[i] != '\n')
            continue;
        if (p[i + 1] == '\n')
            end = i + 2;
        else if (i + 2 < n && p[i + 1] == '\r' && p[i + 2] == '\n')
            end = i + 3;
    }
    /* or_http_head_collect also hands over, at once, a head whose first byte
     * cannot start a start line (a TLS ClientHello on a plaintext port): it
     * then holds everything collected so far, and no blank line. */
    FUZZ_REQUIRE(end == n || (end == 0 && n > 0 && !is_token_byte((unsigned char)p[0])));
}

static inline int count_headers_complete(http_parser *p)
{
    (*(unsigned *)p->data)++;
    return 0;
}

/* A head or_http_head_parse accepted is one http-parser reads to its end:
 * a fresh parser of the same type, given the head alone, completes it
 * (and does not stop in the middle of a start line it tolerates). */
static inline void require_head_completes(const or_http_head *h, enum http_parser_type type)
{
    static const http_parser_settings settings = {.on_headers_complete = count_headers_complete};
    unsigned completed = 0;
    http_parser p;
    http_parser_init(&p, type);
    p.data = &completed;
    http_parser_execute(&p, &settings, h->raw.data, h->raw.len);
    FUZZ_REQUIRE(completed == 1);
}

/* What or_http_head_check promises when it returns 0. */
static inline void require_clean(const or_http_head *h)
{
    const char *p = h->raw.data;
    size_t n = h->raw.len;
    for (size_t i = 0; i < n; i++) {
        FUZZ_REQUIRE(p[i] != '\0');
        if (p[i] == '\r')
            FUZZ_REQUIRE(i + 1 < n && p[i + 1] == '\n');
        if (p[i] == '\n') {
            FUZZ_REQUIRE(i > 0 && p[i - 1] == '\r');
            FUZZ_REQUIRE(i + 1 == n || (p[i + 1] != ' ' && p[i + 1] != '\t'));
        }
    }
}

/* Optional whitespace trimmed from both ends of a value. */
static inline void trim_ows(const char **v, size_t *len)
{
    while (*len > 0 && (**v == ' ' || **v == '\t')) {
        (*v)++;
        (*len)--;
    }
    while (*len > 0 && ((*v)[*len - 1] == ' ' || (*v)[*len - 1] == '\t'))
        (*len)--;
}

/* Content-Length lines agree with the length the parser framed by. */
static inline void require_content_length_agrees(const or_http_head *h)
{
    bool seen = false;
    for (size_t i = 0; i < h->nheaders; i++) {
        const or_http_header *hdr = &h->headers[i];
        if (!or_http_name_is(hdr->name, hdr->name_len, "content-length"))
            continue;
        seen = true;
        FUZZ_REQUIRE(h->has_content_length);
        const char *v = hdr->value;
        size_t len = hdr->value_len;
        trim_ows(&v, &len);
        uint64_t n = 0;
        FUZZ_REQUIRE(len > 0);
        for (size_t k = 0; k < len; k++) {
            FUZZ_REQUIRE(v[k] >= '0' && v[k] <= '9');
            FUZZ_REQUIRE(n <= (UINT64_MAX - 9) / 10);
            n = n * 10 + (uint64_t)(v[k] - '0');
        }
        FUZZ_REQUIRE(n == h->content_length);
    }
    FUZZ_REQUIRE(seen == h->has_content_length);
}

/* A Transfer-Encoding line is never missed. (http-parser also reports one
 * for a name that only starts with "Transfer-Encoding", which fails closed.) */
static inline void require_transfer_encoding_agrees(const or_http_head *h)
{
    const or_http_header *te = or_http_head_find(h, "transfer-encoding", 17);
    FUZZ_REQUIRE(te == NULL || h->has_transfer_encoding);
    FUZZ_REQUIRE(!h->chunked || h->has_transfer_encoding);
}

/* What a successful or_http_head_parse leaves, and the lookups over it. */
static inline void require_parsed(const or_http_head *h)
{
    FUZZ_REQUIRE(h->nheaders <= OR_HTTP_MAX_HEADERS);
    FUZZ_REQUIRE(h->nheaders <= h->headers_cap);
    FUZZ_REQUIRE(slice_inside(h, h->url, h->url_len));
    FUZZ_REQUIRE(!has_crlf(h->url, h->url_len));
    FUZZ_REQUIRE(slice_inside(h, h->reason, h->reason_len));
    FUZZ_REQUIRE(!has_crlf(h->reason, h->reason_len));
    for (size_t i = 0; i < h->nheaders; i++) {
        const or_http_header *hdr = &h->headers[i];
        FUZZ_REQUIRE(hdr->name != NULL && hdr->name_len > 0);
        FUZZ_REQUIRE(slice_inside(h, hdr->name, hdr->name_len));
        FUZZ_REQUIRE(slice_inside(h, hdr->value, hdr->value_len));
        FUZZ_REQUIRE(!has_crlf(hdr->name, hdr->name_len));
        FUZZ_REQUIRE(memchr(hdr->name, ':', hdr->name_len) == NULL);
        FUZZ_REQUIRE(!has_crlf(hdr->value, hdr->value_len));
    }
    FUZZ_REQUIRE(h->host_at <= h->nheaders);
    FUZZ_REQUIRE(h->connection_first <= h->connection_end && h->connection_end <= h->nheaders);
    const or_http_header *host = or_http_head_host(h);
    FUZZ_REQUIRE(host == or_http_head_find(h, "host", 4));
    FUZZ_REQUIRE(host == NULL || or_http_name_is(host->name, host->name_len, "host"));
    if (!h->too_many_headers) {
        require_content_length_agrees(h);
        require_transfer_encoding_agrees(h);
    }
}

/* Framing and connection-management headers are never forwarded; the
 * headers that route and frame the message always are. */
static inline void require_hop_by_hop(const or_http_head *h)
{
    static const char *const always[] = {"connection", "keep-alive", "proxy-connection", "te",
                                         "trailer", "transfer-encoding", "upgrade"};
    static const char *const never[] = {"host", "content-length"};
    for (size_t i = 0; i < h->nheaders; i++) {
        const or_http_header *hdr = &h->headers[i];
        bool hop = or_http_is_hop_by_hop(h, hdr);
        for (size_t k = 0; k < sizeof always / sizeof always[0]; k++)
            if (or_http_name_is(hdr->name, hdr->name_len, always[k]))
                FUZZ_REQUIRE(hop);
        for (size_t k = 0; k < sizeof never / sizeof never[0]; k++)
            if (or_http_name_is(hdr->name, hdr->name_len, never[k]))
                FUZZ_REQUIRE(!hop);
    }
}

#endif
