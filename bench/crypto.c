/*
 * Single-core mbedTLS cost figures: AEAD throughput and public-key
 * operations, measured the way a TLS endpoint uses them.
 *
 * AEAD: records of 16 KiB with a 13-byte additional-data header, as TLS 1.2
 * does, encrypted in place of a fresh output buffer. Public-key: each
 * operation is repeated for RUN_NS (at least MIN_OPS times) and reported as
 * operations per second; "ecdh" counts one key generation plus one shared
 * secret, the work one side of an ECDHE exchange does. ECDSA goes through
 * mbedtls_pk_sign/mbedtls_pk_verify, as the TLS stack calls it: mbedTLS 2.28
 * then works on a fresh copy of the curve group each time, so the fixed-base
 * table of the generator is rebuilt for every operation (a bare
 * mbedtls_ecdsa_context would keep it, and so time less than a handshake
 * pays).
 */
#include "outrider/bench_crypto.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbedtls/chachapoly.h>
#include <mbedtls/ecdh.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/gcm.h>

#include "outrider/keys.h"

#define RECORD 16384
#define RUN_NS 300000000ull
#define MIN_OPS 20

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct {
    mbedtls_chachapoly_context chacha;
    mbedtls_gcm_context gcm;
    unsigned char *in, *out;
} aead_state;

static int seal_chacha(aead_state *a, unsigned char nonce[12], const unsigned char aad[13])
{
    unsigned char tag[16];
    return mbedtls_chachapoly_encrypt_and_tag(&a->chacha, RECORD, nonce, aad, 13, a->in, a->out,
                                              tag);
}

static int seal_gcm(aead_state *a, unsigned char nonce[12], const unsigned char aad[13])
{
    unsigned char tag[16];
    return mbedtls_gcm_crypt_and_tag(&a->gcm, MBEDTLS_GCM_ENCRYPT, RECORD, nonce, 12, aad, 13,
                                     a->in, a->out, 16, tag);
}

static double aead_mbps(aead_state *a, int (*seal)(aead_state *, unsigned char *,
                                                   const unsigned char *),
                        uint64_t bytes)
{
    unsigned char nonce[12] = {0}, aad[13] = {0};
    uint64_t records = (bytes + RECORD - 1) / RECORD;
    uint64_t t = now_ns();
    for (uint64_t i = 0; i < records; i++) {
        memcpy(nonce + 4, &i, sizeof i);
        if (seal(a, nonce, aad) != 0)
            return -1;
    }
    double s = (double)(now_ns() - t) / 1e9;
    return (double)(records * RECORD) / s / 1e6;
}

int or_bench_cipher(FILE *out, uint64_t bytes, bool json)
{
    aead_state a;
    unsigned char key[32];
    memset(key, 0x5a, sizeof key);
    mbedtls_chachapoly_init(&a.chacha);
    mbedtls_gcm_init(&a.gcm);
    a.in = calloc(1, RECORD);
    a.out = malloc(RECORD);
    double chacha = -1, gcm = -1;
    if (a.in && a.out && mbedtls_chachapoly_setkey(&a.chacha, key) == 0 &&
        mbedtls_gcm_setkey(&a.gcm, MBEDTLS_CIPHER_ID_AES, key, 128) == 0) {
        chacha = aead_mbps(&a, seal_chacha, bytes);
        gcm = aead_mbps(&a, seal_gcm, bytes);
    }
    mbedtls_chachapoly_free(&a.chacha);
    mbedtls_gcm_free(&a.gcm);
    free(a.in);
    free(a.out);
    if (chacha < 0 || gcm < 0) {
        fprintf(stderr, "outrider-bench: cipher: mbedTLS AEAD setup or encryption failed\n");
        return -1;
    }
    if (json)
        fprintf(out,
                "{\"mode\":\"cipher\",\"bytes\":%llu,\"record\":%d,"
                "\"chacha20_poly1305_mb_per_s\":%.1f,\"aes_128_gcm_mb_per_s\":%.1f}\n",
                (unsigned long long)bytes, RECORD, chacha, gcm);
    else
        fprintf(out,
                "mbedTLS single core, %llu bytes in %d-byte records\n"
                "chacha20-poly1305  %8.1f MB/s\naes-128-gcm        %8.1f MB/s\n",
                (unsigned long long)bytes, RECORD, chacha, gcm);
    return 0;
}

