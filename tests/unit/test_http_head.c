/*
 * HTTP/1 heads (lib/http/http_head.c): what a request must look like to be
 * passed on, which headers a Connection token may remove, and when a
 * response has no body whatever its headers say.
 *
 * Each request is collected, checked and parsed exactly as the proxy does
 * (or_http_head_vet_request), and the status the proxy would answer is
 * compared with the one RFC 9110/9112 call for: one table holds every
 * smuggling and framing case of docs/security.md and test_hostile.sh.
 * or_http_msg (the whole-message reader of the admin endpoint, the CA and
 * the agent) is driven whole, byte by byte and cut short.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "outrider/http_chars.h"
#include "outrider/http_head.h"

typedef struct {
    or_http_head h;
    http_parser parser;
} head_case;

/* Collects `text` as one request head and vets it; returns the status. */
static int vet(head_case *c, const char *text)
{
    memset(c, 0, sizeof *c);
    http_parser_init(&c->parser, HTTP_REQUEST);
    size_t used = 0;
    or_head_status st = or_http_head_collect(&c->h, text, strlen(text), 65536, &used);
    assert_int_equal(st, OR_HEAD_DONE);
    const char *why = NULL;
    int status = or_http_head_vet_request(&c->h, &c->parser, &why);
    assert_true(status == 0 || why != NULL);
    return status;
}

static void expect_status(const char *text, int want)
{
    head_case c;
    int got = vet(&c, text);
    if (got != want)
        fail_msg("expected %d, got %d for: %s", want, got, text);
    or_http_head_free(&c.h);
}

static void test_empty_lines_only(void **state)
{
    (void)state;
    or_http_head h = {0};
    size_t used = 0;
    assert_int_equal(or_http_head_collect(&h, "\r\n\r\n", 4, 100, &used), OR_HEAD_MORE);
    assert_int_equal(used, 4);
    assert_int_equal(or_http_head_collect(&h, "\n", 1, 100, &used), OR_HEAD_MORE);
    or_http_head_free(&h);
}

/* A TLS ClientHello on a plaintext port is refused at its first bytes, not
 * waited on for a blank line that never comes. */
static void test_not_a_head(void **state)
{
    (void)state;
    static const char hello[] = "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    or_http_head h = {0};
    const char *why = NULL;
    size_t used = 0;
    assert_int_equal(or_http_head_collect(&h, hello, sizeof hello - 1, 65536, &used),
                     OR_HEAD_DONE);
    assert_int_equal(used, sizeof hello - 1);
    assert_int_equal(or_http_head_check(&h, true, &why), 400);
    assert_non_null(why);
    or_http_head_free(&h);
    or_http_head h2 = {0};
    assert_int_equal(or_http_head_collect(&h2, "GET / HT", 8, 65536, &used), OR_HEAD_MORE);
    or_http_head_free(&h2);
}

