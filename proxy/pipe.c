/*
 * TCP proxying between a downstream and an upstream stream.
 *
 * A connection moves through phases: an inbound listener first completes the
 * mTLS handshake with the peer (DOWN_HANDSHAKE), then every connection
 * connects its upstream (CONNECTING; names are resolved per connection), an
 * outbound listener then runs the client handshake and checks the server's
 * SPIFFE ID (UP_HANDSHAKE), and finally bytes flow both ways (PIPING). One
 * timer per connection enforces the deadline of the current phase; while
 * piping it enforces the idle timeout lazily (activity only updates a time
 * stamp, the timer re-arms itself for the remainder when it fires early).
 *
 * Backpressure: bytes read on one side are written to the other at once;
 * when the other side's queue passes OR_PIPE_HIGH_WATERMARK the reading side
 * pauses, and resumes when the queue falls to OR_PIPE_LOW_WATERMARK.
 * Half-close: EOF on one side becomes a shutdown of the other; the
 * connection ends when both sides have seen EOF and sent all their output.
 *
 * A connection owns up to four pending callbacks (two streams, the timer and
 * a name lookup); it is freed when the last of them has come back.
 */
#include "outrider/pipe.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/log.h"

typedef enum { DOWN_HANDSHAKE, CONNECTING, UP_HANDSHAKE, PIPING } or_conn_phase;

struct or_conn {
    or_worker *worker;
    or_worker_listener *listener;
    or_conn *prev, *next;
    or_stream down, up;
    uv_timer_t timer;
    uv_getaddrinfo_t resolve;
    or_conn_phase phase;
    bool closing, up_initialised, resolving;
    int callbacks_pending;
    uint64_t last_activity;
    char peer[64];
};

static const or_listener_config *conf_of(const or_conn *c) { return c->listener->cfg; }
static const or_config *config_of(const or_conn *c) { return c->worker->rt->cfg; }

static void conn_close(or_conn *c);

/* ---- life cycle ---- */

static void link_conn(or_conn *c)
{
    or_worker *w = c->worker;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
}

static void unlink_conn(or_conn *c)
{
    or_worker *w = c->worker;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
}

static void release(or_conn *c)
{
    if (--c->callbacks_pending > 0)
        return;
    or_worker *w = c->worker;
    atomic_fetch_sub(&w->rt->connections, 1);
    free(c);
    or_worker_conn_released(w);
}

static void on_stream_closed(or_stream *s) { release(s->owner); }
static void on_timer_closed(uv_handle_t *h) { release(h->data); }

static void conn_close(or_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    unlink_conn(c);
    or_stream_close(&c->down);
    if (c->up_initialised)
        or_stream_close(&c->up);
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->resolve);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void or_pipe_abort_all(or_worker *w)
{
    while (w->conns)
        conn_close(w->conns);
}

static void arm_timer(or_conn *c, uint64_t ms);

static void touch(or_conn *c) { c->last_activity = uv_now(&c->worker->loop); }

/* ---- logging of failures ---- */

static void log_handshake_failure(or_conn *c, or_stream *s, const char *reason)
{
    const char *peer = c->peer;
    char upstream[300];
    if (s == &c->up) {
        snprintf(upstream, sizeof upstream, "%s:%u", conf_of(c)->upstream.host,
                 conf_of(c)->upstream.port);
        peer = upstream;
    }
    or_log_warn("handshake failed listener=%s peer=%s reason=\"%s\"", conf_of(c)->name, peer,
                reason);
}

static void upstream_failed(or_conn *c, const char *reason)
{
    or_log_warn("upstream failed listener=%s upstream=%s:%u reason=\"%s\"", conf_of(c)->name,
                conf_of(c)->upstream.host, conf_of(c)->upstream.port, reason);
    conn_close(c);
}

/* ---- piping ---- */

static or_stream *other_side(or_conn *c, or_stream *s) { return s == &c->down ? &c->up : &c->down; }

static void maybe_finish(or_conn *c)
{
    if (c->down.eof_delivered && c->up.eof_delivered && or_stream_output_done(&c->down) &&
        or_stream_output_done(&c->up))
        conn_close(c);
}

