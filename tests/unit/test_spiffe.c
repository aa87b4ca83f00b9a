/*
 * Unit tests for spiffe: SPIFFE ID syntax, namespace extraction, URI SAN
 * extraction and the X509-SVID leaf rules.
 *
 * The certificate tests use real X.509 certificates made at run time with
 * mbedTLS itself, so no fixture can expire. One P-256 key is generated per
 * run (in the group setup) and every certificate is a self-signed v3
 * certificate built from a test_cert_spec: which subjectAltName entries it
 * carries, whether it has basic constraints (CA or not), and which key usage
 * bits it has. mbedTLS 2.28 has no SAN setter, so the subjectAltName value is
 * encoded here as DER (a SEQUENCE of context-specific GeneralNames, written
 * back to front with the asn1write helpers) and added as a raw extension.
 * Each certificate is then parsed back with mbedtls_x509_crt_parse_der, which
 * is exactly what the TLS layer sees from a peer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <mbedtls/asn1write.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "outrider/spiffe.h"

/* ---- SPIFFE ID parsing --------------------------------------------------- */

static void assert_parses(const char *text, size_t len, const char *want_td, const char *want_path)
{
    or_spiffe_id id;
    const char *why = NULL;
    if (or_spiffe_id_parse(text, len, &id, &why) != 0)
        fail_msg("\"%s\" should parse, but: %s", text, why);
    assert_int_equal(id.trust_domain_len, strlen(want_td));
    assert_memory_equal(id.trust_domain, want_td, id.trust_domain_len);
    assert_int_equal(id.path_len, strlen(want_path));
    if (id.path_len > 0)
        assert_memory_equal(id.path, want_path, id.path_len);
    assert_ptr_equal(id.trust_domain, text + strlen("spiffe://"));
}

static void assert_rejected(const char *text, size_t len, const char *want_why)
{
    or_spiffe_id id;
    const char *why = NULL;
    if (or_spiffe_id_parse(text, len, &id, &why) == 0)
        fail_msg("\"%s\" should be rejected", text);
    assert_non_null(why);
    assert_string_equal(why, want_why);
}

#define ASSERT_PARSES(text, td, path) assert_parses((text), sizeof(text) - 1, (td), (path))
#define ASSERT_REJECTED(text, why) assert_rejected((text), sizeof(text) - 1, (why))

static void test_parse_valid_ids(void **state)
{
    (void)state;
    ASSERT_PARSES("spiffe://example.org", "example.org", "");
    ASSERT_PARSES("spiffe://example.org/ns/a/sa/b", "example.org", "/ns/a/sa/b");
    ASSERT_PARSES("spiffe://cluster.local/ns/default/sa/Frontend_v2", "cluster.local",
                  "/ns/default/sa/Frontend_v2");
    ASSERT_PARSES("spiffe://a-b_c.d9/x", "a-b_c.d9", "/x");
    ASSERT_PARSES("spiffe://1.2.3.4/x", "1.2.3.4", "/x");
    ASSERT_PARSES("spiffe://td/.../.a/a.", "td", "/.../.a/a.");
    ASSERT_PARSES("spiffe://td/A-Z_0.9", "td", "/A-Z_0.9");
    ASSERT_PARSES("spiffe://t", "t", "");
}

static void test_parse_respects_length(void **state)
{
    (void)state;
    const char *text = "spiffe://example.org/a/b?query";
    assert_parses(text, strlen("spiffe://example.org/a/b"), "example.org", "/a/b");
    assert_parses(text, strlen("spiffe://example.org"), "example.org", "");
    assert_rejected(text, strlen("spiffe://example.org/"), "path ends with a slash");
}

static void test_parse_optional_outputs(void **state)
{
    (void)state;
    const char *why = "untouched";
    assert_int_equal(or_spiffe_id_parse("spiffe://td/x", 13, NULL, &why), 0);
    assert_string_equal(why, "untouched");
    assert_int_equal(or_spiffe_id_parse("spiffe://TD/x", 13, NULL, NULL), -1);
    assert_int_equal(or_spiffe_id_parse(NULL, 0, NULL, &why), -1);
    assert_string_equal(why, "SPIFFE ID is empty");
}

