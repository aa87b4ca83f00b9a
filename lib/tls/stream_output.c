/*
 * The output side of or_stream: the pending and in-flight buffers, the
 * loop's flush list and shutdown (stream.h has the contract).
 *
 * Output goes into the stream's `pending` buffer (for TLS, bio_send appends
 * records there; at 64 KiB it is offered to the kernel at once, see
 * send_now), and the stream is put on the loop's flush list. The check phase
 * of the loop (after I/O callbacks) and its prepare phase (before it blocks,
 * for output produced by timers and close callbacks) flush each listed
 * stream once: uv_try_write first, and if the kernel takes only part, the
 * rest moves to `inflight` (the two buffers swap, so no copy) under one
 * uv_write. At most one uv_write is in flight per stream; output produced
 * meanwhile waits in `pending` for its completion.
 *
 * Shutdown queues a close_notify (TLS) and, once all output has left, a TCP
 * FIN, so half-closed connections work in both directions.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

#define OR_STREAM_EARLY_SEND (64 * 1024) /* pending output sent before the turn ends */

static void flush(or_stream *s);

static void set_shut(or_stream *s, or_stream_shut to)
{
    assert(to == s->_shut + 1);
    s->_shut = to;
}

/* ---- the flush list ---- */

void or_stream_schedule_flush(or_stream *s)
{
    if (s->_flush_scheduled || s->_closing)
        return;
    s->_flush_scheduled = true;
    SLIST_INSERT_HEAD(&s->sl->flush_head, s, _flush_entry);
}

void or_stream_unschedule_flush(or_stream *s)
{
    if (s->_flush_scheduled)
        SLIST_REMOVE(&s->sl->flush_head, s, or_stream, _flush_entry);
    s->_flush_scheduled = false;
}

static void flush_listed(or_stream_loop *sl)
{
    or_stream *s;
    while ((s = SLIST_FIRST(&sl->flush_head)) != NULL) {
        SLIST_REMOVE_HEAD(&sl->flush_head, _flush_entry);
        s->_flush_scheduled = false;
        if (s->_replay_wanted)
            or_stream_replay_held(s);
        flush(s);
    }
}

/* After the I/O callbacks of a turn. */
static void on_check(uv_check_t *check) { flush_listed(check->data); }

/* Before the loop blocks: output from timer and close callbacks. */
static void on_prepare(uv_prepare_t *prepare) { flush_listed(prepare->data); }

int or_stream_loop_init(or_stream_loop *sl, uv_loop_t *loop)
{
    memset(sl, 0, sizeof *sl);
    sl->loop = loop;
    sl->read_buf = malloc(OR_STREAM_READ_BUF_SIZE);
    sl->plain_buf = malloc(OR_STREAM_PLAIN_BUF_SIZE);
    if (!sl->read_buf || !sl->plain_buf)
        goto fail;
    if (uv_check_init(loop, &sl->flush_check) != 0 ||
        uv_prepare_init(loop, &sl->flush_prepare) != 0)
        goto fail;
    sl->flush_check.data = sl->flush_prepare.data = sl;
    uv_check_start(&sl->flush_check, on_check);
    uv_prepare_start(&sl->flush_prepare, on_prepare);
    uv_unref((uv_handle_t *)&sl->flush_check);
    uv_unref((uv_handle_t *)&sl->flush_prepare);
    return 0;
fail:
    free(sl->read_buf);
    free(sl->plain_buf);
    return UV_ENOMEM;
}

static void on_check_closed(uv_handle_t *h)
{
    or_stream_loop *sl = h->data;
    free(sl->read_buf);
    free(sl->plain_buf);
    sl->read_buf = sl->plain_buf = NULL;
    or_tls_buf_pool_close(&sl->bufs);
}

void or_stream_loop_close(or_stream_loop *sl)
{
    uv_close((uv_handle_t *)&sl->flush_prepare, NULL);
    uv_close((uv_handle_t *)&sl->flush_check, on_check_closed);
}

/* ---- writing ---- */

static void report_write_error(or_stream *s, int status)
{
    if (s->on_write_error && !s->_closing)
        s->on_write_error(s, status);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    or_stream *s = req->data;
    assert(s->_shut == OR_STREAM_SHUT_STARTED);
    if (s->_closing || status == UV_ECANCELED)
        return;
    if (status < 0 && status != UV_ENOTCONN) {
        report_write_error(s, status);
        return;
    }
    set_shut(s, OR_STREAM_SHUT_DONE);
    if (s->on_drain)
        s->on_drain(s);
}

static void maybe_shutdown(or_stream *s)
{
    if (s->_shut != OR_STREAM_SHUT_WANTED || !connected(s) || s->_writing || s->_pending.len > 0)
        return;
    set_shut(s, OR_STREAM_SHUT_STARTED);
    s->_shutdown_req.data = s;
    int r = uv_shutdown(&s->_shutdown_req, (uv_stream_t *)&s->tcp, on_shutdown);
    if (r != 0)
        report_write_error(s, r);
}

/* uv_try_write: the bytes the kernel took (0 when it would block), or a
 * libuv error. */
