/*
 * bench_histogram: a latency histogram with a fixed relative error.
 *
 * Contract: values are unsigned nanosecond counts. Buckets are log-linear
 * (HDR style): every power of two is split into OR_BENCH_HIST_SUB equal
 * sub-buckets, so a bucket is never wider than 1/128 of its lower bound and
 * any reported percentile is within 0.4% (half a bucket) of a value that was
 * recorded, for values from 1 ns up to OR_BENCH_HIST_MAX_NS (about 68.7 s).
 * Larger values are clamped to that maximum and counted in `clamped`. Values
 * below 256 ns are exact. min, max and the sum are exact. The structure is
 * plain memory with no pointers: one per thread, merged afterwards; no
 * locking, no allocation after or_bench_hist_new.
 */
#ifndef OUTRIDER_BENCH_HISTOGRAM_H
#define OUTRIDER_BENCH_HISTOGRAM_H

#include <stdint.h>

#define OR_BENCH_HIST_SUB_BITS 7
#define OR_BENCH_HIST_SUB (1u << OR_BENCH_HIST_SUB_BITS)
#define OR_BENCH_HIST_MAX_EXP 36 /* values below 2^36 ns */
#define OR_BENCH_HIST_MAX_NS ((UINT64_C(1) << OR_BENCH_HIST_MAX_EXP) - 1)
#define OR_BENCH_HIST_BUCKETS \
    ((OR_BENCH_HIST_MAX_EXP - OR_BENCH_HIST_SUB_BITS + 1) * OR_BENCH_HIST_SUB)

typedef struct {
    uint64_t count;
    uint64_t clamped;  /* values above OR_BENCH_HIST_MAX_NS */
    uint64_t min, max; /* exact (max after clamping); 0 when empty */
    double sum;        /* for the mean */
    uint64_t counts[OR_BENCH_HIST_BUCKETS];
} or_bench_hist;

/* A zeroed histogram on the heap (it is about 30 KiB); NULL on ENOMEM. */
or_bench_hist *or_bench_hist_new(void);
void or_bench_hist_free(or_bench_hist *h);
void or_bench_hist_reset(or_bench_hist *h);

void or_bench_hist_record(or_bench_hist *h, uint64_t value_ns);
/* Adds every sample of src to dst. */
void or_bench_hist_merge(or_bench_hist *dst, const or_bench_hist *src);

/* The value at quantile q (0 < q <= 1): the middle of the bucket holding the
 * ceil(q * count)-th smallest sample, kept within [min, max]. q >= 1 gives
 * max exactly. 0 when empty. */
uint64_t or_bench_hist_quantile(const or_bench_hist *h, double q);
double or_bench_hist_mean(const or_bench_hist *h);

/* Bucket arithmetic, exposed for the tests. */
unsigned or_bench_hist_index(uint64_t value_ns);
uint64_t or_bench_hist_bucket_low(unsigned index);
uint64_t or_bench_hist_bucket_width(unsigned index);

#endif
