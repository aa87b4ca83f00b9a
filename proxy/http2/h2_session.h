/*
 * h2_session: the state of one HTTP/2 connection, shared by h2_session.c
 * (the downstream server session, requests, policy, local answers, limits)
 * and h2_upstream.c (the client sessions towards the upstream). Private to
 * proxy/http2/.
 *
 * Ownership: the session owns its streams (a list); they are freed when the
 * connection releases the phase, never earlier than the nghttp2 sessions
 * that point at them. Upstream connections (or_h2_up) belong to the pool of
 * the worker listener (or_h2_pool, h2_pool.c), not to a session: streams of
 * any downstream session of the listener share them. A stream that is
 * waiting for an upstream connection or has an upstream stream open is
 * linked on that connection's list (`up_linked`) and is the nghttp2 stream
 * user data there; a session that ends resets and unlinks its streams, so
 * an upstream never reaches a freed stream. Each stream that names an
 * upstream (st->up) holds a reference on it (for the access log's peer ID
 * and cipher); the pool frees a closed upstream when the last goes.
 * Sessions touched by an event are queued on the pool and flushed once at
 * the end of the loop turn (or_h2_pool_defer, or_h2_pool_run), never from
 * inside an nghttp2 callback.
 */
#ifndef OUTRIDER_H2_SESSION_H
#define OUTRIDER_H2_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <time.h>

#include <nghttp2/nghttp2.h>

#include "outrider/buf.h"
#include "outrider/trace.h"
#include "outrider/conn.h"
#include "outrider/http2.h"
#include "outrider/rbac.h"
#include "outrider/upstream.h"

#define OR_H2_MAX_STREAMS 100
#define OR_H2_CONN_WINDOW (1 << 20)   /* each session's connection receive window */
/* The response window of each upstream stream: what one stream may buffer
 * for a client that does not read. 64 KiB made a large response wait for
 * a WINDOW_UPDATE round trip every 32 KiB. */
#define OR_H2_UP_STREAM_WINDOW (256 * 1024)
#define OR_H2_TICK_MS 100             /* the timer while streams are open */
#define OR_H2_MAX_RESPONSE_HEAD (64 * 1024)

typedef struct or_h2_session or_h2_session;
typedef struct or_h2_up or_h2_up;
typedef struct or_h2_stream or_h2_stream;
typedef struct or_h2_h1 or_h2_h1;
typedef struct or_h2_pool or_h2_pool;
struct or_http_session; /* proxy/http/http_session.h */

/* What an abusive peer did; counted per kind (stats) and logged. */
typedef enum {
    OR_H2_ABUSE_NONE = 0,
    OR_H2_ABUSE_RAPID_RESET,
    OR_H2_ABUSE_CONTINUATION,
    OR_H2_ABUSE_HEADER_BOMB,
    OR_H2_ABUSE_SETTINGS,
    OR_H2_ABUSE_PING,
    OR_H2_ABUSE_EMPTY_FRAMES,
    OR_H2_ABUSE_CONTROL_FRAMES,
    OR_H2_ABUSE_HEADERS_TIMEOUT,
    OR_H2_ABUSE_FLOOD,               /* nghttp2's own flood detection */
    OR_H2_ABUSE_PROTOCOL,            /* a connection error nghttp2 found */
    OR_H2_ABUSE_KINDS,
} or_h2_abuse;

const char *or_h2_abuse_name(or_h2_abuse a);

/* The request side of a stream: HEAD (block being decoded) -> BODY (more
 * DATA may come) -> DONE (END_STREAM seen). */
typedef enum { OR_H2_RQ_HEAD, OR_H2_RQ_BODY, OR_H2_RQ_DONE } or_h2_rq;

/* The response side: NONE -> STARTED (final headers submitted downstream)
 * -> ENDED (the upstream, or the proxy, has given the whole response). */
typedef enum { OR_H2_RS_NONE, OR_H2_RS_STARTED, OR_H2_RS_ENDED } or_h2_rs;

/* The upstream side (or_h2_set_uq asserts the transitions):
 *   NONE -> WAITING (on `up`'s list until it can be submitted) -> OPEN
 *   (nghttp2 has the upstream stream; or the HTTP/1.1 leg holds an
 *   upstream) -> SENT (its HEADERS have left; HTTP/2) -> ENDED (over, or
 *   never to be sent). A stream sent again (a retry, the hop refused) goes
 *   back to NONE from any state but ENDED; the HTTP/1.1 leg's own retry
 *   goes from ENDED to OPEN. */
