/*
 * HTTP/2 proxying: the downstream connection.
 *
 * An nghttp2 server session reads the downstream stream's plaintext and
 * writes its frames back through it. Streams are created with their first
 * header block and handed to h2_stream.c once the block is complete;
 * request DATA is kept per stream until the upstream stream takes it, and
 * only then given back to the client's windows (automatic WINDOW_UPDATE is
 * off), so what waits for a slow upstream is bounded by the stream window,
 * and one stalled stream holds only its own share of the connection window.
 * Responses leave through one data provider that defers while a stream has
 * nothing new, so a slow stream never holds back the others.
 *
 * Output is produced once per loop turn (the pool's deferred run), never
 * inside nghttp2's callbacks, and stops while the downstream queue is above
 * the pipe's high watermark.
 *
 * Limits: SETTINGS_MAX_CONCURRENT_STREAMS 100, SETTINGS_MAX_HEADER_LIST_SIZE
 * limits.max_request_headers (a larger request is answered 431; one that
 * decodes to far more, an HPACK bomb, ends the connection); the per-frame
 * and per-second limits are in h2_limits.c.
 *
 * One connection timer ticks every 100 ms while streams are open (idle
 * streams, grpc-timeout deadlines, slow header blocks) and otherwise waits
 * for timeouts.idle, after which an unused connection ends with GOAWAY.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_session.h"
#include "outrider/http2_h1.h"
#include "outrider/log.h"
#include "outrider/pipe.h"

#define OR_H2_BOMB_FACTOR 16

static void on_tick(uv_timer_t *t);

static const or_config *config_of(const or_h2_session *hs) { return hs->c->worker->snap->cfg; }
static uint64_t now_ms(const or_h2_session *hs) { return uv_now(&hs->c->worker->loop); }

/* ---- streams ---- */

/* Zeroes the stream but for its buffers, which are emptied, and kept when
 * they hold at most `keep` bytes (none for 0); the request is as
 * or_h2_request_init leaves it. */
static void empty(or_h2_stream *st, size_t keep)
{
    or_h2_stream e = {0};
    e.req = st->req;
    e.req_trailers = st->req_trailers;
    e.res_head = st->res_head;
    e.res_trailers = st->res_trailers;
    e.target = st->target;
    e.req_body = st->req_body;
    e.res_body = st->res_body;
    or_h2_request_reuse(&e.req, 0, keep);
    or_h2_fields_reuse(&e.req_trailers, keep);
    or_h2_fields_reuse(&e.res_head, keep);
    or_h2_fields_reuse(&e.res_trailers, keep);
    or_buf_reuse(&e.target, keep);
    or_buf_reuse(&e.req_body, keep);
    or_buf_reuse(&e.res_body, keep);
    *st = e;
}

or_h2_stream *or_h2_stream_new(or_h2_session *hs, int32_t id)
{
    or_h2_stream *st = hs->pool ? or_h2_spare_take(hs->pool) : NULL;
    if (!st) {
        if (!(st = calloc(1, sizeof *st)))
            return NULL;
        or_h2_request_init(&st->req, 0);
    }
    st->req.max_size = config_of(hs)->limits.max_request_headers;
    st->hs = hs;
    st->id = id;
    st->down_open = true;
    st->upstream_us = -1;
    st->deadline_ms = -1;
    clock_gettime(CLOCK_REALTIME, &st->started_at);
    st->started_ns = uv_hrtime();
    st->last_ms = now_ms(hs);
    LIST_INSERT_HEAD(&hs->streams, st, entry);
    hs->nstreams++;
    return st;
}

/* The stream goes to the pool's spares with its buffers when there is room
 * (h2_pool.c), else it is freed. */
void or_h2_stream_free(or_h2_stream *st)
{
    LIST_REMOVE(st, entry);
    st->hs->nstreams--;
    or_h2_up_release(st);
    or_h2_h1_free(st);
    or_snapshot_drop(st->snap);
    or_h2_pool *p = st->hs->pool;
    bool spare = p && or_h2_spare_room(p);
    empty(st, spare ? OR_H2_SPARE_KEEP : 0);
    if (spare)
        or_h2_spare_keep(p, st);
    else
        free(st);
}

