/*
 * Fuzz target: chunked request bodies, as proxy/http/http.c reads them.
 *
 * An HTTP_REQUEST http-parser is given a fixed, valid head announcing a
 * chunked body, then the input, in pieces whose sizes come from the first
 * input byte (1 to 128 bytes, or all at once). Each piece goes first
 * through the strict chunk scanner (or_chunked_scan), then http-parser
 * decodes the part the scanner accepted, with callbacks like http.c's:
 * on_body counts (and would relay) the bytes, on_message_complete pauses
 * the parser. After a complete body the bytes that follow are the body of
 * a next request with the same head, as on a keep-alive connection.
 *
 * Beyond memory and UB errors, it checks that the scanner and http-parser
 * agree on where each body ends (chunked_invariants.h), that the body
 * bytes handed out never exceed the bytes fed, that every body slice lies
 * inside the piece being parsed, and that parsing never stalls. The same
 * pieces then go through or_chunked_next, the decoder of the HTTP/1.1 leg
 * of HTTP/2 streams (proxy/http2/h2_h1.c): unless http-parser refused
 * bytes the scanner accepted, it must find as many bodies and exactly as
 * many body bytes as http-parser did.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <http_parser.h>

#include "chunked_invariants.h"
#include "fuzz_check.h"
#include "outrider/http_chunked.h"

static const char chunked_head[] =
    "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";

typedef struct {
    uint64_t fed;          /* input bytes given to the parser */
    uint64_t body;         /* bytes on_body handed out */
    unsigned bodies;       /* bodies completed */
    bool parser_refused;   /* http-parser refused bytes the scanner accepted */
    const char *piece;
    size_t piece_len;
} decoder;

static int on_body(http_parser *p, const char *at, size_t len)
{
    decoder *d = p->data;
    FUZZ_REQUIRE(at >= d->piece && len <= d->piece_len &&
                 (size_t)(at - d->piece) <= d->piece_len - len);
    d->body += len;
    FUZZ_REQUIRE(d->body <= d->fed);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* The fixed head, to a fresh parser and scanner: a new request. */
static void start_request(http_parser *p, or_chunked *c, decoder *d)
{
    http_parser_init(p, HTTP_REQUEST);
    p->data = d;
    *c = (or_chunked){0};
    d->piece = chunked_head;
    d->piece_len = sizeof chunked_head - 1;
    size_t n = http_parser_execute(p, &settings, chunked_head, sizeof chunked_head - 1);
    FUZZ_REQUIRE(n == sizeof chunked_head - 1 && HTTP_PARSER_ERRNO(p) == HPE_OK);
    FUZZ_REQUIRE((p->flags & F_CHUNKED) != 0);
}

/* Feeds one piece as http.c does (scanner first, then the parser over what
 * it accepted); false when either refused it. */
static bool feed(http_parser *p, or_chunked *c, decoder *d, const char *data, size_t len)
{
    while (len > 0) {
        size_t valid = or_chunked_scan(c, data, len);
        d->piece = data;
        d->piece_len = valid;
        d->fed += valid;
        size_t n = http_parser_execute(p, &settings, data, valid);
        enum http_errno err = HTTP_PARSER_ERRNO(p);
        require_same_end(c, len, valid, n, err);
        if (err != HPE_OK && err != HPE_PAUSED && c->state != OR_CHUNK_ERROR)
            d->parser_refused = true;
        if (c->state == OR_CHUNK_ERROR || (err != HPE_OK && err != HPE_PAUSED))
            return false;
        d->fed -= valid - n;
        if (err == HPE_PAUSED) {
            FUZZ_REQUIRE(n > 0);
            d->bodies++;
            start_request(p, c, d); /* the next body on the connection */
        }
        data += n;
        len -= n;
    }
    return true;
}

/* The same pieces through or_chunked_next, a new body after each one
 * that ends, until a bad byte: the body bytes and bodies it found. */
static void decode_next(const char *in, size_t len, size_t step, uint64_t *body, unsigned *bodies)
{
    or_chunked c = {0};
    for (size_t off = 0; off < len;) {
        size_t piece = len - off < step ? len - off : step;
        for (size_t used = 0; used < piece;) {
            or_chunk_piece kind;
            size_t n = or_chunked_next(&c, in + off + used, piece - used, &kind);
            FUZZ_REQUIRE(n <= piece - used);
            if (kind == OR_CHUNK_PIECE_DATA)
                *body += n;
            if (c.state == OR_CHUNK_ERROR)
                return;
            FUZZ_REQUIRE(n > 0);
            if (c.state == OR_CHUNK_DONE) {
                (*bodies)++;
                c = (or_chunked){0};
            }
            used += n;
        }
        off += piece;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = data[0] & 0x80 ? size : 1 + (data[0] & 0x7f);
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    decoder d = {0};
    http_parser p;
    or_chunked c;
    start_request(&p, &c, &d);
    for (size_t off = 0; off < len;) {
        size_t piece = len - off < step ? len - off : step;
        if (!feed(&p, &c, &d, in + off, piece))
            break;
        off += piece;
    }
    FUZZ_REQUIRE(d.body <= len);
    uint64_t body = 0;
    unsigned bodies = 0;
    decode_next(in, len, step, &body, &bodies);
    if (!d.parser_refused)
        FUZZ_REQUIRE(body == d.body && bodies == d.bodies);
    return 0;
}
