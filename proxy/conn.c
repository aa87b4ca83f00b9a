/*
 * Downstream connections: accept, mTLS, L4 policy, dispatch, close.
 *
 * Every accepted socket becomes an or_conn linked on its worker. Inbound
 * listeners first complete the mTLS handshake (the stream verifies the
 * peer's X509-SVID); a tcp listener then takes its RBAC decision from what
 * L4 knows (principal, namespace, source address, port) and a denied peer is
 * closed right after the handshake. The listener's mTLS mode decides what
 * comes before that: strict requires the handshake; permissive lets the
 * stream detect TLS or plaintext from the first bytes, and makes it plain
 * when the peer has sent nothing within timeouts.detect (a server-first
 * protocol); disable accepts plaintext only. A plaintext peer has no
 * principal and no namespace, so policies that name one never match it.
 * The connection is then handed to the listener's protocol phase (tcp pipe,
 * HTTP/1.1 session, or with http2 the choice between HTTP/1.1 and HTTP/2)
 * through its or_conn_phase_ops; nothing here names a phase's functions.
 *
 * One timer per connection serves whichever phase is current; the phase's
 * owner arms it with its own expiry callback. A connection owns two handles
 * (the downstream stream and the timer) and is freed when both have closed.
 * An upstream it holds is closed with it but lives on its own schedule.
 */
#include "outrider/conn.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "outrider/access_log.h"
#include "outrider/http.h"
#include "outrider/http2.h"
#include "outrider/log.h"
#include "outrider/pipe.h"
#include "outrider/upstream.h"

#define OR_LINGER_MS 2000

static const or_config *config_of(const or_conn *c) { return c->snap->cfg; }

/* A plaintext downstream has no identity: "" rather than NULL, so that
 * what prints or forwards it needs no case of its own. */
const char *or_conn_peer_id(const or_conn *c) { return c->down.ssl ? c->down.peer.id : ""; }

int or_conn_xfcc(or_conn *c, const or_buf **value)
{
    *value = &c->xfcc;
    if (c->xfcc.len > 0 || or_conn_peer_id(c)[0] == '\0')
        return 0;
    return or_buf_printf(&c->xfcc, "By=%s;URI=%s", c->tls->tls.creds->spiffe_id,
                         or_conn_peer_id(c));
}

/* The mTLS mode of listener `l` in the config of `snap` (the one a new
 * connection is accepted with): a reload that changes only `mtls` applies
 * to new connections. A reload keeps the listeners, so the index holds. */
static or_mtls_mode listener_mtls(const or_snapshot *snap, const or_worker_listener *l)
{
    size_t i = (size_t)(l - l->worker->listeners);
    const or_listener_config *lc = &snap->cfg->listeners[i];
    assert(i < snap->cfg->nlisteners && strcmp(lc->name, l->cfg->name) == 0);
    return lc->mtls_effective;
}

or_metrics_peer *or_conn_metrics_peer(or_conn *c)
{
    if (!c->metrics_peer) {
        const or_listener_config *lc = c->listener->cfg;
        c->metrics_peer = or_metrics_peer_get(c->listener->metrics, lc->mode == OR_MODE_INBOUND
                                                                        ? or_conn_peer_id(c)
                                                                        : lc->peer_identity);
    }
    return c->metrics_peer;
}

or_rbac_request or_conn_rbac_request(const or_conn *c)
{
    bool tls = c->down.ssl != NULL;
    return (or_rbac_request){
        .principal = tls ? c->down.peer.id : NULL,
        .principal_ns = tls ? c->down.peer.ns : NULL,
        .principal_ns_len = tls ? c->down.peer.ns_len : 0,
        .sni = tls ? c->down.peer.sni : NULL,
        .sni_len = tls ? c->down.peer.sni_len : 0,
        .source = (const struct sockaddr *)&c->peer_addr,
        .port = c->listener->cfg->upstream.port,
    };
}

