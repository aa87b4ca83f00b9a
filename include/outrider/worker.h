/*
 * worker: event-loop threads, their listeners and the process runtime.
 *
 * Contract: or_runtime is built by main before any worker starts and is
 * read-only afterwards, except for the atomics it names. Each worker is one
 * thread with one uv_loop_t and its own SO_REUSEPORT socket per listener;
 * everything a worker mutates (its loop, streams, TLS configurations,
 * connections) belongs to it alone. Other threads talk to a worker only via
 * or_worker_stop, which sets an atomic and wakes the loop.
 *
 * Accepting: each listening socket is polled and accepted by its worker.
 * When the process is out of file descriptors the waiting connections are
 * closed at once (with a spare descriptor the worker keeps for this),
 * counted in or_stats.accept_errors and logged at most once a second; when
 * even that is impossible, the worker's listeners pause for a moment rather
 * than spin.
 *
 * Stopping: level 1 drains (listeners close, open connections may finish
 * within timeouts.drain, then are cut); level 2 cuts every connection now.
 * A worker that has stopped reports through runtime->on_worker_exit.
 */
#ifndef OUTRIDER_WORKER_H
#define OUTRIDER_WORKER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <uv.h>

#include "outrider/config.h"
#include "outrider/metrics.h"
#include "outrider/rbac.h"
#include "outrider/stats.h"
#include "outrider/stream.h"
#include "outrider/tls.h"
#include "outrider/trace.h"

typedef struct or_worker or_worker;
typedef struct or_conn or_conn;
typedef struct or_upstream or_upstream;
typedef struct or_rbac or_rbac;
typedef struct or_access_log or_access_log;

/* One generation of a worker's TLS configurations. The worker holds the
 * current one; every connection holds the one it started with, so a new
 * identity applies to new connections while open ones continue untouched. */
typedef struct {
    or_tls_worker tls;
    unsigned refs;               /* worker-local */
} or_tls_gen;

/* What a reload can change, shared by reference: the config whose timeouts
 * and limits are in force and the compiled policies. A worker holds the
 * current snapshot, a connection the one it was accepted with, an HTTP
 * request the one that decided it. rbac NULL: the config has no rbac section
 * and nothing is enforced. Listeners, identity paths and workers always come
 * from the config the process started with (or_runtime.cfg). */
typedef struct {
    atomic_int refs;
    const or_config *cfg;
    or_config *owned_cfg;         /* cfg, when this snapshot owns it (after a reload) */
    or_rbac *rbac;
    size_t npolicies;
    _Atomic uint64_t (*hits)[4];  /* per policy: decided allow, decided deny, dry_run, audit */
} or_snapshot;

/* Takes ownership of rbac, and of cfg when owned_cfg is not NULL. */
or_snapshot *or_snapshot_new(const or_config *cfg, or_config *owned_cfg, or_rbac *rbac);
/* Counts a decision against the policies it names (relaxed atomics). */
void or_snapshot_count(or_snapshot *set, const or_rbac_decision *d);
or_snapshot *or_snapshot_hold(or_snapshot *set);
void or_snapshot_drop(or_snapshot *set);

typedef struct {
    const or_config *cfg;
    uv_mutex_t creds_lock;       /* guards creds and snap: main publishes, workers take */
    or_snapshot *snap;           /* the newest snapshot */
    atomic_uint snap_version;
    or_tls_creds *creds;         /* the newest valid identity */
    atomic_uint creds_version;   /* bumped on each publish */
    or_tls_tickets tickets;
    or_access_log *access_log;   /* NULL when access_log is not configured */
    atomic_size_t connections;   /* open connections, all workers */
    atomic_uint workers_running; /* decremented by each worker as it exits */
    atomic_bool worker_failed;   /* a worker could not start */
    uv_async_t *worker_exited;   /* on main's loop; sent by each worker at exit */
} or_runtime;

typedef struct {
    uv_poll_t poll;              /* readable: connections are waiting */
    or_worker *worker;
    const or_listener_config *cfg;
    int fd;                      /* the listening socket; -1 once closed */
    mbedtls_ssl_session session; /* outbound: the newest session, for resumption */
    bool have_session;
    or_tls_gen *session_tls;     /* the TLS generation that made it */
    LIST_HEAD(, or_upstream) pool; /* idle upstream connections, newest first
                                    (`pooled`); upstream.c owns them */
    size_t pool_size;
    struct or_h2_pool *h2_pool;  /* shared HTTP/2 upstream connections (http2.h) */
    size_t h2_idle;              /* ... of them, ready and without streams */
    or_listener_metrics *metrics; /* labelled series (metrics.h); lives until or_worker_unbind */
} or_worker_listener;

/* A worker's state for accept failures (worker.c): the spare descriptor
 * that lets it refuse connections when the process is out of them, the
 * pause of its listeners, and the failures not yet logged. */
typedef struct {
    int spare_fd;                /* /dev/null, given up to accept-and-close; -1 if none */
    uv_timer_t pause_timer;      /* restarts the listeners after a pause */
    bool paused;
    uv_timer_t log_timer;        /* running: a line was logged less than 1 s ago */
    uint64_t unlogged[OR_ACCEPT_REASONS];
    int last_errno;              /* of the latest OR_ACCEPT_OTHER failure */
} or_accept_state;

struct or_worker {
    unsigned id;
    or_runtime *rt;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wakeup;
    uv_timer_t drain_timer;
    atomic_int stop_level;
    bool draining, finished;
    or_stream_loop sl;
    or_tls_gen *tls;             /* current generation */
    unsigned creds_version;      /* the version `tls` was built from */
    or_snapshot *snap;           /* current snapshot */
    unsigned snap_version;
    or_stats stats;
    or_trace_random trace_random; /* bytes for request and trace IDs (trace.h) */
    uv_timer_t lag_timer;
    uint64_t lag_due_ms;
    or_worker_listener *listeners;
    size_t nlisteners;
    LIST_HEAD(, or_conn) conns;  /* open connections, newest first (conn.c owns the
                                    links and the connections) */
    size_t nconns;
    or_accept_state accept;
};

/* Binds one SO_REUSEPORT socket per listener for worker `w`. Fails with a
 * message naming the address. */
int or_worker_bind(or_worker *w, or_runtime *rt, unsigned id, char *err, size_t err_len);
int or_worker_start(or_worker *w);
void or_worker_stop(or_worker *w, int level);
void or_worker_join(or_worker *w);
/* Releases what or_worker_bind took, for a worker that never started. */
void or_worker_unbind(or_worker *w);

/* Takes a reference on the worker's current TLS generation. */
or_tls_gen *or_worker_tls_hold(or_worker *w);
void or_worker_tls_drop(or_tls_gen *gen);
/* Makes `creds` the identity of new connections on every worker (main thread). */
void or_runtime_publish_creds(or_runtime *rt, or_worker *workers, unsigned n, or_tls_creds *creds);
/* Makes `set` the snapshot of new connections and requests (main thread). */
void or_runtime_publish_snapshot(or_runtime *rt, or_worker *workers, unsigned n,
                                 or_snapshot *set);

/* Called by conn.c when a connection has gone away. */
void or_worker_conn_released(or_worker *w);

#endif
