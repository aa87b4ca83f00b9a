/*
 * Certificates and CSRs of the control plane, with mbedTLS's writers.
 *
 * The extensions are written as DER built here rather than with the
 * convenience setters, so their criticality matches the X509-SVID profile
 * (basicConstraints and keyUsage critical) and so the subjectAltName can
 * carry the URI SAN that mbedTLS 2.28 has no setter for. The issuer name of
 * an issued certificate is copied from the issuer certificate's parsed
 * subject (same string types, same order), so that chain building in any
 * verifier matches it byte for byte.
 *
 * CSRs are inspected with a small DER walk over the CertificationRequestInfo:
 * version, subject, subjectPublicKeyInfo, then the [0] attributes, where the
 * extensionRequest attribute holds the requested extensions; only its
 * subjectAltName is read, and only URI entries are reported.
 */
#include "outrider/x509.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/asn1.h>
#include <mbedtls/asn1write.h>
#include <mbedtls/error.h>
#include <mbedtls/md.h>
#include <mbedtls/oid.h>
#include <mbedtls/pem.h>
#include <mbedtls/x509.h>

#define OR_X509_PEM_MAX 12288
#define OR_X509_SAN_MAX (OR_SPIFFE_ID_MAX + 256)

static const unsigned char eku_der[] = {
    0x30, 0x14, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01,
    0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02,
};
static const unsigned char bc_leaf_der[] = {0x30, 0x00};
static const unsigned char bc_ca_der[] = {0x30, 0x03, 0x01, 0x01, 0xff};
static const unsigned char ku_leaf_der[] = {0x03, 0x02, 0x07, 0x80};  /* digitalSignature */
static const unsigned char ku_ca_der[] = {0x03, 0x02, 0x01, 0x06};    /* keyCertSign, cRLSign */

static void set_mbedtls_error(char *err, size_t len, const char *what, int ret)
{
    char text[128];
    mbedtls_strerror(ret, text, sizeof text);
    snprintf(err, len, "%s: %s", what, text);
}

/* Appends tag, length and value at buf[*off]; 0 or -1 when it does not fit. */
static int der_put(unsigned char *buf, size_t cap, size_t *off, unsigned char tag,
                   const void *val, size_t len)
{
    size_t hdr = len < 128 ? 2 : len < 256 ? 3 : 4;
    if (len > 0xffff || *off + hdr + len > cap)
        return -1;
    unsigned char *p = buf + *off;
    *p++ = tag;
    if (len >= 256) {
        *p++ = 0x82;
        *p++ = (unsigned char)(len >> 8);
    } else if (len >= 128) {
        *p++ = 0x81;
    }
    *p++ = (unsigned char)len;
    memcpy(p, val, len);
    *off += hdr + len;
    return 0;
}

/* SEQUENCE OF GeneralName: the URI, then DNS localhost and IPs if asked. */
static int san_der(const or_x509_params *p, unsigned char *out, size_t cap, size_t *out_len)
{
    unsigned char names[OR_X509_SAN_MAX];
    size_t n = 0;
    if (der_put(names, sizeof names, &n, 0x86, p->uri, strlen(p->uri)) != 0)
        return -1;
    if (p->server_names) {
        if (der_put(names, sizeof names, &n, 0x82, "localhost", 9) != 0)
            return -1;
        for (size_t i = 0; i < p->nips; i++)
            if (der_put(names, sizeof names, &n, 0x87, p->ips[i], p->ip_lens[i]) != 0)
                return -1;
    }
    *out_len = 0;
    return der_put(out, cap, out_len, 0x30, names, n);
}

static int copy_issuer_name(mbedtls_x509write_cert *crt, const mbedtls_x509_crt *issuer)
{
    for (const mbedtls_x509_name *n = &issuer->subject; n; n = n->next) {
        if (!n->oid.p)
            continue;
        mbedtls_asn1_named_data *d = mbedtls_asn1_store_named_data(
            &crt->issuer, (const char *)n->oid.p, n->oid.len, n->val.p, n->val.len);
        if (!d)
            return -1;
        d->val.tag = n->val.tag;
    }
    return 0;
}

