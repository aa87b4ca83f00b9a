/*
 * Unit tests for access_log.c: both formats field by field against exact
 * expected lines, escaping of hostile input (checked byte for byte, by a
 * strict JSON validator in this file, and by python3's json module when it
 * is installed), truncation of over-long fields, and the writer end to end:
 * two workers' lines all arrive in order, a stalled sink makes lines count as
 * dropped rather than vanish, reopen after rotation loses nothing, and open
 * errors name the path.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "outrider/access_log.h"

#define TEXT_TOKENS 18 /* space-separated tokens in every text line */

static const char *tmp_dir(void)
{
    const char *dir = getenv("OUTRIDER_TEST_TMP");
    if (dir == NULL)
        dir = "/tmp";
    mkdir(dir, 0755);
    return dir;
}

static void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/alog-%ld-%s", tmp_dir(), (long)getpid(), name);
}

static or_access_record http_record(void)
{
    return (or_access_record){
        .start = {1795464876, 123456789}, /* 2026-11-23T20:14:36.123Z */
        .duration_us = 5123,
        .listener = "inbound",
        .direction = "inbound",
        .source = "10.0.0.1:5555",
        .peer_id = "spiffe://cluster.local/ns/web/sa/frontend",
        .method = "GET",
        .path = "/api/x?q=1",
        .path_len = 10,
        .protocol = "HTTP/1.1",
        .status = 200,
        .response_flags = "-",
        .bytes_in = 0,
        .bytes_out = 1234,
        .upstream = "127.0.0.1:8080",
        .upstream_time_us = 3456,
        .rbac_decision = "allow",
        .rbac_policy = "frontend-reads",
        .rbac_rule = 0,
        .tls_cipher = "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
        .request_id = "9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10",
    };
}

static or_access_record tcp_record(void)
{
    return (or_access_record){
        .start = {1795464877, 5000000},
        .duration_us = 61234567,
        .listener = "db",
        .direction = "inbound",
        .source = "10.1.2.3:40000",
        .peer_id = "spiffe://cluster.local/ns/shop/sa/orders",
        .protocol = "tcp",
        .response_flags = "UC",
        .bytes_in = 5120,
        .bytes_out = 1048576,
        .upstream = "127.0.0.1:5432",
        .upstream_time_us = 1500,
        .rbac_decision = "allow",
        .rbac_rule = -1,
        .tls_cipher = "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
    };
}

static or_access_record empty_record(void)
{
    return (or_access_record){.upstream_time_us = -1, .rbac_rule = -1};
}

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

/* ---- a strict JSON validator for one access-log object ----------------- */

typedef struct {
    const unsigned char *p, *end;
} json_cur;

/* Well-formed UTF-8 sequence length at p, or 0. */
static size_t utf8_ok(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], len, v, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - p) < len)
        return 0;
    for (unsigned i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    return v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ? 0 : len;
}

static bool json_string(json_cur *c)
{
    if (c->p >= c->end || *c->p++ != '"')
        return false;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p < 0x20)
            return false;
        if (*c->p == '\\') {
            c->p++;
            if (c->p >= c->end)
                return false;
            char hex[5] = "";
            if (*c->p == 'u' && c->end - c->p >= 5)
                memcpy(hex, c->p + 1, 4);
            long v = strspn(hex, "0123456789abcdefABCDEF") == 4 ? strtol(hex, NULL, 16) : -1;
            if (*c->p == 'u' && (v < 0 || (v >= 0xd800 && v <= 0xdfff))) /* no surrogates */
                return false;
            if (*c->p != 'u' && (*c->p == '\0' || strchr("\"\\/bfnrt", *c->p) == NULL))
                return false;
            c->p += *c->p == 'u' ? 5 : 1;
            continue;
        }
        size_t len = utf8_ok(c->p, c->end);
        if (len == 0)
            return false;
        c->p += len;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    return true;
}

