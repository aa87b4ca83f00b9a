/*
 * Request-target normalisation (or_http_target_normalize) and the policy
 * decisions it leads to.
 *
 * The table and the policies of docs/rbac.md ("Paths are normalised before
 * matching") are read from the document itself: each row's target is
 * normalised, compared with the forwarded form the row gives, and the
 * normalised path is decided by the document's policies for the caller the
 * document names. The other tests pin the rules one at a time: escaped
 * slashes decoded on request, absolute-form authorities, the query kept
 * byte for byte, idempotence.
 */
#include "rbac_fixture.h"

#include "outrider/http_path.h"

#define DOC_SECTION "### Paths are normalised before matching"
#define TABLE_START "<!-- normalisation table"
#define TABLE_END "<!-- end of normalisation table -->"

static char *doc_text;

static int setup(void **state)
{
    (void)state;
    const char *data = getenv("OUTRIDER_TEST_DATA");
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/../../docs/rbac.md", data ? data : "tests/data");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    static char buf[256 * 1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    doc_text = buf;
    return fixture_setup("test_http_path");
}

/* Normalises `in` (a C string); returns the status and, on success, the
 * result as a C string in `out`. */
static or_path_status norm(const char *in, or_escaped_slashes mode, char *out, size_t cap,
                           or_target *t)
{
    or_buf b = {0};
    or_path_status st = or_http_target_normalize(in, strlen(in), mode, &b, t);
    if (st == OR_PATH_OK) {
        assert_true(b.len < cap);
        memcpy(out, b.data, b.len);
        out[b.len] = '\0';
    }
    or_buf_free(&b);
    return st;
}

/* The text between the first pair of backticks in `cell`, or the cell
 * trimmed when it has none. */
static void cell_text(const char *cell, size_t len, char *out, size_t cap)
{
    const char *open = memchr(cell, '`', len);
    const char *close = open ? memchr(open + 1, '`', len - (size_t)(open + 1 - cell)) : NULL;
    if (open && close) {
        cell = open + 1;
        len = (size_t)(close - cell);
    } else {
        while (len > 0 && cell[0] == ' ')
            cell++, len--;
        while (len > 0 && cell[len - 1] == ' ')
            len--;
    }
    assert_true(len < cap);
    memcpy(out, cell, len);
    out[len] = '\0';
}

typedef struct {
    char method[16], target[256], forwarded[256], decision[16];
} table_row;

/* Splits "| a | b | c | d |" into its four cells. */
static void parse_row(const char *line, size_t len, table_row *r)
{
    char *cells[4] = {r->method, r->target, r->forwarded, r->decision};
    size_t caps[4] = {sizeof r->method, sizeof r->target, sizeof r->forwarded,
                      sizeof r->decision};
    const char *p = line + 1, *end = line + len;
    for (int i = 0; i < 4; i++) {
        /* a cell ends at the next '|' outside backticks */
        const char *q = p;
        bool code = false;
        while (q < end && (code || *q != '|')) {
            if (*q == '`')
                code = !code;
            q++;
        }
        assert_true(q < end);
        cell_text(p, (size_t)(q - p), cells[i], caps[i]);
        p = q + 1;
    }
}

/* The policies YAML block of the section, as an rbac: section. */
static policy_set doc_policies(void)
{
    const char *sec = strstr(doc_text, DOC_SECTION);
    assert_non_null(sec);
    const char *y = strstr(sec, "```yaml\n");
    assert_non_null(y);
    y += 8;
    const char *e = strstr(y, "```");
    assert_non_null(e);
    static char yaml[8192];
    int n = snprintf(yaml, sizeof yaml, "%s%s%.*s", HEAD, HTTP_INBOUND, (int)(e - y), y);
    assert_true(n > 0 && (size_t)n < sizeof yaml);
    return load_set(yaml);
}

static void check_row(const policy_set *set, const table_row *r)
{
    char out[1024];
    or_target t;
    or_path_status st = norm(r->target, OR_SLASHES_REJECT, out, sizeof out, &t);
    if (strcmp(r->forwarded, "-") == 0) {
        if (st == OR_PATH_OK && strcmp(out, "*") == 0 && strcmp(r->method, "OPTIONS") != 0)
            st = OR_PATH_BAD_FORM; /* the session's rule for "*" */
        if (st == OR_PATH_OK)
            fail_msg("%s: expected a refusal, got \"%s\"", r->target, out);
        assert_string_equal(r->decision, "400");
        return;
    }
    if (st != OR_PATH_OK)
        fail_msg("%s: refused (%s), expected \"%s\"", r->target, or_http_path_status_text(st),
                 r->forwarded);
    assert_string_equal(out, r->forwarded);
    out[t.path_len] = '\0';
    test_request req;
    http_request(&req, FRONTEND, r->method, out);
    bool ok = allowed(set, &req);
    if (strcmp(r->decision, ok ? "allow" : "deny") != 0)
        fail_msg("%s (path %s): expected %s", r->target, out, r->decision);
}

