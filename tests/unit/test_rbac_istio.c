/*
 * Unit tests for Istio's AuthorizationPolicy as Outrider evaluates it
 * (config_istio.c, config_scope.c, rbac.c):
 *
 * - scopes: mesh-wide through rbac.root_namespace (the default istio-system
 *   and a custom one), namespace, selector.matchLabels (matching, not
 *   matching, a selector in the root namespace taking in every namespace),
 *   targetRef(s) never applying to a sidecar, native `namespace:`,
 *   `service:` and neither, the workload's namespace from the top-level key
 *   and unknown; `outrider explain`'s list of skipped policies and reasons;
 * - every source, operation and `when` field with its not twin, in ALLOW
 *   and in DENY, with a request that matches and one that does not;
 * - Istio's decision order: deny before allow, an applying ALLOW denying
 *   what it does not match, no ALLOW allowing, rbac.default, AUDIT and the
 *   istio.io/dry-run annotation never deciding, `rules: [{}]`, no rules;
 * - JWT fields: failing closed in DENY, refused in ALLOW and AUDIT;
 * - HTTP-only fields on a tcp listener: never matching in ALLOW, always in
 *   DENY.
 *
 * Decisions are asserted exactly: allowed or not, the basis, the deciding
 * policy ("namespace/name") and its rule index. Loading (PeerAuthentication,
 * files, errors) is in test_istio_load.c.
 */
#include "istio_checks.h"

static int group_setup(void **state)
{
    (void)state;
    return fixture_setup("test_rbac_istio");
}

static void test_scopes(void **state)
{
    (void)state;
    static char config[4096];
    policy_set s;
    write_file("policies.yaml", SCOPE_POLICIES);
    workload_config(config, sizeof(config), SHOP_ORDERS, HTTP_INBOUND, "", "policies.yaml");
    LOAD_WARNED(s, config,
                "$D/policies.yaml:58:14: warning: shop/via-service: spec.targetRef binds the "
                "policy to a Gateway or Service, not to a sidecar: it does not apply here",
                "$D/policies.yaml:66:5: warning: shop/via-gateway: spec.targetRefs binds the "
                "policy to a Gateway or Service, not to a sidecar: it does not apply here");
    assert_string_equal(s.cfg->namespace, "shop");
    assert_true(s.cfg->namespace_written);
    APPLIED(&s, "istio-system/mesh-wide", "shop/shop-wide", "shop/orders-only",
            "istio-system/orders-anywhere", "native-mesh", "native-shop", "native-orders");

    /* Each applied policy decides the request it is written for. */
    expect_policy(&s, "principal=cluster.local/ns/web/sa/frontend", true,
                  "istio-system/mesh-wide", 0);
    expect_policy(&s, "principal=cluster.local/ns/quarantine/sa/x", false, "shop/shop-wide", 0);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot path=/orders/1", true,
                  "shop/orders-only", 0);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot method=HEAD", true,
                  "istio-system/orders-anywhere", 0);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot path=/native/mesh", true,
                  "native-mesh", 0);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot path=/native/shop", true,
                  "native-shop", 0);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot path=/native/orders", true,
                  "native-orders", 0);
    /* Istio ALLOW policies apply: what none of them matches is denied,
     * although web/web-wide, shop/payments-only, the targetRef policies and
     * native-web would allow everything. */
    expect_basis(&s, "principal=cluster.local/ns/ops/sa/bot path=/other", false,
                 OR_RBAC_BY_NO_ALLOW_MATCH);

    char *text = explain_spec(&s, "principal=cluster.local/ns/ops/sa/bot path=/other");
    assert_line(text, "decision: DENY: Istio ALLOW policies apply to this workload and none "
                      "matched (what they do not allow is denied)");
    assert_line(text, "policies considered (service \"orders\", namespace \"shop\", 7 apply, "
                      "default allow):");
    assert_line(text, "  allow \"istio-system/mesh-wide\" at $D/policies.yaml:1:1: no match");
    assert_line(text, "policies skipped (they do not apply to this workload):");
    assert_line(text, "  \"web/web-wide\" (another namespace) at $D/policies.yaml:14:1");
    assert_line(text, "  \"shop/payments-only\" (selector does not match the workload's labels) "
                      "at $D/policies.yaml:26:1");
    assert_line(text, "  \"shop/orders-v1\" (selector does not match the workload's labels) at "
                      "$D/policies.yaml:33:1");
    assert_line(text, "  \"istio-system/cart-anywhere\" (selector does not match the workload's "
                      "labels) at $D/policies.yaml:47:1");
    assert_line(text, "  \"shop/via-service\" (targetRef: applies to a gateway or Service, not to "
                      "a sidecar) at $D/policies.yaml:54:1");
    assert_line(text, "  \"shop/via-gateway\" (targetRef: applies to a gateway or Service, not to "
                      "a sidecar) at $D/policies.yaml:61:1");
    assert_line(text, "  \"native-web\" (another namespace) at $D/policies.yaml:77:5");
    assert_line(text, "  \"native-payments\" (another service) at $D/policies.yaml:85:5");
    free(text);
    free_set(&s);
}

