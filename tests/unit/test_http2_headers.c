/*
 * HTTP/2 header blocks (http2.h): the pseudo-headers that become a request,
 * the fields refused because they would mean something else to an HTTP/1
 * hop or to a connection, and a content-length held against the DATA that
 * arrives.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "outrider/http2.h"

static or_h2_check add(or_h2_request *r, const char *name, const char *value)
{
    return or_h2_request_field(r, name, strlen(name), value, strlen(value));
}

/* A GET with the usual pseudo-headers, and `extra` regular fields. */
static or_h2_check request(or_h2_request *r, const char *const *extra, size_t n)
{
    or_h2_check c = add(r, ":method", "GET");
    c = c ? c : add(r, ":scheme", "http");
    c = c ? c : add(r, ":authority", "orders.shop:8080");
    c = c ? c : add(r, ":path", "/api/items?x=1");
    for (size_t i = 0; i + 1 < n && c == OR_H2_OK; i += 2)
        c = add(r, extra[i], extra[i + 1]);
    return c ? c : or_h2_request_done(r);
}

static void test_pseudo_headers_map_to_request(void **state)
{
    (void)state;
    or_h2_request r;
    or_h2_request_init(&r, 0);
    const char *extra[] = {"content-type", "application/grpc+proto", "te", "trailers"};
    assert_int_equal(request(&r, extra, 4), OR_H2_OK);
    assert_int_equal(r.method.len, 3);
    assert_memory_equal(r.method.data, "GET", 3);
    assert_memory_equal(r.scheme.data, "http", 4);
    assert_memory_equal(r.path.data, "/api/items?x=1", 14);
    size_t len = 0;
    const char *host = or_h2_request_host(&r, &len);
    assert_non_null(host);
    assert_int_equal(len, 11); /* without the port */
    assert_memory_equal(host, "orders.shop", 11);
    assert_true(r.grpc);
    assert_int_equal(r.fields.n, 2);
    assert_int_equal(or_h2_fields_find(&r.fields, "te", 2), 1);
    assert_string_equal(or_h2_field_value(&r.fields, 1), "trailers");
    or_h2_request_free(&r);
}

/* A request used again starts empty, with its buffers kept when they are
 * small enough and freed when not. */
static void test_request_reuse(void **state)
{
    (void)state;
    or_h2_request r;
    or_h2_request_init(&r, 0);
    const char *extra[] = {"content-length", "5", "x-a", "1"};
    assert_int_equal(request(&r, extra, 4), OR_H2_OK);
    const char *method = r.method.data, *fields = r.fields.bytes.data;
    or_h2_request_reuse(&r, 4096, 1 << 20);
    assert_int_equal(r.max_size, 4096);
    assert_false(r.have_method || r.have_scheme || r.have_authority || r.have_path);
    assert_false(r.saw_regular || r.grpc);
    assert_int_equal(r.content_length, -1);
    assert_int_equal(r.host, -1);
    assert_int_equal(r.method.len + r.path.len + r.fields.n + r.fields.size, 0);
    assert_ptr_equal(r.method.data, method); /* kept */
    assert_ptr_equal(r.fields.bytes.data, fields);
    /* the same request again, as a new one */
    assert_int_equal(request(&r, extra, 4), OR_H2_OK);
    assert_int_equal(r.content_length, 5);
    assert_int_equal(r.fields.n, 2);
    assert_memory_equal(r.path.data, "/api/items?x=1", 14);
    or_h2_request_reuse(&r, 0, 0); /* nothing kept */
    assert_null(r.method.data);
    assert_null(r.fields.bytes.data);
    assert_null(r.fields.v);
    or_h2_request_free(&r);
}

static void test_host_without_authority(void **state)
{
    (void)state;
    or_h2_request r;
    or_h2_request_init(&r, 0);
    assert_int_equal(add(&r, ":method", "GET"), OR_H2_OK);
    assert_int_equal(add(&r, ":scheme", "http"), OR_H2_OK);
    assert_int_equal(add(&r, ":path", "/"), OR_H2_OK);
    assert_int_equal(add(&r, "host", "a.example:80"), OR_H2_OK);
    assert_int_equal(or_h2_request_done(&r), OR_H2_OK);
    size_t len = 0;
    const char *host = or_h2_request_host(&r, &len);
    assert_int_equal(len, 9);
    assert_memory_equal(host, "a.example", 9);
    or_h2_request_free(&r);
}

