/*
 * bench_report: merged results of a run, as text or JSON, and the progress
 * line.
 *
 * Contract: an or_bench_result is filled by the caller from the workers
 * (or_bench_counts_add, or_bench_hist_merge) and printed once. The JSON is
 * one object on one line with stable field names (bench/README.md lists
 * them); latencies are in microseconds with three decimals, rates per
 * second, sizes in bytes. Nothing here allocates or keeps state.
 */
#ifndef OUTRIDER_BENCH_REPORT_H
#define OUTRIDER_BENCH_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "outrider/bench_cli.h"
#include "outrider/bench_client.h"
#include "outrider/bench_histogram.h"

/* CPU time of a process, all its threads: user and system seconds. */
typedef struct {
    double user_s, system_s;
} or_bench_cpu;

typedef struct {
    const or_bench_opts *o;
    or_bench_counts counts;
    const or_bench_hist *hist;
    double elapsed_s;        /* the longest worker's */
    const char *cipher;      /* negotiated suite, "" for plain */
    long rss_before_kb;      /* idle mode with --pid; -1 otherwise */
    long rss_after_kb;
    bool has_server_cpu;     /* other modes with --pid: */
    or_bench_cpu server_cpu; /* the CPU time it used during the run */
} or_bench_result;

void or_bench_counts_add(or_bench_counts *dst, const or_bench_counts *src);
void or_bench_report_text(FILE *out, const or_bench_result *r);
void or_bench_report_json(FILE *out, const or_bench_result *r);
/* "[  3s] requests 12345 (4115/s) errors 0" on one line. */
void or_bench_progress(FILE *out, unsigned second, uint64_t requests, uint64_t per_s,
                       uint64_t errors);
/* VmRSS of pid in KiB from /proc/PID/status, or -1. */
long or_bench_rss_kb(int pid);
/* The CPU time pid has used so far; 0, or -1 if it cannot be read. */
int or_bench_cpu_read(int pid, or_bench_cpu *cpu);

#endif
