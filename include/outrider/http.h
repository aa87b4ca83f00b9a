/*
 * http: HTTP/1.1 proxying on a connection (listeners with protocol: http).
 *
 * Contract: or_http_phase is the protocol phase (conn.h) of listeners with
 * protocol: http. Its start takes over a downstream connection whose TLS
 * handshake (inbound) is done. It parses requests with http-parser, answers
 * hostile or oversized ones itself (400, 413, 414, 431, with a close),
 * applies the L7 RBAC decision on inbound listeners (403, connection kept),
 * strips any incoming x-forwarded-client-cert and, inbound, sets it to
 * "By=<own id>;URI=<peer id>", forwards the request over a pooled upstream
 * connection, and relays the response; upstream failures answer 502, 503 or
 * 504. Requests are answered in order (pipelining), keep-alive follows
 * HTTP/1.0 and 1.1 rules, a 101 turns the connection into a byte pipe. One
 * access-log line is written per request. Draining closes the connection
 * now if it is between requests; a request in flight gets "connection:
 * close" on its response instead.
 */
#ifndef OUTRIDER_HTTP_H
#define OUTRIDER_HTTP_H

#include "outrider/conn.h"

extern const or_conn_phase_ops or_http_phase;

#endif
