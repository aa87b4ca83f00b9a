/*
 * tls: credentials, mbedTLS configurations and peer verification.
 *
 * Contract: this module and stream.c are the data plane's only callers of
 * mbedTLS; private keys are read by keys.h's loader, the one for the
 * whole project, with its permission check.
 *  - or_tls_creds is an immutable, reference-counted identity: certificate
 *    chain, private key, trust bundle and the SPIFFE ID of the leaf. Loading
 *    checks everything an operator can get wrong (key permissions, key/cert
 *    mismatch, chain to the bundle, validity, X509-SVID rules) and says which.
 *  - or_tls_tickets holds the session-ticket keys shared by every worker
 *    (mbedTLS locks it internally).
 *  - or_tls_worker is one worker's RNG and its server and client
 *    configurations; it holds a reference on the creds it was built from.
 *    configurations, one per or_tls_conf_kind: they differ only in the
 *    application protocols they negotiate by ALPN, and share credentials,
 *    policy and session tickets.
 *  - or_tls_peer is the per-connection verification state: the expected
 *    trust domain and, for outbound connections, the expected SPIFFE ID; after
 *    a successful handshake (full or resumed) it holds the peer's SPIFFE ID.
 */
#ifndef OUTRIDER_TLS_H
#define OUTRIDER_TLS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <mbedtls/ssl.h>
#include <mbedtls/ssl_ticket.h>
#include <mbedtls/x509_crt.h>

#include "outrider/keys.h"
#include "outrider/spiffe.h"

typedef struct {
    atomic_int refs;
    mbedtls_x509_crt chain;  /* leaf first, then intermediates */
    mbedtls_pk_context key;
    mbedtls_x509_crt bundle; /* trusted roots */
    char *spiffe_id;         /* the leaf's SPIFFE ID */
    char *trust_domain;
    time_t not_after;
} or_tls_creds;

or_tls_creds *or_tls_creds_load(const char *cert_path, const char *key_path,
                                const char *bundle_path, const char *trust_domain,
                                char *err, size_t err_len);
or_tls_creds *or_tls_creds_ref(or_tls_creds *creds);
void or_tls_creds_unref(or_tls_creds *creds);

typedef struct {
    or_keys_rng rng;
    mbedtls_ssl_ticket_context ticket;
} or_tls_tickets;

int or_tls_tickets_init(or_tls_tickets *t, uint32_t lifetime_s, char *err, size_t err_len);
void or_tls_tickets_free(or_tls_tickets *t);

/* The ALPN token of the multiplexed hop between Outrider sidecars: HTTP/2
 * whose streams may carry HTTP/1.1 requests (docs/http2.md). */
#define OR_ALPN_HOP "outrider.h2"

/* What a configuration negotiates by ALPN. */
typedef enum {
    OR_TLS_SERVER,        /* no ALPN (TCP listeners, HTTP/1.1 only) */
    OR_TLS_SERVER_H2,     /* selects "h2" or "http/1.1" (http2: true) */
    OR_TLS_SERVER_HOP,    /* selects the hop or "http/1.1" (multiplex) */
    OR_TLS_SERVER_H2_HOP, /* the hop, "h2" or "http/1.1" */
    OR_TLS_CLIENT,        /* offers nothing (HTTP/1.1 and TCP to the peer) */
    OR_TLS_CLIENT_H2,     /* offers "h2" only */
    OR_TLS_CLIENT_H2_H1,  /* offers "h2" and "http/1.1" */
    OR_TLS_CLIENT_HOP,    /* offers the hop, "h2" and "http/1.1" */
    OR_TLS_CONF_KINDS,
} or_tls_conf_kind;

typedef struct {
    or_keys_rng rng;
    mbedtls_ssl_config conf[OR_TLS_CONF_KINDS];
    or_tls_creds *creds;
} or_tls_worker;

int or_tls_worker_init(or_tls_worker *w, or_tls_creds *creds, or_tls_tickets *tickets,
                       char *err, size_t err_len);
void or_tls_worker_free(or_tls_worker *w);

typedef struct {
    const char *trust_domain;   /* borrowed from the creds */
    const char *expected_id;    /* outbound: the peer_identity; NULL inbound */
    uint32_t chain_flags;       /* MBEDTLS_X509_BADCERT_* seen during verify */
    or_svid_result svid;        /* leaf rule that failed, if any */
    bool verified_in_handshake; /* false after a resumed handshake */
    char *id;                   /* peer SPIFFE ID once verified; owned */
    const char *ns;             /* the namespace segment of id (ns_len bytes), or NULL */
    size_t ns_len;
    char *sni;                  /* server: the name the client asked for (SNI), lower-case;
                                   owned; NULL when it sent none */
    size_t sni_len;
} or_tls_peer;

/* What or_tls_conf_build needs besides the policy; everything is borrowed
 * and must outlive the configuration. */
typedef struct {
    int endpoint;                   /* MBEDTLS_SSL_IS_SERVER or _CLIENT */
    mbedtls_ctr_drbg_context *drbg;
    mbedtls_x509_crt *trust;        /* the roots the peer's chain must reach */
    mbedtls_x509_crt *chain;        /* own certificate chain; NULL: none */
    mbedtls_pk_context *key;        /* its private key */
    bool peer_optional;             /* the peer may present no certificate (the CA) */
} or_tls_conf_opts;

/* The one TLS configuration builder: an initialised `conf` set up with the
 * mesh's policy (TLS 1.2 only, ECDHE with AEAD suites, ChaCha20-Poly1305
 * first, X25519 then P-256/P-384, no renegotiation), the peer verification
 * and the own certificate. Every TLS endpoint of the project builds its
 * configuration here: the proxy's workers, outrider-ca and outrider-agent.
 * 0 or an mbedTLS error. */
int or_tls_conf_build(mbedtls_ssl_config *conf, const or_tls_conf_opts *opts);

/* Installs the verify callback of `peer` on `ssl`. */
void or_tls_peer_attach(or_tls_peer *peer, mbedtls_ssl_context *ssl);
/* After the handshake: applies the SVID rules again when the session was
 * resumed (validity included) and records the peer's ID. 0 or -1. */
int or_tls_peer_finish(or_tls_peer *peer, mbedtls_ssl_context *ssl);
void or_tls_peer_free(or_tls_peer *peer);

/* The operator-facing reason for a failed handshake (docs/cli-and-logs.md). */
const char *or_tls_failure_reason(int mbedtls_ret, const or_tls_peer *peer);

/* A certificate time (UTC) as Unix time. */
time_t or_x509_time_epoch(const mbedtls_x509_time *t);

#endif
