/*
 * x509: building and inspecting the certificates of the control plane.
 *
 * Contract: or_x509_issue writes one certificate (a self-signed root, an
 * X509-SVID leaf, or the CA's own TLS server certificate) from explicit
 * parameters; nothing is copied from a CSR except its public key. Leaves
 * follow the X509-SVID profile: exactly one URI SAN (plus, for the CA's
 * server certificate only, DNS "localhost" and IP SANs), CA:FALSE, keyUsage
 * digitalSignature (critical), extendedKeyUsage serverAuth and clientAuth.
 * Serial numbers are 128 random bits (positive). The issuer name is copied
 * byte-for-byte from the issuer certificate.
 *
 * or_x509_csr_inspect parses a PEM or DER CSR, verifies its signature,
 * checks that its key is EC P-256/P-384 or RSA >= 2048, and reports the URI
 * SANs it asks for (walking the extensionRequest attribute, which mbedTLS
 * 2.28 does not parse). The caller decides whether they are acceptable.
 */
#ifndef OUTRIDER_X509_H
#define OUTRIDER_X509_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <mbedtls/x509_csr.h>

#include "outrider/keys.h"
#include "outrider/spiffe.h"
#include "outrider/tls.h"

#define OR_X509_MAX_IPS 4

typedef struct {
    const char *subject;           /* "O=...,CN=..." */
    const char *uri;               /* the one URI SAN, NULL for a CA */
    bool server_names;             /* add DNS localhost and the IPs below */
    unsigned char ips[OR_X509_MAX_IPS][16];
    size_t ip_lens[OR_X509_MAX_IPS]; /* 4 or 16 */
    size_t nips;
    bool is_ca;
    time_t not_before, not_after;
    mbedtls_pk_context *subject_key;   /* public part used */
    mbedtls_pk_context *issuer_key;
    const mbedtls_x509_crt *issuer;    /* NULL: self-signed */
} or_x509_params;

/* Issues a certificate; *pem is malloc'd (NUL terminated). serial_hex, when
 * not NULL, receives the serial as 32 lower-case hex digits. */
int or_x509_issue(or_keys_rng *rng, const or_x509_params *p, char **pem, char *serial_hex,
                  char *err, size_t err_len);

typedef enum {
    OR_X509_CSR_OK = 0,
    OR_X509_CSR_MALFORMED,
    OR_X509_CSR_BAD_SIGNATURE,
    OR_X509_CSR_BAD_KEY,
} or_x509_csr_status;

typedef struct {
    mbedtls_x509_csr csr;
    size_t uri_count;              /* URI SANs requested */
    char uri[OR_SPIFFE_ID_MAX + 1]; /* the first, when uri_count > 0 */
} or_x509_csr_info;

or_x509_csr_status or_x509_csr_inspect(const char *data, size_t len, or_x509_csr_info *info,
                                       char *err, size_t err_len);
void or_x509_csr_free(or_x509_csr_info *info);

/* A PEM CSR for key asking for the URI SAN uri; *pem is malloc'd. */
int or_x509_make_csr(or_keys_rng *rng, mbedtls_pk_context *key, const char *uri, char **pem,
                     char *err, size_t err_len);

/* The PEM of one DER certificate, malloc'd. */
char *or_x509_crt_pem(const mbedtls_x509_crt *crt);

/* True when the certificate is self-signed (subject equals issuer and its
 * own key verifies its signature). */
bool or_x509_is_self_signed(const mbedtls_x509_crt *crt);

#endif
