/*
 * config_fixture: what the config loader tests share (test_config_load.c,
 * test_config_errors.c, test_config_rbac.c).
 *
 * Every case gets a directory of its own, OUTRIDER_TEST_TMP/test_config/<name>,
 * holding empty identity placeholder files; case names are unique across the
 * three files, so they may run in parallel. BASE is a valid twelve-line
 * config (BASE_HEAD, lines 1-6, then BASE_LISTENERS, lines 7-12); most cases
 * append the lines under test from line 13 on, so positions in expectations
 * can be read straight off the text.
 *
 * Bad configs: BAD_CONFIG(name, yaml, expected...) writes the config and
 * loads it; the load must fail with exactly the expected diagnostics, in
 * order, compared as text with file:line:column; "$D" in an expected line
 * stands for the case directory. EXPECT does the same for a case already
 * written with case_init/case_write.
 *
 * Good configs: load_ok and case_load_ok load without a single diagnostic;
 * assert_addr, STRINGS, assert_pos and assert_cidr check loaded values.
 */
#ifndef OUTRIDER_TEST_CONFIG_FIXTURE_H
#define OUTRIDER_TEST_CONFIG_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmp_fixture.h"

#include "outrider/config.h"

#define BASE_HEAD                                                                        \
    "service: payments\n"           /*  1 */                                             \
    "trust_domain: cluster.local\n" /*  2 */                                             \
    "identity:\n"                   /*  3 */                                             \
    "  cert: cert.pem\n"            /*  4 */                                             \
    "  key: key.pem\n"              /*  5 */                                             \
    "  bundle: bundle.pem\n"        /*  6 */
#define BASE_LISTENERS                                                                   \
    "listeners:\n"                  /*  7 */                                             \
    "  - name: inbound\n"           /*  8 */                                             \
    "    mode: inbound\n"           /*  9 */                                             \
    "    protocol: http\n"          /* 10 */                                             \
    "    listen: 0.0.0.0:15006\n"   /* 11 */                                             \
    "    upstream: 127.0.0.1:8080\n" /* 12 */
#define BASE BASE_HEAD BASE_LISTENERS

typedef struct {
    char dir[PATH_MAX];
    char config[PATH_MAX];
    or_diag diag;
} test_case;

/* ---- files ---- */

/* snprintf into a PATH_MAX buffer, failing the test on truncation. */
static inline void format_path(char *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline void format_path(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX)
        fail_msg("path too long");
}

