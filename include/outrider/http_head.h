/*
 * http_head: collecting, checking, parsing and writing HTTP/1.x message heads.
 *
 * Used by the proxy (http.c) and, through or_http_msg below, by the
 * small endpoints. A head is collected byte-exact until its blank line,
 * checked for what http-parser tolerates but a proxy must not pass on (bare
 * CR or LF, obs-fold, NUL, over-long request lines), then parsed with
 * http-parser into slices of its own buffer. Nothing here does I/O.
 */
#ifndef OUTRIDER_HTTP_HEAD_H
#define OUTRIDER_HTTP_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <http_parser.h>

#include "outrider/buf.h"

#define OR_HTTP_MAX_HEADERS 100
#define OR_HTTP_MAX_REQUEST_LINE 8192

typedef struct {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} or_http_header;

typedef struct {
    or_buf raw;                 /* the head as received, owned */
    size_t scanned;             /* bytes already searched for the blank line */
    bool complete;

    const char *url;            /* requests: the request target */
    size_t url_len;
    unsigned short major, minor;
    int status;                 /* responses */
    const char *reason;         /* responses: the reason phrase */
    size_t reason_len;
    bool skip_body;             /* set before parsing a response to HEAD */
    bool headers_done;          /* http-parser reached the end of the head */
    bool message_done;          /* the message ended within the head */
    size_t nheaders;
    size_t connection_first, connection_end; /* headers[] range holding the Connection headers */
    size_t host_at;             /* 1 + headers[] index of the first Host header; 0: none */
    bool duplicate_host;        /* more than one Host header */
    bool too_many_headers;
    bool chunked;               /* Transfer-Encoding: chunked */
    bool has_transfer_encoding;
    bool has_content_length;
    uint64_t content_length;
    bool keep_alive;            /* by the version's default and Connection */
    bool upgrade;               /* Connection: upgrade with an Upgrade header */
    or_http_header *headers;    /* grown as needed, up to OR_HTTP_MAX_HEADERS; */
    size_t headers_cap;         /* last two: a reset leaves them alone */
} or_http_head;

typedef enum {
    OR_HEAD_MORE = 0,   /* need more bytes */
    OR_HEAD_DONE = 1,   /* complete; *used bytes were taken */
    OR_HEAD_TOO_BIG = -1,
} or_head_status;

void or_http_head_reset(or_http_head *h);
void or_http_head_free(or_http_head *h);
or_head_status or_http_head_collect(or_http_head *h, const char *data, size_t len, size_t limit,
                                    size_t *used);
/* 0, or an HTTP status (400, 414, 505) with *why set. Requests: the request
 * line is `method SP target SP HTTP/1.x`; both: header names are tokens
 * followed directly by ':'. */
int or_http_head_check(const or_http_head *h, bool is_request, const char **why);
/* Runs `parser` over the head. 0, or -1 with *why (an http-parser error). */
int or_http_head_parse(or_http_head *h, http_parser *parser, const char **why);

const or_http_header *or_http_head_find(const or_http_head *h, const char *name, size_t len);
/* The first Host header, found while parsing; NULL when there is none. */
const or_http_header *or_http_head_host(const or_http_head *h);
bool or_http_name_is(const char *name, size_t len, const char *lower);
/* True for the hop-by-hop headers a proxy must not forward, including the
 * ones the Connection header names. */
bool or_http_is_hop_by_hop(const or_http_head *h, const or_http_header *hdr);

typedef enum {
    OR_TE_NONE,          /* no Transfer-Encoding */
    OR_TE_CHUNKED,       /* one header, exactly "chunked" */
    OR_TE_OTHER_CODINGS, /* ends in chunked, but with other codings or headers */
    OR_TE_NOT_CHUNKED,   /* chunked is not the final coding */
} or_http_te;

or_http_te or_http_head_te(const or_http_head *h);

/* Checks, parses (with `parser`, initialised for HTTP_REQUEST) and vets a
 * complete request head: 0 when a proxy may pass it on, else the status to
 * answer (400, 405, 414, 431, 501, 505) with *why set. h->url is set once
 * the head has parsed. */
int or_http_head_vet_request(or_http_head *h, http_parser *parser, const char **why);

/* Checks and parses a complete response head as the proxy relays one: the
 * byte-exact rules of or_http_head_check, at most OR_HTTP_MAX_HEADERS
 * fields, no transfer coding but "chunked". `head_request`: it answers a
 * HEAD, so it has no body. For callers that do not drive http-parser
 * themselves (the HTTP/1.1 leg of HTTP/2 streams). 0, or -1 with *why. */
int or_http_head_vet_response(or_http_head *h, bool head_request, const char **why);

/* Appends the field line "name: value" CRLF to `b`; non-zero when out of
 * memory. The caller has checked the bytes. */
int or_http_field_line(or_buf *b, const char *name, size_t name_len, const char *value,
                       size_t value_len);

/*
 * or_http_msg: one whole HTTP/1.x message (head and body) read from a
 * connection's bytes as they arrive, for the small endpoints (the admin
 * server, outrider-ca, outrider-agent's client). The head is collected and
 * checked with the byte-exact rules above (requests: the framing rules of
 * a proxy, except that HTTP/1.1 without Host is let by), the body is read
 * by Content-Length, chunked framing or, for a response, until the peer
 * closes. Exactly one message is read: once it is complete, later bytes
 * are ignored, so a pipelined second request never reaches the first. A
 * body announced or found to be over body_max is TOO_LARGE as soon as that
 * is known; a head over head_max is MALFORMED. `why` says what was wrong.
 */
typedef enum {
    OR_HTTP_MSG_PARTIAL,   /* more bytes are needed */
    OR_HTTP_MSG_COMPLETE,  /* one whole message; what follows it is ignored */
    OR_HTTP_MSG_TOO_LARGE, /* the body is over body_max */
    OR_HTTP_MSG_MALFORMED,
} or_http_msg_state;

typedef struct {
    or_http_head head;          /* slices: head.url, headers, ... */
    http_parser parser;
    bool is_request;
    size_t head_max, body_max;
    or_http_msg_state state;
    const char *why;            /* MALFORMED, TOO_LARGE: the reason */
    const char *method;         /* requests: "GET", "POST", ... once the head parsed */
    int status;                 /* responses: the status code */
    char *body;                 /* NUL-terminated, owned; NULL when empty */
    size_t body_len;
} or_http_msg;

void or_http_msg_init(or_http_msg *m, bool is_request, size_t head_max, size_t body_max);
/* The next bytes of the connection; the state after them. */
or_http_msg_state or_http_msg_feed(or_http_msg *m, const char *data, size_t len);
/* The peer closed: a message that is whole by then completes (a response
 * read until close), one cut short is MALFORMED; with no byte at all the
 * state stays PARTIAL. */
or_http_msg_state or_http_msg_finish(or_http_msg *m);
void or_http_msg_free(or_http_msg *m);

/* A response read for its framing alone (outrider-bench counts answers and
 * their bytes): no copy and no head checks, just where the message ends,
 * whatever its framing (Content-Length, chunked, until close). Fed the
 * bytes as they arrive and, at the peer's EOF, a length of 0. */
typedef struct {
    http_parser _parser;
    bool _done;
} or_http_framer;

void or_http_framer_init(or_http_framer *f);
/* 1 when the message ended exactly with these bytes, 0 when more are
 * needed, -1 when the bytes are not HTTP or go on after the message. */
int or_http_framer_feed(or_http_framer *f, const char *data, size_t len);
unsigned or_http_framer_status(const or_http_framer *f);
bool or_http_framer_keep_alive(const or_http_framer *f);

#endif
