/*
 * Request and trace identifiers (proxy/http/trace.c): new ones are
 * well-formed and never repeat across many refills of the random pool; a
 * request's own x-request-id and traceparent are kept and draw nothing;
 * the traceparent check takes what the W3C recommendation allows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "outrider/keys.h"
#include "outrider/trace.h"

#define TAKES 3000 /* about 120 refills of the pool */

static or_keys_rng rng;

static int setup(void **state)
{
    (void)state;
    char err[256];
    return or_keys_rng_init(&rng, "test-trace", err, sizeof err);
}

static int teardown(void **state)
{
    (void)state;
    or_keys_rng_free(&rng);
    return 0;
}

static bool is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
            return false;
    return true;
}

/* A random UUID (version 4, RFC 9562 variant): 8-4-4-4-12 lower-case hex. */
static void assert_uuid4(const char *id)
{
    assert_int_equal(strlen(id), 36);
    for (int i = 0; i < 36; i++)
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(id[i], '-');
        else
            assert_true(is_lower_hex(id + i, 1));
    assert_int_equal(id[14], '4');
    assert_non_null(strchr("89ab", id[19]));
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, b); }

/* Sorted rows of `width` bytes: no two alike. */
static void assert_distinct(char *rows, size_t n, size_t width)
{
    qsort(rows, n, width, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(rows + (i - 1) * width, rows + i * width) == 0)
            fail_msg("identifier repeated: %s", rows + i * width);
}

static void test_new_ids(void **state)
{
    (void)state;
    static char rids[TAKES][OR_TRACE_REQUEST_ID_MAX], tids[TAKES][33];
    or_trace_random rnd = {0};
    size_t refills = 0;
    for (int i = 0; i < TAKES; i++) {
        or_trace t;
        size_t before = rnd.left;
        or_trace_take(&t, &rnd, &rng.drbg, NULL, 0, NULL, 0);
        refills += rnd.left > before;
        assert_uuid4(t.request_id);
        assert_true(t.own_request_id && t.own_traceparent);
        assert_int_equal(strlen(t.traceparent), 55);
        assert_true(or_trace_parent_valid(t.traceparent, 55));
        assert_memory_equal(t.traceparent, "00-", 3);
        assert_memory_equal(t.traceparent + 3, t.trace_id, 32);
        assert_string_equal(t.traceparent + 52, "-01");
        strcpy(rids[i], t.request_id);
        strcpy(tids[i], t.trace_id);
    }
    assert_true(refills >= TAKES * 40 / OR_TRACE_RANDOM);
    assert_distinct(&rids[0][0], TAKES, sizeof rids[0]);
    assert_distinct(&tids[0][0], TAKES, sizeof tids[0]);
}

static void test_kept_ids_draw_nothing(void **state)
{
    (void)state;
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    or_trace_random rnd = {0};
    or_trace t;
    or_trace_take(&t, &rnd, &rng.drbg, "abc-123", 7, tp, strlen(tp));
    assert_string_equal(t.request_id, "abc-123");
    assert_false(t.own_request_id);
    assert_false(t.own_traceparent);
    assert_string_equal(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_int_equal(rnd.left, 0);

    /* An invalid traceparent is kept as it came: no trace ID, none made. */
    or_trace_take(&t, &rnd, &rng.drbg, "abc", 3, "00-xyz", 6);
    assert_string_equal(t.trace_id, "");
    assert_false(t.own_traceparent);
    assert_int_equal(rnd.left, 0);

    /* An x-request-id too long to keep is replaced. */
    char long_id[OR_TRACE_REQUEST_ID_MAX + 1];
    memset(long_id, 'a', sizeof long_id);
    or_trace_take(&t, &rnd, &rng.drbg, long_id, sizeof long_id, tp, strlen(tp));
    assert_uuid4(t.request_id);
    assert_true(t.own_request_id);
    assert_int_equal(rnd.left, OR_TRACE_RANDOM - 16);
}

static void test_traceparent_check(void **state)
{
    (void)state;
    static const char *good[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-more",
        "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    };
    static const char *bad[] = {
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more", /* 00 is exact */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",      /* version ff */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",      /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",      /* zero parent */
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",      /* upper case */
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",     /* no dash after */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",       /* short */
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        if (!or_trace_parent_valid(good[i], strlen(good[i])))
            fail_msg("refused: %s", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (or_trace_parent_valid(bad[i], strlen(bad[i])))
            fail_msg("taken: %s", bad[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_ids),
        cmocka_unit_test(test_kept_ids_draw_nothing),
        cmocka_unit_test(test_traceparent_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