bool or_conn_rbac_decide(or_conn *c, or_snapshot *snap, const or_rbac_request *req,
                         size_t target_len, or_rbac_decision *d)
{
    or_rbac_evaluate(snap->rbac, req, d);
    or_stats_decision(&c->worker->stats, d->allowed, d->dry_run_policy != NULL,
                      d->audit_policy != NULL);
    or_snapshot_count(snap, d);
    or_rbac_log_reported(d, c->listener->cfg->name, c->peer, req->principal, req->method,
                         req->path, target_len);
    if (!d->allowed)
        or_metrics_denied(c->listener->metrics, or_conn_metrics_peer(c), d->policy);
    return d->allowed;
}

void or_conn_touch(or_conn *c) { c->last_activity = uv_now(&c->worker->loop); }

void or_conn_arm(or_conn *c, uint64_t ms, uv_timer_cb on_expiry)
{
    assert(c->phase != OR_CONN_CLOSED);
    uv_timer_start(&c->timer, on_expiry, ms, 0);
}

#define PHASE_BIT(p) (1u << (p))

/* The phases each phase may move to; the end of a connection is reachable
 * from every phase before it. */
static const unsigned phase_next[] = {
    [OR_CONN_ACCEPTED] = PHASE_BIT(OR_CONN_HANDSHAKE) | PHASE_BIT(OR_CONN_CONNECTING) |
                         PHASE_BIT(OR_CONN_HTTP),
    [OR_CONN_HANDSHAKE] = PHASE_BIT(OR_CONN_CONNECTING) | PHASE_BIT(OR_CONN_HTTP),
    [OR_CONN_CONNECTING] = PHASE_BIT(OR_CONN_PIPING),
    [OR_CONN_HTTP] = PHASE_BIT(OR_CONN_PIPING),
    [OR_CONN_PIPING] = 0,
    [OR_CONN_LINGERING] = 0,
    [OR_CONN_CLOSED] = 0,
};

void or_conn_set_phase(or_conn *c, or_conn_phase to)
{
    unsigned ending = PHASE_BIT(OR_CONN_CLOSED) |
                      (c->phase == OR_CONN_LINGERING ? 0 : PHASE_BIT(OR_CONN_LINGERING));
    assert(c->phase != OR_CONN_CLOSED);
    assert((phase_next[c->phase] | ending) & PHASE_BIT(to));
    (void)ending, (void)phase_next; /* read by assert only */
    c->phase = to;
}

/* ---- the worker's list ---- */

static void link_conn(or_conn *c)
{
    LIST_INSERT_HEAD(&c->worker->conns, c, entry);
    c->worker->nconns++;
}

static void unlink_conn(or_conn *c)
{
    LIST_REMOVE(c, entry);
    c->worker->nconns--;
}

/* ---- closing ---- */

/* Ends a connection that no request could start on: a failed handshake
 * (DTLS) or a refusal over limits (OL). It gets a log line of its own. */
static void refuse_early(or_conn *c, const char *flags)
{
    c->flags = flags;
    c->refused_early = true;
}

/* Writes `r` with what the connection knows: listener, direction, source,
 * upstream, the RBAC decision (NULL: none taken) and, inbound, the peer's
 * identity and cipher ("" before a handshake is written as none). */
static void write_record(or_conn *c, or_access_record *r, const or_rbac_decision *rbac)
{
    or_access_log *log = c->worker->rt->access_log;
    if (!log)
        return;
    const or_listener_config *lc = c->listener->cfg;
    r->listener = lc->name;
    r->direction = lc->mode == OR_MODE_INBOUND ? "inbound" : "outbound";
    r->source = c->peer;
    r->upstream = lc->upstream_text;
    r->rbac_decision = rbac ? (rbac->allowed ? "allow" : "deny") : NULL;
    r->rbac_policy = rbac ? rbac->policy : NULL;
    r->rbac_rule = rbac ? rbac->rule : -1;
    if (lc->mode == OR_MODE_INBOUND) {
        const char *cipher = or_stream_cipher(&c->down);
        r->peer_id = or_conn_peer_id(c);
        r->tls_cipher = cipher[0] ? cipher : NULL;
    }
    or_access_log_write(log, c->worker->id, r);
}

