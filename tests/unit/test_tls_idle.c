/*
 * Unit tests for tls_idle: releasing the record buffers of idle mbedTLS
 * connections into a per-loop pool and waking them again.
 *
 * Real mbedTLS, no mocks; the PKI and TLS settings come from tls_fixture.h.
 * A test connects a client and a server (TLS 1.2, mutual authentication,
 * one ECDHE-ECDSA suite) through two in-memory byte queues; recv returns
 * WANT_READ when empty and can be limited to a few bytes, to leave a record
 * half-read.
 *
 * The cycle tests run thousands of release/wake rounds per suite (ChaCha20-
 * Poly1305 without explicit IV, AES-GCM with an 8-byte one), sending 1 byte
 * to three records each way, often to a released receiver, and check every
 * byte: a wrong counter or record pointer after a wake breaks the AEAD of
 * the next record. The saved incoming counter is checked against the
 * records the peer wrote. Other tests: release refuses while anything is in
 * flight (handshake, part of a record, unread application data); the pool's
 * accounting and cap; the stats counters.
 */
#include "tls_fixture.h"

#include <stdint.h>
#include <stdlib.h>

#include "outrider/tls_idle.h"

#define CHACHA MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
#define GCM MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
#define MAX_MSG 49152 /* three full records */
#define CYCLES 5000

typedef struct {
    unsigned char *data;
    size_t len, off;
    size_t budget; /* bytes recv may still hand out; SIZE_MAX: all */
} queue;

typedef struct { queue *out, *in; } bio;

static int bio_send(void *ctx, const unsigned char *buf, size_t len)
{
    queue *q = ((bio *)ctx)->out;
    q->data = realloc(q->data, q->len + len);
    assert_non_null(q->data);
    memcpy(q->data + q->len, buf, len);
    q->len += len;
    return (int)len;
}

static int bio_recv(void *ctx, unsigned char *buf, size_t len)
{
    queue *q = ((bio *)ctx)->in;
    size_t n = q->len - q->off < q->budget ? q->len - q->off : q->budget;
    n = n < len ? n : len;
    if (n == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    memcpy(buf, q->data + q->off, n);
    q->off += n;
    if (q->budget != SIZE_MAX)
        q->budget -= n;
    if (q->off == q->len)
        q->off = q->len = 0;
    return (int)n;
}

typedef struct {
    mbedtls_ssl_config conf[2];
    mbedtls_ssl_context ssl[2];
    queue q[2]; /* q[i]: bytes written by side i */
    bio bio[2];
    or_tls_idle idle[2];
    or_tls_buf_pool pool;
    _Atomic uint64_t releases, wakes;
    uint64_t want_releases, want_wakes;
    uint64_t records[2]; /* application records written by side i */
    int suites[2];
} pair;

static void need_release(void)
{
    if (!OR_TLS_IDLE_RELEASE) {
        print_message("tls_idle: release is compiled out (OR_TLS_IDLE_RELEASE 0)\n");
        skip();
    }
}

static void handshake(pair *p)
{
    int done[2] = {0, 0};
    for (int round = 0; round < 64 && !(done[0] && done[1]); round++) {
        for (int i = 0; i < 2; i++) {
            int ret = done[i] ? 0 : mbedtls_ssl_handshake(&p->ssl[i]);
            if (ret != 0 && ret != MBEDTLS_ERR_SSL_WANT_READ && ret != MBEDTLS_ERR_SSL_WANT_WRITE)
                fail_msg("handshake of side %d failed: -0x%04x", i, (unsigned)-ret);
            done[i] = ret == 0;
        }
    }
    assert_true(done[0] && done[1]);
    /* Both ends verified the other's certificate, with the suite asked for. */
    assert_int_equal(mbedtls_ssl_get_verify_result(&p->ssl[0]) |
                         mbedtls_ssl_get_verify_result(&p->ssl[1]), 0);
    assert_int_equal(mbedtls_ssl_get_ciphersuite_id(mbedtls_ssl_get_ciphersuite(&p->ssl[0])),
                     p->suites[0]);
}

static pair *pair_new(int suite, bool connect)
{
    pair *p = calloc(1, sizeof *p);
    assert_non_null(p);
    p->suites[0] = suite;
    p->pool.releases = &p->releases;
    p->pool.wakes = &p->wakes;
    for (int i = 0; i < 2; i++) {
        tls_fixture_conf(&p->conf[i], i ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
                         p->suites);
        mbedtls_ssl_init(&p->ssl[i]);
        assert_int_equal(mbedtls_ssl_setup(&p->ssl[i], &p->conf[i]), 0);
        p->q[i].budget = SIZE_MAX;
        p->bio[i] = (bio){.out = &p->q[i], .in = &p->q[!i]};
        mbedtls_ssl_set_bio(&p->ssl[i], &p->bio[i], bio_send, bio_recv, NULL);
    }
    if (connect)
        handshake(p);
    return p;
}

static void pair_free(pair *p)
{
    for (int i = 0; i < 2; i++) {
        mbedtls_ssl_free(&p->ssl[i]);
        mbedtls_ssl_config_free(&p->conf[i]);
        free(p->q[i].data);
    }
    assert_int_equal(p->releases, p->want_releases);
    assert_int_equal(p->wakes, p->want_wakes);
    or_tls_buf_pool_close(&p->pool);
    assert_int_equal(p->pool.count, 0);
    free(p);
}

static uint64_t be64(const unsigned char c[8])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | c[i];
    return v;
}

