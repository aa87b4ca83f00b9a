/*
 * diag: a list of diagnostics (errors and warnings) about operator input.
 *
 * Contract: every message that reaches an operator about a config or policy
 * file goes through an or_diag, formatted "file:line:column: severity: text".
 * The diag owns its strings; or_diag_free releases them. Line and column are
 * 1-based; pass 0 for either when the position is unknown (the message then
 * names only the file). An or_diag is used from one thread at a time.
 */
#ifndef OUTRIDER_DIAG_H
#define OUTRIDER_DIAG_H

#include <stddef.h>
#include <stdio.h>

typedef enum { OR_DIAG_ERROR, OR_DIAG_WARNING } or_diag_severity;

typedef struct {
    or_diag_severity severity;
    char *text; /* fully formatted: "file:line:col: error: ..." */
} or_diag_entry;

typedef struct {
    or_diag_entry *entries;
    size_t count;
    size_t capacity;
    size_t errors;
    size_t warnings;
} or_diag;

void or_diag_init(or_diag *d);
void or_diag_free(or_diag *d);
void or_diag_add(or_diag *d, or_diag_severity sev, const char *file,
                 unsigned long line, unsigned long col, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Writes every entry, one per line, to `out`. */
void or_diag_print(const or_diag *d, FILE *out);

#endif
