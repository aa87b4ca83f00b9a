/*
 * istio_fixture: what test_rbac_istio.c and test_rbac_conformance.c share,
 * on top of rbac_fixture.h.
 *
 * Requests are written as a compact spec, the same one the conformance
 * table of docs/rbac.md uses: space-separated tokens
 *
 *   principal=ID     the peer's identity: Istio's "cluster.local/ns/x/sa/y"
 *                    (spiffe:// is prepended), a full "spiffe://..." ID, or
 *                    "none" (unauthenticated, the default)
 *   method=M         HTTP method (default GET)
 *   path=P           request path (default /)
 *   host=H           Host header (default: none)
 *   port=N           destination port (default 8080)
 *   ip=A             peer address (default 10.1.2.3)
 *   header:NAME=V    a request header (repeatable; the name is lower-cased)
 *   sni=NAME         the TLS server name the peer sent
 *   tcp              a connection on a tcp listener: no HTTP fields
 *
 * A workload config (service orders, trust domain cluster.local, the empty
 * identity files of rbac_fixture.h) is assembled from the lines that place
 * it (namespace, labels), its listeners and its rbac section, so each case
 * writes only what it tests. Istio documents are written in full, as an
 * operator keeps them.
 */
#ifndef OUTRIDER_TEST_ISTIO_FIXTURE_H
#define OUTRIDER_TEST_ISTIO_FIXTURE_H

#include "rbac_fixture.h"

#include <ctype.h>

#define WORKLOAD_HEAD                                                                         \
    "service: orders\n"                                                                       \
    "trust_domain: cluster.local\n"                                                           \
    "identity: {cert: cert.pem, key: key.pem, bundle: bundle.pem}\n"
/* The workload of most cases: namespace shop, labels app=orders, version=v2. */
#define SHOP_ORDERS "namespace: shop\nlabels: {app: orders, version: v2}\n"

/* A request built from a spec; the strings point into `text`. */
typedef struct {
    test_request t;
    char text[1024];
    char principal[512];
} spec_request;

/* Parses `spec` into r; fails the test on an unknown token. */
static inline void spec_parse(spec_request *r, const char *spec)
{
    memset(r, 0, sizeof(*r));
    if (snprintf(r->text, sizeof(r->text), "%s", spec) >= (int)sizeof(r->text))
        fail_msg("request spec too long: %s", spec);
    test_request *t = &r->t;
    set_ip(t, "10.1.2.3");
    t->req.port = 8080;
    t->req.header = lookup_header;
    t->req.header_ctx = t;
    const char *method = "GET", *path = "/";
    char *save = NULL;
    for (char *tok = strtok_r(r->text, " \t", &save); tok != NULL;
         tok = strtok_r(NULL, " \t", &save)) {
        char *eq = strchr(tok, '=');
        if (strcmp(tok, "tcp") == 0) {
            t->req.l4 = true;
            continue;
        }
        if (eq == NULL)
            fail_msg("request spec token without '=': %s", tok);
        *eq = '\0';
        const char *key = tok, *value = eq + 1;
        if (strcmp(key, "principal") == 0) {
            if (strcmp(value, "none") == 0)
                t->req.principal = NULL;
            else {
                snprintf(r->principal, sizeof(r->principal), "%s%s",
                         strncmp(value, "spiffe://", 9) == 0 ? "" : "spiffe://", value);
                t->req.principal = r->principal;
            }
        } else if (strcmp(key, "method") == 0) {
            method = value;
        } else if (strcmp(key, "path") == 0) {
            path = value;
        } else if (strcmp(key, "host") == 0) {
            set_host(t, value);
        } else if (strcmp(key, "port") == 0) {
            t->req.port = (uint16_t)atoi(value);
        } else if (strcmp(key, "ip") == 0) {
            set_ip(t, value);
        } else if (strcmp(key, "sni") == 0) {
            t->req.sni = value;
            t->req.sni_len = strlen(value);
        } else if (strncmp(key, "header:", 7) == 0) {
            if (t->nheaders == sizeof(t->headers) / sizeof(t->headers[0]))
                fail_msg("too many headers in %s", spec);
            for (char *p = tok + 7; *p; p++)
                *p = (char)tolower((unsigned char)*p);
            add_header(t, key + 7, value);
        } else {
            fail_msg("unknown request spec key %s", key);
        }
    }
    if (!t->req.l4) {
        t->req.method = method;
        t->req.method_len = strlen(method);
        t->req.path = path;
        t->req.path_len = strlen(path);
    } else {
        t->req.header = NULL;
    }
}

static inline or_rbac_decision decide_spec(const policy_set *s, const char *spec)
{
    spec_request r;
    spec_parse(&r, spec);
    return decide(s, &r.t);
}

/* ---- configs ---- */

/* The config text: WORKLOAD_HEAD, `workload` (namespace, labels), the
 * listeners, then `rbac:` with `rbac_lines` (default, root_namespace) and
 * `policies: <policies>`. */
static inline void workload_config(char *out, size_t len, const char *workload,
                                   const char *listeners, const char *rbac_lines,
                                   const char *policies)
{
    int n = snprintf(out, len, WORKLOAD_HEAD "%s%srbac:\n%s  policies: %s\n", workload,
                     listeners, rbac_lines, policies);
    if (n < 0 || (size_t)n >= len)
        fail_msg("config too long");
}

/* Writes the policies to policies.yaml, the config naming it, and loads
 * and compiles them (no diagnostic at compile time). */
static inline policy_set istio_set_with(const char *workload, const char *listeners,
                                        const char *rbac_lines, const char *policies)
{
    static char config[8192];
    write_file("policies.yaml", policies);
    workload_config(config, sizeof(config), workload, listeners, rbac_lines, "policies.yaml");
    return load_set(config);
}

/* The common case: workload shop/orders, one http listener, no rbac.default. */
static inline policy_set istio_set(const char *policies)
{
    return istio_set_with(SHOP_ORDERS, HTTP_INBOUND, "", policies);
}

/* Loads config.yaml from the fixture directory, keeping every diagnostic
 * (the caller frees diag); returns the config or NULL. */
static inline or_config *load_with_diags(const char *config, or_diag *diag)
{
    or_diag_init(diag);
    write_file("config.yaml", config);
    return or_config_load(config_path, diag);
}

#endif
