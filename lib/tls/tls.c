/*
 * TLS credentials, configurations and peer verification.
 *
 * Credentials are loaded once into an immutable, reference-counted
 * or_tls_creds. Loading is strict and explains itself: a key readable by
 * group or others is refused, the key must match the leaf, the chain must
 * verify against the bundle now, and the leaf must be an X509-SVID of the
 * configured trust domain. Private-key bytes only ever pass through
 * mbedtls_pk_parse_keyfile, which wipes its buffer; nothing here logs them.
 *
 * Each worker builds its own mbedTLS server and client configurations (and
 * its own DRBG) from shared creds, so the hot path never takes a lock except
 * inside the ticket context, which every worker shares so that a session
 * resumes on whichever worker SO_REUSEPORT picks.
 *
 * Peer verification runs in two places. During a full handshake mbedTLS
 * verifies the chain and calls on_verify for each certificate; at depth 0 we
 * add the X509-SVID leaf rules and the expected-ID check, turning a failure
 * into MBEDTLS_X509_BADCERT_OTHER so the handshake fails with an alert. A
 * resumed handshake carries the peer chain from the original session but
 * verifies nothing, so or_tls_peer_finish re-applies validity and the leaf
 * rules to the stored certificate.
 */
#include "outrider/tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mbedtls/error.h>
#include <mbedtls/x509.h>


/* ChaCha20-Poly1305 first: it is the faster AEAD in mbedTLS 2.28. */
static const int or_ciphersuites[] = {
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    MBEDTLS_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    0,
};

static const mbedtls_ecp_group_id or_curves[] = {
    MBEDTLS_ECP_DP_CURVE25519, MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_SECP384R1,
    MBEDTLS_ECP_DP_NONE,
};

static void set_mbedtls_error(char *err, size_t len, const char *what, const char *path, int ret)
{
    char text[160];
    mbedtls_strerror(ret, text, sizeof text);
    snprintf(err, len, "%s %s: %s", what, path, text);
}

static int load_files(or_tls_creds *c, const char *cert_path, const char *key_path,
                      const char *bundle_path, char *err, size_t len)
{
    int ret = mbedtls_x509_crt_parse_file(&c->chain, cert_path);
    if (ret != 0) {
        set_mbedtls_error(err, len, "cannot load certificate", cert_path, ret);
        return -1;
    }
    ret = mbedtls_x509_crt_parse_file(&c->bundle, bundle_path);
    if (ret != 0) {
        set_mbedtls_error(err, len, "cannot load trust bundle", bundle_path, ret);
        return -1;
    }
    if (or_keys_load(key_path, &c->key, err, len) != 0)
        return -1;
    ret = mbedtls_pk_check_pair(&c->chain.pk, &c->key);
    if (ret != 0) {
        snprintf(err, len, "private key %s does not match certificate %s", key_path, cert_path);
        return -1;
    }
    return 0;
}

time_t or_x509_time_epoch(const mbedtls_x509_time *t)
{
    struct tm tm = {
        .tm_year = t->year - 1900, .tm_mon = t->mon - 1, .tm_mday = t->day,
        .tm_hour = t->hour, .tm_min = t->min, .tm_sec = t->sec,
    };
    return timegm(&tm);
}

static int check_own_identity(or_tls_creds *c, const char *cert_path, char *err, size_t len)
{
    uint32_t flags = 0;
    if (mbedtls_x509_crt_verify(&c->chain, &c->bundle, NULL, NULL, &flags, NULL, NULL) != 0) {
        char info[256];
        mbedtls_x509_crt_verify_info(info, sizeof info, "", flags);
        info[strcspn(info, "\n")] = '\0';
        snprintf(err, len, "certificate %s does not verify against the trust bundle: %s",
                 cert_path, info);
        return -1;
    }
    char id[OR_SPIFFE_ID_MAX + 1];
    or_svid_result r = or_svid_check_leaf(&c->chain, c->trust_domain, NULL, id, sizeof id, NULL);
    if (r != OR_SVID_OK) {
        snprintf(err, len, "certificate %s is not an X509-SVID of trust domain %s: %s",
                 cert_path, c->trust_domain, or_svid_result_str(r));
        return -1;
    }
    c->spiffe_id = strdup(id);
    c->not_after = or_x509_time_epoch(&c->chain.valid_to);
    return c->spiffe_id ? 0 : -1;
}

