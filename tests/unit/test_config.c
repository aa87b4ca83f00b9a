/*
 * Unit tests for the config loader (config.c, config_rbac.c).
 *
 * Good configs are checked field by field. Bad configs are written to a
 * directory of their own under OUTRIDER_TEST_TMP and every diagnostic is
 * compared as exact text, file:line:column included; "$D" in an expected
 * line stands for that directory. Most bad cases start from BASE, a valid
 * twelve-line config, and append the lines under test from line 13 on, so
 * the positions in the expectations can be read straight off the text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* An outbound listener, appended after BASE as listeners[1] (lines 13-18). */
#define OUTBOUND_HEAD                                                                    \
    "  - name: to-orders\n"                                                              \
    "    mode: outbound\n"                                                               \
    "    protocol: tcp\n"                                                                \
    "    listen: 127.0.0.1:15001\n"                                                      \
    "    upstream: orders.shop.svc:15006\n"

typedef struct {
    char dir[PATH_MAX];
    char config[PATH_MAX];
    or_diag diag;
} test_case;

/* ---- files ---- */

/* snprintf into a PATH_MAX buffer, failing the test on truncation. */
static void format_path(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void format_path(char *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, PATH_MAX, fmt, ap);
    va_end(ap);
    if (n < 0 || n >= PATH_MAX)
        fail_msg("path too long");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void make_dirs(const char *path)
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

static void write_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    fputs(content, fp);
    fclose(fp);
}

/* Writes content to `name` inside the case directory (creating folders). */
static void case_write(test_case *c, const char *name, const char *content)
{
    char path[PATH_MAX];
    format_path(path, "%s/%s", c->dir, name);
    char *slash = strrchr(path, '/');
    *slash = '\0';
    make_dirs(path);
    *slash = '/';
    write_file(path, content);
}