static void test_request_line(void **state)
{
    (void)state;
    expect_status("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0);
    expect_status("GET / HTTP/1.0\r\n\r\n", 0);
    expect_status("GET /\r\n\r\n", 400);                            /* HTTP/0.9 */
    expect_status("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", 400);       /* tab before the version */
    expect_status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400);       /* two spaces */
    expect_status("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400);       /* trailing space */
    expect_status("GET / http/1.1\r\nHost: a\r\n\r\n", 400);
    expect_status("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505);
    expect_status("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505);
    expect_status("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400);
    expect_status("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405);
}

static void test_field_names(void **state)
{
    (void)state;
    expect_status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400);
    expect_status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nFoo Bar: x\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nFoo\x01: x\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nno-colon\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nX-A_b.c!#$%&'*+^`|~: v\r\n\r\n", 0);
    expect_status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);
    expect_status("GET / HTTP/1.1\r\n\r\n", 400); /* no Host */
}

static void test_transfer_codings(void **state)
{
    (void)state;
    const char *base = "POST / HTTP/1.1\r\nHost: a\r\n";
    char text[256];
    static const struct {
        const char *headers;
        int status;
    } cases[] = {
        {"Transfer-Encoding: chunked\r\n", 0},
        {"Transfer-Encoding: Chunked \r\n", 0},
        {"Transfer-Encoding: gzip, chunked\r\n", 501},
        {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501},
        {"Transfer-Encoding: chunked, gzip\r\n", 400},
        {"Transfer-Encoding: gzip\r\n", 400},
        {"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 400},
        {"Content-Length: 5\r\nContent-Length: 6\r\n", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "%s%s\r\n", base, cases[i].headers);
        expect_status(text, cases[i].status);
    }
}

/* Every framing and smuggling case, as the proxy answers it. */
static void test_smuggling_table(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int status;
    } cases[] = {
        /* a Host the application could read as another host than the policy */
        {"GET / HTTP/1.1\r\nHost: a:1@admin.internal\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a@admin.internal\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: orders.shop:8080\r\n\r\n", 0},
        {"GET / HTTP/1.1\r\nHost: \r\n\r\n", 0},
        /* duplicate or conflicting Content-Length */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400},
        /* CL with TE, TE other than chunked */
        {"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 400},
        /* obs-fold, whitespace before the colon */
        {"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n\t2\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding\t: chunked\r\n\r\n", 400},
        /* bad request lines, HTTP/0.9, versions */
        {"GET /\r\n\r\n", 400},
        {"GET\r\n\r\n", 400},
        {" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 0},
        {"GET / HTTP/1.10\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/3.0\r\nHost: a\r\n\r\n", 505},
        /* bare LF, bare CR, NUL and control bytes */
        {"GET / HTTP/1.1\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX-\x7f: b\r\n\r\n", 400},
        {"GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n", 400},
        /* Host rules; absolute-form is taken */
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400},
        {"GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n", 0},
        {"CONNECT b:443 HTTP/1.1\r\nHost: b:443\r\n\r\n", 405},
        /* Connection naming protected headers is let through (and ignored) */
        {"POST / HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: 1\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_status(cases[i].text, cases[i].status);
}

/* Limits: a request line over 8 KiB is 414, over 100 headers 431. */
static void test_limits(void **state)
{
    (void)state;
    static char text[OR_HTTP_MAX_REQUEST_LINE + 4096];
    int n = snprintf(text, sizeof text, "GET /");
    memset(text + n, 'a', OR_HTTP_MAX_REQUEST_LINE);
    snprintf(text + n + OR_HTTP_MAX_REQUEST_LINE, 64, " HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_status(text, 414);
    n = snprintf(text, sizeof text, "GET / HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; i < OR_HTTP_MAX_HEADERS; i++)
        n += snprintf(text + n, sizeof text - (size_t)n, "X-%d: v\r\n", i);
    snprintf(text + n, sizeof text - (size_t)n, "\r\n");
    expect_status(text, 431);
}

/* ---- or_http_msg ---- */

static or_http_msg_state msg_whole(or_http_msg *m, bool request, const char *text, size_t body_max)
{
    or_http_msg_init(m, request, 4096, body_max);
    or_http_msg_feed(m, text, strlen(text));
    return or_http_msg_finish(m);
}

static void test_msg_request(void **state)
{
    (void)state;
    or_http_msg m;
    const char *pipelined = "POST /a?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                            "GET /b HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(msg_whole(&m, true, pipelined, 16), OR_HTTP_MSG_COMPLETE);
    assert_string_equal(m.method, "POST");
    assert_int_equal(m.head.url_len, 6);
    assert_memory_equal(m.head.url, "/a?x=1", 6);
    assert_string_equal(m.body, "abc");
    or_http_msg_free(&m);
    /* byte by byte, chunked */
    const char *chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
    or_http_msg_init(&m, true, 4096, 16);
    for (size_t i = 0; i + 1 < strlen(chunked); i++)
        assert_int_equal(or_http_msg_feed(&m, chunked + i, 1), OR_HTTP_MSG_PARTIAL);
    assert_int_equal(or_http_msg_feed(&m, chunked + strlen(chunked) - 1, 1), OR_HTTP_MSG_COMPLETE);
    assert_string_equal(m.body, "abcde");
    or_http_msg_free(&m);
    /* an HTTP/1.1 request without Host is let by here */
    assert_int_equal(msg_whole(&m, true, "GET / HTTP/1.1\r\n\r\n", 16), OR_HTTP_MSG_COMPLETE);
    assert_null(m.body);
    or_http_msg_free(&m);
}

static void test_msg_refusals(void **state)
{
    (void)state;
    or_http_msg m;
    /* announced too large: known at the end of the head */
    or_http_msg_init(&m, true, 4096, 4);
    const char *big = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n";
    assert_int_equal(or_http_msg_feed(&m, big, strlen(big)), OR_HTTP_MSG_TOO_LARGE);
    or_http_msg_free(&m);
    assert_int_equal(msg_whole(&m, true,
                               "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nabcde\r\n0\r\n\r\n", 4),
                     OR_HTTP_MSG_TOO_LARGE);
    or_http_msg_free(&m);
    /* smuggling shapes, cut short, too long a head, nothing at all */
    static const char *const bad[] = {
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 1\r\n\r\nx",
        "GET / HTTP/1.1\nHost: a\n\n",
        "GET /\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
        "GET / HTTP/1.1\r\nHost: a\r\n",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (msg_whole(&m, true, bad[i], 16) != OR_HTTP_MSG_MALFORMED)
            fail_msg("not refused: %s", bad[i]);
        assert_non_null(m.why);
        or_http_msg_free(&m);
    }
    static char head[8192];
    memset(head, 'a', sizeof head - 1);
    memcpy(head, "GET /", 5);
    assert_int_equal(msg_whole(&m, true, head, 16), OR_HTTP_MSG_MALFORMED);
    or_http_msg_free(&m);
    assert_int_equal(msg_whole(&m, true, "", 16), OR_HTTP_MSG_PARTIAL);
    or_http_msg_free(&m);
}

static void test_msg_response(void **state)
{
    (void)state;
    or_http_msg m;
    assert_int_equal(msg_whole(&m, false, "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 8),
                     OR_HTTP_MSG_COMPLETE);
    assert_int_equal(m.status, 201);
    assert_string_equal(m.body, "ok");
    or_http_msg_free(&m);
    /* read until the server closes */
    assert_int_equal(msg_whole(&m, false, "HTTP/1.0 200 OK\r\n\r\nuntil close", 64),
                     OR_HTTP_MSG_COMPLETE);
    assert_string_equal(m.body, "until close");
    or_http_msg_free(&m);
    assert_int_equal(msg_whole(&m, false, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort", 64),
                     OR_HTTP_MSG_MALFORMED);
    or_http_msg_free(&m);
    assert_int_equal(msg_whole(&m, false, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nx", 64),
                     OR_HTTP_MSG_MALFORMED);
    or_http_msg_free(&m);
    assert_int_equal(msg_whole(&m, false, "HTTP/1.1 200 OK\r\n\r\n0123456789", 4),
                     OR_HTTP_MSG_TOO_LARGE);
    or_http_msg_free(&m);
}

static bool is_hop(const or_http_head *h, const char *name)
{
    const or_http_header *hdr = or_http_head_find(h, name, strlen(name));
    assert_non_null(hdr);
    return or_http_is_hop_by_hop(h, hdr);
}

/* A Connection token removes the header it names, except the headers that
 * frame or route the request and those the proxy guarantees. */
static void test_connection_tokens(void **state)
{
    (void)state;
    head_case c;
    assert_int_equal(vet(&c, "POST /api/x HTTP/1.1\r\nHost: a\r\n"
                             "Connection: content-length, host,X-Request-Id\r\n"
                             "Connection: x-forwarded-client-cert, foo\r\n"
                             "Content-Length: 3\r\nx-request-id: r\r\n"
                             "x-forwarded-client-cert: By=x\r\nfoo: 1\r\nbar: 2\r\n\r\n"),
                     0);
    assert_false(is_hop(&c.h, "content-length"));
    assert_false(is_hop(&c.h, "host"));
    assert_false(is_hop(&c.h, "x-request-id"));
    assert_false(is_hop(&c.h, "x-forwarded-client-cert"));
    assert_true(is_hop(&c.h, "foo"));
    assert_false(is_hop(&c.h, "bar"));
    assert_true(is_hop(&c.h, "connection"));
    assert_true(c.h.has_content_length);
    assert_int_equal(c.h.content_length, 3);
    or_http_head_free(&c.h);
}

/* Field values come without the whitespace around them (RFC 9110 5.5),
 * whatever the line had: every reader, and what is forwarded, sees them so. */
static void test_values_trimmed(void **state)
{
    (void)state;
    head_case c;
    assert_int_equal(vet(&c, "POST /x HTTP/1.1\r\nHost: a.example \r\n"
                             "X-A: \t one two \t\r\nX-Empty:  \t \r\nX-B:b\r\n"
                             "Expect: 100-continue \r\nContent-Length: 2 \r\n\r\n"),
                     0);
    static const struct {
        const char *name, *value;
    } want[] = {{"host", "a.example"}, {"x-a", "one two"},          {"x-empty", ""},
                {"x-b", "b"},          {"expect", "100-continue"}, {"content-length", "2"}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const or_http_header *h = or_http_head_find(&c.h, want[i].name, strlen(want[i].name));
        assert_non_null(h);
        if (h->value_len != strlen(want[i].value) ||
            (h->value_len > 0 && memcmp(h->value, want[i].value, h->value_len) != 0))
            fail_msg("%s: \"%.*s\"", want[i].name, (int)h->value_len, h->value ? h->value : "");
    }
    assert_int_equal(c.h.content_length, 2);
    or_http_head_free(&c.h);
}

/* Parses a response head; returns whether the message ended with it. */
static bool response_ends_at_head(const char *text, bool head_request)
{
    or_http_head h = {0};
    http_parser p;
    http_parser_init(&p, HTTP_RESPONSE);
    size_t used = 0;
    assert_int_equal(or_http_head_collect(&h, text, strlen(text), 65536, &used), OR_HEAD_DONE);
    const char *why = NULL;
    assert_int_equal(or_http_head_check(&h, false, &why), 0);
    h.skip_body = head_request;
    assert_int_equal(or_http_head_parse(&h, &p, &why), 0);
    bool done = h.message_done;
    or_http_head_free(&h);
    return done;
}

static int check_response(const char *text)
{
    or_http_head h = {0};
    size_t used = 0;
    assert_int_equal(or_http_head_collect(&h, text, strlen(text), 65536, &used), OR_HEAD_DONE);
    const char *why = NULL;
    int status = or_http_head_check(&h, false, &why);
    or_http_head_free(&h);
    return status;
}

/* A status line is `HTTP/1.x SP 3DIGIT SP reason`: http-parser's non-strict
 * build takes "H" or "HTTX/1.1 200" or a two-digit status. */
static void test_status_line(void **state)
{
    (void)state;
    assert_int_equal(check_response("HTTP/1.1 200 OK\r\n\r\n"), 0);
    assert_int_equal(check_response("HTTP/1.0 204 \r\n\r\n"), 0);
    assert_int_equal(check_response("HTTP/1.1 200\r\n\r\n"), 0);
    assert_int_equal(check_response("H\r\n\r\n"), 400);
    assert_int_equal(check_response("HTTX/1.1 200 OK\r\n\r\n"), 400);
    assert_int_equal(check_response("HTTP/1.1 20 OK\r\n\r\n"), 400);
    assert_int_equal(check_response("HTTP/1.1 000 OK\r\n\r\n"), 400);
    assert_int_equal(check_response("HTTP/2.0 200 OK\r\n\r\n"), 400);
    assert_int_equal(check_response("HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n"), 400);
}

static void test_bodiless_responses(void **state)
{
    (void)state;
    assert_true(response_ends_at_head("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n", false));
    assert_true(response_ends_at_head("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\n", false));
    assert_true(response_ends_at_head("HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n", false));
    assert_true(response_ends_at_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", true));
    assert_false(response_ends_at_head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", false));
    assert_false(response_ends_at_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false));
}

/* The token classes, byte by byte, against RFC 9110 5.6.2 as written. */
static void test_tchar_classes(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        bool lower = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                     (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        bool upper = c >= 'A' && c <= 'Z';
        if (or_http_is_tchar((unsigned char)c) != (lower || upper))
            fail_msg("or_http_is_tchar(0x%02x)", c);
        if (or_http_is_tchar_lower((unsigned char)c) != lower)
            fail_msg("or_http_is_tchar_lower(0x%02x)", c);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_lines_only),  cmocka_unit_test(test_not_a_head),
        cmocka_unit_test(test_request_line),
        cmocka_unit_test(test_field_names),       cmocka_unit_test(test_transfer_codings),
        cmocka_unit_test(test_connection_tokens), cmocka_unit_test(test_bodiless_responses),
        cmocka_unit_test(test_values_trimmed),
        cmocka_unit_test(test_status_line),       cmocka_unit_test(test_smuggling_table),
        cmocka_unit_test(test_limits),            cmocka_unit_test(test_msg_request),
        cmocka_unit_test(test_msg_refusals),      cmocka_unit_test(test_msg_response),
        cmocka_unit_test(test_tchar_classes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
