/*
 * rbac: Istio-style authorization policies, compiled once, evaluated often.
 *
 * Contract: or_rbac_compile turns the policies of a loaded config that apply
 * to its workload (or_config_scope_miss: service, namespace, labels) into
 * an immutable or_rbac. Evaluation never allocates and never fails: it reads
 * the request, walks the compiled policies and fills an or_rbac_decision
 * whose strings point into the or_rbac (valid while it lives).
 *
 * Semantics (docs/rbac.md, "The decision"), Istio's: any matching enforced
 * deny policy denies; else a matching enforced allow policy allows; else,
 * if an enforced Istio ALLOW policy applies, deny; else rbac.default
 * decides (unwritten: allow when Istio policies are loaded, else deny). audit policies and dry_run policies never change the decision;
 * the first of each that matches is reported. A rule matches when one `from`
 * entry, one `to` entry and every `when` condition match; fields within an
 * entry are ANDed, list values ORed; `not_` fields match when no value
 * matches. Strings match exactly, by prefix "abc*", suffix "*abc", or "*"
 * (presence). On a request without HTTP data (tcp listener, l4 == true),
 * HTTP-only fields (methods, paths, hosts, when) never match in an allow
 * policy and always match in a deny policy (fail closed).
 *
 * As in Istio, a policy with no rules matches no request, and an empty rule
 * (`rules: [{}]`) matches every request. "*" matches any present, non-empty
 * value. An absent value (no principal, no namespace segment, no such
 * header) never matches a positive field and always matches its not_ twin.
 * An audit policy is reported as audit_policy whether or not it is dry_run.
 */
#ifndef OUTRIDER_RBAC_H
#define OUTRIDER_RBAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "outrider/config.h"
#include "outrider/diag.h"

typedef struct or_rbac or_rbac;

/* Looks up a request header by lower-case name; returns NULL if absent.
 * Several headers of one name are offered joined by ", ". */
typedef const char *(*or_rbac_header_fn)(void *ctx, const char *name, size_t name_len,
                                          size_t *value_len);

typedef struct {
    const char *principal;          /* peer SPIFFE ID; NULL when unauthenticated */
    const char *principal_ns;       /* its namespace if the caller has it (a verified
                                       peer's), with length; NULL: parsed here */
    size_t principal_ns_len;
    const struct sockaddr *source;  /* peer address */
    uint16_t port;                  /* destination port: the listener's */
    bool l4;                        /* true: tcp listener, no HTTP fields */
    const char *method;             /* HTTP only, with lengths; not NUL-terminated */
    size_t method_len;
    const char *path;               /* without the query string */
    size_t path_len;
    const char *host;               /* Host header, without port */
    size_t host_len;
    const char *sni;                /* TLS server name the client sent, with length; NULL:
                                       none (plaintext, or no SNI) */
    size_t sni_len;
    or_rbac_header_fn header;
    void *header_ctx;
} or_rbac_request;

/* What decided: a policy; no allow policy matching although some apply
 * (deny); or rbac.default. */
typedef enum { OR_RBAC_BY_DEFAULT, OR_RBAC_BY_POLICY, OR_RBAC_BY_NO_ALLOW_MATCH } or_rbac_basis;

typedef struct {
    bool allowed;
    or_rbac_basis basis;
    const char *policy;        /* deciding policy, NULL when none decided (basis) */
    int rule;                  /* 0-based index of the matching rule; -1 when none */
    const char *dry_run_policy;/* first matching dry_run policy, or NULL */
    bool dry_run_would_allow;  /* its action, had it been enforced */
    const char *audit_policy;  /* first matching audit policy, or NULL */
    int policy_index;          /* index (0..or_rbac_policy_count-1) of `policy`, or -1 */
    int dry_run_index;         /* of `dry_run_policy`, or -1 */
    int audit_index;           /* of `audit_policy`, or -1 */
} or_rbac_decision;

or_rbac *or_rbac_compile(const or_config *cfg, or_diag *diag);
void or_rbac_free(or_rbac *rbac);
size_t or_rbac_policy_count(const or_rbac *rbac);
/* The name of policy `index` (0..or_rbac_policy_count-1). */
const char *or_rbac_policy_name(const or_rbac *rbac, size_t index);

void or_rbac_evaluate(const or_rbac *rbac, const or_rbac_request *req, or_rbac_decision *out);

/* Logs (diagnostic log, info) the dry_run and audit policies a decision
 * reports, with who asked for what; nothing when there are none. */
void or_rbac_log_reported(const or_rbac_decision *d, const char *listener, const char *peer,
                          const char *principal, const char *method, const char *path,
                          size_t path_len);

/* Writes the decision and, for every policy considered, whether it matched
 * and if not, the first field of each rule that did not. */
void or_rbac_explain(const or_rbac *rbac, const or_rbac_request *req, FILE *out);

/* Warnings about configurations that are valid but likely unsafe: default
 * allow, policies that can never match, allow with a bare "*" principal, a
 * tcp listener on 0.0.0.0/:: with no policies, admin not on loopback. */
void or_rbac_lint(const or_config *cfg, or_diag *diag);

#endif
