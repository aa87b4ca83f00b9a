/*
 * Printing the results of a run: a human-readable block or one JSON line.
 *
 * Both forms derive the same figures from or_bench_result: completed
 * requests per second, MB/s of plaintext both ways (MB = 10^6 bytes), the
 * percentiles of the merged histogram, and for idle mode the server's RSS
 * before and after and the difference per open connection.
 */
#include "outrider/bench_report.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void or_bench_counts_add(or_bench_counts *d, const or_bench_counts *s)
{
    _Static_assert(sizeof *d % sizeof(uint64_t) == 0, "or_bench_counts holds uint64_t only");
    for (size_t i = 0; i < sizeof *d / sizeof(uint64_t); i++)
        ((uint64_t *)d)[i] += ((const uint64_t *)s)[i];
}

typedef struct {
    double rps, mbps, p50, p90, p99, p999, max, mean, min;
    long rss_delta_kb;
    double rss_per_conn;
} derived;

static double us(uint64_t ns)
{
    return (double)ns / 1000.0;
}

static double cpu_us_per_request(const or_bench_result *r)
{
    double s = r->server_cpu.user_s + r->server_cpu.system_s;
    return r->counts.requests ? s * 1e6 / (double)r->counts.requests : 0;
}

static derived derive(const or_bench_result *r)
{
    derived d;
    memset(&d, 0, sizeof d);
    double t = r->elapsed_s > 0 ? r->elapsed_s : 1e-9;
    d.rps = (double)r->counts.requests / t;
    d.mbps = (double)(r->counts.bytes_sent + r->counts.bytes_received) / t / 1e6;
    d.p50 = us(or_bench_hist_quantile(r->hist, 0.50));
    d.p90 = us(or_bench_hist_quantile(r->hist, 0.90));
    d.p99 = us(or_bench_hist_quantile(r->hist, 0.99));
    d.p999 = us(or_bench_hist_quantile(r->hist, 0.999));
    d.max = us(r->hist->max);
    d.min = us(r->hist->min);
    d.mean = or_bench_hist_mean(r->hist) / 1000.0;
    if (r->rss_before_kb >= 0 && r->rss_after_kb >= 0) {
        d.rss_delta_kb = r->rss_after_kb - r->rss_before_kb;
        if (r->counts.connections)
            d.rss_per_conn = (double)d.rss_delta_kb * 1024.0 / (double)r->counts.connections;
    }
    return d;
}

static void text_latency(FILE *out, const char *label, double v)
{
    if (v >= 1000.0)
        fprintf(out, " %s %.2fms", label, v / 1000.0);
    else
        fprintf(out, " %s %.0fus", label, v);
}

void or_bench_report_text(FILE *out, const or_bench_result *r)
{
    const or_bench_opts *o = r->o;
    const or_bench_counts *k = &r->counts;
    derived d = derive(r);
    fprintf(out, "%s %s  connections %u  threads %u  %.2fs%s%s\n", o->mode_name, o->url,
            o->connections, o->threads, r->elapsed_s, r->cipher[0] ? "  " : "", r->cipher);
    if (o->rate > 0)
        fprintf(out, "rate       %.0f/s requested, %llu due but never sent\n", o->rate,
                (unsigned long long)k->unsent);
    fprintf(out, "%-10s %llu (%.1f/s)\n", o->mode == OR_BENCH_IDLE ? "opened" : "requests",
            (unsigned long long)k->requests, d.rps);
    fprintf(out, "errors     %llu (connect %llu, tls %llu, http %llu, io %llu)  timeouts %llu\n",
            (unsigned long long)k->errors, (unsigned long long)k->connect_errors,
            (unsigned long long)k->tls_errors, (unsigned long long)k->http_errors,
            (unsigned long long)k->io_errors, (unsigned long long)k->timeouts);
    fprintf(out, "latency   ");
    text_latency(out, "p50", d.p50);
    text_latency(out, "p90", d.p90);
    text_latency(out, "p99", d.p99);
    text_latency(out, "p99.9", d.p999);
    text_latency(out, "max", d.max);
    fprintf(out, "\n");
    fprintf(out, "transfer   sent %.2f MB, received %.2f MB, %.2f MB/s\n",
            (double)k->bytes_sent / 1e6, (double)k->bytes_received / 1e6, d.mbps);
    if (o->tls)
        fprintf(out, "handshakes full %llu, resumed %llu\n",
                (unsigned long long)k->handshakes_full,
                (unsigned long long)k->handshakes_resumed);
    if (r->rss_before_kb >= 0)
        fprintf(out, "server rss %ld KiB before, %ld KiB after: %.0f bytes per connection\n",
                r->rss_before_kb, r->rss_after_kb, d.rss_per_conn);
    if (r->has_server_cpu)
        fprintf(out, "server cpu %.2f s user, %.2f s system: %.1f us per request\n",
                r->server_cpu.user_s, r->server_cpu.system_s, cpu_us_per_request(r));
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(out, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(out, "\\u%04x", ch);
        else
            fputc(ch, out);
    }
    fputc('"', out);
}