static void on_pipe_read(or_stream *s, ssize_t nread, const char *data)
{
    or_conn *c = s->owner;
    or_stream *out = other_side(c, s);
    if (nread > 0) {
        touch(c);
        if (or_stream_write(out, data, (size_t)nread) != 0) {
            conn_close(c);
            return;
        }
        if (or_stream_queued(out) > OR_PIPE_HIGH_WATERMARK)
            or_stream_read_stop(s);
        return;
    }
    if (nread == UV_EOF) {
        touch(c);
        or_stream_shutdown(out);
        maybe_finish(c);
        return;
    }
    or_log_debug("connection ended listener=%s peer=%s reason=\"%s\"", conf_of(c)->name, c->peer,
                 uv_strerror((int)nread));
    conn_close(c);
}

static void on_pipe_drain(or_stream *s)
{
    or_conn *c = s->owner;
    or_stream *in = other_side(c, s);
    touch(c);
    if (c->phase == PIPING && !in->reading && !in->eof_delivered &&
        or_stream_queued(s) <= OR_PIPE_LOW_WATERMARK)
        or_stream_read_start(in);
    maybe_finish(c);
}

static void on_write_error(or_stream *s, int status)
{
    or_conn *c = s->owner;
    or_log_debug("write failed listener=%s peer=%s reason=\"%s\"", conf_of(c)->name, c->peer,
                 uv_strerror(status));
    conn_close(c);
}

static void start_piping(or_conn *c)
{
    c->phase = PIPING;
    touch(c);
    arm_timer(c, config_of(c)->timeouts.idle_ms);
    if (or_stream_read_start(&c->down) != 0 || or_stream_read_start(&c->up) != 0)
        conn_close(c);
}

/* ---- upstream ---- */

static void on_up_handshake(or_stream *s, int status)
{
    or_conn *c = s->owner;
    if (status != 0) {
        log_handshake_failure(c, s, or_tls_failure_reason(s->tls_error, &s->peer));
        conn_close(c);
        return;
    }
    or_worker_listener *l = c->listener;
    if (l->have_session)
        mbedtls_ssl_session_free(&l->session);
    mbedtls_ssl_session_init(&l->session);
    l->have_session = mbedtls_ssl_get_session(s->ssl, &l->session) == 0;
    or_log_debug("upstream verified listener=%s peer_id=%s cipher=%s resumed=%s",
                 conf_of(c)->name, s->peer.id, or_stream_cipher(s),
                 s->peer.verified_in_handshake ? "no" : "yes");
    start_piping(c);
}

static void on_up_connect(or_stream *s, int status)
{
    or_conn *c = s->owner;
    if (status != 0) {
        upstream_failed(c, uv_strerror(status));
        return;
    }
    if (!s->ssl) {
        start_piping(c);
        return;
    }
    or_worker_listener *l = c->listener;
    s->peer.trust_domain = c->worker->tls.creds->trust_domain;
    s->peer.expected_id = conf_of(c)->peer_identity;
    if (l->have_session)
        (void)mbedtls_ssl_set_session(s->ssl, &l->session);
    c->phase = UP_HANDSHAKE;
    arm_timer(c, config_of(c)->timeouts.handshake_ms);
    if (or_stream_start_handshake(s) != 0)
        conn_close(c);
}

static void connect_upstream(or_conn *c, const struct sockaddr *addr)
{
    int r = or_stream_connect(&c->up, addr);
    if (r != 0)
        upstream_failed(c, uv_strerror(r));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    or_conn *c = req->data;
    c->resolving = false;
    if (!c->closing) {
        if (status != 0) {
            char reason[128];
            snprintf(reason, sizeof reason, "cannot resolve host: %s", uv_strerror(status));
            upstream_failed(c, reason);
        } else {
            connect_upstream(c, res->ai_addr);
        }
    }
    uv_freeaddrinfo(res);
    release(c);
}

