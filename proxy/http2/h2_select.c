/*
 * Which HTTP a connection speaks, decided once at its start.
 *
 * mTLS connections say it in the handshake: ALPN "h2" is HTTP/2, and so is
 * the multiplexed hop from a peer sidecar (OR_ALPN_HOP); anything else
 * (also no ALPN, as from a peer sidecar that sends HTTP/1.1) is HTTP/1.1. A plaintext connection says it with its first bytes: HTTP/2
 * with prior knowledge opens with the 24-byte client preface, which no
 * HTTP/1 request can start with past its first four bytes ("PRI " is a
 * token method). The bytes read to decide are handed to the chosen
 * session as its first input, so HTTP/1.1 sees the connection exactly as
 * it came. A connection that sends nothing is closed after timeouts.idle,
 * as an unused HTTP/1.1 keep-alive connection is; one that stops inside
 * the preface goes to HTTP/1.1 after timeouts.request_headers, whose
 * session then applies its own head limits.
 */
#include <stdlib.h>
#include <string.h>

#include "outrider/http.h"
#include "outrider/http2.h"

typedef struct {
    char held[OR_H2_PREFACE_LEN]; /* a prefix of the preface, read so far */
    size_t len;
} or_select;

static const or_config *config_of(const or_conn *c) { return c->worker->snap->cfg; }

/* Moves the connection to `ops` and gives it what was read, in order. */
static void hand_over(or_conn *c, const or_conn_phase_ops *ops, const char *rest, size_t rest_len)
{
    or_select *sel = c->phase_state;
    char held[OR_H2_PREFACE_LEN];
    size_t held_len = sel ? sel->len : 0;
    if (sel)
        memcpy(held, sel->held, held_len);
    free(sel);
    c->phase_state = NULL;
    c->down.on_read = NULL;
    c->ops = ops;
    ops->start(c);
    if (held_len > 0 && c->phase == OR_CONN_HTTP && c->down.on_read)
        c->down.on_read(&c->down, (ssize_t)held_len, held);
    if (rest_len > 0 && c->phase == OR_CONN_HTTP && c->down.on_read)
        c->down.on_read(&c->down, (ssize_t)rest_len, rest);
}

static void on_select_timeout(uv_timer_t *t)
{
    or_conn *c = t->data;
    or_select *sel = c->phase_state;
    if (sel->len == 0)
        or_conn_close_gracefully(c); /* never used */
    else
        hand_over(c, &or_http_phase, NULL, 0);
}

static void on_select_read(or_stream *s, ssize_t nread, const char *data)
{
    or_conn *c = s->owner;
    or_select *sel = c->phase_state;
    if (nread < 0) {
        if (nread == UV_EOF)
            or_conn_close_gracefully(c);
        else
            or_conn_close(c);
        return;
    }
    or_conn_touch(c);
    size_t take = OR_H2_PREFACE_LEN - sel->len;
    if (take > (size_t)nread)
        take = (size_t)nread;
    if (memcmp(data, &OR_H2_PREFACE[sel->len], take) != 0) {
        hand_over(c, &or_http_phase, data, (size_t)nread);
        return;
    }
    memcpy(sel->held + sel->len, data, take);
    sel->len += take;
    if (sel->len == OR_H2_PREFACE_LEN) {
        hand_over(c, &or_h2_phase, data + take, (size_t)nread - take);
        return;
    }
    or_conn_arm(c, config_of(c)->timeouts.request_headers_ms, on_select_timeout);
}

static void on_select_write_error(or_stream *s, int status)
{
    (void)status;
    or_conn_close(s->owner);
}

static void select_start(or_conn *c)
{
    if (c->down.ssl) {
        const char *alpn = or_stream_alpn(&c->down);
        bool h2 = alpn && (strcmp(alpn, "h2") == 0 || strcmp(alpn, OR_ALPN_HOP) == 0);
        hand_over(c, h2 ? &or_h2_phase : &or_http_phase, NULL, 0);
        return;
    }
    or_select *sel = calloc(1, sizeof *sel);
    if (!sel) {
        or_conn_close(c);
        return;
    }
    c->phase_state = sel;
    c->down.on_read = on_select_read;
    c->down.on_write_error = on_select_write_error;
    c->down.on_drain = NULL;
    or_conn_arm(c, config_of(c)->timeouts.idle_ms, on_select_timeout);
    if (or_stream_read_start(&c->down) != 0)
        or_conn_close(c);
}

static void select_drain(or_conn *c)
{
    or_select *sel = c->phase_state;
    if (sel && sel->len == 0)
        or_conn_close_gracefully(c);
}

static void select_release(or_conn *c)
{
    free(c->phase_state);
    c->phase_state = NULL;
}

const or_conn_phase_ops or_http_select_phase = {
    .name = "http-select",
    .start = select_start,
    .drain = select_drain,
    .release = select_release,
};
