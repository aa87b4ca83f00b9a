/*
 * config_scope: which workload this proxy is, and which policies apply to it.
 *
 * A workload is a service name, a namespace and a set of labels, as a pod
 * has them. The namespace is the top-level `namespace` key when written;
 * otherwise it is the /ns/<ns>/ segment of the SPIFFE ID in the identity
 * certificate, read once at load (the file is checked to be readable
 * already). A config checked away from its machine (`outrider check` on a
 * manifest) takes the manifest's namespace; one with neither has an unknown
 * namespace, where only mesh-wide policies apply, which `check` says.
 *
 * Scopes follow Istio. A native policy names one `service`, one
 * `namespace`, or neither (the mesh). An Istio resource applies in its
 * metadata.namespace, or everywhere when that is rbac.root_namespace, and
 * selector.matchLabels narrows it to the workloads that carry all those
 * labels. A resource with targetRef(s) binds to a Gateway or Service, never
 * to a sidecar, so it applies nowhere here.
 *
 * mTLS modes are resolved once, after the walk, for every inbound listener:
 * its own `mtls` key when written; otherwise Istio's PeerAuthentication
 * precedence for the listener's upstream port (the workload port): the
 * portLevelMtls entry of the workload policy, then the workload policy's
 * mode, the namespace policy's, the mesh policy's, where UNSET inherits
 * from the next. As in Istio, a PeerAuthentication in the root namespace
 * with a selector is used at no level. With no PeerAuthentication deciding, the mode is STRICT
 * (Istio's default is PERMISSIVE; docs/rbac.md says why Outrider differs).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/x509_crt.h>

#include "config_yaml.h"
#include "outrider/spiffe.h"

const char *or_cfg_namespace(or_cfg_file *f, const yaml_node_t *node, const char *path)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char quoted[OR_CFG_QUOTE_MAX];
    const char *text = or_cfg_string(f, node, path);
    if (text == NULL)
        return NULL;
    size_t len = strlen(text);
    if (len > 0 && len <= 63 && strchr(alnum, text[0]) && strchr(alnum, text[len - 1]) &&
        or_cfg_all_in(text, len, "abcdefghijklmnopqrstuvwxyz0123456789-"))
        return text;
    or_cfg_error(f, node, "%s: expected a Kubernetes namespace (lower-case letters, digits "
                          "and '-', at most 63), got %s", path, or_cfg_quote(text, quoted));
    return NULL;
}

bool or_cfg_labels(or_cfg_file *f, yaml_node_t *value, const char *path, or_labels *out)
{
    char item_path[OR_CFG_PATH_MAX];
    if (!or_cfg_expect(f, value, path, YAML_MAPPING_NODE))
        return false;
    size_t n = (size_t)(value->data.mapping.pairs.top - value->data.mapping.pairs.start);
    or_cfg_free_labels(out);
    out->keys = calloc(n ? n : 1, sizeof(char *));
    out->values = calloc(n ? n : 1, sizeof(char *));
    if (out->keys == NULL || out->values == NULL) {
        or_cfg_error(f, value, "out of memory");
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *pair = &value->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&f->doc, pair->key);
        yaml_node_t *v = yaml_document_get_node(&f->doc, pair->value);
        const char *key = or_cfg_string(f, k, path);
        if (key == NULL)
            return false;
        snprintf(item_path, sizeof item_path, "%s.%s", path, key);
        const char *val = or_cfg_string(f, v, item_path);
        if (key[0] == '\0' || val == NULL) {
            if (key[0] == '\0')
                or_cfg_error(f, k, "%s: a label name must not be empty", path);
            return false;
        }
        out->keys[out->count] = or_cfg_strdup(f, k, key);
        out->values[out->count] = or_cfg_strdup(f, v, val);
        out->count++;
    }
    return true;
}

/* ---- the namespace ---- */

/* The namespace segment of the identity certificate's SPIFFE ID, or NULL. */
static char *namespace_of_identity(const char *cert_path)
{
    mbedtls_x509_crt crt;
    char id_text[2048];
    or_spiffe_id id;
    const char *why, *ns;
    size_t ns_len, count;
    char *out = NULL;
    mbedtls_x509_crt_init(&crt);
    if (cert_path != NULL && mbedtls_x509_crt_parse_file(&crt, cert_path) == 0 &&
        or_svid_uri_san(&crt, id_text, sizeof id_text, &count) == OR_SVID_OK &&
        or_spiffe_id_parse(id_text, strlen(id_text), &id, &why) == 0 &&
        or_spiffe_id_namespace(&id, &ns, &ns_len))
        out = strndup(ns, ns_len);
    mbedtls_x509_crt_free(&crt);
    return out;
}

/* Whether a policy or PeerAuthentication depends on the namespace. */
static bool needs_namespace(const or_policy_scope *s)
{
    return s->namespace != NULL && !s->mesh;
}

