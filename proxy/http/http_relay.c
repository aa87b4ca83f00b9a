/*
 * HTTP/1.1 proxying: the upstream side.
 *
 * The relay takes a parsed request from http.c, finds it an upstream (an
 * idle pooled connection first, a new one otherwise), sends the rewritten
 * head and then the body as http.c hands it over (re-chunked when it came
 * chunked). Rewriting drops hop-by-hop headers and outrider-orig-proto
 * (the hop's own field, docs/http2.md), removes any x-forwarded-client-cert
 * that arrived from outside, and on inbound listeners sets it to the
 * verified identities, so an application can trust it (a plaintext
 * request, on a permissive or disable listener, gets none);
 * a request without x-request-id gets one.
 *
 * The response head is collected and checked like a request head, then
 * rewritten for the downstream: the relay decides the framing (pass a
 * Content-Length body through, re-chunk a chunked body for HTTP/1.1 clients,
 * or stream until close and close after) and the Connection header. 1xx
 * answers are relayed and the final one awaited; a 101 to an Upgrade
 * request hands the connection to the byte pipe.
 *
 * When the response ends the upstream returns to the pool if the peer
 * allows keep-alive and the exchange ended cleanly. A pooled upstream that
 * turns out to be closed before any byte of the response arrives is
 * replaced, and a request without a body is sent again, once.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_session.h"
#include "outrider/http2_h1.h"
#include "outrider/log.h"
#include "outrider/pipe.h"

/* An upstream's callbacks are the session's only while it is hs->up: a
 * released upstream is pooled (other callbacks) or closed (none). */
static or_http_session *session_of(or_stream *s)
{
    or_upstream *up = s->owner;
    or_http_session *hs = or_http_session_of(up->user);
    assert(hs->up == up && hs->rq != OR_REQ_CLOSED);
    return hs;
}

static bool is_inbound(const or_http_session *hs)
{
    return hs->c->listener->cfg->mode == OR_MODE_INBOUND;
}

void or_http_relay_release(or_http_session *hs, bool reusable)
{
    or_upstream *up = hs->up;
    hs->up = NULL;
    if (!up)
        return;
    if (reusable && up->ready) {
        up->requests++;
        or_pool_put(up);
    } else {
        or_upstream_close(up);
    }
}

/* ---- the request ---- */

static int copy_header(or_buf *b, const or_http_header *h)
{
    return or_http_field_line(b, h->name, h->name_len, h->value, h->value_len);
}

static int identity_headers(or_http_session *hs, or_buf *b)
{
    int r = 0;
    if (hs->ids.own_request_id)
        r |= or_http_field_line(b, "x-request-id", 12, hs->ids.request_id,
                                strlen(hs->ids.request_id));
    if (hs->ids.own_traceparent)
        r |= or_http_field_line(b, "traceparent", 11, hs->ids.traceparent,
                                strlen(hs->ids.traceparent));
    const or_buf *xfcc;
    if (is_inbound(hs)) {
        r |= or_conn_xfcc(hs->c, &xfcc);
        if (xfcc->len > 0) /* none for plaintext */
            r |= or_http_field_line(b, "x-forwarded-client-cert", 23, xfcc->data, xfcc->len);
    }
    return r;
}

static int build_request_head(or_http_session *hs)
{
    or_http_head *h = &hs->req;
    or_buf *b = &hs->fwd;
    b->len = 0;
    int r = or_buf_append_str(b, hs->method);
    r |= or_buf_append(b, " ", 1);
    r |= or_buf_append(b, hs->target.data, hs->target.len);
    r |= or_buf_append(b, " HTTP/1.1\r\n", 11);
    bool authority = hs->tgt.authority_len > 0; /* absolute-form: it replaces Host */
    const or_http_header *upgrade = NULL;
    for (size_t i = 0; i < h->nheaders; i++) {
        const or_http_header *hdr = &h->headers[i];
        if (or_http_name_is(hdr->name, hdr->name_len, "upgrade"))
            upgrade = hdr;
        if (or_http_is_hop_by_hop(h, hdr) ||
            or_http_name_is(hdr->name, hdr->name_len, "x-forwarded-client-cert") ||
            or_http_name_is(hdr->name, hdr->name_len, OR_HOP_ORIG_PROTO) ||
            (authority && or_http_name_is(hdr->name, hdr->name_len, "host")))
            continue;
        r |= copy_header(b, hdr);
    }
    r |= identity_headers(hs, b);
    const char *upstream = hs->c->listener->cfg->upstream_text;
    if (authority)
        r |= or_http_field_line(b, "host", 4, hs->tgt.authority, hs->tgt.authority_len);
    else if (!or_http_head_host(h)) /* an HTTP/1.0 client may send none */
        r |= or_http_field_line(b, "host", 4, upstream, strlen(upstream));
    if (h->chunked)
        r |= or_buf_append_str(b, "transfer-encoding: chunked\r\n");
    if (h->upgrade && upgrade) {
        r |= or_buf_append_str(b, "connection: upgrade\r\n");
        r |= copy_header(b, upgrade);
    }
    r |= or_buf_append(b, "\r\n", 2);
    return r;
}

