/*
 * The small HTTP/1 server of the admin endpoint and outrider-ca
 * (http_server.h has the contract).
 *
 * A connection (or_http_exchange) is an or_stream and a timer, so two
 * handles: it is freed from the close callback of the last of them, and
 * everything before that only marks it closing. One timer bounds the whole
 * connection: first_byte_ms from accept to the first byte of the request,
 * then what is left of timeout_ms. The connection list serves the
 * per-address cap and stop.
 */
#include "outrider/http_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/log.h"
#include "outrider/units.h"

struct or_http_exchange {
    or_http_server *srv;
    LIST_ENTRY(or_http_exchange) entry; /* the server's `conns`, until closing */
    or_stream s;
    uv_timer_t timer;
    uint64_t accepted_ms;            /* loop time */
    size_t read_total;
    int handles_open;
    bool responded, closing, eof_seen;
    or_http_msg req;
    struct sockaddr_storage addr;
    char peer[64];
};

static void conn_close(or_http_exchange *x);

const char *or_http_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Error";
    }
}

int or_http_route_find(const or_http_route *routes, size_t n, const char *target,
                       size_t target_len, const char *method, int *status,
                       const char **allowed)
{
    size_t path_len = 0;
    while (path_len < target_len && target[path_len] != '?')
        path_len++;
    for (size_t i = 0; i < n; i++) {
        if (strlen(routes[i].path) != path_len || memcmp(routes[i].path, target, path_len) != 0)
            continue;
        if (strcmp(routes[i].method, method) == 0)
            return (int)i;
        *status = 405;
        *allowed = routes[i].method;
        return -1;
    }
    *status = 404;
    *allowed = NULL;
    return -1;
}

/* ---- responses ---- */

or_stream *or_http_exchange_stream(or_http_exchange *x) { return &x->s; }
const char *or_http_exchange_peer(const or_http_exchange *x) { return x->peer; }

void or_http_respond(or_http_exchange *x, int status, const char *type, const char *extra,
                     const char *body, size_t body_len)
{
    if (x->responded || x->closing)
        return;
    x->responded = true;
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, or_http_reason(status), type, body_len, extra);
    if (n < 0 || (size_t)n >= sizeof head || or_stream_write(&x->s, head, (size_t)n) != 0 ||
        (body_len && or_stream_write(&x->s, body, body_len) != 0)) {
        conn_close(x);
        return;
    }
    or_stream_shutdown(&x->s); /* close_notify, then FIN */
    x->srv->served++;
}

/* ---- input ---- */

static void answer(or_http_exchange *x, or_http_msg_state state)
{
    if (state == OR_HTTP_MSG_PARTIAL || x->responded)
        return;
    x->srv->opts.handler(x->srv->opts.ctx, x, &x->req);
    if (!x->responded)
        conn_close(x); /* a handler that did not answer */
}

static void on_handshake(or_stream *s, int status)
{
    or_http_exchange *x = s->owner;
    if (status != 0) {
        or_log_debug("TLS handshake with %s failed (-0x%04x)", x->peer,
                     (unsigned)-s->tls_error);
        conn_close(x);
    }
}

static void on_timeout(uv_timer_t *t);

/* The first byte of the request: the rest of it has what is left of the
 * whole-connection deadline. */
static void on_first_byte(or_http_exchange *x)
{
    uint64_t spent = uv_now(x->srv->loop) - x->accepted_ms;
    uint64_t whole = x->srv->opts.timeout_ms;
    uv_timer_start(&x->timer, on_timeout, spent < whole ? whole - spent : 1, 0);
}

static void on_stream_read(or_stream *s, ssize_t nread, const char *data)
{
    or_http_exchange *x = s->owner;
    if (x->closing)
        return;
    if (nread == UV_EOF && !x->responded) /* a client that finished early */
        answer(x, or_http_msg_finish(&x->req));
    if (nread < 0) {
        x->eof_seen = true;
        if (nread != UV_EOF || !x->responded || or_stream_output_done(&x->s))
            conn_close(x);
        return;
    }
    if (x->read_total == 0 && nread > 0)
        on_first_byte(x);
    x->read_total += (size_t)nread;
    if (x->responded)
        return;
    if (x->read_total > x->srv->opts.read_max) {
        x->req.state = OR_HTTP_MSG_TOO_LARGE;
        x->req.why = "request too large";
        answer(x, x->req.state);
        return;
    }
    answer(x, or_http_msg_feed(&x->req, data, (size_t)nread));
}

/* ---- connection life cycle ---- */

static void on_handle_closed(or_http_exchange *x)
{
    if (--x->handles_open > 0)
        return;
    or_http_msg_free(&x->req);
    free(x);
}

static void on_stream_closed(or_stream *s) { on_handle_closed(s->owner); }
static void on_timer_closed(uv_handle_t *h) { on_handle_closed(h->data); }

static void conn_close(or_http_exchange *x)
{
    if (x->closing)
        return;
    x->closing = true;
    LIST_REMOVE(x, entry);
    x->srv->nconns--;
    uv_timer_stop(&x->timer);
    uv_close((uv_handle_t *)&x->timer, on_timer_closed);
    or_stream_close(&x->s);
}

