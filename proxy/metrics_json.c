/*
 * /stats?format=json: the Prometheus text of /stats, as one JSON document.
 *
 * The JSON is made from the text rather than rendered a second time, so
 * the two forms cannot disagree: each "# HELP"/"# TYPE" pair starts a
 * family and each sample line becomes {"name","labels","value"} in it
 * (a histogram's _bucket, _sum and _count samples stay in their family).
 * Only the subset of the exposition format this proxy writes is read:
 * label values escaped with \\, \" and \n, values in decimal.
 */
#include "outrider/metrics.h"

#include <stdbool.h>
#include <string.h>

typedef struct {
    const char *p, *end;
} cursor;

/* The next line of `c` (without its '\n'). */
static bool next_line(cursor *c, const char **line, size_t *len)
{
    if (c->p >= c->end)
        return false;
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    *line = c->p;
    *len = (size_t)((nl ? nl : c->end) - c->p);
    c->p = nl ? nl + 1 : c->end;
    return true;
}

static void json_n(or_buf *out, const char *s, size_t n)
{
    or_buf tmp = {0};
    or_buf_append(&tmp, s, n);
    or_buf_append(&tmp, "", 1);
    or_buf_json(out, tmp.data);
    or_buf_free(&tmp);
}

/* The length of the metric or label name at s: [a-zA-Z0-9_:]*. */
static size_t name_len(const char *s, size_t n)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:";
    size_t i = 0;
    while (i < n && s[i] != '\0' && strchr(chars, s[i]))
        i++;
    return i;
}

/* A value is written as a JSON number when it is one. */
static bool json_number(const char *s, size_t n)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    size_t digits = i;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == digits)
        return false;
    if (i < n && s[i] == '.') {
        size_t frac = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == frac)
            return false;
    }
    return i == n;
}

/* {"a":"b",...} from `a="b",...`; returns the bytes read, 0 on an error. */
static size_t labels(or_buf *out, const char *s, size_t n)
{
    size_t i = 0;
    or_buf value = {0};
    or_buf_append_str(out, "{");
    bool first = true, ok = true;
    while (ok && i < n && s[i] != '}') {
        size_t k = name_len(s + i, n - i);
        ok = k > 0 && i + k + 1 < n && s[i + k] == '=' && s[i + k + 1] == '"';
        if (!ok)
            break;
        or_buf_append_str(out, first ? "" : ",");
        json_n(out, s + i, k);
        or_buf_append_str(out, ":");
        i += k + 2;
        value.len = 0;
        while (i < n && s[i] != '"') {
            char ch = s[i++];
            if (ch == '\\' && i < n) {
                ch = s[i++];
                ch = ch == 'n' ? '\n' : ch;
            }
            or_buf_append(&value, &ch, 1);
        }
        ok = i < n;
        i++; /* the closing quote */
        json_n(out, value.data ? value.data : "", value.len);
        first = false;
        if (ok && i < n && s[i] == ',')
            i++;
    }
    or_buf_free(&value);
    or_buf_append_str(out, "}");
    return ok && i < n && s[i] == '}' ? i + 1 : 0;
}

static int sample(or_buf *out, const char *s, size_t n, bool first)
{
    size_t k = name_len(s, n);
    if (k == 0)
        return -1;
    or_buf_append_str(out, first ? "{\"name\":" : ",{\"name\":");
    json_n(out, s, k);
    or_buf_append_str(out, ",\"labels\":");
    size_t i = k;
    if (i < n && s[i] == '{') {
        size_t used = labels(out, s + i + 1, n - i - 1);
        if (used == 0)
            return -1;
        i += 1 + used;
    } else {
        or_buf_append_str(out, "{}");
    }
    if (i >= n || s[i] != ' ')
        return -1;
    i++;
    or_buf_append_str(out, ",\"value\":");
    if (json_number(s + i, n - i))
        or_buf_append(out, s + i, n - i);
    else
        json_n(out, s + i, n - i);
    or_buf_append_str(out, "}");
    return 0;
}

/* Where the document is: families are open from their HELP line until the
 * next one; a family's samples array opens at its TYPE line (or at its
 * first sample, with the type "untyped"). */
typedef struct {
    or_buf *out;
    bool family, samples, first_family, first_sample;
} doc;

static void open_samples(doc *d, const char *type, size_t n)
{
    or_buf_append_str(d->out, ",\"type\":");
    json_n(d->out, type, n);
    or_buf_append_str(d->out, ",\"samples\":[");
    d->samples = true;
    d->first_sample = true;
}

static void close_family(doc *d)
{
    if (d->family && !d->samples)
        open_samples(d, "untyped", 7);
    if (d->family)
        or_buf_append_str(d->out, "]}");
    d->family = d->samples = false;
}

static void open_family(doc *d, const char *name, size_t k, const char *help, size_t help_len)
{
    close_family(d);
    or_buf_append_str(d->out, d->first_family ? "{\"name\":" : ",{\"name\":");
    json_n(d->out, name, k);
    or_buf_append_str(d->out, ",\"help\":");
    json_n(d->out, help, help_len);
    d->family = true;
    d->first_family = false;
}

/* The text after "# HELP name " or "# TYPE name ". */
static const char *after_name(const char *line, size_t n, size_t *k)
{
    *k = name_len(line + 7, n - 7);
    return line + 7 + *k + (7 + *k < n);
}

int or_metrics_text_to_json(const char *text, size_t len, or_buf *out)
{
    cursor c = {text, text + len};
    const char *line;
    size_t n, k;
    doc d = {.out = out, .first_family = true};
    int r = 0;
    or_buf_append_str(out, "{\"metrics\":[");
    while (r == 0 && next_line(&c, &line, &n)) {
        if (n > 7 && memcmp(line, "# HELP ", 7) == 0) {
            const char *help = after_name(line, n, &k);
            open_family(&d, line + 7, k, help, (size_t)(line + n - help));
        } else if (n > 7 && memcmp(line, "# TYPE ", 7) == 0 && d.family && !d.samples) {
            const char *type = after_name(line, n, &k);
            open_samples(&d, type, (size_t)(line + n - type));
        } else if (n > 0 && line[0] != '#') {
            if (!d.family) /* a sample with no HELP: a family of its own */
                open_family(&d, line, name_len(line, n), "", 0);
            if (!d.samples)
                open_samples(&d, "untyped", 7);
            r = sample(out, line, n, d.first_sample);
            d.first_sample = false;
        }
    }
    close_family(&d);
    or_buf_append_str(out, "]}\n");
    return r;
}