/* A fresh directory holding empty identity placeholder files. */
static void case_init(test_case *c, const char *name)
{
    const char *tmp = getenv("OUTRIDER_TEST_TMP");
    format_path(c->dir, "%s/test_config/%s", tmp ? tmp : "/tmp", name);
    format_path(c->config, "%s/config.yaml", c->dir);
    nftw(c->dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    make_dirs(c->dir);
    case_write(c, "cert.pem", "");
    case_write(c, "key.pem", "");
    case_write(c, "bundle.pem", "");
    or_diag_init(&c->diag);
}

static void print_diags(const or_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        print_message("  got: %s\n", d->entries[i].text);
}

/* Replaces every "$D" in pattern with dir. */
static void expand(char *out, size_t len, const char *pattern, const char *dir)
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

static void assert_diags(const test_case *c, const char *const *expected)
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
static void expect_errors(test_case *c, const char *const *expected)
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

static or_config *load_ok(const char *path)
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

static or_config *case_load_ok(test_case *c, const char *yaml)
{
    case_write(c, "config.yaml", yaml);
    return load_ok(c->config);
}

/* ---- checks on loaded values ---- */

static void assert_addr(const or_hostport *hp, const char *text)
{
    char buf[64];
    assert_true(hp->is_ip);
    assert_string_equal(or_addr_format((const struct sockaddr *)&hp->addr, buf, sizeof(buf)),
                        text);
}

static void assert_strings(const or_strlist *list, const char *const *expected)
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

static void assert_pos(or_source_pos pos, const char *file, unsigned long line,
                       unsigned long col)
{
    assert_string_equal(pos.file, file);
    assert_int_equal(pos.line, line);
    assert_int_equal(pos.col, col);
}

static void assert_cidr(const or_cidr *block, int family, const char *text, unsigned prefix)
{
    uint8_t want[16] = {0};
    assert_int_equal(block->family, family);
    assert_int_equal(inet_pton(family, text, want), 1);
    assert_memory_equal(block->addr, want, family == AF_INET ? 4 : 16);
    assert_int_equal(block->prefix_len, prefix);
}

/* ==== good configs ==== */

static void check_full_top(const or_config *cfg, const char *dir)
{
    char path[PATH_MAX];
    assert_string_equal(cfg->service, "payments");
    assert_string_equal(cfg->trust_domain, "cluster.local");
    format_path(path, "%s/identity/cert.pem", dir);
    assert_string_equal(cfg->identity.cert, path);
    format_path(path, "%s/identity/key.pem", dir);
    assert_string_equal(cfg->identity.key, path);
    format_path(path, "%s/identity/bundle.pem", dir);
    assert_string_equal(cfg->identity.bundle, path);
    assert_int_equal(cfg->workers, 4);
    assert_false(cfg->workers_auto);
    assert_true(cfg->admin.enabled);
    assert_addr(&cfg->admin.listen, "127.0.0.1:15000");
    assert_false(cfg->admin.allow_non_loopback);
    assert_true(cfg->access_log.enabled);
    assert_string_equal(cfg->access_log.path, "/dev/stdout");
    assert_int_equal(cfg->access_log.format, OR_ACCESS_LOG_JSON);
    assert_true(cfg->rbac.enabled);
    assert_true(cfg->rbac.default_allow);
    assert_int_equal(cfg->timeouts.connect_ms, 2000);
    assert_int_equal(cfg->timeouts.handshake_ms, 3000);
    assert_int_equal(cfg->timeouts.idle_ms, 90000);
    assert_int_equal(cfg->timeouts.request_headers_ms, 500);
    assert_int_equal(cfg->timeouts.drain_ms, 60000);
    assert_int_equal(cfg->limits.max_connections, 2048);
    assert_int_equal(cfg->limits.max_request_headers, 32768);
}

static void check_full_listeners(const or_config *cfg)
{
    assert_int_equal(cfg->nlisteners, 2);
    const or_listener_config *in = &cfg->listeners[0], *out = &cfg->listeners[1];
    assert_string_equal(in->name, "inbound");
    assert_int_equal(in->mode, OR_MODE_INBOUND);
    assert_int_equal(in->protocol, OR_PROTO_HTTP);
    assert_addr(&in->listen, "0.0.0.0:15006");
    assert_addr(&in->upstream, "127.0.0.1:8080");
    assert_null(in->peer_identity);
    assert_pos(in->pos, cfg->files[0], 14, 5);

    assert_string_equal(out->name, "to-orders");
    assert_int_equal(out->mode, OR_MODE_OUTBOUND);
    assert_int_equal(out->protocol, OR_PROTO_TCP);
    assert_addr(&out->listen, "[::1]:15001");
    assert_false(out->upstream.is_ip);
    assert_string_equal(out->upstream.host, "orders.shop.svc");
    assert_int_equal(out->upstream.port, 15006);
    assert_string_equal(out->peer_identity, "spiffe://cluster.local/ns/shop/sa/orders");
    assert_pos(out->pos, cfg->files[0], 19, 5);
}

static void check_frontend_reads(const or_policy_config *p, const char *file)
{
    assert_string_equal(p->name, "frontend-reads");
    assert_string_equal(p->service, "payments");
    assert_int_equal(p->action, OR_RBAC_ALLOW);
    assert_false(p->dry_run);
    assert_pos(p->pos, file, 3, 5);
    assert_int_equal(p->nrules, 1);
    const or_rbac_rule *r = &p->rules[0];
    assert_pos(r->pos, file, 8, 9);
    assert_int_equal(r->nfrom, 2);
    STRINGS(&r->from[0].principals, "spiffe://cluster.local/ns/web/sa/frontend");
    assert_int_equal(r->from[0].namespaces.count, 0);
    assert_pos(r->from[0].pos, file, 9, 13);
    STRINGS(&r->from[1].namespaces, "ops");
    assert_int_equal(r->from[1].ip_blocks.count, 1);
    assert_cidr(&r->from[1].ip_blocks.items[0], AF_INET, "10.0.0.0", 8);
    assert_int_equal(r->nto, 1);
    STRINGS(&r->to[0].methods, "GET", "HEAD");
    STRINGS(&r->to[0].paths, "/api/*");
    assert_int_equal(r->to[0].ports.count, 1);
    assert_int_equal(r->to[0].ports.items[0], 8080);
    assert_pos(r->to[0].pos, file, 13, 13);
    assert_int_equal(r->nwhen, 1);
    assert_string_equal(r->when[0].header, "x-tenant");
    STRINGS(&r->when[0].values, "acme", "beta-*");
    assert_int_equal(r->when[0].not_values.count, 0);
    assert_pos(r->when[0].pos, file, 17, 13);
}

static void check_block_admin(const or_policy_config *p)
{
    assert_string_equal(p->name, "block-admin");
    assert_null(p->service);
    assert_int_equal(p->action, OR_RBAC_DENY);
    assert_int_equal(p->nrules, 1);
    const or_rbac_rule *r = &p->rules[0];
    const or_rbac_source *s = &r->from[0];
    STRINGS(&s->not_principals, "spiffe://cluster.local/ns/ops/*", "*/sa/admin-bot");
    STRINGS(&s->not_namespaces, "kube-*");
    assert_int_equal(s->not_ip_blocks.count, 2);
    assert_cidr(&s->not_ip_blocks.items[0], AF_INET6, "fd00::", 8);
    assert_cidr(&s->not_ip_blocks.items[1], AF_INET, "192.168.0.1", 32);
    const or_rbac_operation *o = &r->to[0];
    STRINGS(&o->paths, "/admin/*", "*.php");
    STRINGS(&o->not_methods, "OPTIONS");
    STRINGS(&o->not_paths, "/admin/health");
    assert_int_equal(o->not_ports.count, 1);
    assert_int_equal(o->not_ports.items[0], 9090);
    STRINGS(&o->hosts, "*.internal", "payments");
    STRINGS(&o->not_hosts, "*");
    assert_string_equal(r->when[0].header, "x-debug");
    STRINGS(&r->when[0].not_values, "*");
    assert_int_equal(r->when[0].values.count, 0);
}

static void test_full_config(void **state)
{
    char dir[PATH_MAX], path[PATH_MAX], policies[PATH_MAX];
    (void)state;
    const char *data = getenv("OUTRIDER_TEST_DATA");
    assert_non_null(data);
    format_path(dir, "%s/config", data);
    format_path(path, "%s/full.yaml", dir);
    format_path(policies, "%s/policies.yaml", dir);

    or_config *cfg = load_ok(path);
    assert_string_equal(cfg->path, path);
    assert_int_equal(cfg->nfiles, 2);
    assert_string_equal(cfg->files[0], path);
    assert_string_equal(cfg->files[1], policies);
    check_full_top(cfg, dir);
    check_full_listeners(cfg);
    assert_string_equal(cfg->rbac.policies_file, policies);
    assert_int_equal(cfg->rbac.npolicies, 3);
    check_frontend_reads(&cfg->rbac.policies[0], cfg->files[1]);
    check_block_admin(&cfg->rbac.policies[1]);
    const or_policy_config *audit = &cfg->rbac.policies[2];
    assert_string_equal(audit->name, "watch-everything");
    assert_int_equal(audit->action, OR_RBAC_AUDIT);
    assert_true(audit->dry_run);
    assert_int_equal(audit->nrules, 0);
    assert_null(audit->rules);
    or_config_free(cfg);
}

static void test_defaults(void **state)
{
    test_case c;
    char path[PATH_MAX];
    (void)state;
    case_init(&c, "defaults");
    or_config *cfg = case_load_ok(&c, BASE);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_true(cfg->workers_auto);
    assert_int_equal(cfg->workers, cpus < 1 ? 1 : cpus > 64 ? 64 : cpus);
    assert_false(cfg->admin.enabled);
    assert_false(cfg->access_log.enabled);
    assert_null(cfg->access_log.path);
    assert_int_equal(cfg->access_log.format, OR_ACCESS_LOG_TEXT);
    assert_false(cfg->rbac.enabled);
    assert_false(cfg->rbac.default_allow);
    assert_null(cfg->rbac.policies_file);
    assert_int_equal(cfg->rbac.npolicies, 0);
    assert_int_equal(cfg->timeouts.connect_ms, 5000);
    assert_int_equal(cfg->timeouts.handshake_ms, 10000);
    assert_int_equal(cfg->timeouts.idle_ms, 300000);
    assert_int_equal(cfg->timeouts.request_headers_ms, 10000);
    assert_int_equal(cfg->timeouts.drain_ms, 30000);
    assert_int_equal(cfg->limits.max_connections, 10000);
    assert_int_equal(cfg->limits.max_request_headers, 65536);
    assert_int_equal(cfg->nfiles, 1);
    format_path(path, "%s/cert.pem", c.dir);
    assert_string_equal(cfg->identity.cert, path);
    or_config_free(cfg);
}

static void test_workers_and_partial_sections(void **state)
{
    test_case c;
    (void)state;
    case_init(&c, "workers");
    or_config *cfg = case_load_ok(&c, BASE "workers: auto\n"
                                            "access_log: {path: /dev/stderr}\n"
                                            "rbac: {policies: []}\n"
                                            "timeouts: {idle: 1h}\n"
                                            "limits: {max_request_headers: 1MiB}\n");
    assert_true(cfg->workers_auto);
    assert_true(cfg->access_log.enabled);
    assert_string_equal(cfg->access_log.path, "/dev/stderr");
    assert_int_equal(cfg->access_log.format, OR_ACCESS_LOG_TEXT);
    assert_true(cfg->rbac.enabled);
    assert_false(cfg->rbac.default_allow);
    assert_int_equal(cfg->rbac.npolicies, 0);
    assert_int_equal(cfg->timeouts.idle_ms, 3600000);
    assert_int_equal(cfg->timeouts.connect_ms, 5000);
    assert_int_equal(cfg->limits.max_request_headers, 1048576);
    assert_int_equal(cfg->limits.max_connections, 10000);
    or_config_free(cfg);

    case_init(&c, "workers64");
    cfg = case_load_ok(&c, BASE "workers: 64\nlimits: {max_request_headers: 1024}\n");
    assert_false(cfg->workers_auto);
    assert_int_equal(cfg->workers, 64);
    assert_int_equal(cfg->limits.max_request_headers, 1024);
    or_config_free(cfg);
}

static void test_inline_policies(void **state)
{
    test_case c;
    (void)state;
    case_init(&c, "inline_policies");
    or_config *cfg = case_load_ok(
        &c, BASE "rbac:\n"
                 "  default: deny\n"
                 "  policies:\n"
                 "    - name: health\n"
                 "      action: allow\n"
                 "      rules:\n"
                 "        - to: [{paths: [/healthz], methods: [GET]}]\n"
                 "        - {}\n"
                 "    - name: no-bots\n"
                 "      action: deny\n"
                 "      rules:\n"
                 "        - when: [{header: User-Agent, values: ['*bot']}]\n"
                 "          from: [{principals: ['*'], ip_blocks: ['::ffff:0:0/96']}]\n");
    assert_true(cfg->rbac.enabled);
    assert_null(cfg->rbac.policies_file);
    assert_int_equal(cfg->nfiles, 1);
    assert_int_equal(cfg->rbac.npolicies, 2);
    const or_policy_config *p = &cfg->rbac.policies[0];
    assert_string_equal(p->name, "health");
    assert_int_equal(p->nrules, 2);
    STRINGS(&p->rules[0].to[0].paths, "/healthz");
    STRINGS(&p->rules[0].to[0].methods, "GET");
    assert_int_equal(p->rules[1].nfrom + p->rules[1].nto + p->rules[1].nwhen, 0);
    assert_pos(p->pos, cfg->files[0], 16, 7);
    assert_pos(p->rules[0].to[0].pos, cfg->files[0], 19, 16);
    p = &cfg->rbac.policies[1];
    assert_int_equal(p->action, OR_RBAC_DENY);
    assert_string_equal(p->rules[0].when[0].header, "user-agent");
    STRINGS(&p->rules[0].when[0].values, "*bot");
    STRINGS(&p->rules[0].from[0].principals, "*");
    assert_cidr(&p->rules[0].from[0].ip_blocks.items[0], AF_INET6, "::ffff:0:0", 96);
    or_config_free(cfg);
}

static void test_relative_paths(void **state)
{
    test_case c;
    char want[PATH_MAX];
    (void)state;
    case_init(&c, "relative");
    case_write(&c, "etc/ids/cert.pem", "");
    case_write(&c, "etc/ids/key.pem", "");
    case_write(&c, "rbac/policies.yaml",
               "- name: from-web\n"
               "  action: allow\n"
               "  rules: [{from: [{namespaces: [web]}]}]\n");
    case_write(&c, "etc/config.yaml",
               "service: payments\n"
               "trust_domain: cluster.local\n"
               "identity:\n"
               "  cert: ids/cert.pem\n"
               "  key: ./ids/key.pem\n"
               "  bundle: ../bundle.pem\n"
               "listeners:\n"
               "  - {name: in, mode: inbound, protocol: tcp, listen: '[::]:15006',"
               " upstream: '127.0.0.1:8080'}\n"
               "access_log: {path: logs/access.log}\n"
               "rbac:\n"
               "  policies: ../rbac/policies.yaml\n");
    format_path(c.config, "%s/etc/config.yaml", c.dir);
    or_config *cfg = load_ok(c.config);
    format_path(want, "%s/etc/ids/cert.pem", c.dir);
    assert_string_equal(cfg->identity.cert, want);
    format_path(want, "%s/etc/./ids/key.pem", c.dir);
    assert_string_equal(cfg->identity.key, want);
    format_path(want, "%s/etc/../bundle.pem", c.dir);
    assert_string_equal(cfg->identity.bundle, want);
    format_path(want, "%s/etc/logs/access.log", c.dir);
    assert_string_equal(cfg->access_log.path, want);
    format_path(want, "%s/etc/../rbac/policies.yaml", c.dir);
    assert_string_equal(cfg->rbac.policies_file, want);
    assert_int_equal(cfg->nfiles, 2);
    assert_string_equal(cfg->files[1], want);
    assert_int_equal(cfg->rbac.npolicies, 1);
    assert_pos(cfg->rbac.policies[0].pos, cfg->files[1], 1, 3);
    STRINGS(&cfg->rbac.policies[0].rules[0].from[0].namespaces, "web");
    assert_addr(&cfg->listeners[0].listen, "[::]:15006");
    or_config_free(cfg);
}

/* A config named without a directory resolves paths against the working
 * directory, which is where it is. */
static void test_relative_to_cwd(void **state)
{
    test_case c;
    char cwd[PATH_MAX];
    (void)state;
    case_init(&c, "cwd");
    case_write(&c, "config.yaml", BASE);
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir(c.dir), 0);
    or_diag diag;
    or_diag_init(&diag);
    or_config *cfg = or_config_load("config.yaml", &diag);
    assert_int_equal(chdir(cwd), 0);
    assert_non_null(cfg);
    assert_string_equal(cfg->identity.cert, "cert.pem");
    assert_string_equal(cfg->files[0], "config.yaml");
    or_config_free(cfg);
    or_diag_free(&diag);
}