static void test_parse_rejects_scheme(void **state)
{
    (void)state;
    ASSERT_REJECTED("", "SPIFFE ID is empty");
    ASSERT_REJECTED("http://example.org/x", "scheme is not \"spiffe://\"");
    ASSERT_REJECTED("example.org/x", "scheme is not \"spiffe://\"");
    ASSERT_REJECTED("spiffe", "scheme is not \"spiffe://\"");
    ASSERT_REJECTED(" spiffe://example.org", "scheme is not \"spiffe://\"");
    ASSERT_REJECTED("SPIFFE://example.org", "scheme \"spiffe\" must be lower-case");
    ASSERT_REJECTED("Spiffe://example.org/a", "scheme \"spiffe\" must be lower-case");
    ASSERT_REJECTED("spiffe:example.org", "scheme \"spiffe:\" must be followed by \"//\"");
    ASSERT_REJECTED("spiffe:/example.org", "scheme \"spiffe:\" must be followed by \"//\"");
}

static void test_parse_rejects_trust_domain(void **state)
{
    (void)state;
    ASSERT_REJECTED("spiffe://", "trust domain is empty");
    ASSERT_REJECTED("spiffe:///ns/a", "trust domain is empty");
    ASSERT_REJECTED("spiffe://Example.org/a", "trust domain contains an upper-case letter");
    ASSERT_REJECTED("spiffe://example.ORG", "trust domain contains an upper-case letter");
    ASSERT_REJECTED("spiffe://example.org:443/a", "trust domain contains a port");
    ASSERT_REJECTED("spiffe://example.org:", "trust domain contains a port");
    ASSERT_REJECTED("spiffe://user@example.org/a", "trust domain contains userinfo");
    ASSERT_REJECTED("spiffe://user:pw@example.org/a", "trust domain contains userinfo");
    ASSERT_REJECTED("spiffe://exa%6Dple.org", "trust domain contains percent-encoding");
    ASSERT_REJECTED("spiffe://exam ple.org",
                    "trust domain contains a character outside [a-z0-9.-_]");
    ASSERT_REJECTED("spiffe://[::1]/a", "trust domain contains a character outside [a-z0-9.-_]");
    ASSERT_REJECTED("spiffe://ex\0ample.org/a",
                    "trust domain contains a character outside [a-z0-9.-_]");
    ASSERT_REJECTED("spiffe://b\xc3\xa9.org",
                    "trust domain contains a character outside [a-z0-9.-_]");
}

static void test_parse_rejects_query_and_fragment(void **state)
{
    (void)state;
    ASSERT_REJECTED("spiffe://example.org/a?b=c", "SPIFFE ID contains a query");
    ASSERT_REJECTED("spiffe://example.org?x", "SPIFFE ID contains a query");
    ASSERT_REJECTED("spiffe://example.org/a/?", "SPIFFE ID contains a query");
    ASSERT_REJECTED("spiffe://example.org#f", "SPIFFE ID contains a fragment");
    ASSERT_REJECTED("spiffe://example.org/a#f?x", "SPIFFE ID contains a fragment");
}

static void test_parse_rejects_path(void **state)
{
    (void)state;
    ASSERT_REJECTED("spiffe://example.org/", "path ends with a slash");
    ASSERT_REJECTED("spiffe://example.org/a/", "path ends with a slash");
    ASSERT_REJECTED("spiffe://example.org//a", "path contains an empty segment");
    ASSERT_REJECTED("spiffe://example.org/a//b", "path contains an empty segment");
    ASSERT_REJECTED("spiffe://example.org/.", "path contains a \".\" segment");
    ASSERT_REJECTED("spiffe://example.org/a/./b", "path contains a \".\" segment");
    ASSERT_REJECTED("spiffe://example.org/..", "path contains a \"..\" segment");
    ASSERT_REJECTED("spiffe://example.org/a/../b", "path contains a \"..\" segment");
    ASSERT_REJECTED("spiffe://example.org/a%20b", "path contains percent-encoding");
    ASSERT_REJECTED("spiffe://example.org/a b", "path contains a character outside [A-Za-z0-9.-_]");
    ASSERT_REJECTED("spiffe://example.org/a:b", "path contains a character outside [A-Za-z0-9.-_]");
    ASSERT_REJECTED("spiffe://example.org/a@b", "path contains a character outside [A-Za-z0-9.-_]");
    ASSERT_REJECTED("spiffe://example.org/a+b", "path contains a character outside [A-Za-z0-9.-_]");
    ASSERT_REJECTED("spiffe://example.org/a\0b",
                    "path contains a character outside [A-Za-z0-9.-_]");
}

/* Returns a heap string "spiffe://example.org/aaaa..." of exactly len bytes. */
static char *make_long_id(size_t len)
{
    const char *prefix = "spiffe://example.org/";
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, 'a', len);
    memcpy(text, prefix, strlen(prefix));
    text[len] = '\0';
    return text;
}

