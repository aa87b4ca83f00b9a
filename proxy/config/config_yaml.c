/*
 * The YAML layer of the config loader: files, positions, messages, and the
 * table-driven walk over mappings that gives every section of the schema the
 * same treatment of unknown, duplicate, missing and mistyped keys. config.c
 * (the proxy's schema) and config_rbac.c (policies) are written on top of it;
 * config_yaml.h is its interface.
 *
 * Every reader reports its own error. Limits keep a hostile file cheap: only
 * regular files are read (a FIFO or a device could block the reader for
 * ever), at most OR_CFG_FILE_MAX bytes of them; lists and mappings may nest
 * OR_CFG_DEPTH_MAX deep, checked on the parser's events before the
 * document is built; a budget of nodes visited (aliases can make a small
 * file expand exponentially, or even refer to itself); and a cap on errors
 * reported per file.
 */
#include "outrider/config.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- files ---- */

static const char *file_kind(mode_t mode)
{
    if (S_ISDIR(mode))
        return "a directory";
    if (S_ISFIFO(mode))
        return "a FIFO";
    if (S_ISSOCK(mode))
        return "a socket";
    if (S_ISCHR(mode))
        return "a character device";
    if (S_ISBLK(mode))
        return "a block device";
    return "not a regular file";
}

static void too_large(char *why, size_t why_len, size_t max)
{
    snprintf(why, why_len, "it is larger than %zu MiB, the limit for a config or policies file",
             max / (1024 * 1024));
}

/* Fills why when st is not an acceptable file; returns whether it is. */
static bool acceptable(const struct stat *st, size_t max, char *why, size_t why_len)
{
    if (!S_ISREG(st->st_mode))
        snprintf(why, why_len, "it is %s, not a regular file", file_kind(st->st_mode));
    else if (max > 0 && (uint64_t)st->st_size > max)
        too_large(why, why_len, max);
    else
        return true;
    return false;
}

int or_cfg_open_regular(const char *file, size_t max, char *why, size_t why_len)
{
    struct stat st;
    /* stat first, so that a FIFO or a device is never opened; the fstat
     * after the open catches a file swapped in between. O_NONBLOCK keeps
     * that open from waiting for a FIFO's writer. */
    if (stat(file, &st) != 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        return -1;
    }
    if (!acceptable(&st, max, why, why_len))
        return -1;
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "%s", strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0)
        snprintf(why, why_len, "%s", strerror(errno));
    else if (acceptable(&st, max, why, why_len))
        return fd;
    close(fd);
    return -1;
}

/* Reads all of fd, at most `max` bytes, into a new buffer. The buffer grows
 * to max + 1 at most: room to see that a file grew past the limit. */
static int read_all(int fd, size_t max, unsigned char **out, size_t *out_len, char *why,
                    size_t why_len)
{
    size_t cap = max < 65536 ? max + 1 : 65536, len = 0;
    unsigned char *buf = malloc(cap);
    for (;;) {
        if (buf == NULL) {
            snprintf(why, why_len, "%s", strerror(ENOMEM));
            return -1;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n == 0) {
            *out = buf;
            *out_len = len;
            return 0;
        }
        if (n < 0) {
            snprintf(why, why_len, "%s", strerror(errno));
            break;
        }
        len += (size_t)n;
        if (len > max) {
            too_large(why, why_len, max);
            break;
        }
        if (len == cap) {
            cap = cap * 2 < max + 1 ? cap * 2 : max + 1;
            unsigned char *grown = realloc(buf, cap);
            if (grown == NULL)
                free(buf);
            buf = grown;
        }
    }
    free(buf);
    return -1;
}

static char *directory_of(const char *file)
{
    const char *slash = strrchr(file, '/');
    if (slash == NULL)
        return NULL;
    size_t len = slash == file ? 1 : (size_t)(slash - file);
    return strndup(file, len);
}

