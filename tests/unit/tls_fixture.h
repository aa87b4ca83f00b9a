/*
 * tls_fixture: the throwaway PKI and TLS settings that the mbedTLS-level
 * unit tests share (test_tls_idle.c, test_stream.c).
 *
 * tls_fixture_setup makes a P-256 CA and one leaf it signs (valid for a day,
 * no SPIFFE ID: these tests are about records, not identities) and seeds a
 * DRBG; tls_fixture_teardown frees them. tls_fixture_conf sets up one side's
 * mbedtls_ssl_config: TLS 1.2 only, mutual authentication against the CA,
 * the leaf as its own certificate, and the given zero-terminated suite list
 * (which must outlive the config). Both ends present the same leaf.
 */
#ifndef OUTRIDER_TEST_TLS_FIXTURE_H
#define OUTRIDER_TEST_TLS_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
#include <time.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>

static struct {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context ca_key, leaf_key;
    mbedtls_x509_crt ca, leaf;
} pki;

static void tls_fixture_gen_key(mbedtls_pk_context *key)
{
    assert_int_equal(mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)), 0);
    assert_int_equal(mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
                                         mbedtls_ctr_drbg_random, &pki.drbg), 0);
}

/* A v3 certificate for key, signed by the CA key. */
static void tls_fixture_make_cert(const char *subject, mbedtls_pk_context *key, int is_ca,
                                  mbedtls_x509_crt *out)
{
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    char from[16], to[16];
    unsigned char der[2048];
    time_t now = time(NULL), later = now + 86400;
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    assert_int_equal(strftime(from, sizeof from, "%Y%m%d%H%M%S", gmtime(&now)), 14);
    assert_int_equal(strftime(to, sizeof to, "%Y%m%d%H%M%S", gmtime(&later)), 14);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, key);
    mbedtls_x509write_crt_set_issuer_key(&w, &pki.ca_key);
    assert_int_equal(mbedtls_x509write_crt_set_subject_name(&w, subject), 0);
    assert_int_equal(mbedtls_x509write_crt_set_issuer_name(&w, "CN=outrider-test-ca"), 0);
    assert_int_equal(mbedtls_mpi_lset(&serial, is_ca ? 1 : 2), 0);
    assert_int_equal(mbedtls_x509write_crt_set_serial(&w, &serial), 0);
    assert_int_equal(mbedtls_x509write_crt_set_validity(&w, from, to), 0);
    assert_int_equal(mbedtls_x509write_crt_set_basic_constraints(&w, is_ca, -1), 0);
    int len = mbedtls_x509write_crt_der(&w, der, sizeof der, mbedtls_ctr_drbg_random, &pki.drbg);
    assert_true(len > 0);
    assert_int_equal(mbedtls_x509_crt_parse_der(out, der + sizeof der - len, (size_t)len), 0);
    mbedtls_x509write_crt_free(&w);
    mbedtls_mpi_free(&serial);
}

static int tls_fixture_setup(void **state)
{
    (void)state;
    static const unsigned char personal[] = "outrider tls_fixture";
    mbedtls_entropy_init(&pki.entropy), mbedtls_ctr_drbg_init(&pki.drbg);
    mbedtls_pk_init(&pki.ca_key), mbedtls_pk_init(&pki.leaf_key);
    mbedtls_x509_crt_init(&pki.ca), mbedtls_x509_crt_init(&pki.leaf);
    assert_int_equal(mbedtls_ctr_drbg_seed(&pki.drbg, mbedtls_entropy_func, &pki.entropy,
                                           personal, sizeof personal - 1), 0);
    tls_fixture_gen_key(&pki.ca_key);
    tls_fixture_gen_key(&pki.leaf_key);
    tls_fixture_make_cert("CN=outrider-test-ca", &pki.ca_key, 1, &pki.ca);
    tls_fixture_make_cert("CN=outrider-peer", &pki.leaf_key, 0, &pki.leaf);
    return 0;
}

static int tls_fixture_teardown(void **state)
{
    (void)state;
    mbedtls_x509_crt_free(&pki.leaf), mbedtls_x509_crt_free(&pki.ca);
    mbedtls_pk_free(&pki.leaf_key), mbedtls_pk_free(&pki.ca_key);
    mbedtls_ctr_drbg_free(&pki.drbg), mbedtls_entropy_free(&pki.entropy);
    return 0;
}

static void tls_fixture_conf(mbedtls_ssl_config *c, int endpoint, const int *suites)
{
    mbedtls_ssl_config_init(c);
    assert_int_equal(mbedtls_ssl_config_defaults(c, endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                                 MBEDTLS_SSL_PRESET_DEFAULT), 0);
    mbedtls_ssl_conf_rng(c, mbedtls_ctr_drbg_random, &pki.drbg);
    mbedtls_ssl_conf_min_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(c, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_authmode(c, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ciphersuites(c, suites);
    mbedtls_ssl_conf_ca_chain(c, &pki.ca, NULL);
    assert_int_equal(mbedtls_ssl_conf_own_cert(c, &pki.leaf, &pki.leaf_key), 0);
}

#endif
