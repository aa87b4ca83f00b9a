/*
 * Unit tests for access_log_format.c: both formats, text and JSON, field by
 * field against exact expected lines (the example lines of
 * docs/access-log.md), a plaintext peer's line, timestamps, escaping of hostile input (checked byte
 * for byte, by the strict validator of access_log_fixture.h, and by
 * python3's json module when it is installed), truncation of over-long
 * fields, and thousands of fuzzed records.
 */
#include "access_log_fixture.h"

typedef size_t (*format_fn)(const or_access_record *r, char *buf, size_t len);

static void assert_line(format_fn format, const or_access_record *r, const char *expected)
{
    char buf[OR_ACCESS_LOG_LINE_MAX];
    size_t n = format(r, buf, sizeof buf);
    assert_int_equal(n, strlen(expected));
    buf[n] = '\0';
    assert_string_equal(buf, expected);
}

#define assert_text(r, expected) assert_line(or_access_log_format_text, r, expected)
#define assert_json(r, expected) assert_line(or_access_log_format_json, r, expected)

/* Runs python3's json.loads on every line of the file, if python3 exists. */
static void python_check_json_file(const char *path)
{
    if (system("command -v python3 >/dev/null 2>&1") != 0)
        return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin.buffer]' < '%s'",
             path);
    assert_int_equal(system(cmd), 0);
}

/* ---- formatting -------------------------------------------------------- */

