/*
 * Labelled series per listener: the scrape.
 *
 * On the main thread, for one scrape: each listener's tables are read from
 * every worker (counts loaded with acquire, so only published slots are
 * seen, metrics.c) and merged by label set into a short-lived copy, sorted
 * (peers by ID, codes by number) so that the output is stable, then
 * written family by family, as the text exposition wants every sample of a
 * family together. Label values are escaped as the format says (\\, \",
 * \n). The same text is the source of the JSON form.
 */
#include "outrider/metrics.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ---- label values ---- */

void or_metrics_label(or_buf *out, const char *value)
{
    const char *run = value;
    for (const char *p = value;; p++) {
        if (*p != '\0' && *p != '\\' && *p != '"' && *p != '\n')
            continue;
        or_buf_append(out, run, (size_t)(p - run));
        if (*p == '\0')
            break;
        or_buf_append(out, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : "\\n", 2);
        run = p + 1;
    }
}

void or_metrics_label_pair(or_buf *out, const char *sep, const char *name, const char *value)
{
    or_buf_printf(out, "%s%s=\"", sep, name);
    or_metrics_label(out, value);
    or_buf_append(out, "\"", 1);
}

/* ---- one scrape's merged copy ---- */

typedef struct {
    uint64_t counts[OR_METRICS_HIST_MAX + 1];
    uint64_t sum;
} hist_sum;

typedef struct {
    int code;
    uint64_t requests;
    hist_sum duration, request_size, response_size;
} code_sum;

typedef struct {
    const char *policy;
    uint64_t count;
} denial_sum;

typedef struct {
    const char *id;
    code_sum *codes;
    size_t ncodes;
    denial_sum *denials;
    size_t ndenials;
    uint64_t tcp_opened, tcp_closed, tcp_received, tcp_sent;
    uint64_t grpc[OR_METRICS_GRPC_CODES + 1];
} peer_sum;

typedef struct {
    peer_sum *peers;
    size_t npeers;
    bool failed; /* out of memory: the listener's series are left out */
} listener_sum;

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* Room for element n of an array of n: 4 at first, doubled whenever n
 * reaches a power of two from 4 on. NULL when memory ran out (arr stays). */
static void *grow(void *arr, size_t n, size_t size)
{
    if (n == 0)
        return realloc(arr, 4 * size);
    return n >= 4 && (n & (n - 1)) == 0 ? realloc(arr, 2 * n * size) : arr;
}

static void hist_add(hist_sum *to, const or_histogram *h)
{
    for (unsigned i = 0; i <= OR_METRICS_HIST_MAX; i++)
        to->counts[i] += LOAD(h->counts[i]);
    to->sum += LOAD(h->sum);
}

static peer_sum *find_peer(listener_sum *ls, const char *id)
{
    for (size_t i = 0; i < ls->npeers; i++)
        if (strcmp(ls->peers[i].id, id) == 0)
            return &ls->peers[i];
    peer_sum *more = grow(ls->peers, ls->npeers, sizeof *more);
    if (!more)
        return NULL;
    ls->peers = more;
    peer_sum *p = &ls->peers[ls->npeers++];
    *p = (peer_sum){.id = id};
    return p;
}

static int add_code(peer_sum *p, const or_metrics_code *c)
{
    uint64_t requests = LOAD(c->requests);
    if (requests == 0)
        return 0;
    code_sum *s = NULL;
    for (size_t i = 0; i < p->ncodes && !s; i++)
        if (p->codes[i].code == c->code)
            s = &p->codes[i];
    if (!s) {
        code_sum *more = grow(p->codes, p->ncodes, sizeof *more);
        if (!more)
            return -1;
        p->codes = more;
        s = &p->codes[p->ncodes++];
        *s = (code_sum){.code = c->code};
    }
    s->requests += requests;
    hist_add(&s->duration, &c->duration);
    hist_add(&s->request_size, &c->request_size);
    hist_add(&s->response_size, &c->response_size);
    return 0;
}

