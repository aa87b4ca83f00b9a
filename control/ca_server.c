/*
 * The HTTPS server of outrider-ca.
 *
 * Each accepted connection is a TLS or_stream on the CA's own configuration,
 * where the client certificate is optional (a join-token client presents
 * none). The stream does not apply the mesh's SVID rules to the peer
 * (peer_checked_by_owner): a presented certificate and mbedTLS's verdict on
 * it are handed to or_ca_sign, which decides and says why.
 *
 * A connection lives through: handshake, one HTTP request (parsed by
 * ca_request.c, which stops at the end of the first request, so pipelined
 * bytes after it are never read as part of it), one response, close_notify
 * and FIN, then it drains what the client still sends until EOF so the
 * client never sees a reset, and closes. One timer bounds the life: first
 * OR_CA_FIRST_BYTE_MS from accept to the first byte of the request, then
 * what is left of OR_CA_CONN_TIMEOUT_MS; a byte cap bounds what a client
 * may send. Connections are capped in all (OR_CA_CONN_MAX) and per client
 * address (OR_CA_CONN_PER_IP), so idle connections from one client cannot
 * take them all; a refused one is counted in srv->refused and logged, at
 * most once a second. Everything runs on one loop; the connection list
 * serves the per-address count and shutdown.
 */
#include "outrider/ca_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outrider/log.h"
#include "outrider/units.h"

struct or_ca_conn {
    or_ca_server *srv;
    or_ca_conn *prev, *next;
    or_stream s;
    uv_timer_t timer;
    uint64_t accepted_ms;       /* loop time */
    size_t read_total;
    int handles_open;
    bool responded, closing, eof_seen;
    or_ca_request req;
    struct sockaddr_storage addr;
    char peer[64];
};

static void conn_close(or_ca_conn *c);

/* ---- responses ---- */

static const char *reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    default: return "Internal Server Error";
    }
}

static void respond(or_ca_conn *c, const or_ca_response *r)
{
    if (c->responded || c->closing)
        return;
    c->responded = true;
    char head[256];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     r->status, reason(r->status), r->content_type ? r->content_type : "text/plain",
                     r->body_len);
    if (or_stream_write(&c->s, head, (size_t)n) != 0 ||
        (r->body_len && or_stream_write(&c->s, r->body, r->body_len) != 0)) {
        conn_close(c);
        return;
    }
    or_stream_shutdown(&c->s); /* close_notify, then FIN */
    c->srv->served++;
}

static void respond_error(or_ca_conn *c, int status, const char *msg)
{
    or_ca_response r;
    or_ca_error(&r, status, msg);
    respond(c, &r);
    free(r.body);
}

/* ---- routes ---- */

static void route_sign(or_ca_conn *c)
{
    const char *why = NULL;
    or_ca_sign_req req = {.body = c->req.body ? c->req.body : "", .body_len = c->req.body_len,
                          .peer_addr = c->peer};
    if (or_ca_request_ttl(&c->req, &req.ttl_s, &why) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "bad ttl: %s", why);
        respond_error(c, 400, msg);
        return;
    }
    if (c->req.auth_len > 0) {
        if (strncasecmp(c->req.auth, "Bearer ", 7) != 0) {
            respond_error(c, 401, "Authorization must be: Bearer <token>");
            return;
        }
        req.bearer = c->req.auth + 7;
    }
    req.peer_cert = mbedtls_ssl_get_peer_cert(c->s.ssl);
    if (req.peer_cert)
        req.peer_flags = mbedtls_ssl_get_verify_result(c->s.ssl);
    or_ca_response r;
    or_ca_sign(c->srv->ca, &req, &r);
    respond(c, &r);
    free(r.body);
}

static void route_bundle(or_ca_conn *c)
{
    or_ca_response r = {.status = 200, .content_type = "application/x-pem-file"};
    char err[256];
    if (or_ca_bundle(c->srv->ca, &r.body, &r.body_len, err, sizeof err) != 0) {
        or_log_error("bundle: %s", err);
        respond_error(c, 500, "no trust bundle");
        return;
    }
    respond(c, &r);
    free(r.body);
}

/* Answers once the request is whole, malformed or too large. */
static void answer(or_ca_conn *c, or_ca_req_state state)
{
    int status;
    const char *message;
    if (state == OR_CA_REQ_PARTIAL || c->responded)
        return;
    switch (or_ca_request_route(&c->req, &status, &message)) {
    case OR_CA_ROUTE_SIGN:
        route_sign(c);
        break;
    case OR_CA_ROUTE_BUNDLE:
        route_bundle(c);
        break;
    case OR_CA_ROUTE_HEALTH:
        respond(c, &(or_ca_response){.status = 200, .body = "ok\n", .body_len = 3});
        break;
    case OR_CA_ROUTE_ERROR:
        respond_error(c, status, message);
        break;
    }
}

