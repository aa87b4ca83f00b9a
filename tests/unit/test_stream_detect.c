/*
 * Unit tests for detection (or_stream_start_detect): a TLS server stream
 * that tells a TLS client from a plaintext one by its first bytes, over a
 * real loopback socket driven by a real libuv loop.
 *
 * The server behaves as the proxy's connection does: it starts detecting
 * when it accepts, arms its own timer (or_stream_detect_plain on expiry),
 * stops reading when on_handshake reports the outcome, writes a banner and
 * starts reading again from a timer, so the bytes read for detection wait
 * in the stream until the reader is back. It must then get exactly what the
 * client sent, in order, and one EOF after it.
 *
 * Cases: a TLS client (handshake, a message, close_notify); a plaintext
 * client (an HTTP request, FIN); a client that sends nothing until the
 * banner, which comes only once the server's timer has made the stream
 * plain; and, through a relay that sends the first byte alone and the rest
 * 50 ms later, a TLS client (the 0x16 waits for its 0x03, then both go to
 * the handshake) and a plaintext message that starts with 0x16.
 */
#include "tls_fixture.h"

#include <stdint.h>
#include <stdlib.h>

#include <uv.h>

#include "outrider/stream.h"

#define SUITE MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
#define DEADLINE_MS 10000
#define BANNER "220 ready\r\n"
#define SPLIT_DELAY_MS 50

typedef enum { CLIENT_TLS, CLIENT_PLAIN, CLIENT_SILENT } client_kind;

typedef struct {
    uv_loop_t loop;
    or_stream_loop sl;
    uv_tcp_t listener, relay_listener;
    uv_timer_t detect, restart, deadline, split;
    mbedtls_ssl_config conf[2]; /* client, server */
    int suites[2];
    or_stream client, server, relay_in, relay_out;
    bool server_open, relay_open, closing;
    client_kind kind;
    bool via_relay;
    uint64_t detect_ms;
    const char *msg;
    size_t msg_len;
    /* what was seen */
    char got[256], banner[64];
    size_t got_len, banner_len;
    unsigned handshakes, eofs;
    bool server_tls, decided_by_timer, detecting_at_start;
    bool waited_on_one_byte;    /* relay: the server held the lone first byte, undecided */
    const char *cipher;
    /* the relay: first byte alone, the rest (and what follows) later */
    bool relay_first_done, relay_waiting, relay_eof_waiting;
    or_buf relay_stash;
} rig;

static void close_all(rig *r)
{
    assert_false(r->closing);
    r->closing = true;
    or_stream_close(&r->client);
    if (r->server_open)
        or_stream_close(&r->server);
    if (r->via_relay) {
        if (r->relay_open) {
            or_stream_close(&r->relay_in);
            or_stream_close(&r->relay_out);
        }
        uv_close((uv_handle_t *)&r->relay_listener, NULL);
    }
    uv_close((uv_handle_t *)&r->listener, NULL);
    uv_close((uv_handle_t *)&r->detect, NULL);
    uv_close((uv_handle_t *)&r->restart, NULL);
    uv_close((uv_handle_t *)&r->deadline, NULL);
    uv_close((uv_handle_t *)&r->split, NULL);
}

/* ---- the server ---- */

static void on_server_read(or_stream *s, ssize_t nread, const char *data)
{
    rig *r = s->owner;
    if (nread == UV_EOF) {
        r->eofs++;
        assert_int_equal(r->got_len, r->msg_len); /* EOF only after the last byte */
        close_all(r);
        return;
    }
    if (nread < 0)
        fail_msg("server read failed: %s", uv_strerror((int)nread));
    assert_true(r->got_len + (size_t)nread <= sizeof r->got);
    memcpy(r->got + r->got_len, data, (size_t)nread);
    r->got_len += (size_t)nread;
}

static void on_restart(uv_timer_t *t)
{
    rig *r = t->data;
    assert_int_equal(or_stream_read_start(&r->server), 0);
}

static void on_server_handshake(or_stream *s, int status)
{
    rig *r = s->owner;
    assert_int_equal(status, 0);
    r->handshakes++;
    assert_false(or_stream_detecting(s));
    assert_true(or_stream_established(s));
    r->server_tls = s->ssl != NULL;
    r->cipher = or_stream_cipher(s);
    or_stream_read_stop(s); /* the next phase reads; what came first waits */
    assert_int_equal(or_stream_write(s, BANNER, strlen(BANNER)), 0);
    uv_timer_start(&r->restart, on_restart, 20, 0);
}

static void on_detect_expired(uv_timer_t *t)
{
    rig *r = t->data;
    r->decided_by_timer = or_stream_detecting(&r->server);
    or_stream_detect_plain(&r->server); /* nothing once decided */
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
    assert_int_equal(or_stream_start_detect(&r->server), 0);
    r->detecting_at_start = or_stream_detecting(&r->server) &&
                            or_stream_connected(&r->server) &&
                            !or_stream_established(&r->server) && or_stream_reading(&r->server);
    uv_timer_start(&r->detect, on_detect_expired, r->detect_ms, 0);
}

