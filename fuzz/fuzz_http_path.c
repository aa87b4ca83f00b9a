/*
 * Fuzz target: or_http_target_normalize (include/outrider/http_path.h), the
 * request target that policies match on and that the application receives.
 *
 * The first input byte chooses how encoded slashes are treated (bit 0:
 * OR_SLASHES_DECODE, else OR_SLASHES_REJECT); the rest is the target.
 * Every OR_PATH_OK result is held to the header's contract: the path is
 * "*" or starts with '/'; it has no empty, "." or ".." segment (no "//",
 * "/./", "/../", no trailing "/." or "/.."), no '\', only bytes allowed in
 * a path, and every '%' starts an upper-case escape of a byte that is not
 * unreserved (so never %2F or %5C either); the query is the input's, byte
 * for byte; an authority lies inside the input and holds no '@'; and
 * normalising the output again gives the same bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "outrider/buf.h"
#include "outrider/http_path.h"

static bool is_unreserved(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~';
}

/* RFC 3986 pchar without '%', plus '/'. */
static bool may_stand(unsigned char c)
{
    return c != '\0' && (is_unreserved(c) || strchr("!$&'()*+,;=:@/", c) != NULL);
}

static int upper_hex(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool contains(const char *p, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; i + n <= len; i++)
        if (memcmp(p + i, needle, n) == 0)
            return true;
    return false;
}

static bool ends_with(const char *p, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len >= n && memcmp(p + len - n, suffix, n) == 0;
}

static void require_normal_path(const char *p, size_t len)
{
    if (len == 1 && p[0] == '*')
        return;
    FUZZ_REQUIRE(len > 0 && p[0] == '/');
    FUZZ_REQUIRE(!contains(p, len, "//"));
    FUZZ_REQUIRE(!contains(p, len, "/./") && !contains(p, len, "/../"));
    FUZZ_REQUIRE(!ends_with(p, len, "/.") && !ends_with(p, len, "/.."));
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c != '%') {
            FUZZ_REQUIRE(c != '\\' && may_stand(c));
            continue;
        }
        FUZZ_REQUIRE(i + 2 < len);
        int hi = upper_hex((unsigned char)p[i + 1]), lo = upper_hex((unsigned char)p[i + 2]);
        FUZZ_REQUIRE(hi >= 0 && lo >= 0);
        unsigned char d = (unsigned char)(hi << 4 | lo);
        FUZZ_REQUIRE(!is_unreserved(d) && d != '/' && d != '\\');
        i += 2;
    }
}

static void require_query_kept(const char *in, size_t len, const or_buf *out, const or_target *t)
{
    const char *q = memchr(in, '?', len);
    size_t qlen = q ? len - (size_t)(q - in) : 0;
    FUZZ_REQUIRE(out->len - t->path_len == qlen);
    FUZZ_REQUIRE(qlen == 0 || memcmp(out->data + t->path_len, q, qlen) == 0);
}

static void require_idempotent(const or_buf *out, const or_target *t, or_escaped_slashes mode)
{
    or_buf again = {0};
    or_target t2;
    or_path_status st = or_http_target_normalize(out->data, out->len, mode, &again, &t2);
    FUZZ_REQUIRE(st == OR_PATH_OK || st == OR_PATH_NO_MEMORY);
    if (st == OR_PATH_OK) {
        FUZZ_REQUIRE(t2.authority_len == 0 && t2.path_len == t->path_len);
        FUZZ_REQUIRE(again.len == out->len && memcmp(again.data, out->data, out->len) == 0);
    }
    or_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    or_escaped_slashes mode = data[0] & 1 ? OR_SLASHES_DECODE : OR_SLASHES_REJECT;
    const char *in = (const char *)data + 1;
    size_t len = size - 1;
    or_buf out = {0};
    or_target t;
    or_path_status st = or_http_target_normalize(in, len, mode, &out, &t);
    FUZZ_REQUIRE(or_http_path_status_text(st) != NULL);
    if (st == OR_PATH_OK) {
        FUZZ_REQUIRE(t.path_len <= out.len);
        require_normal_path(out.data, t.path_len);
        require_query_kept(in, len, &out, &t);
        if (t.authority_len > 0) {
            FUZZ_REQUIRE(t.authority >= in && t.authority_len <= len &&
                         (size_t)(t.authority - in) <= len - t.authority_len);
            FUZZ_REQUIRE(memchr(t.authority, '@', t.authority_len) == NULL);
        }
        require_idempotent(&out, &t, mode);
    }
    or_buf_free(&out);
    return 0;
}