static void test_admin_non_loopback_allowed(void **state)
{
    test_case c;
    (void)state;
    case_init(&c, "admin_allowed");
    or_config *cfg = case_load_ok(&c, BASE "admin:\n"
                                            "  listen: 0.0.0.0:15000\n"
                                            "  allow_non_loopback: true\n");
    assert_true(cfg->admin.enabled);
    assert_true(cfg->admin.allow_non_loopback);
    assert_addr(&cfg->admin.listen, "0.0.0.0:15000");
    or_config_free(cfg);
}

/* ==== bad configs ==== */

static void test_syntax_errors(void **state)
{
    (void)state;
    BAD_CONFIG("syntax_indent", BASE_HEAD "listeners:\n  - name: a\n   mode: inbound\n",
               "$D/config.yaml:9:4: error: invalid YAML: did not find expected '-' indicator "
               "(while parsing a block collection at line 8, column 3)");
    BAD_CONFIG("syntax_colon", "service: a: b\n",
               "$D/config.yaml:1:11: error: invalid YAML: mapping values are not allowed "
               "in this context");
    BAD_CONFIG("syntax_quote", "service: \"payments\ntrust_domain: x\n",
               "$D/config.yaml:3:1: error: invalid YAML: found unexpected end of stream "
               "(while scanning a quoted scalar at line 1, column 10)");
    BAD_CONFIG("syntax_utf8", "service: \xff\n",
               "$D/config.yaml: error: invalid YAML: invalid leading UTF-8 octet at byte 9");
    BAD_CONFIG("syntax_alias", "service: *nowhere\n",
               "$D/config.yaml:1:10: error: invalid YAML: found undefined alias");
    BAD_CONFIG("two_documents", BASE "---\nservice: other\n",
               "$D/config.yaml:14:1: error: only one YAML document is allowed in a file");
}

