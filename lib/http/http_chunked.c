/*
 * http_chunked: checking a chunked body byte by byte (the grammar and the
 * reasons are in http_chunked.h).
 *
 * The scanner is a state machine with one step per byte, except chunk
 * data, which it skips in one move. Each step either accepts the byte and
 * names the next state or fails with a reason; failure is sticky, so a
 * caller that feeds more bytes after an error gets nothing back.
 */
#include "outrider/http_chunked.h"

#include "outrider/http_chars.h"

#include <stdbool.h>

/* Bytes allowed in an extension or a trailer value: no controls but HTAB. */
static bool is_text(unsigned char c) { return c == '\t' || (c >= ' ' && c != 0x7f); }

static or_chunk_state fail(or_chunked *c, const char *why)
{
    c->why = why;
    return OR_CHUNK_ERROR;
}

/* After a chunk size, or whitespace after it: BWS, ';' or (straight after
 * the size only) the CR that ends the line. BWS is spaces only: http-parser
 * refuses a tab there. */
static or_chunk_state after_size(or_chunked *c, char ch, bool right_after)
{
    if (ch == ' ')
        return OR_CHUNK_BWS;
    if (ch == ';')
        return OR_CHUNK_EXT;
    if (ch == '\r' && right_after)
        return OR_CHUNK_SIZE_LF;
    return fail(c, "bad byte after a chunk size");
}

/* The chunk line: size, optional extensions, CRLF. */
static or_chunk_state step_line(or_chunked *c, char ch)
{
    if (++c->line > OR_CHUNK_LINE_MAX)
        return fail(c, "chunk line too long");
    int d = or_http_hex_value(ch);
    switch (c->state) {
    case OR_CHUNK_SIZE_START:
        if (d < 0)
            return fail(c, "chunk size is not hex");
        c->size = (uint64_t)d;
        return OR_CHUNK_SIZE;
    case OR_CHUNK_SIZE:
        if (d < 0)
            return after_size(c, ch, true);
        if (c->size >> 60)
            return fail(c, "chunk size too large");
        c->size = c->size << 4 | (uint64_t)d;
        return OR_CHUNK_SIZE;
    case OR_CHUNK_BWS:
        return after_size(c, ch, false);
    case OR_CHUNK_EXT:
        if (ch == '\r')
            return OR_CHUNK_SIZE_LF;
        return is_text((unsigned char)ch) ? OR_CHUNK_EXT
                                          : fail(c, "control byte in a chunk extension");
    default: /* OR_CHUNK_SIZE_LF */
        if (ch != '\n')
            return fail(c, "chunk line not ended by CRLF");
        c->line = 0;
        return c->size == 0 ? OR_CHUNK_TRAILER_START : OR_CHUNK_DATA;
    }
}

/* The trailer section and the final CRLF. */
static or_chunk_state step_trailer(or_chunked *c, char ch)
{
    if (++c->trailers > OR_CHUNK_TRAILERS_MAX)
        return fail(c, "trailers too large");
    switch (c->state) {
    case OR_CHUNK_TRAILER_START:
        if (ch == '\r')
            return OR_CHUNK_FINAL_LF;
        return or_http_is_tchar((unsigned char)ch) ? OR_CHUNK_TRAILER_NAME
                                           : fail(c, "a trailer name that is not a token");
    case OR_CHUNK_TRAILER_NAME:
        if (ch == ':')
            return OR_CHUNK_TRAILER_VALUE;
        return or_http_is_tchar((unsigned char)ch) ? OR_CHUNK_TRAILER_NAME
                                           : fail(c, "a trailer name that is not a token");
    case OR_CHUNK_TRAILER_VALUE:
        if (ch == '\r')
            return OR_CHUNK_TRAILER_LF;
        return is_text((unsigned char)ch) ? OR_CHUNK_TRAILER_VALUE
                                          : fail(c, "control byte in a trailer");
    case OR_CHUNK_TRAILER_LF:
        return ch == '\n' ? OR_CHUNK_TRAILER_START : fail(c, "trailer not ended by CRLF");
    default: /* OR_CHUNK_FINAL_LF */
        return ch == '\n' ? OR_CHUNK_DONE : fail(c, "chunked body not ended by CRLF");
    }
}

static or_chunk_state step(or_chunked *c, char ch)
{
    switch (c->state) {
    case OR_CHUNK_DATA_CR:
        return ch == '\r' ? OR_CHUNK_DATA_LF : fail(c, "chunk data not followed by CRLF");
    case OR_CHUNK_DATA_LF:
        return ch == '\n' ? OR_CHUNK_SIZE_START : fail(c, "chunk data not followed by CRLF");
    case OR_CHUNK_TRAILER_START:
    case OR_CHUNK_TRAILER_NAME:
    case OR_CHUNK_TRAILER_VALUE:
    case OR_CHUNK_TRAILER_LF:
    case OR_CHUNK_FINAL_LF:
        return step_trailer(c, ch);
    default:
        return step_line(c, ch);
    }
}

size_t or_chunked_scan(or_chunked *c, const char *data, size_t len)
{
    size_t i = 0;
    while (i < len && c->state != OR_CHUNK_DONE && c->state != OR_CHUNK_ERROR) {
        if (c->state == OR_CHUNK_DATA) {
            size_t take = len - i < c->size ? len - i : (size_t)c->size;
            i += take;
            c->size -= take;
            if (c->size == 0)
                c->state = OR_CHUNK_DATA_CR;
            continue;
        }
        c->state = step(c, data[i]);
        if (c->state != OR_CHUNK_ERROR)
            i++;
    }
    return i;
}

static bool in_trailers(or_chunk_state s)
{
    return s >= OR_CHUNK_TRAILER_START && s <= OR_CHUNK_FINAL_LF;
}

size_t or_chunked_next(or_chunked *c, const char *data, size_t len, or_chunk_piece *piece)
{
    if (c->state == OR_CHUNK_DATA) {
        *piece = OR_CHUNK_PIECE_DATA;
        return or_chunked_scan(c, data, len < c->size ? len : (size_t)c->size);
    }
    bool trailers = in_trailers(c->state);
    *piece = trailers ? OR_CHUNK_PIECE_TRAILERS : OR_CHUNK_PIECE_FRAMING;
    size_t i = 0;
    while (i < len && c->state != OR_CHUNK_DONE && c->state != OR_CHUNK_ERROR &&
           c->state != OR_CHUNK_DATA && in_trailers(c->state) == trailers) {
        c->state = step(c, data[i]);
        if (c->state != OR_CHUNK_ERROR)
            i++;
    }
    return i;
}
