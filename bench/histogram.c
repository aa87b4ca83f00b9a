/*
 * Log-linear latency histogram.
 *
 * Values below 2 * OR_BENCH_HIST_SUB are their own bucket. Above that, a
 * value v with highest set bit e lands in "row" shift = e - SUB_BITS, where
 * v >> shift lies in [SUB, 2 * SUB); the bucket index is
 * shift * SUB + (v >> shift), which makes the rows contiguous after the
 * exact range. A bucket in row `shift` is 2^shift wide and starts at
 * (v >> shift) << shift >= SUB * 2^shift, hence the 1/SUB relative width.
 */
#include "outrider/bench_histogram.h"

#include <stdlib.h>
#include <string.h>

or_bench_hist *or_bench_hist_new(void)
{
    return calloc(1, sizeof(or_bench_hist));
}

void or_bench_hist_free(or_bench_hist *h)
{
    free(h);
}

void or_bench_hist_reset(or_bench_hist *h)
{
    memset(h, 0, sizeof *h);
}

unsigned or_bench_hist_index(uint64_t v)
{
    if (v > OR_BENCH_HIST_MAX_NS)
        v = OR_BENCH_HIST_MAX_NS;
    if (v < 2 * OR_BENCH_HIST_SUB)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = e - OR_BENCH_HIST_SUB_BITS;
    return shift * OR_BENCH_HIST_SUB + (unsigned)(v >> shift);
}

static unsigned row_shift(unsigned index)
{
    if (index < 2 * OR_BENCH_HIST_SUB)
        return 0;
    return index / OR_BENCH_HIST_SUB - 1;
}

uint64_t or_bench_hist_bucket_low(unsigned index)
{
    unsigned shift = row_shift(index);
    return (uint64_t)(index - shift * OR_BENCH_HIST_SUB) << shift;
}

uint64_t or_bench_hist_bucket_width(unsigned index)
{
    return UINT64_C(1) << row_shift(index);
}

void or_bench_hist_record(or_bench_hist *h, uint64_t v)
{
    if (v > OR_BENCH_HIST_MAX_NS) {
        v = OR_BENCH_HIST_MAX_NS;
        h->clamped++;
    }
    h->counts[or_bench_hist_index(v)]++;
    if (h->count == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->count++;
    h->sum += (double)v;
}

void or_bench_hist_merge(or_bench_hist *dst, const or_bench_hist *src)
{
    if (src->count == 0)
        return;
    for (unsigned i = 0; i < OR_BENCH_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    if (dst->count == 0 || src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
    dst->count += src->count;
    dst->clamped += src->clamped;
    dst->sum += src->sum;
}

uint64_t or_bench_hist_quantile(const or_bench_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    double want = q * (double)h->count;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < OR_BENCH_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen < rank)
            continue;
        uint64_t v = or_bench_hist_bucket_low(i) + or_bench_hist_bucket_width(i) / 2;
        if (v < h->min)
            v = h->min;
        if (v > h->max)
            v = h->max;
        return v;
    }
    return h->max;
}

double or_bench_hist_mean(const or_bench_hist *h)
{
    return h->count ? h->sum / (double)h->count : 0.0;
}
