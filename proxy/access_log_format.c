/*
 * Access log formatting: one record, one line.
 *
 * A record becomes one line of text (Envoy-like, fixed field
 * order) or one JSON object (docs/access-log.md), written into the caller's
 * buffer without allocating. Paths, request ids and even peer IDs come from
 * the network, so every string is escaped: the text format escapes quotes,
 * backslashes, spaces, control characters, invalid UTF-8 and the code points
 * that move a terminal's cursor or reorder text, so no value can fake a field
 * or a line; JSON escapes what it requires plus DEL and those code points,
 * and replaces invalid UTF-8 with U+FFFD, so every line parses. A long line
 * is cut, never lost: each field has a cap, the request target gets the room
 * left, and a cut field ends in OR_ACCESS_LOG_TRUNCATED, between escape and
 * UTF-8 sequences, never inside one. Dates come from arithmetic, as gmtime_r
 * takes a process-wide lock.
 */
#include "outrider/access_log.h"
#include "outrider/buf.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define OR_ALOG_MARK_LEN (sizeof OR_ACCESS_LOG_TRUNCATED - 1)

/* Caps on the escaped size of each field; their sum with the fixed text of
 * either format stays well under OR_ACCESS_LOG_LINE_MAX, so the request
 * target always keeps several KiB. */
#define OR_ALOG_CAP_SHORT 64
#define OR_ALOG_CAP_NAME 256
#define OR_ALOG_CAP_PEER 1024
#define OR_ALOG_CAP_UNLIMITED ((size_t)-1)

/* ---- output cursor and escaping ---------------------------------------- */

/* Writes up to `cap` bytes into buf and counts every byte the line needs, so
 * one pass tells both the line and how much too long it is. */
typedef struct {
    char *buf;
    size_t cap;
    size_t pos;
    size_t path_out; /* bytes the request target produced */
} or_alog_out;

/* Fills `unit` (16 bytes) with the escaped form of the sequence at s and sets
 * *consumed to the input bytes it covers; returns the unit's length. */
typedef size_t (*or_alog_escape_fn)(const unsigned char *s, size_t n, char *unit,
                                    size_t *consumed);

static void out_bytes(or_alog_out *o, const char *s, size_t n)
{
    if (o->pos < o->cap) {
        size_t room = o->cap - o->pos;
        memcpy(o->buf + o->pos, s, n < room ? n : room);
    }
    o->pos += n;
}

static void out_str(or_alog_out *o, const char *s) { out_bytes(o, s, strlen(s)); }

static void out_char(or_alog_out *o, char c) { out_bytes(o, &c, 1); }

/* Decimal, left-padded with zeros to at least `width` digits. */
static void out_uint(or_alog_out *o, uint64_t v, unsigned width)
{
    char text[20];
    out_bytes(o, text, or_uint_text(v, width, text));
}

/* Microseconds as milliseconds: "5" (text) or "5.123" (JSON). */
static void out_ms(or_alog_out *o, uint64_t us, bool fraction)
{
    out_uint(o, us / 1000, 1);
    if (fraction) {
        out_char(o, '.');
        out_uint(o, us % 1000, 3);
    }
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * civil_from_days). */
static void civil_from_days(int64_t z, int64_t *year, unsigned *month, unsigned *day)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *day = doy - (153 * mp + 2) / 5 + 1;
    *month = mp < 10 ? mp + 3 : mp - 9;
    *year = (int64_t)yoe + era * 400 + (*month <= 2);
}

/* RFC 3339 UTC with milliseconds: 2026-11-23T20:14:36.123Z. */
static void out_time(or_alog_out *o, const struct timespec *ts)
{
    int64_t secs = ts->tv_sec > 0 ? (int64_t)ts->tv_sec : 0, year;
    unsigned month, day, sod = (unsigned)(secs % 86400);
    civil_from_days(secs / 86400, &year, &month, &day);
    long ms = ts->tv_nsec >= 0 && ts->tv_nsec < 1000000000L ? ts->tv_nsec / 1000000 : 0;
    const uint64_t parts[] = {(uint64_t)year, month, day, sod / 3600, sod / 60 % 60, sod % 60,
                              (uint64_t)ms};
    static const unsigned widths[] = {4, 2, 2, 2, 2, 2, 3};
    static const char after[] = "--T::.Z";
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++) {
        out_uint(o, parts[i], widths[i]);
        out_char(o, after[i]);
    }
}

