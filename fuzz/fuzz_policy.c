/*
 * Fuzz target: the policy compiler and evaluator (include/outrider/rbac.h).
 *
 * The first input byte picks the setting: bit 0 rbac.default allow or deny,
 * bit 1 whether the policies come from a policies file next to the config
 * (the rest of the input is that file, `policies:` and a list) or inline
 * (the rest follows `  policies:` in the config, so a block list indented by
 * four or a flow list), bit 2 an http or a tcp listener. A policies file may
 * hold Istio resources (several YAML documents); the workload is namespace
 * shop with labels app=orders, version=v1, so their scopes come into play. The config is
 * loaded from the scratch directory of fuzz_files.h; when it loads, the
 * policies are compiled, linted, and a few fixed requests are evaluated
 * (HTTP with principal, method, path, host and a header; HTTP with no
 * principal; TCP) and explained into memory.
 *
 * Beyond memory and UB errors, it checks the compiler's and evaluator's
 * contract: compiling a loaded config fails only with an error reported;
 * a decision is the same when asked twice, names a policy exactly when it
 * gives its index, and its indexes and names agree with the compiled set.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "fuzz_files.h"
#include "outrider/buf.h"
#include "outrider/config.h"
#include "outrider/diag.h"
#include "outrider/rbac.h"

#define HEAD                                                                                  \
    "service: payments\n"                                                                     \
    "trust_domain: cluster.local\n"                                                           \
    "namespace: shop\n"                                                                       \
    "labels: {app: orders, version: v1}\n"                                                    \
    "identity: {cert: cert.pem, key: key.pem, bundle: bundle.pem}\n"                          \
    "listeners:\n"
#define HTTP_LISTENER                                                                         \
    "  - {name: inbound, mode: inbound, protocol: http, listen: 127.0.0.1:8080, "           \
    "upstream: 127.0.0.1:9000}\n"
#define TCP_LISTENER                                                                          \
    "  - {name: db, mode: inbound, protocol: tcp, listen: 127.0.0.1:15432, "                  \
    "upstream: 127.0.0.1:5432}\n"

static const char *lookup_header(void *ctx, const char *name, size_t len, size_t *value_len)
{
    (void)ctx;
    static const char *const headers[][2] = {{"x-tenant", "acme"}, {"user-agent", "curl/8"}};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        if (strlen(headers[i][0]) == len && memcmp(headers[i][0], name, len) == 0) {
            *value_len = strlen(headers[i][1]);
            return headers[i][1];
        }
    }
    return NULL;
}

/* Writes the config (and the policies file) for this input. */
static void write_config(uint8_t ctl, const uint8_t *rest, size_t len)
{
    const char *listener = ctl & 4 ? TCP_LISTENER : HTTP_LISTENER;
    const char *deflt = ctl & 1 ? "rbac:\n  default: allow\n" : "rbac:\n  default: deny\n";
    or_buf text = {0};
    int r = or_buf_append_str(&text, HEAD) | or_buf_append_str(&text, listener) |
            or_buf_append_str(&text, deflt);
    if (ctl & 2) {
        r |= or_buf_append_str(&text, "  policies: policies.yaml\n");
        fuzz_write_input("policies.yaml", rest, len);
    } else {
        r |= or_buf_append_str(&text, "  policies:") | or_buf_append(&text, rest, len);
        /* Inline text may still name the file: it holds the same every time. */
        fuzz_write_file("policies.yaml", fuzz_policies, sizeof fuzz_policies - 1);
    }
    FUZZ_REQUIRE(r == 0);
    fuzz_write_input("config.yaml", (const uint8_t *)text.data, text.len);
    or_buf_free(&text);
}