static void test_unknown_keys(void **state)
{
    (void)state;
    BAD_CONFIG("unknown_key",
               BASE_HEAD "listeners:\n"
                         "  - name: inbound\n"
                         "    mode: inbound\n"
                         "    protocol: http\n"
                         "    listner: 0.0.0.0:15006\n"
                         "    upstream: 127.0.0.1:8080\n"
                         "colour: blue\n",
               "$D/config.yaml:11:5: error: unknown key 'listner' in listeners[0] "
               "(did you mean 'listen'?)",
               "$D/config.yaml:8:5: error: missing required key 'listen' in listeners[0]",
               "$D/config.yaml:13:1: error: unknown key 'colour'");
    BAD_CONFIG("unknown_nested", BASE "timeouts: {idle: 5m, conect: 1s}\n",
               "$D/config.yaml:13:22: error: unknown key 'conect' in timeouts "
               "(did you mean 'connect'?)");
    BAD_CONFIG("non_string_key", BASE "[a]: 1\n",
               "$D/config.yaml:13:1: error: keys must be strings, got a list");
}

static void test_duplicate_keys(void **state)
{
    (void)state;
    BAD_CONFIG("duplicate_key", BASE "service: orders\n",
               "$D/config.yaml:13:1: error: duplicate key 'service' (first given at line 1)");
    BAD_CONFIG("duplicate_nested",
               BASE_HEAD "listeners:\n"
                         "  - name: inbound\n"
                         "    mode: inbound\n"
                         "    protocol: http\n"
                         "    mode: outbound\n"
                         "    listen: 0.0.0.0:15006\n"
                         "    upstream: 127.0.0.1:8080\n",
               "$D/config.yaml:11:5: error: duplicate key 'mode' in listeners[0] "
               "(first given at line 9)");
}

static void test_wrong_types(void **state)
{
    (void)state;
    BAD_CONFIG("type_mapping_for_string", "service: {name: payments}\n"
                                          "trust_domain: cluster.local\n"
                                          "identity: {cert: cert.pem, key: key.pem,"
                                          " bundle: bundle.pem}\n" BASE_LISTENERS,
               "$D/config.yaml:1:10: error: service: expected a string, got a mapping");
    BAD_CONFIG("type_string_for_list", BASE_HEAD "listeners: inbound\n",
               "$D/config.yaml:7:12: error: listeners: expected a list, got a string");
    BAD_CONFIG("type_list_for_mapping", BASE "timeouts: [5s]\n",
               "$D/config.yaml:13:11: error: timeouts: expected a mapping, got a list");
    BAD_CONFIG("type_null", BASE "access_log:\n  path:\n",
               "$D/config.yaml:14:8: error: access_log.path: expected a string, got null");
    BAD_CONFIG("type_bool", BASE "admin: {listen: '127.0.0.1:15000', allow_non_loopback: yes}\n",
               "$D/config.yaml:13:56: error: admin.allow_non_loopback: expected true or "
               "false, got \"yes\"");
    BAD_CONFIG("type_root", "- service: payments\n",
               "$D/config.yaml:1:1: error: top level: expected a mapping, got a list");
    BAD_CONFIG("type_nul", BASE "access_log: {path: \"a\\0b\"}\n",
               "$D/config.yaml:13:20: error: access_log.path: must not contain NUL "
               "characters");
}

