/*
 * Unit tests for Istio's AuthorizationPolicy and PeerAuthentication as
 * Outrider reads them (config_istio.c, config_scope.c, rbac.c):
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
 *   DENY;
 * - PeerAuthentication precedence (workload > namespace > mesh, UNSET
 *   inheriting, portLevelMtls keyed by the upstream port, the first of a
 *   level winning) and the mode each inbound listener ends up with;
 * - files: several documents in one file, `kind: List`, a directory read in
 *   name order, other kinds skipped with a warning;
 * - errors inside Istio documents, as exact file:line:column messages.
 *
 * Decisions are asserted exactly: allowed or not, the basis, the deciding
 * policy ("namespace/name") and its rule index. Fixtures: istio_fixture.h,
 * config_fixture.h.
 */
#include "istio_fixture.h"
#include "config_fixture.h"

static int group_setup(void **state)
{
    (void)state;
    return fixture_setup("test_rbac_istio");
}

/* ---- helpers ---- */

#define ISTIO_AUTHZ "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
#define ISTIO_PEER_AUTH "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\n"

/* A decision made by a policy: allowed or not, by `policy` rule `rule`. */
static void expect_policy(const policy_set *s, const char *spec, bool allowed,
                          const char *policy, int rule)
{
    or_rbac_decision d = decide_spec(s, spec);
    if (d.allowed != allowed || d.basis != OR_RBAC_BY_POLICY || d.policy == NULL ||
        strcmp(d.policy, policy) != 0 || d.rule != rule)
        fail_msg("%s: expected %s by \"%s\" rule %d, got %s (basis %d) by \"%s\" rule %d", spec,
                 allowed ? "allow" : "deny", policy, rule, d.allowed ? "allow" : "deny",
                 (int)d.basis, d.policy ? d.policy : "(none)", d.rule);
}

/* A decision no policy made: by rbac.default, or the deny of an Istio ALLOW
 * policy that applies and did not match. */
static void expect_basis(const policy_set *s, const char *spec, bool allowed,
                         or_rbac_basis basis)
{
    or_rbac_decision d = decide_spec(s, spec);
    if (d.allowed != allowed || d.basis != basis || d.policy != NULL || d.rule != -1 ||
        d.policy_index != -1)
        fail_msg("%s: expected %s with basis %d and no policy, got %s (basis %d) by \"%s\" "
                 "rule %d", spec, allowed ? "allow" : "deny", (int)basis,
                 d.allowed ? "allow" : "deny", (int)d.basis, d.policy ? d.policy : "(none)",
                 d.rule);
}

/* The policies that apply, in order, compared with a NULL-terminated list. */
static void assert_applied(const policy_set *s, const char *const *names)
{
    size_t n = 0;
    for (; names[n] != NULL; n++) {
        const char *got = or_rbac_policy_name(s->rbac, n);
        if (got == NULL || strcmp(got, names[n]) != 0)
            fail_msg("applied policy %zu: expected \"%s\", got \"%s\"", n, names[n],
                     got ? got : "(none)");
    }
    assert_int_equal(or_rbac_policy_count(s->rbac), n);
}

#define APPLIED(s, ...)                                                                       \
    do {                                                                                      \
        const char *const names_[] = {__VA_ARGS__, NULL};                                     \
        assert_applied(s, names_);                                                            \
    } while (0)

/* or_rbac_explain's report, for a request spec; the caller frees it. */
static char *explain_spec(const policy_set *s, const char *spec)
{
    spec_request r;
    char *text = NULL;
    size_t len = 0;
    spec_parse(&r, spec);
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    or_rbac_explain(s->rbac, &r.t.req, out);
    fclose(out);
    return text;
}

/* The text has `line` as a whole line; "$D" stands for the fixture dir. */
static void assert_line(const char *text, const char *pattern)
{
    char line[2048];
    expand(line, sizeof(line), pattern, test_dir);
    size_t len = strlen(line);
    for (const char *at = text; (at = strstr(at, line)) != NULL; at++)
        if ((at == text || at[-1] == '\n') && (at[len] == '\n' || at[len] == '\0'))
            return;
    fail_msg("no line\n  %s\nin\n%s", line, text);
}

/* The diagnostics, exactly and in order ("$D" is the fixture dir). */
static void assert_diag_list(const or_diag *d, const char *const *expected)
{
    char want[2048];
    size_t n = 0;
    while (expected[n] != NULL)
        n++;
    for (size_t i = 0; i < n || i < d->count; i++) {
        if (i < n)
            expand(want, sizeof(want), expected[i], test_dir);
        if (i >= n || i >= d->count || strcmp(want, d->entries[i].text) != 0) {
            print_message("diagnostic %zu differs\n  want: %s\n", i, i < n ? want : "(none)");
            print_diags(d);
            fail();
        }
    }
}

#define DIAGS(d, ...)                                                                         \
    do {                                                                                      \
        const char *const want_[] = {__VA_ARGS__, NULL};                                      \
        assert_diag_list(d, want_);                                                           \
    } while (0)

