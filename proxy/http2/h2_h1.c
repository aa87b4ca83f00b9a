/*
 * HTTP/2 proxying: the HTTP/1.1 leg of a stream.
 *
 * A stream whose listener has upstream_protocol http1, or an outbound
 * stream whose peer sidecar chose HTTP/1.1 by ALPN, is sent upstream as one
 * HTTP/1.1 request over a connection of the listener's pool (or_pool_take,
 * else or_upstream_open), one request at a time per connection, as HTTP/1.1
 * sessions use them. The head is written by http2_h1.h's rules (which
 * refuse any byte that could split it: the stream is then reset with
 * PROTOCOL_ERROR and nothing is sent); the body follows with the
 * request's content-length, or chunked when it had none and more may
 * come, with its trailers as chunked trailers.
 *
 * The response head is collected and vetted by the same strict HTTP/1
 * rules the HTTP/1.1 relay applies, mapped to an HTTP/2 head, and the body
 * is framed by content-length, by the chunked decoder (its trailers become
 * HTTP/2 trailers) or by the end of the connection. 1xx answers are
 * dropped; HEAD, 204 and 304 answers have no body. What fails becomes the
 * HTTP/2 answer the HTTP/2 leg would give (h2_session.c): 503 UF when no
 * connection can be made, 502 UPE for an invalid response, 502 UC for one
 * that ends before it was answered, RST_STREAM once a response started.
 *
 * Flow control: request bytes are given back to the client's windows when
 * the upstream's output queue takes them; response bytes wait in the
 * stream's buffer for the downstream, and the upstream is read only while
 * none waits, so a stream holds at most one read of the upstream
 * (OR_STREAM_READ_BUF_SIZE, 64 KiB, the HTTP/2 leg's stream window).
 *
 * Ownership: the stream owns its leg (st->h1) from the first forward to
 * stream_free; the leg owns its upstream while the exchange runs and gives
 * it back to the pool only when the response was complete and framed, the
 * request fully sent and nothing followed; otherwise it closes it. While
 * the leg holds an upstream, the stream's upstream side is OR_H2_UQ_OPEN.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "../http/http_session.h"
#include "h2_session.h"
#include "outrider/http2_h1.h"
#include "outrider/http_chunked.h"
#include "outrider/log.h"
#include "outrider/metrics.h"
#include "outrider/pipe.h"


/* The request: WAITING for an upstream -> BODY (head written, body being
 * sent) -> SENT (the whole request is out). */
typedef enum { H1_RQ_WAITING, H1_RQ_BODY, H1_RQ_SENT } h1_rq;

/* The response: HEAD (collecting) -> BODY -> DONE; DONE also when the leg
 * gave up. */
typedef enum { H1_RS_HEAD, H1_RS_BODY, H1_RS_DONE } h1_rs;

typedef enum { H1_BODY_NONE, H1_BODY_LENGTH, H1_BODY_CHUNKED, H1_BODY_CLOSE } h1_framing;

struct or_h2_h1 {
    or_h2_stream *st;
    or_upstream *u;             /* owned while the exchange runs */
    h1_rq rq;
    h1_rs rs;
    h1_framing framing;
    or_h2_h1_body req_framing;
    bool pooled;                /* u came from the pool: replaced once if it closes unanswered */
    bool body_started;          /* a request body byte was written */
    bool head_request;
    bool interim;               /* a 1xx came: the app has seen the request */
    bool paused;                /* reading stopped: response bytes wait downstream */
    uint64_t remaining;         /* content-length framing: bytes still due */
    or_chunked chunks;
    or_buf trailers;            /* the chunked trailer section as received */
    or_http_head res;
    char *peer_id;              /* the upstream's SPIFFE ID (outbound), copied */
    const char *cipher;         /* static string from the TLS library */
};

static or_h2_h1 *leg_of(or_stream *s)
{
    or_upstream *u = s->owner;
    or_h2_h1 *h1 = u->user;
    assert(h1 && h1->u == u);
    return h1;
}

/* Every request-side move: WAITING (a new upstream) from anywhere, else
 * one step forward. */
static void set_rq(or_h2_h1 *h1, h1_rq to)
{
    assert(to == H1_RQ_WAITING || (int)to == (int)h1->rq + 1);
    h1->rq = to;
}

/* Response side: HEAD (a new exchange, or after a 1xx) and DONE from
 * anywhere, BODY from HEAD only. */
static void set_rs(or_h2_h1 *h1, h1_rs to)
{
    assert(to != H1_RS_BODY || h1->rs == H1_RS_HEAD);
    h1->rs = to;
}