/* Length of the well-formed UTF-8 sequence at s (shortest form, no
 * surrogates, at most U+10FFFF) with its code point, or 0. */
static size_t utf8_sequence(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1fu, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, v = c & 0x0fu, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07u, min = 0x10000;
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3fu);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

/* Code points that are valid but unsafe on a terminal or in an editor: C1
 * controls, line and paragraph separators, bidirectional overrides. */
static bool is_unsafe_code_point(uint32_t cp)
{
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x2028 && cp <= 0x202e) ||
           (cp >= 0x2066 && cp <= 0x2069);
}

static const char or_alog_hex[] = "0123456789abcdef";

static size_t short_escape(unsigned char c, char *unit)
{
    char e = c == '"' ? '"' : c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r'
           : c == '\t' ? 't' : 0;
    if (e == 0)
        return 0;
    unit[0] = '\\';
    unit[1] = e;
    return 2;
}

/* Text: "\xHH" for each byte of anything that could end, fake or hide a
 * field; valid UTF-8 otherwise passes through. */
static size_t escape_text(const unsigned char *s, size_t n, char *unit, size_t *consumed)
{
    uint32_t cp = 0;
    size_t len = utf8_sequence(s, n, &cp);
    *consumed = len > 0 ? len : 1;
    if (len == 1) {
        size_t k = short_escape(s[0], unit);
        if (k > 0)
            return k;
        if (s[0] > ' ' && s[0] != 0x7f) {
            unit[0] = (char)s[0];
            return 1;
        }
    } else if (len > 1 && !is_unsafe_code_point(cp)) {
        memcpy(unit, s, len);
        return len;
    }
    size_t k = 0;
    for (size_t i = 0; i < *consumed; i++) {
        unit[k++] = '\\';
        unit[k++] = 'x';
        unit[k++] = or_alog_hex[s[i] >> 4];
        unit[k++] = or_alog_hex[s[i] & 0xf];
    }
    return k;
}

static size_t json_u_escape(uint32_t cp, char *unit)
{
    memcpy(unit, "\\u", 2);
    for (int i = 0; i < 4; i++)
        unit[2 + i] = or_alog_hex[(cp >> (12 - 4 * i)) & 0xf];
    return 6;
}

/* JSON: short escapes, "\u00hh" for other controls and DEL, "\uhhhh" for
 * unsafe code points, "\ufffd" for each byte of invalid UTF-8. */
static size_t escape_json(const unsigned char *s, size_t n, char *unit, size_t *consumed)
{
    uint32_t cp = 0;
    size_t len = utf8_sequence(s, n, &cp);
    *consumed = len > 0 ? len : 1;
    if (len == 0)
        return json_u_escape(0xfffd, unit);
    if (len == 1) {
        size_t k = short_escape(s[0], unit);
        if (k > 0)
            return k;
        if (s[0] < ' ' || s[0] == 0x7f)
            return json_u_escape(s[0], unit);
    } else if (is_unsafe_code_point(cp)) {
        return json_u_escape(cp, unit);
    }
    memcpy(unit, s, len);
    return len;
}

/* Escapes s into at most `cap` bytes, in one pass: a value that turns out
 * longer goes back to the last unit boundary that leaves room for the
 * truncation mark, and ends in it. cap is at least the mark. */
static void out_escaped(or_alog_out *o, const char *s, size_t n, size_t cap,
                        or_alog_escape_fn esc)
{
    size_t start = o->pos, cut_at = start, consumed;
    char unit[16];
    for (size_t i = 0; i < n; i += consumed) {
        size_t k = esc((const unsigned char *)s + i, n - i, unit, &consumed);
        if (o->pos - start + k > cap) {
            o->pos = cut_at;
            out_bytes(o, OR_ACCESS_LOG_TRUNCATED, OR_ALOG_MARK_LEN);
            return;
        }
        out_bytes(o, unit, k);
        if (o->pos - start <= cap - OR_ALOG_MARK_LEN)
            cut_at = o->pos;
    }
}

/* The request target, escaped within cap; format_line learns from path_out
 * how much room it took. */