typedef enum {
    OR_H2_UQ_NONE,
    OR_H2_UQ_WAITING,
    OR_H2_UQ_OPEN,
    OR_H2_UQ_SENT,
    OR_H2_UQ_ENDED,
} or_h2_uq;

struct or_h2_stream {
    SLIST_ENTRY(or_h2_stream) spare_entry; /* the pool's `spares`, once freed */
    or_h2_session *hs;
    LIST_ENTRY(or_h2_stream) entry; /* the session's `streams` */
    int32_t id;                 /* downstream stream id */
    int32_t up_id;              /* upstream stream id; 0 before it is submitted */
    or_h2_uq uq;
    or_h2_up *up;               /* NULL: none (yet), or answered locally, or HTTP/1.1;
                                   holds a reference (h2_pool.c) */
    LIST_ENTRY(or_h2_stream) up_entry; /* `up`'s `streams`, while up_linked */
    bool up_linked;             /* on `up`'s list: WAITING, OPEN or SENT */
    bool retried;               /* sent again once on another connection */
    uint64_t body_up;           /* request body bytes handed to the upstream */
    or_h2_h1 *h1;               /* the HTTP/1.1 leg (h2_h1.c), owned; NULL for HTTP/2 */
    bool down_open;             /* nghttp2 still has the downstream stream */
    bool orig_h1;               /* arrived over the hop as HTTP/1.1 (inbound): the app
                                   gets HTTP/1.1, the log says HTTP/1.1 */
    bool no_hop;                /* front: the peer does not speak the hop, so the
                                   request goes over HTTP/1.1 instead (h2_front.c) */
    bool expects_100;           /* front: 100 Continue is due once it is submitted */
    bool dead;                  /* on the session's `dead` list (dead_entry) */
    SLIST_ENTRY(or_h2_stream) dead_entry;
    bool logged;
    bool local;                 /* answered by the proxy */
    bool too_large;             /* the header block passed the limit */
    or_h2_check refused;        /* the first check that failed */
    or_h2_rq rq;
    or_h2_rs rs;
    or_h2_request req;
    or_buf target;              /* the normalised :path, matched and forwarded */
    size_t path_len;            /* its path without the query */
    size_t decoded;             /* header bytes decoded for the current block */
    or_h2_fields req_trailers, res_head, res_trailers;
    or_buf req_body, res_body;  /* bytes received, not yet taken by the other side */
    size_t req_off, res_off;
    int status;                 /* :status sent downstream */
    int up_status;              /* :status of the upstream's current head */
    or_h2_check up_refused;     /* the first check the response failed */
    char grpc_status[12];       /* "" when none */
    or_trace ids;                /* x-request-id and trace context (trace.h) */
    const char *flags;
    struct timespec started_at;
    uint64_t started_ns, sent_ns, last_ms;
    int64_t upstream_us;
    int64_t deadline_ms;        /* loop time of the grpc-timeout, or -1 */
    uint64_t body_in, body_out;
    or_rbac_decision rbac;
    bool rbac_evaluated;
    or_snapshot *snap;          /* the policies that decided it */
};

/* An upstream connection: CONNECTING -> READY -> CLOSED. Whether it takes
 * new streams is separate: OPEN, or RETIRED (the pool drains it: worker
 * drain, an older TLS generation, idle) or GOAWAY (the peer's) -- both
 * final; it closes once its last stream has ended. */
typedef enum { OR_H2_UP_CONNECTING, OR_H2_UP_READY, OR_H2_UP_CLOSED } or_h2_up_state;
typedef enum { OR_H2_ADMIT_OPEN, OR_H2_ADMIT_RETIRED, OR_H2_ADMIT_GOAWAY } or_h2_up_admit;

struct or_h2_up {
    or_h2_pool *pool;
    LIST_ENTRY(or_h2_up) entry; /* the pool's `ups` */
    or_upstream *u;             /* NULL once closed */
    nghttp2_session *ng;
    or_h2_up_state state;
    or_h2_up_admit admit;
    LIST_HEAD(, or_h2_stream) streams; /* linked streams (waiting or open upstream),
                                   newest first; owned by their sessions */
    unsigned nstreams;
    unsigned refs;              /* streams whose `up` is this one */
    uint64_t idle_since_ms;     /* loop time nstreams became 0 */
    uint64_t heard_ms;          /* loop time bytes last arrived (or it became ready) */
    uint64_t ping_ms;           /* loop time the keepalive PING left; 0: none awaited */
    bool no_hop;                /* ready without the hop: no front streams, no
                                   keepalive PINGs (h2_pool.c) */
    char *peer_id;              /* the upstream's SPIFFE ID (outbound), copied */
    const char *cipher;         /* static string from the TLS library, or "none" */
};