static const char *listener_name(const or_h2_h1 *h1) { return h1->st->hs->c->listener->cfg->name; }

static size_t waiting_bytes(const or_h2_stream *st) { return st->res_body.len - st->res_off; }

/* ---- the end of an exchange ---- */

/* Lets go of the upstream: back to the pool when `reusable`, else closed.
 * Touches neither nghttp2 session. */
static void release(or_h2_h1 *h1, bool reusable)
{
    or_upstream *u = h1->u;
    h1->u = NULL;
    set_rs(h1, H1_RS_DONE);
    or_h2_set_uq(h1->st, OR_H2_UQ_ENDED);
    or_h2_stream_let_go(h1->st);
    if (!u)
        return;
    if (reusable && u->ready) {
        u->requests++;
        or_pool_put(u);
        return;
    }
    if (!u->ready)
        u->on_ready = NULL; /* still connecting: its report must not reach a freed leg */
    or_upstream_close(u);
}

/* Request bytes nobody will send go back to the client's windows. */
static void drop_request(or_h2_stream *st)
{
    or_h2_consumed_request(st, st->req_body.len - st->req_off);
    st->req_body.len = st->req_off = 0;
}

static void failed(or_h2_h1 *h1, const char *flags)
{
    or_h2_stream *st = h1->st;
    release(h1, false);
    drop_request(st);
    or_h2_upstream_failed(st, flags, strcmp(flags, "UF") == 0 ? NGHTTP2_REFUSED_STREAM
                                                             : NGHTTP2_INTERNAL_ERROR);
}

static void bad_response(or_h2_h1 *h1, const char *why)
{
    or_log_warn("bad upstream response listener=%s protocol=HTTP/1.1 reason=\"%s\"",
                listener_name(h1), why);
    failed(h1, "UPE");
}

/* The response is whole; `rest` bytes followed it in the same read. */
static void response_done(or_h2_h1 *h1, size_t rest)
{
    or_h2_stream *st = h1->st;
    bool reusable = rest == 0 && h1->rq == H1_RQ_SENT && h1->framing != H1_BODY_CLOSE &&
                    h1->res.keep_alive;
    release(h1, reusable);
    drop_request(st); /* answered before the request ended: the rest is not sent */
    st->rs = OR_H2_RS_ENDED;
    or_h2_response_progress(st);
}

/* ---- the request ---- */

static or_h2_h1_body request_framing(const or_h2_stream *st)
{
    if (st->req.content_length >= 0)
        return OR_H2_H1_BODY_LENGTH;
    bool whole = st->rq == OR_H2_RQ_DONE && st->req_body.len == st->req_off &&
                 st->req_trailers.n == 0;
    return whole ? OR_H2_H1_BODY_NONE : OR_H2_H1_BODY_CHUNKED;
}

static void refuse(or_h2_h1 *h1, or_h2_check chk)
{
    or_h2_stream *st = h1->st;
    or_log_info("request refused listener=%s peer=%s protocol=HTTP/2 reason=\"cannot be sent "
                "as HTTP/1.1: %s\"",
                listener_name(h1), st->hs->c->peer, or_h2_check_text(chk));
    release(h1, h1->rq == H1_RQ_WAITING); /* nothing was written on it */
    drop_request(st);
    or_h2_stream_reset(st, NGHTTP2_PROTOCOL_ERROR, "DPE");
}

static or_h2_check build_head(or_h2_h1 *h1, or_buf *out)
{
    or_h2_stream *st = h1->st;
    or_h2_fields added = {0};
    or_h2_check chk = OR_H2_NO_MEMORY;
    h1->req_framing = request_framing(st);
    if (or_h2_added_fields(st, &added) == 0)
        chk = or_h2_h1_request_head(out, &st->req, st->target.data, st->target.len, &added,
                                    st->hs->c->listener->cfg->upstream_text, h1->req_framing);
    or_h2_fields_free(&added);
    return chk;
}

/* Writes the head; false when the stream was refused instead. */
static bool send_head(or_h2_h1 *h1)
{
    or_h2_stream *st = h1->st;
    or_buf head = {0};
    or_h2_check chk = build_head(h1, &head);
    if (chk != OR_H2_OK) {
        or_buf_free(&head);
        refuse(h1, chk);
        return false;
    }
    or_http_head_reset(&h1->res);
    set_rs(h1, H1_RS_HEAD);
    h1->chunks = (or_chunked){0};
    h1->trailers.len = 0;
    h1->head_request = st->req.method.len == 4 && memcmp(st->req.method.data, "HEAD", 4) == 0;
    h1->interim = false;
    set_rq(h1, H1_RQ_BODY);
    st->sent_ns = uv_hrtime();
    or_stream_write(&h1->u->s, head.data, head.len);
    or_buf_free(&head);
    return true;
}

