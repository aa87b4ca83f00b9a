/*
 * HTTP/1.1 proxying: the downstream side.
 *
 * A session handles one request at a time on a downstream connection.
 * Downstream bytes are appended to `in` and pumped through a small state
 * machine: the request head is collected and checked byte-exact
 * (http_head.c), requests that are ambiguous or over a limit are answered
 * here and the connection closed, the L7 policy decides on inbound
 * listeners, and the request is handed to the hop between sidecars
 * (../http2/h2_front.c: an HTTP/2 stream on the listener's shared mTLS
 * connections) when it can ride it, else to the relay (http_relay.c);
 * either forwards it and the response. The request body goes through
 * http-parser to the one that carries the request. Bytes of a pipelined
 * next request stay in `in` until the current response is complete, so
 * responses leave in order; while a request is in flight the downstream
 * is not read beyond one buffer.
 *
 * When an exchange ends (relayed or answered here) its access-log line is
 * written, and the next request is pumped, or the connection closes in an
 * orderly way when either side asked for it, the response had no framing,
 * or the proxy is draining.
 *
 * One connection timer: while waiting for a request it is the keep-alive
 * idle timeout (a partial head switches it to timeouts.request_headers, a
 * slowloris defence answered with 408); while a request is in flight it is
 * the idle timeout, answered with 504 when no response has started.
 */
#include "outrider/http.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "http_session.h"
#include "outrider/access_log.h"
#include "outrider/http2.h"
#include "outrider/http_server.h"
#include "outrider/log.h"
#include "outrider/pipe.h"

static void on_session_timer(uv_timer_t *t);

/* ---- states (http_session.h) ---- */

#define BIT(x) (1u << (x))

void or_http_set_rq(or_http_session *hs, or_req_state to)
{
    static const unsigned from[] = {
        [OR_REQ_HEAD] = BIT(OR_REQ_HEAD) | BIT(OR_REQ_SENT) | BIT(OR_REQ_DISCARD),
        [OR_REQ_UPSTREAM] = BIT(OR_REQ_BODY) | BIT(OR_REQ_SENT),
        [OR_REQ_BODY] = BIT(OR_REQ_HEAD) | BIT(OR_REQ_UPSTREAM),
        [OR_REQ_DISCARD] = BIT(OR_REQ_BODY),
        [OR_REQ_SENT] = BIT(OR_REQ_HEAD) | BIT(OR_REQ_UPSTREAM) | BIT(OR_REQ_BODY) |
                        BIT(OR_REQ_DISCARD),
        [OR_REQ_CLOSED] = ~BIT(OR_REQ_CLOSED),
    };
    (void)from; /* read by assert only */
    assert(from[to] & BIT(hs->rq));
    /* only an answered exchange drops the request body */
    assert(to != OR_REQ_DISCARD || hs->rs == OR_RES_DONE || !hs->up);
    hs->rq = to;
}

void or_http_set_rs(or_http_session *hs, or_res_state to)
{
    static const unsigned from[] = {
        [OR_RES_NONE] = BIT(OR_RES_NONE) | BIT(OR_RES_DONE),
        [OR_RES_HEAD] = BIT(OR_RES_NONE) | BIT(OR_RES_HEAD),
        [OR_RES_BODY] = BIT(OR_RES_HEAD),
        [OR_RES_DONE] = BIT(OR_RES_NONE) | BIT(OR_RES_HEAD) | BIT(OR_RES_BODY),
    };
    (void)from; /* read by assert only */
    assert(hs->rq != OR_REQ_CLOSED && (from[to] & BIT(hs->rs)));
    hs->rs = to;
}

static const or_config *config_of(const or_http_session *hs) { return hs->c->worker->snap->cfg; }

/* ---- the access log ---- */

