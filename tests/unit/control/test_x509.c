/*
 * Unit tests of the control plane's certificate code: a CSR made by the
 * agent's writer is inspected by the CA's reader (URI SAN found, signature
 * verified), a tampered CSR fails its signature check, garbage is
 * malformed, and an issued leaf passes the proxy's X509-SVID leaf rules.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "outrider/x509.h"

static void test_csr_round_trip(void **state)
{
    (void)state;
    or_keys_rng rng;
    char err[256];
    assert_int_equal(or_keys_rng_init(&rng, "test", err, sizeof err), 0);
    mbedtls_pk_context key;
    assert_int_equal(or_keys_generate_ec(&rng, &key, err, sizeof err), 0);
    char *pem = NULL;
    const char *id = "spiffe://cluster.local/ns/a/sa/b";
    assert_int_equal(or_x509_make_csr(&rng, &key, id, &pem, err, sizeof err), 0);

    or_x509_csr_info info;
    assert_int_equal(or_x509_csr_inspect(pem, strlen(pem), &info, err, sizeof err), OR_X509_CSR_OK);
    assert_int_equal(info.uri_count, 1);
    assert_string_equal(info.uri, id);

    mbedtls_x509_crt leaf;
    mbedtls_x509_crt_init(&leaf);
    time_t now = time(NULL);
    or_x509_params p = {.subject = "O=Outrider,CN=SVID", .uri = id, .not_before = now - 10,
                        .not_after = now + 60, .subject_key = &info.csr.pk, .issuer_key = &key};
    char *crt = NULL, serial[33];
    assert_int_equal(or_x509_issue(&rng, &p, &crt, serial, err, sizeof err), 0);
    assert_int_equal(strlen(serial), 32);
    assert_int_equal(mbedtls_x509_crt_parse(&leaf, (unsigned char *)crt, strlen(crt) + 1), 0);
    char got[OR_SPIFFE_ID_MAX + 1];
    assert_int_equal(or_svid_check_leaf(&leaf, "cluster.local", id, got, sizeof got, NULL),
                     OR_SVID_OK);
    or_x509_csr_free(&info);

    /* Tampering with the signed part breaks the signature. */
    or_x509_csr_info der;
    assert_int_equal(or_x509_csr_inspect(pem, strlen(pem), &der, err, sizeof err), OR_X509_CSR_OK);
    unsigned char *raw = malloc(der.csr.raw.len);
    memcpy(raw, der.csr.raw.p, der.csr.raw.len);
    unsigned char *cn = memmem(raw, der.csr.raw.len, "SVID", 4);
    assert_non_null(cn);
    cn[0] = 'X';
    or_x509_csr_info bad;
    assert_int_equal(or_x509_csr_inspect((char *)raw, der.csr.raw.len, &bad, err, sizeof err),
                     OR_X509_CSR_BAD_SIGNATURE);
    or_x509_csr_free(&bad);
    or_x509_csr_free(&der);
    free(raw);

    or_x509_csr_info junk;
    assert_int_equal(or_x509_csr_inspect("junk", 4, &junk, err, sizeof err), OR_X509_CSR_MALFORMED);
    or_x509_csr_free(&junk);

    mbedtls_x509_crt_free(&leaf);
    free(crt);
    free(pem);
    mbedtls_pk_free(&key);
    or_keys_rng_free(&rng);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csr_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