/* ---- public-key operations ---- */

typedef struct {
    or_keys_rng rng;
    mbedtls_pk_context key;         /* EC P-256 */
    unsigned char hash[32];
    unsigned char sig[MBEDTLS_ECDSA_MAX_LEN];
    size_t sig_len;
    mbedtls_ecp_group_id curve; /* for ecdh */
} pk_state;

static int op_sign(pk_state *p)
{
    return mbedtls_pk_sign(&p->key, MBEDTLS_MD_SHA256, p->hash, 32, p->sig, &p->sig_len,
                           mbedtls_ctr_drbg_random, &p->rng.drbg);
}

static int op_verify(pk_state *p)
{
    return mbedtls_pk_verify(&p->key, MBEDTLS_MD_SHA256, p->hash, 32, p->sig, p->sig_len);
}

static int op_ecdh(pk_state *p)
{
    mbedtls_ecp_group grp;
    mbedtls_mpi d, z;
    mbedtls_ecp_point q;
    mbedtls_ecp_group_init(&grp);
    mbedtls_mpi_init(&d);
    mbedtls_mpi_init(&z);
    mbedtls_ecp_point_init(&q);
    int ret = mbedtls_ecp_group_load(&grp, p->curve);
    if (ret == 0)
        ret = mbedtls_ecdh_gen_public(&grp, &d, &q, mbedtls_ctr_drbg_random, &p->rng.drbg);
    /* The peer's public value: our own serves, the cost is the same. */
    if (ret == 0)
        ret = mbedtls_ecdh_compute_shared(&grp, &z, &q, &d, mbedtls_ctr_drbg_random,
                                          &p->rng.drbg);
    mbedtls_ecp_point_free(&q);
    mbedtls_mpi_free(&z);
    mbedtls_mpi_free(&d);
    mbedtls_ecp_group_free(&grp);
    return ret;
}

static double ops_per_s(pk_state *p, int (*op)(pk_state *))
{
    uint64_t start = now_ns(), n = 0, t;
    do {
        if (op(p) != 0)
            return -1;
        n++;
        t = now_ns() - start;
    } while (t < RUN_NS || n < MIN_OPS);
    return (double)n / ((double)t / 1e9);
}

static int pk_setup(pk_state *p)
{
    char err[128];
    memset(p, 0, sizeof *p);
    mbedtls_pk_init(&p->key);
    memset(p->hash, 0xa5, sizeof p->hash);
    if (or_keys_rng_init(&p->rng, "outrider-bench", err, sizeof err) != 0 ||
        or_keys_generate_ec(&p->rng, &p->key, err, sizeof err) != 0)
        return -1;
    return op_sign(p);
}

int or_bench_pkops(FILE *out, bool json)
{
    pk_state p;
    static const char *const names[] = {"ecdsa_p256_sign", "ecdsa_p256_verify", "ecdh_p256",
                                        "ecdh_x25519"};
    double r[4] = {-1, -1, -1, -1};
    if (pk_setup(&p) == 0) {
        r[0] = ops_per_s(&p, op_sign);
        r[1] = ops_per_s(&p, op_verify);
        p.curve = MBEDTLS_ECP_DP_SECP256R1;
        r[2] = ops_per_s(&p, op_ecdh);
        p.curve = MBEDTLS_ECP_DP_CURVE25519;
        r[3] = ops_per_s(&p, op_ecdh);
    }
    mbedtls_pk_free(&p.key);
    or_keys_rng_free(&p.rng);
    for (int i = 0; i < 4; i++) {
        if (r[i] < 0) {
            fprintf(stderr, "outrider-bench: pkops: %s failed\n", names[i]);
            return -1;
        }
    }
    if (json) {
        fprintf(out, "{\"mode\":\"pkops\"");
        for (int i = 0; i < 4; i++)
            fprintf(out, ",\"%s\":{\"ops_per_s\":%.1f,\"us_per_op\":%.1f}", names[i], r[i],
                    1e6 / r[i]);
        fprintf(out, "}\n");
        return 0;
    }
    fprintf(out, "mbedTLS single core (ecdh = key generation + shared secret)\n");
    for (int i = 0; i < 4; i++)
        fprintf(out, "%-18s %9.1f ops/s %9.1f us/op\n", names[i], r[i], 1e6 / r[i]);
    return 0;
}