static void format_time(time_t t, char out[16])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 16, "%Y%m%d%H%M%S", &tm);
}

static int set_serial(mbedtls_x509write_cert *crt, or_keys_rng *rng, char *serial_hex)
{
    unsigned char raw[16];
    if (or_keys_random(rng, raw, sizeof raw) != 0)
        return -1;
    raw[0] = (unsigned char)((raw[0] & 0x7f) | 0x40);
    mbedtls_mpi serial;
    mbedtls_mpi_init(&serial);
    int ret = mbedtls_mpi_read_binary(&serial, raw, sizeof raw);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_serial(crt, &serial);
    mbedtls_mpi_free(&serial);
    if (serial_hex)
        for (size_t i = 0; i < sizeof raw; i++)
            snprintf(serial_hex + 2 * i, 3, "%02x", raw[i]);
    return ret == 0 ? 0 : -1;
}

static int set_extensions(mbedtls_x509write_cert *crt, const or_x509_params *p)
{
    int ret = mbedtls_x509write_crt_set_extension(
        crt, MBEDTLS_OID_BASIC_CONSTRAINTS, MBEDTLS_OID_SIZE(MBEDTLS_OID_BASIC_CONSTRAINTS), 1,
        p->is_ca ? bc_ca_der : bc_leaf_der, p->is_ca ? sizeof bc_ca_der : sizeof bc_leaf_der);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_extension(
            crt, MBEDTLS_OID_KEY_USAGE, MBEDTLS_OID_SIZE(MBEDTLS_OID_KEY_USAGE), 1,
            p->is_ca ? ku_ca_der : ku_leaf_der, p->is_ca ? sizeof ku_ca_der : sizeof ku_leaf_der);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_subject_key_identifier(crt);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_authority_key_identifier(crt);
    if (ret != 0 || p->is_ca)
        return ret;
    ret = mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_EXTENDED_KEY_USAGE,
                                              MBEDTLS_OID_SIZE(MBEDTLS_OID_EXTENDED_KEY_USAGE),
                                              0, eku_der, sizeof eku_der);
    if (ret != 0 || !p->uri)
        return ret;
    unsigned char san[OR_X509_SAN_MAX + 8];
    size_t san_len;
    if (san_der(p, san, sizeof san, &san_len) != 0)
        return MBEDTLS_ERR_X509_BAD_INPUT_DATA;
    return mbedtls_x509write_crt_set_extension(crt, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                               MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                               0, san, san_len);
}

static int fill_writer(mbedtls_x509write_cert *crt, or_keys_rng *rng, const or_x509_params *p,
                       char *serial_hex)
{
    char from[16], to[16];
    format_time(p->not_before, from);
    format_time(p->not_after, to);
    mbedtls_x509write_crt_set_md_alg(crt, MBEDTLS_MD_SHA256);
    mbedtls_x509write_crt_set_subject_key(crt, p->subject_key);
    mbedtls_x509write_crt_set_issuer_key(crt, p->issuer_key);
    int ret = mbedtls_x509write_crt_set_subject_name(crt, p->subject);
    if (ret != 0)
        return ret;
    if (p->issuer)
        ret = copy_issuer_name(crt, p->issuer) == 0 ? 0 : MBEDTLS_ERR_X509_ALLOC_FAILED;
    else
        ret = mbedtls_x509write_crt_set_issuer_name(crt, p->subject);
    if (ret == 0)
        ret = mbedtls_x509write_crt_set_validity(crt, from, to);
    if (ret == 0)
        ret = set_serial(crt, rng, serial_hex) == 0 ? 0 : MBEDTLS_ERR_X509_ALLOC_FAILED;
    if (ret == 0)
        ret = set_extensions(crt, p);
    return ret;
}