static void test_text_http(void **state)
{
    (void)state;
    or_access_record r = http_record();
    assert_text(&r, "[2026-11-23T20:14:36.123Z] \"GET /api/x?q=1 HTTP/1.1\" 200 - 0 1234 5 3 "
                    "\"10.0.0.1:5555\" \"spiffe://cluster.local/ns/web/sa/frontend\" inbound "
                    "listener=inbound upstream=127.0.0.1:8080 rbac=allow:frontend-reads/0 "
                    "tls=TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256 "
                    "request_id=9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10 "
                    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n");
    r.rbac_decision = "deny";
    r.rbac_policy = NULL;
    r.rbac_rule = -1;
    r.status = 403;
    r.response_flags = "RBAC";
    r.upstream_time_us = -1;
    r.duration_us = 999;
    assert_text(&r, "[2026-11-23T20:14:36.123Z] \"GET /api/x?q=1 HTTP/1.1\" 403 RBAC 0 1234 0 - "
                    "\"10.0.0.1:5555\" \"spiffe://cluster.local/ns/web/sa/frontend\" inbound "
                    "listener=inbound upstream=127.0.0.1:8080 rbac=deny:-/- "
                    "tls=TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256 "
                    "request_id=9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10 "
                    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n");
}

static void test_text_tcp_and_absent(void **state)
{
    (void)state;
    or_access_record r = tcp_record();
    assert_text(&r, "[2026-11-23T20:14:37.005Z] \"- - tcp\" - UC 5120 1048576 61234 1 "
                    "\"10.1.2.3:40000\" \"spiffe://cluster.local/ns/shop/sa/orders\" inbound "
                    "listener=db upstream=127.0.0.1:5432 rbac=allow:-/- "
                    "tls=TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256 request_id=- trace_id=-\n");
    r = empty_record();
    assert_text(&r, "[1970-01-01T00:00:00.000Z] \"- - -\" - - 0 0 0 - \"-\" \"-\" - "
                    "listener=- upstream=- rbac=- tls=- request_id=- trace_id=-\n");
    r.path = "";
    r.listener = "";
    assert_text(&r, "[1970-01-01T00:00:00.000Z] \"- - -\" - - 0 0 0 - \"-\" \"-\" - "
                    "listener=- upstream=- rbac=- tls=- request_id=- trace_id=-\n");
}

static void test_json_http(void **state)
{
    (void)state;
    or_access_record r = http_record();
    assert_json(&r, "{\"start_time\":\"2026-11-23T20:14:36.123Z\",\"duration_ms\":5.123,"
                    "\"listener\":\"inbound\",\"direction\":\"inbound\","
                    "\"source\":\"10.0.0.1:5555\","
                    "\"peer_id\":\"spiffe://cluster.local/ns/web/sa/frontend\","
                    "\"method\":\"GET\",\"path\":\"/api/x?q=1\",\"protocol\":\"HTTP/1.1\","
                    "\"status\":200,\"response_flags\":\"-\",\"bytes_in\":0,\"bytes_out\":1234,"
                    "\"upstream\":\"127.0.0.1:8080\",\"upstream_time_ms\":3.456,"
                    "\"rbac_decision\":\"allow\",\"rbac_policy\":\"frontend-reads\","
                    "\"rbac_rule\":0,"
                    "\"tls_cipher\":\"TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256\","
                    "\"request_id\":\"9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10\","
                    "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n");
}

static void test_json_tcp_and_absent(void **state)
{
    (void)state;
    or_access_record r = tcp_record();
    assert_json(&r, "{\"start_time\":\"2026-11-23T20:14:37.005Z\",\"duration_ms\":61234.567,"
                    "\"listener\":\"db\",\"direction\":\"inbound\",\"source\":\"10.1.2.3:40000\","
                    "\"peer_id\":\"spiffe://cluster.local/ns/shop/sa/orders\","
                    "\"method\":null,\"path\":null,\"protocol\":\"tcp\",\"status\":null,"
                    "\"response_flags\":\"UC\",\"bytes_in\":5120,\"bytes_out\":1048576,"
                    "\"upstream\":\"127.0.0.1:5432\",\"upstream_time_ms\":1.500,"
                    "\"rbac_decision\":\"allow\",\"rbac_policy\":null,\"rbac_rule\":null,"
                    "\"tls_cipher\":\"TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256\","
                    "\"request_id\":null,\"trace_id\":null}\n");
    r = empty_record();
    assert_json(&r, "{\"start_time\":\"1970-01-01T00:00:00.000Z\",\"duration_ms\":0.000,"
                    "\"listener\":null,\"direction\":null,\"source\":null,\"peer_id\":null,"
                    "\"method\":null,\"path\":null,\"protocol\":null,\"status\":null,"
                    "\"response_flags\":\"-\",\"bytes_in\":0,\"bytes_out\":0,\"upstream\":null,"
                    "\"upstream_time_ms\":null,\"rbac_decision\":null,\"rbac_policy\":null,"
                    "\"rbac_rule\":null,\"tls_cipher\":null,\"request_id\":null,"
                    "\"trace_id\":null}\n");
}

/* A plaintext connection (mtls permissive or disable): no peer identity
 * (the proxy passes ""), tls "none". */
static void test_plaintext_peer(void **state)
{
    (void)state;
    or_access_record r = http_record();
    r.peer_id = "";
    r.tls_cipher = "none";
    assert_text(&r, "[2026-11-23T20:14:36.123Z] \"GET /api/x?q=1 HTTP/1.1\" 200 - 0 1234 5 3 "
                    "\"10.0.0.1:5555\" \"-\" inbound "
                    "listener=inbound upstream=127.0.0.1:8080 rbac=allow:frontend-reads/0 "
                    "tls=none request_id=9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10 "
                    "trace_id=4bf92f3577b34da6a3ce929d0e0e4736\n");
    assert_json(&r, "{\"start_time\":\"2026-11-23T20:14:36.123Z\",\"duration_ms\":5.123,"
                    "\"listener\":\"inbound\",\"direction\":\"inbound\","
                    "\"source\":\"10.0.0.1:5555\",\"peer_id\":null,"
                    "\"method\":\"GET\",\"path\":\"/api/x?q=1\",\"protocol\":\"HTTP/1.1\","
                    "\"status\":200,\"response_flags\":\"-\",\"bytes_in\":0,\"bytes_out\":1234,"
                    "\"upstream\":\"127.0.0.1:8080\",\"upstream_time_ms\":3.456,"
                    "\"rbac_decision\":\"allow\",\"rbac_policy\":\"frontend-reads\","
                    "\"rbac_rule\":0,\"tls_cipher\":\"none\","
                    "\"request_id\":\"9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10\","
                    "\"trace_id\":\"4bf92f3577b34da6a3ce929d0e0e4736\"}\n");
}

static void test_time_formatting(void **state)
{
    (void)state;
    char buf[OR_ACCESS_LOG_LINE_MAX];
    or_access_record r = empty_record();
    const struct {
        time_t sec;
        long nsec;
        const char *expected;
    } cases[] = {
        {951782400, 999999999, "[2000-02-29T00:00:00.999Z]"}, /* leap day */
        {1709251199, 0, "[2024-02-29T23:59:59.000Z]"},
        {4102444800, 1000000, "[2100-01-01T00:00:00.001Z]"},
        {253402300799, 0, "[9999-12-31T23:59:59.000Z]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        r.start.tv_sec = cases[i].sec;
        r.start.tv_nsec = cases[i].nsec;
        size_t n = or_access_log_format_text(&r, buf, sizeof buf);
        assert_true(n > 26);
        assert_memory_equal(buf, cases[i].expected, 26);
    }
}

/* Quotes, backslash, controls, DEL, invalid UTF-8 (stray bytes, overlong,
 * surrogate, cut sequence), valid UTF-8, a space and a bidi override. */
static const char hostile_path[] = "/a\"b\\c\n\r\t\x01\x7f\xff\xfe\xc0\xaf\xed\xa0\x80"
                                   "\xc3\xa9\xe2\x82\xac x\xe2\x80\xae\xe2\x82";

static void test_json_escaping(void **state)
{
    (void)state;
    or_access_record r = empty_record();
    r.path = hostile_path;
    r.path_len = sizeof hostile_path - 1;
    char buf[OR_ACCESS_LOG_LINE_MAX];
    size_t n = or_access_log_format_json(&r, buf, sizeof buf);
    assert_true(n > 0);
    assert_true(json_line_valid(buf, n));
    buf[n] = '\0';
    const char *expected = "\"path\":\"/a\\\"b\\\\c\\n\\r\\t\\u0001\\u007f\\ufffd\\ufffd"
                           "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\xc3\xa9\xe2\x82\xac x\\u202e"
                           "\\ufffd\\ufffd\",";
    assert_non_null(strstr(buf, expected));
    /* The validator itself rejects what the escaper must never produce. */
    static const char *bad[] = {"{\"a\":\"\x01\"}\n", "{\"a\":\"\xff\"}\n", "{\"a\":\"\\x41\"}\n",
                                "{\"a\":\"\\ud800\"}\n", "{\"a\":\"\\u12\"}\n", "{\"a\":1}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(json_line_valid(bad[i], strlen(bad[i])));
    assert_true(json_line_valid("{\"a\":\"\\u00e9\\/\",\"b\":-0.5,\"c\":null}\n", 35));
}

/* Counts '"' that are not part of an escape. */
static int unescaped_quotes(const char *s, size_t n)
{
    int quotes = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            i++;
        else if (s[i] == '"')
            quotes++;
    }
    return quotes;
}

static void test_text_escaping(void **state)
{
    (void)state;
    or_access_record r = empty_record();
    r.path = hostile_path;
    r.path_len = sizeof hostile_path - 1;
    char buf[OR_ACCESS_LOG_LINE_MAX];
    size_t n = or_access_log_format_text(&r, buf, sizeof buf);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\"- /a\\\"b\\\\c\\n\\r\\t\\x01\\x7f\\xff\\xfe\\xc0\\xaf"
                                "\\xed\\xa0\\x80\xc3\xa9\xe2\x82\xac\\x20x\\xe2\\x80\\xae"
                                "\\xe2\\x82 -\" "));

    /* A path that tries to end the request, fake fields and start a line. */
    static const char inject[] = "/x\" 200 - 0 0 0 0 \"1.2.3.4:1\" \"-\" inbound listener=fake\n"
                                 "[2026-11-23T20:14:36.123Z] \"GET /evil HTTP/1.1";
    r = http_record();
    r.path = inject;
    r.path_len = sizeof inject - 1;
    r.request_id = "abc request_id=forged";
    n = or_access_log_format_text(&r, buf, sizeof buf);
    assert_true(n > 0);
    assert_ptr_equal(memchr(buf, '\n', n), buf + n - 1);
    assert_int_equal(unescaped_quotes(buf, n), 6);
    assert_int_equal(count_tokens(buf, n - 1), TEXT_TOKENS);
    buf[n] = '\0';
    assert_non_null(strstr(buf, " request_id=abc\\x20request_id=forged trace_id="));
}

static void fill(char *buf, size_t n, const char *unit)
{
    size_t k = strlen(unit);
    for (size_t i = 0; i + k <= n; i += k)
        memcpy(buf + i, unit, k);
    buf[n / k * k] = '\0';
}

static void test_truncation(void **state)
{
    (void)state;
    static char path[30000], big[30000];
    char buf[OR_ACCESS_LOG_LINE_MAX + 1]; /* room for a NUL after a line that fills the limit */
    const size_t max = OR_ACCESS_LOG_LINE_MAX;
    fill(path, 20001, "\xe2\x82\xac"); /* a 3-byte character, never to be split */
    or_access_record r = http_record();
    r.path = path;
    r.path_len = strlen(path);
    size_t n = or_access_log_format_json(&r, buf, max);
    assert_true(n > 4000 && n <= max);
    assert_true(json_line_valid(buf, n));
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\xe2\x82\xac" OR_ACCESS_LOG_TRUNCATED "\",\"protocol\""));
    n = or_access_log_format_text(&r, buf, max);
    assert_true(n > 4000 && n <= max);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\xe2\x82\xac" OR_ACCESS_LOG_TRUNCATED " HTTP/1.1\" 200 "));
    assert_int_equal(count_tokens(buf, n - 1), TEXT_TOKENS);

    /* Every field hostile and huge: the line still fits, every field cut. */
    fill(big, 20000, "\x01");
    r.listener = r.direction = r.source = r.peer_id = r.method = r.protocol = big;
    r.response_flags = r.upstream = r.rbac_decision = r.rbac_policy = big;
    r.tls_cipher = r.request_id = big;
    r.path = big;
    r.path_len = strlen(big);
    n = or_access_log_format_json(&r, buf, max);
    assert_true(n > 0 && n <= max);
    assert_true(json_line_valid(buf, n));
    n = or_access_log_format_text(&r, buf, max);
    assert_true(n > 0 && n <= max);
    assert_int_equal(count_tokens(buf, n - 1), TEXT_TOKENS);
    assert_ptr_equal(memchr(buf, '\n', n), buf + n - 1);

    /* Exact fit, one byte short with a short path (no room to cut), tiny. */
    r = http_record();
    n = or_access_log_format_text(&r, buf, max);
    assert_int_equal(or_access_log_format_text(&r, buf, n), n);
    assert_int_equal(or_access_log_format_text(&r, buf, n - 1), 0);
    assert_int_equal(or_access_log_format_json(&r, buf, 40), 0);
}

