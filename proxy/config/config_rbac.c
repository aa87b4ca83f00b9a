/*
 * config_rbac: the RBAC policies of a configuration, as written.
 *
 * rbac.policies is either a list of policies written inline or the name of
 * a file that holds them, either as `policies: [...]` (the form used in the
 * docs) or as a bare top-level list. A policies file is parsed as its own
 * or_cfg_file, so its messages and source positions name that file, and it
 * is added to the config's file list so positions stay valid as long as the
 * config lives.
 *
 * The shape follows Istio's AuthorizationPolicy: a policy has rules; a rule
 * has `from` sources, `to` operations and `when` conditions; every match
 * field has a not_ twin. Each of those mappings is a table of or_cfg_key,
 * and the list-valued fields share one handler that knows, from the key's
 * kind, what an element must look like: a SPIFFE ID or pattern, an HTTP
 * method, a path, a port, a CIDR block. Patterns are exact, "prefix*",
 * "*suffix" or "*"; a '*' anywhere else is an error, because the matcher
 * would take it literally and the policy would silently never match.
 *
 * Empty lists are refused everywhere ("principals: []" would otherwise read
 * as "match anything" to the matcher while the author meant "nobody"); the
 * way to match anything is to leave the key out. SPIFFE IDs are checked with
 * spiffe.c, plus the rule that a workload ID has a path.
 *
 * The readers it uses (config_yaml.c) each report their own error, so a
 * handler is usually a reader call and a store.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"

/* What the elements of a list-valued match field are. */
enum { LIST_PRINCIPAL, LIST_NAMESPACE, LIST_METHOD, LIST_PATH, LIST_HOST, LIST_VALUE, LIST_PORT,
       LIST_CIDR };

typedef struct {
    or_config *cfg;
    or_policy_config *policy;
    size_t index;
} or_policy_ctx;

/* ---- list elements ---- */

/* Exact text, "prefix*", "*suffix" or "*". */
static bool is_pattern(const char *text)
{
    const char *star = strchr(text, '*');
    if (star == NULL || strcmp(text, "*") == 0)
        return true;
    if (strchr(star + 1, '*') != NULL)
        return false;
    return star == text || star[1] == '\0';
}

static bool is_method(const char *text)
{
    return text[0] >= 'A' && text[0] <= 'Z' &&
           strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == strlen(text);
}

