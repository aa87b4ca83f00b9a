/*
 * diag: the one place that formats messages about operator input.
 *
 * A diag is a growable array of fully formatted lines. Each line is built at
 * the moment it is added ("file:line:column: severity: text"), so the caller
 * never has to keep positions or file names alive, and printing is a plain
 * walk over the array. The error and warning counters are kept even when
 * memory runs out and a line cannot be stored: a caller that asks "were
 * there errors?" always gets the truth, which is what decides whether a
 * config is accepted.
 *
 * Positions follow the compiler convention: 1-based line and column. When
 * either is unknown (0), the line names only the file.
 */
#include "outrider/diag.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void or_diag_init(or_diag *d)
{
    memset(d, 0, sizeof(*d));
}

void or_diag_free(or_diag *d)
{
    for (size_t i = 0; i < d->count; i++)
        free(d->entries[i].text);
    free(d->entries);
    memset(d, 0, sizeof(*d));
}

static const char *severity_name(or_diag_severity sev)
{
    return sev == OR_DIAG_ERROR ? "error" : "warning";
}

/* Formats the "file:line:col: severity: " prefix into buf. */
static int format_prefix(char *buf, size_t len, or_diag_severity sev, const char *file,
                         unsigned long line, unsigned long col)
{
    if (file == NULL)
        return snprintf(buf, len, "%s: ", severity_name(sev));
    if (line == 0 || col == 0)
        return snprintf(buf, len, "%s: %s: ", file, severity_name(sev));
    return snprintf(buf, len, "%s:%lu:%lu: %s: ", file, line, col, severity_name(sev));
}

static char *format_entry(or_diag_severity sev, const char *file, unsigned long line,
                          unsigned long col, const char *fmt, va_list ap)
{
    va_list ap2;
    int prefix_len = format_prefix(NULL, 0, sev, file, line, col);
    va_copy(ap2, ap);
    int body_len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (prefix_len < 0 || body_len < 0)
        return NULL;

    size_t total = (size_t)prefix_len + (size_t)body_len + 1;
    char *text = malloc(total);
    if (text == NULL)
        return NULL;
    format_prefix(text, total, sev, file, line, col);
    vsnprintf(text + prefix_len, total - (size_t)prefix_len, fmt, ap);
    return text;
}

static int ensure_capacity(or_diag *d)
{
    if (d->count < d->capacity)
        return 0;
    size_t capacity = d->capacity ? d->capacity * 2 : 8;
    or_diag_entry *entries = realloc(d->entries, capacity * sizeof(*entries));
    if (entries == NULL)
        return -1;
    d->entries = entries;
    d->capacity = capacity;
    return 0;
}

void or_diag_add(or_diag *d, or_diag_severity sev, const char *file, unsigned long line,
                 unsigned long col, const char *fmt, ...)
{
    if (sev == OR_DIAG_ERROR)
        d->errors++;
    else
        d->warnings++;

    if (ensure_capacity(d) != 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *text = format_entry(sev, file, line, col, fmt, ap);
    va_end(ap);
    if (text == NULL)
        return;
    d->entries[d->count].severity = sev;
    d->entries[d->count].text = text;
    d->count++;
}

void or_diag_print(const or_diag *d, FILE *out)
{
    for (size_t i = 0; i < d->count; i++)
        fprintf(out, "%s\n", d->entries[i].text);
}
