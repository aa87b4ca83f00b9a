/*
 * http_path: the request target as RBAC sees it and as the app receives it.
 *
 * Contract: or_http_target_normalize turns an HTTP/1.1 request target into
 * the origin-form target the proxy matches policies on and forwards. It is a
 * pure function of its input and options: no I/O, no allocation beyond the
 * output buffer it is given, which it resets and fills.
 *
 * The rules (docs/security.md has the reasons, docs/rbac.md a table):
 *   - absolute-form (`http://authority/path?q`, scheme http or https,
 *     case-insensitive) is reduced to origin-form, and the authority is
 *     returned; userinfo (`@`) is refused; an empty path becomes "/";
 *   - anything else must start with "/"; "*" is returned as is (OPTIONS);
 *   - a '#' is refused (a fragment is never sent);
 *   - in the path: %-escapes of unreserved characters (ALPHA DIGIT - . _ ~)
 *     are decoded, other escapes get upper-case hex, a '%' not followed by
 *     two hex digits is refused; %2F and %5C (encoded '/' and '\') are
 *     refused, or decoded to '/' with OR_SLASHES_DECODE; a raw '\' becomes
 *     '/'; bytes that are not allowed in a path (controls, space, '"', '<',
 *     '>', '^', '`', '{', '|', '}', bytes >= 0x80) are %-encoded;
 *   - dot segments are removed (RFC 3986 5.2.4), after decoding, so
 *     "/%2e%2e/" is "/../"; ".." never climbs above "/";
 *   - runs of '/' are merged into one;
 *   - the query (after the first '?') is kept byte for byte.
 *
 * Ownership: `out` is the caller's; `t->authority` points into `in`.
 */
#ifndef OUTRIDER_HTTP_PATH_H
#define OUTRIDER_HTTP_PATH_H

#include <stdbool.h>
#include <stddef.h>

#include "outrider/buf.h"

typedef enum {
    OR_SLASHES_REJECT = 0, /* %2F / %5C in a path: 400 (the default) */
    OR_SLASHES_DECODE,     /* decoded to '/', then normalised */
} or_escaped_slashes;

typedef enum {
    OR_PATH_OK = 0,
    OR_PATH_BAD_ESCAPE,    /* '%' not followed by two hex digits */
    OR_PATH_ESCAPED_SLASH, /* %2F or %5C, and escaped slashes are refused */
    OR_PATH_BAD_FORM,      /* not origin-form, absolute-form or "*" */
    OR_PATH_USERINFO,      /* absolute-form with user@ */
    OR_PATH_FRAGMENT,      /* a '#' in the target */
    OR_PATH_NO_MEMORY,
} or_path_status;

typedef struct {
    size_t path_len;          /* out->data[0, path_len) is the path */
    const char *authority;    /* absolute-form only: points into the input */
    size_t authority_len;     /* 0: origin-form (or "*") */
} or_target;

/* Normalises `in` into `out` (reset first; not NUL-terminated). On an error,
 * `out` holds nothing useful. */
or_path_status or_http_target_normalize(const char *in, size_t len, or_escaped_slashes slashes,
                                        or_buf *out, or_target *t);
/* The length of `host` (a Host value or an authority) without its port:
 * "h:80" -> "h", "[::1]:80" -> "[::1]". */
size_t or_http_host_len(const char *host, size_t len);
/* `s` is host[:port] (RFC 3986): no userinfo ('@'), path, query, space or
 * control byte, a non-empty host and a port of digits only. A Host field or
 * :authority that fails could be read as another host by the application
 * than by the policy. */
bool or_http_host_valid(const char *s, size_t len);
/* A short English reason for a status, for logs and 400 bodies. */
const char *or_http_path_status_text(or_path_status st);

#endif
