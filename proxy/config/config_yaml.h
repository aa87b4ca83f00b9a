/*
 * config_yaml: the YAML walking shared by config.c and config_rbac.c.
 *
 * Private to the config loader. One or_cfg_file is one parsed YAML file with
 * the diag its problems go to; keys are handled through tables of
 * or_cfg_key, so every mapping in the schema gets the same treatment of
 * unknown, duplicate and missing keys. Paths ("listeners[0].mode") are built
 * by the caller and passed down so every message names the key.
 */
#ifndef OUTRIDER_CONFIG_YAML_H
#define OUTRIDER_CONFIG_YAML_H

#include <yaml.h>

#include "outrider/config.h"
#include "outrider/spiffe.h"

#define OR_CFG_PATH_MAX 256
#define OR_CFG_MAX_KEYS 16 /* the most keys one table may have */
#define OR_CFG_MAX_ERRORS 100
/* A config or policies file: at most this many bytes, and lists and
 * mappings nested at most this deep (docs/config.md). */
#define OR_CFG_FILE_MAX (4 * 1024 * 1024)
#define OR_CFG_DEPTH_MAX 64

typedef struct {
    or_diag *diag;
    yaml_document_t doc;      /* the document being walked */
    bool has_doc;
    bool multi;               /* or_cfg_open_docs: the file may hold several documents */
    yaml_parser_t parser;     /* multi: reads the documents after the first */
    unsigned char *text;      /* multi: the file's bytes, which the parser reads */
    bool parsing;             /* multi: `parser` is initialised */
    const char *file;         /* names the file in diags and positions */
    char *dir;                /* relative paths resolve here; NULL = as given */
    size_t visits;            /* nodes walked, to bound alias expansion */
    size_t errors;            /* reported in this file */
    bool exhausted;           /* a limit was hit: walk and report no more */
    char why[160];            /* why the file could not be read (OR_CFG_UNREADABLE) */
    const or_config_texts *texts; /* files come from here; NULL = the file system */
} or_cfg_file;

typedef struct or_cfg_key or_cfg_key;
typedef void (*or_cfg_handler)(or_cfg_file *f, const or_cfg_key *key, void *target,
                               yaml_node_t *value, const char *path);

/* The field a generic handler fills: key->offset bytes into target. */
#define OR_CFG_FIELD(target, key, type) ((type *)((char *)(target) + (key)->offset))
#define OR_CFG_COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* Declares a key handler. */
#define OR_CFG_HANDLER(name)                                                              \
    void name(or_cfg_file *f, __attribute__((unused)) const or_cfg_key *key, void *target, \
              yaml_node_t *value, const char *path)

struct or_cfg_key {
    const char *name;
    bool required;
    or_cfg_handler handle;
    size_t offset; /* where a generic handler stores the value, inside target */
    int kind;      /* what a generic handler expects */
};

/* Everything here is in config_yaml.c, except the policy loader
 * (config_rbac.c).
 *
 * Files. or_cfg_open returns 0 with *root set (NULL for an empty file);
 * OR_CFG_INVALID when the YAML is malformed or nested too deep (already
 * reported); or OR_CFG_UNREADABLE when the file cannot be read, is not a
 * regular file or is larger than OR_CFG_FILE_MAX: f->why says which, and
 * the caller reports it where the file is named. */
#define OR_CFG_UNREADABLE (-1)
#define OR_CFG_INVALID (-2)
int or_cfg_open(or_cfg_file *f, or_diag *diag, const char *file, yaml_node_t **root);
/* A pass over the events alone, before any document is built: 1 when lists
 * and mappings nest deeper than `max` (*where is the node that goes too
 * deep), 0 when not, -1 when out of memory. It stops at that node, so a
 * hostile file costs no more than its first few thousand bytes (libyaml's
 * cost grows with the square of the depth). Syntax errors are left to the
 * load that follows. */