static int add_denial(peer_sum *p, const or_metrics_denial *d)
{
    uint64_t count = LOAD(d->count);
    if (count == 0)
        return 0;
    for (size_t i = 0; i < p->ndenials; i++) {
        if (strcmp(p->denials[i].policy, d->policy) == 0) {
            p->denials[i].count += count;
            return 0;
        }
    }
    denial_sum *more = grow(p->denials, p->ndenials, sizeof *more);
    if (!more)
        return -1;
    p->denials = more;
    p->denials[p->ndenials++] = (denial_sum){.policy = d->policy, .count = count};
    return 0;
}

static int add_peer(listener_sum *ls, const or_metrics_peer *src)
{
    peer_sum *p = find_peer(ls, src->id);
    if (!p)
        return -1;
    unsigned ncodes = atomic_load_explicit(&src->ncodes, memory_order_acquire);
    int r = 0;
    for (unsigned i = 0; i < ncodes; i++)
        r |= add_code(p, &src->codes[i]);
    r |= add_code(p, &src->codes[OR_METRICS_MAX_CODES]);
    unsigned ndenials = atomic_load_explicit(&src->ndenials, memory_order_acquire);
    for (unsigned i = 0; i < ndenials; i++)
        r |= add_denial(p, &src->denials[i]);
    r |= add_denial(p, &src->denials[OR_METRICS_MAX_POLICIES]);
    p->tcp_opened += LOAD(src->tcp_opened);
    p->tcp_closed += LOAD(src->tcp_closed);
    p->tcp_received += LOAD(src->tcp_received);
    p->tcp_sent += LOAD(src->tcp_sent);
    for (unsigned i = 0; i <= OR_METRICS_GRPC_CODES; i++)
        p->grpc[i] += LOAD(src->grpc[i]);
    return r;
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const peer_sum *)a)->id, ((const peer_sum *)b)->id);
}

static int by_code(const void *a, const void *b)
{
    /* "other" (-1) last */
    unsigned x = (unsigned)((const code_sum *)a)->code, y = (unsigned)((const code_sum *)b)->code;
    return x < y ? -1 : x > y;
}

static void merge(listener_sum *ls, const or_metrics_worker_view *w, unsigned nworkers, size_t li)
{
    int r = 0;
    for (unsigned k = 0; k < nworkers && r == 0; k++) {
        const or_listener_metrics *m = w[k].listeners[li];
        if (!m)
            continue;
        unsigned n = atomic_load_explicit(&m->npeers, memory_order_acquire);
        for (unsigned i = 0; i < n; i++)
            r |= add_peer(ls, m->peers[i]);
        r |= add_peer(ls, m->overflow);
    }
    ls->failed = r != 0;
    if (ls->npeers > 1)
        qsort(ls->peers, ls->npeers, sizeof *ls->peers, by_id);
    for (size_t i = 0; i < ls->npeers; i++)
        if (ls->peers[i].ncodes > 1)
            qsort(ls->peers[i].codes, ls->peers[i].ncodes, sizeof(code_sum), by_code);
}

static void free_sum(listener_sum *ls)
{
    for (size_t i = 0; i < ls->npeers; i++) {
        free(ls->peers[i].codes);
        free(ls->peers[i].denials);
    }
    free(ls->peers);
}

/* ---- writing ---- */

