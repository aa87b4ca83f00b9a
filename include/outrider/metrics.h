/*
 * metrics: labelled series per listener, kept by each worker, summed on
 * scrape (docs/cli-and-logs.md, "Metrics").
 *
 * Contract: or_worker_bind gives every listener of a worker one
 * or_listener_metrics (or_listener_metrics_new) and or_worker_unbind frees
 * it, so it outlives the worker's thread and every scrape. Its worker is the
 * only writer; the admin server on the main thread reads it while the
 * worker runs, without a lock. Counters are relaxed atomics, as in
 * or_stats. Tables only grow: a peer, status code or policy slot is filled
 * in completely and then published by a release store of the table's
 * count, which a reader loads with acquire, so a reader sees only whole
 * slots and a slot never moves or goes away. Strings in a slot are owned by
 * the table.
 *
 * Cardinality is bounded: at most OR_METRICS_MAX_PEERS peers per listener
 * per worker (further peers are counted under the peer "overflow"),
 * OR_METRICS_MAX_CODES status codes per peer (further codes under the code
 * "other") and OR_METRICS_MAX_POLICIES denying policies per peer (further
 * policies under "other"). Each time a series lands on an overflow slot,
 * outrider_metric_label_overflow_total{listener,label} counts it.
 *
 * or_metrics_render appends the Prometheus text of every listener's series
 * summed over the workers; or_metrics_text_to_json turns the whole /stats
 * text into the JSON document of GET /stats?format=json.
 */
#ifndef OUTRIDER_METRICS_H
#define OUTRIDER_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outrider/buf.h"
#include "outrider/config.h"
#include "outrider/stats.h"

#define OR_METRICS_MAX_PEERS 64
#define OR_METRICS_MAX_CODES 16
#define OR_METRICS_MAX_POLICIES 8
#define OR_METRICS_HIST_MAX 16
#define OR_METRICS_GRPC_CODES 17 /* gRPC status codes 0 (OK) ... 16 (UNAUTHENTICATED) */

/* The peer label of a series whose peer did not fit the table, and of a
 * peer without an identity (a plaintext client). */
#define OR_METRICS_PEER_OVERFLOW "overflow"
#define OR_METRICS_PEER_UNKNOWN "unknown"

/* A histogram's bucket bounds, inclusive (Prometheus `le`), in the unit the
 * values are observed in; `scale` divides them for display (1e6: values in
 * microseconds shown as seconds; 1: bytes). */
typedef struct {
    const uint64_t *bounds;
    unsigned n;
    double scale;
} or_hist_spec;

extern const or_hist_spec or_hist_duration; /* microseconds, shown in seconds: 0.0005 ... 10 */
extern const or_hist_spec or_hist_size;     /* bytes: 64 ... 16 MiB */

typedef struct {
    _Atomic uint64_t counts[OR_METRICS_HIST_MAX + 1]; /* per bucket, not cumulative; [n] is +Inf */
    _Atomic uint64_t sum;
} or_histogram;

/* The bucket of `value`: the first bound it does not exceed, or spec->n. */
unsigned or_hist_bucket(const or_hist_spec *spec, uint64_t value);

typedef enum { OR_OVERFLOW_PEER, OR_OVERFLOW_CODE, OR_OVERFLOW_POLICY, OR_OVERFLOW_KINDS } or_overflow_kind;

#define OR_METRICS_CODE_OTHER (-1)

typedef struct {
    int code;                    /* the HTTP status; 0: none was sent; OR_METRICS_CODE_OTHER */
    _Atomic uint64_t requests;
    or_histogram duration;       /* request start to the end of the response, microseconds */
    or_histogram request_size;   /* request body bytes */
    or_histogram response_size;  /* response body bytes */
} or_metrics_code;

typedef struct {
    char *policy;                /* "(default)" when no policy matched; "other": overflow */
    _Atomic uint64_t count;
} or_metrics_denial;