void or_h2_stream_free_spare(or_h2_stream *st)
{
    empty(st, 0);
    free(st);
}

static inline bool uq_allowed(const or_h2_stream *st, or_h2_uq to)
{
    switch (to) {
    case OR_H2_UQ_NONE:
        return st->uq != OR_H2_UQ_ENDED;
    case OR_H2_UQ_WAITING:
        return st->uq == OR_H2_UQ_NONE;
    case OR_H2_UQ_OPEN:
        return st->uq == OR_H2_UQ_WAITING ||
               (st->h1 && (st->uq == OR_H2_UQ_NONE || st->uq == OR_H2_UQ_ENDED));
    case OR_H2_UQ_SENT:
        return st->uq == OR_H2_UQ_OPEN;
    case OR_H2_UQ_ENDED:
        return true;
    }
    return false;
}

void or_h2_set_uq(or_h2_stream *st, or_h2_uq to)
{
    assert(uq_allowed(st, to));
    st->uq = to;
}

void or_h2_stream_let_go(or_h2_stream *st)
{
    or_h2_session *hs = st->hs;
    if (st->down_open || or_h2_uq_open(st) || st->dead || hs->front)
        return; /* a front's stream is freed by its HTTP/1.1 session */
    st->dead = true;
    SLIST_INSERT_HEAD(&hs->dead, st, dead_entry);
}

/* Streams both sessions have let go of, freed outside their callbacks. */
static void sweep_streams(or_h2_session *hs)
{
    or_h2_stream *st;
    while ((st = SLIST_FIRST(&hs->dead))) {
        SLIST_REMOVE_HEAD(&hs->dead, dead_entry);
        assert(!st->down_open && !or_h2_uq_open(st));
        or_h2_stream_free(st);
    }
}

void or_h2_consumed_request(or_h2_stream *st, size_t n)
{
    if (st->hs->front) /* its client is read again when the session is flushed */
        return;
    if (st->down_open && n > 0)
        nghttp2_session_consume(st->hs->ng, st->id, n);
}

/* ---- abuse ---- */

/* Ends the connection with GOAWAY(code) once what is queued has left. */
static void go_away(or_h2_session *hs, uint32_t code)
{
    if (hs->closing)
        return;
    hs->closing = true;
    nghttp2_session_terminate_session(hs->ng, code);
    or_stream_read_stop(&hs->c->down);
}

/* ---- nghttp2 callbacks ---- */

static int on_begin_frame(nghttp2_session *ng, const nghttp2_frame_hd *hd, void *user)
{
    (void)ng;
    return or_h2_limit_frame(user, hd);
}

static or_h2_stream *stream_of(nghttp2_session *ng, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(ng, id) : NULL;
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    or_h2_session *hs = user;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        or_h2_stream *st = stream_of(ng, frame->hd.stream_id);
        if (st)
            st->decoded = 0;
        return 0;
    }
    if (hs->closing)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    or_h2_stream *st = or_h2_stream_new(hs, frame->hd.stream_id);
    if (!st)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st);
    return 0;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
    (void)flags;
    or_h2_session *hs = user;
    or_h2_stream *st = stream_of(ng, frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    size_t limit = config_of(hs)->limits.max_request_headers;
    st->decoded += namelen + valuelen + 32;
    if (st->decoded > limit * OR_H2_BOMB_FACTOR)
        return or_h2_abuse_raise(hs, OR_H2_ABUSE_HEADER_BOMB);
    const char *n = (const char *)name, *v = (const char *)value;
    if (frame->headers.cat != NGHTTP2_HCAT_REQUEST) { /* trailers */
        or_h2_check chk = or_h2_trailer_field(n, namelen, v, valuelen);
        if (chk == OR_H2_OK && st->decoded > limit)
            chk = OR_H2_TOO_LARGE;
        if (chk == OR_H2_OK && !or_h2_trailer_dropped(n, namelen) &&
            or_h2_fields_add(&st->req_trailers, n, namelen, v, valuelen) != 0)
            chk = OR_H2_NO_MEMORY;
        if (chk != OR_H2_OK && st->refused == OR_H2_OK)
            st->refused = chk;
        return 0;
    }
    if (st->too_large || st->refused != OR_H2_OK)
        return 0;
    or_h2_check chk = or_h2_request_field(&st->req, n, namelen, v, valuelen);
    if (chk == OR_H2_TOO_LARGE)
        st->too_large = true;
    else if (chk != OR_H2_OK)
        st->refused = chk;
    return 0;
}