static void log_exchange(or_http_session *hs)
{
    or_access_record r = {
        .start = hs->started_at,
        .peer_id = hs->up ? hs->up->s.peer.id : or_http_mux_peer_id(hs),
        .method = hs->method[0] ? hs->method : NULL,
        .path = hs->target.len > 0 ? hs->target.data : hs->req.url,
        .path_len = hs->target.len > 0 ? hs->target.len : hs->req.url_len,
        .protocol = hs->req.minor == 0 && hs->req.major == 1 ? "HTTP/1.0" : "HTTP/1.1",
        .status = hs->status,
        .response_flags = hs->flags ? hs->flags : "-",
        .bytes_in = hs->body_in,
        .bytes_out = hs->body_out,
        .upstream_time_us = hs->upstream_us,
        .tls_cipher = hs->up ? or_stream_cipher(&hs->up->s) : or_http_mux_cipher(hs),
        .request_id = hs->ids.request_id[0] ? hs->ids.request_id : NULL,
        .trace_id = hs->ids.trace_id[0] ? hs->ids.trace_id : NULL,
    };
    or_conn_log_request(hs->c, &r, hs->started_ns, hs->rbac_evaluated ? &hs->rbac : NULL);
}

/* ---- exchanges ---- */

static void reset_exchange(or_http_session *hs)
{
    or_http_head_reset(&hs->req);
    or_http_head_reset(&hs->res);
    http_parser_init(&hs->req_parser, HTTP_REQUEST);
    hs->fwd.len = 0;
    hs->target.len = 0;
    hs->tgt = (or_target){0};
    hs->req_chunks = (or_chunked){0};
    or_http_set_rq(hs, OR_REQ_HEAD);
    or_http_set_rs(hs, OR_RES_NONE);
    hs->framing = OR_FRAME_AS_SENT;
    hs->origin = OR_UP_NEW;
    hs->up_reusable = hs->head_timer_armed = false;
    hs->method[0] = '\0';
    memset(&hs->ids, 0, sizeof hs->ids);
    hs->upstream_us = -1;
    hs->body_in = hs->body_out = 0;
    hs->status = 0;
    hs->flags = NULL;
    hs->rbac_evaluated = false;
    or_snapshot_drop(hs->snap);
    hs->snap = NULL;
    or_conn_arm(hs->c, config_of(hs)->timeouts.idle_ms, on_session_timer);
}

void or_http_exchange_done(or_http_session *hs)
{
    or_conn *c = hs->c;
    log_exchange(hs);
    or_http_mux_release(hs);
    if (hs->up)
        or_http_relay_release(hs, hs->up_reusable);
    if (hs->close_after || c->worker->draining) {
        or_conn_close_gracefully(c);
        return;
    }
    reset_exchange(hs);
    or_http_pump(hs);
}

static void session_end(or_conn *c);

void or_http_upgrade(or_http_session *hs)
{
    or_conn *c = hs->c;
    log_exchange(hs);
    c->up = hs->up;
    hs->up = NULL;
    session_end(c);
    or_pipe_start(c);
}

void or_http_abort(or_http_session *hs, const char *flags)
{
    hs->flags = flags;
    log_exchange(hs);
    or_conn_close(hs->c);
}

/* The proxy's own answer. Unless the request was read completely and asked
 * for keep-alive, the connection closes after it. */
void or_http_local_reply(or_http_session *hs, int status, const char *flags, const char *body)
{
    or_conn *c = hs->c;
    if (or_http_response_started(hs)) {
        or_http_abort(hs, flags); /* a response is half sent: nothing else is honest */
        return;
    }
    bool body_pending = hs->rq == OR_REQ_HEAD || hs->rq == OR_REQ_UPSTREAM ||
                        hs->rq == OR_REQ_BODY;
    if (body_pending || !hs->req.keep_alive || status == 400 || status == 408)
        hs->close_after = true;
    or_buf out = {0};
    size_t body_len = strlen(body);
    bool newline = body_len == 0 || body[body_len - 1] != '\n';
    int ok = or_buf_printf(&out,
                                  "HTTP/1.1 %d %s\r\ncontent-type: text/plain\r\n"
                                  "content-length: %zu\r\n%s\r\n",
                                  status, or_http_reason(status), body_len + newline,
                                  hs->close_after ? "connection: close\r\n" : "") == 0 &&
             or_buf_append(&out, body, body_len) == 0 &&
             or_buf_append(&out, "\n", newline) == 0;
    body_len += newline;
    if (ok)
        or_stream_write(&c->down, out.data, out.len);
    free(out.data);
    hs->status = status;
    hs->flags = flags;
    hs->body_out = body_len;
    or_http_set_rs(hs, OR_RES_DONE);
    if (hs->rq == OR_REQ_DISCARD)
        return; /* the exchange ends when the discarded body has been read */
    or_http_exchange_done(hs);
}

