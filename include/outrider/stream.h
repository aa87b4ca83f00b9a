/*
 * stream: a TCP connection that is either plain or TLS, behind one interface.
 *
 * Contract: proxy logic reads and writes plaintext through or_stream and
 * never touches mbedTLS. A stream lives inside a larger object (a
 * connection) that owns its memory; the stream owns its uv_tcp_t, its
 * mbedTLS context (TLS only) and its output buffers, and releases them when
 * its close callback runs. Every close goes through or_stream_close.
 *
 * Reads deliver plaintext from a buffer owned by the loop (or_stream_loop):
 * it is valid only during the callback, so a reader that keeps data copies it
 * (or_stream_write does). A TLS read callback carries up to four records'
 * plaintext. Writes are accepted at any time, copied, and coalesced: what is
 * written to a stream in one loop turn leaves in one uv_try_write (then one
 * uv_write for what the kernel did not take), run from the loop's check
 * phase (or its prepare phase, for output from timers); for TLS, all records
 * produced in that turn go out together. Only a turn that queues 64 KiB or
 * more sends as it goes, so a large transfer is not held back to the end of
 * the turn; a plain write that large with nothing queued goes straight to
 * the kernel without a copy. Writes before a plain stream is connected are
 * held until it is.
 *
 * or_stream_read_stop takes effect at once: no read callback runs until
 * or_stream_read_start, even for TLS records that arrived in the same
 * socket read (their ciphertext is held and replayed after the restart).
 *
 * A TLS server stream may detect what its peer speaks instead of
 * requiring TLS (or_stream_start_detect): the first bytes the peer sends
 * decide. A TLS handshake record header (0x16, then 0x03) starts the TLS
 * handshake, which consumes those bytes; anything else makes the stream a
 * plain one for good (its TLS context is freed, as if it had been
 * initialised plain), and the bytes read so far are its reader's first data,
 * delivered once the reader reads. The end of the input before any byte, or
 * or_stream_detect_plain (the owner's timeout: a peer that waits for the
 * server to speak first), makes it plain as well. on_handshake reports the
 * outcome: 0 with the stream established, TLS or plain (ssl is NULL then),
 * or < 0 when the TLS handshake (or the socket, before deciding) failed.
 *
 * An established TLS stream with no record in flight gives its record
 * buffers back to the loop (tls_idle.h) and takes them again with its next
 * byte either way; nothing about that shows through this interface.
 *
 * The read callback gets nread > 0 with data, UV_EOF once when the peer has
 * finished sending (TLS close_notify or TCP FIN), after which nothing more
 * is read, or another negative libuv error (an mbedTLS failure is reported
 * as UV_EPROTO). on_drain fires each
 * time queued output has left (a write or the shutdown completed); the
 * owner reads or_stream_queued() to decide whether to resume a paused reader.
 */
#ifndef OUTRIDER_STREAM_H
#define OUTRIDER_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <uv.h>

#include "outrider/buf.h"
#include "outrider/tls.h"
#include "outrider/tls_idle.h"

#define OR_STREAM_READ_BUF_SIZE (64 * 1024)

typedef struct or_stream or_stream;

/* Per-loop state shared by every stream on one worker loop. */
typedef struct {
    uv_loop_t *loop;
    uv_check_t flush_check;
    uv_prepare_t flush_prepare;
    SLIST_HEAD(, or_stream) flush_head; /* streams with output to send this turn, newest
                                       first (_flush_scheduled); not owned */
    char *read_buf;                 /* ciphertext or plaintext from the socket */
    char *plain_buf;                /* plaintext decrypted from read_buf */
    or_tls_buf_pool bufs;           /* record buffers of idle TLS streams */
} or_stream_loop;

int or_stream_loop_init(or_stream_loop *sl, uv_loop_t *loop);
/* Closes the check handle; call before closing the loop. */
void or_stream_loop_close(or_stream_loop *sl);

typedef void (*or_stream_read_cb)(or_stream *s, ssize_t nread, const char *data);
typedef void (*or_stream_status_cb)(or_stream *s, int status);
typedef void (*or_stream_event_cb)(or_stream *s);


/* The states of a stream; only stream.c moves them (and asserts each move).
 * Link: UNCONNECTED -> ESTABLISHED (plain, accepted or connected);
 *       UNCONNECTED -> CONNECTED -> HANDSHAKING -> ESTABLISHED or FAILED (TLS);
 *       CONNECTED -> DETECTING -> HANDSHAKING (the peer speaks TLS)
 *                             -> ESTABLISHED (plaintext: the stream is plain now)
 *                             -> FAILED (the socket failed before deciding). */
typedef enum {
    OR_STREAM_UNCONNECTED,
    OR_STREAM_CONNECTED,            /* TLS: TCP is up, no handshake yet */
    OR_STREAM_DETECTING,            /* TLS server: waiting for the peer's first bytes */
    OR_STREAM_HANDSHAKING,
    OR_STREAM_ESTABLISHED,          /* plaintext may flow */
    OR_STREAM_FAILED,               /* TLS: the handshake failed */
} or_stream_link;

/* Reading: OFF <-> ON -> EOF (the end was delivered; nothing more is read). */
typedef enum { OR_STREAM_READ_OFF, OR_STREAM_READ_ON, OR_STREAM_READ_EOF } or_stream_read;

/* Shutdown: NONE -> WANTED (asked for) -> STARTED (queued output is out,
 * FIN requested) -> DONE (FIN sent). */
