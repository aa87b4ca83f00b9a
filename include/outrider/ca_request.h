/*
 * ca_request: the HTTP request of outrider-ca, with no I/O.
 *
 * Contract: the request is read by or_http_msg (http_head.h), with the
 * byte-exact checks of the proxy's parser. An or_ca_request is fed the bytes of one connection as they
 * arrive and says when they hold one whole request, a malformed one (the
 * server answers 400) or one whose body is over OR_CA_BODY_MAX (413, said
 * as soon as the head announces it). Exactly one request is parsed per
 * connection: once it is complete, nothing after its end is read, so bytes
 * of a pipelined second request never reach the first one's fields. What is
 * kept is bounded: the request target up to OR_CA_URL_MAX - 1 bytes
 * (url_too_long beyond), the Authorization value up to OR_CA_AUTH_MAX - 1
 * bytes, and the body up to OR_CA_BODY_MAX (allocated on its first byte).
 * or_ca_request_free releases the body; the struct may then be reused after
 * or_ca_request_init.
 *
 * or_ca_request_parse is the whole life over one buffer, as if the client
 * had closed after it: a pure function, for tests and fuzzing.
 * or_ca_request_route says which route a complete request goes to, or the
 * error status and message the server answers instead;
 * or_ca_request_ttl reads the ?ttl= of a sign request.
 */
#ifndef OUTRIDER_CA_REQUEST_H
#define OUTRIDER_CA_REQUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outrider/http_head.h"

#define OR_CA_BODY_MAX (16 * 1024)
#define OR_CA_HEAD_MAX (64 * 1024)
#define OR_CA_URL_MAX 1024
#define OR_CA_AUTH_MAX 512

typedef enum {
    OR_CA_REQ_PARTIAL,   /* more bytes are needed */
    OR_CA_REQ_COMPLETE,  /* one whole request; what follows it is ignored */
    OR_CA_REQ_TOO_LARGE, /* the body is over OR_CA_BODY_MAX: answer 413 */
    OR_CA_REQ_MALFORMED, /* answer 400 */
} or_ca_req_state;

typedef enum {
    OR_CA_ROUTE_SIGN,    /* POST /v1/sign */
    OR_CA_ROUTE_BUNDLE,  /* GET /v1/bundle */
    OR_CA_ROUTE_HEALTH,  /* GET /healthz */
    OR_CA_ROUTE_ERROR,   /* answer the status and message given */
} or_ca_route;

typedef struct {
    or_http_msg msg;             /* the parse (feed, finish); owns the body */
    or_ca_req_state state;
    char url[OR_CA_URL_MAX];
    size_t url_len;
    bool url_too_long;
    char auth[OR_CA_AUTH_MAX];   /* the Authorization value; "" when none */
    size_t auth_len;
    const char *body;            /* NUL-terminated; NULL when there is none */
    size_t body_len;
    const char *method;          /* "" until the head has parsed */
} or_ca_request;

void or_ca_request_init(or_ca_request *r);
/* Takes the next bytes of the connection; returns the state after them.
 * Once the state is not OR_CA_REQ_PARTIAL, further bytes are ignored. */
or_ca_req_state or_ca_request_feed(or_ca_request *r, const char *data, size_t len);
/* The client closed its side: a request that is whole by then completes,
 * one cut short is malformed; with no byte at all it stays PARTIAL. */
or_ca_req_state or_ca_request_finish(or_ca_request *r);
void or_ca_request_free(or_ca_request *r);
/* The fields of a request read by someone else (the server kit): r only
 * borrows from m, which must outlive it; or_ca_request_free is not needed. */
void or_ca_request_view(or_ca_request *r, const or_http_msg *m);

/* init, feed(data, len), finish: the state reached. *out is left for
 * or_ca_request_route and must be released with or_ca_request_free. */
or_ca_req_state or_ca_request_parse(const char *data, size_t len, or_ca_request *out);

/* For a request in any state but PARTIAL: the route, or OR_CA_ROUTE_ERROR
 * with *status and *message set (413, 400, 404, 405). */
or_ca_route or_ca_request_route(const or_ca_request *r, int *status, const char **message);
/* The ttl query parameter in seconds (0 when absent; at least 1), or -1
 * with *why set. */
int or_ca_request_ttl(const or_ca_request *r, uint64_t *ttl_s, const char **why);

#endif
