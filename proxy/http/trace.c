/*
 * trace: request IDs and W3C trace context (include/outrider/trace.h).
 *
 * The traceparent check follows the W3C Trace Context recommendation:
 * lower-case hex fields, trace and parent IDs not all zero, version ff
 * invalid, version 00 exactly 55 bytes, a later version possibly followed by
 * more fields after a dash.
 */
#include "outrider/trace.h"

#include <string.h>

static const char hex_digits[] = "0123456789abcdef";

static void hex(char *out, const unsigned char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        *out++ = hex_digits[bytes[i] >> 4];
        *out++ = hex_digits[bytes[i] & 15];
    }
    *out = '\0';
}

static bool is_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

/* n lower-case hex digits, not all zero. */
static bool trace_field(const char *s, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        if (!is_hex(s[i]))
            return false;
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

bool or_trace_parent_valid(const char *v, size_t n)
{
    if (n < 55 || v[2] != '-' || v[35] != '-' || v[52] != '-')
        return false;
    bool v00 = v[0] == '0' && v[1] == '0';
    if ((v00 && n != 55) || (!v00 && n > 55 && v[55] != '-'))
        return false;
    return is_hex(v[0]) && is_hex(v[1]) && !(v[0] == 'f' && v[1] == 'f') &&
           trace_field(v + 3, 32) && trace_field(v + 36, 16) && is_hex(v[53]) && is_hex(v[54]);
}

/* n fresh random bytes; each byte is handed out once. */
static void draw(or_trace_random *rnd, mbedtls_ctr_drbg_context *drbg, unsigned char *out,
                 size_t n)
{
    if (rnd->left < n) {
        bool drawn = mbedtls_ctr_drbg_random(drbg, rnd->bytes, sizeof rnd->bytes) == 0;
        rnd->left = drawn ? sizeof rnd->bytes : 0;
        if (!drawn) { /* not with a seeded DRBG; then zeros, never bytes used before */
            memset(out, 0, n);
            return;
        }
    }
    memcpy(out, rnd->bytes + sizeof rnd->bytes - rnd->left, n);
    rnd->left -= n;
}

static void make_request_id(or_trace *t, unsigned char r[16])
{
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    char *p = t->request_id;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *p++ = '-';
        *p++ = hex_digits[r[i] >> 4];
        *p++ = hex_digits[r[i] & 15];
    }
    *p = '\0';
    t->own_request_id = true;
}

static void make_trace(or_trace *t, unsigned char r[24])
{
    unsigned char zero[16] = {0};
    char parent[17];
    if (memcmp(r, zero, 16) == 0) /* all-zero IDs are invalid */
        r[15] = 1;
    if (memcmp(r + 16, zero, 8) == 0)
        r[23] = 1;
    hex(t->trace_id, r, 16);
    hex(parent, r + 16, 8);
    /* "00-" trace_id "-" parent "-01" */
    char *p = t->traceparent;
    memcpy(p, "00-", 3);
    memcpy(p + 3, t->trace_id, 32);
    p[35] = '-';
    memcpy(p + 36, parent, 16);
    memcpy(p + 52, "-01", 4);
    t->own_traceparent = true;
}

void or_trace_take(or_trace *t, or_trace_random *rnd, mbedtls_ctr_drbg_context *drbg,
                   const char *request_id, size_t request_id_len, const char *traceparent,
                   size_t traceparent_len)
{
    unsigned char r[24];
    memset(t, 0, sizeof *t);
    if (request_id && request_id_len > 0 && request_id_len < sizeof t->request_id)
        memcpy(t->request_id, request_id, request_id_len);
    else {
        draw(rnd, drbg, r, 16);
        make_request_id(t, r);
    }
    if (!traceparent) {
        draw(rnd, drbg, r, 24);
        make_trace(t, r);
    }
    else if (or_trace_parent_valid(traceparent, traceparent_len))
        memcpy(t->trace_id, traceparent + 3, 32);
}
