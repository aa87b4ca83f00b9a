/*
 * http_session: the state of one HTTP connection, shared by http.c
 * (downstream: requests, policy, local answers), http_relay.c (upstream:
 * forwarding, responses, pooling) and ../http2/h2_front.c (the same
 * requests carried over the hop between sidecars as HTTP/2 streams).
 * Private to those files (h2_h1.c uses its body writer).
 */
#ifndef OUTRIDER_HTTP_SESSION_H
#define OUTRIDER_HTTP_SESSION_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <http_parser.h>

#include "outrider/http_chunked.h"
#include "outrider/http_head.h"
#include "outrider/trace.h"
#include "outrider/buf.h"
#include "outrider/http_path.h"
#include "outrider/conn.h"
#include "outrider/rbac.h"
#include "outrider/upstream.h"

#define OR_HTTP_MAX_RESPONSE_HEAD (64 * 1024)

/* The request side of the exchange. Moves (asserted by or_http_set_rq):
 * HEAD -> BODY | SENT (head parsed) -> UPSTREAM (no pooled upstream, or a
 * retry) -> BODY | SENT (attached); BODY -> SENT (body complete) or DISCARD
 * (answered early); DISCARD -> SENT; SENT | DISCARD -> HEAD (next request);
 * any -> CLOSED. */
typedef enum {
    OR_REQ_HEAD,      /* collecting a request head */
    OR_REQ_UPSTREAM,  /* head parsed, waiting for an upstream connection */
    OR_REQ_BODY,      /* relaying the request body */
    OR_REQ_DISCARD,   /* answered already: reading the request body and dropping it */
    OR_REQ_SENT,      /* request complete, waiting for the response to end */
    OR_REQ_CLOSED,    /* the session has ended: the connection closes or became a pipe */
} or_req_state;

/* The response side. NONE -> HEAD (first byte) -> HEAD (1xx) -> BODY ->
 * DONE; NONE | HEAD -> DONE (answered by the proxy, or bodiless); DONE ->
 * NONE (next exchange). A response has started once it is BODY or DONE. */
typedef enum {
    OR_RES_NONE,      /* nothing from the upstream yet */
    OR_RES_HEAD,      /* collecting a response head */
    OR_RES_BODY,      /* relaying the response body */
    OR_RES_DONE,      /* answered (relayed or by the proxy) */
} or_res_state;

/* How the response body is framed towards the client. */
typedef enum {
    OR_FRAME_AS_SENT,     /* as the upstream framed it (length, or none) */
    OR_FRAME_RECHUNK,     /* chunked body re-chunked for an HTTP/1.1 client */
    OR_FRAME_UNTIL_CLOSE, /* no framing: the body ends when the upstream closes */
} or_res_framing;

/* Where the exchange's upstream came from: a request on a pooled upstream
 * that closed before answering is sent again once, on a new one. */
typedef enum { OR_UP_NEW, OR_UP_POOLED, OR_UP_RETRY } or_up_origin;

typedef struct or_http_session or_http_session;
struct or_h2_session; /* ../http2/h2_session.h */
struct or_h2_stream;

struct or_http_session {
    or_conn *c;
    http_parser req_parser, res_parser;
    or_http_head req, res;
    or_buf in;         /* downstream bytes not yet handled */
    or_buf fwd;        /* the forwarded request head, kept for one retry */
    or_buf target;     /* the normalised origin-form target: matched and forwarded */
    or_target tgt;     /* its path length and any absolute-form authority */
    or_chunked req_chunks, res_chunks; /* checks chunked bodies before http-parser */
    or_upstream *up;
    struct or_h2_session *mux_hs; /* the hop's front session, owned; NULL until used */
    struct or_h2_stream *mux;  /* the exchange's stream on the hop, owned; NULL when the
                                  exchange goes over `up` (or has no upstream yet) */
    or_req_state rq;
    or_res_state rs;
    or_res_framing framing;
    or_up_origin origin;
    bool pumping;             /* inside or_http_pump */
    bool close_after;         /* the connection closes after this exchange */
    bool up_reusable;         /* the upstream may go back to the pool */
    bool head_timer_armed;    /* the timer is timeouts.request_headers */
    bool down_eof;            /* the client has finished sending */
    char method[24];
    or_trace ids;             /* x-request-id and trace context (trace.h) */
    struct timespec started_at;
    uint64_t started_ns, sent_ns; /* uv_hrtime() */
    int64_t upstream_us;
    uint64_t body_in, body_out;
    int status;
    const char *flags;
    or_rbac_decision rbac;
    bool rbac_evaluated;
    or_snapshot *snap;        /* the snapshot whose policies decided this request */
};

/* The session of an HTTP connection; valid until the connection's handles
 * have closed, even after the session has ended (OR_REQ_CLOSED). */
static inline or_http_session *or_http_session_of(const or_conn *c) { return c->phase_state; }

static inline bool or_http_response_started(const or_http_session *hs)
{
    return hs->rs == OR_RES_BODY || hs->rs == OR_RES_DONE;
}

/* http.c */
void or_http_set_rq(or_http_session *hs, or_req_state to);
void or_http_set_rs(or_http_session *hs, or_res_state to);
void or_http_pump(or_http_session *hs);
void or_http_local_reply(or_http_session *hs, int status, const char *flags, const char *body);
/* Ends the connection in the middle of an exchange, logging it with `flags`. */
void or_http_abort(or_http_session *hs, const char *flags);
void or_http_exchange_done(or_http_session *hs);
/* After a 101: logs the exchange and hands the connection to the pipe. */
void or_http_upgrade(or_http_session *hs);

/* http_relay.c */
void or_http_relay_start(or_http_session *hs);
void or_http_relay_body(or_http_session *hs, const char *data, size_t len, bool last);
void or_http_relay_release(or_http_session *hs, bool reusable);
/* Writes body bytes, as one chunk when `chunked` (nothing for len 0). A
 * write error is reported by the stream's error callback. Also the
 * HTTP/1.1 writer of ../http2/ (h2_h1.c, h2_front.c). */
void or_http_write_body(or_stream *s, bool chunked, const char *data, size_t len);

/* ../http2/h2_front.c: the hop between sidecars. */
/* Sends the request over the hop when it can go there; false: it cannot,
 * the relay takes it. */
bool or_http_mux_start(or_http_session *hs);
void or_http_mux_body(or_http_session *hs, const char *data, size_t len, bool last);
/* The stream takes more request body / has taken all it was given. */
bool or_http_mux_wants_body(const or_http_session *hs);
bool or_http_mux_body_idle(const or_http_session *hs);
/* Runs the pool when the session has something for it (after a pump). */
void or_http_mux_run(or_http_session *hs);
/* The client took bytes: more of the response goes. */
void or_http_mux_drain(or_http_session *hs);
/* For the access log: the peer's SPIFFE ID and the cipher (NULL: none). */
const char *or_http_mux_peer_id(const or_http_session *hs);
const char *or_http_mux_cipher(const or_http_session *hs);
/* The exchange ends: its stream is reset upstream if still open, and freed. */
void or_http_mux_release(or_http_session *hs);
/* The session ends / is freed. */
void or_http_mux_end(or_http_session *hs);
void or_http_mux_free(or_http_session *hs);

#endif
