/*
 * config_istio: Istio's AuthorizationPolicy and PeerAuthentication, read as
 * an operator wrote them (docs/rbac.md, "Istio resources").
 *
 * A policies file may hold Kubernetes documents: one per YAML document, or
 * a `kind: List` with `items`, as `kubectl get -o yaml` writes them. A
 * document whose apiVersion is security.istio.io/v1 or v1beta1 and whose
 * kind is AuthorizationPolicy or PeerAuthentication is loaded; any other
 * Kubernetes document is skipped with a warning, so a GitOps folder can be
 * pointed at as it is.
 *
 * An AuthorizationPolicy becomes an or_policy_config like a native one,
 * named "namespace/name", with its scope (metadata.namespace,
 * selector.matchLabels, targetRef) and rules. Istio's camelCase fields map
 * onto the native ones; principals are written without "spiffe://" and
 * get it here; `when` keys map to or_rbac_condition kinds. What Outrider
 * cannot evaluate is refused where it would allow (CUSTOM, JWT
 * requestPrincipals or request.auth.* in ALLOW and AUDIT) and kept, failing
 * closed, where it would deny. Metadata other than name, namespace and the
 * istio.io/dry-run annotation is ignored (Kubernetes adds much of it);
 * unknown keys under spec are errors, as Istio's validation makes them.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"

typedef struct {
    or_config *cfg;
    or_policy_config *policy; /* the AuthorizationPolicy being read */
    or_peer_auth_config *pa;  /* or the PeerAuthentication */
    const yaml_node_t *selector, *target_ref;
} or_istio_ctx;

/* ---- rules ---- */

