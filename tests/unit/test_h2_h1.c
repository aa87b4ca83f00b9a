/*
 * HTTP/2 <-> HTTP/1.1 mapping (http2_h1.h): the HTTP/1.1 head an HTTP/2
 * request is written as, the bytes that must never reach it, the chunked
 * trailers, the HTTP/2 head made from an HTTP/1.1 response, and the
 * chunked decoder (http_chunked.h) that splits a body into data and
 * trailers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "outrider/http2_h1.h"
#include "outrider/http_chunked.h"

static or_h2_check add(or_h2_request *r, const char *name, const char *value)
{
    return or_h2_request_field(r, name, strlen(name), value, strlen(value));
}

/* A request through the HTTP/2 checks: pseudo-headers, then `extra`. */
static void request(or_h2_request *r, const char *method, bool authority,
                    const char *const *extra, size_t n)
{
    or_h2_request_init(r, 0);
    assert_int_equal(add(r, ":method", method), OR_H2_OK);
    assert_int_equal(add(r, ":scheme", "http"), OR_H2_OK);
    if (authority)
        assert_int_equal(add(r, ":authority", "orders.shop:8080"), OR_H2_OK);
    assert_int_equal(add(r, ":path", "/api/items?x=1"), OR_H2_OK);
    for (size_t i = 0; i + 1 < n; i += 2)
        assert_int_equal(add(r, extra[i], extra[i + 1]), OR_H2_OK);
    assert_int_equal(or_h2_request_done(r), OR_H2_OK);
}

static void add_field(or_h2_fields *f, const char *name, const char *value)
{
    assert_int_equal(or_h2_fields_add(f, name, strlen(name), value, strlen(value)), 0);
}

static or_h2_check head(or_buf *out, const or_h2_request *r, const or_h2_fields *added,
                        or_h2_h1_body body)
{
    out->len = 0;
    or_h2_check c = or_h2_h1_request_head(out, r, "/api/items?x=1", 14, added, "up:80", body);
    if (c == OR_H2_OK && or_buf_append(out, "", 1) == 0)
        out->len--;
    return c;
}

static void test_get_head(void **state)
{
    (void)state;
    const char *extra[] = {"accept", "*/*", "te", "trailers", "x-forwarded-client-cert",
                           "By=forged", "user-agent", "t\tab"};
    or_h2_request r;
    request(&r, "GET", true, extra, 8);
    or_h2_fields added = {0};
    add_field(&added, "x-request-id", "rid-1");
    add_field(&added, "x-forwarded-client-cert", "By=me;URI=you");
    or_buf out = {0};
    assert_int_equal(head(&out, &r, &added, OR_H2_H1_BODY_NONE), OR_H2_OK);
    assert_string_equal(out.data, "GET /api/items?x=1 HTTP/1.1\r\n"
                                  "host: orders.shop:8080\r\n"
                                  "accept: */*\r\n"
                                  "user-agent: t\tab\r\n"
                                  "x-request-id: rid-1\r\n"
                                  "x-forwarded-client-cert: By=me;URI=you\r\n"
                                  "\r\n");
    or_buf_free(&out);
    or_h2_fields_free(&added);
    or_h2_request_free(&r);
}

static void test_body_framing_and_cookies(void **state)
{
    (void)state;
    const char *extra[] = {"cookie", "a=1", "content-length", "5", "cookie", "b=2",
                           "host", "orders.shop"};
    or_h2_request r;
    request(&r, "POST", false, extra, 8);
    or_buf out = {0};
    assert_int_equal(head(&out, &r, NULL, OR_H2_H1_BODY_LENGTH), OR_H2_OK);
    assert_string_equal(out.data, "POST /api/items?x=1 HTTP/1.1\r\n"
                                  "host: orders.shop\r\n"
                                  "cookie: a=1; b=2\r\n"
                                  "content-length: 5\r\n"
                                  "\r\n");
    or_h2_request_free(&r);

    request(&r, "POST", false, NULL, 0);
    assert_int_equal(head(&out, &r, NULL, OR_H2_H1_BODY_CHUNKED), OR_H2_OK);
    assert_string_equal(out.data, "POST /api/items?x=1 HTTP/1.1\r\n"
                                  "host: up:80\r\n"
                                  "transfer-encoding: chunked\r\n"
                                  "\r\n");
    /* no content-length to frame by: refused rather than guessed */
    out.len = 0;
    assert_int_equal(or_h2_h1_request_head(&out, &r, "/", 1, NULL, "up", OR_H2_H1_BODY_LENGTH),
                     OR_H2_BAD_CONTENT_LENGTH);
    assert_int_equal(out.len, 0);
    or_buf_free(&out);
    or_h2_request_free(&r);
}

