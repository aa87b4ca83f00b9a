/*
 * check_kube: `outrider check` on a Kubernetes manifest (check_kube.h).
 *
 * The manifest is read like a config file (a regular file of at most 4 MiB,
 * lists and mappings nested at most 64 deep, checked on the parser's events
 * before any document is built), then every YAML document of the stream is
 * loaded at once, because the ConfigMap that holds the sidecar's config may
 * come before or after the workload that mounts it. A first pass collects
 * the ConfigMaps, a second checks each workload's pod spec. The rules
 * themselves are in check_kube_pod.c and check_kube_sidecar.c; this file
 * holds the documents, the objects, where each kind keeps its pod template,
 * and the reporting every rule goes through.
 */
#include "outrider/check_kube.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check_kube_int.h"
#include "config_yaml.h"

/* ---- nodes ---- */

yaml_node_t *kube_get(yaml_document_t *doc, const yaml_node_t *map, const char *name,
                      yaml_node_t **key_out)
{
    if (key_out)
        *key_out = NULL;
    if (map == NULL || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *key = yaml_document_get_node(doc, p->key);
        if (key != NULL && key->type == YAML_SCALAR_NODE &&
            strcmp((const char *)key->data.scalar.value, name) == 0) {
            if (key_out)
                *key_out = key;
            return yaml_document_get_node(doc, p->value);
        }
    }
    return NULL;
}

const char *kube_scalar(const yaml_node_t *node)
{
    if (node == NULL || node->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)node->data.scalar.value;
}

const char *kube_get_text(yaml_document_t *doc, const yaml_node_t *map, const char *name)
{
    return kube_scalar(kube_get(doc, map, name, NULL));
}

static bool one_of(const char *text, const char *a, const char *b, const char *c)
{
    return text != NULL && (!strcmp(text, a) || !strcmp(text, b) || !strcmp(text, c));
}

bool kube_is_true(const yaml_node_t *node)
{
    return one_of(kube_scalar(node), "true", "True", "TRUE");
}

bool kube_is_false(const yaml_node_t *node)
{
    return one_of(kube_scalar(node), "false", "False", "FALSE");
}

