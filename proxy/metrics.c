/*
 * Labelled series per listener: the worker's side.
 *
 * A worker finds the slot of a peer once per connection (conn.c keeps it)
 * and counts each exchange, denial and handshake into it with relaxed
 * atomic adds. Finding a slot is a linear search of at most
 * OR_METRICS_MAX_PEERS IDs, and so are status codes and policies within a
 * peer; a new slot is filled in and then published by a release store of
 * the count, so the scraping thread, which loads the count with acquire,
 * never sees half a slot. Slots are never removed: the tables are bounded
 * instead, and what does not fit is counted on an overflow slot
 * (metrics.h). The rendering is in metrics_render.c.
 */
#include "outrider/metrics.h"

#include <stdlib.h>
#include <string.h>

static const uint64_t duration_bounds[] = {500,    1000,   2500,    5000,    10000,
                                           25000,  50000,  100000,  250000,  500000,
                                           1000000, 2500000, 5000000, 10000000};
static const uint64_t size_bounds[] = {64,     256,     1024,    4096,    16384,
                                       65536,  262144,  1048576, 4194304, 16777216};

const or_hist_spec or_hist_duration = {duration_bounds, sizeof duration_bounds / sizeof duration_bounds[0], 1e6};
const or_hist_spec or_hist_size = {size_bounds, sizeof size_bounds / sizeof size_bounds[0], 1};

_Static_assert(sizeof duration_bounds / sizeof duration_bounds[0] <= OR_METRICS_HIST_MAX, "buckets");
_Static_assert(sizeof size_bounds / sizeof size_bounds[0] <= OR_METRICS_HIST_MAX, "buckets");

unsigned or_hist_bucket(const or_hist_spec *spec, uint64_t value)
{
    unsigned i = 0;
    while (i < spec->n && value > spec->bounds[i])
        i++;
    return i;
}

static void hist_observe(or_histogram *h, const or_hist_spec *spec, uint64_t value)
{
    or_metrics_inc(h->counts[or_hist_bucket(spec, value)]);
    atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

/* ---- tables ---- */

static or_metrics_peer *peer_new(const char *id)
{
    or_metrics_peer *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->id = strdup(id);
    p->denials[OR_METRICS_MAX_POLICIES].policy = strdup("other");
    if (!p->id || !p->denials[OR_METRICS_MAX_POLICIES].policy) {
        free(p->id);
        free(p->denials[OR_METRICS_MAX_POLICIES].policy);
        free(p);
        return NULL;
    }
    p->codes[OR_METRICS_MAX_CODES].code = OR_METRICS_CODE_OTHER;
    return p;
}

static void peer_free(or_metrics_peer *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i <= OR_METRICS_MAX_POLICIES; i++)
        free(p->denials[i].policy);
    free(p->id);
    free(p);
}

or_listener_metrics *or_listener_metrics_new(void)
{
    or_listener_metrics *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->overflow = peer_new(OR_METRICS_PEER_OVERFLOW);
    if (!m->overflow) {
        free(m);
        return NULL;
    }
    return m;
}

void or_listener_metrics_free(or_listener_metrics *m)
{
    if (!m)
        return;
    unsigned n = atomic_load(&m->npeers);
    for (unsigned i = 0; i < n; i++)
        peer_free(m->peers[i]);
    peer_free(m->overflow);
    free(m);
}

or_metrics_peer *or_metrics_peer_get(or_listener_metrics *m, const char *id)
{
    if (!id || !id[0])
        id = OR_METRICS_PEER_UNKNOWN;
    unsigned n = atomic_load_explicit(&m->npeers, memory_order_relaxed); /* our own writes */
    for (unsigned i = 0; i < n; i++)
        if (strcmp(m->peers[i]->id, id) == 0)
            return m->peers[i];
    or_metrics_peer *p = n < OR_METRICS_MAX_PEERS ? peer_new(id) : NULL;
    if (!p) {
        or_metrics_inc(m->label_overflow[OR_OVERFLOW_PEER]);
        return m->overflow;
    }
    m->peers[n] = p;
    atomic_store_explicit(&m->npeers, n + 1, memory_order_release);
    return p;
}

static or_metrics_code *code_slot(or_listener_metrics *m, or_metrics_peer *p, int status)
{
    unsigned n = atomic_load_explicit(&p->ncodes, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++)
        if (p->codes[i].code == status)
            return &p->codes[i];
    if (n == OR_METRICS_MAX_CODES) {
        or_metrics_inc(m->label_overflow[OR_OVERFLOW_CODE]);
        return &p->codes[OR_METRICS_MAX_CODES];
    }
    p->codes[n].code = status;
    atomic_store_explicit(&p->ncodes, n + 1, memory_order_release);
    return &p->codes[n];
}

void or_metrics_request(or_listener_metrics *m, or_metrics_peer *p, int status,
                        uint64_t duration_us, uint64_t request_bytes, uint64_t response_bytes)
{
    or_metrics_code *c = code_slot(m, p, status >= 100 && status <= 999 ? status : 0);
    or_metrics_inc(c->requests);
    hist_observe(&c->duration, &or_hist_duration, duration_us);
    hist_observe(&c->request_size, &or_hist_size, request_bytes);
    hist_observe(&c->response_size, &or_hist_size, response_bytes);
}

void or_metrics_grpc(or_metrics_peer *p, const char *status)
{
    unsigned code = OR_METRICS_GRPC_CODES; /* "other" unless 0..16 in decimal */
    if (status[0] >= '0' && status[0] <= '9' && (status[1] == '\0' ||
        (status[0] == '1' && status[1] >= '0' && status[1] <= '6' && status[2] == '\0')))
        code = status[1] ? 10u + (unsigned)(status[1] - '0') : (unsigned)(status[0] - '0');
    or_metrics_inc(p->grpc[code]);
}

void or_metrics_denied(or_listener_metrics *m, or_metrics_peer *p, const char *policy)
{
    if (!policy)
        policy = "(default)";
    unsigned n = atomic_load_explicit(&p->ndenials, memory_order_relaxed);
    for (unsigned i = 0; i < n; i++) {
        if (strcmp(p->denials[i].policy, policy) == 0) {
            or_metrics_inc(p->denials[i].count);
            return;
        }
    }
    char *copy = n < OR_METRICS_MAX_POLICIES ? strdup(policy) : NULL;
    if (!copy) {
        or_metrics_inc(m->label_overflow[OR_OVERFLOW_POLICY]);
        or_metrics_inc(p->denials[OR_METRICS_MAX_POLICIES].count);
        return;
    }
    p->denials[n].policy = copy;
    or_metrics_inc(p->denials[n].count);
    atomic_store_explicit(&p->ndenials, n + 1, memory_order_release);
}

void or_metrics_handshake(or_listener_metrics *m, bool resumed, uint64_t us)
{
    or_metrics_inc(m->handshakes[resumed]);
    hist_observe(&m->handshake_duration, &or_hist_duration, us);
}
