/*
 * Labelled metrics (metrics.h): histogram buckets and their inclusive `le`
 * bounds, label escaping in the text and its JSON form, the caps on peers,
 * codes and policies with their overflow counting, and the sum over
 * workers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "outrider/metrics.h"

/* ---- a config of one listener, and a scrape of it ---- */

typedef struct {
    or_listener_config lc[2];
    or_config cfg;
} fixture;

static void fixture_init(fixture *f, or_listener_mode mode)
{
    memset(f, 0, sizeof *f);
    f->lc[0].name = (char *)"in";
    f->lc[0].mode = mode;
    f->cfg.listeners = f->lc;
    f->cfg.nlisteners = 1;
}

/* The /stats lines of `n` workers' tables, NUL-terminated. */
static char *scrape(const fixture *f, or_listener_metrics **workers, unsigned n, or_buf *out)
{
    or_metrics_worker_view views[4];
    for (unsigned i = 0; i < n; i++)
        views[i].listeners = &workers[i];
    out->len = 0;
    or_metrics_render(out, &f->cfg, views, n);
    or_buf_append(out, "", 1);
    return out->data;
}

static void assert_line(const char *text, const char *line)
{
    char want[1024];
    snprintf(want, sizeof want, "\n%s\n", line);
    if (!strstr(text, want)) {
        print_error("missing line: %s\n", line);
        fail();
    }
}

/* ---- buckets ---- */

static void test_bucket_edges_are_inclusive(void **state)
{
    (void)state;
    const or_hist_spec *d = &or_hist_duration;
    assert_int_equal(d->n, 14);
    assert_int_equal(or_hist_bucket(d, 0), 0);
    assert_int_equal(or_hist_bucket(d, 500), 0);      /* 0.0005 s is le="0.0005" */
    assert_int_equal(or_hist_bucket(d, 501), 1);
    assert_int_equal(or_hist_bucket(d, 1000), 1);
    assert_int_equal(or_hist_bucket(d, 2500), 2);
    assert_int_equal(or_hist_bucket(d, 2501), 3);
    assert_int_equal(or_hist_bucket(d, 10000000), 13); /* 10 s */
    assert_int_equal(or_hist_bucket(d, 10000001), 14); /* +Inf */
    assert_int_equal(or_hist_bucket(d, UINT64_MAX), 14);
    const or_hist_spec *s = &or_hist_size;
    assert_int_equal(or_hist_bucket(s, 64), 0);
    assert_int_equal(or_hist_bucket(s, 65), 1);
    assert_int_equal(or_hist_bucket(s, 16777216), s->n - 1);
    assert_int_equal(or_hist_bucket(s, 16777217), s->n);
}

