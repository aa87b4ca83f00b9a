/*
 * One HTTP/1 request over an or_stream.
 *
 * A request is a small object holding the stream (plain or TLS, so mbedTLS
 * I/O and the SPIFFE check of the server are the proxy's), a deadline timer
 * and an or_http_msg for the response. Its steps are connect, handshake
 * (TLS), write the whole request, read until the response is complete,
 * then close. Whatever happens, the object closes both handles and
 * reports once, from the last close callback.
 */
#include "outrider/http_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/http_head.h"

#define OR_HTTP_CLIENT_HEAD_MAX (16 * 1024)

typedef struct {
    or_stream s;
    uv_timer_t timer;
    int handles_open;
    bool closing;
    or_http_msg res;
    char *request;
    size_t request_len;
    const char *peer_name;
    char err[256];
    or_http_client_cb cb;
    void *ctx;
} or_http_client;

static void finish(or_http_client *h);
static void on_timer_closed(uv_handle_t *t) { finish(t->data); }
static void on_closed(or_stream *s) { finish(s->owner); }

static void client_close(or_http_client *h, const char *err)
{
    if (err && !h->err[0])
        snprintf(h->err, sizeof h->err, "%s", err);
    if (h->closing)
        return;
    h->closing = true;
    uv_timer_stop(&h->timer);
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
    or_stream_close(&h->s);
}

/* Closes with a message naming the server: "<what> <peer_name><then>: <detail>". */
static void client_fail(or_http_client *h, const char *what, const char *then, const char *detail)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s %s%s%s%s", what, h->peer_name, then, detail ? ": " : "",
             detail ? detail : "");
    client_close(h, msg);
}

static void finish(or_http_client *h)
{
    if (--h->handles_open > 0)
        return;
    bool done = h->res.state == OR_HTTP_MSG_COMPLETE;
    int status = done && !h->err[0] ? h->res.status : -1;
    h->cb(h->ctx, status, h->res.body ? h->res.body : "", h->res.body_len,
          h->err[0] ? h->err : NULL);
    or_http_msg_free(&h->res);
    free(h->request);
    free(h);
}

static void on_read(or_stream *s, ssize_t nread, const char *data)
{
    or_http_client *h = s->owner;
    if (h->closing)
        return;
    if (nread < 0 && nread != UV_EOF) {
        client_close(h, "connection failed while reading the response");
        return;
    }
    or_http_msg_state st = nread < 0 ? or_http_msg_finish(&h->res)
                                     : or_http_msg_feed(&h->res, data, (size_t)nread);
    if (st == OR_HTTP_MSG_COMPLETE)
        client_close(h, NULL);
    else if (st != OR_HTTP_MSG_PARTIAL)
        client_close(h, "malformed or oversized HTTP response");
    else if (nread == UV_EOF)
        client_close(h, "connection closed before the response was complete");
}

static void send_request(or_http_client *h)
{
    if (or_stream_write(&h->s, h->request, h->request_len) != 0)
        client_close(h, "cannot send the request");
}

static void on_handshake(or_stream *s, int status)
{
    or_http_client *h = s->owner;
    if (status != 0)
        client_fail(h, "TLS handshake with", " failed", or_tls_failure_reason(s->tls_error, &s->peer));
    else
        send_request(h);
}

static void on_connect(or_stream *s, int status)
{
    or_http_client *h = s->owner;
    if (status != 0)
        client_fail(h, "cannot connect to", "", uv_strerror(status));
    else if (s->ssl)
        or_stream_start_handshake(s);
    else if (or_stream_read_start(s) != 0)
        client_fail(h, "cannot read from", "", NULL);
    else
        send_request(h);
}

static void on_write_error(or_stream *s, int status)
{
    (void)status;
    client_close(s->owner, "cannot send the request");
}

static void on_timeout(uv_timer_t *t)
{
    or_http_client *h = t->data;
    char msg[128];
    snprintf(msg, sizeof msg, "%s did not answer in time", h->peer_name);
    client_close(h, msg);
}

static int build_request(or_http_client *h, const or_http_client_req *req)
{
    char head[2048], type[128] = "";
    if (req->content_type)
        snprintf(type, sizeof type, "Content-Type: %s\r\n", req->content_type);
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s\r\n%s%sContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     req->method, req->path, req->host, req->headers ? req->headers : "", type,
                     req->body_len);
    if (n < 0 || (size_t)n >= sizeof head)
        return -1;
    h->request = malloc((size_t)n + req->body_len);
    if (!h->request)
        return -1;
    memcpy(h->request, head, (size_t)n);
    if (req->body_len)
        memcpy(h->request + n, req->body, req->body_len);
    h->request_len = (size_t)n + req->body_len;
    return 0;
}

int or_http_client_start(const or_http_client_req *req, or_http_client_cb cb, void *ctx)
{
    or_http_client *h = calloc(1, sizeof *h);
    if (!h || build_request(h, req) != 0 || or_stream_init(&h->s, req->sl, h, req->conf) != 0) {
        if (h)
            free(h->request);
        free(h);
        return -1;
    }
    h->cb = cb;
    h->ctx = ctx;
    h->peer_name = req->peer_name ? req->peer_name : "the server";
    h->handles_open = 2;
    h->s.peer.trust_domain = req->trust_domain;
    h->s.peer.expected_id = req->expected_id;
    h->s.on_read = on_read;
    h->s.on_connect = on_connect;
    h->s.on_handshake = on_handshake;
    h->s.on_write_error = on_write_error;
    h->s.on_close = on_closed;
    or_http_msg_init(&h->res, false, OR_HTTP_CLIENT_HEAD_MAX, req->body_max);
    uv_timer_init(req->sl->loop, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_timeout, req->timeout_ms, 0);
    int r = or_stream_connect(&h->s, req->addr);
    if (r != 0)
        client_fail(h, "cannot connect to", "", uv_strerror(r));
    return 0;
}
