/*
 * or_buf: JSON string literals (the admin API's /stats and /config output)
 * and decimal text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "outrider/buf.h"

/* The literal or_buf_json makes of s, as a NUL-terminated string. */
static void assert_json(const char *s, const char *want)
{
    or_buf b = {0};
    assert_int_equal(or_buf_json(&b, s), 0);
    assert_int_equal(or_buf_append(&b, "", 1), 0);
    assert_string_equal(b.data, want);
    or_buf_free(&b);
}

static void test_json_plain_and_null(void **state)
{
    (void)state;
    assert_json(NULL, "null");
    assert_json("", "\"\"");
    assert_json("listener in-http", "\"listener in-http\"");
    /* UTF-8 passes through as it is. */
    assert_json("caf\xc3\xa9", "\"caf\xc3\xa9\"");
}

static void test_json_escapes(void **state)
{
    (void)state;
    assert_json("say \"hi\"", "\"say \\\"hi\\\"\"");
    assert_json("C:\\dir", "\"C:\\\\dir\"");
    assert_json("a\nb\tc\x01", "\"a\\u000ab\\u0009c\\u0001\"");
    assert_json("\x7f", "\"\\u007f\"");
    assert_json("\x1f end", "\"\\u001f end\"");
    assert_json("\"\\", "\"\\\"\\\\\"");
}

static void test_json_appends(void **state)
{
    (void)state;
    or_buf b = {0};
    assert_int_equal(or_buf_append_str(&b, "{\"id\":"), 0);
    assert_int_equal(or_buf_json(&b, "spiffe://cluster.local/ns/shop/sa/server"), 0);
    assert_int_equal(or_buf_append_str(&b, "}"), 0);
    assert_int_equal(b.len, strlen("{\"id\":\"spiffe://cluster.local/ns/shop/sa/server\"}"));
    assert_memory_equal(b.data, "{\"id\":\"spiffe://cluster.local/ns/shop/sa/server\"}", b.len);
    or_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void test_uint_text(void **state)
{
    (void)state;
    char out[20];
    assert_int_equal(or_uint_text(0, 1, out), 1);
    assert_memory_equal(out, "0", 1);
    assert_int_equal(or_uint_text(7, 3, out), 3);
    assert_memory_equal(out, "007", 3);
    assert_int_equal(or_uint_text(123456, 2, out), 6);
    assert_memory_equal(out, "123456", 6);
    assert_int_equal(or_uint_text(UINT64_MAX, 1, out), 20);
    assert_memory_equal(out, "18446744073709551615", 20);
    or_buf b = {0};
    assert_int_equal(or_buf_append_str(&b, "content-length: "), 0);
    assert_int_equal(or_buf_append_uint(&b, 0), 0);
    assert_int_equal(or_buf_append_uint(&b, 1048576), 0);
    assert_int_equal(b.len, strlen("content-length: 01048576"));
    assert_memory_equal(b.data, "content-length: 01048576", b.len);
    or_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_plain_and_null),
        cmocka_unit_test(test_json_escapes),
        cmocka_unit_test(test_json_appends),
        cmocka_unit_test(test_uint_text),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
