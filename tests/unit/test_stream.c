/*
 * Unit tests for stream: a TLS or_stream pair over a real loopback socket,
 * driven by a real libuv loop, with a reader that pauses.
 *
 * The PKI and TLS settings come from tls_fixture.h; identities are not the
 * subject here, so both streams leave the peer check to their owner
 * (peer_checked_by_owner). The client writes a patterned message and shuts
 * down (close_notify, then FIN). The server's reader stops reading in every
 * read callback and starts again from a timer, so most records arrive while
 * it is paused: their ciphertext is held, and the replay after the restart
 * is itself paused after one callback (up to four records gathered) with the
 * rest of the held ciphertext still unread. Every byte must arrive once and
 * in order, and EOF exactly once, after the last byte.
 *
 * Cases: a 4 MiB message with an immediate restart (dozens of pauses),
 * written in one call that starts leaving before the turn ends;
 * sixty 1000-byte records and close_notify in one socket read with a slow
 * restart: the first callback gathers fifty records, the other ten and
 * close_notify are held, the replay delivers the ten and mbedTLS reports
 * the end right behind them while the reader pauses on them, so EOF must
 * wait for a second restart; ten 1000-byte records that their writer sends
 * early (or_stream_send_early): they leave before the turn ends although
 * they are under the 64 KiB at which a write leaves by itself.
 */
#include "tls_fixture.h"

#include <stdint.h>
#include <stdlib.h>

#include <uv.h>

#include "outrider/stream.h"

#define SUITE MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
#define DEADLINE_MS 30000

typedef struct {
    uv_loop_t loop;
    or_stream_loop sl;
    uv_tcp_t listener;
    uv_timer_t restart, deadline;
    mbedtls_ssl_config conf[2]; /* client, server */
    int suites[2];
    or_stream client, server;
    bool server_open;
    unsigned char *msg;
    size_t msg_len, piece, got; /* the client writes the message piece by piece */
    uint64_t restart_ms;
    size_t largest_read;
    size_t queued_after_write;  /* client output still queued right after the writes */
    bool send_early;            /* the writer calls or_stream_send_early after them */
    unsigned reads, eofs, restarts, restarts_with_held, restarts_with_end;
} rig;

static void close_all(rig *r)
{
    or_stream_close(&r->client);
    if (r->server_open)
        or_stream_close(&r->server);
    uv_close((uv_handle_t *)&r->listener, NULL);
    uv_close((uv_handle_t *)&r->restart, NULL);
    uv_close((uv_handle_t *)&r->deadline, NULL);
}

static void on_restart(uv_timer_t *t)
{
    rig *r = t->data;
    r->restarts++;
    /* white-box: the held input is private to stream.c */
    if (r->server._held.len > 0)
        r->restarts_with_held++;
    if (r->server._read_final != 0)
        r->restarts_with_end++;
    assert_int_equal(or_stream_read_start(&r->server), 0);
}

static void on_server_read(or_stream *s, ssize_t nread, const char *data)
{
    rig *r = s->owner;
    if (nread == UV_EOF) {
        r->eofs++;
        assert_true(or_stream_eof(s));
        assert_false(or_stream_reading(s));
        assert_int_equal(r->got, r->msg_len); /* EOF only after the last byte */
        close_all(r);
        return;
    }
    if (nread < 0)
        fail_msg("server read failed: %s", uv_strerror((int)nread));
    assert_true(r->got + (size_t)nread <= r->msg_len);
    assert_memory_equal(data, r->msg + r->got, (size_t)nread);
    r->got += (size_t)nread;
    r->reads++;
    if ((size_t)nread > r->largest_read)
        r->largest_read = (size_t)nread;
    or_stream_read_stop(s);
    uv_timer_start(&r->restart, on_restart, r->restart_ms, 0);
}

static void on_server_handshake(or_stream *s, int status)
{
    (void)s;
    assert_int_equal(status, 0);
}

static void on_connection(uv_stream_t *listener, int status)
{
    rig *r = listener->data;
    assert_int_equal(status, 0);
    assert_int_equal(or_stream_init(&r->server, &r->sl, r, &r->conf[1]), 0);
    r->server_open = true;
    r->server.peer_checked_by_owner = true;
    r->server.on_read = on_server_read;
    r->server.on_handshake = on_server_handshake;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&r->server.tcp), 0);
    assert_int_equal(or_stream_accepted(&r->server), 0);
    assert_int_equal(or_stream_start_handshake(&r->server), 0);
}

static void on_client_read(or_stream *s, ssize_t nread, const char *data)
{
    (void)s, (void)data;
    assert_true(nread < 0); /* the server sends no data */
}

static void on_client_handshake(or_stream *s, int status)
{
    rig *r = s->owner;
    assert_int_equal(status, 0);
    assert_true(or_stream_established(s));
    assert_true(or_stream_cipher(s)[0] != '\0');
    for (size_t off = 0; off < r->msg_len; off += r->piece) {
        size_t n = r->msg_len - off < r->piece ? r->msg_len - off : r->piece;
        assert_int_equal(or_stream_write(s, (const char *)r->msg + off, n), 0);
    }
    if (r->send_early)
        or_stream_send_early(s);
    r->queued_after_write = or_stream_queued(s);
    or_stream_shutdown(s);
}