/* Fields that never went through the HTTP/2 checks: the head is refused
 * and nothing is written. */
static void test_unsafe_bytes_refused(void **state)
{
    (void)state;
    static const struct {
        const char *name, *value;
        or_h2_check want;
    } cases[] = {
        {"x-evil", "a\r\nx-injected: 1", OR_H2_BAD_VALUE},
        {"x-evil", "a\nb", OR_H2_BAD_VALUE},
        {"x-evil", "a\rb", OR_H2_BAD_VALUE},
        {"x-evil", "a\x01" "b", OR_H2_BAD_VALUE},
        {"x-evil:x", "1", OR_H2_BAD_NAME},
        {"x evil", "1", OR_H2_BAD_NAME},
        {"X-Evil", "1", OR_H2_BAD_NAME},
        {":path", "/x", OR_H2_BAD_NAME},
        {"", "1", OR_H2_BAD_NAME},
        {"connection", "close", OR_H2_CONNECTION_HEADER},
        {"transfer-encoding", "chunked", OR_H2_CONNECTION_HEADER},
        {"upgrade", "h2c", OR_H2_CONNECTION_HEADER},
    };
    or_buf out = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        or_h2_request r;
        request(&r, "GET", true, NULL, 0);
        add_field(&r.fields, cases[i].name, cases[i].value);
        out.len = 0;
        assert_int_equal(or_h2_h1_request_head(&out, &r, "/", 1, NULL, "up", OR_H2_H1_BODY_NONE),
                         cases[i].want);
        assert_int_equal(out.len, 0);
        /* the same field added by the proxy, or as a trailer */
        or_h2_fields f = {0};
        add_field(&f, cases[i].name, cases[i].value);
        or_h2_fields_free(&r.fields);
        assert_int_not_equal(or_h2_h1_request_head(&out, &r, "/", 1, &f, "up", OR_H2_H1_BODY_NONE),
                             OR_H2_OK);
        assert_int_not_equal(or_h2_h1_trailers(&out, &f), OR_H2_OK);
        assert_int_equal(out.len, 0);
        or_h2_fields_free(&f);
        or_h2_request_free(&r);
    }
    or_buf_free(&out);
}

static void test_unsafe_start_line_refused(void **state)
{
    (void)state;
    or_buf out = {0};
    or_h2_request r;
    request(&r, "GET", true, NULL, 0);
    assert_int_equal(or_h2_h1_request_head(&out, &r, "/a b", 4, NULL, "up", OR_H2_H1_BODY_NONE),
                     OR_H2_BAD_VALUE);
    assert_int_equal(or_h2_h1_request_head(&out, &r, "/a\r\n", 4, NULL, "up", OR_H2_H1_BODY_NONE),
                     OR_H2_BAD_VALUE);
    r.method.len = 0;
    assert_int_equal(or_buf_append(&r.method, "GE T", 4), 0);
    assert_int_equal(or_h2_h1_request_head(&out, &r, "/", 1, NULL, "up", OR_H2_H1_BODY_NONE),
                     OR_H2_BAD_VALUE);
    or_h2_request_free(&r);
    request(&r, "GET", false, NULL, 0);
    r.authority.len = 0;
    assert_int_equal(or_buf_append(&r.authority, "a\r\nx: y", 7), 0);
    r.have_authority = true;
    assert_int_equal(or_h2_h1_request_head(&out, &r, "/", 1, NULL, "up", OR_H2_H1_BODY_NONE),
                     OR_H2_BAD_HOST);
    assert_int_equal(out.len, 0);
    or_h2_request_free(&r);
    or_buf_free(&out);
}

static void test_trailers(void **state)
{
    (void)state;
    or_h2_fields f = {0};
    or_buf out = {0};
    assert_int_equal(or_h2_h1_trailers(&out, &f), OR_H2_OK);
    assert_int_equal(out.len, 5);
    assert_memory_equal(out.data, "0\r\n\r\n", 5);
    add_field(&f, "grpc-status", "0");
    add_field(&f, "x-sum", "abc");
    out.len = 0;
    assert_int_equal(or_h2_h1_trailers(&out, &f), OR_H2_OK);
    const char want[] = "0\r\ngrpc-status: 0\r\nx-sum: abc\r\n\r\n";
    assert_int_equal(out.len, sizeof want - 1);
    assert_memory_equal(out.data, want, sizeof want - 1);
    or_buf_free(&out);
    or_h2_fields_free(&f);
}

/* Request trailers are written as chunked trailers without the fields a
 * trailer section must not carry: an application that merges trailers
 * into the head would otherwise take a second content-length or host, or
 * an x-forwarded-client-cert the proxy never set. */
