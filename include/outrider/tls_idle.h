/*
 * tls_idle: an idle TLS connection gives its record buffers back.
 *
 * Contract: mbedTLS 2.28 gives every context two record buffers of about
 * 16.5 KiB each, for the context's whole life. An established connection
 * with no record in flight either way needs neither. or_tls_idle_release
 * hands both to a per-loop pool and keeps only what must survive: the
 * incoming record sequence number, which lives at the head of the input
 * buffer. or_tls_idle_wake takes buffers from the pool again, puts the
 * number back and re-derives the record pointers. Every mbedTLS call on a
 * released context (read, write, close_notify, alert) must come after a
 * wake; the record pointers of a released context are NULL, so a missed
 * wake crashes at once instead of writing into another connection's buffer.
 * mbedtls_ssl_free works on a released context as on any other.
 *
 * Buffers in the pool may hold plaintext; one that leaves the pool (pool
 * full, pool closed) is zeroed first, so plaintext never reaches the
 * general heap. A pool belongs to one loop and is used by that thread only.
 *
 * The release relies on the record-layer fields of mbedtls_ssl_context. It
 * is compiled in for mbedTLS 2.28.x without MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH
 * (OR_TLS_IDLE_RELEASE is 1); elsewhere release keeps the buffers and wake
 * has nothing to do.
 */
#ifndef OUTRIDER_TLS_IDLE_H
#define OUTRIDER_TLS_IDLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <mbedtls/ssl.h>
#include <mbedtls/version.h>

#if MBEDTLS_VERSION_NUMBER >= 0x021C0000 && MBEDTLS_VERSION_NUMBER < 0x03000000 && \
    !defined(MBEDTLS_SSL_VARIABLE_BUFFER_LENGTH)
#define OR_TLS_IDLE_RELEASE 1
#else
#define OR_TLS_IDLE_RELEASE 0
#endif

/* Free buffers a loop keeps for the next wake; more are freed (zeroed). */
#define OR_TLS_POOL_KEEP 16

typedef struct {
    unsigned char *free[OR_TLS_POOL_KEEP];
    unsigned count;
    _Atomic uint64_t *releases, *wakes; /* optional counters (worker stats) */
} or_tls_buf_pool;

/* What a released connection keeps: its incoming record sequence number. */
typedef struct {
    unsigned char in_ctr[8];
} or_tls_idle;

/* Releases the buffers if the handshake is over and nothing is in flight;
 * true if the context is (now or already) released. */
bool or_tls_idle_release(or_tls_idle *idle, mbedtls_ssl_context *ssl, or_tls_buf_pool *pool);
/* Gives a released context buffers again; 0, or -1 when out of memory. */
int or_tls_idle_wake(const or_tls_idle *idle, mbedtls_ssl_context *ssl, or_tls_buf_pool *pool);
bool or_tls_idle_released(const mbedtls_ssl_context *ssl);
/* Zeroes and frees every pooled buffer. */
void or_tls_buf_pool_close(or_tls_buf_pool *pool);

#endif
