/*
 * outrider: command line, start-up and signals.
 *
 * Start-up does everything that can fail before any worker runs: the config
 * is loaded and validated, the identity is loaded and checked, and every
 * listening socket is bound. Only then do the workers start, so a proxy that
 * is running has all its listeners up. The main thread then only waits for
 * signals: SIGTERM or SIGINT drains (a second one cuts open connections),
 * SIGPIPE is ignored. Between binding and starting the workers the process
 * confines itself (sandbox.h: run_as, no capabilities, Landlock, seccomp);
 * a failure there stops start-up.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/version.h>
#include <mbedtls/x509.h>
#include <uv.h>

#include "outrider/access_log.h"
#include "outrider/admin.h"
#include "outrider/check_kube.h"
#include "outrider/config.h"
#include "outrider/explain.h"
#include "outrider/log.h"
#include "outrider/rbac.h"
#include "outrider/sandbox.h"
#include "outrider/tls.h"
#include "outrider/version.h"
#include "outrider/watch.h"
#include "outrider/worker.h"

#include "main.h"

#define OR_TICKET_LIFETIME_S 3600

static void print_usage(FILE *out)
{
    fputs("usage: outrider -c FILE [--log-level debug|info|warn|error]\n"
          "       outrider check -c FILE\n"
          "       outrider explain -c FILE --principal ID [--ip A] [--port N] [--method M]\n"
          "                        [--path P] [--host H] [--header k=v]... [--tcp]\n"
          "       outrider --help | --version\n"
          "\n"
          "Runs the Outrider mTLS sidecar with the YAML config FILE, or with\n"
          "'check', validates FILE and the identity it names and exits 0 if\n"
          "both are usable, 1 if not. A Kubernetes manifest given to 'check' is\n"
          "checked against the restricted Pod Security Standard, and the\n"
          "Outrider sidecar's config in its ConfigMap with the config rules.\n",
          out);
}

static void print_version(void)
{
    char mbedtls[32];
    mbedtls_version_get_string(mbedtls);
    printf("outrider %s (mbedTLS %s, libuv %s)\n", OUTRIDER_VERSION, mbedtls, uv_version_string());
}

static or_config *load_config(const char *path, or_diag *diag)
{
    or_config *cfg = or_config_load(path, diag);
    if (cfg)
        or_rbac_lint(cfg, diag);
    or_rbac *rbac = cfg ? or_rbac_compile(cfg, diag) : NULL;
    or_rbac_free(rbac);
    or_diag_print(diag, stderr);
    if (diag->errors > 0) {
        or_config_free(cfg);
        return NULL;
    }
    return cfg;
}

static or_tls_creds *load_identity(const or_config *cfg)
{
    char err[512];
    or_tls_creds *creds = or_tls_creds_load(cfg->identity.cert, cfg->identity.key,
                                            cfg->identity.bundle, cfg->trust_domain, err,
                                            sizeof err);
    if (!creds)
        fprintf(stderr, "%s: error: identity: %s\n", cfg->path, err);
    return creds;
}

static int run_check(const char *path)
{
    int status;
    if (or_kube_check_command(path, &status))
        return status; /* a Kubernetes manifest, checked as one */
    or_diag diag;
    or_diag_init(&diag);
    or_config *cfg = load_config(path, &diag);
    or_tls_creds *creds = cfg ? load_identity(cfg) : NULL;
    size_t errors = diag.errors + (cfg && !creds ? 1 : 0);
    if (errors == 0)
        fprintf(stderr, "%s: OK (identity %s, %zu warning(s))\n", path, creds->spiffe_id,
                diag.warnings);
    else
        fprintf(stderr, "%s: %zu error(s)\n", path, errors);
    or_tls_creds_unref(creds);
    or_config_free(cfg);
    or_diag_free(&diag);
    return errors == 0 ? 0 : 1;
}

/* ---- signals ---- */

void or_main_stop(or_main *m, int level, const char *why)
{
    if (level <= m->stop_level)
        level = m->stop_level < 2 ? m->stop_level + 1 : 2;
    m->stop_level = level;
    or_log_info("%s: %s", why, level == 1 ? "draining" : "closing all connections now");
    for (unsigned i = 0; i < m->nworkers; i++)
        or_worker_stop(&m->workers[i], level);
}

