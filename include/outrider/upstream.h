/*
 * upstream: connections from a listener to its upstream, and their pool.
 *
 * Contract: or_upstream_open resolves the listener's upstream, connects and,
 * for an outbound listener, runs the mTLS client handshake and verifies the
 * server's SPIFFE ID against peer_identity (resuming the listener's last
 * session when it can). It always answers through the ready callback, never
 * from inside the call: status 0 with a usable stream, or a negative status
 * with a short reason (already logged), after which the upstream is closing.
 *
 * A ready upstream is used by one owner at a time, which sets the stream's
 * callbacks and `user`. The owner either closes it (or_upstream_close) or
 * returns it to the listener's pool (or_pool_put) once a response is
 * complete. A pooled upstream keeps reading: any byte or EOF from the peer
 * closes it, and it expires after the pool idle time, which is kept below
 * the idle timeouts of typical peers. The upstream frees itself when its
 * handles have closed; nothing else holds it after that.
 */
#ifndef OUTRIDER_UPSTREAM_H
#define OUTRIDER_UPSTREAM_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "outrider/stream.h"
#include "outrider/worker.h"

typedef struct or_upstream or_upstream;
typedef void (*or_upstream_ready_cb)(or_upstream *up, int status, const char *reason, void *ctx);

struct or_upstream {
    or_stream s;                 /* s.owner is this upstream */
    or_worker_listener *listener;
    or_tls_gen *tls;             /* the TLS generation it connected with */
    uv_timer_t timer;
    uv_getaddrinfo_t resolve;
    or_upstream_ready_cb on_ready;
    void *ctx;
    void *user;                  /* the current owner while in use */
    LIST_ENTRY(or_upstream) pool_entry; /* the listener's `pool`, while pooled */
    uint64_t opened_ms;          /* loop time the connect started */
    uint64_t requests;           /* requests served so far */
    uint64_t handshake_ns;       /* uv_hrtime() when the TLS handshake started */
    bool resolving, ready, pooled, closing;
    bool waiting;                /* counted in the listener's up_waiting until ready or closed */
    int callbacks_pending;
    const char *fail_reason;
};

or_upstream *or_upstream_open(or_worker_listener *l, or_upstream_ready_cb cb, void *ctx);
void or_upstream_close(or_upstream *up);

/* An idle pooled upstream of the listener, or NULL. */
or_upstream *or_pool_take(or_worker_listener *l);
/* Returns a ready upstream with nothing queued to the pool. */
void or_pool_put(or_upstream *up);
void or_pool_close_all(or_worker_listener *l);
/* Drops the listener's cached TLS session. */
void or_upstream_forget_session(or_worker_listener *l);

#endif