typedef enum {
    OR_STREAM_SHUT_NONE,
    OR_STREAM_SHUT_WANTED,
    OR_STREAM_SHUT_STARTED,
    OR_STREAM_SHUT_DONE,
} or_stream_shut;

/* Fields with a leading underscore are stream.c's alone: nothing else reads
 * or writes them. The others are the interface. */
struct or_stream {
    uv_tcp_t tcp;
    or_stream_loop *sl;
    void *owner;

    mbedtls_ssl_context *ssl;       /* NULL for a plain stream (also once detection
                                       found plaintext) */
    or_tls_peer peer;               /* TLS only */
    int tls_error;                  /* mbedTLS error of a failed handshake or read */
    bool peer_checked_by_owner;     /* TLS: no SVID rules here; the owner reads the
                                       peer certificate itself (outrider-ca) */

    or_stream_read_cb on_read;
    or_stream_status_cb on_connect;   /* TCP connected (status 0) or failed */
    or_stream_status_cb on_handshake; /* TLS handshake done (0) or failed (<0) */
    or_stream_status_cb on_write_error;
    or_stream_event_cb on_drain;
    or_stream_event_cb on_close;

    or_stream_link _link;
    or_stream_read _read;
    or_stream_shut _shut;
    bool _closing;                  /* or_stream_close ran; the handle is closing */

    const char *_tls_in;            /* ciphertext not yet given to mbedTLS */
    size_t _tls_in_len;
    or_buf _held;                   /* ciphertext read while paused, replayed on resume;
                                       the bytes detection read, until consumed */
    bool _replaying;                /* the ciphertext being read is `_held`'s own */
    bool _replay_wanted;            /* a restart has held input to replay */
    bool _eof_held;                 /* the socket ended behind `_held` (or, plain, during
                                       detection) */
    int _read_final;                /* mbedTLS's end of stream (close_notify or an error),
                                       kept for the reader's restart; 0 = none */
    or_tls_idle _idle;              /* record counters while the buffers are released */
    bool _tls_busy;                 /* inside a read: keep the record buffers */

    or_buf _pending;                /* output not yet handed to the kernel */
    or_buf _inflight;               /* output under a uv_write */
    size_t _inflight_sent;          /* bytes of it the kernel took before the uv_write */
    bool _writing;                  /* a uv_write is in flight */
    bool _flush_scheduled;          /* on the loop's flush list */
    bool _early_send_blocked;       /* the kernel took less than offered this turn */
    uv_write_t _write_req;
    uv_shutdown_t _shutdown_req;
    uv_connect_t _connect_req;
    SLIST_ENTRY(or_stream) _flush_entry; /* the loop's flush_head, while _flush_scheduled */
};

/* Initialises the uv_tcp_t of a stream. tls_conf NULL = plain. */
int or_stream_init(or_stream *s, or_stream_loop *sl, void *owner,
                   const mbedtls_ssl_config *tls_conf);
/* Sets up the accepted/connected socket (TCP_NODELAY) after uv_accept. */
int or_stream_accepted(or_stream *s);
int or_stream_connect(or_stream *s, const struct sockaddr *addr);
/* TLS: starts the handshake; on_handshake reports the end. */
int or_stream_start_handshake(or_stream *s);
/* TLS server, accepted: reads the peer's first bytes to tell TLS from
 * plaintext (see the contract above); on_handshake reports the outcome. */
int or_stream_start_detect(or_stream *s);
/* A detecting stream goes on as plaintext now (the peer has sent nothing in
 * time, or too little to decide); nothing happens when it is not detecting. */
void or_stream_detect_plain(or_stream *s);
int or_stream_read_start(or_stream *s);
void or_stream_read_stop(or_stream *s);
int or_stream_write(or_stream *s, const char *data, size_t len);
/* Offers what is queued to the kernel now (uv_try_write only; no callback
 * runs) instead of at the end of the turn: for an owner whose peer waits on
 * the output so far while the turn goes on. What the kernel does not take
 * waits for the turn's flush as before. */
void or_stream_send_early(or_stream *s);
/* Sends close_notify (TLS) and FIN once the queued output is out. */
void or_stream_shutdown(or_stream *s);
void or_stream_close(or_stream *s);

size_t or_stream_queued(const or_stream *s);
bool or_stream_output_done(const or_stream *s); /* all output and the FIN sent */
/* The negotiated cipher suite name; "" for TLS before the handshake is
 * done; "none" for a plain stream (also one detection found plaintext). */
const char *or_stream_cipher(const or_stream *s);
/* The application protocol the TLS handshake agreed on (ALPN: "h2",
 * "http/1.1"), or NULL: a plain stream, a handshake not done, or none
 * agreed. */
const char *or_stream_alpn(const or_stream *s);
/* A TLS stream that has not connected yet takes `conf` instead of the
 * configuration it was initialised with (the same credentials, other ALPN
 * protocols offered). 0, UV_EINVAL (plain, or already connected) or
 * UV_ENOMEM (the stream is unusable then: close it). */
int or_stream_set_tls_conf(or_stream *s, const mbedtls_ssl_config *conf);
/* TCP is connected (accepted, or the connect succeeded). */
bool or_stream_connected(const or_stream *s);
/* Plaintext may flow: connected and, for TLS, the handshake is done. */
bool or_stream_established(const or_stream *s);
/* Reading is on (between or_stream_read_start and _stop, before EOF). */
bool or_stream_reading(const or_stream *s);
/* The reader has been given UV_EOF. */
bool or_stream_eof(const or_stream *s);
/* Waiting for the peer's first bytes (or_stream_start_detect). */
bool or_stream_detecting(const or_stream *s);

#endif