static void test_pseudo_header_rules(void **state)
{
    (void)state;
    or_h2_request r;

    or_h2_request_init(&r, 0);
    assert_int_equal(add(&r, ":method", "GET"), OR_H2_OK);
    assert_int_equal(add(&r, ":method", "POST"), OR_H2_DUPLICATE_PSEUDO);
    or_h2_request_free(&r);

    or_h2_request_init(&r, 0);
    assert_int_equal(add(&r, "accept", "*/*"), OR_H2_OK);
    assert_int_equal(add(&r, ":path", "/"), OR_H2_PSEUDO_AFTER_REGULAR);
    or_h2_request_free(&r);

    or_h2_request_init(&r, 0);
    assert_int_equal(add(&r, ":status", "200"), OR_H2_UNKNOWN_PSEUDO);
    assert_int_equal(add(&r, ":protocol", "websocket"), OR_H2_CONNECT);
    or_h2_request_free(&r);

    or_h2_request_init(&r, 0);
    assert_int_equal(add(&r, ":method", "GET"), OR_H2_OK);
    assert_int_equal(add(&r, ":scheme", "http"), OR_H2_OK);
    assert_int_equal(or_h2_request_done(&r), OR_H2_MISSING_PSEUDO); /* no :path */
    or_h2_request_free(&r);

    or_h2_request_init(&r, 0);
    assert_int_equal(add(&r, ":method", "CONNECT"), OR_H2_OK);
    assert_int_equal(add(&r, ":authority", "x:443"), OR_H2_OK);
    assert_int_equal(or_h2_request_done(&r), OR_H2_CONNECT);
    or_h2_request_free(&r);
}