static void test_parse_length_limit(void **state)
{
    (void)state;
    char *text = make_long_id(OR_SPIFFE_ID_MAX + 1);
    or_spiffe_id id;
    const char *why = NULL;
    assert_int_equal(or_spiffe_id_parse(text, OR_SPIFFE_ID_MAX, &id, &why), 0);
    assert_int_equal(id.path_len, OR_SPIFFE_ID_MAX - strlen("spiffe://example.org"));
    assert_int_equal(or_spiffe_id_parse(text, OR_SPIFFE_ID_MAX + 1, &id, &why), -1);
    assert_string_equal(why, "SPIFFE ID is longer than 2048 bytes");
    free(text);
}

/* ---- namespace ----------------------------------------------------------- */

static void assert_namespace(const char *text, const char *want)
{
    or_spiffe_id id;
    const char *why = NULL;
    if (or_spiffe_id_parse(text, strlen(text), &id, &why) != 0)
        fail_msg("\"%s\": %s", text, why);
    const char *ns = NULL;
    size_t ns_len = 0;
    bool found = or_spiffe_id_namespace(&id, &ns, &ns_len);
    if (want == NULL) {
        if (found)
            fail_msg("\"%s\" should have no namespace, got \"%.*s\"", text, (int)ns_len, ns);
        return;
    }
    if (!found)
        fail_msg("\"%s\" should have namespace \"%s\"", text, want);
    assert_int_equal(ns_len, strlen(want));
    assert_memory_equal(ns, want, ns_len);
}

static void test_namespace(void **state)
{
    (void)state;
    assert_namespace("spiffe://cluster.local/ns/shop/sa/orders", "shop");
    assert_namespace("spiffe://cluster.local/ns/shop", "shop");
    assert_namespace("spiffe://td/x/ns/y", "y");
    assert_namespace("spiffe://td/a/ns/b/ns/c", "b");
    assert_namespace("spiffe://td/ns/ns/sa/x", "ns");
    assert_namespace("spiffe://td/ns/Kube-System_1.x/sa/x", "Kube-System_1.x");
    assert_namespace("spiffe://td", NULL);
    assert_namespace("spiffe://td/sa/x", NULL);
    assert_namespace("spiffe://td/ns", NULL);
    assert_namespace("spiffe://td/nsx/a", NULL);
    assert_namespace("spiffe://td/xns/a", NULL);
    assert_namespace("spiffe://td/NS/a", NULL);
}

static void test_namespace_of_unparsed_id(void **state)
{
    (void)state;
    const char *ns = NULL;
    size_t ns_len = 0;
    or_spiffe_id empty = {.trust_domain = "td", .trust_domain_len = 2, .path = "", .path_len = 0};
    assert_false(or_spiffe_id_namespace(&empty, &ns, &ns_len));
    or_spiffe_id trailing = {.trust_domain = "td", .trust_domain_len = 2, .path = "/ns/",
                             .path_len = 4};
    assert_false(or_spiffe_id_namespace(&trailing, &ns, &ns_len));
    assert_false(or_spiffe_id_namespace(NULL, &ns, &ns_len));
}

/* ---- certificates made at run time --------------------------------------- */

#define TAG_DNS (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 2)
#define TAG_URI (MBEDTLS_ASN1_CONTEXT_SPECIFIC | 6)

typedef struct {
    unsigned char tag;
    const char *value;
    size_t len;
} test_san;

#define URI_SAN(s) {TAG_URI, (s), sizeof(s) - 1}
#define DNS_SAN(s) {TAG_DNS, (s), sizeof(s) - 1}

enum test_basic_constraints { BC_ABSENT, BC_LEAF, BC_CA };

typedef struct {
    test_san sans[3];
    size_t san_count; /* 0: no subjectAltName extension */
    enum test_basic_constraints basic_constraints;
    unsigned int key_usage; /* 0: no keyUsage extension */
} test_cert_spec;

typedef struct {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    mbedtls_pk_context key;
} test_env;

static int group_setup(void **state)
{
    test_env *env = calloc(1, sizeof(*env));
    if (env == NULL)
        return -1;
    mbedtls_entropy_init(&env->entropy);
    mbedtls_ctr_drbg_init(&env->drbg);
    mbedtls_pk_init(&env->key);
    *state = env;
    static const unsigned char personal[] = "outrider test_spiffe";
    if (mbedtls_ctr_drbg_seed(&env->drbg, mbedtls_entropy_func, &env->entropy, personal,
                              sizeof(personal) - 1) != 0)
        return -1;
    if (mbedtls_pk_setup(&env->key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0)
        return -1;
    return mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(env->key),
                               mbedtls_ctr_drbg_random, &env->drbg);
}