static void send_request_head(or_http_session *hs)
{
    if (hs->fwd.len == 0 && build_request_head(hs) != 0) {
        or_http_local_reply(hs, 500, "DPE", "cannot build the request\n");
        return;
    }
    or_http_head_reset(&hs->res);
    hs->res_chunks = (or_chunked){0};
    hs->res.skip_body = hs->req_parser.method == HTTP_HEAD;
    http_parser_init(&hs->res_parser, HTTP_RESPONSE);
    hs->res_parser.data = hs;
    or_http_set_rs(hs, OR_RES_NONE);
    hs->sent_ns = uv_hrtime();
    if (or_stream_write(&hs->up->s, hs->fwd.data, hs->fwd.len) != 0)
        or_http_local_reply(hs, 502, "UC", "upstream connection failed\n");
}

void or_http_write_body(or_stream *s, bool chunked, const char *data, size_t len)
{
    if (chunked && len > 0) {
        char size[24];
        int n = snprintf(size, sizeof size, "%zx\r\n", len);
        or_stream_write(s, size, (size_t)n);
        or_stream_write(s, data, len);
        or_stream_write(s, "\r\n", 2);
    } else if (len > 0) {
        or_stream_write(s, data, len);
    }
}

void or_http_relay_body(or_http_session *hs, const char *data, size_t len, bool last)
{
    or_http_write_body(&hs->up->s, hs->req.chunked, data, len);
    if (hs->req.chunked && last)
        or_stream_write(&hs->up->s, "0\r\n\r\n", 5);
}

/* ---- the response ---- */

static void finish_response(or_http_session *hs, bool reusable)
{
    if (hs->framing == OR_FRAME_RECHUNK)
        or_stream_write(&hs->c->down, "0\r\n\r\n", 5);
    if (hs->rq == OR_REQ_BODY) {
        /* Answered before the request body ended: the upstream cannot be
         * reused, and the rest of the body is read and dropped so the
         * client's connection stays usable, as the app meant it to be. */
        or_http_relay_release(hs, false);
        or_http_set_rs(hs, OR_RES_DONE);
        or_http_set_rq(hs, OR_REQ_DISCARD);
        or_http_pump(hs);
        return;
    }
    hs->up_reusable = reusable && hs->rq == OR_REQ_SENT &&
                      hs->framing != OR_FRAME_UNTIL_CLOSE && hs->res.keep_alive;
    or_http_set_rs(hs, OR_RES_DONE);
    or_http_exchange_done(hs);
}

static int on_response_body(http_parser *p, const char *at, size_t len)
{
    or_http_session *hs = p->data;
    assert(hs->rs == OR_RES_BODY);
    hs->body_out += len;
    or_http_write_body(&hs->c->down, hs->framing == OR_FRAME_RECHUNK, at, len);
    return 0;
}

static int on_response_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static const http_parser_settings response_body_settings = {
    .on_body = on_response_body,
    .on_message_complete = on_response_complete,
};

static int build_response_head(or_http_session *hs, or_buf *b, bool final)
{
    or_http_head *h = &hs->res;
    int r = or_buf_append_str(b, "HTTP/1.1 ");
    r |= or_buf_append_uint(b, (uint64_t)h->status);
    r |= or_buf_append(b, " ", 1);
    if (h->reason_len > 0)
        r |= or_buf_append(b, h->reason, h->reason_len);
    else
        r |= or_buf_append_str(b, http_status_str((enum http_status)h->status));
    r |= or_buf_append(b, "\r\n", 2);
    bool switching = h->status == 101;
    bool no_length = h->status < 200 || h->status == 204; /* RFC 9110 8.6: never sent */
    for (size_t i = 0; i < h->nheaders; i++) {
        const or_http_header *hdr = &h->headers[i];
        bool keep = (!or_http_is_hop_by_hop(h, hdr) ||
                     (switching && or_http_name_is(hdr->name, hdr->name_len, "upgrade"))) &&
                    !(no_length && or_http_name_is(hdr->name, hdr->name_len, "content-length"));
        if (keep)
            r |= copy_header(b, hdr);
    }
    if (switching)
        r |= or_buf_append_str(b, "connection: upgrade\r\n");
    else if (final && hs->framing == OR_FRAME_RECHUNK)
        r |= or_buf_append_str(b, "transfer-encoding: chunked\r\n");
    if (final && hs->close_after)
        r |= or_buf_append_str(b, "connection: close\r\n");
    else if (final && hs->req.minor == 0)
        r |= or_buf_append_str(b, "connection: keep-alive\r\n");
    r |= or_buf_append(b, "\r\n", 2);
    return r;
}