int or_cfg_yaml_too_deep(const unsigned char *text, size_t len, int max, yaml_mark_t *where);
/* The same, with the file looked up in `texts` when that is not NULL. */
int or_cfg_open_in(or_cfg_file *f, or_diag *diag, const char *file,
                   const or_config_texts *texts, yaml_node_t **root);
/* Like or_cfg_open_in for a file that may hold several YAML documents
 * (`---`), as `kubectl get -o yaml` and GitOps repositories write them:
 * *root is the first document's root; or_cfg_next_doc moves to the next
 * one (setting *root, NULL for an empty document) and returns 1, or 0 at
 * the end of the file, or OR_CFG_INVALID after reporting a syntax error. */
int or_cfg_open_docs(or_cfg_file *f, or_diag *diag, const char *file,
                     const or_config_texts *texts, yaml_node_t **root);
int or_cfg_next_doc(or_cfg_file *f, yaml_node_t **root);
void or_cfg_close(or_cfg_file *f);
int or_cfg_add_file(or_config *cfg, const char *name, const char **stored);
/* text resolved against the directory of f; NULL (reported) on no memory. */
char *or_cfg_resolve(or_cfg_file *f, const yaml_node_t *node, const char *text);
/* Opens `file` for reading if it is a regular file of at most `max` bytes
 * (0: any size), without ever blocking on a FIFO or a device. Returns an fd,
 * or -1 with why[0..why_len) saying what is wrong ("No such file or
 * directory", "it is a FIFO, not a regular file", ...). */
int or_cfg_open_regular(const char *file, size_t max, char *why, size_t why_len);
/* Walks a mapping with a key table. Returns how many known keys
 * it held, or -1 when it is not a mapping. */
int or_cfg_walk(or_cfg_file *f, yaml_node_t *map, const char *path, const or_cfg_key *keys,
                size_t nkeys, void *target);

/* Reporting and positions. or_cfg_quote writes text as a double-quoted,
 * escaped and, past a few dozen characters, shortened string. */
