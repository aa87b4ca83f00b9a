/*
 * http_session: the state of one HTTP connection, shared by http.c
 * (downstream: requests, policy, local answers) and http_relay.c (upstream:
 * forwarding, responses, pooling). Private to those two files.
 */
#ifndef OUTRIDER_HTTP_SESSION_H
#define OUTRIDER_HTTP_SESSION_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <http_parser.h>

#include "outrider/http_chunked.h"
#include "outrider/http_head.h"
#include "outrider/buf.h"
#include "outrider/http_path.h"
#include "outrider/conn.h"
#include "outrider/rbac.h"
#include "outrider/upstream.h"

#define OR_HTTP_MAX_RESPONSE_HEAD (64 * 1024)

typedef enum {
    OR_REQ_HEAD,      /* collecting a request head */
    OR_REQ_UPSTREAM,  /* head parsed, waiting for an upstream connection */
    OR_REQ_BODY,      /* relaying (or discarding) the request body */
    OR_REQ_SENT,      /* request complete, waiting for the response to end */
} or_req_state;

typedef enum {
    OR_RES_NONE,      /* nothing from the upstream yet */
    OR_RES_HEAD,      /* collecting a response head */
    OR_RES_BODY,      /* relaying the response body */
    OR_RES_DONE,      /* answered (relayed or by the proxy) */
} or_res_state;

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
    or_req_state rq;
    or_res_state rs;
    bool pumping, discard_body, close_after, rechunk_response, response_until_close;
    bool up_reused, up_reusable, retried, response_started, head_timer_armed;
    bool down_eof;            /* the client has finished sending */
    char method[24];
    char request_id[40];
    char own_request_id;      /* the request had no x-request-id: we made one */
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

/* http.c */
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

#endif
