/*
 * HTTP/2 proxying: one upstream connection and the streams sent over it.
 *
 * An upstream connection (or_upstream: h2c with prior knowledge to the app
 * on inbound listeners, h2 over mTLS to the peer sidecar on outbound ones,
 * offering ALPN "h2" only and refusing a peer that does not agree) is
 * driven by an nghttp2 client session and belongs to the worker listener's
 * pool (h2_pool.c), which picks the connection each stream goes to. Streams
 * that arrive while it connects wait on its list and are submitted when it
 * is ready. A connection that fails answers its streams that have no
 * response yet (503 / 502, or gRPC UNAVAILABLE) and resets the others; once
 * it had been ready, the streams it had not started (HEADERS not sent, or refused by the peer with
 * REFUSED_STREAM or a GOAWAY below them) and that sent no body byte are
 * sent once more on another connection.
 *
 * The request sent upstream carries the pseudo-headers as received but the
 * normalised :path, the request's fields without x-forwarded-client-cert,
 * and like HTTP/1: x-request-id when the request had none, and on inbound
 * listeners x-forwarded-client-cert with the verified identities.
 *
 * Flow control on a shared connection: response DATA is kept per stream
 * until the downstream stream takes it. The connection window is given back
 * as soon as the bytes are buffered, the stream window only as the
 * downstream takes them; what one stream buffers is thus bounded by its own
 * window (64 KiB), and a client that stops reading stalls its own stream,
 * never the connection the other streams share.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_session.h"
#include "outrider/http2_h1.h"
#include "outrider/log.h"
#include "outrider/pipe.h"

static or_h2_up *up_of(or_stream *s)
{
    or_upstream *u = s->owner;
    return u->user;
}

static const or_listener_config *cfg_of(const or_h2_up *up) { return up->pool->l->cfg; }

static bool is_inbound(const or_h2_session *hs)
{
    return hs->c->listener->cfg->mode == OR_MODE_INBOUND;
}

static bool usable(const or_h2_up *up) { return up->state == OR_H2_UP_READY && up->ng; }

/* ---- the request ---- */

static ssize_t request_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)user;
    or_h2_stream *st = src->ptr;
    size_t avail = st->req_body.len - st->req_off;
    size_t n = avail < length ? avail : length;
    if (n > 0)
        memcpy(buf, st->req_body.data + st->req_off, n);
    st->req_off += n;
    st->body_up += n;
    or_h2_pool_mark(st->hs);
    if (st->req_off == st->req_body.len)
        st->req_body.len = st->req_off = 0;
    or_h2_consumed_request(st, n);
    if (st->req_body.len == 0 && st->rq == OR_H2_RQ_DONE) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->req_trailers.n > 0) {
            or_h2_nvs nv = {0};
            if (or_h2_nvs_fields(&nv, &st->req_trailers) == 0 &&
                nghttp2_submit_trailer(ng, id, nv.v, nv.n) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            or_h2_nvs_free(&nv);
        }
        return (ssize_t)n;
    }
    return n > 0 ? (ssize_t)n : NGHTTP2_ERR_DEFERRED;
}

int or_h2_added_fields(const or_h2_stream *st, or_h2_fields *out)
{
    int r = 0;
    if (st->ids.own_request_id)
        r |= or_h2_fields_add(out, "x-request-id", 12, st->ids.request_id,
                              strlen(st->ids.request_id));
    if (st->ids.own_traceparent)
        r |= or_h2_fields_add(out, "traceparent", 11, st->ids.traceparent,
                              strlen(st->ids.traceparent));
    const or_buf *xfcc;
    if (is_inbound(st->hs)) {
        r |= or_conn_xfcc(st->hs->c, &xfcc);
        if (xfcc->len > 0) /* none for plaintext */
            r |= or_h2_fields_add(out, "x-forwarded-client-cert", 23, xfcc->data, xfcc->len);
    }
    return r;
}

