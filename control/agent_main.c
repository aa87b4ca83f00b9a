/*
 * outrider-agent: command line.
 *
 *   outrider-agent --ca https://IP:PORT --ca-bundle FILE --spiffe-id ID
 *                  [--token TOKEN] --dir OUTDIR [--status-file FILE] [--once]
 *                  [--run-as USER|UID:GID] [--no-sandbox] [--allow-root]
 *                  [--seccomp enforce|log]
 *
 * The CA address is resolved once at start-up. The agent runs until SIGTERM
 * or SIGINT (exit 0) or, with --once, until the first attempt ends (exit 0
 * on success, 1 on failure). The token may also come from the environment
 * variable OUTRIDER_JOIN_TOKEN, which keeps it out of the process list.
 * Once the agent is set up (CA resolved, random generator seeded) it
 * confines itself (sandbox.h): it runs as --run-as (65532:65532 by default)
 * when started as root, so the output directory must be writable by that
 * user and the files it writes belong to it.
 */
#include <getopt.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "outrider/agent.h"
#include "outrider/cli.h"
#include "outrider/keys.h"
#include "outrider/log.h"
#include "outrider/sandbox.h"

typedef struct {
    or_agent agent;
    uv_signal_t sigs[2];
} agent_runtime;

static const char USAGE[] =
    "usage: outrider-agent --ca https://HOST:PORT --ca-bundle FILE --spiffe-id ID\n"
    "                      [--token TOKEN] --dir OUTDIR [--status-file FILE] [--once]\n"
    "                      " OR_SANDBOX_USAGE "\n";

/* "https://host:port[/]" into host (for Host:) and a resolved address. */
static int resolve_ca(const char *url, char *host, size_t host_len, struct sockaddr_storage *out)
{
    if (strncmp(url, "https://", 8) != 0)
        return -1;
    snprintf(host, host_len, "%s", url + 8);
    host[strcspn(host, "/")] = '\0';
    char name[256];
    snprintf(name, sizeof name, "%s", host);
    char *colon = strrchr(name, ':');
    if (!colon)
        return -1;
    *colon = '\0';
    const char *node = name;
    if (name[0] == '[') {
        node = name + 1;
        name[strcspn(name, "]")] = '\0';
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    if (getaddrinfo(node, colon + 1, &hints, &res) != 0 || !res)
        return -1;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    return 0;
}

static int parse_args(int argc, char **argv, or_agent_opts *o, const char **ca_url,
                      or_sandbox_settings *sandbox)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, 'c'},       {"ca-bundle", required_argument, NULL, 'b'},
        {"spiffe-id", required_argument, NULL, 'i'}, {"token", required_argument, NULL, 't'},
        {"dir", required_argument, NULL, 'd'},      {"status-file", required_argument, NULL, 's'},
        {"once", no_argument, NULL, 'o'},           OR_SANDBOX_LONG_OPTIONS,
        {NULL, 0, NULL, 0},
    };
    int ch;
    char err[256];
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'c': *ca_url = optarg; break;
        case 'b': o->ca_bundle = optarg; break;
        case 'i': o->spiffe_id = optarg; break;
        case 't': o->token = optarg; break;
        case 'd': o->outdir = optarg; break;
        case 's': o->status_file = optarg; break;
        case 'o': o->once = true; break;
        case '?': return -1;
        default:
            if (or_sandbox_option(sandbox, ch, optarg, err, sizeof err) != 0) {
                fprintf(stderr, "outrider-agent: %s\n", err);
                return -1;
            }
        }
    }
    if (!o->token && getenv("OUTRIDER_JOIN_TOKEN"))
        o->token = getenv("OUTRIDER_JOIN_TOKEN");
    return optind == argc && *ca_url && o->ca_bundle && o->spiffe_id && o->outdir ? 0 : -1;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    agent_runtime *rt = sig->data;
    or_log_info("signal %d: stopping", signum);
    rt->agent.exit_status = 0;
    or_agent_stop(&rt->agent);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&rt->sigs[i], NULL);
}

/* What the agent touches once it runs: the bootstrap bundle, OUTDIR (or
 * where it will be created), the status file's directory and the CA. */
static void agent_rules(const or_agent_opts *o, or_sandbox_rules *r)
{
    or_sandbox_rules_read(r, o->ca_bundle);
    or_sandbox_rules_write_nearest(r, o->outdir);
    if (o->status_file)
        or_sandbox_rules_write_dir_of(r, o->status_file);
    const struct sockaddr_storage *ca = &o->ca_addr;
    uint16_t port = ca->ss_family == AF_INET6 ? ntohs(((const struct sockaddr_in6 *)ca)->sin6_port)
                                              : ntohs(((const struct sockaddr_in *)ca)->sin_port);
    or_sandbox_rules_connect(r, port);
    or_sandbox_rules_connect(r, 53);
}

static int run(const or_agent_opts *o, const or_sandbox_settings *sandbox, or_keys_rng *rng)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    agent_runtime rt;
    char err[512];
    if (or_agent_start(&rt.agent, o, &loop, rng, err, sizeof err) != 0) {
        fprintf(stderr, "outrider-agent: %s\n", err);
        uv_loop_close(&loop);
        return 1;
    }
    or_sandbox_report report;
    or_sandbox_rules *rules = calloc(1, sizeof *rules);
    if (rules) {
        agent_rules(o, rules);
    }
    int confined = rules ? or_sandbox_confine(sandbox, rules, &report) : -1;
    free(rules);
    if (confined != 0) {
        or_agent_stop(&rt.agent);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    int signums[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&loop, &rt.sigs[i]);
        rt.sigs[i].data = &rt;
        uv_signal_start(&rt.sigs[i], on_signal, signums[i]);
        if (o->once)
            uv_unref((uv_handle_t *)&rt.sigs[i]);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    if (o->once) {
        for (int i = 0; i < 2; i++)
            uv_close((uv_handle_t *)&rt.sigs[i], NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
    }
    uv_loop_close(&loop);
    return rt.agent.exit_status;
}

int main(int argc, char **argv)
{
    if (or_cli_info(argc, argv, "outrider-agent", USAGE))
        return 0;
    or_agent_opts o = {0};
    or_sandbox_settings sandbox;
    or_sandbox_defaults(&sandbox);
    const char *ca_url = NULL;
    char host[256];
    if (parse_args(argc, argv, &o, &ca_url, &sandbox) != 0)
        return or_cli_usage(USAGE);
    if (resolve_ca(ca_url, host, sizeof host, &o.ca_addr) != 0) {
        fprintf(stderr, "outrider-agent: cannot use --ca %s (want https://HOST:PORT)\n", ca_url);
        return 2;
    }
    o.ca_host = host;
    or_log_set_thread_name("main");
    or_keys_rng rng;
    char err[256];
    if (or_keys_rng_init(&rng, "outrider-agent", err, sizeof err) != 0) {
        fprintf(stderr, "outrider-agent: %s\n", err);
        return 1;
    }
    int status = run(&o, &sandbox, &rng);
    or_keys_rng_free(&rng);
    return status;
}
