/*
 * Plain and TLS streams over libuv: life cycle, input, detection and
 * connect (stream_output.c has the output side).
 *
 * mbedTLS is driven through an in-memory BIO. Socket reads land in one
 * buffer per loop (no malloc per read); for TLS that ciphertext is offered to
 * mbedTLS by bio_recv, which returns WANT_READ once it is used up, and the
 * plaintext mbedTLS produces is handed to the reader from a second per-loop
 * buffer. Every read is consumed completely before the callback returns, so
 * the per-loop buffers can be reused by the next stream.
 *
 * A detecting TLS server stream looks at its first read instead of
 * decrypting it (stream.h says what decides). The bytes wait in `held`, as
 * ciphertext does for a paused reader, until they can be consumed in order:
 * by the handshake, or by the reader once the stream is plain.
 *
 * Three small state machines (stream.h) say where a stream is: its link
 * (connected, handshake), its reading (off, on, ended) and its shutdown.
 * Each moves only through its set_ function, which asserts the move, and
 * the libuv callbacks assert the states they may run in; the other flags
 * are bookkeeping of the output queue and the replay of held input.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

/* ---- states ---- */

#define BIT(x) (1u << (x))

static void set_link(or_stream *s, or_stream_link to)
{
    static const unsigned from[] = {
        [OR_STREAM_CONNECTED] = BIT(OR_STREAM_UNCONNECTED),
        [OR_STREAM_DETECTING] = BIT(OR_STREAM_CONNECTED),
        [OR_STREAM_HANDSHAKING] = BIT(OR_STREAM_CONNECTED) | BIT(OR_STREAM_DETECTING),
        [OR_STREAM_ESTABLISHED] = BIT(OR_STREAM_UNCONNECTED) | BIT(OR_STREAM_HANDSHAKING) |
                                  BIT(OR_STREAM_DETECTING),
        [OR_STREAM_FAILED] = BIT(OR_STREAM_HANDSHAKING) | BIT(OR_STREAM_DETECTING) |
                             BIT(OR_STREAM_FAILED),
    };
    (void)from; /* read by assert only */
    assert(to != OR_STREAM_UNCONNECTED && (from[to] & BIT(s->_link)));
    /* a plain stream is established when it connects, a detecting one when
     * it finds plaintext (its TLS context is gone by then); TLS by its
     * handshake */
    assert(s->ssl ? s->_link != OR_STREAM_UNCONNECTED || to == OR_STREAM_CONNECTED
                  : to == OR_STREAM_ESTABLISHED);
    assert(!(s->ssl && s->_link == OR_STREAM_DETECTING && to == OR_STREAM_ESTABLISHED));
    s->_link = to;
}

static void set_read(or_stream *s, or_stream_read to)
{
    assert(s->_read != OR_STREAM_READ_EOF && s->_read != to);
    assert(to != OR_STREAM_READ_EOF || s->_read == OR_STREAM_READ_ON);
    s->_read = to;
}

bool or_stream_connected(const or_stream *s) { return connected(s); }
bool or_stream_established(const or_stream *s) { return established(s); }
bool or_stream_reading(const or_stream *s) { return reading(s); }
bool or_stream_eof(const or_stream *s) { return s->_read == OR_STREAM_READ_EOF; }
bool or_stream_detecting(const or_stream *s) { return detecting(s); }

/* ---- the mbedTLS BIO ---- */

static int bio_send(void *ctx, const unsigned char *data, size_t len)
{
    or_stream *s = ctx;
    return or_buf_append(&s->_pending, data, len) == 0 ? (int)len : MBEDTLS_ERR_SSL_ALLOC_FAILED;
}

static int bio_recv(void *ctx, unsigned char *out, size_t len)
{
    or_stream *s = ctx;
    if (s->_tls_in_len == 0)
        return MBEDTLS_ERR_SSL_WANT_READ;
    size_t n = len < s->_tls_in_len ? len : s->_tls_in_len;
    memcpy(out, s->_tls_in, n);
    s->_tls_in += n;
    s->_tls_in_len -= n;
    return (int)n;
}