static void out_path(or_alog_out *o, const or_access_record *r, size_t cap,
                     or_alog_escape_fn esc)
{
    size_t before = o->pos;
    out_escaped(o, r->path, r->path_len, cap, esc);
    o->path_out = o->pos - before;
}

/* ---- the two formats ---------------------------------------------------- */

typedef void (*or_alog_line_fn)(const or_access_record *r, or_alog_out *o, size_t path_cap);

/* `before`, then the value: "-" when absent or empty, else escaped. */
static void text_str(or_alog_out *o, const char *before, const char *s, size_t cap)
{
    out_str(o, before);
    if (s == NULL || s[0] == '\0')
        out_char(o, '-');
    else
        out_escaped(o, s, strlen(s), cap, escape_text);
}

/* `before`, then a number, or "-" when negative; microseconds become ms. */
static void text_num(or_alog_out *o, const char *before, int64_t v, bool us)
{
    out_str(o, before);
    if (v < 0)
        out_char(o, '-');
    else if (us)
        out_ms(o, (uint64_t)v, false);
    else
        out_uint(o, (uint64_t)v, 1);
}

static void text_rbac(or_alog_out *o, const or_access_record *r)
{
    if (r->rbac_decision == NULL) {
        out_str(o, " rbac=-");
        return;
    }
    text_str(o, " rbac=", r->rbac_decision, OR_ALOG_CAP_SHORT);
    text_str(o, ":", r->rbac_policy, OR_ALOG_CAP_NAME);
    text_num(o, "/", r->rbac_rule, false);
}

/* [start] "METHOD PATH PROTOCOL" STATUS FLAGS BYTES_IN BYTES_OUT DURATION_MS
 * UPSTREAM_MS "SOURCE" "PEER_ID" DIRECTION listener= upstream= rbac= tls=
 * request_id= trace_id= [grpc_status=] */
static void text_line(const or_access_record *r, or_alog_out *o, size_t path_cap)
{
    out_char(o, '[');
    out_time(o, &r->start);
    text_str(o, "] \"", r->method, OR_ALOG_CAP_SHORT);
    out_char(o, ' ');
    if (r->path == NULL || r->path_len == 0)
        out_char(o, '-');
    else
        out_path(o, r, path_cap, escape_text);
    text_str(o, " ", r->protocol, OR_ALOG_CAP_SHORT);
    text_num(o, "\" ", r->status > 0 ? r->status : -1, false);
    text_str(o, " ", r->response_flags, OR_ALOG_CAP_SHORT);
    text_num(o, " ", r->bytes_in > INT64_MAX ? INT64_MAX : (int64_t)r->bytes_in, false);
    text_num(o, " ", r->bytes_out > INT64_MAX ? INT64_MAX : (int64_t)r->bytes_out, false);
    text_num(o, " ", r->duration_us > INT64_MAX ? INT64_MAX : (int64_t)r->duration_us, true);
    text_num(o, " ", r->upstream_time_us, true);
    text_str(o, " \"", r->source, OR_ALOG_CAP_SHORT);
    text_str(o, "\" \"", r->peer_id, OR_ALOG_CAP_PEER);
    text_str(o, "\" ", r->direction, OR_ALOG_CAP_SHORT);
    text_str(o, " listener=", r->listener, OR_ALOG_CAP_NAME);
    text_str(o, " upstream=", r->upstream, OR_ALOG_CAP_NAME);
    text_rbac(o, r);
    text_str(o, " tls=", r->tls_cipher, OR_ALOG_CAP_NAME);
    text_str(o, " request_id=", r->request_id, OR_ALOG_CAP_NAME);
    text_str(o, " trace_id=", r->trace_id, OR_ALOG_CAP_SHORT);
    if (r->grpc_status)
        text_str(o, " grpc_status=", r->grpc_status, OR_ALOG_CAP_SHORT);
    out_char(o, '\n');
}

/* ,"key":"escaped value" or ,"key":null */
static void json_str(or_alog_out *o, const char *key, const char *s, size_t cap)
{
    out_str(o, key);
    if (s == NULL) {
        out_str(o, "null");
        return;
    }
    out_char(o, '"');
    out_escaped(o, s, strlen(s), cap, escape_json);
    out_char(o, '"');
}

