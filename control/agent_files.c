/*
 * The file contract of outrider-agent: versioned sets behind symlinks.
 *
 * A new set is written completely into its own directory before anything a
 * reader uses changes; then the "current" symlink is replaced by one rename,
 * which is the moment the new set becomes visible through the three stable
 * names (themselves symlinks through "current", created once). Generations
 * older than the previous one are removed afterwards. The status file is a
 * small JSON object replaced atomically.
 */
#include "outrider/agent.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outrider/fsutil.h"

static const char *const set_files[] = {"cert.pem", "key.pem", "bundle.pem"};

static int write_set(const char *dir, const char *cert_pem, mbedtls_pk_context *key,
                     const char *bundle_pem, char *err, size_t err_len)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/key.pem", dir);
    if (or_keys_write(path, key, err, err_len) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/cert.pem", dir);
    if (or_fs_write_atomic(path, cert_pem, strlen(cert_pem), 0644, err, err_len) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/bundle.pem", dir);
    return or_fs_write_atomic(path, bundle_pem, strlen(bundle_pem), 0644, err, err_len);
}

static void remove_generation(const char *outdir, const char *name)
{
    char path[4200];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s/%s", outdir, name, set_files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/%s", outdir, name);
    rmdir(path);
}

static void prune(const char *outdir, const char *keep1, const char *keep2)
{
    DIR *d = opendir(outdir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "gen-", 4) != 0 || strcmp(e->d_name, keep1) == 0 ||
            strcmp(e->d_name, keep2) == 0)
            continue;
        remove_generation(outdir, e->d_name);
    }
    closedir(d);
}

static int link_stable_names(const char *outdir, char *err, size_t err_len)
{
    for (size_t i = 0; i < 3; i++) {
        char path[4200], want[64], have[64];
        snprintf(path, sizeof path, "%s/%s", outdir, set_files[i]);
        snprintf(want, sizeof want, "current/%s", set_files[i]);
        ssize_t n = readlink(path, have, sizeof have - 1);
        if (n > 0 && (size_t)n == strlen(want) && memcmp(have, want, (size_t)n) == 0)
            continue;
        if (or_fs_symlink_atomic(want, path, err, err_len) != 0)
            return -1;
    }
    return 0;
}

int or_agent_files_install(const char *outdir, const char *serial, const char *cert_pem,
                           mbedtls_pk_context *key, const char *bundle_pem, char *err,
                           size_t err_len)
{
    char gen[64], dir[4200], current[4200], previous[256] = "";
    snprintf(gen, sizeof gen, "gen-%.16s", serial);
    snprintf(dir, sizeof dir, "%s/%s", outdir, gen);
    snprintf(current, sizeof current, "%s/current", outdir);
    if (or_fs_mkdirs(outdir, 0755, err, err_len) != 0)
        return -1;
    ssize_t n = readlink(current, previous, sizeof previous - 1);
    previous[n > 0 ? n : 0] = '\0';
    remove_generation(outdir, gen);
    if (mkdir(dir, 0755) != 0) {
        snprintf(err, err_len, "cannot create %s: %s", dir, strerror(errno));
        return -1;
    }
    if (write_set(dir, cert_pem, key, bundle_pem, err, err_len) != 0 ||
        or_fs_sync_dir(outdir, err, err_len) != 0 ||
        or_fs_symlink_atomic(gen, current, err, err_len) != 0 ||
        link_stable_names(outdir, err, err_len) != 0)
        return -1;
    prune(outdir, gen, previous);
    return 0;
}

static void format_time(time_t t, char out[32])
{
    if (t == 0) {
        snprintf(out, 32, "null");
        return;
    }
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "\"%Y-%m-%dT%H:%M:%SZ\"", &tm);
}

static void json_string(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    out[o++] = '"';
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 8 < cap; p++) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p;
        } else if (*p < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p);
        } else {
            out[o++] = (char)*p;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
}

int or_agent_status_write(const char *path, const char *spiffe_id, const or_agent_status *s,
                          char *err, size_t err_len)
{
    char last[32], until[32], next[32], id[OR_SPIFFE_ID_MAX * 2], error[600];
    char text[OR_SPIFFE_ID_MAX * 2 + 1200];
    format_time(s->last_renewal, last);
    format_time(s->not_after, until);
    format_time(s->next_attempt, next);
    json_string(spiffe_id, id, sizeof id);
    json_string(s->last_error, error, sizeof error);
    int n = snprintf(text, sizeof text,
                     "{\"spiffe_id\":%s,\"state\":\"%s\",\"serial\":\"%s\",\"last_renewal\":%s,"
                     "\"not_after\":%s,\"next_attempt\":%s,\"renewals\":%llu,"
                     "\"consecutive_failures\":%llu,\"total_failures\":%llu,\"last_error\":%s}\n",
                     id, s->state, s->serial, last, until, next,
                     (unsigned long long)s->renewals, (unsigned long long)s->failures,
                     (unsigned long long)s->total_failures, error);
    return or_fs_write_atomic(path, text, (size_t)n, 0644, err, err_len);
}
