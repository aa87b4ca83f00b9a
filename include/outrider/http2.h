/*
 * http2: HTTP/2 on listeners with protocol: http (docs/http2.md).
 *
 * Contract: or_http_select_phase is the protocol phase (conn.h) of
 * listeners with protocol: http. It picks the session that serves the
 * connection, once: an mTLS connection by ALPN ("h2" -> HTTP/2, anything
 * else, or no ALPN, -> HTTP/1.1), a plaintext one by its first bytes (the
 * 24-byte HTTP/2 client preface -> HTTP/2, h2c with prior knowledge;
 * anything else -> HTTP/1.1, which gets every byte read so far). It then
 * hands the connection to or_http_phase or or_h2_phase, whose operations
 * take over from there.
 *
 * or_h2_phase serves one HTTP/2 connection with an nghttp2 server session.
 * Each stream is one request: checked (or_h2_request below), decided by the
 * same L7 RBAC as HTTP/1 on inbound listeners (a denial answers 403, or for
 * gRPC a trailers-only response with grpc-status 7), logged once in the
 * access log, and forwarded as HTTP/2 over an upstream connection of the
 * worker listener's pool, shared by the streams of all its downstream
 * connections (h2c with prior knowledge to the app on inbound listeners,
 * h2 over mTLS, ALPN "h2", to the peer sidecar on outbound ones). Bodies
 * and trailers stream both ways under HTTP/2 flow control; nothing buffers
 * more than a stream's window. Abusive peers (rapid reset, floods of
 * SETTINGS, PING, empty or CONTINUATION frames, header blocks too large or
 * too slow) end their stream or the connection with the HTTP/2 error the
 * limit names, counted in the worker's stats.
 *
 * The header checks are pure functions over copies they own, exposed for
 * tests: or_h2_request collects one request header block field by field
 * (pseudo-headers first, each once; no connection-specific fields; no CR,
 * LF or NUL in values; te only "trailers"; CONNECT refused), and its end
 * checks what must be there (:method, :scheme, :path; :authority and Host
 * each host[:port], and agreeing) and a content-length against the DATA
 * that arrived.
 */
#ifndef OUTRIDER_HTTP2_H
#define OUTRIDER_HTTP2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outrider/buf.h"
#include "outrider/conn.h"
#include "outrider/stats.h"

extern const or_conn_phase_ops or_http_select_phase;
extern const or_conn_phase_ops or_h2_phase;

/* The worker listener's pool of HTTP/2 upstream connections (created on
 * first use, owned by the listener): or_h2_pool_drain stops new streams on
 * them (worker drain; each closes with GOAWAY once its streams are done),
 * or_h2_pool_free frees it once the worker's loop has closed. */
void or_h2_pool_drain(or_worker_listener *l);
void or_h2_pool_free(or_worker_listener *l);
/* A read on `l` that may have given the pool work has been handled (an
 * HTTP/1.1 client's request that may go over the hop, an app's answer on
 * an HTTP/2 stream's HTTP/1.1 leg): every OR_H2_EARLY such reads within a
 * loop turn, the pool runs at once (h2_pool.c, "Early runs").
 * Only from the end of a read callback: nothing of the pool's may be on the
 * stack. */
void or_h2_pool_early(or_worker_listener *l);

/* Appends the HTTP/2 abuse counters (outrider_http2_abuse_total{kind}),
 * summed over the workers, to a /stats rendering. */
void or_h2_stats_render(or_buf *out, or_stats *const *workers, unsigned nworkers);

/* The HTTP/2 client connection preface (RFC 9113 3.4). */
#define OR_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define OR_H2_PREFACE_LEN 24