static void request_trailers_done(or_h2_stream *st)
{
    if (st->refused != OR_H2_OK) {
        or_log_info("request refused listener=%s peer=%s protocol=HTTP/2 reason=\"trailers: %s\"",
                    st->hs->c->listener->cfg->name, st->hs->c->peer,
                    or_h2_check_text(st->refused));
        or_h2_stream_reset(st, NGHTTP2_PROTOCOL_ERROR, "DPE");
        return;
    }
    st->rq = OR_H2_RQ_DONE;
    or_h2_up_request_progress(st);
}

static void request_data_end(or_h2_stream *st)
{
    if (or_h2_body_check(st->req.content_length, st->body_in, true) != OR_H2_OK) {
        or_h2_stream_reset(st, NGHTTP2_PROTOCOL_ERROR, "DPE");
        return;
    }
    st->rq = OR_H2_RQ_DONE;
    or_h2_up_request_progress(st);
}

/* A frame that moves its stream on, and so restarts the stream's idle
 * clock: a header block, DATA with bytes or the end of the request, a
 * WINDOW_UPDATE (which opens the window: an increment of 0 is a protocol
 * error). PRIORITY, and empty DATA without END_STREAM, do not: a client that
 * keeps its window at 0 cannot keep the stream (and its upstream stream)
 * alive with them. */
