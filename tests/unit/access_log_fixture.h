/*
 * access_log_fixture: what test_access_log_format.c and
 * test_access_log_writer.c share.
 *
 * Three records to format: http_record (every field set), tcp_record (a tcp
 * connection: no method, path, status or request id) and empty_record
 * (nothing set). json_line_valid is a strict validator for one access-log
 * line in the JSON format: a flat object of strings, numbers and nulls,
 * well-formed UTF-8, no raw controls and no surrogate escapes, then '\n'.
 * count_tokens counts space-separated tokens; every text line has
 * TEXT_TOKENS. Files go to OUTRIDER_TEST_TMP (or /tmp), named by tmp_path
 * with the process id so that test executables running side by side do not
 * collide.
 */
#ifndef OUTRIDER_TEST_ACCESS_LOG_FIXTURE_H
#define OUTRIDER_TEST_ACCESS_LOG_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "outrider/access_log.h"

#define TEXT_TOKENS 19 /* space-separated tokens in every text line */

static inline const char *tmp_dir(void)
{
    const char *dir = getenv("OUTRIDER_TEST_TMP");
    if (dir == NULL)
        dir = "/tmp";
    mkdir(dir, 0755);
    return dir;
}

static inline void tmp_path(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/alog-%ld-%s", tmp_dir(), (long)getpid(), name);
}

static inline or_access_record http_record(void)
{
    return (or_access_record){
        .start = {1795464876, 123456789}, /* 2026-11-23T20:14:36.123Z */
        .duration_us = 5123,
        .listener = "inbound",
        .direction = "inbound",
        .source = "10.0.0.1:5555",
        .peer_id = "spiffe://cluster.local/ns/web/sa/frontend",
        .method = "GET",
        .path = "/api/x?q=1",
        .path_len = 10,
        .protocol = "HTTP/1.1",
        .status = 200,
        .response_flags = "-",
        .bytes_in = 0,
        .bytes_out = 1234,
        .upstream = "127.0.0.1:8080",
        .upstream_time_us = 3456,
        .rbac_decision = "allow",
        .rbac_policy = "frontend-reads",
        .rbac_rule = 0,
        .tls_cipher = "TLS-ECDHE-ECDSA-WITH-CHACHA20-POLY1305-SHA256",
        .request_id = "9f2c1a7e-0b6d-4a57-9d1e-3c2b8e4f6a10",
        .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
    };
}

static inline or_access_record tcp_record(void)
{
    return (or_access_record){
        .start = {1795464877, 5000000},
        .duration_us = 61234567,
        .listener = "db",
        .direction = "inbound",
        .source = "10.1.2.3:40000",
        .peer_id = "spiffe://cluster.local/ns/shop/sa/orders",
        .protocol = "tcp",
        .response_flags = "UC",
        .bytes_in = 5120,
        .bytes_out = 1048576,
        .upstream = "127.0.0.1:5432",
        .upstream_time_us = 1500,
        .rbac_decision = "allow",
        .rbac_rule = -1,
        .tls_cipher = "TLS-ECDHE-ECDSA-WITH-AES-128-GCM-SHA256",
    };
}

static inline or_access_record empty_record(void)
{
    return (or_access_record){.upstream_time_us = -1, .rbac_rule = -1};
}

/* ---- a strict JSON validator for one access-log object ----------------- */

typedef struct {
    const unsigned char *p, *end;
} json_cur;

/* Well-formed UTF-8 sequence length at p, or 0. */
static inline size_t utf8_ok(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], len, v, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, v = c & 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, v = c & 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, v = c & 0x07, min = 0x10000;
    else
        return 0;
    if ((size_t)(end - p) < len)
        return 0;
    for (unsigned i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (p[i] & 0x3f);
    }
    return v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff) ? 0 : len;
}

static inline bool json_string(json_cur *c)
{
    if (c->p >= c->end || *c->p++ != '"')
        return false;
    while (c->p < c->end && *c->p != '"') {
        if (*c->p < 0x20)
            return false;
        if (*c->p == '\\') {
            c->p++;
            if (c->p >= c->end)
                return false;
            char hex[5] = "";
            if (*c->p == 'u' && c->end - c->p >= 5)
                memcpy(hex, c->p + 1, 4);
            long v = strspn(hex, "0123456789abcdefABCDEF") == 4 ? strtol(hex, NULL, 16) : -1;
            if (*c->p == 'u' && (v < 0 || (v >= 0xd800 && v <= 0xdfff))) /* no surrogates */
                return false;
            if (*c->p != 'u' && (*c->p == '\0' || strchr("\"\\/bfnrt", *c->p) == NULL))
                return false;
            c->p += *c->p == 'u' ? 5 : 1;
            continue;
        }
        size_t len = utf8_ok(c->p, c->end);
        if (len == 0)
            return false;
        c->p += len;
    }
    if (c->p >= c->end)
        return false;
    c->p++;
    return true;
}

static inline bool json_digits(json_cur *c)
{
    const unsigned char *start = c->p;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
        c->p++;
    return c->p > start;
}

static inline bool json_value(json_cur *c)
{
    if (c->p >= c->end)
        return false;
    if (*c->p == '"')
        return json_string(c);
    if (c->end - c->p >= 4 && memcmp(c->p, "null", 4) == 0) {
        c->p += 4;
        return true;
    }
    if (*c->p == '-')
        c->p++;
    if (c->p < c->end && *c->p == '0')
        c->p++;
    else if (!json_digits(c))
        return false;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        return json_digits(c);
    }
    return true;
}

/* One line: a flat object of strings, numbers and nulls, then '\n'. */
static inline bool json_line_valid(const char *line, size_t n)
{
    json_cur c = {(const unsigned char *)line, (const unsigned char *)line + n};
    if (n < 3 || line[n - 1] != '\n' || *c.p++ != '{')
        return false;
    c.end--;
    for (;;) {
        if (!json_string(&c) || c.p >= c.end || *c.p++ != ':' || !json_value(&c))
            return false;
        if (c.p < c.end && *c.p == ',') {
            c.p++;
            continue;
        }
        return c.p + 1 == c.end && *c.p == '}';
    }
}

static inline int count_tokens(const char *s, size_t n)
{
    int tokens = 1;
    for (size_t i = 0; i < n; i++)
        tokens += s[i] == ' ';
    return tokens;
}

#endif