/* The `source` field of a text line, between its quotes, for a given value. */
static void text_source(const char *source, char *out, size_t out_len)
{
    char buf[OR_ACCESS_LOG_LINE_MAX];
    or_access_record r = http_record();
    r.source = source;
    size_t n = or_access_log_format_text(&r, buf, sizeof buf);
    assert_true(n > 0);
    buf[n] = '\0';
    /* source is the first quoted field after the two durations */
    const char *open = strstr(buf, " \"") + 2;
    open = strstr(open, " \"") + 2;
    const char *close = strstr(open, "\" \"");
    assert_non_null(close);
    assert_true((size_t)(close - open) < out_len);
    memcpy(out, open, (size_t)(close - open));
    out[close - open] = '\0';
}

/* A capped field (source: 64 bytes) is kept whole up to its cap and cut one
 * byte past it, at the last whole escape that leaves room for the mark. */
static void test_field_cap_boundaries(void **state)
{
    (void)state;
    const size_t cap = 64, mark = strlen(OR_ACCESS_LOG_TRUNCATED);
    char value[80], want[80], got[160];

    memset(value, 'a', cap);
    value[cap] = '\0';
    text_source(value, got, sizeof got);
    assert_string_equal(got, value);

    value[cap] = 'a';
    value[cap + 1] = '\0';
    memset(want, 'a', cap - mark);
    strcpy(want + cap - mark, OR_ACCESS_LOG_TRUNCATED);
    text_source(value, got, sizeof got);
    assert_string_equal(got, want);

    /* Each control byte becomes four ("\x01"): 16 fit exactly, 17 do not. */
    memset(value, 1, 16);
    value[16] = '\0';
    text_source(value, got, sizeof got);
    assert_int_equal(strlen(got), cap);
    value[16] = 1;
    value[17] = '\0';
    size_t units = (cap - mark) / 4;
    want[0] = '\0';
    for (size_t i = 0; i < units; i++)
        strcat(want, "\\x01");
    strcat(want, OR_ACCESS_LOG_TRUNCATED);
    text_source(value, got, sizeof got);
    assert_string_equal(got, want);
}

