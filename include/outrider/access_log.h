/*
 * access_log: one line per HTTP request or TCP connection, never blocking.
 *
 * Contract: or_access_log_open opens the file (a start-up error if it
 * cannot) and starts one writer thread. Each worker formats its records into
 * its own bounded buffer with or_access_log_write, which never blocks and
 * never allocates: when the buffer is full the line is counted as dropped
 * (or_access_log_dropped). The writer thread moves full or aging buffers to
 * the file. or_access_log_reopen (SIGUSR1, for logrotate) makes the writer
 * reopen the path before its next write. or_access_log_close writes what is
 * buffered and stops the thread. A record's strings are borrowed for the
 * duration of the call; NULL strings are written as "-".
 */
#ifndef OUTRIDER_ACCESS_LOG_H
#define OUTRIDER_ACCESS_LOG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "outrider/config.h"

typedef struct or_access_log or_access_log;

typedef struct {
    struct timespec start;       /* CLOCK_REALTIME at accept / request start */
    uint64_t duration_us;
    const char *listener;
    const char *direction;       /* "inbound" | "outbound" */
    const char *source;          /* "ip:port" of the downstream peer */
    const char *peer_id;         /* SPIFFE ID of the mTLS peer */
    const char *method;          /* HTTP only */
    const char *path;            /* HTTP only; full request target */
    size_t path_len;
    const char *protocol;        /* "HTTP/1.1", "HTTP/1.0", "HTTP/2" or "tcp" */
    int status;                  /* HTTP status; 0 on tcp */
    const char *response_flags;  /* Envoy-style: "-", "UF", "UT", "UC", "DC", "RBAC", "URX", "DI" ... */
    uint64_t bytes_in;           /* from downstream */
    uint64_t bytes_out;          /* to downstream */
    const char *upstream;        /* "host:port" */
    int64_t upstream_time_us;    /* -1 when no upstream was used */
    const char *rbac_decision;   /* "allow" | "deny" | NULL */
    const char *rbac_policy;
    int rbac_rule;               /* -1 when none */
    const char *tls_cipher;
    const char *request_id;      /* x-request-id */
    const char *trace_id;        /* of the W3C traceparent, 32 hex digits */
    const char *grpc_status;     /* gRPC responses only; NULL: the field is left out */
} or_access_record;

/* Formatters, exposed for tests. Return the line length (with the trailing
 * '\n'), or 0 if it does not fit in `len`. Fields too long for `len` are cut
 * first (OR_ACCESS_LOG_TRUNCATED), so 0 means not even the cut line fits.
 * In JSON, NULL strings are written as null. */
size_t or_access_log_format_text(const or_access_record *r, char *buf, size_t len);
size_t or_access_log_format_json(const or_access_record *r, char *buf, size_t len);

or_access_log *or_access_log_open(const char *path, or_access_log_format format,
                                  unsigned nworkers, char *err, size_t err_len);

/* Longest line a worker formats (bytes, with the '\n'). Every field has a
 * size cap and the request target takes what is left of the line; a field
 * that is cut ends in OR_ACCESS_LOG_TRUNCATED (docs/access-log.md). */
#define OR_ACCESS_LOG_LINE_MAX 8192
#define OR_ACCESS_LOG_TRUNCATED "...[truncated]"
/* Buffer per worker used by or_access_log_open. */
#define OR_ACCESS_LOG_BUFFER_DEFAULT ((size_t)256 * 1024)

/* As or_access_log_open with a chosen buffer per worker, rounded up to a
 * power of two and to at least 2 * OR_ACCESS_LOG_LINE_MAX (tests, tuning). */
or_access_log *or_access_log_open_sized(const char *path, or_access_log_format format,
                                        unsigned nworkers, size_t per_worker_bytes,
                                        char *err, size_t err_len);

void or_access_log_write(or_access_log *log, unsigned worker, const or_access_record *r);
void or_access_log_reopen(or_access_log *log);
uint64_t or_access_log_dropped(const or_access_log *log);
/* or_access_log_reopen is async-signal-safe. or_access_log_dropped counts
 * lines that did not fit a worker's buffer plus lines a failed write(2) lost.
 * or_access_log_close is called once no worker writes any more. */
void or_access_log_close(or_access_log *log);

#endif
