/*
 * The command line of outrider-bench: the mode word, then options.
 *
 * Durations use the config syntax (500ms, 10s, 5m) and sizes the config size
 * syntax (512, 64KiB, 1MiB), through units.h, so the two read the same. The
 * URL must name a literal IP: a benchmark should not measure a resolver.
 */
#include "outrider/bench_cli.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "outrider/units.h"

static const char usage_text[] =
    "usage: outrider-bench MODE [options]\n"
    "\n"
    "Modes:\n"
    "  rps        HTTP/1.1 keep-alive requests on -c connections\n"
    "  handshake  a new connection (mTLS for https://) per request; --resume reuses a session\n"
    "  bulk       like rps, reported as MB/s: use a large --req-size and/or a URL of a large file\n"
    "  idle       open -c mTLS connections (resuming the first one's session) and hold\n"
    "             them for --hold; --pid PID reports the server's RSS before and after\n"
    "  cipher     single-core mbedTLS ChaCha20-Poly1305 and AES-128-GCM throughput\n"
    "  pkops      single-core mbedTLS ECDSA P-256 sign/verify and ECDH P-256/X25519 costs\n"
    "\n"
    "Target:\n"
    "  -u, --url URL          http://IP:PORT/PATH or https://IP:PORT/PATH (literal IP)\n"
    "      --cert FILE        client certificate chain (PEM), for https://\n"
    "      --key FILE         its private key (mode 0600)\n"
    "      --ca FILE          trust bundle the server must chain to\n"
    "      --trust-domain TD  the server must be an X509-SVID of TD (default cluster.local)\n"
    "      --peer-id ID       the server's SPIFFE ID must also equal ID (optional)\n"
    "      --resume           handshake mode: resume a session (tickets) after the first\n"
    "\n"
    "Load:\n"
    "  -c, --connections N    concurrent connections (default 16; idle: 1000)\n"
    "  -t, --threads N        threads, each with its own loop and share of -c (default 1)\n"
    "  -d, --duration D       how long to send (default 10s), e.g. 500ms, 10s, 1m\n"
    "  -n, --requests N       stop after N requests instead of a duration\n"
    "  -r, --rate R           fixed rate in requests/s over all threads; latency is then\n"
    "                         measured from each request's intended send time\n"
    "  -s, --req-size SIZE    POST a body of SIZE bytes (default 0: GET); e.g. 1MiB\n"
    "                         (the response size is whatever the server sends; it is counted)\n"
    "      --timeout D        per-request timeout, connect and handshake included (default 10s)\n"
    "      --hold D           idle mode: how long to hold the connections (default 2s)\n"
    "      --pid PID          the server's process: idle mode reads its VmRSS before and\n"
    "                         after; the other modes report the CPU time it used per request\n"
    "      --bytes SIZE       cipher mode: bytes to encrypt (default 64MiB)\n"
    "\n"
    "Output:\n"
    "      --json             one JSON object on stdout instead of the text report\n"
    "  -q, --quiet            no progress line on stderr\n"
    "  -h, --help             this text\n"
    "\n"
    "Latencies go into a log-linear histogram (1 ns..68 s, <0.8% bucket width):\n"
    "p50/p90/p99/p99.9/max. Failed requests are counted as errors, requests with\n"
    "no answer within --timeout as timeouts; neither enters the histogram.\n";

void or_bench_cli_usage(void *stream)
{
    fputs(usage_text, stream);
}

static const struct {
    const char *name;
    or_bench_mode mode;
} modes[] = {
    {"rps", OR_BENCH_RPS},       {"handshake", OR_BENCH_HANDSHAKE}, {"bulk", OR_BENCH_BULK},
    {"idle", OR_BENCH_IDLE},     {"cipher", OR_BENCH_CIPHER},       {"pkops", OR_BENCH_PKOPS},
};

enum { OPT_CERT = 256, OPT_KEY, OPT_CA, OPT_TD, OPT_PEER, OPT_RESUME, OPT_TIMEOUT, OPT_HOLD,
       OPT_PID, OPT_BYTES, OPT_JSON };