/* ---- life cycle ---- */

int or_stream_init(or_stream *s, or_stream_loop *sl, void *owner,
                   const mbedtls_ssl_config *tls_conf)
{
    memset(s, 0, sizeof *s);
    s->sl = sl;
    s->owner = owner;
    if (tls_conf) {
        s->ssl = malloc(sizeof *s->ssl);
        if (!s->ssl)
            return UV_ENOMEM;
        mbedtls_ssl_init(s->ssl);
        if (mbedtls_ssl_setup(s->ssl, tls_conf) != 0) {
            mbedtls_ssl_free(s->ssl);
            free(s->ssl);
            s->ssl = NULL;
            return UV_ENOMEM;
        }
        mbedtls_ssl_set_bio(s->ssl, s, bio_send, bio_recv, NULL);
    }
    int r = uv_tcp_init(sl->loop, &s->tcp);
    if (r != 0 && s->ssl) {
        mbedtls_ssl_free(s->ssl);
        free(s->ssl);
        s->ssl = NULL;
    }
    s->tcp.data = s;
    return r;
}

int or_stream_set_tls_conf(or_stream *s, const mbedtls_ssl_config *conf)
{
    if (!s->ssl || s->_link != OR_STREAM_UNCONNECTED)
        return UV_EINVAL;
    mbedtls_ssl_free(s->ssl);
    mbedtls_ssl_init(s->ssl);
    if (mbedtls_ssl_setup(s->ssl, conf) != 0)
        return UV_ENOMEM;
    mbedtls_ssl_set_bio(s->ssl, s, bio_send, bio_recv, NULL);
    return 0;
}

int or_stream_accepted(or_stream *s)
{
    set_link(s, s->ssl ? OR_STREAM_CONNECTED : OR_STREAM_ESTABLISHED);
    return uv_tcp_nodelay(&s->tcp, 1);
}

static void on_closed(uv_handle_t *h)
{
    or_stream *s = h->data;
    or_buf_free(&s->_pending);
    or_buf_free(&s->_inflight);
    or_buf_free(&s->_held);
    if (s->ssl) {
        mbedtls_ssl_free(s->ssl);
        free(s->ssl);
        s->ssl = NULL;
        or_tls_peer_free(&s->peer);
    }
    if (s->on_close)
        s->on_close(s);
}

void or_stream_close(or_stream *s)
{
    if (s->_closing)
        return;
    s->_closing = true;
    if (s->_flush_scheduled)
        or_stream_unschedule_flush(s);
    /* Best effort: let a TLS alert or close_notify reach the peer. */
    if (s->ssl && connected(s) && !s->_writing && s->_pending.len > 0) {
        uv_buf_t b = uv_buf_init(s->_pending.data, (unsigned)s->_pending.len);
        (void)uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
    }
    uv_close((uv_handle_t *)&s->tcp, on_closed);
}

const char *or_stream_cipher(const or_stream *s)
{
    if (!s->ssl)
        return "none";
    return established(s) ? mbedtls_ssl_get_ciphersuite(s->ssl) : "";
}

const char *or_stream_alpn(const or_stream *s)
{
    return s->ssl && established(s) ? mbedtls_ssl_get_alpn_protocol(s->ssl) : NULL;
}

/* ---- input ---- */

/* The end, once: nothing is read after it. */
static void deliver_eof(or_stream *s)
{
    if (s->_read == OR_STREAM_READ_EOF)
        return;
    set_read(s, OR_STREAM_READ_EOF);
    uv_read_stop((uv_stream_t *)&s->tcp);
    s->on_read(s, UV_EOF, NULL);
}

static void finish_handshake(or_stream *s, int ret)
{
    if (ret == 0 && !s->peer_checked_by_owner && or_tls_peer_finish(&s->peer, s->ssl) != 0) {
        ret = MBEDTLS_ERR_X509_CERT_VERIFY_FAILED;
        mbedtls_ssl_send_alert_message(s->ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL,
                                       MBEDTLS_SSL_ALERT_MSG_BAD_CERT);
    }
    s->tls_error = ret;
    set_link(s, ret == 0 ? OR_STREAM_ESTABLISHED : OR_STREAM_FAILED);
    s->on_handshake(s, ret == 0 ? 0 : UV_EPROTO);
}

