/*
 * Upstream connections and the per-listener pool.
 *
 * Opening an upstream runs up to three asynchronous steps: a name lookup
 * (skipped for literal addresses), the TCP connect, and for outbound
 * listeners the TLS client handshake with SPIFFE verification. One timer
 * bounds the connect and the handshake separately. Failures are logged here,
 * once, and reported to the caller through the ready callback. A failure
 * found synchronously is reported through the timer at 0 ms, so the caller
 * never sees its callback run inside or_upstream_open.
 *
 * The pool is a list per listener (and so per worker). A pooled upstream
 * keeps reading: an EOF, an error, or unexpected bytes mean the peer has
 * given up on it, and it is closed at once instead of being handed to the
 * next request. Its timer expires it after the pool idle time.
 */
#include "outrider/upstream.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/log.h"

#define OR_POOL_MAX_IDLE 128
#define OR_POOL_IDLE_CAP_MS 60000

static const or_config *config_of(const or_upstream *up) { return up->listener->worker->snap->cfg; }


/* ---- life cycle ---- */

static void release(or_upstream *up)
{
    if (--up->callbacks_pending > 0)
        return;
    or_worker_tls_drop(up->tls);
    free(up);
}

static void on_stream_closed(or_stream *s) { release(s->owner); }
static void on_timer_closed(uv_handle_t *h) { release(h->data); }

static void pool_unlink(or_upstream *up)
{
    or_worker_listener *l = up->listener;
    LIST_REMOVE(up, pool_entry);
    up->pooled = false;
    l->pool_size--;
    or_metrics_set(l->metrics->up_idle, l->pool_size + l->h2_idle);
}

/* The connection no longer holds a request or tcp connection waiting. */
static void stop_waiting(or_upstream *up)
{
    if (up->waiting)
        or_metrics_dec(up->listener->metrics->up_waiting);
    up->waiting = false;
}

void or_upstream_close(or_upstream *up)
{
    if (up->closing)
        return;
    up->closing = true;
    stop_waiting(up);
    if (up->ready)
        or_metrics_inc(up->listener->metrics->up_closed);
    if (up->pooled)
        pool_unlink(up);
    if (up->resolving)
        uv_cancel((uv_req_t *)&up->resolve);
    or_stream_close(&up->s);
    uv_close((uv_handle_t *)&up->timer, on_timer_closed);
}

static void report(or_upstream *up, int status, const char *reason)
{
    uv_timer_stop(&up->timer);
    or_upstream_ready_cb cb = up->on_ready;
    up->on_ready = NULL;
    stop_waiting(up);
    if (status != 0) {
        or_upstream_close(up);
    } else {
        up->ready = true;
        or_metrics_inc(up->listener->metrics->up_created);
    }
    if (cb)
        cb(up, status, reason, up->ctx);
}

static or_upstream_failure failure_kind(const char *reason)
{
    if (strcmp(reason, uv_strerror(UV_ECONNREFUSED)) == 0)
        return OR_UPFAIL_REFUSED;
    if (strcmp(reason, "connect timeout") == 0)
        return OR_UPFAIL_TIMEOUT;
    if (strncmp(reason, "cannot resolve", 14) == 0 || strstr(reason, "name resolution"))
        return OR_UPFAIL_RESOLVE;
    return OR_UPFAIL_OTHER;
}

/* A failed handshake with the peer: counted per worker and per listener. */
static void handshake_failed(or_upstream *up, const char *reason)
{
    or_stats_handshake_failure(&up->listener->worker->stats, reason);
    or_metrics_inc(up->listener->metrics->up_handshake_failures[or_stats_handshake_reason(reason)]);
}

static void fail(or_upstream *up, const char *reason)
{
    or_metrics_inc(up->listener->metrics->up_connect_failures[failure_kind(reason)]);
    or_log_warn("upstream failed listener=%s upstream=%s reason=\"%s\"", up->listener->cfg->name,
                up->listener->cfg->upstream_text, reason);
    report(up, UV_ECONNREFUSED, reason);
}