static void test_doc_table(void **state)
{
    (void)state;
    policy_set set = doc_policies();
    const char *p = strstr(doc_text, TABLE_START);
    const char *end = strstr(doc_text, TABLE_END);
    assert_non_null(p);
    assert_non_null(end);
    int rows = 0;
    for (p = strchr(p, '\n') + 1; p < end;) {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p);
        if (len > 2 && p[0] == '|' && p[2] != '-' && strncmp(p, "| method", 8) != 0) {
            table_row r;
            parse_row(p, len, &r);
            check_row(&set, &r);
            rows++;
        }
        p = nl + 1;
    }
    assert_true(rows >= 30);
    free_set(&set);
}

static void expect(const char *in, or_escaped_slashes mode, const char *want)
{
    char out[1024];
    or_target t;
    or_path_status st = norm(in, mode, out, sizeof out, &t);
    if (st != OR_PATH_OK)
        fail_msg("%s: refused (%s), expected \"%s\"", in, or_http_path_status_text(st), want);
    assert_string_equal(out, want);
}

static void expect_refused(const char *in, or_escaped_slashes mode, or_path_status want)
{
    char out[1024];
    or_target t;
    assert_int_equal(norm(in, mode, out, sizeof out, &t), want);
}

static void test_escaped_slashes(void **state)
{
    (void)state;
    expect_refused("/a%2fb", OR_SLASHES_REJECT, OR_PATH_ESCAPED_SLASH);
    expect_refused("/a%5Cb", OR_SLASHES_REJECT, OR_PATH_ESCAPED_SLASH);
    expect("/a%2fb", OR_SLASHES_DECODE, "/a/b");
    expect("/api/x%2f..%2fadmin", OR_SLASHES_DECODE, "/api/admin");
    expect("/api/x%5C..%5Cadmin", OR_SLASHES_DECODE, "/api/admin");
    expect("/a%2F%2F%2Fb", OR_SLASHES_DECODE, "/a/b");
    /* an escaped '%' stays escaped: nothing is decoded twice */
    expect("/a%252fb", OR_SLASHES_REJECT, "/a%252fb");
    expect_refused("/a%2", OR_SLASHES_DECODE, OR_PATH_BAD_ESCAPE);
    expect_refused("/a%", OR_SLASHES_DECODE, OR_PATH_BAD_ESCAPE);
}

static void test_absolute_form(void **state)
{
    (void)state;
    char out[256];
    or_target t;
    assert_int_equal(norm("http://orders.shop:8080/a/../b?x=1", OR_SLASHES_REJECT, out, sizeof out,
                          &t),
                     OR_PATH_OK);
    assert_string_equal(out, "/b?x=1");
    assert_int_equal(t.path_len, 2);
    assert_int_equal(t.authority_len, strlen("orders.shop:8080"));
    assert_memory_equal(t.authority, "orders.shop:8080", t.authority_len);
    expect("http://h", OR_SLASHES_REJECT, "/");
    expect("http://h?q", OR_SLASHES_REJECT, "/?q");
    expect_refused("http:///x", OR_SLASHES_REJECT, OR_PATH_BAD_FORM);
    expect_refused("ftp://h/x", OR_SLASHES_REJECT, OR_PATH_BAD_FORM);
    expect_refused("http://a@h/x", OR_SLASHES_REJECT, OR_PATH_USERINFO);
    expect_refused("", OR_SLASHES_REJECT, OR_PATH_BAD_FORM);
    assert_int_equal(norm("/x", OR_SLASHES_REJECT, out, sizeof out, &t), OR_PATH_OK);
    assert_int_equal(t.authority_len, 0);
}

static void test_query_and_bytes(void **state)
{
    (void)state;
    char out[256];
    or_target t;
    assert_int_equal(norm("/a/./b?%2e%2e/../x#", OR_SLASHES_REJECT, out, sizeof out, &t),
                     OR_PATH_FRAGMENT);
    assert_int_equal(norm("/a/./b?%2e%2e/..//x%2f", OR_SLASHES_REJECT, out, sizeof out, &t),
                     OR_PATH_OK);
    assert_string_equal(out, "/a/b?%2e%2e/..//x%2f");
    assert_int_equal(t.path_len, 4);
    expect("/\x80\xff{|}", OR_SLASHES_REJECT, "/%80%FF%7B%7C%7D");
    or_buf b = {0};
    assert_int_equal(or_http_target_normalize("/a\0b", 4, OR_SLASHES_REJECT, &b, &t), OR_PATH_OK);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "/a%00b", 6);
    or_buf_free(&b);
    expect("/a%c3%a9", OR_SLASHES_REJECT, "/a%C3%A9");
    expect("/~user/a-b_c.d", OR_SLASHES_REJECT, "/~user/a-b_c.d");
    expect("/a:b@c!$&'()*+,;=", OR_SLASHES_REJECT, "/a:b@c!$&'()*+,;=");
}