void or_conn_log_request(or_conn *c, or_access_record *r, uint64_t started_ns,
                         const or_rbac_decision *rbac)
{
    or_worker *w = c->worker;
    r->duration_us = (uv_hrtime() - started_ns) / 1000;
    if (r->status > 0)
        or_stats_response(&w->stats, r->status);
    or_stats_add(w->stats.bytes_in, r->bytes_in);
    or_stats_add(w->stats.bytes_out, r->bytes_out);
    or_metrics_request(c->listener->metrics, or_conn_metrics_peer(c), r->status, r->duration_us,
                       r->bytes_in, r->bytes_out);
    if (r->grpc_status)
        or_metrics_grpc(or_conn_metrics_peer(c), r->grpc_status);
    write_record(c, r, rbac);
}

/* One line per tcp connection; on an http listener (which logs requests)
 * only for a connection that ended before any request could start: a
 * failed handshake or a refusal over limits.max_connections. */
static void log_connection(or_conn *c)
{
    if (c->logged || (c->listener->cfg->protocol != OR_PROTO_TCP && !c->refused_early))
        return;
    c->logged = true;
    const char *up_cipher = c->up ? or_stream_cipher(&c->up->s) : "";
    or_access_record r = {
        .start = c->accepted_at,
        .duration_us = (uv_now(&c->worker->loop) - c->accepted_ms) * 1000,
        .peer_id = c->up ? c->up->s.peer.id : NULL,
        .protocol = "tcp",
        .response_flags = c->flags ? c->flags : "-",
        .bytes_in = c->bytes_in,
        .bytes_out = c->bytes_out,
        .upstream_time_us = c->upstream_us,
        .tls_cipher = up_cipher[0] ? up_cipher : NULL,
    };
    write_record(c, &r, c->rbac_evaluated ? &c->rbac : NULL);
}

/* Phase state is freed here and nowhere else. This runs from the close
 * callback of the connection's last handle: the downstream and the timer
 * can call no one any more, the phase gave back its upstreams when it ended
 * (so none of their callbacks can reach it), and no callback of the phase is
 * on the stack. Code that ends the connection inside a callback may
 * therefore go on reading its phase state until it returns. */
static void release(or_conn *c)
{
    if (--c->callbacks_pending > 0)
        return;
    assert(c->phase == OR_CONN_CLOSED);
    if (c->ops && c->ops->release)
        c->ops->release(c);
    or_worker *w = c->worker;
    or_stats_add(w->stats.bytes_in, c->bytes_in);
    or_stats_add(w->stats.bytes_out, c->bytes_out);
    atomic_fetch_sub(&w->rt->connections, 1);
    or_worker_tls_drop(c->tls);
    or_snapshot_drop(c->snap);
    or_buf_free(&c->xfcc);
    free(c);
    or_worker_conn_released(w);
}

static void on_stream_closed(or_stream *s) { release(s->owner); }
static void on_timer_closed(uv_handle_t *h) { release(h->data); }

/* The phase stops and gives back its upstreams; its state lives on until
 * release(). Runs once, when the connection starts lingering or closes. */
static void end_phase(or_conn *c)
{
    if (c->phase == OR_CONN_LINGERING)
        return; /* ended when the lingering began */
    if (c->ops && c->ops->end)
        c->ops->end(c);
    if (c->up) {
        or_upstream_close(c->up);
        c->up = NULL;
    }
}