/* The same policies seen from another workload: namespace web, no labels. */
static void test_scopes_other_workload(void **state)
{
    (void)state;
    static char config[4096];
    policy_set s;
    write_file("policies.yaml", SCOPE_POLICIES);
    workload_config(config, sizeof(config), "namespace: web\n", HTTP_INBOUND, "",
                    "policies.yaml");
    LOAD_WARNED(s, config,
                "$D/policies.yaml:58:14: warning: shop/via-service: spec.targetRef binds the "
                "policy to a Gateway or Service, not to a sidecar: it does not apply here",
                "$D/policies.yaml:66:5: warning: shop/via-gateway: spec.targetRefs binds the "
                "policy to a Gateway or Service, not to a sidecar: it does not apply here");
    APPLIED(&s, "istio-system/mesh-wide", "web/web-wide", "native-mesh", "native-web",
            "native-orders");
    expect_policy(&s, "principal=cluster.local/ns/quarantine/sa/x", true, "web/web-wide", 0);
    free_set(&s);
}

/* rbac.root_namespace moves the mesh: istio-system is then one namespace
 * among others, for AuthorizationPolicy and PeerAuthentication alike. */
static void test_custom_root_namespace(void **state)
{
    (void)state;
    policy_set s = istio_set_with(SHOP_ORDERS, HTTP_INBOUND, "  root_namespace: mesh-root\n",
                                  ISTIO_AUTHZ
                                  "metadata: {name: old-mesh, namespace: istio-system}\n"
                                  "spec: {rules: [{}]}\n"
                                  "---\n" ISTIO_AUTHZ
                                  "metadata: {name: mesh, namespace: mesh-root}\n"
                                  "spec:\n"
                                  "  rules: [{to: [{operation: {paths: [/mesh]}}]}]\n"
                                  "---\n" ISTIO_AUTHZ
                                  "metadata: {name: orders-anywhere, namespace: mesh-root}\n"
                                  "spec:\n"
                                  "  selector: {matchLabels: {app: orders}}\n"
                                  "  rules: [{to: [{operation: {paths: [/orders]}}]}]\n"
                                  "---\n" ISTIO_PEER_AUTH
                                  "metadata: {name: default, namespace: mesh-root}\n"
                                  "spec: {mtls: {mode: STRICT}}\n"
                                  "---\n" ISTIO_PEER_AUTH
                                  "metadata: {name: default, namespace: istio-system}\n"
                                  "spec: {mtls: {mode: DISABLE}}\n");
    assert_string_equal(s.cfg->rbac.root_namespace, "mesh-root");
    APPLIED(&s, "mesh-root/mesh", "mesh-root/orders-anywhere");
    expect_policy(&s, "principal=cluster.local/ns/web/sa/a path=/mesh", true, "mesh-root/mesh",
                  0);
    expect_policy(&s, "principal=cluster.local/ns/web/sa/a path=/orders", true,
                  "mesh-root/orders-anywhere", 0);
    expect_basis(&s, "principal=cluster.local/ns/web/sa/a path=/x", false,
                 OR_RBAC_BY_NO_ALLOW_MATCH);
    const or_peer_auth_config *decided;
    assert_int_equal(or_config_peer_auth_mode(s.cfg, 9000, &decided), OR_MTLS_STRICT);
    assert_non_null(decided);
    assert_string_equal(decided->name, "mesh-root/default");
    assert_int_equal(s.cfg->listeners[0].mtls_effective, OR_MTLS_STRICT);
    char *text = explain_spec(&s, "principal=cluster.local/ns/web/sa/a path=/x");
    assert_line(text, "  \"istio-system/old-mesh\" (another namespace) at $D/policies.yaml:1:1");
    free(text);
    free_set(&s);
}

/* The default root namespace is istio-system. */
static void test_default_root_namespace(void **state)
{
    (void)state;
    policy_set s = istio_set(ISTIO_AUTHZ "metadata: {name: deny-debug, namespace: istio-system}\n"
                                         "spec:\n"
                                         "  action: DENY\n"
                                         "  rules: [{to: [{operation: {paths: [/debug/*]}}]}]\n");
    assert_string_equal(s.cfg->rbac.root_namespace, "istio-system");
    APPLIED(&s, "istio-system/deny-debug");
    expect_policy(&s, "principal=cluster.local/ns/web/sa/a path=/debug/vars", false,
                  "istio-system/deny-debug", 0);
    expect_basis(&s, "principal=cluster.local/ns/web/sa/a path=/api", true, OR_RBAC_BY_DEFAULT);
    free_set(&s);
}

/* No top-level namespace and no readable SPIFFE ID in the identity
 * certificate: namespace-scoped policies do not apply, mesh-wide ones do. */
static void test_namespace_unknown(void **state)
{
    (void)state;
    static char config[4096];
    policy_set s;
    write_file("policies.yaml", ISTIO_AUTHZ "metadata: {name: mesh, namespace: istio-system}\n"
                                            "spec: {rules: [{to: [{operation: {paths: [/m]}}]}]}\n"
                                            "---\n" ISTIO_AUTHZ
                                            "metadata: {name: shop-all, namespace: shop}\n"
                                            "spec: {rules: [{}]}\n");
    workload_config(config, sizeof(config), "labels: {app: orders}\n", HTTP_INBOUND, "",
                    "policies.yaml");
    LOAD_WARNED(s, config,
                "$D/config.yaml: warning: the workload's namespace is unknown (no top-level "
                "`namespace`, and the identity certificate's SPIFFE ID was not read): policies "
                "and PeerAuthentications scoped to a namespace do not apply; set `namespace`");
    assert_null(s.cfg->namespace);
    APPLIED(&s, "istio-system/mesh");
    expect_policy(&s, "principal=cluster.local/ns/shop/sa/a path=/m", true, "istio-system/mesh",
                  0);
    expect_basis(&s, "principal=cluster.local/ns/shop/sa/a path=/x", false,
                 OR_RBAC_BY_NO_ALLOW_MATCH);
    char *text = explain_spec(&s, "principal=cluster.local/ns/shop/sa/a");
    assert_line(text, "  \"shop/shop-all\" (namespace unknown) at $D/policies.yaml:6:1");
    assert_line(text, "policies considered (service \"orders\", namespace \"unknown\", 1 apply, "
                      "default allow):");
    free(text);
    free_set(&s);
}

