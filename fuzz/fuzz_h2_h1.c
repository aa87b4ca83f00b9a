/*
 * Fuzz target: the HTTP/2 <-> HTTP/1.1 mapping (outrider/http2_h1.h).
 *
 * The first input byte is a control byte. With bit 7 clear, the rest is a
 * request: NUL-separated method, target, :authority, then name/value
 * pairs, put straight into an or_h2_request without the HTTP/2 checks (so
 * the serialiser's own checks are what stands between the bytes and the
 * app); bits 0-1 pick the body framing, bit 2 drops the :authority, bit 3
 * makes the last pair a field the proxy adds, bit 6 makes the pairs
 * request trailers, written by or_h2_h1_trailers instead. With bit 7 set,
 * the rest is an upstream's response head, vetted as the HTTP/1.1 leg
 * vets one (or_http_head_vet_response, bit 0: the answer to a HEAD) and
 * mapped to an HTTP/2 head; or, with bit 6 also set, a chunked trailer
 * section, checked by the chunk scanner and mapped by
 * or_h2_h1_parse_trailers.
 *
 * Beyond memory and UB errors, it checks that a request head that is
 * written is one HTTP/1.1 head exactly (its blank line is its end), passes
 * the byte-exact checks the proxy applies to heads it receives (no NUL,
 * bare CR or LF, obs-fold; a `method SP target SP HTTP/1.1` line; token
 * names followed by ':') and has exactly the field lines the fields given
 * make, so no byte split one; that a refused head writes nothing; and that
 * a mapped response head is :status then fields HTTP/2 accepts, none of
 * them connection-specific, none with surrounding whitespace; that a
 * written Host line has no userinfo; that written request trailers are one
 * last chunk and trailer section exactly (the chunk scanner ends at their
 * last byte) and that trailers in either direction carry no framing,
 * routing or dropped field.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "outrider/http2_h1.h"
#include "outrider/http_chunked.h"

#define MAX_TOKENS 64

static bool name_is(const char *name, size_t len, const char *lower)
{
    return len == strlen(lower) && memcmp(name, lower, len) == 0;
}

/* Field lines the serialiser writes for `f` when the head is written. */
static size_t expected_lines(const or_h2_fields *f, const or_h2_fields *added,
                             or_h2_h1_body body)
{
    size_t n = 1; /* host */
    bool cookie = false;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = or_h2_field_name(f, i);
        size_t len = f->v[i].name_len;
        if (name_is(name, len, "cookie"))
            cookie = true;
        else if (!name_is(name, len, "host") && !name_is(name, len, "te") &&
                 !name_is(name, len, "content-length") && !or_h2_field_dropped(name, len))
            n++;
    }
    return n + (cookie ? 1 : 0) + added->n + (body != OR_H2_H1_BODY_NONE ? 1 : 0);
}

static size_t count_crlf(const char *p, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            n++;
    return n;
}

static void check_written(const or_buf *out, size_t lines)
{
    or_http_head h;
    memset(&h, 0, sizeof h);
    size_t used = 0;
    FUZZ_REQUIRE(or_http_head_collect(&h, out->data, out->len, 1 << 20, &used) == OR_HEAD_DONE);
    FUZZ_REQUIRE(used == out->len);
    const char *why = NULL;
    FUZZ_REQUIRE(or_http_head_check(&h, true, &why) == 0);
    FUZZ_REQUIRE(count_crlf(out->data, out->len) == lines + 2);
    or_http_head_free(&h);
}

/* Names no trailer section leaves the proxy with. */
static bool forbidden_in_trailers(const char *name, size_t len)
{
    return name_is(name, len, "content-length") || name_is(name, len, "host") ||
           name_is(name, len, "transfer-encoding") || or_h2_field_dropped(name, len);
}

static void check_host_line(const or_buf *out)
{
    const char *host = memmem(out->data, out->len, "\r\nhost: ", 8);
    FUZZ_REQUIRE(host != NULL);
    const char *eol = memmem(host + 8, out->len - (size_t)(host + 8 - out->data), "\r\n", 2);
    FUZZ_REQUIRE(eol != NULL && memchr(host + 8, '@', (size_t)(eol - host - 8)) == NULL);
}

/* Written request trailers: exactly one chunked ending, no forbidden name. */
static void check_trailers(const or_buf *out)
{
    or_chunked c = {0};
    FUZZ_REQUIRE(or_chunked_scan(&c, out->data, out->len) == out->len);
    FUZZ_REQUIRE(c.state == OR_CHUNK_DONE);
    for (const char *p = out->data + 3, *end = out->data + out->len; p + 2 < end;) {
        const char *colon = memchr(p, ':', (size_t)(end - p));
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        FUZZ_REQUIRE(colon != NULL && eol != NULL && colon < eol);
        FUZZ_REQUIRE(!forbidden_in_trailers(p, (size_t)(colon - p)));
        p = eol + 2;
    }
}