/* ---- input ---- */

static void on_handshake(or_stream *s, int status)
{
    or_ca_conn *c = s->owner;
    if (status != 0) {
        or_log_debug("TLS handshake with %s failed (-0x%04x)", c->peer, (unsigned)-s->tls_error);
        conn_close(c);
    }
}

static void on_timeout(uv_timer_t *t);

/* The first byte of the request: the rest of it has what is left of the
 * whole-connection deadline. */
static void on_first_byte(or_ca_conn *c)
{
    uint64_t spent = uv_now(c->srv->loop) - c->accepted_ms;
    uint64_t left = spent < OR_CA_CONN_TIMEOUT_MS ? OR_CA_CONN_TIMEOUT_MS - spent : 1;
    uv_timer_start(&c->timer, on_timeout, left, 0);
}

static void on_stream_read(or_stream *s, ssize_t nread, const char *data)
{
    or_ca_conn *c = s->owner;
    if (c->closing)
        return;
    /* A client that finished early: answer what it sent, if whole. */
    if (nread == UV_EOF && !c->responded)
        answer(c, or_ca_request_finish(&c->req));
    if (nread < 0) {
        c->eof_seen = true;
        if (nread != UV_EOF || !c->responded || or_stream_output_done(&c->s))
            conn_close(c);
        return;
    }
    if (c->read_total == 0 && nread > 0)
        on_first_byte(c);
    c->read_total += (size_t)nread;
    if (c->read_total > OR_CA_CONN_READ_MAX && !c->responded) {
        respond_error(c, 413, "request too large");
        return;
    }
    if (!c->responded)
        answer(c, or_ca_request_feed(&c->req, data, (size_t)nread));
}

/* ---- connection life cycle ---- */

static void on_conn_handle_closed(or_ca_conn *c)
{
    if (--c->handles_open > 0)
        return;
    or_ca_request_free(&c->req);
    free(c);
}

static void on_stream_closed(or_stream *s) { on_conn_handle_closed(s->owner); }
static void on_timer_closed(uv_handle_t *h) { on_conn_handle_closed(h->data); }

static void conn_close(or_ca_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    or_ca_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    or_stream_close(&c->s);
}

static void on_timeout(uv_timer_t *t)
{
    or_ca_conn *c = t->data;
    if (c->read_total == 0)
        or_log_debug("connection from %s sent no request within %d ms", c->peer,
                     OR_CA_FIRST_BYTE_MS);
    else
        or_log_debug("connection from %s timed out", c->peer);
    conn_close(c);
}

static void on_drain(or_stream *s)
{
    or_ca_conn *c = s->owner;
    if (c->eof_seen && or_stream_output_done(s))
        conn_close(c);
}

static void on_write_error(or_stream *s, int status)
{
    (void)status;
    conn_close(s->owner);
}

