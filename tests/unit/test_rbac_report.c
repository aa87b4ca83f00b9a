/*
 * Unit tests for rbac_explain.c, rbac_lint.c and explain.c: the report of
 * `outrider explain` (key lines, compared as exact text), every lint
 * warning (exact text with file:line:col), and the explain command line
 * with its exit statuses. Policies are loaded from YAML by the real loader
 * (rbac_fixture.h).
 */
#include "rbac_fixture.h"

static int group_setup(void **state)
{
    (void)state;
    return fixture_setup("test_rbac_report");
}

/* ---- explain ---- */

/* Runs or_rbac_explain into a string the caller frees. */
static char *explain(const policy_set *s, const test_request *t)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    or_rbac_explain(s->rbac, &t->req, out);
    fclose(out);
    return text;
}

static void assert_has_line(const char *text, const char *line)
{
    size_t len = strlen(line);
    for (const char *at = text; (at = strstr(at, line)) != NULL; at++)
        if ((at == text || at[-1] == '\n') && (at[len] == '\n' || at[len] == '\0'))
            return;
    fail_msg("no line\n  %s\nin\n%s", line, text);
}

static void test_explain_http(void **state)
{
    (void)state;
    char line[1024];
    policy_set s = load_doc_example();
    const char *file = s.rbac ? s.cfg->rbac.policies_file : "";
    test_request t;
    http_request(&t, FRONTEND, "GET", "/admin/users?x=1");
    set_host(&t, "payments:15006");
    char *text = explain(&s, &t);
    snprintf(line, sizeof(line),
             "decision: DENY by policy \"block-admin\" rule 0 (action deny, %s:16:5)", file);
    assert_has_line(text, line);
    assert_has_line(text, "request: principal=\"" FRONTEND "\" ip=10.1.2.3 port=8080 "
                          "protocol=http method=\"GET\" path=\"/admin/users?x=1\" (matched as "
                          "\"/admin/users\") host=\"payments:15006\" (matched as \"payments\")");
    assert_has_line(text, "policies considered (service \"payments\", namespace \"unknown\", "
                          "4 apply, default deny):");
    snprintf(line, sizeof(line), "  allow \"frontend-reads\" at %s:2:5: no match", file);
    assert_has_line(text, line);
    assert_has_line(text, "      rule 0: to[0]: paths: \"/api/*\" does not match \"/admin/users\"");
    snprintf(line, sizeof(line), "  deny  \"block-admin\" at %s:16:5: matched rule 0: decides DENY",
             file);
    assert_has_line(text, line);
    assert_has_line(text, "      rule 0: from[0]: not_namespaces: \"ops\" does not match \"web\"");
    assert_has_line(text, "      rule 0: to[0]: paths \"/admin/*\" matches \"/admin/users\"");
    snprintf(line, sizeof(line), "  deny  \"try-block-v1\" (dry run) at %s:23:5: no match", file);
    assert_has_line(text, line);
    assert_has_line(text, "      rule 0: to[0]: not_methods: \"GET\" matches \"GET\"");
    assert_has_line(text, "policies skipped (they do not apply to this workload):");
    snprintf(line, sizeof(line), "  \"orders-only\" (another service) at %s:34:5", file);
    assert_has_line(text, line);
    free(text);

    http_request(&t, OPS_BOT, "GET", "/api/x");
    set_ip(&t, "192.168.1.5");
    text = explain(&s, &t);
    assert_has_line(text, "decision: DENY by default (rbac.default: deny; no enforced policy "
                          "matched)");
    assert_has_line(text, "      rule 0: from[0]: principals: \"" FRONTEND "\" does not match "
                          "\"" OPS_BOT "\"");
    assert_has_line(text, "      rule 0: from[1]: ip_blocks: 10.0.0.0/8 does not contain "
                          "192.168.1.5");
    free(text);

    http_request(&t, FRONTEND, "GET", "/api/v1/x");
    add_header(&t, "x-tenant", "gamma");
    text = explain(&s, &t);
    assert_has_line(text, "      rule 0: when[0] (header x-tenant): values: none of \"acme\", "
                          "\"beta-*\" matches \"gamma\"");
    assert_has_line(text, "dry run: policy \"try-block-v1\" would deny");
    free(text);
    free_set(&s);
}

