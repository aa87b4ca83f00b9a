/*
 * Unit tests for rbac.c: the matchers (exact, prefix, suffix and presence
 * patterns and their not_ twins, CIDR blocks, namespaces, ports, hosts,
 * headers), the order of decisions (deny before allow, rbac.default,
 * dry_run and audit), service scoping, Istio's no-rules / empty-rule
 * semantics, tcp requests failing closed, and the examples of
 * docs/rbac.md. Policies are loaded from YAML by the real loader
 * (rbac_fixture.h).
 */
#include "rbac_fixture.h"

static int group_setup(void **state)
{
    (void)state;
    return fixture_setup("test_rbac");
}

/* ---- matching ---- */

static void test_string_patterns(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: paths\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - to:\n"
                            "            - paths: [\"/exact\", \"/api/*\", \"*.json\"]\n"
                            "              not_paths: [\"/api/private*\"]\n");
    static const struct {
        const char *path;
        bool allowed;
    } cases[] = {
        {"/exact", true},        {"/exact/", false},         {"/exac", false},
        {"/api/", true},         {"/api/v1/users", true},    {"/api", false},
        {"/data/x.json", true},  {".json", true},            {"/x.jsonp", false},
        {"/api/private", false}, {"/api/private/k", false},  {"/exact?x=1", true},
        {"/api/x.json", true},   {"/API/v1", false},         {"/other", false},
    };
    test_request t;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_request(&t, FRONTEND, "GET", cases[i].path);
        if (allowed(&s, &t) != cases[i].allowed)
            fail_msg("path %s: expected %s", cases[i].path, cases[i].allowed ? "allow" : "deny");
    }
    free_set(&s);
}

static void test_presence_and_methods(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: reads-with-host\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - to:\n"
                            "            - methods: [GET, HEAD]\n"
                            "              hosts: [\"*\"]\n"
                            "    - name: anything-but-delete\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from:\n"
                            "            - principals: [\"" OPS_BOT "\"]\n"
                            "          to:\n"
                            "            - not_methods: [DELETE]\n");
    test_request t;
    http_request(&t, FRONTEND, "GET", "/");
    assert_false(allowed(&s, &t)); /* no host: presence does not match */
    set_host(&t, "");
    assert_false(allowed(&s, &t)); /* "*" needs a non-empty value */
    set_host(&t, "payments");
    assert_true(allowed(&s, &t));
    http_request(&t, FRONTEND, "get", "/");
    set_host(&t, "payments");
    assert_false(allowed(&s, &t)); /* methods are exact, upper-case */
    http_request(&t, FRONTEND, "POST", "/");
    set_host(&t, "payments");
    assert_false(allowed(&s, &t));
    http_request(&t, OPS_BOT, "POST", "/");
    assert_true(allowed(&s, &t));
    http_request(&t, OPS_BOT, "DELETE", "/");
    assert_false(allowed(&s, &t));
    free_set(&s);
}

static void test_ip_blocks(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: from-private\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from:\n"
                            "            - ip_blocks: [\"10.0.0.0/8\", \"fd00::/8\"]\n"
                            "              not_ip_blocks: [\"10.9.0.0/16\", \"fd00:bad::/32\"]\n");
    static const struct {
        const char *ip;
        bool allowed;
    } cases[] = {
        {"10.1.2.3", true},       {"10.9.1.1", false},        {"11.0.0.1", false},
        {"fd12::1", true},        {"fd00:bad::1", false},     {"fe80::1", false},
        {"::ffff:10.1.2.3", true}, {"::ffff:10.9.0.1", false}, {"::ffff:11.0.0.1", false},
    };
    test_request t;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_request(&t, FRONTEND, "GET", "/");
        set_ip(&t, cases[i].ip);
        if (allowed(&s, &t) != cases[i].allowed)
            fail_msg("ip %s: expected %s", cases[i].ip, cases[i].allowed ? "allow" : "deny");
    }
    http_request(&t, FRONTEND, "GET", "/");
    t.req.source = NULL; /* no address: ip_blocks cannot match */
    assert_false(allowed(&s, &t));
    free_set(&s);
}

