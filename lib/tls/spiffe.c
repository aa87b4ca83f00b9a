/*
 * spiffe: SPIFFE IDs and the X509-SVID rules on a leaf certificate.
 *
 * Parsing is a single pass over caller-owned bytes, in the order an operator
 * reads an ID: length, scheme, query or fragment, trust domain, path. The
 * first problem found is reported with a static sentence that names the part
 * and the fault ("trust domain contains a port"), so a config error or a log
 * line tells the operator what to fix. The text is taken with an explicit
 * length and never needs a NUL terminator; an embedded NUL byte is just a
 * character that is not allowed. On success the or_spiffe_id points into the
 * caller's text, so nothing is allocated.
 *
 * mbedTLS 2.28 keeps every subjectAltName entry as a raw buffer tagged with
 * its GeneralName choice, but only decodes dNSName and otherName. A URI is
 * the context-specific primitive tag [6] (0x86), whose contents are the
 * IA5String bytes themselves, so finding URI SANs is a walk over
 * crt->subject_alt_names comparing tags.
 *
 * or_svid_uri_san returns OR_SVID_OK whenever a first URI SAN exists and was
 * copied, and reports the total in *count; enforcing "exactly one" is left
 * to or_svid_check_leaf. A URI that holds a NUL byte cannot be handed out as
 * a C string without silently shortening it, so it is refused as
 * OR_SVID_NOT_SPIFFE, like one that does not fit. A NULL `out` means the
 * caller only wants the count or the verdict, and nothing is copied.
 *
 * or_svid_check_leaf applies the rules in this order: URI SAN count, SPIFFE
 * syntax, trust domain, CA flag, key usage, expected ID. As soon as the URI
 * SAN is known to be a valid SPIFFE ID it is copied into `out`, so a caller
 * that is refusing the peer (wrong trust domain, unexpected ID, ...) can
 * still log who the peer claimed to be; on earlier failures `out` is "".
 */
#include "outrider/spiffe.h"

#include <string.h>
#include <strings.h>

#include <mbedtls/asn1.h>
#include <mbedtls/oid.h>
#include <mbedtls/x509.h>

#define OR_SPIFFE_SCHEME "spiffe://"
#define OR_SPIFFE_SCHEME_LEN (sizeof(OR_SPIFFE_SCHEME) - 1)
#define OR_ASN1_TAG_URI (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6)

/* ---- SPIFFE ID syntax ---------------------------------------------------- */

static bool or_is_upper(unsigned char c) { return c >= 'A' && c <= 'Z'; }

static bool or_is_trust_domain_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

/* `prefix` (lower-case) starts text, in any case. */
static bool or_prefix_nocase(const char *text, size_t len, const char *prefix)
{
    return len >= strlen(prefix) && strncasecmp(text, prefix, strlen(prefix)) == 0;
}

static const char *or_check_scheme(const char *text, size_t len)
{
    if (len >= OR_SPIFFE_SCHEME_LEN && memcmp(text, OR_SPIFFE_SCHEME, OR_SPIFFE_SCHEME_LEN) == 0)
        return NULL;
    if (or_prefix_nocase(text, len, OR_SPIFFE_SCHEME))
        return "scheme \"spiffe\" must be lower-case";
    if (or_prefix_nocase(text, len, "spiffe:"))
        return "scheme \"spiffe:\" must be followed by \"//\"";
    return "scheme is not \"spiffe://\"";
}

/* A query starts at the first '?', a fragment at the first '#', wherever they
 * appear after the scheme. */
static const char *or_check_query_and_fragment(const char *rest, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (rest[i] == '?')
            return "SPIFFE ID contains a query";
        if (rest[i] == '#')
            return "SPIFFE ID contains a fragment";
    }
    return NULL;
}

static const char *or_check_trust_domain(const char *td, size_t len)
{
    if (len == 0)
        return "trust domain is empty";
    if (memchr(td, '@', len) != NULL)
        return "trust domain contains userinfo";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)td[i];
        if (or_is_trust_domain_char(c))
            continue;
        if (or_is_upper(c))
            return "trust domain contains an upper-case letter";
        if (c == ':')
            return "trust domain contains a port";
        if (c == '%')
            return "trust domain contains percent-encoding";
        return "trust domain contains a character outside [a-z0-9.-_]";
    }
    return NULL;
}