typedef struct {
    char *id;                    /* the SPIFFE ID, OR_METRICS_PEER_UNKNOWN or _OVERFLOW */
    _Atomic unsigned ncodes;     /* published slots of codes[0 .. OR_METRICS_MAX_CODES) */
    or_metrics_code codes[OR_METRICS_MAX_CODES + 1]; /* the last one is "other" */
    _Atomic unsigned ndenials;
    or_metrics_denial denials[OR_METRICS_MAX_POLICIES + 1]; /* the last one is "other" */
    _Atomic uint64_t tcp_opened, tcp_closed, tcp_received, tcp_sent;
    _Atomic uint64_t grpc[OR_METRICS_GRPC_CODES + 1]; /* by grpc-status; the last: any other */
} or_metrics_peer;

/* Why a new upstream connection failed before it could be used. */
typedef enum {
    OR_UPFAIL_REFUSED,           /* connection refused */
    OR_UPFAIL_TIMEOUT,           /* timeouts.connect passed */
    OR_UPFAIL_RESOLVE,           /* the host name did not resolve */
    OR_UPFAIL_OTHER,
    OR_UPFAIL_REASONS
} or_upstream_failure;

typedef struct {
    _Atomic unsigned npeers;
    or_metrics_peer *peers[OR_METRICS_MAX_PEERS];
    or_metrics_peer *overflow;
    _Atomic uint64_t label_overflow[OR_OVERFLOW_KINDS];
    /* the upstream and its pool */
    _Atomic uint64_t up_created, up_closed, up_idle, up_waiting, up_retries;
    _Atomic uint64_t up_connect_failures[OR_UPFAIL_REASONS];
    _Atomic uint64_t up_handshake_failures[OR_STATS_HANDSHAKE_REASONS];
    /* mTLS handshakes completed on this listener (inbound: with clients;
     * outbound: with the peer sidecar) */
    _Atomic uint64_t handshakes[2]; /* full, resumed */
    or_histogram handshake_duration;
} or_listener_metrics;

or_listener_metrics *or_listener_metrics_new(void);
void or_listener_metrics_free(or_listener_metrics *m);

/* The peer slot for `id` (NULL or "" is OR_METRICS_PEER_UNKNOWN), made when
 * new; the overflow slot when the table is full. Never NULL. Worker only. */
or_metrics_peer *or_metrics_peer_get(or_listener_metrics *m, const char *id);

/* One HTTP exchange (worker only). */
void or_metrics_request(or_listener_metrics *m, or_metrics_peer *p, int status,
                        uint64_t duration_us, uint64_t request_bytes, uint64_t response_bytes);
/* The grpc-status (decimal text) a gRPC exchange ended with (worker only). */
void or_metrics_grpc(or_metrics_peer *p, const char *status);
/* A request or connection denied by `policy` (NULL: the default action). */
void or_metrics_denied(or_listener_metrics *m, or_metrics_peer *p, const char *policy);
/* A completed mTLS handshake that took `us`. */
void or_metrics_handshake(or_listener_metrics *m, bool resumed, uint64_t us);

/* Gauges and counters, worker only. */
#define or_metrics_inc(counter) atomic_fetch_add_explicit(&(counter), 1, memory_order_relaxed)
#define or_metrics_dec(counter) atomic_fetch_sub_explicit(&(counter), 1, memory_order_relaxed)
#define or_metrics_set(gauge, v) atomic_store_explicit(&(gauge), (v), memory_order_relaxed)

/* ---- rendering (main thread) ---- */

/* The listeners of one worker, in config order. */
typedef struct {
    or_listener_metrics *const *listeners;
} or_metrics_worker_view;

/* Appends every listener's series, summed over `nworkers` workers. */
void or_metrics_render(or_buf *out, const or_config *cfg, const or_metrics_worker_view *workers,
                       unsigned nworkers);

/* A label value in the text exposition: backslash, double quote and line
 * feed escaped as \\, \" and \n. */
void or_metrics_label(or_buf *out, const char *value);
/* `{name="value"` ... as a label set: `name` then the escaped value. */
void or_metrics_label_pair(or_buf *out, const char *sep, const char *name, const char *value);

/* The Prometheus text `text` as a JSON document:
 * {"metrics":[{"name","type","help","samples":[{"name","labels":{},"value"}]}]}.
 * Returns 0, or -1 when a line is not one this proxy writes. */
int or_metrics_text_to_json(const char *text, size_t len, or_buf *out);

#endif
