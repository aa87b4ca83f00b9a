/*
 * conn: one downstream connection, from accept to its access-log line.
 *
 * Contract: or_conn_accept takes a connection its worker has accepted on a
 * listener and owns it from then on. It enforces limits.max_connections, completes the
 * mTLS handshake of inbound listeners (with timeouts.handshake) as the
 * listener's mtls_effective says (strict: required; permissive: TLS or
 * plaintext, told apart by the first bytes within timeouts.detect; disable:
 * plaintext only), takes the
 * L4 RBAC decision of inbound tcp listeners, and hands the connection to its
 * listener's protocol phase: the tcp pipe (pipe.h) or the HTTP session
 * (http.h). Those modules work on the or_conn fields below and end it with
 * or_conn_close (at once) or or_conn_close_gracefully (FIN after queued
 * output, unread input drained for a short while, so the peer sees an
 * orderly close rather than a reset). A tcp connection writes its
 * access-log line when it closes; HTTP writes one per request. The
 * connection is linked on its worker's list until its last handle has
 * closed.
 *
 * The phase boundary: conn.c knows a protocol phase only through its
 * or_conn_phase_ops. `start` takes the connection over; `drain` runs when
 * the worker starts draining; `end` runs once when the connection closes or
 * lingers (maybe inside one of the phase's own callbacks): the phase stops
 * its work and gives back what it holds outside the connection (upstreams),
 * but keeps its state valid, because callers up the stack may still look at
 * it. `release` frees phase_state once the connection's handles have all
 * closed, when no callback can reach the phase any more.
 */
#ifndef OUTRIDER_CONN_H
#define OUTRIDER_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <uv.h>

#include "outrider/access_log.h"
#include "outrider/rbac.h"
#include "outrider/stream.h"
#include "outrider/worker.h"

typedef struct or_upstream or_upstream;

/* Where a connection is. Transitions (asserted by or_conn_set_phase):
 * ACCEPTED -> HANDSHAKE (inbound) -> CONNECTING (tcp) -> PIPING
 *                                 -> HTTP -> PIPING (after a 101)
 * and from any of them -> LINGERING -> CLOSED, or straight -> CLOSED. */
typedef enum {
    OR_CONN_ACCEPTED,    /* accepted, not yet handed on */
    OR_CONN_HANDSHAKE,   /* inbound: waiting for the peer's mTLS handshake (or,
                            permissive, for its first bytes) */
    OR_CONN_CONNECTING,  /* tcp: waiting for the upstream */
    OR_CONN_PIPING,      /* tcp or upgraded HTTP: bytes both ways */
    OR_CONN_HTTP,        /* HTTP/1.1 requests */
    OR_CONN_LINGERING,   /* closing gracefully */
    OR_CONN_CLOSED,      /* handles closing; freed when they have */
} or_conn_phase;

/* A protocol phase, as conn.c sees it (see the contract above). Any
 * operation but start may be NULL. */
typedef struct {
    const char *name;
    void (*start)(or_conn *c);
    void (*drain)(or_conn *c);
    void (*end)(or_conn *c);
    void (*release)(or_conn *c);
} or_conn_phase_ops;

struct or_conn {
    or_worker *worker;
    or_worker_listener *listener;
    or_tls_gen *tls;            /* the TLS generation this connection uses */
    or_snapshot *snap;          /* timeouts, limits and policies it was accepted with */
    LIST_ENTRY(or_conn) entry;  /* the worker's `conns` */
    or_stream down;
    uv_timer_t timer;
    or_conn_phase phase;
    const or_conn_phase_ops *ops; /* the listener's protocol; NULL before dispatch */
    void *phase_state;          /* owned by ops, freed by ops->release */
    bool logged;
    int callbacks_pending;
    uint64_t last_activity;     /* loop time, ms */
    uint64_t accepted_ms;       /* loop time, ms */
    struct timespec accepted_at;/* wall clock */
    struct sockaddr_storage peer_addr;
    char peer[64];              /* "ip:port" */
    or_upstream *up;            /* tcp / upgraded HTTP */
    int64_t upstream_us;        /* time to a ready upstream; -1 if none */
    uint64_t bytes_in, bytes_out;
    const char *flags;          /* response flags for the tcp log line */
    bool refused_early;         /* ended before any request could start */
    or_rbac_decision rbac;
    bool rbac_evaluated;
    uint64_t handshake_ns;      /* uv_hrtime() when the inbound handshake started */
    or_metrics_peer *metrics_peer; /* the peer's series (or_conn_metrics_peer); NULL until asked */
    or_buf xfcc;                /* inbound mTLS: the x-forwarded-client-cert value
                                   (or_conn_xfcc), made once; owned */
};

/* Takes `fd`, a socket just accepted on the listener (non-blocking). */
void or_conn_accept(or_worker_listener *listener, int fd);
void or_conn_close(or_conn *c);
void or_conn_close_gracefully(or_conn *c);
void or_conn_abort_all(or_worker *w);
/* The worker drains: the connection's phase ends it between requests. */
void or_conn_drain(or_conn *c);
/* Moves the connection to `to`; asserts that the transition is allowed. */
void or_conn_set_phase(or_conn *c, or_conn_phase to);

void or_conn_touch(or_conn *c);
/* (Re)starts the connection timer; on expiry `on_expiry` runs. */
void or_conn_arm(or_conn *c, uint64_t ms, uv_timer_cb on_expiry);
/* The downstream's SPIFFE ID once its mTLS handshake is done (NULL before);
 * "" for a plaintext downstream (mtls permissive or disable), which has none. */
const char *or_conn_peer_id(const or_conn *c);
/* Inbound: the x-forwarded-client-cert value an app gets with each request,
 * "By=<own SPIFFE ID>;URI=<peer SPIFFE ID>", made with the first request;
 * an empty buffer for a plaintext downstream (none is sent). -1 when memory
 * ran out. The buffer stays the connection's. */
int or_conn_xfcc(or_conn *c, const or_buf **value);
/* The series of the connection's peer on its listener (metrics.h):
 * inbound, the client's SPIFFE ID; outbound, the listener's peer_identity.
 * Looked up once, after the handshake. */
or_metrics_peer *or_conn_metrics_peer(or_conn *c);
/* The connection's part of an RBAC request: the peer's SPIFFE ID with the
 * namespace parsed at the handshake (both NULL for a plaintext peer), its
 * address, the listener's port. */
or_rbac_request or_conn_rbac_request(const or_conn *c);
/* Decides `req` by the policies of `snap` into *d and returns whether it is
 * allowed; the decision is counted (worker stats, snapshot, the peer's
 * denials) and its dry_run and audit policies logged with req's method and
 * the request target req->path[0..target_len). */
bool or_conn_rbac_decide(or_conn *c, or_snapshot *snap, const or_rbac_request *req,
                         size_t target_len, or_rbac_decision *d);
/* One finished HTTP request, `r` filled with what the session knows (and,
 * outbound, the upstream's peer_id and tls_cipher): counted in the worker's
 * stats and the peer's metrics, timed from `started_ns` (uv_hrtime), and
 * logged with the connection's fields and `rbac` (NULL when none was taken). */
void or_conn_log_request(or_conn *c, or_access_record *r, uint64_t started_ns,
                         const or_rbac_decision *rbac);

#endif