static int request_fields(or_h2_stream *st, or_h2_nvs *nv, or_h2_fields *added)
{
    const or_h2_request *rq = &st->req;
    int r = or_h2_nvs_push(nv, ":method", 7, rq->method.data, rq->method.len);
    r |= or_h2_nvs_push(nv, ":scheme", 7, rq->scheme.data, rq->scheme.len);
    if (rq->have_authority)
        r |= or_h2_nvs_push(nv, ":authority", 10, rq->authority.data, rq->authority.len);
    r |= or_h2_nvs_push(nv, ":path", 5, st->target.data, st->target.len);
    for (size_t i = 0; i < rq->fields.n; i++) {
        const char *name = or_h2_field_name(&rq->fields, i);
        if (or_h2_field_dropped(name, rq->fields.v[i].name_len))
            continue;
        r |= or_h2_nvs_push(nv, name, rq->fields.v[i].name_len,
                            or_h2_field_value(&rq->fields, i), rq->fields.v[i].value_len);
    }
    if (or_h2_front_hop(st->hs)) /* the inbound sidecar gives the app HTTP/1.1 */
        r |= or_h2_nvs_push_str(nv, OR_HOP_ORIG_PROTO, "HTTP/1.1");
    r |= or_h2_added_fields(st, added);
    return r | or_h2_nvs_fields(nv, added);
}

static void submit(or_h2_stream *st)
{
    or_h2_up *up = st->up;
    or_h2_nvs nv = {0};
    or_h2_fields added = {0};
    bool bodiless = st->rq == OR_H2_RQ_DONE && st->req_body.len == st->req_off &&
                    st->req_trailers.n == 0;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = request_read};
    int32_t id = -1;
    if (request_fields(st, &nv, &added) == 0)
        id = nghttp2_submit_request(up->ng, NULL, nv.v, nv.n, bodiless ? NULL : &prd, st);
    or_h2_nvs_free(&nv);
    or_h2_fields_free(&added);
    if (id < 0) {
        or_h2_up_unlink(st);
        or_h2_set_uq(st, OR_H2_UQ_ENDED);
        or_h2_upstream_failed(st, "UF", NGHTTP2_REFUSED_STREAM);
        return;
    }
    st->up_id = id;
    or_h2_set_uq(st, OR_H2_UQ_OPEN);
    st->sent_ns = uv_hrtime();
}

/* ---- losing an upstream ---- */

static bool forward_h2(or_h2_stream *st, const or_h2_up *avoid);

/* Not started upstream, no body byte gone: it may go again, once. */
static bool may_retry(const or_h2_stream *st)
{
    return !st->retried && st->uq != OR_H2_UQ_SENT && st->body_up == 0 && st->rs == OR_H2_RS_NONE &&
           st->down_open && !st->local;
}

static bool may_retry_refused(const or_h2_stream *st, uint32_t error_code)
{
    return error_code == NGHTTP2_REFUSED_STREAM && !st->retried && st->body_up == 0 &&
           st->rs == OR_H2_RS_NONE && st->down_open && !st->local;
}

static void retry(or_h2_stream *st, const or_h2_up *avoid)
{
    st->retried = true;
    st->up_id = 0;
    or_h2_set_uq(st, OR_H2_UQ_NONE);
    or_worker_listener *l = st->hs->c->listener;
    or_log_debug("upstream stream retried listener=%s", l->cfg->name);
    if (forward_h2(st, avoid)) /* counted once a connection has taken it */
        or_metrics_inc(l->metrics->up_retries);
}

/* The streams of `up`, which has no upstream streams any more. Those it
 * had not started go again when it had been ready (not after a failed
 * connect, which the next connection would likely repeat). */
static void detach_streams(or_h2_up *up, const char *flags, bool was_ready)
{
    or_h2_stream *next;
    for (or_h2_stream *st = LIST_FIRST(&up->streams); st; st = next) {
        next = LIST_NEXT(st, up_entry);
        bool waiting = st->uq == OR_H2_UQ_WAITING;
        or_h2_up_unlink(st);
        or_h2_pool_mark(st->hs);
        if (was_ready && may_retry(st)) {
            retry(st, up);
            continue;
        }
        or_h2_set_uq(st, OR_H2_UQ_ENDED);
        or_h2_stream_let_go(st);
        or_h2_consumed_request(st, st->req_body.len - st->req_off);
        st->req_body.len = st->req_off = 0;
        or_h2_upstream_failed(st, waiting && strcmp(flags, "UC") == 0 ? "UF" : flags,
                              NGHTTP2_INTERNAL_ERROR);
    }
}

void or_h2_up_lost(or_h2_up *up, const char *flags)
{
    if (up->state == OR_H2_UP_CLOSED)
        return;
    bool was_ready = up->state == OR_H2_UP_READY;
    up->state = OR_H2_UP_CLOSED;
    detach_streams(up, flags, was_ready);
    if (up->u)
        or_upstream_close(up->u);
    up->u = NULL;
    nghttp2_session_del(up->ng); /* never from inside its own callbacks */
    up->ng = NULL;
}