/* Native policies alone: the scope keys, and Outrider's default deny. */
static void test_native_scopes(void **state)
{
    (void)state;
    policy_set s = istio_set("policies:\n"
                             "  - name: everywhere\n"
                             "    action: allow\n"
                             "    rules: [{to: [{paths: [/a]}]}]\n"
                             "  - name: in-shop\n"
                             "    namespace: shop\n"
                             "    action: allow\n"
                             "    rules: [{to: [{paths: [/b]}]}]\n"
                             "  - name: in-web\n"
                             "    namespace: web\n"
                             "    action: allow\n"
                             "    rules: [{}]\n"
                             "  - name: for-orders\n"
                             "    service: orders\n"
                             "    action: deny\n"
                             "    rules: [{to: [{paths: [/c]}]}]\n"
                             "  - name: for-cart\n"
                             "    service: cart\n"
                             "    action: allow\n"
                             "    rules: [{}]\n");
    APPLIED(&s, "everywhere", "in-shop", "for-orders");
    assert_int_equal(s.cfg->rbac.nistio, 0);
    expect_policy(&s, "principal=cluster.local/ns/web/sa/a path=/a", true, "everywhere", 0);
    expect_policy(&s, "principal=cluster.local/ns/web/sa/a path=/b", true, "in-shop", 0);
    expect_policy(&s, "principal=cluster.local/ns/web/sa/a path=/c", false, "for-orders", 0);
    /* No policy matched, no Istio policy loaded: Outrider's default deny. */
    expect_basis(&s, "principal=cluster.local/ns/web/sa/a path=/d", false, OR_RBAC_BY_DEFAULT);
    free_set(&s);
}

/* ==== fields ==== */

/* One field under test: the rule written, a request it matches and one it
 * does not. */
typedef struct {
    const char *what;
    const char *rule;
    const char *match;
    const char *miss;
} field_case;

#define FROM(fields) "  - from:\n    - source: {" fields "}\n"
#define TO(fields) "  - to:\n    - operation: {" fields "}\n"
#define WHEN(fields) "  - when:\n    - {" fields "}\n"