#define OR_CFG_QUOTE_MAX 100
const char *or_cfg_quote(const char *text, char *buf);
void or_cfg_error(or_cfg_file *f, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A warning: the value loads but is likely unsafe (`outrider check` shows it). */
void or_cfg_warning(or_cfg_file *f, const yaml_node_t *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
or_source_pos or_cfg_pos(const or_cfg_file *f, const yaml_node_t *node);
const char *or_cfg_type_name(const yaml_node_t *node);
bool or_cfg_is_null(const yaml_node_t *node);
void or_cfg_index_path(char *buf, const char *parent, size_t index);
/* "parent.key" (or "key" at the top) into buf[OR_CFG_PATH_MAX]. */
void or_cfg_key_path(char *buf, const char *parent, const char *key);

/* Nodes. */
bool or_cfg_expect(or_cfg_file *f, const yaml_node_t *node, const char *path,
                   yaml_node_type_t type);
yaml_node_t *or_cfg_item(or_cfg_file *f, const yaml_node_t *seq, size_t index);
size_t or_cfg_length(const yaml_node_t *seq);
yaml_node_t *or_cfg_lookup(or_cfg_file *f, const yaml_node_t *map, const char *name);
/* A non-empty sequence, or false after reporting why not. */
bool or_cfg_expect_list(or_cfg_file *f, const yaml_node_t *node, const char *path);
/* The items of a list, each loaded by `load` into its own zeroed entry of
 * `size` bytes, with its path ("path[i]"): the array, with its length in
 * *count (an entry whose item failed stays zeroed, so the array can always
 * be freed as a whole). NULL with *count 0 when the list is not a list, is
 * empty (reported unless `istio`, where an empty list reads as unset) or
 * finds no memory (reported). */
typedef void (*or_cfg_item_fn)(or_cfg_file *f, yaml_node_t *item, const char *path, void *entry,
                               const void *arg);
void *or_cfg_load_items(or_cfg_file *f, yaml_node_t *list, const char *path, bool istio,
                        size_t size, size_t *count, or_cfg_item_fn load, const void *arg);

/* Scalars. Each reports its own error and returns NULL / false / -1. */
const char *or_cfg_string(or_cfg_file *f, const yaml_node_t *node, const char *path);
char *or_cfg_strdup(or_cfg_file *f, const yaml_node_t *node, const char *text);
bool or_cfg_bool(or_cfg_file *f, const yaml_node_t *node, const char *path, bool *out);
bool or_cfg_uint(or_cfg_file *f, const yaml_node_t *node, const char *path, uint64_t min,
                 uint64_t max, uint64_t *out);
/* Plain decimal digits; false when empty, signed or too large. */
bool or_cfg_decimal(const char *text, uint64_t *out);
int or_cfg_enum(or_cfg_file *f, const yaml_node_t *node, const char *path,
                const char *const *names, size_t nnames);
/* A name of a listener, policy or service: letters, digits, '.', '-', '_'. */
const char *or_cfg_name(or_cfg_file *f, const yaml_node_t *node, const char *path);

/* SPIFFE ID syntax. */
/* True when every byte of text[0..len) is in `set`. */
bool or_cfg_all_in(const char *text, size_t len, const char *set);
int or_cfg_trust_domain_check(const char *text, size_t len, const char **why);
int or_cfg_spiffe_id_check(const char *text, or_spiffe_id *id, const char **why);

/* Policies: `value` is a file name, a directory or an inline list. */
void or_cfg_load_policies(or_cfg_file *f, yaml_node_t *value, const char *path,
                          or_config *cfg);
void or_cfg_free_policies(or_config *cfg);
/* Adds a zeroed policy to cfg->rbac.policies and returns it (NULL, with an
 * error reported at `at`, when out of memory). */
or_policy_config *or_cfg_new_policy(or_cfg_file *f, const yaml_node_t *at, or_config *cfg);
/* The match lists of a rule: `from`, `to` and `when` of a native policy are
 * read by tables in config_rbac.c; Istio's by config_istio.c. Both check
 * list elements with this (kind is one of OR_CFG_LIST_*). */
enum { OR_CFG_LIST_PRINCIPAL, OR_CFG_LIST_NAMESPACE, OR_CFG_LIST_METHOD, OR_CFG_LIST_PATH,
       OR_CFG_LIST_HOST, OR_CFG_LIST_VALUE, OR_CFG_LIST_PORT, OR_CFG_LIST_CIDR };
/* Added to a kind: Istio's form (principals without "spiffe://", empty
 * lists read as unset, no path templates). */
#define OR_CFG_LIST_ISTIO 0x100
/* The handler of every list-valued match field; key->offset is where the
 * or_strlist, or_portlist or or_cidrlist is in the entry. */
OR_CFG_HANDLER(or_cfg_on_list);
void or_cfg_free_labels(or_labels *labels);
/* A mapping of strings to strings (labels, matchLabels), or false after
 * reporting why not. */
bool or_cfg_labels(or_cfg_file *f, yaml_node_t *value, const char *path, or_labels *out);

/* Istio documents (config_istio.c): true when `root` is a document with a
 * security.istio.io apiVersion, which is then loaded (or skipped, with a
 * note, when it is of another kind). */
bool or_cfg_istio_document(or_cfg_file *f, yaml_node_t *root, or_config *cfg);

/* The workload (config_scope.c): top-level `namespace` and `labels`, and
 * after the walk the namespace from the identity certificate and each
 * inbound listener's mTLS mode. */
/* A Kubernetes namespace name (a DNS-1123 label), or NULL after an error. */
const char *or_cfg_namespace(or_cfg_file *f, const yaml_node_t *node, const char *path);
void or_cfg_resolve_workload(or_cfg_file *f, or_config *cfg);

#endif