/* A request the proxy will not pass on: logged, answered, then closed. */
static void reject(or_http_session *hs, int status, const char *why)
{
    or_log_info("request rejected listener=%s peer=%s status=%d reason=\"%s\"",
                hs->c->listener->cfg->name, hs->c->peer, status, why);
    or_http_local_reply(hs, status, "DPE", why);
}

/* ---- the request head ---- */

static void take_ids(or_http_session *hs)
{
    const or_http_header *rid = or_http_head_find(&hs->req, "x-request-id", 12);
    const or_http_header *tp = or_http_head_find(&hs->req, "traceparent", 11);
    or_trace_take(&hs->ids, &hs->c->worker->trace_random, &hs->c->tls->tls.rng.drbg,
                  rid ? rid->value : NULL, rid ? rid->value_len : 0, tp ? tp->value : NULL,
                  tp ? tp->value_len : 0);
}

static const char *header_for_rbac(void *ctx, const char *name, size_t name_len, size_t *len)
{
    const or_http_header *h = or_http_head_find(ctx, name, name_len);
    if (!h)
        return NULL;
    *len = h->value_len;
    return h->value;
}

/* The host the request is for, without a port: the authority of an
 * absolute-form target, else the Host header; NULL when there is neither. */
static const char *request_host(const or_http_session *hs, size_t *len)
{
    const char *v = hs->tgt.authority;
    size_t n = hs->tgt.authority_len;
    const or_http_header *host = or_http_head_host(&hs->req);
    if (n == 0 && host) {
        v = host->value;
        n = host->value_len;
    }
    if (!v)
        return NULL;
    *len = or_http_host_len(v, n);
    return v;
}

static bool request_allowed(or_http_session *hs)
{
    or_conn *c = hs->c;
    if (c->listener->cfg->mode != OR_MODE_INBOUND)
        return true;
    or_snapshot_drop(hs->snap);
    hs->snap = or_snapshot_hold(c->worker->snap);
    if (!hs->snap->rbac)
        return true;
    or_rbac_request req = or_conn_rbac_request(c);
    req.method = hs->method;
    req.method_len = strlen(hs->method);
    req.path = hs->target.data;
    req.path_len = hs->tgt.path_len;
    req.host = request_host(hs, &req.host_len);
    req.header = header_for_rbac;
    req.header_ctx = &hs->req;
    hs->rbac_evaluated = true;
    return or_conn_rbac_decide(c, hs->snap, &req, hs->target.len, &hs->rbac);
}

/* The normalised target, which policies match and the app receives. */
static int take_target(or_http_session *hs, const char **why)
{
    or_path_status st = or_http_target_normalize(hs->req.url, hs->req.url_len,
                                                  config_of(hs)->http.escaped_slashes,
                                                  &hs->target, &hs->tgt);
    if (st == OR_PATH_OK && hs->target.data[0] == '*' && hs->req_parser.method != HTTP_OPTIONS)
        st = OR_PATH_BAD_FORM; /* "*" is for OPTIONS only */
    if (st == OR_PATH_OK)
        return 0;
    hs->target.len = 0;
    *why = or_http_path_status_text(st);
    return st == OR_PATH_NO_MEMORY ? 500 : 400;
}

/* Rejects what a proxy must not pass on; 0 when the request may go on. */
static int vet_request(or_http_session *hs, const char **why)
{
    int status = or_http_head_vet_request(&hs->req, &hs->req_parser, why);
    if (hs->req.url) {
        const char *method = http_method_str((enum http_method)hs->req_parser.method);
        size_t method_len = strnlen(method, sizeof hs->method - 1);
        memcpy(hs->method, method, method_len);
        hs->method[method_len] = '\0';
    }
    return status != 0 ? status : take_target(hs, why);
}