static void report_syntax_error(or_cfg_file *f, const yaml_parser_t *p)
{
    char detail[160] = "";
    unsigned long line = p->problem_mark.line + 1, col = p->problem_mark.column + 1;
    if (p->error == YAML_MEMORY_ERROR || p->error == YAML_READER_ERROR)
        line = col = 0; /* libyaml keeps no position for these */
    if (p->error == YAML_READER_ERROR)
        snprintf(detail, sizeof(detail), " at byte %zu", p->problem_offset);
    else if (p->context != NULL)
        snprintf(detail, sizeof(detail), " (%s at line %zu, column %zu)", p->context,
                 p->context_mark.line + 1, p->context_mark.column + 1);
    or_diag_add(f->diag, OR_DIAG_ERROR, f->file, line, col, "invalid YAML: %s%s",
                p->problem ? p->problem : "out of memory", detail);
}

int or_cfg_yaml_too_deep(const unsigned char *text, size_t len, int max, yaml_mark_t *where)
{
    yaml_parser_t parser;
    yaml_event_t event;
    if (!yaml_parser_initialize(&parser))
        return -1;
    yaml_parser_set_input_string(&parser, text, len);
    int depth = 0, deep = 0;
    while (!deep && yaml_parser_parse(&parser, &event)) {
        yaml_event_type_t type = event.type;
        if (type == YAML_SEQUENCE_START_EVENT || type == YAML_MAPPING_START_EVENT) {
            deep = ++depth > max;
            *where = event.start_mark;
        } else if (type == YAML_SEQUENCE_END_EVENT || type == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        yaml_event_delete(&event);
        if (type == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&parser);
    return deep;
}

/* Refuses a file nested deeper than OR_CFG_DEPTH_MAX before its document
 * is built (or_cfg_yaml_too_deep). */
static int check_depth(or_cfg_file *f, const unsigned char *text, size_t len)
{
    yaml_mark_t at;
    int deep = or_cfg_yaml_too_deep(text, len, OR_CFG_DEPTH_MAX, &at);
    if (deep < 0) {
        snprintf(f->why, sizeof f->why, "%s", strerror(ENOMEM));
        return OR_CFG_UNREADABLE;
    }
    if (deep == 0)
        return 0;
    or_diag_add(f->diag, OR_DIAG_ERROR, f->file, at.line + 1, at.column + 1,
                "lists and mappings nested more than %d deep; a config or "
                "policies file may nest at most %d levels",
                OR_CFG_DEPTH_MAX, OR_CFG_DEPTH_MAX);
    return OR_CFG_INVALID;
}

/* Loads the next document of f->parser into f->doc. */
static int load_doc(or_cfg_file *f, yaml_node_t **root)
{
    if (f->has_doc)
        yaml_document_delete(&f->doc);
    f->has_doc = false;
    *root = NULL;
    if (!yaml_parser_load(&f->parser, &f->doc)) {
        report_syntax_error(f, &f->parser);
        return OR_CFG_INVALID;
    }
    f->has_doc = true;
    *root = yaml_document_get_root_node(&f->doc);
    return 0;
}

/* A single-document file refuses a second document rather than ignoring it. */
static void refuse_second_doc(or_cfg_file *f)
{
    yaml_document_t next;
    if (!yaml_parser_load(&f->parser, &next)) {
        report_syntax_error(f, &f->parser);
        return;
    }
    yaml_node_t *second = yaml_document_get_root_node(&next);
    if (second != NULL)
        or_diag_add(f->diag, OR_DIAG_ERROR, f->file, second->start_mark.line + 1,
                    second->start_mark.column + 1,
                    "only one YAML document is allowed in a file");
    yaml_document_delete(&next);
}

static int parse_text(or_cfg_file *f, const unsigned char *text, size_t len, yaml_node_t **root)
{
    if (!yaml_parser_initialize(&f->parser)) {
        snprintf(f->why, sizeof f->why, "%s", strerror(ENOMEM));
        return OR_CFG_UNREADABLE;
    }
    yaml_parser_set_input_string(&f->parser, text, len);
    int rc = load_doc(f, root);
    if (f->multi && rc == 0) {
        f->parsing = true; /* the parser stays for or_cfg_next_doc */
        return 0;
    }
    if (rc == 0 && *root != NULL)
        refuse_second_doc(f);
    yaml_parser_delete(&f->parser);
    return rc;
}

int or_cfg_next_doc(or_cfg_file *f, yaml_node_t **root)
{
    if (!f->parsing || !f->has_doc)
        return 0;
    if (yaml_document_get_root_node(&f->doc) == NULL)
        return 0; /* a document without a root marks the end of the stream */
    int rc = load_doc(f, root);
    if (rc != 0)
        return rc;
    return *root != NULL; /* no root: the end of the stream */
}

/* A file of `texts`, parsed like one read from disk. */
static int open_text(or_cfg_file *f, const or_config_texts *texts, yaml_node_t **root)
{
    for (size_t i = 0; i < texts->nfiles; i++) {
        const or_config_text *t = &texts->files[i];
        if (strcmp(t->path, f->file) != 0)
            continue;
        if (t->len > OR_CFG_FILE_MAX) {
            too_large(f->why, sizeof f->why, OR_CFG_FILE_MAX);
            return OR_CFG_UNREADABLE;
        }
        int rc = check_depth(f, (const unsigned char *)t->text, t->len);
        return rc == 0 ? parse_text(f, (const unsigned char *)t->text, t->len, root) : rc;
    }
    snprintf(f->why, sizeof f->why, "%s", texts->missing ? texts->missing : strerror(ENOENT));
    return OR_CFG_UNREADABLE;
}

int or_cfg_open(or_cfg_file *f, or_diag *diag, const char *file, yaml_node_t **root)
{
    return or_cfg_open_in(f, diag, file, NULL, root);
}

static int open_file(or_cfg_file *f, or_diag *diag, const char *file,
                     const or_config_texts *texts, bool multi, yaml_node_t **root)
{
    unsigned char *text;
    size_t len;
    memset(f, 0, sizeof(*f));
    f->multi = multi;
    f->diag = diag;
    f->file = file;
    f->texts = texts;
    *root = NULL;
    if (strchr(file, '/') != NULL && (f->dir = directory_of(file)) == NULL) {
        snprintf(f->why, sizeof f->why, "%s", strerror(ENOMEM));
        return OR_CFG_UNREADABLE;
    }
    if (texts != NULL)
        return open_text(f, texts, root);
    int fd = or_cfg_open_regular(file, OR_CFG_FILE_MAX, f->why, sizeof f->why);
    if (fd < 0)
        return OR_CFG_UNREADABLE;
    int read_rc = read_all(fd, OR_CFG_FILE_MAX, &text, &len, f->why, sizeof f->why);
    close(fd);
    if (read_rc != 0)
        return OR_CFG_UNREADABLE;
    int rc = check_depth(f, text, len);
    if (rc == 0)
        rc = parse_text(f, text, len, root);
    if (f->multi && rc == 0)
        f->text = text; /* the parser reads on from it */
    else
        free(text);
    return rc;
}

int or_cfg_open_in(or_cfg_file *f, or_diag *diag, const char *file,
                   const or_config_texts *texts, yaml_node_t **root)
{
    return open_file(f, diag, file, texts, false, root);
}

int or_cfg_open_docs(or_cfg_file *f, or_diag *diag, const char *file,
                     const or_config_texts *texts, yaml_node_t **root)
{
    return open_file(f, diag, file, texts, true, root);
}

void or_cfg_close(or_cfg_file *f)
{
    if (f->has_doc)
        yaml_document_delete(&f->doc);
    if (f->parsing)
        yaml_parser_delete(&f->parser);
    free(f->text);
    free(f->dir);
    memset(f, 0, sizeof(*f));
}

int or_cfg_add_file(or_config *cfg, const char *name, const char **stored)
{
    char **files = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*files));
    if (files == NULL)
        return -1;
    cfg->files = files;
    if ((files[cfg->nfiles] = strdup(name)) == NULL)
        return -1;
    *stored = files[cfg->nfiles++];
    return 0;
}

char *or_cfg_resolve(or_cfg_file *f, const yaml_node_t *node, const char *text)
{
    char *resolved;
    if (text[0] == '/' || f->dir == NULL)
        resolved = strdup(text);
    else if (asprintf(&resolved, "%s%s%s", f->dir, strcmp(f->dir, "/") ? "/" : "", text) < 0)
        resolved = NULL;
    if (resolved == NULL)
        or_cfg_error(f, node, "out of memory");
    return resolved;
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