static bool is_principal_pattern(const char *text)
{
    size_t len = strlen(text);
    if (strcmp(text, "*") == 0)
        return true;
    if (text[len - 1] == '*')
        return strncmp(text, "spiffe://", 9) == 0;
    return text[0] == '*' &&
           or_cfg_all_in(text + 1, len - 1,
                  "/:abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
}

static bool check_principal(or_cfg_file *f, const yaml_node_t *node, const char *path,
                            const char *text)
{
    char quoted[OR_CFG_QUOTE_MAX];
    const char *why;
    or_spiffe_id id;
    if (strchr(text, '*') != NULL) {
        if (is_principal_pattern(text))
            return true;
        or_cfg_error(f, node, "%s: expected \"*\", a SPIFFE ID, \"spiffe://...*\" or \"*...\", "
                              "got %s", path, or_cfg_quote(text, quoted));
        return false;
    }
    if (or_cfg_spiffe_id_check(text, &id, &why) == 0)
        return true;
    or_cfg_error(f, node, "%s: invalid SPIFFE ID %s: %s", path, or_cfg_quote(text, quoted), why);
    return false;
}

/* Reports what is wrong with one string element, if anything. */
static bool check_element(or_cfg_file *f, const yaml_node_t *node, const char *path, int kind,
                          const char *text)
{
    char quoted[OR_CFG_QUOTE_MAX];
    if (text[0] == '\0') {
        or_cfg_error(f, node, "%s: must not be empty", path);
        return false;
    }
    if (kind == LIST_METHOD) {
        if (is_method(text))
            return true;
        or_cfg_error(f, node, "%s: expected an upper-case HTTP method such as GET, got %s", path,
                     or_cfg_quote(text, quoted));
        return false;
    }
    if (!is_pattern(text)) {
        or_cfg_error(f, node, "%s: '*' may only stand alone or come first or last, got %s",
                     path, or_cfg_quote(text, quoted));
        return false;
    }
    if (kind == LIST_PRINCIPAL)
        return check_principal(f, node, path, text);
    if (kind == LIST_PATH && text[0] != '/' && text[0] != '*') {
        or_cfg_error(f, node, "%s: expected a path starting with '/' or a pattern such as "
                              "\"*.json\", got %s", path, or_cfg_quote(text, quoted));
        return false;
    }
    return true;
}

/* Element readers: each reads one list item into slot, or reports why not. */
static bool read_string(or_cfg_file *f, const yaml_node_t *item, const char *path, int kind,
                        void *slot)
{
    const char *text = or_cfg_string(f, item, path);
    if (text == NULL || !check_element(f, item, path, kind, text))
        return false;
    return (*(char **)slot = or_cfg_strdup(f, item, text)) != NULL;
}

static bool read_port(or_cfg_file *f, const yaml_node_t *item, const char *path,
                      __attribute__((unused)) int kind, void *slot)
{
    uint64_t port;
    if (!or_cfg_uint(f, item, path, 1, 65535, &port))
        return false;
    *(uint16_t *)slot = (uint16_t)port;
    return true;
}

static bool read_cidr(or_cfg_file *f, const yaml_node_t *item, const char *path,
                      __attribute__((unused)) int kind, void *slot)
{
    char quoted[OR_CFG_QUOTE_MAX];
    const char *why, *text = or_cfg_string(f, item, path);
    if (text == NULL)
        return false;
    if (or_cidr_parse(text, slot, &why) == 0)
        return true;
    or_cfg_error(f, item, "%s: invalid CIDR block %s: %s", path, or_cfg_quote(text, quoted), why);
    return false;
}

static void attach_list(const or_cfg_key *key, void *target, void *items, size_t count)
{
    if (key->kind == LIST_PORT) {
        OR_CFG_FIELD(target, key, or_portlist)->items = items;
        OR_CFG_FIELD(target, key, or_portlist)->count = count;
    } else if (key->kind == LIST_CIDR) {
        OR_CFG_FIELD(target, key, or_cidrlist)->items = items;
        OR_CFG_FIELD(target, key, or_cidrlist)->count = count;
    } else {
        OR_CFG_FIELD(target, key, or_strlist)->items = items;
        OR_CFG_FIELD(target, key, or_strlist)->count = count;
    }
}

/* Every list-valued match field: key->kind says what the elements are. */
static OR_CFG_HANDLER(on_list)
{
    char item_path[OR_CFG_PATH_MAX];
    bool (*read)(or_cfg_file *, const yaml_node_t *, const char *, int, void *) =
        key->kind == LIST_PORT ? read_port : key->kind == LIST_CIDR ? read_cidr : read_string;
    size_t size = key->kind == LIST_PORT   ? sizeof(uint16_t)
                  : key->kind == LIST_CIDR ? sizeof(or_cidr)
                                           : sizeof(char *);
    if (!or_cfg_expect_list(f, value, path))
        return;
    size_t n = or_cfg_length(value), count = 0;
    char *items = calloc(n, size);
    if (items == NULL) {
        or_cfg_error(f, value, "out of memory");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = or_cfg_item(f, value, i);
        if (item == NULL)
            break;
        or_cfg_index_path(item_path, path, i);
        if (read(f, item, item_path, key->kind, items + count * size))
            count++;
    }
    attach_list(key, target, items, count);
}

/* ---- sources, operations, conditions, rules ---- */

#define SOURCE_LIST(name, kind) {#name, false, on_list, offsetof(or_rbac_source, name), kind}
static const or_cfg_key source_keys[] = {
    SOURCE_LIST(principals, LIST_PRINCIPAL), SOURCE_LIST(not_principals, LIST_PRINCIPAL),
    SOURCE_LIST(namespaces, LIST_NAMESPACE), SOURCE_LIST(not_namespaces, LIST_NAMESPACE),
    SOURCE_LIST(ip_blocks, LIST_CIDR),       SOURCE_LIST(not_ip_blocks, LIST_CIDR),
};

#define OPERATION_LIST(name, kind) {#name, false, on_list, offsetof(or_rbac_operation, name), kind}
static const or_cfg_key operation_keys[] = {
    OPERATION_LIST(methods, LIST_METHOD), OPERATION_LIST(not_methods, LIST_METHOD),
    OPERATION_LIST(paths, LIST_PATH),     OPERATION_LIST(not_paths, LIST_PATH),
    OPERATION_LIST(ports, LIST_PORT),     OPERATION_LIST(not_ports, LIST_PORT),
    OPERATION_LIST(hosts, LIST_HOST),     OPERATION_LIST(not_hosts, LIST_HOST),
};

static OR_CFG_HANDLER(on_condition_header)
{
    static const char token_chars[] = "!#$%&'*+-.^_`|~0123456789"
                                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    char quoted[OR_CFG_QUOTE_MAX];
    or_rbac_condition *condition = target;
    const char *text = or_cfg_string(f, value, path);
    if (text == NULL)
        return;
    if (text[0] == '\0' || strspn(text, token_chars) != strlen(text)) {
        or_cfg_error(f, value, "%s: expected an HTTP header name, got %s", path,
                     or_cfg_quote(text, quoted));
        return;
    }
    if ((condition->header = or_cfg_strdup(f, value, text)) == NULL)
        return;
    for (char *p = condition->header; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

static const or_cfg_key condition_keys[] = {
    {"header", true, on_condition_header, 0, 0},
    {"values", false, on_list, offsetof(or_rbac_condition, values), LIST_VALUE},
    {"not_values", false, on_list, offsetof(or_rbac_condition, not_values), LIST_VALUE},
};

/* One kind of rule section: from, to or when. */
typedef struct {
    const or_cfg_key *keys;
    size_t nkeys;
    size_t size;       /* of one entry */
    size_t pos_offset; /* of its or_source_pos */
    bool needs_values; /* a condition must say what to compare with */
} entry_shape;

static const entry_shape source_shape = {source_keys, OR_CFG_COUNT(source_keys),
                                         sizeof(or_rbac_source), offsetof(or_rbac_source, pos),
                                         false};
static const entry_shape operation_shape = {operation_keys, OR_CFG_COUNT(operation_keys),
                                            sizeof(or_rbac_operation),
                                            offsetof(or_rbac_operation, pos), false};
static const entry_shape condition_shape = {condition_keys, OR_CFG_COUNT(condition_keys),
                                            sizeof(or_rbac_condition),
                                            offsetof(or_rbac_condition, pos), true};

static void load_entry(or_cfg_file *f, const entry_shape *shape, void *entry, yaml_node_t *node,
                       const char *path)
{
    *(or_source_pos *)((char *)entry + shape->pos_offset) = or_cfg_pos(f, node);
    int known = or_cfg_walk(f, node, path, shape->keys, shape->nkeys, entry);
    if (known == 0)
        or_cfg_error(f, node, "%s: empty entry (leave the list out to match anything)", path);
    if (known > 0 && shape->needs_values && or_cfg_lookup(f, node, "values") == NULL &&
        or_cfg_lookup(f, node, "not_values") == NULL)
        or_cfg_error(f, node, "%s: a condition needs values or not_values", path);
}

/* Allocates and loads the entries of one rule section. Returns the array
 * with its length in *count (entries that failed stay zeroed, so the
 * array can always be freed as a whole), or NULL after reporting why. */
static void *load_entries(or_cfg_file *f, const entry_shape *shape, yaml_node_t *list,
                          const char *path, size_t *count)
{
    char item_path[OR_CFG_PATH_MAX];
    *count = 0;
    if (!or_cfg_expect_list(f, list, path))
        return NULL;
    size_t n = or_cfg_length(list);
    char *entries = calloc(n, shape->size);
    if (entries == NULL) {
        or_cfg_error(f, list, "out of memory");
        return NULL;
    }
    *count = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = or_cfg_item(f, list, i);
        if (item == NULL)
            break;
        or_cfg_index_path(item_path, path, i);
        load_entry(f, shape, entries + i * shape->size, item, item_path);
    }
    return entries;
}

/* from, to and when: key->kind is 0, 1 or 2. */
static OR_CFG_HANDLER(on_rule_section)
{
    or_rbac_rule *rule = target;
    if (key->kind == 0)
        rule->from = load_entries(f, &source_shape, value, path, &rule->nfrom);
    else if (key->kind == 1)
        rule->to = load_entries(f, &operation_shape, value, path, &rule->nto);
    else
        rule->when = load_entries(f, &condition_shape, value, path, &rule->nwhen);
}

static const or_cfg_key rule_keys[] = {
    {"from", false, on_rule_section, 0, 0},
    {"to", false, on_rule_section, 0, 1},
    {"when", false, on_rule_section, 0, 2},
};

/* ---- policies ---- */

static OR_CFG_HANDLER(on_policy_name)
{
    char quoted[OR_CFG_QUOTE_MAX];
    or_policy_ctx *ctx = target;
    const char *text = or_cfg_name(f, value, path);
    if (text == NULL)
        return;
    for (size_t i = 0; i < ctx->index; i++) {
        const or_policy_config *other = &ctx->cfg->rbac.policies[i];
        if (other->name != NULL && strcmp(other->name, text) == 0) {
            or_cfg_error(f, value, "%s: duplicate policy name %s (also at line %lu)", path,
                         or_cfg_quote(text, quoted), other->pos.line);
            return;
        }
    }
    ctx->policy->name = or_cfg_strdup(f, value, text);
}

static OR_CFG_HANDLER(on_policy_service)
{
    or_policy_ctx *ctx = target;
    const char *text = or_cfg_name(f, value, path);
    if (text != NULL)
        ctx->policy->service = or_cfg_strdup(f, value, text);
}

static OR_CFG_HANDLER(on_policy_action)
{
    static const char *const actions[] = {"allow", "deny", "audit"};
    static const or_rbac_action values[] = {OR_RBAC_ALLOW, OR_RBAC_DENY, OR_RBAC_AUDIT};
    or_policy_ctx *ctx = target;
    int i = or_cfg_enum(f, value, path, actions, OR_CFG_COUNT(actions));
    if (i >= 0)
        ctx->policy->action = values[i];
}

static OR_CFG_HANDLER(on_policy_dry_run)
{
    or_cfg_bool(f, value, path, &((or_policy_ctx *)target)->policy->dry_run);
}

static OR_CFG_HANDLER(on_policy_rules)
{
    char item_path[OR_CFG_PATH_MAX];
    or_policy_config *policy = ((or_policy_ctx *)target)->policy;
    if (!or_cfg_expect_list(f, value, path))
        return;
    size_t n = or_cfg_length(value);
    if ((policy->rules = calloc(n, sizeof(or_rbac_rule))) == NULL) {
        or_cfg_error(f, value, "out of memory");
        return;
    }
    policy->nrules = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = or_cfg_item(f, value, i);
        if (item == NULL)
            return;
        or_cfg_index_path(item_path, path, i);
        policy->rules[i].pos = or_cfg_pos(f, item);
        or_cfg_walk(f, item, item_path, rule_keys, OR_CFG_COUNT(rule_keys), &policy->rules[i]);
    }
}

static const or_cfg_key policy_keys[] = {
    {"name", true, on_policy_name, 0, 0},
    {"service", false, on_policy_service, 0, 0},
    {"action", true, on_policy_action, 0, 0},
    {"dry_run", false, on_policy_dry_run, 0, 0},
    {"rules", false, on_policy_rules, 0, 0},
};

static void load_policy_list(or_cfg_file *f, yaml_node_t *list, const char *path,
                             or_config *cfg)
{
    char item_path[OR_CFG_PATH_MAX];
    if (!or_cfg_expect(f, list, path, YAML_SEQUENCE_NODE))
        return;
    size_t n = or_cfg_length(list);
    if (n == 0)
        return;
    if ((cfg->rbac.policies = calloc(n, sizeof(or_policy_config))) == NULL) {
        or_cfg_error(f, list, "out of memory");
        return;
    }
    cfg->rbac.npolicies = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = or_cfg_item(f, list, i);
        if (item == NULL)
            return;
        or_policy_ctx ctx = {cfg, &cfg->rbac.policies[i], i};
        ctx.policy->pos = or_cfg_pos(f, item);
        or_cfg_index_path(item_path, path, i);
        or_cfg_walk(f, item, item_path, policy_keys, OR_CFG_COUNT(policy_keys), &ctx);
    }
}