static void on_request_head(or_http_session *hs)
{
    const char *why = NULL;
    if (hs->head_timer_armed) /* the head is in: back to the idle timeout */
        or_conn_arm(hs->c, config_of(hs)->timeouts.idle_ms, on_session_timer);
    int status = vet_request(hs, &why);
    take_ids(hs);
    if (status != 0) {
        reject(hs, status, why);
        return;
    }
    or_http_set_rq(hs, hs->req.message_done ? OR_REQ_SENT : OR_REQ_BODY);
    if (!request_allowed(hs)) {
        if (hs->rq == OR_REQ_BODY)
            or_http_set_rq(hs, OR_REQ_DISCARD);
        or_http_local_reply(hs, 403, "RBAC", "RBAC: access denied\n");
        return;
    }
    if (!or_http_mux_start(hs))
        or_http_relay_start(hs);
}

/* ---- the request body ---- */

static int on_request_body(http_parser *p, const char *at, size_t len)
{
    or_http_session *hs = p->data;
    assert(hs->rq == OR_REQ_BODY || hs->rq == OR_REQ_DISCARD);
    hs->body_in += len;
    if (hs->rq == OR_REQ_BODY && hs->mux)
        or_http_mux_body(hs, at, len, false);
    else if (hs->rq == OR_REQ_BODY)
        or_http_relay_body(hs, at, len, false);
    return 0;
}

static int on_request_complete(http_parser *p)
{
    or_http_session *hs = p->data;
    bool relaying = hs->rq == OR_REQ_BODY;
    or_http_set_rq(hs, OR_REQ_SENT);
    http_parser_pause(p, 1);
    if (relaying && hs->mux)
        or_http_mux_body(hs, NULL, 0, true);
    else if (relaying)
        or_http_relay_body(hs, NULL, 0, true);
    return 0;
}

static const http_parser_settings request_body_settings = {
    .on_body = on_request_body,
    .on_message_complete = on_request_complete,
};

/* ---- pumping downstream bytes ---- */

static void start_head_timer(or_http_session *hs);

/* Handles a prefix of `data`; returns how much. Stops where the session
 * must wait (for an upstream, or for the response to end). */
static size_t pump_once(or_http_session *hs, const char *data, size_t len)
{
    if (hs->rq == OR_REQ_HEAD) {
        size_t used = 0;
        if (hs->req.raw.len == 0 && len > 0) {
            clock_gettime(CLOCK_REALTIME, &hs->started_at);
            hs->started_ns = uv_hrtime();
        }
        or_head_status st = or_http_head_collect(&hs->req, data, len,
                                                 config_of(hs)->limits.max_request_headers, &used);
        if (st == OR_HEAD_TOO_BIG) {
            or_http_local_reply(hs, 431, "DPE", "request head too large\n");
        } else if (st == OR_HEAD_DONE) {
            on_request_head(hs);
        } else if (hs->req.raw.len > 0) {
            start_head_timer(hs);
        }
        return used;
    }
    if (hs->rq != OR_REQ_BODY && hs->rq != OR_REQ_DISCARD)
        return 0;
    bool discarding = hs->rq == OR_REQ_DISCARD; /* answered: the exchange ends with the body */
    size_t valid = hs->req.chunked ? or_chunked_scan(&hs->req_chunks, data, len) : len;
    /* no bytes would tell http-parser the stream ended */
    size_t n = valid > 0 ? http_parser_execute(&hs->req_parser, &request_body_settings, data, valid)
                         : 0;
    if (hs->req_chunks.state == OR_CHUNK_ERROR && (hs->rq == OR_REQ_BODY || discarding)) {
        reject(hs, 400, hs->req_chunks.why);
        return n;
    }
    enum http_errno err = HTTP_PARSER_ERRNO(&hs->req_parser);
    if (err == HPE_PAUSED) {
        http_parser_pause(&hs->req_parser, 0);
        if (discarding)
            or_http_exchange_done(hs);
    } else if (err != HPE_OK) {
        reject(hs, 400, http_errno_description(err));
    }
    return n;
}

static bool wants_input(const or_http_session *hs)
{
    if (hs->rq == OR_REQ_HEAD || hs->rq == OR_REQ_DISCARD)
        return true;
    if (hs->rq != OR_REQ_BODY)
        return false;
    if (hs->mux)
        return or_http_mux_wants_body(hs);
    return hs->up && or_stream_queued(&hs->up->s) <= OR_PIPE_LOW_WATERMARK;
}