or_tls_creds *or_tls_creds_load(const char *cert_path, const char *key_path,
                                const char *bundle_path, const char *trust_domain,
                                char *err, size_t err_len)
{
    or_tls_creds *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    atomic_init(&c->refs, 1);
    mbedtls_x509_crt_init(&c->chain);
    mbedtls_x509_crt_init(&c->bundle);
    mbedtls_pk_init(&c->key);
    c->trust_domain = strdup(trust_domain);
    if (!c->trust_domain || load_files(c, cert_path, key_path, bundle_path, err, err_len) != 0 ||
        check_own_identity(c, cert_path, err, err_len) != 0) {
        or_tls_creds_unref(c);
        return NULL;
    }
    return c;
}

or_tls_creds *or_tls_creds_ref(or_tls_creds *creds)
{
    atomic_fetch_add(&creds->refs, 1);
    return creds;
}

void or_tls_creds_unref(or_tls_creds *c)
{
    if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    mbedtls_x509_crt_free(&c->chain);
    mbedtls_x509_crt_free(&c->bundle);
    mbedtls_pk_free(&c->key);
    free(c->spiffe_id);
    free(c->trust_domain);
    free(c);
}

int or_tls_tickets_init(or_tls_tickets *t, uint32_t lifetime_s, char *err, size_t err_len)
{
    mbedtls_ssl_ticket_init(&t->ticket);
    if (or_keys_rng_init(&t->rng, "outrider-tickets", err, err_len) != 0)
        return -1;
    int ret = mbedtls_ssl_ticket_setup(&t->ticket, mbedtls_ctr_drbg_random, &t->rng.drbg,
                                       MBEDTLS_CIPHER_AES_256_GCM, lifetime_s);
    if (ret != 0) {
        set_mbedtls_error(err, err_len, "cannot set up", "session tickets", ret);
        return -1;
    }
    return 0;
}

void or_tls_tickets_free(or_tls_tickets *t)
{
    mbedtls_ssl_ticket_free(&t->ticket);
    or_keys_rng_free(&t->rng);
}