static void test_namespaces_and_principals(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: ops-and-kube\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from:\n"
                            "            - namespaces: [ops, \"kube-*\"]\n"
                            "              not_principals: [\"*/sa/intruder\"]\n"
                            "    - name: shop-prefix\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from:\n"
                            "            - principals: [\"spiffe://cluster.local/ns/shop/*\"]\n"
                            "              not_namespaces: [web]\n");
    static const struct {
        const char *principal;
        bool allowed;
    } cases[] = {
        {OPS_BOT, true},
        {"spiffe://cluster.local/ns/kube-system/sa/dns", true},
        {"spiffe://cluster.local/ns/ops/sa/intruder", false},
        {"spiffe://cluster.local/ns/opsx/sa/bot", false},
        {"spiffe://cluster.local/sa/ops/ns", false},     /* no namespace segment */
        {"spiffe://cluster.local/workload/ops", false},
        {ORDERS, true},
        {"spiffe://cluster.local/ns/shopping/sa/x", false},
        {FRONTEND, false},
    };
    test_request t;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_request(&t, cases[i].principal, "GET", "/");
        if (allowed(&s, &t) != cases[i].allowed)
            fail_msg("%s: expected %s", cases[i].principal, cases[i].allowed ? "allow" : "deny");
    }
    free_set(&s);
}

static void test_unauthenticated(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: any-peer\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from: [{principals: [\"*\"]}]\n"
                            "    - name: no-namespace\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from: [{namespaces: [\"*\"]}]\n"
                            "    - name: anonymous-health\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from: [{not_principals: [\"*\"], not_namespaces: [\"*\"]}]\n"
                            "          to: [{paths: [/health]}]\n");
    test_request t;
    http_request(&t, NULL, "GET", "/");
    assert_false(allowed(&s, &t));
    http_request(&t, NULL, "GET", "/health");
    or_rbac_decision d = decide(&s, &t);
    assert_true(d.allowed);
    assert_string_equal(d.policy, "anonymous-health");
    http_request(&t, FRONTEND, "GET", "/health");
    assert_string_equal(decide(&s, &t).policy, "any-peer");
    free_set(&s);
}

static void test_ports_and_hosts(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: web-hosts\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - to:\n"
                            "            - ports: [8080, 8443]\n"
                            "              hosts: [Payments, \"*.Internal\", \"::1\"]\n"
                            "              not_hosts: [\"admin.internal\"]\n");
    static const struct {
        const char *host;
        uint16_t port;
        bool allowed;
    } cases[] = {
        {"payments", 8080, true},         {"PAYMENTS:8080", 8080, true},
        {"payments", 9090, false},        {"api.internal", 8443, true},
        {"API.INTERNAL:443", 8080, true}, {"admin.internal", 8080, false},
        {"Admin.Internal:80", 8080, false}, {"internal", 8080, false},
        {"payments.evil", 8080, false},   {"[::1]:8080", 8080, true},
        {"::1", 8080, true},              {"payments:", 8080, true},
    };
    test_request t;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_request(&t, FRONTEND, "GET", "/");
        set_host(&t, cases[i].host);
        t.req.port = cases[i].port;
        if (allowed(&s, &t) != cases[i].allowed)
            fail_msg("host %s port %u: expected %s", cases[i].host, cases[i].port,
                     cases[i].allowed ? "allow" : "deny");
    }
    free_set(&s);
}

static void test_when_headers(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: tenants\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - when:\n"
                            "            - header: X-Tenant\n"
                            "              values: [acme, \"beta-*\"]\n"
                            "              not_values: [beta-blocked]\n"
                            "            - header: x-debug\n"
                            "              not_values: [\"*\"]\n");
    test_request t;
    http_request(&t, FRONTEND, "GET", "/");
    assert_false(allowed(&s, &t)); /* x-tenant absent: values never match */
    add_header(&t, "x-tenant", "acme");
    assert_true(allowed(&s, &t));  /* x-debug absent: not_values match */
    add_header(&t, "x-debug", "1");
    assert_false(allowed(&s, &t));
    http_request(&t, FRONTEND, "GET", "/");
    add_header(&t, "x-tenant", "beta-7");
    add_header(&t, "x-debug", "");
    assert_true(allowed(&s, &t));  /* an empty value is not "present" for "*" */
    http_request(&t, FRONTEND, "GET", "/");
    add_header(&t, "x-tenant", "beta-blocked");
    assert_false(allowed(&s, &t));
    http_request(&t, FRONTEND, "GET", "/");
    add_header(&t, "x-tenant", "ACME");
    assert_false(allowed(&s, &t)); /* values are case-sensitive */
    free_set(&s);
}

