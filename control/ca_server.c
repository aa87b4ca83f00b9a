/*
 * The HTTPS server of outrider-ca.
 *
 * The connections are the HTTP/1 kit's (http_server.h): TLS on the CA's own
 * configuration, where the client certificate is optional (a join-token
 * client presents none); one request per connection; a first-byte deadline
 * (OR_CA_FIRST_BYTE_MS from accept, the handshake included), a whole
 * deadline (OR_CA_CONN_TIMEOUT_MS), a cap on bytes read and on open
 * connections in all and per client address. The stream does not apply the
 * mesh's SVID rules to the peer (peer_checked_by_owner): a presented
 * certificate and mbedTLS's verdict on it are handed to or_ca_sign, which
 * decides and says why. This file holds the routes and the TLS set-up.
 */
#include "outrider/ca_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outrider/log.h"
#include "outrider/units.h"

/* ---- responses ---- */

static void respond(or_http_exchange *x, const or_ca_response *r)
{
    or_http_respond(x, r->status, r->content_type ? r->content_type : "text/plain", "", r->body,
                    r->body_len);
}

static void respond_error(or_http_exchange *x, int status, const char *msg)
{
    or_ca_response r;
    or_ca_error(&r, status, msg);
    respond(x, &r);
    free(r.body);
}

/* ---- routes ---- */

static void route_sign(or_ca_server *srv, or_http_exchange *x, const or_ca_request *creq)
{
    const char *why = NULL;
    or_ca_sign_req req = {.body = creq->body ? creq->body : "", .body_len = creq->body_len,
                          .peer_addr = or_http_exchange_peer(x)};
    if (or_ca_request_ttl(creq, &req.ttl_s, &why) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "bad ttl: %s", why);
        respond_error(x, 400, msg);
        return;
    }
    if (creq->auth_len > 0) {
        if (strncasecmp(creq->auth, "Bearer ", 7) != 0) {
            respond_error(x, 401, "Authorization must be: Bearer <token>");
            return;
        }
        req.bearer = creq->auth + 7;
    }
    const mbedtls_ssl_context *ssl = or_http_exchange_stream(x)->ssl;
    req.peer_cert = mbedtls_ssl_get_peer_cert(ssl);
    if (req.peer_cert)
        req.peer_flags = mbedtls_ssl_get_verify_result(ssl);
    or_ca_response r;
    or_ca_sign(srv->ca, &req, &r);
    respond(x, &r);
    free(r.body);
}

static void route_bundle(or_ca_server *srv, or_http_exchange *x)
{
    or_ca_response r = {.status = 200, .content_type = "application/x-pem-file"};
    char err[256];
    if (or_ca_bundle(srv->ca, &r.body, &r.body_len, err, sizeof err) != 0) {
        or_log_error("bundle: %s", err);
        respond_error(x, 500, "no trust bundle");
        return;
    }
    respond(x, &r);
    free(r.body);
}

/* Answers a request that is whole, malformed or too large. */
static void on_request(void *ctx, or_http_exchange *x, const or_http_msg *msg)
{
    or_ca_server *srv = ctx;
    or_ca_request req;
    int status;
    const char *message;
    memset(&req, 0, sizeof req);
    or_ca_request_view(&req, msg);
    switch (or_ca_request_route(&req, &status, &message)) {
    case OR_CA_ROUTE_SIGN:
        route_sign(srv, x, &req);
        break;
    case OR_CA_ROUTE_BUNDLE:
        route_bundle(srv, x);
        break;
    case OR_CA_ROUTE_HEALTH:
        respond(x, &(or_ca_response){.status = 200, .body = "ok\n", .body_len = 3});
        break;
    case OR_CA_ROUTE_ERROR:
        respond_error(x, status, message);
        break;
    }
}

/* ---- the listener ---- */

static int tls_setup(or_ca_server *srv, const struct sockaddr *ip, char *err, size_t err_len)
{
    char *bundle = NULL;
    size_t len = 0;
    if (or_ca_server_identity(srv->ca, ip, &srv->own_chain, &srv->own_key, err, err_len) != 0 ||
        or_ca_bundle(srv->ca, &bundle, &len, err, err_len) != 0)
        return -1;
    int ret = mbedtls_x509_crt_parse(&srv->bundle, (const unsigned char *)bundle, len + 1);
    free(bundle);
    if (ret != 0) {
        snprintf(err, err_len, "cannot parse the trust bundle of %s", srv->ca->dir);
        return -1;
    }
    ret = or_tls_conf_build(&srv->conf, &(or_tls_conf_opts){.endpoint = MBEDTLS_SSL_IS_SERVER,
                                                             .drbg = &srv->ca->rng->drbg,
                                                             .trust = &srv->bundle,
                                                             .chain = &srv->own_chain,
                                                             .key = &srv->own_key,
                                                             .peer_optional = true});
    if (ret != 0) {
        snprintf(err, err_len, "cannot configure TLS (-0x%04x)", (unsigned)-ret);
        return -1;
    }
    return 0;
}

int or_ca_server_start(or_ca_server *srv, or_ca *ca, uv_loop_t *loop, const char *listen,
                       char *err, size_t err_len)
{
    memset(srv, 0, sizeof *srv);
    srv->ca = ca;
    mbedtls_ssl_config_init(&srv->conf);
    mbedtls_x509_crt_init(&srv->own_chain);
    mbedtls_x509_crt_init(&srv->bundle);
    mbedtls_pk_init(&srv->own_key);
    or_hostport hp;
    const char *why = NULL;
    if (or_parse_hostport(listen, &hp, &why) != 0 || !hp.is_ip) {
        snprintf(err, err_len, "bad --listen %s: %s", listen, why ? why : "need an IP address");
        return -1;
    }
    if (tls_setup(srv, (const struct sockaddr *)&hp.addr, err, err_len) != 0)
        return -1;
    const or_http_server_opts opts = {
        .tls = &srv->conf,
        .peer_checked_by_owner = true,
        .head_max = OR_CA_HEAD_MAX,
        .body_max = OR_CA_BODY_MAX,
        .read_max = OR_CA_CONN_READ_MAX,
        .first_byte_ms = OR_CA_FIRST_BYTE_MS,
        .timeout_ms = OR_CA_CONN_TIMEOUT_MS,
        .max_conns = OR_CA_CONN_MAX,
        .max_per_ip = OR_CA_CONN_PER_IP,
        .handler = on_request,
        .ctx = srv,
    };
    return or_http_server_start(&srv->http, loop, (const struct sockaddr *)&hp.addr, &opts, err,
                                err_len);
}

void or_ca_server_stop(or_ca_server *srv) { or_http_server_stop(&srv->http); }

void or_ca_server_free(or_ca_server *srv)
{
    mbedtls_ssl_config_free(&srv->conf);
    mbedtls_x509_crt_free(&srv->own_chain);
    mbedtls_x509_crt_free(&srv->bundle);
    mbedtls_pk_free(&srv->own_key);
}
