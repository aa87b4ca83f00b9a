/*
 * stats: counters each worker keeps, and their Prometheus rendering.
 *
 * Contract: every worker owns one or_stats and is its only writer; the admin
 * server on the main thread reads all of them. Counters are atomics updated
 * with relaxed ordering (a reader may see a slightly stale value, never a
 * torn one), so the hot path pays one uncontended atomic add per event.
 * or_stats_render appends the Prometheus text exposition of the sum over
 * workers, plus the per-worker loop lag, to a buffer.
 */
#ifndef OUTRIDER_STATS_H
#define OUTRIDER_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "outrider/buf.h"

#define OR_STATS_HANDSHAKE_REASONS 18
#define OR_STATS_H2_ABUSE 12         /* kinds of HTTP/2 abuse (http2.h) */

/* Why a connection waiting in a listener's queue could not be accepted. */
typedef enum {
    OR_ACCEPT_EMFILE,  /* the process is at its open-file limit (RLIMIT_NOFILE) */
    OR_ACCEPT_ENFILE,  /* the system is at its open-file limit */
    OR_ACCEPT_OTHER,
    OR_ACCEPT_REASONS
} or_accept_reason;

typedef struct {
    _Atomic uint64_t connections;       /* accepted */
    _Atomic uint64_t refused;           /* over limits.max_connections */
    _Atomic uint64_t accept_errors[OR_ACCEPT_REASONS];
    _Atomic uint64_t handshake_failures[OR_STATS_HANDSHAKE_REASONS];
    _Atomic uint64_t responses[6];      /* by class: [1]=1xx ... [5]=5xx, [0]=other */
    _Atomic uint64_t rbac[4];           /* allow, deny, dry_run, audit */
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t loop_lag_us;       /* the latest measurement */
    _Atomic uint64_t tls_idle_releases; /* record buffers given back by idle TLS streams */
    _Atomic uint64_t tls_idle_wakes;    /* ... and taken again */
    _Atomic uint64_t h2_abuse[OR_STATS_H2_ABUSE]; /* HTTP/2 connections ended, by kind */
} or_stats;

#define or_stats_add(counter, n) atomic_fetch_add_explicit(&(counter), (n), memory_order_relaxed)

/* Counts a failed handshake under its reason (or_tls_failure_reason's text). */
void or_stats_handshake_failure(or_stats *s, const char *reason);
/* The index of a handshake failure reason in the fixed list (unknown
 * reasons: the index of "other"), and the reason at an index. */
unsigned or_stats_handshake_reason(const char *reason);
const char *or_stats_handshake_reason_name(unsigned i);
void or_stats_response(or_stats *s, int status);
void or_stats_decision(or_stats *s, bool allowed, bool dry_run_matched, bool audit_matched);

void or_stats_render(or_buf *out, or_stats *const *workers, unsigned nworkers);
/* One metric with its HELP and TYPE ("counter", "gauge") lines. */
void or_stats_metric(or_buf *out, const char *type, const char *name, const char *help,
                     uint64_t value);

#endif