/* ---- decisions ---- */

static void test_deny_before_allow_and_default(void **state)
{
    (void)state;
    const char *policies = "    - name: frontend-all\n"
                           "      action: allow\n"
                           "      rules:\n"
                           "        - from: [{principals: [\"" FRONTEND "\"]}]\n"
                           "    - name: block-admin\n"
                           "      action: deny\n"
                           "      rules:\n"
                           "        - to: [{methods: [POST]}]\n"
                           "        - to: [{paths: [\"/admin/*\"]}]\n";
    char yaml[2048];
    snprintf(yaml, sizeof(yaml), "%s%s%s%s", HEAD, HTTP_INBOUND, DENY_BY_DEFAULT, policies);
    policy_set s = load_set(yaml);
    assert_int_equal(or_rbac_policy_count(s.rbac), 2);
    test_request t;
    http_request(&t, FRONTEND, "GET", "/admin/users");
    or_rbac_decision d = decide(&s, &t);
    assert_false(d.allowed);
    assert_string_equal(d.policy, "block-admin");
    assert_int_equal(d.rule, 1); /* the decision names the rule that matched */
    http_request(&t, FRONTEND, "GET", "/orders");
    d = decide(&s, &t);
    assert_true(d.allowed);
    assert_string_equal(d.policy, "frontend-all");
    assert_int_equal(d.rule, 0);
    http_request(&t, ORDERS, "GET", "/orders");
    d = decide(&s, &t);
    assert_false(d.allowed); /* default deny */
    assert_null(d.policy);
    assert_int_equal(d.rule, -1);
    free_set(&s);

    snprintf(yaml, sizeof(yaml), "%s%s%s%s", HEAD, HTTP_INBOUND, ALLOW_BY_DEFAULT, policies);
    s = load_set(yaml);
    d = decide(&s, &t);
    assert_true(d.allowed); /* default allow */
    assert_null(d.policy);
    http_request(&t, ORDERS, "POST", "/orders");
    d = decide(&s, &t);
    assert_false(d.allowed);
    assert_int_equal(d.rule, 0);
    free_set(&s);
}

static void test_dry_run_and_audit(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: audit-admin\n"
                            "      action: audit\n"
                            "      rules:\n"
                            "        - to: [{paths: [\"/admin*\"]}]\n"
                            "    - name: try-deny-orders\n"
                            "      action: deny\n"
                            "      dry_run: true\n"
                            "      rules:\n"
                            "        - from: [{principals: [\"" ORDERS "\"]}]\n"
                            "    - name: try-allow-all\n"
                            "      action: allow\n"
                            "      dry_run: true\n"
                            "      rules: [{}]\n"
                            "    - name: audit-all\n"
                            "      action: audit\n"
                            "      rules: [{}]\n"
                            "    - name: allow-frontend\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from: [{principals: [\"" FRONTEND "\"]}]\n");
    test_request t;
    http_request(&t, ORDERS, "GET", "/admin");
    or_rbac_decision d = decide(&s, &t);
    assert_false(d.allowed); /* neither dry run nor audit enforces */
    assert_null(d.policy);
    assert_string_equal(d.dry_run_policy, "try-deny-orders");
    assert_false(d.dry_run_would_allow);
    assert_string_equal(d.audit_policy, "audit-admin");

    http_request(&t, FRONTEND, "GET", "/");
    d = decide(&s, &t);
    assert_true(d.allowed);
    assert_string_equal(d.policy, "allow-frontend");
    assert_string_equal(d.dry_run_policy, "try-allow-all");
    assert_true(d.dry_run_would_allow);
    assert_string_equal(d.audit_policy, "audit-all");
    free_set(&s);
}

