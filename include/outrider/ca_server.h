/*
 * ca_server: the HTTPS front of outrider-ca on one libuv loop.
 *
 * Contract: or_ca_server_start listens on a host:port with TLS 1.2+ using a
 * server certificate freshly issued by the CA itself at start-up
 * (spiffe://TD/outrider-ca, DNS localhost, IP 127.0.0.1 and the listen IP),
 * so clients verify it with the trust bundle. A client certificate is
 * optional: when one is presented it is verified against the bundle and the
 * result is handed to or_ca_sign. Each connection serves exactly one
 * request and is closed ("Connection: close"); bytes after the end of that
 * request (a pipelined second one) are never parsed. A connection is
 * bounded by a first-byte deadline (OR_CA_FIRST_BYTE_MS from accept, the
 * handshake included, to the first byte of the request), a whole deadline
 * (OR_CA_CONN_TIMEOUT_MS), a body limit (413 beyond it) and a cap on bytes
 * read. Open connections are capped in all (OR_CA_CONN_MAX) and per client
 * IP address (OR_CA_CONN_PER_IP); extra ones are closed at once, counted in
 * `http.refused` and logged at most once a second. The connections are
 * the HTTP/1 kit's (http_server.h); the request is ca_request.h. Routes: POST /v1/sign, GET /v1/bundle, GET /healthz.
 * or_ca_server_stop closes the listener and every connection; the loop then
 * ends once their close callbacks have run.
 */
#ifndef OUTRIDER_CA_SERVER_H
#define OUTRIDER_CA_SERVER_H

#include <stddef.h>

#include <mbedtls/ssl.h>
#include <uv.h>

#include "outrider/ca.h"
#include "outrider/ca_request.h"
#include "outrider/http_server.h"

#define OR_CA_CONN_READ_MAX (64 * 1024)
#define OR_CA_CONN_MAX 512
#define OR_CA_CONN_PER_IP 32
#define OR_CA_FIRST_BYTE_MS 3000
#define OR_CA_CONN_TIMEOUT_MS 10000

typedef struct {
    or_ca *ca;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt own_chain;
    mbedtls_pk_context own_key;
    mbedtls_x509_crt bundle;
    or_http_server http;        /* http.served, http.refused: the counters */
} or_ca_server;

int or_ca_server_start(or_ca_server *srv, or_ca *ca, uv_loop_t *loop, const char *listen,
                       char *err, size_t err_len);
void or_ca_server_stop(or_ca_server *srv);
/* Frees the TLS state once the loop has finished. */
void or_ca_server_free(or_ca_server *srv);

#endif
