/*
 * check_kube_sidecar: the Outrider sidecar in a manifest, and the config it
 * reads out of a ConfigMap.
 *
 * The sidecar is the container whose image repository is named `outrider`
 * (the last path component, before any tag or digest) and whose command, if
 * it has one, runs /usr/bin/outrider rather than outrider-agent or
 * outrider-ca. It reads the config named by `-c PATH` (or `--config`) in its
 * command or args, /etc/outrider/outrider.yaml by default.
 *
 * Every ConfigMap volume mounted into the sidecar whose ConfigMap is in the
 * same file gives the files the container would see (all `data` keys, or
 * those `items` maps, under the mount path; just one with a subPath). The
 * config is loaded from those files with the real schema
 * (or_config_load_texts), so the policies file it names is found the same
 * way, and the identity files, which only exist in the running pod, are not
 * looked at. The loader's messages name the file inside the pod; they are
 * moved to the line and column inside the ConfigMap's block scalar (a `|`
 * literal keeps every line where it was), or to the start of the value for
 * any other scalar style.
 *
 * On top of the schema, a config in a manifest must have RBAC on and not
 * allow everything by default without a policy; an inbound listener should
 * be there and forward to the pod's loopback. Every inbound listener always
 * requires mTLS and every outbound one must name peer_identity (the schema
 * refuses it otherwise), so there is no mTLS switch to check.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_kube_int.h"
#include "outrider/config.h"
#include "outrider/rbac.h"
#include "outrider/units.h"

#define KUBE_DEFAULT_CONFIG "/etc/outrider/outrider.yaml"

/* A file of a ConfigMap as the sidecar sees it. */
typedef struct {
    char *path;
    const kube_configmap *cm;
    const char *key;
    yaml_node_t *key_node, *value;
} kube_file;

typedef struct {
    kube_pod *pod;
    const kube_container *c;
    kube_file *files;
    size_t nfiles;
} kube_sidecar;

/* ---- which container ---- */

static bool repository_is_outrider(const char *image)
{
    if (image == NULL)
        return false;
    const char *slash = memrchr(image, '/', strcspn(image, "@"));
    const char *name = slash ? slash + 1 : image;
    size_t name_len = strcspn(name, ":@");
    return name_len == 8 && strncmp(name, "outrider", 8) == 0;
}

bool kube_is_sidecar(kube_pod *pod, const kube_container *c)
{
    if (!repository_is_outrider(kube_get_text(pod->doc, c->node, "image")))
        return false;
    yaml_node_t *command = kube_get(pod->doc, c->node, "command", NULL);
    if (command == NULL)
        return true; /* the image's entrypoint, /usr/bin/outrider */
    const char *program = kube_length(command) ? kube_scalar(kube_item(pod->k, pod->doc, command, 0)) : NULL;
    if (program == NULL)
        return false;
    const char *base = strrchr(program, '/');
    return strcmp(base ? base + 1 : program, "outrider") == 0;
}

/* The path after -c/--config in one list of arguments, or NULL. */
static const char *config_in(kube_pod *pod, const yaml_node_t *list, size_t from)
{
    const char *found = NULL;
    for (size_t i = from; i < kube_length(list); i++) {
        const char *arg = kube_scalar(kube_item(pod->k, pod->doc, list, i));
        if (arg == NULL)
            continue;
        if ((!strcmp(arg, "-c") || !strcmp(arg, "--config")) && i + 1 < kube_length(list))
            found = kube_scalar(kube_item(pod->k, pod->doc, list, ++i));
        else if (!strncmp(arg, "--config=", 9))
            found = arg + 9;
        else if (!strncmp(arg, "-c", 2) && arg[2] != '\0')
            found = arg + 2;
    }
    return found;
}

static const char *config_path(kube_pod *pod, const kube_container *c)
{
    const char *path = config_in(pod, kube_get(pod->doc, c->node, "args", NULL), 0);
    if (path == NULL)
        path = config_in(pod, kube_get(pod->doc, c->node, "command", NULL), 1);
    return path ? path : KUBE_DEFAULT_CONFIG;
}

/* ---- the files the sidecar sees ---- */

static yaml_node_t *pod_volume(kube_pod *pod, const char *name)
{
    yaml_node_t *volumes = kube_get(pod->doc, pod->spec, "volumes", NULL);
    for (size_t i = 0; name != NULL && i < kube_length(volumes); i++) {
        yaml_node_t *v = kube_item(pod->k, pod->doc, volumes, i);
        const char *n = kube_get_text(pod->doc, v, "name");
        if (n != NULL && strcmp(n, name) == 0)
            return v;
    }
    return NULL;
}