static void test_service_scoping(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: orders-only\n"
                            "      service: orders\n"
                            "      action: allow\n"
                            "      rules: [{}]\n"
                            "    - name: payments-reads\n"
                            "      service: payments\n"
                            "      action: allow\n"
                            "      rules: [{to: [{methods: [GET]}]}]\n"
                            "    - name: mesh-deny-debug\n"
                            "      action: deny\n"
                            "      rules: [{to: [{paths: [\"/debug*\"]}]}]\n");
    assert_int_equal(or_rbac_policy_count(s.rbac), 2);
    test_request t;
    http_request(&t, FRONTEND, "POST", "/");
    assert_false(allowed(&s, &t)); /* orders-only does not apply here */
    http_request(&t, FRONTEND, "GET", "/");
    assert_string_equal(decide(&s, &t).policy, "payments-reads");
    http_request(&t, FRONTEND, "GET", "/debug/vars");
    assert_string_equal(decide(&s, &t).policy, "mesh-deny-debug");
    free_set(&s);
}

static void test_no_rules_versus_empty_rule(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD HTTP_INBOUND ALLOW_BY_DEFAULT
                            "    - name: deny-nothing\n"
                            "      action: deny\n");
    test_request t;
    http_request(&t, FRONTEND, "GET", "/");
    or_rbac_decision d = decide(&s, &t);
    assert_true(d.allowed); /* a policy with no rules matches nothing */
    assert_null(d.policy);
    free_set(&s);

    s = load_set(HEAD HTTP_INBOUND ALLOW_BY_DEFAULT
                 "    - name: deny-everything\n"
                 "      action: deny\n"
                 "      rules: [{}]\n");
    d = decide(&s, &t);
    assert_false(d.allowed); /* one empty rule matches everything */
    assert_string_equal(d.policy, "deny-everything");
    assert_int_equal(d.rule, 0);
    tcp_request(&t, NULL, 5432);
    assert_false(allowed(&s, &t));
    free_set(&s);
}

static void test_tcp_fails_closed(void **state)
{
    (void)state;
    policy_set s = load_set(HEAD TCP_INBOUND DENY_BY_DEFAULT
                            "    - name: deny-admin-paths\n"
                            "      action: deny\n"
                            "      rules:\n"
                            "        - from: [{principals: [\"" ORDERS "\"]}]\n"
                            "          to: [{paths: [\"/admin*\"]}]\n"
                            "    - name: deny-when\n"
                            "      action: deny\n"
                            "      rules:\n"
                            "        - from: [{namespaces: [ops]}]\n"
                            "          when: [{header: x-debug, values: [\"1\"]}]\n"
                            "    - name: allow-reads\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - to: [{methods: [GET], ports: [5432]}]\n"
                            "    - name: allow-port\n"
                            "      action: allow\n"
                            "      rules:\n"
                            "        - from: [{principals: [\"" FRONTEND "\"]}]\n"
                            "          to: [{not_paths: [\"/secret\"]}, {ports: [5432]}]\n");
    test_request t;
    tcp_request(&t, ORDERS, 5432);
    or_rbac_decision d = decide(&s, &t);
    assert_false(d.allowed); /* paths count as matching: denied on the principal */
    assert_string_equal(d.policy, "deny-admin-paths");
    tcp_request(&t, OPS_BOT, 5432);
    assert_string_equal(decide(&s, &t).policy, "deny-when");
    tcp_request(&t, "spiffe://cluster.local/ns/db/sa/client", 5432);
    d = decide(&s, &t);
    assert_false(d.allowed); /* methods never match on tcp in an allow */
    assert_null(d.policy);
    tcp_request(&t, FRONTEND, 5432);
    d = decide(&s, &t);
    assert_true(d.allowed); /* the to entry without HTTP fields matched */
    assert_string_equal(d.policy, "allow-port");
    tcp_request(&t, FRONTEND, 5433);
    assert_false(allowed(&s, &t)); /* not_paths is HTTP-only: never matches on tcp */

    /* The same policies on HTTP requests. */
    http_request(&t, ORDERS, "GET", "/orders");
    t.req.port = 5432;
    assert_string_equal(decide(&s, &t).policy, "allow-reads");
    http_request(&t, ORDERS, "GET", "/admin/x");
    assert_string_equal(decide(&s, &t).policy, "deny-admin-paths");
    http_request(&t, FRONTEND, "POST", "/x");
    t.req.port = 9999;
    assert_string_equal(decide(&s, &t).policy, "allow-port");
    free_set(&s);
}