static int group_teardown(void **state)
{
    test_env *env = *state;
    if (env == NULL)
        return 0;
    mbedtls_pk_free(&env->key);
    mbedtls_ctr_drbg_free(&env->drbg);
    mbedtls_entropy_free(&env->entropy);
    free(env);
    return 0;
}

/* Writes the subjectAltName value (GeneralNames DER) at the end of buf and
 * returns its length; *der points at its first byte. */
static size_t encode_san_extension(const test_san *sans, size_t count, unsigned char *buf,
                                   size_t size, unsigned char **der)
{
    unsigned char *p = buf + size;
    size_t total = 0;
    for (size_t i = count; i-- > 0;) {
        size_t len = sans[i].len;
        const unsigned char *value = (const unsigned char *)sans[i].value;
        assert_int_equal(mbedtls_asn1_write_raw_buffer(&p, buf, value, len), (int)len);
        int n = mbedtls_asn1_write_len(&p, buf, len);
        assert_true(n > 0);
        assert_int_equal(mbedtls_asn1_write_tag(&p, buf, sans[i].tag), 1);
        total += len + (size_t)n + 1;
    }
    int n = mbedtls_asn1_write_len(&p, buf, total);
    assert_true(n > 0);
    unsigned char sequence_tag = MBEDTLS_ASN1_SEQUENCE | MBEDTLS_ASN1_CONSTRUCTED;
    assert_int_equal(mbedtls_asn1_write_tag(&p, buf, sequence_tag), 1);
    *der = p;
    return total + (size_t)n + 1;
}

static void format_x509_time(time_t t, char out[16])
{
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    assert_int_equal(strftime(out, 16, "%Y%m%d%H%M%S", &tm), 14);
}

static void set_validity(mbedtls_x509write_cert *w)
{
    char not_before[16];
    char not_after[16];
    time_t now = time(NULL);
    format_x509_time(now - 3600, not_before);
    format_x509_time(now + 86400, not_after);
    assert_int_equal(mbedtls_x509write_crt_set_validity(w, not_before, not_after), 0);
}

static void apply_extensions(mbedtls_x509write_cert *w, const test_cert_spec *spec)
{
    if (spec->basic_constraints != BC_ABSENT) {
        int is_ca = spec->basic_constraints == BC_CA;
        assert_int_equal(mbedtls_x509write_crt_set_basic_constraints(w, is_ca, -1), 0);
    }
    if (spec->key_usage != 0)
        assert_int_equal(mbedtls_x509write_crt_set_key_usage(w, spec->key_usage), 0);
    if (spec->san_count > 0) {
        unsigned char buf[8192];
        unsigned char *der;
        size_t der_len = encode_san_extension(spec->sans, spec->san_count, buf, sizeof(buf), &der);
        size_t oid_len = MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME);
        assert_int_equal(mbedtls_x509write_crt_set_extension(w, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                             oid_len, 0, der, der_len), 0);
    }
}