static void test_dot_segments(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"/", "/"},           {"//", "/"},         {"/.", "/"},          {"/..", "/"},
        {"/../..", "/"},      {"/a", "/a"},        {"/a/", "/a/"},       {"/a//", "/a/"},
        {"/a/b/..", "/a/"},   {"/a/b/../", "/a/"}, {"/a/b/../c", "/a/c"}, {"/a/./b/.", "/a/b/"},
        {"/a/.b", "/a/.b"},   {"/a/..b", "/a/..b"}, {"/a/...", "/a/..."}, {"/a//../b", "/b"},
        {"/%2E%2e", "/"},     {"/a/%2E/b", "/a/b"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect(cases[i][0], OR_SLASHES_REJECT, cases[i][1]);
}

/* Normalising a normalised target changes nothing. */
/* host[:port] and nothing else (RFC 3986 3.2.2-3). */
static void test_host_valid(void **state)
{
    (void)state;
    static const char *const good[] = {"a", "orders.shop", "orders.shop:8080", "a:", "[::1]",
                                       "[::1]:443", "10.0.0.1:80", "xn--d1a.example", "a_b~c"};
    static const char *const bad[] = {"", ":80", "a@b", "a:1@b", "a/b", "a?b", "a#b", "a b",
                                      "a:8o", "a:1:2", "[::1", "[]", "[::1]x", "[g::1]",
                                      "a\"b", "a\\b", "\x80"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(or_http_host_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(or_http_host_valid(bad[i], strlen(bad[i])));
    assert_false(or_http_host_valid("a\0b", 3));
}

/* Each byte in a path segment stands, or is escaped, as RFC 3986 3.3 has
 * it (pchar less '%'); '%', '?', '#', '/' and '\\' have rules of their own. */
static void test_path_bytes(void **state)
{
    (void)state;
    for (int c = 1; c < 256; c++) {
        if (strchr("%?#/\\", c))
            continue;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        bool stands = alnum || strchr("-._~!$&'()*+,;=:@", c) != NULL;
        char in[4] = {'/', 'a', (char)c, '\0'}, want[8];
        if (stands)
            snprintf(want, sizeof want, "/a%c", c);
        else
            snprintf(want, sizeof want, "/a%%%02X", c);
        char out[16];
        or_target t;
        assert_int_equal(norm(in, OR_SLASHES_REJECT, out, sizeof out, &t), OR_PATH_OK);
        if (strcmp(out, want) != 0)
            fail_msg("byte 0x%02x: %s, not %s", c, out, want);
    }
}

/* Each byte in each part of a Host, against RFC 3986 3.2.2-3 as written. */
static void test_host_bytes(void **state)
{
    (void)state;
    for (int c = 0; c < 256; c++) {
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        bool reg = alnum || (c != 0 && strchr("-._~%!$&'()*+,;=", c) != NULL);
        bool ip = hex || c == ':' || c == '.';
        char name[3] = {'a', (char)c, 'b'}, literal[5] = {'[', '1', (char)c, '2', ']'},
             port[4] = {'h', ':', '1', (char)c};
        if (or_http_host_valid(name, 3) != reg)
            fail_msg("reg-name byte 0x%02x", c);
        if (or_http_host_valid(literal, 5) != ip)
            fail_msg("IP-literal byte 0x%02x", c);
        if (or_http_host_valid(port, 4) != (c >= '0' && c <= '9'))
            fail_msg("port byte 0x%02x", c);
    }
}

static void test_idempotent(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "/api/%2e%2e/x/./y//z/..", "/%41%7a%2D%2e%5F%7E%20%25", "/a\\b\\..\\c",
        "http://h/%61/../b/", "/a%3f?x", "/x/%2e./y", "/\x01\x7f",
    };
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char once[512], twice[512];
        or_target t;
        assert_int_equal(norm(inputs[i], OR_SLASHES_DECODE, once, sizeof once, &t), OR_PATH_OK);
        assert_int_equal(norm(once, OR_SLASHES_DECODE, twice, sizeof twice, &t), OR_PATH_OK);
        assert_string_equal(once, twice);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_doc_table),       cmocka_unit_test(test_escaped_slashes),
        cmocka_unit_test(test_absolute_form),   cmocka_unit_test(test_query_and_bytes),
        cmocka_unit_test(test_dot_segments),    cmocka_unit_test(test_idempotent),
        cmocka_unit_test(test_host_valid),      cmocka_unit_test(test_host_bytes),
        cmocka_unit_test(test_path_bytes),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