static void drive_handshake(or_stream *s)
{
    int ret = mbedtls_ssl_handshake(s->ssl);
    or_stream_schedule_flush(s);
    if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE)
        return;
    finish_handshake(s, ret);
}

/* The end of the stream as mbedTLS reported it: close_notify (or a bare
 * EOF it saw as 0) or an error. */
static void deliver_final(or_stream *s, int ret)
{
    if (ret == 0 || ret == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY) {
        deliver_eof(s);
        return;
    }
    s->tls_error = ret;
    s->on_read(s, UV_EPROTO, NULL);
}

/* Decrypts records into the loop's plaintext buffer until there is no room
 * for another full record or mbedTLS has no more data; returns the bytes
 * gathered, with mbedTLS's last return in *ret. */
static size_t gather_records(or_stream *s, int *ret)
{
    size_t have = 0;
    do {
        *ret = mbedtls_ssl_read(s->ssl, (unsigned char *)s->sl->plain_buf + have,
                                OR_STREAM_PLAIN_BUF_SIZE - have);
        if (*ret > 0)
            have += (size_t)*ret;
    } while (*ret > 0 && OR_STREAM_PLAIN_BUF_SIZE - have >= MBEDTLS_SSL_IN_CONTENT_LEN);
    return have;
}

/*
 * Decrypts what the socket brought. Records are gathered (room for four
 * full ones) and handed over together, so a bulk transfer reaches its
 * reader in large pieces. An end found behind gathered data waits in
 * read_final if the reader pauses on that data.
 */
static void decrypt_all(or_stream *s)
{
    while (!s->_closing && reading(s)) {
        int ret;
        size_t have = gather_records(s, &ret);
        if (have > 0)
            s->on_read(s, (ssize_t)have, s->sl->plain_buf);
        if (ret > 0)
            continue; /* the buffer filled up: more may follow */
        if (ret == MBEDTLS_ERR_SSL_WANT_READ || ret == MBEDTLS_ERR_SSL_WANT_WRITE || s->_closing)
            break;
        if (reading(s))
            deliver_final(s, ret);
        else
            s->_read_final = ret != 0 ? ret : MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY;
        break;
    }
    or_stream_schedule_flush(s); /* a read may produce alerts to send */
}

/*
 * Keeps the ciphertext a paused reader has not consumed, for replay. During
 * a replay the unread rest lies inside `held` itself (held.len is 0 then):
 * it moves to the front.
 */
static void hold_unread(or_stream *s)
{
    if (s->_closing || s->_tls_in_len == 0)
        return;
    if (s->_replaying) {
        memmove(s->_held.data, s->_tls_in, s->_tls_in_len);
        s->_held.len = s->_tls_in_len;
    } else if (or_buf_append(&s->_held, s->_tls_in, s->_tls_in_len) != 0) {
        s->on_read(s, UV_ENOMEM, NULL);
    }
    s->_tls_in_len = 0;
}

static void consume_ciphertext(or_stream *s, const char *data, size_t len)
{
    s->_tls_in = data;
    s->_tls_in_len = len;
    if (!established(s)) {
        drive_handshake(s);
        if (!established(s) || s->_closing)
            return;
    }
    if (tls_wake(s) != 0) {
        s->on_read(s, UV_ENOMEM, NULL);
        return;
    }
    s->_tls_busy = true; /* the reader may write meanwhile; the read goes on */
    decrypt_all(s);
    s->_tls_busy = false;
    hold_unread(s);
    tls_rest(s);
}

/* Feeds `held` to mbedTLS; what a paused reader leaves unread stays in it. */
static void consume_held(or_stream *s)
{
    size_t len = s->_held.len;
    s->_held.len = 0;
    s->_replaying = true;
    consume_ciphertext(s, s->_held.data, len);
    s->_replaying = false;
}

