/*
 * Fuzz target: HTTP/1 requests as proxy/http/http.c reads them from a client.
 *
 * The first input byte is a control byte, the rest a client's byte stream.
 * The stream arrives in pieces (1 to 32 bytes, or all at once) and is
 * pumped like a keep-alive connection: the head is collected with
 * or_http_head_collect (against a 64 KiB or a 256-byte limit), then
 * checked, parsed with an HTTP_REQUEST http-parser and vetted by
 * or_http_head_vet_request, and its target normalised (escaped slashes
 * refused or decoded), as http.c does; a request that passes is looked up
 * (Host, every header through or_http_is_hop_by_hop), its body is read with
 * the same parser (a chunked one checked by or_chunked_scan first), and the
 * next pipelined request follows until the stream ends or a request is
 * refused.
 *
 * Beyond memory and UB errors, it checks the invariants of
 * head_invariants.h on every head that passes, what passing promises
 * (require_passable), that collecting takes every byte it is offered until
 * the head is complete (or the proxy would stall), that the chunk scanner
 * and http-parser agree on where a chunked body ends, and that a body never
 * yields more bytes than were fed, and exactly Content-Length bytes when
 * that frames it.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <http_parser.h>

#include "chunked_invariants.h"
#include "fuzz_check.h"
#include "head_invariants.h"
#include "outrider/http_chunked.h"
#include "outrider/http_head.h"
#include "outrider/buf.h"
#include "outrider/http_path.h"

enum { READ_HEAD, READ_BODY, CLOSED };

typedef struct {
    or_http_head head;
    http_parser parser;
    int state;
    size_t limit;
    or_escaped_slashes slashes;
    or_chunked chunks;    /* the strict scan of a chunked body */
    uint64_t body_fed;    /* bytes given to the body parser for this request */
    uint64_t body_seen;   /* on_body bytes of this request */
    const char *piece;    /* the bytes being parsed, for on_body */
    size_t piece_len;
} session;

