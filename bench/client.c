/*
 * The load-generating worker: connections, requests, answers, schedule.
 *
 * Each connection is a small state machine over an or_stream:
 *   DOWN -> CONNECTING (TCP, then the TLS handshake) -> IDLE <-> BUSY
 * and CLOSING while its stream closes. One timer per connection serves as
 * the request/connect timeout, and as the retry delay while DOWN. Answers
 * are framed by or_http_framer (http_head.h), so Content-Length, chunked
 * and close-delimited bodies all work; bodies are only counted.
 *
 * Closed loop: a connection that becomes IDLE sends the next request at
 * once. Fixed rate: request i is due at t0 + i * interval; a connection that
 * becomes IDLE takes the oldest due request, and a 1 ms tick hands due
 * requests to IDLE connections. A request that waited for a connection is
 * timed from its due time (so a stalled server is charged for the queue it
 * caused); one that found a connection waiting is timed from the moment the
 * tick sent it, so the tick's millisecond granularity is not charged.
 *
 * Handshake mode closes after each answer and reconnects at once; idle mode
 * opens the connections (one first, then IDLE_WINDOW handshakes at a time,
 * resuming the first one's session, since it measures memory rather than
 * handshake cost), holds them for --hold once all are settled, and never
 * retries. Any failure closes the connection; it is retried after
 * RETRY_MS (so a dead server does not make the loop spin).
 */
#include "outrider/bench_client.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "outrider/http_head.h"
#include "outrider/stream.h"

#define RETRY_MS 10
#define TICK_MS 1
#define IDLE_WINDOW 64  /* idle mode: handshakes in progress at once */

typedef enum { C_DOWN, C_CONNECTING, C_IDLE, C_BUSY, C_CLOSING } conn_state;

typedef struct bench_conn {
    or_stream s;
    or_bench_worker *w;
    uv_timer_t timer;
    or_http_framer framer;
    conn_state state;
    uint64_t connect_ns;    /* when the current connection attempt began */
    uint64_t req_ns;        /* what the current request's latency counts from */
    uint64_t idle_ns;       /* when the connection last became IDLE */
    bool parked;            /* listed in worker->idle */
    bool retry;             /* DOWN: wait RETRY_MS before reconnecting */
} bench_conn;

struct or_bench_worker {
    const or_bench_opts *o;
    unsigned index;
    uv_loop_t loop;
    bool loop_ready;
    or_stream_loop sl;
    bool have_tls;
    or_tls_worker tls;
    mbedtls_ssl_session session;
    bool have_session;

    bench_conn *conns;
    unsigned nconns;
    bench_conn **idle;      /* fixed rate: IDLE connections waiting for work */
    unsigned nidle;
    char *request;          /* the request bytes, built once */
    size_t request_len;

    bool running;
    uint64_t quota;         /* requests for this worker; 0 = unlimited */
    uint64_t issued;
    double interval_ns;     /* fixed rate: between due times */
    uint64_t sched_next;    /* fixed rate: index of the next request to send */
    uint64_t t0, t_end;
    unsigned settled_conns; /* idle mode: open or failed for good */
    unsigned started_conns; /* idle mode: connections begun */
    uv_timer_t stop_timer, tick_timer;

    or_bench_counts counts;
    char cipher[64];        /* the suite of the last handshake */
    or_bench_hist *hist;
    atomic_uint_fast64_t prog_requests, prog_errors;
    atomic_bool settled;
};

static void conn_start(bench_conn *c);
static void conn_dispatch(bench_conn *c);
static void worker_stop(or_bench_worker *w);
static void on_conn_timer(uv_timer_t *t);

static bool idle_mode(const or_bench_worker *w)
{
    return w->o->mode == OR_BENCH_IDLE;
}

static void publish_progress(or_bench_worker *w)
{
    atomic_store_explicit(&w->prog_requests, w->counts.requests, memory_order_relaxed);
    atomic_store_explicit(&w->prog_errors, w->counts.errors + w->counts.timeouts,
                          memory_order_relaxed);
}

/* -n: the run ends once every request of the quota has an outcome. */
static void check_quota(or_bench_worker *w)
{
    if (!w->quota || !w->running)
        return;
    const or_bench_counts *k = &w->counts;
    if (k->requests + k->errors + k->timeouts >= w->quota)
        worker_stop(w);
}

/* ---- closing and failures ---- */