static void on_stop_signal(uv_signal_t *sig, int signum)
{
    or_main_stop(sig->data, 1, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_sighup(uv_signal_t *sig, int signum)
{
    (void)signum;
    or_buf out = {0};
    or_main_reload(sig->data, &out);
    or_buf_free(&out);
}

static void on_sigusr1(uv_signal_t *sig, int signum)
{
    (void)signum;
    or_main *m = sig->data;
    if (m->rt.access_log) {
        or_log_info("SIGUSR1: reopening the access log");
        or_access_log_reopen(m->rt.access_log);
    }
}

static void on_worker_exited(uv_async_t *a)
{
    or_main *m = a->data;
    if (atomic_load(&m->rt.workers_running) > 0)
        return;
    or_identity_watch_stop(&m->identity);
    or_admin_stop(m->admin);
    m->admin = NULL;
    for (int i = 0; i < 4; i++)
        uv_close((uv_handle_t *)&m->sigs[i], NULL);
    uv_close((uv_handle_t *)&m->worker_exited, NULL);
}

static void watch_signals(or_main *m)
{
    uv_signal_cb handlers[] = {on_stop_signal, on_stop_signal, on_sighup, on_sigusr1};
    int nums[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1};
    for (int i = 0; i < 4; i++) {
        uv_signal_init(m->loop, &m->sigs[i]);
        m->sigs[i].data = m;
        uv_signal_start(&m->sigs[i], handlers[i], nums[i]);
    }
}

static void on_identity_update(or_tls_creds *creds, void *ctx)
{
    or_main *m = ctx;
    char serial[80];
    mbedtls_x509_serial_gets(serial, sizeof serial, &creds->chain.serial);
    or_log_info("identity updated id=%s serial=%s not_after=%lld", creds->spiffe_id, serial,
                (long long)creds->not_after);
    or_runtime_publish_creds(&m->rt, m->workers, m->nworkers, creds);
}

/* ---- start-up ---- */

static void log_listeners(const or_config *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const or_listener_config *l = &cfg->listeners[i];
        char addr[80];
        or_log_info("listener up name=%s mode=%s protocol=%s address=%s workers=%u", l->name,
                    l->mode == OR_MODE_INBOUND ? "inbound" : "outbound",
                    l->protocol == OR_PROTO_TCP ? "tcp" : "http",
                    or_addr_format((const struct sockaddr *)&l->listen.addr, addr, sizeof addr),
                    cfg->workers);
    }
}

static int bind_workers(or_main *m)
{
    m->workers = calloc(m->nworkers, sizeof *m->workers);
    if (!m->workers)
        return -1;
    for (unsigned i = 0; i < m->nworkers; i++) {
        char err[256];
        if (or_worker_bind(&m->workers[i], &m->rt, i, err, sizeof err) != 0) {
            or_log_error("%s", err);
            for (unsigned j = 0; j <= i; j++)
                or_worker_unbind(&m->workers[j]);
            return -1;
        }
    }
    return 0;
}

/* What the proxy touches once it runs (sandbox.h): the files it read at
 * start-up (re-read on a reload), the identity directories (watched and
 * re-read), the access log's directory (a new file after SIGUSR1), its
 * listening ports, and the upstream and DNS ports it connects to. */
static void proxy_rules(const or_config *cfg, or_sandbox_rules *r)
{
    for (size_t i = 0; i < cfg->nfiles; i++)
        or_sandbox_rules_read(r, cfg->files[i]);
    or_sandbox_rules_read_dir_of(r, cfg->identity.cert);
    or_sandbox_rules_read_dir_of(r, cfg->identity.key);
    or_sandbox_rules_read_dir_of(r, cfg->identity.bundle);
    /* /dev/stdout and /dev/stderr are duplicates of fds 1 and 2, and
     * /dev/null is allowed to every program: no rule for a /dev/ path. */
    if (cfg->access_log.enabled && strncmp(cfg->access_log.path, "/dev/", 5) != 0)
        or_sandbox_rules_write_dir_of(r, cfg->access_log.path);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        or_sandbox_rules_bind(r, cfg->listeners[i].listen.port);
        or_sandbox_rules_connect(r, cfg->listeners[i].upstream.port);
    }
    if (cfg->admin.enabled)
        or_sandbox_rules_bind(r, cfg->admin.listen.port);
    or_sandbox_rules_connect(r, 53);
}

/* After every socket is bound and before any worker runs. */
static int confine(or_main *m)
{
    const or_config *cfg = m->rt.cfg;
    or_sandbox_rules *rules = calloc(1, sizeof *rules);
    if (!rules)
        return -1;
    proxy_rules(cfg, rules);
    int rc = or_sandbox_confine(&cfg->security.settings, rules, &m->sandbox);
    free(rules);
    if (rc != 0)
        return -1;
    const char *files[] = {cfg->identity.cert, cfg->identity.key, cfg->identity.bundle};
    for (int i = 0; i < 3; i++)
        if (access(files[i], R_OK) != 0)
            or_log_warn("%s is not readable by uid %u (%s): certificate updates will be "
                        "refused; make the identity files readable by security.run_as",
                        files[i], (unsigned)m->sandbox.uid, strerror(errno));
    return 0;
}

/* Opened once confined, as the user the proxy runs as: its writer thread
 * is then under the same Landlock rules as the rest, and a file that user
 * cannot reopen after SIGUSR1 is a start-up error, not a surprise later. */
static int open_access_log(or_main *m)
{
    const or_config *cfg = m->rt.cfg;
    if (!cfg->access_log.enabled)
        return 0;
    char err[256];
    m->rt.access_log = or_access_log_open(cfg->access_log.path, cfg->access_log.format,
                                          m->nworkers, err, sizeof err);
    if (!m->rt.access_log) {
        or_log_error("access_log: %s", err);
        return -1;
    }
    return 0;
}