/* The HTTP/2 upstream connections of one worker listener (h2_pool.c). */
#define OR_H2_POOL_MAX 8        /* connections per listener per worker */
struct or_h2_pool {
    or_worker_listener *l;
    LIST_HEAD(, or_h2_up) ups;  /* its connections, newest first; owned (freed by the
                                   pool once closed and unreferenced) */
    unsigned nups;              /* not CLOSED */
    SLIST_HEAD(, or_h2_session) flush; /* sessions to flush at the end of the event,
                                   newest first (flush_queued); not owned */
    bool running;               /* inside or_h2_pool_run */
    unsigned reads;             /* reads that fed the pool since its last run */
    bool draining;              /* the worker drains: no new connections */
    uint64_t no_hop_until_ms;   /* loop time until which the peer is taken not to
                                   speak the hop (h2_front.c) */
    or_buf out;                 /* frames of one send pass, gathered into one write
                                   (or_h2_gather): fewer TLS records and syscalls */
    uv_timer_t timer;           /* closes idle connections */
    uv_check_t check;           /* runs the pool once per loop turn (or_h2_pool_defer) */
    bool timer_init;
    SLIST_HEAD(, or_h2_stream) spares; /* freed streams of the listener's sessions, their
                                   buffers emptied but kept (h2_session.c); owned */
    unsigned nspares;
};

struct or_h2_session {
    or_conn *c;
    nghttp2_session *ng;
    or_h2_pool *pool;           /* the listener's */
    LIST_HEAD(, or_h2_stream) streams; /* all its streams, newest first; owned */
    unsigned nstreams;
    SLIST_ENTRY(or_h2_session) flush_entry; /* the pool's `flush`, while flush_queued */
    bool flush_queued;
    struct or_http_session *front; /* the HTTP/1.1 session whose requests this session
                                   carries as HTTP/2 streams (h2_front.c); it has no
                                   nghttp2 session then. NULL for an HTTP/2 connection. */
    bool hop;                   /* the peer sidecar negotiated the hop (OR_ALPN_HOP) */
    bool up_h1;                 /* outbound, upstream_protocol auto: the peer sidecar
                                   chose HTTP/1.1, so new streams go as HTTP/1.1 */
    SLIST_HEAD(, or_h2_stream) dead; /* streams both sides have let go of, to free
                                   (also on `streams`) */
    bool ended;                 /* the phase has ended (conn.h) */
    bool closing;               /* GOAWAY sent: the connection ends once it is out */
    bool in_callback;           /* inside nghttp2_session_mem_recv/mem_send */
    or_h2_abuse abuse;          /* set by a callback: the connection ends with it */
    uint64_t block_started_ms;  /* a header block is open since; 0 none */
    unsigned continuations;     /* CONTINUATION frames of the open block */
    uint64_t rate_window_ms;    /* start of the current one-second window */
    unsigned rate[8];           /* frames of each kind in it (h2_session.c) */
    uint64_t last_ms;           /* last frame received or stream finished */
};

static inline or_h2_session *or_h2_session_of(const or_conn *c) { return c->phase_state; }

/* A growable nghttp2 name/value array; the names and values are borrowed.
 * It starts zeroed, in the storage it carries (a header block of up to
 * OR_H2_NVS_FIRST fields needs no allocation), so it is not to be copied. */
#define OR_H2_NVS_FIRST 24
typedef struct {
    nghttp2_nv *v;
    size_t n, cap;
    nghttp2_nv first[OR_H2_NVS_FIRST]; /* private: v's storage until it outgrows it */
} or_h2_nvs;

/* h2_stream.c */
int or_h2_nvs_push(or_h2_nvs *a, const char *name, size_t name_len, const char *value,
                   size_t value_len);
int or_h2_nvs_push_str(or_h2_nvs *a, const char *name, const char *value);
int or_h2_nvs_fields(or_h2_nvs *a, const or_h2_fields *f);
void or_h2_nvs_free(or_h2_nvs *a);
/* The request's header block is complete: check, decide, forward. */
void or_h2_request_ready(or_h2_stream *st);
/* The proxy answers `st` itself (gRPC: trailers-only with grpc_code), or
 * resets it when a response has started. */
