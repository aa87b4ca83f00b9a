/*
 * keys: the one place where the project loads, makes and writes private keys.
 *
 * Contract: or_keys_rng is a seeded CTR-DRBG owned by the caller (one per
 * process, passed down; no global state). Keys are generated here (EC P-256),
 * loaded from a file (refused when group or others can access it) or
 * written to one as PEM through a buffer that is wiped before it is freed.
 * Key bytes are never logged; errors describe the file and the problem, not
 * the content.
 */
#ifndef OUTRIDER_KEYS_H
#define OUTRIDER_KEYS_H

#include <stddef.h>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>

typedef struct {
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
} or_keys_rng;

int or_keys_rng_init(or_keys_rng *rng, const char *label, char *err, size_t err_len);
void or_keys_rng_free(or_keys_rng *rng);
/* Random bytes from the DRBG; 0 or -1. */
int or_keys_random(or_keys_rng *rng, void *out, size_t len);

/* A fresh EC P-256 key in *key (initialised by this call). */
int or_keys_generate_ec(or_keys_rng *rng, mbedtls_pk_context *key, char *err, size_t err_len);
/* Loads a private key file after checking that it is a regular file (a
 * symlink to one will do) with no group/other access; err says which check
 * failed and how to fix it ("run chmod 600 on it"). */
int or_keys_load(const char *path, mbedtls_pk_context *key, char *err, size_t err_len);
/* Writes the key PEM to path atomically with mode 0600. */
int or_keys_write(const char *path, mbedtls_pk_context *key, char *err, size_t err_len);

#endif