static const kube_configmap *find_configmap(kube_pod *pod, const char *name)
{
    for (size_t i = 0; name != NULL && i < pod->k->nconfigmaps; i++) {
        const kube_configmap *cm = &pod->k->configmaps[i];
        bool same_ns = cm->namespace_ == NULL || pod->namespace_ == NULL ||
                       strcmp(cm->namespace_, pod->namespace_) == 0;
        if (same_ns && strcmp(cm->name, name) == 0)
            return cm;
    }
    return NULL;
}

static void add_file(kube_sidecar *s, const kube_configmap *cm, const char *key, char *path)
{
    yaml_node_t *key_node;
    yaml_node_t *data = kube_get(cm->doc, cm->node, "data", NULL);
    yaml_node_t *value = kube_get(cm->doc, data, key, &key_node);
    kube_file *grown = kube_scalar(value) && path
                           ? realloc(s->files, (s->nfiles + 1) * sizeof(*s->files))
                           : NULL;
    if (grown == NULL) {
        free(path);
        return;
    }
    s->files = grown;
    s->files[s->nfiles++] = (kube_file){path, cm, key, key_node, value};
}

/* One entry of the volume: key `key` at `vpath` inside it. */
static void add_entry(kube_sidecar *s, const kube_configmap *cm, const char *mount,
                      const char *sub, const char *key, const char *vpath)
{
    char *path = NULL;
    if (sub != NULL && sub[0] != '\0') {
        if (strcmp(sub, vpath) == 0)
            path = strdup(mount);
        else
            return;
    } else if (asprintf(&path, "%s%s%s", mount, strcmp(mount, "/") ? "/" : "", vpath) < 0) {
        path = NULL;
    }
    add_file(s, cm, key, path);
}

static void add_mount(kube_sidecar *s, yaml_node_t *mount)
{
    kube_pod *pod = s->pod;
    const char *mpath = kube_get_text(pod->doc, mount, "mountPath");
    const char *sub = kube_get_text(pod->doc, mount, "subPath");
    yaml_node_t *v = pod_volume(pod, kube_get_text(pod->doc, mount, "name"));
    yaml_node_t *cmv = kube_get(pod->doc, v, "configMap", NULL);
    const kube_configmap *cm = find_configmap(pod, kube_get_text(pod->doc, cmv, "name"));
    if (mpath == NULL || cm == NULL)
        return;
    yaml_node_t *items = kube_get(pod->doc, cmv, "items", NULL);
    if (items != NULL) {
        for (size_t i = 0; i < kube_length(items); i++) {
            yaml_node_t *item = kube_item(pod->k, pod->doc, items, i);
            const char *key = kube_get_text(pod->doc, item, "key");
            const char *p = kube_get_text(pod->doc, item, "path");
            if (key && p)
                add_entry(s, cm, mpath, sub, key, p);
        }
        return;
    }
    yaml_node_t *data = kube_get(cm->doc, cm->node, "data", NULL);
    if (data == NULL || data->type != YAML_MAPPING_NODE)
        return;
    for (yaml_node_pair_t *p = data->data.mapping.pairs.start; p < data->data.mapping.pairs.top;
         p++) {
        const char *key = kube_scalar(yaml_document_get_node(cm->doc, p->key));
        if (key != NULL)
            add_entry(s, cm, mpath, sub, key, key);
    }
}

static const kube_file *find_file(const kube_sidecar *s, const char *path)
{
    for (size_t i = 0; i < s->nfiles; i++)
        if (strcmp(s->files[i].path, path) == 0)
            return &s->files[i];
    return NULL;
}

/* ---- why the config is not among them ---- */

