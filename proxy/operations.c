/*
 * Operating a running proxy: the admin endpoints and reload.
 *
 * Everything here runs on the main loop. Reads (/ready, /stats, /certs,
 * /config, /server_info) look at the runtime and sum the workers' counters; mutations go
 * through the same paths as signals (or_main_stop for /drain and
 * /quitquitquit, or_main_reload for /reload and SIGHUP).
 *
 * Reload validates the whole file as `outrider check` does, then compares
 * the new config with the running one: listeners, identity, workers, admin
 * and the access log are bound into sockets, threads and files at start, so
 * a change there is refused and nothing is applied. Otherwise the new
 * timeouts, limits and compiled policies are published as one snapshot: new
 * connections and new requests use them, work already under way keeps the
 * snapshot it started with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>
#include <mbedtls/x509.h>

#include "main.h"
#include "outrider/access_log.h"
#include "outrider/config.h"
#include "outrider/log.h"
#include "outrider/metrics.h"
#include "outrider/rbac.h"
#include "outrider/sandbox.h"
#include "outrider/version.h"

/* ---- /config ---- */

/* Appends `before` (the punctuation and key) and then `value` as JSON. */
static void field(or_buf *t, const char *before, const char *value)
{
    or_buf_append_str(t, before);
    or_buf_json(t, value);
}

static void render_listeners(or_buf *t, const or_config *cfg)
{
    or_buf_printf(t, "\"listeners\":[");
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const or_listener_config *l = &cfg->listeners[i];
        char listen[80];
        field(t, i ? ",{\"name\":" : "{\"name\":", l->name);
        or_buf_printf(t, ",\"mode\":\"%s\",\"protocol\":\"%s\",\"listen\":",
                      l->mode == OR_MODE_INBOUND ? "inbound" : "outbound",
                      l->protocol == OR_PROTO_TCP ? "tcp" : "http");
        or_buf_json(t, or_addr_format((const struct sockaddr *)&l->listen.addr, listen, sizeof listen));
        field(t, ",\"upstream\":", l->upstream_text);
        field(t, ",\"peer_identity\":", l->peer_identity);
        if (l->http2)
            or_buf_printf(t, ",\"http2\":true");
        if (l->upstream_protocol != OR_UPSTREAM_AUTO)
            or_buf_printf(t, ",\"upstream_protocol\":\"%s\"",
                          l->upstream_protocol == OR_UPSTREAM_HTTP1 ? "http1" : "http2");
        if (l->protocol == OR_PROTO_HTTP && !l->multiplex)
            or_buf_printf(t, ",\"multiplex\":false");
        or_buf_printf(t, "}");
    }
    or_buf_printf(t, "]");
}

/* What a reload may not change: it is bound into sockets, threads and files. */
static void render_fixed(or_buf *t, const or_config *cfg)
{
    field(t, "\"service\":", cfg->service);
    field(t, ",\"trust_domain\":", cfg->trust_domain);
    field(t, ",\"identity\":{\"cert\":", cfg->identity.cert);
    field(t, ",\"key\":", cfg->identity.key);
    field(t, ",\"bundle\":", cfg->identity.bundle);
    or_buf_printf(t, "},\"workers\":%u,", cfg->workers);
    render_listeners(t, cfg);
    or_buf_printf(t, ",\"access_log\":");
    if (cfg->access_log.enabled) {
        field(t, "{\"path\":", cfg->access_log.path);
        or_buf_printf(t, ",\"format\":\"%s\"}",
                       cfg->access_log.format == OR_ACCESS_LOG_JSON ? "json" : "text");
    } else {
        or_buf_printf(t, "null");
    }
    const or_sandbox_settings *sb = &cfg->security.settings;
    or_buf_printf(t, ",\"security\":{\"sandbox\":%s,\"run_as\":", sb->enabled ? "true" : "false");
    or_buf_json(t, sb->run_as ? sb->run_as : OR_SANDBOX_DEFAULT_RUN_AS);
    or_buf_printf(t, ",\"allow_root\":%s,\"seccomp\":\"%s\"}", sb->allow_root ? "true" : "false",
                  sb->seccomp == OR_SECCOMP_LOG ? "log" : "enforce");
}

