/*
 * HTTP/1.1 requests carried as HTTP/2 streams. On an outbound listener this
 * is the hop between sidecars (docs/http2.md, "The hop between sidecars");
 * on an inbound listener with upstream_protocol http2, the way to an app
 * that speaks only h2c ("HTTP/1.1 requests to an HTTP/2 app").
 *
 * The HTTP/1.1 session (proxy/http/http.c) keeps its client connection: it
 * reads and checks requests, applies RBAC, answers what it refuses and
 * writes the access log. For each request it can carry this way it asks
 * here instead of the relay. The request becomes a stream of a small
 * or_h2_session of its own (no nghttp2 session; `front` names the HTTP/1.1
 * session), which the listener's HTTP/2 pool (h2_pool.c, h2_upstream.c)
 * carries like any other stream: over the few mTLS connections all client
 * connections share to the peer sidecar, or the h2c connections to the
 * app. On the hop the stream carries OR_HOP_ORIG_PROTO, so the inbound
 * sidecar gives its app HTTP/1.1 again. The header block is built through
 * the same checks an HTTP/2 request gets (or_h2_request_from_h1).
 *
 * The upstream side only records what happens to the stream (its head,
 * body bytes, its end, a failure) and marks the front session; the pool
 * then calls or_h2_front_send once, outside nghttp2's callbacks, which
 * writes the response as HTTP/1.1 (content-length as the app sent it,
 * else chunked), answers a failure (503 / 502 / an abort once the response
 * has started) or ends the exchange.
 *
 * Relayed over a dedicated HTTP/1.1 connection instead: Upgrade and
 * CONNECT requests, HTTP/1.0, a target with a byte that is not visible
 * ASCII, an empty Host; every request of an outbound listener with
 * `multiplex: false` or an inbound listener without upstream_protocol
 * http2; and for OR_HOP_RETRY_MS after a peer did not negotiate the hop
 * (an Outrider without it, or another server). A request
 * waiting for a connection that turns out not to speak the hop goes the
 * same way; no byte of its body has been read by then, because a front
 * stream reads its body only once it has been submitted.
 *
 * Ownership: the HTTP/1.1 session owns the front session (mux_hs, freed
 * with the session) and the current exchange's stream (mux), which is
 * reset upstream when still open and freed when the exchange ends.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../http/http_session.h"
#include "h2_session.h"
#include "outrider/http2_h1.h"
#include "outrider/http_server.h"
#include "outrider/log.h"
#include "outrider/pipe.h"

#define OR_HOP_RETRY_MS 60000 /* a peer without the hop is asked again after */

static uint64_t now_ms(const or_h2_pool *p) { return uv_now(&p->l->worker->loop); }

/* ---- which requests ride the hop ---- */

/* A target byte HTTP/2 cannot carry to an HTTP/1.1 app unchanged: the
 * inbound's HTTP/1.1 leg takes visible ASCII only, which the HTTP/1.1 relay
 * does not insist on (obs-text, as http-parser lets it by). */
static bool target_visible(const or_buf *t)
{
    for (size_t i = 0; i < t->len; i++)
        if ((unsigned char)t->data[i] <= 0x20 || (unsigned char)t->data[i] >= 0x7f)
            return false;
    return true;
}

/* Outbound, the hop to the peer sidecar; inbound, an app that takes h2c
 * only (upstream_protocol http2). */
static bool takes_streams(const or_listener_config *cfg)
{
    return cfg->mode == OR_MODE_OUTBOUND ? cfg->multiplex
                                         : cfg->upstream_protocol == OR_UPSTREAM_HTTP2;
}

/* An empty Host (RFC 9112 3.2 allows one) cannot be an HTTP/2 :authority:
 * the relay passes it on as it is. */
static bool has_authority(const or_http_session *hs)
{
    const or_http_header *host = or_http_head_host(&hs->req);
    return hs->tgt.authority_len > 0 || !host || host->value_len > 0;
}

static bool multiplexable(const or_http_session *hs)
{
    const or_listener_config *cfg = hs->c->listener->cfg;
    if (!takes_streams(cfg) || hs->req.upgrade || hs->req_parser.method == HTTP_CONNECT ||
        hs->req.major != 1 || hs->req.minor != 1 || !target_visible(&hs->target) ||
        !has_authority(hs))
        return false;
    or_h2_pool *p = or_h2_pool_of(hs->c->listener);
    return p && !p->draining && now_ms(p) >= p->no_hop_until_ms;
}

