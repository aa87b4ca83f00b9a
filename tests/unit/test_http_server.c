/*
 * The HTTP/1 server kit (lib/http/http_server.c), on loopback with a real
 * socket: a libuv loop runs the server in this thread while a client
 * thread speaks raw bytes with blocking sockets. Checks: a route answers
 * 200 with its body and Connection: close, an unknown path 404, a wrong
 * method 405 with Allow, a body over the limit 413 before it is sent, a
 * malformed head 400; a client that sends nothing is closed at the
 * first-byte deadline; a second connection from one address over the cap
 * is closed unserved and counted; stop closes an idle connection and the
 * loop then ends (every handle closed, nothing leaked under ASan).
 *
 * The client (lib/http/http_client.c) against the same server, on one
 * loop: a POST gets its body echoed, an unknown path its 404 (a status,
 * not an error), a closed port an error naming the server.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "outrider/http_client.h"
#include "outrider/http_server.h"

static const or_http_route routes[] = {{"/hello", "GET"}, {"/echo", "POST"}};

typedef struct {
    uv_loop_t loop;
    uv_async_t done;
    or_http_server srv;
    int port;
    int failures;
    char log[2048];
    pthread_t thread;
} fixture;

static void handler(void *ctx, or_http_exchange *x, const or_http_msg *req)
{
    (void)ctx;
    if (req->state == OR_HTTP_MSG_TOO_LARGE) {
        or_http_respond(x, 413, "text/plain", "", "too large\n", 10);
        return;
    }
    if (req->state != OR_HTTP_MSG_COMPLETE) {
        or_http_respond(x, 400, "text/plain", "", "malformed\n", 10);
        return;
    }
    int status;
    const char *allowed;
    int i = or_http_route_find(routes, 2, req->head.url, req->head.url_len, req->method, &status,
                               &allowed);
    if (i < 0) {
        char allow[64] = "";
        if (allowed)
            snprintf(allow, sizeof allow, "Allow: %s\r\n", allowed);
        or_http_respond(x, status, "text/plain", allow, "no\n", 3);
    } else if (i == 0) {
        or_http_respond(x, 200, "text/plain", "", "hello\n", 6);
    } else {
        or_http_respond(x, 200, "text/plain", "", req->body ? req->body : "", req->body_len);
    }
}

/* ---- the client thread: blocking sockets, bounded by timeouts ---- */

static int client_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Reads until EOF (or the 3 s timeout: -1). */
static ssize_t read_all(int fd, char *buf, size_t cap)
{
    size_t have = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        have += (size_t)n;
    }
    buf[have] = '\0';
    return (ssize_t)have;
}

static void expect(fixture *f, bool ok, const char *what)
{
    if (!ok) {
        f->failures++;
        size_t n = strlen(f->log);
        snprintf(f->log + n, sizeof f->log - n, "%s\n", what);
    }
}

