/*
 * rbac_fixture: what test_rbac.c and test_rbac_report.c share.
 *
 * Every policy set is written as YAML into a directory of its own under
 * OUTRIDER_TEST_TMP and loaded with the real loader (or_config_load), so the
 * tests exercise the inputs an operator writes. The identity files the
 * loader requires exist and are empty: nothing here loads them. Configs are
 * HEAD (three lines), a listeners block, then `rbac:` with the policies, so
 * positions in expectations can be read off the text. The DOC_* texts are
 * the examples of docs/rbac.md, verbatim (except the identity paths).
 */
#ifndef OUTRIDER_TEST_RBAC_FIXTURE_H
#define OUTRIDER_TEST_RBAC_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tmp_fixture.h"

#include "outrider/config.h"
#include "outrider/explain.h"
#include "outrider/rbac.h"

#define HEAD                                                                                  \
    "service: payments\n"                                                                     \
    "trust_domain: cluster.local\n"                                                           \
    "identity: {cert: cert.pem, key: key.pem, bundle: bundle.pem}\n"
#define HTTP_INBOUND                                                                          \
    "listeners:\n"                                                                            \
    "  - {name: inbound, mode: inbound, protocol: http, listen: 127.0.0.1:8080, "          \
    "upstream: 127.0.0.1:9000}\n"
#define TCP_INBOUND                                                                           \
    "listeners:\n"                                                                            \
    "  - {name: db, mode: inbound, protocol: tcp, listen: 127.0.0.1:15432, "                 \
    "upstream: 127.0.0.1:5432}\n"
#define DENY_BY_DEFAULT "rbac:\n  default: deny\n  policies:\n"
#define ALLOW_BY_DEFAULT "rbac:\n  default: allow\n  policies:\n"

#define FRONTEND "spiffe://cluster.local/ns/web/sa/frontend"
#define OPS_BOT "spiffe://cluster.local/ns/ops/sa/bot"
#define ORDERS "spiffe://cluster.local/ns/shop/sa/orders"

static char test_dir[PATH_MAX];
static char config_path[PATH_MAX + 32];

/* ---- files ---- */

static inline void write_file(const char *name, const char *content)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    write_text_file(path, content);
}

/* Makes an empty directory OUTRIDER_TEST_TMP/<name> holding empty identity
 * files; returns 0 or -1 (a cmocka group setup result). */
static inline int fixture_setup(const char *name)
{
    const char *tmp = getenv("OUTRIDER_TEST_TMP");
    snprintf(test_dir, sizeof(test_dir), "%s/%s", tmp ? tmp : "/tmp", name);
    remove_tree(test_dir);
    char parent[PATH_MAX + 8];
    snprintf(parent, sizeof(parent), "%s", tmp ? tmp : "/tmp");
    mkdir(parent, 0755);
    if (mkdir(test_dir, 0755) != 0)
        return -1;
    snprintf(config_path, sizeof(config_path), "%s/config.yaml", test_dir);
    write_file("cert.pem", "");
    write_file("key.pem", "");
    write_file("bundle.pem", "");
    return 0;
}

/* ---- policy sets ---- */

typedef struct {
    or_config *cfg;
    or_rbac *rbac;
} policy_set;

static inline or_config *load_config(const char *yaml)
{
    or_diag diag;
    or_diag_init(&diag);
    write_file("config.yaml", yaml);
    or_config *cfg = or_config_load(config_path, &diag);
    if (cfg == NULL) {
        or_diag_print(&diag, stderr);
        or_diag_free(&diag);
        fail_msg("the config did not load");
    }
    or_diag_free(&diag);
    return cfg;
}

static inline policy_set load_set(const char *yaml)
{
    or_diag diag;
    or_diag_init(&diag);
    policy_set set = {load_config(yaml), NULL};
    set.rbac = or_rbac_compile(set.cfg, &diag);
    assert_non_null(set.rbac);
    assert_int_equal(diag.count, 0);
    or_diag_free(&diag);
    return set;
}

static inline void free_set(policy_set *set)
{
    or_rbac_free(set->rbac);
    or_config_free(set->cfg);
}

/* ---- requests ---- */

typedef struct {
    or_rbac_request req;
    struct sockaddr_storage source;
    const char *headers[8][2];
    size_t nheaders;
} test_request;

static inline const char *lookup_header(void *ctx, const char *name, size_t len,
                                        size_t *value_len)
{
    test_request *t = ctx;
    for (size_t i = 0; i < t->nheaders; i++) {
        if (strlen(t->headers[i][0]) == len && memcmp(t->headers[i][0], name, len) == 0) {
            *value_len = strlen(t->headers[i][1]);
            return t->headers[i][1];
        }
    }
    return NULL;
}

static inline void set_ip(test_request *t, const char *ip)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)&t->source;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&t->source;
    memset(&t->source, 0, sizeof(t->source));
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
    } else {
        assert_int_equal(inet_pton(AF_INET6, ip, &v6->sin6_addr), 1);
        v6->sin6_family = AF_INET6;
    }
    t->req.source = (const struct sockaddr *)&t->source;
}

/* An HTTP request from 10.1.2.3 to port 8080. */
static inline void http_request(test_request *t, const char *principal, const char *method,
                                const char *path)
{
    memset(t, 0, sizeof(*t));
    set_ip(t, "10.1.2.3");
    t->req.principal = principal;
    t->req.port = 8080;
    t->req.method = method;
    t->req.method_len = strlen(method);
    t->req.path = path;
    t->req.path_len = strlen(path);
    t->req.header = lookup_header;
    t->req.header_ctx = t;
}

