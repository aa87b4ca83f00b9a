/*
 * The key loader (lib/keys.c), the one the proxy's credentials and the
 * control plane share: a 0600 key loads; a key readable by group or others
 * is refused with the chmod advice; a missing file, a directory and a file
 * that is not PEM are refused, each with a message naming the file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "outrider/keys.h"

static char dir[256];

static void path_of(char *out, size_t len, const char *name)
{
    snprintf(out, len, "%s/%s", dir, name);
}

/* Loads `path`; expects success, or a failure whose message holds `want`. */
static void expect_load(const char *path, const char *want)
{
    mbedtls_pk_context key;
    char err[512] = "";
    int r = or_keys_load(path, &key, err, sizeof err);
    mbedtls_pk_free(&key);
    if (!want) {
        if (r != 0)
            fail_msg("%s: %s", path, err);
        return;
    }
    assert_int_equal(r, -1);
    if (!strstr(err, want) || !strstr(err, path))
        fail_msg("message for %s lacks '%s': %s", path, want, err);
}

static void test_modes(void **state)
{
    (void)state;
    or_keys_rng rng;
    mbedtls_pk_context key;
    char err[256], path[512];
    assert_int_equal(or_keys_rng_init(&rng, "test-keys", err, sizeof err), 0);
    assert_int_equal(or_keys_generate_ec(&rng, &key, err, sizeof err), 0);
    path_of(path, sizeof path, "key.pem");
    assert_int_equal(or_keys_write(path, &key, err, sizeof err), 0);
    mbedtls_pk_free(&key);
    or_keys_rng_free(&rng);
    expect_load(path, NULL);
    assert_int_equal(chmod(path, 0644), 0);
    expect_load(path, "accessible by group or others (mode 0644); run chmod 600 on it");
    assert_int_equal(chmod(path, 0640), 0);
    expect_load(path, "mode 0640");
    assert_int_equal(chmod(path, 0600), 0);
    expect_load(path, NULL);
}

static void test_not_a_key(void **state)
{
    (void)state;
    char path[512];
    path_of(path, sizeof path, "missing.pem");
    expect_load(path, "cannot read key file");
    path_of(path, sizeof path, "sub");
    assert_int_equal(mkdir(path, 0700), 0);
    expect_load(path, "is not a regular file");
    path_of(path, sizeof path, "garbage.pem");
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("-----BEGIN EC PRIVATE KEY-----\nnot base64 at all\n-----END EC PRIVATE KEY-----\n", f);
    fclose(f);
    assert_int_equal(chmod(path, 0600), 0);
    expect_load(path, "cannot load private key");
}

static int setup(void **state)
{
    (void)state;
    const char *tmp = getenv("OUTRIDER_TEST_TMP");
    snprintf(dir, sizeof dir, "%s/keys-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (tmp && *tmp)
        mkdir(tmp, 0700);
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modes),
        cmocka_unit_test(test_not_a_key),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