/* Releases side i, which must be idle; checks pool and counters. */
static void release(pair *p, int i)
{
    unsigned before = p->pool.count;
    bool was = or_tls_idle_released(&p->ssl[i]);
    assert_true(or_tls_idle_release(&p->idle[i], &p->ssl[i], &p->pool));
    assert_true(or_tls_idle_released(&p->ssl[i]));
    p->want_releases += !was;
    unsigned want = was ? before : before + 2 > OR_TLS_POOL_KEEP ? OR_TLS_POOL_KEEP : before + 2;
    assert_int_equal(p->pool.count, want);
    /* With the transport drained, the incoming counter is the peer's next
     * sequence number: its Finished plus one per application record. */
    if (!was && p->q[!i].len == 0)
        assert_int_equal(be64(p->idle[i].in_ctr), 1 + p->records[!i]);
}

static void wake(pair *p, int i)
{
    unsigned before = p->pool.count;
    bool was = or_tls_idle_released(&p->ssl[i]);
    assert_int_equal(or_tls_idle_wake(&p->idle[i], &p->ssl[i], &p->pool), 0);
    assert_false(or_tls_idle_released(&p->ssl[i]));
    p->want_wakes += was;
    assert_int_equal(p->pool.count, !was ? before : before >= 2 ? before - 2 : 0);
}

/* A release that must be refused: the buffers stay, nothing is counted. */
static void refused(pair *p, int i)
{
    unsigned before = p->pool.count;
    assert_false(or_tls_idle_release(&p->idle[i], &p->ssl[i], &p->pool));
    assert_false(or_tls_idle_released(&p->ssl[i]));
    assert_int_equal(p->pool.count, before);
    assert_int_equal(p->releases, p->want_releases);
}

static uint64_t next(uint64_t *s)
{
    *s ^= *s << 13, *s ^= *s >> 7, *s ^= *s << 17;
    return *s;
}

static void fill(unsigned char *buf, size_t n, uint64_t seed)
{
    uint64_t s = seed | 1, v = 0;
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)(i % 8 ? v >>= 8 : (v = next(&s)));
}

static void send_msg(pair *p, int from, size_t n, uint64_t seed)
{
    static unsigned char buf[MAX_MSG];
    fill(buf, n, seed);
    for (size_t done = 0; done < n;) {
        int ret = mbedtls_ssl_write(&p->ssl[from], buf + done, n - done);
        if (ret <= 0)
            fail_msg("write of %zu bytes by side %d: -0x%04x", n, from, (unsigned)-ret);
        done += (size_t)ret;
        p->records[from]++;
    }
}

static void recv_part(pair *p, int to, unsigned char *buf, size_t n)
{
    for (size_t got = 0; got < n;) {
        int ret = mbedtls_ssl_read(&p->ssl[to], buf + got, n - got);
        if (ret <= 0)
            fail_msg("read of %zu bytes by side %d: -0x%04x", n, to, (unsigned)-ret);
        got += (size_t)ret;
    }
}