static void test_explain_roles(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: everyone\n"
                            "      action: allow\n"
                            "      rules: [{}]\n"
                            "    - name: second-allow\n"
                            "      action: allow\n"
                            "      rules: [{}]\n"
                            "    - name: watch\n"
                            "      action: audit\n"
                            "      rules: [{from: [{not_principals: [\"*\"]}]}]\n"
                            "    - name: nothing\n"
                            "      action: deny\n"
                            "    - name: no-anonymous\n"
                            "      action: deny\n"
                            "      rules: [{from: [{not_principals: [\"*\"]}]}]\n");
    test_request t;
    http_request(&t, NULL, "GET", "/");
    char *text = explain(&s, &t);
    assert_has_line(text, "request: principal=none (unauthenticated) ip=10.1.2.3 port=8080 "
                          "protocol=http method=\"GET\" path=\"/\" host=-");
    assert_non_null(strstr(text, "\"everyone\" at "));
    assert_non_null(strstr(text, ": matched rule 0, but deny \"no-anonymous\" decides first "
                                 "(deny policies win)\n"));
    assert_non_null(strstr(text, "      rule 0: an empty rule matches every request\n"));
    assert_non_null(strstr(text, ": matched rule 0: audit, logged only\n"));
    assert_has_line(text, "      rule 0: from[0]: not_principals: the request has no principal "
                          "(unauthenticated)");
    assert_non_null(strstr(text, ": no match: the policy has no rules, so it matches no request "
                                 "(write rules: [{}] to match every request)\n"));
    assert_has_line(text, "audit: policy \"watch\" matched");
    free(text);

    http_request(&t, FRONTEND, "GET", "/");
    text = explain(&s, &t);
    assert_non_null(strstr(text, ": matched rule 0: decides ALLOW\n"));
    assert_non_null(strstr(text, ": matched rule 0 (an earlier allow decides)\n"));
    free(text);
    free_set(&s);
}

static void test_explain_tcp(void **state)
{
    (void)state;
    policy_set s = load_set(DOC_TCP_CONFIG);
    test_request t;
    tcp_request(&t, FRONTEND, 5432);
    char *text = explain(&s, &t);
    assert_has_line(text, "request: principal=\"" FRONTEND "\" ip=10.1.2.3 port=5432 "
                          "protocol=tcp (no HTTP fields)");
    assert_has_line(text, "      rule 0: from[0]: namespaces: \"shop\" does not match \"web\"");
    assert_has_line(text, "      rule 0: to[0]: HTTP-only field 'paths' is treated as matching "
                          "on a tcp request (deny fails closed)");
    free(text);
    free_set(&s);

    s = load_set(HEAD TCP_INBOUND DENY_BY_DEFAULT
                 "    - name: reads\n"
                 "      action: allow\n"
                 "      rules: [{to: [{methods: [GET]}]}]\n");
    text = explain(&s, &t);
    assert_has_line(text, "      rule 0: to[0]: HTTP-only field 'methods' never matches on a "
                          "tcp request (fail closed)");
    free(text);
    free_set(&s);
}

/* ---- lint ---- */

/* Runs the lint on a loaded config and compares every line with the
 * expected ones, in order; "$D" stands for the test directory. */
static void assert_lint(const char *yaml, const char *const *expected, size_t n)
{
    or_config *cfg = load_config(yaml);
    or_diag diag;
    or_diag_init(&diag);
    or_rbac_lint(cfg, &diag);
    for (size_t i = 0; i < n || i < diag.count; i++) {
        char want[PATH_MAX + 2048] = "(nothing)";
        if (i < n) {
            const char *mark = strstr(expected[i], "$D");
            if (mark != NULL)
                snprintf(want, sizeof(want), "%.*s%s%s", (int)(mark - expected[i]), expected[i],
                         test_dir, mark + 2);
            else
                snprintf(want, sizeof(want), "%s", expected[i]);
        }
        const char *got = i < diag.count ? diag.entries[i].text : "(nothing)";
        if (strcmp(want, got) != 0)
            fail_msg("lint line %zu:\nexpected: %s\n     got: %s", i, want, got);
        if (i < diag.count)
            assert_int_equal(diag.entries[i].severity, OR_DIAG_WARNING);
    }
    assert_int_equal(diag.errors, 0);
    or_diag_free(&diag);
    or_config_free(cfg);
}

