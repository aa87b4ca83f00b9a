/*
 * trace: the identifiers a request carries across the mesh, for HTTP/1 and
 * HTTP/2 alike.
 *
 * Contract: a request keeps the x-request-id it came with (when it fits),
 * else gets a new one, a random UUID (8-4-4-4-12 hex digits). A request keeps
 * its W3C traceparent and tracestate, and any B3 headers, untouched; its
 * trace ID is logged when the traceparent is valid (an invalid one passes as
 * it came and logs none). A request without a traceparent gets a new trace:
 * version 00, a random trace ID and parent ID, sampled, which the proxy adds
 * to the request it forwards.
 *
 * Randomness: identifiers take their bytes from an or_trace_random, which
 * draws them from the caller's DRBG (the worker's) OR_TRACE_RANDOM bytes at
 * a time, so that a request costs a copy rather than a DRBG call (each call
 * re-keys the DRBG). The bytes are as random as the DRBG's; they become
 * identifiers that travel in clear headers and logs, never keys. The owner
 * (one per worker) keeps it; nothing here allocates.
 */
#ifndef OUTRIDER_TRACE_H
#define OUTRIDER_TRACE_H

#include <stdbool.h>
#include <stddef.h>

#include <mbedtls/ctr_drbg.h>

#define OR_TRACE_REQUEST_ID_MAX 40 /* bytes for a request ID, NUL included */
#define OR_TRACE_RANDOM 1024       /* bytes drawn at a time (the DRBG's most per call) */

typedef struct {
    unsigned char bytes[OR_TRACE_RANDOM];
    size_t left;                   /* unused bytes, at the end of `bytes`; 0 at first */
} or_trace_random;

typedef struct {
    char request_id[OR_TRACE_REQUEST_ID_MAX];
    bool own_request_id;     /* request_id was made here: forward it */
    char trace_id[33];       /* 32 hex digits; "" when the request has no valid traceparent */
    char traceparent[56];    /* the traceparent made for a request that had none */
    bool own_traceparent;    /* traceparent was made here: forward it */
} or_trace;

/* Fills t from a request's x-request-id and traceparent values (value NULL:
 * the header is absent; values are not NUL-terminated). New identifiers
 * take bytes from `rnd`, which refills from `drbg` when it runs short. */
void or_trace_take(or_trace *t, or_trace_random *rnd, mbedtls_ctr_drbg_context *drbg,
                   const char *request_id, size_t request_id_len, const char *traceparent,
                   size_t traceparent_len);
/* True when `v` is a W3C traceparent: version-traceid-parentid-flags. */
bool or_trace_parent_valid(const char *v, size_t n);

#endif