static void test_bad_values(void **state)
{
    (void)state;
    BAD_CONFIG("bad_duration", BASE "timeouts:\n  idle: 5x\n  connect: 0s\n  drain: -1s\n",
               "$D/config.yaml:14:9: error: timeouts.idle: invalid duration \"5x\": unknown "
               "unit (use ms, s, m or h)",
               "$D/config.yaml:15:12: error: timeouts.connect: invalid duration \"0s\": must "
               "be greater than zero",
               "$D/config.yaml:16:10: error: timeouts.drain: invalid duration \"-1s\": must "
               "not be negative");
    BAD_CONFIG("bad_size", BASE "limits:\n  max_request_headers: 64KB\n",
               "$D/config.yaml:14:24: error: limits.max_request_headers: invalid size "
               "\"64KB\": unknown unit (use B, KiB, MiB or GiB)");
    BAD_CONFIG("size_range", BASE "limits: {max_request_headers: 2MiB, max_connections: 0}\n",
               "$D/config.yaml:13:31: error: limits.max_request_headers: must be from 1KiB "
               "to 1MiB, got \"2MiB\"",
               "$D/config.yaml:13:54: error: limits.max_connections: expected a whole number "
               "from 1 to 4294967295, got \"0\"");
    BAD_CONFIG("bad_workers", BASE "workers: 65\n",
               "$D/config.yaml:13:10: error: workers: expected \"auto\" or a number from 1 to "
               "64, got \"65\"");
    BAD_CONFIG("bad_trust_domain", "service: payments\ntrust_domain: Cluster.Local\n",
               "$D/config.yaml:2:15: error: trust_domain: invalid trust domain "
               "\"Cluster.Local\": may contain only lower-case letters, digits, '.', '-' "
               "and '_'",
               "$D/config.yaml:1:1: error: missing required key 'identity'",
               "$D/config.yaml:1:1: error: missing required key 'listeners'");
    BAD_CONFIG("bad_service", "service: 'pay ments'\n",
               "$D/config.yaml:1:10: error: service: expected letters, digits, '.', '-' or "
               "'_', got \"pay ments\"",
               "$D/config.yaml:1:1: error: missing required key 'trust_domain'",
               "$D/config.yaml:1:1: error: missing required key 'identity'",
               "$D/config.yaml:1:1: error: missing required key 'listeners'");
    BAD_CONFIG("bad_format", BASE "access_log: {path: /dev/stdout, format: xml}\n",
               "$D/config.yaml:13:41: error: access_log.format: expected \"text\" or "
               "\"json\", got \"xml\"");
    BAD_CONFIG("bad_default", BASE "rbac: {default: permit}\n",
               "$D/config.yaml:13:17: error: rbac.default: expected \"deny\" or \"allow\", "
               "got \"permit\"");
}

static void test_bad_listeners(void **state)
{
    (void)state;
    BAD_CONFIG("bad_mode",
               BASE_HEAD "listeners:\n"
                         "  - name: inbound\n"
                         "    mode: inbond\n"
                         "    protocol: htp\n"
                         "    listen: 0.0.0.0:15006\n"
                         "    upstream: 127.0.0.1:8080\n",
               "$D/config.yaml:9:11: error: listeners[0].mode: expected \"inbound\" or "
               "\"outbound\", got \"inbond\"",
               "$D/config.yaml:10:15: error: listeners[0].protocol: expected \"tcp\" or "
               "\"http\", got \"htp\"");
    BAD_CONFIG("duplicate_listener", BASE "  - name: inbound\n"
                                          "    mode: inbound\n"
                                          "    protocol: tcp\n"
                                          "    listen: 0.0.0.0:15007\n"
                                          "    upstream: 127.0.0.1:8081\n",
               "$D/config.yaml:13:11: error: listeners[1].name: duplicate listener name "
               "\"inbound\" (also listeners[0] at line 8)");
    BAD_CONFIG("same_address", BASE "  - name: other\n"
                                    "    mode: inbound\n"
                                    "    protocol: tcp\n"
                                    "    listen: 127.0.0.1:15006\n"
                                    "    upstream: 127.0.0.1:8081\n",
               "$D/config.yaml:16:13: error: listeners[1].listen: address 127.0.0.1:15006 is "
               "already used by listeners[0] (line 8)");
    BAD_CONFIG("listen_name", BASE "  - {name: b, mode: inbound, protocol: tcp,"
                                   " listen: 'localhost:80', upstream: 'x:1'}\n",
               "$D/config.yaml:13:53: error: listeners[1].listen: expected a literal IP "
               "address and port, got \"localhost:80\"");
    BAD_CONFIG("listen_port_zero", BASE "  - {name: b, mode: inbound, protocol: tcp,"
                                        " listen: '127.0.0.1:0', upstream: 'x:1'}\n",
               "$D/config.yaml:13:53: error: listeners[1].listen: invalid address "
               "\"127.0.0.1:0\": port must be between 1 and 65535");
    BAD_CONFIG("upstream_no_port", BASE "  - {name: b, mode: inbound, protocol: tcp,"
                                        " listen: '127.0.0.1:1', upstream: orders}\n",
               "$D/config.yaml:13:78: error: listeners[1].upstream: invalid address "
               "\"orders\": missing port");
    BAD_CONFIG("empty_listeners", BASE_HEAD "listeners: []\n",
               "$D/config.yaml:7:12: error: listeners: must not be empty (leave the key out "
               "instead)");
}

