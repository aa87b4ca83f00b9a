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
 * The first sections hold the readers both schemas use (declared in
 * config_yaml.h): how a message is placed and worded, how nodes are typed
 * and indexed, and how scalars become strings, booleans, numbers, choices
 * and names. Every reader reports its own error, so a handler is usually a
 * reader call and a store. Two limits keep a hostile file cheap: a budget
 * of nodes visited (aliases can make a small file expand exponentially, or
 * even refer to itself) and a cap on errors reported per file.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"

#define OR_CFG_MAX_VISITS 1000000

/* What the elements of a list-valued match field are. */
enum { LIST_PRINCIPAL, LIST_NAMESPACE, LIST_METHOD, LIST_PATH, LIST_HOST, LIST_VALUE, LIST_PORT,
       LIST_CIDR };

typedef struct {
    or_config *cfg;
    or_policy_config *policy;
    size_t index;
} or_policy_ctx;

/* ---- messages and positions ---- */

void or_cfg_error(or_cfg_file *f, const yaml_node_t *at, const char *fmt, ...)
{
    char *text;
    va_list ap;
    if (f->exhausted)
        return;
    if (++f->errors > OR_CFG_MAX_ERRORS) {
        or_diag_add(f->diag, OR_DIAG_ERROR, f->file, 0, 0, "too many errors; stopped here");
        f->exhausted = true;
        return;
    }
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    unsigned long line = at ? at->start_mark.line + 1 : 0;
    unsigned long col = at ? at->start_mark.column + 1 : 0;
    if (n < 0) {
        or_diag_add(f->diag, OR_DIAG_ERROR, f->file, line, col, "out of memory");
        return;
    }
    or_diag_add(f->diag, OR_DIAG_ERROR, f->file, line, col, "%s", text);
    free(text);
}

or_source_pos or_cfg_pos(const or_cfg_file *f, const yaml_node_t *node)
{
    or_source_pos pos = {f->file, node->start_mark.line + 1, node->start_mark.column + 1};
    return pos;
}

const char *or_cfg_quote(const char *text, char *buf)
{
    const size_t shown_max = OR_CFG_QUOTE_MAX - 8; /* room for quotes, escape, "..." */
    size_t out = 0;
    buf[out++] = '"';
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (out >= shown_max) {
            memcpy(buf + out, "...", 3);
            out += 3;
            break;
        }
        if (*p == '"' || *p == '\\') {
            buf[out++] = '\\';
            buf[out++] = (char)*p;
        } else if (*p < 0x20 || *p == 0x7f) {
            out += (size_t)snprintf(buf + out, 5, "\\x%02x", *p);
        } else {
            buf[out++] = (char)*p;
        }
    }
    buf[out++] = '"';
    buf[out] = '\0';
    return buf;
}

bool or_cfg_is_null(const yaml_node_t *node)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
    if (node->type != YAML_SCALAR_NODE || node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (strcmp((const char *)node->data.scalar.value, nulls[i]) == 0)
            return true;
    return false;
}

const char *or_cfg_type_name(const yaml_node_t *node)
{
    if (node->type == YAML_SCALAR_NODE)
        return or_cfg_is_null(node) ? "null" : "a string";
    return node->type == YAML_SEQUENCE_NODE ? "a list" : "a mapping";
}

void or_cfg_child_path(char *buf, const char *parent, const char *key)
{
    if (parent[0] == '\0')
        snprintf(buf, OR_CFG_PATH_MAX, "%s", key);
    else
        snprintf(buf, OR_CFG_PATH_MAX, "%s.%s", parent, key);
}

void or_cfg_index_path(char *buf, const char *parent, size_t index)
{
    snprintf(buf, OR_CFG_PATH_MAX, "%s[%zu]", parent, index);
}

/* ---- nodes ---- */

bool or_cfg_visit(or_cfg_file *f, const yaml_node_t *node)
{
    if (f->exhausted)
        return false;
    if (++f->visits <= OR_CFG_MAX_VISITS)
        return true;
    or_cfg_error(f, node, "document too large (aliases expand to more than %d nodes)",
                 OR_CFG_MAX_VISITS);
    f->exhausted = true;
    return false;
}

bool or_cfg_expect(or_cfg_file *f, const yaml_node_t *node, const char *path,
                   yaml_node_type_t type)
{
    if (node->type == type)
        return true;
    or_cfg_error(f, node, "%s: expected %s, got %s", path,
                 type == YAML_MAPPING_NODE ? "a mapping" : "a list", or_cfg_type_name(node));
    return false;
}

bool or_cfg_expect_list(or_cfg_file *f, const yaml_node_t *node, const char *path)
{
    if (!or_cfg_expect(f, node, path, YAML_SEQUENCE_NODE))
        return false;
    if (or_cfg_length(node) > 0)
        return true;
    or_cfg_error(f, node, "%s: must not be empty (leave the key out instead)", path);
    return false;
}

