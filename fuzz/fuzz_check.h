/*
 * fuzz_check: what the fuzz targets share.
 *
 * FUZZ_REQUIRE stops the run with the failed condition and its place when an
 * invariant does not hold; libFuzzer saves the input as a crash. assert() is
 * not used, so that an invariant is checked whatever NDEBUG says.
 */
#ifndef OUTRIDER_FUZZ_CHECK_H
#define OUTRIDER_FUZZ_CHECK_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static inline void fuzz_require(bool ok, const char *what, const char *file, int line)
{
    if (ok)
        return;
    fprintf(stderr, "%s:%d: invariant failed: %s\n", file, line, what);
    abort();
}

#define FUZZ_REQUIRE(cond) fuzz_require((cond), #cond, __FILE__, __LINE__)

#endif