static void test_missing_required(void **state)
{
    (void)state;
    BAD_CONFIG("missing_service", "trust_domain: cluster.local\n"
                                  "identity: {cert: cert.pem, key: key.pem}\n" BASE_LISTENERS,
               "$D/config.yaml:2:11: error: missing required key 'bundle' in identity",
               "$D/config.yaml:1:1: error: missing required key 'service'");
    BAD_CONFIG("missing_listener_keys", BASE_HEAD "listeners:\n  - name: a\n",
               "$D/config.yaml:8:5: error: missing required key 'mode' in listeners[0]",
               "$D/config.yaml:8:5: error: missing required key 'protocol' in listeners[0]",
               "$D/config.yaml:8:5: error: missing required key 'listen' in listeners[0]",
               "$D/config.yaml:8:5: error: missing required key 'upstream' in listeners[0]");
    BAD_CONFIG("empty_file", "",
               "$D/config.yaml: error: the file is empty; expected service, trust_domain, "
               "identity and listeners");
    BAD_CONFIG("comment_only", "# nothing here\n",
               "$D/config.yaml: error: the file is empty; expected service, trust_domain, "
               "identity and listeners");
}

static void test_missing_files(void **state)
{
    test_case c;
    (void)state;
    BAD_CONFIG("missing_identity", "service: payments\n"
                                   "trust_domain: cluster.local\n"
                                   "identity:\n"
                                   "  cert: cert.pem\n"
                                   "  key: /nonexistent/key.pem\n"
                                   "  bundle: certs/bundle.pem\n" BASE_LISTENERS,
               "$D/config.yaml:5:8: error: identity.key: cannot read \"/nonexistent/key.pem\": "
               "No such file or directory",
               "$D/config.yaml:6:11: error: identity.bundle: cannot read "
               "\"$D/certs/bundle.pem\": No such file or directory");
    BAD_CONFIG("identity_directory", "service: payments\n"
                                     "trust_domain: cluster.local\n"
                                     "identity: {cert: ., key: key.pem, bundle: bundle.pem}\n"
                                     BASE_LISTENERS,
               "$D/config.yaml:3:18: error: identity.cert: cannot read \"$D/.\": Is a "
               "directory");

    case_init(&c, "missing_config");
    EXPECT(&c, "$D/config.yaml: error: cannot read the file: No such file or directory");
}

static void test_peer_identity(void **state)
{
    (void)state;
    BAD_CONFIG("outbound_without_peer", BASE OUTBOUND_HEAD,
               "$D/config.yaml:13:5: error: listeners[1]: an outbound listener needs "
               "peer_identity, the SPIFFE ID the upstream must present");
    BAD_CONFIG("peer_wrong_domain",
               BASE OUTBOUND_HEAD "    peer_identity: spiffe://other.local/ns/shop/sa/orders\n",
               "$D/config.yaml:18:20: error: listeners[1].peer_identity: trust domain "
               "\"other.local\" is not the configured trust_domain \"cluster.local\"");
    BAD_CONFIG("peer_invalid", BASE OUTBOUND_HEAD "    peer_identity: spiffe://cluster.local\n",
               "$D/config.yaml:18:20: error: listeners[1].peer_identity: invalid SPIFFE ID "
               "\"spiffe://cluster.local\": no path after the trust domain (expected "
               "spiffe://<trust-domain>/<path>)");
    BAD_CONFIG("peer_on_inbound", BASE "    peer_identity: spiffe://cluster.local/ns/a/sa/b\n",
               "$D/config.yaml:13:20: error: listeners[0].peer_identity: only outbound "
               "listeners take a peer_identity (inbound peers are checked by rbac)");
}

static void test_admin(void **state)
{
    (void)state;
    BAD_CONFIG("admin_wildcard", BASE "admin:\n  listen: 0.0.0.0:15000\n",
               "$D/config.yaml:14:11: error: admin.listen: 0.0.0.0:15000 is not a loopback "
               "address; the admin API must stay on 127.0.0.1 or [::1] unless "
               "admin.allow_non_loopback is true");
    BAD_CONFIG("admin_conflict", BASE "admin: {listen: '127.0.0.1:15006'}\n",
               "$D/config.yaml:13:17: error: admin.listen: address 127.0.0.1:15006 is already "
               "used by listeners[0] (line 8)");
    BAD_CONFIG("admin_no_listen", BASE "admin: {allow_non_loopback: false}\n",
               "$D/config.yaml:13:8: error: missing required key 'listen' in admin");
}

/* ==== bad policies ==== */

#define POLICY_HEAD                                                                      \
    "rbac:\n"                       /* 13 */                                             \
    "  policies:\n"                 /* 14 */                                             \
    "    - name: p\n"               /* 15 */                                             \
    "      action: allow\n"         /* 16 */                                             \
    "      rules:\n"                /* 17 */

