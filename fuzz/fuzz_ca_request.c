/*
 * Fuzz target: outrider-ca's HTTP request parsing, or_ca_request_parse and
 * or_ca_request_route (include/outrider/ca_request.h), with no I/O.
 *
 * The input is parsed in one buffer, as the server would see it if it came
 * in one read followed by the client's close; the route is taken. It is
 * parsed again fed in pieces whose size comes from the first input byte (1
 * to 64 bytes), as reads from a slow client would split it.
 *
 * Beyond memory and UB errors, it checks the parser's contract: the kept
 * fields stay within their bounds and NUL-terminated; the route of a
 * finished request is one of the three, or an error status the server
 * answers (400, 404, 405, 413) with a message; and the outcome does not
 * depend on how the bytes were split: the same state and, for a complete
 * request, the same target, Authorization value and body.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "outrider/ca_request.h"

static void check_bounds(const or_ca_request *r)
{
    FUZZ_REQUIRE(r->url_len < OR_CA_URL_MAX && r->url[r->url_len] == '\0');
    FUZZ_REQUIRE(r->auth_len < OR_CA_AUTH_MAX && r->auth[r->auth_len] == '\0');
    FUZZ_REQUIRE(r->body_len <= OR_CA_BODY_MAX);
    FUZZ_REQUIRE(r->body == NULL ? r->body_len == 0 : r->body[r->body_len] == '\0');
}

static void check_route(const or_ca_request *r, or_ca_req_state state)
{
    int status = 0;
    const char *message = NULL;
    uint64_t ttl;
    const char *why = NULL;
    if (state == OR_CA_REQ_PARTIAL)
        return;
    or_ca_route route = or_ca_request_route(r, &status, &message);
    if (route == OR_CA_ROUTE_ERROR) {
        FUZZ_REQUIRE(status == 400 || status == 404 || status == 405 || status == 413);
        FUZZ_REQUIRE(message != NULL && message[0] != '\0');
        FUZZ_REQUIRE((status == 413) == (state == OR_CA_REQ_TOO_LARGE));
        FUZZ_REQUIRE((status == 400) == (state == OR_CA_REQ_MALFORMED));
    } else {
        FUZZ_REQUIRE(state == OR_CA_REQ_COMPLETE && status == 200);
        FUZZ_REQUIRE(route == OR_CA_ROUTE_SIGN || route == OR_CA_ROUTE_BUNDLE ||
                     route == OR_CA_ROUTE_HEALTH);
    }
    if (route == OR_CA_ROUTE_SIGN && or_ca_request_ttl(r, &ttl, &why) != 0)
        FUZZ_REQUIRE(why != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    or_ca_request whole, pieces;

    or_ca_req_state state = or_ca_request_parse(text, size, &whole);
    check_bounds(&whole);
    check_route(&whole, state);

    size_t step = size > 0 ? (size_t)(data[0] % 64) + 1 : 1;
    or_ca_request_init(&pieces);
    for (size_t at = 0; at < size; at += step)
        or_ca_request_feed(&pieces, text + at, size - at < step ? size - at : step);
    FUZZ_REQUIRE(or_ca_request_finish(&pieces) == state);
    check_bounds(&pieces);
    if (state == OR_CA_REQ_COMPLETE) {
        FUZZ_REQUIRE(strcmp(whole.url, pieces.url) == 0);
        FUZZ_REQUIRE(whole.url_too_long == pieces.url_too_long);
        FUZZ_REQUIRE(strcmp(whole.auth, pieces.auth) == 0);
        FUZZ_REQUIRE(whole.body_len == pieces.body_len);
        FUZZ_REQUIRE(whole.body_len == 0 || memcmp(whole.body, pieces.body, whole.body_len) == 0);
    }
    or_ca_request_free(&pieces);
    or_ca_request_free(&whole);
    return 0;
}