static void test_histogram_text(void **state)
{
    (void)state;
    fixture f;
    fixture_init(&f, OR_MODE_INBOUND);
    or_listener_metrics *m = or_listener_metrics_new();
    or_metrics_peer *p = or_metrics_peer_get(m, "spiffe://td/ns/a/sa/b");
    or_metrics_request(m, p, 200, 500, 64, 65);     /* on both edges */
    or_metrics_request(m, p, 200, 501, 0, 0);
    or_metrics_request(m, p, 200, 20000000, 0, 1 << 30);
    or_buf out = {0};
    const char *t = scrape(&f, &m, 1, &out);
    const char *l = "listener=\"in\",direction=\"inbound\",peer=\"spiffe://td/ns/a/sa/b\","
                    "code=\"200\",class=\"2xx\"";
    char line[512];
    snprintf(line, sizeof line, "outrider_requests_total{%s} 3", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_request_duration_seconds_bucket{%s,le=\"0.0005\"} 1", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_request_duration_seconds_bucket{%s,le=\"0.001\"} 2", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_request_duration_seconds_bucket{%s,le=\"10\"} 2", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_request_duration_seconds_bucket{%s,le=\"+Inf\"} 3", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_request_duration_seconds_sum{%s} 20.001001", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_request_duration_seconds_count{%s} 3", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_request_size_bytes_bucket{%s,le=\"64\"} 3", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_response_size_bytes_bucket{%s,le=\"64\"} 1", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_response_size_bytes_bucket{%s,le=\"256\"} 2", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_response_size_bytes_bucket{%s,le=\"16777216\"} 2", l);
    assert_line(t, line);
    snprintf(line, sizeof line, "outrider_response_size_bytes_sum{%s} %llu", l,
             (unsigned long long)(65 + (1u << 30)));
    assert_line(t, line);
    assert_line(t, "# TYPE outrider_request_duration_seconds histogram");
    or_buf_free(&out);
    or_listener_metrics_free(m);
}

/* ---- escaping ---- */

static void test_label_escaping(void **state)
{
    (void)state;
    or_buf b = {0};
    or_metrics_label(&b, "a\"b\\c\nd");
    or_buf_append(&b, "", 1);
    assert_string_equal(b.data, "a\\\"b\\\\c\\nd");
    or_buf_free(&b);

    fixture f;
    fixture_init(&f, OR_MODE_INBOUND);
    f.lc[0].name = (char *)"in\"x";
    or_listener_metrics *m = or_listener_metrics_new();
    or_metrics_peer *p = or_metrics_peer_get(m, "spiffe://td/\"q\"\\b\n");
    or_metrics_denied(m, p, "po\"li\\cy\n");
    or_buf out = {0};
    const char *t = scrape(&f, &m, 1, &out);
    assert_line(t, "outrider_rbac_denied_total{listener=\"in\\\"x\",policy=\"po\\\"li\\\\cy\\n\","
                   "peer=\"spiffe://td/\\\"q\\\"\\\\b\\n\"} 1");
    /* The JSON form gives the values back as they were. */
    or_buf json = {0};
    assert_int_equal(or_metrics_text_to_json(out.data, out.len - 1, &json), 0);
    or_buf_append(&json, "", 1);
    assert_non_null(strstr(json.data, "{\"name\":\"outrider_rbac_denied_total\",\"labels\":"
                                      "{\"listener\":\"in\\\"x\",\"policy\":\"po\\\"li\\\\cy\\u000a\","
                                      "\"peer\":\"spiffe://td/\\\"q\\\"\\\\b\\u000a\"},\"value\":1}"));
    or_buf_free(&json);
    or_buf_free(&out);
    or_listener_metrics_free(m);
}

static void test_json_document(void **state)
{
    (void)state;
    const char *text = "# HELP a_total A thing.\n# TYPE a_total counter\na_total 3\n"
                       "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
                       "h_seconds_bucket{le=\"0.5\"} 1\nh_seconds_bucket{le=\"+Inf\"} 2\n"
                       "h_seconds_sum 0.750000\nh_seconds_count 2\n"
                       "# HELP g Empty.\n# TYPE g gauge\n";
    or_buf json = {0};
    assert_int_equal(or_metrics_text_to_json(text, strlen(text), &json), 0);
    or_buf_append(&json, "", 1);
    assert_string_equal(
        json.data,
        "{\"metrics\":[{\"name\":\"a_total\",\"help\":\"A thing.\",\"type\":\"counter\","
        "\"samples\":[{\"name\":\"a_total\",\"labels\":{},\"value\":3}]},"
        "{\"name\":\"h_seconds\",\"help\":\"H.\",\"type\":\"histogram\",\"samples\":["
        "{\"name\":\"h_seconds_bucket\",\"labels\":{\"le\":\"0.5\"},\"value\":1},"
        "{\"name\":\"h_seconds_bucket\",\"labels\":{\"le\":\"+Inf\"},\"value\":2},"
        "{\"name\":\"h_seconds_sum\",\"labels\":{},\"value\":0.750000},"
        "{\"name\":\"h_seconds_count\",\"labels\":{},\"value\":2}]},"
        "{\"name\":\"g\",\"help\":\"Empty.\",\"type\":\"gauge\",\"samples\":[]}]}\n");
    or_buf_free(&json);
    or_buf bad = {0};
    assert_int_equal(or_metrics_text_to_json("x{a=\"b} 1\n", 10, &bad), -1);
    or_buf_free(&bad);
}

/* ---- caps ---- */

static void test_peer_cap_and_overflow(void **state)
{
    (void)state;
    or_listener_metrics *m = or_listener_metrics_new();
    char id[64];
    for (int i = 0; i < OR_METRICS_MAX_PEERS; i++) {
        snprintf(id, sizeof id, "spiffe://td/ns/n/sa/p%d", i);
        or_metrics_peer *p = or_metrics_peer_get(m, id);
        assert_ptr_not_equal(p, m->overflow);
        assert_ptr_equal(or_metrics_peer_get(m, id), p); /* found again, not added */
        or_metrics_request(m, p, 200, 1, 0, 0);
    }
    assert_int_equal(atomic_load(&m->npeers), OR_METRICS_MAX_PEERS);
    assert_int_equal(atomic_load(&m->label_overflow[OR_OVERFLOW_PEER]), 0);
    or_metrics_peer *o = or_metrics_peer_get(m, "spiffe://td/ns/n/sa/one-too-many");
    assert_ptr_equal(o, m->overflow);
    or_metrics_request(m, o, 200, 1, 0, 0);
    assert_ptr_equal(or_metrics_peer_get(m, "spiffe://td/ns/n/sa/another"), m->overflow);
    or_metrics_request(m, o, 200, 1, 0, 0);
    assert_int_equal(atomic_load(&m->npeers), OR_METRICS_MAX_PEERS);
    assert_int_equal(atomic_load(&m->label_overflow[OR_OVERFLOW_PEER]), 2);
    /* a known peer still has its own series */
    assert_ptr_not_equal(or_metrics_peer_get(m, "spiffe://td/ns/n/sa/p7"), m->overflow);
    /* no identity: "unknown", a peer like any other */
    or_metrics_peer *u = or_metrics_peer_get(m, "");
    assert_ptr_equal(u, m->overflow); /* the table is full */

    fixture f;
    fixture_init(&f, OR_MODE_INBOUND);
    or_buf out = {0};
    const char *t = scrape(&f, &m, 1, &out);
    assert_line(t, "outrider_requests_total{listener=\"in\",direction=\"inbound\","
                   "peer=\"overflow\",code=\"200\",class=\"2xx\"} 2");
    assert_line(t, "outrider_metric_label_overflow_total{listener=\"in\",label=\"peer\"} 3");
    size_t series = 0;
    for (const char *s = t; (s = strstr(s, "\noutrider_requests_total{")); s++)
        series++;
    assert_int_equal(series, OR_METRICS_MAX_PEERS + 1);
    or_buf_free(&out);
    or_listener_metrics_free(m);
}

/* grpc-status 0..16 each have their series; anything else is "other". */
static void test_grpc_statuses(void **state)
{
    (void)state;
    or_listener_metrics *m = or_listener_metrics_new();
    or_metrics_peer *p = or_metrics_peer_get(m, "spiffe://td/ns/n/sa/caller");
    static const char *const seen[] = {"0", "0", "7", "16", "17", "01", "", "x", "-1", "160"};
    for (size_t i = 0; i < sizeof seen / sizeof seen[0]; i++)
        or_metrics_grpc(p, seen[i]);
    fixture f;
    fixture_init(&f, OR_MODE_INBOUND);
    or_buf out = {0};
    const char *t = scrape(&f, &m, 1, &out);
#define GRPC_LINE(code, n)                                                                    \
    "outrider_grpc_responses_total{listener=\"in\",direction=\"inbound\","                   \
    "peer=\"spiffe://td/ns/n/sa/caller\",grpc_status=\"" code "\"} " n
    assert_line(t, GRPC_LINE("0", "2"));
    assert_line(t, GRPC_LINE("7", "1"));
    assert_line(t, GRPC_LINE("16", "1"));
    assert_line(t, GRPC_LINE("other", "6"));
    assert_null(strstr(t, "grpc_status=\"17\""));
    assert_null(strstr(t, "grpc_status=\"1\""));
#undef GRPC_LINE
    or_buf_free(&out);
    or_listener_metrics_free(m);
}

static void test_code_and_policy_caps(void **state)
{
    (void)state;
    or_listener_metrics *m = or_listener_metrics_new();
    or_metrics_peer *p = or_metrics_peer_get(m, NULL);
    assert_string_equal(p->id, OR_METRICS_PEER_UNKNOWN);
    for (int i = 0; i < OR_METRICS_MAX_CODES + 2; i++)
        or_metrics_request(m, p, 200 + i, 1, 0, 0);
    or_metrics_request(m, p, 200, 1, 0, 0); /* a known code keeps its slot */
    or_metrics_request(m, p, 0, 1, 0, 0);   /* no response: a code too, and over the cap */
    assert_int_equal(atomic_load(&p->ncodes), OR_METRICS_MAX_CODES);
    assert_int_equal(atomic_load(&m->label_overflow[OR_OVERFLOW_CODE]), 3);
    char policy[32];
    for (int i = 0; i < OR_METRICS_MAX_POLICIES + 1; i++) {
        snprintf(policy, sizeof policy, "policy-%d", i);
        or_metrics_denied(m, p, policy);
    }
    or_metrics_denied(m, p, NULL);
    assert_int_equal(atomic_load(&p->ndenials), OR_METRICS_MAX_POLICIES);
    assert_int_equal(atomic_load(&m->label_overflow[OR_OVERFLOW_POLICY]), 2);

    fixture f;
    fixture_init(&f, OR_MODE_OUTBOUND);
    or_buf out = {0};
    const char *t = scrape(&f, &m, 1, &out);
    assert_line(t, "outrider_requests_total{listener=\"in\",direction=\"outbound\","
                   "peer=\"unknown\",code=\"200\",class=\"2xx\"} 2");
    assert_line(t, "outrider_requests_total{listener=\"in\",direction=\"outbound\","
                   "peer=\"unknown\",code=\"other\",class=\"other\"} 3");
    assert_line(t, "outrider_rbac_denied_total{listener=\"in\",policy=\"other\","
                   "peer=\"unknown\"} 2");
    assert_line(t, "outrider_rbac_denied_total{listener=\"in\",policy=\"policy-0\","
                   "peer=\"unknown\"} 1");
    or_buf_free(&out);
    or_listener_metrics_free(m);
}

/* ---- the sum over workers ---- */

static void test_sum_over_workers(void **state)
{
    (void)state;
    or_listener_metrics *w[2] = {or_listener_metrics_new(), or_listener_metrics_new()};
    /* the same peers, met in a different order by each worker */
    or_metrics_request(w[0], or_metrics_peer_get(w[0], "spiffe://td/a"), 200, 1, 0, 0);
    or_metrics_request(w[0], or_metrics_peer_get(w[0], "spiffe://td/b"), 503, 1, 0, 0);
    or_metrics_request(w[1], or_metrics_peer_get(w[1], "spiffe://td/b"), 503, 1, 0, 0);
    or_metrics_request(w[1], or_metrics_peer_get(w[1], "spiffe://td/a"), 200, 1, 0, 0);
    or_metrics_request(w[1], or_metrics_peer_get(w[1], "spiffe://td/a"), 201, 1, 0, 0);
    or_metrics_handshake(w[0], false, 700);
    or_metrics_handshake(w[1], true, 300);
    or_metrics_inc(w[0]->up_created);
    or_metrics_inc(w[1]->up_created);
    or_metrics_inc(w[1]->up_closed);
    fixture f;
    fixture_init(&f, OR_MODE_INBOUND);
    or_buf out = {0};
    const char *t = scrape(&f, w, 2, &out);
    assert_line(t, "outrider_requests_total{listener=\"in\",direction=\"inbound\","
                   "peer=\"spiffe://td/a\",code=\"200\",class=\"2xx\"} 2\n"
                   "outrider_requests_total{listener=\"in\",direction=\"inbound\","
                   "peer=\"spiffe://td/a\",code=\"201\",class=\"2xx\"} 1\n"
                   "outrider_requests_total{listener=\"in\",direction=\"inbound\","
                   "peer=\"spiffe://td/b\",code=\"503\",class=\"5xx\"} 2");
    assert_line(t, "outrider_tls_handshakes_total{listener=\"in\",type=\"full\"} 1");
    assert_line(t, "outrider_tls_handshakes_total{listener=\"in\",type=\"resumed\"} 1");
    assert_line(t, "outrider_tls_handshake_duration_seconds_bucket{listener=\"in\",le=\"0.0005\"} 1");
    assert_line(t, "outrider_tls_handshake_duration_seconds_bucket{listener=\"in\",le=\"0.001\"} 2");
    assert_line(t, "outrider_upstream_connections_open{listener=\"in\"} 1");
    assert_line(t, "outrider_upstream_connections_created_total{listener=\"in\"} 2");
    or_buf_free(&out);
    or_listener_metrics_free(w[0]);
    or_listener_metrics_free(w[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket_edges_are_inclusive),
        cmocka_unit_test(test_histogram_text),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_json_document),
        cmocka_unit_test(test_peer_cap_and_overflow),
        cmocka_unit_test(test_code_and_policy_caps),
        cmocka_unit_test(test_grpc_statuses),
        cmocka_unit_test(test_sum_over_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