static const field_case field_cases[] = {
    {"principals (Istio form)", FROM("principals: [\"" FRONTEND_ISTIO "\"]"),
     "principal=" FRONTEND_ISTIO, "principal=cluster.local/ns/web/sa/admin"},
    {"principals (spiffe:// prefix)", FROM("principals: [\"spiffe://cluster.local/ns/web/*\"]"),
     "principal=cluster.local/ns/web/sa/any", "principal=cluster.local/ns/webx/sa/any"},
    {"principals (suffix)", FROM("principals: [\"*/sa/frontend\"]"),
     "principal=cluster.local/ns/ops/sa/frontend", "principal=cluster.local/ns/ops/sa/backend"},
    {"principals (unauthenticated)", FROM("principals: [\"*\"]"), "principal=" FRONTEND_ISTIO,
     "principal=none"},
    {"notPrincipals", FROM("notPrincipals: [\"" FRONTEND_ISTIO "\"]"),
     "principal=cluster.local/ns/ops/sa/bot", "principal=" FRONTEND_ISTIO},
    {"notPrincipals (unauthenticated)", FROM("notPrincipals: [\"*\"]"), "principal=none",
     "principal=cluster.local/ns/ops/sa/bot"},
    {"namespaces", FROM("namespaces: [web, \"kube-*\"]"),
     "principal=cluster.local/ns/kube-system/sa/dns", "principal=cluster.local/ns/ops/sa/bot"},
    {"notNamespaces", FROM("notNamespaces: [web]"), "principal=cluster.local/ns/ops/sa/bot",
     "principal=" FRONTEND_ISTIO},
    {"ipBlocks", FROM("ipBlocks: [\"10.0.0.0/8\", \"192.168.1.7\"]"), "ip=192.168.1.7",
     "ip=192.168.1.8"},
    {"notIpBlocks", FROM("notIpBlocks: [\"10.0.0.0/8\"]"), "ip=172.16.0.1", "ip=10.1.2.3"},
    {"remoteIpBlocks", FROM("remoteIpBlocks: [\"172.16.0.0/12\", \"fd00::/8\"]"), "ip=fd00::5",
     "ip=10.1.2.3"},
    {"notRemoteIpBlocks", FROM("notRemoteIpBlocks: [\"172.16.0.0/12\"]"), "ip=10.1.2.3",
     "ip=172.16.5.5"},
    {"empty lists are unset", FROM("principals: [], namespaces: [web], notNamespaces: []"),
     "principal=cluster.local/ns/web/sa/any", "principal=cluster.local/ns/ops/sa/bot"},
    {"hosts", TO("hosts: [orders.shop.svc.cluster.local, \"*.example.com\"]"),
     "host=Orders.Shop.svc.cluster.local:8080", "host=orders.shop"},
    {"hosts (suffix)", TO("hosts: [orders.shop.svc.cluster.local, \"*.example.com\"]"),
     "host=api.example.com", "host=example.com.evil"},
    {"notHosts", TO("notHosts: [\"*.internal\"]"), "host=orders.shop", "host=admin.internal"},
    {"ports (strings, as Istio writes them)", TO("ports: [\"8080\", \"8443\"]"), "port=8443",
     "port=9090"},
    {"notPorts", TO("notPorts: [\"9090\"]"), "port=8080", "port=9090"},
    {"methods", TO("methods: [GET, HEAD]"), "method=HEAD", "method=DELETE"},
    {"notMethods", TO("notMethods: [DELETE]"), "method=POST", "method=DELETE"},
    {"paths", TO("paths: [\"/api/*\", /healthz, \"*.json\"]"), "path=/api/v1/orders?page=2",
     "path=/admin"},
    {"paths (exact)", TO("paths: [\"/api/*\", /healthz, \"*.json\"]"), "path=/healthz",
     "path=/healthz/x"},
    {"notPaths", TO("notPaths: [\"/admin/*\"]"), "path=/api", "path=/admin/users"},
    {"request.headers values", WHEN("key: \"request.headers[X-Tenant]\", values: [acme, \"beta-*\"]"),
     "header:x-tenant=beta-2", "header:x-tenant=other"},
    {"request.headers values (absent)", WHEN("key: \"request.headers[x-tenant]\", values: [acme]"),
     "header:X-Tenant=acme", "path=/"},
    {"request.headers notValues", WHEN("key: \"request.headers[x-tenant]\", notValues: [blocked]"),
     "path=/", "header:x-tenant=blocked"},
    {"source.ip values", WHEN("key: source.ip, values: [\"10.0.0.0/8\"]"), "ip=10.9.9.9",
     "ip=172.16.0.1"},
    {"source.ip notValues", WHEN("key: source.ip, notValues: [\"10.0.0.0/8\"]"), "ip=172.16.0.1",
     "ip=10.9.9.9"},
    {"remote.ip values", WHEN("key: remote.ip, values: [\"192.168.0.0/16\"]"), "ip=192.168.3.4",
     "ip=10.1.2.3"},
    {"remote.ip notValues", WHEN("key: remote.ip, notValues: [\"192.168.0.0/16\"]"),
     "ip=10.1.2.3", "ip=192.168.3.4"},
    {"source.namespace values", WHEN("key: source.namespace, values: [web]"),
     "principal=" FRONTEND_ISTIO, "principal=cluster.local/ns/ops/sa/bot"},
    {"source.namespace notValues", WHEN("key: source.namespace, notValues: [web]"),
     "principal=cluster.local/ns/ops/sa/bot", "principal=" FRONTEND_ISTIO},
    {"source.principal values", WHEN("key: source.principal, values: [\"" FRONTEND_ISTIO "\"]"),
     "principal=" FRONTEND_ISTIO, "principal=cluster.local/ns/ops/sa/bot"},
    {"source.principal notValues",
     WHEN("key: source.principal, notValues: [\"" FRONTEND_ISTIO "\"]"),
     "principal=cluster.local/ns/ops/sa/bot", "principal=" FRONTEND_ISTIO},
    {"destination.port values", WHEN("key: destination.port, values: [\"8080\"]"), "port=8080",
     "port=9090"},
    {"destination.port notValues", WHEN("key: destination.port, notValues: [\"9090\"]"),
     "port=8080", "port=9090"},
    {"connection.sni values", WHEN("key: connection.sni, values: [orders.shop.svc.cluster.local]"),
     "sni=orders.shop.svc.cluster.local", "sni=payments.shop.svc.cluster.local"},
    {"connection.sni values (none sent)", WHEN("key: connection.sni, values: [\"*\"]"),
     "sni=orders.shop", "path=/"},
    {"connection.sni notValues", WHEN("key: connection.sni, notValues: [legacy.shop]"),
     "sni=orders.shop", "sni=legacy.shop"},
};

/* Policies of one field case: shop/field with the action given, and for
 * DENY an allow-everything policy after it. */
static void field_policies(char *out, size_t len, const field_case *c, const char *action)
{
    int n = snprintf(out, len,
                     ISTIO_AUTHZ "metadata: {name: field, namespace: shop}\n"
                                 "spec:\n"
                                 "  action: %s\n"
                                 "  rules:\n%s%s",
                     action, c->rule,
                     strcmp(action, "DENY") == 0
                         ? "---\n" ISTIO_AUTHZ "metadata: {name: allow-all, namespace: shop}\n"
                                               "spec: {rules: [{}]}\n"
                         : "");
    if (n < 0 || (size_t)n >= len)
        fail_msg("policies too long");
}

static void test_fields_allow(void **state)
{
    (void)state;
    char policies[2048];
    for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
        const field_case *c = &field_cases[i];
        print_message("ALLOW %s\n", c->what);
        field_policies(policies, sizeof(policies), c, "ALLOW");
        policy_set s = istio_set(policies);
        expect_policy(&s, c->match, true, "shop/field", 0);
        expect_basis(&s, c->miss, false, OR_RBAC_BY_NO_ALLOW_MATCH);
        free_set(&s);
    }
}

static void test_fields_deny(void **state)
{
    (void)state;
    char policies[2048];
    for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]); i++) {
        const field_case *c = &field_cases[i];
        print_message("DENY %s\n", c->what);
        field_policies(policies, sizeof(policies), c, "DENY");
        policy_set s = istio_set(policies);
        expect_policy(&s, c->match, false, "shop/field", 0);
        expect_policy(&s, c->miss, true, "shop/allow-all", 0);
        free_set(&s);
    }
}