static void on_stream_closed(or_stream *s)
{
    bench_conn *c = s->owner;
    or_bench_worker *w = c->w;
    c->state = C_DOWN;
    if (!w->running || idle_mode(w))
        return;
    if (c->retry)
        uv_timer_start(&c->timer, on_conn_timer, RETRY_MS, 0);
    else
        conn_start(c);
}

static void conn_close(bench_conn *c, bool retry)
{
    uv_timer_stop(&c->timer);
    if (c->state == C_DOWN && retry && c->w->running && !idle_mode(c->w))
        uv_timer_start(&c->timer, on_conn_timer, RETRY_MS, 0);
    if (c->state == C_DOWN || c->state == C_CLOSING)
        return;
    c->retry = retry;
    c->state = C_CLOSING;
    or_stream_close(&c->s);
}

static void on_hold_over(uv_timer_t *t)
{
    worker_stop(t->data);
}

/* Idle mode: one more connection is open or has failed for good. */
static void settle_one(or_bench_worker *w)
{
    w->settled_conns++;
    while (w->running && w->started_conns < w->nconns &&
           w->started_conns - w->settled_conns < IDLE_WINDOW)
        conn_start(&w->conns[w->started_conns++]);
    if (w->settled_conns < w->nconns)
        return;
    w->t_end = uv_hrtime();
    atomic_store(&w->settled, true);
    uv_timer_start(&w->stop_timer, on_hold_over, w->o->hold_ms, 0);
}

typedef enum { E_CONNECT, E_TLS, E_HTTP, E_IO, E_TIMEOUT } err_kind;

static void conn_fail(bench_conn *c, err_kind kind)
{
    or_bench_worker *w = c->w;
    if (!w->running)
        return;
    bool settling = idle_mode(w) && c->state == C_CONNECTING;
    uint64_t *slot[] = {&w->counts.connect_errors, &w->counts.tls_errors,
                        &w->counts.http_errors, &w->counts.io_errors, &w->counts.timeouts};
    (*slot[kind])++;
    if (kind != E_TIMEOUT)
        w->counts.errors++;
    publish_progress(w);
    conn_close(c, kind != E_TIMEOUT);
    if (settling)
        settle_one(w);
    check_quota(w);
}

static void on_conn_timer(uv_timer_t *t)
{
    bench_conn *c = t->data;
    if (c->state == C_DOWN) {
        if (c->w->running)
            conn_start(c);
        return;
    }
    if (c->state == C_CONNECTING || c->state == C_BUSY)
        conn_fail(c, E_TIMEOUT);
}

/* ---- requests and answers ---- */

static void send_request(bench_conn *c, uint64_t from_ns)
{
    or_bench_worker *w = c->w;
    or_http_framer_init(&c->framer);
    c->req_ns = from_ns;
    c->state = C_BUSY;
    w->issued++;
    if (or_stream_write(&c->s, w->request, w->request_len) != 0) {
        conn_fail(c, E_IO);
        return;
    }
    w->counts.bytes_sent += w->request_len;
    uv_timer_start(&c->timer, on_conn_timer, w->o->timeout_ms, 0);
}

static void request_done(bench_conn *c)
{
    or_bench_worker *w = c->w;
    uv_timer_stop(&c->timer);
    unsigned status = or_http_framer_status(&c->framer);
    bool keep = or_http_framer_keep_alive(&c->framer) && w->o->mode != OR_BENCH_HANDSHAKE;
    c->state = C_IDLE;
    if (status >= 200 && status < 300) {
        or_bench_hist_record(w->hist, uv_hrtime() - c->req_ns);
        w->counts.requests++;
    } else {
        w->counts.http_errors++;
        w->counts.errors++;
    }
    publish_progress(w);
    check_quota(w);
    if (!w->running)
        return;
    if (keep)
        conn_dispatch(c);
    else
        conn_close(c, false);
}

static void feed_parser(bench_conn *c, const char *data, size_t len)
{
    int r = or_http_framer_feed(&c->framer, data, len);
    if (r > 0)
        request_done(c);
    else if (r < 0)
        conn_fail(c, E_HTTP); /* a bad answer, or bytes after it */
}