void or_h2_local_reply(or_h2_stream *st, int status, const char *flags, const char *body,
                       int grpc_code, const char *grpc_message);
void or_h2_stream_reset(or_h2_stream *st, uint32_t error_code, const char *flags);
/* Writes the stream's access-log line, once. */
void or_h2_stream_log(or_h2_stream *st);

/* h2_limits.c */
#define OR_H2_MAX_CONTINUATIONS 8     /* CONTINUATION frames per header block */
/* A frame begins: counts it against the limits; non-zero (a callback
 * failure, hs->abuse set) when it breaks one. */
int or_h2_limit_frame(or_h2_session *hs, const nghttp2_frame_hd *hd);
/* A DATA frame left: WINDOW_UPDATEs may answer it. */
void or_h2_limit_data_sent(or_h2_session *hs);
/* From a callback: the peer broke a limit; returns the callback failure. */
int or_h2_abuse_raise(or_h2_session *hs, or_h2_abuse kind);
/* The connection ends for `kind`: counted in /stats and logged. */
void or_h2_abuse_count(or_h2_session *hs, or_h2_abuse kind);

/* h2_session.c */
or_h2_stream *or_h2_stream_new(or_h2_session *hs, int32_t id);
void or_h2_stream_free(or_h2_stream *st);
/* Spare streams (h2_pool.c): a freed stream keeps its buffers of up to
 * OR_H2_SPARE_KEEP bytes for the next stream of the listener's sessions, so
 * that a warm proxy allocates little per request. At most OR_H2_SPARES wait
 * per pool; they are freed with it. */
#define OR_H2_SPARES 64
#define OR_H2_SPARE_KEEP 4096
bool or_h2_spare_room(const or_h2_pool *p);
void or_h2_spare_keep(or_h2_pool *p, or_h2_stream *st);
or_h2_stream *or_h2_spare_take(or_h2_pool *p); /* NULL: none */
void or_h2_stream_free_spare(or_h2_stream *st); /* frees a spare for good */
/* Called where a stream's down_open turns false or its upstream side
 * leaves OPEN/SENT: once both have, it is freed at the session's next
 * send, outside the callbacks. */
void or_h2_stream_let_go(or_h2_stream *st);
void or_h2_set_uq(or_h2_stream *st, or_h2_uq to);
/* OPEN or SENT: the upstream has the stream. */
static inline bool or_h2_uq_open(const or_h2_stream *st)
{
    return st->uq == OR_H2_UQ_OPEN || st->uq == OR_H2_UQ_SENT;
}
/* The data provider of every response sent downstream. */
ssize_t or_h2_response_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user);
/* Queues `hs` and runs its pool: everything both sides have is sent. */
void or_h2_flush(or_h2_session *hs);
/* Sends what the session has downstream, frees finished streams, ends the
 * connection when nghttp2 is done; true when bytes left. */
bool or_h2_session_send(or_h2_session *hs);
/* The response head, body and end came from the upstream (or were made
 * here): submits what is new downstream. */
void or_h2_response_head(or_h2_stream *st);
void or_h2_response_progress(or_h2_stream *st);
/* The upstream side of `st` failed before or during its response. */
void or_h2_upstream_failed(or_h2_stream *st, const char *flags, uint32_t error_code);
/* The frame moves its stream on (restarts the stream's idle clock): HEADERS,
 * DATA with bytes or END_STREAM, WINDOW_UPDATE; not PRIORITY. */
bool or_h2_frame_is_progress(const nghttp2_frame *frame);
/* Takes `n` request bytes off the downstream window of `st`. */
void or_h2_consumed_request(or_h2_stream *st, size_t n);

/* h2_pool.c */
or_h2_pool *or_h2_pool_of(or_worker_listener *l);
/* Queues `hs` to be flushed at the end of the current event. */
void or_h2_pool_mark(or_h2_session *hs);
void or_h2_pool_unmark(or_h2_session *hs);
/* Sends on every connection and flushes the queued sessions until neither
 * has more; frees closed connections nothing refers to. */
void or_h2_pool_run(or_h2_pool *p);
/* A connection with room for one more stream, other than `avoid` (for a
 * stream on the hop, not one known to lack it); NULL when
 * a new one should be opened. At the cap, the least loaded (nghttp2 queues
 * the stream until the peer allows it). */
