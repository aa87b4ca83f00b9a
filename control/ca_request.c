/*
 * The HTTP request of outrider-ca: the fields the CA looks at (the target,
 * the Authorization value, the body), each within a fixed bound, and the
 * choice of route. The bytes are read by or_http_msg (http_head.h), which
 * checks the head byte-exact, stops at the end of the first request (so
 * bytes after it are never parsed, let alone appended to the first
 * request's fields) and says 413 as soon as a body is known to be over the
 * limit. No I/O: the server (ca_server.c) hands over what the HTTP/1 kit
 * read, and the fuzzer calls or_ca_request_parse on its inputs.
 */
#include "outrider/ca_request.h"

#include <string.h>
#include <strings.h>

#include "outrider/http_server.h"
#include "outrider/units.h"

/* Copies what fits of at[0..len) into a NUL-terminated field of `cap`
 * bytes; false when not all of it did. */
static bool copy_bounded(char *field, size_t *field_len, size_t cap, const char *at, size_t len)
{
    size_t n = len < cap - 1 ? len : cap - 1;
    memcpy(field, at, n);
    field[n] = '\0';
    *field_len = n;
    return n == len;
}

static or_ca_req_state state_of(or_http_msg_state s)
{
    switch (s) {
    case OR_HTTP_MSG_COMPLETE: return OR_CA_REQ_COMPLETE;
    case OR_HTTP_MSG_TOO_LARGE: return OR_CA_REQ_TOO_LARGE;
    case OR_HTTP_MSG_MALFORMED: return OR_CA_REQ_MALFORMED;
    default: return OR_CA_REQ_PARTIAL;
    }
}

void or_ca_request_view(or_ca_request *r, const or_http_msg *m)
{
    r->state = state_of(m->state);
    r->method = m->method ? m->method : "";
    r->body = m->body;
    r->body_len = m->body_len;
    if (r->state != OR_CA_REQ_COMPLETE)
        return;
    r->url_too_long = !copy_bounded(r->url, &r->url_len, sizeof r->url, m->head.url,
                                    m->head.url_len);
    const or_http_header *auth = or_http_head_find(&m->head, "authorization", 13);
    if (auth)
        (void)copy_bounded(r->auth, &r->auth_len, sizeof r->auth, auth->value, auth->value_len);
}

void or_ca_request_init(or_ca_request *r)
{
    memset(r, 0, sizeof *r);
    or_http_msg_init(&r->msg, true, OR_CA_HEAD_MAX, OR_CA_BODY_MAX);
    r->method = "";
}

or_ca_req_state or_ca_request_feed(or_ca_request *r, const char *data, size_t len)
{
    if (r->state != OR_CA_REQ_PARTIAL || len == 0)
        return r->state;
    or_http_msg_feed(&r->msg, data, len);
    or_ca_request_view(r, &r->msg);
    return r->state;
}

or_ca_req_state or_ca_request_finish(or_ca_request *r)
{
    if (r->state == OR_CA_REQ_PARTIAL) {
        or_http_msg_finish(&r->msg);
        or_ca_request_view(r, &r->msg);
    }
    return r->state;
}

void or_ca_request_free(or_ca_request *r)
{
    or_http_msg_free(&r->msg);
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
    static const or_http_route routes[] = {  /* in the order of or_ca_route */
        {"/v1/sign", "POST"}, {"/v1/bundle", "GET"}, {"/healthz", "GET"}};
    if (r->state == OR_CA_REQ_TOO_LARGE)
        return error(status, message, 413, "request body larger than 16 KiB");
    if (r->state != OR_CA_REQ_COMPLETE)
        return error(status, message, 400, "malformed HTTP request");
    if (r->url_too_long)
        return error(status, message, 404, "no such resource");
    const char *allowed = NULL;
    int i = or_http_route_find(routes, 3, r->url, r->url_len, r->method, status, &allowed);
    if (i < 0)
        return error(status, message, *status,
                     *status == 404 ? "no such resource; try POST /v1/sign or GET /v1/bundle"
                     : strcmp(allowed, "POST") == 0 ? "use POST" : "use GET");
    *status = 200;
    *message = NULL;
    return (or_ca_route)i;
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
