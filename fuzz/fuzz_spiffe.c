/*
 * Fuzz target: SPIFFE IDs and the X509-SVID leaf rules
 * (include/outrider/spiffe.h).
 *
 * The input is parsed twice: as the text of a SPIFFE ID with
 * or_spiffe_id_parse (and its namespace looked up), and as a DER
 * certificate with mbedtls_x509_crt_parse_der; a certificate that parses
 * goes through or_svid_uri_san and or_svid_check_leaf, with and without an
 * expected ID and with a roomy and a small output buffer.
 *
 * Beyond memory and UB errors, it checks the contract: a parsed ID's parts
 * lie inside the text and its path is empty or starts with '/'; an ID the
 * leaf check accepts is NUL-terminated, parses again, is in the expected
 * trust domain, and its parsed parts point into the output buffer.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <mbedtls/x509_crt.h>

#include "fuzz_check.h"
#include "outrider/spiffe.h"

#define TRUST_DOMAIN "cluster.local"

static bool inside(const char *base, size_t len, const char *p, size_t n)
{
    return p >= base && n <= len && (size_t)(p - base) <= len - n;
}

static void check_id_text(const char *text, size_t len)
{
    or_spiffe_id id;
    const char *why = NULL;
    if (or_spiffe_id_parse(text, len, &id, &why) != 0) {
        FUZZ_REQUIRE(why != NULL);
        return;
    }
    FUZZ_REQUIRE(len <= OR_SPIFFE_ID_MAX);
    FUZZ_REQUIRE(id.trust_domain_len > 0 && inside(text, len, id.trust_domain, id.trust_domain_len));
    FUZZ_REQUIRE(id.path_len == 0 || (inside(text, len, id.path, id.path_len) && id.path[0] == '/'));
    const char *ns = NULL;
    size_t ns_len = 0;
    if (or_spiffe_id_namespace(&id, &ns, &ns_len))
        FUZZ_REQUIRE(inside(id.path, id.path_len, ns, ns_len));
}

static void check_leaf(const mbedtls_x509_crt *crt, const char *expected, size_t out_len)
{
    char out[OR_SPIFFE_ID_MAX + 1];
    or_spiffe_id parsed;
    or_svid_result r = or_svid_check_leaf(crt, TRUST_DOMAIN, expected, out, out_len, &parsed);
    FUZZ_REQUIRE(or_svid_result_str(r) != NULL);
    if (r != OR_SVID_OK)
        return;
    size_t len = strnlen(out, out_len);
    FUZZ_REQUIRE(len < out_len);
    FUZZ_REQUIRE(expected == NULL || strcmp(out, expected) == 0);
    or_spiffe_id again;
    const char *why = NULL;
    FUZZ_REQUIRE(or_spiffe_id_parse(out, len, &again, &why) == 0);
    FUZZ_REQUIRE(again.trust_domain_len == strlen(TRUST_DOMAIN) &&
                 memcmp(again.trust_domain, TRUST_DOMAIN, again.trust_domain_len) == 0);
    FUZZ_REQUIRE(inside(out, len, parsed.trust_domain, parsed.trust_domain_len));
    FUZZ_REQUIRE(parsed.path_len == 0 || inside(out, len, parsed.path, parsed.path_len));
}

static void check_certificate(const uint8_t *data, size_t size)
{
    mbedtls_x509_crt crt;
    mbedtls_x509_crt_init(&crt);
    if (mbedtls_x509_crt_parse_der(&crt, data, size) == 0) {
        char first[OR_SPIFFE_ID_MAX + 1];
        size_t count = 0;
        or_svid_result r = or_svid_uri_san(&crt, first, sizeof first, &count);
        FUZZ_REQUIRE(or_svid_result_str(r) != NULL);
        check_leaf(&crt, NULL, OR_SPIFFE_ID_MAX + 1);
        check_leaf(&crt, NULL, 24);
        check_leaf(&crt, "spiffe://" TRUST_DOMAIN "/ns/shop/sa/payments", OR_SPIFFE_ID_MAX + 1);
    }
    mbedtls_x509_crt_free(&crt);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_id_text((const char *)data, size);
    check_certificate(data, size);
    return 0;
}