static OR_CFG_HANDLER(on_policies_key)
{
    load_policy_list(f, value, path, target);
}

static const or_cfg_key policies_file_keys[] = {
    {"policies", true, on_policies_key, 0, 0},
};

static void load_policies_root(or_cfg_file *pf, yaml_node_t *root, or_config *cfg)
{
    if (root == NULL)
        or_diag_add(pf->diag, OR_DIAG_ERROR, pf->file, 0, 0,
                    "the file is empty; write \"policies: []\" for no policies");
    else if (root->type == YAML_SEQUENCE_NODE)
        load_policy_list(pf, root, "policies", cfg);
    else if (root->type == YAML_MAPPING_NODE)
        or_cfg_walk(pf, root, "", policies_file_keys, OR_CFG_COUNT(policies_file_keys), cfg);
    else
        or_cfg_error(pf, root, "expected a mapping with 'policies' or a list of policies, got %s",
                     or_cfg_type_name(root));
}

static void load_policies_file(or_cfg_file *f, yaml_node_t *value, const char *path,
                               const char *text, or_config *cfg)
{
    or_cfg_file pf;
    yaml_node_t *root;
    const char *file;
    if (text[0] == '\0') {
        or_cfg_error(f, value, "%s: must not be empty", path);
        return;
    }
    if ((cfg->rbac.policies_file = or_cfg_resolve(f, value, text)) == NULL)
        return;
    if (or_cfg_add_file(cfg, cfg->rbac.policies_file, &file) != 0) {
        or_cfg_error(f, value, "out of memory");
        return;
    }
    int rc = or_cfg_open_in(&pf, f->diag, file, f->texts, &root);
    if (rc == OR_CFG_UNREADABLE)
        or_cfg_error(f, value, "%s: cannot read \"%s\": %s", path, file, pf.why);
    else if (rc == 0)
        load_policies_root(&pf, root, cfg);
    or_cfg_close(&pf);
}