bool or_h2_frame_is_progress(const nghttp2_frame *frame)
{
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
    case NGHTTP2_WINDOW_UPDATE:
        return true;
    case NGHTTP2_DATA:
        return frame->hd.length > 0 || (frame->hd.flags & NGHTTP2_FLAG_END_STREAM);
    default:
        return false;
    }
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    or_h2_session *hs = user;
    hs->last_ms = now_ms(hs);
    if (frame->hd.type != NGHTTP2_CONTINUATION && frame->hd.type != NGHTTP2_HEADERS)
        hs->block_started_ms = 0;
    or_h2_stream *st = stream_of(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    if (or_h2_frame_is_progress(frame))
        st->last_ms = hs->last_ms;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        hs->block_started_ms = 0;
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            st->rq = end ? OR_H2_RQ_DONE : OR_H2_RQ_BODY;
            or_h2_request_ready(st);
        } else if (!st->local) {
            request_trailers_done(st);
        }
    } else if (frame->hd.type == NGHTTP2_DATA && end && !st->local) {
        request_data_end(st);
    } else if (frame->hd.type == NGHTTP2_DATA && end) {
        st->rq = OR_H2_RQ_DONE;
    }
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user)
{
    (void)flags;
    or_h2_session *hs = user;
    or_h2_stream *st = stream_of(ng, id);
    if (!st || st->local || st->rq == OR_H2_RQ_DONE) {
        nghttp2_session_consume(ng, id, len); /* nobody takes it */
        return 0;
    }
    /* Counted even once the upstream has answered and nobody takes the
     * bytes: END_STREAM checks the count against content-length. */
    st->body_in += len;
    st->last_ms = now_ms(hs);
    if (or_h2_body_check(st->req.content_length, st->body_in, false) != OR_H2_OK) {
        nghttp2_session_consume(ng, id, len);
        or_h2_stream_reset(st, NGHTTP2_PROTOCOL_ERROR, "DPE");
        return 0;
    }
    if (st->uq == OR_H2_UQ_ENDED) {
        nghttp2_session_consume(ng, id, len);
        return 0;
    }
    if (or_buf_append(&st->req_body, data, len) != 0) {
        nghttp2_session_consume(ng, id, len);
        or_h2_stream_reset(st, NGHTTP2_INTERNAL_ERROR, "DPE");
        return 0;
    }
    or_h2_up_request_progress(st);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user)
{
    or_h2_session *hs = user;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
        hs->abuse == OR_H2_ABUSE_NONE && !hs->closing) {
        hs->abuse = OR_H2_ABUSE_PROTOCOL; /* a connection error nghttp2 found itself */
        hs->closing = true;
    }
    if (frame->hd.type == NGHTTP2_DATA)
        or_h2_limit_data_sent(hs);
    or_h2_stream *st = stream_of(ng, frame->hd.stream_id);
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    if (!st || !end || (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA))
        return 0;
    /* The response is complete; a request still being sent is not wanted
     * any more (RFC 9113 8.1). */
    if (st->rq != OR_H2_RQ_DONE)
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user)
{
    or_h2_session *hs = user;
    or_h2_stream *st = stream_of(ng, id);
    if (!st)
        return 0;
    nghttp2_session_set_stream_user_data(ng, id, NULL);
    /* request bytes nobody will take go back to the connection window */
    if (st->req_body.len > st->req_off)
        nghttp2_session_consume_connection(ng, st->req_body.len - st->req_off);
    st->req_body.len = st->req_off = 0;
    st->down_open = false;
    or_h2_stream_let_go(st);
    hs->last_ms = now_ms(hs);
    if (st->rs != OR_H2_RS_ENDED || (error_code != NGHTTP2_NO_ERROR && st->rq != OR_H2_RQ_DONE)) {
        if (!st->flags)
            st->flags = "DC";
    }
    if (st->rs != OR_H2_RS_ENDED || st->res_off < st->res_body.len || st->local)
        or_h2_up_cancel(st);
    or_h2_up_consumed(st, st->res_body.len - st->res_off); /* nobody will take it */
    st->res_body.len = st->res_off = 0;
    or_h2_stream_log(st);
    return 0;
}

ssize_t or_h2_response_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                            uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)user;
    or_h2_stream *st = src->ptr;
    size_t avail = st->res_body.len - st->res_off;
    size_t n = avail < length ? avail : length;
    if (n > 0)
        memcpy(buf, st->res_body.data + st->res_off, n);
    st->res_off += n;
    st->body_out += n;
    if (st->res_off == st->res_body.len)
        st->res_body.len = st->res_off = 0;
    if (n > 0 && !st->local)
        or_h2_up_consumed(st, n);
    if (st->res_body.len == 0 && st->rs == OR_H2_RS_ENDED) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->res_trailers.n > 0) {
            or_h2_nvs nv = {0};
            if (or_h2_nvs_fields(&nv, &st->res_trailers) == 0 &&
                nghttp2_submit_trailer(ng, id, nv.v, nv.n) == 0)
                *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            or_h2_nvs_free(&nv);
        }
        return (ssize_t)n;
    }
    if (n == 0)
        return NGHTTP2_ERR_DEFERRED;
    st->last_ms = now_ms(st->hs);
    return (ssize_t)n;
}

void or_h2_response_head(or_h2_stream *st)
{
    if (!st->down_open)
        return;
    if (st->hs->front) { /* written when the session is flushed */
        if (st->rs == OR_H2_RS_NONE)
            st->rs = OR_H2_RS_STARTED;
        or_h2_pool_mark(st->hs);
        return;
    }
    or_h2_nvs nv = {0};
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = or_h2_response_read};
    bool bodiless = st->rs == OR_H2_RS_ENDED && st->res_body.len == 0 && st->res_trailers.n == 0;
    if (st->rs == OR_H2_RS_NONE)
        st->rs = OR_H2_RS_STARTED;
    int r = or_h2_nvs_fields(&nv, &st->res_head);
    if (r == 0)
        r = nghttp2_submit_response(st->hs->ng, st->id, nv.v, nv.n, bodiless ? NULL : &prd);
    or_h2_nvs_free(&nv);
    if (r != 0)
        or_h2_stream_reset(st, NGHTTP2_INTERNAL_ERROR, "DPE");
}

