/*
 * fuzz_files: the scratch directory of the targets that load a config.
 *
 * The config loader reads files by path, so those targets write each input
 * to a file in a directory made once per process (mkdtemp, at the first
 * input) and removed at exit. The directory holds empty identity files
 * under the names the seeds use (the loader only checks that they can be
 * opened) and a small policies file, so a seed loads as far as it can.
 *
 * Before an input is written, every "dev/", "proc/" and "sys/" in it is
 * defused (the slash becomes '_'): a config may name any file, and reading
 * a terminal or a pipe would stop the run.
 */
#ifndef OUTRIDER_FUZZ_FILES_H
#define OUTRIDER_FUZZ_FILES_H

#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_check.h"

static char fuzz_dir[PATH_MAX]; /* the scratch directory, once made */

static const char *const fuzz_dirs[] = {"identity", "pki", "pki/shop-payments",
                                        "pki/vm-billing-gateway"};
static const char *const fuzz_identity[] = {
    "cert.pem", "key.pem", "bundle.pem",
    "identity/cert.pem", "identity/key.pem", "identity/bundle.pem",
    "pki/shop-payments/cert.pem", "pki/shop-payments/key.pem", "pki/shop-payments/bundle.pem",
    "pki/vm-billing-gateway/cert.pem", "pki/vm-billing-gateway/key.pem",
    "pki/vm-billing-gateway/bundle.pem"};
static const char *const fuzz_written[] = {"config.yaml", "policies.yaml"};

static const char fuzz_policies[] =
    "policies:\n"
    "  - name: frontend-reads\n"
    "    service: payments\n"
    "    action: allow\n"
    "    rules:\n"
    "      - from:\n"
    "          - principals: [\"spiffe://cluster.local/ns/web/sa/frontend\"]\n"
    "        to:\n"
    "          - methods: [GET, HEAD]\n"
    "            paths: [\"/api/*\"]\n";

static inline void fuzz_path(char *out, size_t out_len, const char *name)
{
    int n = snprintf(out, out_len, "%s/%s", fuzz_dir, name);
    FUZZ_REQUIRE(n > 0 && (size_t)n < out_len);
}

static inline void fuzz_write_file(const char *name, const void *data, size_t len)
{
    char path[PATH_MAX + 64];
    fuzz_path(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    FUZZ_REQUIRE(f != NULL);
    FUZZ_REQUIRE(len == 0 || fwrite(data, 1, len, f) == len);
    FUZZ_REQUIRE(fclose(f) == 0);
}

/* Writes an input as file `name`, with device and kernel paths defused. */
static inline void fuzz_write_input(const char *name, const uint8_t *data, size_t len)
{
    static const char *const defused[] = {"dev/", "proc/", "sys/"};
    char *copy = malloc(len + 1);
    FUZZ_REQUIRE(copy != NULL);
    if (len > 0)
        memcpy(copy, data, len);
    for (size_t d = 0; d < sizeof defused / sizeof defused[0]; d++) {
        size_t n = strlen(defused[d]);
        for (size_t i = 0; i + n <= len; i++)
            if (memcmp(copy + i, defused[d], n) == 0)
                copy[i + n - 1] = '_';
    }
    fuzz_write_file(name, copy, len);
    free(copy);
}

static inline void fuzz_remove_dir(void)
{
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof fuzz_written / sizeof fuzz_written[0]; i++) {
        fuzz_path(path, sizeof path, fuzz_written[i]);
        unlink(path);
    }
    for (size_t i = 0; i < sizeof fuzz_identity / sizeof fuzz_identity[0]; i++) {
        fuzz_path(path, sizeof path, fuzz_identity[i]);
        unlink(path);
    }
    for (size_t i = sizeof fuzz_dirs / sizeof fuzz_dirs[0]; i-- > 0;) {
        fuzz_path(path, sizeof path, fuzz_dirs[i]);
        rmdir(path);
    }
    rmdir(fuzz_dir);
}

/* The scratch directory, made and filled at the first call. */
static inline const char *fuzz_scratch_dir(void)
{
    if (fuzz_dir[0] != '\0')
        return fuzz_dir;
    const char *tmp = getenv("TMPDIR");
    int n = snprintf(fuzz_dir, sizeof fuzz_dir, "%s/outrider-fuzz-XXXXXX",
                     tmp && tmp[0] ? tmp : "/tmp");
    FUZZ_REQUIRE(n > 0 && (size_t)n < sizeof fuzz_dir);
    FUZZ_REQUIRE(mkdtemp(fuzz_dir) != NULL);
    atexit(fuzz_remove_dir);
    char path[PATH_MAX + 64];
    for (size_t i = 0; i < sizeof fuzz_dirs / sizeof fuzz_dirs[0]; i++) {
        fuzz_path(path, sizeof path, fuzz_dirs[i]);
        FUZZ_REQUIRE(mkdir(path, 0700) == 0);
    }
    for (size_t i = 0; i < sizeof fuzz_identity / sizeof fuzz_identity[0]; i++)
        fuzz_write_file(fuzz_identity[i], "", 0);
    fuzz_write_file("policies.yaml", fuzz_policies, sizeof fuzz_policies - 1);
    return fuzz_dir;
}

#endif