static bool json_digits(json_cur *c)
{
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

static bool json_value(json_cur *c)
{
    if (c->p >= c->end)
        return false;
    if (*c->p == '"')
        return json_string(c);
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        return true;
    }
    if (*c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!json_digits(c))
        return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        return json_digits(c);
    }
    return true;
}

/* One line: a flat object of strings, numbers and nulls, then '\n'. */
static bool json_line_valid(const char *line, size_t n)
{
    json_cur c = {(const unsigned char *)line, (const unsigned char *)line + n};
    if (n < 3 || line[n - 1] != '\n' || *c.p++ != '{')
        return false;
    c.end--;
    for (;;) {
        if (!json_string(&c) || c.p >= c.end || *c.p++ != ':' || !json_value(&c))
            return false;
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        return c.p + 1 == c.end && *c.p == '}';
    }
}

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
                    "request_id=9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10\n");
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
                    "request_id=9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10\n");
}

static void test_text_tcp_and_absent(void **state)
{
    (void)state;
    or_access_record r = tcp_record();
    assert_text(&r, "[2026-11-23T20:14:37.005Z] \"- - tcp\" - UC 5120 1048576 61234 1 "
                    "\"10.1.2.3:40000\" \"spiffe://cluster.local/ns/shop/sa/orders\" inbound "
                    "listener=db upstream=127.0.0.1:5432 rbac=allow:-/- "
                    "tls=TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256 request_id=-\n");
    r = empty_record();
    assert_text(&r, "[1970-01-01T00:00:00.000Z] \"- - -\" - - 0 0 0 - \"-\" \"-\" - "
                    "listener=- upstream=- rbac=- tls=- request_id=-\n");
    r.path = "";
    r.listener = "";
    assert_text(&r, "[1970-01-01T00:00:00.000Z] \"- - -\" - - 0 0 0 - \"-\" \"-\" - "
                    "listener=- upstream=- rbac=- tls=- request_id=-\n");
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
                    "\"request_id\":\"9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10\"}\n");
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
                    "\"request_id\":null}\n");
    r = empty_record();
    assert_json(&r, "{\"start_time\":\"1970-01-01T00:00:00.000Z\",\"duration_ms\":0.000,"
                    "\"listener\":null,\"direction\":null,\"source\":null,\"peer_id\":null,"
                    "\"method\":null,\"path\":null,\"protocol\":null,\"status\":null,"
                    "\"response_flags\":\"-\",\"bytes_in\":0,\"bytes_out\":0,\"upstream\":null,"
                    "\"upstream_time_ms\":null,\"rbac_decision\":null,\"rbac_policy\":null,"
                    "\"rbac_rule\":null,\"tls_cipher\":null,\"request_id\":null}\n");
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