void or_conn_close(or_conn *c)
{
    if (c->phase == OR_CONN_CLOSED)
        return;
    log_connection(c);
    end_phase(c);
    or_conn_set_phase(c, OR_CONN_CLOSED);
    unlink_conn(c);
    or_stream_close(&c->down);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

void or_conn_abort_all(or_worker *w)
{
    while (!LIST_EMPTY(&w->conns))
        or_conn_close(LIST_FIRST(&w->conns));
}

void or_conn_drain(or_conn *c)
{
    if (c->ops && c->ops->drain && c->phase != OR_CONN_LINGERING)
        c->ops->drain(c);
}

static void linger_check(or_conn *c)
{
    if (or_stream_eof(&c->down) && or_stream_output_done(&c->down))
        or_conn_close(c);
}

static void on_linger_read(or_stream *s, ssize_t nread, const char *data)
{
    (void)data;
    or_conn *c = s->owner;
    assert(c->phase == OR_CONN_LINGERING);
    if (nread == UV_EOF)
        linger_check(c);
    else if (nread < 0)
        or_conn_close(c);
}

static void on_linger_drain(or_stream *s) { linger_check(s->owner); }
static void on_linger_error(or_stream *s, int status)
{
    (void)status;
    or_conn_close(s->owner);
}
static void on_linger_expired(uv_timer_t *t) { or_conn_close(t->data); }

void or_conn_close_gracefully(or_conn *c)
{
    if (c->phase == OR_CONN_CLOSED || c->phase == OR_CONN_LINGERING)
        return;
    log_connection(c);
    end_phase(c);
    or_conn_set_phase(c, OR_CONN_LINGERING);
    or_stream *d = &c->down;
    if (!or_stream_established(d)) {
        or_conn_close(c);
        return;
    }
    d->on_read = on_linger_read;
    d->on_drain = on_linger_drain;
    d->on_write_error = on_linger_error;
    or_stream_shutdown(d);
    or_conn_arm(c, OR_LINGER_MS, on_linger_expired);
    if (or_stream_read_start(d) != 0)
        or_conn_close(c);
    else
        linger_check(c);
}

/* ---- after the handshake ---- */

static bool l4_policy_allows(or_conn *c)
{
    const or_listener_config *lc = c->listener->cfg;
    if (!c->snap->rbac || lc->mode != OR_MODE_INBOUND || lc->protocol != OR_PROTO_TCP)
        return true;
    or_rbac_request req = or_conn_rbac_request(c);
    req.l4 = true;
    c->rbac_evaluated = true;
    if (or_conn_rbac_decide(c, c->snap, &req, 0, &c->rbac))
        return true;
    or_log_info("rbac denied listener=%s peer=%s peer_id=%s policy=%s rule=%d", lc->name, c->peer,
                req.principal ? req.principal : "-",
                c->rbac.policy ? c->rbac.policy : "(default)", c->rbac.rule);
    c->flags = "RBAC";
    return false;
}

static void dispatch(or_conn *c)
{
    if (!l4_policy_allows(c)) {
        or_conn_close_gracefully(c);
        return;
    }
    const or_listener_config *lc = c->listener->cfg;
    c->ops = lc->protocol == OR_PROTO_TCP ? &or_tcp_phase
             : lc->http2 || (lc->multiplex && c->down.ssl) ? &or_http_select_phase
                                          : &or_http_phase;
    c->ops->start(c);
}

static void on_handshake_timeout(uv_timer_t *t)
{
    or_conn *c = t->data;
    if (or_stream_detecting(&c->down)) { /* permissive: nothing came; plaintext */
        or_stream_detect_plain(&c->down);
        return;
    }
    uint64_t elapsed = uv_now(&c->worker->loop) - c->accepted_ms;
    uint64_t limit = config_of(c)->timeouts.handshake_ms;
    if (elapsed < limit) { /* detection found TLS: the handshake has the rest */
        or_conn_arm(c, limit - elapsed, on_handshake_timeout);
        return;
    }
    or_log_warn("handshake failed listener=%s peer=%s reason=\"handshake timeout\"",
                c->listener->cfg->name, c->peer);
    or_stats_handshake_failure(&c->worker->stats, "handshake timeout");
    refuse_early(c, "DTLS");
    or_conn_close(c);
}

static void on_down_handshake(or_stream *s, int status)
{
    or_conn *c = s->owner;
    assert(c->phase == OR_CONN_HANDSHAKE);
    if (status != 0) {
        const char *reason = or_tls_failure_reason(s->tls_error, &s->peer);
        or_log_warn("handshake failed listener=%s peer=%s reason=\"%s\"", c->listener->cfg->name,
                    c->peer, reason);
        or_stats_handshake_failure(&c->worker->stats, reason);
        refuse_early(c, "DTLS");
        or_conn_close(c);
        return;
    }
    if (s->ssl) {
        or_metrics_handshake(c->listener->metrics, !s->peer.verified_in_handshake,
                             (uv_hrtime() - c->handshake_ns) / 1000);
        or_log_debug("peer verified listener=%s peer=%s peer_id=%s cipher=%s resumed=%s",
                     c->listener->cfg->name, c->peer, s->peer.id, or_stream_cipher(s),
                     s->peer.verified_in_handshake ? "no" : "yes");
    } else {
        or_log_debug("plaintext peer listener=%s peer=%s", c->listener->cfg->name, c->peer);
    }
    /* Bytes that came with the handshake are handled by the next phase. */
    or_stream_read_stop(s);
    dispatch(c);
}

/* ---- accept ---- */

static void describe_peer(or_conn *c)
{
    int len = sizeof c->peer_addr;
    if (uv_tcp_getpeername(&c->down.tcp, (struct sockaddr *)&c->peer_addr, &len) == 0)
        or_addr_format((struct sockaddr *)&c->peer_addr, c->peer, sizeof c->peer);
    else
        snprintf(c->peer, sizeof c->peer, "unknown");
}

static bool over_limit(or_conn *c)
{
    size_t open = atomic_fetch_add(&c->worker->rt->connections, 1) + 1;
    return open > config_of(c)->limits.max_connections;
}

static void start(or_conn *c)
{
    or_stream *d = &c->down;
    if (!d->ssl) {
        dispatch(c);
        return;
    }
    d->on_handshake = on_down_handshake;
    d->peer.trust_domain = c->tls->tls.creds->trust_domain;
    or_conn_set_phase(c, OR_CONN_HANDSHAKE);
    c->handshake_ns = uv_hrtime();
    bool detect = listener_mtls(c->snap, c->listener) == OR_MTLS_PERMISSIVE;
    const or_config *cfg = config_of(c);
    /* Permissive: the first expiry ends detection (at the handshake's
     * deadline at the latest), a later one the handshake. */
    or_conn_arm(c,
                detect && cfg->timeouts.detect_ms < cfg->timeouts.handshake_ms
                    ? cfg->timeouts.detect_ms
                    : cfg->timeouts.handshake_ms,
                on_handshake_timeout);
    if ((detect ? or_stream_start_detect(d) : or_stream_start_handshake(d)) != 0)
        or_conn_close(c);
}

/* What an inbound listener negotiates by ALPN: HTTP/2 with http2, the
 * multiplexed hop unless multiplex is off (protocol http only). */
static or_tls_conf_kind server_conf(const or_listener_config *lc)
{
    bool hop = lc->protocol == OR_PROTO_HTTP && lc->multiplex;
    if (lc->http2)
        return hop ? OR_TLS_SERVER_H2_HOP : OR_TLS_SERVER_H2;
    return hop ? OR_TLS_SERVER_HOP : OR_TLS_SERVER;
}

void or_conn_accept(or_worker_listener *l, int fd)
{
    or_worker *w = l->worker;
    or_conn *c = calloc(1, sizeof *c);
    bool tls_on = l->cfg->mode == OR_MODE_INBOUND && listener_mtls(w->snap, l) != OR_MTLS_DISABLE;
    const mbedtls_ssl_config *tls = tls_on ? &w->tls->tls.conf[server_conf(l->cfg)] : NULL;
    if (!c || or_stream_init(&c->down, &w->sl, c, tls) != 0) {
        or_log_error("cannot accept on listener %s: out of memory", l->cfg->name);
        close(fd);
        free(c);
        return;
    }
    c->tls = or_worker_tls_hold(w);
    c->snap = or_snapshot_hold(w->snap);
    c->worker = w;
    c->listener = l;
    c->upstream_us = -1;
    c->callbacks_pending = 2; /* downstream and timer */
    c->accepted_ms = uv_now(&w->loop);
    clock_gettime(CLOCK_REALTIME, &c->accepted_at);
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    link_conn(c);
    c->down.on_close = on_stream_closed;
    int r = uv_tcp_open(&c->down.tcp, fd);
    if (r != 0)
        close(fd); /* the handle did not take it */
    else
        r = or_stream_accepted(&c->down);
    describe_peer(c);
    or_conn_touch(c);
    or_stats_add(w->stats.connections, 1);
    if (over_limit(c)) {
        or_stats_add(w->stats.refused, 1);
        or_log_warn("connection refused listener=%s peer=%s reason=\"max_connections reached\"",
                    l->cfg->name, c->peer);
        refuse_early(c, "OL");
        or_conn_close_gracefully(c);
        return;
    }
    if (r != 0)
        or_conn_close(c);
    else
        start(c);
}
