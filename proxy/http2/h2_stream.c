/*
 * HTTP/2 streams: one request each, from its complete header block to its
 * access-log line.
 *
 * A request whose header block has been decoded is checked (h2_headers.c),
 * its :path normalised exactly as an HTTP/1 target is (http_path.h), and on
 * inbound listeners decided by the L7 policy with the same fields HTTP/1
 * gives it. A refusal is answered here: a malformed block resets the stream
 * with PROTOCOL_ERROR, an oversized one gets 431, a bad path 400, a denial
 * 403; for a gRPC request (content-type application/grpc...) every answer
 * the proxy makes is a trailers-only response carrying the gRPC status a
 * client maps it to (PERMISSION_DENIED for a denial, UNAVAILABLE when the
 * upstream cannot be reached, DEADLINE_EXCEEDED for grpc-timeout). What
 * passes is forwarded (h2_upstream.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "h2_session.h"
#include "outrider/http2_h1.h"
#include "outrider/access_log.h"
#include "outrider/http_path.h"
#include "outrider/http_server.h"
#include "outrider/log.h"

/* ---- nghttp2 name/value arrays ---- */

/* A field whose value is new with each request. HPACK would add each one
 * to the dynamic table, where it evicts the fields that repeat (the
 * authority, the user agent, the hop's own field), only to be evicted in
 * turn: it is sent as a literal that is never indexed (RFC 7541 6.2.3). */
static bool unique_per_request(const char *name, size_t len)
{
    return (len == 12 && memcmp(name, "x-request-id", 12) == 0) ||
           (len == 11 && memcmp(name, "traceparent", 11) == 0);
}

int or_h2_nvs_push(or_h2_nvs *a, const char *name, size_t name_len, const char *value,
                   size_t value_len)
{
    if (!a->v) {
        a->v = a->first;
        a->cap = OR_H2_NVS_FIRST;
    }
    if (a->n == a->cap) {
        size_t cap = a->cap * 2;
        nghttp2_nv *v = malloc(cap * sizeof *v);
        if (!v)
            return -1;
        memcpy(v, a->v, a->n * sizeof *v);
        if (a->v != a->first)
            free(a->v);
        a->v = v;
        a->cap = cap;
    }
    a->v[a->n++] = (nghttp2_nv){
        .name = (uint8_t *)(uintptr_t)name,
        .value = (uint8_t *)(uintptr_t)value,
        .namelen = name_len,
        .valuelen = value_len,
        .flags = unique_per_request(name, name_len) ? NGHTTP2_NV_FLAG_NO_INDEX
                                                    : NGHTTP2_NV_FLAG_NONE,
    };
    return 0;
}

int or_h2_nvs_push_str(or_h2_nvs *a, const char *name, const char *value)
{
    return or_h2_nvs_push(a, name, strlen(name), value, strlen(value));
}

int or_h2_nvs_fields(or_h2_nvs *a, const or_h2_fields *f)
{
    int r = 0;
    for (size_t i = 0; i < f->n; i++)
        r |= or_h2_nvs_push(a, or_h2_field_name(f, i), f->v[i].name_len,
                            or_h2_field_value(f, i), f->v[i].value_len);
    return r;
}