static int count_tokens(const char *s, size_t n)
{
    int tokens = 1;
    for (size_t i = 0; i < n; i++)
        tokens += s[i] == ' ';
    return tokens;
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
    assert_non_null(strstr(buf, " request_id=abc\\x20request_id=forged\n"));
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
    char buf[OR_ACCESS_LOG_LINE_MAX];
    fill(path, 20001, "\xe2\x82\xac"); /* a 3-byte character, never to be split */
    or_access_record r = http_record();
    r.path = path;
    r.path_len = strlen(path);
    size_t n = or_access_log_format_json(&r, buf, sizeof buf);
    assert_true(n > 4000 && n <= sizeof buf);
    assert_true(json_line_valid(buf, n));
    buf[n] = '\0';
    assert_non_null(strstr(buf, "\xe2\x82\xac" OR_ACCESS_LOG_TRUNCATED "\",\"protocol\""));
    n = or_access_log_format_text(&r, buf, sizeof buf);
    assert_true(n > 4000 && n <= sizeof buf);
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
    n = or_access_log_format_json(&r, buf, sizeof buf);
    assert_true(n > 0 && n <= sizeof buf);
    assert_true(json_line_valid(buf, n));
    n = or_access_log_format_text(&r, buf, sizeof buf);
    assert_true(n > 0 && n <= sizeof buf);
    assert_int_equal(count_tokens(buf, n - 1), TEXT_TOKENS);
    assert_ptr_equal(memchr(buf, '\n', n), buf + n - 1);

    /* Exact fit, one byte short with a short path (no room to cut), tiny. */
    r = http_record();
    n = or_access_log_format_text(&r, buf, sizeof buf);
    assert_int_equal(or_access_log_format_text(&r, buf, n), n);
    assert_int_equal(or_access_log_format_text(&r, buf, n - 1), 0);
    assert_int_equal(or_access_log_format_json(&r, buf, 40), 0);
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

/* ---- the writer -------------------------------------------------------- */

typedef struct {
    char *data;
    size_t len;
    size_t nlines;
} file_text;

static file_text read_fd(int fd)
{
    file_text t = {NULL, 0, 0};
    size_t cap = 0;
    for (;;) {
        if (cap - t.len < 65536) {
            cap = cap * 2 + 65536;
            t.data = realloc(t.data, cap + 1);
            assert_non_null(t.data);
        }
        ssize_t n = read(fd, t.data + t.len, cap - t.len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            break;
        t.len += (size_t)n;
    }
    t.data[t.len] = '\0';
    for (size_t i = 0; i < t.len; i++)
        t.nlines += t.data[i] == '\n';
    return t;
}

static file_text read_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    file_text t = read_fd(fd);
    close(fd);
    return t;
}

static size_t count_file_lines(const char *path)
{
    if (access(path, R_OK) != 0)
        return 0;
    file_text t = read_path(path);
    free(t.data);
    return t.nlines;
}

static void wait_for_lines(const char *path, size_t lines)
{
    for (int i = 0; i < 500 && count_file_lines(path) < lines; i++)
        usleep(10000);
    assert_int_equal(count_file_lines(path), lines);
}

/* Checks every line (text or JSON) and the per-worker sequence carried in
 * request ids "w<worker>-<seq>": strictly increasing, and with no gaps when
 * `contiguous`. Returns the number of lines. */
static size_t check_lines(const file_text *t, bool json, bool contiguous, long first_seq)
{
    long next[2] = {first_seq, first_seq};
    size_t lines = 0;
    for (const char *p = t->data, *end; p < t->data + t->len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(t->data + t->len - p));
        assert_non_null(end);
        size_t n = (size_t)(end - p) + 1;
        if (json)
            assert_true(json_line_valid(p, n));
        else
            assert_int_equal(count_tokens(p, n - 1), TEXT_TOKENS);
        const char *key = json ? "\"request_id\":\"" : "request_id=";
        const char *id = memmem(p, n, key, strlen(key));
        assert_non_null(id);
        id += strlen(key);
        assert_true(id[0] == 'w');
        unsigned worker = (unsigned)(id[1] - '0');
        long seq = strtol(id + 3, NULL, 10);
        assert_true(worker < 2);
        if (contiguous)
            assert_int_equal(seq, next[worker]);
        else
            assert_true(seq >= next[worker]);
        next[worker] = seq + 1;
        lines++;
    }
    return lines;
}

typedef struct {
    or_access_log *log;
    unsigned worker;
    long first, count;
} producer;

static void write_numbered(or_access_log *log, unsigned worker, long seq)
{
    char id[32];
    snprintf(id, sizeof id, "w%u-%ld", worker, seq);
    or_access_record r = http_record();
    r.request_id = id;
    or_access_log_write(log, worker, &r);
}

static void *produce(void *arg)
{
    producer *p = arg;
    for (long i = p->first; i < p->first + p->count; i++)
        write_numbered(p->log, p->worker, i);
    return NULL;
}

static void run_producers(or_access_log *log, long per_worker)
{
    pthread_t threads[2];
    producer args[2];
    for (unsigned w = 0; w < 2; w++) {
        args[w] = (producer){log, w, 0, per_worker};
        assert_int_equal(pthread_create(&threads[w], NULL, produce, &args[w]), 0);
    }
    for (unsigned w = 0; w < 2; w++)
        pthread_join(threads[w], NULL);
}

