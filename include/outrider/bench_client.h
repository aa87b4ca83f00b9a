/*
 * bench_client: one load-generating thread of outrider-bench.
 *
 * Contract: an or_bench_worker owns one libuv loop, its or_stream loop
 * state, its mbedTLS client configuration (built from shared creds) and its
 * share of the connections, request quota and rate. or_bench_worker_run
 * runs the loop on the calling thread until the run is over; nothing in a
 * worker is touched by another thread except the progress counters, which
 * are atomics readable at any time (or_bench_worker_progress), and the
 * `settled` flag of idle mode. Results (counters, histogram, elapsed time)
 * are read after run returns.
 *
 * Latency is recorded per successful request: from the moment it was sent
 * (closed loop), from its intended send time when it had to wait for a
 * connection (fixed rate), from the start of connect (handshake mode), or
 * connect-to-handshake-done (idle mode). Errors and timeouts are counted and
 * never enter the histogram.
 */
#ifndef OUTRIDER_BENCH_CLIENT_H
#define OUTRIDER_BENCH_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "outrider/bench_cli.h"
#include "outrider/bench_histogram.h"
#include "outrider/tls.h"

typedef struct { /* uint64_t counts only: or_bench_counts_add adds them as an array */
    uint64_t requests;       /* successful: 2xx answered (idle: connections opened) */
    uint64_t errors;         /* the sum of the four kinds below */
    uint64_t connect_errors, tls_errors, http_errors, io_errors;
    uint64_t timeouts;
    uint64_t bytes_sent, bytes_received;   /* plaintext, headers included */
    uint64_t handshakes_full, handshakes_resumed;
    uint64_t connections;    /* connections opened (TCP + handshake done) */
    uint64_t unsent;         /* fixed rate: requests due but never sent */
} or_bench_counts;

typedef struct or_bench_worker or_bench_worker;

/* Builds worker `index` of opts->threads. creds and tickets are NULL for a
 * plain URL; they are shared and must outlive the worker. */
or_bench_worker *or_bench_worker_new(const or_bench_opts *opts, unsigned index,
                                     or_tls_creds *creds, or_tls_tickets *tickets,
                                     char *err, size_t err_len);
/* Runs to the end of the run; 0, or a libuv error if the loop could not start. */
int or_bench_worker_run(or_bench_worker *w);
/* Any thread: requests and errors+timeouts so far. */
void or_bench_worker_progress(const or_bench_worker *w, uint64_t *requests, uint64_t *errors);
/* Any thread, idle mode: true once every connection is open or has failed. */
bool or_bench_worker_settled(const or_bench_worker *w);

const or_bench_counts *or_bench_worker_counts(const or_bench_worker *w);
/* The cipher suite last negotiated, "" if none. */
const char *or_bench_worker_cipher(const or_bench_worker *w);
const or_bench_hist *or_bench_worker_hist(const or_bench_worker *w);
/* Seconds from the first connect to the end of sending (idle: to settled). */
double or_bench_worker_elapsed(const or_bench_worker *w);
void or_bench_worker_free(or_bench_worker *w);

#endif