static void start_upstream(or_conn *c)
{
    const or_listener_config *lc = conf_of(c);
    or_worker *w = c->worker;
    const mbedtls_ssl_config *tls = lc->mode == OR_MODE_OUTBOUND ? &w->tls.client : NULL;
    if (or_stream_init(&c->up, &w->sl, c, tls) != 0) {
        upstream_failed(c, "out of memory");
        return;
    }
    c->up_initialised = true;
    c->callbacks_pending++;
    c->up.on_read = on_pipe_read;
    c->up.on_connect = on_up_connect;
    c->up.on_handshake = on_up_handshake;
    c->up.on_drain = on_pipe_drain;
    c->up.on_write_error = on_write_error;
    c->up.on_close = on_stream_closed;
    c->phase = CONNECTING;
    arm_timer(c, config_of(c)->timeouts.connect_ms);
    if (lc->upstream.is_ip) {
        connect_upstream(c, (const struct sockaddr *)&lc->upstream.addr);
        return;
    }
    char port[8];
    snprintf(port, sizeof port, "%u", lc->upstream.port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    c->resolve.data = c;
    if (uv_getaddrinfo(&w->loop, &c->resolve, on_resolved, lc->upstream.host, port, &hints) != 0) {
        upstream_failed(c, "cannot start name resolution");
        return;
    }
    c->resolving = true;
    c->callbacks_pending++;
}

/* ---- downstream ---- */

static void on_down_handshake(or_stream *s, int status)
{
    or_conn *c = s->owner;
    if (status != 0) {
        log_handshake_failure(c, s, or_tls_failure_reason(s->tls_error, &s->peer));
        conn_close(c);
        return;
    }
    or_log_debug("peer verified listener=%s peer=%s peer_id=%s cipher=%s resumed=%s",
                 conf_of(c)->name, c->peer, s->peer.id, or_stream_cipher(s),
                 s->peer.verified_in_handshake ? "no" : "yes");
    /* Bytes that arrived with the handshake wait in the upstream's queue. */
    or_stream_read_stop(s);
    start_upstream(c);
}

/* ---- timers ---- */

static void on_timer(uv_timer_t *t)
{
    or_conn *c = t->data;
    switch (c->phase) {
    case DOWN_HANDSHAKE:
        log_handshake_failure(c, &c->down, "handshake timeout");
        break;
    case CONNECTING:
        upstream_failed(c, "connect timeout");
        return;
    case UP_HANDSHAKE:
        log_handshake_failure(c, &c->up, "handshake timeout");
        break;
    case PIPING: {
        uint64_t idle = config_of(c)->timeouts.idle_ms;
        uint64_t quiet = uv_now(&c->worker->loop) - c->last_activity;
        if (quiet < idle) {
            arm_timer(c, idle - quiet);
            return;
        }
        or_log_debug("idle timeout listener=%s peer=%s", conf_of(c)->name, c->peer);
        break;
    }
    }
    conn_close(c);
}

static void arm_timer(or_conn *c, uint64_t ms)
{
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---- accept ---- */

static void describe_peer(or_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->down.tcp, (struct sockaddr *)&ss, &len) == 0)
        or_addr_format((struct sockaddr *)&ss, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "unknown");
}

static bool over_limit(or_conn *c)
{
    size_t open = atomic_fetch_add(&c->worker->rt->connections, 1) + 1;
    return open > config_of(c)->limits.max_connections;
}

static void start_downstream(or_conn *c)
{
    or_stream *d = &c->down;
    d->on_read = on_pipe_read;
    d->on_handshake = on_down_handshake;
    d->on_drain = on_pipe_drain;
    d->on_write_error = on_write_error;
    d->on_close = on_stream_closed;
    if (!d->ssl) {
        start_upstream(c);
        return;
    }
    d->peer.trust_domain = c->worker->tls.creds->trust_domain;
    c->phase = DOWN_HANDSHAKE;
    arm_timer(c, config_of(c)->timeouts.handshake_ms);
    if (or_stream_start_handshake(d) != 0)
        conn_close(c);
}

void or_pipe_accept(or_worker_listener *l)
{
    or_worker *w = l->worker;
    or_conn *c = calloc(1, sizeof *c);
    const mbedtls_ssl_config *tls = l->cfg->mode == OR_MODE_INBOUND ? &w->tls.server : NULL;
    if (!c || or_stream_init(&c->down, &w->sl, c, tls) != 0) {
        or_log_error("cannot accept on listener %s: out of memory", l->cfg->name);
        free(c);
        return;
    }
    c->worker = w;
    c->listener = l;
    c->callbacks_pending = 2; /* downstream and timer */
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    link_conn(c);
    c->down.on_close = on_stream_closed;
    int r = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->down.tcp);
    if (r == 0)
        r = or_stream_accepted(&c->down);
    describe_peer(c);
    if (over_limit(c)) {
        or_log_warn("connection refused listener=%s peer=%s reason=\"max_connections reached\"",
                    l->cfg->name, c->peer);
        conn_close(c);
        return;
    }
    if (r != 0) {
        conn_close(c);
        return;
    }
    start_downstream(c);
}
