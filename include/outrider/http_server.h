/*
 * http_server: the small HTTP/1 server of the admin endpoint and outrider-ca.
 *
 * Contract: or_http_server_start listens on one address on one libuv loop,
 * plain or TLS (opts.tls), and serves exactly one request per connection:
 * the request is read with or_http_msg (http_head.h), the handler runs once
 * with it (complete, too large or malformed) and answers with
 * or_http_respond, which writes the whole response with "Connection:
 * close", then close_notify and FIN; the connection then reads what the
 * client still sends until its EOF, so the client never sees a reset, and
 * closes. A connection is bounded by a first-byte deadline (first_byte_ms
 * from accept, a TLS handshake included), a whole deadline (timeout_ms), a
 * cap on bytes read (read_max: a request still incomplete beyond it is
 * handed over as TOO_LARGE) and the caps on open connections in all
 * (max_conns) and per client IP (max_per_ip); a connection over a cap is
 * closed at once, counted in `refused` and logged at most once a second.
 * A connection's memory is freed when its last handle has closed, never
 * inside a callback of its own. or_http_server_stop closes the listener and
 * every connection; the loop ends once their close callbacks have run.
 *
 * or_http_reason is the one table of reason phrases; or_http_route_find
 * looks a request up in a route table (404 and 405 with the Allow value).
 */
#ifndef OUTRIDER_HTTP_SERVER_H
#define OUTRIDER_HTTP_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <mbedtls/ssl.h>
#include <uv.h>

#include "outrider/http_head.h"
#include "outrider/stream.h"

typedef struct or_http_server or_http_server;
typedef struct or_http_exchange or_http_exchange;

/* Runs once per connection with its request; must answer with
 * or_http_respond (now, before returning). */
typedef void (*or_http_handler)(void *ctx, or_http_exchange *x, const or_http_msg *req);

typedef struct {
    const mbedtls_ssl_config *tls;   /* NULL: plain TCP */
    bool peer_checked_by_owner;      /* TLS: the handler judges the client certificate */
    size_t head_max, body_max, read_max;
    uint64_t first_byte_ms, timeout_ms;
    size_t max_conns, max_per_ip;    /* 0: no cap */
    or_http_handler handler;
    void *ctx;
    /* Optional: runs once the listener and every connection opened so far
     * have closed (after stop, or a failed start): the server's memory may
     * be freed there. */
    void (*on_stopped)(or_http_server *srv);
} or_http_server_opts;

struct or_http_server {
    or_http_server_opts opts;
    uv_loop_t *loop;
    or_stream_loop sl;
    uv_tcp_t listener;
    LIST_HEAD(, or_http_exchange) conns; /* open connections, newest first; each frees
                                        itself once its handles have closed */
    size_t nconns;
    uint64_t served, refused;        /* requests answered; connections closed unserved */
    uint64_t refused_quiet_until;    /* loop time before which a refusal is not logged */
    bool listening;
};

/* 0, or -1 with err saying why (the address and the libuv error); after a
 * failure opts->on_stopped still runs, from the loop. */
int or_http_server_start(or_http_server *srv, uv_loop_t *loop, const struct sockaddr *addr,
                         const or_http_server_opts *opts, char *err, size_t err_len);
void or_http_server_stop(or_http_server *srv);

/* The connection's stream (the TLS peer certificate) and client address. */
or_stream *or_http_exchange_stream(or_http_exchange *x);
const char *or_http_exchange_peer(const or_http_exchange *x);

/* Writes one whole response; `extra` holds further header lines, each
 * ending in CRLF ("" for none). */
void or_http_respond(or_http_exchange *x, int status, const char *type, const char *extra,
                     const char *body, size_t body_len);

const char *or_http_reason(int status);

typedef struct {
    const char *path;
    const char *method;              /* matched exactly: "GET", "POST" */
} or_http_route;

/* The index of the route of `target` (query ignored) and `method`; or -1
 * with *status 404 (no such path) or 405 (*allowed: the route's method). */
int or_http_route_find(const or_http_route *routes, size_t n, const char *target,
                       size_t target_len, const char *method, int *status,
                       const char **allowed);

#endif
