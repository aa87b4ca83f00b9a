/*
 * Private keys of the proxy, outrider-ca and outrider-agent.
 *
 * All key generation, loading and serialisation of the project lives
 * here (the proxy's credentials load their key with or_keys_load too) so the rules are applied once: keys are created with mode 0600 (via
 * or_fs_write_atomic, whose temp file already has that mode), a key file
 * readable by group or others is refused, and every buffer that held key
 * bytes is zeroed before it is freed. The random generator is a CTR-DRBG
 * seeded from the system entropy source, owned by the caller.
 */
#include "outrider/keys.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mbedtls/ecp.h>
#include <mbedtls/error.h>
#include <mbedtls/platform_util.h>

#include "outrider/fsutil.h"

#define OR_KEYS_PEM_MAX 16000

int or_keys_rng_init(or_keys_rng *rng, const char *label, char *err, size_t err_len)
{
    mbedtls_entropy_init(&rng->entropy);
    mbedtls_ctr_drbg_init(&rng->drbg);
    int ret = mbedtls_ctr_drbg_seed(&rng->drbg, mbedtls_entropy_func, &rng->entropy,
                                    (const unsigned char *)label, strlen(label));
    if (ret != 0) {
        snprintf(err, err_len, "cannot seed the random generator (-0x%04x)", (unsigned)-ret);
        return -1;
    }
    return 0;
}

void or_keys_rng_free(or_keys_rng *rng)
{
    mbedtls_ctr_drbg_free(&rng->drbg);
    mbedtls_entropy_free(&rng->entropy);
}

int or_keys_random(or_keys_rng *rng, void *out, size_t len)
{
    return mbedtls_ctr_drbg_random(&rng->drbg, out, len) == 0 ? 0 : -1;
}

int or_keys_generate_ec(or_keys_rng *rng, mbedtls_pk_context *key, char *err, size_t err_len)
{
    mbedtls_pk_init(key);
    int ret = mbedtls_pk_setup(key, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY));
    if (ret == 0)
        ret = mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(*key),
                                  mbedtls_ctr_drbg_random, &rng->drbg);
    if (ret != 0) {
        snprintf(err, err_len, "cannot generate an EC P-256 key (-0x%04x)", (unsigned)-ret);
        mbedtls_pk_free(key);
        mbedtls_pk_init(key);
        return -1;
    }
    return 0;
}

int or_keys_load(const char *path, mbedtls_pk_context *key, char *err, size_t err_len)
{
    mbedtls_pk_init(key);
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, err_len, "cannot read key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "key file %s is not a regular file", path);
        return -1;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, err_len, "key file %s is accessible by group or others (mode %04o); "
                 "run chmod 600 on it", path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    int ret = mbedtls_pk_parse_keyfile(key, path, NULL);
    if (ret != 0) {
        char text[128];
        mbedtls_strerror(ret, text, sizeof text);
        snprintf(err, err_len, "cannot load private key %s: %s", path, text);
        return -1;
    }
    return 0;
}

int or_keys_write(const char *path, mbedtls_pk_context *key, char *err, size_t err_len)
{
    char *pem = calloc(1, OR_KEYS_PEM_MAX);
    int r = -1;
    if (!pem || mbedtls_pk_write_key_pem(key, (unsigned char *)pem, OR_KEYS_PEM_MAX) != 0)
        snprintf(err, err_len, "cannot serialise the private key for %s", path);
    else
        r = or_fs_write_atomic(path, pem, strlen(pem), 0600, err, err_len);
    if (pem) /* the PEM buffer is wiped before it is freed */
        mbedtls_platform_zeroize(pem, OR_KEYS_PEM_MAX);
    free(pem);
    return r;
}
