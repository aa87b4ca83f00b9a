/*
 * The byte pipe of tcp listeners and upgraded HTTP connections.
 *
 * Bytes read on one side are written to the other at once (the stream copies
 * them into its queue and sends them in the loop's check phase). When the
 * other side's queue passes the high watermark the reading side pauses; the
 * writer's drain callback resumes it at the low watermark. EOF on one side
 * becomes a shutdown (close_notify, then FIN) of the other; the connection
 * ends when both sides have seen EOF and sent everything. The idle timeout
 * is enforced lazily: activity only records the time, and the timer re-arms
 * itself for the remainder when it fires early.
 */
#include "outrider/pipe.h"

#include <assert.h>

#include "outrider/log.h"
#include "outrider/upstream.h"

static const or_config *config_of(const or_conn *c) { return c->snap->cfg; }

static or_stream *other_side(or_conn *c, or_stream *s)
{
    return s == &c->down ? &c->up->s : &c->down;
}

static or_conn *conn_of(or_stream *s)
{
    /* The downstream's owner is the connection; an upstream's user is. */
    or_conn *c = s->owner;
    if (&c->down == s)
        return c;
    return ((or_upstream *)s->owner)->user;
}

static void maybe_finish(or_conn *c)
{
    if (or_stream_eof(&c->down) && or_stream_eof(&c->up->s) && or_stream_output_done(&c->down) &&
        or_stream_output_done(&c->up->s))
        or_conn_close(c);
}

static void on_pipe_read(or_stream *s, ssize_t nread, const char *data)
{
    or_conn *c = conn_of(s);
    assert(c->phase == OR_CONN_PIPING);
    or_stream *out = other_side(c, s);
    if (nread > 0) {
        or_conn_touch(c);
        if (s == &c->down)
            c->bytes_in += (uint64_t)nread;
        else
            c->bytes_out += (uint64_t)nread;
        if (or_stream_write(out, data, (size_t)nread) != 0) {
            or_conn_close(c);
            return;
        }
        if (or_stream_queued(out) > OR_PIPE_HIGH_WATERMARK)
            or_stream_read_stop(s);
        return;
    }
    if (nread == UV_EOF) {
        or_conn_touch(c);
        or_stream_shutdown(out);
        maybe_finish(c);
        return;
    }
    or_log_debug("connection ended listener=%s peer=%s reason=\"%s\"", c->listener->cfg->name,
                 c->peer, uv_strerror((int)nread));
    c->flags = s == &c->down ? "DC" : "UC";
    or_conn_close(c);
}

static void on_pipe_drain(or_stream *s)
{
    or_conn *c = conn_of(s);
    or_stream *in = other_side(c, s);
    or_conn_touch(c);
    if (!or_stream_reading(in) && !or_stream_eof(in) && or_stream_queued(s) <= OR_PIPE_LOW_WATERMARK)
        or_stream_read_start(in);
    maybe_finish(c);
}

static void on_pipe_write_error(or_stream *s, int status)
{
    or_conn *c = conn_of(s);
    or_log_debug("write failed listener=%s peer=%s reason=\"%s\"", c->listener->cfg->name,
                 c->peer, uv_strerror(status));
    c->flags = s == &c->down ? "DC" : "UC";
    or_conn_close(c);
}

static void on_idle_timer(uv_timer_t *t)
{
    or_conn *c = t->data;
    assert(c->phase == OR_CONN_PIPING);
    uint64_t idle = config_of(c)->timeouts.idle_ms;
    uint64_t quiet = uv_now(&c->worker->loop) - c->last_activity;
    if (quiet < idle) {
        or_conn_arm(c, idle - quiet, on_idle_timer);
        return;
    }
    or_log_debug("idle timeout listener=%s peer=%s", c->listener->cfg->name, c->peer);
    c->flags = "SI";
    or_conn_close(c);
}

static void attach(or_stream *s)
{
    s->on_read = on_pipe_read;
    s->on_drain = on_pipe_drain;
    s->on_write_error = on_pipe_write_error;
}

void or_pipe_start(or_conn *c)
{
    or_conn_set_phase(c, OR_CONN_PIPING);
    c->up->user = c;
    attach(&c->down);
    attach(&c->up->s);
    or_conn_touch(c);
    or_conn_arm(c, config_of(c)->timeouts.idle_ms, on_idle_timer);
    if (or_stream_read_start(&c->down) != 0 || or_stream_read_start(&c->up->s) != 0)
        or_conn_close(c);
}

static void on_upstream_ready(or_upstream *up, int status, const char *reason, void *ctx)
{
    (void)reason;
    or_conn *c = ctx;
    assert(c->phase == OR_CONN_CONNECTING && c->up == up);
    if (status != 0) {
        c->up = NULL; /* it is closing itself */
        c->flags = "UF";
        or_conn_close_gracefully(c);
        return;
    }
    c->upstream_us = (int64_t)(uv_now(&c->worker->loop) - up->opened_ms) * 1000;
    or_pipe_start(c);
}

static void tcp_start(or_conn *c)
{
    or_metrics_inc(or_conn_metrics_peer(c)->tcp_opened);
    or_conn_set_phase(c, OR_CONN_CONNECTING);
    uv_timer_stop(&c->timer); /* the upstream bounds its own connect and handshake */
    c->up = or_upstream_open(c->listener, on_upstream_ready, c);
    if (!c->up) {
        c->flags = "UF";
        or_conn_close_gracefully(c);
        return;
    }
    c->up->user = c;
}

/* The connection's bytes are final once it ends: nothing more is piped. */
static void tcp_end(or_conn *c)
{
    or_metrics_peer *p = or_conn_metrics_peer(c);
    or_metrics_inc(p->tcp_closed);
    atomic_fetch_add_explicit(&p->tcp_received, c->bytes_in, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->tcp_sent, c->bytes_out, memory_order_relaxed);
}

/* The upstream is the connection's own (c->up): conn.c closes it. */
const or_conn_phase_ops or_tcp_phase = {.name = "tcp", .start = tcp_start, .end = tcp_end};