static void resolve_namespace(or_cfg_file *f, or_config *cfg)
{
    bool needed = false;
    if (cfg->namespace != NULL)
        return;
    if (f->texts == NULL)
        cfg->namespace = namespace_of_identity(cfg->identity.cert);
    else if (f->texts->namespace != NULL)
        cfg->namespace = strdup(f->texts->namespace);
    if (cfg->namespace != NULL)
        return;
    for (size_t i = 0; i < cfg->rbac.npolicies; i++)
        needed = needed || needs_namespace(&cfg->rbac.policies[i].scope);
    for (size_t i = 0; i < cfg->rbac.npeer_auths; i++)
        needed = needed || needs_namespace(&cfg->rbac.peer_auths[i].scope);
    if (needed)
        or_diag_add(f->diag, OR_DIAG_WARNING, f->file, 0, 0,
                    "the workload's namespace is unknown (no top-level `namespace`, and the "
                    "identity certificate's SPIFFE ID was not read): policies and "
                    "PeerAuthentications scoped to a namespace do not apply; set `namespace`");
}

/* ---- scopes ---- */

static bool has_label(const or_labels *labels, const char *key, const char *value)
{
    for (size_t i = 0; i < labels->count; i++)
        if (strcmp(labels->keys[i], key) == 0)
            return strcmp(labels->values[i], value) == 0;
    return false;
}

/* True when `labels` has every key of `selector` with the same value. */
static bool selector_matches(const or_labels *selector, const or_labels *labels)
{
    for (size_t i = 0; i < selector->count; i++)
        if (!has_label(labels, selector->keys[i], selector->values[i]))
            return false;
    return true;
}

const char *or_config_scope_miss(const or_config *cfg, const or_policy_scope *s)
{
    if (s->target_ref)
        return "targetRef: applies to a gateway or Service, not to a sidecar";
    if (s->service != NULL && (cfg->service == NULL || strcmp(s->service, cfg->service) != 0))
        return "another service";
    if (s->namespace != NULL && !s->mesh &&
        (cfg->namespace == NULL || strcmp(s->namespace, cfg->namespace) != 0))
        return cfg->namespace == NULL ? "namespace unknown" : "another namespace";
    if (s->has_selector && !selector_matches(&s->selector, &cfg->labels))
        return "selector does not match the workload's labels";
    return NULL;
}

/* ---- mTLS modes ---- */

typedef enum { LEVEL_MESH, LEVEL_NAMESPACE, LEVEL_WORKLOAD, LEVEL_COUNT } or_pa_level;

static or_pa_level level_of(const or_peer_auth_config *pa)
{
    if (pa->scope.has_selector)
        return LEVEL_WORKLOAD;
    return pa->scope.mesh ? LEVEL_MESH : LEVEL_NAMESPACE;
}

or_mtls_mode or_config_peer_auth_mode(const or_config *cfg, uint16_t port,
                                      const or_peer_auth_config **decided)
{
    const or_peer_auth_config *at[LEVEL_COUNT] = {NULL};
    for (size_t i = 0; i < cfg->rbac.npeer_auths; i++) {
        const or_peer_auth_config *pa = &cfg->rbac.peer_auths[i];
        if (pa->scope.mesh && pa->scope.has_selector)
            continue; /* Istio uses a root-namespace policy with a selector at no level */
        if (or_config_scope_miss(cfg, &pa->scope) == NULL && at[level_of(pa)] == NULL)
            at[level_of(pa)] = pa; /* the first in file order wins, as Istio's oldest */
    }
    const or_peer_auth_config *w = at[LEVEL_WORKLOAD];
    *decided = w;
    for (size_t i = 0; w != NULL && i < w->nports; i++)
        if (w->ports[i].port == port && w->ports[i].mode != OR_MTLS_UNSET)
            return w->ports[i].mode;
    for (int level = LEVEL_WORKLOAD; level >= LEVEL_MESH; level--)
        if ((*decided = at[level]) != NULL && at[level]->mode != OR_MTLS_UNSET)
            return at[level]->mode;
    *decided = NULL;
    return OR_MTLS_STRICT;
}

static void resolve_mtls(or_config *cfg)
{
    const or_peer_auth_config *decided;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        or_listener_config *l = &cfg->listeners[i];
        if (l->mode != OR_MODE_INBOUND)
            l->mtls_effective = OR_MTLS_STRICT;
        else if (l->mtls != OR_MTLS_UNSET)
            l->mtls_effective = l->mtls;
        else
            l->mtls_effective = or_config_peer_auth_mode(cfg, l->upstream.port, &decided);
    }
}

/* Istio resources in rbac.root_namespace are mesh-wide; known only after
 * the walk, since the key may follow the policies. */
static void mark_mesh(or_config *cfg)
{
    const char *root = cfg->rbac.root_namespace;
    for (size_t i = 0; i < cfg->rbac.npolicies; i++) {
        or_policy_config *p = &cfg->rbac.policies[i];
        p->scope.mesh = p->origin == OR_POLICY_ISTIO && p->scope.namespace != NULL &&
                        strcmp(p->scope.namespace, root) == 0;
    }
    for (size_t i = 0; i < cfg->rbac.npeer_auths; i++) {
        or_policy_scope *s = &cfg->rbac.peer_auths[i].scope;
        s->mesh = s->namespace != NULL && strcmp(s->namespace, root) == 0;
    }
}

void or_cfg_resolve_workload(or_cfg_file *f, or_config *cfg)
{
    mark_mesh(cfg);
    resolve_namespace(f, cfg);
    resolve_mtls(cfg);
}