or_h2_up *or_h2_pool_pick(or_h2_pool *p, const or_h2_up *avoid, bool hop);
bool or_h2_pool_full(const or_h2_pool *p);
/* Sends what `ng` has for `s`, while its queue is at most the high
 * watermark, gathering the frames into writes of up to 64 KiB instead of
 * one per frame. Returns the bytes sent, or a negative nghttp2 error. */
ssize_t or_h2_gather(or_h2_pool *p, nghttp2_session *ng, or_stream *s);
/* Runs the pool once at the end of this loop turn, after every I/O event
 * of the turn: what the events gave each connection leaves together, in
 * as few TLS records and writes as it fits in. */
void or_h2_pool_defer(or_h2_pool *p);
/* Runs the pool on the next loop iteration (from where a run is unsafe). */
void or_h2_pool_soon(or_h2_pool *p);
void or_h2_pool_add(or_h2_pool *p, or_h2_up *up);
/* Links `st` on `up` (taking a reference) / unlinks it (keeping it). */
void or_h2_up_link(or_h2_up *up, or_h2_stream *st);
void or_h2_up_unlink(or_h2_stream *st);
/* The stream is freed: drops its reference. */
void or_h2_up_release(or_h2_stream *st);

/* h2_upstream.c */
/* Sends `st` upstream (opening a connection when none can take it). */
void or_h2_forward(or_h2_stream *st);
/* Sends what nghttp2 has for `up`; true when bytes left. */
bool or_h2_up_send(or_h2_up *up);
or_h2_up *or_h2_up_open(or_h2_pool *p);
/* No new streams on `up`; it closes with GOAWAY once its streams are done. */
void or_h2_up_retire(or_h2_up *up);
/* The session ends: its streams on shared upstreams are reset and unlinked. */
void or_h2_up_forget_session(or_h2_session *hs);
/* Request bytes or the end arrived for `st`: wakes its upstream stream. */
void or_h2_up_request_progress(or_h2_stream *st);
/* Takes `n` response bytes off the upstream window of `st`. */
void or_h2_up_consumed(or_h2_stream *st, size_t n);
/* The downstream stream went away: resets the upstream one. */
void or_h2_up_cancel(or_h2_stream *st);
/* `up` is gone (its peer closed it, or sent what cannot be read, or
 * stopped answering): streams the peer had not started go to another
 * connection, the others fail with `flags`. */
void or_h2_up_lost(or_h2_up *up, const char *flags);
/* Closes `up` at once (worker exit); its streams are already gone. */
void or_h2_up_close(or_h2_up *up);
void or_h2_up_free(or_h2_up *up);
/* The fields the proxy adds to a request it forwards, in either protocol:
 * x-request-id and traceparent when it made them, and on inbound listeners
 * x-forwarded-client-cert for an mTLS peer. Appended to `out`; 0 or -1. */
int or_h2_added_fields(const or_h2_stream *st, or_h2_fields *out);

/* h2_front.c: HTTP/1.1 requests as HTTP/2 streams: an outbound listener's
 * on the hop, an inbound listener's to an h2c app. */
/* Writes what the stream of a front session has for its client. */
bool or_h2_front_send(or_h2_session *hs);
/* A front session whose streams ride the hop to a peer sidecar (outbound),
 * not to an h2c app (inbound, upstream_protocol http2). */
bool or_h2_front_hop(const or_h2_session *hs);
/* `up` did not negotiate the hop: its hop streams go over HTTP/1.1. */
void or_h2_front_refused(or_h2_up *up);

/* h2_h1.c: the HTTP/1.1 leg of a stream, in place of an HTTP/2 upstream
 * stream (upstream_protocol, docs/http2.md). */
/* Sends `st` over HTTP/1.1: over `u` when given (a ready upstream whose
 * peer chose HTTP/1.1 by ALPN, handed over here), else a pooled upstream
 * or a new one. */
void or_h2_h1_forward(or_h2_stream *st, or_upstream *u);
void or_h2_h1_request_progress(or_h2_stream *st);
void or_h2_h1_consumed(or_h2_stream *st, size_t n);
/* The stream does not want its response any more: the connection closes. */
void or_h2_h1_cancel(or_h2_stream *st);
/* The session ends: the connection closes, nothing else is touched. */
void or_h2_h1_close(or_h2_stream *st);
void or_h2_h1_free(or_h2_stream *st);
/* For the access log: the upstream's SPIFFE ID and cipher (NULL: none). */
const char *or_h2_h1_peer_id(const or_h2_stream *st);
const char *or_h2_h1_cipher(const or_h2_stream *st);

#endif