bool or_h2_front_hop(const or_h2_session *hs)
{
    return hs->front && hs->c->listener->cfg->mode == OR_MODE_OUTBOUND;
}

void or_h2_front_refused(or_h2_up *up)
{
    or_h2_stream *next;
    for (or_h2_stream *st = LIST_FIRST(&up->streams); st; st = next) {
        next = LIST_NEXT(st, up_entry);
        if (!or_h2_front_hop(st->hs))
            continue;
        or_h2_up_release(st);
        or_h2_set_uq(st, OR_H2_UQ_NONE);
        st->up_id = 0;
        st->no_hop = true;
        or_h2_pool_mark(st->hs);
    }
    if (up->u && up->u->s.ssl)
        up->pool->no_hop_until_ms = now_ms(up->pool) + OR_HOP_RETRY_MS;
}

/* ---- the request ---- */

static const char *authority_of(const or_http_session *hs, size_t *len)
{
    const or_http_header *host = or_http_head_host(&hs->req);
    if (hs->tgt.authority_len > 0) {
        *len = hs->tgt.authority_len;
        return hs->tgt.authority;
    }
    if (host) {
        *len = host->value_len;
        return host->value;
    }
    *len = strlen(hs->c->listener->cfg->upstream_text);
    return hs->c->listener->cfg->upstream_text;
}

static or_h2_check take_request(or_http_session *hs, or_h2_stream *st)
{
    size_t alen;
    const char *authority = authority_of(hs, &alen);
    or_h2_check chk = or_h2_request_from_h1(&st->req, &hs->req, hs->method, hs->target.data,
                                            hs->target.len, authority, alen);
    if (chk == OR_H2_OK && or_buf_append(&st->target, hs->target.data, hs->target.len) != 0)
        chk = OR_H2_NO_MEMORY;
    return chk;
}

static bool expects_continue(const or_http_session *hs)
{
    const or_http_header *e = or_http_head_find(&hs->req, "expect", 6);
    return e && !hs->req.message_done && e->value_len == 12 &&
           strncasecmp(e->value, "100-continue", 12) == 0;
}

static or_h2_session *front_session(or_http_session *hs)
{
    if (!hs->mux_hs && (hs->mux_hs = calloc(1, sizeof *hs->mux_hs)) != NULL) {
        hs->mux_hs->c = hs->c;
        hs->mux_hs->front = hs;
        hs->mux_hs->pool = or_h2_pool_of(hs->c->listener);
    }
    return hs->mux_hs;
}

bool or_http_mux_start(or_http_session *hs)
{
    if (!multiplexable(hs))
        return false;
    or_h2_session *fs = front_session(hs);
    or_h2_stream *st = fs ? or_h2_stream_new(fs, 1) : NULL;
    if (!st)
        return false;
    hs->mux = st;
    or_h2_check chk = take_request(hs, st);
    if (chk != OR_H2_OK) {
        or_http_mux_release(hs);
        or_log_info("request rejected listener=%s peer=%s status=400 reason=\"%s\"",
                    hs->c->listener->cfg->name, hs->c->peer, or_h2_check_text(chk));
        or_http_local_reply(hs, chk == OR_H2_NO_MEMORY ? 500 : 400, "DPE",
                            or_h2_check_text(chk));
        return true;
    }
    st->ids = hs->ids;
    st->rq = hs->req.message_done ? OR_H2_RQ_DONE : OR_H2_RQ_BODY;
    st->expects_100 = expects_continue(hs);
    hs->sent_ns = uv_hrtime();
    or_h2_forward(st);
    or_h2_pool_mark(fs);
    or_h2_pool_defer(fs->pool);
    return true;
}

bool or_http_mux_wants_body(const or_http_session *hs)
{
    const or_h2_stream *st = hs->mux;
    return st && st->up_id > 0 && !st->local &&
           st->req_body.len - st->req_off <= OR_PIPE_LOW_WATERMARK;
}

bool or_http_mux_body_idle(const or_http_session *hs)
{
    const or_h2_stream *st = hs->mux;
    return st && st->up_id > 0 && st->req_body.len == st->req_off;
}

