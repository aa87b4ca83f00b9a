/*
 * Releasing the record buffers of idle mbedTLS 2.28 contexts.
 *
 * In stream (TLS, not DTLS) mode, mbedTLS lays out each record buffer as an
 * 8-byte sequence counter followed by the record: in_ctr = in_buf, in_hdr =
 * in_buf + 8, and the same for out. The incoming record sequence number
 * lives only there, between records; a wrong one fails the next record's
 * AEAD check. The outgoing number is kept in the context (cur_out_ctr) and
 * copied to out_ctr for each record, so on wake out_ctr is derived from it.
 * These 8 bytes are the only state in the buffers of a connection with no
 * record in flight.
 *
 * "Nothing in flight" is: handshake over; no partial incoming record
 * (in_left 0); no output waiting in mbedTLS (out_left 0; the stream's BIO
 * takes all output at once, so this holds after every call); and nothing
 * mbedtls_ssl_check_pending would still read out of in_buf (a record held
 * back, handshake messages left in a record, application data not read).
 * Any message state left (in_msglen of a record already consumed) refers to
 * no buffer contents and is reset by mbedTLS before the next record.
 *
 * On wake, in_hdr/out_hdr are put at offset 8 of the new buffers and
 * mbedtls_ssl_update_in_pointers/update_out_pointers (exported by mbedTLS
 * from ssl_internal.h) re-derive in_ctr, in_len, in_iv, in_msg and the out
 * twins, the latter with the explicit IV of the current transform. This is
 * the state mbedTLS itself leaves after fully flushing a record.
 */
#include "outrider/tls_idle.h"

#include <stdlib.h>
#include <string.h>

#include <mbedtls/platform_util.h>

#if OR_TLS_IDLE_RELEASE
#include <mbedtls/ssl_internal.h>

#define RECORD_BUF_LEN MBEDTLS_SSL_IN_BUFFER_LEN
_Static_assert(MBEDTLS_SSL_IN_BUFFER_LEN == MBEDTLS_SSL_OUT_BUFFER_LEN,
               "one pool serves both directions: the record buffers must be the same size");

static void count(_Atomic uint64_t *counter)
{
    if (counter)
        atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
}

/* A buffer leaving the pool may hold plaintext: zeroed before free. */
static void discard(unsigned char *buf)
{
    mbedtls_platform_zeroize(buf, RECORD_BUF_LEN);
    free(buf);
}

static unsigned char *pool_take(or_tls_buf_pool *pool)
{
    if (pool->count > 0)
        return pool->free[--pool->count];
    return malloc(RECORD_BUF_LEN);
}

static void pool_give(or_tls_buf_pool *pool, unsigned char *buf)
{
    if (!buf)
        return;
    if (pool->count < OR_TLS_POOL_KEEP) {
        pool->free[pool->count++] = buf;
        return;
    }
    discard(buf);
}

static void clear_record_pointers(mbedtls_ssl_context *ssl)
{
    ssl->in_buf = ssl->in_ctr = ssl->in_hdr = ssl->in_len = ssl->in_iv = ssl->in_msg = NULL;
    ssl->out_buf = ssl->out_ctr = ssl->out_hdr = ssl->out_len = ssl->out_iv = ssl->out_msg =
        NULL;
}

static bool idle(const mbedtls_ssl_context *ssl)
{
    return ssl->state == MBEDTLS_SSL_HANDSHAKE_OVER && ssl->in_left == 0 &&
           ssl->out_left == 0 && !mbedtls_ssl_check_pending(ssl);
}

bool or_tls_idle_release(or_tls_idle *st, mbedtls_ssl_context *ssl, or_tls_buf_pool *pool)
{
    if (!ssl->in_buf)
        return true;
    if (!idle(ssl))
        return false;
    memcpy(st->in_ctr, ssl->in_ctr, sizeof st->in_ctr);
    pool_give(pool, ssl->in_buf);
    pool_give(pool, ssl->out_buf);
    clear_record_pointers(ssl);
    count(pool->releases);
    return true;
}

int or_tls_idle_wake(const or_tls_idle *st, mbedtls_ssl_context *ssl, or_tls_buf_pool *pool)
{
    if (ssl->in_buf)
        return 0;
    unsigned char *in = pool_take(pool);
    unsigned char *out = in ? pool_take(pool) : NULL;
    if (!out) {
        pool_give(pool, in);
        return -1;
    }
    ssl->in_buf = in;
    ssl->out_buf = out;
    ssl->in_hdr = in + 8;
    ssl->out_hdr = out + 8;
    mbedtls_ssl_update_in_pointers(ssl);
    mbedtls_ssl_update_out_pointers(ssl, ssl->transform_out);
    memcpy(ssl->in_ctr, st->in_ctr, sizeof st->in_ctr);
    memcpy(ssl->out_ctr, ssl->cur_out_ctr, sizeof ssl->cur_out_ctr);
    count(pool->wakes);
    return 0;
}

bool or_tls_idle_released(const mbedtls_ssl_context *ssl) { return ssl->in_buf == NULL; }

void or_tls_buf_pool_close(or_tls_buf_pool *pool)
{
    while (pool->count > 0)
        discard(pool->free[--pool->count]);
}

#else /* !OR_TLS_IDLE_RELEASE: contexts keep their buffers */

bool or_tls_idle_release(or_tls_idle *st, mbedtls_ssl_context *ssl, or_tls_buf_pool *pool)
{
    (void)st, (void)ssl, (void)pool;
    return false;
}

int or_tls_idle_wake(const or_tls_idle *st, mbedtls_ssl_context *ssl, or_tls_buf_pool *pool)
{
    (void)st, (void)ssl, (void)pool;
    return 0;
}

bool or_tls_idle_released(const mbedtls_ssl_context *ssl)
{
    (void)ssl;
    return false;
}

void or_tls_buf_pool_close(or_tls_buf_pool *pool) { (void)pool; }

#endif