static inline void make_dirs(const char *path)
{
    char buf[PATH_MAX];
    format_path(buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        fail_msg("mkdir %s: %s", buf, strerror(errno));
}

/* Writes content to `name` inside the case directory (creating folders). */
static inline void case_write(test_case *c, const char *name, const char *content)
{
    char path[PATH_MAX];
    format_path(path, "%s/%s", c->dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    make_dirs(path);
    *slash = '/';
    write_text_file(path, content);
}

/* A fresh directory holding empty identity placeholder files. */
static inline void case_init(test_case *c, const char *name)
{
    const char *tmp = getenv("OUTRIDER_TEST_TMP");
    format_path(c->dir, "%s/test_config/%s", tmp ? tmp : "/tmp", name);
    format_path(c->config, "%s/config.yaml", c->dir);
    remove_tree(c->dir);
    make_dirs(c->dir);
    case_write(c, "cert.pem", "");
    case_write(c, "key.pem", "");
    case_write(c, "bundle.pem", "");
    or_diag_init(&c->diag);
}

static inline void print_diags(const or_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        print_message("  got: %s\n", d->entries[i].text);
}

/* Replaces every "$D" in pattern with dir. */
static inline void expand(char *out, size_t len, const char *pattern, const char *dir)
{
    size_t used = 0;
    for (const char *p = pattern; *p && used + 1 < len; p++) {
        if (p[0] == '$' && p[1] == 'D') {
            used += (size_t)snprintf(out + used, len - used, "%s", dir);
            p++;
        } else {
            out[used++] = *p;
        }
    }
    out[used < len ? used : len - 1] = '\0';
}

static inline void assert_diags(const test_case *c, const char *const *expected)
{
    char want[2048];
    size_t n = 0;
    while (expected[n] != NULL)
        n++;
    for (size_t i = 0; i < n || i < c->diag.count; i++) {
        if (i < n)
            expand(want, sizeof(want), expected[i], c->dir);
        if (i >= n || i >= c->diag.count || strcmp(want, c->diag.entries[i].text) != 0) {
            print_message("diagnostic %zu differs\n  want: %s\n", i, i < n ? want : "(none)");
            print_diags(&c->diag);
            fail();
        }
    }
}

/* Loads config.yaml from the case directory; it must fail with exactly
 * the expected diagnostics. */
static inline void expect_errors(test_case *c, const char *const *expected)
{
    or_config *cfg = or_config_load(c->config, &c->diag);
    if (cfg != NULL) {
        or_config_free(cfg);
        fail_msg("config loaded although it should not");
    }
    assert_diags(c, expected);
    size_t n = 0;
    while (expected[n] != NULL)
        n++;
    assert_int_equal(c->diag.errors, n);
    or_diag_free(&c->diag);
}

#define EXPECT(c, ...)                                                                   \
    do {                                                                                 \
        const char *const expected_[] = {__VA_ARGS__, NULL};                             \
        expect_errors(c, expected_);                                                     \
    } while (0)

/* Writes yaml as config.yaml in a fresh case directory and expects errors. */
#define BAD_CONFIG(name, yaml, ...)                                                      \
    do {                                                                                 \
        test_case c_;                                                                    \
        case_init(&c_, name);                                                            \
        case_write(&c_, "config.yaml", yaml);                                            \
        EXPECT(&c_, __VA_ARGS__);                                                        \
    } while (0)

static inline or_config *load_ok(const char *path)
{
    or_diag diag;
    or_diag_init(&diag);
    or_config *cfg = or_config_load(path, &diag);
    if (cfg == NULL || diag.count != 0) {
        print_diags(&diag);
        fail_msg("%s did not load cleanly", path);
    }
    or_diag_free(&diag);
    return cfg;
}

static inline or_config *case_load_ok(test_case *c, const char *yaml)
{
    case_write(c, "config.yaml", yaml);
    return load_ok(c->config);
}

/* ---- checks on loaded values ---- */

static inline void assert_addr(const or_hostport *hp, const char *text)
{
    char buf[64];
    assert_true(hp->is_ip);
    assert_string_equal(or_addr_format((const struct sockaddr *)&hp->addr, buf, sizeof(buf)),
                        text);
}

static inline void assert_strings(const or_strlist *list, const char *const *expected)
{
    size_t n = 0;
    while (expected[n] != NULL) {
        assert_true(n < list->count);
        assert_string_equal(list->items[n], expected[n]);
        n++;
    }
    assert_int_equal(list->count, n);
}

#define STRINGS(list, ...)                                                               \
    do {                                                                                 \
        const char *const want_[] = {__VA_ARGS__, NULL};                                 \
        assert_strings(list, want_);                                                     \
    } while (0)

static inline void assert_pos(or_source_pos pos, const char *file, unsigned long line,
                              unsigned long col)
{
    assert_string_equal(pos.file, file);
    assert_int_equal(pos.line, line);
    assert_int_equal(pos.col, col);
}

static inline void assert_cidr(const or_cidr *block, int family, const char *text,
                               unsigned prefix)
{
    uint8_t want[16] = {0};
    assert_int_equal(block->family, family);
    assert_int_equal(inet_pton(family, text, want), 1);
    assert_memory_equal(block->addr, want, family == AF_INET ? 4 : 16);
    assert_int_equal(block->prefix_len, prefix);
}

#endif