static void on_client_connect(or_stream *s, int status)
{
    assert_int_equal(status, 0);
    assert_true(or_stream_connected(s));
    assert_false(or_stream_established(s)); /* TLS: not before the handshake */
    assert_int_equal(or_stream_start_handshake(s), 0);
}

static void on_deadline(uv_timer_t *t)
{
    rig *r = t->data;
    fail_msg("no EOF after %d ms: %zu of %zu bytes in %u reads", DEADLINE_MS, r->got, r->msg_len,
             r->reads);
}

static void rig_listen(rig *r, struct sockaddr_in *bound)
{
    struct sockaddr_in any;
    int len = sizeof *bound;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &any), 0);
    assert_int_equal(uv_tcp_init(&r->loop, &r->listener), 0);
    r->listener.data = r;
    assert_int_equal(uv_tcp_bind(&r->listener, (const struct sockaddr *)&any, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r->listener, 8, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&r->listener, (struct sockaddr *)bound, &len), 0);
}

/* Sends msg_len patterned bytes through a paused-and-restarted reader. */
static void run_paused_reader(size_t msg_len, size_t piece, uint64_t restart_ms, rig *r)
{
    struct sockaddr_in bound;
    r->suites[0] = SUITE;
    r->msg_len = msg_len;
    r->piece = piece;
    r->restart_ms = restart_ms;
    r->msg = malloc(msg_len);
    assert_non_null(r->msg);
    for (size_t i = 0; i < msg_len; i++)
        r->msg[i] = (unsigned char)(i * 7 + i / 4099);
    tls_fixture_conf(&r->conf[0], MBEDTLS_SSL_IS_CLIENT, r->suites);
    tls_fixture_conf(&r->conf[1], MBEDTLS_SSL_IS_SERVER, r->suites);

    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(or_stream_loop_init(&r->sl, &r->loop), 0);
    uv_timer_init(&r->loop, &r->restart);
    uv_timer_init(&r->loop, &r->deadline);
    r->restart.data = r->deadline.data = r;
    uv_timer_start(&r->deadline, on_deadline, DEADLINE_MS, 0);
    rig_listen(r, &bound);

    assert_int_equal(or_stream_init(&r->client, &r->sl, r, &r->conf[0]), 0);
    r->client.peer_checked_by_owner = true;
    r->client.on_read = on_client_read;
    r->client.on_connect = on_client_connect;
    r->client.on_handshake = on_client_handshake;
    assert_int_equal(or_stream_connect(&r->client, (const struct sockaddr *)&bound), 0);

    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    or_stream_loop_close(&r->sl);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0); /* every handle was closed */

    assert_int_equal(r->got, msg_len);
    assert_int_equal(r->eofs, 1);
    mbedtls_ssl_config_free(&r->conf[0]);
    mbedtls_ssl_config_free(&r->conf[1]);
    free(r->msg);
}

static void test_paused_reader_gets_every_byte(void **state)
{
    (void)state;
    rig r = {0};
    run_paused_reader(4u << 20, 4u << 20, 0, &r);
    /* The write did not wait for the end of the turn to start leaving. */
    assert_true(r.queued_after_write < r.msg_len);
    /* Records are gathered, up to four full ones per callback. */
    assert_true(r.largest_read > 16384 && r.largest_read <= 4 * 16384);
    assert_true(r.reads >= (4u << 20) / (4 * 16384));
    assert_true(r.restarts_with_held >= r.reads / 4);
    print_message("%u reads (largest %zu bytes), %u restarts with ciphertext held\n", r.reads,
                  r.largest_read, r.restarts_with_held);
}

static void test_eof_waits_behind_held_records(void **state)
{
    (void)state;
    rig r = {0};
    run_paused_reader(60 * 1000, 1000, 50, &r);
    assert_true(r.queued_after_write > r.msg_len); /* under 64 KiB: the turn's flush sends it */
    assert_int_equal(r.reads, 2);
    assert_int_equal(r.largest_read, 50 * 1000);
    assert_int_equal(r.restarts, 2);
    assert_int_equal(r.restarts_with_held, 1);
    assert_int_equal(r.restarts_with_end, 1); /* close_notify read, its report kept */
}

static void test_send_early(void **state)
{
    (void)state;
    rig r = {.send_early = true};
    run_paused_reader(10 * 1000, 1000, 0, &r);
    assert_int_equal(r.queued_after_write, 0); /* the kernel took it all before the turn ended */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paused_reader_gets_every_byte),
        cmocka_unit_test(test_eof_waits_behind_held_records),
        cmocka_unit_test(test_send_early),
    };
    return cmocka_run_group_tests_name("stream", tests, tls_fixture_setup, tls_fixture_teardown);
}