static void test_bad_policy_values(void **state)
{
    (void)state;
    BAD_CONFIG("bad_cidr",
               BASE POLICY_HEAD "        - from: [{ip_blocks: [10.1.2.3/8, 10.0.0.0/33]}]\n",
               "$D/config.yaml:18:31: error: rbac.policies[0].rules[0].from[0].ip_blocks[0]: "
               "invalid CIDR block \"10.1.2.3/8\": host bits are set below the prefix length "
               "(write the network address of the block)",
               "$D/config.yaml:18:43: error: rbac.policies[0].rules[0].from[0].ip_blocks[1]: "
               "invalid CIDR block \"10.0.0.0/33\": prefix length must be at most 32 for "
               "IPv4");
    BAD_CONFIG("bad_port", BASE POLICY_HEAD "        - to: [{ports: [0, 8080, 65536, http]}]\n",
               "$D/config.yaml:18:25: error: rbac.policies[0].rules[0].to[0].ports[0]: "
               "expected a whole number from 1 to 65535, got \"0\"",
               "$D/config.yaml:18:34: error: rbac.policies[0].rules[0].to[0].ports[2]: "
               "expected a whole number from 1 to 65535, got \"65536\"",
               "$D/config.yaml:18:41: error: rbac.policies[0].rules[0].to[0].ports[3]: "
               "expected a whole number from 1 to 65535, got \"http\"");
    BAD_CONFIG("bad_method_path",
               BASE POLICY_HEAD "        - to: [{methods: [get], paths: [api, '/a*b']}]\n",
               "$D/config.yaml:18:27: error: rbac.policies[0].rules[0].to[0].methods[0]: "
               "expected an upper-case HTTP method such as GET, got \"get\"",
               "$D/config.yaml:18:41: error: rbac.policies[0].rules[0].to[0].paths[0]: "
               "expected a path starting with '/' or a pattern such as \"*.json\", got \"api\"",
               "$D/config.yaml:18:46: error: rbac.policies[0].rules[0].to[0].paths[1]: '*' "
               "may only stand alone or come first or last, got \"/a*b\"");
    BAD_CONFIG("bad_principal", BASE POLICY_HEAD
               "        - from: [{principals: [frontend, 'spiffe://Cluster/x', 'web*']}]\n",
               "$D/config.yaml:18:32: error: rbac.policies[0].rules[0].from[0].principals[0]: "
               "invalid SPIFFE ID \"frontend\": scheme is not \"spiffe://\"",
               "$D/config.yaml:18:42: error: rbac.policies[0].rules[0].from[0].principals[1]: "
               "invalid SPIFFE ID \"spiffe://Cluster/x\": trust domain contains an upper-case "
               "letter",
               "$D/config.yaml:18:64: error: rbac.policies[0].rules[0].from[0].principals[2]: "
               "expected \"*\", a SPIFFE ID, \"spiffe://...*\" or \"*...\", got \"web*\"");
    BAD_CONFIG("bad_condition", BASE POLICY_HEAD
               "        - when: [{header: 'x tenant', values: []}, {header: x-a}]\n",
               "$D/config.yaml:18:27: error: rbac.policies[0].rules[0].when[0].header: "
               "expected an HTTP header name, got \"x tenant\"",
               "$D/config.yaml:18:47: error: rbac.policies[0].rules[0].when[0].values: must "
               "not be empty (leave the key out instead)",
               "$D/config.yaml:18:52: error: rbac.policies[0].rules[0].when[1]: a condition "
               "needs values or not_values");
    BAD_CONFIG("empty_entry", BASE POLICY_HEAD "        - from: [{}]\n          to: []\n",
               "$D/config.yaml:18:18: error: rbac.policies[0].rules[0].from[0]: empty entry "
               "(leave the list out to match anything)",
               "$D/config.yaml:19:15: error: rbac.policies[0].rules[0].to: must not be empty "
               "(leave the key out instead)");
}

static void test_bad_policies(void **state)
{
    (void)state;
    BAD_CONFIG("bad_action", BASE "rbac:\n"
                                  "  policies:\n"
                                  "    - name: p\n"
                                  "      action: permit\n"
                                  "      dry_run: maybe\n"
                                  "      rulez: []\n",
               "$D/config.yaml:16:15: error: rbac.policies[0].action: expected \"allow\", "
               "\"deny\" or \"audit\", got \"permit\"",
               "$D/config.yaml:17:16: error: rbac.policies[0].dry_run: expected true or "
               "false, got \"maybe\"",
               "$D/config.yaml:18:7: error: unknown key 'rulez' in rbac.policies[0] "
               "(did you mean 'rules'?)");
    BAD_CONFIG("duplicate_policy", BASE "rbac:\n"
                                        "  policies:\n"
                                        "    - {name: p, action: allow}\n"
                                        "    - {name: q, action: deny}\n"
                                        "    - {name: p, action: audit}\n",
               "$D/config.yaml:17:14: error: rbac.policies[2].name: duplicate policy name "
               "\"p\" (also at line 15)");
    BAD_CONFIG("policy_missing_keys", BASE "rbac: {policies: [{service: payments}]}\n",
               "$D/config.yaml:13:19: error: missing required key 'name' in rbac.policies[0]",
               "$D/config.yaml:13:19: error: missing required key 'action' in "
               "rbac.policies[0]");
    BAD_CONFIG("policies_type", BASE "rbac: {policies: {name: p}}\n",
               "$D/config.yaml:13:18: error: rbac.policies: expected a file name or a list of "
               "policies, got a mapping");
}

static void test_policies_file(void **state)
{
    test_case c;
    (void)state;
    BAD_CONFIG("policies_missing", BASE "rbac:\n  policies: rbac/policies.yaml\n",
               "$D/config.yaml:14:13: error: rbac.policies: cannot read "
               "\"$D/rbac/policies.yaml\": No such file or directory");

    case_init(&c, "policies_file_errors");
    case_write(&c, "policies.yaml", "policies:\n"
                                    "  - name: p\n"
                                    "    action: allow\n"
                                    "    rules: [{from: [{ip_blocks: [bad]}]}]\n"
                                    "extra: 1\n");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c,
           "$D/policies.yaml:4:34: error: policies[0].rules[0].from[0].ip_blocks[0]: invalid "
           "CIDR block \"bad\": not an IP address",
           "$D/policies.yaml:5:1: error: unknown key 'extra'");

    case_init(&c, "policies_file_syntax");
    case_write(&c, "policies.yaml", "policies: [\n");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c, "$D/policies.yaml:2:1: error: invalid YAML: did not find expected node content "
               "(while parsing a flow node at line 2, column 1)");

    case_init(&c, "policies_file_empty");
    case_write(&c, "policies.yaml", "");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c, "$D/policies.yaml: error: the file is empty; write \"policies: []\" for no "
               "policies");

    case_init(&c, "policies_file_scalar");
    case_write(&c, "policies.yaml", "allow everything\n");
    case_write(&c, "config.yaml", BASE "rbac: {policies: policies.yaml}\n");
    EXPECT(&c, "$D/policies.yaml:1:1: error: expected a mapping with 'policies' or a list of "
               "policies, got a string");
}

