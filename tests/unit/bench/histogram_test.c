/*
 * Unit tests for the outrider-bench latency histogram: bucket arithmetic,
 * percentiles of uniform and exponential samples against the exact order
 * statistics (within the documented relative error), exact min/max/mean,
 * clamping, and merging (a merged histogram equals one fed everything).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/bench_histogram.h"

#define REL_ERROR 0.01 /* the promise: under 1% */

static const double quantiles[] = {0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999, 0.9999};

static uint64_t next_random(uint64_t *state)
{
    uint64_t x = *state; /* xorshift64*: deterministic across runs */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact q-quantile: the ceil(q * n)-th smallest sample. */
static uint64_t exact_quantile(const uint64_t *sorted, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);
    if (rank == 0)
        rank = 1;
    return sorted[rank - 1];
}

static void check_against_exact(uint64_t *samples, size_t n)
{
    or_bench_hist *h = or_bench_hist_new();
    assert_non_null(h);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        or_bench_hist_record(h, samples[i]);
        sum += (double)samples[i];
    }
    qsort(samples, n, sizeof *samples, cmp_u64);
    assert_true(h->count == n);
    assert_true(h->min == samples[0]);
    assert_true(h->max == samples[n - 1]);
    assert_true(or_bench_hist_quantile(h, 1.0) == samples[n - 1]);
    assert_true(fabs(or_bench_hist_mean(h) - sum / (double)n) < 1e-6 * sum / (double)n);
    for (size_t i = 0; i < sizeof quantiles / sizeof quantiles[0]; i++) {
        double exact = (double)exact_quantile(samples, n, quantiles[i]);
        double got = (double)or_bench_hist_quantile(h, quantiles[i]);
        if (fabs(got - exact) > REL_ERROR * exact)
            fail_msg("q=%g: got %.0f, exact %.0f", quantiles[i], got, exact);
    }
    or_bench_hist_free(h);
}

static void test_bucket_arithmetic(void **state)
{
    (void)state;
    uint64_t rnd = 42;
    for (uint64_t v = 0; v < 4096; v++) {
        unsigned i = or_bench_hist_index(v);
        assert_true(or_bench_hist_bucket_low(i) <= v);
        assert_true(v < or_bench_hist_bucket_low(i) + or_bench_hist_bucket_width(i));
        if (v < 2 * OR_BENCH_HIST_SUB)
            assert_true(or_bench_hist_bucket_width(i) == 1);
    }
    for (int k = 0; k < 100000; k++) {
        uint64_t v = next_random(&rnd) >> (64 - OR_BENCH_HIST_MAX_EXP);
        unsigned i = or_bench_hist_index(v);
        assert_true(i < OR_BENCH_HIST_BUCKETS);
        uint64_t low = or_bench_hist_bucket_low(i), width = or_bench_hist_bucket_width(i);
        assert_true(low <= v && v < low + width);
        if (low > 0)
            assert_true((double)width / (double)low <= 1.0 / OR_BENCH_HIST_SUB);
    }
    assert_true(or_bench_hist_index(OR_BENCH_HIST_MAX_NS) == OR_BENCH_HIST_BUCKETS - 1);
    /* Indices are monotonic in the value. */
    unsigned prev = 0;
    for (uint64_t v = 1; v < (UINT64_C(1) << 20); v += 7) {
        unsigned i = or_bench_hist_index(v);
        assert_true(i >= prev);
        prev = i;
    }
}

static void test_uniform(void **state)
{
    (void)state;
    /* 1 us .. 100 ms, evenly spaced */
    size_t n = 100000;
    uint64_t *s = malloc(n * sizeof *s);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = 1000 + i * 1000;
    check_against_exact(s, n);
    /* and random uniform over 1 us .. 60 s */
    uint64_t rnd = 7;
    for (size_t i = 0; i < n; i++)
        s[i] = 1000 + next_random(&rnd) % UINT64_C(60000000000);
    check_against_exact(s, n);
    free(s);
}

static void test_exponential(void **state)
{
    (void)state;
    size_t n = 200000;
    uint64_t *s = malloc(n * sizeof *s);
    assert_non_null(s);
    uint64_t rnd = 12345;
    for (size_t i = 0; i < n; i++) {
        double u = ((double)(next_random(&rnd) >> 11) + 1.0) / 9007199254740993.0;
        s[i] = (uint64_t)(-log(u) * 250000.0) + 1000; /* mean 250 us, from 1 us */
    }
    check_against_exact(s, n);
    free(s);
}

static void test_exact_small_values(void **state)
{
    (void)state;
    or_bench_hist *h = or_bench_hist_new();
    for (uint64_t v = 1; v <= 100; v++)
        or_bench_hist_record(h, v);
    assert_true(or_bench_hist_quantile(h, 0.5) == 50);
    assert_true(or_bench_hist_quantile(h, 0.99) == 99);
    assert_true(or_bench_hist_quantile(h, 0.01) == 1);
    or_bench_hist_reset(h);
    assert_true(or_bench_hist_quantile(h, 0.5) == 0);
    assert_true(or_bench_hist_mean(h) == 0.0);
    or_bench_hist_free(h);
}

static void test_clamp(void **state)
{
    (void)state;
    or_bench_hist *h = or_bench_hist_new();
    or_bench_hist_record(h, 200); /* exact: below 2 * OR_BENCH_HIST_SUB */
    or_bench_hist_record(h, UINT64_C(1) << 40); /* about 18 minutes */
    assert_true(h->clamped == 1);
    assert_true(h->max == OR_BENCH_HIST_MAX_NS);
    assert_true(or_bench_hist_quantile(h, 1.0) == OR_BENCH_HIST_MAX_NS);
    assert_true(or_bench_hist_quantile(h, 0.5) == 200);
    or_bench_hist_free(h);
}

static void test_merge(void **state)
{
    (void)state;
    or_bench_hist *a = or_bench_hist_new(), *b = or_bench_hist_new();
    or_bench_hist *all = or_bench_hist_new(), *empty = or_bench_hist_new();
    uint64_t rnd = 99;
    for (int i = 0; i < 50000; i++) {
        uint64_t v = 500 + next_random(&rnd) % 5000000;
        or_bench_hist_record(i % 3 ? a : b, v);
        or_bench_hist_record(all, v);
    }
    or_bench_hist_merge(a, empty); /* merging nothing changes nothing */
    or_bench_hist_merge(empty, b); /* into an empty one copies */
    assert_true(empty->min == b->min && empty->max == b->max && empty->count == b->count);
    or_bench_hist_merge(a, b);
    assert_true(a->count == all->count);
    assert_true(a->min == all->min);
    assert_true(a->max == all->max);
    assert_memory_equal(a->counts, all->counts, sizeof a->counts);
    for (size_t i = 0; i < sizeof quantiles / sizeof quantiles[0]; i++)
        assert_true(or_bench_hist_quantile(a, quantiles[i]) ==
                    or_bench_hist_quantile(all, quantiles[i]));
    or_bench_hist_free(a);
    or_bench_hist_free(b);
    or_bench_hist_free(all);
    or_bench_hist_free(empty);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_arithmetic),
        cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_exponential),
        cmocka_unit_test(test_exact_small_values),
        cmocka_unit_test(test_clamp),
        cmocka_unit_test(test_merge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
