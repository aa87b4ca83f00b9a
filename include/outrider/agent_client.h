/*
 * agent_client: one HTTPS request from outrider-agent to outrider-ca.
 *
 * Contract: or_agent_http_start opens a TLS or_stream to the CA with the
 * caller's client configuration (trust bundle, and the current mesh
 * certificate when renewing), verifies that the server is an X509-SVID of
 * the trust domain with the ID expected_id, sends one request
 * ("Connection: close") and reads the response. The callback runs exactly
 * once, from the loop, after the connection is fully closed (so the caller
 * may free the TLS configuration in it): status is the HTTP status, or -1
 * with err saying what failed (connect, TLS, timeout, malformed response).
 * The request object frees itself after the callback.
 */
#ifndef OUTRIDER_AGENT_CLIENT_H
#define OUTRIDER_AGENT_CLIENT_H

#include <stddef.h>

#include <mbedtls/ssl.h>
#include <uv.h>

#include "outrider/stream.h"

#define OR_AGENT_HTTP_BODY_MAX (256 * 1024)
#define OR_AGENT_HTTP_TIMEOUT_MS 15000

typedef void (*or_agent_http_cb)(void *ctx, int status, const char *body, size_t len,
                                 const char *err);

typedef struct {
    or_stream_loop *sl;
    const mbedtls_ssl_config *conf;
    const char *trust_domain;
    const char *expected_id;
    const struct sockaddr *addr;
    const char *host;           /* Host header */
    const char *method, *path;
    const char *bearer;         /* NULL: no Authorization header */
    const char *body;
    size_t body_len;
} or_agent_http_req;

int or_agent_http_start(const or_agent_http_req *req, or_agent_http_cb cb, void *ctx);

#endif