static bool covers(const char *mount, const char *path)
{
    size_t n = strlen(mount);
    if (strcmp(mount, "/") == 0)
        return path[0] == '/';
    return strncmp(mount, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static yaml_node_t *covering_mount(kube_sidecar *s, const char *path)
{
    kube_pod *pod = s->pod;
    yaml_node_t *mounts = kube_get(pod->doc, s->c->node, "volumeMounts", NULL), *best = NULL;
    size_t best_len = 0;
    for (size_t i = 0; i < kube_length(mounts); i++) {
        yaml_node_t *m = kube_item(pod->k, pod->doc, mounts, i);
        const char *mp = kube_get_text(pod->doc, m, "mountPath");
        if (mp != NULL && covers(mp, path) && strlen(mp) >= best_len) {
            best = m;
            best_len = strlen(mp);
        }
    }
    return best;
}

static void explain_missing(kube_sidecar *s, const char *path)
{
    kube_pod *pod = s->pod;
    const kube_container *c = s->c;
    yaml_node_t *mount = covering_mount(s, path);
    const char *vname = kube_get_text(pod->doc, mount, "name");
    yaml_node_t *cmv = kube_get(pod->doc, pod_volume(pod, vname), "configMap", NULL);
    const char *cm_name = kube_get_text(pod->doc, cmv, "name");
    const kube_configmap *cm = find_configmap(pod, cm_name);
    if (mount == NULL)
        kube_report(pod, c, OR_DIAG_WARNING, c->node, "no volume is mounted at %s, where the proxy "
                    "reads its config (-c); the config cannot be checked", path);
    else if (cm_name == NULL)
        kube_report(pod, c, OR_DIAG_WARNING, mount, "the config %s comes from volume '%s', which "
                    "is not a configMap volume; the config cannot be checked", path,
                    vname ? vname : "?");
    else if (cm == NULL)
        kube_report(pod, c, OR_DIAG_WARNING, mount, "ConfigMap '%s' (volume '%s') is not in this "
                    "file; the proxy's config %s cannot be checked", cm_name, vname ? vname : "?",
                    path);
    else
        kube_report(pod, c, OR_DIAG_ERROR, mount, "ConfigMap '%s' (volume '%s') has no data key "
                    "for %s, so the proxy will not start; add its config to the ConfigMap's data",
                    cm_name, vname ? vname : "?", path);
}

/* ---- positions inside a ConfigMap's text ---- */

static size_t leading_spaces(const char *text, size_t len)
{
    size_t n = 0;
    while (n < len && text[n] == ' ')
        n++;
    return n;
}

/* Line `line` (1-based) of the file's text. */
static const char *text_line(const kube_file *f, unsigned long line, size_t *len)
{
    const char *p = (const char *)f->value->data.scalar.value;
    const char *end = p + f->value->data.scalar.length;
    for (unsigned long i = 1; i < line && p < end; i++) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        p = nl ? nl + 1 : end;
    }
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *len = (size_t)((nl ? nl : end) - p);
    return p;
}

/* Where line:col of the file is in the manifest; false when the scalar is
 * not a literal block, whose lines stay where they were. */
static bool manifest_pos(const kube_check *k, const kube_file *f, unsigned long line,
                         unsigned long col, unsigned long *mline, unsigned long *mcol)
{
    if (f->value->data.scalar.style != YAML_LITERAL_SCALAR_STYLE || line == 0 || col == 0)
        return false;
    size_t tlen, mlen;
    const char *t = text_line(f, line, &tlen);
    *mline = f->value->start_mark.line + 1 + line;
    const char *m = kube_line(k, *mline, &mlen);
    size_t indent = leading_spaces(m, mlen) - leading_spaces(t, tlen);
    if (leading_spaces(m, mlen) < leading_spaces(t, tlen))
        return false;
    *mcol = col + indent;
    return true;
}

static void report_in_file(kube_sidecar *s, const kube_file *f, or_diag_severity sev,
                           unsigned long line, unsigned long col, const char *text)
{
    unsigned long ml, mc;
    kube_check *k = s->pod->k;
    if (manifest_pos(k, f, line, col, &ml, &mc))
        kube_report_at(k, sev, ml, mc, "ConfigMap/%s %s: %s", f->cm->name, f->key, text);
    else if (line != 0)
        kube_report_at(k, sev, f->value->start_mark.line + 1, f->value->start_mark.column + 1,
                       "ConfigMap/%s %s (line %lu, column %lu of it): %s", f->cm->name, f->key,
                       line, col, text);
    else
        kube_report_at(k, sev, f->key_node->start_mark.line + 1,
                       f->key_node->start_mark.column + 1, "ConfigMap/%s %s: %s", f->cm->name,
                       f->key, text);
}

/* Moves one "path:line:col: severity: text" message of the loader. */
static void move_message(kube_sidecar *s, const or_diag_entry *e)
{
    for (size_t i = 0; i < s->nfiles; i++) {
        const kube_file *f = &s->files[i];
        size_t n = strlen(f->path);
        if (strncmp(e->text, f->path, n) != 0 || e->text[n] != ':')
            continue;
        const char *p = e->text + n + 1;
        unsigned long line = 0, col = 0;
        int used = 0;
        if (sscanf(p, "%lu:%lu:%n", &line, &col, &used) == 2 && used > 0)
            p += used;
        p += strspn(p, " ");
        const char *sev = e->severity == OR_DIAG_ERROR ? "error: " : "warning: ";
        if (strncmp(p, sev, strlen(sev)) == 0)
            p += strlen(sev);
        report_in_file(s, f, e->severity, line, col, p);
        return;
    }
    kube_report(s->pod, s->c, e->severity, s->c->node, "%s", e->text);
}

/* ---- the config's own rules ---- */

/* The node at a key path of the config text, for a position. */
static bool config_node_pos(const kube_file *f, const char *first, const char *second,
                            unsigned long *line, unsigned long *col)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    bool found = false;
    if (first == NULL || !yaml_parser_initialize(&parser))
        return false;
    yaml_parser_set_input_string(&parser, f->value->data.scalar.value,
                                 f->value->data.scalar.length);
    if (yaml_parser_load(&parser, &doc)) {
        yaml_node_t *key, *node = kube_get(&doc, yaml_document_get_root_node(&doc), first, &key);
        if (second != NULL)
            node = kube_get(&doc, node, second, NULL);
        node = second ? node : key;
        if (node != NULL) {
            *line = node->start_mark.line + 1;
            *col = node->start_mark.column + 1;
            found = true;
        }
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    return found;
}

static void config_report(kube_sidecar *s, const kube_file *f, or_diag_severity sev,
                          const char *first, const char *second, const char *text)
{
    unsigned long line = 1, col = 1;
    config_node_pos(f, first, second, &line, &col);
    report_in_file(s, f, sev, line, col, text);
}

static void check_rules(kube_sidecar *s, const kube_file *f, const or_config *cfg)
{
    char text[600];
    bool inbound = false;
    if (!cfg->rbac.enabled) {
        snprintf(text, sizeof text, "no rbac section: any workload with an identity in trust "
                 "domain %s may reach every inbound listener; add rbac with default: deny and "
                 "allow policies for the callers you expect", cfg->trust_domain);
        config_report(s, f, OR_DIAG_ERROR, NULL, NULL, text);
    } else if (cfg->rbac.default_allow && cfg->rbac.npolicies == 0) {
        config_report(s, f, OR_DIAG_ERROR, "rbac", "default",
                      "rbac.default is allow and there are no policies: every request is "
                      "allowed; set default: deny and allow the callers you expect in policies");
    }
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const or_listener_config *l = &cfg->listeners[i];
        if (l->mode != OR_MODE_INBOUND)
            continue;
        inbound = true;
        bool local = l->upstream.is_ip ? or_addr_is_loopback(&l->upstream.addr)
                                       : strcmp(l->upstream.host, "localhost") == 0;
        if (local)
            continue;
        snprintf(text, sizeof text, "inbound listener \"%.64s\" forwards plaintext to %.300s, outside "
                 "the pod; point upstream at the application on 127.0.0.1", l->name,
                 l->upstream_text);
        report_in_file(s, f, OR_DIAG_WARNING, l->pos.line, l->pos.col, text);
    }
    if (!inbound)
        config_report(s, f, OR_DIAG_WARNING, "listeners", NULL,
                      "no inbound listener: connections to this pod do not go through the "
                      "proxy's mTLS; add an inbound listener in front of the application's port");
}