static void fuzz_request_trailers(const or_h2_fields *f)
{
    or_buf out = {0};
    if (or_h2_h1_trailers(&out, f) == OR_H2_OK)
        check_trailers(&out);
    else
        FUZZ_REQUIRE(out.len == 0);
    or_buf_free(&out);
}

static void fuzz_response_trailers(const char *in, size_t len)
{
    or_chunked c = {0};
    if (or_chunked_scan(&c, "0\r\n", 3) != 3 || or_chunked_scan(&c, in, len) != len ||
        c.state != OR_CHUNK_DONE)
        return;
    or_h2_fields f = {0};
    FUZZ_REQUIRE(or_h2_h1_parse_trailers(in, len, &f) == OR_H2_OK);
    for (size_t i = 0; i < f.n; i++) {
        const char *name = or_h2_field_name(&f, i);
        size_t nlen = f.v[i].name_len;
        FUZZ_REQUIRE(or_h2_field_check(name, nlen, or_h2_field_value(&f, i), f.v[i].value_len) ==
                     OR_H2_OK);
        FUZZ_REQUIRE(name[0] != ':' && !forbidden_in_trailers(name, nlen));
    }
    or_h2_fields_free(&f);
}

static void fuzz_request(uint8_t control, const char *in, size_t len)
{
    const char *tok[MAX_TOKENS];
    size_t tlen[MAX_TOKENS], n = 0;
    for (size_t start = 0; start <= len && n < MAX_TOKENS;) {
        const char *nul = memchr(in + start, '\0', len - start);
        size_t end = nul ? (size_t)(nul - in) : len;
        tok[n] = in + start;
        tlen[n++] = end - start;
        start = end + 1;
    }
    if (n < 3 || tlen[1] > 4096)
        return;
    or_h2_request r;
    or_h2_request_init(&r, 0);
    or_h2_fields added = {0};
    or_buf out = {0};
    or_h2_h1_body body = (or_h2_h1_body)((control & 3) % 3);
    r.content_length = body == OR_H2_H1_BODY_LENGTH ? 5 : -1;
    int rc = or_buf_append(&r.method, tok[0], tlen[0]);
    if (!(control & 4)) {
        r.have_authority = true;
        rc |= or_buf_append(&r.authority, tok[2], tlen[2]);
    }
    size_t pairs = (n - 3) / 2;
    for (size_t i = 0; i < pairs; i++) {
        bool proxy = (control & 8) && i + 1 == pairs;
        rc |= or_h2_fields_add(proxy ? &added : &r.fields, tok[3 + 2 * i], tlen[3 + 2 * i],
                               tok[4 + 2 * i], tlen[4 + 2 * i]);
    }
    r.host = or_h2_fields_find(&r.fields, "host", 4);
    if (rc == 0 && (control & 0x40)) {
        fuzz_request_trailers(&r.fields);
    } else if (rc == 0) {
        or_h2_check c = or_h2_h1_request_head(&out, &r, tok[1], tlen[1], &added, "up:80", body);
        if (c == OR_H2_OK) {
            check_written(&out, expected_lines(&r.fields, &added, body));
            check_host_line(&out);
        }
        else
            FUZZ_REQUIRE(out.len == 0);
    }
    or_buf_free(&out);
    or_h2_fields_free(&added);
    or_h2_request_free(&r);
}

static void fuzz_response(uint8_t control, const char *in, size_t len)
{
    or_http_head h;
    memset(&h, 0, sizeof h);
    size_t used = 0;
    const char *why = NULL;
    or_h2_fields f = {0};
    if (or_http_head_collect(&h, in, len, 64 * 1024, &used) == OR_HEAD_DONE &&
        or_http_head_vet_response(&h, control & 1, &why) == 0 &&
        or_h2_h1_response_head(&h, &f) == OR_H2_OK) {
        FUZZ_REQUIRE(f.n >= 1 && f.v[0].name_len == 7 && f.v[0].value_len == 3);
        FUZZ_REQUIRE(memcmp(or_h2_field_name(&f, 0), ":status", 7) == 0);
        for (size_t i = 1; i < f.n; i++) {
            const char *v = or_h2_field_value(&f, i);
            size_t vlen = f.v[i].value_len;
            FUZZ_REQUIRE(or_h2_field_check(or_h2_field_name(&f, i), f.v[i].name_len, v, vlen) ==
                         OR_H2_OK);
            FUZZ_REQUIRE(or_h2_field_name(&f, i)[0] != ':');
            FUZZ_REQUIRE(vlen == 0 || (v[0] != ' ' && v[0] != '\t' && v[vlen - 1] != ' ' &&
                                       v[vlen - 1] != '\t'));
        }
    }
    or_h2_fields_free(&f);
    or_http_head_free(&h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    if ((data[0] & 0xc0) == 0xc0)
        fuzz_response_trailers(in, size - 1);
    else if (data[0] & 0x80)
        fuzz_response(data[0], in, size - 1);
    else
        fuzz_request(data[0], in, size - 1);
    return 0;
}