static void test_writer_two_workers(void **state)
{
    (void)state;
    char path[512], err[256] = "";
    tmp_path(path, sizeof path, "two.log");
    unlink(path);
    /* Room for every line, so nothing may be dropped whatever the timing. */
    or_access_log *log = or_access_log_open_sized(path, OR_ACCESS_LOG_TEXT, 2,
                                                  (size_t)4 << 20, err, sizeof err);
    assert_non_null(log);
    run_producers(log, 5000);
    assert_int_equal(or_access_log_dropped(log), 0);
    or_access_log_close(log);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0640 & ~mask);
    file_text t = read_path(path);
    assert_int_equal(t.nlines, 10000);
    assert_int_equal(check_lines(&t, false, true, 0), 10000);
    free(t.data);
    unlink(path);
}

/* Default buffers and producers that never pause: lines may be dropped, but
 * every line is accounted for and the ones written are whole and in order. */
static void test_writer_stress_accounts_for_every_line(void **state)
{
    (void)state;
    char path[512], err[256] = "";
    tmp_path(path, sizeof path, "stress.json");
    unlink(path);
    or_access_log *log = or_access_log_open(path, OR_ACCESS_LOG_JSON, 2, err, sizeof err);
    assert_non_null(log);
    run_producers(log, 20000);
    uint64_t dropped = or_access_log_dropped(log);
    or_access_log_close(log);
    print_message("stress: %llu of 40000 lines dropped\n", (unsigned long long)dropped);
    file_text t = read_path(path);
    assert_int_equal(t.nlines + dropped, 40000);
    assert_int_equal(check_lines(&t, true, dropped == 0, 0), t.nlines);
    free(t.data);
    unlink(path);
}

static void *drain_fifo(void *arg)
{
    int fd = *(int *)arg;
    file_text *t = malloc(sizeof *t);
    assert_non_null(t);
    *t = read_fd(fd);
    return t;
}

/* The sink is a FIFO nobody reads yet: the writer blocks on a full pipe and
 * the worker's 16 KiB buffer overflows. Lines are dropped and counted. */
static void test_writer_overflow_counts_dropped(void **state)
{
    (void)state;
    char path[512], err[256] = "";
    tmp_path(path, sizeof path, "fifo");
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    int rfd = open(path, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    (void)fcntl(rfd, F_SETPIPE_SZ, 4096);
    or_access_log *log = or_access_log_open_sized(path, OR_ACCESS_LOG_TEXT, 1, 1, err, sizeof err);
    assert_non_null(log);
    const long attempts = 5000; /* about 1.5 MB against 16 KiB + the pipe */
    for (long i = 0; i < attempts; i++)
        write_numbered(log, 0, i);
    uint64_t dropped = or_access_log_dropped(log);
    assert_true(dropped > 0);

    assert_int_equal(fcntl(rfd, F_SETFL, 0), 0);
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, drain_fifo, &rfd), 0);
    or_access_log_close(log);
    file_text *t;
    pthread_join(reader, (void **)&t);
    close(rfd);
    assert_int_equal(t->nlines + dropped, (size_t)attempts);
    assert_int_equal(check_lines(t, false, false, 0), t->nlines);
    free(t->data);
    free(t);
    unlink(path);
}

static void test_reopen_after_rotation(void **state)
{
    (void)state;
    char path[512], rotated[600], err[256] = "";
    tmp_path(path, sizeof path, "rotate.log");
    snprintf(rotated, sizeof rotated, "%s.1", path);
    unlink(path);
    unlink(rotated);
    or_access_log *log = or_access_log_open(path, OR_ACCESS_LOG_JSON, 1, err, sizeof err);
    assert_non_null(log);
    for (long i = 0; i < 100; i++)
        write_numbered(log, 0, i);
    wait_for_lines(path, 100);
    assert_int_equal(rename(path, rotated), 0);
    or_access_log_reopen(log);
    for (long i = 100; i < 200; i++)
        write_numbered(log, 0, i);
    or_access_log_close(log);
    file_text old = read_path(rotated), cur = read_path(path);
    assert_int_equal(old.nlines, 100);
    assert_int_equal(check_lines(&old, true, true, 0), 100);
    assert_int_equal(cur.nlines, 100);
    assert_int_equal(check_lines(&cur, true, true, 100), 100);
    free(old.data);
    free(cur.data);
    unlink(path);
    unlink(rotated);
}