#define ISTIO_LIST(name, field, kind)                                                    \
    {#name, false, or_cfg_on_list, offsetof(or_rbac_source, field), (kind) | OR_CFG_LIST_ISTIO}
#define JWT_FIELD(name) {#name, false, on_request_principals, 0, 0}

static OR_CFG_HANDLER(on_request_principals)
{
    or_rbac_source *source = target;
    if (!or_cfg_expect(f, value, path, YAML_SEQUENCE_NODE) || or_cfg_length(value) == 0)
        return;
    if (strncmp(key->name, "not", 3) == 0)
        source->not_request_principals = true;
    else
        source->request_principals = true;
    source->pos = or_cfg_pos(f, value); /* where the JWT field is, for the check below */
}

static OR_CFG_HANDLER(on_unsupported)
{
    (void)target;
    or_cfg_error(f, value, "%s: not supported by Outrider; %s", path,
                 key->kind == 1 ? "write principals (SPIFFE IDs) instead"
                                : "remove it (see docs/rbac.md, \"Istio resources\")");
}

static const or_cfg_key source_keys[] = {
    ISTIO_LIST(principals, principals, OR_CFG_LIST_PRINCIPAL),
    ISTIO_LIST(notPrincipals, not_principals, OR_CFG_LIST_PRINCIPAL),
    ISTIO_LIST(namespaces, namespaces, OR_CFG_LIST_NAMESPACE),
    ISTIO_LIST(notNamespaces, not_namespaces, OR_CFG_LIST_NAMESPACE),
    ISTIO_LIST(ipBlocks, ip_blocks, OR_CFG_LIST_CIDR),
    ISTIO_LIST(notIpBlocks, not_ip_blocks, OR_CFG_LIST_CIDR),
    ISTIO_LIST(remoteIpBlocks, remote_ip_blocks, OR_CFG_LIST_CIDR),
    ISTIO_LIST(notRemoteIpBlocks, not_remote_ip_blocks, OR_CFG_LIST_CIDR),
    JWT_FIELD(requestPrincipals),
    JWT_FIELD(notRequestPrincipals),
    {"serviceAccounts", false, on_unsupported, 0, 1},
    {"notServiceAccounts", false, on_unsupported, 0, 1},
};

#define OPERATION_LIST(name, field, kind)                                                    \
    {#name, false, or_cfg_on_list, offsetof(or_rbac_operation, field),                      \
     (kind) | OR_CFG_LIST_ISTIO}
static const or_cfg_key operation_keys[] = {
    OPERATION_LIST(hosts, hosts, OR_CFG_LIST_HOST),
    OPERATION_LIST(notHosts, not_hosts, OR_CFG_LIST_HOST),
    OPERATION_LIST(ports, ports, OR_CFG_LIST_PORT),
    OPERATION_LIST(notPorts, not_ports, OR_CFG_LIST_PORT),
    OPERATION_LIST(methods, methods, OR_CFG_LIST_METHOD),
    OPERATION_LIST(notMethods, not_methods, OR_CFG_LIST_METHOD),
    OPERATION_LIST(paths, paths, OR_CFG_LIST_PATH),
    OPERATION_LIST(notPaths, not_paths, OR_CFG_LIST_PATH),
};

/* One `from` or `to` item: {source: {...}} or {operation: {...}}; `from`
 * points to true for a source. */
static void load_wrapped(or_cfg_file *f, yaml_node_t *item, const char *path, void *entry,
                         const void *from_arg)
{
    char inner_path[OR_CFG_PATH_MAX];
    bool from = *(const bool *)from_arg;
    const char *wrapper = from ? "source" : "operation";
    yaml_node_t *inner = or_cfg_expect(f, item, path, YAML_MAPPING_NODE)
                             ? or_cfg_lookup(f, item, wrapper)
                             : NULL;
    size_t pairs = item->type == YAML_MAPPING_NODE
                       ? (size_t)(item->data.mapping.pairs.top - item->data.mapping.pairs.start)
                       : 0;
    if (item->type == YAML_MAPPING_NODE && (inner == NULL || pairs != 1)) {
        or_cfg_error(f, item, "%s: expected exactly one key, `%s`", path, wrapper);
        return;
    }
    if (inner == NULL)
        return;
    or_cfg_key_path(inner_path, path, wrapper);
    if (from)
        ((or_rbac_source *)entry)->pos = or_cfg_pos(f, inner);
    else
        ((or_rbac_operation *)entry)->pos = or_cfg_pos(f, inner);
    if (or_cfg_walk(f, inner, inner_path, from ? source_keys : operation_keys,
                    from ? OR_CFG_COUNT(source_keys) : OR_CFG_COUNT(operation_keys), entry) == 0)
        or_cfg_error(f, inner, "%s: must not be empty", inner_path);
}

/* ---- when ---- */

static const struct {
    const char *key;
    or_rbac_when_key kind;
    int list;
} when_keys[] = {
    {"source.ip", OR_RBAC_WHEN_SOURCE_IP, OR_CFG_LIST_CIDR},
    {"remote.ip", OR_RBAC_WHEN_SOURCE_IP, OR_CFG_LIST_CIDR},
    {"source.namespace", OR_RBAC_WHEN_NAMESPACE, OR_CFG_LIST_NAMESPACE},
    {"source.principal", OR_RBAC_WHEN_PRINCIPAL, OR_CFG_LIST_PRINCIPAL},
    {"destination.port", OR_RBAC_WHEN_PORT, OR_CFG_LIST_PORT},
    {"connection.sni", OR_RBAC_WHEN_SNI, OR_CFG_LIST_HOST},
};

/* Sets the condition's kind from `key`; returns the list kind, or -1. */
static int when_kind(or_cfg_file *f, const yaml_node_t *node, const char *path, const char *key,
                     or_rbac_condition *c)
{
    static const char token[] = "!#$%&'*+-.^_`|~0123456789"
                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char quoted[OR_CFG_QUOTE_MAX];
    size_t len = strlen(key);
    for (size_t i = 0; i < OR_CFG_COUNT(when_keys); i++)
        if (strcmp(key, when_keys[i].key) == 0) {
            c->key = when_keys[i].kind;
            return when_keys[i].list;
        }
    if (strncmp(key, "request.headers[", 16) == 0 && len > 17 && key[len - 1] == ']' &&
        strspn(key + 16, token) == len - 17) {
        c->key = OR_RBAC_WHEN_HEADER;
        if ((c->header = strndup(key + 16, len - 17)) == NULL)
            return -1;
        for (char *p = c->header; *p; p++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
        return OR_CFG_LIST_VALUE;
    }
    if (strncmp(key, "request.auth.", 13) == 0) {
        c->key = OR_RBAC_WHEN_REQUEST_AUTH;
        return OR_CFG_LIST_VALUE;
    }
    or_cfg_error(f, node, "%s: unsupported when key %s; Outrider reads request.headers[NAME], "
                          "source.ip, remote.ip, source.namespace, source.principal, "
                          "destination.port, connection.sni and (in DENY) request.auth.*",
                 path, or_cfg_quote(key, quoted));
    return -1;
}

static void load_condition(or_cfg_file *f, yaml_node_t *item, const char *path, void *entry,
                           __attribute__((unused)) const void *arg)
{
    char sub[OR_CFG_PATH_MAX];
    or_rbac_condition *c = entry;
    c->pos = or_cfg_pos(f, item);
    if (!or_cfg_expect(f, item, path, YAML_MAPPING_NODE))
        return;
    yaml_node_t *key = or_cfg_lookup(f, item, "key");
    yaml_node_t *values = or_cfg_lookup(f, item, "values");
    yaml_node_t *not_values = or_cfg_lookup(f, item, "notValues");
    size_t pairs = (size_t)(item->data.mapping.pairs.top - item->data.mapping.pairs.start);
    if (pairs != (size_t)((key != NULL) + (values != NULL) + (not_values != NULL)))
        or_cfg_error(f, item, "%s: a condition has only key, values and notValues", path);
    or_cfg_key_path(sub, path, "key");
    const char *text = key ? or_cfg_string(f, key, sub) : NULL;
    if (key == NULL)
        or_cfg_error(f, item, "%s: missing required key 'key'", path);
    int list = text ? when_kind(f, key, sub, text, c) : -1;
    if (list < 0)
        return;
    size_t strings = offsetof(or_rbac_condition, values),
           not_strings = offsetof(or_rbac_condition, not_values);
    if (list == OR_CFG_LIST_CIDR) {
        strings = offsetof(or_rbac_condition, ip_values);
        not_strings = offsetof(or_rbac_condition, not_ip_values);
    } else if (list == OR_CFG_LIST_PORT) {
        strings = offsetof(or_rbac_condition, port_values);
        not_strings = offsetof(or_rbac_condition, not_port_values);
    }
    or_cfg_key vk = {"values", false, or_cfg_on_list, strings, list | OR_CFG_LIST_ISTIO};
    or_cfg_key nk = {"notValues", false, or_cfg_on_list, not_strings, list | OR_CFG_LIST_ISTIO};
    if (values == NULL && not_values == NULL)
        or_cfg_error(f, item, "%s: a condition needs values or notValues", path);
    or_cfg_key_path(sub, path, "values");
    if (values != NULL)
        or_cfg_on_list(f, &vk, c, values, sub);
    or_cfg_key_path(sub, path, "notValues");
    if (not_values != NULL)
        or_cfg_on_list(f, &nk, c, not_values, sub);
}

static OR_CFG_HANDLER(on_rule_section)
{
    or_rbac_rule *rule = target;
    bool from = key->kind == 0;
    if (key->kind == 2)
        rule->when = or_cfg_load_items(f, value, path, true, sizeof(*rule->when), &rule->nwhen,
                                       load_condition, NULL);
    else if (from)
        rule->from = or_cfg_load_items(f, value, path, true, sizeof(*rule->from), &rule->nfrom,
                                       load_wrapped, &from);
    else
        rule->to = or_cfg_load_items(f, value, path, true, sizeof(*rule->to), &rule->nto,
                                     load_wrapped, &from);
}

static const or_cfg_key rule_keys[] = {
    {"from", false, on_rule_section, 0, 0},
    {"to", false, on_rule_section, 0, 1},
    {"when", false, on_rule_section, 0, 2},
};

/* JWT fields can never match here: refused where they would allow. */
static void check_jwt(or_cfg_file *f, const or_policy_config *p)
{
    if (p->action == OR_RBAC_DENY)
        return;
    for (size_t r = 0; r < p->nrules; r++) {
        const or_rbac_rule *rule = &p->rules[r];
        for (size_t i = 0; i < rule->nfrom; i++)
            if (rule->from[i].request_principals || rule->from[i].not_request_principals)
                or_diag_add(f->diag, OR_DIAG_ERROR, f->file, rule->from[i].pos.line,
                            rule->from[i].pos.col,
                            "%s: rules[%zu]: requestPrincipals need a JWT, which Outrider "
                            "does not validate; in an ALLOW or AUDIT policy they would never "
                            "match, so the policy is refused (in DENY they match, failing "
                            "closed)", p->name, r);
        for (size_t i = 0; i < rule->nwhen; i++)
            if (rule->when[i].key == OR_RBAC_WHEN_REQUEST_AUTH)
                or_diag_add(f->diag, OR_DIAG_ERROR, f->file, rule->when[i].pos.line,
                            rule->when[i].pos.col,
                            "%s: rules[%zu]: request.auth.* needs a JWT, which Outrider does "
                            "not validate; refused in ALLOW and AUDIT (in DENY it matches, "
                            "failing closed)", p->name, r);
    }
}

/* ---- spec ---- */

static OR_CFG_HANDLER(on_selector)
{
    or_istio_ctx *ctx = target;
    or_policy_scope *scope = ctx->policy ? &ctx->policy->scope : &ctx->pa->scope;
    char sub[OR_CFG_PATH_MAX];
    ctx->selector = value;
    if (!or_cfg_expect(f, value, path, YAML_MAPPING_NODE))
        return;
    yaml_node_t *labels = or_cfg_lookup(f, value, "matchLabels");
    or_cfg_key_path(sub, path, "matchLabels");
    if (labels != NULL && or_cfg_labels(f, labels, sub, &scope->selector))
        scope->has_selector = scope->selector.count > 0;
}

static OR_CFG_HANDLER(on_target_ref)
{
    or_istio_ctx *ctx = target;
    ctx->target_ref = value;
    ctx->policy->scope.target_ref = true;
    or_cfg_warning(f, value, "%s: %s binds the policy to a Gateway or Service, not to a "
                             "sidecar: it does not apply here", ctx->policy->name, path);
}

static OR_CFG_HANDLER(on_action)
{
    static const char *const actions[] = {"ALLOW", "DENY", "AUDIT", "CUSTOM"};
    static const or_rbac_action values[] = {OR_RBAC_ALLOW, OR_RBAC_DENY, OR_RBAC_AUDIT};
    or_istio_ctx *ctx = target;
    int i = or_cfg_enum(f, value, path, actions, OR_CFG_COUNT(actions));
    if (i == 3)
        or_cfg_error(f, value, "%s: CUSTOM delegates to an external authorizer, which "
                               "Outrider does not have; write ALLOW or DENY rules instead", path);
    else if (i >= 0)
        ctx->policy->action = values[i];
}

static OR_CFG_HANDLER(on_provider)
{
    (void)target;
    or_cfg_error(f, value, "%s: a provider goes with action CUSTOM, which Outrider does not "
                           "support", path);
}

static void load_rule(or_cfg_file *f, yaml_node_t *item, const char *path, void *entry,
                      __attribute__((unused)) const void *arg)
{
    or_rbac_rule *rule = entry;
    rule->pos = or_cfg_pos(f, item);
    if (!or_cfg_is_null(item))
        or_cfg_walk(f, item, path, rule_keys, OR_CFG_COUNT(rule_keys), rule);
}

static OR_CFG_HANDLER(on_rules)
{
    or_policy_config *p = ((or_istio_ctx *)target)->policy;
    p->rules = or_cfg_load_items(f, value, path, true, sizeof(or_rbac_rule), &p->nrules,
                                 load_rule, NULL);
}

static const or_cfg_key authz_keys[] = {
    {"selector", false, on_selector, 0, 0},
    {"targetRef", false, on_target_ref, 0, 0},
    {"targetRefs", false, on_target_ref, 0, 0},
    {"action", false, on_action, 0, 0},
    {"provider", false, on_provider, 0, 0},
    {"rules", false, on_rules, 0, 0},
};

static int mtls_mode(or_cfg_file *f, yaml_node_t *value, const char *path, const char *name)
{
    static const char *const modes[] = {"UNSET", "STRICT", "PERMISSIVE", "DISABLE"};
    char sub[OR_CFG_PATH_MAX];
    or_cfg_key_path(sub, path, "mode");
    if (!or_cfg_expect(f, value, path, YAML_MAPPING_NODE))
        return -1;
    if (value->data.mapping.pairs.top - value->data.mapping.pairs.start > 1 ||
        (value->data.mapping.pairs.top > value->data.mapping.pairs.start &&
         or_cfg_lookup(f, value, "mode") == NULL))
        or_cfg_error(f, value, "%s: expected only `mode`", path);
    yaml_node_t *mode = or_cfg_lookup(f, value, "mode");
    int i = mode ? or_cfg_enum(f, mode, sub, modes, OR_CFG_COUNT(modes)) : 0;
    if (i == OR_MTLS_PERMISSIVE || i == OR_MTLS_DISABLE)
        or_cfg_warning(f, mode, "%s: %s: %s: traffic where it applies is not protected by "
                                "mTLS (plaintext is accepted)", name, sub, modes[i]);
    return i; /* the index is the or_mtls_mode */
}

static OR_CFG_HANDLER(on_mtls)
{
    int mode = mtls_mode(f, value, path, ((or_istio_ctx *)target)->pa->name);
    if (mode >= 0)
        ((or_istio_ctx *)target)->pa->mode = (or_mtls_mode)mode;
}

static OR_CFG_HANDLER(on_port_level)
{
    char sub[OR_CFG_PATH_MAX];
    or_peer_auth_config *pa = ((or_istio_ctx *)target)->pa;
    if (!or_cfg_expect(f, value, path, YAML_MAPPING_NODE))
        return;
    size_t n = (size_t)(value->data.mapping.pairs.top - value->data.mapping.pairs.start);
    if (n == 0 || (pa->ports = calloc(n, sizeof(*pa->ports))) == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        yaml_node_pair_t *pair = &value->data.mapping.pairs.start[i];
        yaml_node_t *k = yaml_document_get_node(&f->doc, pair->key);
        uint64_t port;
        or_cfg_key_path(sub, path,
                        k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "?");
        int mode = mtls_mode(f, yaml_document_get_node(&f->doc, pair->value), sub, pa->name);
        if (or_cfg_uint(f, k, path, 1, 65535, &port) && mode >= 0)
            pa->ports[pa->nports++] = (or_port_mtls){(uint16_t)port, (or_mtls_mode)mode};
    }
}

static const or_cfg_key peer_auth_keys[] = {
    {"selector", false, on_selector, 0, 0},
    {"mtls", false, on_mtls, 0, 0},
    {"portLevelMtls", false, on_port_level, 0, 0},
};

/* ---- documents ---- */

/* Istio reads the dry-run annotation with Go's strconv.ParseBool. */
static bool is_go_true(const char *text)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    for (size_t i = 0; i < OR_CFG_COUNT(yes); i++)
        if (strcmp(text, yes[i]) == 0)
            return true;
    return false;
}

/* "namespace/name" from metadata, or NULL after an error. */
static char *resource_name(or_cfg_file *f, yaml_node_t *doc, const char *kind, char **ns_out,
                           bool *dry_run)
{
    yaml_node_t *meta = or_cfg_lookup(f, doc, "metadata");
    yaml_node_t *name = meta ? or_cfg_lookup(f, meta, "name") : NULL;
    yaml_node_t *ns = meta ? or_cfg_lookup(f, meta, "namespace") : NULL;
    yaml_node_t *notes = meta ? or_cfg_lookup(f, meta, "annotations") : NULL;
    yaml_node_t *dry = notes && notes->type == YAML_MAPPING_NODE
                           ? or_cfg_lookup(f, notes, "istio.io/dry-run")
                           : NULL;
    const char *name_text = name ? or_cfg_string(f, name, "metadata.name") : NULL;
    const char *ns_text = ns ? or_cfg_namespace(f, ns, "metadata.namespace") : NULL;
    char *full = NULL;
    if (name == NULL || ns == NULL)
        or_cfg_error(f, meta ? meta : doc, "%s: metadata.name and metadata.namespace are "
                     "required (the namespace decides where an Istio resource applies)", kind);
    *dry_run = dry != NULL && dry->type == YAML_SCALAR_NODE &&
               is_go_true((const char *)dry->data.scalar.value);
    if (name_text == NULL || ns_text == NULL)
        return NULL;
    if (asprintf(&full, "%s/%s", ns_text, name_text) < 0 || !(*ns_out = strdup(ns_text))) {
        free(full);
        or_cfg_error(f, doc, "out of memory");
        return NULL;
    }
    return full;
}

static void load_authz(or_cfg_file *f, yaml_node_t *doc, yaml_node_t *spec, or_config *cfg)
{
    or_istio_ctx ctx = {cfg, NULL, NULL, NULL, NULL};
    if ((ctx.policy = or_cfg_new_policy(f, doc, cfg)) == NULL)
        return;
    ctx.policy->origin = OR_POLICY_ISTIO;
    ctx.policy->action = OR_RBAC_ALLOW;
    ctx.policy->name = resource_name(f, doc, "AuthorizationPolicy", &ctx.policy->scope.namespace,
                                     &ctx.policy->dry_run);
    if (ctx.policy->name == NULL)
        return;
    cfg->rbac.nistio++;
    if (spec != NULL && !or_cfg_is_null(spec))
        or_cfg_walk(f, spec, "spec", authz_keys, OR_CFG_COUNT(authz_keys), &ctx);
    if (ctx.selector != NULL && ctx.target_ref != NULL)
        or_cfg_error(f, ctx.target_ref, "%s: selector and targetRef cannot both be set",
                     ctx.policy->name);
    check_jwt(f, ctx.policy);
}

static void load_peer_auth(or_cfg_file *f, yaml_node_t *doc, yaml_node_t *spec, or_config *cfg)
{
    bool dry_run;
    or_peer_auth_config *grown =
        realloc(cfg->rbac.peer_auths, (cfg->rbac.npeer_auths + 1) * sizeof(*grown));
    if (grown == NULL) {
        or_cfg_error(f, doc, "out of memory");
        return;
    }
    cfg->rbac.peer_auths = grown;
    or_istio_ctx ctx = {cfg, NULL, &grown[cfg->rbac.npeer_auths++], NULL, NULL};
    memset(ctx.pa, 0, sizeof(*ctx.pa));
    ctx.pa->pos = or_cfg_pos(f, doc);
    ctx.pa->name = resource_name(f, doc, "PeerAuthentication", &ctx.pa->scope.namespace,
                                 &dry_run);
    if (ctx.pa->name == NULL)
        return;
    if (spec != NULL && !or_cfg_is_null(spec))
        or_cfg_walk(f, spec, "spec", peer_auth_keys, OR_CFG_COUNT(peer_auth_keys), &ctx);
    if (ctx.pa->nports > 0 && !ctx.pa->scope.has_selector)
        or_cfg_error(f, doc, "%s: portLevelMtls needs a selector (Istio rejects it in a "
                             "namespace or mesh policy)", ctx.pa->name);
}

static const char *scalar_at(or_cfg_file *f, const yaml_node_t *map, const char *key)
{
    yaml_node_t *node = or_cfg_lookup(f, map, key);
    return node && node->type == YAML_SCALAR_NODE ? (const char *)node->data.scalar.value : "";
}

static void load_resource(or_cfg_file *f, yaml_node_t *doc, or_config *cfg)
{
    const char *api = scalar_at(f, doc, "apiVersion"), *kind = scalar_at(f, doc, "kind");
    if (strcmp(api, "v1") == 0 && strcmp(kind, "List") == 0) {
        yaml_node_t *items = or_cfg_lookup(f, doc, "items");
        if (items == NULL || !or_cfg_expect(f, items, "items", YAML_SEQUENCE_NODE))
            return;
        for (size_t i = 0; i < or_cfg_length(items); i++) {
            yaml_node_t *item = or_cfg_item(f, items, i);
            if (item != NULL && or_cfg_expect(f, item, "items[]", YAML_MAPPING_NODE))
                load_resource(f, item, cfg);
        }
        return;
    }
    bool istio = strcmp(api, "security.istio.io/v1") == 0 ||
                 strcmp(api, "security.istio.io/v1beta1") == 0;
    yaml_node_t *spec = or_cfg_lookup(f, doc, "spec");
    if (istio && strcmp(kind, "AuthorizationPolicy") == 0)
        load_authz(f, doc, spec, cfg);
    else if (istio && strcmp(kind, "PeerAuthentication") == 0)
        load_peer_auth(f, doc, spec, cfg);
    else
        or_cfg_warning(f, doc, "skipped: %s %s is not an AuthorizationPolicy or "
                               "PeerAuthentication of security.istio.io/v1 or v1beta1",
                       api[0] ? api : "(no apiVersion)", kind[0] ? kind : "(no kind)");
}

bool or_cfg_istio_document(or_cfg_file *f, yaml_node_t *root, or_config *cfg)
{
    if (or_cfg_lookup(f, root, "apiVersion") == NULL && or_cfg_lookup(f, root, "kind") == NULL)
        return false;
    load_resource(f, root, cfg);
    return true;
}