/* Steps over one "/segment" of path starting at *pos. Returns false at the
 * end of the path. */
static bool or_next_segment(const char *path, size_t len, size_t *pos, const char **seg,
                            size_t *seg_len)
{
    size_t start = *pos;
    if (start >= len)
        return false;
    if (path[start] == '/')
        start++;
    size_t end = start;
    while (end < len && path[end] != '/')
        end++;
    *seg = path + start;
    *seg_len = end - start;
    *pos = end;
    return true;
}

static const char *or_check_segment(const char *seg, size_t len, bool is_last)
{
    if (len == 0)
        return is_last ? "path ends with a slash" : "path contains an empty segment";
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)seg[i];
        if (or_is_trust_domain_char(c) || or_is_upper(c))
            continue;
        if (c == '%')
            return "path contains percent-encoding";
        return "path contains a character outside [A-Za-z0-9.-_]";
    }
    if (len == 1 && seg[0] == '.')
        return "path contains a \".\" segment";
    if (len == 2 && seg[0] == '.' && seg[1] == '.')
        return "path contains a \"..\" segment";
    return NULL;
}

static const char *or_check_path(const char *path, size_t len)
{
    size_t pos = 0;
    const char *seg;
    size_t seg_len;
    while (or_next_segment(path, len, &pos, &seg, &seg_len)) {
        const char *why = or_check_segment(seg, seg_len, pos == len);
        if (why != NULL)
            return why;
    }
    return NULL;
}

/* Returns NULL and fills *id when text is a SPIFFE ID, else the reason. */
static const char *or_spiffe_id_problem(const char *text, size_t len, or_spiffe_id *id)
{
    if (text == NULL || len == 0)
        return "SPIFFE ID is empty";
    if (len > OR_SPIFFE_ID_MAX)
        return "SPIFFE ID is longer than 2048 bytes";
    const char *why = or_check_scheme(text, len);
    if (why != NULL)
        return why;

    const char *rest = text + OR_SPIFFE_SCHEME_LEN;
    size_t rest_len = len - OR_SPIFFE_SCHEME_LEN;
    const char *slash = memchr(rest, '/', rest_len);
    size_t td_len = slash != NULL ? (size_t)(slash - rest) : rest_len;
    if ((why = or_check_query_and_fragment(rest, rest_len)) != NULL ||
        (why = or_check_trust_domain(rest, td_len)) != NULL ||
        (why = or_check_path(rest + td_len, rest_len - td_len)) != NULL)
        return why;

    id->trust_domain = rest;
    id->trust_domain_len = td_len;
    id->path = rest + td_len;
    id->path_len = rest_len - td_len;
    return NULL;
}

int or_spiffe_id_parse(const char *text, size_t len, or_spiffe_id *out, const char **why)
{
    or_spiffe_id id;
    const char *problem = or_spiffe_id_problem(text, len, &id);
    if (problem != NULL) {
        if (why != NULL)
            *why = problem;
        return -1;
    }
    if (out != NULL)
        *out = id;
    return 0;
}

bool or_spiffe_id_namespace(const or_spiffe_id *id, const char **ns, size_t *ns_len)
{
    if (id == NULL || id->path == NULL)
        return false;
    size_t pos = 0;
    const char *seg;
    size_t seg_len;
    while (or_next_segment(id->path, id->path_len, &pos, &seg, &seg_len)) {
        if (seg_len != 2 || memcmp(seg, "ns", 2) != 0)
            continue;
        if (!or_next_segment(id->path, id->path_len, &pos, &seg, &seg_len) || seg_len == 0)
            return false;
        *ns = seg;
        *ns_len = seg_len;
        return true;
    }
    return false;
}

/* ---- X509-SVID ----------------------------------------------------------- */

const char *or_svid_result_str(or_svid_result r)
{
    switch (r) {
    case OR_SVID_OK: return "ok";
    case OR_SVID_NO_URI_SAN: return "no URI SAN";
    case OR_SVID_MANY_URI_SANS: return "more than one URI SAN";
    case OR_SVID_NOT_SPIFFE: return "URI SAN is not a SPIFFE ID";
    case OR_SVID_WRONG_TRUST_DOMAIN: return "wrong trust domain";
    case OR_SVID_LEAF_IS_CA: return "leaf certificate is a CA";
    case OR_SVID_BAD_KEY_USAGE: return "leaf has keyCertSign or cRLSign key usage";
    case OR_SVID_WRONG_ID: return "unexpected SPIFFE ID";
    }
    return "unknown SVID check result";
}