/* Loads the config with its diagnostics, which must be exactly the
 * expected warnings; returns the policy set compiled from it. */
#define LOAD_WARNED(set, config, ...)                                                         \
    do {                                                                                      \
        or_diag diag_;                                                                        \
        or_config *cfg_ = load_with_diags(config, &diag_);                                    \
        if (cfg_ == NULL) {                                                                   \
            print_diags(&diag_);                                                              \
            fail_msg("the config did not load");                                              \
        }                                                                                     \
        DIAGS(&diag_, __VA_ARGS__);                                                           \
        assert_int_equal(diag_.errors, 0);                                                    \
        or_diag_free(&diag_);                                                                 \
        or_diag_init(&diag_);                                                                 \
        (set).cfg = cfg_;                                                                     \
        (set).rbac = or_rbac_compile(cfg_, &diag_);                                           \
        assert_non_null((set).rbac);                                                          \
        assert_int_equal(diag_.count, 0);                                                     \
        or_diag_free(&diag_);                                                                 \
    } while (0)

/* ==== scopes ==== */

/* Istio resources at every scope, then native policies, in one file of
 * several documents (each Istio document starts two lines above its
 * metadata). The workload is shop, labels app=orders, version=v2. */
#define SCOPE_POLICIES                                                                        \
    ISTIO_AUTHZ \
    "metadata: {name: mesh-wide, namespace: istio-system}\n" /* line 3 */ \
    "spec:\n"                                                                                 \
    "  rules: [{from: [{source: {principals: [cluster.local/ns/web/sa/frontend]}}]}]\n"       \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: shop-wide, namespace: shop}\n" /* line 9 */ \
    "spec:\n"                                                                                 \
    "  action: DENY\n"                                                                        \
    "  rules: [{from: [{source: {namespaces: [quarantine]}}]}]\n"                             \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: web-wide, namespace: web}\n" /* line 16 */ \
    "spec: {rules: [{}]}\n"                                                                   \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: orders-only, namespace: shop}\n" /* line 21 */ \
    "spec:\n"                                                                                 \
    "  selector: {matchLabels: {app: orders}}\n"                                              \
    "  rules: [{to: [{operation: {paths: [/orders/*]}}]}]\n"                                  \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: payments-only, namespace: shop}\n" /* line 28 */ \
    "spec:\n"                                                                                 \
    "  selector: {matchLabels: {app: payments}}\n"                                            \
    "  rules: [{}]\n"                                                                         \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: orders-v1, namespace: shop}\n" /* line 35 */ \
    "spec:\n"                                                                                 \
    "  selector: {matchLabels: {app: orders, version: v1}}\n"                                 \
    "  rules: [{}]\n"                                                                         \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: orders-anywhere, namespace: istio-system}\n" /* line 42 */ \
    "spec:\n"                                                                                 \
    "  selector: {matchLabels: {app: orders}}\n"                                              \
    "  rules: [{to: [{operation: {methods: [HEAD]}}]}]\n"                                     \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: cart-anywhere, namespace: istio-system}\n" /* line 49 */ \
    "spec:\n"                                                                                 \
    "  selector: {matchLabels: {app: cart}}\n"                                                \
    "  rules: [{}]\n"                                                                         \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: via-service, namespace: shop}\n" /* line 56 */ \
    "spec:\n"                                                                                 \
    "  targetRef: {kind: Service, group: \"\", name: orders}\n" \
    "  rules: [{}]\n"                                                                         \
    "---\n" \
    ISTIO_AUTHZ \
    "metadata: {name: via-gateway, namespace: shop}\n" /* line 63 */ \
    "spec:\n"                                                                                 \
    "  targetRefs:\n" \
    "    - {kind: Gateway, group: gateway.networking.k8s.io, name: ingress}\n"                \
    "  rules: [{}]\n"                                                                         \
    "---\n" \
    "policies:\n" /* line 69 */ \
    "  - name: native-mesh\n" \
    "    action: allow\n"                                                                     \
    "    rules: [{to: [{paths: [/native/mesh]}]}]\n"                                          \
    "  - name: native-shop\n" \
    "    namespace: shop\n"                                                                   \
    "    action: allow\n"                                                                     \
    "    rules: [{to: [{paths: [/native/shop]}]}]\n"                                          \
    "  - name: native-web\n" /* line 77 */ \
    "    namespace: web\n"                                                                    \
    "    action: allow\n"                                                                     \
    "    rules: [{}]\n"                                                                       \
    "  - name: native-orders\n" \
    "    service: orders\n"                                                                   \
    "    action: allow\n"                                                                     \
    "    rules: [{to: [{paths: [/native/orders]}]}]\n"                                        \
    "  - name: native-payments\n" /* line 85 */ \
    "    service: payments\n"                                                                 \
    "    action: allow\n"                                                                     \
    "    rules: [{}]\n"

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

#define FRONTEND_ISTIO "cluster.local/ns/web/sa/frontend"
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

#define TWO_INBOUND                                                                           \
    "listeners:\n"                                                                            \
    "  - {name: web, mode: inbound, protocol: http, listen: 127.0.0.1:15006, "                \
    "upstream: 127.0.0.1:9000}\n"                                                             \
    "  - {name: grpc, mode: inbound, protocol: tcp, listen: 127.0.0.1:15007, "                \
    "upstream: 127.0.0.1:9001}\n"                                                             \
    "  - {name: out, mode: outbound, protocol: tcp, listen: 127.0.0.1:15001, "                \
    "upstream: 127.0.0.1:7000, peer_identity: \"spiffe://cluster.local/ns/db/sa/pg\"}\n"

#define PA(ns, name, spec) ISTIO_PEER_AUTH "metadata: {name: " name ", namespace: " ns "}\nspec: " spec "\n"

/* The mode of port `port` and the resource that decided it (NULL: none). */
static void expect_mode(const or_config *cfg, uint16_t port, or_mtls_mode mode,
                        const char *decided_by)
{
    const or_peer_auth_config *decided = (const void *)1;
    or_mtls_mode got = or_config_peer_auth_mode(cfg, port, &decided);
    if (got != mode || (decided_by == NULL) != (decided == NULL) ||
        (decided_by != NULL && strcmp(decided->name, decided_by) != 0))
        fail_msg("port %u: expected mode %d by %s, got %d by %s", (unsigned)port, (int)mode,
                 decided_by ? decided_by : "(none)", (int)got, decided ? decided->name : "(none)");
}

static or_config *peer_auth_config(const char *policies, or_diag *diag)
{
    static char config[8192];
    write_file("policies.yaml", policies);
    workload_config(config, sizeof(config), SHOP_ORDERS, TWO_INBOUND, "", "policies.yaml");
    or_config *cfg = load_with_diags(config, diag);
    if (cfg == NULL) {
        print_diags(diag);
        fail_msg("the config did not load");
    }
    return cfg;
}

static void test_peer_auth_precedence(void **state)
{
    (void)state;
    or_diag diag;

    /* Nothing written: STRICT, Outrider's default. */
    or_config *cfg = peer_auth_config("policies: []\n", &diag);
    expect_mode(cfg, 9000, OR_MTLS_STRICT, NULL);
    assert_int_equal(cfg->listeners[0].mtls_effective, OR_MTLS_STRICT);
    assert_int_equal(cfg->listeners[1].mtls_effective, OR_MTLS_STRICT);
    or_config_free(cfg);
    or_diag_free(&diag);

    /* Mesh only. */
    cfg = peer_auth_config(PA("istio-system", "default", "{mtls: {mode: PERMISSIVE}}"), &diag);
    DIAGS(&diag, "$D/policies.yaml:4:21: warning: istio-system/default: spec.mtls.mode: "
                 "PERMISSIVE: traffic where it applies is not protected by mTLS (plaintext is "
                 "accepted)");
    expect_mode(cfg, 9000, OR_MTLS_PERMISSIVE, "istio-system/default");
    assert_int_equal(cfg->listeners[0].mtls_effective, OR_MTLS_PERMISSIVE);
    assert_int_equal(cfg->listeners[2].mtls_effective, OR_MTLS_STRICT); /* outbound */
    or_config_free(cfg);
    or_diag_free(&diag);

    /* Namespace beats mesh; another namespace's and a non-matching
     * selector's do not apply; workload beats namespace; the first of a
     * level wins; portLevelMtls beats the workload's mode for its port. */
    cfg = peer_auth_config(PA("istio-system", "default", "{mtls: {mode: DISABLE}}")
                           "---\n" PA("web", "default", "{mtls: {mode: PERMISSIVE}}")
                           "---\n" PA("shop", "default", "{mtls: {mode: STRICT}}")
                           "---\n" PA("shop", "later", "{mtls: {mode: PERMISSIVE}}")
                           "---\n" PA("shop", "cart", "{selector: {matchLabels: {app: cart}}, "
                                                      "mtls: {mode: DISABLE}}"),
                           &diag);
    assert_int_equal(diag.errors, 0);
    expect_mode(cfg, 9000, OR_MTLS_STRICT, "shop/default");
    expect_mode(cfg, 9001, OR_MTLS_STRICT, "shop/default");
    or_config_free(cfg);
    or_diag_free(&diag);

    cfg = peer_auth_config(PA("istio-system", "default", "{mtls: {mode: STRICT}}")
                           "---\n" PA("shop", "default", "{mtls: {mode: STRICT}}")
                           "---\n" PA("shop", "orders", "\n"
                                                        "  selector: {matchLabels: {app: orders}}\n"
                                                        "  mtls: {mode: STRICT}\n"
                                                        "  portLevelMtls:\n"
                                                        "    9000: {mode: PERMISSIVE}\n"
                                                        "    8080: {mode: DISABLE}"),
                           &diag);
    DIAGS(&diag,
          "$D/policies.yaml:18:18: warning: shop/orders: spec.portLevelMtls.9000.mode: "
          "PERMISSIVE: traffic where it applies is not protected by mTLS (plaintext is accepted)",
          "$D/policies.yaml:19:18: warning: shop/orders: spec.portLevelMtls.8080.mode: DISABLE: "
          "traffic where it applies is not protected by mTLS (plaintext is accepted)");
    expect_mode(cfg, 9000, OR_MTLS_PERMISSIVE, "shop/orders");
    expect_mode(cfg, 9001, OR_MTLS_STRICT, "shop/orders");
    expect_mode(cfg, 8080, OR_MTLS_DISABLE, "shop/orders");
    /* Keyed by the upstream (workload) port, not the listen port. */
    assert_int_equal(cfg->listeners[0].mtls_effective, OR_MTLS_PERMISSIVE);
    assert_int_equal(cfg->listeners[1].mtls_effective, OR_MTLS_STRICT);
    or_config_free(cfg);
    or_diag_free(&diag);
}

static void test_peer_auth_unset_inherits(void **state)
{
    (void)state;
    or_diag diag;
    /* UNSET at the workload and on a port inherits the namespace's mode;
     * an UNSET namespace inherits the mesh's. */
    or_config *cfg =
        peer_auth_config(PA("istio-system", "default", "{mtls: {mode: PERMISSIVE}}")
                         "---\n" PA("shop", "default", "{mtls: {mode: DISABLE}}")
                         "---\n" PA("shop", "orders", "\n"
                                                      "  selector: {matchLabels: {app: orders}}\n"
                                                      "  mtls: {mode: UNSET}\n"
                                                      "  portLevelMtls:\n"
                                                      "    9000: {mode: UNSET}\n"
                                                      "    9001: {mode: STRICT}"),
                         &diag);
    assert_int_equal(diag.errors, 0);
    expect_mode(cfg, 9000, OR_MTLS_DISABLE, "shop/default");
    expect_mode(cfg, 9001, OR_MTLS_STRICT, "shop/orders");
    assert_int_equal(cfg->listeners[0].mtls_effective, OR_MTLS_DISABLE);
    assert_int_equal(cfg->listeners[1].mtls_effective, OR_MTLS_STRICT);
    or_config_free(cfg);
    or_diag_free(&diag);

    cfg = peer_auth_config(PA("istio-system", "default", "{mtls: {mode: PERMISSIVE}}")
                           "---\n" PA("shop", "default", "{mtls: {}}")
                           "---\n" PA("shop", "orders", "{selector: {matchLabels: {app: orders}}}"),
                           &diag);
    assert_int_equal(diag.errors, 0);
    expect_mode(cfg, 9000, OR_MTLS_PERMISSIVE, "istio-system/default");
    or_config_free(cfg);
    or_diag_free(&diag);

    /* Everything UNSET: STRICT, decided by none. */
    cfg = peer_auth_config(PA("istio-system", "default", "{mtls: {mode: UNSET}}")
                           "---\n" PA("shop", "default", "{}"),
                           &diag);
    assert_int_equal(diag.count, 0);
    expect_mode(cfg, 9000, OR_MTLS_STRICT, NULL);
    assert_int_equal(cfg->listeners[0].mtls_effective, OR_MTLS_STRICT);
    or_config_free(cfg);
    or_diag_free(&diag);
}

/* Istio takes a PeerAuthentication in the root namespace as mesh-wide
 * only without a selector; one with a selector is neither mesh- nor
 * workload-level and is ignored (pilot's ComposePeerAuthentication: the
 * workload level is "the one with selector and not in root namespace").
 * It must not loosen the mode of a workload it happens to select. */
static void test_peer_auth_root_selector_ignored(void **state)
{
    (void)state;
    or_diag diag;
    or_config *cfg =
        peer_auth_config(PA("shop", "default", "{mtls: {mode: STRICT}}")
                         "---\n" PA("istio-system", "orders-plaintext",
                                    "{selector: {matchLabels: {app: orders}}, "
                                    "mtls: {mode: DISABLE}}"),
                         &diag);
    assert_int_equal(diag.errors, 0);
    expect_mode(cfg, 9000, OR_MTLS_STRICT, "shop/default");
    assert_int_equal(cfg->listeners[0].mtls_effective, OR_MTLS_STRICT);
    or_config_free(cfg);
    or_diag_free(&diag);
}

/* ==== files ==== */

static void test_multi_document_file(void **state)
{
    (void)state;
    static char config[4096];
    policy_set s;
    write_file("policies.yaml", "# The shop namespace's policies, as kept in git.\n"
                                "policies:\n"                                        /* 2 */
                                "  - name: native-deny\n"
                                "    action: deny\n"
                                "    rules: [{to: [{paths: [/native]}]}]\n"
                                "---\n"                                              /* 6 */
                                ISTIO_AUTHZ                                          /* 7 */
                                "metadata: {name: first, namespace: shop}\n"
                                "spec: {rules: [{to: [{operation: {paths: [/first]}}]}]}\n"
                                "---\n"                                              /* 11 */
                                "apiVersion: v1\n"                                   /* 12 */
                                "kind: ConfigMap\n"
                                "metadata: {name: orders-settings, namespace: shop}\n"
                                "data: {LOG_LEVEL: debug}\n"
                                "---\n"                                              /* 16 */
                                "apiVersion: security.istio.io/v1\n"                 /* 17 */
                                "kind: RequestAuthentication\n"
                                "metadata: {name: jwt, namespace: shop}\n"
                                "spec: {jwtRules: [{issuer: https://issuer.example}]}\n"
                                "---\n"                                              /* 21 */
                                "apiVersion: security.istio.io/v1alpha1\n"           /* 22 */
                                "kind: AuthorizationPolicy\n"
                                "metadata: {name: ancient, namespace: shop}\n"
                                "spec: {}\n"
                                "---\n"                                              /* 26 */
                                "apiVersion: security.istio.io/v1beta1\n"            /* 27 */
                                "kind: AuthorizationPolicy\n"
                                "metadata: {name: second, namespace: shop}\n"
                                "spec: {rules: [{to: [{operation: {paths: [/second]}}]}]}\n"
                                "---\n"
                                "...\n");
    workload_config(config, sizeof(config), SHOP_ORDERS, HTTP_INBOUND, "", "policies.yaml");
    LOAD_WARNED(s, config,
                "$D/policies.yaml:12:1: warning: skipped: v1 ConfigMap is not an "
                "AuthorizationPolicy or PeerAuthentication of security.istio.io/v1 or v1beta1",
                "$D/policies.yaml:17:1: warning: skipped: security.istio.io/v1 "
                "RequestAuthentication is not an AuthorizationPolicy or PeerAuthentication of "
                "security.istio.io/v1 or v1beta1",
                "$D/policies.yaml:22:1: warning: skipped: security.istio.io/v1alpha1 "
                "AuthorizationPolicy is not an AuthorizationPolicy or PeerAuthentication of "
                "security.istio.io/v1 or v1beta1");
    APPLIED(&s, "native-deny", "shop/first", "shop/second");
    assert_int_equal(s.cfg->rbac.nistio, 2);
    expect_policy(&s, "principal=none path=/native", false, "native-deny", 0);
    expect_policy(&s, "principal=none path=/second", true, "shop/second", 0);
    free_set(&s);
}

static void test_kind_list(void **state)
{
    (void)state;
    static char config[4096];
    policy_set s;
    /* What `kubectl get authorizationpolicies,peerauthentications,cm -A -o
     * yaml` writes. */
    write_file("policies.yaml", "apiVersion: v1\n"
                                "items:\n"
                                "- apiVersion: security.istio.io/v1\n"          /* 3 */
                                "  kind: AuthorizationPolicy\n"
                                "  metadata:\n"
                                "    creationTimestamp: \"2026-01-01T00:00:00Z\"\n"
                                "    generation: 1\n"
                                "    name: allow-frontend\n"
                                "    namespace: shop\n"
                                "    resourceVersion: \"4711\"\n"
                                "    uid: 0f4b2c1e-0000-4000-8000-000000000001\n"
                                "  spec:\n"
                                "    rules:\n"
                                "    - from:\n"
                                "      - source:\n"
                                "          principals: [\"" FRONTEND_ISTIO "\"]\n"
                                "- apiVersion: security.istio.io/v1\n"          /* 17 */
                                "  kind: PeerAuthentication\n"
                                "  metadata: {name: default, namespace: shop}\n"
                                "  spec: {mtls: {mode: STRICT}}\n"
                                "- apiVersion: v1\n"                            /* 21 */
                                "  kind: ConfigMap\n"
                                "  metadata: {name: istio-ca-root-cert, namespace: shop}\n"
                                "  data: {root-cert.pem: x}\n"
                                "- apiVersion: security.istio.io/v1beta1\n"     /* 25 */
                                "  kind: AuthorizationPolicy\n"
                                "  metadata: {name: deny-ops, namespace: istio-system}\n"
                                "  spec:\n"
                                "    action: DENY\n"
                                "    rules: [{from: [{source: {namespaces: [ops]}}]}]\n"
                                "kind: List\n"
                                "metadata: {resourceVersion: \"\"}\n");
    workload_config(config, sizeof(config), SHOP_ORDERS, HTTP_INBOUND, "", "policies.yaml");
    LOAD_WARNED(s, config,
                "$D/policies.yaml:21:3: warning: skipped: v1 ConfigMap is not an "
                "AuthorizationPolicy or PeerAuthentication of security.istio.io/v1 or v1beta1");
    APPLIED(&s, "shop/allow-frontend", "istio-system/deny-ops");
    assert_int_equal(s.cfg->rbac.npeer_auths, 1);
    assert_string_equal(s.cfg->rbac.peer_auths[0].name, "shop/default");
    expect_policy(&s, "principal=" FRONTEND_ISTIO, true, "shop/allow-frontend", 0);
    expect_policy(&s, "principal=cluster.local/ns/ops/sa/bot", false, "istio-system/deny-ops", 0);
    expect_basis(&s, "principal=cluster.local/ns/web/sa/other", false,
                 OR_RBAC_BY_NO_ALLOW_MATCH);
    char *text = explain_spec(&s, "principal=" FRONTEND_ISTIO);
    assert_line(text, "decision: ALLOW by policy \"shop/allow-frontend\" rule 0 (action allow, "
                      "$D/policies.yaml:3:3)");
    free(text);
    free_set(&s);
}

static void test_policy_directory(void **state)
{
    (void)state;
    static char config[4096];
    char dir[PATH_MAX + 32];
    policy_set s;
    snprintf(dir, sizeof(dir), "%s/policies.d", test_dir);
    remove_tree(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    /* Written out of order: the loader sorts by name. */
    write_file("policies.d/30-native.yaml", "policies:\n"
                                            "  - name: native-last\n"
                                            "    action: allow\n"
                                            "    rules: [{to: [{paths: [/n]}]}]\n");
    write_file("policies.d/10-mesh.yml", ISTIO_AUTHZ
                                         "metadata: {name: deny-debug, namespace: istio-system}\n"
                                         "spec: {action: DENY, rules: [{to: [{operation: "
                                         "{paths: [\"/debug/*\"]}}]}]}\n");
    write_file("policies.d/20-shop.yaml", ISTIO_AUTHZ
                                          "metadata: {name: allow-all, namespace: shop}\n"
                                          "spec: {rules: [{}]}\n"
                                          "---\n" ISTIO_AUTHZ
                                          "metadata: {name: deny-admin, namespace: shop}\n"
                                          "spec: {action: DENY, rules: [{to: [{operation: "
                                          "{paths: [\"/admin\"]}}]}]}\n"
                                          "---\n"
                                          "apiVersion: v1\n"
                                          "kind: Service\n"
                                          "metadata: {name: orders, namespace: shop}\n");
    write_file("policies.d/README.md", "not yaml: [\n");
    write_file("policies.d/.hidden.yaml", "not yaml: [\n");
    write_file("policies.d/15-notes.txt", "not yaml: [\n");
    workload_config(config, sizeof(config), SHOP_ORDERS, HTTP_INBOUND, "", "policies.d");
    LOAD_WARNED(s, config,
                "$D/policies.d/20-shop.yaml:11:1: warning: skipped: v1 Service is not an "
                "AuthorizationPolicy or PeerAuthentication of security.istio.io/v1 or v1beta1");
    APPLIED(&s, "istio-system/deny-debug", "shop/allow-all", "shop/deny-admin", "native-last");
    char want[PATH_MAX + 64];
    snprintf(want, sizeof(want), "%s/policies.d/10-mesh.yml", test_dir);
    assert_string_equal(s.cfg->rbac.policies[0].pos.file, want);
    expect_policy(&s, "principal=none path=/debug/pprof", false, "istio-system/deny-debug", 0);
    expect_policy(&s, "principal=none path=/admin", false, "shop/deny-admin", 0);
    expect_policy(&s, "principal=none path=/n", true, "shop/allow-all", 0);
    char *text = explain_spec(&s, "principal=none path=/admin");
    assert_line(text, "decision: DENY by policy \"shop/deny-admin\" rule 0 (action deny, "
                      "$D/policies.d/20-shop.yaml:6:1)");
    assert_line(text, "  deny  \"istio-system/deny-debug\" at $D/policies.d/10-mesh.yml:1:1: no "
                      "match");
    free(text);
    free_set(&s);
}

/* ==== errors inside Istio documents ==== */

#define ISTIO_CONFIG                                                                          \
    WORKLOAD_HEAD SHOP_ORDERS HTTP_INBOUND "rbac:\n  policies: policies.yaml\n"

/* Writes the policies and the config in a fresh case directory; the load
 * must fail with exactly the expected diagnostics, `errors` of them errors. */
static void expect_istio_diags(const char *name, const char *policies, size_t errors,
                               const char *const *expected)
{
    test_case c;
    case_init(&c, name);
    case_write(&c, "policies.yaml", policies);
    case_write(&c, "config.yaml", ISTIO_CONFIG);
    or_config *cfg = or_config_load(c.config, &c.diag);
    if (cfg != NULL) {
        or_config_free(cfg);
        print_diags(&c.diag);
        fail_msg("%s: the config loaded although it should not", name);
    }
    assert_diags(&c, expected);
    assert_int_equal(c.diag.errors, errors);
    or_diag_free(&c.diag);
}

#define ISTIO_BAD(name, policies, errors, ...)                                                \
    do {                                                                                      \
        const char *const expected_[] = {__VA_ARGS__, NULL};                                  \
        expect_istio_diags(name, policies, errors, expected_);                                \
    } while (0)

static void test_errors_actions(void **state)
{
    (void)state;
    ISTIO_BAD("istio_custom",
              ISTIO_AUTHZ "metadata: {name: ext-authz, namespace: shop}\n"
                          "spec:\n"
                          "  action: CUSTOM\n"
                          "  provider:\n"
                          "    name: opa\n"
                          "  rules: [{to: [{operation: {paths: [\"/admin/*\"]}}]}]\n",
              2,
              "$D/policies.yaml:5:11: error: spec.action: CUSTOM delegates to an external "
              "authorizer, which Outrider does not have; write ALLOW or DENY rules instead",
              "$D/policies.yaml:7:5: error: spec.provider: a provider goes with action CUSTOM, "
              "which Outrider does not support");
    ISTIO_BAD("istio_bad_action",
              ISTIO_AUTHZ "metadata: {name: p, namespace: shop}\n"
                          "spec: {action: allow}\n",
              1,
              "$D/policies.yaml:4:16: error: spec.action: expected \"ALLOW\", \"DENY\", "
              "\"AUDIT\" or \"CUSTOM\", got \"allow\"");
    ISTIO_BAD("istio_unknown_spec_key",
              ISTIO_AUTHZ "metadata: {name: p, namespace: shop}\n"
                          "spec:\n"
                          "  action: ALLOW\n"
                          "  rule: [{}]\n",
              1, "$D/policies.yaml:6:3: error: unknown key 'rule' in spec (did you mean 'rules'?)");
    ISTIO_BAD("istio_selector_and_target_ref",
              ISTIO_AUTHZ "metadata: {name: both, namespace: shop}\n"
                          "spec:\n"
                          "  selector: {matchLabels: {app: orders}}\n"
                          "  targetRef: {kind: Service, name: orders}\n"
                          "  rules: [{}]\n",
              1,
              "$D/policies.yaml:6:14: warning: shop/both: spec.targetRef binds the policy to a "
              "Gateway or Service, not to a sidecar: it does not apply here",
              "$D/policies.yaml:6:14: error: shop/both: selector and targetRef cannot both be "
              "set");
}

static void test_errors_fields(void **state)
{
    (void)state;
    ISTIO_BAD("istio_path_template",
              ISTIO_AUTHZ "metadata: {name: p, namespace: shop}\n"
                          "spec:\n"
                          "  rules:\n"
                          "  - to:\n"
                          "    - operation:\n"
                          "        paths: [\"/api/*\", \"/orders/{*}/items\", \"/files/{**}\"]\n",
              2,
              "$D/policies.yaml:8:27: error: spec.rules[0].to[0].operation.paths[1]: path "
              "templates such as {*} and {**} are not supported; write a prefix (\"/api/*\") "
              "or suffix pattern, got \"/orders/{*}/items\"",
              "$D/policies.yaml:8:48: error: spec.rules[0].to[0].operation.paths[2]: path "
              "templates such as {*} and {**} are not supported; write a prefix (\"/api/*\") "
              "or suffix pattern, got \"/files/{**}\"");
    ISTIO_BAD("istio_bad_principal",
              ISTIO_AUTHZ "metadata: {name: p, namespace: shop}\n"
                          "spec:\n"
                          "  rules:\n"
                          "  - from:\n"
                          "    - source:\n"
                          "        principals: [\"cluster.local/ns/web/sa/frontend\", \"Frontend\", "
                          "\"*web*\"]\n",
              2,
              "$D/policies.yaml:8:58: error: spec.rules[0].from[0].source.principals[1]: "
              "invalid SPIFFE ID \"spiffe://Frontend\": trust domain contains an upper-case "
              "letter",
              "$D/policies.yaml:8:70: error: spec.rules[0].from[0].source.principals[2]: '*' "
              "may only stand alone or come first or last, got \"*web*\"");
    ISTIO_BAD("istio_service_accounts",
              ISTIO_AUTHZ "metadata: {name: p, namespace: shop}\n"
                          "spec:\n"
                          "  rules:\n"
                          "  - from:\n"
                          "    - source: {serviceAccounts: [web/frontend], ipBlocks: [10.0.0.1/8]}\n",
              2,
              "$D/policies.yaml:7:33: error: spec.rules[0].from[0].source.serviceAccounts: not "
              "supported by Outrider; write principals (SPIFFE IDs) instead",
              "$D/policies.yaml:7:60: error: spec.rules[0].from[0].source.ipBlocks[0]: invalid "
              "CIDR block \"10.0.0.1/8\": host bits are set below the prefix length (write the "
              "network address of the block)");
    ISTIO_BAD("istio_bad_when",
              ISTIO_AUTHZ "metadata: {name: p, namespace: shop}\n"
                          "spec:\n"
                          "  rules:\n"
                          "  - when:\n"
                          "    - key: request.regex.headers[x-a]\n"
                          "      values: [a]\n"
                          "    - key: source.namespace\n"
                          "    - {key: destination.port, values: [\"http\"]}\n"
                          "    - {key: source.ip, values: [\"10.0.0.0/8\"], other: 1}\n",
              4,
              "$D/policies.yaml:7:12: error: spec.rules[0].when[0].key: unsupported when key "
              "\"request.regex.headers[x-a]\"; Outrider reads request.headers[NAME], source.ip, "
              "remote.ip, source.namespace, source.principal, destination.port, connection.sni "
              "and (in DENY) request.auth.*",
              "$D/policies.yaml:9:7: error: spec.rules[0].when[1]: a condition needs values or "
              "notValues",
              "$D/policies.yaml:10:40: error: spec.rules[0].when[2].values[0]: expected a whole "
              "number from 1 to 65535, got \"http\"",
              "$D/policies.yaml:11:7: error: spec.rules[0].when[3]: a condition has only key, "
              "values and notValues");
    ISTIO_BAD("istio_jwt_in_allow",
              ISTIO_AUTHZ "metadata: {name: jwt-users, namespace: shop}\n"
                          "spec:\n"
                          "  rules:\n"
                          "  - from:\n"
                          "    - source: {requestPrincipals: [\"issuer.example/*\"]}\n"
                          "---\n" ISTIO_AUTHZ
                          "metadata: {name: audit-claims, namespace: shop}\n"
                          "spec:\n"
                          "  action: AUDIT\n"
                          "  rules:\n"
                          "  - when:\n"
                          "    - key: request.auth.claims[iss]\n"
                          "      values: [issuer.example]\n",
              2,
              "$D/policies.yaml:7:35: error: shop/jwt-users: rules[0]: requestPrincipals need a "
              "JWT, which Outrider does not validate; in an ALLOW or AUDIT policy they would "
              "never match, so the policy is refused (in DENY they match, failing closed)",
              "$D/policies.yaml:16:7: error: shop/audit-claims: rules[0]: request.auth.* needs "
              "a JWT, which Outrider does not validate; refused in ALLOW and AUDIT (in DENY it "
              "matches, failing closed)");
}

static void test_errors_peer_auth(void **state)
{
    (void)state;
    ISTIO_BAD("istio_port_level_without_selector",
              PA("shop", "ports", "\n"
                                  "  mtls: {mode: STRICT}\n"
                                  "  portLevelMtls:\n"
                                  "    9000: {mode: STRICT}"),
              1,
              "$D/policies.yaml:1:1: error: shop/ports: portLevelMtls needs a selector (Istio "
              "rejects it in a namespace or mesh policy)");
    ISTIO_BAD("istio_bad_mtls",
              PA("shop", "modes", "\n"
                                  "  selector: {matchLabels: {app: orders}}\n"
                                  "  mtls: {mode: strict, extra: 1}\n"
                                  "  portLevelMtls:\n"
                                  "    http: {mode: STRICT}"),
              3,
              "$D/policies.yaml:6:9: error: spec.mtls: expected only `mode`",
              "$D/policies.yaml:6:16: error: spec.mtls.mode: expected \"UNSET\", \"STRICT\", "
              "\"PERMISSIVE\" or \"DISABLE\", got \"strict\"",
              "$D/policies.yaml:8:5: error: spec.portLevelMtls: expected a whole number from 1 to "
              "65535, got \"http\"");
}

/* metadata.name and metadata.namespace are required: the namespace decides
 * where a resource applies. A document without them is an error, reported
 * with its position, for both kinds. */
static void test_errors_metadata(void **state)
{
    (void)state;
    ISTIO_BAD("istio_no_namespace",
              ISTIO_AUTHZ "metadata:\n"
                          "  name: allow-frontend\n"
                          "spec: {rules: [{}]}\n",
              1,
              "$D/policies.yaml:4:3: error: AuthorizationPolicy: metadata.name and "
              "metadata.namespace are required (the namespace decides where an Istio resource "
              "applies)");
    ISTIO_BAD("istio_no_metadata",
              ISTIO_PEER_AUTH "spec: {mtls: {mode: STRICT}}\n", 1,
              "$D/policies.yaml:1:1: error: PeerAuthentication: metadata.name and "
              "metadata.namespace are required (the namespace decides where an Istio resource "
              "applies)");
    ISTIO_BAD("istio_bad_namespace",
              ISTIO_AUTHZ "metadata: {name: p, namespace: Shop_1}\n"
                          "spec: {rules: [{}]}\n",
              1,
              "$D/policies.yaml:3:32: error: metadata.namespace: expected a Kubernetes "
              "namespace (lower-case letters, digits and '-', at most 63), got \"Shop_1\"");
}

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
        cmocka_unit_test(test_peer_auth_precedence),
        cmocka_unit_test(test_peer_auth_unset_inherits),
        cmocka_unit_test(test_peer_auth_root_selector_ignored),
        cmocka_unit_test(test_multi_document_file),
        cmocka_unit_test(test_kind_list),
        cmocka_unit_test(test_policy_directory),
        cmocka_unit_test(test_errors_actions),
        cmocka_unit_test(test_errors_fields),
        cmocka_unit_test(test_errors_peer_auth),
        cmocka_unit_test(test_errors_metadata),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}
