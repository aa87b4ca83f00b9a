/*
 * http2_h1: an HTTP/2 request written as HTTP/1.1, and the HTTP/1.1
 * response read back as HTTP/2 (docs/http2.md, upstream_protocol).
 *
 * Contract: pure functions over what they are given; nothing here does
 * I/O or keeps state. The proxy's HTTP/1.1 leg of an HTTP/2 stream
 * (proxy/http2/h2_h1.c) uses them, and tests call them directly.
 *
 * Writing a head is where a request crosses from a framing that carries
 * lengths (HPACK) to one that is delimited by bytes (CRLF, ':'), so every
 * byte that could end a line or a name is refused here, whatever was
 * checked before: a method that is not a token, a target with a byte that
 * is not visible ASCII, a host that is not an authority without userinfo
 * (no '@', '/', '?', '#', '\\'), a field name that is not a lower-case
 * token (a ':' included), a value with CR, LF, NUL or another control but
 * HTAB, a connection-specific field. The head is then not written at all:
 * the caller refuses the stream.
 */
#ifndef OUTRIDER_HTTP2_H1_H
#define OUTRIDER_HTTP2_H1_H

#include <stdbool.h>
#include <stddef.h>

#include "outrider/buf.h"
#include "outrider/http2.h"
#include "outrider/http_head.h"

/* How the request body is framed as HTTP/1.1. */
typedef enum {
    OR_H2_H1_BODY_NONE,     /* no body: END_STREAM came with the headers */
    OR_H2_H1_BODY_LENGTH,   /* content-length, as the request had it */
    OR_H2_H1_BODY_CHUNKED,  /* transfer-encoding: chunked (trailers go as chunked trailers) */
} or_h2_h1_body;

/* The field a stream on the hop between sidecars carries when its request
 * arrived as HTTP/1.1, so that the inbound sidecar gives the app HTTP/1.1
 * (docs/http2.md). Honoured only on a connection that negotiated the hop. */
#define OR_HOP_ORIG_PROTO "outrider-orig-proto"

/* Fields of the request the proxy does not forward in either protocol
 * (x-forwarded-client-cert and OR_HOP_ORIG_PROTO, which the proxy sets
 * itself). */
bool or_h2_field_dropped(const char *name, size_t len);
/* A trailer field the proxy leaves out, in both directions (RFC 9110
 * 6.5.1: framing, routing, authentication, content metadata, and the
 * fields it sets itself): an application that merges trailers into the
 * head must not find a second content-length or host there, nor an
 * x-forwarded-client-cert the proxy did not set. `name` is lower case. */
bool or_h2_trailer_dropped(const char *name, size_t len);

/* Appends the HTTP/1.1 head of `rq` to `out`: `METHOD target HTTP/1.1`,
 * host (from :authority, else the Host field, else default_host), the
 * regular fields but host, te, content-length and the dropped ones, the
 * cookie fields joined into one (RFC 9113 8.2.3), the fields in `added`
 * (what the proxy sets: x-request-id, traceparent, x-forwarded-client-cert),
 * then the framing `body` names and the blank line. OR_H2_OK, or why it
 * refused (`out` is then as it was). */
or_h2_check or_h2_h1_request_head(or_buf *out, const or_h2_request *rq, const char *target,
                                  size_t target_len, const or_h2_fields *added,
                                  const char *default_host, or_h2_h1_body body);

/* The HTTP/1.1 request head `h` as the HTTP/2 request `r`, through the
 * checks an HTTP/2 request gets (or_h2_request_field, or_h2_request_done):
 * `method`, scheme http, `authority` and `target` as the pseudo-fields,
 * then every field but the hop-by-hop ones, Host (it is :authority) and
 * Expect (the proxy answers 100-continue itself), with lower-case names
 * and values without the whitespace HTTP/1.1 allows around them.
 * OR_H2_OK, or why the request cannot be sent as HTTP/2. */
or_h2_check or_h2_request_from_h1(or_h2_request *r, const or_http_head *h, const char *method,
                                  const char *target, size_t target_len, const char *authority,
                                  size_t authority_len);

/* Appends the last chunk and `trailers` as chunked trailers, and the final
 * CRLF, leaving out the fields a trailer section must not carry (framing,
 * routing, authentication, content metadata, cookies) and the dropped
 * ones. OR_H2_OK, or why a field was refused (`out` is then as it was). */
or_h2_check or_h2_h1_trailers(or_buf *out, const or_h2_fields *trailers);

/* The HTTP/2 response head of a parsed HTTP/1.1 response head: :status and
 * the fields with lower-case names and no surrounding whitespace, without
 * the connection-specific ones (connection, keep-alive, proxy-connection,
 * transfer-encoding, upgrade, te and what Connection names) and without
 * content-length when the body is chunked or the status has none (1xx,
 * 204). Appended to `out`; OR_H2_OK or why a field cannot be sent. */
or_h2_check or_h2_h1_response_head(const or_http_head *h, or_h2_fields *out);

/* The fields of a chunked trailer section (`raw`: its lines as received,
 * already checked by the chunked scanner), lower-case and trimmed, without
 * the fields trailers must not carry (framing, routing, connection).
 * Appended to `out`; OR_H2_OK or OR_H2_NO_MEMORY. */
or_h2_check or_h2_h1_parse_trailers(const char *raw, size_t len, or_h2_fields *out);

#endif