static void peer_name(or_ca_conn *c)
{
    int len = sizeof c->addr;
    if (uv_tcp_getpeername(&c->s.tcp, (struct sockaddr *)&c->addr, &len) == 0)
        or_addr_format((const struct sockaddr *)&c->addr, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "unknown");
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

/* Why c may not be served, or NULL. */
static const char *over_limits(const or_ca_conn *c)
{
    const or_ca_server *srv = c->srv;
    if (srv->nconns > OR_CA_CONN_MAX)
        return "more than " OR_CA_STR(OR_CA_CONN_MAX) " connections open";
    if (c->addr.ss_family != AF_INET && c->addr.ss_family != AF_INET6)
        return NULL;
    size_t same = 0;
    for (const or_ca_conn *o = srv->conns; o; o = o->next)
        if (o != c && !o->closing && same_ip(&o->addr, &c->addr))
            same++;
    return same >= OR_CA_CONN_PER_IP
               ? "more than " OR_CA_STR(OR_CA_CONN_PER_IP) " connections open from its address"
               : NULL;
}

/* Counts and closes a connection that will not be served; logs at most
 * one line a second, with the count so far. */
static void refuse(or_ca_conn *c, const char *why)
{
    or_ca_server *srv = c->srv;
    uint64_t now = uv_now(srv->loop);
    srv->refused++;
    if (now >= srv->refused_quiet_until) {
        or_log_warn("connection from %s refused: %s (%llu refused since start)", c->peer, why,
                    (unsigned long long)srv->refused);
        srv->refused_quiet_until = now + 1000;
    }
    conn_close(c);
}

static int conn_setup(or_ca_conn *c)
{
    or_ca_request_init(&c->req);
    c->s.peer_checked_by_owner = true;
    c->s.on_handshake = on_handshake;
    c->s.on_read = on_stream_read;
    c->s.on_drain = on_drain;
    c->s.on_write_error = on_write_error;
    c->s.on_close = on_stream_closed;
    c->accepted_ms = uv_now(c->srv->loop);
    uv_timer_start(&c->timer, on_timeout, OR_CA_FIRST_BYTE_MS, 0);
    return or_stream_start_handshake(&c->s);
}

static void on_connection(uv_stream_t *listener, int status)
{
    or_ca_server *srv = listener->data;
    if (status != 0)
        return;
    or_ca_conn *c = calloc(1, sizeof *c);
    if (!c || or_stream_init(&c->s, &srv->sl, c, &srv->conf) != 0) {
        free(c);
        return;
    }
    c->srv = srv;
    c->handles_open = 2;
    uv_timer_init(srv->loop, &c->timer);
    c->timer.data = c;
    c->s.on_close = on_stream_closed;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->nconns++;
    snprintf(c->peer, sizeof c->peer, "unknown");
    if (uv_accept(listener, (uv_stream_t *)&c->s.tcp) != 0 || or_stream_accepted(&c->s) != 0) {
        refuse(c, "accept failed");
        return;
    }
    peer_name(c);
    const char *why = over_limits(c);
    if (why)
        refuse(c, why);
    else if (conn_setup(c) != 0)
        refuse(c, "cannot start the TLS handshake");
}

/* ---- the listener ---- */

static int tls_setup(or_ca_server *srv, const struct sockaddr *ip, char *err, size_t err_len)
{
    char *bundle = NULL;
    size_t len = 0;
    if (or_ca_server_identity(srv->ca, ip, &srv->own_chain, &srv->own_key, err, err_len) != 0 ||
        or_ca_bundle(srv->ca, &bundle, &len, err, err_len) != 0)
        return -1;
    int ret = mbedtls_x509_crt_parse(&srv->bundle, (const unsigned char *)bundle, len + 1);
    free(bundle);
    if (ret != 0) {
        snprintf(err, err_len, "cannot parse the trust bundle of %s", srv->ca->dir);
        return -1;
    }
    ret = mbedtls_ssl_config_defaults(&srv->conf, MBEDTLS_SSL_IS_SERVER,
                                      MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
    if (ret == 0) {
        or_tls_conf_policy(&srv->conf);
        mbedtls_ssl_conf_rng(&srv->conf, mbedtls_ctr_drbg_random, &srv->ca->rng->drbg);
        mbedtls_ssl_conf_authmode(&srv->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
        mbedtls_ssl_conf_ca_chain(&srv->conf, &srv->bundle, NULL);
        ret = mbedtls_ssl_conf_own_cert(&srv->conf, &srv->own_chain, &srv->own_key);
    }
    if (ret != 0) {
        snprintf(err, err_len, "cannot configure TLS (-0x%04x)", (unsigned)-ret);
        return -1;
    }
    return 0;
}

int or_ca_server_start(or_ca_server *srv, or_ca *ca, uv_loop_t *loop, const char *listen,
                       char *err, size_t err_len)
{
    memset(srv, 0, sizeof *srv);
    srv->ca = ca;
    srv->loop = loop;
    mbedtls_ssl_config_init(&srv->conf);
    mbedtls_x509_crt_init(&srv->own_chain);
    mbedtls_x509_crt_init(&srv->bundle);
    mbedtls_pk_init(&srv->own_key);
    or_hostport hp;
    const char *why = NULL;
    if (or_parse_hostport(listen, &hp, &why) != 0 || !hp.is_ip) {
        snprintf(err, err_len, "bad --listen %s: %s", listen, why ? why : "need an IP address");
        return -1;
    }
    if (tls_setup(srv, (const struct sockaddr *)&hp.addr, err, err_len) != 0)
        return -1;
    if (or_stream_loop_init(&srv->sl, loop) != 0) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    srv->listening = true;
    int r = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&hp.addr, 0);
    if (r == 0)
        r = uv_listen((uv_stream_t *)&srv->listener, 128, on_connection);
    if (r != 0) {
        snprintf(err, err_len, "cannot listen on %s: %s", listen, uv_strerror(r));
        or_ca_server_stop(srv);
        return -1;
    }
    return 0;
}

void or_ca_server_stop(or_ca_server *srv)
{
    if (!srv->listening)
        return;
    srv->listening = false;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    while (srv->conns)
        conn_close(srv->conns);
    or_stream_loop_close(&srv->sl);
}

void or_ca_server_free(or_ca_server *srv)
{
    mbedtls_ssl_config_free(&srv->conf);
    mbedtls_x509_crt_free(&srv->own_chain);
    mbedtls_x509_crt_free(&srv->bundle);
    mbedtls_pk_free(&srv->own_key);
}