/* Why a header block or a body is refused (or_h2_check_text says it). */
typedef enum {
    OR_H2_OK = 0,
    OR_H2_BAD_NAME,           /* empty, upper case or not a token */
    OR_H2_BAD_VALUE,          /* CR, LF or NUL, or other controls */
    OR_H2_CONNECTION_HEADER,  /* connection, keep-alive, proxy-connection,
                                 transfer-encoding, upgrade */
    OR_H2_BAD_TE,             /* te other than "trailers" */
    OR_H2_PSEUDO_AFTER_REGULAR,
    OR_H2_DUPLICATE_PSEUDO,
    OR_H2_UNKNOWN_PSEUDO,     /* also a response's :status in a request */
    OR_H2_PSEUDO_IN_TRAILERS,
    OR_H2_MISSING_PSEUDO,     /* no :method, :scheme or :path */
    OR_H2_CONNECT,            /* CONNECT (and extended CONNECT) is not proxied */
    OR_H2_HOST_MISMATCH,      /* :authority and Host name different hosts */
    OR_H2_BAD_HOST,           /* :authority or Host is not host[:port] */
    OR_H2_BAD_CONTENT_LENGTH, /* not one decimal number, or several that differ */
    OR_H2_BODY_LENGTH,        /* DATA longer or shorter than content-length */
    OR_H2_TOO_LARGE,          /* the block is larger than its limit */
    OR_H2_NO_MEMORY,
} or_h2_check;

const char *or_h2_check_text(or_h2_check c);

/* One field of a block: offsets into the block's byte buffer. */
typedef struct {
    uint32_t name_off, name_len, value_off, value_len;
} or_h2_field;

/* Header fields in arrival order, names lower case (HTTP/2 requires it). */
typedef struct {
    or_buf bytes;
    or_h2_field *v;
    size_t n, cap;
    size_t size;              /* RFC 9113 6.5.2: sum of name + value + 32 */
} or_h2_fields;

int or_h2_fields_add(or_h2_fields *f, const char *name, size_t name_len, const char *value,
                     size_t value_len);
/* The index of the first field named `lower`, or -1. */
long or_h2_fields_find(const or_h2_fields *f, const char *lower, size_t len);
static inline const char *or_h2_field_name(const or_h2_fields *f, size_t i)
{
    return f->bytes.data + f->v[i].name_off;
}
static inline const char *or_h2_field_value(const or_h2_fields *f, size_t i)
{
    return f->bytes.data + f->v[i].value_off;
}
void or_h2_fields_reset(or_h2_fields *f);
/* Empties `f`; its storage is kept when no larger than `keep` bytes. */
void or_h2_fields_reuse(or_h2_fields *f, size_t keep);
void or_h2_fields_free(or_h2_fields *f);

/* A field's own checks, for any block (request, response or trailers). */
or_h2_check or_h2_field_check(const char *name, size_t name_len, const char *value,
                              size_t value_len);

/* One request header block as it is decoded. */
typedef struct {
    or_buf method, scheme, authority, path; /* pseudo-header values; len 0 = absent */
    bool have_method, have_scheme, have_authority, have_path;
    bool saw_regular;         /* a regular field came: no more pseudo-headers */
    or_h2_fields fields;      /* the regular fields */
    int64_t content_length;   /* -1: none */
    long host;                /* index of the Host field, or -1 */
    bool grpc;                /* content-type application/grpc... */
    size_t max_size;          /* 0: no limit; else OR_H2_TOO_LARGE beyond it */
} or_h2_request;

void or_h2_request_init(or_h2_request *r, size_t max_size);
/* As or_h2_request_init, for a request that was initialised before: its
 * buffers are emptied, and kept when no larger than `keep` bytes. */
void or_h2_request_reuse(or_h2_request *r, size_t max_size, size_t keep);
void or_h2_request_free(or_h2_request *r);
/* One decoded field; on an error the block is refused (later fields may
 * still be offered and are refused too). */
or_h2_check or_h2_request_field(or_h2_request *r, const char *name, size_t name_len,
                                const char *value, size_t value_len);
/* The block is complete: the required pseudo-headers and their agreement. */
or_h2_check or_h2_request_done(const or_h2_request *r);
/* One trailer field of a request or a response. */
or_h2_check or_h2_trailer_field(const char *name, size_t name_len, const char *value,
                                size_t value_len);
/* `received` DATA bytes so far, `end` when the stream has ended: a
 * content-length must not be passed, and must be met at the end. */
or_h2_check or_h2_body_check(int64_t content_length, uint64_t received, bool end);
/* The host named by the request (:authority, else Host), without a port;
 * NULL when there is neither. */
const char *or_h2_request_host(const or_h2_request *r, size_t *len);

/* grpc-timeout (gRPC over HTTP/2: 1-8 digits and a unit H M S m u n) in
 * milliseconds, rounded up; -1 when the value is not one. */
int64_t or_h2_grpc_timeout_ms(const char *v, size_t len);

#endif