void or_h2_response_progress(or_h2_stream *st)
{
    if (st->hs->front) {
        or_h2_pool_mark(st->hs);
        return;
    }
    if (st->down_open && st->rs != OR_H2_RS_NONE)
        nghttp2_session_resume_data(st->hs->ng, st->id);
}

void or_h2_upstream_failed(or_h2_stream *st, const char *flags, uint32_t error_code)
{
    if (!st->down_open || st->local)
        return;
    if (error_code == NGHTTP2_REFUSED_STREAM && st->rs == OR_H2_RS_NONE)
        flags = "UF"; /* the peer did not process it: as if it had not connected */
    bool connect = strcmp(flags, "UF") == 0;
    if (st->hs->front) { /* answered when the session is flushed */
        if (st->rs == OR_H2_RS_ENDED)
            return;
        st->local = true;
        st->flags = flags;
        if (st->rs == OR_H2_RS_NONE)
            st->status = connect ? 503 : 502;
        or_h2_pool_mark(st->hs);
        return;
    }
    if (st->rs == OR_H2_RS_NONE) {
        or_h2_local_reply(st, connect ? 503 : 502, flags,
                          connect ? "upstream connect error\n"
                                  : "upstream closed the stream before answering\n",
                          14 /* UNAVAILABLE */,
                          connect ? "upstream connect error" : "upstream closed the stream");
        return;
    }
    if (st->rs == OR_H2_RS_ENDED)
        return; /* the whole response is here: it goes out */
    or_h2_stream_reset(st, error_code != NGHTTP2_NO_ERROR ? error_code : NGHTTP2_INTERNAL_ERROR,
                       flags);
}

/* ---- output ---- */

static bool send_down(or_h2_session *hs)
{
    hs->in_callback = true;
    ssize_t n = or_h2_gather(hs->pool, hs->ng, &hs->c->down);
    hs->in_callback = false;
    return n > 0;
}

static void end_connection(or_h2_session *hs)
{
    or_conn *c = hs->c;
    if (hs->abuse != OR_H2_ABUSE_NONE)
        or_h2_abuse_count(hs, hs->abuse);
    or_conn_close_gracefully(c);
}

bool or_h2_session_send(or_h2_session *hs)
{
    if (hs->ended || hs->in_callback)
        return false;
    if (hs->front)
        return or_h2_front_send(hs);
    bool sent = send_down(hs);
    sweep_streams(hs);
    if (!nghttp2_session_want_read(hs->ng) && !nghttp2_session_want_write(hs->ng))
        end_connection(hs);
    return sent;
}

/* Sends what this session and the listener's upstream connections have for
 * each other (h2_pool.c), then ends the connection when nghttp2 is done
 * with it. */
void or_h2_flush(or_h2_session *hs)
{
    if (hs->ended)
        return;
    or_h2_pool_mark(hs);
    or_h2_pool_defer(hs->pool);
}

/* After nghttp2 read input: a limit broken in a callback, or a fatal error,
 * ends the connection with GOAWAY. */
