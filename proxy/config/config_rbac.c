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
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config_yaml.h"

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
    if (kind == OR_CFG_LIST_METHOD) {
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
    if (kind == OR_CFG_LIST_PRINCIPAL)
        return check_principal(f, node, path, text);
    if (kind == OR_CFG_LIST_PATH && text[0] != '/' && text[0] != '*') {
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
    char quoted[OR_CFG_QUOTE_MAX], *converted = NULL;
    const char *text = or_cfg_string(f, item, path);
    if (text == NULL)
        return false;
    if ((kind & OR_CFG_LIST_ISTIO) && (kind & 0xff) == OR_CFG_LIST_PATH && strchr(text, '{')) {
        or_cfg_error(f, item, "%s: path templates such as {*} and {**} are not supported; "
                              "write a prefix (\"/api/*\") or suffix pattern, got %s", path,
                     or_cfg_quote(text, quoted));
        return false;
    }
    /* Istio writes principals without the scheme: "cluster.local/ns/a/sa/b". */
    if ((kind & OR_CFG_LIST_ISTIO) && (kind & 0xff) == OR_CFG_LIST_PRINCIPAL && text[0] != '*' &&
        strncmp(text, "spiffe://", 9) != 0) {
        if (asprintf(&converted, "spiffe://%s", text) < 0) {
            or_cfg_error(f, item, "out of memory");
            return false;
        }
        text = converted;
    }
    bool ok = check_element(f, item, path, kind & 0xff, text) &&
              (*(char **)slot = or_cfg_strdup(f, item, text)) != NULL;
    free(converted);
    return ok;
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
    if ((key->kind & 0xff) == OR_CFG_LIST_PORT) {
        OR_CFG_FIELD(target, key, or_portlist)->items = items;
        OR_CFG_FIELD(target, key, or_portlist)->count = count;
    } else if ((key->kind & 0xff) == OR_CFG_LIST_CIDR) {
        OR_CFG_FIELD(target, key, or_cidrlist)->items = items;
        OR_CFG_FIELD(target, key, or_cidrlist)->count = count;
    } else {
        OR_CFG_FIELD(target, key, or_strlist)->items = items;
        OR_CFG_FIELD(target, key, or_strlist)->count = count;
    }
}

/* Every list-valued match field: key->kind says what the elements are.
 * Istio's lists (OR_CFG_LIST_ISTIO) may be empty, which Istio reads as
 * unset; Outrider's own may not. */
OR_CFG_HANDLER(or_cfg_on_list)
{
    char item_path[OR_CFG_PATH_MAX];
    int base = key->kind & 0xff;
    bool (*read)(or_cfg_file *, const yaml_node_t *, const char *, int, void *) =
        base == OR_CFG_LIST_PORT ? read_port : base == OR_CFG_LIST_CIDR ? read_cidr : read_string;
    size_t size = base == OR_CFG_LIST_PORT   ? sizeof(uint16_t)
                  : base == OR_CFG_LIST_CIDR ? sizeof(or_cidr)
                                             : sizeof(char *);
    if ((key->kind & OR_CFG_LIST_ISTIO) && value->type == YAML_SEQUENCE_NODE &&
        or_cfg_length(value) == 0)
        return;
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

#define SOURCE_LIST(name, kind) {#name, false, or_cfg_on_list, offsetof(or_rbac_source, name), kind}
static const or_cfg_key source_keys[] = {
    SOURCE_LIST(principals, OR_CFG_LIST_PRINCIPAL), SOURCE_LIST(not_principals, OR_CFG_LIST_PRINCIPAL),
    SOURCE_LIST(namespaces, OR_CFG_LIST_NAMESPACE), SOURCE_LIST(not_namespaces, OR_CFG_LIST_NAMESPACE),
    SOURCE_LIST(ip_blocks, OR_CFG_LIST_CIDR),       SOURCE_LIST(not_ip_blocks, OR_CFG_LIST_CIDR),
};

#define OPERATION_LIST(name, kind) {#name, false, or_cfg_on_list, offsetof(or_rbac_operation, name), kind}
static const or_cfg_key operation_keys[] = {
    OPERATION_LIST(methods, OR_CFG_LIST_METHOD), OPERATION_LIST(not_methods, OR_CFG_LIST_METHOD),
    OPERATION_LIST(paths, OR_CFG_LIST_PATH),     OPERATION_LIST(not_paths, OR_CFG_LIST_PATH),
    OPERATION_LIST(ports, OR_CFG_LIST_PORT),     OPERATION_LIST(not_ports, OR_CFG_LIST_PORT),
    OPERATION_LIST(hosts, OR_CFG_LIST_HOST),     OPERATION_LIST(not_hosts, OR_CFG_LIST_HOST),
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
    {"values", false, or_cfg_on_list, offsetof(or_rbac_condition, values), OR_CFG_LIST_VALUE},
    {"not_values", false, or_cfg_on_list, offsetof(or_rbac_condition, not_values), OR_CFG_LIST_VALUE},
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

static void load_entry(or_cfg_file *f, yaml_node_t *node, const char *path, void *entry,
                       const void *shape_arg)
{
    const entry_shape *shape = shape_arg;
    *(or_source_pos *)((char *)entry + shape->pos_offset) = or_cfg_pos(f, node);
    int known = or_cfg_walk(f, node, path, shape->keys, shape->nkeys, entry);
    if (known == 0)
        or_cfg_error(f, node, "%s: empty entry (leave the list out to match anything)", path);
    if (known > 0 && shape->needs_values && or_cfg_lookup(f, node, "values") == NULL &&
        or_cfg_lookup(f, node, "not_values") == NULL)
        or_cfg_error(f, node, "%s: a condition needs values or not_values", path);
}

static void *load_entries(or_cfg_file *f, const entry_shape *shape, yaml_node_t *list,
                          const char *path, size_t *count)
{
    return or_cfg_load_items(f, list, path, false, shape->size, count, load_entry, shape);
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
        ctx->policy->scope.service = or_cfg_strdup(f, value, text);
}

static OR_CFG_HANDLER(on_policy_namespace)
{
    or_policy_ctx *ctx = target;
    const char *text = or_cfg_namespace(f, value, path);
    if (text == NULL)
        return;
    if (ctx->policy->scope.service != NULL)
        or_cfg_error(f, value, "%s: a policy applies to one service or to one namespace; "
                               "remove `service` or `namespace`", path);
    else
        ctx->policy->scope.namespace = or_cfg_strdup(f, value, text);
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

static void load_rule(or_cfg_file *f, yaml_node_t *item, const char *path, void *entry,
                      __attribute__((unused)) const void *arg)
{
    or_rbac_rule *rule = entry;
    rule->pos = or_cfg_pos(f, item);
    or_cfg_walk(f, item, path, rule_keys, OR_CFG_COUNT(rule_keys), rule);
}

static OR_CFG_HANDLER(on_policy_rules)
{
    or_policy_config *policy = ((or_policy_ctx *)target)->policy;
    policy->rules = or_cfg_load_items(f, value, path, false, sizeof(or_rbac_rule),
                                      &policy->nrules, load_rule, NULL);
}

static const or_cfg_key policy_keys[] = {
    {"name", true, on_policy_name, 0, 0},
    {"service", false, on_policy_service, 0, 0},
    {"namespace", false, on_policy_namespace, 0, 0},
    {"action", true, on_policy_action, 0, 0},
    {"dry_run", false, on_policy_dry_run, 0, 0},
    {"rules", false, on_policy_rules, 0, 0},
};

or_policy_config *or_cfg_new_policy(or_cfg_file *f, const yaml_node_t *at, or_config *cfg)
{
    size_t n = cfg->rbac.npolicies;
    or_policy_config *grown = realloc(cfg->rbac.policies, (n + 1) * sizeof(*grown));
    if (grown == NULL) {
        or_cfg_error(f, at, "out of memory");
        return NULL;
    }
    cfg->rbac.policies = grown;
    cfg->rbac.npolicies = n + 1;
    memset(&grown[n], 0, sizeof(grown[n]));
    grown[n].pos = or_cfg_pos(f, at);
    return &grown[n];
}

static void load_policy_list(or_cfg_file *f, yaml_node_t *list, const char *path,
                             or_config *cfg)
{
    char item_path[OR_CFG_PATH_MAX];
    if (!or_cfg_expect(f, list, path, YAML_SEQUENCE_NODE))
        return;
    size_t n = or_cfg_length(list);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = or_cfg_item(f, list, i);
        if (item == NULL)
            return;
        or_policy_ctx ctx = {cfg, NULL, cfg->rbac.npolicies};
        if ((ctx.policy = or_cfg_new_policy(f, item, cfg)) == NULL)
            return;
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

/* One document of a policies file: Istio resources, or Outrider's own
 * `policies: [...]` or bare list. */
static void load_policies_root(or_cfg_file *pf, yaml_node_t *root, or_config *cfg)
{
    if (root->type == YAML_SEQUENCE_NODE)
        load_policy_list(pf, root, "policies", cfg);
    else if (root->type == YAML_MAPPING_NODE && !or_cfg_istio_document(pf, root, cfg))
        or_cfg_walk(pf, root, "", policies_file_keys, OR_CFG_COUNT(policies_file_keys), cfg);
    else if (root->type != YAML_MAPPING_NODE)
        or_cfg_error(pf, root, "expected a mapping with 'policies', a list of policies or an "
                               "Istio resource, got %s", or_cfg_type_name(root));
}

/* Reads every document of one policies file. `at` names it in messages. */
static void load_policies_file(or_cfg_file *f, const yaml_node_t *at, const char *path,
                               const char *name, or_config *cfg)
{
    or_cfg_file pf;
    yaml_node_t *root;
    const char *file;
    if (or_cfg_add_file(cfg, name, &file) != 0) {
        or_cfg_error(f, at, "out of memory");
        return;
    }
    int rc = or_cfg_open_docs(&pf, f->diag, file, f->texts, &root);
    if (rc == OR_CFG_UNREADABLE)
        or_cfg_error(f, at, "%s: cannot read \"%s\": %s", path, file, pf.why);
    if (rc == 0 && root == NULL)
        or_diag_add(pf.diag, OR_DIAG_ERROR, pf.file, 0, 0,
                    "the file is empty; write \"policies: []\" for no policies");
    for (int more = rc == 0 && root != NULL; more > 0; more = or_cfg_next_doc(&pf, &root))
        if (root != NULL && !or_cfg_is_null(root))
            load_policies_root(&pf, root, cfg);
    or_cfg_close(&pf);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_yaml_name(const char *name, size_t len)
{
    return name[0] != '.' && ((len > 5 && strcmp(name + len - 5, ".yaml") == 0) ||
                              (len > 4 && strcmp(name + len - 4, ".yml") == 0));
}

/* The *.yaml and *.yml files directly in `dir`, sorted; from `texts` when
 * the config comes from there. Returns how many, or -1 (why in errno). */
static ssize_t list_policy_files(const char *dir, const or_config_texts *texts, char ***out)
{
    size_t n = 0, dlen = strlen(dir);
    char **names = NULL;
    DIR *d = texts ? NULL : opendir(dir);
    if (texts == NULL && d == NULL)
        return -1;
    for (size_t i = 0;; i++) {
        const char *name;
        if (texts != NULL) {
            if (i == texts->nfiles)
                break;
            name = texts->files[i].path;
            if (strncmp(name, dir, dlen) != 0 || name[dlen] != '/' ||
                strchr(name + dlen + 1, '/') != NULL)
                continue;
            name += dlen + 1;
        } else {
            struct dirent *e = readdir(d);
            if (e == NULL)
                break;
            if (e->d_type != DT_REG && e->d_type != DT_LNK && e->d_type != DT_UNKNOWN)
                continue;
            name = e->d_name;
        }
        if (!is_yaml_name(name, strlen(name)))
            continue;
        char **grown = realloc(names, (n + 1) * sizeof(*names));
        if (grown == NULL || asprintf(&grown[n], "%s/%s", dir, name) < 0) {
            names = grown ? grown : names;
            break;
        }
        names = grown;
        n++;
    }
    if (d != NULL)
        closedir(d);
    if (n > 0)
        qsort(names, n, sizeof(*names), by_name);
    *out = names;
    return (ssize_t)n;
}

/* A directory named in texts: some file lies below it. */
static bool texts_dir(const or_config_texts *texts, const char *dir)
{
    size_t dlen = strlen(dir);
    for (size_t i = 0; texts != NULL && i < texts->nfiles; i++)
        if (strncmp(texts->files[i].path, dir, dlen) == 0 && texts->files[i].path[dlen] == '/')
            return true;
    return false;
}

static void load_policies_dir(or_cfg_file *f, yaml_node_t *value, const char *path,
                              or_config *cfg)
{
    char **names;
    ssize_t n = list_policy_files(cfg->rbac.policies_file, f->texts, &names);
    if (n < 0) {
        or_cfg_error(f, value, "%s: cannot list \"%s\": %s", path, cfg->rbac.policies_file,
                     strerror(errno));
        return;
    }
    if (n == 0)
        or_cfg_warning(f, value, "%s: the directory \"%s\" holds no *.yaml file: no policies",
                       path, cfg->rbac.policies_file);
    for (ssize_t i = 0; i < n; i++) {
        load_policies_file(f, value, path, names[i], cfg);
        free(names[i]);
    }
    free(names);
}

static void load_policies_path(or_cfg_file *f, yaml_node_t *value, const char *path,
                               const char *text, or_config *cfg)
{
    struct stat st;
    if (text[0] == '\0') {
        or_cfg_error(f, value, "%s: must not be empty", path);
        return;
    }
    if ((cfg->rbac.policies_file = or_cfg_resolve(f, value, text)) == NULL)
        return;
    const char *name = cfg->rbac.policies_file;
    bool dir = f->texts ? texts_dir(f->texts, name) : stat(name, &st) == 0 && S_ISDIR(st.st_mode);
    if (dir)
        load_policies_dir(f, value, path, cfg);
    else
        load_policies_file(f, value, path, name, cfg);
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
            load_policies_path(f, value, path, text, cfg);
        return;
    }
    or_cfg_error(f, value, "%s: expected a file or directory name or a list of policies, got %s",
                 path,
                 or_cfg_type_name(value));
}

/* ---- freeing ---- */

/* Frees the list fields of one entry, found through its key table. */
static void free_lists(void *entry, const or_cfg_key *keys, size_t nkeys)
{
    for (const or_cfg_key *key = keys; key < keys + nkeys; key++) {
        if (key->handle != or_cfg_on_list)
            continue;
        if ((key->kind & 0xff) == OR_CFG_LIST_PORT) {
            free(OR_CFG_FIELD(entry, key, or_portlist)->items);
        } else if ((key->kind & 0xff) == OR_CFG_LIST_CIDR) {
            free(OR_CFG_FIELD(entry, key, or_cidrlist)->items);
        } else {
            or_strlist *list = OR_CFG_FIELD(entry, key, or_strlist);
            for (size_t i = 0; i < list->count; i++)
                free(list->items[i]);
            free(list->items);
        }
    }
}

static void free_strlist(or_strlist *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
}

static void free_rule(or_rbac_rule *rule)
{
    for (size_t i = 0; i < rule->nfrom; i++) {
        free_lists(&rule->from[i], source_keys, OR_CFG_COUNT(source_keys));
        free(rule->from[i].remote_ip_blocks.items);
        free(rule->from[i].not_remote_ip_blocks.items);
    }
    for (size_t i = 0; i < rule->nto; i++)
        free_lists(&rule->to[i], operation_keys, OR_CFG_COUNT(operation_keys));
    for (size_t i = 0; i < rule->nwhen; i++) {
        or_rbac_condition *c = &rule->when[i];
        free(c->header);
        free_strlist(&c->values);
        free_strlist(&c->not_values);
        free(c->ip_values.items);
        free(c->not_ip_values.items);
        free(c->port_values.items);
        free(c->not_port_values.items);
    }
    free(rule->from);
    free(rule->to);
    free(rule->when);
}

void or_cfg_free_labels(or_labels *labels)
{
    for (size_t i = 0; i < labels->count; i++) {
        free(labels->keys[i]);
        free(labels->values[i]);
    }
    free(labels->keys);
    free(labels->values);
}

static void free_scope(or_policy_scope *scope)
{
    free(scope->service);
    free(scope->namespace);
    or_cfg_free_labels(&scope->selector);
}

void or_cfg_free_policies(or_config *cfg)
{
    for (size_t i = 0; i < cfg->rbac.npolicies; i++) {
        or_policy_config *policy = &cfg->rbac.policies[i];
        for (size_t j = 0; j < policy->nrules; j++)
            free_rule(&policy->rules[j]);
        free(policy->rules);
        free(policy->name);
        free_scope(&policy->scope);
    }
    free(cfg->rbac.policies);
    for (size_t i = 0; i < cfg->rbac.npeer_auths; i++) {
        free(cfg->rbac.peer_auths[i].name);
        free(cfg->rbac.peer_auths[i].ports);
        free_scope(&cfg->rbac.peer_auths[i].scope);
    }
    free(cfg->rbac.peer_auths);
}