/* One pass reports every independent problem, in file order. */
static void test_many_errors(void **state)
{
    (void)state;
    BAD_CONFIG("many_errors",
               "service: payments\n"
               "trust_domain: cluster.local\n"
               "identity:\n"
               "  cert: missing.pem\n"
               "  key: key.pem\n"
               "  bundle: bundle.pem\n"
               "workers: lots\n"
               "admin: {listen: '0.0.0.0:15000'}\n"
               "listeners:\n"
               "  - name: in\n"
               "    mode: inbond\n"
               "    protocol: http\n"
               "    listen: 0.0.0.0:0\n"
               "    upstream: 127.0.0.1:8080\n"
               "  - name: out\n"
               "    mode: outbound\n"
               "    protocol: tcp\n"
               "    listen: 127.0.0.1:15001\n"
               "    upstream: orders:15006\n"
               "timeouts: {idle: 5 minutes}\n"
               "limits: {max_request_headers: 10MiB}\n"
               "rbac:\n"
               "  default: maybe\n"
               "  policies: [{name: a, action: allow}, {name: a, action: nope}]\n",
               "$D/config.yaml:4:9: error: identity.cert: cannot read \"$D/missing.pem\": No "
               "such file or directory",
               "$D/config.yaml:7:10: error: workers: expected \"auto\" or a number from 1 to "
               "64, got \"lots\"",
               "$D/config.yaml:8:17: error: admin.listen: 0.0.0.0:15000 is not a loopback "
               "address; the admin API must stay on 127.0.0.1 or [::1] unless "
               "admin.allow_non_loopback is true",
               "$D/config.yaml:11:11: error: listeners[0].mode: expected \"inbound\" or "
               "\"outbound\", got \"inbond\"",
               "$D/config.yaml:13:13: error: listeners[0].listen: invalid address "
               "\"0.0.0.0:0\": port must be between 1 and 65535",
               "$D/config.yaml:15:5: error: listeners[1]: an outbound listener needs "
               "peer_identity, the SPIFFE ID the upstream must present",
               "$D/config.yaml:20:18: error: timeouts.idle: invalid duration \"5 minutes\": "
               "unknown unit (use ms, s, m or h)",
               "$D/config.yaml:21:31: error: limits.max_request_headers: must be from 1KiB to "
               "1MiB, got \"10MiB\"",
               "$D/config.yaml:23:12: error: rbac.default: expected \"deny\" or \"allow\", got "
               "\"maybe\"",
               "$D/config.yaml:24:47: error: rbac.policies[1].name: duplicate policy name "
               "\"a\" (also at line 24)",
               "$D/config.yaml:24:58: error: rbac.policies[1].action: expected \"allow\", "
               "\"deny\" or \"audit\", got \"nope\"");
}

/* Aliases are followed, but a document that expands without bound (here:
 * a list that contains itself) is cut off instead of hanging. */
static void test_aliases(void **state)
{
    test_case c;
    (void)state;
    case_init(&c, "aliases");
    or_config *cfg = case_load_ok(&c, BASE "rbac:\n"
                                            "  policies:\n"
                                            "    - name: a\n"
                                            "      action: allow\n"
                                            "      rules: [{from: &web [{namespaces: [web]}]}]\n"
                                            "    - name: b\n"
                                            "      action: deny\n"
                                            "      rules: [{from: *web}]\n");
    STRINGS(&cfg->rbac.policies[1].rules[0].from[0].namespaces, "web");
    assert_pos(cfg->rbac.policies[1].rules[0].from[0].pos, cfg->files[0], 17, 28);
    or_config_free(cfg);

    BAD_CONFIG("alias_loop", BASE "rbac: {policies: &p [*p]}\n",
               "$D/config.yaml:13:18: error: rbac.policies[0]: expected a mapping, got a list");
}

/* ==== diag ==== */

static void test_diag_format(void **state)
{
    or_diag d;
    char buf[256];
    (void)state;
    or_diag_init(&d);
    or_diag_add(&d, OR_DIAG_ERROR, "a.yaml", 3, 7, "%s: bad %d", "key", 42);
    or_diag_add(&d, OR_DIAG_WARNING, "a.yaml", 3, 0, "no column");
    or_diag_add(&d, OR_DIAG_ERROR, "a.yaml", 0, 0, "whole file");
    or_diag_add(&d, OR_DIAG_WARNING, NULL, 1, 1, "no file");
    for (int i = 0; i < 20; i++)
        or_diag_add(&d, OR_DIAG_ERROR, "b.yaml", (unsigned long)i + 1, 1, "n%d", i);
    assert_int_equal(d.count, 24);
    assert_int_equal(d.errors, 22);
    assert_int_equal(d.warnings, 2);
    assert_string_equal(d.entries[0].text, "a.yaml:3:7: error: key: bad 42");
    assert_int_equal(d.entries[0].severity, OR_DIAG_ERROR);
    assert_string_equal(d.entries[1].text, "a.yaml: warning: no column");
    assert_int_equal(d.entries[1].severity, OR_DIAG_WARNING);
    assert_string_equal(d.entries[2].text, "a.yaml: error: whole file");
    assert_string_equal(d.entries[3].text, "warning: no file");
    assert_string_equal(d.entries[23].text, "b.yaml:20:1: error: n19");

    FILE *out = tmpfile();
    assert_non_null(out);
    or_diag_print(&d, out);
    rewind(out);
    assert_non_null(fgets(buf, sizeof(buf), out));
    assert_string_equal(buf, "a.yaml:3:7: error: key: bad 42\n");
    assert_non_null(fgets(buf, sizeof(buf), out));
    assert_string_equal(buf, "a.yaml: warning: no column\n");
    fclose(out);

    or_diag_free(&d);
    assert_int_equal(d.count, 0);
    assert_null(d.entries);
    or_diag_free(&d); /* freeing twice is harmless */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_diag_format),
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_workers_and_partial_sections),
        cmocka_unit_test(test_inline_policies),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_relative_to_cwd),
        cmocka_unit_test(test_admin_non_loopback_allowed),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_unknown_keys),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_bad_listeners),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_missing_files),
        cmocka_unit_test(test_peer_identity),
        cmocka_unit_test(test_admin),
        cmocka_unit_test(test_bad_policy_values),
        cmocka_unit_test(test_bad_policies),
        cmocka_unit_test(test_policies_file),
        cmocka_unit_test(test_many_errors),
        cmocka_unit_test(test_aliases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