void or_cfg_load_policies(or_cfg_file *f, yaml_node_t *value, const char *path, or_config *cfg)
{
    if (value->type == YAML_SEQUENCE_NODE) {
        load_policy_list(f, value, path, cfg);
        return;
    }
    if (value->type == YAML_SCALAR_NODE && !or_cfg_is_null(value)) {
        const char *text = or_cfg_string(f, value, path);
        if (text != NULL)
            load_policies_file(f, value, path, text, cfg);
        return;
    }
    or_cfg_error(f, value, "%s: expected a file name or a list of policies, got %s", path,
                 or_cfg_type_name(value));
}

/* ---- freeing ---- */

/* Frees the list fields of one entry, found through its key table. */
static void free_lists(void *entry, const or_cfg_key *keys, size_t nkeys)
{
    for (const or_cfg_key *key = keys; key < keys + nkeys; key++) {
        if (key->handle != on_list)
            continue;
        if (key->kind == LIST_PORT) {
            free(OR_CFG_FIELD(entry, key, or_portlist)->items);
        } else if (key->kind == LIST_CIDR) {
            free(OR_CFG_FIELD(entry, key, or_cidrlist)->items);
        } else {
            or_strlist *list = OR_CFG_FIELD(entry, key, or_strlist);
            for (size_t i = 0; i < list->count; i++)
                free(list->items[i]);
            free(list->items);
        }
    }
}

static void free_rule(or_rbac_rule *rule)
{
    for (size_t i = 0; i < rule->nfrom; i++)
        free_lists(&rule->from[i], source_keys, OR_CFG_COUNT(source_keys));
    for (size_t i = 0; i < rule->nto; i++)
        free_lists(&rule->to[i], operation_keys, OR_CFG_COUNT(operation_keys));
    for (size_t i = 0; i < rule->nwhen; i++) {
        free(rule->when[i].header);
        free_lists(&rule->when[i], condition_keys, OR_CFG_COUNT(condition_keys));
    }
    free(rule->from);
    free(rule->to);
    free(rule->when);
}

void or_cfg_free_policies(or_config *cfg)
{
    for (size_t i = 0; i < cfg->rbac.npolicies; i++) {
        or_policy_config *policy = &cfg->rbac.policies[i];
        for (size_t j = 0; j < policy->nrules; j++)
            free_rule(&policy->rules[j]);
        free(policy->rules);
        free(policy->name);
        free(policy->service);
    }
    free(cfg->rbac.policies);
}