/* ---- the client ---- */

static void send_and_finish(rig *r)
{
    assert_int_equal(or_stream_write(&r->client, r->msg, r->msg_len), 0);
    or_stream_shutdown(&r->client);
}

static void on_client_read(or_stream *s, ssize_t nread, const char *data)
{
    rig *r = s->owner;
    if (nread < 0)
        return; /* the server never ends its side; close_all ends the test */
    assert_true(r->banner_len + (size_t)nread <= sizeof r->banner);
    memcpy(r->banner + r->banner_len, data, (size_t)nread);
    r->banner_len += (size_t)nread;
    if (r->kind == CLIENT_SILENT && r->banner_len == strlen(BANNER))
        send_and_finish(r); /* server first: answer the banner */
}

static void on_client_handshake(or_stream *s, int status)
{
    rig *r = s->owner;
    assert_int_equal(status, 0);
    send_and_finish(r);
}

static void on_client_connect(or_stream *s, int status)
{
    rig *r = s->owner;
    assert_int_equal(status, 0);
    if (r->kind == CLIENT_TLS) {
        assert_int_equal(or_stream_start_handshake(s), 0);
        return;
    }
    assert_int_equal(or_stream_read_start(s), 0);
    if (r->kind == CLIENT_PLAIN)
        send_and_finish(r);
}

/* ---- the relay: client -> relay_in, relay_out -> server ---- */

static void on_split(uv_timer_t *t)
{
    rig *r = t->data;
    /* white-box: the held input is private to stream.c */
    r->waited_on_one_byte = or_stream_detecting(&r->server) && r->server._held.len == 1;
    r->relay_waiting = false;
    assert_int_equal(or_stream_write(&r->relay_out, r->relay_stash.data, r->relay_stash.len), 0);
    r->relay_stash.len = 0;
    if (r->relay_eof_waiting)
        or_stream_shutdown(&r->relay_out);
}

static void on_relay_in_read(or_stream *s, ssize_t nread, const char *data)
{
    rig *r = s->owner;
    if (nread == UV_EOF) {
        if (r->relay_waiting)
            r->relay_eof_waiting = true;
        else
            or_stream_shutdown(&r->relay_out);
        return;
    }
    assert_true(nread > 0);
    size_t n = (size_t)nread, sent = 0;
    if (!r->relay_first_done) {
        r->relay_first_done = true;
        assert_int_equal(or_stream_write(&r->relay_out, data, 1), 0);
        sent = 1;
        r->relay_waiting = true;
        uv_timer_start(&r->split, on_split, SPLIT_DELAY_MS, 0);
    }
    if (r->relay_waiting)
        assert_int_equal(or_buf_append(&r->relay_stash, data + sent, n - sent), 0);
    else
        assert_int_equal(or_stream_write(&r->relay_out, data, n), 0);
}

static void on_relay_out_read(or_stream *s, ssize_t nread, const char *data)
{
    rig *r = s->owner;
    if (nread > 0)
        assert_int_equal(or_stream_write(&r->relay_in, data, (size_t)nread), 0);
}

static void on_relay_out_connect(or_stream *s, int status)
{
    assert_int_equal(status, 0);
    assert_int_equal(or_stream_read_start(s), 0);
}

static void on_relay_connection(uv_stream_t *listener, int status)
{
    rig *r = listener->data;
    struct sockaddr_in server;
    int len = sizeof server;
    assert_int_equal(status, 0);
    assert_int_equal(or_stream_init(&r->relay_in, &r->sl, r, NULL), 0);
    assert_int_equal(or_stream_init(&r->relay_out, &r->sl, r, NULL), 0);
    r->relay_open = true;
    r->relay_in.on_read = on_relay_in_read;
    r->relay_out.on_read = on_relay_out_read;
    r->relay_out.on_connect = on_relay_out_connect;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&r->relay_in.tcp), 0);
    assert_int_equal(or_stream_accepted(&r->relay_in), 0);
    assert_int_equal(or_stream_read_start(&r->relay_in), 0);
    assert_int_equal(uv_tcp_getsockname(&r->listener, (struct sockaddr *)&server, &len), 0);
    assert_int_equal(or_stream_connect(&r->relay_out, (const struct sockaddr *)&server), 0);
}

/* ---- running a case ---- */

static void on_deadline(uv_timer_t *t)
{
    rig *r = t->data;
    fail_msg("not done after %d ms: %u outcomes, %zu of %zu bytes, %u EOFs", DEADLINE_MS,
             r->handshakes, r->got_len, r->msg_len, r->eofs);
}

static void listen_on(rig *r, uv_tcp_t *l, uv_connection_cb cb, struct sockaddr_in *bound)
{
    struct sockaddr_in any;
    int len = sizeof *bound;
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &any), 0);
    assert_int_equal(uv_tcp_init(&r->loop, l), 0);
    l->data = r;
    assert_int_equal(uv_tcp_bind(l, (const struct sockaddr *)&any, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)l, 8, cb), 0);
    assert_int_equal(uv_tcp_getsockname(l, (struct sockaddr *)bound, &len), 0);
}

