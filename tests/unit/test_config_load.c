/*
 * Unit tests for the config loader (config.c, config_rbac.c): good configs,
 * checked field by field. tests/data/config/full.yaml (found through
 * OUTRIDER_TEST_DATA) sets every key, with its policies in a file of their
 * own; the other cases check the defaults, partial sections, inline
 * policies, paths relative to the config file or to the working directory,
 * and an admin API allowed off loopback. Fixtures: config_fixture.h.
 */
#include "config_fixture.h"

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
    assert_string_equal(p->scope.service, "payments");
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
    assert_null(p->scope.service);
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
    assert_int_equal(cfg->timeouts.detect_ms, 1000);
    assert_int_equal(cfg->timeouts.keepalive_ms, 10000);
    assert_int_equal(cfg->listeners[0].mtls, OR_MTLS_UNSET);
    assert_int_equal(cfg->listeners[0].mtls_effective, OR_MTLS_STRICT);
    assert_int_equal(cfg->limits.max_connections, 10000);
    assert_int_equal(cfg->limits.max_request_headers, 65536);
    assert_int_equal(cfg->nfiles, 1);
    assert_true(cfg->security.settings.enabled);
    assert_null(cfg->security.settings.run_as);
    assert_false(cfg->security.settings.allow_root);
    assert_int_equal(cfg->security.settings.seccomp, OR_SECCOMP_ENFORCE);
    format_path(path, "%s/cert.pem", c.dir);
    assert_string_equal(cfg->identity.cert, path);
    or_config_free(cfg);
}

/* mtls as written and as the data plane uses it; outbound listeners are
 * strict (they always originate mTLS). */
static void test_mtls_modes(void **state)
{
    test_case c;
    (void)state;
    case_init(&c, "mtls_modes");
    or_config *cfg = case_load_ok(
        &c, BASE "    mtls: permissive\n"
                 "  - {name: b, mode: inbound, protocol: tcp, listen: '127.0.0.1:1', "
                 "upstream: '127.0.0.1:2', mtls: disable}\n"
                 "  - {name: c, mode: inbound, protocol: tcp, listen: '127.0.0.1:3', "
                 "upstream: '127.0.0.1:4', mtls: strict}\n"
                 "  - {name: d, mode: outbound, protocol: tcp, listen: '127.0.0.1:5', "
                 "upstream: '127.0.0.1:6', peer_identity: 'spiffe://cluster.local/ns/a/sa/b'}\n"
                 "timeouts: {detect: 200ms, keepalive: 3s}\n");
    assert_int_equal(cfg->nlisteners, 4);
    assert_int_equal(cfg->listeners[0].mtls, OR_MTLS_PERMISSIVE);
    assert_int_equal(cfg->listeners[0].mtls_effective, OR_MTLS_PERMISSIVE);
    assert_int_equal(cfg->listeners[1].mtls, OR_MTLS_DISABLE);
    assert_int_equal(cfg->listeners[1].mtls_effective, OR_MTLS_DISABLE);
    assert_int_equal(cfg->listeners[2].mtls, OR_MTLS_STRICT);
    assert_int_equal(cfg->listeners[2].mtls_effective, OR_MTLS_STRICT);
    assert_int_equal(cfg->listeners[3].mtls, OR_MTLS_UNSET);
    assert_int_equal(cfg->listeners[3].mtls_effective, OR_MTLS_STRICT);
    assert_int_equal(cfg->timeouts.detect_ms, 200);
    assert_int_equal(cfg->timeouts.keepalive_ms, 3000);
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

/* The security section; sandbox: false and allow_root: true load with a
 * warning each, at the value. */
static void test_security(void **state)
{
    test_case c;
    (void)state;
    case_init(&c, "security");
    or_config *cfg = case_load_ok(&c, BASE "security: {run_as: '1000:1001', seccomp: log}\n");
    assert_true(cfg->security.settings.enabled);
    assert_string_equal(cfg->security.settings.run_as, "1000:1001");
    assert_int_equal(cfg->security.settings.seccomp, OR_SECCOMP_LOG);
    or_config_free(cfg);

    case_init(&c, "security_root_user");
    cfg = case_load_ok(&c, BASE "security: {run_as: root}\n");
    assert_string_equal(cfg->security.settings.run_as, "root");
    or_config_free(cfg);

    case_init(&c, "security_warnings");
    case_write(&c, "config.yaml", BASE "security:\n  sandbox: false\n  allow_root: true\n");
    cfg = or_config_load(c.config, &c.diag);
    assert_non_null(cfg);
    assert_false(cfg->security.settings.enabled);
    assert_true(cfg->security.settings.allow_root);
    assert_int_equal(c.diag.errors, 0);
    assert_int_equal(c.diag.warnings, 2);
    assert_non_null(strstr(c.diag.entries[0].text, "config.yaml:14:12: warning: security.sandbox: false"));
    assert_non_null(strstr(c.diag.entries[1].text, "config.yaml:15:15: warning: security.allow_root: true"));
    or_diag_free(&c.diag);
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
    case_write(&c, "etc/logs/old.log", ""); /* the access log's directory must exist */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_config),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_mtls_modes),
        cmocka_unit_test(test_workers_and_partial_sections),
        cmocka_unit_test(test_security),
        cmocka_unit_test(test_inline_policies),
        cmocka_unit_test(test_relative_paths),
        cmocka_unit_test(test_relative_to_cwd),
        cmocka_unit_test(test_admin_non_loopback_allowed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