int or_x509_issue(or_keys_rng *rng, const or_x509_params *p, char **pem, char *serial_hex,
                  char *err, size_t err_len)
{
    *pem = NULL;
    mbedtls_x509write_cert crt;
    mbedtls_x509write_crt_init(&crt);
    int ret = fill_writer(&crt, rng, p, serial_hex);
    char *buf = ret == 0 ? malloc(OR_X509_PEM_MAX) : NULL;
    if (buf)
        ret = mbedtls_x509write_crt_pem(&crt, (unsigned char *)buf, OR_X509_PEM_MAX,
                                        mbedtls_ctr_drbg_random, &rng->drbg);
    else if (ret == 0)
        ret = MBEDTLS_ERR_X509_ALLOC_FAILED;
    mbedtls_x509write_crt_free(&crt);
    if (ret != 0) {
        free(buf);
        set_mbedtls_error(err, err_len, "cannot write certificate", ret);
        return -1;
    }
    *pem = buf;
    return 0;
}

/* ---- CSRs ---- */

static int skip_tlv(unsigned char **p, const unsigned char *end, int tag)
{
    size_t len;
    if (mbedtls_asn1_get_tag(p, end, &len, tag) != 0)
        return -1;
    *p += len;
    return 0;
}

/* GeneralNames inside the SAN extension value. */
static int read_san(unsigned char *p, const unsigned char *end, or_x509_csr_info *info)
{
    size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return -1;
    end = p + len;
    while (p < end) {
        int tag = *p++;
        if (mbedtls_asn1_get_len(&p, end, &len) != 0)
            return -1;
        if (tag == 0x86) {
            if (info->uri_count == 0 && len < sizeof info->uri) {
                memcpy(info->uri, p, len);
                info->uri[len] = '\0';
            } else if (info->uri_count == 0) {
                snprintf(info->uri, sizeof info->uri, "(too long)");
            }
            info->uri_count++;
        }
        p += len;
    }
    return 0;
}

typedef int (*der_reader)(unsigned char *p, const unsigned char *end, or_x509_csr_info *info);

/* Each SEQUENCE {OID, [critical BOOLEAN, when tag is an OCTET STRING,]
 * value of `tag`} in [p, end): `read` gets the value's contents when the OID
 * is `oid` (an extension by its extnID, an attribute by its type). */
static int read_by_oid(unsigned char *p, const unsigned char *end, const char *oid, size_t oid_len,
                       int tag, der_reader read, or_x509_csr_info *info)
{
    size_t len;
    while (p < end) {
        if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
            return -1;
        const unsigned char *item_end = p + len;
        mbedtls_x509_buf id = {0};
        if (mbedtls_asn1_get_tag(&p, item_end, &id.len, MBEDTLS_ASN1_OID) != 0)
            return -1;
        id.p = p;
        p += id.len;
        int critical = 0;
        if (tag == MBEDTLS_ASN1_OCTET_STRING && p < item_end && *p == MBEDTLS_ASN1_BOOLEAN &&
            mbedtls_asn1_get_bool(&p, item_end, &critical) != 0)
            return -1;
        if (mbedtls_asn1_get_tag(&p, item_end, &len, tag) != 0)
            return -1;
        if (id.len == oid_len && memcmp(id.p, oid, oid_len) == 0 && read(p, p + len, info) != 0)
            return -1;
        p = (unsigned char *)item_end;
    }
    return 0;
}

/* Extensions ::= SEQUENCE OF Extension, inside the extensionRequest SET. */
static int read_extensions(unsigned char *p, const unsigned char *end, or_x509_csr_info *info)
{
    size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return -1;
    return read_by_oid(p, p + len, MBEDTLS_OID_SUBJECT_ALT_NAME,
                       MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME), MBEDTLS_ASN1_OCTET_STRING,
                       read_san, info);
}