/* The directory disappears before the reopen: the writer keeps the old
 * descriptor and no line is lost. */
static void test_failed_reopen_keeps_writing(void **state)
{
    (void)state;
    char dir[512], path[600], err[256] = "";
    tmp_path(dir, sizeof dir, "gone");
    snprintf(path, sizeof path, "%s/access.log", dir);
    mkdir(dir, 0755);
    or_access_log *log = or_access_log_open(path, OR_ACCESS_LOG_TEXT, 1, err, sizeof err);
    assert_non_null(log);
    for (long i = 0; i < 10; i++)
        write_numbered(log, 0, i);
    wait_for_lines(path, 10);
    int keep = open(path, O_RDONLY);
    assert_true(keep >= 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    or_access_log_reopen(log);
    for (long i = 10; i < 20; i++)
        write_numbered(log, 0, i);
    or_access_log_close(log);
    file_text t = read_fd(keep);
    close(keep);
    assert_int_equal(t.nlines, 20);
    assert_int_equal(check_lines(&t, false, true, 0), 20);
    free(t.data);
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[256] = "";
    const char *missing = "/nonexistent-outrider-dir/sub/access.log";
    assert_null(or_access_log_open(missing, OR_ACCESS_LOG_TEXT, 1, err, sizeof err));
    assert_string_equal(err, "cannot open access log /nonexistent-outrider-dir/sub/access.log: "
                             "No such file or directory");
    const char *dir = tmp_dir();
    assert_null(or_access_log_open(dir, OR_ACCESS_LOG_JSON, 1, err, sizeof err));
    assert_non_null(strstr(err, dir));
    assert_non_null(strstr(err, "Is a directory"));
    assert_null(or_access_log_open("", OR_ACCESS_LOG_JSON, 1, err, sizeof err));
    assert_non_null(strstr(err, "Invalid argument"));
    assert_null(or_access_log_open("/dev/null", OR_ACCESS_LOG_JSON, 0, err, sizeof err));
    assert_null(or_access_log_open(missing, OR_ACCESS_LOG_JSON, 1, NULL, 0));
}

/* /dev/stdout is a duplicate of fd 1: closing the log leaves stdout open,
 * and a write for a worker that does not exist is counted, not lost. */
static void test_stdout_and_bad_worker(void **state)
{
    (void)state;
    char err[256] = "";
    or_access_log *log = or_access_log_open("/dev/stdout", OR_ACCESS_LOG_TEXT, 1, err,
                                            sizeof err);
    assert_non_null(log);
    or_access_record r = tcp_record();
    or_access_log_write(log, 0, &r);
    or_access_log_write(log, 7, &r);
    assert_int_equal(or_access_log_dropped(log), 1);
    or_access_log_reopen(log);
    or_access_log_close(log);
    assert_true(fcntl(STDOUT_FILENO, F_GETFD) >= 0);
    or_access_log_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_http),
        cmocka_unit_test(test_text_tcp_and_absent),
        cmocka_unit_test(test_json_http),
        cmocka_unit_test(test_json_tcp_and_absent),
        cmocka_unit_test(test_time_formatting),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_text_escaping),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_fuzzed_records),
        cmocka_unit_test(test_writer_two_workers),
        cmocka_unit_test(test_writer_stress_accounts_for_every_line),
        cmocka_unit_test(test_writer_overflow_counts_dropped),
        cmocka_unit_test(test_reopen_after_rotation),
        cmocka_unit_test(test_failed_reopen_keeps_writing),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_stdout_and_bad_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
