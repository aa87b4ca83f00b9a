/*
 * outrider-bench: a load generator for one mesh hop (see bench/README.md).
 *
 * main parses the command line, runs the crypto modes directly, or loads
 * the client identity once and starts one worker thread per --threads, each
 * with its own loop. While they run, the main thread prints a progress line
 * each second and, in idle mode, samples the server's RSS once every
 * connection is open. The workers' counters and histograms are then merged
 * into one report. Exit status: 0 when at least one request (connection, in
 * idle mode) completed, 1 when none did or the run could not start, 2 on a
 * usage error.
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <uv.h>

#include "outrider/bench_cli.h"
#include "outrider/bench_client.h"
#include "outrider/bench_crypto.h"
#include "outrider/bench_report.h"
#include "outrider/log.h"

typedef struct {
    or_bench_worker *w;
    uv_thread_t tid;
    atomic_bool done;
} thread_slot;

typedef struct {
    const or_bench_opts *o;
    or_tls_creds *creds;
    or_tls_tickets tickets;
    bool have_tickets;
    thread_slot *slots;
    unsigned started;
    long rss_before, rss_after;
    or_bench_cpu cpu_before, cpu_after; /* --pid outside idle mode */
    bool have_cpu;                      /* both read */
} run_state;

static void thread_main(void *arg)
{
    thread_slot *slot = arg;
    or_bench_worker_run(slot->w);
    atomic_store(&slot->done, true);
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int load_identity(run_state *rs)
{
    const or_bench_opts *o = rs->o;
    char err[512];
    rs->creds = or_tls_creds_load(o->cert, o->key, o->ca, o->trust_domain, err, sizeof err);
    if (!rs->creds) {
        fprintf(stderr, "outrider-bench: %s\n", err);
        return -1;
    }
    if (or_tls_tickets_init(&rs->tickets, 3600, err, sizeof err) != 0) {
        fprintf(stderr, "outrider-bench: %s\n", err);
        or_tls_tickets_free(&rs->tickets);
        return -1;
    }
    rs->have_tickets = true;
    return 0;
}

static int start_workers(run_state *rs)
{
    const or_bench_opts *o = rs->o;
    rs->slots = calloc(o->threads, sizeof *rs->slots);
    if (!rs->slots)
        return -1;
    char err[512];
    for (unsigned i = 0; i < o->threads; i++) {
        rs->slots[i].w = or_bench_worker_new(o, i, rs->creds,
                                             rs->have_tickets ? &rs->tickets : NULL, err,
                                             sizeof err);
        if (!rs->slots[i].w) {
            fprintf(stderr, "outrider-bench: %s\n", err);
            return -1;
        }
    }
    if (o->mode == OR_BENCH_IDLE && o->pid)
        rs->rss_before = or_bench_rss_kb(o->pid);
    else if (o->pid)
        rs->have_cpu = or_bench_cpu_read(o->pid, &rs->cpu_before) == 0;
    for (unsigned i = 0; i < o->threads; i++) {
        if (uv_thread_create(&rs->slots[i].tid, thread_main, &rs->slots[i]) != 0) {
            fprintf(stderr, "outrider-bench: cannot start thread %u\n", i);
            return -1;
        }
        rs->started++;
    }
    return 0;
}

static bool all(run_state *rs, bool settled)
{
    for (unsigned i = 0; i < rs->started; i++) {
        thread_slot *s = &rs->slots[i];
        if (!atomic_load(&s->done) && !(settled && or_bench_worker_settled(s->w)))
            return false;
    }
    return true;
}

static void watch(run_state *rs)
{
    const or_bench_opts *o = rs->o;
    uint64_t last = 0, t0 = uv_hrtime(), next = t0 + 1000000000ull;
    unsigned second = 0;
    bool sampled = false;
    while (!all(rs, false)) {
        sleep_ms(20);
        if (o->mode == OR_BENCH_IDLE && o->pid && !sampled && all(rs, true)) {
            uint64_t hold = o->hold_ms / 2 < 1000 ? o->hold_ms / 2 : 1000;
            sleep_ms((unsigned)hold); /* let the server finish its allocations */
            rs->rss_after = or_bench_rss_kb(o->pid);
            sampled = true;
        }
        if (o->quiet || uv_hrtime() < next)
            continue;
        next += 1000000000ull;
        uint64_t req = 0, errs = 0;
        for (unsigned i = 0; i < rs->started; i++) {
            uint64_t r, e;
            or_bench_worker_progress(rs->slots[i].w, &r, &e);
            req += r;
            errs += e;
        }
        or_bench_progress(stderr, ++second, req, req - last, errs);
        last = req;
    }
}

static int report(run_state *rs)
{
    const or_bench_opts *o = rs->o;
    or_bench_hist *hist = or_bench_hist_new();
    if (!hist)
        return 1;
    or_bench_result r = {.o = o, .hist = hist, .cipher = "", .rss_before_kb = -1,
                         .rss_after_kb = -1};
    for (unsigned i = 0; i < o->threads; i++) {
        or_bench_worker *w = rs->slots[i].w;
        or_bench_counts_add(&r.counts, or_bench_worker_counts(w));
        or_bench_hist_merge(hist, or_bench_worker_hist(w));
        if (or_bench_worker_elapsed(w) > r.elapsed_s)
            r.elapsed_s = or_bench_worker_elapsed(w);
        if (or_bench_worker_cipher(w)[0])
            r.cipher = or_bench_worker_cipher(w);
    }
    if (o->mode == OR_BENCH_IDLE && o->pid) {
        r.rss_before_kb = rs->rss_before;
        r.rss_after_kb = rs->rss_after;
    }
    if (rs->have_cpu) {
        r.has_server_cpu = true;
        r.server_cpu.user_s = rs->cpu_after.user_s - rs->cpu_before.user_s;
        r.server_cpu.system_s = rs->cpu_after.system_s - rs->cpu_before.system_s;
    }
    if (o->json)
        or_bench_report_json(stdout, &r);
    else
        or_bench_report_text(stdout, &r);
    fflush(stdout);
    int status = r.counts.requests > 0 ? 0 : 1;
    or_bench_hist_free(hist);
    return status;
}

static int run_load(const or_bench_opts *o)
{
    run_state rs = {.o = o, .rss_before = -1, .rss_after = -1};
    int status = 1;
    if ((!o->tls || load_identity(&rs) == 0) && start_workers(&rs) == 0) {
        watch(&rs);
        status = 0;
    }
    for (unsigned i = 0; i < rs.started; i++)
        uv_thread_join(&rs.slots[i].tid);
    if (rs.have_cpu)
        rs.have_cpu = or_bench_cpu_read(o->pid, &rs.cpu_after) == 0;
    if (status == 0 && rs.started == o->threads)
        status = report(&rs);
    else
        status = 1;
    for (unsigned i = 0; rs.slots && i < o->threads; i++)
        or_bench_worker_free(rs.slots[i].w);
    free(rs.slots);
    if (rs.have_tickets)
        or_tls_tickets_free(&rs.tickets);
    or_tls_creds_unref(rs.creds);
    return status;
}

int main(int argc, char **argv)
{
    or_bench_opts o;
    char err[512];
    int r = or_bench_cli_parse(argc, argv, &o, err, sizeof err);
    if (r == 1) {
        or_bench_cli_usage(stdout);
        return 0;
    }
    if (r != 0) {
        fprintf(stderr, "outrider-bench: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    or_log_set_thread_name("main");
    or_log_set_level(OR_LOG_WARN);
    if (o.mode == OR_BENCH_CIPHER)
        return or_bench_cipher(stdout, o.cipher_bytes, o.json) == 0 ? 0 : 1;
    if (o.mode == OR_BENCH_PKOPS)
        return or_bench_pkops(stdout, o.json) == 0 ? 0 : 1;
    raise_fd_limit();
    return run_load(&o);
}
