/*
 * Worker threads.
 *
 * Every worker owns a uv_loop_t, its TLS configurations and one listening
 * socket per configured listener. The sockets are created and bound by the
 * main thread (so an address in use is reported before anything starts)
 * with SO_REUSEPORT set, which lets the kernel spread new connections over
 * the workers; libuv 1.44 has no flag for it, so the socket is made here.
 * The worker listens on it and accepts from it itself (see "accepting"), so
 * that running out of file descriptors is counted, logged and never spins.
 *
 * A worker stops in two steps. Drain: its listeners close, and it exits once
 * its last connection has gone, or cuts what is left when timeouts.drain
 * expires. Abort: every connection is closed at once. Either way all handles
 * close, the loop runs dry and the thread ends after telling main.
 */
#include "outrider/worker.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "outrider/log.h"
#include "outrider/rbac.h"
#include "outrider/conn.h"
#include "outrider/http2.h"
#include "outrider/upstream.h"

#define OR_LISTEN_BACKLOG 1024

static int bind_reuseport(const or_hostport *hp, char *err, size_t err_len)
{
    const struct sockaddr *sa = (const struct sockaddr *)&hp->addr;
    socklen_t len = sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create a socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        bind(fd, sa, len) != 0) {
        char addr[80];
        snprintf(err, err_len, "cannot listen on %s: %s",
                 or_addr_format(sa, addr, sizeof addr), strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int or_worker_bind(or_worker *w, or_runtime *rt, unsigned id, char *err, size_t err_len)
{
    memset(w, 0, sizeof *w);
    w->accept.spare_fd = -1;
    w->id = id;
    w->rt = rt;
    w->nlisteners = rt->cfg->nlisteners;
    w->listeners = calloc(w->nlisteners, sizeof *w->listeners);
    if (!w->listeners) {
        snprintf(err, err_len, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < w->nlisteners; i++)
        w->listeners[i].fd = -1;
    for (size_t i = 0; i < w->nlisteners; i++) {
        or_worker_listener *l = &w->listeners[i];
        l->worker = w;
        l->cfg = &rt->cfg->listeners[i];
        l->metrics = or_listener_metrics_new();
        if (!l->metrics) {
            snprintf(err, err_len, "out of memory");
            return -1;
        }
        l->fd = bind_reuseport(&l->cfg->listen, err, err_len);
        if (l->fd < 0)
            return -1;
    }
    return 0;
}

void or_worker_unbind(or_worker *w)
{
    if (w->accept.spare_fd >= 0)
        close(w->accept.spare_fd);
    w->accept.spare_fd = -1;
    for (size_t i = 0; w->listeners && i < w->nlisteners; i++) {
        if (w->listeners[i].fd >= 0)
            close(w->listeners[i].fd);
        or_listener_metrics_free(w->listeners[i].metrics);
    }
    free(w->listeners);
    w->listeners = NULL;
}

/* ---- TLS generations ---- */

or_tls_gen *or_worker_tls_hold(or_worker *w)
{
    w->tls->refs++;
    return w->tls;
}

void or_worker_tls_drop(or_tls_gen *gen)
{
    if (!gen || --gen->refs > 0)
        return;
    or_tls_worker_free(&gen->tls);
    free(gen);
}

static or_tls_gen *build_tls(or_worker *w, unsigned *version)
{
    or_runtime *rt = w->rt;
    uv_mutex_lock(&rt->creds_lock);
    or_tls_creds *creds = or_tls_creds_ref(rt->creds);
    *version = atomic_load(&rt->creds_version);
    uv_mutex_unlock(&rt->creds_lock);
    char err[256];
    or_tls_gen *gen = calloc(1, sizeof *gen);
    if (!gen || or_tls_worker_init(&gen->tls, creds, &rt->tickets, err, sizeof err) != 0) {
        or_log_error("worker %u: %s", w->id, gen ? err : "out of memory");
        if (gen)
            or_tls_worker_free(&gen->tls);
        free(gen);
        gen = NULL;
    } else {
        gen->refs = 1;
    }
    or_tls_creds_unref(creds);
    return gen;
}

static void refresh_tls(or_worker *w)
{
    if (atomic_load(&w->rt->creds_version) == w->creds_version)
        return;
    unsigned version;
    or_tls_gen *gen = build_tls(w, &version);
    if (!gen)
        return; /* keep the current generation */
    or_worker_tls_drop(w->tls);
    w->tls = gen;
    w->creds_version = version;
    or_log_debug("identity %s in use for new connections", gen->tls.creds->spiffe_id);
}

void or_runtime_publish_creds(or_runtime *rt, or_worker *workers, unsigned n, or_tls_creds *creds)
{
    uv_mutex_lock(&rt->creds_lock);
    or_tls_creds *old = rt->creds;
    rt->creds = or_tls_creds_ref(creds);
    atomic_fetch_add(&rt->creds_version, 1);
    uv_mutex_unlock(&rt->creds_lock);
    or_tls_creds_unref(old);
    for (unsigned i = 0; i < n; i++)
        uv_async_send(&workers[i].wakeup);
}

/* ---- snapshots ---- */

or_snapshot *or_snapshot_new(const or_config *cfg, or_config *owned_cfg, or_rbac *rbac)
{
    or_snapshot *set = calloc(1, sizeof *set);
    size_t n = rbac ? or_rbac_policy_count(rbac) : 0;
    if (set && n > 0)
        set->hits = calloc(n, sizeof *set->hits);
    if (!set || (n > 0 && !set->hits)) {
        free(set);
        or_rbac_free(rbac);
        or_config_free(owned_cfg);
        return NULL;
    }
    atomic_init(&set->refs, 1);
    set->cfg = cfg;
    set->owned_cfg = owned_cfg;
    set->rbac = rbac;
    set->npolicies = n;
    return set;
}

void or_snapshot_count(or_snapshot *set, const or_rbac_decision *d)
{
    if (d->policy_index >= 0 && (size_t)d->policy_index < set->npolicies)
        or_stats_add(set->hits[d->policy_index][d->allowed ? 0 : 1], 1);
    if (d->dry_run_index >= 0 && (size_t)d->dry_run_index < set->npolicies)
        or_stats_add(set->hits[d->dry_run_index][2], 1);
    if (d->audit_index >= 0 && (size_t)d->audit_index < set->npolicies)
        or_stats_add(set->hits[d->audit_index][3], 1);
}

or_snapshot *or_snapshot_hold(or_snapshot *set)
{
    atomic_fetch_add(&set->refs, 1);
    return set;
}

void or_snapshot_drop(or_snapshot *set)
{
    if (!set || atomic_fetch_sub(&set->refs, 1) != 1)
        return;
    or_rbac_free(set->rbac);
    or_config_free(set->owned_cfg);
    free(set->hits);
    free(set);
}

static void refresh_snapshot(or_worker *w)
{
    or_runtime *rt = w->rt;
    if (w->snap && atomic_load(&rt->snap_version) == w->snap_version)
        return;
    uv_mutex_lock(&rt->creds_lock);
    or_snapshot *set = or_snapshot_hold(rt->snap);
    w->snap_version = atomic_load(&rt->snap_version);
    uv_mutex_unlock(&rt->creds_lock);
    or_snapshot_drop(w->snap);
    w->snap = set;
}

void or_runtime_publish_snapshot(or_runtime *rt, or_worker *workers, unsigned n,
                                 or_snapshot *set)
{
    uv_mutex_lock(&rt->creds_lock);
    or_snapshot *old = rt->snap;
    rt->snap = set;
    atomic_fetch_add(&rt->snap_version, 1);
    uv_mutex_unlock(&rt->creds_lock);
    or_snapshot_drop(old);
    for (unsigned i = 0; i < n; i++)
        uv_async_send(&workers[i].wakeup);
}

/* ---- accepting ---- */

/*
 * Listening sockets are polled and accepted here rather than with
 * uv_listen, so that running out of file descriptors is seen: libuv hides
 * EMFILE behind a reserve descriptor of its own (the connections are closed
 * and nobody hears of it) and, without one, calls back in a tight loop.
 *
 * On EMFILE or ENFILE the worker gives up its spare descriptor, accepts the
 * waiting connections with it one at a time, closing each at once so its
 * client sees a close rather than a hang, and opens the spare again. Each
 * such connection is counted (outrider_accept_errors_total) and logged, at
 * most one line a second per worker with the count since the last one. When
 * the spare cannot be had (another thread took the descriptor), and on
 * errors that may last (ENOBUFS, ENOMEM, ...), the worker's listeners stop
 * polling for OR_ACCEPT_PAUSE_MS: the poll is level-triggered, and retrying
 * at once would spin.
 */

#define OR_ACCEPT_BATCH 64 /* accepts per callback, so one listener cannot hog the loop */
#define OR_ACCEPT_PAUSE_MS 100
#define OR_ACCEPT_LOG_MS 1000

static or_accept_reason accept_reason(int err)
{
    return err == EMFILE ? OR_ACCEPT_EMFILE : err == ENFILE ? OR_ACCEPT_ENFILE : OR_ACCEPT_OTHER;
}

/* One line for the failures counted since the last one. */
static void log_accept_errors(or_worker *w)
{
    or_accept_state *a = &w->accept;
    const uint64_t *n = a->unlogged;
    unsigned long long total = n[OR_ACCEPT_EMFILE] + n[OR_ACCEPT_ENFILE] + n[OR_ACCEPT_OTHER];
    if (total == 0)
        return;
    struct rlimit rl;
    unsigned long long limit = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (unsigned long long)rl.rlim_cur
                                                                  : 0;
    if (n[OR_ACCEPT_EMFILE] + n[OR_ACCEPT_ENFILE] > 0)
        or_log_warn("connections refused count=%llu reason=\"out of file descriptors\" "
                    "emfile=%llu enfile=%llu other=%llu open_files_limit=%llu: raise the "
                    "open-file limit (ulimit -n, or LimitNOFILE= under systemd; fs.file-max "
                    "for enfile) or lower limits.max_connections",
                    total, (unsigned long long)n[OR_ACCEPT_EMFILE],
                    (unsigned long long)n[OR_ACCEPT_ENFILE],
                    (unsigned long long)n[OR_ACCEPT_OTHER], limit);
    else
        or_log_warn("connections refused count=%llu reason=\"accept failed: %s\"", total,
                    strerror(a->last_errno));
    memset(a->unlogged, 0, sizeof a->unlogged);
}

static void on_accept_log_timer(uv_timer_t *t)
{
    or_worker *w = t->data;
    const uint64_t *n = w->accept.unlogged;
    if (n[OR_ACCEPT_EMFILE] + n[OR_ACCEPT_ENFILE] + n[OR_ACCEPT_OTHER] == 0)
        return; /* quiet for a second: the next failure is logged at once */
    log_accept_errors(w);
    uv_timer_start(t, on_accept_log_timer, OR_ACCEPT_LOG_MS, 0);
}

static void count_accept_error(or_worker *w, int err)
{
    or_accept_reason reason = accept_reason(err);
    or_stats_add(w->stats.accept_errors[reason], 1);
    w->accept.unlogged[reason]++;
    if (reason == OR_ACCEPT_OTHER)
        w->accept.last_errno = err;
    if (!uv_is_active((uv_handle_t *)&w->accept.log_timer)) {
        log_accept_errors(w);
        uv_timer_start(&w->accept.log_timer, on_accept_log_timer, OR_ACCEPT_LOG_MS, 0);
    }
}

static void on_listener_readable(uv_poll_t *p, int status, int events);

static bool listener_open(const or_worker_listener *l)
{
    return l->poll.loop != NULL && !uv_is_closing((const uv_handle_t *)&l->poll);
}

static void on_accept_resume(uv_timer_t *t)
{
    or_worker *w = t->data;
    w->accept.paused = false;
    for (size_t i = 0; i < w->nlisteners; i++)
        if (listener_open(&w->listeners[i]))
            uv_poll_start(&w->listeners[i].poll, UV_READABLE, on_listener_readable);
}

static void pause_accepting(or_worker *w)
{
    if (w->accept.paused)
        return;
    w->accept.paused = true;
    for (size_t i = 0; i < w->nlisteners; i++)
        if (listener_open(&w->listeners[i]))
            uv_poll_stop(&w->listeners[i].poll);
    uv_timer_start(&w->accept.pause_timer, on_accept_resume, OR_ACCEPT_PAUSE_MS, 0);
}

static int open_spare(void) { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

/* Out of descriptors (err): refuses the waiting connections with the
 * spare, or pauses when there is none. */
static void refuse_waiting(or_worker_listener *l, int err)
{
    or_worker *w = l->worker;
    int closed = 0, last = EAGAIN;
    if (w->accept.spare_fd < 0)
        w->accept.spare_fd = open_spare(); /* lost last time; descriptors may have freed */
    if (w->accept.spare_fd >= 0) {
        close(w->accept.spare_fd);
        w->accept.spare_fd = -1;
        while (closed < OR_ACCEPT_BATCH) {
            int fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0) {
                close(fd);
                count_accept_error(w, err);
                closed++;
            } else if (errno != EINTR && errno != ECONNABORTED) {
                last = errno;
                break;
            }
        }
        w->accept.spare_fd = open_spare();
    }
    if (closed == 0)
        count_accept_error(w, err);
    if (w->accept.spare_fd < 0 || (last != EAGAIN && last != EWOULDBLOCK))
        pause_accepting(w);
}

static void on_listener_readable(uv_poll_t *p, int status, int events)
{
    or_worker_listener *l = p->data;
    (void)events;
    if (status < 0) {
        count_accept_error(l->worker, -status);
        pause_accepting(l->worker);
        return;
    }
    for (int i = 0; i < OR_ACCEPT_BATCH && listener_open(l); i++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            or_conn_accept(l, fd);
            continue;
        }
        int err = errno;
        if (err == EINTR || err == ECONNABORTED)
            continue; /* the client left before we took it */
        if (err == EAGAIN || err == EWOULDBLOCK)
            return;
        if (err == EMFILE || err == ENFILE) {
            refuse_waiting(l, err);
        } else {
            count_accept_error(l->worker, err);
            pause_accepting(l->worker);
        }
        return;
    }
}

static int open_listener(or_worker *w, or_worker_listener *l)
{
    if (listen(l->fd, OR_LISTEN_BACKLOG) != 0)
        return uv_translate_sys_error(errno);
    int r = uv_poll_init(&w->loop, &l->poll, l->fd);
    if (r != 0)
        return r;
    l->poll.data = l;
    return uv_poll_start(&l->poll, UV_READABLE, on_listener_readable);
}

/* ---- stopping ---- */

static void on_listener_closed(uv_handle_t *h)
{
    or_worker_listener *l = h->data;
    close(l->fd);
    l->fd = -1;
}

static void close_listeners(or_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        if (listener_open(&w->listeners[i]))
            uv_close((uv_handle_t *)&w->listeners[i].poll, on_listener_closed);
        or_pool_close_all(&w->listeners[i]);
        or_h2_pool_drain(&w->listeners[i]);
    }
}

static void finish(or_worker *w)
{
    if (w->finished)
        return;
    w->finished = true;
    if (w->lag_timer.loop)
        uv_close((uv_handle_t *)&w->lag_timer, NULL);
    close_listeners(w);
    log_accept_errors(w);
    uv_close((uv_handle_t *)&w->accept.pause_timer, NULL);
    uv_close((uv_handle_t *)&w->accept.log_timer, NULL);
    uv_close((uv_handle_t *)&w->wakeup, NULL);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    or_stream_loop_close(&w->sl);
}

void or_worker_conn_released(or_worker *w)
{
    if (w->draining && w->nconns == 0)
        finish(w);
}

static void on_drain_deadline(uv_timer_t *t)
{
    or_worker *w = t->data;
    or_log_warn("drain deadline reached, closing %zu connection(s)", w->nconns);
    or_conn_abort_all(w);
}

static void on_wakeup(uv_async_t *a)
{
    or_worker *w = a->data;
    refresh_tls(w);
    refresh_snapshot(w);
    int level = atomic_load(&w->stop_level);
    if (level >= 1 && !w->draining) {
        w->draining = true;
        close_listeners(w);
        for (or_conn *c = LIST_FIRST(&w->conns), *next; c; c = next) {
            next = LIST_NEXT(c, entry);
            or_conn_drain(c);
        }
        uv_timer_start(&w->drain_timer, on_drain_deadline, w->snap->cfg->timeouts.drain_ms, 0);
    }
    if (level >= 2)
        or_conn_abort_all(w);
    if (level >= 1 && w->nconns == 0)
        finish(w);
}

void or_worker_stop(or_worker *w, int level)
{
    atomic_store(&w->stop_level, level);
    uv_async_send(&w->wakeup);
}

/* ---- loop lag ---- */

static void on_lag_timer(uv_timer_t *t)
{
    or_worker *w = t->data;
    uint64_t now = uv_now(&w->loop);
    uint64_t late = now > w->lag_due_ms ? now - w->lag_due_ms : 0;
    atomic_store_explicit(&w->stats.loop_lag_us, late * 1000, memory_order_relaxed);
    w->lag_due_ms = now + 1000;
}

/* ---- the thread ---- */

static int setup_loop(or_worker *w)
{
    w->tls = build_tls(w, &w->creds_version);
    if (!w->tls)
        return -1;
    refresh_snapshot(w);
    uv_timer_init(&w->loop, &w->lag_timer);
    w->lag_timer.data = w;
    w->lag_due_ms = uv_now(&w->loop) + 1000;
    uv_timer_start(&w->lag_timer, on_lag_timer, 1000, 1000);
    for (size_t i = 0; i < w->nlisteners; i++) {
        int r = open_listener(w, &w->listeners[i]);
        if (r != 0) {
            or_log_error("worker %u: cannot listen for %s: %s", w->id, w->listeners[i].cfg->name,
                         uv_strerror(r));
            return -1;
        }
    }
    return 0;
}

static void close_any(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void worker_main(void *arg)
{
    or_worker *w = arg;
    char name[16];
    snprintf(name, sizeof name, "w%u", w->id);
    or_log_set_thread_name(name);
    if (setup_loop(w) != 0) {
        atomic_store(&w->rt->worker_failed, true);
        atomic_store(&w->stop_level, 2);
        finish(w);
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    uv_walk(&w->loop, close_any, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&w->loop) != 0)
        or_log_error("worker %u: handles left open at exit", w->id);
    for (size_t i = 0; i < w->nlisteners; i++) {
        or_upstream_forget_session(&w->listeners[i]);
        or_h2_pool_free(&w->listeners[i]);
    }
    or_worker_tls_drop(w->tls);
    or_snapshot_drop(w->snap);
    if (w->accept.spare_fd >= 0)
        close(w->accept.spare_fd);
    w->accept.spare_fd = -1;
    atomic_fetch_sub(&w->rt->workers_running, 1);
    uv_async_send(w->rt->worker_exited);
}

int or_worker_start(or_worker *w)
{
    int r = uv_loop_init(&w->loop);
    if (r != 0)
        return r;
    uv_async_init(&w->loop, &w->wakeup, on_wakeup);
    w->wakeup.data = w;
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    uv_timer_init(&w->loop, &w->accept.pause_timer);
    w->accept.pause_timer.data = w;
    uv_timer_init(&w->loop, &w->accept.log_timer);
    w->accept.log_timer.data = w;
    w->accept.spare_fd = open_spare();
    r = or_stream_loop_init(&w->sl, &w->loop);
    w->sl.bufs.releases = &w->stats.tls_idle_releases;
    w->sl.bufs.wakes = &w->stats.tls_idle_wakes;
    if (r == 0)
        r = uv_thread_create(&w->thread, worker_main, w);
    return r;
}

void or_worker_join(or_worker *w)
{
    uv_thread_join(&w->thread);
    or_worker_unbind(w);
}