static int on_body(http_parser *p, const char *at, size_t len)
{
    session *s = p->data;
    FUZZ_REQUIRE(at >= s->piece && len <= s->piece_len &&
                 (size_t)(at - s->piece) <= s->piece_len - len);
    s->body_seen += len;
    FUZZ_REQUIRE(s->body_seen <= s->body_fed);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    session *s = p->data;
    if (s->head.has_content_length && !s->head.chunked)
        FUZZ_REQUIRE(s->body_seen == s->head.content_length);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings body_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void next_exchange(session *s)
{
    or_http_head_reset(&s->head);
    http_parser_init(&s->parser, HTTP_REQUEST);
    s->parser.data = s;
    s->chunks = (or_chunked){0};
    s->body_fed = s->body_seen = 0;
    s->state = READ_HEAD;
}

static size_t count_named(const or_http_head *h, const char *lower)
{
    size_t n = 0;
    for (size_t i = 0; i < h->nheaders; i++)
        n += or_http_name_is(h->headers[i].name, h->headers[i].name_len, lower);
    return n;
}

/* What a request that may be passed on satisfies: the head is clean and
 * parsed, HTTP/1.0 or 1.1, not CONNECT, within the header count; its
 * framing is unambiguous (at most one Content-Length, and then no
 * Transfer-Encoding; else at most exactly "chunked"); it has at most one
 * Host, and one if it is HTTP/1.1. */
static void require_passable(const session *s)
{
    const or_http_head *h = &s->head;
    require_clean(h);
    require_parsed(h);
    require_head_completes(h, HTTP_REQUEST);
    FUZZ_REQUIRE(h->url != NULL && h->url_len > 0);
    FUZZ_REQUIRE(h->major == 1 && h->minor <= 1);
    FUZZ_REQUIRE(!h->too_many_headers && s->parser.method != HTTP_CONNECT);
    FUZZ_REQUIRE(count_named(h, "content-length") <= 1);
    FUZZ_REQUIRE(!(h->has_content_length && h->has_transfer_encoding));
    or_http_te te = or_http_head_te(h);
    FUZZ_REQUIRE(te == OR_TE_NONE || (te == OR_TE_CHUNKED && h->chunked));
    FUZZ_REQUIRE(count_named(h, "transfer-encoding") <= 1);
    FUZZ_REQUIRE(count_named(h, "host") <= 1 && !h->duplicate_host);
    FUZZ_REQUIRE(h->minor == 0 || or_http_head_host(h) != NULL);
    require_hop_by_hop(h);
}

/* http.c's vet_request: the head vetted, then its target normalised; true
 * when the request may go on. */
static bool vet(session *s)
{
    const char *why = NULL;
    int status = or_http_head_vet_request(&s->head, &s->parser, &why);
    if (status != 0) {
        FUZZ_REQUIRE(why != NULL && status >= 400 && status <= 599);
        return false;
    }
    require_passable(s);
    or_buf target = {0};
    or_target t;
    or_path_status st =
        or_http_target_normalize(s->head.url, s->head.url_len, s->slashes, &target, &t);
    bool ok = st == OR_PATH_OK && (target.data[0] != '*' || s->parser.method == HTTP_OPTIONS);
    or_buf_free(&target);
    return ok;
}

/* One step over stream[off, off + len); returns the bytes it took. */
static size_t pump_head(session *s, const uint8_t *stream, size_t off, size_t len)
{
    size_t used = 0;
    or_head_status st =
        or_http_head_collect(&s->head, (const char *)stream + off, len, s->limit, &used);
    FUZZ_REQUIRE(used <= len);
    require_copy_of_stream(&s->head, stream, off + used);
    if (st == OR_HEAD_TOO_BIG) {
        s->state = CLOSED;
    } else if (st == OR_HEAD_MORE) {
        FUZZ_REQUIRE(used == len);
        FUZZ_REQUIRE(!s->head.complete);
    } else {
        FUZZ_REQUIRE(s->head.complete && s->head.raw.len <= s->limit);
        require_ends_at_first_blank_line(&s->head);
        if (!vet(s) || s->head.upgrade)
            s->state = CLOSED; /* refused, or a byte pipe from here on */
        else if (s->head.message_done)
            next_exchange(s);
        else
            s->state = READ_BODY;
    }
    return used;
}

/* A chunked body is scanned first and http-parser given what the scanner
 * accepted, as http.c does. */
static size_t pump_body(session *s, const uint8_t *stream, size_t off, size_t len)
{
    s->piece = (const char *)stream + off;
    size_t valid = s->head.chunked ? or_chunked_scan(&s->chunks, s->piece, len) : len;
    s->piece_len = valid;
    s->body_fed += valid;
    size_t n = http_parser_execute(&s->parser, &body_settings, s->piece, valid);
    enum http_errno err = HTTP_PARSER_ERRNO(&s->parser);
    if (s->head.chunked)
        require_same_end(&s->chunks, len, valid, n, err);
    if (s->chunks.state == OR_CHUNK_ERROR || (err != HPE_OK && err != HPE_PAUSED)) {
        s->state = CLOSED;
        return valid;
    }
    FUZZ_REQUIRE(n <= valid);
    s->body_fed -= valid - n;
    if (err == HPE_PAUSED)
        next_exchange(s);
    else
        FUZZ_REQUIRE(n == len);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *stream = data + 1;
    size_t len = size - 1;
    size_t step = ctl & 0x40 ? len : 1 + (ctl & 0x1f);
    session s = {
        .limit = ctl & 0x80 ? 256 : 64 * 1024,
        .slashes = ctl & 0x20 ? OR_SLASHES_DECODE : OR_SLASHES_REJECT,
    };
    next_exchange(&s);
    size_t off = 0, arrived = 0;
    while (s.state != CLOSED) {
        if (off == arrived) {
            if (arrived == len)
                break;
            arrived = len - arrived > step ? arrived + step : len;
        }
        int before = s.state;
        size_t n = s.state == READ_HEAD ? pump_head(&s, stream, off, arrived - off)
                                        : pump_body(&s, stream, off, arrived - off);
        FUZZ_REQUIRE(n > 0 || s.state != before); /* else the proxy would spin */
        off += n;
    }
    or_http_head_free(&s.head);
    return 0;
}
