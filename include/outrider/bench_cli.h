/*
 * bench_cli: the command line of outrider-bench.
 *
 * Contract: or_bench_cli_parse fills an or_bench_opts from argv without
 * side effects other than writing a message into err; the strings in opts
 * point into argv or into opts itself. A parsed opts is complete: every
 * default is applied and every combination that makes no sense (TLS files
 * for a plain URL, --resume outside handshake mode, idle over plain TCP...)
 * is refused with a sentence that says what to change.
 */
#ifndef OUTRIDER_BENCH_CLI_H
#define OUTRIDER_BENCH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sys/socket.h>

typedef enum {
    OR_BENCH_RPS,
    OR_BENCH_HANDSHAKE,
    OR_BENCH_BULK,
    OR_BENCH_IDLE,
    OR_BENCH_CIPHER,
    OR_BENCH_PKOPS,
} or_bench_mode;

typedef struct {
    or_bench_mode mode;
    const char *mode_name;
    const char *url;
    bool tls;                       /* https:// */
    char host[300];                 /* "ip:port", for the Host header */
    uint16_t port;
    char path[1024];
    struct sockaddr_storage addr;   /* the literal IP of the URL */

    const char *cert, *key, *ca;    /* TLS client identity and bundle */
    const char *trust_domain;       /* peer must be an SVID of it */
    const char *peer_id;            /* optional expected SPIFFE ID */
    bool resume;

    unsigned connections;
    unsigned threads;
    uint64_t duration_ms;           /* 0 when --requests is given */
    uint64_t requests;              /* 0 = run for the duration */
    double rate;                    /* requests/s over all threads; 0 = closed loop */
    uint64_t req_size;              /* POST body bytes; 0 = GET */
    uint64_t timeout_ms;            /* per request (and connect + handshake) */
    uint64_t hold_ms;               /* idle: how long to hold the connections */
    int pid;                        /* the server: RSS (idle) or CPU time (others) */
    uint64_t cipher_bytes;          /* cipher: bytes to encrypt */
    bool json, quiet;
} or_bench_opts;

/* 0 on success, 1 when --help was printed (to out), -1 on a usage error. */
int or_bench_cli_parse(int argc, char **argv, or_bench_opts *opts, char *err, size_t err_len);
void or_bench_cli_usage(void *stream);

#endif
