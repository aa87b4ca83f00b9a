/*
 * Growable byte buffers: the one implementation behind stream output,
 * HTTP heads, admin answers and metrics text. Capacity doubles from 1 KiB,
 * so a buffer reused across requests stops allocating once it has grown to
 * its working size.
 */
#include "outrider/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OR_BUF_MIN_CAP 1024

/* Makes room for `extra` more bytes. */
static int reserve(or_buf *b, size_t extra)
{
    if (b->len + extra <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : OR_BUF_MIN_CAP;
    while (cap < b->len + extra)
        cap *= 2;
    char *grown = realloc(b->data, cap);
    if (!grown)
        return -1;
    b->data = grown;
    b->cap = cap;
    return 0;
}

int or_buf_append(or_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (reserve(b, len) != 0)
        return -1;
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

int or_buf_append_str(or_buf *b, const char *s) { return or_buf_append(b, s, strlen(s)); }

size_t or_uint_text(uint64_t v, unsigned width, char out[20])
{
    size_t n = 1;
    for (uint64_t rest = v / 10; rest != 0; rest /= 10)
        n++;
    if (n < width)
        n = width; /* callers ask for at most 20 */
    for (size_t i = n; i-- > 0; v /= 10)
        out[i] = (char)('0' + v % 10);
    return n;
}

int or_buf_append_uint(or_buf *b, uint64_t v)
{
    char text[20];
    return or_buf_append(b, text, or_uint_text(v, 1, text));
}

/* Formats into the free space; only when that is too small is the buffer
 * grown and the text formatted again. */
int or_buf_printf(or_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->cap - b->len;
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= room) {
        if (reserve(b, (size_t)n + 1) != 0)
            return -1;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
    return 0;
}

int or_buf_json(or_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s)
        return or_buf_append(b, "null", 4);
    int r = or_buf_append(b, "\"", 1);
    const char *run = s; /* start of the bytes that go out as they are */
    for (const char *p = s; r == 0; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\')
            continue;
        r = or_buf_append(b, run, (size_t)(p - run));
        if (c == '\0' || r != 0)
            break;
        char quoted[2] = {'\\', (char)c};
        char coded[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
        r = c == '"' || c == '\\' ? or_buf_append(b, quoted, 2) : or_buf_append(b, coded, 6);
        run = p + 1;
    }
    return r == 0 ? or_buf_append(b, "\"", 1) : r;
}

void or_buf_free(or_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void or_buf_reuse(or_buf *b, size_t keep)
{
    if (b->cap > keep)
        or_buf_free(b);
    b->len = 0;
}