size_t kube_length(const yaml_node_t *seq)
{
    if (seq == NULL || seq->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

yaml_node_t *kube_item(kube_check *k, yaml_document_t *doc, const yaml_node_t *seq, size_t i)
{
    if (k->exhausted)
        return NULL;
    if (++k->visits > KUBE_MAX_VISITS) {
        or_diag_add(k->diag, OR_DIAG_ERROR, k->file, 0, 0,
                    "the manifest expands to more than %d list items (aliases); stopped here",
                    KUBE_MAX_VISITS);
        k->exhausted = true;
        return NULL;
    }
    return yaml_document_get_node(doc, seq->data.sequence.items.start[i]);
}

/* ---- reporting ---- */

static void add_finding(kube_check *k, or_diag_severity sev, unsigned long line,
                        unsigned long col, const char *prefix, const char *fmt, va_list ap)
{
    char *text;
    if (k->exhausted)
        return;
    if (++k->findings > KUBE_MAX_FINDINGS) {
        or_diag_add(k->diag, OR_DIAG_ERROR, k->file, 0, 0, "more than %d problems; stopped here",
                    KUBE_MAX_FINDINGS);
        k->exhausted = true;
        return;
    }
    if (vasprintf(&text, fmt, ap) < 0) {
        or_diag_add(k->diag, sev, k->file, line, col, "out of memory");
        return;
    }
    or_diag_add(k->diag, sev, k->file, line, col, "%s%s", prefix, text);
    free(text);
}

static unsigned long node_line(const yaml_node_t *at)
{
    return at ? at->start_mark.line + 1 : 0;
}

static unsigned long node_col(const yaml_node_t *at)
{
    return at ? at->start_mark.column + 1 : 0;
}

void kube_report(kube_pod *pod, const kube_container *c, or_diag_severity sev,
                 const yaml_node_t *at, const char *fmt, ...)
{
    char prefix[500];
    va_list ap;
    snprintf(prefix, sizeof prefix, "%s/%.200s: %s%s%.200s%s", pod->kind, pod->name,
             c ? c->what : "", c ? " '" : "", c ? c->name : "", c ? "': " : "");
    va_start(ap, fmt);
    add_finding(pod->k, sev, node_line(at), node_col(at), prefix, fmt, ap);
    va_end(ap);
}

void kube_report_at(kube_check *k, or_diag_severity sev, unsigned long line, unsigned long col,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    add_finding(k, sev, line, col, "", fmt, ap);
    va_end(ap);
}

const char *kube_line(const kube_check *k, unsigned long line, size_t *len)
{
    if (line == 0 || line > k->nlines) {
        *len = 0;
        return "";
    }
    size_t start = k->line_starts[line - 1];
    size_t end = line < k->nlines ? k->line_starts[line] : k->len;
    while (end > start && (k->text[end - 1] == '\n' || k->text[end - 1] == '\r'))
        end--;
    *len = end - start;
    return k->text + start;
}

static bool index_lines(kube_check *k)
{
    size_t n = 1;
    for (size_t i = 0; i < k->len; i++)
        n += k->text[i] == '\n';
    k->line_starts = malloc(n * sizeof(size_t));
    if (k->line_starts == NULL)
        return false;
    k->nlines = 0;
    k->line_starts[k->nlines++] = 0;
    for (size_t i = 0; i < k->len; i++)
        if (k->text[i] == '\n')
            k->line_starts[k->nlines++] = i + 1;
    return true;
}

/* ---- documents ---- */

static void report_syntax_error(kube_check *k, const yaml_parser_t *p)
{
    unsigned long line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
    if (p->error == YAML_MEMORY_ERROR || p->error == YAML_READER_ERROR)
        line = col = 0;
    if (p->context != NULL)
        or_diag_add(k->diag, OR_DIAG_ERROR, k->file, line, col,
                    "invalid YAML: %s (%s at line %zu, column %zu)",
                    p->problem ? p->problem : "out of memory", p->context,
                    p->context_mark.line + 1, p->context_mark.column + 1);
    else
        or_diag_add(k->diag, OR_DIAG_ERROR, k->file, line, col, "invalid YAML: %s",
                    p->problem ? p->problem : "out of memory");
}

/* Whether lists and mappings nest deeper than KUBE_DEPTH_MAX (or memory
 * ran out), checked before any document is built. */
static bool too_deep(const char *text, size_t len, yaml_mark_t *where)
{
    return or_cfg_yaml_too_deep((const unsigned char *)text, len, KUBE_DEPTH_MAX, where) != 0;
}

static bool depth_ok(kube_check *k)
{
    yaml_mark_t at;
    if (!too_deep(k->text, k->len, &at))
        return true;
    or_diag_add(k->diag, OR_DIAG_ERROR, k->file, at.line + 1, at.column + 1,
                "lists and mappings nested more than %d deep; a manifest may nest at most %d "
                "levels", KUBE_DEPTH_MAX, KUBE_DEPTH_MAX);
    return false;
}

typedef struct {
    yaml_document_t *items;
    size_t count;
} kube_docs;

/* Loads every document; a syntax error is reported and ends the stream
 * (the documents before it are still checked). */
static void load_documents(kube_check *k, kube_docs *docs)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return;
    yaml_parser_set_input_string(&parser, (const unsigned char *)k->text, k->len);
    for (;;) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc)) {
            report_syntax_error(k, &parser);
            break;
        }
        if (yaml_document_get_root_node(&doc) == NULL) {
            yaml_document_delete(&doc); /* the end of the stream */
            break;
        }
        yaml_document_t *grown = realloc(docs->items, (docs->count + 1) * sizeof(doc));
        if (grown == NULL) {
            yaml_document_delete(&doc);
            or_diag_add(k->diag, OR_DIAG_ERROR, k->file, 0, 0, "out of memory");
            break;
        }
        docs->items = grown;
        docs->items[docs->count++] = doc;
    }
    yaml_parser_delete(&parser);
}

static void free_documents(kube_docs *docs)
{
    for (size_t i = 0; i < docs->count; i++)
        yaml_document_delete(&docs->items[i]);
    free(docs->items);
}

/* ---- objects ---- */

typedef void (*kube_object_fn)(kube_check *k, yaml_document_t *doc, yaml_node_t *object,
                               const char *kind);

static bool is_object(yaml_document_t *doc, const yaml_node_t *node)
{
    return kube_get_text(doc, node, "apiVersion") != NULL && kube_get_text(doc, node, "kind");
}