static void on_read(or_stream *s, ssize_t nread, const char *data)
{
    bench_conn *c = s->owner;
    or_bench_worker *w = c->w;
    if (c->state == C_CLOSING || c->state == C_DOWN)
        return;
    if (nread > 0) {
        w->counts.bytes_received += (uint64_t)nread;
        if (c->state != C_BUSY) {
            conn_fail(c, E_HTTP); /* bytes nobody asked for */
            return;
        }
        feed_parser(c, data, (size_t)nread);
        return;
    }
    if (c->state == C_BUSY && nread == UV_EOF) {
        feed_parser(c, NULL, 0); /* a close-delimited body ends here */
        if (c->state == C_BUSY)
            conn_fail(c, E_IO);
        else if (c->state == C_IDLE)
            conn_close(c, false);
        return;
    }
    if (c->state == C_IDLE && nread == UV_EOF && !idle_mode(w)) {
        conn_close(c, false); /* the server ended a keep-alive connection */
        return;
    }
    conn_fail(c, c->state == C_CONNECTING ? E_TLS : E_IO);
}

/* ---- connection set-up ---- */

static void conn_ready(bench_conn *c)
{
    or_bench_worker *w = c->w;
    uv_timer_stop(&c->timer);
    w->counts.connections++;
    c->state = C_IDLE;
    if (idle_mode(w)) {
        or_bench_hist_record(w->hist, uv_hrtime() - c->connect_ns);
        w->counts.requests++;
        publish_progress(w);
        settle_one(w);
        return;
    }
    if (or_stream_read_start(&c->s) != 0) {
        conn_fail(c, E_IO);
        return;
    }
    conn_dispatch(c);
}

static void on_handshake(or_stream *s, int status)
{
    bench_conn *c = s->owner;
    or_bench_worker *w = c->w;
    if (status != 0) {
        conn_fail(c, E_TLS);
        return;
    }
    if (s->peer.verified_in_handshake)
        w->counts.handshakes_full++;
    else
        w->counts.handshakes_resumed++;
    snprintf(w->cipher, sizeof w->cipher, "%s", or_stream_cipher(s));
    if ((w->o->resume || idle_mode(w)) && !w->have_session)
        w->have_session = mbedtls_ssl_get_session(s->ssl, &w->session) == 0;
    conn_ready(c);
}

static void on_connect(or_stream *s, int status)
{
    bench_conn *c = s->owner;
    or_bench_worker *w = c->w;
    if (status != 0) {
        conn_fail(c, E_CONNECT);
        return;
    }
    if (!s->ssl) {
        conn_ready(c);
        return;
    }
    s->peer.trust_domain = w->tls.creds->trust_domain;
    s->peer.expected_id = w->o->peer_id;
    if (w->have_session)
        (void)mbedtls_ssl_set_session(s->ssl, &w->session);
    if (or_stream_start_handshake(s) != 0 && c->state == C_CONNECTING)
        conn_fail(c, E_TLS);
}

static void on_write_error(or_stream *s, int status)
{
    (void)status;
    bench_conn *c = s->owner;
    conn_fail(c, c->state == C_CONNECTING ? E_CONNECT : E_IO);
}

static void conn_start(bench_conn *c)
{
    or_bench_worker *w = c->w;
    const mbedtls_ssl_config *conf = w->have_tls ? &w->tls.conf[OR_TLS_CLIENT] : NULL;
    c->retry = false;
    c->connect_ns = uv_hrtime();
    if (or_stream_init(&c->s, &w->sl, c, conf) != 0) {
        c->state = C_DOWN;
        conn_fail(c, E_CONNECT);
        return;
    }
    c->s.on_read = on_read;
    c->s.on_connect = on_connect;
    c->s.on_handshake = on_handshake;
    c->s.on_write_error = on_write_error;
    c->s.on_close = on_stream_closed;
    c->state = C_CONNECTING;
    uv_timer_start(&c->timer, on_conn_timer, w->o->timeout_ms, 0);
    if (or_stream_connect(&c->s, (const struct sockaddr *)&w->o->addr) != 0)
        conn_fail(c, E_CONNECT);
}

/* ---- scheduling ---- */

static bool quota_left(const or_bench_worker *w)
{
    return !w->quota || w->issued < w->quota;
}

/* Fixed rate: how many requests are due by `now` (capped by the quota). */
static uint64_t due_by(const or_bench_worker *w, uint64_t now)
{
    uint64_t due = (uint64_t)((double)(now - w->t0) / w->interval_ns) + 1;
    return w->quota && due > w->quota ? w->quota : due;
}