/* Several rules, entries and conditions: entries of a section are ORed,
 * fields of an entry ANDed, conditions ANDed; the rule index is reported. */
static void test_rules_and_entries(void **state)
{
    (void)state;
    policy_set s = istio_set(ISTIO_AUTHZ
                             "metadata: {name: orders-api, namespace: shop}\n"
                             "spec:\n"
                             "  rules:\n"
                             "  - from:\n"
                             "    - source: {principals: [\"" FRONTEND_ISTIO "\"]}\n"
                             "    - source: {namespaces: [ops], ipBlocks: [\"10.0.0.0/8\"]}\n"
                             "    to:\n"
                             "    - operation: {methods: [GET], paths: [\"/api/*\"]}\n"
                             "    when:\n"
                             "    - key: request.headers[x-tenant]\n"
                             "      values: [acme]\n"
                             "    - key: destination.port\n"
                             "      values: [\"8080\"]\n"
                             "  - to:\n"
                             "    - operation: {paths: [/healthz]}\n");
    const char *tenant = " header:x-tenant=acme";
    char spec[512];
    snprintf(spec, sizeof(spec), "principal=" FRONTEND_ISTIO " path=/api/x%s", tenant);
    expect_policy(&s, spec, true, "shop/orders-api", 0);
    snprintf(spec, sizeof(spec), "principal=cluster.local/ns/ops/sa/bot path=/api/x%s", tenant);
    expect_policy(&s, spec, true, "shop/orders-api", 0);
    snprintf(spec, sizeof(spec), "principal=cluster.local/ns/ops/sa/bot ip=192.168.0.1 "
                                 "path=/api/x%s", tenant);
    expect_basis(&s, spec, false, OR_RBAC_BY_NO_ALLOW_MATCH); /* ipBlocks fails */
    snprintf(spec, sizeof(spec), "principal=" FRONTEND_ISTIO " method=POST path=/api/x%s",
             tenant);
    expect_basis(&s, spec, false, OR_RBAC_BY_NO_ALLOW_MATCH); /* methods fails */
    snprintf(spec, sizeof(spec), "principal=" FRONTEND_ISTIO " path=/api/x port=9090%s", tenant);
    expect_basis(&s, spec, false, OR_RBAC_BY_NO_ALLOW_MATCH); /* second condition fails */
    expect_basis(&s, "principal=" FRONTEND_ISTIO " path=/api/x", false,
                 OR_RBAC_BY_NO_ALLOW_MATCH); /* first condition fails */
    expect_policy(&s, "principal=none path=/healthz", true, "shop/orders-api", 1);
    free_set(&s);
}

/* ==== the decision ==== */

static void test_deny_beats_allow(void **state)
{
    (void)state;
    policy_set s = istio_set(ISTIO_AUTHZ "metadata: {name: allow-all, namespace: shop}\n"
                                         "spec: {rules: [{}]}\n"
                                         "---\n" ISTIO_AUTHZ
                                         "metadata: {name: deny-admin, namespace: shop}\n"
                                         "spec:\n"
                                         "  action: DENY\n"
                                         "  rules:\n"
                                         "  - to: [{operation: {paths: [/metrics]}}]\n"
                                         "  - to: [{operation: {paths: [\"/admin/*\"]}}]\n");
    expect_policy(&s, "principal=" FRONTEND_ISTIO " path=/admin/users", false, "shop/deny-admin",
                  1);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " path=/metrics", false, "shop/deny-admin", 0);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " path=/api", true, "shop/allow-all", 0);
    or_rbac_decision d = decide_spec(&s, "principal=" FRONTEND_ISTIO " path=/admin/users");
    assert_int_equal(d.policy_index, 1);
    free_set(&s);
}

static void test_allow_applies_without_match(void **state)
{
    (void)state;
    /* An ALLOW policy for this workload: what it does not allow is denied,
     * even with rbac.default allow written (step 3 comes before it). */
    static const char policies[] = ISTIO_AUTHZ
        "metadata: {name: frontend-only, namespace: shop}\n"
        "spec:\n"
        "  selector: {matchLabels: {app: orders}}\n"
        "  rules: [{from: [{source: {principals: [\"" FRONTEND_ISTIO "\"]}}]}]\n";
    policy_set s = istio_set(policies);
    expect_policy(&s, "principal=" FRONTEND_ISTIO, true, "shop/frontend-only", 0);
    expect_basis(&s, "principal=cluster.local/ns/ops/sa/bot", false, OR_RBAC_BY_NO_ALLOW_MATCH);
    char *text = explain_spec(&s, "principal=cluster.local/ns/ops/sa/bot");
    assert_line(text, "decision: DENY: Istio ALLOW policies apply to this workload and none "
                      "matched (what they do not allow is denied)");
    free(text);
    free_set(&s);
    s = istio_set_with(SHOP_ORDERS, HTTP_INBOUND, "  default: allow\n", policies);
    expect_basis(&s, "principal=cluster.local/ns/ops/sa/bot", false, OR_RBAC_BY_NO_ALLOW_MATCH);
    free_set(&s);
}