/* Calls fn for every object of a document: the root, or the items of a
 * List. Reports (on the first pass) what is not an object. */
static void each_object(kube_check *k, yaml_document_t *doc, kube_object_fn fn, bool report)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    const char *scalar = kube_scalar(root);
    if (scalar != NULL && (scalar[0] == '\0' || !strcmp(scalar, "~") || !strcmp(scalar, "null")))
        return; /* an empty document: "---" with nothing (or only comments) after it */
    if (!is_object(doc, root)) {
        if (report)
            kube_report_at(k, OR_DIAG_WARNING, node_line(root), node_col(root),
                           "this document has no apiVersion and kind: it is not a Kubernetes "
                           "object and is skipped");
        return;
    }
    const char *kind = kube_get_text(doc, root, "kind");
    yaml_node_t *items = kube_get(doc, root, "items", NULL);
    if (strcmp(kind, "List") != 0 && (strlen(kind) < 5 || strcmp(kind + strlen(kind) - 4, "List"))) {
        fn(k, doc, root, kind);
        return;
    }
    for (size_t i = 0; i < kube_length(items); i++) {
        yaml_node_t *item = kube_item(k, doc, items, i);
        if (item == NULL)
            return;
        if (is_object(doc, item))
            fn(k, doc, item, kube_get_text(doc, item, "kind"));
        else if (report)
            kube_report_at(k, OR_DIAG_WARNING, node_line(item), node_col(item),
                           "this item of the %s has no apiVersion and kind; skipped", kind);
    }
}

static const char *object_name(yaml_document_t *doc, const yaml_node_t *object)
{
    yaml_node_t *meta = kube_get(doc, object, "metadata", NULL);
    const char *name = kube_get_text(doc, meta, "name");
    if (name == NULL)
        name = kube_get_text(doc, meta, "generateName");
    return name ? name : "(no name)";
}

static void collect_configmap(kube_check *k, yaml_document_t *doc, yaml_node_t *object,
                              const char *kind)
{
    k->summary->objects++;
    if (strcmp(kind, "ConfigMap") != 0)
        return;
    kube_configmap *grown =
        realloc(k->configmaps, (k->nconfigmaps + 1) * sizeof(*k->configmaps));
    if (grown == NULL)
        return;
    k->configmaps = grown;
    yaml_node_t *meta = kube_get(doc, object, "metadata", NULL);
    k->configmaps[k->nconfigmaps++] = (kube_configmap){
        doc, object, object_name(doc, object), kube_get_text(doc, meta, "namespace")};
}

/* Where each workload kind keeps its pod template; NULL for a Pod, whose
 * own metadata and spec are the pod's. */
static const char *const *template_path(const char *kind)
{
    static const char *const deployment[] = {"spec", "template", NULL};
    static const char *const cronjob[] = {"spec", "jobTemplate", "spec", "template", NULL};
    static const char *const pod[] = {NULL};
    static const char *const with_template[] = {"Deployment", "DaemonSet", "StatefulSet",
                                                "ReplicaSet", "ReplicationController", "Job"};
    if (strcmp(kind, "Pod") == 0)
        return pod;
    if (strcmp(kind, "CronJob") == 0)
        return cronjob;
    for (size_t i = 0; i < sizeof with_template / sizeof with_template[0]; i++)
        if (strcmp(kind, with_template[i]) == 0)
            return deployment;
    return NULL;
}

static void check_workload(kube_check *k, yaml_document_t *doc, yaml_node_t *object,
                           const char *kind)
{
    const char *const *path = template_path(kind);
    if (path == NULL)
        return; /* not a workload: Service, ConfigMap, NetworkPolicy, ... */
    kube_pod pod = {k, doc, kind, object_name(doc, object), NULL, NULL, NULL, NULL, NULL};
    pod.namespace_ = kube_get_text(doc, kube_get(doc, object, "metadata", NULL), "namespace");
    yaml_node_t *at = object, *key = NULL, *found;
    char where[80] = "";
    for (size_t i = 0; path[i] != NULL && at != NULL; i++) {
        at = kube_get(doc, at, path[i], &found);
        key = found ? found : key; /* the last key there is: where the template is missing */
        snprintf(where + strlen(where), sizeof where - strlen(where), "%s.", path[i]);
    }
    pod.meta = kube_get(doc, at, "metadata", NULL);
    pod.spec = kube_get(doc, at, "spec", &pod.spec_key);
    k->summary->workloads++;
    if (pod.spec == NULL || pod.spec->type != YAML_MAPPING_NODE) {
        kube_report(&pod, NULL, OR_DIAG_ERROR, key ? key : object, "no pod spec at %sspec; write "
                    "the pod's containers there", where);
        return;
    }
    pod.psc = kube_get(doc, pod.spec, "securityContext", NULL);
    kube_check_pod(&pod);
}