static void test_doc_example_decisions(void **state)
{
    (void)state;
    policy_set s = load_doc_example();
    assert_int_equal(or_rbac_policy_count(s.rbac), 4);
    test_request t;
    http_request(&t, FRONTEND, "GET", "/api/orders");
    add_header(&t, "x-tenant", "acme");
    or_rbac_decision d = decide(&s, &t);
    assert_true(d.allowed);
    assert_string_equal(d.policy, "frontend-reads");
    assert_null(d.dry_run_policy);
    assert_null(d.audit_policy);

    http_request(&t, FRONTEND, "GET", "/admin/users");
    d = decide(&s, &t);
    assert_false(d.allowed);
    assert_string_equal(d.policy, "block-admin");

    http_request(&t, OPS_BOT, "GET", "/api/reports");
    add_header(&t, "x-tenant", "beta-2");
    assert_true(allowed(&s, &t));
    set_ip(&t, "192.168.1.5");
    assert_false(allowed(&s, &t)); /* ops only from 10.0.0.0/8 */

    http_request(&t, FRONTEND, "POST", "/api/orders");
    add_header(&t, "x-tenant", "acme");
    d = decide(&s, &t);
    assert_false(d.allowed);
    assert_null(d.policy);
    assert_string_equal(d.audit_policy, "audit-writes");

    http_request(&t, FRONTEND, "GET", "/api/v1/orders");
    add_header(&t, "x-tenant", "acme");
    d = decide(&s, &t);
    assert_true(d.allowed);
    assert_string_equal(d.dry_run_policy, "try-block-v1");
    assert_false(d.dry_run_would_allow);
    free_set(&s);
}

static void test_doc_tcp_example(void **state)
{
    (void)state;
    policy_set s = load_set(DOC_TCP_CONFIG);
    test_request t;
    tcp_request(&t, ORDERS, 5432);
    assert_string_equal(decide(&s, &t).policy, "db-clients");
    tcp_request(&t, FRONTEND, 5432);
    or_rbac_decision d = decide(&s, &t);
    assert_false(d.allowed);
    assert_string_equal(d.policy, "web-no-admin");
    tcp_request(&t, OPS_BOT, 5432);
    d = decide(&s, &t);
    assert_false(d.allowed);
    assert_null(d.policy);
    free_set(&s);
}

static void test_doc_allow_nothing_allow_all(void **state)
{
    (void)state;
    test_request t;
    http_request(&t, FRONTEND, "GET", "/");
    policy_set s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                            "    - name: allow-nothing\n"
                            "      action: allow\n");
    assert_false(allowed(&s, &t));
    free_set(&s);
    s = load_set(HEAD HTTP_INBOUND DENY_BY_DEFAULT
                 "    - name: allow-all\n"
                 "      action: allow\n"
                 "      rules: [{}]\n");
    assert_string_equal(decide(&s, &t).policy, "allow-all");
    free_set(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_string_patterns),
        cmocka_unit_test(test_presence_and_methods),
        cmocka_unit_test(test_ip_blocks),
        cmocka_unit_test(test_namespaces_and_principals),
        cmocka_unit_test(test_unauthenticated),
        cmocka_unit_test(test_ports_and_hosts),
        cmocka_unit_test(test_when_headers),
        cmocka_unit_test(test_deny_before_allow_and_default),
        cmocka_unit_test(test_dry_run_and_audit),
        cmocka_unit_test(test_service_scoping),
        cmocka_unit_test(test_no_rules_versus_empty_rule),
        cmocka_unit_test(test_tcp_fails_closed),
        cmocka_unit_test(test_doc_example_decisions),
        cmocka_unit_test(test_doc_tcp_example),
        cmocka_unit_test(test_doc_allow_nothing_allow_all),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