void or_h2_up_close(or_h2_up *up)
{
    up->state = OR_H2_UP_CLOSED;
    if (up->u) {
        up->u->on_ready = NULL; /* still connecting: it must not call back */
        or_upstream_close(up->u);
    }
    up->u = NULL;
}

void or_h2_up_free(or_h2_up *up)
{
    nghttp2_session_del(up->ng);
    free(up->peer_id);
    free(up);
}

void or_h2_up_retire(or_h2_up *up)
{
    if (up->admit == OR_H2_ADMIT_OPEN)
        up->admit = OR_H2_ADMIT_RETIRED;
    if (up->nstreams > 0 || up->state == OR_H2_UP_CLOSED)
        return;
    if (up->state == OR_H2_UP_CONNECTING) {
        or_h2_up_close(up);
        return;
    }
    /* GOAWAY(NO_ERROR); or_h2_up_send closes it once that is out */
    if (nghttp2_session_terminate_session(up->ng, NGHTTP2_NO_ERROR) != 0)
        or_h2_up_lost(up, "UC");
}

/* ---- nghttp2 client callbacks ---- */

/* The stream of an upstream frame; its session is flushed after the event. */
static or_h2_stream *stream_of(nghttp2_session *ng, int32_t id)
{
    or_h2_stream *st = id > 0 ? nghttp2_session_get_stream_user_data(ng, id) : NULL;
    if (st)
        or_h2_pool_mark(st->hs);
    return st;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    (void)user;
    or_h2_stream *st = stream_of(ng, frame->hd.stream_id);
    if (st && frame->hd.type == NGHTTP2_HEADERS && st->rs == OR_H2_RS_NONE) {
        or_h2_fields_reset(&st->res_head); /* after a 1xx, the final head */
        st->up_status = 0;
    }
    return 0;
}