void or_h2_nvs_free(or_h2_nvs *a)
{
    if (a->v != a->first)
        free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

/* ---- the access log ---- */

/* NUL-terminates `b` without counting the NUL. */
static void terminate(or_buf *b)
{
    if (or_buf_append(b, "", 1) == 0)
        b->len--;
}

void or_h2_stream_log(or_h2_stream *st)
{
    if (st->logged)
        return;
    st->logged = true;
    terminate(&st->req.method);
    bool have_target = st->target.len > 0;
    or_access_record r = {
        .start = st->started_at,
        .peer_id = st->up ? st->up->peer_id : or_h2_h1_peer_id(st),
        .method = st->req.method.len > 0 ? st->req.method.data : NULL,
        .path = have_target ? st->target.data : st->req.path.data,
        .path_len = have_target ? st->target.len : st->req.path.len,
        .protocol = st->orig_h1 ? "HTTP/1.1" : "HTTP/2",
        .status = st->status,
        .response_flags = st->flags ? st->flags : "-",
        .bytes_in = st->body_in,
        .bytes_out = st->body_out,
        .upstream_time_us = st->upstream_us,
        .tls_cipher = st->up ? st->up->cipher : or_h2_h1_cipher(st),
        .request_id = st->ids.request_id[0] ? st->ids.request_id : NULL,
        .trace_id = st->ids.trace_id[0] ? st->ids.trace_id : NULL,
        .grpc_status = st->grpc_status[0] ? st->grpc_status : NULL,
    };
    or_conn_log_request(st->hs->c, &r, st->started_ns, st->rbac_evaluated ? &st->rbac : NULL);
}

/* ---- answers made here ---- */

void or_h2_stream_reset(or_h2_stream *st, uint32_t error_code, const char *flags)
{
    if (!st->flags)
        st->flags = flags;
    if (st->hs->front && !st->local) { /* the client is answered when the session is flushed */
        if (st->rs == OR_H2_RS_NONE)
            st->status = 502;
        or_h2_pool_mark(st->hs);
    }
    st->local = true;
    if (st->down_open && !st->hs->front)
        nghttp2_submit_rst_stream(st->hs->ng, NGHTTP2_FLAG_NONE, st->id, error_code);
    or_h2_up_cancel(st);
}

static int submit_local(or_h2_stream *st, int status, const char *body, int grpc_code,
                        const char *grpc_message)
{
    char status_text[8], length_text[24], grpc_text[12];
    snprintf(status_text, sizeof status_text, "%d", st->req.grpc ? 200 : status);
    or_h2_nvs nv = {0};
    int r = or_h2_nvs_push_str(&nv, ":status", status_text);
    st->res_body.len = st->res_off = 0;
    if (st->req.grpc) {
        snprintf(grpc_text, sizeof grpc_text, "%d", grpc_code);
        snprintf(st->grpc_status, sizeof st->grpc_status, "%d", grpc_code);
        r |= or_h2_nvs_push_str(&nv, "content-type", "application/grpc");
        r |= or_h2_nvs_push_str(&nv, "grpc-status", grpc_text);
        r |= or_h2_nvs_push_str(&nv, "grpc-message", grpc_message);
    } else {
        size_t len = strlen(body);
        snprintf(length_text, sizeof length_text, "%zu", len);
        r |= or_h2_nvs_push_str(&nv, "content-type", "text/plain");
        r |= or_h2_nvs_push_str(&nv, "content-length", length_text);
        r |= or_buf_append(&st->res_body, body, len);
    }
    st->status = st->req.grpc ? 200 : status;
    st->rs = OR_H2_RS_ENDED;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = or_h2_response_read};
    if (r == 0)
        r = nghttp2_submit_response(st->hs->ng, st->id, nv.v, nv.n,
                                    st->res_body.len > 0 ? &prd : NULL);
    or_h2_nvs_free(&nv);
    return r;
}

void or_h2_local_reply(or_h2_stream *st, int status, const char *flags, const char *body,
                       int grpc_code, const char *grpc_message)
{
    or_h2_up_cancel(st);
    if (!st->flags)
        st->flags = flags;
    st->local = true;
    if (!st->down_open)
        return;
    if (st->rs != OR_H2_RS_NONE || submit_local(st, status, body, grpc_code, grpc_message) != 0)
        or_h2_stream_reset(st, NGHTTP2_INTERNAL_ERROR, flags);
}

/* ---- the request ---- */

static void take_ids(or_h2_stream *st)
{
    const or_h2_fields *f = &st->req.fields;
    long rid = or_h2_fields_find(f, "x-request-id", 12);
    long tp = or_h2_fields_find(f, "traceparent", 11);
    or_trace_take(&st->ids, &st->hs->c->worker->trace_random, &st->hs->c->tls->tls.rng.drbg,
                  rid >= 0 ? or_h2_field_value(f, (size_t)rid) : NULL,
                  rid >= 0 ? f->v[rid].value_len : 0,
                  tp >= 0 ? or_h2_field_value(f, (size_t)tp) : NULL,
                  tp >= 0 ? f->v[tp].value_len : 0);
}

static const char *header_for_rbac(void *ctx, const char *name, size_t name_len, size_t *len)
{
    const or_h2_fields *f = ctx;
    long i = or_h2_fields_find(f, name, name_len);
    if (i < 0)
        return NULL;
    *len = f->v[i].value_len;
    return or_h2_field_value(f, (size_t)i);
}

