/*
 * Watching the identity files.
 *
 * Writers such as outrider-agent, cert-manager's csi driver or SPIRE's
 * spiffe-helper replace files by renaming a new one over the old, which
 * ends an inotify watch on the file itself; so the directories are watched,
 * and each file is also polled slowly in case events are lost (some
 * filesystems send none). Events only arm a short settle timer: the three
 * files change one after the other, and the set is read once they are
 * quiet. Whether anything changed is decided from a digest of the three
 * files' bytes, so a touch or a rewrite with the same content is ignored.
 * A set that is refused (a key that does not match its certificate is the
 * usual case, while a writer is half-way) is tried again once a second
 * later, so a writer that finishes shortly after is picked up. Only regular
 * files are read: a FIFO put in place of one is refused, not waited on.
 */
#include "outrider/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "outrider/log.h"

#define OR_WATCH_SETTLE_MS 200
#define OR_WATCH_RETRY_MS 1000
#define OR_WATCH_POLL_MS 2000

/* Opens an identity file for reading if it is a regular file. A FIFO or a
 * device swapped in for one is refused without blocking the loop. */
static FILE *open_regular(const char *path, char *why, size_t why_len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(why, why_len, "%s is not a regular file", path);
        close(fd);
        return NULL;
    }
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
        close(fd);
    }
    return f;
}

static int digest_files(const or_config *cfg, unsigned char out[32], char *why, size_t why_len)
{
    const char *paths[] = {cfg->identity.cert, cfg->identity.key, cfg->identity.bundle};
    mbedtls_sha256_context ctx;
    mbedtls_sha256_init(&ctx);
    mbedtls_sha256_starts_ret(&ctx, 0);
    int status = 0;
    for (int i = 0; i < 3 && status == 0; i++) {
        FILE *f = open_regular(paths[i], why, why_len);
        if (!f) {
            status = -1;
            break;
        }
        unsigned char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof buf, f)) > 0)
            mbedtls_sha256_update_ret(&ctx, buf, n);
        fclose(f);
        mbedtls_sha256_update_ret(&ctx, (const unsigned char *)"\0", 1);
    }
    mbedtls_sha256_finish_ret(&ctx, out);
    mbedtls_sha256_free(&ctx);
    return status;
}

static void on_settle(uv_timer_t *t);

static void arm(or_identity_watch *w, uint64_t ms)
{
    uv_timer_start(&w->settle, on_settle, ms, 0);
}

static void refuse(or_identity_watch *w, const char *reason)
{
    w->refusals++;
    or_log_warn("identity update refused, keeping the current certificate: %s", reason);
}

static void on_settle(uv_timer_t *t)
{
    or_identity_watch *w = t->data;
    unsigned char digest[32];
    char why[512];
    if (digest_files(w->cfg, digest, why, sizeof why) != 0) {
        refuse(w, why);
        return;
    }
    if (memcmp(digest, w->current_digest, sizeof digest) == 0 ||
        memcmp(digest, w->refused_digest, sizeof digest) == 0)
        return;
    char err[512];
    or_tls_creds *creds = or_tls_creds_load(w->cfg->identity.cert, w->cfg->identity.key,
                                            w->cfg->identity.bundle, w->cfg->trust_domain, err,
                                            sizeof err);
    if (creds && strcmp(creds->spiffe_id, w->expected_id) != 0) {
        snprintf(err, sizeof err, "the new certificate is for %s, not %s", creds->spiffe_id,
                 w->expected_id);
        or_tls_creds_unref(creds);
        creds = NULL;
    }
    if (!creds) {
        refuse(w, err);
        memcpy(w->refused_digest, digest, sizeof digest); /* until the files change again */
        arm(w, OR_WATCH_RETRY_MS);
        return;
    }
    memcpy(w->current_digest, digest, sizeof digest);
    w->updates++;
    w->on_update(creds, w->ctx);
    or_tls_creds_unref(creds);
}

static void on_event(uv_fs_event_t *e, const char *name, int events, int status)
{
    (void)name;
    (void)events;
    (void)status;
    arm(e->data, OR_WATCH_SETTLE_MS);
}

static void on_poll(uv_fs_poll_t *p, int status, const uv_stat_t *prev, const uv_stat_t *curr)
{
    (void)status;
    (void)prev;
    (void)curr;
    arm(p->data, OR_WATCH_SETTLE_MS);
}

static void watch_dir_of(or_identity_watch *w, const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    const char *dir = dirname(copy);
    for (size_t i = 0; i < w->nevents; i++) {
        char other[4096];
        size_t len = sizeof other;
        if (uv_fs_event_getpath(&w->events[i], other, &len) == 0 && strcmp(other, dir) == 0)
            return;
    }
    uv_fs_event_t *e = &w->events[w->nevents];
    uv_fs_event_init(w->loop, e);
    e->data = w;
    /* A handle that did not start stays in the table (inactive) and is
     * closed with the others, so its slot is never reused while a close is
     * pending. */
    w->nevents++;
    if (uv_fs_event_start(e, on_event, dir, 0) != 0)
        or_log_warn("cannot watch %s for identity updates; polling only", dir);
}

int or_identity_watch_start(or_identity_watch *w, uv_loop_t *loop, const or_config *cfg,
                            const or_tls_creds *current, or_identity_update_cb cb, void *ctx)
{
    memset(w, 0, sizeof *w);
    w->loop = loop;
    w->cfg = cfg;
    w->on_update = cb;
    w->ctx = ctx;
    w->expected_id = strdup(current->spiffe_id);
    if (!w->expected_id)
        return UV_ENOMEM;
    char why[512];
    digest_files(cfg, w->current_digest, why, sizeof why);
    uv_timer_init(loop, &w->settle);
    w->settle.data = w;
    const char *paths[] = {cfg->identity.cert, cfg->identity.key, cfg->identity.bundle};
    for (int i = 0; i < 3; i++) {
        watch_dir_of(w, paths[i]);
        uv_fs_poll_init(loop, &w->polls[i]);
        w->polls[i].data = w;
        uv_fs_poll_start(&w->polls[i], on_poll, paths[i], OR_WATCH_POLL_MS);
    }
    return 0;
}

void or_identity_watch_stop(or_identity_watch *w)
{
    for (size_t i = 0; i < w->nevents; i++)
        uv_close((uv_handle_t *)&w->events[i], NULL);
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&w->polls[i], NULL);
    uv_close((uv_handle_t *)&w->settle, NULL);
    free(w->expected_id);
    w->expected_id = NULL;
}