static void decide_framing(or_http_session *hs)
{
    or_http_head *h = &hs->res;
    bool bodiless = hs->res.skip_body || h->status == 204 || h->status == 304 || h->message_done;
    bool client_11 = hs->req.major == 1 && hs->req.minor >= 1;
    if (!hs->req.keep_alive || hs->c->worker->draining)
        hs->close_after = true;
    if (bodiless)
        return;
    if (h->chunked && client_11) {
        hs->framing = OR_FRAME_RECHUNK;
    } else if (!h->has_content_length) {
        if (!h->chunked)
            hs->framing = OR_FRAME_UNTIL_CLOSE;
        hs->close_after = true; /* the body ends when the connection does */
    }
}

static void relay_head(or_http_session *hs, bool final)
{
    or_buf b = {0};
    if (build_response_head(hs, &b, final) == 0)
        or_stream_write(&hs->c->down, b.data, b.len);
    free(b.data);
}

static void switch_to_pipe(or_http_session *hs, const char *rest, size_t rest_len)
{
    or_conn *c = hs->c;
    relay_head(hs, false);
    hs->status = 101;
    or_http_set_rs(hs, OR_RES_DONE);
    if (rest_len > 0)
        or_stream_write(&c->down, rest, rest_len);
    /* Bytes the client sent after its request head belong to the new protocol. */
    if (hs->in.len > 0)
        or_stream_write(&hs->up->s, hs->in.data, hs->in.len);
    hs->in.len = 0;
    or_http_upgrade(hs);
}

static void bad_response(or_http_session *hs, const char *why)
{
    or_log_warn("bad upstream response listener=%s reason=\"%s\"", hs->c->listener->cfg->name,
                why);
    or_http_local_reply(hs, 502, "UPE", "upstream sent an invalid response\n");
}

/* Returns false when the session has ended or changed hands. */
static bool on_response_head(or_http_session *hs, const char *rest, size_t rest_len)
{
    const char *why = NULL;
    or_http_head *h = &hs->res;
    if (or_http_head_check(h, false, &why) != 0 || or_http_head_parse(h, &hs->res_parser, &why) != 0 ||
        h->too_many_headers) {
        bad_response(hs, why ? why : "too many header fields");
        return false;
    }
    or_http_te te = or_http_head_te(h);
    if (te == OR_TE_OTHER_CODINGS || te == OR_TE_NOT_CHUNKED) {
        bad_response(hs, "a transfer coding other than chunked");
        return false;
    }
    http_parser_pause(&hs->res_parser, 0);
    if (h->status == 101) {
        if (!hs->req.upgrade) {
            bad_response(hs, "101 without an Upgrade request");
            return false;
        }
        switch_to_pipe(hs, rest, rest_len);
        return false;
    }
    if (h->status < 200) {
        relay_head(hs, false);
        bool skip = h->skip_body;
        or_http_head_reset(h);
        h->skip_body = skip;
        or_http_set_rs(hs, OR_RES_HEAD);
        return true;
    }
    decide_framing(hs);
    relay_head(hs, true);
    hs->status = h->status;
    or_http_set_rs(hs, OR_RES_BODY);
    if (h->message_done) {
        finish_response(hs, true);
        return false;
    }
    return true;
}

static void process_response(or_http_session *hs, const char *data, size_t len)
{
    /* Every step that can end the exchange returns. */
    while (len > 0) {
        if (hs->rs == OR_RES_HEAD) {
            size_t used = 0;
            or_head_status st =
                or_http_head_collect(&hs->res, data, len, OR_HTTP_MAX_RESPONSE_HEAD, &used);
            data += used;
            len -= used;
            if (st == OR_HEAD_TOO_BIG) {
                bad_response(hs, "response head too large");
                return;
            }
            if (st == OR_HEAD_MORE || !on_response_head(hs, data, len))
                return;
            continue;
        }
        if (hs->rs != OR_RES_BODY) {
            or_http_relay_release(hs, false); /* bytes nobody asked for */
            return;
        }
        size_t valid = hs->res.chunked ? or_chunked_scan(&hs->res_chunks, data, len) : len;
        size_t n = valid > 0 ? http_parser_execute(&hs->res_parser, &response_body_settings,
                                                   data, valid)
                             : 0; /* no bytes would tell http-parser the stream ended */
        if (hs->res_chunks.state == OR_CHUNK_ERROR && hs->rs == OR_RES_BODY) {
            or_log_warn("bad upstream response listener=%s reason=\"%s\"",
                        hs->c->listener->cfg->name, hs->res_chunks.why);
            or_http_abort(hs, "UPE");
            return;
        }
        enum http_errno err = HTTP_PARSER_ERRNO(&hs->res_parser);
        if (err == HPE_PAUSED) {
            http_parser_pause(&hs->res_parser, 0);
            finish_response(hs, n == len);
            return;
        }
        if (err != HPE_OK) {
            or_http_abort(hs, "UPE");
            return;
        }
        data += n;
        len -= n;
    }
}

