/*
 * config_file: reading the YAML files of a configuration.
 *
 * Private to the config loader (config_yaml.h). A file is opened only when
 * it is a regular file no larger than OR_CFG_FILE_MAX, so a FIFO or a
 * device never blocks `check`; its nesting is measured on the event stream
 * before a document is built, since libyaml's cost grows with the square of
 * the depth; then it is loaded as one document (a config) or as a stream of
 * documents (a policies file, which may hold several Kubernetes resources).
 * Files may also come from memory (or_config_texts: a manifest's ConfigMap),
 * parsed exactly like files on disk.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_yaml.h"
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