/* Whether to keep the downstream socket readable. While a request is in
 * flight the next bytes wait in `in` (up to one read buffer), so the socket
 * is not taken off the poll set and put back for every request; a request
 * body is read only as fast as the upstream takes it. */
static bool keeps_reading(const or_http_session *hs)
{
    if (hs->down_eof || hs->in.len >= OR_STREAM_READ_BUF_SIZE)
        return false;
    return hs->rq == OR_REQ_BODY || hs->rq == OR_REQ_DISCARD ? wants_input(hs) : true;
}

void or_http_pump(or_http_session *hs)
{
    or_conn *c = hs->c;
    if (hs->pumping)
        return;
    hs->pumping = true;
    size_t off = 0;
    while (off < hs->in.len && wants_input(hs)) {
        size_t n = pump_once(hs, hs->in.data + off, hs->in.len - off);
        if (n == 0 && (hs->rq == OR_REQ_HEAD || hs->rq == OR_REQ_BODY || hs->rq == OR_REQ_DISCARD))
            break;
        off += n;
    }
    hs->pumping = false;
    memmove(hs->in.data, hs->in.data + off, hs->in.len - off);
    hs->in.len -= off;
    if (hs->rq == OR_REQ_CLOSED)
        return; /* an exchange ended the connection: its stream is not ours */
    if (hs->down_eof && hs->rq == OR_REQ_HEAD) {
        or_conn_close_gracefully(c); /* the client sent all it will send */
        return;
    }
    if (keeps_reading(hs))
        or_stream_read_start(&c->down);
    else
        or_stream_read_stop(&c->down);
    or_http_mux_run(hs); /* what the pump gave the hop goes out */
}

/* ---- downstream events ---- */

/* Downstream callbacks and timers are the session's only while it runs. */
static or_http_session *running_session(or_conn *c)
{
    or_http_session *hs = or_http_session_of(c);
    assert(c->phase == OR_CONN_HTTP && hs->rq != OR_REQ_CLOSED);
    return hs;
}

static void on_down_read(or_stream *s, ssize_t nread, const char *data)
{
    or_conn *c = s->owner;
    or_http_session *hs = running_session(c);
    if (nread > 0) {
        or_conn_touch(c);
        if (or_buf_append(&hs->in, data, (size_t)nread) != 0) {
            or_conn_close(c);
            return;
        }
        or_http_pump(hs);
        or_h2_pool_early(c->listener); /* after the pump: requests on the hop may go now */
        return;
    }
    bool idle = hs->rq == OR_REQ_HEAD && hs->req.raw.len == 0 && hs->in.len == 0;
    bool request_whole = hs->rq == OR_REQ_SENT || (hs->rq == OR_REQ_UPSTREAM && hs->req.message_done);
    if (nread == UV_EOF && hs->rq == OR_REQ_HEAD) {
        or_conn_close_gracefully(c); /* nothing, or half a head that cannot end */
    } else if (nread == UV_EOF && request_whole) {
        hs->down_eof = true; /* a half-close: answer, then any pipelined requests, then close */
    } else if (idle) {
        or_conn_close(c);
    } else {
        or_http_abort(hs, "DC");
    }
}

static void on_down_drain(or_stream *s)
{
    or_conn *c = s->owner;
    or_http_session *hs = running_session(c);
    or_conn_touch(c);
    if (hs->mux && or_stream_queued(s) <= OR_PIPE_LOW_WATERMARK)
        or_http_mux_drain(hs);
    else if (hs->up && !or_stream_reading(&hs->up->s) && hs->rs != OR_RES_DONE &&
        or_stream_queued(s) <= OR_PIPE_LOW_WATERMARK)
        or_stream_read_start(&hs->up->s);
}

static void on_down_write_error(or_stream *s, int status)
{
    (void)status;
    or_http_abort(running_session(s->owner), "DC");
}

/* ---- timers ---- */

static void on_head_timeout(uv_timer_t *t)
{
    or_conn *c = t->data;
    or_log_info("request headers timeout listener=%s peer=%s", c->listener->cfg->name, c->peer);
    or_http_local_reply(running_session(c), 408, "DPE", "request headers not received in time\n");
}