/* c is IDLE: give it work now, or park it. */
static void conn_dispatch(bench_conn *c)
{
    or_bench_worker *w = c->w;
    uint64_t now = uv_hrtime();
    c->idle_ns = now;
    if (!w->running || !quota_left(w))
        return;
    if (w->o->mode == OR_BENCH_HANDSHAKE) {
        send_request(c, c->connect_ns);
        return;
    }
    if (w->interval_ns <= 0) {
        send_request(c, now);
        return;
    }
    if (w->sched_next < due_by(w, now)) {
        /* It waited for a connection: timed from its due time. */
        send_request(c, w->t0 + (uint64_t)((double)w->sched_next++ * w->interval_ns));
        return;
    }
    if (!c->parked) {
        c->parked = true;
        w->idle[w->nidle++] = c;
    }
}

static void on_tick(uv_timer_t *t)
{
    or_bench_worker *w = t->data;
    uint64_t now = uv_hrtime();
    uint64_t due = due_by(w, now);
    while (w->running && w->sched_next < due && w->nidle > 0) {
        bench_conn *c = w->idle[--w->nidle];
        c->parked = false;
        if (c->state != C_IDLE)
            continue;
        uint64_t at = w->t0 + (uint64_t)((double)w->sched_next++ * w->interval_ns);
        /* A connection was free when it fell due: the tick's lateness is ours. */
        send_request(c, c->idle_ns <= at ? now : at);
    }
}

static void on_duration_over(uv_timer_t *t)
{
    worker_stop(t->data);
}

static void worker_stop(or_bench_worker *w)
{
    if (!w->running)
        return;
    w->running = false;
    if (!idle_mode(w))
        w->t_end = uv_hrtime();
    if (w->interval_ns > 0) {
        uint64_t due = due_by(w, w->t_end);
        w->counts.unsent = due > w->sched_next ? due - w->sched_next : 0;
    }
    uv_close((uv_handle_t *)&w->stop_timer, NULL);
    uv_close((uv_handle_t *)&w->tick_timer, NULL);
    for (unsigned i = 0; i < w->nconns; i++) {
        bench_conn *c = &w->conns[i];
        if (c->state != C_DOWN && c->state != C_CLOSING) {
            c->state = C_CLOSING;
            or_stream_close(&c->s);
        }
        uv_close((uv_handle_t *)&c->timer, NULL);
    }
    publish_progress(w);
    atomic_store(&w->settled, true);
}

int or_bench_worker_run(or_bench_worker *w)
{
    w->running = true;
    w->t0 = uv_hrtime();
    if (w->o->duration_ms && !idle_mode(w))
        uv_timer_start(&w->stop_timer, on_duration_over, w->o->duration_ms, 0);
    if (w->interval_ns > 0)
        uv_timer_start(&w->tick_timer, on_tick, TICK_MS, TICK_MS);
    /* Idle mode opens one connection (whose session the others resume),
     * then keeps IDLE_WINDOW handshakes going until all are open. */
    w->started_conns = idle_mode(w) ? 1 : w->nconns;
    for (unsigned i = 0; i < w->started_conns; i++)
        conn_start(&w->conns[i]);
    int r = uv_run(&w->loop, UV_RUN_DEFAULT);
    or_stream_loop_close(&w->sl);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    return r < 0 ? r : 0;
}

/* ---- construction ---- */

static char *build_request(const or_bench_opts *o, size_t *len)
{
    char head[1600];
    int n;
    if (o->req_size)
        n = snprintf(head, sizeof head,
                     "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: outrider-bench\r\n"
                     "Content-Type: application/octet-stream\r\nContent-Length: %llu\r\n\r\n",
                     o->path, o->host, (unsigned long long)o->req_size);
    else
        n = snprintf(head, sizeof head,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: outrider-bench\r\n\r\n",
                     o->path, o->host);
    if (n < 0 || (size_t)n >= sizeof head)
        return NULL;
    char *req = malloc((size_t)n + o->req_size);
    if (!req)
        return NULL;
    memcpy(req, head, (size_t)n);
    memset(req + n, 'x', o->req_size);
    *len = (size_t)n + o->req_size;
    return req;
}

static unsigned share(uint64_t total, unsigned parts, unsigned index)
{
    return (unsigned)(total / parts + (index < total % parts ? 1 : 0));
}