static void conf_policy(mbedtls_ssl_config *conf)
{
    mbedtls_ssl_conf_min_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_max_version(conf, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
    mbedtls_ssl_conf_ciphersuites(conf, or_ciphersuites);
    mbedtls_ssl_conf_curves(conf, or_curves);
    mbedtls_ssl_conf_renegotiation(conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
}

int or_tls_conf_build(mbedtls_ssl_config *conf, const or_tls_conf_opts *o)
{
    int ret = mbedtls_ssl_config_defaults(conf, o->endpoint, MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret != 0)
        return ret;
    conf_policy(conf);
    mbedtls_ssl_conf_rng(conf, mbedtls_ctr_drbg_random, o->drbg);
    mbedtls_ssl_conf_authmode(conf, o->peer_optional ? MBEDTLS_SSL_VERIFY_OPTIONAL
                                                     : MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(conf, o->trust, NULL);
    return o->chain ? mbedtls_ssl_conf_own_cert(conf, o->chain, o->key) : 0;
}

static int configure(mbedtls_ssl_config *conf, int endpoint, or_tls_worker *w)
{
    return or_tls_conf_build(conf, &(or_tls_conf_opts){.endpoint = endpoint,
                                                        .drbg = &w->rng.drbg,
                                                        .trust = &w->creds->bundle,
                                                        .chain = &w->creds->chain,
                                                        .key = &w->creds->key});
}

/* What each configuration negotiates (RFC 7301 ALPN lists; the server's in
 * its order of preference). OR_ALPN_HOP is the multiplexed hop between
 * Outrider sidecars (docs/http2.md): HTTP/2 whose streams may carry
 * HTTP/1.1 requests. */
static const struct {
    int endpoint;
    const char *alpn[4];
} or_tls_confs[OR_TLS_CONF_KINDS] = {
    [OR_TLS_SERVER] = {MBEDTLS_SSL_IS_SERVER, {NULL}},
    [OR_TLS_SERVER_H2] = {MBEDTLS_SSL_IS_SERVER, {"h2", "http/1.1", NULL}},
    [OR_TLS_SERVER_HOP] = {MBEDTLS_SSL_IS_SERVER, {OR_ALPN_HOP, "http/1.1", NULL}},
    [OR_TLS_SERVER_H2_HOP] = {MBEDTLS_SSL_IS_SERVER, {OR_ALPN_HOP, "h2", "http/1.1", NULL}},
    [OR_TLS_CLIENT] = {MBEDTLS_SSL_IS_CLIENT, {NULL}},
    [OR_TLS_CLIENT_H2] = {MBEDTLS_SSL_IS_CLIENT, {"h2", NULL}},
    [OR_TLS_CLIENT_H2_H1] = {MBEDTLS_SSL_IS_CLIENT, {"h2", "http/1.1", NULL}},
    [OR_TLS_CLIENT_HOP] = {MBEDTLS_SSL_IS_CLIENT, {OR_ALPN_HOP, "h2", "http/1.1", NULL}},
};

/* Keeps the server name a client sent (RBAC's connection.sni). The peer is
 * the verify context or_tls_peer_attach set on this ssl; the certificate
 * stays the configured one whatever the name. */
static int on_sni(void *unused, mbedtls_ssl_context *ssl, const unsigned char *name, size_t len)
{
    (void)unused;
    or_tls_peer *peer = ssl->p_vrfy;
    if (peer == NULL || len == 0 || len > 253 || peer->sni != NULL)
        return 0;
    if ((peer->sni = strndup((const char *)name, len)) != NULL)
        for (char *p = peer->sni; *p; p++, peer->sni_len++)
            *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    return 0;
}

int or_tls_worker_init(or_tls_worker *w, or_tls_creds *creds, or_tls_tickets *tickets,
                       char *err, size_t err_len)
{
    memset(w, 0, sizeof *w);
    for (int k = 0; k < OR_TLS_CONF_KINDS; k++)
        mbedtls_ssl_config_init(&w->conf[k]);
    w->creds = or_tls_creds_ref(creds);
    if (or_keys_rng_init(&w->rng, "outrider-worker", err, err_len) != 0)
        return -1;
    for (int k = 0; k < OR_TLS_CONF_KINDS; k++) {
        mbedtls_ssl_config *conf = &w->conf[k];
        bool server = or_tls_confs[k].endpoint == MBEDTLS_SSL_IS_SERVER;
        int ret = configure(conf, or_tls_confs[k].endpoint, w);
        if (ret == 0 && or_tls_confs[k].alpn[0])
            /* mbedTLS keeps the pointer: the list is static */
            ret = mbedtls_ssl_conf_alpn_protocols(conf, (const char **)or_tls_confs[k].alpn);
        if (ret != 0) {
            set_mbedtls_error(err, err_len, "cannot configure", "TLS", ret);
            return -1;
        }
        if (server) {
            mbedtls_ssl_conf_sni(conf, on_sni, NULL);
            mbedtls_ssl_conf_session_tickets_cb(conf, mbedtls_ssl_ticket_write,
                                                mbedtls_ssl_ticket_parse, &tickets->ticket);
        } else {
            mbedtls_ssl_conf_session_tickets(conf, MBEDTLS_SSL_SESSION_TICKETS_ENABLED);
        }
    }
    return 0;
}

void or_tls_worker_free(or_tls_worker *w)
{
    for (int k = 0; k < OR_TLS_CONF_KINDS; k++)
        mbedtls_ssl_config_free(&w->conf[k]);
    or_keys_rng_free(&w->rng);
    or_tls_creds_unref(w->creds);
    w->creds = NULL;
}

static int on_verify(void *ctx, mbedtls_x509_crt *crt, int depth, uint32_t *flags)
{
    or_tls_peer *peer = ctx;
    peer->chain_flags |= *flags;
    if (depth != 0)
        return 0;
    peer->verified_in_handshake = true;
    if (*flags != 0)
        return 0;
    char id[OR_SPIFFE_ID_MAX + 1];
    peer->svid =
        or_svid_check_leaf(crt, peer->trust_domain, peer->expected_id, id, sizeof id, NULL);
    if (peer->svid != OR_SVID_OK)
        *flags |= MBEDTLS_X509_BADCERT_OTHER;
    return 0;
}

void or_tls_peer_attach(or_tls_peer *peer, mbedtls_ssl_context *ssl)
{
    mbedtls_ssl_set_verify(ssl, on_verify, peer);
}

int or_tls_peer_finish(or_tls_peer *peer, mbedtls_ssl_context *ssl)
{
    const mbedtls_x509_crt *leaf = mbedtls_ssl_get_peer_cert(ssl);
    if (!leaf) {
        peer->svid = OR_SVID_NO_URI_SAN;
        return -1;
    }
    if (!peer->verified_in_handshake) {
        if (mbedtls_x509_time_is_past(&leaf->valid_to))
            peer->chain_flags |= MBEDTLS_X509_BADCERT_EXPIRED;
        if (mbedtls_x509_time_is_future(&leaf->valid_from))
            peer->chain_flags |= MBEDTLS_X509_BADCERT_FUTURE;
        if (peer->chain_flags != 0)
            return -1;
    }
    char id[OR_SPIFFE_ID_MAX + 1];
    or_spiffe_id parsed;
    peer->svid =
        or_svid_check_leaf(leaf, peer->trust_domain, peer->expected_id, id, sizeof id, &parsed);
    if (peer->svid != OR_SVID_OK)
        return -1;
    free(peer->id);
    peer->id = strdup(id);
    if (!peer->id)
        return -1;
    const char *ns;
    if (or_spiffe_id_namespace(&parsed, &ns, &peer->ns_len))
        peer->ns = peer->id + (ns - id);
    return 0;
}

void or_tls_peer_free(or_tls_peer *peer)
{
    free(peer->id);
    free(peer->sni);
    peer->id = peer->sni = NULL;
    peer->ns = NULL;
    peer->ns_len = peer->sni_len = 0;
}

static const char *chain_reason(uint32_t flags)
{
    if (flags & MBEDTLS_X509_BADCERT_EXPIRED)
        return "certificate expired";
    if (flags & MBEDTLS_X509_BADCERT_FUTURE)
        return "certificate not yet valid";
    if (flags & MBEDTLS_X509_BADCERT_NOT_TRUSTED)
        return "unknown CA";
    return "bad certificate";
}

const char *or_tls_failure_reason(int ret, const or_tls_peer *peer)
{
    if (peer->svid != OR_SVID_OK)
        return or_svid_result_str(peer->svid);
    if (peer->chain_flags & ~(uint32_t)MBEDTLS_X509_BADCERT_OTHER)
        return chain_reason(peer->chain_flags);
    switch (ret) {
    case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
        return "no client certificate";
    case MBEDTLS_ERR_X509_CERT_VERIFY_FAILED:
        return "bad certificate";
    case MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE:
        return "peer sent an alert";
    case MBEDTLS_ERR_SSL_CONN_EOF:
        return "peer closed during handshake";
    default:
        return "protocol error";
    }
}