/* Timeouts, limits and the http section: a reload may change them. */
static void render_tunable(or_buf *t, const or_config *cfg)
{
    or_buf_printf(t,
                   ",\"timeouts_ms\":{\"connect\":%llu,\"handshake\":%llu,\"idle\":%llu,"
                   "\"request_headers\":%llu,\"drain\":%llu,\"keepalive\":%llu},"
                   "\"limits\":{\"max_connections\":%llu,"
                   "\"max_request_headers\":%llu},\"http\":{\"escaped_slashes\":\"%s\"}",
                   (unsigned long long)cfg->timeouts.connect_ms,
                   (unsigned long long)cfg->timeouts.handshake_ms,
                   (unsigned long long)cfg->timeouts.idle_ms,
                   (unsigned long long)cfg->timeouts.request_headers_ms,
                   (unsigned long long)cfg->timeouts.drain_ms,
                   (unsigned long long)cfg->timeouts.keepalive_ms,
                   (unsigned long long)cfg->limits.max_connections,
                   (unsigned long long)cfg->limits.max_request_headers,
                   cfg->http.escaped_slashes == OR_SLASHES_DECODE ? "decode" : "reject");
}

static void on_config(void *ctx, or_buf *out)
{
    or_main *m = ctx;
    field(out, "{\"path\":", m->rt.cfg->path);
    or_buf_printf(out, ",");
    render_fixed(out, m->rt.cfg);
    uv_mutex_lock(&m->rt.creds_lock);
    render_tunable(out, m->rt.snap->cfg);
    const or_rbac *rbac = m->rt.snap->rbac;
    or_buf_printf(out, ",\"rbac\":");
    if (rbac)
        or_buf_printf(out, "{\"policies_in_force\":%zu}", or_rbac_policy_count(rbac));
    else
        or_buf_printf(out, "null");
    uv_mutex_unlock(&m->rt.creds_lock);
    or_buf_printf(out, "}\n");
}

/* ---- /server_info ---- */

static void on_server_info(void *ctx, or_buf *out)
{
    or_main *m = ctx;
    or_buf_printf(out, "{\"version\":\"%s\",\"pid\":%ld,\"workers\":%u,\"sandbox\":",
                  OUTRIDER_VERSION, (long)getpid(), m->nworkers);
    or_sandbox_json(&m->sandbox, out);
    or_buf_printf(out, "}\n");
}

/* ---- /certs ---- */

static void render_time(or_buf *t, const char *before, const mbedtls_x509_time *x)
{
    or_buf_printf(t, "%s\"%04d-%02d-%02dT%02d:%02d:%02dZ\"", before, x->year, x->mon, x->day,
                  x->hour, x->min, x->sec);
}

static void on_certs(void *ctx, or_buf *out)
{
    or_main *m = ctx;
    uv_mutex_lock(&m->rt.creds_lock);
    or_tls_creds *c = or_tls_creds_ref(m->rt.creds);
    uv_mutex_unlock(&m->rt.creds_lock);
    char serial[128];
    mbedtls_x509_serial_gets(serial, sizeof serial, &c->chain.serial);
    field(out, "{\"spiffe_id\":", c->spiffe_id);
    field(out, ",\"serial\":", serial);
    render_time(out, ",\"not_before\":", &c->chain.valid_from);
    render_time(out, ",\"not_after\":", &c->chain.valid_to);
    or_buf_printf(out, ",\"seconds_left\":%lld,\"bundle_roots\":[",
                   (long long)(c->not_after - time(NULL)));
    int i = 0;
    for (const mbedtls_x509_crt *r = &c->bundle; r && r->raw.len > 0; r = r->next, i++) {
        char subject[256];
        mbedtls_x509_dn_gets(subject, sizeof subject, &r->subject);
        field(out, i ? ",{\"subject\":" : "{\"subject\":", subject);
        render_time(out, ",\"not_after\":", &r->valid_to);
        or_buf_printf(out, "}");
    }
    or_buf_printf(out, "]}\n");
    or_tls_creds_unref(c);
}

/* ---- /ready and /stats ---- */

static bool on_ready(void *ctx, or_buf *why)
{
    or_main *m = ctx;
    uv_mutex_lock(&m->rt.creds_lock);
    time_t not_after = m->rt.creds->not_after;
    uv_mutex_unlock(&m->rt.creds_lock);
    if (m->stop_level > 0)
        or_buf_printf(why, "draining\n");
    else if (atomic_load(&m->rt.workers_running) < m->nworkers)
        or_buf_printf(why, "a worker is not running\n");
    else if (not_after <= time(NULL))
        or_buf_printf(why, "the certificate has expired\n");
    else
        or_buf_printf(why, "ready\n");
    return why->len == 6 && memcmp(why->data, "ready\n", 6) == 0;
}