static void start_head_timer(or_http_session *hs)
{
    if (hs->head_timer_armed)
        return;
    hs->head_timer_armed = true;
    or_conn_arm(hs->c, config_of(hs)->timeouts.request_headers_ms, on_head_timeout);
}

/* Which way an idle exchange is stuck, when the client is the one that
 * stopped: it has not read what the proxy sent, or it stopped sending a
 * body the upstream was taking. NULL when it waits on the upstream. */
static const char *client_stall(const or_http_session *hs)
{
    if (or_http_response_started(hs) && or_stream_queued(&hs->c->down) > 0)
        return "stopped reading the response";
    if (hs->rq == OR_REQ_BODY && !or_http_response_started(hs) &&
        ((hs->up && or_stream_queued(&hs->up->s) == 0) || or_http_mux_body_idle(hs)))
        return "stopped sending the request body";
    return NULL;
}

static void on_session_timer(uv_timer_t *t)
{
    or_conn *c = t->data;
    or_http_session *hs = running_session(c);
    uint64_t idle = config_of(hs)->timeouts.idle_ms;
    uint64_t quiet = uv_now(&c->worker->loop) - c->last_activity;
    if (quiet < idle) {
        or_conn_arm(c, idle - quiet, on_session_timer);
        return;
    }
    if (hs->rq == OR_REQ_HEAD && hs->req.raw.len == 0) {
        or_conn_close_gracefully(c); /* keep-alive connection unused */
        return;
    }
    const char *stalled = client_stall(hs);
    if (stalled) {
        or_log_info("downstream timeout listener=%s peer=%s reason=\"the client %s\"",
                    c->listener->cfg->name, c->peer, stalled);
        if (or_http_response_started(hs))
            or_http_abort(hs, "SI");
        else
            or_http_local_reply(hs, 408, "SI", "request body not received in time\n");
        return;
    }
    or_log_info("upstream timeout listener=%s peer=%s", c->listener->cfg->name, c->peer);
    or_http_local_reply(hs, 504, "UT", "upstream did not answer in time\n");
}

/* ---- life cycle: the phase operations (conn.h) ---- */

static void session_start(or_conn *c)
{
    or_http_session *hs = calloc(1, sizeof *hs);
    if (!hs) {
        or_conn_close(c);
        return;
    }
    hs->c = c;
    hs->req_parser.data = hs;
    hs->res_parser.data = hs;
    c->phase_state = hs;
    or_conn_set_phase(c, OR_CONN_HTTP);
    c->down.on_read = on_down_read;
    c->down.on_drain = on_down_drain;
    c->down.on_write_error = on_down_write_error;
    or_conn_touch(c);
    reset_exchange(hs);
    if (or_stream_read_start(&c->down) != 0)
        or_conn_close(c);
}

static void session_drain(or_conn *c)
{
    or_http_session *hs = or_http_session_of(c);
    if (hs && hs->rq == OR_REQ_HEAD && hs->req.raw.len == 0 && hs->in.len == 0)
        or_conn_close_gracefully(c);
}

/* The session stops: any upstream goes back. Its state stays readable for
 * the callers up the stack until session_release. */
static void session_end(or_conn *c)
{
    or_http_session *hs = or_http_session_of(c);
    if (!hs || hs->rq == OR_REQ_CLOSED)
        return;
    or_http_set_rq(hs, OR_REQ_CLOSED);
    or_http_mux_end(hs);
    if (hs->up)
        or_http_relay_release(hs, false);
}

static void session_release(or_conn *c)
{
    or_http_session *hs = or_http_session_of(c);
    c->phase_state = NULL;
    if (!hs)
        return;
    assert(hs->rq == OR_REQ_CLOSED && !hs->up);
    or_http_mux_free(hs);
    or_snapshot_drop(hs->snap);
    or_http_head_free(&hs->req);
    or_http_head_free(&hs->res);
    free(hs->in.data);
    free(hs->fwd.data);
    free(hs->target.data);
    free(hs);
}

const or_conn_phase_ops or_http_phase = {
    .name = "http",
    .start = session_start,
    .drain = session_drain,
    .end = session_end,
    .release = session_release,
};