static int walk_cri(or_x509_csr_info *info)
{
    unsigned char *p = info->csr.cri.p;
    const unsigned char *end = p + info->csr.cri.len;
    size_t len;
    if (mbedtls_asn1_get_tag(&p, end, &len, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE))
        return -1;
    end = p + len;
    if (skip_tlv(&p, end, MBEDTLS_ASN1_INTEGER) != 0 ||
        skip_tlv(&p, end, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0 ||
        skip_tlv(&p, end, MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SEQUENCE) != 0)
        return -1;
    if (p == end)
        return 0;
    if (mbedtls_asn1_get_tag(&p, end, &len,
                             MBEDTLS_ASN1_CONTEXT_SPECIFIC | MBEDTLS_ASN1_CONSTRUCTED) != 0)
        return -1;
    return read_by_oid(p, p + len, MBEDTLS_OID_PKCS9_CSR_EXT_REQ,
                       MBEDTLS_OID_SIZE(MBEDTLS_OID_PKCS9_CSR_EXT_REQ),
                       MBEDTLS_ASN1_CONSTRUCTED | MBEDTLS_ASN1_SET, read_extensions, info);
}

static or_x509_csr_status check_key(const mbedtls_pk_context *pk, char *err, size_t err_len)
{
    mbedtls_pk_type_t type = mbedtls_pk_get_type(pk);
    if (type == MBEDTLS_PK_RSA) {
        size_t bits = mbedtls_pk_get_bitlen(pk);
        if (bits >= 2048)
            return OR_X509_CSR_OK;
        snprintf(err, err_len, "RSA key of %zu bits; at least 2048 are required", bits);
        return OR_X509_CSR_BAD_KEY;
    }
    if (type == MBEDTLS_PK_ECKEY || type == MBEDTLS_PK_ECDSA) {
        mbedtls_ecp_group_id g = mbedtls_pk_ec(*pk)->grp.id;
        if (g == MBEDTLS_ECP_DP_SECP256R1 || g == MBEDTLS_ECP_DP_SECP384R1)
            return OR_X509_CSR_OK;
        snprintf(err, err_len, "EC key on an unsupported curve; use P-256 or P-384");
        return OR_X509_CSR_BAD_KEY;
    }
    snprintf(err, err_len, "unsupported key type %s; use EC P-256/P-384 or RSA >= 2048",
             mbedtls_pk_get_name(pk));
    return OR_X509_CSR_BAD_KEY;
}

static or_x509_csr_status verify_signature(or_x509_csr_info *info, char *err, size_t err_len)
{
    mbedtls_x509_csr *csr = &info->csr;
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(csr->sig_md);
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    if (!md || mbedtls_md(md, csr->cri.p, csr->cri.len, hash) != 0) {
        snprintf(err, err_len, "CSR uses an unsupported signature hash");
        return OR_X509_CSR_BAD_SIGNATURE;
    }
    if (mbedtls_pk_verify_ext(csr->sig_pk, csr->sig_opts, &csr->pk, csr->sig_md, hash,
                              mbedtls_md_get_size(md), csr->sig.p, csr->sig.len) != 0) {
        snprintf(err, err_len, "CSR signature does not verify with its own key");
        return OR_X509_CSR_BAD_SIGNATURE;
    }
    return OR_X509_CSR_OK;
}

or_x509_csr_status or_x509_csr_inspect(const char *data, size_t len, or_x509_csr_info *info,
                                       char *err, size_t err_len)
{
    memset(info, 0, sizeof *info);
    mbedtls_x509_csr_init(&info->csr);
    int ret;
    if (len > 0 && memmem(data, len, "-----BEGIN", 10)) {
        char *copy = malloc(len + 1);  /* the PEM parser needs a NUL-terminated buffer */
        if (!copy) {
            snprintf(err, err_len, "out of memory");
            return OR_X509_CSR_MALFORMED;
        }
        memcpy(copy, data, len);
        copy[len] = '\0';
        ret = mbedtls_x509_csr_parse(&info->csr, (unsigned char *)copy, len + 1);
        free(copy);
    } else {
        ret = mbedtls_x509_csr_parse_der(&info->csr, (const unsigned char *)data, len);
    }
    if (ret == MBEDTLS_ERR_PK_UNKNOWN_PK_ALG) {
        snprintf(err, err_len, "CSR key type is not supported; use EC P-256/P-384 or RSA >= 2048");
        return OR_X509_CSR_BAD_KEY;
    }
    if (ret != 0) {
        set_mbedtls_error(err, err_len, "malformed CSR", ret);
        return OR_X509_CSR_MALFORMED;
    }
    or_x509_csr_status st = check_key(&info->csr.pk, err, err_len);
    if (st == OR_X509_CSR_OK)
        st = verify_signature(info, err, err_len);
    if (st == OR_X509_CSR_OK && walk_cri(info) != 0) {
        snprintf(err, err_len, "malformed CSR: cannot read its extension request");
        st = OR_X509_CSR_MALFORMED;
    }
    return st;
}

void or_x509_csr_free(or_x509_csr_info *info)
{
    mbedtls_x509_csr_free(&info->csr);
}

int or_x509_make_csr(or_keys_rng *rng, mbedtls_pk_context *key, const char *uri, char **pem,
                     char *err, size_t err_len)
{
    *pem = NULL;
    or_x509_params p = {.uri = uri};
    unsigned char san[OR_X509_SAN_MAX + 8];
    size_t san_len;
    mbedtls_x509write_csr csr;
    mbedtls_x509write_csr_init(&csr);
    mbedtls_x509write_csr_set_key(&csr, key);
    mbedtls_x509write_csr_set_md_alg(&csr, MBEDTLS_MD_SHA256);
    int ret = mbedtls_x509write_csr_set_subject_name(&csr, "O=Outrider,CN=SVID");
    if (ret == 0)
        ret = san_der(&p, san, sizeof san, &san_len) == 0 ? 0 : MBEDTLS_ERR_X509_BAD_INPUT_DATA;
    if (ret == 0)
        ret = mbedtls_x509write_csr_set_extension(&csr, MBEDTLS_OID_SUBJECT_ALT_NAME,
                                                  MBEDTLS_OID_SIZE(MBEDTLS_OID_SUBJECT_ALT_NAME),
                                                  san, san_len);
    char *buf = ret == 0 ? malloc(OR_X509_PEM_MAX) : NULL;
    if (buf)
        ret = mbedtls_x509write_csr_pem(&csr, (unsigned char *)buf, OR_X509_PEM_MAX,
                                        mbedtls_ctr_drbg_random, &rng->drbg);
    else if (ret == 0)
        ret = MBEDTLS_ERR_X509_ALLOC_FAILED;
    mbedtls_x509write_csr_free(&csr);
    if (ret != 0) {
        free(buf);
        set_mbedtls_error(err, err_len, "cannot write CSR", ret);
        return -1;
    }
    *pem = buf;
    return 0;
}

bool or_x509_is_self_signed(const mbedtls_x509_crt *crt)
{
    if (crt->subject_raw.len != crt->issuer_raw.len ||
        memcmp(crt->subject_raw.p, crt->issuer_raw.p, crt->subject_raw.len) != 0)
        return false;
    const mbedtls_md_info_t *md = mbedtls_md_info_from_type(crt->sig_md);
    unsigned char hash[MBEDTLS_MD_MAX_SIZE];
    if (!md || mbedtls_md(md, crt->tbs.p, crt->tbs.len, hash) != 0)
        return false;
    return mbedtls_pk_verify_ext(crt->sig_pk, crt->sig_opts, (mbedtls_pk_context *)&crt->pk,
                                 crt->sig_md, hash, mbedtls_md_get_size(md), crt->sig.p,
                                 crt->sig.len) == 0;
}

char *or_x509_crt_pem(const mbedtls_x509_crt *crt)
{
    size_t cap = crt->raw.len * 2 + 128, olen = 0;
    unsigned char *buf = malloc(cap);
    if (buf && mbedtls_pem_write_buffer("-----BEGIN CERTIFICATE-----\n",
                                        "-----END CERTIFICATE-----\n", crt->raw.p, crt->raw.len,
                                        buf, cap, &olen) != 0) {
        free(buf);
        buf = NULL;
    }
    return (char *)buf;
}