static const struct option long_opts[] = {
    {"url", required_argument, NULL, 'u'},          {"cert", required_argument, NULL, OPT_CERT},
    {"key", required_argument, NULL, OPT_KEY},      {"ca", required_argument, NULL, OPT_CA},
    {"trust-domain", required_argument, NULL, OPT_TD},
    {"peer-id", required_argument, NULL, OPT_PEER}, {"resume", no_argument, NULL, OPT_RESUME},
    {"connections", required_argument, NULL, 'c'},  {"threads", required_argument, NULL, 't'},
    {"duration", required_argument, NULL, 'd'},     {"requests", required_argument, NULL, 'n'},
    {"rate", required_argument, NULL, 'r'},         {"req-size", required_argument, NULL, 's'},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"hold", required_argument, NULL, OPT_HOLD},    {"pid", required_argument, NULL, OPT_PID},
    {"bytes", required_argument, NULL, OPT_BYTES},  {"json", no_argument, NULL, OPT_JSON},
    {"quiet", no_argument, NULL, 'q'},              {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int parse_uint(const char *text, uint64_t max, uint64_t *out)
{
    char *end;
    if (!text[0] || text[0] == '-')
        return -1;
    unsigned long long v = strtoull(text, &end, 10);
    if (*end || v > max)
        return -1;
    *out = v;
    return 0;
}

static int parse_url(or_bench_opts *o, char *err, size_t len)
{
    const char *rest;
    if (strncmp(o->url, "http://", 7) == 0) {
        rest = o->url + 7;
    } else if (strncmp(o->url, "https://", 8) == 0) {
        rest = o->url + 8;
        o->tls = true;
    } else {
        snprintf(err, len, "--url must start with http:// or https://");
        return -1;
    }
    const char *slash = strchr(rest, '/');
    size_t hp_len = slash ? (size_t)(slash - rest) : strlen(rest);
    char hp[300];
    if (hp_len >= sizeof hp || strlen(slash ? slash : "/") >= sizeof o->path) {
        snprintf(err, len, "--url is too long");
        return -1;
    }
    memcpy(hp, rest, hp_len);
    hp[hp_len] = '\0';
    snprintf(o->path, sizeof o->path, "%s", slash ? slash : "/");
    or_hostport parsed;
    const char *why = NULL;
    if (or_parse_hostport(hp, &parsed, &why) != 0) {
        snprintf(err, len, "--url %s: %s", o->url, why);
        return -1;
    }
    if (!parsed.is_ip) {
        snprintf(err, len, "--url %s: use a literal IP address, not a name", o->url);
        return -1;
    }
    snprintf(o->host, sizeof o->host, "%s", hp);
    o->port = parsed.port;
    o->addr = parsed.addr;
    return 0;
}

static void set_defaults(or_bench_opts *o)
{
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->duration_ms = 10000;
    o->timeout_ms = 10000;
    o->hold_ms = 2000;
    o->trust_domain = "cluster.local";
    o->cipher_bytes = 64u << 20;
}

/* A duration or a size, read by `parse` (units.h). */
static int set_units(int (*parse)(const char *, uint64_t *, const char **), const char *flag,
                     const char *text, uint64_t *out, char *err, size_t len)
{
    const char *why = NULL;
    if (parse(text, out, &why) != 0) {
        snprintf(err, len, "%s %s: %s", flag, text, why);
        return -1;
    }
    return 0;
}

static int set_count(const char *flag, const char *text, uint64_t max, uint64_t *out, char *err,
                     size_t len)
{
    if (parse_uint(text, max, out) != 0 || *out == 0) {
        snprintf(err, len, "%s wants a whole number from 1 to %llu, got '%s'", flag,
                 (unsigned long long)max, text);
        return -1;
    }
    return 0;
}

static int apply_option(or_bench_opts *o, int c, const char *arg, char *err, size_t len)
{
    uint64_t v;
    char *end;
    switch (c) {
    case 'u': o->url = arg; return 0;
    case OPT_CERT: o->cert = arg; return 0;
    case OPT_KEY: o->key = arg; return 0;
    case OPT_CA: o->ca = arg; return 0;
    case OPT_TD: o->trust_domain = arg; return 0;
    case OPT_PEER: o->peer_id = arg; return 0;
    case OPT_RESUME: o->resume = true; return 0;
    case OPT_JSON: o->json = true; return 0;
    case 'q': o->quiet = true; return 0;
    case 'c':
        if (set_count("-c", arg, 1000000, &v, err, len) != 0)
            return -1;
        o->connections = (unsigned)v;
        return 0;
    case 't':
        if (set_count("--threads", arg, 256, &v, err, len) != 0)
            return -1;
        o->threads = (unsigned)v;
        return 0;
    case 'd': return set_units(or_parse_duration_ms, "-d", arg, &o->duration_ms, err, len);
    case 'n': return set_count("-n", arg, UINT64_MAX / 2, &o->requests, err, len);
    case 'r':
        o->rate = strtod(arg, &end);
        if (*end || !(o->rate > 0) || o->rate > 1e8) {
            snprintf(err, len, "--rate wants requests per second above 0, got '%s'", arg);
            return -1;
        }
        return 0;
    case 's': return set_units(or_parse_size, "--req-size", arg, &o->req_size, err, len);
    case OPT_TIMEOUT:
        return set_units(or_parse_duration_ms, "--timeout", arg, &o->timeout_ms, err, len);
    case OPT_HOLD: return set_units(or_parse_duration_ms, "--hold", arg, &o->hold_ms, err, len);
    case OPT_BYTES: return set_units(or_parse_size, "--bytes", arg, &o->cipher_bytes, err, len);
    case OPT_PID:
        if (set_count("--pid", arg, 0x7fffffff, &v, err, len) != 0)
            return -1;
        o->pid = (int)v;
        return 0;
    default:
        snprintf(err, len, "unknown option (see --help)");
        return -1;
    }
}

static int check_tls(or_bench_opts *o, char *err, size_t len)
{
    const char *why = NULL;
    if (!o->tls && (o->cert || o->key || o->ca))
        why = "--cert/--key/--ca are for https:// URLs";
    else if (o->tls && !(o->cert && o->key && o->ca))
        why = "an https:// URL needs --cert, --key and --ca (mTLS)";
    else if (o->resume && o->mode != OR_BENCH_HANDSHAKE)
        why = "--resume belongs to handshake mode";
    else if (o->resume && !o->tls)
        why = "--resume needs an https:// URL";
    else if (o->mode == OR_BENCH_IDLE && !o->tls)
        why = "idle mode holds mTLS connections: give an https:// URL";
    if (why)
        snprintf(err, len, "%s", why);
    return why ? -1 : 0;
}

static int finish(or_bench_opts *o, char *err, size_t len)
{
    if (o->mode == OR_BENCH_CIPHER || o->mode == OR_BENCH_PKOPS)
        return 0;
    if (!o->url) {
        snprintf(err, len, "%s mode needs --url", o->mode_name);
        return -1;
    }
    if (parse_url(o, err, len) != 0 || check_tls(o, err, len) != 0)
        return -1;
    if (o->connections == 0)
        o->connections = o->mode == OR_BENCH_IDLE ? 1000 : 16;
    if (o->threads > o->connections) {
        snprintf(err, len, "--threads %u is more than -c %u", o->threads, o->connections);
        return -1;
    }
    if (o->requests)
        o->duration_ms = 0;
    if (o->rate > 0 && o->mode != OR_BENCH_RPS && o->mode != OR_BENCH_BULK) {
        snprintf(err, len, "--rate belongs to rps and bulk modes");
        return -1;
    }
    return 0;
}

int or_bench_cli_parse(int argc, char **argv, or_bench_opts *o, char *err, size_t len)
{
    set_defaults(o);
    if (argc < 2) {
        snprintf(err, len, "no mode given (see --help)");
        return -1;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0)
        return 1;
    size_t i;
    for (i = 0; i < sizeof modes / sizeof modes[0]; i++)
        if (strcmp(argv[1], modes[i].name) == 0)
            break;
    if (i == sizeof modes / sizeof modes[0]) {
        snprintf(err, len, "unknown mode '%s' (rps, handshake, bulk, idle, cipher, pkops)",
                 argv[1]);
        return -1;
    }
    o->mode = modes[i].mode;
    o->mode_name = modes[i].name;
    optind = 2;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "u:c:t:d:n:r:s:qh", long_opts, NULL)) != -1) {
        if (c == 'h')
            return 1;
        if (c == '?' || c == ':') {
            snprintf(err, len, "option '%s' is unknown or lacks its value (see --help)",
                     argv[optind - 1]);
            return -1;
        }
        if (apply_option(o, c, optarg, err, len) != 0)
            return -1;
    }
    if (optind < argc) {
        snprintf(err, len, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return finish(o, err, len);
}