static void test_trailers_forbidden_dropped(void **state)
{
    (void)state;
    or_h2_fields f = {0};
    or_buf out = {0};
    const char *forbidden[] = {"content-length", "host", "x-forwarded-client-cert", "authorization",
                               "cookie", "trailer", "content-type", "proxy-authorization"};
    add_field(&f, "x-sum", "abc");
    for (size_t i = 0; i < sizeof forbidden / sizeof forbidden[0]; i++)
        add_field(&f, forbidden[i], "forged");
    assert_int_equal(or_h2_h1_trailers(&out, &f), OR_H2_OK);
    const char want[] = "0\r\nx-sum: abc\r\n\r\n";
    assert_int_equal(out.len, sizeof want - 1);
    assert_memory_equal(out.data, want, sizeof want - 1);
    or_buf_free(&out);
    or_h2_fields_free(&f);
}

/* The Host line is an authority without userinfo: "allowed:1@other" would
 * be host "allowed" to the policy and "other" to a URI parser. */
static void test_authority_userinfo_refused(void **state)
{
    (void)state;
    const char *bad[] = {"orders.shop:1@admin.shop", "a@b", "a/b", "a?b", "a#b", "a\\b", "a\"b"};
    or_buf out = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        or_h2_request r;
        request(&r, "GET", false, NULL, 0);
        assert_int_equal(or_buf_append(&r.authority, bad[i], strlen(bad[i])), 0);
        r.have_authority = true;
        assert_int_equal(head(&out, &r, NULL, OR_H2_H1_BODY_NONE), OR_H2_BAD_HOST);
        assert_int_equal(out.len, 0);
        or_h2_request_free(&r);
        /* a Host field is refused already when the block ends */
        or_h2_request_init(&r, 0);
        assert_int_equal(add(&r, ":method", "GET"), OR_H2_OK);
        assert_int_equal(add(&r, ":scheme", "http"), OR_H2_OK);
        assert_int_equal(add(&r, ":path", "/"), OR_H2_OK);
        assert_int_equal(add(&r, "host", bad[i]), OR_H2_OK);
        assert_int_equal(or_h2_request_done(&r), OR_H2_BAD_HOST);
        or_h2_request_free(&r);
    }
    or_h2_request r;
    request(&r, "GET", false, NULL, 0);
    assert_int_equal(or_buf_append(&r.authority, "[::1]:8080", 10), 0);
    r.have_authority = true;
    assert_int_equal(head(&out, &r, NULL, OR_H2_H1_BODY_NONE), OR_H2_OK);
    assert_non_null(strstr(out.data, "\r\nhost: [::1]:8080\r\n"));
    or_h2_request_free(&r);
    or_buf_free(&out);
}

/* A response head parsed as the proxy parses one. */
static void response(or_http_head *h, const char *raw, bool head_request)
{
    memset(h, 0, sizeof *h);
    size_t used = 0;
    assert_int_equal(or_http_head_collect(h, raw, strlen(raw), 65536, &used), OR_HEAD_DONE);
    const char *why = NULL;
    int rc = or_http_head_vet_response(h, head_request, &why);
    if (rc != 0)
        print_message("refused: %s\n", why);
    assert_int_equal(rc, 0);
}

static const char *value_of(const or_h2_fields *f, const char *name)
{
    long i = or_h2_fields_find(f, name, strlen(name));
    return i < 0 ? NULL : or_h2_field_value(f, (size_t)i);
}

static void test_response_head(void **state)
{
    (void)state;
    or_http_head h;
    response(&h,
             "HTTP/1.1 200 OK\r\nContent-Type: text/plain  \r\nConnection: keep-alive, X-Hop\r\n"
             "Keep-Alive: timeout=5\r\nX-Hop: 1\r\nTransfer-Encoding: chunked\r\n"
             "Trailer: X-Sum\r\nUpgrade: h2c\r\nProxy-Connection: x\r\nSet-Cookie: a=1\r\n\r\n",
             false);
    or_h2_fields f = {0};
    assert_int_equal(or_h2_h1_response_head(&h, &f), OR_H2_OK);
    assert_int_equal(f.n, 4);
    assert_string_equal(or_h2_field_name(&f, 0), ":status");
    assert_string_equal(value_of(&f, ":status"), "200");
    assert_string_equal(value_of(&f, "content-type"), "text/plain");
    assert_string_equal(value_of(&f, "trailer"), "X-Sum");
    assert_string_equal(value_of(&f, "set-cookie"), "a=1");
    or_h2_fields_free(&f);
    or_http_head_free(&h);

    response(&h, "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nX-A: b\r\n\r\n", false);
    assert_true(h.message_done);
    assert_int_equal(or_h2_h1_response_head(&h, &f), OR_H2_OK);
    assert_null(value_of(&f, "content-length"));
    assert_string_equal(value_of(&f, "x-a"), "b");
    or_h2_fields_free(&f);
    or_http_head_free(&h);

    response(&h, "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n", true);
    assert_true(h.message_done); /* the answer to a HEAD has no body */
    assert_int_equal(or_h2_h1_response_head(&h, &f), OR_H2_OK);
    assert_string_equal(value_of(&f, "content-length"), "42");
    or_h2_fields_free(&f);
    or_http_head_free(&h);
}

