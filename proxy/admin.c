/*
 * The admin HTTP server.
 *
 * The operator's endpoint on the main loop, served by the HTTP/1 kit
 * (http_server.h): one request per connection, at most 8 KiB, answered with
 * Connection: close, every connection bounded by a 5 second deadline.
 * Routing is a table of path and method; the handlers call back into
 * main.c through or_admin_ops.
 */
#include "outrider/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/http_server.h"
#include "outrider/metrics.h"

#define OR_ADMIN_MAX_REQUEST 8192
#define OR_ADMIN_TIMEOUT_MS 5000

struct or_admin {
    or_http_server server;
    or_admin_ops ops;
};

static void respond_text(or_http_exchange *x, int status, const char *text)
{
    or_http_respond(x, status, "text/plain", "", text, strlen(text));
}

/* ---- routes ---- */

static const or_http_route routes[] = {
    {"/ready", "GET"},   {"/live", "GET"},    {"/stats", "GET"},
    {"/certs", "GET"},   {"/config", "GET"},  {"/reload", "POST"},
    {"/drain", "POST"},  {"/quitquitquit", "POST"}, {"/server_info", "GET"},
};

static void refuse_route(or_http_exchange *x, int status, const char *allowed)
{
    if (status == 404) {
        respond_text(x, 404, "not found; try /ready /live /stats /certs /config /server_info\n");
        return;
    }
    bool get = strcmp(allowed, "GET") == 0;
    const char *msg = get ? "use GET\n" : "use POST: this changes state\n";
    or_http_respond(x, 405, "text/plain", get ? "allow: GET\r\n" : "allow: POST\r\n", msg,
                    strlen(msg));
}

/* The value of query parameter `key` in target, or NULL; *len its length. */
static const char *query_param(const char *target, size_t n, const char *key, size_t *len)
{
    const char *q = memchr(target, '?', n);
    size_t klen = strlen(key);
    const char *end = target + n;
    for (const char *p = q ? q + 1 : end; p < end;) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if ((size_t)(stop - p) > klen && memcmp(p, key, klen) == 0 && p[klen] == '=') {
            *len = (size_t)(stop - p) - klen - 1;
            return p + klen + 1;
        }
        p = stop + 1;
    }
    return NULL;
}

/* GET /stats: Prometheus text, or with ?format=json the same as JSON. */
static int stats(const or_admin_ops *ops, const or_http_msg *req, or_buf *body, const char **type)
{
    size_t len = 0;
    const char *format = query_param(req->head.url, req->head.url_len, "format", &len);
    bool json = format && len == 4 && memcmp(format, "json", 4) == 0;
    if (format && !json && !(len == 10 && memcmp(format, "prometheus", 10) == 0)) {
        or_buf_printf(body, "unknown format; use format=json or format=prometheus\n");
        return 400;
    }
    ops->stats(ops->ctx, body);
    *type = "text/plain; version=0.0.4";
    if (!json)
        return 200;
    or_buf doc = {0};
    int r = or_metrics_text_to_json(body->data ? body->data : "", body->len, &doc);
    or_buf_free(body);
    *body = doc;
    *type = "application/json";
    if (r != 0) {
        body->len = 0;
        or_buf_printf(body, "the metrics text could not be converted\n");
        *type = "text/plain";
        return 500;
    }
    return 200;
}

static void route(or_http_exchange *x, const or_admin_ops *ops, const or_http_msg *req,
                  const char *method)
{
    int status = 200;
    const char *allowed = NULL;
    int i = or_http_route_find(routes, sizeof routes / sizeof routes[0], req->head.url,
                               req->head.url_len, method, &status, &allowed);
    if (i < 0) {
        refuse_route(x, status, allowed);
        return;
    }
    or_buf body = {0};
    const char *type = "text/plain";
    switch (i) {
    case 0:
        status = ops->ready(ops->ctx, &body) ? 200 : 503;
        break;
    case 1: or_buf_printf(&body, "live\n"); break;
    case 2: status = stats(ops, req, &body, &type); break;
    case 3: ops->certs(ops->ctx, &body); break;
    case 4: ops->config(ops->ctx, &body); break;
    case 5: status = ops->reload(ops->ctx, &body); break;
    case 6:
        ops->drain(ops->ctx);
        or_buf_printf(&body, "draining\n");
        break;
    case 7:
        ops->quit(ops->ctx);
        or_buf_printf(&body, "exiting\n");
        break;
    case 8: ops->server_info(ops->ctx, &body); break;
    }
    if (i == 3 || i == 4 || i == 8) /* /certs, /config, /server_info */
        type = "application/json";
    or_http_respond(x, status, type, "", body.data ? body.data : "", body.len);
    or_buf_free(&body);
}

static void on_request(void *ctx, or_http_exchange *x, const or_http_msg *req)
{
    or_admin *a = ctx;
    if (req->state == OR_HTTP_MSG_TOO_LARGE || (req->state == OR_HTTP_MSG_MALFORMED &&
                                                 req->head.raw.len >= OR_ADMIN_MAX_REQUEST))
        respond_text(x, 400, "request too large\n");
    else if (req->state != OR_HTTP_MSG_COMPLETE)
        respond_text(x, 400, "malformed request\n");
    else if (strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0)
        route(x, &a->ops, req, "GET");
    else if (strcmp(req->method, "POST") == 0)
        route(x, &a->ops, req, "POST");
    else
        or_http_respond(x, 405, "text/plain", "allow: GET, POST\r\n", "use GET or POST\n", 16);
}

static void on_stopped(or_http_server *srv) { free(srv->opts.ctx); }

or_admin *or_admin_start(uv_loop_t *loop, const or_hostport *listen, const or_admin_ops *ops,
                         char *err, size_t err_len)
{
    or_admin *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    a->ops = *ops;
    const or_http_server_opts opts = {
        .head_max = OR_ADMIN_MAX_REQUEST,
        .body_max = OR_ADMIN_MAX_REQUEST,
        .read_max = OR_ADMIN_MAX_REQUEST,
        .first_byte_ms = OR_ADMIN_TIMEOUT_MS,
        .timeout_ms = OR_ADMIN_TIMEOUT_MS,
        .handler = on_request,
        .ctx = a,
        .on_stopped = on_stopped,
    };
    char why[200];
    if (or_http_server_start(&a->server, loop, (const struct sockaddr *)&listen->addr, &opts, why,
                             sizeof why) != 0) {
        snprintf(err, err_len, "admin: %s", why);
        return NULL; /* a is freed by on_stopped */
    }
    return a;
}

void or_admin_stop(or_admin *a)
{
    if (a)
        or_http_server_stop(&a->server);
}