static void test_no_allow_policy(void **state)
{
    (void)state;
    /* DENY only, and an ALLOW for another workload: Istio allows. */
    static const char policies[] = ISTIO_AUTHZ "metadata: {name: deny-ops, namespace: shop}\n"
                                               "spec:\n"
                                               "  action: DENY\n"
                                               "  rules: [{from: [{source: {namespaces: [ops]}}]}]\n"
                                               "---\n" ISTIO_AUTHZ
                                               "metadata: {name: cart-allow, namespace: shop}\n"
                                               "spec:\n"
                                               "  selector: {matchLabels: {app: cart}}\n"
                                               "  rules: [{}]\n";
    policy_set s = istio_set(policies);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot", false, "shop/deny-ops", 0);
    expect_basis(&s, "principal=" FRONTEND_ISTIO, true, OR_RBAC_BY_DEFAULT);
    char *text = explain_spec(&s, "principal=" FRONTEND_ISTIO);
    assert_line(text, "decision: ALLOW by default (rbac.default: allow, Istio's default; no "
                      "enforced policy matched)");
    free(text);
    free_set(&s);
    /* rbac.default: deny overrides Istio's default. */
    s = istio_set_with(SHOP_ORDERS, HTTP_INBOUND, "  default: deny\n", policies);
    expect_basis(&s, "principal=" FRONTEND_ISTIO, false, OR_RBAC_BY_DEFAULT);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot", false, "shop/deny-ops", 0);
    text = explain_spec(&s, "principal=" FRONTEND_ISTIO);
    assert_line(text, "decision: DENY by default (rbac.default: deny; no enforced policy "
                      "matched)");
    free(text);
    free_set(&s);
}

/* A native allow with Istio resources loaded: it allows what it matches;
 * what nothing matches is decided by the default, Istio's allow unless
 * written, since no Istio ALLOW applies. */
static void test_native_with_istio(void **state)
{
    (void)state;
    policy_set s = istio_set("policies:\n"
                             "  - name: native-reads\n"
                             "    action: allow\n"
                             "    rules: [{to: [{methods: [GET]}]}]\n"
                             "---\n" ISTIO_AUTHZ
                             "metadata: {name: deny-delete, namespace: shop}\n"
                             "spec: {action: DENY, rules: [{to: [{operation: {methods: [DELETE]}}]}]}\n");
    expect_policy(&s, "principal=" FRONTEND_ISTIO, true, "native-reads", 0);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " method=DELETE", false, "shop/deny-delete", 0);
    expect_basis(&s, "principal=" FRONTEND_ISTIO " method=POST", true, OR_RBAC_BY_DEFAULT);
    free_set(&s);
}

static void test_audit_never_decides(void **state)
{
    (void)state;
    static const char policies[] = ISTIO_AUTHZ "metadata: {name: audit-all, namespace: shop}\n"
                                               "spec:\n"
                                               "  action: AUDIT\n"
                                               "  rules: [{}]\n"
                                               "---\n" ISTIO_AUTHZ
                                               "metadata: {name: audit-writes, namespace: shop}\n"
                                               "spec:\n"
                                               "  action: AUDIT\n"
                                               "  rules: [{to: [{operation: {methods: [POST]}}]}]\n";
    policy_set s = istio_set(policies);
    /* An AUDIT policy is no ALLOW policy: Istio's default allows. */
    or_rbac_decision d = decide_spec(&s, "principal=" FRONTEND_ISTIO " method=POST");
    assert_true(d.allowed);
    assert_int_equal(d.basis, OR_RBAC_BY_DEFAULT);
    assert_null(d.policy);
    assert_string_equal(d.audit_policy, "shop/audit-all");
    assert_int_equal(d.audit_index, 0);
    free_set(&s);
    s = istio_set_with(SHOP_ORDERS, HTTP_INBOUND, "  default: deny\n", policies);
    d = decide_spec(&s, "principal=" FRONTEND_ISTIO);
    assert_false(d.allowed);
    assert_int_equal(d.basis, OR_RBAC_BY_DEFAULT);
    assert_string_equal(d.audit_policy, "shop/audit-all");
    char *text = explain_spec(&s, "principal=" FRONTEND_ISTIO);
    assert_line(text, "audit: policy \"shop/audit-all\" matched");
    assert_line(text, "  audit \"shop/audit-all\" at $D/policies.yaml:1:1: matched rule 0: "
                      "audit, logged only");
    free(text);
    free_set(&s);
}

static void test_dry_run_annotation(void **state)
{
    (void)state;
    policy_set s = istio_set(ISTIO_AUTHZ
                             "metadata:\n"
                             "  name: deny-all-trial\n"
                             "  namespace: shop\n"
                             "  annotations:\n"
                             "    istio.io/dry-run: \"true\"\n"
                             "    kubectl.kubernetes.io/last-applied-configuration: \"{}\"\n"
                             "spec:\n"
                             "  action: DENY\n"
                             "  rules: [{}]\n"
                             "---\n" ISTIO_AUTHZ
                             "metadata:\n"
                             "  name: frontend-trial\n"
                             "  namespace: shop\n"
                             "  annotations: {istio.io/dry-run: \"true\"}\n"
                             "spec:\n"
                             "  rules: [{from: [{source: {principals: [\"" FRONTEND_ISTIO "\"]}}]}]\n"
                             "---\n" ISTIO_AUTHZ
                             "metadata:\n"
                             "  name: enforced\n"
                             "  namespace: shop\n"
                             "  annotations: {istio.io/dry-run: \"false\"}\n"
                             "spec:\n"
                             "  action: DENY\n"
                             "  rules: [{to: [{operation: {paths: [/blocked]}}]}]\n");
    assert_true(s.cfg->rbac.policies[0].dry_run);
    assert_true(s.cfg->rbac.policies[1].dry_run);
    assert_false(s.cfg->rbac.policies[2].dry_run);
    /* The dry-run DENY does not deny; the dry-run ALLOW does not make the
     * workload deny what it does not match: Istio's default allows. */
    or_rbac_decision d = decide_spec(&s, "principal=cluster.local/ns/ops/sa/bot");
    assert_true(d.allowed);
    assert_int_equal(d.basis, OR_RBAC_BY_DEFAULT);
    assert_string_equal(d.dry_run_policy, "shop/deny-all-trial");
    assert_false(d.dry_run_would_allow);
    assert_int_equal(d.dry_run_index, 0);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot path=/blocked", false,
                  "shop/enforced", 0);
    char *text = explain_spec(&s, "principal=" FRONTEND_ISTIO);
    assert_line(text, "dry run: policy \"shop/deny-all-trial\" would deny");
    assert_line(text, "  allow \"shop/frontend-trial\" (dry run) at $D/policies.yaml:13:1: "
                      "matched rule 0: dry run, would allow (not enforced)");
    free(text);
    free_set(&s);
}