static void on_deferred_failure(uv_timer_t *t)
{
    or_upstream *up = t->data;
    fail(up, up->fail_reason);
}

static void fail_soon(or_upstream *up, const char *reason)
{
    up->fail_reason = reason;
    uv_timer_start(&up->timer, on_deferred_failure, 0, 0);
}

/* ---- session resumption ---- */

void or_upstream_forget_session(or_worker_listener *l)
{
    if (l->have_session)
        mbedtls_ssl_session_free(&l->session);
    l->have_session = false;
    or_worker_tls_drop(l->session_tls);
    l->session_tls = NULL;
}

/* A session resumes only with the identity it was made with, and only while
 * the server certificate it remembers is still valid: after a rotation on
 * either side a full handshake shows the peer the current certificates. */
static bool session_usable(or_worker_listener *l, const or_upstream *up)
{
    if (!l->have_session)
        return false;
    const mbedtls_x509_crt *server = l->session.peer_cert;
    if (l->session_tls != up->tls || !server || mbedtls_x509_time_is_past(&server->valid_to)) {
        or_upstream_forget_session(l);
        return false;
    }
    return true;
}

/* ---- handshake ---- */

static void on_handshake(or_stream *s, int status)
{
    or_upstream *up = s->owner;
    if (status != 0) {
        const char *reason = or_tls_failure_reason(s->tls_error, &s->peer);
        or_log_warn("handshake failed listener=%s peer=%s reason=\"%s\"",
                    up->listener->cfg->name, up->listener->cfg->upstream_text, reason);
        handshake_failed(up, reason);
        report(up, UV_EPROTO, reason);
        return;
    }
    or_worker_listener *l = up->listener;
    or_upstream_forget_session(l);
    mbedtls_ssl_session_init(&l->session);
    l->have_session = mbedtls_ssl_get_session(s->ssl, &l->session) == 0;
    if (l->have_session)
        l->session_tls = or_worker_tls_hold(l->worker); /* the identity it was made with */
    or_metrics_handshake(l->metrics, !s->peer.verified_in_handshake,
                         (uv_hrtime() - up->handshake_ns) / 1000);
    or_log_debug("upstream verified listener=%s peer_id=%s cipher=%s resumed=%s", l->cfg->name,
                 s->peer.id, or_stream_cipher(s), s->peer.verified_in_handshake ? "no" : "yes");
    report(up, 0, NULL);
}

static void on_timeout(uv_timer_t *t)
{
    or_upstream *up = t->data;
    if (or_stream_connected(&up->s) && up->s.ssl) {
        or_log_warn("handshake failed listener=%s peer=%s reason=\"handshake timeout\"",
                    up->listener->cfg->name, up->listener->cfg->upstream_text);
        handshake_failed(up, "handshake timeout");
        report(up, UV_ETIMEDOUT, "handshake timeout");
        return;
    }
    fail(up, "connect timeout");
}

static void on_connect(or_stream *s, int status)
{
    or_upstream *up = s->owner;
    if (status != 0) {
        fail(up, uv_strerror(status));
        return;
    }
    if (!s->ssl) {
        report(up, 0, NULL);
        return;
    }
    or_worker_listener *l = up->listener;
    s->peer.trust_domain = up->tls->tls.creds->trust_domain;
    s->peer.expected_id = l->cfg->peer_identity;
    if (session_usable(l, up))
        (void)mbedtls_ssl_set_session(s->ssl, &l->session);
    uv_timer_start(&up->timer, on_timeout, config_of(up)->timeouts.handshake_ms, 0);
    up->handshake_ns = uv_hrtime();
    if (or_stream_start_handshake(s) != 0 && !up->closing)
        fail(up, "cannot start the TLS handshake");
}

/* ---- connect ---- */

static void connect_to(or_upstream *up, const struct sockaddr *addr)
{
    int r = or_stream_connect(&up->s, addr);
    if (r != 0)
        fail_soon(up, uv_strerror(r));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    or_upstream *up = req->data;
    up->resolving = false;
    if (!up->closing) {
        if (status != 0)
            fail(up, "cannot resolve the upstream host");
        else
            connect_to(up, res->ai_addr);
    }
    uv_freeaddrinfo(res);
    release(up);
}