/* Returns the first URI SAN of crt (NULL if none) and counts all of them. */
static const mbedtls_x509_buf *or_find_uri_sans(const mbedtls_x509_crt *crt, size_t *count)
{
    const mbedtls_x509_buf *first = NULL;
    *count = 0;
    if (crt == NULL)
        return NULL;
    for (const mbedtls_x509_sequence *entry = &crt->subject_alt_names; entry != NULL;
         entry = entry->next) {
        if (entry->buf.p == NULL || entry->buf.tag != OR_ASN1_TAG_URI)
            continue;
        if (first == NULL)
            first = &entry->buf;
        (*count)++;
    }
    return first;
}

static or_svid_result or_copy_uri(const mbedtls_x509_buf *uri, char *out, size_t out_len)
{
    if (memchr(uri->p, '\0', uri->len) != NULL)
        return OR_SVID_NOT_SPIFFE;
    if (out == NULL)
        return OR_SVID_OK;
    if (uri->len >= out_len)
        return OR_SVID_NOT_SPIFFE;
    memcpy(out, uri->p, uri->len);
    out[uri->len] = '\0';
    return OR_SVID_OK;
}

static void or_clear_out(char *out, size_t out_len)
{
    if (out != NULL && out_len > 0)
        out[0] = '\0';
}

or_svid_result or_svid_uri_san(const mbedtls_x509_crt *crt, char *out, size_t out_len,
                               size_t *count)
{
    size_t found;
    const mbedtls_x509_buf *first = or_find_uri_sans(crt, &found);
    if (count != NULL)
        *count = found;
    or_clear_out(out, out_len);
    if (first == NULL)
        return OR_SVID_NO_URI_SAN;
    or_svid_result copied = or_copy_uri(first, out, out_len);
    if (copied != OR_SVID_OK)
        or_clear_out(out, out_len);
    return copied;
}

/* `text` is the `len` bytes at p. */
static bool or_is(const char *text, const void *p, size_t len)
{
    return text != NULL && strlen(text) == len && memcmp(text, p, len) == 0;
}

or_svid_result or_svid_check_leaf(const mbedtls_x509_crt *leaf, const char *trust_domain,
                                  const char *expected_id, char *out, size_t out_len,
                                  or_spiffe_id *parsed)
{
    or_clear_out(out, out_len);
    size_t count;
    const mbedtls_x509_buf *uri = or_find_uri_sans(leaf, &count);
    if (count == 0)
        return OR_SVID_NO_URI_SAN;
    if (count > 1)
        return OR_SVID_MANY_URI_SANS;

    or_spiffe_id id;
    if (or_spiffe_id_parse((const char *)uri->p, uri->len, &id, NULL) != 0)
        return OR_SVID_NOT_SPIFFE;
    or_svid_result copied = or_copy_uri(uri, out, out_len);
    if (copied != OR_SVID_OK)
        return copied;
    if (parsed != NULL && out != NULL) /* the same parts, in the copy */
        *parsed = (or_spiffe_id){out + (id.trust_domain - (const char *)uri->p),
                                 id.trust_domain_len, out + (id.path - (const char *)uri->p),
                                 id.path_len};

    if (!or_is(trust_domain, id.trust_domain, id.trust_domain_len))
        return OR_SVID_WRONG_TRUST_DOMAIN;
    if (leaf->ca_istrue)
        return OR_SVID_LEAF_IS_CA;
    if ((leaf->ext_types & MBEDTLS_X509_EXT_KEY_USAGE) != 0 &&
        (leaf->key_usage & (MBEDTLS_X509_KU_KEY_CERT_SIGN | MBEDTLS_X509_KU_CRL_SIGN)) != 0)
        return OR_SVID_BAD_KEY_USAGE;
    if (expected_id != NULL && !or_is(expected_id, uri->p, uri->len))
        return OR_SVID_WRONG_ID;
    return OR_SVID_OK;
}
