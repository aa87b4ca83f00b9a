/*
 * istio_checks: assertions shared by the Istio unit tests (test_rbac_istio.c,
 * test_istio_load.c): a decision and its basis for a compact request spec,
 * the policies that applied, explain's lines, and exact diag lists.
 */
#ifndef OUTRIDER_TEST_ISTIO_CHECKS_H
#define OUTRIDER_TEST_ISTIO_CHECKS_H

#include "istio_fixture.h"
#include "config_fixture.h"


#define FRONTEND_ISTIO "cluster.local/ns/web/sa/frontend"
#define ISTIO_AUTHZ "apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\n"
#define ISTIO_PEER_AUTH "apiVersion: security.istio.io/v1beta1\nkind: PeerAuthentication\n"

/* A decision made by a policy: allowed or not, by `policy` rule `rule`. */
static inline void expect_policy(const policy_set *s, const char *spec, bool allowed,
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
static inline void expect_basis(const policy_set *s, const char *spec, bool allowed,
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
static inline void assert_applied(const policy_set *s, const char *const *names)
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
static inline char *explain_spec(const policy_set *s, const char *spec)
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
static inline void assert_line(const char *text, const char *pattern)
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
static inline void assert_diag_list(const or_diag *d, const char *const *expected)
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

#endif
