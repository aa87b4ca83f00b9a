/*
 * conn: one downstream connection, from accept to its access-log line.
 *
 * Contract: or_conn_accept takes a connection its worker has accepted on a
 * listener and owns it from then on. It enforces limits.max_connections, completes the
 * mTLS handshake of inbound listeners (with timeouts.handshake), takes the
 * L4 RBAC decision of inbound tcp listeners, and hands the connection to the
 * tcp pipe (pipe.h) or to the HTTP session (http.h). Those modules work on
 * the or_conn fields below and end it with or_conn_close (at once) or
 * or_conn_close_gracefully (FIN after queued output, unread input drained
 * for a short while, so the peer sees an orderly close rather than a reset).
 * A tcp connection writes its access-log line when it closes; HTTP writes
 * one per request. The connection is linked on its worker's list until its
 * last handle has closed.
 */
#ifndef OUTRIDER_CONN_H
#define OUTRIDER_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

#include "outrider/rbac.h"
#include "outrider/stream.h"
#include "outrider/worker.h"

typedef struct or_upstream or_upstream;
typedef struct or_http_session or_http_session;

typedef enum {
    OR_CONN_HANDSHAKE,   /* inbound: waiting for the peer's mTLS handshake */
    OR_CONN_CONNECTING,  /* tcp: waiting for the upstream */
    OR_CONN_PIPING,      /* tcp or upgraded HTTP: bytes both ways */
    OR_CONN_HTTP,        /* HTTP/1.1 requests */
    OR_CONN_LINGERING,   /* closing gracefully */
} or_conn_phase;

struct or_conn {
    or_worker *worker;
    or_worker_listener *listener;
    or_tls_gen *tls;            /* the TLS generation this connection uses */
    or_snapshot *snap;          /* timeouts, limits and policies it was accepted with */
    or_conn *prev, *next;
    or_stream down;
    uv_timer_t timer;
    or_conn_phase phase;
    bool closing, logged;
    int callbacks_pending;
    uint64_t last_activity;     /* loop time, ms */
    uint64_t accepted_ms;       /* loop time, ms */
    struct timespec accepted_at;/* wall clock */
    struct sockaddr_storage peer_addr;
    char peer[64];              /* "ip:port" */
    or_upstream *up;            /* tcp / upgraded HTTP */
    int64_t upstream_us;        /* time to a ready upstream; -1 if none */
    or_http_session *http;
    uint64_t bytes_in, bytes_out;
    const char *flags;          /* response flags for the tcp log line */
    bool refused_early;         /* ended before any request could start */
    or_rbac_decision rbac;
    bool rbac_evaluated;
};

/* Takes `fd`, a socket just accepted on the listener (non-blocking). */
void or_conn_accept(or_worker_listener *listener, int fd);
void or_conn_close(or_conn *c);
void or_conn_close_gracefully(or_conn *c);
void or_conn_abort_all(or_worker *w);

void or_conn_touch(or_conn *c);
/* (Re)starts the connection timer; on expiry `on_expiry` runs. */
void or_conn_arm(or_conn *c, uint64_t ms, uv_timer_cb on_expiry);
const char *or_conn_peer_id(const or_conn *c);
/* The connection's part of an RBAC request: the peer's SPIFFE ID with the
 * namespace parsed at the handshake, its address, the listener's port. */
or_rbac_request or_conn_rbac_request(const or_conn *c);

#endif