static void test_response_head_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "HTTP/1.1 200 OK\r\nBad Name: 1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX: 1\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        "HTTP/2 200\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Ctl: a\x01" "b\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX-Ctl: a\x7f" "b\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        or_http_head h;
        memset(&h, 0, sizeof h);
        size_t used = 0;
        assert_int_equal(or_http_head_collect(&h, bad[i], strlen(bad[i]), 65536, &used),
                         OR_HEAD_DONE);
        const char *why = NULL;
        assert_int_equal(or_http_head_vet_response(&h, false, &why), -1);
        assert_non_null(why);
        or_http_head_free(&h);
    }
}

static void test_parse_trailers(void **state)
{
    (void)state;
    const char raw[] = "X-Sum: abc \r\nContent-Length: 5\r\nGrpc-Status:0\r\n"
                       "Connection: close\r\nGrpc-Message: \tall good\r\n\r\n";
    or_h2_fields f = {0};
    assert_int_equal(or_h2_h1_parse_trailers(raw, sizeof raw - 1, &f), OR_H2_OK);
    assert_int_equal(f.n, 3);
    assert_string_equal(value_of(&f, "x-sum"), "abc");
    assert_string_equal(value_of(&f, "grpc-status"), "0");
    assert_string_equal(value_of(&f, "grpc-message"), "all good");
    or_h2_fields_free(&f);
}

/* Decodes `body` fed `step` bytes at a time; the data and trailers it found. */
static size_t decode(const char *body, size_t len, size_t step, or_buf *data, or_buf *trailers,
                     or_chunked *c)
{
    *c = (or_chunked){0};
    size_t used = 0;
    while (used < len && c->state != OR_CHUNK_DONE && c->state != OR_CHUNK_ERROR) {
        size_t avail = len - used < step ? len - used : step;
        size_t off = 0;
        while (off < avail && c->state != OR_CHUNK_DONE && c->state != OR_CHUNK_ERROR) {
            or_chunk_piece piece;
            size_t n = or_chunked_next(c, body + used + off, avail - off, &piece);
            if (piece == OR_CHUNK_PIECE_DATA)
                assert_int_equal(or_buf_append(data, body + used + off, n), 0);
            else if (piece == OR_CHUNK_PIECE_TRAILERS)
                assert_int_equal(or_buf_append(trailers, body + used + off, n), 0);
            if (n == 0)
                break;
            off += n;
        }
        used += off;
        if (off < avail)
            break;
    }
    return used;
}

static void test_chunked_decoder(void **state)
{
    (void)state;
    const char body[] = "6\r\nhello \r\n5;ext=1\r\nworld\r\n0\r\nX-Sum: abc\r\n\r\nNEXT";
    for (size_t step = 1; step <= sizeof body; step++) {
        or_buf data = {0}, trailers = {0};
        or_chunked c;
        size_t used = decode(body, sizeof body - 1, step, &data, &trailers, &c);
        assert_int_equal(c.state, OR_CHUNK_DONE);
        assert_int_equal(used, sizeof body - 1 - 4);
        assert_int_equal(data.len, 11);
        assert_memory_equal(data.data, "hello world", 11);
        assert_int_equal(trailers.len, 14);
        assert_memory_equal(trailers.data, "X-Sum: abc\r\n\r\n", 14);
        or_buf_free(&data);
        or_buf_free(&trailers);
    }
    const char bad[] = "5\r\nhelloXX0\r\n\r\n";
    or_buf data = {0}, trailers = {0};
    or_chunked c;
    decode(bad, sizeof bad - 1, 64, &data, &trailers, &c);
    assert_int_equal(c.state, OR_CHUNK_ERROR);
    assert_non_null(c.why);
    or_buf_free(&data);
    or_buf_free(&trailers);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_head),
        cmocka_unit_test(test_body_framing_and_cookies),
        cmocka_unit_test(test_unsafe_bytes_refused),
        cmocka_unit_test(test_unsafe_start_line_refused),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_trailers_forbidden_dropped),
        cmocka_unit_test(test_authority_userinfo_refused),
        cmocka_unit_test(test_response_head),
        cmocka_unit_test(test_response_head_refused),
        cmocka_unit_test(test_parse_trailers),
        cmocka_unit_test(test_chunked_decoder),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