static void json_counts(FILE *out, const or_bench_counts *k)
{
    fprintf(out,
            "\"requests\":%llu,\"completed\":%llu,\"errors\":%llu,\"timeouts\":%llu,"
            "\"error_kinds\":{\"connect\":%llu,\"tls\":%llu,\"http\":%llu,\"io\":%llu},"
            "\"bytes_sent\":%llu,\"bytes_received\":%llu,\"connections_opened\":%llu,"
            "\"handshakes\":{\"full\":%llu,\"resumed\":%llu},\"unsent\":%llu,",
            (unsigned long long)k->requests, (unsigned long long)k->requests,
            (unsigned long long)k->errors, (unsigned long long)k->timeouts,
            (unsigned long long)k->connect_errors, (unsigned long long)k->tls_errors,
            (unsigned long long)k->http_errors, (unsigned long long)k->io_errors,
            (unsigned long long)k->bytes_sent, (unsigned long long)k->bytes_received,
            (unsigned long long)k->connections, (unsigned long long)k->handshakes_full,
            (unsigned long long)k->handshakes_resumed, (unsigned long long)k->unsent);
}

void or_bench_report_json(FILE *out, const or_bench_result *r)
{
    const or_bench_opts *o = r->o;
    derived d = derive(r);
    fprintf(out, "{\"mode\":");
    json_string(out, o->mode_name);
    fprintf(out, ",\"url\":");
    json_string(out, o->url);
    fprintf(out, ",\"tls\":%s,\"cipher\":", o->tls ? "true" : "false");
    json_string(out, r->cipher);
    fprintf(out, ",\"connections\":%u,\"threads\":%u,\"rate\":%.3f,\"req_size\":%llu,",
            o->connections, o->threads, o->rate, (unsigned long long)o->req_size);
    fprintf(out, "\"elapsed_s\":%.6f,", r->elapsed_s);
    json_counts(out, &r->counts);
    fprintf(out, "\"rps\":%.3f,\"mb_per_s\":%.3f,", d.rps, d.mbps);
    fprintf(out,
            "\"latency_us\":{\"samples\":%llu,\"min\":%.3f,\"mean\":%.3f,\"p50\":%.3f,"
            "\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}",
            (unsigned long long)r->hist->count, d.min, d.mean, d.p50, d.p90, d.p99, d.p999,
            d.max);
    if (r->rss_before_kb >= 0)
        fprintf(out,
                ",\"server_rss_kb\":{\"pid\":%d,\"before\":%ld,\"after\":%ld,"
                "\"delta\":%ld,\"per_connection_bytes\":%.1f}",
                o->pid, r->rss_before_kb, r->rss_after_kb, d.rss_delta_kb, d.rss_per_conn);
    if (r->has_server_cpu)
        fprintf(out,
                ",\"server_cpu\":{\"pid\":%d,\"seconds\":%.3f,\"user_seconds\":%.3f,"
                "\"system_seconds\":%.3f,\"us_per_request\":%.1f}",
                o->pid, r->server_cpu.user_s + r->server_cpu.system_s, r->server_cpu.user_s,
                r->server_cpu.system_s, cpu_us_per_request(r));
    fprintf(out, "}\n");
}

void or_bench_progress(FILE *out, unsigned second, uint64_t requests, uint64_t per_s,
                       uint64_t errors)
{
    fprintf(out, "[%4us] completed %llu (%llu/s) errors %llu\n", second,
            (unsigned long long)requests, (unsigned long long)per_s,
            (unsigned long long)errors);
    fflush(out);
}

/* Reads /proc/PID/NAME into buf (up to len - 1 bytes, NUL-terminated); the
 * number of bytes, or -1. */
static long read_proc(int pid, const char *name, char *buf, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, len - 1, f);
    fclose(f);
    buf[n] = '\0';
    return (long)n;
}

long or_bench_rss_kb(int pid)
{
    char status[4096];
    if (read_proc(pid, "status", status, sizeof status) < 0)
        return -1;
    const char *rss = strstr(status, "\nVmRSS:");
    return rss ? strtol(rss + 7, NULL, 10) : -1;
}

int or_bench_cpu_read(int pid, or_bench_cpu *cpu)
{
    char stat[1024];
    if (read_proc(pid, "stat", stat, sizeof stat) < 0)
        return -1;
    /* The command name (field 2) may hold spaces: count fields after its ')'. */
    const char *p = strrchr(stat, ')');
    if (!p)
        return -1;
    unsigned long long utime, stime;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2)
        return -1;
    double tick = (double)sysconf(_SC_CLK_TCK);
    cpu->user_s = (double)utime / tick;
    cpu->system_s = (double)stime / tick;
    return 0;
}