static void start_resolve(or_upstream *up)
{
    const or_hostport *hp = &up->listener->cfg->upstream;
    char port[8];
    snprintf(port, sizeof port, "%u", hp->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    up->resolve.data = up;
    if (uv_getaddrinfo(&up->listener->worker->loop, &up->resolve, on_resolved, hp->host, port,
                       &hints) != 0) {
        fail_soon(up, "cannot start name resolution");
        return;
    }
    up->resolving = true;
    up->callbacks_pending++;
}

or_upstream *or_upstream_open(or_worker_listener *l, or_upstream_ready_cb cb, void *ctx)
{
    or_worker *w = l->worker;
    or_upstream *up = calloc(1, sizeof *up);
    const mbedtls_ssl_config *tls = l->cfg->mode == OR_MODE_OUTBOUND ? &w->tls->tls.conf[OR_TLS_CLIENT] : NULL;
    if (!up || or_stream_init(&up->s, &w->sl, up, tls) != 0) {
        free(up);
        return NULL;
    }
    up->tls = or_worker_tls_hold(w);
    up->listener = l;
    up->on_ready = cb;
    up->ctx = ctx;
    up->callbacks_pending = 2; /* stream and timer */
    up->opened_ms = uv_now(&w->loop);
    up->waiting = true;
    or_metrics_inc(l->metrics->up_waiting);
    up->s.on_connect = on_connect;
    up->s.on_handshake = on_handshake;
    up->s.on_close = on_stream_closed;
    uv_timer_init(&w->loop, &up->timer);
    up->timer.data = up;
    uv_timer_start(&up->timer, on_timeout, w->snap->cfg->timeouts.connect_ms, 0);
    if (l->cfg->upstream.is_ip)
        connect_to(up, (const struct sockaddr *)&l->cfg->upstream.addr);
    else
        start_resolve(up);
    return up;
}

/* ---- the pool ---- */

static void on_pooled_read(or_stream *s, ssize_t nread, const char *data)
{
    (void)nread;
    (void)data;
    or_upstream_close(s->owner);
}

static void on_pooled_error(or_stream *s, int status)
{
    (void)status;
    or_upstream_close(s->owner);
}

static void on_pool_expired(uv_timer_t *t) { or_upstream_close(t->data); }

static uint64_t pool_idle_ms(const or_upstream *up)
{
    uint64_t idle = config_of(up)->timeouts.idle_ms;
    if (idle > OR_POOL_IDLE_CAP_MS)
        idle = OR_POOL_IDLE_CAP_MS;
    return idle * 9 / 10 > 0 ? idle * 9 / 10 : 1;
}

void or_pool_put(or_upstream *up)
{
    or_worker_listener *l = up->listener;
    if (up->closing || or_stream_eof(&up->s) || or_stream_queued(&up->s) > 0 ||
        l->pool_size >= OR_POOL_MAX_IDLE || l->worker->draining) {
        or_upstream_close(up);
        return;
    }
    up->user = NULL;
    up->s.on_read = on_pooled_read;
    up->s.on_write_error = on_pooled_error;
    up->s.on_drain = NULL;
    up->pooled = true;
    LIST_INSERT_HEAD(&l->pool, up, pool_entry);
    l->pool_size++;
    or_metrics_set(l->metrics->up_idle, l->pool_size + l->h2_idle);
    uv_timer_start(&up->timer, on_pool_expired, pool_idle_ms(up), 0);
    if (or_stream_read_start(&up->s) != 0)
        or_upstream_close(up);
}

or_upstream *or_pool_take(or_worker_listener *l)
{
    or_upstream *up = LIST_FIRST(&l->pool); /* the newest */
    if (!up)
        return NULL;
    pool_unlink(up);
    uv_timer_stop(&up->timer);
    return up;
}

void or_pool_close_all(or_worker_listener *l)
{
    while (!LIST_EMPTY(&l->pool))
        or_upstream_close(LIST_FIRST(&l->pool));
}