/* The labelled series of every listener, summed over the workers. */
static void render_listener_metrics(or_main *m, or_buf *out, unsigned n)
{
    size_t nl = m->rt.cfg->nlisteners;
    or_listener_metrics **all = calloc((size_t)n * nl + 1, sizeof *all);
    or_metrics_worker_view *views = calloc(n + 1, sizeof *views);
    if (all && views) {
        for (unsigned i = 0; i < n; i++) {
            for (size_t j = 0; j < nl && m->workers[i].listeners; j++)
                all[i * nl + j] = m->workers[i].listeners[j].metrics;
            views[i].listeners = all + i * nl;
        }
        or_metrics_render(out, m->rt.cfg, views, n);
    }
    free(all);
    free(views);
}

/* One gauge per root of the trust bundle in use, labelled with its subject
 * and the first 16 hex digits of the SHA-256 of its DER. */
static void render_bundle_roots(or_buf *out, const or_tls_creds *c)
{
    or_buf_printf(out, "# HELP outrider_bundle_root_expiry_timestamp_seconds When each root of "
                       "the trust bundle in use expires (Unix time).\n"
                       "# TYPE outrider_bundle_root_expiry_timestamp_seconds gauge\n");
    for (const mbedtls_x509_crt *r = &c->bundle; r && r->raw.len > 0; r = r->next) {
        char subject[256];
        unsigned char digest[32];
        char fp[17];
        if (mbedtls_x509_dn_gets(subject, sizeof subject, &r->subject) < 0)
            subject[0] = '\0';
        mbedtls_sha256_ret(r->raw.p, r->raw.len, digest, 0);
        for (int i = 0; i < 8; i++)
            snprintf(fp + 2 * i, 3, "%02x", digest[i]);
        or_metrics_label_pair(out, "outrider_bundle_root_expiry_timestamp_seconds{", "subject",
                              subject);
        or_metrics_label_pair(out, ",", "sha256", fp);
        or_buf_printf(out, "} %lld\n", (long long)or_x509_time_epoch(&r->valid_to));
    }
}

static void on_stats(void *ctx, or_buf *out)
{
    or_main *m = ctx;
    or_stats *per_worker[64] = {0};
    unsigned n = m->nworkers < 64 ? m->nworkers : 64;
    for (unsigned i = 0; i < n; i++)
        per_worker[i] = &m->workers[i].stats;
    or_stats_render(out, per_worker, n);
    render_listener_metrics(m, out, n);
    or_stats_metric(out, "gauge", "outrider_connections_active", "Open downstream connections.",
                    atomic_load(&m->rt.connections));
    uv_mutex_lock(&m->rt.creds_lock);
    or_tls_creds *creds = or_tls_creds_ref(m->rt.creds);
    or_snapshot *set = or_snapshot_hold(m->rt.snap);
    uv_mutex_unlock(&m->rt.creds_lock);
    or_stats_metric(out, "gauge", "outrider_certificate_expiry_timestamp_seconds",
                    "When the certificate in use for new connections expires (Unix time).",
                    (uint64_t)creds->not_after);
    render_bundle_roots(out, creds);
    or_tls_creds_unref(creds);
    or_stats_metric(out, "counter", "outrider_identity_updates_total",
                    "Identity file sets applied.", m->identity.updates);
    or_stats_metric(out, "counter", "outrider_identity_refused_total",
                    "Identity file sets refused.", m->identity.refusals);
    or_buf_printf(out, "# HELP outrider_reloads_total Config reloads, by result.\n"
                       "# TYPE outrider_reloads_total counter\n"
                       "outrider_reloads_total{result=\"ok\"} %llu\n"
                       "outrider_reloads_total{result=\"failed\"} %llu\n",
                  (unsigned long long)m->reloads_ok, (unsigned long long)m->reloads_failed);
    or_buf_printf(out, "# HELP outrider_rbac_policy_decisions_total Requests and connections a "
                       "policy decided (allow, deny) or reported (dry_run, audit), since the "
                       "policies were loaded.\n# TYPE outrider_rbac_policy_decisions_total counter\n");
    static const char *const kinds[] = {"allow", "deny", "dry_run", "audit"};
    for (size_t i = 0; i < set->npolicies; i++) {
        for (int k = 0; k < 4; k++) {
            field(out, "outrider_rbac_policy_decisions_total{policy=",
                  or_rbac_policy_name(set->rbac, i));
            or_buf_printf(out, ",decision=\"%s\"} %llu\n", kinds[k],
                          (unsigned long long)atomic_load_explicit(&set->hits[i][k],
                                                                   memory_order_relaxed));
        }
    }
    or_snapshot_drop(set);
    or_sandbox_metric(&m->sandbox, out);
    or_stats_metric(out, "counter", "outrider_access_log_dropped_total",
                    "Access-log lines dropped because a worker's buffer was full.",
                    m->rt.access_log ? or_access_log_dropped(m->rt.access_log) : 0);
}

