/*
 * check_kube_int: what the files of the manifest check share, private to
 * them: check_kube.c (documents, objects, workloads), check_kube_pod.c (the
 * pod and container rules) and check_kube_sidecar.c (the sidecar's config,
 * read out of a ConfigMap).
 *
 * Every node is looked up in the document it belongs to, so a node always
 * travels with its yaml_document_t. Findings go through kube_report, which
 * adds the "Kind/name: " of the object and stops after KUBE_MAX_FINDINGS.
 */
#ifndef OUTRIDER_CHECK_KUBE_INT_H
#define OUTRIDER_CHECK_KUBE_INT_H

#include <stdbool.h>
#include <stddef.h>

#include <yaml.h>

#include "outrider/check_kube.h"
#include "outrider/diag.h"

#define KUBE_MAX_FINDINGS 1000
#define KUBE_MAX_VISITS 1000000 /* list items walked: bounds what aliases expand to */
#define KUBE_DEPTH_MAX 64

/* A ConfigMap of the file: where the sidecar's config may come from. */
typedef struct {
    yaml_document_t *doc;
    yaml_node_t *node;       /* the object */
    const char *name, *namespace_; /* namespace_ NULL when not written */
} kube_configmap;

typedef struct {
    or_diag *diag;
    const char *file;
    const char *text;        /* the manifest, for the columns of block scalars */
    size_t len;
    size_t *line_starts;     /* offset of each line of text */
    size_t nlines;
    kube_configmap *configmaps;
    size_t nconfigmaps;
    size_t findings, visits;
    bool exhausted;
    or_kube_summary *summary;
} kube_check;

/* The object being checked and its pod spec. */
typedef struct {
    kube_check *k;
    yaml_document_t *doc;
    const char *kind, *name, *namespace_;
    yaml_node_t *spec;       /* the pod spec mapping */
    yaml_node_t *spec_key;   /* the `spec` key above it: where pod-level keys are missing */
    yaml_node_t *meta;       /* the pod's (or pod template's) metadata, or NULL */
    yaml_node_t *psc;        /* spec.securityContext mapping, or NULL */
} kube_pod;

typedef struct {
    const char *what;        /* "container", "init container", "ephemeral container" */
    const char *name;
    yaml_node_t *node;       /* the container mapping */
    yaml_node_t *sc, *sc_key;/* securityContext mapping and its key, or NULL */
    bool ephemeral;
} kube_container;

/* Nodes (check_kube.c). kube_get returns the value of `name` in map (NULL
 * when absent or map is not a mapping) and, if key_out, its key node. */
yaml_node_t *kube_get(yaml_document_t *doc, const yaml_node_t *map, const char *name,
                      yaml_node_t **key_out);
/* The text of a scalar node, or NULL. */
const char *kube_scalar(const yaml_node_t *node);
const char *kube_get_text(yaml_document_t *doc, const yaml_node_t *map, const char *name);
bool kube_is_true(const yaml_node_t *node);
bool kube_is_false(const yaml_node_t *node);
size_t kube_length(const yaml_node_t *seq);
/* Item i of a sequence; NULL once the visit budget is spent. */
yaml_node_t *kube_item(kube_check *k, yaml_document_t *doc, const yaml_node_t *seq, size_t i);

/* Reporting (check_kube.c): about container c, or with c NULL the pod.
 * kube_report_at is for positions computed by the caller (inside a
 * ConfigMap's text). */
void kube_report(kube_pod *pod, const kube_container *c, or_diag_severity sev,
                 const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void kube_report_at(kube_check *k, or_diag_severity sev, unsigned long line,
                    unsigned long col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The text of line `line` (1-based) of the manifest, without its newline. */
const char *kube_line(const kube_check *k, unsigned long line, size_t *len);

/* The rules (check_kube_pod.c). */
void kube_check_pod(kube_pod *pod);

/* The sidecar (check_kube_sidecar.c): whether the container runs the
 * Outrider proxy, and the check of the config it reads. */
bool kube_is_sidecar(kube_pod *pod, const kube_container *c);
void kube_check_sidecar(kube_pod *pod, const kube_container *c);

#endif
