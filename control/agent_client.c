/*
 * The HTTPS client of outrider-agent.
 *
 * A request is a small object holding a TLS or_stream (the proxy's stream,
 * so mbedTLS I/O and the SPIFFE check of the server are the proxy's), a
 * deadline timer and an http_parser for the response. Its steps are
 * connect, handshake, write the whole request, read until the response is
 * complete, then close. Whatever happens, the object closes both handles
 * and reports once, from the last close callback.
 */
#include "outrider/agent_client.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

typedef struct {
    or_stream s;
    uv_timer_t timer;
    int handles_open;
    bool closing, done;
    http_parser parser;
    char *request;
    size_t request_len;
    char *body;
    size_t body_len;
    int status;
    char err[256];
    or_agent_http_cb cb;
    void *ctx;
} or_agent_http;

static void finish(or_agent_http *h);
static void on_timer_closed(uv_handle_t *t) { finish(t->data); }
static void on_closed(or_stream *s) { finish(s->owner); }

static void http_close(or_agent_http *h, const char *err)
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

static void finish(or_agent_http *h)
{
    if (--h->handles_open > 0)
        return;
    int status = h->done && !h->err[0] ? h->status : -1;
    h->cb(h->ctx, status, h->body ? h->body : "", h->body_len, h->err[0] ? h->err : NULL);
    free(h->request);
    free(h->body);
    free(h);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    or_agent_http *h = p->data;
    if (h->body_len + len > OR_AGENT_HTTP_BODY_MAX)
        return -1;
    char *grown = realloc(h->body, h->body_len + len + 1);
    if (!grown)
        return -1;
    h->body = grown;
    memcpy(h->body + h->body_len, at, len);
    h->body_len += len;
    h->body[h->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    or_agent_http *h = p->data;
    h->done = true;
    h->status = (int)p->status_code;
    return 0;
}

static const http_parser_settings response_settings = {
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void on_read(or_stream *s, ssize_t nread, const char *data)
{
    or_agent_http *h = s->owner;
    if (h->closing)
        return;
    if (nread < 0 && nread != UV_EOF) {
        http_close(h, "connection failed while reading the response");
        return;
    }
    size_t len = nread < 0 ? 0 : (size_t)nread;
    size_t n = http_parser_execute(&h->parser, &response_settings, data, len);
    if (h->done)
        http_close(h, NULL);
    else if (n != len || h->parser.http_errno != HPE_OK)
        http_close(h, "malformed or oversized HTTP response");
    else if (nread == UV_EOF)
        http_close(h, "connection closed before the response was complete");
}

static void on_handshake(or_stream *s, int status)
{
    or_agent_http *h = s->owner;
    if (status != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "TLS handshake with the CA failed: %s",
                 or_tls_failure_reason(s->tls_error, &s->peer));
        http_close(h, msg);
        return;
    }
    if (or_stream_write(s, h->request, h->request_len) != 0)
        http_close(h, "cannot send the request");
}

static void on_connect(or_stream *s, int status)
{
    or_agent_http *h = s->owner;
    if (status != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot connect to the CA: %s", uv_strerror(status));
        http_close(h, msg);
        return;
    }
    or_stream_start_handshake(s);
}

static void on_write_error(or_stream *s, int status)
{
    (void)status;
    http_close(s->owner, "cannot send the request");
}

static void on_timeout(uv_timer_t *t)
{
    http_close(t->data, "the CA did not answer in time");
}

static int build_request(or_agent_http *h, const or_agent_http_req *req)
{
    char head[1024];
    char auth[256] = "";
    if (req->bearer)
        snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", req->bearer);
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: outrider-agent\r\n%s"
                     "Content-Type: application/pkcs10\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     req->method, req->path, req->host, auth, req->body_len);
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

int or_agent_http_start(const or_agent_http_req *req, or_agent_http_cb cb, void *ctx)
{
    or_agent_http *h = calloc(1, sizeof *h);
    if (!h || build_request(h, req) != 0 || or_stream_init(&h->s, req->sl, h, req->conf) != 0) {
        if (h)
            free(h->request);
        free(h);
        return -1;
    }
    h->cb = cb;
    h->ctx = ctx;
    h->handles_open = 2;
    h->s.peer.trust_domain = req->trust_domain;
    h->s.peer.expected_id = req->expected_id;
    h->s.on_read = on_read;
    h->s.on_connect = on_connect;
    h->s.on_handshake = on_handshake;
    h->s.on_write_error = on_write_error;
    h->s.on_close = on_closed;
    http_parser_init(&h->parser, HTTP_RESPONSE);
    h->parser.data = h;
    uv_timer_init(req->sl->loop, &h->timer);
    h->timer.data = h;
    uv_timer_start(&h->timer, on_timeout, OR_AGENT_HTTP_TIMEOUT_MS, 0);
    int r = or_stream_connect(&h->s, req->addr);
    if (r != 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "cannot connect to the CA: %s", uv_strerror(r));
        http_close(h, msg);
    }
    return 0;
}
