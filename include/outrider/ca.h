/*
 * ca: the certificate authority of outrider-ca, without the network.
 *
 * Contract: a CA directory (created by or_ca_init) holds
 *   ca.pem          the signing certificate (a root, or an intermediate)
 *   ca.key          its private key, mode 0600
 *   chain.pem       intermediates above the signing certificate (optional)
 *   bundle.d/NAME.pem  the trusted roots; GET /v1/bundle serves them all,
 *                   concatenated in file-name order (root rollover: add the
 *                   new root here first, remove the old one last)
 *   trust-domain    the trust domain, one line
 *   tokens, tokens.used, audit.log  (see token.h and or_ca_sign)
 * or_ca_open loads it into an or_ca that the server uses on one thread.
 * or_ca_sign authenticates a signing request (join token, else a verified
 * mesh client certificate), checks the CSR, issues an X509-SVID whose only
 * URI SAN is the authenticated identity, appends one JSON line to audit.log,
 * and returns the HTTP status and body (PEM chain, or a JSON error).
 */
#ifndef OUTRIDER_CA_H
#define OUTRIDER_CA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include "outrider/keys.h"

typedef struct {
    const char *dir;
    const char *trust_domain;
    const char *ca_cert;     /* NULL: generate a root */
    const char *ca_key;
    const char *chain;       /* intermediates above ca_cert, optional */
    const char *root;        /* the root when ca_cert is an intermediate */
} or_ca_init_opts;

int or_ca_init(const or_ca_init_opts *o, or_keys_rng *rng, char *err, size_t err_len);

typedef struct {
    char *dir;
    char *trust_domain;
    mbedtls_x509_crt signer;
    mbedtls_pk_context key;
    char *chain_pem;          /* appended after each issued leaf */
    uint64_t default_ttl_s, max_ttl_s;
    or_keys_rng *rng;
} or_ca;

int or_ca_open(or_ca *ca, const char *dir, or_keys_rng *rng, char *err, size_t err_len);
void or_ca_close(or_ca *ca);

/* The concatenated roots of bundle.d, malloc'd. */
int or_ca_bundle(const or_ca *ca, char **pem, size_t *len, char *err, size_t err_len);

/* A fresh key and server certificate for the CA's own HTTPS listener:
 * spiffe://TD/outrider-ca, DNS localhost, IP 127.0.0.1 and ip (when given). */
int or_ca_server_identity(or_ca *ca, const struct sockaddr *ip, mbedtls_x509_crt *chain,
                          mbedtls_pk_context *key, char *err, size_t err_len);

typedef struct {
    const char *body;
    size_t body_len;
    const char *bearer;                 /* Authorization: Bearer value, or NULL */
    const mbedtls_x509_crt *peer_cert;  /* client certificate, or NULL */
    uint32_t peer_flags;                /* mbedTLS verification flags for it */
    uint64_t ttl_s;                     /* asked for; 0 = default */
    const char *peer_addr;
} or_ca_sign_req;

typedef struct {
    int status;
    char *body;                         /* malloc'd */
    size_t body_len;
    const char *content_type;
} or_ca_response;

void or_ca_sign(or_ca *ca, const or_ca_sign_req *req, or_ca_response *resp);
/* Sets a JSON error response {"error": msg}. */
void or_ca_error(or_ca_response *resp, int status, const char *msg);

#endif