/* Builds a self-signed certificate per spec and parses it into crt. */
static void build_cert(test_env *env, const test_cert_spec *spec, mbedtls_x509_crt *crt)
{
    mbedtls_x509write_cert w;
    mbedtls_mpi serial;
    mbedtls_x509write_crt_init(&w);
    mbedtls_mpi_init(&serial);
    mbedtls_x509write_crt_set_version(&w, MBEDTLS_X509_CRT_VERSION_3);
    mbedtls_x509write_crt_set_md_alg(&w, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(&w, &env->key);
    mbedtls_x509write_crt_set_issuer_key(&w, &env->key);
    assert_int_equal(mbedtls_x509write_crt_set_subject_name(&w, "CN=outrider-test"), 0);
    assert_int_equal(mbedtls_x509write_crt_set_issuer_name(&w, "CN=outrider-test"), 0);
    assert_int_equal(mbedtls_mpi_lset(&serial, 1), 0);
    assert_int_equal(mbedtls_x509write_crt_set_serial(&w, &serial), 0);
    set_validity(&w);
    apply_extensions(&w, spec);

    unsigned char der[16384];
    int len = mbedtls_x509write_crt_der(&w, der, sizeof(der), mbedtls_ctr_drbg_random, &env->drbg);
    assert_true(len > 0);
    mbedtls_x509_crt_init(crt);
    assert_int_equal(mbedtls_x509_crt_parse_der(crt, der + sizeof(der) - len, (size_t)len), 0);
    mbedtls_x509write_crt_free(&w);
    mbedtls_mpi_free(&serial);
}

/* ---- URI SAN extraction --------------------------------------------------- */

#define LEAF_KU (MBEDTLS_X509_KU_DIGITAL_SIGNATURE | MBEDTLS_X509_KU_KEY_AGREEMENT)
#define ID_A "spiffe://example.org/ns/a/sa/b"

static void test_uri_san_single(void **state)
{
    test_cert_spec spec = {.sans = {URI_SAN(ID_A)}, .san_count = 1, .basic_constraints = BC_LEAF,
                           .key_usage = LEAF_KU};
    mbedtls_x509_crt crt;
    build_cert(*state, &spec, &crt);
    char out[OR_SPIFFE_ID_MAX + 1];
    size_t count = 99;
    assert_int_equal(or_svid_uri_san(&crt, out, sizeof(out), &count), OR_SVID_OK);
    assert_int_equal(count, 1);
    assert_string_equal(out, ID_A);
    assert_int_equal(or_svid_uri_san(&crt, NULL, 0, &count), OR_SVID_OK);
    assert_int_equal(count, 1);
    mbedtls_x509_crt_free(&crt);
}

static void test_uri_san_among_other_names(void **state)
{
    test_cert_spec spec = {.sans = {DNS_SAN("orders.shop.svc"), URI_SAN(ID_A), DNS_SAN("x.test")},
                           .san_count = 3, .basic_constraints = BC_LEAF, .key_usage = LEAF_KU};
    mbedtls_x509_crt crt;
    build_cert(*state, &spec, &crt);
    char out[OR_SPIFFE_ID_MAX + 1];
    size_t count = 0;
    assert_int_equal(or_svid_uri_san(&crt, out, sizeof(out), &count), OR_SVID_OK);
    assert_int_equal(count, 1);
    assert_string_equal(out, ID_A);
    mbedtls_x509_crt_free(&crt);
}

static void test_uri_san_counts_all_copies_first(void **state)
{
    test_cert_spec spec = {.sans = {URI_SAN("https://first.test/x"), URI_SAN(ID_A)},
                           .san_count = 2, .basic_constraints = BC_LEAF};
    mbedtls_x509_crt crt;
    build_cert(*state, &spec, &crt);
    char out[OR_SPIFFE_ID_MAX + 1];
    size_t count = 0;
    assert_int_equal(or_svid_uri_san(&crt, out, sizeof(out), &count), OR_SVID_OK);
    assert_int_equal(count, 2);
    assert_string_equal(out, "https://first.test/x");
    mbedtls_x509_crt_free(&crt);
}

static void test_uri_san_none(void **state)
{
    test_cert_spec no_ext = {.basic_constraints = BC_LEAF};
    test_cert_spec dns_only = {.sans = {DNS_SAN("orders.shop.svc")}, .san_count = 1};
    char out[64] = "stale";
    size_t count = 99;
    mbedtls_x509_crt crt;

    build_cert(*state, &no_ext, &crt);
    assert_int_equal(or_svid_uri_san(&crt, out, sizeof(out), &count), OR_SVID_NO_URI_SAN);
    assert_int_equal(count, 0);
    assert_string_equal(out, "");
    mbedtls_x509_crt_free(&crt);

    build_cert(*state, &dns_only, &crt);
    assert_int_equal(or_svid_uri_san(&crt, out, sizeof(out), NULL), OR_SVID_NO_URI_SAN);
    mbedtls_x509_crt_free(&crt);
}

static void test_uri_san_never_truncates(void **state)
{
    test_cert_spec spec = {.sans = {URI_SAN(ID_A)}, .san_count = 1};
    mbedtls_x509_crt crt;
    build_cert(*state, &spec, &crt);
    char exact[sizeof(ID_A)];
    char short_by_one[sizeof(ID_A) - 1];
    size_t count = 0;
    assert_int_equal(or_svid_uri_san(&crt, exact, sizeof(exact), &count), OR_SVID_OK);
    assert_string_equal(exact, ID_A);
    assert_int_equal(or_svid_uri_san(&crt, short_by_one, sizeof(short_by_one), &count),
                     OR_SVID_NOT_SPIFFE);
    assert_int_equal(count, 1);
    assert_string_equal(short_by_one, "");
    mbedtls_x509_crt_free(&crt);
}

static void test_uri_san_with_nul_byte(void **state)
{
    test_cert_spec spec = {.sans = {URI_SAN("spiffe://example.org/a\0.evil")}, .san_count = 1,
                           .basic_constraints = BC_LEAF};
    mbedtls_x509_crt crt;
    build_cert(*state, &spec, &crt);
    char out[OR_SPIFFE_ID_MAX + 1];
    size_t count = 0;
    assert_int_equal(or_svid_uri_san(&crt, out, sizeof(out), &count), OR_SVID_NOT_SPIFFE);
    assert_int_equal(count, 1);
    assert_string_equal(out, "");
    assert_int_equal(or_svid_check_leaf(&crt, "example.org", NULL, out, sizeof(out), NULL),
                     OR_SVID_NOT_SPIFFE);
    mbedtls_x509_crt_free(&crt);
}

/* ---- leaf rules ----------------------------------------------------------- */

static or_svid_result check_cert(void **state, const test_cert_spec *spec, const char *td,
                                 const char *expected_id, char *out, size_t out_len)
{
    mbedtls_x509_crt crt;
    build_cert(*state, spec, &crt);
    or_svid_result r = or_svid_check_leaf(&crt, td, expected_id, out, out_len, NULL);
    mbedtls_x509_crt_free(&crt);
    return r;
}

static void test_leaf_ok(void **state)
{
    char out[OR_SPIFFE_ID_MAX + 1];
    test_cert_spec good = {.sans = {DNS_SAN("b.a.svc"), URI_SAN(ID_A)}, .san_count = 2,
                           .basic_constraints = BC_LEAF, .key_usage = LEAF_KU};
    assert_int_equal(check_cert(state, &good, "example.org", NULL, out, sizeof(out)), OR_SVID_OK);
    assert_string_equal(out, ID_A);
    assert_int_equal(check_cert(state, &good, "example.org", ID_A, out, sizeof(out)), OR_SVID_OK);
    assert_int_equal(check_cert(state, &good, "example.org", ID_A, NULL, 0), OR_SVID_OK);

    test_cert_spec bare = {.sans = {URI_SAN(ID_A)}, .san_count = 1};
    assert_int_equal(check_cert(state, &bare, "example.org", NULL, out, sizeof(out)), OR_SVID_OK);
    assert_string_equal(out, ID_A);
}

/* The parts handed back point into the caller's copy, not the certificate. */
static void test_leaf_parsed_parts(void **state)
{
    test_cert_spec spec = {.sans = {URI_SAN("spiffe://example.org/ns/shop/sa/server")},
                           .san_count = 1, .basic_constraints = BC_LEAF, .key_usage = LEAF_KU};
    mbedtls_x509_crt crt;
    build_cert(*state, &spec, &crt);
    char out[OR_SPIFFE_ID_MAX + 1];
    or_spiffe_id parsed = {0};
    assert_int_equal(or_svid_check_leaf(&crt, "example.org", NULL, out, sizeof(out), &parsed),
                     OR_SVID_OK);
    mbedtls_x509_crt_free(&crt);
    assert_ptr_equal(parsed.trust_domain, out + strlen("spiffe://"));
    assert_int_equal(parsed.trust_domain_len, strlen("example.org"));
    assert_ptr_equal(parsed.path, out + strlen("spiffe://example.org"));
    assert_int_equal(parsed.path_len, strlen("/ns/shop/sa/server"));
    const char *ns = NULL;
    size_t ns_len = 0;
    assert_true(or_spiffe_id_namespace(&parsed, &ns, &ns_len));
    assert_ptr_equal(ns, out + strlen("spiffe://example.org/ns/"));
    assert_int_equal(ns_len, 4);
}

static void test_leaf_no_uri_san(void **state)
{
    char out[64] = "stale";
    test_cert_spec no_ext = {.basic_constraints = BC_LEAF, .key_usage = LEAF_KU};
    test_cert_spec dns_only = {.sans = {DNS_SAN("b.a.svc")}, .san_count = 1,
                               .basic_constraints = BC_LEAF};
    assert_int_equal(check_cert(state, &no_ext, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_NO_URI_SAN);
    assert_string_equal(out, "");
    assert_int_equal(check_cert(state, &dns_only, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_NO_URI_SAN);
    assert_int_equal(or_svid_check_leaf(NULL, "example.org", NULL, out, sizeof(out), NULL),
                     OR_SVID_NO_URI_SAN);
}

static void test_leaf_many_uri_sans(void **state)
{
    char out[OR_SPIFFE_ID_MAX + 1];
    test_cert_spec two_spiffe = {.sans = {URI_SAN(ID_A), URI_SAN("spiffe://example.org/ns/c/sa/d")},
                                 .san_count = 2, .basic_constraints = BC_LEAF};
    test_cert_spec spiffe_and_https = {.sans = {URI_SAN(ID_A), URI_SAN("https://example.org/")},
                                       .san_count = 2, .basic_constraints = BC_LEAF};
    assert_int_equal(check_cert(state, &two_spiffe, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_MANY_URI_SANS);
    assert_string_equal(out, "");
    assert_int_equal(check_cert(state, &spiffe_and_https, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_MANY_URI_SANS);
}

static void test_leaf_not_spiffe(void **state)
{
    char out[OR_SPIFFE_ID_MAX + 1];
    test_cert_spec https = {.sans = {URI_SAN("https://example.org/ns/a/sa/b")}, .san_count = 1};
    test_cert_spec upper = {.sans = {URI_SAN("spiffe://Example.org/ns/a/sa/b")}, .san_count = 1};
    test_cert_spec slash = {.sans = {URI_SAN("spiffe://example.org/ns/a/")}, .san_count = 1};
    assert_int_equal(check_cert(state, &https, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_NOT_SPIFFE);
    assert_string_equal(out, "");
    assert_int_equal(check_cert(state, &upper, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_NOT_SPIFFE);
    assert_int_equal(check_cert(state, &slash, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_NOT_SPIFFE);

    test_cert_spec good = {.sans = {URI_SAN(ID_A)}, .san_count = 1};
    char too_small[8];
    assert_int_equal(check_cert(state, &good, "example.org", NULL, too_small, sizeof(too_small)),
                     OR_SVID_NOT_SPIFFE);
}

static void test_leaf_id_too_long(void **state)
{
    char *text = make_long_id(OR_SPIFFE_ID_MAX + 1);
    test_cert_spec spec = {.sans = {{TAG_URI, text, OR_SPIFFE_ID_MAX + 1}}, .san_count = 1};
    char out[OR_SPIFFE_ID_MAX + 1];
    assert_int_equal(check_cert(state, &spec, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_NOT_SPIFFE);
    spec.sans[0].len = OR_SPIFFE_ID_MAX;
    assert_int_equal(check_cert(state, &spec, "example.org", NULL, out, sizeof(out)), OR_SVID_OK);
    assert_int_equal(strlen(out), OR_SPIFFE_ID_MAX);
    free(text);
}

static void test_leaf_wrong_trust_domain(void **state)
{
    char out[OR_SPIFFE_ID_MAX + 1];
    test_cert_spec spec = {.sans = {URI_SAN(ID_A)}, .san_count = 1, .basic_constraints = BC_LEAF};
    assert_int_equal(check_cert(state, &spec, "other.org", NULL, out, sizeof(out)),
                     OR_SVID_WRONG_TRUST_DOMAIN);
    assert_string_equal(out, ID_A);
    assert_int_equal(check_cert(state, &spec, "example.or", NULL, out, sizeof(out)),
                     OR_SVID_WRONG_TRUST_DOMAIN);
    assert_int_equal(check_cert(state, &spec, "example.org.", NULL, out, sizeof(out)),
                     OR_SVID_WRONG_TRUST_DOMAIN);
    assert_int_equal(check_cert(state, &spec, "Example.org", NULL, out, sizeof(out)),
                     OR_SVID_WRONG_TRUST_DOMAIN);
    assert_int_equal(check_cert(state, &spec, "", NULL, out, sizeof(out)),
                     OR_SVID_WRONG_TRUST_DOMAIN);
    assert_int_equal(check_cert(state, &spec, NULL, NULL, out, sizeof(out)),
                     OR_SVID_WRONG_TRUST_DOMAIN);

    test_cert_spec lookalike = {.sans = {URI_SAN("spiffe://example.org.evil/ns/a/sa/b")},
                                .san_count = 1};
    assert_int_equal(check_cert(state, &lookalike, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_WRONG_TRUST_DOMAIN);
}

static void test_leaf_is_ca(void **state)
{
    char out[OR_SPIFFE_ID_MAX + 1];
    test_cert_spec ca = {.sans = {URI_SAN(ID_A)}, .san_count = 1, .basic_constraints = BC_CA};
    assert_int_equal(check_cert(state, &ca, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_LEAF_IS_CA);
    assert_string_equal(out, ID_A);
    test_cert_spec ca_with_ku = {.sans = {URI_SAN(ID_A)}, .san_count = 1,
                                 .basic_constraints = BC_CA,
                                 .key_usage = MBEDTLS_X509_KU_KEY_CERT_SIGN};
    assert_int_equal(check_cert(state, &ca_with_ku, "example.org", ID_A, out, sizeof(out)),
                     OR_SVID_LEAF_IS_CA);
}

static void test_leaf_bad_key_usage(void **state)
{
    char out[OR_SPIFFE_ID_MAX + 1];
    test_cert_spec cert_sign = {.sans = {URI_SAN(ID_A)}, .san_count = 1,
                                .basic_constraints = BC_LEAF,
                                .key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE |
                                             MBEDTLS_X509_KU_KEY_CERT_SIGN};
    test_cert_spec crl_sign = {.sans = {URI_SAN(ID_A)}, .san_count = 1,
                               .key_usage = MBEDTLS_X509_KU_DIGITAL_SIGNATURE |
                                            MBEDTLS_X509_KU_CRL_SIGN};
    assert_int_equal(check_cert(state, &cert_sign, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_BAD_KEY_USAGE);
    assert_string_equal(out, ID_A);
    assert_int_equal(check_cert(state, &crl_sign, "example.org", NULL, out, sizeof(out)),
                     OR_SVID_BAD_KEY_USAGE);
}

static void test_leaf_wrong_id(void **state)
{
    char out[OR_SPIFFE_ID_MAX + 1];
    test_cert_spec spec = {.sans = {URI_SAN(ID_A)}, .san_count = 1, .basic_constraints = BC_LEAF,
                           .key_usage = LEAF_KU};
    const char *wrong[] = {"spiffe://example.org/ns/a/sa/c", "spiffe://example.org/ns/a/sa",
                           ID_A "x", ID_A "/extra", "spiffe://example.org/ns/A/sa/b", ""};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        assert_int_equal(check_cert(state, &spec, "example.org", wrong[i], out, sizeof(out)),
                         OR_SVID_WRONG_ID);
        assert_string_equal(out, ID_A);
    }
}

static void test_result_strings(void **state)
{
    (void)state;
    assert_string_equal(or_svid_result_str(OR_SVID_OK), "ok");
    assert_string_equal(or_svid_result_str(OR_SVID_NO_URI_SAN), "no URI SAN");
    assert_string_equal(or_svid_result_str(OR_SVID_MANY_URI_SANS), "more than one URI SAN");
    assert_string_equal(or_svid_result_str(OR_SVID_NOT_SPIFFE), "URI SAN is not a SPIFFE ID");
    assert_string_equal(or_svid_result_str(OR_SVID_WRONG_TRUST_DOMAIN), "wrong trust domain");
    assert_string_equal(or_svid_result_str(OR_SVID_LEAF_IS_CA), "leaf certificate is a CA");
    assert_string_equal(or_svid_result_str(OR_SVID_BAD_KEY_USAGE),
                        "leaf has keyCertSign or cRLSign key usage");
    assert_string_equal(or_svid_result_str(OR_SVID_WRONG_ID), "unexpected SPIFFE ID");
    assert_string_equal(or_svid_result_str((or_svid_result)99), "unknown SVID check result");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid_ids),
        cmocka_unit_test(test_parse_respects_length),
        cmocka_unit_test(test_parse_optional_outputs),
        cmocka_unit_test(test_parse_rejects_scheme),
        cmocka_unit_test(test_parse_rejects_trust_domain),
        cmocka_unit_test(test_parse_rejects_query_and_fragment),
        cmocka_unit_test(test_parse_rejects_path),
        cmocka_unit_test(test_parse_length_limit),
        cmocka_unit_test(test_namespace),
        cmocka_unit_test(test_namespace_of_unparsed_id),
        cmocka_unit_test(test_uri_san_single),
        cmocka_unit_test(test_uri_san_among_other_names),
        cmocka_unit_test(test_uri_san_counts_all_copies_first),
        cmocka_unit_test(test_uri_san_none),
        cmocka_unit_test(test_uri_san_never_truncates),
        cmocka_unit_test(test_uri_san_with_nul_byte),
        cmocka_unit_test(test_leaf_ok),
        cmocka_unit_test(test_leaf_parsed_parts),
        cmocka_unit_test(test_leaf_no_uri_san),
        cmocka_unit_test(test_leaf_many_uri_sans),
        cmocka_unit_test(test_leaf_not_spiffe),
        cmocka_unit_test(test_leaf_id_too_long),
        cmocka_unit_test(test_leaf_wrong_trust_domain),
        cmocka_unit_test(test_leaf_is_ca),
        cmocka_unit_test(test_leaf_bad_key_usage),
        cmocka_unit_test(test_leaf_wrong_id),
        cmocka_unit_test(test_result_strings),
    };
    return cmocka_run_group_tests_name("spiffe", tests, group_setup, group_teardown);
}
