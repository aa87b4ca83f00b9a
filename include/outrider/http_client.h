/*
 * http_client: one HTTP/1 request over an or_stream, plain or TLS.
 *
 * Contract: or_http_client_start connects to addr, with TLS when conf is
 * set (the server must then be an X509-SVID of trust_domain with the ID
 * expected_id, when given), sends one request with "Connection: close" and
 * reads the response with or_http_msg (http_head.h: the byte-exact checks
 * of the proxy's parser; Content-Length, chunked or close-delimited body,
 * at most body_max bytes). One timer bounds the whole exchange. The
 * callback runs exactly once, from the loop, after the connection is fully
 * closed (so the caller may free the TLS configuration in it): status is
 * the HTTP status, or -1 with err saying what failed (connect, TLS,
 * timeout, malformed or oversized response), naming the server as
 * peer_name ("the CA"). The request object frees itself after the
 * callback. Returns -1 (and no callback) only when it cannot start.
 */
#ifndef OUTRIDER_HTTP_CLIENT_H
#define OUTRIDER_HTTP_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <mbedtls/ssl.h>
#include <uv.h>

#include "outrider/stream.h"

typedef void (*or_http_client_cb)(void *ctx, int status, const char *body, size_t len,
                                  const char *err);

typedef struct {
    or_stream_loop *sl;
    const mbedtls_ssl_config *conf;  /* NULL: plain TCP */
    const char *trust_domain;        /* TLS: the server's trust domain */
    const char *expected_id;         /* TLS: the server's SPIFFE ID; NULL: any */
    const struct sockaddr *addr;
    const char *peer_name;           /* for messages: "the CA" */
    const char *host;                /* Host header */
    const char *method, *path;
    const char *headers;             /* further header lines, each ending in CRLF; NULL: none */
    const char *content_type;        /* NULL: no Content-Type */
    const char *body;
    size_t body_len;
    size_t body_max;                 /* the largest response body taken */
    uint64_t timeout_ms;
} or_http_client_req;

int or_http_client_start(const or_http_client_req *req, or_http_client_cb cb, void *ctx);

#endif
