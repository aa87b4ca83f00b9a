/*
 * HTTP/2 proxying: the upstream connections of a worker listener.
 *
 * Each worker listener has one pool (created with its first HTTP/2 stream
 * that goes upstream as HTTP/2, owned by the listener, freed when the
 * worker's loop has closed). The streams of every downstream connection of
 * the listener share its connections: a stream goes to a connection that
 * is connecting or ready, takes new streams (no GOAWAY from the peer, not
 * retired by us) and has fewer open streams than the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS (OR_H2_MAX_STREAMS while connecting);
 * a new connection is opened only when none has room, up to
 * OR_H2_POOL_MAX. At the cap a stream goes to the least loaded connection
 * and nghttp2 holds it until the peer allows one more; if it waits longer
 * than timeouts.idle it is answered 504 like any stream without progress.
 *
 * A connection with no streams for the pool idle time (timeouts.idle x 0.9,
 * at most 54 s: below typical peers' idle timeouts, as for the HTTP/1.1
 * pool) is retired: GOAWAY(NO_ERROR), then closed. So is every connection
 * when the worker drains (once its streams have ended) and a connection of
 * an older TLS generation after a reload of the identity (it takes no new
 * streams; new ones open with the current identity).
 *
 * Keepalive: a ready connection to a peer sidecar (one that negotiated the
 * hop, so an Outrider, which takes PINGs) that has heard nothing for
 * timeouts.keepalive gets a PING; one that then hears nothing for as long
 * again is lost, as if the peer had closed it: the streams the peer had not
 * started go to another connection, the others fail (502, UC). A peer that
 * vanished (its host gone, a partition, a stopped process) is so found
 * within twice the keepalive, and a stream waiting on it fails then rather
 * than after timeouts.idle. Other HTTP/2 upstreams are not pinged: gRPC
 * servers take more than one PING in 5 minutes without data as abuse and
 * close the connection (too_many_pings), and an app on the same host does
 * not vanish without its sockets closing. Nor is anything pinged while the
 * worker drains (the pool's timer stops; timeouts.drain bounds the wait).
 *
 * Output: an event (an upstream read, drain or connect, a downstream
 * read, a request from an HTTP/1.1 session on the hop) may touch streams
 * of several sessions. Each callback that does queues the stream's session
 * (or_h2_pool_mark) and defers a run (or_h2_pool_defer) to the loop's check
 * phase, after every I/O event of the turn: or_h2_pool_run then sends on
 * every connection and flushes each queued session once, in rounds until
 * neither side has more to send (each side's sending may open the other's
 * windows). So the requests of all the clients served in one turn leave on
 * a shared connection together, in one write and as few TLS records as
 * they fit in. A run is never entered twice: one started inside a run only
 * queues.
 *
 * Early runs: a turn that reads many clients' requests (or an app's
 * answers to many streams) would hand the peer all of them at its end, in
 * one batch; the peer, and its app after it, idle until then, and this
 * side idles while they work the batch. Where the two sides share CPUs, or
 * have one each, the load settles into one batch that moves back and forth
 * with one side idle at a time. So every OR_H2_EARLY reads that fed the
 * pool (or_h2_pool_early, called at the end of those read callbacks), the
 * pool runs at once and what the run wrote goes to the kernel right away
 * (or_stream_send_early): the peer starts on the first requests while this
 * side reads the rest. The turn's last run sends the remainder as before.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "h2_session.h"
#include "outrider/http2.h"
#include "outrider/log.h"
#include "outrider/pipe.h"

#define OR_H2_POOL_ROUNDS 16
#define OR_H2_EARLY 8
#define OR_H2_POOL_IDLE_CAP_MS 60000

static uint64_t now_ms(const or_h2_pool *p) { return uv_now(&p->l->worker->loop); }

static uint64_t idle_ms(const or_h2_pool *p)
{
    uint64_t idle = p->l->worker->snap->cfg->timeouts.idle_ms;
    if (idle > OR_H2_POOL_IDLE_CAP_MS)
        idle = OR_H2_POOL_IDLE_CAP_MS;
    return idle * 9 / 10 > 0 ? idle * 9 / 10 : 1;
}

static void on_pool_tick(uv_timer_t *t);

or_h2_pool *or_h2_pool_of(or_worker_listener *l)
{
    if (l->h2_pool)
        return l->h2_pool;
    or_h2_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->l = l;
    uv_timer_init(&l->worker->loop, &p->timer);
    uv_check_init(&l->worker->loop, &p->check);
    p->timer.data = p->check.data = p;
    p->timer_init = true;
    l->h2_pool = p;
    return p;
}

/* ---- sessions to flush ---- */