static void json_int(or_alog_out *o, const char *key, int64_t v)
{
    out_str(o, key);
    if (v >= 0)
        out_uint(o, (uint64_t)v, 1);
    else
        out_str(o, "null");
}

static void json_line(const or_access_record *r, or_alog_out *o, size_t path_cap)
{
    out_str(o, "{\"start_time\":\"");
    out_time(o, &r->start);
    out_str(o, "\",\"duration_ms\":");
    out_ms(o, r->duration_us, true);
    json_str(o, ",\"listener\":", r->listener, OR_ALOG_CAP_NAME);
    json_str(o, ",\"direction\":", r->direction, OR_ALOG_CAP_SHORT);
    json_str(o, ",\"source\":", r->source, OR_ALOG_CAP_SHORT);
    /* "" is a plaintext peer's: no identity, as in the text format's "-" */
    json_str(o, ",\"peer_id\":", r->peer_id && r->peer_id[0] ? r->peer_id : NULL, OR_ALOG_CAP_PEER);
    json_str(o, ",\"method\":", r->method, OR_ALOG_CAP_SHORT);
    out_str(o, ",\"path\":");
    if (r->path != NULL) {
        out_char(o, '"');
        out_path(o, r, path_cap, escape_json);
        out_char(o, '"');
    } else {
        out_str(o, "null");
    }
    json_str(o, ",\"protocol\":", r->protocol, OR_ALOG_CAP_SHORT);
    json_int(o, ",\"status\":", r->status > 0 ? r->status : -1);
    bool no_flags = r->response_flags == NULL || r->response_flags[0] == '\0';
    json_str(o, ",\"response_flags\":", no_flags ? "-" : r->response_flags, OR_ALOG_CAP_SHORT);
    json_int(o, ",\"bytes_in\":", r->bytes_in > INT64_MAX ? INT64_MAX : (int64_t)r->bytes_in);
    json_int(o, ",\"bytes_out\":", r->bytes_out > INT64_MAX ? INT64_MAX : (int64_t)r->bytes_out);
    json_str(o, ",\"upstream\":", r->upstream, OR_ALOG_CAP_NAME);
    out_str(o, ",\"upstream_time_ms\":");
    if (r->upstream_time_us >= 0)
        out_ms(o, (uint64_t)r->upstream_time_us, true);
    else
        out_str(o, "null");
    json_str(o, ",\"rbac_decision\":", r->rbac_decision, OR_ALOG_CAP_SHORT);
    json_str(o, ",\"rbac_policy\":", r->rbac_policy, OR_ALOG_CAP_NAME);
    json_int(o, ",\"rbac_rule\":", r->rbac_rule);
    json_str(o, ",\"tls_cipher\":", r->tls_cipher, OR_ALOG_CAP_NAME);
    json_str(o, ",\"request_id\":", r->request_id, OR_ALOG_CAP_NAME);
    json_str(o, ",\"trace_id\":", r->trace_id, OR_ALOG_CAP_SHORT);
    if (r->grpc_status)
        json_str(o, ",\"grpc_status\":", r->grpc_status, OR_ALOG_CAP_SHORT);
    out_str(o, "}\n");
}

/* Formats once with an unlimited request target; if the line is too long,
 * formats again with the target cut by the excess. */
static size_t format_line(const or_access_record *r, char *buf, size_t len, or_alog_line_fn fn)
{
    if (r == NULL || buf == NULL || len == 0)
        return 0;
    or_alog_out o = {buf, len, 0, 0};
    fn(r, &o, OR_ALOG_CAP_UNLIMITED);
    if (o.pos <= len)
        return o.pos;
    size_t excess = o.pos - len, path_out = o.path_out;
    if (r->path == NULL || path_out < excess + OR_ALOG_MARK_LEN)
        return 0;
    o = (or_alog_out){buf, len, 0, 0};
    fn(r, &o, path_out - excess);
    return o.pos <= len ? o.pos : 0;
}

size_t or_access_log_format_text(const or_access_record *r, char *buf, size_t len)
{
    return format_line(r, buf, len, text_line);
}

size_t or_access_log_format_json(const or_access_record *r, char *buf, size_t len)
{
    return format_line(r, buf, len, json_line);
}

