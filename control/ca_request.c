/*
 * The HTTP request parsing of outrider-ca: http_parser callbacks that keep
 * the few things the CA looks at (the target, the Authorization value, the
 * body), each within a fixed bound, and the choice of route. No I/O: the
 * server (ca_server.c) feeds bytes in and answers what it is told, and the
 * fuzzer calls or_ca_request_parse on its inputs.
 *
 * One request per connection: on_message_complete pauses the parser, so
 * http_parser_execute returns at the end of the first request and the
 * bytes after it are never parsed, let alone appended to the first
 * request's fields. A body found to be over the limit pauses it too, so the
 * outcome does not depend on how the bytes were split into reads.
 */
#include "outrider/ca_request.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outrider/units.h"

static or_ca_request *request_of(http_parser *p) { return p->data; }

/* Appends to a NUL-terminated field of `cap` bytes what fits of at[0..len);
 * false when not all of it did. */
static bool append_bounded(char *field, size_t *field_len, size_t cap, const char *at, size_t len)
{
    size_t room = cap - 1 - *field_len;
    size_t n = len < room ? len : room;
    memcpy(field + *field_len, at, n);
    *field_len += n;
    field[*field_len] = '\0';
    return n == len;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    or_ca_request *r = request_of(p);
    if (!append_bounded(r->url, &r->url_len, sizeof r->url, at, len))
        r->url_too_long = true;
    return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
    or_ca_request *r = request_of(p);
    if (r->value_started) {
        r->value_started = false;
        r->field_len = 0;
    }
    (void)append_bounded(r->field, &r->field_len, sizeof r->field, at, len);
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    or_ca_request *r = request_of(p);
    if (!r->value_started) {
        r->value_started = true;
        r->in_auth = strcasecmp(r->field, "authorization") == 0;
        if (r->in_auth)
            r->auth_len = 0;
    }
    if (r->in_auth)
        (void)append_bounded(r->auth, &r->auth_len, sizeof r->auth, at, len);
    return 0;
}

/* The body is over the limit: stop here, where the answer (413) is known. */
static void too_large(http_parser *p)
{
    request_of(p)->too_large = true;
    http_parser_pause(p, 1);
}

static int on_headers_complete(http_parser *p)
{
    if ((p->flags & F_CONTENTLENGTH) && p->content_length > OR_CA_BODY_MAX)
        too_large(p);
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    or_ca_request *r = request_of(p);
    if (r->body_len + len > OR_CA_BODY_MAX) {
        too_large(p);
        return 0;
    }
    if (!r->body && !(r->body = malloc(OR_CA_BODY_MAX + 1)))
        return -1;
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    return 0;
}

static int on_message_complete(http_parser *p)
{
    request_of(p)->state = OR_CA_REQ_COMPLETE;
    http_parser_pause(p, 1); /* parse nothing after this request */
    return 0;
}

static const http_parser_settings parser_settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void or_ca_request_init(or_ca_request *r)
{
    memset(r, 0, sizeof *r);
    http_parser_init(&r->parser, HTTP_REQUEST);
    r->parser.data = r;
    r->state = OR_CA_REQ_PARTIAL;
}

/* Runs the parser; len 0 tells it the client closed. */
static or_ca_req_state execute(or_ca_request *r, const char *data, size_t len)
{
    size_t n = http_parser_execute(&r->parser, &parser_settings, data, len);
    if (r->too_large)
        r->state = OR_CA_REQ_TOO_LARGE; /* answered without waiting for the rest */
    else if (r->state != OR_CA_REQ_COMPLETE &&
             (n != len || HTTP_PARSER_ERRNO(&r->parser) != HPE_OK))
        r->state = OR_CA_REQ_MALFORMED;
    return r->state;
}

or_ca_req_state or_ca_request_feed(or_ca_request *r, const char *data, size_t len)
{
    if (r->state != OR_CA_REQ_PARTIAL || len == 0)
        return r->state;
    return execute(r, data, len);
}

or_ca_req_state or_ca_request_finish(or_ca_request *r)
{
    if (r->state != OR_CA_REQ_PARTIAL)
        return r->state;
    return execute(r, NULL, 0);
}

void or_ca_request_free(or_ca_request *r)
{
    free(r->body);
    r->body = NULL;
    r->body_len = 0;
}

or_ca_req_state or_ca_request_parse(const char *data, size_t len, or_ca_request *out)
{
    or_ca_request_init(out);
    or_ca_request_feed(out, data, len);
    return or_ca_request_finish(out);
}

static or_ca_route error(int *status, const char **message, int code, const char *text)
{
    *status = code;
    *message = text;
    return OR_CA_ROUTE_ERROR;
}

or_ca_route or_ca_request_route(const or_ca_request *r, int *status, const char **message)
{
    if (r->state == OR_CA_REQ_TOO_LARGE)
        return error(status, message, 413, "request body larger than 16 KiB");
    if (r->state != OR_CA_REQ_COMPLETE)
        return error(status, message, 400, "malformed HTTP request");
    if (r->url_too_long)
        return error(status, message, 404, "no such resource");
    size_t path_len = strcspn(r->url, "?");
    int method = r->parser.method;
    bool is_sign = path_len == 8 && strncmp(r->url, "/v1/sign", 8) == 0;
    bool is_bundle = path_len == 10 && strncmp(r->url, "/v1/bundle", 10) == 0;
    bool is_health = path_len == 8 && strncmp(r->url, "/healthz", 8) == 0;
    if (!is_sign && !is_bundle && !is_health)
        return error(status, message, 404,
                     "no such resource; try POST /v1/sign or GET /v1/bundle");
    if (is_sign && method != HTTP_POST)
        return error(status, message, 405, "use POST");
    if (!is_sign && method != HTTP_GET)
        return error(status, message, 405, "use GET");
    *status = 200;
    *message = NULL;
    return is_sign ? OR_CA_ROUTE_SIGN : is_bundle ? OR_CA_ROUTE_BUNDLE : OR_CA_ROUTE_HEALTH;
}

int or_ca_request_ttl(const or_ca_request *r, uint64_t *ttl_s, const char **why)
{
    *ttl_s = 0;
    const char *q = strchr(r->url, '?');
    const char *t = q ? strstr(q, "ttl=") : NULL;
    if (!t || (t[-1] != '?' && t[-1] != '&'))
        return 0;
    char value[32];
    size_t n = strcspn(t + 4, "&");
    if (n >= sizeof value) {
        *why = "ttl too long";
        return -1;
    }
    memcpy(value, t + 4, n);
    value[n] = '\0';
    uint64_t ms;
    if (or_parse_duration_ms(value, &ms, why) != 0)
        return -1;
    *ttl_s = ms < 1000 ? 1 : ms / 1000;
    return 0;
}