/* Istio reads the annotation with Go's strconv.ParseBool: "1", "t", "T",
 * "TRUE", "True" and "true" all make the policy dry-run. */
static void test_dry_run_annotation_values(void **state)
{
    (void)state;
    static const char *const values[] = {"\"True\"", "\"TRUE\"", "\"1\"", "\"t\"", "true"};
    char policies[1024];
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        snprintf(policies, sizeof(policies),
                 ISTIO_AUTHZ "metadata:\n"
                             "  name: trial\n"
                             "  namespace: shop\n"
                             "  annotations: {istio.io/dry-run: %s}\n"
                             "spec: {action: DENY, rules: [{}]}\n",
                 values[i]);
        policy_set s = istio_set(policies);
        or_rbac_decision d = decide_spec(&s, "principal=" FRONTEND_ISTIO);
        if (!d.allowed || d.dry_run_policy == NULL)
            fail_msg("istio.io/dry-run: %s: expected a dry run (allowed, reported), got %s by "
                     "\"%s\"", values[i], d.allowed ? "allow" : "deny",
                     d.policy ? d.policy : "(none)");
        free_set(&s);
    }
}

static void test_rules_empty_and_absent(void **state)
{
    (void)state;
    /* spec: {} is Istio's allow-nothing: an ALLOW with no rules denies all. */
    policy_set s = istio_set(ISTIO_AUTHZ "metadata: {name: allow-nothing, namespace: shop}\n"
                                         "spec: {}\n");
    expect_basis(&s, "principal=" FRONTEND_ISTIO, false, OR_RBAC_BY_NO_ALLOW_MATCH);
    char *text = explain_spec(&s, "principal=" FRONTEND_ISTIO);
    assert_line(text, "  allow \"shop/allow-nothing\" at $D/policies.yaml:1:1: no match: the "
                      "policy has no rules, so it matches no request (write rules: [{}] to "
                      "match every request)");
    free(text);
    free_set(&s);
    /* rules: [] reads as no rules (an empty list is unset). */
    s = istio_set(ISTIO_AUTHZ "metadata: {name: allow-nothing, namespace: shop}\n"
                              "spec: {rules: []}\n");
    expect_basis(&s, "principal=" FRONTEND_ISTIO, false, OR_RBAC_BY_NO_ALLOW_MATCH);
    free_set(&s);
    /* A DENY with no rules denies nothing. */
    s = istio_set(ISTIO_AUTHZ "metadata: {name: deny-nothing, namespace: shop}\n"
                              "spec: {action: DENY}\n");
    expect_basis(&s, "principal=" FRONTEND_ISTIO, true, OR_RBAC_BY_DEFAULT);
    free_set(&s);
    /* rules: [{}] matches every request, authenticated or not. */
    s = istio_set(ISTIO_AUTHZ "metadata: {name: allow-all, namespace: shop}\n"
                              "spec: {rules: [{}]}\n"
                              "---\n" ISTIO_AUTHZ
                              "metadata: {name: deny-all, namespace: web}\n"
                              "spec: {action: DENY, rules: [{}]}\n");
    expect_policy(&s, "principal=none method=PATCH path=/anything", true, "shop/allow-all", 0);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " tcp", true, "shop/allow-all", 0);
    free_set(&s);
    s = istio_set(ISTIO_AUTHZ "metadata: {name: deny-all, namespace: shop}\n"
                              "spec:\n  action: DENY\n  rules:\n  - {}\n");
    expect_policy(&s, "principal=none", false, "shop/deny-all", 0);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " tcp", false, "shop/deny-all", 0);
    free_set(&s);
}

/* ==== JWT fields ==== */