static void on_timeout(uv_timer_t *t)
{
    or_http_exchange *x = t->data;
    if (x->read_total == 0)
        or_log_debug("connection from %s sent no request within %llu ms", x->peer,
                     (unsigned long long)x->srv->opts.first_byte_ms);
    else
        or_log_debug("connection from %s timed out", x->peer);
    conn_close(x);
}

static void on_drain(or_stream *s)
{
    or_http_exchange *x = s->owner;
    if (x->eof_seen && or_stream_output_done(s))
        conn_close(x);
}

static void on_write_error(or_stream *s, int status)
{
    (void)status;
    conn_close(s->owner);
}

static void peer_name(or_http_exchange *x)
{
    int len = sizeof x->addr;
    if (uv_tcp_getpeername(&x->s.tcp, (struct sockaddr *)&x->addr, &len) == 0)
        or_addr_format((const struct sockaddr *)&x->addr, x->peer, sizeof x->peer);
}

static bool same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/* Why x may not be served, or NULL. */
static const char *over_limits(const or_http_exchange *x, char *why, size_t len)
{
    const or_http_server *srv = x->srv;
    if (srv->opts.max_conns && srv->nconns > srv->opts.max_conns) {
        snprintf(why, len, "more than %zu connections open", srv->opts.max_conns);
        return why;
    }
    if (!srv->opts.max_per_ip || (x->addr.ss_family != AF_INET && x->addr.ss_family != AF_INET6))
        return NULL;
    size_t same = 0;
    const or_http_exchange *o;
    LIST_FOREACH(o, &srv->conns, entry)
        if (o != x && !o->closing && same_ip(&o->addr, &x->addr))
            same++;
    if (same < srv->opts.max_per_ip)
        return NULL;
    snprintf(why, len, "more than %zu connections open from its address", srv->opts.max_per_ip);
    return why;
}

/* Counts and closes a connection that will not be served; logs at most
 * one line a second, with the count so far. */
static void refuse(or_http_exchange *x, const char *why)
{
    or_http_server *srv = x->srv;
    uint64_t now = uv_now(srv->loop);
    srv->refused++;
    if (now >= srv->refused_quiet_until) {
        or_log_warn("connection from %s refused: %s (%llu refused since start)", x->peer, why,
                    (unsigned long long)srv->refused);
        srv->refused_quiet_until = now + 1000;
    }
    conn_close(x);
}

static int conn_setup(or_http_exchange *x)
{
    const or_http_server_opts *o = &x->srv->opts;
    or_http_msg_init(&x->req, true, o->head_max, o->body_max);
    x->s.peer_checked_by_owner = o->peer_checked_by_owner;
    x->s.on_handshake = on_handshake;
    x->s.on_read = on_stream_read;
    x->s.on_drain = on_drain;
    x->s.on_write_error = on_write_error;
    x->accepted_ms = uv_now(x->srv->loop);
    uv_timer_start(&x->timer, on_timeout, o->first_byte_ms, 0);
    return o->tls ? or_stream_start_handshake(&x->s) : or_stream_read_start(&x->s);
}

static void on_connection(uv_stream_t *listener, int status)
{
    or_http_server *srv = listener->data;
    if (status != 0)
        return;
    or_http_exchange *x = calloc(1, sizeof *x);
    if (!x || or_stream_init(&x->s, &srv->sl, x, srv->opts.tls) != 0) {
        free(x);
        return;
    }
    x->srv = srv;
    x->handles_open = 2;
    uv_timer_init(srv->loop, &x->timer);
    x->timer.data = x;
    x->s.on_close = on_stream_closed;
    LIST_INSERT_HEAD(&srv->conns, x, entry);
    srv->nconns++;
    snprintf(x->peer, sizeof x->peer, "unknown");
    if (uv_accept(listener, (uv_stream_t *)&x->s.tcp) != 0 || or_stream_accepted(&x->s) != 0) {
        refuse(x, "accept failed");
        return;
    }
    peer_name(x);
    char why[96];
    if (over_limits(x, why, sizeof why))
        refuse(x, why);
    else if (conn_setup(x) != 0)
        refuse(x, "cannot start reading");
}

/* ---- the listener ---- */

/* Close callbacks run in the reverse order of uv_close calls within one
 * loop turn, so the listener's, closed first, runs after those of the
 * connections and the stream loop closed with it. */

int or_http_server_start(or_http_server *srv, uv_loop_t *loop, const struct sockaddr *addr,
                         const or_http_server_opts *opts, char *err, size_t err_len)
{
    memset(srv, 0, sizeof *srv);
    srv->opts = *opts;
    srv->loop = loop;
    if (or_stream_loop_init(&srv->sl, loop) != 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->listening = true;
    int r = uv_tcp_bind(&srv->listener, addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (r != 0) {
        char name[80];
        snprintf(err, err_len, "cannot listen on %s: %s",
                 or_addr_format(addr, name, sizeof name), uv_strerror(r));
        or_http_server_stop(srv);
        return -1;
    }
    return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    or_http_server *srv = h->data;
    if (srv->opts.on_stopped)
        srv->opts.on_stopped(srv);
}

void or_http_server_stop(or_http_server *srv)
{
    if (!srv->listening)
        return;
    srv->listening = false;
    uv_close((uv_handle_t *)&srv->listener, on_listener_closed);
    while (!LIST_EMPTY(&srv->conns))
        conn_close(LIST_FIRST(&srv->conns));
    or_stream_loop_close(&srv->sl);
}