static void note_grpc_status(or_h2_stream *st, const char *n, size_t nlen, const char *v,
                             size_t vlen)
{
    if (nlen == 11 && memcmp(n, "grpc-status", 11) == 0 && vlen < sizeof st->grpc_status) {
        memcpy(st->grpc_status, v, vlen);
        st->grpc_status[vlen] = '\0';
    }
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags;
    (void)user;
    or_h2_stream *st = stream_of(ng, frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    const char *n = (const char *)name, *v = (const char *)value;
    bool head = st->rs == OR_H2_RS_NONE;
    or_h2_fields *f = head ? &st->res_head : &st->res_trailers;
    or_h2_check chk = head ? or_h2_field_check(n, namelen, v, valuelen)
                           : or_h2_trailer_field(n, namelen, v, valuelen);
    if (chk == OR_H2_OK && f->size + namelen + valuelen + 32 > OR_H2_MAX_RESPONSE_HEAD)
        chk = OR_H2_TOO_LARGE;
    if (chk == OR_H2_OK && (head || !or_h2_trailer_dropped(n, namelen)) &&
        or_h2_fields_add(f, n, namelen, v, valuelen) != 0)
        chk = OR_H2_NO_MEMORY;
    if (chk != OR_H2_OK) {
        if (st->up_refused == OR_H2_OK)
            st->up_refused = chk;
        return 0;
    }
    if (head && namelen == 7 && memcmp(n, ":status", 7) == 0) {
        st->up_status = 0;
        for (size_t i = 0; i < valuelen && i < 3; i++)
            st->up_status = st->up_status * 10 + (v[i] - '0');
    }
    note_grpc_status(st, n, namelen, v, valuelen);
    return 0;
}

static void bad_response(or_h2_stream *st)
{
    or_log_warn("bad upstream response listener=%s protocol=HTTP/2 reason=\"%s\"",
                st->hs->c->listener->cfg->name, or_h2_check_text(st->up_refused));
    or_h2_up_cancel(st);
    or_h2_upstream_failed(st, "UPE", NGHTTP2_INTERNAL_ERROR);
}

static void response_headers(or_h2_stream *st, bool end)
{
    if (st->up_refused != OR_H2_OK) {
        bad_response(st);
        return;
    }
    if (st->rs != OR_H2_RS_NONE) { /* trailers */
        st->rs = OR_H2_RS_ENDED;
        or_h2_response_progress(st);
        return;
    }
    if (st->up_status < 200) { /* 1xx: not passed on */
        or_h2_fields_reset(&st->res_head);
        return;
    }
    st->upstream_us = (int64_t)((uv_hrtime() - st->sent_ns) / 1000);
    st->status = st->up_status;
    if (end)
        st->rs = OR_H2_RS_ENDED;
    if (st->local || !st->down_open)
        return;
    or_h2_response_head(st);
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    or_h2_up *up = user;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        up->admit = OR_H2_ADMIT_GOAWAY; /* streams above last_stream_id close REFUSED */
        return 0;
    }
    or_h2_stream *st = stream_of(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    if (or_h2_frame_is_progress(frame))
        st->last_ms = uv_now(&up->pool->l->worker->loop);
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        response_headers(st, end);
    } else if (frame->hd.type == NGHTTP2_DATA && end) {
        st->rs = OR_H2_RS_ENDED;
        or_h2_response_progress(st);
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    (void)user;
    or_h2_stream *st = stream_of(ng, id);
    if (!st || !st->down_open || st->local || st->rs == OR_H2_RS_NONE) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (or_buf_append(&st->res_body, data, len) != 0) {
        nghttp2_session_consume(ng, id, len);
        or_h2_stream_reset(st, NGHTTP2_INTERNAL_ERROR, "UPE");
        return 0;
    }
    /* buffered: the shared connection window is free again; the stream's
     * comes back as the client takes the bytes (or_h2_up_consumed) */
    nghttp2_session_consume_connection(ng, len);
    or_h2_response_progress(st);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    (void)user;
    or_h2_stream *st = stream_of(ng, frame->hd.stream_id);
    if (st && frame->hd.type == NGHTTP2_HEADERS && st->uq == OR_H2_UQ_OPEN)
        or_h2_set_uq(st, OR_H2_UQ_SENT);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
    or_h2_up *up = user;
    or_h2_stream *st = stream_of(ng, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    or_h2_up_unlink(st);
    if (may_retry_refused(st, error_code)) { /* the peer did not process it */
        retry(st, up);
        return 0;
    }
    or_h2_set_uq(st, OR_H2_UQ_ENDED);
    or_h2_stream_let_go(st);
    or_h2_consumed_request(st, st->req_body.len - st->req_off);
    st->req_body.len = st->req_off = 0;
    if (st->rs != OR_H2_RS_ENDED)
        or_h2_upstream_failed(st, "UC", error_code);
    return 0;
}

static nghttp2_session_callbacks *client_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    return cb;
}

static int client_new(or_h2_up *up)
{
    nghttp2_session_callbacks *cb = client_callbacks();
    nghttp2_option *opt = NULL;
    if (!cb || nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    int r = nghttp2_session_client_new2(&up->ng, cb, up, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (r != 0)
        return -1;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, OR_H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, OR_H2_MAX_RESPONSE_HEAD},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, OR_H2_UP_STREAM_WINDOW},
    };
    r = nghttp2_submit_settings(up->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    if (r == 0)
        r = nghttp2_session_set_local_window_size(up->ng, NGHTTP2_FLAG_NONE, 0,
                                                  OR_H2_CONN_WINDOW);
    return r;
}

/* ---- upstream events ---- */

bool or_h2_up_send(or_h2_up *up)
{
    bool sent = false;
    if (usable(up)) {
        ssize_t n = or_h2_gather(up->pool, up->ng, &up->u->s);
        if (n < 0) {
            or_h2_up_lost(up, "UPE");
            return true;
        }
        sent = n > 0;
    }
    if (usable(up) && !nghttp2_session_want_read(up->ng) && !nghttp2_session_want_write(up->ng)) {
        or_h2_up_lost(up, "UC"); /* done with: a GOAWAY and no streams left */
        return true;
    }
    return sent;
}

static void on_up_read(or_stream *s, ssize_t nread, const char *data)
{
    or_h2_up *up = up_of(s);
    or_h2_pool *p = up->pool;
    assert(usable(up));
    if (nread < 0) {
        or_h2_up_lost(up, "UC");
    } else {
        up->heard_ms = uv_now(&p->l->worker->loop); /* any byte answers the keepalive */
        up->ping_ms = 0;
        ssize_t rv = nghttp2_session_mem_recv(up->ng, (const uint8_t *)data, (size_t)nread);
        if (rv < 0) {
            or_log_warn("bad upstream response listener=%s protocol=HTTP/2 reason=\"%s\"",
                        cfg_of(up)->name, nghttp2_strerror((int)rv));
            or_h2_up_lost(up, "UPE");
        }
    }
    or_h2_pool_defer(p);
}

static void on_up_drain(or_stream *s)
{
    or_h2_up *up = up_of(s);
    if (or_stream_queued(s) <= OR_PIPE_LOW_WATERMARK)
        or_h2_pool_defer(up->pool);
}

static void on_up_write_error(or_stream *s, int status)
{
    (void)status;
    or_h2_up *up = up_of(s);
    or_h2_pool *p = up->pool;
    or_h2_up_lost(up, "UC");
    or_h2_pool_defer(p);
}

static const char *up_alpn(or_h2_up *up)
{
    return up->u->s.ssl ? or_stream_alpn(&up->u->s) : "h2"; /* plain: h2c, prior knowledge */
}

static bool agreed(or_h2_up *up, const char *proto)
{
    const char *alpn = up_alpn(up);
    return alpn && strcmp(alpn, proto) == 0;
}

/* What a connection of the pool offers by ALPN (mTLS to the peer sidecar):
 * with multiplex, the hop first (it carries HTTP/1.1 requests too). */
static or_tls_conf_kind client_conf(const or_listener_config *cfg)
{
    if (cfg->multiplex)
        return OR_TLS_CLIENT_HOP;
    return cfg->upstream_protocol == OR_UPSTREAM_AUTO ? OR_TLS_CLIENT_H2_H1 : OR_TLS_CLIENT_H2;
}

/* upstream_protocol auto on an outbound listener: a peer that did not
 * choose h2 gets the streams as HTTP/1.1. */
static bool translates(const or_h2_up *up)
{
    const or_listener_config *cfg = cfg_of(up);
    return cfg->mode == OR_MODE_OUTBOUND && cfg->upstream_protocol == OR_UPSTREAM_AUTO;
}

static void refused_h2(or_h2_up *up)
{
    const char *alpn = up_alpn(up);
    or_log_warn("upstream failed listener=%s upstream=%s reason=\"the peer did not agree to "
                "HTTP/2 (ALPN %s)\"",
                cfg_of(up)->name, cfg_of(up)->upstream_text, alpn ? alpn : "none");
    or_h2_up_lost(up, "UF");
}

/* The peer chose HTTP/1.1 (or nothing): the streams waiting for `up` go as
 * HTTP/1.1, the first over this connection, which it takes; later streams
 * of their sessions go straight to HTTP/1.1. */
static void hand_over_h1(or_h2_up *up)
{
    or_upstream *u = up->u;
    const char *alpn = up_alpn(up);
    or_log_debug("upstream speaks HTTP/1.1 listener=%s upstream=%s alpn=%s", cfg_of(up)->name,
                 cfg_of(up)->upstream_text, alpn ? alpn : "none");
    up->u = NULL;
    up->state = OR_H2_UP_CLOSED;
    or_h2_stream *st;
    while ((st = LIST_FIRST(&up->streams))) {
        or_h2_up_release(st); /* unlinks it too */
        st->hs->up_h1 = true;
        or_h2_pool_mark(st->hs);
        if (st->local || !st->down_open)
            continue;
        or_h2_h1_forward(st, u);
        u = NULL;
    }
    if (u)
        or_pool_put(u);
}

static void on_ready(or_upstream *u, int status, const char *reason, void *ctx)
{
    (void)reason;
    or_h2_up *up = ctx;
    or_h2_pool *p = up->pool;
    if (status != 0) {
        up->u = NULL; /* it is closing itself */
        or_h2_up_lost(up, "UF");
        or_h2_pool_defer(p);
        return;
    }
    bool hop = up->u->s.ssl && agreed(up, OR_ALPN_HOP);
    if (!hop) {
        up->no_hop = true;
        or_h2_front_refused(up); /* before the rest: the connection may change hands */
    }
    if (!hop && !agreed(up, "h2")) {
        if (translates(up))
            hand_over_h1(up);
        else
            refused_h2(up);
        or_h2_pool_defer(p);
        return;
    }
    if (client_new(up) != 0) {
        or_h2_up_lost(up, "UF");
        or_h2_pool_defer(p);
        return;
    }
    up->state = OR_H2_UP_READY;
    up->heard_ms = uv_now(&p->l->worker->loop);
    u->user = up;
    u->s.on_read = on_up_read;
    u->s.on_drain = on_up_drain;
    u->s.on_write_error = on_up_write_error;
    if (u->s.ssl && u->s.peer.id)
        up->peer_id = strdup(u->s.peer.id);
    up->cipher = or_stream_cipher(&u->s);
    or_h2_stream *next;
    for (or_h2_stream *st = LIST_FIRST(&up->streams); st; st = next) {
        next = LIST_NEXT(st, up_entry);
        or_h2_pool_mark(st->hs);
        if (st->uq == OR_H2_UQ_WAITING && !st->local && st->down_open)
            submit(st);
    }
    if (or_stream_read_start(&u->s) != 0)
        or_h2_up_lost(up, "UC");
    or_h2_pool_defer(p);
}

or_h2_up *or_h2_up_open(or_h2_pool *p)
{
    or_h2_up *up = calloc(1, sizeof *up);
    if (!up)
        return NULL;
    or_h2_pool_add(p, up);
    up->state = OR_H2_UP_CONNECTING;
    up->u = or_upstream_open(p->l, on_ready, up);
    if (up->u && up->u->s.ssl &&
        or_stream_set_tls_conf(&up->u->s, &up->u->tls->tls.conf[client_conf(p->l->cfg)]) != 0) {
        or_upstream_close(up->u); /* closed before it could report */
        up->u = NULL;
    }
    if (!up->u)
        up->state = OR_H2_UP_CLOSED;
    return up;
}

/* ---- the session's side ---- */

/* HTTP/1.1 for this stream: upstream_protocol http1; or auto, outbound
 * after the peer sidecar chose it, inbound when the request arrived over
 * the hop as HTTP/1.1 or the listener does not take HTTP/2 (the app is
 * then not known to speak it). Front streams ride the hop. */
static bool goes_h1(const or_h2_stream *st)
{
    const or_h2_session *hs = st->hs;
    const or_listener_config *cfg = hs->c->listener->cfg;
    if (hs->front)
        return false;
    if (cfg->upstream_protocol != OR_UPSTREAM_AUTO)
        return cfg->upstream_protocol == OR_UPSTREAM_HTTP1;
    if (cfg->mode == OR_MODE_INBOUND)
        return st->orig_h1 || !cfg->http2;
    return hs->up_h1;
}

/* False when no connection takes the stream (it is answered 503 UF). */
static bool forward_h2(or_h2_stream *st, const or_h2_up *avoid)
{
    or_h2_pool *p = st->hs->pool;
    or_h2_up *up = or_h2_pool_pick(p, avoid, or_h2_front_hop(st->hs));
    if (!up && !or_h2_pool_full(p))
        up = or_h2_up_open(p);
    if (!up || up->state == OR_H2_UP_CLOSED) {
        or_h2_upstream_failed(st, "UF", NGHTTP2_REFUSED_STREAM);
        return false;
    }
    or_h2_up_link(up, st);
    if (usable(up))
        submit(st);
    return true;
}

void or_h2_forward(or_h2_stream *st)
{
    if (goes_h1(st)) {
        or_h2_h1_forward(st, NULL);
        return;
    }
    (void)forward_h2(st, NULL);
}

void or_h2_up_request_progress(or_h2_stream *st)
{
    if (st->h1) {
        or_h2_h1_request_progress(st);
        return;
    }
    if (or_h2_uq_open(st) && usable(st->up))
        nghttp2_session_resume_data(st->up->ng, st->up_id);
}

void or_h2_up_consumed(or_h2_stream *st, size_t n)
{
    if (st->h1) {
        or_h2_h1_consumed(st, n);
        return;
    }
    /* the stream window only: the connection's came back when buffered */
    if (st->up && or_h2_uq_open(st) && usable(st->up) && n > 0)
        nghttp2_session_consume_stream(st->up->ng, st->up_id, n);
}

void or_h2_up_cancel(or_h2_stream *st)
{
    if (st->h1) {
        or_h2_h1_cancel(st);
        return;
    }
    or_h2_up *up = st->up;
    if (!up || !st->up_linked)
        return;
    if (or_h2_uq_open(st) && usable(up)) {
        nghttp2_submit_rst_stream(up->ng, NGHTTP2_FLAG_NONE, st->up_id, NGHTTP2_CANCEL);
        nghttp2_session_set_stream_user_data(up->ng, st->up_id, NULL);
    }
    or_h2_set_uq(st, OR_H2_UQ_ENDED); /* a waiting one will not be sent */
    or_h2_stream_let_go(st);
    or_h2_up_unlink(st);
}

void or_h2_up_forget_session(or_h2_session *hs)
{
    bool reset = false;
    or_h2_stream *st;
    LIST_FOREACH(st, &hs->streams, entry)
        if (!st->h1 && st->up_linked) {
            reset |= or_h2_uq_open(st);
            or_h2_up_cancel(st);
        }
    if (reset && hs->pool)
        or_h2_pool_soon(hs->pool); /* the RSTs go out */
}