static inline void tcp_request(test_request *t, const char *principal, uint16_t port)
{
    memset(t, 0, sizeof(*t));
    set_ip(t, "10.1.2.3");
    t->req.principal = principal;
    t->req.port = port;
    t->req.l4 = true;
}

static inline void set_host(test_request *t, const char *host)
{
    t->req.host = host;
    t->req.host_len = strlen(host);
}

static inline void add_header(test_request *t, const char *name, const char *value)
{
    t->headers[t->nheaders][0] = name;
    t->headers[t->nheaders][1] = value;
    t->nheaders++;
}

static inline or_rbac_decision decide(const policy_set *set, const test_request *t)
{
    or_rbac_decision d;
    or_rbac_evaluate(set->rbac, &t->req, &d);
    return d;
}

static inline bool allowed(const policy_set *set, const test_request *t)
{
    return decide(set, t).allowed;
}

/* ---- the examples of docs/rbac.md ---- */

/* docs/rbac.md, "A complete example": the policies file, verbatim. */
#define DOC_POLICIES                                                                          \
    "policies:\n"                                                                             \
    "  - name: frontend-reads\n"                                                              \
    "    service: payments\n"                                                                 \
    "    action: allow\n"                                                                     \
    "    rules:\n"                                                                            \
    "      - from:\n"                                                                         \
    "          - principals: [\"spiffe://cluster.local/ns/web/sa/frontend\"]\n"               \
    "          - namespaces: [\"ops\"]\n"                                                     \
    "            ip_blocks: [\"10.0.0.0/8\"]\n"                                               \
    "        to:\n"                                                                           \
    "          - methods: [GET, HEAD]\n"                                                      \
    "            paths: [\"/api/*\"]\n"                                                       \
    "        when:\n"                                                                         \
    "          - header: x-tenant\n"                                                          \
    "            values: [\"acme\", \"beta-*\"]\n"                                            \
    "  - name: block-admin\n"                                                                 \
    "    action: deny\n"                                                                      \
    "    rules:\n"                                                                            \
    "      - from:\n"                                                                         \
    "          - not_namespaces: [\"ops\"]\n"                                                 \
    "        to:\n"                                                                           \
    "          - paths: [\"/admin/*\"]\n"                                                     \
    "  - name: try-block-v1\n"                                                                \
    "    action: deny\n"                                                                      \
    "    dry_run: true\n"                                                                     \
    "    rules:\n"                                                                            \
    "      - to:\n"                                                                           \
    "          - paths: [\"/api/v1/*\"]\n"                                                    \
    "  - name: audit-writes\n"                                                                \
    "    action: audit\n"                                                                     \
    "    rules:\n"                                                                            \
    "      - to:\n"                                                                           \
    "          - not_methods: [GET, HEAD]\n"                                                  \
    "  - name: orders-only\n"                                                                 \
    "    service: orders\n"                                                                   \
    "    action: allow\n"                                                                     \
    "    rules: [{}]\n"

/* The config of that example; only the identity paths differ from the docs. */
#define DOC_CONFIG                                                                            \
    "service: payments\n"                                                                     \
    "trust_domain: cluster.local\n"                                                           \
    "identity: {cert: cert.pem, key: key.pem, bundle: bundle.pem}\n"                          \
    "listeners:\n"                                                                            \
    "  - name: inbound\n"                                                                     \
    "    mode: inbound\n"                                                                     \
    "    protocol: http\n"                                                                    \
    "    listen: 0.0.0.0:15006\n"                                                             \
    "    upstream: 127.0.0.1:8080\n"                                                          \
    "rbac:\n"                                                                                 \
    "  default: deny\n"                                                                       \
    "  policies: policies.yaml\n"

/* docs/rbac.md, "tcp listeners fail closed". */
#define DOC_TCP_CONFIG                                                                        \
    "service: ledger-db\n"                                                                    \
    "trust_domain: cluster.local\n"                                                           \
    "identity: {cert: cert.pem, key: key.pem, bundle: bundle.pem}\n"                          \
    "listeners:\n"                                                                            \
    "  - name: postgres\n"                                                                    \
    "    mode: inbound\n"                                                                     \
    "    protocol: tcp\n"                                                                     \
    "    listen: 0.0.0.0:15432\n"                                                              \
    "    upstream: 127.0.0.1:5432\n"                                                         \
    "rbac:\n"                                                                                 \
    "  default: deny\n"                                                                       \
    "  policies:\n"                                                                           \
    "    - name: db-clients\n"                                                                \
    "      action: allow\n"                                                                   \
    "      rules:\n"                                                                          \
    "        - from:\n"                                                                       \
    "            - namespaces: [\"shop\"]\n"                                                  \
    "          to:\n"                                                                         \
    "            - ports: [5432]\n"                                                           \
    "    - name: web-no-admin\n"                                                              \
    "      action: deny\n"                                                                    \
    "      rules:\n"                                                                          \
    "        - from:\n"                                                                       \
    "            - namespaces: [\"web\"]\n"                                                   \
    "          to:\n"                                                                         \
    "            - paths: [\"/admin/*\"]\n"

static inline policy_set load_doc_example(void)
{
    write_file("policies.yaml", DOC_POLICIES);
    return load_set(DOC_CONFIG);
}


#endif