static void after_input(or_h2_session *hs, ssize_t rv)
{
    if (hs->abuse != OR_H2_ABUSE_NONE || rv < 0) {
        if (hs->abuse == OR_H2_ABUSE_NONE)
            hs->abuse = rv == NGHTTP2_ERR_FLOODED ? OR_H2_ABUSE_FLOOD : OR_H2_ABUSE_PROTOCOL;
        bool calm = hs->abuse != OR_H2_ABUSE_PROTOCOL;
        go_away(hs, calm ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    }
    or_h2_flush(hs);
}

/* ---- downstream events ---- */

static or_h2_session *running_session(or_conn *c)
{
    or_h2_session *hs = or_h2_session_of(c);
    assert(c->phase == OR_CONN_HTTP && !hs->ended);
    return hs;
}

static void on_down_read(or_stream *s, ssize_t nread, const char *data)
{
    or_conn *c = s->owner;
    or_h2_session *hs = running_session(c);
    if (nread < 0) {
        if (nread == UV_EOF)
            or_conn_close_gracefully(c);
        else
            or_conn_close(c);
        return;
    }
    or_conn_touch(c);
    if (hs->closing)
        return;
    hs->in_callback = true;
    ssize_t rv = nghttp2_session_mem_recv(hs->ng, (const uint8_t *)data, (size_t)nread);
    hs->in_callback = false;
    after_input(hs, rv);
}

static void on_down_drain(or_stream *s)
{
    or_conn *c = s->owner;
    or_h2_session *hs = running_session(c);
    or_conn_touch(c);
    if (or_stream_queued(s) <= OR_PIPE_LOW_WATERMARK)
        or_h2_flush(hs);
}

static void on_down_write_error(or_stream *s, int status)
{
    (void)status;
    or_conn_close(s->owner);
}

/* ---- the timer ---- */

static void expire_stream(or_h2_stream *st, uint64_t now, uint64_t idle)
{
    if (st->local || !st->down_open)
        return;
    if (st->deadline_ms >= 0 && (int64_t)now >= st->deadline_ms && st->rs != OR_H2_RS_ENDED) {
        or_h2_local_reply(st, 504, "UT", "request deadline passed\n", 4 /* DEADLINE_EXCEEDED */,
                          "deadline exceeded");
        return;
    }
    if (now - st->last_ms < idle)
        return;
    if (st->rs == OR_H2_RS_NONE) {
        or_log_info("upstream timeout listener=%s peer=%s protocol=HTTP/2",
                    st->hs->c->listener->cfg->name, st->hs->c->peer);
        or_h2_local_reply(st, 504, "UT", "upstream did not answer in time\n", 14,
                          "upstream did not answer in time");
    } else {
        or_h2_stream_reset(st, NGHTTP2_CANCEL, "SI");
    }
}

static void arm(or_h2_session *hs)
{
    const or_config *cfg = config_of(hs);
    uint64_t ms = cfg->timeouts.idle_ms;
    if (hs->nstreams > 0 || hs->block_started_ms > 0)
        ms = OR_H2_TICK_MS;
    or_conn_arm(hs->c, ms < OR_H2_TICK_MS ? OR_H2_TICK_MS : ms, on_tick);
}

static void on_tick(uv_timer_t *t)
{
    or_conn *c = t->data;
    or_h2_session *hs = running_session(c);
    const or_config *cfg = config_of(hs);
    uint64_t now = now_ms(hs);
    if (hs->block_started_ms > 0 && now - hs->block_started_ms >= cfg->timeouts.request_headers_ms) {
        hs->abuse = OR_H2_ABUSE_HEADERS_TIMEOUT;
        go_away(hs, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    or_h2_stream *st;
    LIST_FOREACH(st, &hs->streams, entry)
        expire_stream(st, now, cfg->timeouts.idle_ms);
    if (hs->nstreams == 0 && (c->worker->draining || now - hs->last_ms >= cfg->timeouts.idle_ms))
        go_away(hs, NGHTTP2_NO_ERROR);
    or_h2_flush(hs);
    if (!hs->ended)
        arm(hs);
}

/* ---- life cycle: the phase operations (conn.h) ---- */

static nghttp2_session_callbacks *server_callbacks(void)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0)
        return NULL;
    nghttp2_session_callbacks_set_on_begin_frame_callback(cb, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    return cb;
}

static int server_new(or_h2_session *hs)
{
    nghttp2_session_callbacks *cb = server_callbacks();
    nghttp2_option *opt = NULL;
    if (!cb || nghttp2_option_new(&opt) != 0) {
        nghttp2_session_callbacks_del(cb);
        return -1;
    }
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_max_settings(opt, 32);
    nghttp2_option_set_max_outbound_ack(opt, 1000);
    /* nghttp2's own bucket, behind premature_reset: on the hop, mature
     * resets come at up to OR_H2_MAX_STREAMS a second */
    nghttp2_option_set_stream_reset_rate_limit(opt, 1000, hs->hop ? 2 * OR_H2_MAX_STREAMS : 33);
    nghttp2_option_set_max_continuations(opt, 2 * OR_H2_MAX_CONTINUATIONS);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    int r = nghttp2_session_server_new2(&hs->ng, cb, hs, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cb);
    if (r != 0)
        return -1;
    uint32_t max_headers = (uint32_t)config_of(hs)->limits.max_request_headers;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, OR_H2_MAX_STREAMS},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, max_headers},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    r = nghttp2_submit_settings(hs->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    if (r == 0)
        r = nghttp2_session_set_local_window_size(hs->ng, NGHTTP2_FLAG_NONE, 0,
                                                  OR_H2_CONN_WINDOW);
    return r;
}

static void session_start(or_conn *c)
{
    or_h2_session *hs = calloc(1, sizeof *hs);
    if (!hs) {
        or_conn_close(c);
        return;
    }
    hs->c = c;
    c->phase_state = hs;
    or_conn_set_phase(c, OR_CONN_HTTP);
    hs->pool = or_h2_pool_of(c->listener);
    const char *alpn = or_stream_alpn(&c->down);
    hs->hop = alpn && strcmp(alpn, OR_ALPN_HOP) == 0;
    if (!hs->pool || server_new(hs) != 0) {
        or_conn_close(c);
        return;
    }
    hs->last_ms = now_ms(hs);
    hs->block_started_ms = hs->last_ms; /* the preface and SETTINGS are due */
    c->down.on_read = on_down_read;
    c->down.on_drain = on_down_drain;
    c->down.on_write_error = on_down_write_error;
    or_conn_touch(c);
    arm(hs);
    or_h2_flush(hs);
    if (!hs->ended && or_stream_read_start(&c->down) != 0)
        or_conn_close(c);
}

static void session_drain(or_conn *c)
{
    or_h2_session *hs = or_h2_session_of(c);
    if (!hs || hs->ended)
        return;
    nghttp2_submit_shutdown_notice(hs->ng);
    if (hs->nstreams == 0)
        go_away(hs, NGHTTP2_NO_ERROR);
    or_h2_flush(hs);
}

/* The session stops: its streams on the shared upstream connections are
 * reset and unlinked, streams still open are logged. Its state stays
 * readable until session_release. */
static void session_end(or_conn *c)
{
    or_h2_session *hs = or_h2_session_of(c);
    if (!hs || hs->ended)
        return;
    hs->ended = true;
    if (hs->pool) {
        or_h2_pool_unmark(hs);
        or_h2_up_forget_session(hs);
    }
    or_h2_stream *st;
    LIST_FOREACH(st, &hs->streams, entry) {
        or_h2_h1_close(st);
        if (!st->logged && !st->flags)
            st->flags = hs->abuse != OR_H2_ABUSE_NONE ? "DPE" : "DC";
        or_h2_stream_log(st);
    }
}

static void session_release(or_conn *c)
{
    or_h2_session *hs = or_h2_session_of(c);
    c->phase_state = NULL;
    if (!hs)
        return;
    nghttp2_session_del(hs->ng);
    while (!LIST_EMPTY(&hs->streams))
        or_h2_stream_free(LIST_FIRST(&hs->streams));
    free(hs);
}

const or_conn_phase_ops or_h2_phase = {
    .name = "http2",
    .start = session_start,
    .drain = session_drain,
    .end = session_end,
    .release = session_release,
};