static void test_jwt_in_deny_fails_closed(void **state)
{
    (void)state;
    policy_set s = istio_set(ISTIO_AUTHZ "metadata: {name: allow-all, namespace: shop}\n"
                                         "spec: {rules: [{}]}\n"
                                         "---\n" ISTIO_AUTHZ
                                         "metadata: {name: deny-issuer, namespace: shop}\n"
                                         "spec:\n"
                                         "  action: DENY\n"
                                         "  rules:\n"
                                         "  - from: [{source: {requestPrincipals: [\"evil.example/*\"]}}]\n"
                                         "    to: [{operation: {paths: [\"/jwt/*\"]}}]\n"
                                         "  - to: [{operation: {paths: [\"/claims/*\"]}}]\n"
                                         "    when:\n"
                                         "    - key: request.auth.claims[groups]\n"
                                         "      values: [banned]\n"
                                         "---\n" ISTIO_AUTHZ
                                         "metadata: {name: require-jwt, namespace: shop}\n"
                                         "spec:\n"
                                         "  action: DENY\n"
                                         "  rules:\n"
                                         "  - from: [{source: {notRequestPrincipals: [\"*\"]}}]\n"
                                         "    to: [{operation: {paths: [\"/private/*\"]}}]\n");
    /* No JWT is ever validated: a JWT field in DENY holds. */
    expect_policy(&s, "principal=" FRONTEND_ISTIO " path=/jwt/x", false, "shop/deny-issuer", 0);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " path=/claims/x", false, "shop/deny-issuer",
                  1);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " path=/private/x", false, "shop/require-jwt",
                  0);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " path=/public", true, "shop/allow-all", 0);
    char *text = explain_spec(&s, "principal=" FRONTEND_ISTIO " path=/jwt/x");
    assert_line(text, "      rule 0: from[0]: 'requestPrincipals' is treated as matching: "
                      "Outrider validates no JWT (deny fails closed)");
    free(text);
    free_set(&s);
}

/* ==== HTTP-only fields on a tcp listener ==== */

static void test_http_fields_on_tcp(void **state)
{
    (void)state;
    policy_set s = istio_set_with(SHOP_ORDERS, TCP_INBOUND, "",
                                  ISTIO_AUTHZ "metadata: {name: allow-reads, namespace: shop}\n"
                                              "spec:\n"
                                              "  rules:\n"
                                              "  - from: [{source: {principals: [\"" FRONTEND_ISTIO "\"]}}]\n"
                                              "    to: [{operation: {methods: [GET]}}]\n"
                                              "  - from: [{source: {namespaces: [billing]}}]\n"
                                              "    when: [{key: \"request.headers[x-tenant]\", values: [acme]}]\n"
                                              "---\n" ISTIO_AUTHZ
                                              "metadata: {name: allow-ops, namespace: shop}\n"
                                              "spec:\n"
                                              "  rules:\n"
                                              "  - from: [{source: {namespaces: [ops, web]}}]\n"
                                              "    to: [{operation: {ports: [\"5432\"]}}]\n");
    /* ALLOW: an HTTP-only field never matches a tcp connection. */
    expect_basis(&s, "principal=" FRONTEND_ISTIO " port=8080 tcp", false,
                 OR_RBAC_BY_NO_ALLOW_MATCH);
    expect_basis(&s, "principal=cluster.local/ns/billing/sa/x port=8080 tcp", false,
                 OR_RBAC_BY_NO_ALLOW_MATCH);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot port=5432 tcp", true,
                  "shop/allow-ops", 0);
    /* The same rule matches the HTTP request it describes. */
    expect_policy(&s, "principal=" FRONTEND_ISTIO " method=GET", true, "shop/allow-reads", 0);
    char *text = explain_spec(&s, "principal=" FRONTEND_ISTIO " port=8080 tcp");
    assert_line(text, "      rule 0: to[0]: HTTP-only field 'methods' never matches on a tcp "
                      "request (fail closed)");
    free(text);
    free_set(&s);

    s = istio_set_with(SHOP_ORDERS, TCP_INBOUND, "",
                       ISTIO_AUTHZ "metadata: {name: deny-web-admin, namespace: shop}\n"
                                   "spec:\n"
                                   "  action: DENY\n"
                                   "  rules:\n"
                                   "  - from: [{source: {namespaces: [web]}}]\n"
                                   "    to: [{operation: {paths: [\"/admin/*\"], hosts: [admin]}}]\n"
                                   "  - from: [{source: {namespaces: [legacy]}}]\n"
                                   "    when: [{key: \"request.headers[x-legacy]\", notValues: [ok]}]\n"
                                   "---\n" ISTIO_AUTHZ
                                   "metadata: {name: allow-all, namespace: shop}\n"
                                   "spec: {rules: [{}]}\n");
    /* DENY: an HTTP-only field always matches: the rule denies on the rest. */
    expect_policy(&s, "principal=" FRONTEND_ISTIO " port=5432 tcp", false, "shop/deny-web-admin",
                  0);
    expect_policy(&s, "principal=cluster.local/ns/legacy/sa/x port=5432 tcp", false,
                  "shop/deny-web-admin", 1);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot port=5432 tcp", true,
                  "shop/allow-all", 0);
    expect_policy(&s, "principal=" FRONTEND_ISTIO " path=/api host=admin", true,
                  "shop/allow-all", 0);
    free_set(&s);
}

/* ==== PeerAuthentication ==== */

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scopes),
        cmocka_unit_test(test_scopes_other_workload),
        cmocka_unit_test(test_custom_root_namespace),
        cmocka_unit_test(test_default_root_namespace),
        cmocka_unit_test(test_namespace_unknown),
        cmocka_unit_test(test_native_scopes),
        cmocka_unit_test(test_fields_allow),
        cmocka_unit_test(test_fields_deny),
        cmocka_unit_test(test_rules_and_entries),
        cmocka_unit_test(test_deny_beats_allow),
        cmocka_unit_test(test_allow_applies_without_match),
        cmocka_unit_test(test_no_allow_policy),
        cmocka_unit_test(test_native_with_istio),
        cmocka_unit_test(test_audit_never_decides),
        cmocka_unit_test(test_dry_run_annotation),
        cmocka_unit_test(test_dry_run_annotation_values),
        cmocka_unit_test(test_rules_empty_and_absent),
        cmocka_unit_test(test_jwt_in_deny_fails_closed),
        cmocka_unit_test(test_http_fields_on_tcp),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
