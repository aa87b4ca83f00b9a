/*
 * config: the YAML configuration of one proxy (schema in docs/config.md).
 *
 * Contract: or_config_load parses and validates a whole file, including the
 * RBAC policies it names (inline or from a file relative to it), and returns
 * an immutable snapshot or NULL. Every problem found is added to `diag` with
 * file:line:column and the key; loading goes on after an error where it can,
 * so one run reports all problems. Unknown keys, wrong types, duplicates,
 * bad durations/sizes/addresses and missing files are errors. Relative paths
 * are resolved against the directory of the file that names them. The
 * returned config owns all its memory; or_config_free releases it. Nothing
 * in it is mutable after load, so it may be read from any thread.
 */
#ifndef OUTRIDER_CONFIG_H
#define OUTRIDER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outrider/cidr.h"
#include "outrider/diag.h"
#include "outrider/http_path.h"
#include "outrider/sandbox.h"
#include "outrider/units.h"

typedef struct {
    const char *file; /* points into the owning config's file list */
    unsigned long line, col;
} or_source_pos;

typedef struct {
    char **items;
    size_t count;
} or_strlist;

typedef enum { OR_MODE_INBOUND, OR_MODE_OUTBOUND } or_listener_mode;
typedef enum { OR_PROTO_TCP, OR_PROTO_HTTP } or_protocol;
/* What an inbound listener accepts: mTLS only, mTLS or plaintext (told apart
 * by the client's first bytes), or plaintext only; Istio's PeerAuthentication
 * modes. UNSET: not written (PeerAuthentication may decide). */
typedef enum { OR_MTLS_UNSET, OR_MTLS_STRICT, OR_MTLS_PERMISSIVE, OR_MTLS_DISABLE } or_mtls_mode;
/* The protocol an HTTP/2 request leaves in (docs/http2.md): AUTO the one it
 * arrived in (outbound: what the peer sidecar picks by ALPN), HTTP1
 * translated to HTTP/1.1, HTTP2 always HTTP/2. */
typedef enum { OR_UPSTREAM_AUTO, OR_UPSTREAM_HTTP1, OR_UPSTREAM_HTTP2 } or_upstream_protocol;

typedef struct {
    char *name;
    or_listener_mode mode;
    or_protocol protocol;
    or_hostport listen;     /* always a literal IP */
    or_hostport upstream;   /* a name is resolved at connect time */
    char upstream_text[300];/* "host:port" ("[v6]:port"), for logs */
    char *peer_identity;    /* outbound only; NULL on inbound */
    or_mtls_mode mtls;      /* inbound only, as written; UNSET when absent */
    or_mtls_mode mtls_effective; /* what the data plane uses; never UNSET after load */
    bool http2;             /* protocol http: HTTP/2 is accepted too (docs/http2.md) */
    or_upstream_protocol upstream_protocol; /* protocol http only */
    bool multiplex;         /* protocol http: the hop between sidecars is HTTP/2 (default on) */
    or_source_pos pos;
} or_listener_config;

/* ---- RBAC, as written (compiled elsewhere) ---- */

typedef enum { OR_RBAC_ALLOW, OR_RBAC_DENY, OR_RBAC_AUDIT } or_rbac_action;

typedef struct {
    uint16_t *items;
    size_t count;
} or_portlist;

typedef struct {
    or_cidr *items;
    size_t count;
} or_cidrlist;

typedef struct {
    or_strlist principals, not_principals;
    or_strlist namespaces, not_namespaces;
    or_cidrlist ip_blocks, not_ip_blocks;
    or_cidrlist remote_ip_blocks, not_remote_ip_blocks; /* Istio: as ip_blocks here */
    /* Istio's requestPrincipals / notRequestPrincipals (JWT): kept only in
     * deny policies, where they always hold (fail closed). */
    bool request_principals, not_request_principals;
    or_source_pos pos;
} or_rbac_source;

typedef struct {
    or_strlist methods, not_methods;
    or_strlist paths, not_paths;
    or_portlist ports, not_ports;
    or_strlist hosts, not_hosts;
    or_source_pos pos;
} or_rbac_operation;

/* What a `when` condition compares. Native policies have header
 * conditions only; Istio's `when` keys map to the others. */
typedef enum {
    OR_RBAC_WHEN_HEADER,        /* request.headers[name]: values are patterns */
    OR_RBAC_WHEN_SOURCE_IP,     /* source.ip, remote.ip: values are CIDR blocks */
    OR_RBAC_WHEN_NAMESPACE,     /* source.namespace */
    OR_RBAC_WHEN_PRINCIPAL,     /* source.principal: SPIFFE IDs */
    OR_RBAC_WHEN_PORT,          /* destination.port */
    OR_RBAC_WHEN_SNI,           /* connection.sni */
    OR_RBAC_WHEN_REQUEST_AUTH,  /* request.auth.*: JWT claims, which Outrider never has */
} or_rbac_when_key;

typedef struct {
    or_rbac_when_key key;
    char *header;           /* OR_RBAC_WHEN_HEADER: lower-cased */
    or_strlist values, not_values;       /* the string kinds */
    or_cidrlist ip_values, not_ip_values; /* OR_RBAC_WHEN_SOURCE_IP */
    or_portlist port_values, not_port_values; /* OR_RBAC_WHEN_PORT */
    or_source_pos pos;
} or_rbac_condition;

typedef struct {
    or_rbac_source *from;
    size_t nfrom;
    or_rbac_operation *to;
    size_t nto;
    or_rbac_condition *when;
    size_t nwhen;
    or_source_pos pos;
} or_rbac_rule;

