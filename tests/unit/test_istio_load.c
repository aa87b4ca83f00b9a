/*
 * Unit tests for loading Istio resources (config_istio.c, config_scope.c):
 *
 * - PeerAuthentication precedence (workload > namespace > mesh, UNSET
 *   inheriting, portLevelMtls keyed by the upstream port, the first of a
 *   level winning, a root-namespace selector ignored) and the mode each
 *   inbound listener ends up with;
 * - files: several documents in one file, `kind: List`, a directory read in
 *   name order, other kinds skipped with a warning;
 * - errors inside Istio documents, as exact file:line:column messages.
 *
 * Evaluation (scopes, fields, decision order) is in test_rbac_istio.c.
 */
#include "istio_checks.h"

static int group_setup(void **state)
{
    (void)state;
    return fixture_setup("test_istio_load");
}

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
