/*
 * Worker counters and their Prometheus text.
 *
 * Each worker increments its own counters; the admin server sums them when
 * /stats is read. Handshake failures are kept per reason, using the fixed
 * list of reasons the TLS layer reports (docs/cli-and-logs.md), so the
 * metric's label set is known in advance and bounded; accept failures
 * likewise, by or_accept_reason.
 */
#include "outrider/stats.h"
#include "outrider/http2.h"

#include <stddef.h>
#include <string.h>

static const char *const handshake_reasons[OR_STATS_HANDSHAKE_REASONS] = {
    "no client certificate", "unknown CA", "certificate expired", "certificate not yet valid",
    "bad certificate", "no URI SAN", "more than one URI SAN", "URI SAN is not a SPIFFE ID",
    "wrong trust domain", "leaf certificate is a CA",
    "leaf has keyCertSign or cRLSign key usage", "unexpected SPIFFE ID", "peer sent an alert",
    "handshake timeout", "peer closed during handshake", "protocol error", "other", "",
};

unsigned or_stats_handshake_reason(const char *reason)
{
    unsigned i = 0;
    while (i < OR_STATS_HANDSHAKE_REASONS - 2 && strcmp(handshake_reasons[i], reason) != 0)
        i++;
    return i; /* unknown reasons land on "other" */
}

const char *or_stats_handshake_reason_name(unsigned i)
{
    return i < OR_STATS_HANDSHAKE_REASONS ? handshake_reasons[i] : "";
}

void or_stats_handshake_failure(or_stats *s, const char *reason)
{
    or_stats_add(s->handshake_failures[or_stats_handshake_reason(reason)], 1);
}

void or_stats_response(or_stats *s, int status)
{
    int cls = status / 100;
    or_stats_add(s->responses[cls >= 1 && cls <= 5 ? cls : 0], 1);
}

void or_stats_decision(or_stats *s, bool allowed, bool dry_run_matched, bool audit_matched)
{
    or_stats_add(s->rbac[allowed ? 0 : 1], 1);
    if (dry_run_matched)
        or_stats_add(s->rbac[2], 1);
    if (audit_matched)
        or_stats_add(s->rbac[3], 1);
}

/* The sum over workers of the counter at `offset` in or_stats. */
static uint64_t sum(or_stats *const *w, unsigned n, size_t offset)
{
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        _Atomic uint64_t *c = (_Atomic uint64_t *)((char *)w[i] + offset);
        total += atomic_load_explicit(c, memory_order_relaxed);
    }
    return total;
}

#define SUM(field) sum(w, n, offsetof(or_stats, field))

void or_stats_metric(or_buf *out, const char *type, const char *name, const char *help,
                     uint64_t value)
{
    or_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                  (unsigned long long)value);
}

static void counter(or_buf *out, const char *name, const char *help, uint64_t value)
{
    or_stats_metric(out, "counter", name, help, value);
}

/* A counter by `label`: values[k] counts at the k-th counter from `offset`. */
static void by_label(or_buf *out, or_stats *const *w, unsigned n, const char *name,
                     const char *help, const char *label, const char *const *values,
                     unsigned nvalues, size_t offset)
{
    or_buf_printf(out, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (unsigned k = 0; k < nvalues; k++)
        or_buf_printf(out, "%s{%s=\"%s\"} %llu\n", name, label, values[k],
                      (unsigned long long)sum(w, n, offset + k * sizeof(_Atomic uint64_t)));
}

void or_stats_render(or_buf *out, or_stats *const *w, unsigned n)
{
    counter(out, "outrider_connections_total", "Downstream connections accepted.",
            SUM(connections));
    counter(out, "outrider_connections_refused_total",
            "Connections closed at once because limits.max_connections was reached.",
            SUM(refused));
    static const char *const accept_reasons[OR_ACCEPT_REASONS] = {"emfile", "enfile", "other"};
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    static const char *const decisions[] = {"allow", "deny", "dry_run", "audit"};
    by_label(out, w, n, "outrider_accept_errors_total", "Queued connections that could not be "
             "accepted, by reason (emfile: the process's open-file limit; enfile: the system's).",
             "reason", accept_reasons, OR_ACCEPT_REASONS, offsetof(or_stats, accept_errors));
    by_label(out, w, n, "outrider_tls_handshake_failures_total", "Failed mTLS handshakes, by "
             "reason.", "reason", handshake_reasons, OR_STATS_HANDSHAKE_REASONS - 1,
             offsetof(or_stats, handshake_failures));
    by_label(out, w, n, "outrider_http_responses_total", "HTTP responses sent downstream, by "
             "status class.", "class", classes, 6, offsetof(or_stats, responses));
    by_label(out, w, n, "outrider_rbac_decisions_total", "RBAC decisions (dry_run: a dry-run "
             "policy matched; audit: an audit policy matched).", "decision", decisions, 4,
             offsetof(or_stats, rbac));
    or_buf_printf(out, "# HELP outrider_bytes_total Payload bytes from (in) and to (out) "
                        "downstream peers.\n# TYPE outrider_bytes_total counter\n"
                        "outrider_bytes_total{direction=\"in\"} %llu\n"
                        "outrider_bytes_total{direction=\"out\"} %llu\n",
                   (unsigned long long)SUM(bytes_in), (unsigned long long)SUM(bytes_out));
    counter(out, "outrider_tls_idle_releases_total",
            "Times an idle TLS connection gave its record buffers back to its worker.",
            SUM(tls_idle_releases));
    counter(out, "outrider_tls_idle_wakes_total",
            "Times a TLS connection took record buffers again for its next record.",
            SUM(tls_idle_wakes));
    or_h2_stats_render(out, w, n);
    or_buf_printf(out, "# HELP outrider_worker_loop_lag_seconds How late the worker's "
                        "once-a-second timer last fired.\n"
                        "# TYPE outrider_worker_loop_lag_seconds gauge\n");
    for (unsigned i = 0; i < n; i++)
        or_buf_printf(out, "outrider_worker_loop_lag_seconds{worker=\"%u\"} %.6f\n", i,
                       (double)atomic_load_explicit(&w[i]->loop_lag_us, memory_order_relaxed) / 1e6);
}