static int serve(or_main *m)
{
    m->loop = uv_default_loop();
    if (or_main_start_admin(m) != 0 || confine(m) != 0 || open_access_log(m) != 0) {
        or_admin_stop(m->admin);
        m->admin = NULL;
        for (unsigned i = 0; i < m->nworkers; i++)
            or_worker_unbind(&m->workers[i]);
        uv_run(m->loop, UV_RUN_NOWAIT);
        uv_loop_close(m->loop);
        return 1;
    }
    uv_async_init(m->loop, &m->worker_exited, on_worker_exited);
    m->worker_exited.data = m;
    m->rt.worker_exited = &m->worker_exited;
    watch_signals(m);
    atomic_store(&m->rt.workers_running, m->nworkers);
    unsigned started = 0;
    for (; started < m->nworkers; started++)
        if (or_worker_start(&m->workers[started]) != 0)
            break;
    if (started < m->nworkers) {
        or_log_error("cannot start worker %u", started);
        atomic_store(&m->rt.worker_failed, true);
        atomic_fetch_sub(&m->rt.workers_running, m->nworkers - started);
        for (unsigned i = 0; i < started; i++)
            or_worker_stop(&m->workers[i], 2);
        for (unsigned i = started; i < m->nworkers; i++)
            or_worker_unbind(&m->workers[i]);
        m->nworkers = started;
        uv_async_send(&m->worker_exited);
    } else {
        log_listeners(m->rt.cfg);
    }
    or_identity_watch_start(&m->identity, m->loop, m->rt.cfg, m->rt.creds, on_identity_update, m);
    uv_run(m->loop, UV_RUN_DEFAULT);
    for (unsigned i = 0; i < m->nworkers; i++)
        or_worker_join(&m->workers[i]);
    uv_loop_close(m->loop);
    return atomic_load(&m->rt.worker_failed) ? 1 : 0;
}

static int compile_policies(or_main *m)
{
    or_rbac *rbac = NULL;
    if (m->rt.cfg->rbac.enabled) {
        or_diag diag;
        or_diag_init(&diag);
        rbac = or_rbac_compile(m->rt.cfg, &diag);
        or_diag_free(&diag);
        if (!rbac)
            return -1;
    }
    m->rt.snap = or_snapshot_new(m->rt.cfg, NULL, rbac);
    return m->rt.snap ? 0 : -1;
}

static int run_proxy(const char *path)
{
    or_main m = {0};
    uv_mutex_init(&m.rt.creds_lock);
    or_diag diag;
    or_diag_init(&diag);
    or_config *cfg = load_config(path, &diag);
    or_diag_free(&diag);
    if (!cfg)
        return 1;
    m.rt.cfg = cfg;
    m.nworkers = cfg->workers;
    int status = 1;
    char err[256];
    m.rt.creds = load_identity(cfg);
    if (!m.rt.creds || compile_policies(&m) != 0)
        goto out;
    if (or_tls_tickets_init(&m.rt.tickets, OR_TICKET_LIFETIME_S, err, sizeof err) != 0) {
        or_log_error("%s", err);
        goto out_tickets;
    }
    if (bind_workers(&m) != 0)
        goto out_tickets;
    or_log_info("identity %s, trust domain %s", m.rt.creds->spiffe_id, cfg->trust_domain);
    status = serve(&m);
out_tickets:
    or_tls_tickets_free(&m.rt.tickets);
out:
    free(m.workers);
    or_access_log_close(m.rt.access_log);
    or_snapshot_drop(m.rt.snap);
    or_tls_creds_unref(m.rt.creds);
    or_config_free(cfg);
    uv_mutex_destroy(&m.rt.creds_lock);
    return status;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "explain") == 0)
        return or_explain_command(argc - 1, argv + 1);
    bool check = argc > 1 && strcmp(argv[1], "check") == 0;
    if (check) {
        argv[1] = argv[0];
        argc--;
        argv++;
    }
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:l:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'c': config = optarg; break;
        case 'l':
            if (strcmp(optarg, "debug") == 0) or_log_set_level(OR_LOG_DEBUG);
            else if (strcmp(optarg, "info") == 0) or_log_set_level(OR_LOG_INFO);
            else if (strcmp(optarg, "warn") == 0) or_log_set_level(OR_LOG_WARN);
            else if (strcmp(optarg, "error") == 0) or_log_set_level(OR_LOG_ERROR);
            else {
                fprintf(stderr, "outrider: unknown log level '%s' (debug, info, warn, error)\n", optarg);
                return 1;
            }
            break;
        case 'h': print_usage(stdout); return 0;
        case 'V': print_version(); return 0;
        default: print_usage(stderr); return 1;
        }
    }
    if (!config || optind != argc) {
        fprintf(stderr, "outrider: %s\n", config ? "unexpected argument" : "missing -c FILE");
        print_usage(stderr);
        return 1;
    }
    return check ? run_check(config) : run_proxy(config);
}