size_t or_cfg_length(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *or_cfg_item(or_cfg_file *f, const yaml_node_t *seq, size_t index)
{
    yaml_node_t *item = yaml_document_get_node(&f->doc, seq->data.sequence.items.start[index]);
    return item != NULL && or_cfg_visit(f, item) ? item : NULL;
}

yaml_node_t *or_cfg_lookup(or_cfg_file *f, const yaml_node_t *map, const char *name)
{
    if (map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *key = yaml_document_get_node(&f->doc, p->key);
        if (key->type == YAML_SCALAR_NODE &&
            strcmp((const char *)key->data.scalar.value, name) == 0)
            return yaml_document_get_node(&f->doc, p->value);
    }
    return NULL;
}

/* ---- scalars ---- */

const char *or_cfg_string(or_cfg_file *f, const yaml_node_t *node, const char *path)
{
    if (node->type != YAML_SCALAR_NODE || or_cfg_is_null(node)) {
        or_cfg_error(f, node, "%s: expected a string, got %s", path, or_cfg_type_name(node));
        return NULL;
    }
    const char *text = (const char *)node->data.scalar.value;
    if (strlen(text) != node->data.scalar.length) {
        or_cfg_error(f, node, "%s: must not contain NUL characters", path);
        return NULL;
    }
    return text;
}

char *or_cfg_strdup(or_cfg_file *f, const yaml_node_t *node, const char *text)
{
    char *copy = strdup(text);
    if (copy == NULL)
        or_cfg_error(f, node, "out of memory");
    return copy;
}

bool or_cfg_bool(or_cfg_file *f, const yaml_node_t *node, const char *path, bool *out)
{
    char quoted[OR_CFG_QUOTE_MAX];
    const char *text = or_cfg_string(f, node, path);
    if (text == NULL)
        return false;
    bool is_true = !strcmp(text, "true") || !strcmp(text, "True") || !strcmp(text, "TRUE");
    bool is_false = !strcmp(text, "false") || !strcmp(text, "False") || !strcmp(text, "FALSE");
    if (is_true || is_false) {
        *out = is_true;
        return true;
    }
    or_cfg_error(f, node, "%s: expected true or false, got %s", path, or_cfg_quote(text, quoted));
    return false;
}

bool or_cfg_decimal(const char *text, uint64_t *out)
{
    uint64_t v = 0;
    if (text[0] == '\0' || strspn(text, "0123456789") != strlen(text))
        return false;
    for (const char *p = text; *p; p++) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *out = v;
    return true;
}

bool or_cfg_uint(or_cfg_file *f, const yaml_node_t *node, const char *path, uint64_t min,
                 uint64_t max, uint64_t *out)
{
    char quoted[OR_CFG_QUOTE_MAX];
    uint64_t value;
    const char *text = or_cfg_string(f, node, path);
    if (text == NULL)
        return false;
    if (!or_cfg_decimal(text, &value) || value < min || value > max) {
        or_cfg_error(f, node, "%s: expected a whole number from %llu to %llu, got %s", path,
                     (unsigned long long)min, (unsigned long long)max,
                     or_cfg_quote(text, quoted));
        return false;
    }
    *out = value;
    return true;
}

int or_cfg_enum(or_cfg_file *f, const yaml_node_t *node, const char *path,
                const char *const *names, size_t nnames)
{
    char expected[128] = "", quoted[OR_CFG_QUOTE_MAX];
    const char *text = or_cfg_string(f, node, path);
    if (text == NULL)
        return -1;
    for (size_t i = 0; i < nnames; i++)
        if (strcmp(text, names[i]) == 0)
            return (int)i;
    for (size_t i = 0, used = 0; i < nnames && used < sizeof(expected); i++) {
        const char *sep = i == 0 ? "" : i + 1 == nnames ? " or " : ", ";
        used += (size_t)snprintf(expected + used, sizeof(expected) - used, "%s\"%s\"", sep,
                                 names[i]);
    }
    or_cfg_error(f, node, "%s: expected %s, got %s", path, expected, or_cfg_quote(text, quoted));
    return -1;
}

const char *or_cfg_name(or_cfg_file *f, const yaml_node_t *node, const char *path)
{
    static const char name_chars[] =
        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-";
    char quoted[OR_CFG_QUOTE_MAX];
    const char *text = or_cfg_string(f, node, path);
    if (text == NULL)
        return NULL;
    if (text[0] != '\0' && strspn(text, name_chars) == strlen(text))
        return text;
    or_cfg_error(f, node, "%s: expected letters, digits, '.', '-' or '_', got %s", path,
                 or_cfg_quote(text, quoted));
    return NULL;
}

/* ---- spiffe ids ---- */

static bool all_in(const char *text, size_t len, const char *set)
{
    for (size_t i = 0; i < len; i++)
        if (text[i] == '\0' || strchr(set, text[i]) == NULL)
            return false;
    return true;
}

static const char trust_domain_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789.-_";

int or_cfg_trust_domain_check(const char *text, size_t len, const char **why)
{
    if (len == 0)
        *why = "must not be empty";
    else if (len > 255)
        *why = "must be at most 255 characters";
    else if (!all_in(text, len, trust_domain_chars))
        *why = "may contain only lower-case letters, digits, '.', '-' and '_'";
    else
        return 0;
    return -1;
}

/* A workload's SPIFFE ID: valid per spiffe.c, and with a path, because a
 * bare trust domain names no workload. */
int or_cfg_spiffe_id_check(const char *text, or_spiffe_id *id, const char **why)
{
    if (or_spiffe_id_parse(text, strlen(text), id, why) != 0)
        return -1;
    if (id->path_len > 0)
        return 0;
    *why = "no path after the trust domain (expected spiffe://<trust-domain>/<path>)";
    return -1;
}

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
           all_in(text + 1, len - 1,
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
    int rc = or_cfg_open(&pf, f->diag, file, &root);
    if (rc == OR_CFG_UNREADABLE)
        or_cfg_error(f, value, "%s: cannot read \"%s\": %s", path, file, strerror(errno));
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