static bool same_decision(const or_rbac_decision *a, const or_rbac_decision *b)
{
    return a->allowed == b->allowed && a->policy == b->policy && a->rule == b->rule &&
           a->dry_run_policy == b->dry_run_policy &&
           a->dry_run_would_allow == b->dry_run_would_allow &&
           a->audit_policy == b->audit_policy && a->policy_index == b->policy_index &&
           a->dry_run_index == b->dry_run_index && a->audit_index == b->audit_index;
}

static void require_decision(const or_rbac *rbac, const or_rbac_request *req)
{
    or_rbac_decision d, again;
    or_rbac_evaluate(rbac, req, &d);
    or_rbac_evaluate(rbac, req, &again);
    FUZZ_REQUIRE(same_decision(&d, &again));
    size_t n = or_rbac_policy_count(rbac);
    FUZZ_REQUIRE((d.policy == NULL) == (d.policy_index < 0));
    FUZZ_REQUIRE(d.policy_index < (int)n && d.dry_run_index < (int)n && d.audit_index < (int)n);
    FUZZ_REQUIRE(d.policy == NULL ? d.rule == -1 : d.rule >= 0);
    if (d.policy != NULL)
        FUZZ_REQUIRE(strcmp(d.policy, or_rbac_policy_name(rbac, (size_t)d.policy_index)) == 0);
    FUZZ_REQUIRE((d.dry_run_policy == NULL) == (d.dry_run_index < 0));
    if (d.dry_run_policy != NULL)
        FUZZ_REQUIRE(strcmp(d.dry_run_policy,
                            or_rbac_policy_name(rbac, (size_t)d.dry_run_index)) == 0);
    FUZZ_REQUIRE((d.audit_policy == NULL) == (d.audit_index < 0));
    if (d.audit_policy != NULL)
        FUZZ_REQUIRE(strcmp(d.audit_policy, or_rbac_policy_name(rbac, (size_t)d.audit_index)) ==
                     0);

    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    FUZZ_REQUIRE(out != NULL);
    or_rbac_explain(rbac, req, out);
    FUZZ_REQUIRE(fclose(out) == 0);
    free(text);
}

static void evaluate_requests(const or_rbac *rbac)
{
    struct sockaddr_in source = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a010203)};
    static const char path[] = "/api/orders/1";
    or_rbac_request http = {
        .principal = "spiffe://cluster.local/ns/web/sa/frontend",
        .source = (const struct sockaddr *)&source,
        .port = 8080,
        .method = "GET",
        .method_len = 3,
        .path = path,
        .path_len = sizeof path - 1,
        .host = "payments",
        .host_len = 8,
        .header = lookup_header,
    };
    require_decision(rbac, &http);
    or_rbac_request anonymous = http;
    anonymous.principal = NULL;
    anonymous.method = "DELETE";
    anonymous.method_len = 6;
    anonymous.host = NULL;
    anonymous.host_len = 0;
    require_decision(rbac, &anonymous);
    or_rbac_request tcp = {
        .principal = "spiffe://cluster.local/ns/shop/sa/orders",
        .source = (const struct sockaddr *)&source,
        .port = 15432,
        .l4 = true,
    };
    require_decision(rbac, &tcp);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    fuzz_scratch_dir();
    write_config(data[0], data + 1, size - 1);
    char path[PATH_MAX + 64];
    fuzz_path(path, sizeof path, "config.yaml");
    or_diag diag;
    or_diag_init(&diag);
    or_config *cfg = or_config_load(path, &diag);
    if (cfg != NULL) {
        or_rbac *rbac = or_rbac_compile(cfg, &diag);
        FUZZ_REQUIRE(rbac != NULL || diag.errors > 0);
        if (rbac != NULL) {
            for (size_t i = 0; i < or_rbac_policy_count(rbac); i++)
                FUZZ_REQUIRE(or_rbac_policy_name(rbac, i) != NULL);
            or_rbac_lint(cfg, &diag);
            evaluate_requests(rbac);
            or_rbac_free(rbac);
        }
        or_config_free(cfg);
    }
    or_diag_free(&diag);
    return 0;
}
