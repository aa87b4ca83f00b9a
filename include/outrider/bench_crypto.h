/*
 * bench_crypto: single-core mbedTLS cost figures, the bound that handshake
 * and bulk rows of a comparison are read against.
 *
 * Contract: each function runs on the calling thread for a bounded time
 * (well under a second per figure on a current core, or the --bytes given),
 * prints its results to out as text lines or as one JSON object, and
 * returns 0, or -1 after printing why to stderr.
 *  - cipher: ChaCha20-Poly1305 and AES-128-GCM AEAD encryption of `bytes`
 *    in 16 KiB records (the TLS maximum), in MB/s (10^6 bytes).
 *  - pkops: ECDSA P-256 sign and verify, ECDH key generation plus shared
 *    secret on P-256 and X25519, in operations/s and microseconds each.
 */
#ifndef OUTRIDER_BENCH_CRYPTO_H
#define OUTRIDER_BENCH_CRYPTO_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

int or_bench_cipher(FILE *out, uint64_t bytes, bool json);
int or_bench_pkops(FILE *out, bool json);

#endif