static void run_case(rig *r, client_kind kind, bool via_relay, const char *msg, size_t msg_len,
                     uint64_t detect_ms)
{
    struct sockaddr_in server, relay;
    uv_timer_t *timers[] = {&r->detect, &r->restart, &r->deadline, &r->split};
    r->kind = kind;
    r->via_relay = via_relay;
    r->msg = msg;
    r->msg_len = msg_len;
    r->detect_ms = detect_ms;
    r->suites[0] = SUITE;
    tls_fixture_conf(&r->conf[0], MBEDTLS_SSL_IS_CLIENT, r->suites);
    tls_fixture_conf(&r->conf[1], MBEDTLS_SSL_IS_SERVER, r->suites);

    assert_int_equal(uv_loop_init(&r->loop), 0);
    assert_int_equal(or_stream_loop_init(&r->sl, &r->loop), 0);
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++) {
        uv_timer_init(&r->loop, timers[i]);
        timers[i]->data = r;
    }
    uv_timer_start(&r->deadline, on_deadline, DEADLINE_MS, 0);
    listen_on(r, &r->listener, on_connection, &server);
    if (via_relay)
        listen_on(r, &r->relay_listener, on_relay_connection, &relay);

    const mbedtls_ssl_config *conf = kind == CLIENT_TLS ? &r->conf[0] : NULL;
    assert_int_equal(or_stream_init(&r->client, &r->sl, r, conf), 0);
    r->client.peer_checked_by_owner = true;
    r->client.on_read = on_client_read;
    r->client.on_connect = on_client_connect;
    r->client.on_handshake = on_client_handshake;
    assert_int_equal(
        or_stream_connect(&r->client, (const struct sockaddr *)(via_relay ? &relay : &server)), 0);

    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    or_stream_loop_close(&r->sl);
    assert_int_equal(uv_run(&r->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r->loop), 0); /* every handle was closed */
    or_buf_free(&r->relay_stash);
    mbedtls_ssl_config_free(&r->conf[0]);
    mbedtls_ssl_config_free(&r->conf[1]);

    assert_true(r->detecting_at_start);
    assert_int_equal(r->handshakes, 1);
    assert_int_equal(r->eofs, 1);
    assert_int_equal(r->got_len, msg_len);
    assert_memory_equal(r->got, msg, msg_len);
    assert_int_equal(r->banner_len, strlen(BANNER)); /* the server's first write arrived */
    assert_memory_equal(r->banner, BANNER, r->banner_len);
}

#define TLS_MSG "hello over TLS"
#define HTTP_MSG "GET / HTTP/1.1\r\nHost: x\r\n\r\n"

static void test_tls_client(void **state)
{
    (void)state;
    rig r = {0};
    run_case(&r, CLIENT_TLS, false, TLS_MSG, strlen(TLS_MSG), 2000);
    assert_true(r.server_tls);
    assert_false(r.decided_by_timer);
    assert_true(r.cipher[0] != '\0' && strcmp(r.cipher, "none") != 0);
}

static void test_plaintext_client(void **state)
{
    (void)state;
    rig r = {0};
    run_case(&r, CLIENT_PLAIN, false, HTTP_MSG, strlen(HTTP_MSG), 2000);
    assert_false(r.server_tls);
    assert_false(r.decided_by_timer);
    assert_string_equal(r.cipher, "none");
}

static void test_silent_client_is_plaintext_after_the_timeout(void **state)
{
    (void)state;
    rig r = {0};
    run_case(&r, CLIENT_SILENT, false, "reply", 5, 100);
    assert_false(r.server_tls);
    assert_true(r.decided_by_timer);
    assert_string_equal(r.cipher, "none");
}

static void test_tls_client_first_byte_alone(void **state)
{
    (void)state;
    rig r = {0};
    run_case(&r, CLIENT_TLS, true, TLS_MSG, strlen(TLS_MSG), 2000);
    assert_true(r.waited_on_one_byte);
    assert_true(r.server_tls);
    assert_false(r.decided_by_timer);
}

static void test_plaintext_starting_with_0x16(void **state)
{
    (void)state;
    static const char msg[] = "\x16 is not a TLS record";
    rig r = {0};
    run_case(&r, CLIENT_PLAIN, true, msg, sizeof msg - 1, 2000);
    assert_true(r.waited_on_one_byte);
    assert_false(r.server_tls);
    assert_false(r.decided_by_timer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls_client),
        cmocka_unit_test(test_plaintext_client),
        cmocka_unit_test(test_silent_client_is_plaintext_after_the_timeout),
        cmocka_unit_test(test_tls_client_first_byte_alone),
        cmocka_unit_test(test_plaintext_starting_with_0x16),
    };
    return cmocka_run_group_tests_name("stream_detect", tests, tls_fixture_setup,
                                       tls_fixture_teardown);
}