/* A plain stream's held input (what detection read) goes to the reader in
 * one piece, then the end if the socket ended behind it. */
static void replay_plain(or_stream *s)
{
    if (s->_held.len > 0) {
        or_buf held = s->_held;
        s->_held = (or_buf){0};
        s->on_read(s, (ssize_t)held.len, held.data);
        or_buf_free(&held);
    }
    if (s->_eof_held && reading(s) && !s->_closing)
        deliver_eof(s);
}

void or_stream_replay_held(or_stream *s)
{
    s->_replay_wanted = false;
    if (s->_closing || !reading(s))
        return;
    if (!s->ssl) {
        replay_plain(s);
        return;
    }
    if (s->_read_final != 0) {
        int ret = s->_read_final;
        s->_read_final = 0;
        deliver_final(s, ret);
        return;
    }
    if (s->_held.len == 0)
        return;
    consume_held(s);
    if (s->_eof_held && s->_held.len == 0 && reading(s) && !s->_closing)
        deliver_eof(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    or_stream *s = h->data;
    *buf = uv_buf_init(s->sl->read_buf, OR_STREAM_READ_BUF_SIZE);
}

static void on_tls_read(or_stream *s, ssize_t nread, const char *data)
{
    if (s->_read_final != 0)
        return; /* the end is known; the restart's replay delivers it */
    if (nread < 0 && s->_held.len > 0) {
        s->_eof_held = nread == UV_EOF; /* after the held records */
        if (!s->_eof_held)
            s->on_read(s, nread, NULL);
        return;
    }
    if (nread < 0) {
        if (!established(s))
            finish_handshake(s, MBEDTLS_ERR_SSL_CONN_EOF);
        else if (nread == UV_EOF)
            deliver_eof(s);
        else
            s->on_read(s, nread, NULL);
        return;
    }
    if (s->_held.len > 0 && or_buf_append(&s->_held, data, (size_t)nread) == 0)
        return; /* paused with ciphertext held: keep the order */
    consume_ciphertext(s, data, (size_t)nread);
}

static void on_plain_read(or_stream *s, ssize_t nread, const char *data)
{
    if (s->_held.len > 0) { /* what detection read is not delivered yet: keep the order */
        if (nread == UV_EOF)
            s->_eof_held = true;
        else if (nread < 0)
            s->on_read(s, nread, NULL);
        else if (or_buf_append(&s->_held, data, (size_t)nread) != 0)
            s->on_read(s, UV_ENOMEM, NULL);
        return;
    }
    if (nread == UV_EOF)
        deliver_eof(s);
    else
        s->on_read(s, nread, data);
}

/* ---- detection: TLS or plaintext ---- */

typedef enum { SEEN_TOO_LITTLE, SEEN_TLS, SEEN_PLAIN } or_stream_seen;

/* A TLS client opens with a handshake record: type 0x16, then the major
 * version 0x03 of every TLS (and SSL 3) record header. */
static or_stream_seen classify(const char *data, size_t len)
{
    const unsigned char *p = (const unsigned char *)data;
    if (len == 0)
        return SEEN_TOO_LITTLE;
    if (p[0] != 0x16)
        return SEEN_PLAIN;
    if (len < 2)
        return SEEN_TOO_LITTLE;
    return p[1] == 0x03 ? SEEN_TLS : SEEN_PLAIN;
}

/* The peer speaks plaintext: the TLS context goes, and the reader gets
 * what was read (held) before anything else, then the end if `eof`. */
static void become_plain(or_stream *s, bool eof)
{
    mbedtls_ssl_free(s->ssl);
    free(s->ssl);
    s->ssl = NULL;
    set_link(s, OR_STREAM_ESTABLISHED);
    s->_eof_held = eof;
    s->on_handshake(s, 0);
    if (!s->_closing && reading(s))
        replay_plain(s);
}

/* The peer speaks TLS: the handshake starts with the bytes read so far. */
static void become_tls(or_stream *s, const char *data, size_t len)
{
    set_link(s, OR_STREAM_HANDSHAKING);
    if (!s->peer_checked_by_owner)
        or_tls_peer_attach(&s->peer, s->ssl);
    if (s->_held.len > 0)
        consume_held(s); /* the first byte came alone; `data` is in held too */
    else
        consume_ciphertext(s, data, len);
}

static void on_detect_read(or_stream *s, ssize_t nread, const char *data)
{
    if (nread == UV_EOF) {
        become_plain(s, true);
        return;
    }
    if (nread < 0) {
        finish_handshake(s, MBEDTLS_ERR_SSL_CONN_EOF);
        return;
    }
    const char *seen = data;
    size_t seen_len = (size_t)nread;
    if (s->_held.len > 0) {
        if (or_buf_append(&s->_held, data, seen_len) != 0) {
            finish_handshake(s, MBEDTLS_ERR_SSL_ALLOC_FAILED);
            return;
        }
        seen = s->_held.data;
        seen_len = s->_held.len;
    }
    or_stream_seen what = classify(seen, seen_len);
    if (what == SEEN_TLS) {
        become_tls(s, data, (size_t)nread);
        return;
    }
    if (s->_held.len == 0 && or_buf_append(&s->_held, data, (size_t)nread) != 0) {
        finish_handshake(s, MBEDTLS_ERR_SSL_ALLOC_FAILED);
        return;
    }
    if (what == SEEN_PLAIN)
        become_plain(s, false);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    or_stream *s = stream->data;
    if (nread == 0 || s->_closing)
        return;
    assert(reading(s) && connected(s));
    if (detecting(s))
        on_detect_read(s, nread, buf->base);
    else if (s->ssl)
        on_tls_read(s, nread, buf->base);
    else
        on_plain_read(s, nread, buf->base);
}

int or_stream_read_start(or_stream *s)
{
    if (s->_closing || s->_read != OR_STREAM_READ_OFF)
        return 0;
    set_read(s, OR_STREAM_READ_ON);
    if (s->_held.len > 0 || s->_read_final != 0 || (!s->ssl && s->_eof_held)) {
        s->_replay_wanted = true;
        or_stream_schedule_flush(s);
    }
    return uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_read);
}