static void write_body(or_h2_h1 *h1, const char *data, size_t len)
{
    or_http_write_body(&h1->u->s, h1->req_framing == OR_H2_H1_BODY_CHUNKED, data, len);
    h1->body_started = true;
}

/* The request ended: the last chunk and the trailers, when chunked. */
static bool end_request(or_h2_h1 *h1)
{
    or_h2_stream *st = h1->st;
    if (h1->req_framing == OR_H2_H1_BODY_CHUNKED) {
        or_buf b = {0};
        or_h2_check chk = or_h2_h1_trailers(&b, &st->req_trailers);
        if (chk != OR_H2_OK) {
            or_buf_free(&b);
            refuse(h1, chk);
            return false;
        }
        or_stream_write(&h1->u->s, b.data, b.len);
        or_buf_free(&b);
    }
    set_rq(h1, H1_RQ_SENT);
    return true;
}

/* Sends what the client has sent, while the upstream's queue has room. */
static void pump_request(or_h2_h1 *h1)
{
    or_h2_stream *st = h1->st;
    if (h1->rq != H1_RQ_BODY || !h1->u)
        return;
    size_t n = st->req_body.len - st->req_off;
    if (n > 0 && or_stream_queued(&h1->u->s) <= OR_PIPE_HIGH_WATERMARK) {
        if (h1->req_framing != OR_H2_H1_BODY_NONE)
            write_body(h1, st->req_body.data + st->req_off, n);
        st->req_body.len = st->req_off = 0;
        or_h2_consumed_request(st, n);
    }
    if (st->req_body.len == 0 && st->rq == OR_H2_RQ_DONE)
        end_request(h1);
}

/* ---- the response ---- */

static void note_grpc_status(or_h2_stream *st, const or_h2_fields *f)
{
    long i = or_h2_fields_find(f, "grpc-status", 11);
    if (i >= 0 && f->v[i].value_len < sizeof st->grpc_status) {
        memcpy(st->grpc_status, or_h2_field_value(f, (size_t)i), f->v[i].value_len);
        st->grpc_status[f->v[i].value_len] = '\0';
    }
}

static h1_framing response_framing(const or_http_head *h)
{
    if (h->message_done)
        return H1_BODY_NONE; /* HEAD, 1xx, 204, 304, content-length: 0 */
    if (h->chunked)
        return H1_BODY_CHUNKED;
    return h->has_content_length ? H1_BODY_LENGTH : H1_BODY_CLOSE;
}

/* The final head is here: it goes downstream. False when the exchange ended. */
static bool start_response(or_h2_h1 *h1)
{
    or_h2_stream *st = h1->st;
    or_h2_fields_reset(&st->res_head);
    or_h2_check chk = or_h2_h1_response_head(&h1->res, &st->res_head);
    if (chk != OR_H2_OK) {
        bad_response(h1, or_h2_check_text(chk));
        return false;
    }
    note_grpc_status(st, &st->res_head);
    st->upstream_us = (int64_t)((uv_hrtime() - st->sent_ns) / 1000);
    st->status = h1->res.status;
    h1->framing = response_framing(&h1->res);
    h1->remaining = h1->res.content_length;
    set_rs(h1, H1_RS_BODY);
    if (h1->framing == H1_BODY_NONE)
        st->rs = OR_H2_RS_ENDED;
    if (!st->local && st->down_open)
        or_h2_response_head(st);
    return true;
}

/* A whole head: vetted, then a 1xx is dropped and a final one started.
 * False when the exchange ended. */
static bool on_head(or_h2_h1 *h1, size_t rest)
{
    const char *why = NULL;
    if (or_http_head_vet_response(&h1->res, h1->head_request, &why) != 0) {
        bad_response(h1, why);
        return false;
    }
    if (h1->res.status == 101) {
        bad_response(h1, "101 without an Upgrade request");
        return false;
    }
    if (h1->res.status < 200) {
        h1->interim = true;
        or_http_head_reset(&h1->res);
        return true;
    }
    if (!start_response(h1))
        return false;
    if (h1->framing == H1_BODY_NONE) {
        response_done(h1, rest);
        return false;
    }
    return true;
}

