/*
 * The HTTPS server of outrider-ca.
 *
 * Each accepted connection is a TLS or_stream on the CA's own configuration,
 * where the client certificate is optional (a join-token client presents
 * none). The stream does not apply the mesh's SVID rules to the peer
 * (peer_checked_by_owner): a presented certificate and mbedTLS's verdict on
 * it are handed to or_ca_sign, which decides and says why.
 *
 * A connection lives through: handshake, one HTTP request (http_parser),
 * one response, close_notify and FIN, then it drains what the client still
 * sends until EOF so the client never sees a reset, and closes. A single
 * timer bounds the whole life; a byte cap bounds what a client may send.
 * Everything runs on one loop; the connection list exists for shutdown.
 */
#include "outrider/ca_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <http_parser.h>

#include "outrider/log.h"
#include "outrider/units.h"

struct or_ca_conn {
    or_ca_server *srv;
    or_ca_conn *prev, *next;
    or_stream s;
    uv_timer_t timer;
    size_t read_total;
    int handles_open;
    bool responded, closing, eof_seen;
    http_parser parser;
    char url[1024];
    size_t url_len;
    char field[32];
    size_t field_len;
    bool in_auth, value_started, message_done, too_large, url_too_long;
    char auth[512];
    size_t auth_len;
    char *body;
    size_t body_len;
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

static int query_ttl(const char *url, uint64_t *ttl_s, const char **why)
{
    *ttl_s = 0;
    const char *q = strchr(url, '?');
    const char *t = q ? strstr(q, "ttl=") : NULL;
    if (!t || (t[-1] != '?' && t[-1] != '&'))
        return 0;
    char value[32];
    size_t n = strcspn(t + 4, "&");
    if (n >= sizeof value) {
        *why = "ttl too long";
        return -1;
    }
    memcpy(value, t + 4, n);
    value[n] = '\0';
    uint64_t ms;
    if (or_parse_duration_ms(value, &ms, why) != 0)
        return -1;
    *ttl_s = ms < 1000 ? 1 : ms / 1000;
    return 0;
}

static void route_sign(or_ca_conn *c)
{
    const char *why = NULL;
    or_ca_sign_req req = {.body = c->body ? c->body : "", .body_len = c->body_len,
                          .peer_addr = c->peer};
    if (query_ttl(c->url, &req.ttl_s, &why) != 0) {
        char msg[128];
        snprintf(msg, sizeof msg, "bad ttl: %s", why);
        respond_error(c, 400, msg);
        return;
    }
    if (c->auth_len > 0) {
        if (strncasecmp(c->auth, "Bearer ", 7) != 0) {
            respond_error(c, 401, "Authorization must be: Bearer <token>");
            return;
        }
        req.bearer = c->auth + 7;
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

static void route(or_ca_conn *c)
{
    if (c->too_large) {
        respond_error(c, 413, "request body larger than 16 KiB");
        return;
    }
    if (c->url_too_long) {
        respond_error(c, 404, "no such resource");
        return;
    }
    size_t path_len = strcspn(c->url, "?");
    int method = c->parser.method;
    bool is_sign = path_len == 8 && strncmp(c->url, "/v1/sign", 8) == 0;
    bool is_bundle = path_len == 10 && strncmp(c->url, "/v1/bundle", 10) == 0;
    bool is_health = path_len == 8 && strncmp(c->url, "/healthz", 8) == 0;
    if (!is_sign && !is_bundle && !is_health)
        respond_error(c, 404, "no such resource; try POST /v1/sign or GET /v1/bundle");
    else if (is_sign && method != HTTP_POST)
        respond_error(c, 405, "use POST");
    else if (!is_sign && method != HTTP_GET)
        respond_error(c, 405, "use GET");
    else if (is_sign)
        route_sign(c);
    else if (is_bundle)
        route_bundle(c);
    else
        respond(c, &(or_ca_response){.status = 200, .body = "ok\n", .body_len = 3});
}

/* ---- HTTP parsing ---- */

static or_ca_conn *conn_of(http_parser *p) { return p->data; }

/* Appends to a NUL-terminated field of `cap` bytes what fits of at[0..len);
 * false when not all of it did. */
static bool append_bounded(char *field, size_t *field_len, size_t cap, const char *at, size_t len)
{
    size_t room = cap - 1 - *field_len;
    size_t n = len < room ? len : room;
    memcpy(field + *field_len, at, n);
    *field_len += n;
    field[*field_len] = '\0';
    return n == len;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    or_ca_conn *c = conn_of(p);
    if (!append_bounded(c->url, &c->url_len, sizeof c->url, at, len))
        c->url_too_long = true;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    or_ca_conn *c = conn_of(p);
    if (c->value_started) {
        c->value_started = false;
        c->field_len = 0;
    }
    (void)append_bounded(c->field, &c->field_len, sizeof c->field, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    or_ca_conn *c = conn_of(p);
    if (!c->value_started) {
        c->value_started = true;
        c->in_auth = strcasecmp(c->field, "authorization") == 0;
        if (c->in_auth)
            c->auth_len = 0;
    }
    if (c->in_auth)
        (void)append_bounded(c->auth, &c->auth_len, sizeof c->auth, at, len);
    return 0;
}

static int on_headers_complete(http_parser *p)
{
    or_ca_conn *c = conn_of(p);
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > OR_CA_BODY_MAX)
        c->too_large = true;
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    or_ca_conn *c = conn_of(p);
    if (c->too_large || c->body_len + len > OR_CA_BODY_MAX) {
        c->too_large = true;
        return 0;
    }
    if (!c->body && !(c->body = malloc(OR_CA_BODY_MAX + 1)))
        return -1;
    memcpy(c->body + c->body_len, at, len);
    c->body_len += len;
    c->body[c->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    conn_of(p)->message_done = true;
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

static void feed_http(or_ca_conn *c, const char *data, size_t len)
{
    size_t n = http_parser_execute(&c->parser, &parser_settings, data, len);
    if (c->message_done)
        route(c);
    else if (c->too_large && c->parser.http_errno == HPE_OK)
        route(c); /* answer 413 without waiting for the rest */
    else if (n != len || c->parser.http_errno != HPE_OK)
        respond_error(c, 400, "malformed HTTP request");
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

static void on_stream_read(or_stream *s, ssize_t nread, const char *data)
{
    or_ca_conn *c = s->owner;
    if (c->closing)
        return;
    if (nread == UV_EOF && !c->responded)
        feed_http(c, "", 0); /* the client finished early: answer what it sent, if whole */
    if (nread < 0) {
        c->eof_seen = true;
        if (nread != UV_EOF || !c->responded || or_stream_output_done(&c->s))
            conn_close(c);
        return;
    }
    c->read_total += (size_t)nread;
    if (c->read_total > OR_CA_CONN_READ_MAX && !c->responded) {
        respond_error(c, 413, "request too large");
        return;
    }
    if (!c->responded)
        feed_http(c, data, (size_t)nread);
}

/* ---- connection life cycle ---- */

static void on_conn_handle_closed(or_ca_conn *c)
{
    if (--c->handles_open > 0)
        return;
    free(c->body);
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
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(&c->s.tcp, (struct sockaddr *)&ss, &len) == 0)
        or_addr_format((const struct sockaddr *)&ss, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "unknown");
}

static int conn_setup(or_ca_conn *c)
{
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->s.peer_checked_by_owner = true;
    c->s.on_handshake = on_handshake;
    c->s.on_read = on_stream_read;
    c->s.on_drain = on_drain;
    c->s.on_write_error = on_write_error;
    c->s.on_close = on_stream_closed;
    peer_name(c);
    uv_timer_start(&c->timer, on_timeout, OR_CA_CONN_TIMEOUT_MS, 0);
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
    if (uv_accept(listener, (uv_stream_t *)&c->s.tcp) != 0 || or_stream_accepted(&c->s) != 0 ||
        srv->nconns > OR_CA_CONN_MAX || conn_setup(c) != 0) {
        srv->refused++;
        conn_close(c);
    }
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
