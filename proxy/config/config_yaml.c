/*
 * The YAML layer of the config loader: positions, messages, node readers and
 * the table-driven walk over mappings that gives every section of the schema the
 * same treatment of unknown, duplicate, missing and mistyped keys. config.c
 * (the proxy's schema) and config_rbac.c (policies) are written on top of it;
 * config_yaml.h is its interface.
 *
 * Every reader reports its own error. Limits keep a hostile file cheap (the
 * limits on reading a file are in config_file.c): a budget of nodes visited
 * (aliases can make a small file expand exponentially, or even refer to
 * itself) and a cap on errors reported per file.
 */
#include "outrider/config.h"

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_yaml.h"

#define OR_CFG_MAX_VISITS 1000000

/* Two printf arguments for "%s%s": " in listeners[0]", or nothing at the
 * top level. */
#define IN(path) ((path)[0] ? " in " : ""), (path)

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

void or_cfg_warning(or_cfg_file *f, const yaml_node_t *at, const char *fmt, ...)
{
    char *text;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&text, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    or_diag_add(f->diag, OR_DIAG_WARNING, f->file, at->start_mark.line + 1,
                at->start_mark.column + 1, "%s", text);
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

void or_cfg_key_path(char *buf, const char *parent, const char *key)
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

static bool visit_node(or_cfg_file *f, const yaml_node_t *node)
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

void *or_cfg_load_items(or_cfg_file *f, yaml_node_t *list, const char *path, bool istio,
                        size_t size, size_t *count, or_cfg_item_fn load, const void *arg)
{
    char item_path[OR_CFG_PATH_MAX];
    *count = 0;
    if (istio ? !or_cfg_expect(f, list, path, YAML_SEQUENCE_NODE) || or_cfg_length(list) == 0
              : !or_cfg_expect_list(f, list, path))
        return NULL;
    size_t n = or_cfg_length(list);
    char *entries = calloc(n, size);
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
        load(f, item, item_path, entries + i * size, arg);
    }
    return entries;
}

size_t or_cfg_length(const yaml_node_t *seq)
{
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *or_cfg_item(or_cfg_file *f, const yaml_node_t *seq, size_t index)
{
    yaml_node_t *item = yaml_document_get_node(&f->doc, seq->data.sequence.items.start[index]);
    return item != NULL && visit_node(f, item) ? item : NULL;
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

bool or_cfg_all_in(const char *text, size_t len, const char *set)
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
    else if (!or_cfg_all_in(text, len, trust_domain_chars))
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

/* ---- walking mappings ---- */

static const char *key_text(const yaml_node_t *key)
{
    return key->type == YAML_SCALAR_NODE ? (const char *)key->data.scalar.value : NULL;
}

/* Edit distance, for "did you mean" hints; names longer than 31 are not
 * compared. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[32];
    if (la >= 32 || lb >= 32)
        return SIZE_MAX;
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diagonal = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t above = row[j];
            size_t best = diagonal + (a[i - 1] != b[j - 1]);
            if (above + 1 < best)
                best = above + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diagonal = above;
        }
    }
    return row[lb];
}

/* "unknown key", with a hint when one known key is a typo away. */
static void report_unknown_key(or_cfg_file *f, const yaml_node_t *key_node, const char *name,
                               const char *path, const or_cfg_key *keys, size_t nkeys)
{
    char hint[64] = "";
    size_t best = 3;
    for (size_t i = 0; i < nkeys; i++) {
        size_t d = edit_distance(name, keys[i].name);
        if (d < best && 3 * d <= strlen(name)) {
            best = d;
            snprintf(hint, sizeof(hint), " (did you mean '%s'?)", keys[i].name);
        }
    }
    or_cfg_error(f, key_node, "unknown key '%.64s'%s%s%s", name, IN(path), hint);
}

static int find_key(const or_cfg_key *keys, size_t nkeys, const char *name)
{
    for (size_t i = 0; i < nkeys; i++)
        if (strcmp(keys[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* Handles one key/value pair; records the key in seen[]. */
static void walk_pair(or_cfg_file *f, const yaml_node_pair_t *pair, const char *path,
                      const or_cfg_key *keys, size_t nkeys, void *target,
                      const yaml_node_t **seen)
{
    char child[OR_CFG_PATH_MAX];
    yaml_node_t *key = yaml_document_get_node(&f->doc, pair->key);
    yaml_node_t *value = yaml_document_get_node(&f->doc, pair->value);
    const char *name = key_text(key);
    if (name == NULL || or_cfg_is_null(key)) {
        or_cfg_error(f, key, "keys must be strings, got %s%s%s", or_cfg_type_name(key),
                     IN(path));
        return;
    }
    int i = find_key(keys, nkeys, name);
    if (i < 0) {
        report_unknown_key(f, key, name, path, keys, nkeys);
    } else if (seen[i] != NULL) {
        or_cfg_error(f, key, "duplicate key '%s'%s%s (first given at line %zu)", name,
                     IN(path), seen[i]->start_mark.line + 1);
    } else {
        seen[i] = key;
        or_cfg_key_path(child, path, name);
        keys[i].handle(f, &keys[i], target, value, child);
    }
}

int or_cfg_walk(or_cfg_file *f, yaml_node_t *map, const char *path, const or_cfg_key *keys,
                size_t nkeys, void *target)
{
    const yaml_node_t *seen[OR_CFG_MAX_KEYS] = {0};
    assert(nkeys <= OR_CFG_MAX_KEYS);
    if (!or_cfg_expect(f, map, path[0] ? path : "top level", YAML_MAPPING_NODE))
        return -1;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        if (!visit_node(f, map))
            return -1;
        walk_pair(f, p, path, keys, nkeys, target, seen);
    }
    int known = 0;
    for (size_t i = 0; i < nkeys; i++) {
        if (seen[i] != NULL)
            known++;
        else if (keys[i].required)
            or_cfg_error(f, map, "missing required key '%s'%s%s", keys[i].name, IN(path));
    }
    return known;
}