void or_h2_pool_mark(or_h2_session *hs)
{
    if (hs->ended || hs->flush_queued || !hs->pool)
        return;
    hs->flush_queued = true;
    SLIST_INSERT_HEAD(&hs->pool->flush, hs, flush_entry);
}

void or_h2_pool_unmark(or_h2_session *hs)
{
    if (!hs->flush_queued)
        return;
    SLIST_REMOVE(&hs->pool->flush, hs, or_h2_session, flush_entry);
    hs->flush_queued = false;
}

/* Flushes every queued session; `early`: what each wrote is offered to the
 * kernel at once (or_stream_send_early). */
static bool flush_sessions(or_h2_pool *p, bool early)
{
    bool progress = false;
    or_h2_session *hs;
    while ((hs = SLIST_FIRST(&p->flush))) {
        SLIST_REMOVE_HEAD(&p->flush, flush_entry);
        hs->flush_queued = false;
        progress |= or_h2_session_send(hs);
        if (early && !hs->ended)
            or_stream_send_early(&hs->c->down);
    }
    return progress;
}

/* ---- connections ---- */

void or_h2_pool_add(or_h2_pool *p, or_h2_up *up)
{
    up->pool = p;
    LIST_INSERT_HEAD(&p->ups, up, entry);
    p->nups++;
    up->idle_since_ms = now_ms(p);
}