static int init_tls(or_bench_worker *w, or_tls_creds *creds, or_tls_tickets *tickets,
                    char *err, size_t len)
{
    if (or_tls_worker_init(&w->tls, creds, tickets, err, len) != 0) {
        or_tls_worker_free(&w->tls);
        return -1;
    }
    w->have_tls = true;
    mbedtls_ssl_session_init(&w->session);
    /* Full handshakes must not be shortened by a ticket. */
    if (w->o->mode == OR_BENCH_HANDSHAKE && !w->o->resume)
        mbedtls_ssl_conf_session_tickets(&w->tls.conf[OR_TLS_CLIENT], MBEDTLS_SSL_SESSION_TICKETS_DISABLED);
    return 0;
}

static int init_loop(or_bench_worker *w)
{
    if (uv_loop_init(&w->loop) != 0)
        return -1;
    if (or_stream_loop_init(&w->sl, &w->loop) != 0) {
        uv_loop_close(&w->loop);
        return -1;
    }
    uv_timer_init(&w->loop, &w->stop_timer);
    uv_timer_init(&w->loop, &w->tick_timer);
    w->stop_timer.data = w->tick_timer.data = w;
    for (unsigned i = 0; i < w->nconns; i++) {
        w->conns[i].w = w;
        uv_timer_init(&w->loop, &w->conns[i].timer);
        w->conns[i].timer.data = &w->conns[i];
    }
    w->loop_ready = true;
    return 0;
}

or_bench_worker *or_bench_worker_new(const or_bench_opts *o, unsigned index,
                                     or_tls_creds *creds, or_tls_tickets *tickets,
                                     char *err, size_t len)
{
    or_bench_worker *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, len, "out of memory");
        return NULL;
    }
    w->o = o;
    w->index = index;
    w->nconns = share(o->connections, o->threads, index);
    w->quota = o->requests ? share(o->requests, o->threads, index) : 0;
    if (o->rate > 0)
        w->interval_ns = 1e9 * o->threads / o->rate;
    w->conns = calloc(w->nconns, sizeof *w->conns);
    w->idle = calloc(w->nconns, sizeof *w->idle);
    w->hist = or_bench_hist_new();
    w->request = build_request(o, &w->request_len);
    if (!w->conns || !w->idle || !w->hist || !w->request) {
        snprintf(err, len, "out of memory");
        or_bench_worker_free(w);
        return NULL;
    }
    if (creds && init_tls(w, creds, tickets, err, len) != 0) {
        or_bench_worker_free(w);
        return NULL;
    }
    if (init_loop(w) != 0) {
        snprintf(err, len, "cannot start an event loop");
        if (w->have_tls) {
            or_tls_worker_free(&w->tls);
            w->have_tls = false;
        }
        or_bench_worker_free(w);
        return NULL;
    }
    return w;
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void or_bench_worker_free(or_bench_worker *w)
{
    if (!w)
        return;
    if (w->loop_ready && uv_loop_close(&w->loop) != 0) {
        /* Handles still open (the run never started): close and drain them. */
        uv_walk(&w->loop, close_any, NULL);
        uv_run(&w->loop, UV_RUN_DEFAULT);
        uv_loop_close(&w->loop);
    }
    if (w->have_tls) {
        if (w->have_session)
            mbedtls_ssl_session_free(&w->session);
        or_tls_worker_free(&w->tls);
    }
    free(w->conns);
    free(w->idle);
    free(w->request);
    or_bench_hist_free(w->hist);
    free(w);
}

void or_bench_worker_progress(const or_bench_worker *w, uint64_t *requests, uint64_t *errors)
{
    *requests = atomic_load_explicit(&w->prog_requests, memory_order_relaxed);
    *errors = atomic_load_explicit(&w->prog_errors, memory_order_relaxed);
}

bool or_bench_worker_settled(const or_bench_worker *w)
{
    return atomic_load(&w->settled);
}

const or_bench_counts *or_bench_worker_counts(const or_bench_worker *w)
{
    return &w->counts;
}

const char *or_bench_worker_cipher(const or_bench_worker *w)
{
    return w->cipher;
}

const or_bench_hist *or_bench_worker_hist(const or_bench_worker *w)
{
    return w->hist;
}

double or_bench_worker_elapsed(const or_bench_worker *w)
{
    return w->t_end > w->t0 ? (double)(w->t_end - w->t0) / 1e9 : 0.0;
}