static void test_connection_specific_fields(void **state)
{
    (void)state;
    static const char *const refused[][2] = {
        {"connection", "close"},        {"keep-alive", "timeout=5"},
        {"proxy-connection", "close"},  {"transfer-encoding", "chunked"},
        {"upgrade", "h2c"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        or_h2_request r;
        or_h2_request_init(&r, 0);
        const char *extra[] = {refused[i][0], refused[i][1]};
        assert_int_equal(request(&r, extra, 2), OR_H2_CONNECTION_HEADER);
        or_h2_request_free(&r);
    }
    or_h2_request r;
    or_h2_request_init(&r, 0);
    const char *te[] = {"te", "gzip"};
    assert_int_equal(request(&r, te, 2), OR_H2_BAD_TE);
    or_h2_request_free(&r);
}

static void test_field_bytes(void **state)
{
    (void)state;
    assert_int_equal(or_h2_field_check("x-a", 3, "a\rb", 3), OR_H2_BAD_VALUE);
    assert_int_equal(or_h2_field_check("x-a", 3, "a\nb", 3), OR_H2_BAD_VALUE);
    assert_int_equal(or_h2_field_check("x-a", 3, "a\0b", 3), OR_H2_BAD_VALUE);
    assert_int_equal(or_h2_field_check("x-a", 3, "a\x7f", 2), OR_H2_BAD_VALUE);
    assert_int_equal(or_h2_field_check("x-a", 3, "a\tb c", 5), OR_H2_OK);
    /* Every byte, at the start, middle and end of a value long enough for
     * the check to take it in blocks. */
    for (int c = 0; c < 256; c++) {
        bool ctl = (c < 0x20 && c != '\t') || c == 0x7f;
        for (size_t at = 0; at < 40; at += 13) {
            char v[40];
            memset(v, 'v', sizeof v);
            v[at] = (char)c;
            if (or_h2_field_check("x-a", 3, v, sizeof v) != (ctl ? OR_H2_BAD_VALUE : OR_H2_OK))
                fail_msg("byte 0x%02x at %zu", c, at);
        }
    }
    assert_int_equal(or_h2_field_check("X-A", 3, "v", 1), OR_H2_BAD_NAME);
    assert_int_equal(or_h2_field_check("x a", 3, "v", 1), OR_H2_BAD_NAME);
    assert_int_equal(or_h2_field_check("x:a", 3, "v", 1), OR_H2_BAD_NAME);
    assert_int_equal(or_h2_field_check("", 0, "v", 1), OR_H2_BAD_NAME);
    assert_int_equal(or_h2_field_check(":", 1, "v", 1), OR_H2_BAD_NAME);
    assert_int_equal(or_h2_trailer_field(":status", 7, "200", 3), OR_H2_PSEUDO_IN_TRAILERS);
    assert_int_equal(or_h2_trailer_field("grpc-status", 11, "0", 1), OR_H2_OK);
}

static void test_authority_and_host(void **state)
{
    (void)state;
    or_h2_request r;
    or_h2_request_init(&r, 0);
    const char *same[] = {"host", "ORDERS.shop"};
    assert_int_equal(request(&r, same, 2), OR_H2_OK); /* case and port do not matter */
    or_h2_request_free(&r);

    or_h2_request_init(&r, 0);
    const char *other[] = {"host", "evil.example"};
    assert_int_equal(request(&r, other, 2), OR_H2_HOST_MISMATCH);
    or_h2_request_free(&r);

    or_h2_request_init(&r, 0);
    const char *twice[] = {"host", "orders.shop", "host", "orders.shop"};
    assert_int_equal(request(&r, twice, 4), OR_H2_HOST_MISMATCH);
    or_h2_request_free(&r);

    /* userinfo: the policy would take "orders.shop", an application that
     * reads a URI authority "admin.internal" */
    const char *userinfo[] = {"host", "orders.shop:1@admin.internal"};
    or_h2_request_init(&r, 0);
    assert_int_equal(request(&r, userinfo, 2), OR_H2_BAD_HOST);
    or_h2_request_free(&r);
    or_h2_request_init(&r, 0);
    assert_int_equal(add(&r, ":method", "GET"), OR_H2_OK);
    assert_int_equal(add(&r, ":scheme", "http"), OR_H2_OK);
    assert_int_equal(add(&r, ":authority", "orders.shop@admin.internal"), OR_H2_OK);
    assert_int_equal(add(&r, ":path", "/"), OR_H2_OK);
    assert_int_equal(or_h2_request_done(&r), OR_H2_BAD_HOST);
    or_h2_request_free(&r);
}

static void test_content_length(void **state)
{
    (void)state;
    or_h2_request r;
    or_h2_request_init(&r, 0);
    const char *cl[] = {"content-length", "10"};
    assert_int_equal(request(&r, cl, 2), OR_H2_OK);
    assert_int_equal(r.content_length, 10);
    assert_int_equal(or_h2_body_check(r.content_length, 4, false), OR_H2_OK);
    assert_int_equal(or_h2_body_check(r.content_length, 10, true), OR_H2_OK);
    assert_int_equal(or_h2_body_check(r.content_length, 9, true), OR_H2_BODY_LENGTH);
    assert_int_equal(or_h2_body_check(r.content_length, 11, false), OR_H2_BODY_LENGTH);
    assert_int_equal(or_h2_body_check(-1, 1 << 20, true), OR_H2_OK);
    or_h2_request_free(&r);

    static const char *const bad[] = {"", "-1", "1 0", "0x10", "+5", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        or_h2_request_init(&r, 0);
        const char *extra[] = {"content-length", bad[i]};
        assert_int_equal(request(&r, extra, 2), OR_H2_BAD_CONTENT_LENGTH);
        or_h2_request_free(&r);
    }
    or_h2_request_init(&r, 0);
    const char *differ[] = {"content-length", "5", "content-length", "6"};
    assert_int_equal(request(&r, differ, 4), OR_H2_BAD_CONTENT_LENGTH);
    or_h2_request_free(&r);
}

static void test_size_limit(void **state)
{
    (void)state;
    or_h2_request r;
    or_h2_request_init(&r, 200);
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(add(&r, ":method", "GET"), OR_H2_OK);
    assert_int_equal(add(&r, "x-big", big), OR_H2_TOO_LARGE);
    or_h2_request_free(&r);
}

static void test_grpc_timeout(void **state)
{
    (void)state;
    assert_int_equal(or_h2_grpc_timeout_ms("500m", 4), 500);
    assert_int_equal(or_h2_grpc_timeout_ms("2S", 2), 2000);
    assert_int_equal(or_h2_grpc_timeout_ms("1M", 2), 60000);
    assert_int_equal(or_h2_grpc_timeout_ms("1H", 2), 3600000);
    assert_int_equal(or_h2_grpc_timeout_ms("1500u", 5), 2);
    assert_int_equal(or_h2_grpc_timeout_ms("1n", 2), 1);
    assert_int_equal(or_h2_grpc_timeout_ms("5", 1), -1);
    assert_int_equal(or_h2_grpc_timeout_ms("5x", 2), -1);
    assert_int_equal(or_h2_grpc_timeout_ms("123456789S", 10), -1); /* 9 digits at most */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pseudo_headers_map_to_request),
        cmocka_unit_test(test_host_without_authority),
        cmocka_unit_test(test_pseudo_header_rules),
        cmocka_unit_test(test_connection_specific_fields),
        cmocka_unit_test(test_field_bytes),
        cmocka_unit_test(test_authority_and_host),
        cmocka_unit_test(test_request_reuse),
        cmocka_unit_test(test_content_length),
        cmocka_unit_test(test_size_limit),
        cmocka_unit_test(test_grpc_timeout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