static bool request_allowed(or_h2_stream *st)
{
    or_conn *c = st->hs->c;
    if (c->listener->cfg->mode != OR_MODE_INBOUND)
        return true;
    or_snapshot_drop(st->snap);
    st->snap = or_snapshot_hold(c->worker->snap);
    if (!st->snap->rbac)
        return true;
    or_rbac_request req = or_conn_rbac_request(c);
    req.method = st->req.method.data;
    req.method_len = st->req.method.len;
    req.path = st->target.data;
    req.path_len = st->path_len;
    req.host = or_h2_request_host(&st->req, &req.host_len);
    req.header = header_for_rbac;
    req.header_ctx = &st->req.fields;
    st->rbac_evaluated = true;
    return or_conn_rbac_decide(c, st->snap, &req, st->target.len, &st->rbac);
}

/* The normalised :path; NULL when it is acceptable, else why not. */
static const char *take_target(or_h2_stream *st)
{
    or_target tgt = {0};
    or_path_status ps = or_http_target_normalize(st->req.path.data, st->req.path.len,
                                                 st->hs->c->worker->snap->cfg->http.escaped_slashes,
                                                 &st->target, &tgt);
    bool options = st->req.method.len == 7 && memcmp(st->req.method.data, "OPTIONS", 7) == 0;
    if (ps == OR_PATH_OK && (tgt.authority_len > 0 || (st->target.data[0] == '*' && !options)))
        ps = OR_PATH_BAD_FORM; /* :path is origin-form, or "*" for OPTIONS */
    if (ps == OR_PATH_OK && or_buf_append(&st->target, "", 1) == 0) {
        st->target.len--; /* NUL-terminated, not counted */
        st->path_len = tgt.path_len;
        return NULL;
    }
    st->target.len = 0;
    return ps == OR_PATH_OK ? "out of memory" : or_http_path_status_text(ps);
}

static void reject(or_h2_stream *st, int status, const char *why)
{
    or_conn *c = st->hs->c;
    or_log_info("request rejected listener=%s peer=%s protocol=HTTP/2 status=%d reason=\"%s\"",
                c->listener->cfg->name, c->peer, status, why);
    or_h2_local_reply(st, status, "DPE", why, 13 /* INTERNAL */, why);
}

void or_h2_request_ready(or_h2_stream *st)
{
    or_conn *c = st->hs->c;
    terminate(&st->req.method); /* for logs; the lengths stay as they were */
    take_ids(st);
    if (st->too_large) {
        or_log_info("request rejected listener=%s peer=%s protocol=HTTP/2 status=431 "
                    "reason=\"request headers too large\"",
                    c->listener->cfg->name, c->peer);
        or_h2_local_reply(st, 431, "DPE", "request headers too large\n", 13,
                          "request headers too large");
        return;
    }
    or_h2_check chk = st->refused != OR_H2_OK ? st->refused : or_h2_request_done(&st->req);
    if (chk != OR_H2_OK) {
        or_log_info("request refused listener=%s peer=%s protocol=HTTP/2 reason=\"%s\"",
                    c->listener->cfg->name, c->peer, or_h2_check_text(chk));
        or_h2_stream_reset(st, NGHTTP2_PROTOCOL_ERROR, "DPE");
        return;
    }
    const char *why = take_target(st);
    if (why) {
        reject(st, 400, why);
        return;
    }
    long o = or_h2_fields_find(&st->req.fields, OR_HOP_ORIG_PROTO, strlen(OR_HOP_ORIG_PROTO));
    st->orig_h1 = st->hs->hop && o >= 0 && st->req.fields.v[o].value_len == 8 &&
                  memcmp(or_h2_field_value(&st->req.fields, (size_t)o), "HTTP/1.1", 8) == 0;
    long t = or_h2_fields_find(&st->req.fields, "grpc-timeout", 12);
    if (t >= 0) {
        int64_t ms = or_h2_grpc_timeout_ms(or_h2_field_value(&st->req.fields, (size_t)t),
                                           st->req.fields.v[t].value_len);
        if (ms >= 0)
            st->deadline_ms = (int64_t)uv_now(&c->worker->loop) + ms;
    }
    if (!request_allowed(st)) {
        or_h2_local_reply(st, 403, "RBAC", "RBAC: access denied\n", 7, "RBAC: access denied");
        return;
    }
    or_h2_forward(st);
}
