/*
 * The HTTP/2 abuse counters in /stats: one series per kind, summed over the
 * workers (each worker is the only writer of its own or_stats).
 */
#include "h2_session.h"

_Static_assert(OR_H2_ABUSE_KINDS <= OR_STATS_H2_ABUSE, "or_stats has a counter per kind");

void or_h2_stats_render(or_buf *out, or_stats *const *w, unsigned n)
{
    or_buf_printf(out, "# HELP outrider_http2_abuse_total HTTP/2 connections ended for "
                       "breaking a limit, by kind.\n"
                       "# TYPE outrider_http2_abuse_total counter\n");
    for (int k = OR_H2_ABUSE_NONE + 1; k < OR_H2_ABUSE_KINDS; k++) {
        uint64_t total = 0;
        for (unsigned i = 0; i < n; i++)
            total += atomic_load_explicit(&w[i]->h2_abuse[k], memory_order_relaxed);
        or_buf_printf(out, "outrider_http2_abuse_total{kind=\"%s\"} %llu\n",
                      or_h2_abuse_name((or_h2_abuse)k), (unsigned long long)total);
    }
}