/* ---- the check ---- */

void or_kube_check(const char *file, const char *text, size_t len, or_diag *diag,
                   or_kube_summary *summary)
{
    kube_check k = {0};
    kube_docs docs = {0};
    memset(summary, 0, sizeof *summary);
    k.diag = diag;
    k.file = file;
    k.text = text;
    k.len = len;
    k.summary = summary;
    if (!index_lines(&k)) {
        or_diag_add(diag, OR_DIAG_ERROR, file, 0, 0, "out of memory");
        return;
    }
    if (depth_ok(&k))
        load_documents(&k, &docs);
    for (size_t i = 0; i < docs.count; i++)
        each_object(&k, &docs.items[i], collect_configmap, true);
    for (size_t i = 0; i < docs.count; i++)
        each_object(&k, &docs.items[i], check_workload, false);
    free_documents(&docs);
    free(k.configmaps);
    free(k.line_starts);
}

bool or_kube_detect(const char *text, size_t len)
{
    yaml_parser_t parser;
    yaml_mark_t at;
    bool found = false;
    if (too_deep(text, len, &at) || !yaml_parser_initialize(&parser))
        return false; /* the config loader reports the nesting */
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    while (!found) {
        yaml_document_t doc;
        if (!yaml_parser_load(&parser, &doc))
            break;
        yaml_node_t *root = yaml_document_get_root_node(&doc);
        found = root != NULL && is_object(&doc, root);
        yaml_document_delete(&doc);
        if (root == NULL)
            break; /* the end of the stream */
    }
    yaml_parser_delete(&parser);
    return found;
}

/* ---- the command ---- */

/* The whole file, when it is a regular file of at most OR_CFG_FILE_MAX
 * bytes; NULL otherwise (the config loader then says what is wrong). */
static char *read_manifest(const char *file, size_t *len)
{
    char why[160];
    int fd = or_cfg_open_regular(file, OR_CFG_FILE_MAX, why, sizeof why);
    if (fd < 0)
        return NULL;
    char *text = malloc(OR_CFG_FILE_MAX + 1);
    size_t used = 0;
    while (text != NULL && used <= OR_CFG_FILE_MAX) {
        ssize_t n = read(fd, text + used, OR_CFG_FILE_MAX + 1 - used);
        if (n == 0)
            break;
        if (n < 0) {
            free(text);
            text = NULL;
        } else {
            used += (size_t)n;
        }
    }
    close(fd);
    if (text != NULL && used > OR_CFG_FILE_MAX) {
        free(text);
        text = NULL;
    }
    *len = used;
    return text;
}

bool or_kube_check_command(const char *file, int *status)
{
    size_t len;
    char *text = read_manifest(file, &len);
    if (text == NULL || !or_kube_detect(text, len)) {
        free(text);
        return false;
    }
    or_diag diag;
    or_kube_summary s;
    or_diag_init(&diag);
    or_kube_check(file, text, len, &diag, &s);
    or_diag_print(&diag, stderr);
    char what[200];
    snprintf(what, sizeof what,
             "Kubernetes manifest: %zu object(s), %zu workload(s), %zu container(s), %zu "
             "sidecar config(s) checked", s.objects, s.workloads, s.containers, s.configs);
    if (diag.errors == 0)
        fprintf(stderr, "%s: OK (%s; %zu warning(s))\n", file, what, diag.warnings);
    else
        fprintf(stderr, "%s: %zu error(s), %zu warning(s) (%s)\n", file, diag.errors,
                diag.warnings, what);
    *status = diag.errors == 0 ? 0 : 1;
    or_diag_free(&diag);
    free(text);
    return true;
}