static void take_body(or_h2_h1 *h1, const char *data, size_t len)
{
    or_h2_stream *st = h1->st;
    if (len == 0 || st->local || !st->down_open)
        return;
    if (or_buf_append(&st->res_body, data, len) != 0) {
        or_h2_stream_reset(st, NGHTTP2_INTERNAL_ERROR, "UPE");
        return;
    }
    or_h2_response_progress(st);
}

static void trailers_done(or_h2_h1 *h1)
{
    or_h2_stream *st = h1->st;
    if (or_h2_h1_parse_trailers(h1->trailers.data, h1->trailers.len, &st->res_trailers) !=
        OR_H2_OK)
        or_h2_fields_reset(&st->res_trailers);
    note_grpc_status(st, &st->res_trailers);
}

/* Chunked body bytes; returns how many belong to this response, or
 * SIZE_MAX when the exchange ended in error. */
static size_t chunked_body(or_h2_h1 *h1, const char *data, size_t len)
{
    size_t used = 0;
    while (used < len && h1->chunks.state != OR_CHUNK_DONE) {
        or_chunk_piece piece;
        size_t n = or_chunked_next(&h1->chunks, data + used, len - used, &piece);
        if (h1->chunks.state == OR_CHUNK_ERROR) {
            bad_response(h1, h1->chunks.why);
            return SIZE_MAX;
        }
        if (piece == OR_CHUNK_PIECE_DATA)
            take_body(h1, data + used, n);
        else if (piece == OR_CHUNK_PIECE_TRAILERS && or_buf_append(&h1->trailers, data + used, n))
            h1->chunks = (or_chunked){.state = OR_CHUNK_ERROR, .why = "out of memory"};
        used += n;
    }
    if (h1->chunks.state == OR_CHUNK_DONE)
        trailers_done(h1);
    return used;
}

/* Body bytes; returns how many were this response's, SIZE_MAX on error. */
static size_t body(or_h2_h1 *h1, const char *data, size_t len)
{
    size_t n = len;
    switch (h1->framing) {
    case H1_BODY_LENGTH:
        n = len < h1->remaining ? len : (size_t)h1->remaining;
        h1->remaining -= n;
        take_body(h1, data, n);
        if (h1->remaining == 0)
            response_done(h1, len - n);
        return n;
    case H1_BODY_CHUNKED:
        n = chunked_body(h1, data, len);
        if (n != SIZE_MAX && h1->chunks.state == OR_CHUNK_DONE)
            response_done(h1, len - n);
        return n;
    default: /* until close */
        take_body(h1, data, len);
        return len;
    }
}

static void process(or_h2_h1 *h1, const char *data, size_t len)
{
    while (len > 0 && h1->u) {
        if (h1->rs == H1_RS_HEAD) {
            size_t used = 0;
            or_head_status hs =
                or_http_head_collect(&h1->res, data, len, OR_H2_MAX_RESPONSE_HEAD, &used);
            data += used;
            len -= used;
            if (hs == OR_HEAD_TOO_BIG)
                bad_response(h1, "response head too large");
            else if (hs == OR_HEAD_DONE)
                (void)on_head(h1, len);
            continue;
        }
        if (h1->rs != H1_RS_BODY) {
            release(h1, false); /* bytes nobody asked for */
            return;
        }
        size_t n = body(h1, data, len);
        if (n == SIZE_MAX)
            return;
        data += n;
        len -= n;
    }
}

/* ---- upstream events ---- */

static void attach(or_h2_h1 *h1, or_upstream *u);
static void open_upstream(or_h2_h1 *h1);

static void upstream_ended(or_h2_h1 *h1, ssize_t status)
{
    or_h2_stream *st = h1->st;
    if (h1->rs == H1_RS_BODY && h1->framing == H1_BODY_CLOSE && status == UV_EOF) {
        response_done(h1, 1); /* framed by the close: not reusable */
        return;
    }
    bool nothing_back = h1->rs == H1_RS_HEAD && h1->res.raw.len == 0 && !h1->interim;
    if (nothing_back && h1->pooled && !h1->body_started) {
        or_log_debug("pooled upstream closed, retrying listener=%s", listener_name(h1));
        release(h1, false);
        or_h2_set_uq(st, OR_H2_UQ_OPEN);
        or_metrics_inc(st->hs->c->listener->metrics->up_retries);
        open_upstream(h1);
        return;
    }
    failed(h1, "UC");
}

/* Reading stops while response bytes wait for the downstream. */
static void pause_if_full(or_h2_h1 *h1)
{
    if (h1->u && waiting_bytes(h1->st) > 0) {
        or_stream_read_stop(&h1->u->s);
        h1->paused = true;
    }
}