static unsigned room_of(const or_h2_up *up)
{
    uint32_t max = OR_H2_MAX_STREAMS;
    if (up->ng) {
        uint32_t peer = nghttp2_session_get_remote_settings(up->ng,
                                                            NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        if (peer < max)
            max = peer;
    }
    return up->nstreams < max ? max - up->nstreams : 0;
}

static bool takes_streams(const or_h2_up *up)
{
    if (up->state == OR_H2_UP_CLOSED || up->admit != OR_H2_ADMIT_OPEN)
        return false;
    if (up->u && up->u->tls != up->pool->l->worker->tls)
        return false; /* made with an older identity */
    return !up->ng || nghttp2_session_check_request_allowed(up->ng);
}

bool or_h2_pool_full(const or_h2_pool *p) { return p->nups >= OR_H2_POOL_MAX; }

or_h2_up *or_h2_pool_pick(or_h2_pool *p, const or_h2_up *avoid, bool hop)
{
    or_h2_up *up, *best = NULL, *least = NULL;
    LIST_FOREACH(up, &p->ups, entry) {
        if (up == avoid || !takes_streams(up) || (hop && up->no_hop))
            continue;
        if (room_of(up) > 0 && (!best || up->nstreams > best->nstreams))
            best = up; /* the fullest with room: the others can go idle */
        if (!least || up->nstreams < least->nstreams)
            least = up;
    }
    if (best)
        return best;
    return or_h2_pool_full(p) ? least : NULL;
}

/* ---- streams ---- */

void or_h2_up_link(or_h2_up *up, or_h2_stream *st)
{
    assert(!st->up_linked);
    if (st->up != up) {
        or_h2_up_release(st);
        st->up = up;
        up->refs++;
    }
    st->up_linked = true;
    or_h2_set_uq(st, OR_H2_UQ_WAITING);
    LIST_INSERT_HEAD(&up->streams, st, up_entry);
    up->nstreams++;
}

void or_h2_up_unlink(or_h2_stream *st)
{
    or_h2_up *up = st->up;
    if (!st->up_linked)
        return;
    LIST_REMOVE(st, up_entry);
    st->up_linked = false;
    if (--up->nstreams == 0)
        up->idle_since_ms = now_ms(up->pool);
}

void or_h2_up_release(or_h2_stream *st)
{
    if (!st->up)
        return;
    or_h2_up_unlink(st);
    assert(st->up->refs > 0);
    st->up->refs--;
    st->up = NULL;
}

/* ---- running ---- */

/* Retires the connections that should take no more streams and have none:
 * idle for the pool idle time, of an older TLS generation, or all of them
 * while the worker drains. */
static void retire_idle(or_h2_pool *p)
{
    uint64_t now = now_ms(p), idle = idle_ms(p);
    or_h2_up *up;
    LIST_FOREACH(up, &p->ups, entry)
        if (up->state != OR_H2_UP_CLOSED && up->nstreams == 0 &&
            (p->draining || up->admit != OR_H2_ADMIT_OPEN || now - up->idle_since_ms >= idle ||
             (up->u && up->u->tls != p->l->worker->tls)))
            or_h2_up_retire(up);
}

/* Sends the PINGs that are due and gives up on connections that did not
 * answer theirs. Returns the loop time the next one is due. */
static uint64_t keep_alive(or_h2_pool *p)
{
    uint64_t now = now_ms(p), ka = p->l->worker->snap->cfg->timeouts.keepalive_ms, due = UINT64_MAX;
    or_h2_up *up;
    LIST_FOREACH(up, &p->ups, entry) {
        if (up->state != OR_H2_UP_READY || up->no_hop)
            continue;
        if (up->ping_ms != 0 && now - up->ping_ms >= ka) {
            or_log_warn("upstream lost listener=%s upstream=%s reason=\"no answer to a keepalive "
                        "PING within %llu ms\"",
                        p->l->cfg->name, p->l->cfg->upstream_text, (unsigned long long)ka);
            or_h2_up_lost(up, "UC");
            continue;
        }
        if (up->ping_ms == 0 && now - up->heard_ms >= ka) {
            if (nghttp2_submit_ping(up->ng, NGHTTP2_FLAG_NONE, NULL) != 0) {
                or_h2_up_lost(up, "UC");
                continue;
            }
            up->ping_ms = now;
        }
        uint64_t since = up->ping_ms != 0 ? up->ping_ms : up->heard_ms;
        uint64_t next = since > UINT64_MAX - ka ? UINT64_MAX : since + ka;
        if (next < due)
            due = next;
    }
    return due;
}

/* Frees what is closed and unreferenced; the timer runs while connections
 * are open, until the next keepalive or idle deadline. */
static void sweep(or_h2_pool *p, uint64_t due)
{
    or_h2_up *next;
    size_t idle = 0;
    p->nups = 0;
    for (or_h2_up *up = LIST_FIRST(&p->ups); up; up = next) {
        next = LIST_NEXT(up, entry);
        if (up->state == OR_H2_UP_CLOSED && up->refs == 0) {
            LIST_REMOVE(up, entry);
            or_h2_up_free(up);
        } else if (up->state != OR_H2_UP_CLOSED) {
            p->nups++;
            idle += up->state == OR_H2_UP_READY && up->nstreams == 0;
        }
    }
    if (idle != p->l->h2_idle) { /* the idle gauge counts both pools */
        p->l->h2_idle = idle;
        or_metrics_set(p->l->metrics->up_idle, p->l->pool_size + idle);
    }
    uint64_t now = now_ms(p), wait = idle_ms(p);
    if (due <= now)
        wait = 1;
    else if (due - now < wait)
        wait = due - now;
    if (p->nups > 0 && !p->draining)
        uv_timer_start(&p->timer, on_pool_tick, wait, 0);
    else
        uv_timer_stop(&p->timer);
}

/* A run (see the top of the file); `early`: an early run, whose output on
 * every side is offered to the kernel at once. */
static void run(or_h2_pool *p, bool early)
{
    if (p->running)
        return;
    p->running = true;
    uint64_t due = keep_alive(p);
    bool more = true;
    for (int round = 0; round < OR_H2_POOL_ROUNDS && more; round++) {
        more = flush_sessions(p, early);
        retire_idle(p);
        or_h2_up *up;
        LIST_FOREACH(up, &p->ups, entry)
            more |= or_h2_up_send(up);
        more |= !SLIST_EMPTY(&p->flush);
    }
    if (more) /* the rounds ran out: the rest goes on the next loop turn */
        or_h2_pool_soon(p);
    flush_sessions(p, early);
    sweep(p, due);
    if (early) {
        or_h2_up *up;
        LIST_FOREACH(up, &p->ups, entry)
            if (up->u && up->state == OR_H2_UP_READY)
                or_stream_send_early(&up->u->s);
    }
    p->reads = 0;
    p->running = false;
}

void or_h2_pool_run(or_h2_pool *p) { run(p, false); }

void or_h2_pool_early(or_worker_listener *l)
{
    or_h2_pool *p = l->h2_pool;
    if (!p || p->running || SLIST_EMPTY(&p->flush) || ++p->reads < OR_H2_EARLY)
        return; /* counted only while work is queued: reads that give none never run it */
    run(p, true);
}

#define OR_H2_GATHER (64 * 1024)

ssize_t or_h2_gather(or_h2_pool *p, nghttp2_session *ng, or_stream *s)
{
    or_buf *out = &p->out;
    ssize_t total = 0, n = 0;
    out->len = 0;
    while (or_stream_queued(s) + out->len <= OR_PIPE_HIGH_WATERMARK) {
        const uint8_t *data;
        n = nghttp2_session_mem_send(ng, &data);
        if (n <= 0)
            break;
        if (or_buf_append(out, data, (size_t)n) != 0) {
            n = NGHTTP2_ERR_NOMEM;
            break;
        }
        total += n;
        if (out->len >= OR_H2_GATHER) {
            or_stream_write(s, out->data, out->len);
            out->len = 0;
        }
    }
    if (out->len > 0)
        or_stream_write(s, out->data, out->len);
    out->len = 0;
    return n < 0 ? n : total;
}

/* ---- spare streams ---- */

/* A spare is poisoned for ASan but for its list link, so that a use after
 * free is still found in the sanitizer build. */
#if defined(__SANITIZE_ADDRESS__)
#define OR_H2_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OR_H2_ASAN 1
#endif
#endif
#ifdef OR_H2_ASAN
#include <sanitizer/asan_interface.h>
#define SPARE_BODY(st) ((char *)(st) + sizeof(st)->spare_entry)
#define SPARE_BODY_LEN(st) (sizeof *(st) - sizeof(st)->spare_entry)
static void poison(or_h2_stream *st)
{
    ASAN_POISON_MEMORY_REGION(SPARE_BODY(st), SPARE_BODY_LEN(st));
}
static void unpoison(or_h2_stream *st)
{
    ASAN_UNPOISON_MEMORY_REGION(SPARE_BODY(st), SPARE_BODY_LEN(st));
}
#else
static void poison(or_h2_stream *st) { (void)st; }
static void unpoison(or_h2_stream *st) { (void)st; }
#endif

bool or_h2_spare_room(const or_h2_pool *p) { return p->nspares < OR_H2_SPARES; }

void or_h2_spare_keep(or_h2_pool *p, or_h2_stream *st)
{
    assert(or_h2_spare_room(p));
    SLIST_INSERT_HEAD(&p->spares, st, spare_entry);
    p->nspares++;
    poison(st);
}

or_h2_stream *or_h2_spare_take(or_h2_pool *p)
{
    or_h2_stream *st = SLIST_FIRST(&p->spares);
    if (!st)
        return NULL;
    SLIST_REMOVE_HEAD(&p->spares, spare_entry);
    p->nspares--;
    unpoison(st);
    return st;
}

static void free_spares(or_h2_pool *p)
{
    or_h2_stream *st;
    while ((st = or_h2_spare_take(p)) != NULL)
        or_h2_stream_free_spare(st);
}

static void on_pool_tick(uv_timer_t *t) { or_h2_pool_run(t->data); }

void or_h2_pool_soon(or_h2_pool *p) { uv_timer_start(&p->timer, on_pool_tick, 0, 0); }

static void on_pool_check(uv_check_t *check)
{
    uv_check_stop(check);
    or_h2_pool_run(check->data);
}

void or_h2_pool_defer(or_h2_pool *p)
{
    if (!uv_is_active((const uv_handle_t *)&p->check))
        uv_check_start(&p->check, on_pool_check);
}

void or_h2_pool_drain(or_worker_listener *l)
{
    or_h2_pool *p = l->h2_pool;
    if (!p)
        return;
    p->draining = true; /* again when the worker finishes: the rest close now */
    or_h2_up *up;
    LIST_FOREACH(up, &p->ups, entry)
        if (up->admit == OR_H2_ADMIT_OPEN)
            up->admit = OR_H2_ADMIT_RETIRED;
    or_h2_pool_run(p);
}

void or_h2_pool_free(or_worker_listener *l)
{
    or_h2_pool *p = l->h2_pool;
    if (!p)
        return;
    l->h2_pool = NULL;
    or_h2_up *up;
    while ((up = LIST_FIRST(&p->ups))) { /* the loop has closed: their handles are gone */
        LIST_REMOVE(up, entry);
        or_h2_up_free(up);
    }
    free_spares(p);
    or_buf_free(&p->out);
    free(p);
}