/* ---- reload ---- */

static int refuse_reload(or_main *m, or_buf *out, const char *what)
{
    m->reloads_failed++;
    or_log_warn("reload refused, the running config stays: %s", what);
    or_buf_printf(out, "reload refused, the running config stays: %s\n", what);
    return 409;
}

/* Under Landlock the proxy may read only the files it read at start-up. */
static const char *file_outside_sandbox(const or_main *m, const or_config *cfg)
{
    if (!m->sandbox.landlock_applied)
        return NULL;
    for (size_t i = 0; i < cfg->nfiles; i++) {
        bool known = false;
        for (size_t j = 0; j < m->rt.cfg->nfiles && !known; j++)
            known = strcmp(cfg->files[i], m->rt.cfg->files[j]) == 0;
        if (!known)
            return cfg->files[i];
    }
    return NULL;
}

int or_main_reload(or_main *m, or_buf *out)
{
    or_diag diag;
    or_diag_init(&diag);
    or_config *cfg = or_config_load(m->rt.cfg->path, &diag);
    or_rbac *rbac = cfg && cfg->rbac.enabled ? or_rbac_compile(cfg, &diag) : NULL;
    int status;
    if (!cfg || diag.errors > 0) {
        for (size_t i = 0; i < diag.count; i++)
            or_buf_printf(out, "%s\n", diag.entries[i].text);
        status = refuse_reload(m, out, m->sandbox.landlock_applied
                                           ? "the file has errors (listed above); under the "
                                             "sandbox (Landlock) the proxy reads only the files "
                                             "it started with, so a new file needs a restart"
                                           : "the file has errors (listed above)");
    } else {
        or_buf before = {0}, after = {0};
        render_fixed(&before, m->rt.cfg);
        render_fixed(&after, cfg);
        bool same = before.len == after.len && memcmp(before.data, after.data, before.len) == 0;
        or_buf_free(&before);
        or_buf_free(&after);
        const char *outside = file_outside_sandbox(m, cfg);
        if (outside) {
            char why[512];
            snprintf(why, sizeof why, "%s was not read at start-up and the sandbox (Landlock) "
                     "lets the proxy read only the files it started with; restart the proxy "
                     "to use it", outside);
            status = refuse_reload(m, out, why);
        } else if (!same) {
            status = refuse_reload(m, out, "listeners, identity, workers, admin, access_log "
                                           "and security need a restart; only rbac, timeouts, limits and "
                                           "http reload. GET /config shows what is running");
        } else {
            or_snapshot *set = or_snapshot_new(cfg, cfg, rbac);
            cfg = NULL;
            rbac = NULL;
            status = set ? 200 : refuse_reload(m, out, "out of memory");
            if (set) {
                size_t n = set->rbac ? or_rbac_policy_count(set->rbac) : 0;
                or_runtime_publish_snapshot(&m->rt, m->workers, m->nworkers, set);
                m->reloads_ok++;
                or_log_info("reload applied: %zu policies in force", n);
                or_buf_printf(out, "reloaded: %zu policies in force\n", n);
            }
        }
    }
    or_rbac_free(rbac);
    or_config_free(cfg);
    or_diag_free(&diag);
    return status;
}

/* ---- wiring ---- */

static int on_reload(void *ctx, or_buf *out) { return or_main_reload(ctx, out); }
static void on_drain(void *ctx) { or_main_stop(ctx, 1, "POST /drain"); }
static void on_quit(void *ctx) { or_main_stop(ctx, 2, "POST /quitquitquit"); }

int or_main_start_admin(or_main *m)
{
    const or_config *cfg = m->rt.cfg;
    if (!cfg->admin.enabled)
        return 0;
    or_admin_ops ops = {
        .ctx = m,
        .ready = on_ready,
        .stats = on_stats,
        .certs = on_certs,
        .config = on_config,
        .server_info = on_server_info,
        .reload = on_reload,
        .drain = on_drain,
        .quit = on_quit,
    };
    char err[256];
    m->admin = or_admin_start(m->loop, &cfg->admin.listen, &ops, err, sizeof err);
    if (!m->admin) {
        or_log_error("%s", err);
        return -1;
    }
    char addr[80];
    or_log_info("admin up address=%s",
                or_addr_format((const struct sockaddr *)&cfg->admin.listen.addr, addr, sizeof addr));
    return 0;
}