void or_http_mux_body(or_http_session *hs, const char *data, size_t len, bool last)
{
    or_h2_stream *st = hs->mux;
    if (len > 0 && or_buf_append(&st->req_body, data, len) != 0) {
        or_h2_stream_reset(st, NGHTTP2_INTERNAL_ERROR, "DPE");
        return;
    }
    if (last)
        st->rq = OR_H2_RQ_DONE;
    or_h2_up_request_progress(st);
    or_h2_pool_mark(st->hs);
}

void or_http_mux_run(or_http_session *hs)
{
    or_h2_session *fs = hs->mux_hs;
    if (fs && fs->flush_queued)
        or_h2_pool_defer(fs->pool);
}

void or_http_mux_drain(or_http_session *hs)
{
    if (!hs->mux)
        return;
    or_h2_pool_mark(hs->mux_hs);
    or_h2_pool_defer(hs->mux_hs->pool);
}

/* ---- the response ---- */

static int head_fields(or_buf *b, const or_h2_stream *st, bool no_length)
{
    int r = 0;
    const or_h2_fields *f = &st->res_head;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = or_h2_field_name(f, i);
        size_t nlen = f->v[i].name_len;
        if (name[0] == ':' || (no_length && nlen == 14 && memcmp(name, "content-length", 14) == 0))
            continue;
        r |= or_http_field_line(b, name, nlen, or_h2_field_value(f, i), f->v[i].value_len);
    }
    return r;
}

/* The response head as HTTP/1.1; false when the exchange has ended. */
static bool write_head(or_http_session *hs, const or_h2_stream *st)
{
    bool bodiless = hs->req_parser.method == HTTP_HEAD || st->status == 204 || st->status == 304;
    bool length = or_h2_fields_find(&st->res_head, "content-length", 14) >= 0;
    bool whole = st->rs == OR_H2_RS_ENDED && st->res_trailers.n == 0;
    hs->status = st->status;
    hs->upstream_us = st->upstream_us;
    hs->framing = !bodiless && !length && !whole ? OR_FRAME_RECHUNK : OR_FRAME_AS_SENT;
    if (!hs->req.keep_alive || hs->c->worker->draining)
        hs->close_after = true;
    or_buf b = {0};
    int r = or_buf_append_str(&b, "HTTP/1.1 ");
    r |= or_buf_append_uint(&b, (uint64_t)st->status);
    r |= or_buf_append(&b, " ", 1);
    r |= or_buf_append_str(&b, or_http_reason(st->status));
    r |= or_buf_append(&b, "\r\n", 2);
    r |= head_fields(&b, st, st->status == 204);
    if (!bodiless && !length && whole) {
        r |= or_buf_append_str(&b, "content-length: ");
        r |= or_buf_append_uint(&b, st->res_body.len - st->res_off);
        r |= or_buf_append(&b, "\r\n", 2);
    }
    if (hs->framing == OR_FRAME_RECHUNK)
        r |= or_buf_append_str(&b, "transfer-encoding: chunked\r\n");
    if (hs->close_after)
        r |= or_buf_append_str(&b, "connection: close\r\n");
    r |= or_buf_append(&b, "\r\n", 2);
    if (r == 0)
        or_stream_write(&hs->c->down, b.data, b.len);
    or_buf_free(&b);
    if (r != 0) {
        or_http_local_reply(hs, 500, "DPE", "cannot build the response\n");
        return false;
    }
    or_http_set_rs(hs, OR_RES_HEAD);
    or_http_set_rs(hs, OR_RES_BODY);
    return true;
}

/* Hands the client what the stream holds, while it keeps up. */
static bool write_body(or_http_session *hs, or_h2_stream *st)
{
    or_stream *d = &hs->c->down;
    size_t n = st->res_body.len - st->res_off;
    if (n == 0 || or_stream_queued(d) > OR_PIPE_HIGH_WATERMARK)
        return false;
    if (hs->req_parser.method != HTTP_HEAD)
        or_http_write_body(d, hs->framing == OR_FRAME_RECHUNK, st->res_body.data + st->res_off, n);
    hs->body_out += n;
    st->res_body.len = st->res_off = 0;
    or_h2_up_consumed(st, n); /* the stream's window opens again */
    or_conn_touch(hs->c);
    return true;
}