static void recv_msg(pair *p, int to, size_t n, uint64_t seed)
{
    static unsigned char got[MAX_MSG], want[MAX_MSG];
    recv_part(p, to, got, n);
    fill(want, n, seed);
    assert_memory_equal(got, want, n);
}

/* Mostly small messages, some of one record, a few of several. */
static size_t pick_size(uint64_t *rng, int round)
{
    static const size_t edges[] = {1, 16384, 16385, MAX_MSG, 2, 16383, 32768, 32769};
    if ((size_t)round < sizeof edges / sizeof *edges)
        return edges[round];
    uint64_t r = next(rng);
    switch (r % 20) {
    case 0: return 16385 + (size_t)(r >> 8) % (MAX_MSG - 16384);
    case 1: case 2: return 4097 + (size_t)(r >> 8) % 12288;
    default: return 1 + (size_t)(r >> 8) % ((r >> 5) % 4 ? 256 : 4096);
    }
}

/* close_notify after a wake; the peer, woken later, reads it. */
static void close_both(pair *p, int a)
{
    wake(p, a);
    assert_int_equal(mbedtls_ssl_close_notify(&p->ssl[a]), 0);
    release(p, a);
    assert_true(or_tls_idle_released(&p->ssl[!a]));
    wake(p, !a);
    unsigned char byte;
    assert_int_equal(mbedtls_ssl_read(&p->ssl[!a], &byte, 1), MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY);
}

static void idle_cycles(int suite, uint64_t seed)
{
    need_release();
    pair *p = pair_new(suite, true);
    uint64_t rng = seed;
    release(p, 0);
    release(p, 1);
    for (int round = 0; round < CYCLES; round++) {
        int a = (int)(next(&rng) >> 17 & 1), b = !a;
        /* Every 50th round the receiver stays released for several sends. */
        int burst = round % 50 == 49 ? 2 + (int)(next(&rng) % 4) : 1;
        size_t sizes[5];
        uint64_t seeds[5];
        for (int k = 0; k < burst; k++) {
            sizes[k] = pick_size(&rng, round);
            seeds[k] = next(&rng);
            wake(p, a);
            send_msg(p, a, sizes[k], seeds[k]);
            release(p, a);
        }
        assert_true(or_tls_idle_released(&p->ssl[b]));
        wake(p, b);
        for (int k = 0; k < burst; k++)
            recv_msg(p, b, sizes[k], seeds[k]);
        size_t reply = pick_size(&rng, round + 1);
        uint64_t reply_seed = next(&rng);
        send_msg(p, b, reply, reply_seed);
        release(p, b);
        wake(p, a);
        recv_msg(p, a, reply, reply_seed);
        release(p, a);
    }
    assert_true(p->want_wakes > 2 * CYCLES);
    close_both(p, (int)(seed & 1));
    pair_free(p);
}

static void test_cycles_chacha20_poly1305(void **state)
{
    (void)state;
    idle_cycles(CHACHA, 0x9e3779b97f4a7c15u);
}

static void test_cycles_aes_gcm(void **state)
{
    (void)state;
    idle_cycles(GCM, 0xd1b54a32d192ed03u);
}

static void test_refuses_during_handshake(void **state)
{
    (void)state;
    need_release();
    pair *p = pair_new(GCM, false);
    refused(p, 0);
    refused(p, 1);
    assert_int_equal(mbedtls_ssl_handshake(&p->ssl[0]), MBEDTLS_ERR_SSL_WANT_READ);
    refused(p, 0); /* ClientHello sent, waiting */
    assert_int_equal(mbedtls_ssl_handshake(&p->ssl[1]), MBEDTLS_ERR_SSL_WANT_READ);
    refused(p, 1); /* server flight sent, waiting */
    refused(p, 0);
    handshake(p);
    release(p, 0);
    release(p, 1);
    pair_free(p);
}

static void test_refuses_partial_record(void **state)
{
    (void)state;
    need_release();
    pair *p = pair_new(CHACHA, true);
    unsigned char buf[64];
    wake(p, 0);
    send_msg(p, 0, 100, 7);
    release(p, 0);
    p->q[0].budget = 3; /* part of the record header */
    assert_int_equal(mbedtls_ssl_read(&p->ssl[1], buf, sizeof buf), MBEDTLS_ERR_SSL_WANT_READ);
    refused(p, 1);
    p->q[0].budget = 2 + 40; /* the header and part of the body */
    assert_int_equal(mbedtls_ssl_read(&p->ssl[1], buf, sizeof buf), MBEDTLS_ERR_SSL_WANT_READ);
    refused(p, 1);
    p->q[0].budget = SIZE_MAX;
    recv_msg(p, 1, 100, 7);
    release(p, 1);
    close_both(p, 1);
    pair_free(p);
}