static int try_write(or_stream *s, const char *data, size_t len)
{
    uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
    int n = uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    return n == UV_EAGAIN || n == UV_ENOSYS ? 0 : n;
}

static void on_write(uv_write_t *req, int status)
{
    or_stream *s = req->data;
    assert(s->_writing);
    s->_writing = false;
    s->_inflight.len = s->_inflight_sent = 0;
    if (s->_closing || status == UV_ECANCELED)
        return;
    if (status < 0) {
        report_write_error(s, status);
        return;
    }
    flush(s);
}

static void after_output_progress(or_stream *s)
{
    maybe_shutdown(s);
    if (s->on_drain && !s->_closing)
        s->on_drain(s);
}

static void flush(or_stream *s)
{
    s->_early_send_blocked = false;
    if (!connected(s) || s->_writing || s->_closing)
        return;
    int n = s->_pending.len > 0 ? try_write(s, s->_pending.data, s->_pending.len) : 0;
    if (n < 0) {
        report_write_error(s, n);
        return;
    }
    if ((size_t)n == s->_pending.len) {
        s->_pending.len = 0;
        if (s->ssl && or_tls_idle_released(s->ssl)) {
            or_buf_free(&s->_pending); /* an idle TLS stream holds no buffer */
            or_buf_free(&s->_inflight);
        }
        after_output_progress(s);
        return;
    }
    or_buf tmp = s->_inflight;
    s->_inflight = s->_pending;
    s->_inflight_sent = (size_t)n;
    s->_pending = tmp;
    s->_pending.len = 0;
    uv_buf_t b = uv_buf_init(s->_inflight.data + n, (unsigned)(s->_inflight.len - (size_t)n));
    s->_write_req.data = s;
    s->_writing = true;
    int r = uv_write(&s->_write_req, (uv_stream_t *)&s->tcp, &b, 1, on_write);
    if (r != 0) {
        s->_writing = false;
        report_write_error(s, r);
    }
}

/*
 * A turn that produces much output for one stream (a large body arriving in
 * many socket reads) hands it to the kernel as it goes, so the peer works on
 * the first part while this side produces the rest; so does an owner that
 * asks for it (or_stream_send_early). Only uv_try_write is used here: what
 * the kernel does not take stays pending for the turn's flush, which also
 * reports errors, and no more early sends are tried this turn. Returns the
 * bytes the kernel took.
 */
static size_t send_now(or_stream *s, const char *data, size_t len, size_t least)
{
    if (len == 0 || len < least || s->_early_send_blocked || !connected(s) || s->_writing ||
        s->_closing)
        return 0;
    int n = try_write(s, data, len);
    if (n <= 0 || (size_t)n < len)
        s->_early_send_blocked = true;
    return n > 0 ? (size_t)n : 0;
}

static void send_pending_early(or_stream *s, size_t least)
{
    size_t n = send_now(s, s->_pending.data, s->_pending.len, least);
    if (n == 0)
        return;
    s->_pending.len -= n;
    memmove(s->_pending.data, s->_pending.data + n, s->_pending.len);
}

int or_stream_write(or_stream *s, const char *data, size_t len)
{
    if (s->_closing)
        return UV_ECANCELED;
    if (s->_shut != OR_STREAM_SHUT_NONE)
        return UV_EPIPE;
    if (!s->ssl) {
        /* A large write with nothing queued before it goes straight out. */
        size_t sent = s->_pending.len == 0 ? send_now(s, data, len, OR_STREAM_EARLY_SEND) : 0;
        int r = or_buf_append(&s->_pending, data + sent, len - sent);
        if (r == 0) {
            or_stream_schedule_flush(s);
            send_pending_early(s, OR_STREAM_EARLY_SEND);
        }
        return r;
    }
    if (!established(s))
        return UV_ENOTCONN;
    if (tls_wake(s) != 0)
        return UV_ENOMEM;
    size_t off = 0;
    while (off < len) {
        int ret = mbedtls_ssl_write(s->ssl, (const unsigned char *)data + off, len - off);
        if (ret < 0)
            return UV_EPROTO;
        off += (size_t)ret;
    }
    tls_rest(s);
    or_stream_schedule_flush(s);
    send_pending_early(s, OR_STREAM_EARLY_SEND);
    return 0;
}

void or_stream_send_early(or_stream *s) { send_pending_early(s, 0); }

void or_stream_shutdown(or_stream *s)
{
    if (s->_shut != OR_STREAM_SHUT_NONE || s->_closing)
        return;
    set_shut(s, OR_STREAM_SHUT_WANTED);
    if (s->ssl && established(s) && tls_wake(s) == 0) {
        (void)mbedtls_ssl_close_notify(s->ssl);
        tls_rest(s);
    }
    or_stream_schedule_flush(s);
}

size_t or_stream_queued(const or_stream *s)
{
    return s->_pending.len + (s->_inflight.len - s->_inflight_sent);
}

bool or_stream_output_done(const or_stream *s)
{
    return s->_shut == OR_STREAM_SHUT_DONE;
}