static void finish(or_http_session *hs, const or_h2_stream *st)
{
    if (hs->framing == OR_FRAME_RECHUNK) {
        or_buf b = {0};
        int r = or_buf_append(&b, "0\r\n", 3);
        for (size_t i = 0; i < st->res_trailers.n; i++)
            r |= or_http_field_line(&b, or_h2_field_name(&st->res_trailers, i),
                                    st->res_trailers.v[i].name_len,
                                    or_h2_field_value(&st->res_trailers, i),
                                    st->res_trailers.v[i].value_len);
        r |= or_buf_append(&b, "\r\n", 2);
        if (r == 0)
            or_stream_write(&hs->c->down, b.data, b.len);
        or_buf_free(&b);
        if (r != 0) {
            or_http_abort(hs, "DPE");
            return;
        }
    }
    or_http_set_rs(hs, OR_RES_DONE);
    if (hs->rq == OR_REQ_BODY) { /* answered before the body ended: the rest is dropped */
        or_http_mux_release(hs);
        or_http_set_rq(hs, OR_REQ_DISCARD);
        or_http_pump(hs);
        return;
    }
    hs->up_reusable = false;
    or_http_exchange_done(hs);
}

static void failed(or_http_session *hs, const or_h2_stream *st)
{
    const char *flags = st->flags ? st->flags : "UC";
    if (or_http_response_started(hs)) {
        or_http_abort(hs, flags);
        return;
    }
    int status = st->status == 503 ? 503 : 502;
    const char *body = status == 503             ? "upstream connect error\n"
                       : strcmp(flags, "UPE") == 0 ? "upstream sent an invalid response\n"
                                                   : "upstream closed the connection before "
                                                     "answering\n";
    or_http_local_reply(hs, status, flags, body);
}

/* The peer does not speak the hop: the request goes over HTTP/1.1, unless
 * body bytes were read for the stream already (it was being retried on
 * another connection), which the relay could not send again. */
static void fall_back(or_http_session *hs)
{
    if (hs->body_in > 0) {
        or_http_local_reply(hs, 503, "UF", "upstream connect error\n");
        return;
    }
    or_http_mux_release(hs);
    or_http_relay_start(hs);
}

bool or_h2_front_send(or_h2_session *fs)
{
    or_http_session *hs = fs->front;
    or_h2_stream *st = hs->mux;
    if (!st || hs->rq == OR_REQ_CLOSED)
        return false;
    assert(st->hs == fs);
    if (st->no_hop) {
        fall_back(hs);
        return true;
    }
    if (st->local) {
        failed(hs, st);
        return true;
    }
    if (st->expects_100 && st->up_id > 0 && hs->rs == OR_RES_NONE) {
        st->expects_100 = false; /* the body may come: the peer has the request */
        or_stream_write(&hs->c->down, "HTTP/1.1 100 Continue\r\n\r\n", 25);
    }
    bool sent = false;
    if (hs->rs == OR_RES_NONE && st->rs != OR_H2_RS_NONE) {
        if (!write_head(hs, st))
            return true;
        sent = true;
    }
    if (hs->rs == OR_RES_BODY) {
        sent |= write_body(hs, st);
        if (st->rs == OR_H2_RS_ENDED && st->res_body.len == st->res_off) {
            finish(hs, st);
            return true;
        }
    }
    if (hs->rq == OR_REQ_BODY && or_http_mux_wants_body(hs))
        or_http_pump(hs);
    return sent;
}

/* ---- ends ---- */

const char *or_http_mux_peer_id(const or_http_session *hs)
{
    return hs->mux && hs->mux->up ? hs->mux->up->peer_id : NULL;
}

const char *or_http_mux_cipher(const or_http_session *hs)
{
    return hs->mux && hs->mux->up ? hs->mux->up->cipher : NULL;
}

void or_http_mux_release(or_http_session *hs)
{
    or_h2_stream *st = hs->mux;
    if (!st)
        return;
    hs->mux = NULL;
    bool open = or_h2_uq_open(st);
    st->down_open = false;
    or_h2_up_cancel(st);
    or_h2_stream_free(st);
    if (open && hs->mux_hs->pool)
        or_h2_pool_soon(hs->mux_hs->pool); /* the RST_STREAM goes out */
}

void or_http_mux_end(or_http_session *hs)
{
    or_http_mux_release(hs);
    if (hs->mux_hs) {
        hs->mux_hs->ended = true;
        or_h2_pool_unmark(hs->mux_hs);
    }
}

void or_http_mux_free(or_http_session *hs)
{
    assert(!hs->mux);
    free(hs->mux_hs);
    hs->mux_hs = NULL;
}
