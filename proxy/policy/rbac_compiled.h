/*
 * rbac_compiled: the compiled form of the RBAC policies, shared by rbac.c
 * (compile and evaluate), rbac_explain.c and rbac_lint.c. Private to them.
 *
 * A compiled policy is a tree of small arrays that all live in one arena
 * owned by the or_rbac: policies hold rules, rules hold `from`, `to` and
 * `when` entries, and an entry is a list of the fields it sets (a field is
 * one key such as `paths` or `not_principals`, with its values). Keys that
 * were not written are simply absent from the list, so evaluation only
 * walks what the operator wrote. String values are pre-classified patterns
 * with the fixed part and its length computed once; nothing here is
 * modified after or_rbac_compile returns.
 */
#ifndef OUTRIDER_RBAC_COMPILED_H
#define OUTRIDER_RBAC_COMPILED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outrider/rbac.h"

typedef enum {
    OR_RBAC_EXACT,    /* "abc" */
    OR_RBAC_PREFIX,   /* "abc*" */
    OR_RBAC_SUFFIX,   /* "*abc" */
    OR_RBAC_PRESENCE, /* "*": any value, as long as there is one */
} or_rbac_pattern_kind;

typedef struct {
    const char *text;  /* as written (host patterns lower-cased), NUL-terminated */
    const char *fixed; /* the compared part: text without its '*' */
    uint32_t fixed_len;
    uint8_t kind;      /* or_rbac_pattern_kind */
} or_rbac_pattern;

typedef enum {
    OR_RBAC_FIELD_PRINCIPALS, /* from */
    OR_RBAC_FIELD_NAMESPACES,
    OR_RBAC_FIELD_IP_BLOCKS,
    OR_RBAC_FIELD_METHODS,    /* to */
    OR_RBAC_FIELD_PATHS,
    OR_RBAC_FIELD_PORTS,
    OR_RBAC_FIELD_HOSTS,
    OR_RBAC_FIELD_VALUES,     /* when: a header */
    OR_RBAC_FIELD_REMOTE_IP_BLOCKS, /* Istio: the same address as ip_blocks here */
    OR_RBAC_FIELD_SNI,        /* Istio when: connection.sni */
    OR_RBAC_FIELD_REQUEST_AUTH, /* Istio: requestPrincipals, request.auth.* (JWT) */
} or_rbac_field_kind;

typedef struct {
    uint8_t kind;   /* or_rbac_field_kind */
    bool negated;   /* a not_ field: holds when no value matches */
    uint32_t count; /* at least 1 */
    union {
        const or_rbac_pattern *patterns;
        const or_cidr *blocks;
        const uint16_t *ports;
    } values;
} or_rbac_field;

/* One `from` source, `to` operation or `when` condition. */
typedef struct {
    const or_rbac_field *fields;
    uint32_t nfields;
    const char *header;  /* conditions only: lower-case header name */
    uint32_t header_len;
    unsigned long line, col;
} or_rbac_entry;

typedef struct {
    const or_rbac_entry *from, *to, *when;
    uint32_t nfrom, nto, nwhen;
    unsigned long line, col;
} or_rbac_compiled_rule;

typedef struct {
    const char *name;
    const char *miss;    /* skipped policies: why it does not apply (or_config_scope_miss) */
    bool istio;          /* an Istio AuthorizationPolicy: fields are named as Istio's */
    const char *file;    /* where it was written */
    unsigned long line, col;
    or_rbac_action action;
    bool dry_run;
    const or_rbac_compiled_rule *rules;
    uint32_t nrules;
} or_rbac_policy;

typedef struct or_rbac_chunk or_rbac_chunk;

struct or_rbac {
    const char *service;
    const char *namespace;          /* the workload's, or "" when unknown */
    bool default_allow;             /* the decision when no enforced allow policy applies */
    bool default_written;           /* rbac.default was written (else Istio's or deny) */
    bool has_allow;                 /* an enforced Istio ALLOW policy applies: what no
                                       allow policy matches is denied */
    const or_rbac_policy *policies; /* those that apply to `service`, in file order */
    size_t npolicies;
    const or_rbac_policy *skipped;  /* those scoped elsewhere: no rules kept */
    size_t nskipped;
    or_rbac_chunk *chunks;          /* the arena everything above lives in */
};

/* The request as the matchers see it, prepared once per evaluation: the
 * principal's length and namespace, the path without a query string and
 * the host without a port. Nothing is copied. */
typedef struct {
    const or_rbac_request *req;
    size_t principal_len;
    const char *ns;
    size_t ns_len;
    bool has_ns;
    const char *path;
    size_t path_len;
    const char *host;
    size_t host_len;
} or_rbac_view;

/* What one field is compared with: a string, a port or an address. An
 * absent subject (no principal, no such header) never matches a value. */
typedef struct {
    bool present;
    const char *text;
    size_t len;
    uint16_t port;
    const struct sockaddr *addr;
} or_rbac_subject;

/* Outcome of one field for one request. */
typedef enum {
    OR_RBAC_FIELD_HELD,          /* the field matched */
    OR_RBAC_FIELD_FAILED,        /* it did not */
    OR_RBAC_FIELD_L4_NEVER,      /* HTTP-only on a tcp request, allow/audit: fails */
    OR_RBAC_FIELD_L4_ALWAYS,     /* HTTP-only on a tcp request, deny: holds */
    OR_RBAC_FIELD_NO_JWT,        /* a JWT field in a deny policy: holds (fail closed) */
} or_rbac_field_outcome;

void or_rbac_view_init(or_rbac_view *view, const or_rbac_request *req);
bool or_rbac_field_is_http_only(const or_rbac_field *field);
/* The field's key as written: "paths", "not_principals", ... (Istio's
 * "notPrincipals", ... for an Istio policy). */
const char *or_rbac_field_name(const or_rbac_policy *policy, const or_rbac_field *field);
/* Reads the request value a field compares with; for conditions, looks the
 * header up (pass entry == NULL for source and operation fields). */
or_rbac_subject or_rbac_field_subject(const or_rbac_field *field, const or_rbac_entry *entry,
                                      const or_rbac_view *view);
/* Index of the first value of the field that matches the subject, or -1. */
int or_rbac_field_first_match(const or_rbac_field *field, const or_rbac_subject *subject);
or_rbac_field_outcome or_rbac_field_check(const or_rbac_policy *policy,
                                          const or_rbac_field *field, const or_rbac_entry *entry,
                                          const or_rbac_view *view);
/* Index of the first field of the entry that does not hold, or -1 when the
 * entry matches. */
int or_rbac_entry_first_failure(const or_rbac_policy *policy, const or_rbac_entry *entry,
                                const or_rbac_view *view);
/* Index of the first matching rule, or -1 (always -1 for a policy with no
 * rules: Istio's "matches nothing"). */
int or_rbac_policy_first_match(const or_rbac_policy *policy, const or_rbac_view *view);

#endif
