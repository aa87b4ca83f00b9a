/*
 * chunked_invariants: the chunk scanner (or_chunked_scan, proxy/
 * http_chunked.h) and http-parser must agree on where a chunked body ends,
 * or the proxy and the peer behind it would split a stream into different
 * messages. Shared by the targets that read bodies as http.c and
 * http_relay.c do: scan the bytes, give http-parser the part the scanner
 * accepted.
 */
#ifndef OUTRIDER_FUZZ_CHUNKED_INVARIANTS_H
#define OUTRIDER_FUZZ_CHUNKED_INVARIANTS_H

#include <stddef.h>

#include <http_parser.h>

#include "fuzz_check.h"
#include "outrider/http_chunked.h"

/* After or_chunked_scan accepted `valid` of `len` bytes and http-parser
 * took `n` of them with the result `err`: the scanner stopped early only at
 * the end of the body or at a bad byte; http-parser completed the message
 * exactly where the scanner saw the body end, and nowhere else. A parser
 * that refuses bytes the scanner accepted fails closed and is not checked.
 * Nothing accepted happens only at a bad first byte: http-parser takes a
 * call with no bytes for the end of the stream. */
static inline void require_same_end(const or_chunked *c, size_t len, size_t valid, size_t n,
                                    enum http_errno err)
{
    FUZZ_REQUIRE(valid <= len);
    if (c->state != OR_CHUNK_DONE && c->state != OR_CHUNK_ERROR)
        FUZZ_REQUIRE(valid == len);
    if (c->state == OR_CHUNK_ERROR)
        FUZZ_REQUIRE(c->why != NULL && valid < len);
    if (valid == 0) {
        FUZZ_REQUIRE(c->state == OR_CHUNK_ERROR);
        return;
    }
    FUZZ_REQUIRE(n <= valid);
    if (err != HPE_OK && err != HPE_PAUSED)
        return;
    FUZZ_REQUIRE((err == HPE_PAUSED) == (c->state == OR_CHUNK_DONE));
    FUZZ_REQUIRE(n == valid);
}

#endif