static void test_lint_config(void **state)
{
    (void)state;
    static const char *const expected[] = {
        "$D/config.yaml: warning: rbac.default is allow: requests that no policy matches are "
        "allowed; prefer \"default: deny\" with allow policies for the callers you expect",
        "$D/config.yaml: warning: admin.listen 0.0.0.0:15000 is not a loopback address "
        "(admin.allow_non_loopback is true): anyone who can reach it can reload, drain or stop "
        "the proxy",
        "$D/config.yaml:6:5: warning: listener \"db\" accepts tcp connections on every address "
        "(0.0.0.0:5432) and no enforced RBAC policy applies to service \"payments\": "
        "rbac.default (allow) decides every connection",
        "$D/config.yaml:7:5: warning: outbound listener \"egress\" listens on every address "
        "([::]:15001): any host that can reach it can send traffic with this workload's "
        "identity; bind it to 127.0.0.1 unless this proxy is a gateway",
    };
    assert_lint(HEAD
                "admin: {listen: \"0.0.0.0:15000\", allow_non_loopback: true}\n"
                "listeners:\n"
                "  - {name: db, mode: inbound, protocol: tcp, listen: \"0.0.0.0:5432\", "
                "upstream: \"127.0.0.1:15432\"}\n"
                "  - {name: egress, mode: outbound, protocol: tcp, listen: \"[::]:15001\", "
                "upstream: \"orders:15006\", peer_identity: \"" ORDERS "\"}\n"
                "rbac:\n"
                "  default: allow\n"
                "  policies:\n"
                "    - {name: watch, action: audit, rules: [{}]}\n",
                expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_lint_no_rbac_section(void **state)
{
    (void)state;
    static const char *const expected[] = {
        "$D/config.yaml: warning: no rbac section: the proxy enforces no policy, so every peer "
        "with a certificate from trust domain \"cluster.local\" may use the inbound listeners; "
        "add rbac with \"default: deny\" and allow policies",
    };
    assert_lint(HEAD
                "listeners:\n"
                "  - {name: db, mode: inbound, protocol: tcp, listen: \"0.0.0.0:5432\", "
                "upstream: \"127.0.0.1:15432\"}\n",
                expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_lint_mtls_modes(void **state)
{
    (void)state;
    static const char *const expected[] = {
        "$D/config.yaml:5:5: warning: listener \"open\" has mtls permissive: traffic on this "
        "port is not protected by mTLS; plaintext peers have no principal or namespace",
        "$D/config.yaml:6:5: warning: listener \"plain\" has mtls disable: traffic on this "
        "port is not protected by mTLS; plaintext peers have no principal or namespace",
    };
    assert_lint(HEAD
                "listeners:\n"
                "  - {name: open, mode: inbound, protocol: http, listen: \"127.0.0.1:8080\", "
                "upstream: \"127.0.0.1:9000\", mtls: permissive}\n"
                "  - {name: plain, mode: inbound, protocol: tcp, listen: \"127.0.0.1:8081\", "
                "upstream: \"127.0.0.1:9001\", mtls: disable}\n"
                "  - {name: tight, mode: inbound, protocol: tcp, listen: \"127.0.0.1:8082\", "
                "upstream: \"127.0.0.1:9002\", mtls: strict}\n"
                "  - {name: as-before, mode: inbound, protocol: tcp, "
                "listen: \"127.0.0.1:8083\", upstream: \"127.0.0.1:9003\"}\n"
                DENY_BY_DEFAULT "    - {name: all, action: allow, rules: [{}]}\n",
                expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_lint_policies(void **state)
{
    (void)state;
    static const char *const expected[] = {
        "$D/lint.yaml:2:5: warning: policy \"empty\" has no rules, so it matches no request "
        "(Istio semantics); write \"rules: [{}]\" to match every request",
        "$D/lint.yaml:8:13: warning: policy \"contradictions\" rule 0 from[0] can never match: "
        "not_principals excludes every value of principals",
        "$D/lint.yaml:10:13: warning: policy \"contradictions\" rule 0 from[1] can never match: "
        "not_ip_blocks excludes every value of ip_blocks",
        "$D/lint.yaml:15:13: warning: policy \"contradictions\" rule 0 to[0] can never match: "
        "not_ports excludes every value of ports",
        "$D/lint.yaml:21:13: warning: policy \"broad\" rule 0 from[0]: principals \"*\" allows "
        "every workload with a certificate from trust domain \"cluster.local\"; name the "
        "principals or namespaces that need access",
        "$D/lint.yaml:21:13: warning: policy \"broad\" rule 0 from[0]: principals "
        "\"spiffe://other.domain/ns/a/sa/b\" is in trust domain \"other.domain\", but peers are "
        "verified against \"cluster.local\", so it never matches",
        "$D/lint.yaml:25:9: warning: policy \"web-reads\" rule 0 uses HTTP-only fields (methods, "
        "paths), but every inbound listener is tcp, where they never match (fail closed): the "
        "rule never matches",
        "$D/lint.yaml:32:9: warning: policy \"deny-admin\" rule 0 uses HTTP-only fields (paths, "
        "not_paths), but every inbound listener is tcp, where they always match (deny fails "
        "closed): the rule denies on its other fields alone",
        "$D/lint.yaml:37:9: warning: policy \"deny-admin\" rule 1 uses HTTP-only fields (paths, "
        "when), but every inbound listener is tcp, where they always match (deny fails "
        "closed): the rule denies every connection",
    };
    write_file("lint.yaml",
               "policies:\n"
               "  - name: empty\n"
               "    action: allow\n"
               "  - name: contradictions\n"
               "    action: allow\n"
               "    rules:\n"
               "      - from:\n"
               "          - principals: [\"spiffe://cluster.local/ns/a/sa/b\"]\n"
               "            not_principals: [\"spiffe://cluster.local/ns/a/*\"]\n"
               "          - ip_blocks: [\"10.1.0.0/16\"]\n"
               "            not_ip_blocks: [\"10.0.0.0/8\"]\n"
               "          - namespaces: [\"shop\"]\n"
               "            not_namespaces: [\"web\"]\n"
               "        to:\n"
               "          - ports: [5432, 5433]\n"
               "            not_ports: [5433, 5432]\n"
               "  - name: broad\n"
               "    action: allow\n"
               "    rules:\n"
               "      - from:\n"
               "          - principals: [\"*\", \"spiffe://other.domain/ns/a/sa/b\", "
               "\"spiffe://cluster.local/ns/x/*\"]\n"
               "  - name: web-reads\n"
               "    action: allow\n"
               "    rules:\n"
               "      - to:\n"
               "          - methods: [GET]\n"
               "            ports: [5432]\n"
               "          - paths: [\"/x\"]\n"
               "  - name: deny-admin\n"
               "    action: deny\n"
               "    rules:\n"
               "      - from:\n"
               "          - namespaces: [\"web\"]\n"
               "        to:\n"
               "          - paths: [\"/admin/*\"]\n"
               "            not_paths: [\"/admin/health\"]\n"
               "      - to:\n"
               "          - paths: [\"/debug\"]\n"
               "        when:\n"
               "          - header: x-debug\n"
               "            values: [\"1\"]\n"
               "  - name: partly-http\n"
               "    action: allow\n"
               "    rules:\n"
               "      - to:\n"
               "          - methods: [GET]\n"
               "          - ports: [5432]\n"
               "  - name: other-service\n"
               "    service: orders\n"
               "    action: allow\n");
    assert_lint(HEAD TCP_INBOUND "rbac:\n  default: deny\n  policies: lint.yaml\n", expected,
                sizeof(expected) / sizeof(expected[0]));
}

static void test_lint_patterns(void **state)
{
    (void)state;
    static const char *const expected[] = {
        "$D/config.yaml:13:15: warning: policy \"p\" rule 0 to[0] can never match: not_paths "
        "excludes every value of paths",
        "$D/config.yaml:14:15: warning: policy \"p\" rule 0 to[1] can never match: not_hosts "
        "excludes every value of hosts",
        "$D/config.yaml:16:15: warning: policy \"p\" rule 0 when[0] can never match: not_values "
        "excludes every value of values",
    };
    assert_lint(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                "    - name: p\n"
                "      action: allow\n"
                "      rules:\n"
                "        - to:\n"
                "            - {paths: [\"/api/v1/*\", \"/api/x\"], not_paths: [\"/api/*\"]}\n"
                "            - {hosts: [\"A.example\", \"*.b.example\"], "
                "not_hosts: [\"*example\"]}\n"
                "          when:\n"
                "            - {header: x, values: [\"a\"], not_values: [\"*\"]}\n"
                "        - to:\n"
                "            - {paths: [\"/api/*\"], not_paths: [\"/api/v1/*\"]}\n"
                "            - {paths: [\"*.json\"], not_paths: [\"*.yaml\"]}\n"
                "            - {methods: [GET], not_methods: [POST]}\n",
                expected, sizeof(expected) / sizeof(expected[0]));
}

static void test_lint_doc_example_is_clean(void **state)
{
    (void)state;
    write_file("policies.yaml", DOC_POLICIES);
    assert_lint(DOC_CONFIG, NULL, 0);
}

/* ---- the explain command ---- */

/* Runs or_explain_command with stdout in a file; returns the status and
 * the output (the caller frees it). */
static int run_explain(char **argv, char **output)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/explain.out", test_dir);
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    int status = or_explain_command(argc, argv);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    FILE *in = fopen(path, "r");
    assert_non_null(in);
    char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, in);
    fclose(in);
    buf[n] = '\0';
    *output = strdup(buf);
    return status;
}

static void test_explain_command(void **state)
{
    (void)state;
    char *out;
    write_file("policies.yaml", DOC_POLICIES);
    write_file("doc.yaml", DOC_CONFIG);
    write_file("tcp.yaml", DOC_TCP_CONFIG);
    char cfg[PATH_MAX + 32], tcp[PATH_MAX + 32], missing[PATH_MAX + 32];
    snprintf(cfg, sizeof(cfg), "%s/doc.yaml", test_dir);
    snprintf(tcp, sizeof(tcp), "%s/tcp.yaml", test_dir);
    snprintf(missing, sizeof(missing), "%s/missing.yaml", test_dir);

    char *allow[] = {"explain", "-c", cfg, "--principal", FRONTEND, "--path", "/api/orders",
                     "--header", "X-Tenant=acme", NULL};
    assert_int_equal(run_explain(allow, &out), 0);
    assert_non_null(strstr(out, "decision: ALLOW by policy \"frontend-reads\" rule 0"));
    assert_non_null(strstr(out, " ip=127.0.0.1 port=8080 protocol=http method=\"GET\" "
                                "path=\"/api/orders\" host=-\n"));
    free(out);

    char *joined[] = {"explain", "--config", cfg, "--principal", FRONTEND, "--path", "/api/x",
                      "--header", "x-tenant=zzz", "--header", "X-TENANT=acme", NULL};
    assert_int_equal(run_explain(joined, &out), 2);
    assert_non_null(strstr(out, "matches \"zzz, acme\"\n"));
    free(out);

    char *deny[] = {"explain", "-c", cfg, "--principal", FRONTEND, "--method", "DELETE",
                    "--path", "/admin/x", "--ip", "fd00::1", "--port", "8443", NULL};
    assert_int_equal(run_explain(deny, &out), 2);
    assert_non_null(strstr(out, "decision: DENY by policy \"block-admin\" rule 0"));
    assert_non_null(strstr(out, " ip=fd00::1 port=8443 protocol=http method=\"DELETE\""));
    assert_non_null(strstr(out, "audit: policy \"audit-writes\" matched\n"));
    free(out);

    char *anonymous[] = {"explain", "-c", cfg, "--principal", "none", NULL};
    assert_int_equal(run_explain(anonymous, &out), 2);
    assert_non_null(strstr(out, "principal=none (unauthenticated)"));
    free(out);

    char *on_tcp[] = {"explain", "-c", tcp, "--principal", ORDERS, NULL};
    assert_int_equal(run_explain(on_tcp, &out), 0);
    assert_non_null(strstr(out, " port=5432 protocol=tcp (no HTTP fields)\n"));
    free(out);

    char *forced_tcp[] = {"explain", "-c", cfg, "--principal", FRONTEND, "--tcp", NULL};
    assert_int_equal(run_explain(forced_tcp, &out), 2);
    assert_non_null(strstr(out, "protocol=tcp"));
    free(out);

    char *help[] = {"explain", "--help", NULL};
    assert_int_equal(run_explain(help, &out), 0);
    assert_non_null(strstr(out, "usage: outrider explain -c FILE"));
    free(out);

    char *bad[][8] = {
        {"explain", "-c", cfg, NULL},
        {"explain", "--principal", FRONTEND, NULL},
        {"explain", "-c", cfg, "--principal", FRONTEND, "--tcp", "--path=/x", NULL},
        {"explain", "-c", cfg, "--principal", FRONTEND, "--ip", "10.0.0.300", NULL},
        {"explain", "-c", cfg, "--principal", FRONTEND, "--port", "65536", NULL},
        {"explain", "-c", cfg, "--principal", FRONTEND, "--header", "novalue", NULL},
        {"explain", "-c", missing, "--principal", FRONTEND, NULL},
        {"explain", "-c", cfg, "--principal", FRONTEND, "extra", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (run_explain(bad[i], &out) != 1)
            fail_msg("bad command line %zu did not exit 1", i);
        assert_string_equal(out, "");
        free(out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_explain_http),
        cmocka_unit_test(test_explain_roles),
        cmocka_unit_test(test_explain_tcp),
        cmocka_unit_test(test_lint_config),
        cmocka_unit_test(test_lint_no_rbac_section),
        cmocka_unit_test(test_lint_mtls_modes),
        cmocka_unit_test(test_lint_policies),
        cmocka_unit_test(test_lint_patterns),
        cmocka_unit_test(test_lint_doc_example_is_clean),
        cmocka_unit_test(test_explain_command),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