/* ---- upstream events ---- */

static void open_upstream(or_http_session *hs);

static void upstream_ended(or_http_session *hs, ssize_t status)
{
    if (hs->rs == OR_RES_BODY && hs->framing == OR_FRAME_UNTIL_CLOSE && status == UV_EOF) {
        http_parser_execute(&hs->res_parser, &response_body_settings, NULL, 0);
        finish_response(hs, false);
        return;
    }
    bool nothing_back = hs->rs == OR_RES_NONE;
    if (nothing_back && hs->origin == OR_UP_POOLED && hs->req.message_done) {
        or_log_debug("pooled upstream closed, retrying listener=%s", hs->c->listener->cfg->name);
        or_http_relay_release(hs, false);
        or_metrics_inc(hs->c->listener->metrics->up_retries);
        hs->origin = OR_UP_RETRY;
        open_upstream(hs);
        return;
    }
    or_http_relay_release(hs, false);
    if (!or_http_response_started(hs)) {
        or_http_local_reply(hs, 502, "UC", "upstream closed the connection before answering\n");
        return;
    }
    or_http_abort(hs, "UC");
}

static void on_up_read(or_stream *s, ssize_t nread, const char *data)
{
    or_http_session *hs = session_of(s);
    if (nread < 0) {
        upstream_ended(hs, nread);
        return;
    }
    or_conn_touch(hs->c);
    if (hs->rs == OR_RES_NONE) {
        or_http_set_rs(hs, OR_RES_HEAD);
        hs->upstream_us = (int64_t)((uv_hrtime() - hs->sent_ns) / 1000);
    }
    process_response(hs, data, (size_t)nread);
    /* The exchange may have ended and the upstream gone back. */
    if (hs->up == s->owner && or_stream_queued(&hs->c->down) > OR_PIPE_HIGH_WATERMARK)
        or_stream_read_stop(s);
}

static void on_up_drain(or_stream *s)
{
    or_http_session *hs = session_of(s);
    if (hs->rq == OR_REQ_BODY)
        or_http_pump(hs);
}

static void on_up_write_error(or_stream *s, int status)
{
    upstream_ended(session_of(s), status);
}

static void attach(or_http_session *hs, or_upstream *up)
{
    hs->up = up;
    up->user = hs->c;
    up->s.on_read = on_up_read;
    up->s.on_drain = on_up_drain;
    up->s.on_write_error = on_up_write_error;
    if (hs->rq == OR_REQ_UPSTREAM) /* a new upstream; a pooled one finds rq set */
        or_http_set_rq(hs, hs->req.message_done ? OR_REQ_SENT : OR_REQ_BODY);
    send_request_head(hs);
    if (hs->up == up && or_stream_read_start(&up->s) == 0) /* not answered locally */
        or_http_pump(hs);
}

static void on_upstream_ready(or_upstream *up, int status, const char *reason, void *ctx)
{
    (void)reason;
    or_http_session *hs = ctx;
    assert(hs->rq == OR_REQ_UPSTREAM && hs->up == up);
    if (status != 0) {
        hs->up = NULL; /* it is closing itself */
        or_http_local_reply(hs, 503, "UF", "upstream connect error\n");
        return;
    }
    attach(hs, up);
}

static void open_upstream(or_http_session *hs)
{
    or_http_set_rq(hs, OR_REQ_UPSTREAM);
    hs->up = or_upstream_open(hs->c->listener, on_upstream_ready, hs);
    if (!hs->up)
        or_http_local_reply(hs, 503, "UF", "upstream connect error\n");
}

void or_http_relay_start(or_http_session *hs)
{
    or_upstream *up = or_pool_take(hs->c->listener);
    if (!up) {
        open_upstream(hs);
        return;
    }
    hs->origin = OR_UP_POOLED;
    attach(hs, up);
}