void or_stream_read_stop(or_stream *s)
{
    if (!reading(s) || s->_closing)
        return;
    set_read(s, OR_STREAM_READ_OFF);
    uv_read_stop((uv_stream_t *)&s->tcp);
}

int or_stream_start_detect(or_stream *s)
{
    set_link(s, OR_STREAM_DETECTING);
    return or_stream_read_start(s);
}

void or_stream_detect_plain(or_stream *s)
{
    if (detecting(s) && !s->_closing)
        become_plain(s, false);
}

int or_stream_start_handshake(or_stream *s)
{
    set_link(s, OR_STREAM_HANDSHAKING);
    if (!s->peer_checked_by_owner)
        or_tls_peer_attach(&s->peer, s->ssl);
    drive_handshake(s);
    if (s->_closing)
        return 0;
    return or_stream_read_start(s);
}

/* ---- connect ---- */

static void on_connected(uv_connect_t *req, int status)
{
    or_stream *s = req->data;
    assert(s->_link == OR_STREAM_UNCONNECTED);
    if (status == UV_ECANCELED || s->_closing)
        return;
    if (status == 0) {
        set_link(s, s->ssl ? OR_STREAM_CONNECTED : OR_STREAM_ESTABLISHED);
        uv_tcp_nodelay(&s->tcp, 1);
        if (s->_pending.len > 0 || s->_shut == OR_STREAM_SHUT_WANTED)
            or_stream_schedule_flush(s);
    }
    s->on_connect(s, status);
}

int or_stream_connect(or_stream *s, const struct sockaddr *addr)
{
    s->_connect_req.data = s;
    return uv_tcp_connect(&s->_connect_req, &s->tcp, addr, on_connected);
}
