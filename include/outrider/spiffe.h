/*
 * spiffe: SPIFFE IDs and X509-SVID leaf checks.
 *
 * Contract: pure functions over caller-owned memory, no allocation. A SPIFFE
 * ID is "spiffe://<trust-domain><path>" per the SPIFFE-ID standard: lower-case
 * scheme, trust domain of [a-z0-9.-_] (no port, no userinfo), a path of
 * non-empty segments of [A-Za-z0-9.-_] that are not "." or "..", no query or
 * fragment, at most 2048 bytes. Chain and validity are checked by mbedTLS
 * against the bundle; or_svid_check_leaf adds the SVID-specific rules on the
 * leaf: exactly one URI SAN, which is a valid SPIFFE ID in the expected
 * trust domain; not a CA; no keyCertSign or cRLSign key usage.
 */
#ifndef OUTRIDER_SPIFFE_H
#define OUTRIDER_SPIFFE_H

#include <stdbool.h>
#include <stddef.h>

#include <mbedtls/x509_crt.h>

#define OR_SPIFFE_ID_MAX 2048

typedef struct {
    const char *trust_domain; /* points into the parsed text */
    size_t trust_domain_len;
    const char *path;         /* "" or "/..." */
    size_t path_len;
} or_spiffe_id;

/* Returns 0, or -1 with *why set to a static explanation. */
int or_spiffe_id_parse(const char *text, size_t len, or_spiffe_id *out, const char **why);

/* The <ns> of a ".../ns/<ns>/..." path: the segment after the first "ns"
 * segment. Returns false when there is none. */
bool or_spiffe_id_namespace(const or_spiffe_id *id, const char **ns, size_t *ns_len);

typedef enum {
    OR_SVID_OK = 0,
    OR_SVID_NO_URI_SAN,
    OR_SVID_MANY_URI_SANS,
    OR_SVID_NOT_SPIFFE,       /* URI SAN present but not a valid SPIFFE ID */
    OR_SVID_WRONG_TRUST_DOMAIN,
    OR_SVID_LEAF_IS_CA,
    OR_SVID_BAD_KEY_USAGE,    /* keyCertSign or cRLSign on a leaf */
    OR_SVID_WRONG_ID,         /* valid, but not the identity expected */
} or_svid_result;

const char *or_svid_result_str(or_svid_result r);

/* Finds the URI SANs (tag 0x86) of `crt`. Copies the first into out (NUL
 * terminated, truncated never: returns OR_SVID_NOT_SPIFFE if it does not
 * fit) and reports how many there were. */
or_svid_result or_svid_uri_san(const mbedtls_x509_crt *crt, char *out, size_t out_len,
                               size_t *count);

/* Applies the X509-SVID leaf rules. On OR_SVID_OK the SPIFFE ID is in out
 * and, when parsed is not NULL, its parts in *parsed, pointing into out.
 * When expected_id is not NULL, the ID must also equal it. */
or_svid_result or_svid_check_leaf(const mbedtls_x509_crt *leaf, const char *trust_domain,
                                  const char *expected_id, char *out, size_t out_len,
                                  or_spiffe_id *parsed);

#endif