static void family(or_buf *out, const char *name, const char *type, const char *help)
{
    or_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(or_buf *out, const char *name, const or_buf *labels, uint64_t v)
{
    or_buf_printf(out, "%s{%.*s} %llu\n", name, (int)labels->len, labels->data,
                  (unsigned long long)v);
}

static void histogram(or_buf *out, const char *name, const or_buf *labels, const hist_sum *h,
                      const or_hist_spec *spec)
{
    uint64_t cum = 0;
    for (unsigned i = 0; i <= spec->n; i++) {
        cum += h->counts[i];
        or_buf_printf(out, "%s_bucket{%.*s,le=\"", name, (int)labels->len, labels->data);
        if (i == spec->n)
            or_buf_printf(out, "+Inf");
        else if (spec->scale != 1)
            or_buf_printf(out, "%g", (double)spec->bounds[i] / spec->scale);
        else
            or_buf_printf(out, "%llu", (unsigned long long)spec->bounds[i]);
        or_buf_printf(out, "\"} %llu\n", (unsigned long long)cum);
    }
    if (spec->scale != 1)
        or_buf_printf(out, "%s_sum{%.*s} %.6f\n", name, (int)labels->len, labels->data,
                      (double)h->sum / spec->scale);
    else
        or_buf_printf(out, "%s_sum{%.*s} %llu\n", name, (int)labels->len, labels->data,
                      (unsigned long long)h->sum);
    or_buf_printf(out, "%s_count{%.*s} %llu\n", name, (int)labels->len, labels->data,
                  (unsigned long long)cum);
}

/* listener="..",direction="..",peer=".." into `b` (emptied first). */
static void peer_labels(or_buf *b, const or_listener_config *l, const char *peer)
{
    b->len = 0;
    or_metrics_label_pair(b, "", "listener", l->name);
    or_metrics_label_pair(b, ",", "direction", l->mode == OR_MODE_INBOUND ? "inbound" : "outbound");
    or_metrics_label_pair(b, ",", "peer", peer);
}

static void code_labels(or_buf *b, const or_listener_config *l, const char *peer, int code)
{
    static const char *const classes[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    peer_labels(b, l, peer);
    if (code == OR_METRICS_CODE_OTHER) {
        or_buf_printf(b, ",code=\"other\",class=\"other\"");
        return;
    }
    int cls = code / 100;
    or_buf_printf(b, ",code=\"%d\",class=\"%s\"", code, classes[cls >= 1 && cls <= 5 ? cls : 0]);
}

typedef struct {
    or_buf *out;
    const or_config *cfg;
    const or_metrics_worker_view *w;
    unsigned nworkers;
    listener_sum *sums;
    or_buf labels;
} render_ctx;

enum { REQ_COUNT, REQ_DURATION, REQ_SIZE, RES_SIZE };

static void request_family(render_ctx *r, int which, const char *name, const char *type,
                           const char *help)
{
    family(r->out, name, type, help);
    for (size_t li = 0; li < r->cfg->nlisteners; li++) {
        const or_listener_config *l = &r->cfg->listeners[li];
        for (size_t i = 0; i < r->sums[li].npeers; i++) {
            const peer_sum *p = &r->sums[li].peers[i];
            for (size_t j = 0; j < p->ncodes; j++) {
                const code_sum *c = &p->codes[j];
                code_labels(&r->labels, l, p->id, c->code);
                if (which == REQ_COUNT)
                    sample(r->out, name, &r->labels, c->requests);
                else if (which == REQ_DURATION)
                    histogram(r->out, name, &r->labels, &c->duration, &or_hist_duration);
                else
                    histogram(r->out, name, &r->labels,
                              which == REQ_SIZE ? &c->request_size : &c->response_size,
                              &or_hist_size);
            }
        }
    }
}

static void tcp_family(render_ctx *r, size_t offset, const char *name, const char *help)
{
    family(r->out, name, "counter", help);
    for (size_t li = 0; li < r->cfg->nlisteners; li++) {
        for (size_t i = 0; i < r->sums[li].npeers; i++) {
            const peer_sum *p = &r->sums[li].peers[i];
            if (p->tcp_opened == 0)
                continue;
            peer_labels(&r->labels, &r->cfg->listeners[li], p->id);
            sample(r->out, name, &r->labels, *(const uint64_t *)((const char *)p + offset));
        }
    }
}

static void denial_family(render_ctx *r)
{
    const char *name = "outrider_rbac_denied_total";
    family(r->out, name, "counter",
           "Requests and connections RBAC denied, by listener, deciding policy "
           "(\"(default)\": no policy matched) and caller.");
    for (size_t li = 0; li < r->cfg->nlisteners; li++) {
        for (size_t i = 0; i < r->sums[li].npeers; i++) {
            const peer_sum *p = &r->sums[li].peers[i];
            for (size_t j = 0; j < p->ndenials; j++) {
                r->labels.len = 0;
                or_metrics_label_pair(&r->labels, "", "listener", r->cfg->listeners[li].name);
                or_metrics_label_pair(&r->labels, ",", "policy", p->denials[j].policy);
                or_metrics_label_pair(&r->labels, ",", "peer", p->id);
                sample(r->out, name, &r->labels, p->denials[j].count);
            }
        }
    }
}

static void grpc_family(render_ctx *r)
{
    const char *name = "outrider_grpc_responses_total";
    family(r->out, name, "counter",
           "gRPC exchanges by the grpc-status the client got (\"other\": a value outside "
           "0..16), by listener, direction and peer.");
    for (size_t li = 0; li < r->cfg->nlisteners; li++) {
        for (size_t i = 0; i < r->sums[li].npeers; i++) {
            const peer_sum *p = &r->sums[li].peers[i];
            for (unsigned code = 0; code <= OR_METRICS_GRPC_CODES; code++) {
                if (p->grpc[code] == 0)
                    continue;
                peer_labels(&r->labels, &r->cfg->listeners[li], p->id);
                if (code == OR_METRICS_GRPC_CODES)
                    or_buf_printf(&r->labels, ",grpc_status=\"other\"");
                else
                    or_buf_printf(&r->labels, ",grpc_status=\"%u\"", code);
                sample(r->out, name, &r->labels, p->grpc[code]);
            }
        }
    }
}

static void render_peers(render_ctx *r)
{
    request_family(r, REQ_COUNT, "outrider_requests_total", "counter",
                   "HTTP requests, by listener, direction, peer (inbound: the caller; "
                   "outbound: the called peer), status code and class.");
    request_family(r, REQ_DURATION, "outrider_request_duration_seconds", "histogram",
                   "Time from a request's first byte to the end of its response.");
    request_family(r, REQ_SIZE, "outrider_request_size_bytes", "histogram",
                   "Request body bytes.");
    request_family(r, RES_SIZE, "outrider_response_size_bytes", "histogram",
                   "Response body bytes.");
    tcp_family(r, offsetof(peer_sum, tcp_opened), "outrider_tcp_connections_opened_total",
               "TCP connections piped, by listener, direction and peer.");
    tcp_family(r, offsetof(peer_sum, tcp_closed), "outrider_tcp_connections_closed_total",
               "TCP connections piped that have closed.");
    tcp_family(r, offsetof(peer_sum, tcp_received), "outrider_tcp_received_bytes_total",
               "Bytes of closed TCP connections received from the downstream.");
    tcp_family(r, offsetof(peer_sum, tcp_sent), "outrider_tcp_sent_bytes_total",
               "Bytes of closed TCP connections sent to the downstream.");
    denial_family(r);
    grpc_family(r);
}

/* A per-listener value summed over workers, at `offset` in or_listener_metrics. */
static uint64_t listener_total(const render_ctx *r, size_t li, size_t offset)
{
    uint64_t total = 0;
    for (unsigned k = 0; k < r->nworkers; k++)
        if (r->w[k].listeners[li])
            total += atomic_load_explicit(
                (const _Atomic uint64_t *)((const char *)r->w[k].listeners[li] + offset),
                memory_order_relaxed);
    return total;
}

#define AT(field) offsetof(or_listener_metrics, field)

/* A family of per-listener series: the value at `offset` (less the one at
 * `less`, when not 0), or with `label` one series per label value, the k-th
 * the k-th counter from `offset`. */
typedef struct {
    const char *name, *type, *help;
    size_t offset;
    const char *label;
    const char *const *values;
    unsigned n;
    bool outbound_only;
    size_t less;
} listener_series;

static void listener_family(render_ctx *r, const listener_series *s)
{
    family(r->out, s->name, s->type, s->help);
    for (size_t li = 0; li < r->cfg->nlisteners; li++) {
        if (s->outbound_only && r->cfg->listeners[li].mode != OR_MODE_OUTBOUND)
            continue;
        for (unsigned k = 0; k < (s->label ? s->n : 1); k++) {
            r->labels.len = 0;
            or_metrics_label_pair(&r->labels, "", "listener", r->cfg->listeners[li].name);
            if (s->label)
                or_metrics_label_pair(&r->labels, ",", s->label, s->values[k]);
            /* `less` read first: what it counted the value has counted too */
            uint64_t less = s->less ? listener_total(r, li, s->less) : 0;
            sample(r->out, s->name, &r->labels,
                   listener_total(r, li, s->offset + k * sizeof(_Atomic uint64_t)) - less);
        }
    }
}

static void render_listener_series(render_ctx *r)
{
    static const char *const fail_reasons[OR_UPFAIL_REASONS] = {"refused", "timeout", "resolve",
                                                                "other"};
    static const char *const types[] = {"full", "resumed"};
    static const char *const kinds[OR_OVERFLOW_KINDS] = {"peer", "code", "policy"};
    const char *reasons[OR_STATS_HANDSHAKE_REASONS - 1];
    for (unsigned k = 0; k < OR_STATS_HANDSHAKE_REASONS - 1; k++)
        reasons[k] = or_stats_handshake_reason_name(k);
    const listener_series series[] = {
        {"outrider_upstream_connections_open", "gauge",
         "Established upstream connections open, in use or idle.", .offset = AT(up_created),
         .less = AT(up_closed)},
        {"outrider_upstream_connections_idle", "gauge", "Idle upstream connections in the pools: HTTP/1.1 ones waiting for a request, HTTP/2 ones without streams.",
         .offset = AT(up_idle)},
        {"outrider_upstream_connections_created_total", "counter",
         "Upstream connections established (connected and, outbound, mTLS verified).",
         .offset = AT(up_created)},
        {"outrider_upstream_connections_closed_total", "counter",
         "Established upstream connections that closed.", .offset = AT(up_closed)},
        {"outrider_upstream_requests_waiting", "gauge",
         "Requests and tcp connections waiting for a new upstream connection.",
         .offset = AT(up_waiting)},
        {"outrider_upstream_retries_total", "counter",
         "Requests sent again because a pooled upstream connection closed before answering.",
         .offset = AT(up_retries)},
        {"outrider_upstream_connect_failures_total", "counter",
         "New upstream connections that failed before the handshake, by reason.",
         .offset = AT(up_connect_failures), .label = "reason", .values = fail_reasons,
         .n = OR_UPFAIL_REASONS},
        {"outrider_upstream_handshake_failures_total", "counter",
         "mTLS handshakes with the upstream peer that failed, by reason (outbound listeners).",
         .offset = AT(up_handshake_failures), .label = "reason", .values = reasons,
         .n = OR_STATS_HANDSHAKE_REASONS - 1, .outbound_only = true},
        {"outrider_tls_handshakes_total", "counter",
         "mTLS handshakes completed, by listener and type (full or resumed).",
         .offset = AT(handshakes), .label = "type", .values = types, .n = 2},
    };
    for (size_t s = 0; s < sizeof series / sizeof series[0]; s++)
        listener_family(r, &series[s]);
    family(r->out, "outrider_tls_handshake_duration_seconds", "histogram",
           "Time a completed mTLS handshake took.");
    for (size_t li = 0; li < r->cfg->nlisteners; li++) {
        hist_sum h = {0};
        for (unsigned k = 0; k < r->nworkers; k++)
            if (r->w[k].listeners[li])
                hist_add(&h, &r->w[k].listeners[li]->handshake_duration);
        r->labels.len = 0;
        or_metrics_label_pair(&r->labels, "", "listener", r->cfg->listeners[li].name);
        histogram(r->out, "outrider_tls_handshake_duration_seconds", &r->labels, &h,
                  &or_hist_duration);
    }
    listener_family(r, &(listener_series){
        "outrider_metric_label_overflow_total", "counter",
        "Series counted under an overflow label value because a table was full.",
        .offset = AT(label_overflow), .label = "label", .values = kinds, .n = OR_OVERFLOW_KINDS});
}

void or_metrics_render(or_buf *out, const or_config *cfg, const or_metrics_worker_view *w,
                       unsigned nworkers)
{
    render_ctx r = {.out = out, .cfg = cfg, .w = w, .nworkers = nworkers};
    r.sums = calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof *r.sums);
    if (!r.sums)
        return;
    for (size_t li = 0; li < cfg->nlisteners; li++) {
        merge(&r.sums[li], w, nworkers, li);
        if (r.sums[li].failed) { /* out of memory: leave the listener out rather than lie */
            free_sum(&r.sums[li]);
            r.sums[li] = (listener_sum){0};
        }
    }
    render_peers(&r);
    render_listener_series(&r);
    for (size_t li = 0; li < cfg->nlisteners; li++)
        free_sum(&r.sums[li]);
    free(r.sums);
    or_buf_free(&r.labels);
}