static void on_up_read(or_stream *s, ssize_t nread, const char *data)
{
    or_h2_h1 *h1 = leg_of(s);
    or_h2_session *hs = h1->st->hs;
    assert(!hs->ended);
    if (nread < 0) {
        upstream_ended(h1, nread);
    } else {
        h1->st->last_ms = uv_now(&hs->c->worker->loop);
        process(h1, data, (size_t)nread);
        pause_if_full(h1);
    }
    or_h2_flush(hs);
    or_h2_pool_early(hs->c->listener); /* the answers read so far may go now */
}

static void on_up_drain(or_stream *s)
{
    or_h2_h1 *h1 = leg_of(s);
    if (or_stream_queued(s) <= OR_PIPE_LOW_WATERMARK) {
        pump_request(h1);
        or_h2_flush(h1->st->hs);
    }
}

static void on_up_write_error(or_stream *s, int status)
{
    or_h2_h1 *h1 = leg_of(s);
    upstream_ended(h1, status);
    or_h2_flush(h1->st->hs);
}

static void attach(or_h2_h1 *h1, or_upstream *u)
{
    h1->u = u;
    h1->paused = false;
    set_rq(h1, H1_RQ_WAITING);
    u->user = h1;
    u->s.on_read = on_up_read;
    u->s.on_drain = on_up_drain;
    u->s.on_write_error = on_up_write_error;
    if (!h1->peer_id && u->s.ssl && u->s.peer.id)
        h1->peer_id = strdup(u->s.peer.id);
    h1->cipher = or_stream_cipher(&u->s);
    if (!send_head(h1))
        return;
    if (or_stream_read_start(&u->s) != 0) {
        failed(h1, "UC");
        return;
    }
    pump_request(h1);
}

static void on_ready(or_upstream *u, int status, const char *reason, void *ctx)
{
    (void)reason;
    or_h2_h1 *h1 = ctx;
    or_h2_session *hs = h1->st->hs;
    assert(h1->u == u);
    if (status != 0) {
        h1->u = NULL; /* it is closing itself */
        failed(h1, "UF");
    } else {
        h1->pooled = false;
        attach(h1, u);
    }
    or_h2_flush(hs);
}

static void open_upstream(or_h2_h1 *h1)
{
    h1->pooled = false;
    h1->u = or_upstream_open(h1->st->hs->c->listener, on_ready, h1);
    if (!h1->u)
        failed(h1, "UF");
}

/* ---- the session's side ---- */

void or_h2_h1_forward(or_h2_stream *st, or_upstream *u)
{
    assert(!st->h1 && !st->up);
    or_h2_h1 *h1 = calloc(1, sizeof *h1);
    if (!h1) {
        if (u)
            or_pool_put(u);
        or_h2_upstream_failed(st, "UF", NGHTTP2_REFUSED_STREAM);
        return;
    }
    h1->st = st;
    st->h1 = h1;
    or_h2_set_uq(st, OR_H2_UQ_OPEN);
    if (u) {
        attach(h1, u);
        return;
    }
    u = or_pool_take(st->hs->c->listener);
    if (!u) {
        open_upstream(h1);
        return;
    }
    h1->pooled = true;
    attach(h1, u);
}

void or_h2_h1_request_progress(or_h2_stream *st)
{
    if (st->h1)
        pump_request(st->h1);
}

void or_h2_h1_consumed(or_h2_stream *st, size_t n)
{
    (void)n;
    or_h2_h1 *h1 = st->h1;
    if (!h1 || !h1->u || !h1->paused || waiting_bytes(st) > 0)
        return;
    h1->paused = false;
    if (or_stream_read_start(&h1->u->s) != 0)
        h1->paused = true; /* the stream is closing: its end is reported */
}

void or_h2_h1_cancel(or_h2_stream *st)
{
    if (!st->h1 || !st->h1->u)
        return;
    release(st->h1, false);
    drop_request(st);
}

void or_h2_h1_close(or_h2_stream *st)
{
    if (st->h1)
        release(st->h1, false);
}

void or_h2_h1_free(or_h2_stream *st)
{
    or_h2_h1 *h1 = st->h1;
    if (!h1)
        return;
    release(h1, false);
    or_http_head_free(&h1->res);
    or_buf_free(&h1->trailers);
    free(h1->peer_id);
    free(h1);
    st->h1 = NULL;
}

const char *or_h2_h1_peer_id(const or_h2_stream *st) { return st->h1 ? st->h1->peer_id : NULL; }

const char *or_h2_h1_cipher(const or_h2_stream *st) { return st->h1 ? st->h1->cipher : NULL; }