/* ---- the check ---- */

static void load_and_check(kube_sidecar *s, const kube_file *f)
{
    or_config_text *texts = calloc(s->nfiles, sizeof *texts);
    or_diag diag;
    if (texts == NULL)
        return;
    for (size_t i = 0; i < s->nfiles; i++)
        texts[i] = (or_config_text){s->files[i].path,
                                    (const char *)s->files[i].value->data.scalar.value,
                                    s->files[i].value->data.scalar.length};
    or_config_texts in = {texts, s->nfiles,
                          "it is not a data key of a ConfigMap mounted into the container",
                          s->pod->namespace_};
    or_diag_init(&diag);
    or_config *cfg = or_config_load_texts(f->path, &in, &diag);
    if (cfg != NULL) {
        or_rbac_lint(cfg, &diag);
        or_rbac_free(or_rbac_compile(cfg, &diag));
    }
    for (size_t i = 0; i < diag.count; i++)
        move_message(s, &diag.entries[i]);
    if (cfg != NULL && diag.errors == 0)
        check_rules(s, f, cfg);
    s->pod->k->summary->configs++;
    or_config_free(cfg);
    or_diag_free(&diag);
    free(texts);
}

void kube_check_sidecar(kube_pod *pod, const kube_container *c)
{
    kube_sidecar s = {pod, c, NULL, 0};
    const char *path = config_path(pod, c);
    yaml_node_t *mounts = kube_get(pod->doc, c->node, "volumeMounts", NULL);
    for (size_t i = 0; i < kube_length(mounts); i++)
        add_mount(&s, kube_item(pod->k, pod->doc, mounts, i));
    const kube_file *f = find_file(&s, path);
    if (f == NULL)
        explain_missing(&s, path);
    else
        load_and_check(&s, f);
    for (size_t i = 0; i < s.nfiles; i++)
        free(s.files[i].path);
    free(s.files);
}
