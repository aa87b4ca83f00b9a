/*
 * http_chunked: the strict grammar of a chunked body (RFC 9112 7.1).
 *
 * Used by http.c and http_relay.c, where http-parser decodes the chunked
 * bodies the scanner has checked, and by the HTTP/1.1 leg of HTTP/2
 * streams (proxy/http2/h2_h1.c), which decodes with or_chunked_next. Outside its strict build it takes any two bytes for the CRLF after
 * chunk data, whitespace after a chunk size, control bytes in extensions
 * and anything for the CRLF that ends the trailers: exactly the
 * disagreements between two parsers that smuggling is made of. The scanner
 * here checks every byte of a chunked body before http-parser sees it, so
 * http-parser only ever decodes bodies that follow the grammar; the proxy
 * answers the rest with 400 (requests) or 502 (responses).
 *
 *   chunked-body = *chunk last-chunk trailer-section CRLF
 *   chunk        = 1*HEXDIG [ chunk-ext ] CRLF chunk-data CRLF
 *   chunk-ext    = BWS ";" ... up to the CRLF: no control bytes but HTAB;
 *                  BWS is spaces (http-parser refuses a tab there)
 *   trailer      = token ":" field-value CRLF
 *
 * Limits: a chunk size of at most 16 hex digits, a chunk line of at most
 * OR_CHUNK_LINE_MAX bytes, trailers of at most OR_CHUNK_TRAILERS_MAX bytes.
 * Nothing here does I/O or allocates.
 */
#ifndef OUTRIDER_HTTP_CHUNKED_H
#define OUTRIDER_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>

#define OR_CHUNK_LINE_MAX 4096
#define OR_CHUNK_TRAILERS_MAX (16 * 1024)

typedef enum {
    OR_CHUNK_SIZE_START = 0, /* the first hex digit of a chunk size */
    OR_CHUNK_SIZE,           /* more hex digits, BWS, ';' or CR */
    OR_CHUNK_BWS,            /* whitespace after the size: ';' must follow */
    OR_CHUNK_EXT,            /* an extension, up to CR */
    OR_CHUNK_SIZE_LF,        /* LF of the chunk line */
    OR_CHUNK_DATA,
    OR_CHUNK_DATA_CR,        /* CRLF after the data */
    OR_CHUNK_DATA_LF,
    OR_CHUNK_TRAILER_START,  /* a trailer line, or the CR of the final CRLF */
    OR_CHUNK_TRAILER_NAME,
    OR_CHUNK_TRAILER_VALUE,
    OR_CHUNK_TRAILER_LF,
    OR_CHUNK_FINAL_LF,
    OR_CHUNK_DONE,           /* the body has ended */
    OR_CHUNK_ERROR,
} or_chunk_state;

typedef struct {
    or_chunk_state state;
    uint64_t size;       /* the chunk being read: its size, then what is left */
    size_t line;         /* bytes of the current chunk line */
    size_t trailers;     /* bytes of trailers so far */
    const char *why;     /* set with OR_CHUNK_ERROR */
} or_chunked;

/* Scans `len` bytes of body. Returns how many are valid framing: all of
 * them, or fewer when the body ends within them (state OR_CHUNK_DONE: the
 * rest belongs to the next message) or a byte breaks the grammar (state
 * OR_CHUNK_ERROR, `why` says how; the byte at the returned offset is the
 * bad one). A zeroed or_chunked is ready for a new body. */
size_t or_chunked_scan(or_chunked *c, const char *data, size_t len);

/* What the bytes or_chunked_next took are: framing (chunk lines, CRLFs),
 * chunk data, or the trailer section (its lines and the final CRLF, as
 * received; the grammar above has been checked on every byte of it). */
typedef enum { OR_CHUNK_PIECE_FRAMING, OR_CHUNK_PIECE_DATA, OR_CHUNK_PIECE_TRAILERS } or_chunk_piece;

/* Decodes: scans like or_chunked_scan but stops where the kind of bytes
 * changes, so each call takes bytes of one kind, named in *piece (they
 * start at `data`). Returns how many it took; 0 only when len is 0 or the
 * state is DONE or ERROR. */
size_t or_chunked_next(or_chunked *c, const char *data, size_t len, or_chunk_piece *piece);

#endif
