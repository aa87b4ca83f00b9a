/*
 * buf: a growable byte buffer.
 *
 * Contract: an or_buf starts zeroed ({0}) and owns its memory; or_buf_free
 * releases it. Appends grow the capacity geometrically and return 0, or -1
 * when memory runs out (the buffer is then unchanged). The bytes are not
 * NUL-terminated unless the caller appends one. One owner, one thread.
 */
#ifndef OUTRIDER_BUF_H
#define OUTRIDER_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t len, cap;
} or_buf;

int or_buf_append(or_buf *b, const void *data, size_t len);
/* Appends a NUL-terminated string (without the NUL). */
int or_buf_append_str(or_buf *b, const char *s);
/* Writes v in decimal into out, zero-padded to at least `width` digits (at
 * most 20); returns the length. No NUL. */
size_t or_uint_text(uint64_t v, unsigned width, char out[20]);
/* Appends v in decimal. */
int or_buf_append_uint(or_buf *b, uint64_t v);
int or_buf_printf(or_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends `s` as a JSON string literal (quoted, escaped); NULL as null. */
int or_buf_json(or_buf *b, const char *s);
void or_buf_free(or_buf *b);
/* Empties `b`; its memory is kept when no larger than `keep` bytes. */
void or_buf_reuse(or_buf *b, size_t keep);

#endif