/* Sends `req`, reads the whole answer; true when it holds `want`. */
static bool exchange(fixture *f, const char *req, const char *want)
{
    char buf[4096];
    int fd = client_connect(f->port);
    if (fd < 0)
        return false;
    bool ok = send(fd, req, strlen(req), 0) == (ssize_t)strlen(req) &&
              read_all(fd, buf, sizeof buf) > 0 && strstr(buf, want) != NULL;
    close(fd);
    return ok;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *client(void *arg)
{
    fixture *f = arg;
    char buf[256];
    expect(f, exchange(f, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n",
                       "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n"
                       "Connection: close\r\n\r\nhello\n"), "GET /hello: 200");
    expect(f, exchange(f, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nping",
                       "\r\n\r\nping"), "POST /echo: the body back");
    expect(f, exchange(f, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n", "HTTP/1.1 404 Not Found"),
           "unknown path: 404");
    expect(f, exchange(f, "GET /echo HTTP/1.1\r\nHost: t\r\n\r\n", "Allow: POST"),
           "wrong method: 405 with Allow");
    expect(f, exchange(f, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n",
                       "HTTP/1.1 413 Content Too Large"), "body over the limit: 413");
    expect(f, exchange(f, "GET /hello HTTP/1.1\r\nHost: t\r\nX : y\r\n\r\n", "HTTP/1.1 400"),
           "whitespace before a colon: 400");
    /* nothing sent: closed at the first-byte deadline (200 ms) */
    int fd = client_connect(f->port);
    double t0 = now_s();
    ssize_t n = read_all(fd, buf, sizeof buf);
    double spent = now_s() - t0;
    expect(f, n == 0 && spent > 0.15 && spent < 2.0, "silent client: closed at the deadline");
    close(fd);
    /* one connection per address: the second is closed unserved */
    int first = client_connect(f->port);
    usleep(100 * 1000);
    int second = client_connect(f->port);
    expect(f, read_all(second, buf, sizeof buf) == 0, "over the per-address cap: closed");
    close(second);
    /* stop with an idle connection open: it is closed, the loop ends */
    uv_async_send(&f->done);
    expect(f, read_all(first, buf, sizeof buf) == 0, "stop closes an idle connection");
    close(first);
    return NULL;
}

static void on_done(uv_async_t *a)
{
    fixture *f = a->data;
    assert_true(f->srv.refused >= 1);
    or_http_server_stop(&f->srv);
    uv_close((uv_handle_t *)a, NULL);
}

static void test_server(void **state)
{
    (void)state;
    static fixture f;
    char err[256];
    assert_int_equal(uv_loop_init(&f.loop), 0);
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    const or_http_server_opts opts = { .head_max = 1024, .body_max = 16, .read_max = 4096,
        .first_byte_ms = 200, .timeout_ms = 2000, .max_conns = 8, .max_per_ip = 1,
        .handler = handler,
    };
    assert_int_equal(or_http_server_start(&f.srv, &f.loop, (struct sockaddr *)&a, &opts, err,
                                          sizeof err), 0);
    struct sockaddr_storage bound;
    int len = sizeof bound;
    assert_int_equal(uv_tcp_getsockname(&f.srv.listener, (struct sockaddr *)&bound, &len), 0);
    f.port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_async_init(&f.loop, &f.done, on_done);
    f.done.data = &f;
    pthread_create(&f.thread, NULL, client, &f);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    pthread_join(f.thread, NULL);
    if (f.failures)
        fail_msg("%s", f.log);
    assert_int_equal(f.srv.nconns, 0);
    assert_true(f.srv.served >= 6);
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

/* ---- the client ---- */

typedef struct {
    uv_loop_t loop;
    or_stream_loop sl;
    or_http_server srv;
    struct sockaddr_in addr, closed;
    int step;
    char got[3][128];
} client_fixture;

static void next_request(client_fixture *f);

static void on_answer(void *ctx, int status, const char *body, size_t len, const char *err)
{
    client_fixture *f = ctx;
    snprintf(f->got[f->step], sizeof f->got[0], "%d %.*s%s", status, (int)len, body,
             err ? err : "");
    f->step++;
    next_request(f);
}

static void next_request(client_fixture *f)
{
    or_http_client_req req = {
        .sl = &f->sl, .addr = (const struct sockaddr *)&f->addr, .peer_name = "the test server",
        .host = "t", .method = "POST", .path = "/echo", .body = "ping", .body_len = 4,
        .content_type = "text/plain", .body_max = 64, .timeout_ms = 2000,
    };
    if (f->step == 1) {
        req.method = "GET";
        req.path = "/nope";
        req.body_len = 0;
    } else if (f->step == 2) {
        req.addr = (const struct sockaddr *)&f->closed;
    } else if (f->step == 3) {
        or_http_server_stop(&f->srv);
        or_stream_loop_close(&f->sl);
        return;
    }
    assert_int_equal(or_http_client_start(&req, on_answer, f), 0);
}

static void test_client(void **state)
{
    (void)state;
    static client_fixture f;
    char err[256];
    assert_int_equal(uv_loop_init(&f.loop), 0);
    assert_int_equal(or_stream_loop_init(&f.sl, &f.loop), 0);
    uv_ip4_addr("127.0.0.1", 0, &f.addr);
    const or_http_server_opts opts = {
        .head_max = 1024, .body_max = 16, .read_max = 4096,
        .first_byte_ms = 1000, .timeout_ms = 2000, .handler = handler,
    };
    assert_int_equal(or_http_server_start(&f.srv, &f.loop, (struct sockaddr *)&f.addr, &opts,
                                          err, sizeof err), 0);
    int len = sizeof f.addr;
    assert_int_equal(uv_tcp_getsockname(&f.srv.listener, (struct sockaddr *)&f.addr, &len), 0);
    /* a port nobody listens on: bind one, note it, close it */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    uv_ip4_addr("127.0.0.1", 0, &f.closed);
    socklen_t slen = sizeof f.closed;
    assert_int_equal(bind(fd, (struct sockaddr *)&f.closed, sizeof f.closed), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&f.closed, &slen), 0);
    close(fd);
    next_request(&f);
    assert_int_equal(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    assert_string_equal(f.got[0], "200 ping");
    assert_string_equal(f.got[1], "404 no\n");
    assert_string_equal(f.got[2], "-1 cannot connect to the test server: connection refused");
    assert_int_equal(uv_loop_close(&f.loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_server), cmocka_unit_test(test_client)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
