/*
 * Unit tests of outrider-ca's request parsing (ca_request.c): the three
 * routes and their refusals (404, 405), a sign request's Authorization,
 * body and ttl; one request per connection (a pipelined second request is
 * never parsed into the first, whether it comes in the same buffer or
 * later); the same outcome byte by byte as in one buffer; a body announced
 * over the limit is 413 as soon as the head ends; malformed input, a
 * request cut short by the client's close, and an overlong target.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "outrider/ca_request.h"

#define SIGN_REQUEST                                                                      \
    "POST /v1/sign?ttl=10m HTTP/1.1\r\nHost: ca\r\nAuthorization: Bearer t0k3n\r\n"      \
    "Content-Length: 5\r\n\r\nhello"

/* Parses text; expects `state` and, when it is not PARTIAL, `status`. */
static or_ca_route parse(or_ca_request *r, const char *text, or_ca_req_state state, int status)
{
    int got_status = 0;
    const char *message = NULL;
    assert_int_equal(or_ca_request_parse(text, strlen(text), r), state);
    if (state == OR_CA_REQ_PARTIAL)
        return OR_CA_ROUTE_ERROR;
    or_ca_route route = or_ca_request_route(r, &got_status, &message);
    assert_int_equal(got_status, status);
    return route;
}

static void test_routes(void **state)
{
    or_ca_request r;
    (void)state;
    assert_int_equal(parse(&r, "GET /healthz HTTP/1.1\r\n\r\n", OR_CA_REQ_COMPLETE, 200),
                     OR_CA_ROUTE_HEALTH);
    or_ca_request_free(&r);
    assert_int_equal(parse(&r, "GET /v1/bundle HTTP/1.0\r\n\r\n", OR_CA_REQ_COMPLETE, 200),
                     OR_CA_ROUTE_BUNDLE);
    or_ca_request_free(&r);
    assert_int_equal(parse(&r, "GET /v1/sign HTTP/1.1\r\n\r\n", OR_CA_REQ_COMPLETE, 405),
                     OR_CA_ROUTE_ERROR);
    or_ca_request_free(&r);
    assert_int_equal(parse(&r, "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                           OR_CA_REQ_COMPLETE, 405),
                     OR_CA_ROUTE_ERROR);
    or_ca_request_free(&r);
    assert_int_equal(parse(&r, "GET /v1/signs HTTP/1.1\r\n\r\n", OR_CA_REQ_COMPLETE, 404),
                     OR_CA_ROUTE_ERROR);
    or_ca_request_free(&r);
}

static void test_sign_request(void **state)
{
    or_ca_request r;
    uint64_t ttl;
    const char *why = NULL;
    (void)state;
    assert_int_equal(parse(&r, SIGN_REQUEST, OR_CA_REQ_COMPLETE, 200), OR_CA_ROUTE_SIGN);
    assert_string_equal(r.auth, "Bearer t0k3n");
    assert_int_equal(r.body_len, 5);
    assert_string_equal(r.body, "hello");
    assert_int_equal(or_ca_request_ttl(&r, &ttl, &why), 0);
    assert_int_equal(ttl, 600);
    or_ca_request_free(&r);

    parse(&r, "POST /v1/sign?ttl=soon HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
          OR_CA_REQ_COMPLETE, 200);
    assert_int_equal(or_ca_request_ttl(&r, &ttl, &why), -1);
    assert_non_null(why);
    or_ca_request_free(&r);
}

/* A second request after the first, in the same buffer or later, is never
 * parsed: not into the target, the Authorization or the body. */
static void test_one_request_per_connection(void **state)
{
    or_ca_request r;
    (void)state;
    assert_int_equal(parse(&r,
                           "GET /healthz HTTP/1.1\r\nHost: ca\r\n\r\n"
                           "GET /v1/bundle HTTP/1.1\r\nHost: ca\r\n\r\n",
                           OR_CA_REQ_COMPLETE, 200),
                     OR_CA_ROUTE_HEALTH);
    assert_string_equal(r.url, "/healthz");
    or_ca_request_free(&r);

    assert_int_equal(parse(&r,
                           SIGN_REQUEST "POST /v1/sign HTTP/1.1\r\nAuthorization: Bearer other\r\n"
                                        "Content-Length: 5\r\n\r\nWORLD",
                           OR_CA_REQ_COMPLETE, 200),
                     OR_CA_ROUTE_SIGN);
    assert_string_equal(r.url, "/v1/sign?ttl=10m");
    assert_string_equal(r.auth, "Bearer t0k3n");
    assert_string_equal(r.body, "hello");
    or_ca_request_free(&r);

    /* Garbage after a whole request does not make it malformed. */
    or_ca_request_init(&r);
    const char *first = "GET /healthz HTTP/1.1\r\n\r\n";
    assert_int_equal(or_ca_request_feed(&r, first, strlen(first)), OR_CA_REQ_COMPLETE);
    assert_int_equal(or_ca_request_feed(&r, "\x01\x02 junk", 7), OR_CA_REQ_COMPLETE);
    assert_int_equal(or_ca_request_finish(&r), OR_CA_REQ_COMPLETE);
    assert_string_equal(r.url, "/healthz");
    or_ca_request_free(&r);
}

static void test_byte_by_byte(void **state)
{
    or_ca_request r;
    (void)state;
    or_ca_request_init(&r);
    const char *text = SIGN_REQUEST;
    size_t len = strlen(text);
    for (size_t i = 0; i + 1 < len; i++)
        assert_int_equal(or_ca_request_feed(&r, text + i, 1), OR_CA_REQ_PARTIAL);
    assert_int_equal(or_ca_request_feed(&r, text + len - 1, 1), OR_CA_REQ_COMPLETE);
    assert_string_equal(r.url, "/v1/sign?ttl=10m");
    assert_string_equal(r.auth, "Bearer t0k3n");
    assert_string_equal(r.body, "hello");
    or_ca_request_free(&r);
}

static void test_refusals(void **state)
{
    or_ca_request r;
    char url[OR_CA_URL_MAX + 64];
    (void)state;
    /* 413 as soon as the head announces too large a body */
    parse(&r, "POST /v1/sign HTTP/1.1\r\nContent-Length: 16385\r\n\r\n", OR_CA_REQ_TOO_LARGE,
          413);
    or_ca_request_free(&r);
    parse(&r, "BREW /pot HTCPCP/1.0\r\n\r\n", OR_CA_REQ_MALFORMED, 400);
    or_ca_request_free(&r);
    /* cut short by the client's close; nothing at all is no request */
    parse(&r, "POST /v1/sign HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc", OR_CA_REQ_MALFORMED,
          400);
    or_ca_request_free(&r);
    parse(&r, "", OR_CA_REQ_PARTIAL, 0);
    or_ca_request_free(&r);
    /* a target longer than is kept */
    strcpy(url, "GET /");
    memset(url + 5, 'a', OR_CA_URL_MAX);
    strcpy(url + 5 + OR_CA_URL_MAX, " HTTP/1.1\r\n\r\n");
    parse(&r, url, OR_CA_REQ_COMPLETE, 404);
    assert_true(r.url_too_long);
    assert_int_equal(r.url_len, OR_CA_URL_MAX - 1);
    or_ca_request_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes),
        cmocka_unit_test(test_sign_request),
        cmocka_unit_test(test_one_request_per_connection),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
