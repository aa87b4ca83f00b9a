/*
 * The admin HTTP server.
 *
 * A deliberately small HTTP/1.1 server on the main loop: each connection
 * carries one request, read into a fixed 8 KiB buffer and parsed with
 * http-parser, then one answer with Connection: close. Routing is a table
 * of path, method and handler; the handlers call back into main.c through
 * or_admin_ops. A 5 second timer bounds every connection.
 */
#include "outrider/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "outrider/log.h"

#define OR_ADMIN_MAX_REQUEST 8192
#define OR_ADMIN_TIMEOUT_MS 5000

struct or_admin {
    uv_tcp_t server;
    or_admin_ops ops;
};

typedef struct {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_write_t write_req;
    or_admin *admin;
    http_parser parser;
    char buf[OR_ADMIN_MAX_REQUEST];
    size_t len;
    char url[256];
    bool complete, answered;
    int handles;
    or_buf reply;
} or_admin_conn;

/* ---- connections ---- */

static void on_conn_closed(uv_handle_t *h)
{
    or_admin_conn *c = h->data;
    if (--c->handles == 0) {
        or_buf_free(&c->reply);
        free(c);
    }
}

static void close_conn(or_admin_conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) {
        uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
        uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    }
}

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    close_conn(req->data);
}

static void respond(or_admin_conn *c, int status, const char *type, const char *extra,
                    const char *body, size_t body_len)
{
    static const struct {
        int code;
        const char *text;
    } reasons[] = {{200, "OK"},          {400, "Bad Request"},        {404, "Not Found"},
                   {405, "Method Not Allowed"}, {409, "Conflict"},    {500, "Internal Server Error"},
                   {503, "Service Unavailable"}};
    const char *reason = "Error";
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == status)
            reason = reasons[i].text;
    c->answered = true;
    or_buf_printf(&c->reply,
                   "HTTP/1.1 %d %s\r\ncontent-type: %s\r\ncontent-length: %zu\r\n%s"
                   "connection: close\r\n\r\n",
                   status, reason, type, body_len, extra);
    if (body_len > 0)
        or_buf_printf(&c->reply, "%.*s", (int)body_len, body);
    uv_buf_t b = uv_buf_init(c->reply.data, (unsigned)c->reply.len);
    c->write_req.data = c;
    if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, on_written) != 0)
        close_conn(c);
}

static void respond_text(or_admin_conn *c, int status, const char *text)
{
    respond(c, status, "text/plain", "", text, strlen(text));
}

/* ---- routes ---- */

typedef enum { GET, POST } or_admin_method;

static void route(or_admin_conn *c, or_admin_method method)
{
    static const struct {
        const char *path;
        or_admin_method method;
    } routes[] = {{"/ready", GET},  {"/live", GET},  {"/stats", GET},         {"/certs", GET},
                  {"/config", GET}, {"/reload", POST}, {"/drain", POST}, {"/quitquitquit", POST},
                  {"/server_info", GET}};
    char *query = strchr(c->url, '?');
    if (query)
        *query = '\0';
    size_t i = 0;
    while (i < sizeof routes / sizeof routes[0] && strcmp(routes[i].path, c->url) != 0)
        i++;
    if (i == sizeof routes / sizeof routes[0]) {
        respond_text(c, 404, "not found; try /ready /live /stats /certs /config /server_info\n");
        return;
    }
    if (routes[i].method != method) {
        const char *allow = routes[i].method == GET ? "allow: GET\r\n" : "allow: POST\r\n";
        const char *msg = routes[i].method == GET ? "use GET\n" : "use POST: this changes state\n";
        respond(c, 405, "text/plain", allow, msg, strlen(msg));
        return;
    }
    const or_admin_ops *ops = &c->admin->ops;
    or_buf body = {0};
    int status = 200;
    const char *type = "text/plain";
    switch (i) {
    case 0:
        status = ops->ready(ops->ctx, &body) ? 200 : 503;
        break;
    case 1: or_buf_printf(&body, "live\n"); break;
    case 2:
        ops->stats(ops->ctx, &body);
        type = "text/plain; version=0.0.4";
        break;
    case 3:
        ops->certs(ops->ctx, &body);
        type = "application/json";
        break;
    case 4:
        ops->config(ops->ctx, &body);
        type = "application/json";
        break;
    case 5: status = ops->reload(ops->ctx, &body); break;
    case 6:
        ops->drain(ops->ctx);
        or_buf_printf(&body, "draining\n");
        break;
    case 7:
        ops->quit(ops->ctx);
        or_buf_printf(&body, "exiting\n");
        break;
    case 8:
        ops->server_info(ops->ctx, &body);
        type = "application/json";
        break;
    }
    respond(c, status, type, "", body.data ? body.data : "", body.len);
    or_buf_free(&body);
}

/* ---- parsing ---- */

static int on_url(http_parser *p, const char *at, size_t len)
{
    or_admin_conn *c = p->data;
    size_t have = strlen(c->url);
    if (have + len >= sizeof c->url)
        return 1;
    memcpy(c->url + have, at, len);
    c->url[have + len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    ((or_admin_conn *)p->data)->complete = true;
    return 0;
}

static const http_parser_settings admin_settings = {.on_url = on_url,
                                                    .on_message_complete = on_complete};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    or_admin_conn *c = h->data;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(sizeof c->buf - c->len));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    or_admin_conn *c = s->data;
    if (nread < 0 || c->answered) {
        if (!c->answered)
            close_conn(c);
        return;
    }
    size_t parsed = http_parser_execute(&c->parser, &admin_settings, buf->base, (size_t)nread);
    c->len += (size_t)nread;
    if (parsed != (size_t)nread || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK) {
        respond_text(c, 400, "malformed request\n");
        return;
    }
    if (c->complete) {
        uv_read_stop(s);
        if (c->parser.method == HTTP_GET || c->parser.method == HTTP_HEAD)
            route(c, GET);
        else if (c->parser.method == HTTP_POST)
            route(c, POST);
        else
            respond(c, 405, "text/plain", "allow: GET, POST\r\n", "use GET or POST\n", 16);
    } else if (c->len == sizeof c->buf) {
        respond_text(c, 400, "request too large\n");
    }
}

static void on_timeout(uv_timer_t *t) { close_conn(t->data); }

static void on_connection(uv_stream_t *server, int status)
{
    or_admin *a = server->data;
    if (status != 0)
        return;
    or_admin_conn *c = calloc(1, sizeof *c);
    if (!c)
        return;
    c->admin = a;
    uv_tcp_init(server->loop, &c->tcp);
    uv_timer_init(server->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
        close_conn(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, OR_ADMIN_TIMEOUT_MS, 0);
}

static void on_server_closed(uv_handle_t *h) { free(h->data); }

or_admin *or_admin_start(uv_loop_t *loop, const or_hostport *listen, const or_admin_ops *ops,
                         char *err, size_t err_len)
{
    or_admin *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    a->ops = *ops;
    uv_tcp_init(loop, &a->server);
    a->server.data = a;
    int r = uv_tcp_bind(&a->server, (const struct sockaddr *)&listen->addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&a->server, 64, on_connection);
    if (r != 0) {
        char addr[80];
        snprintf(err, err_len, "admin: cannot listen on %s: %s",
                 or_addr_format((const struct sockaddr *)&listen->addr, addr, sizeof addr),
                 uv_strerror(r));
        uv_close((uv_handle_t *)&a->server, on_server_closed);
        return NULL;
    }
    return a;
}

void or_admin_stop(or_admin *a)
{
    if (a)
        uv_close((uv_handle_t *)&a->server, on_server_closed);
}
