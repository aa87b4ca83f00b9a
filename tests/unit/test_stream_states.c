/*
 * Unit tests for the states of a stream (stream.h): its link, its reading
 * and its shutdown, as the public accessors show them, over a plain
 * loopback connection driven by a real libuv loop.
 *
 * The client connects, writes a short message, and shuts down twice (the
 * second call changes nothing; a write after it is refused with UV_EPIPE).
 * Its output counts as done only once the FIN has left. The server stops
 * and starts reading twice in a row around its first read (repeats change
 * nothing), gets the message and exactly one EOF, after which it neither
 * reads nor can be made to read again. A stream that was never connected is
 * neither connected nor established.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include <uv.h>

#include "outrider/stream.h"

#define MSG "states of a stream"
#define DEADLINE_MS 10000

typedef struct {
    uv_loop_t loop;
    or_stream_loop sl;
    uv_tcp_t listener;
    uv_timer_t deadline;
    or_stream client, server;
    bool server_open;
    char got[64];
    size_t got_len;
    unsigned eofs, client_drains, closed;
    bool client_done_seen;  /* output_done observed in a drain callback */
    bool closing;
} rig;

static void on_closed(or_stream *s)
{
    rig *r = s->owner;
    r->closed++;
}

static void close_all(rig *r)
{
    assert_false(r->closing);
    r->closing = true;
    or_stream_close(&r->client);
    or_stream_close(&r->client); /* a second close changes nothing */
    if (r->server_open)
        or_stream_close(&r->server);
    uv_close((uv_handle_t *)&r->listener, NULL);
    uv_close((uv_handle_t *)&r->deadline, NULL);
}

static void on_server_read(or_stream *s, ssize_t nread, const char *data)
{
    rig *r = s->owner;
    if (nread == UV_EOF) {
        r->eofs++;
        assert_true(or_stream_eof(s));
        assert_false(or_stream_reading(s));
        assert_int_equal(or_stream_read_start(s), 0); /* the end stays the end */
        assert_false(or_stream_reading(s));
        or_stream_read_stop(s);
        assert_true(or_stream_eof(s));
        if (r->client_done_seen)
            close_all(r);
        return;
    }
    assert_true(nread > 0);
    assert_true(or_stream_reading(s));
    assert_false(or_stream_eof(s));
    assert_true(r->got_len + (size_t)nread < sizeof r->got);
    memcpy(r->got + r->got_len, data, (size_t)nread);
    r->got_len += (size_t)nread;
    or_stream_read_stop(s);
    or_stream_read_stop(s);
    assert_false(or_stream_reading(s));
    assert_int_equal(or_stream_read_start(s), 0);
    assert_int_equal(or_stream_read_start(s), 0);
    assert_true(or_stream_reading(s));
}

static void on_connection(uv_stream_t *listener, int status)
{
    rig *r = listener->data;
    assert_int_equal(status, 0);
    assert_int_equal(or_stream_init(&r->server, &r->sl, r, NULL), 0);
    r->server_open = true;
    r->server.on_read = on_server_read;
    r->server.on_close = on_closed;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&r->server.tcp), 0);
    assert_false(or_stream_connected(&r->server));
    assert_int_equal(or_stream_accepted(&r->server), 0);
    assert_true(or_stream_connected(&r->server));
    assert_true(or_stream_established(&r->server)); /* plain: no handshake */
    assert_false(or_stream_reading(&r->server));
    assert_int_equal(or_stream_read_start(&r->server), 0);
    assert_true(or_stream_reading(&r->server));
}

static void on_client_drain(or_stream *s)
{
    rig *r = s->owner;
    r->client_drains++;
    if (!or_stream_output_done(s))
        return;
    r->client_done_seen = true;
    if (r->eofs == 1)
        close_all(r);
}

static void on_client_read(or_stream *s, ssize_t nread, const char *data)
{
    (void)s, (void)data;
    assert_true(nread < 0); /* the server sends nothing */
}

static void on_client_connect(or_stream *s, int status)
{
    assert_int_equal(status, 0);
    assert_true(or_stream_connected(s));
    assert_true(or_stream_established(s));
    assert_int_equal(or_stream_write(s, MSG, strlen(MSG)), 0);
    or_stream_shutdown(s);
    or_stream_shutdown(s);
    assert_int_equal(or_stream_write(s, "x", 1), UV_EPIPE);
    assert_false(or_stream_output_done(s)); /* the FIN leaves with the turn's flush */
    assert_int_equal(or_stream_read_start(s), 0);
}

static void on_deadline(uv_timer_t *t)
{
    rig *r = t->data;
    fail_msg("not done after %d ms: %zu bytes, %u EOFs", DEADLINE_MS, r->got_len, r->eofs);
}

static void test_plain_stream_states(void **state)
{
    (void)state;
    rig r = {0};
    struct sockaddr_in any, bound;
    int len = sizeof bound;
    assert_int_equal(uv_loop_init(&r.loop), 0);
    assert_int_equal(or_stream_loop_init(&r.sl, &r.loop), 0);
    uv_timer_init(&r.loop, &r.deadline);
    r.deadline.data = &r;
    uv_timer_start(&r.deadline, on_deadline, DEADLINE_MS, 0);
    assert_int_equal(uv_ip4_addr("127.0.0.1", 0, &any), 0);
    assert_int_equal(uv_tcp_init(&r.loop, &r.listener), 0);
    r.listener.data = &r;
    assert_int_equal(uv_tcp_bind(&r.listener, (const struct sockaddr *)&any, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&r.listener, 8, on_connection), 0);
    assert_int_equal(uv_tcp_getsockname(&r.listener, (struct sockaddr *)&bound, &len), 0);

    assert_int_equal(or_stream_init(&r.client, &r.sl, &r, NULL), 0);
    r.client.on_read = on_client_read;
    r.client.on_connect = on_client_connect;
    r.client.on_drain = on_client_drain;
    r.client.on_close = on_closed;
    assert_false(or_stream_connected(&r.client));
    assert_false(or_stream_established(&r.client));
    assert_false(or_stream_output_done(&r.client));
    assert_int_equal(or_stream_connect(&r.client, (const struct sockaddr *)&bound), 0);

    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    or_stream_loop_close(&r.sl);
    assert_int_equal(uv_run(&r.loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&r.loop), 0); /* every handle was closed */

    assert_int_equal(r.got_len, strlen(MSG));
    assert_memory_equal(r.got, MSG, r.got_len);
    assert_int_equal(r.eofs, 1);
    assert_true(r.client_done_seen);
    assert_int_equal(r.closed, 2); /* one close callback per stream */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_stream_states),
    };
    return cmocka_run_group_tests_name("stream_states", tests, NULL, NULL);
}