static uint32_t next_random(uint32_t *seed)
{
    *seed = *seed * 1103515245u + 12345u;
    return *seed >> 8;
}

/* Random bytes, biased towards the characters escaping cares about. */
static void random_bytes(uint32_t *seed, char *buf, size_t n)
{
    static const char interesting[] = "\"\\\n\r\t \x01\x1f\x7f\x80\xc2\xc3\xa9\xe2\x82\xac\xed\xa0"
                                      "\xf0\x9f\x98\x80\xff\xfe/a";
    for (size_t i = 0; i < n; i++) {
        uint32_t v = next_random(seed);
        buf[i] = v % 3 == 0 ? (char)(v >> 8) : interesting[(v >> 8) % (sizeof interesting - 1)];
    }
    buf[n] = '\0';
}

static void test_fuzzed_records(void **state)
{
    (void)state;
    char path[300], path_file[512], buf[OR_ACCESS_LOG_LINE_MAX];
    char fields[4][80];
    uint32_t seed = 12345;
    memset(path, 'p', sizeof path);
    tmp_path(path_file, sizeof path_file, "fuzz.json");
    FILE *out = fopen(path_file, "w");
    assert_non_null(out);
    for (int i = 0; i < 3000; i++) {
        or_access_record r = http_record();
        random_bytes(&seed, path, next_random(&seed) % 290);
        for (int f = 0; f < 4; f++)
            random_bytes(&seed, fields[f], next_random(&seed) % 70);
        r.path = path;
        r.path_len = next_random(&seed) % 290; /* embedded NULs are data too */
        r.method = fields[0];
        r.request_id = fields[1];
        r.peer_id = fields[2];
        r.rbac_policy = fields[3];
        size_t n = or_access_log_format_json(&r, buf, sizeof buf);
        assert_true(json_line_valid(buf, n));
        fwrite(buf, 1, n, out);
        n = or_access_log_format_text(&r, buf, sizeof buf);
        assert_true(n > 0);
        assert_ptr_equal(memchr(buf, '\n', n), buf + n - 1);
        assert_int_equal(count_tokens(buf, n - 1), TEXT_TOKENS);
        assert_int_equal(unescaped_quotes(buf, n), 6);
        for (size_t k = 0; k + 1 < n; k++)
            assert_true((unsigned char)buf[k] >= 0x20 && buf[k] != 0x7f);
    }
    fclose(out);
    python_check_json_file(path_file);
    unlink(path_file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_http),
        cmocka_unit_test(test_text_tcp_and_absent),
        cmocka_unit_test(test_json_http),
        cmocka_unit_test(test_json_tcp_and_absent),
        cmocka_unit_test(test_plaintext_peer),
        cmocka_unit_test(test_time_formatting),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_text_escaping),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_field_cap_boundaries),
        cmocka_unit_test(test_fuzzed_records),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
