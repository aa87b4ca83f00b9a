/*
 * http_driver: the proxy's HTTP/1 parsing, one input per line, for the
 * differential tests (tests/integration/test_http_differential.sh), which
 * compare it with an independent implementation written in Python.
 *
 *   http_driver path [decode]  a request target per line; prints the
 *                              normalised target, or "!" and the reason
 *   http_driver chunked        a chunked body per line; prints the decoded
 *                              body, or "!" when the proxy refuses it, or
 *                              "?" when it wants more bytes (the body is
 *                              scanned by or_chunked_scan, as the proxy
 *                              does, then decoded by the HTTP/1 kit's
 *                              or_http_msg, on the same http-parser)
 *   http_driver head           a request head per line; prints the status
 *                              the proxy answers (0 when it passes it on)
 *                              and the framing: "cl N", "chunked" or "none"
 *
 * Inputs and outputs are hex, so any byte can be carried. The code paths are
 * the proxy's: or_http_target_normalize, or_chunked_scan, or_http_head_collect
 * + or_http_head_vet_request (which takes the caller's http_parser).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/http_chunked.h"
#include "outrider/http_head.h"
#include "outrider/buf.h"
#include "outrider/http_path.h"

static size_t unhex(const char *line, char *out)
{
    size_t n = 0;
    for (; line[0] && line[1] && line[0] != '\n'; line += 2) {
        unsigned v;
        if (sscanf(line, "%2x", &v) != 1)
            break;
        out[n++] = (char)v;
    }
    return n;
}

static void put_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)p[i]);
}

static void run_path(const char *in, size_t n, or_escaped_slashes mode)
{
    or_buf out = {0};
    or_target t;
    or_path_status st = or_http_target_normalize(in, n, mode, &out, &t);
    if (st == OR_PATH_OK)
        put_hex(out.data, out.len);
    else
        printf("!%s", or_http_path_status_text(st));
    or_buf_free(&out);
}

static void run_chunked(const char *in, size_t n)
{
    static const char head[] = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    or_http_msg m;
    or_http_msg_init(&m, true, sizeof head, n + 1);
    or_chunked scan = {0};
    or_http_msg_feed(&m, head, sizeof head - 1);
    size_t valid = or_chunked_scan(&scan, in, n);
    /* no valid byte at all: the input ends there */
    or_http_msg_state st = valid ? or_http_msg_feed(&m, in, valid) : or_http_msg_finish(&m);
    if (scan.state == OR_CHUNK_ERROR || st == OR_HTTP_MSG_MALFORMED)
        printf("!");
    else if (st != OR_HTTP_MSG_COMPLETE)
        printf("?");
    else
        put_hex(m.body ? m.body : "", m.body_len);
    or_http_msg_free(&m);
}

static void run_head(const char *in, size_t n)
{
    or_http_head h = {0};
    http_parser p;
    http_parser_init(&p, HTTP_REQUEST);
    size_t used = 0;
    or_head_status st = or_http_head_collect(&h, in, n, 65536, &used);
    const char *why = NULL;
    int status = st == OR_HEAD_DONE ? or_http_head_vet_request(&h, &p, &why) : -1;
    if (status != 0)
        printf("%d", status);
    else if (h.chunked)
        printf("0 chunked");
    else if (h.has_content_length)
        printf("0 cl %llu", (unsigned long long)h.content_length);
    else
        printf("0 none");
    or_http_head_free(&h);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: http_driver path [decode] | chunked | head\n");
        return 2;
    }
    const char *mode = argv[1];
    or_escaped_slashes slashes =
        argc > 2 && strcmp(argv[2], "decode") == 0 ? OR_SLASHES_DECODE : OR_SLASHES_REJECT;
    static char line[1 << 20], in[1 << 19];
    while (fgets(line, sizeof line, stdin)) {
        size_t n = unhex(line, in);
        if (strcmp(mode, "path") == 0)
            run_path(in, n, slashes);
        else if (strcmp(mode, "chunked") == 0)
            run_chunked(in, n);
        else
            run_head(in, n);
        putchar('\n');
    }
    return 0;
}