static void test_refuses_unread_app_data(void **state)
{
    (void)state;
    need_release();
    pair *p = pair_new(GCM, true);
    static unsigned char got[20000], want[20000];
    fill(want, sizeof want, 11);
    send_msg(p, 0, 300, 11); /* one record */
    recv_part(p, 1, got, 10);
    assert_int_equal(mbedtls_ssl_get_bytes_avail(&p->ssl[1]), 290);
    refused(p, 1);
    recv_part(p, 1, got + 10, 200);
    refused(p, 1);
    recv_part(p, 1, got + 210, 90);
    assert_memory_equal(got, want, 300);
    release(p, 1);
    /* Two records: once the first is read out, the second waits in the
     * transport, not in mbedTLS, so release may go ahead. */
    send_msg(p, 0, sizeof want, 11);
    wake(p, 1);
    recv_part(p, 1, got, 16384 - 1);
    refused(p, 1);
    recv_part(p, 1, got + 16383, 1);
    release(p, 1);
    wake(p, 1);
    recv_part(p, 1, got + 16384, sizeof got - 16384);
    assert_memory_equal(got, want, sizeof got);
    release(p, 0);
    release(p, 1);
    close_both(p, 0);
    pair_free(p);
}

static void test_pool(void **state)
{
    (void)state;
    need_release();
    pair *p = pair_new(CHACHA, true);
    release(p, 0);
    release(p, 1);
    release(p, 1); /* already released: nothing moves, nothing counted */
    wake(p, 0);
    wake(p, 0); /* already awake */
    assert_int_equal(p->pool.count, 2);
    assert_int_equal(p->releases + p->wakes, 2 + 1);
    or_tls_buf_pool_close(&p->pool);
    assert_int_equal(p->pool.count, 0);
    wake(p, 1); /* empty pool: fresh buffers */
    assert_int_equal(p->wakes, 2);
    send_msg(p, 0, 5000, 3);
    recv_msg(p, 1, 5000, 3);
    /* Wake from an empty pool, release into another: the second fills up to
     * OR_TLS_POOL_KEEP and frees what comes after. Neither has counters. */
    or_tls_buf_pool empty = {0}, full = {0};
    for (unsigned k = 1; k <= OR_TLS_POOL_KEEP; k++) {
        assert_true(or_tls_idle_release(&p->idle[1], &p->ssl[1], &full));
        assert_int_equal(full.count, 2 * k > OR_TLS_POOL_KEEP ? OR_TLS_POOL_KEEP : 2 * k);
        assert_int_equal(or_tls_idle_wake(&p->idle[1], &p->ssl[1], &empty), 0);
        assert_int_equal(empty.count, 0);
    }
    assert_int_equal(p->releases, 2);
    assert_int_equal(p->wakes, 2);
    send_msg(p, 1, 20000, 4);
    recv_msg(p, 0, 20000, 4);
    assert_true(or_tls_idle_release(&p->idle[1], &p->ssl[1], &full)); /* full: zeroed, freed */
    assert_int_equal(full.count, OR_TLS_POOL_KEEP);
    assert_true(or_tls_idle_release(&p->idle[0], &p->ssl[0], &empty));
    assert_int_equal(empty.count, 2);
    or_tls_buf_pool_close(&full), or_tls_buf_pool_close(&empty);
    assert_int_equal(full.count + empty.count, 0);
    pair_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cycles_chacha20_poly1305),
        cmocka_unit_test(test_cycles_aes_gcm),
        cmocka_unit_test(test_refuses_during_handshake),
        cmocka_unit_test(test_refuses_partial_record),
        cmocka_unit_test(test_refuses_unread_app_data),
        cmocka_unit_test(test_pool),
    };
    return cmocka_run_group_tests_name("tls_idle", tests, tls_fixture_setup, tls_fixture_teardown);
}
