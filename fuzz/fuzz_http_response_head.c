/*
 * Fuzz target: HTTP/1 responses as proxy/http/http_relay.c reads them from an
 * upstream.
 *
 * The first input byte is a control byte: bit 0 says whether the request
 * was a HEAD (skip_body), bit 6 whether the stream arrives all at once, the
 * low bits otherwise the piece size (1 to 32 bytes). The rest is what the
 * upstream sends. Heads are collected with or_http_head_collect (64 KiB, as
 * the relay allows), checked, parsed with an HTTP_RESPONSE http-parser,
 * refused as the relay does for transfer codings other than chunked, and
 * looked up; interim 1xx responses are skipped as the relay does (same
 * parser, head reset, skip_body kept), then the body is read (a chunked
 * one checked by or_chunked_scan first) until the message ends, the bytes
 * end (end of stream, signalled to the parser as the relay does) or the
 * scanner or the parser refuses them.
 *
 * Beyond memory and UB errors, it checks the invariants of
 * head_invariants.h, that a bodiless response (HEAD, 1xx, 204, 304) yields
 * no body, that the chunk scanner and http-parser agree on where a chunked
 * body ends, and that a body never yields more bytes than were fed, and
 * exactly Content-Length bytes when that frames it.
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

#define RESPONSE_HEAD_LIMIT (64 * 1024)

enum { READ_HEAD, READ_BODY, DONE };

typedef struct {
    or_http_head head;
    http_parser parser;
    int state;
    bool bodiless;
    or_chunked chunks;    /* the strict scan of a chunked body */
    uint64_t body_fed;
    uint64_t body_seen;
    const char *piece;
    size_t piece_len;
} session;

static int on_body(http_parser *p, const char *at, size_t len)
{
    session *s = p->data;
    FUZZ_REQUIRE(!s->bodiless);
    FUZZ_REQUIRE(at >= s->piece && len <= s->piece_len &&
                 (size_t)(at - s->piece) <= s->piece_len - len);
    s->body_seen += len;
    FUZZ_REQUIRE(s->body_seen <= s->body_fed);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    session *s = p->data;
    if (!s->bodiless && s->head.has_content_length && !s->head.chunked)
        FUZZ_REQUIRE(s->body_seen == s->head.content_length);
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings body_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The checks of the relay's on_response_head; true when the head stands. */
static bool head_ok(session *s)
{
    or_http_head *h = &s->head;
    const char *why = NULL;
    int status = or_http_head_check(h, false, &why);
    if (status != 0) {
        FUZZ_REQUIRE(why != NULL && status >= 400 && status <= 599);
        return false;
    }
    require_clean(h);
    if (or_http_head_parse(h, &s->parser, &why) != 0) {
        FUZZ_REQUIRE(why != NULL);
        return false;
    }
    require_parsed(h);
    require_head_completes(h, HTTP_RESPONSE);
    if (h->too_many_headers)
        return false;
    FUZZ_REQUIRE(h->status >= 0 && h->status <= 999);
    require_hop_by_hop(h);
    or_http_te te = or_http_head_te(h);
    if (te == OR_TE_OTHER_CODINGS || te == OR_TE_NOT_CHUNKED)
        return false;
    FUZZ_REQUIRE(te == OR_TE_NONE || h->chunked);
    http_parser_pause(&s->parser, 0);
    return true;
}

static void on_head(session *s)
{
    or_http_head *h = &s->head;
    if (!head_ok(s) || h->status == 101) {
        s->state = DONE; /* refused, or a byte pipe from here on */
        return;
    }
    if (h->status < 200) {
        bool skip = h->skip_body;
        or_http_head_reset(h);
        h->skip_body = skip;
        return;
    }
    s->bodiless = h->skip_body || h->status == 204 || h->status == 304;
    FUZZ_REQUIRE(!s->bodiless || h->message_done);
    s->state = h->message_done ? DONE : READ_BODY;
}

static size_t pump_head(session *s, const uint8_t *stream, size_t off, size_t len)
{
    size_t used = 0;
    or_head_status st = or_http_head_collect(&s->head, (const char *)stream + off, len,
                                             RESPONSE_HEAD_LIMIT, &used);
    FUZZ_REQUIRE(used <= len);
    require_copy_of_stream(&s->head, stream, off + used);
    if (st == OR_HEAD_TOO_BIG) {
        s->state = DONE;
    } else if (st == OR_HEAD_MORE) {
        FUZZ_REQUIRE(used == len);
    } else {
        require_ends_at_first_blank_line(&s->head);
        on_head(s);
    }
    return used;
}

/* A chunked body is scanned first and http-parser given what the scanner
 * accepted, as the relay does. */
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
    if (s->chunks.state == OR_CHUNK_ERROR || err != HPE_OK) {
        s->state = DONE;
        return valid;
    }
    FUZZ_REQUIRE(n == len);
    return n;
}

/* The upstream closed: the end of a body read until close, or an error
 * (http-parser returns 1 for it, whatever it was given). */
static void end_of_stream(session *s)
{
    s->piece = NULL;
    s->piece_len = 0;
    (void)http_parser_execute(&s->parser, &body_settings, NULL, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t ctl = data[0];
    const uint8_t *stream = data + 1;
    size_t len = size - 1;
    size_t step = ctl & 0x40 ? len : 1 + ((ctl >> 1) & 0x1f);
    session s = {0};
    s.head.skip_body = ctl & 1;
    http_parser_init(&s.parser, HTTP_RESPONSE);
    s.parser.data = &s;
    size_t off = 0, arrived = 0;
    while (s.state != DONE) {
        if (off == arrived) {
            if (arrived == len)
                break;
            arrived = len - arrived > step ? arrived + step : len;
        }
        int before = s.state;
        size_t n = s.state == READ_HEAD ? pump_head(&s, stream, off, arrived - off)
                                        : pump_body(&s, stream, off, arrived - off);
        FUZZ_REQUIRE(n > 0 || s.state != before); /* else the relay would spin */
        off += n;
    }
    if (s.state == READ_BODY)
        end_of_stream(&s);
    or_http_head_free(&s.head);
    return 0;
}