/* A label map: a workload's `labels`, or a selector's `matchLabels`. */
typedef struct {
    char **keys, **values;
    size_t count;
} or_labels;

/* Where a policy applies. Native: `service`, `namespace` or neither (the
 * whole mesh). Istio: metadata.namespace (the root namespace is the whole
 * mesh), narrowed by selector.matchLabels. */
typedef struct {
    char *service;          /* native only; NULL = any */
    char *namespace;        /* NULL = any */
    bool mesh;              /* Istio: the root namespace; applies in every namespace */
    bool has_selector;
    or_labels selector;     /* matchLabels; a workload matches when it has them all */
    bool target_ref;        /* Istio targetRef(s): never applies to a sidecar */
} or_policy_scope;

typedef enum { OR_POLICY_NATIVE, OR_POLICY_ISTIO } or_policy_origin;

typedef struct {
    char *name;             /* Istio: "namespace/name" */
    or_policy_origin origin;
    or_policy_scope scope;
    or_rbac_action action;
    bool dry_run;           /* native dry_run; Istio's istio.io/dry-run annotation */
    or_rbac_rule *rules;    /* no rules: the policy matches no request (Istio);
                               one empty rule, `rules: [{}]`, matches every request */
    size_t nrules;
    or_source_pos pos;
} or_policy_config;

typedef struct {
    uint16_t port;          /* the workload's port: an inbound listener's upstream port */
    or_mtls_mode mode;
} or_port_mtls;

/* An Istio PeerAuthentication, as written. */
typedef struct {
    char *name;             /* "namespace/name" */
    or_policy_scope scope;
    or_mtls_mode mode;      /* OR_MTLS_UNSET: inherit */
    or_port_mtls *ports;    /* portLevelMtls */
    size_t nports;
    or_source_pos pos;
} or_peer_auth_config;

typedef enum { OR_ACCESS_LOG_TEXT, OR_ACCESS_LOG_JSON } or_access_log_format;

typedef struct {
    char *path;             /* config file as given */
    char **files;           /* every file read (config, policies); owned */
    size_t nfiles;

    char *service;
    char *trust_domain;
    /* The workload's namespace: top-level `namespace`, else the /ns/<ns>/
     * segment of the identity certificate's SPIFFE ID when it can be read at
     * load; NULL when neither (namespace-scoped policies then never apply). */
    char *namespace;
    bool namespace_written;
    or_labels labels;       /* the workload's labels, for selectors */
    struct {
        char *cert, *key, *bundle; /* resolved paths */
    } identity;
    unsigned workers;       /* resolved: "auto" becomes the CPU count */
    bool workers_auto;

    struct {
        bool enabled;
        or_hostport listen;
        bool allow_non_loopback;
    } admin;

    or_listener_config *listeners;
    size_t nlisteners;

    struct {
        bool enabled;
        char *path;
        or_access_log_format format;
    } access_log;

    struct {
        bool enabled;         /* the config has an rbac section: policies are enforced */
        bool default_allow;   /* rbac.default (docs/rbac.md, "The decision") */
        bool default_written; /* rbac.default was written */
        char *root_namespace; /* rbac.root_namespace: Istio's mesh-wide namespace */
        char *policies_file;  /* a file or a directory; NULL when inline or absent */
        or_policy_config *policies;
        size_t npolicies;
        size_t nistio;        /* how many of them are Istio AuthorizationPolicies */
        or_peer_auth_config *peer_auths;
        size_t npeer_auths;
    } rbac;

    struct {
        uint64_t connect_ms, handshake_ms, idle_ms, request_headers_ms, drain_ms;
        uint64_t detect_ms;   /* permissive listeners: waiting for the first bytes */
        uint64_t keepalive_ms; /* pooled HTTP/2 connections: PING after this silence,
                                  lost after as long again without an answer */
    } timeouts;
    struct {
        uint64_t max_connections;
        uint64_t max_request_headers;
    } limits;
    struct {
        or_escaped_slashes escaped_slashes; /* %2F and %5C in a path: reject | decode */
    } http;
    /* security: how the proxy confines itself after start-up (sandbox.h);
     * settings.run_as points at run_as, NULL for the default user. */
    struct {
        or_sandbox_settings settings;
        char *run_as;
    } security;
} or_config;

or_config *or_config_load(const char *path, or_diag *diag);

/* Files held in memory instead of on this machine's file system: what
 * `outrider check` reads out of a Kubernetes ConfigMap. */
typedef struct {
    const char *path; /* where the file would be: the name configs refer to it by */
    const char *text;
    size_t len;
} or_config_text;

typedef struct {
    const or_config_text *files;
    size_t nfiles;
    const char *missing; /* why a file not among them cannot be read */
    const char *namespace; /* where they are deployed (a manifest's); the workload's
                              namespace when the config writes none; may be NULL */
} or_config_texts;

/* or_config_load with the config (`path`) and the policies file it names
 * looked up in `texts` rather than read from disk. The files a config names
 * for later (identity, access log) are not looked at: they belong to
 * another machine. */
or_config *or_config_load_texts(const char *path, const or_config_texts *texts,
                                or_diag *diag);
void or_config_free(or_config *cfg);

/* Why a scope does not take in this config's workload ("another namespace",
 * ...), or NULL when the policy or PeerAuthentication applies to it. */
const char *or_config_scope_miss(const or_config *cfg, const or_policy_scope *scope);
/* The mTLS mode PeerAuthentications give the workload port `port`, with
 * Istio's precedence; *decided is the resource that set it, NULL when none
 * did and the mode is Outrider's default, STRICT. */
or_mtls_mode or_config_peer_auth_mode(const or_config *cfg, uint16_t port,
                                      const or_peer_auth_config **decided);

#endif
