/*
 * outrider-ca: command line.
 *
 *   outrider-ca init --dir DIR --trust-domain TD
 *                    [--ca-cert FILE --ca-key FILE [--chain FILE] [--root FILE]]
 *   outrider-ca token create --dir DIR --spiffe-id ID [--ttl 24h]
 *   outrider-ca serve --dir DIR --listen 127.0.0.1:PORT [--ttl 1h] [--max-ttl 24h]
 *                     [--run-as USER|UID:GID] [--no-sandbox] [--allow-root]
 *                     [--seccomp enforce|log]
 *
 * init and token create do their work and exit; serve runs the HTTPS server
 * on one libuv loop until SIGTERM or SIGINT, then closes every connection
 * and exits 0. Once serve has opened the state directory and bound its
 * socket it confines itself (sandbox.h): started as root it runs on as
 * --run-as (65532:65532 by default), so the state directory must belong to
 * that user; init and token create are one-shot commands and run as whoever
 * starts them, which should be that same user. The process state (random generator, CA, server) lives in
 * main's frame and is passed down.
 */
#include <getopt.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "outrider/ca.h"
#include "outrider/cli.h"
#include "outrider/ca_server.h"
#include "outrider/keys.h"
#include "outrider/log.h"
#include "outrider/sandbox.h"
#include "outrider/token.h"
#include "outrider/units.h"

typedef struct {
    const char *dir, *trust_domain, *ca_cert, *ca_key, *chain, *root, *spiffe_id, *listen;
    const char *ttl, *max_ttl;
    or_sandbox_settings sandbox;
} ca_args;

static const char USAGE[] =
    "usage: outrider-ca init --dir DIR --trust-domain TD\n"
    "                        [--ca-cert FILE --ca-key FILE [--chain FILE] [--root FILE]]\n"
    "       outrider-ca token create --dir DIR --spiffe-id ID [--ttl 24h]\n"
    "       outrider-ca serve --dir DIR --listen IP:PORT [--ttl 1h] [--max-ttl 24h]\n"
    "                         " OR_SANDBOX_USAGE "\n";

/* A string option: its value is 256 + the offset of its field in ca_args. */
#define STRING_OPT(name, field) {name, required_argument, NULL, 256 + (int)offsetof(ca_args, field)}

static int parse_args(int argc, char **argv, ca_args *a)
{
    static const struct option opts[] = {
        STRING_OPT("dir", dir),         STRING_OPT("trust-domain", trust_domain),
        STRING_OPT("ca-cert", ca_cert), STRING_OPT("ca-key", ca_key),
        STRING_OPT("chain", chain),     STRING_OPT("root", root),
        STRING_OPT("spiffe-id", spiffe_id), STRING_OPT("listen", listen),
        STRING_OPT("ttl", ttl),         STRING_OPT("max-ttl", max_ttl),
        OR_SANDBOX_LONG_OPTIONS,        {NULL, 0, NULL, 0},
    };
    int ch;
    char err[256];
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (ch == '?')
            return -1;
        if (ch >= 256 && ch < 256 + (int)offsetof(ca_args, sandbox))
            *(const char **)((char *)a + ch - 256) = optarg;
        else if (or_sandbox_option(&a->sandbox, ch, optarg, err, sizeof err) != 0) {
            fprintf(stderr, "outrider-ca: %s\n", err);
            return -1;
        }
    }
    return optind == argc && a->dir ? 0 : -1;
}

static int duration_s(const char *text, uint64_t *out, const char *what)
{
    uint64_t ms;
    const char *why = NULL;
    if (or_parse_duration_ms(text, &ms, &why) != 0 || ms < 1000) {
        fprintf(stderr, "outrider-ca: bad %s %s: %s\n", what, text, why ? why : "under 1s");
        return -1;
    }
    *out = ms / 1000;
    return 0;
}

static int cmd_init(const ca_args *a, or_keys_rng *rng)
{
    if (!a->trust_domain)
        return or_cli_usage(USAGE);
    or_ca_init_opts o = {.dir = a->dir, .trust_domain = a->trust_domain, .ca_cert = a->ca_cert,
                         .ca_key = a->ca_key, .chain = a->chain, .root = a->root};
    char err[512];
    if (or_ca_init(&o, rng, err, sizeof err) != 0) {
        fprintf(stderr, "outrider-ca: init: %s\n", err);
        return 1;
    }
    or_log_info("CA for trust domain %s ready in %s", a->trust_domain, a->dir);
    return 0;
}

static int cmd_token(const ca_args *a, or_keys_rng *rng)
{
    const char *why = NULL;
    or_spiffe_id id;
    uint64_t ttl = 86400;
    if (!a->spiffe_id)
        return or_cli_usage(USAGE);
    if (or_spiffe_id_parse(a->spiffe_id, strlen(a->spiffe_id), &id, &why) != 0) {
        fprintf(stderr, "outrider-ca: bad --spiffe-id %s: %s\n", a->spiffe_id, why);
        return 1;
    }
    if (a->ttl && duration_s(a->ttl, &ttl, "--ttl") != 0)
        return 1;
    char token[OR_TOKEN_LEN + 1], err[512];
    if (or_token_create(a->dir, a->spiffe_id, ttl, rng, token, err, sizeof err) != 0) {
        fprintf(stderr, "outrider-ca: token create: %s\n", err);
        return 1;
    }
    printf("%s\n", token);
    return 0;
}

typedef struct {
    or_ca_server srv;
    uv_signal_t sigs[2];
    or_sandbox_report report;
} ca_runtime;

static void on_signal(uv_signal_t *sig, int signum)
{
    ca_runtime *rt = sig->data;
    or_log_info("signal %d: stopping (%llu requests served, %llu connections refused)", signum,
                (unsigned long long)rt->srv.http.served, (unsigned long long)rt->srv.http.refused);
    or_ca_server_stop(&rt->srv);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&rt->sigs[i], NULL);
}

/* What serve touches once it runs: the state directory and its port. */
static int confine(const or_ca *ca, const char *listen, const or_sandbox_settings *sandbox,
                   or_sandbox_report *report)
{
    or_sandbox_rules *rules = calloc(1, sizeof *rules);
    if (!rules)
        return -1;
    or_sandbox_rules_write(rules, ca->dir);
    const char *colon = strrchr(listen, ':');
    if (colon)
        or_sandbox_rules_bind(rules, (uint16_t)strtoul(colon + 1, NULL, 10));
    int rc = or_sandbox_confine(sandbox, rules, report);
    free(rules);
    return rc;
}

static int run_server(or_ca *ca, const char *listen, const or_sandbox_settings *sandbox)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    ca_runtime rt;
    char err[512];
    int status = 0;
    if (or_ca_server_start(&rt.srv, ca, &loop, listen, err, sizeof err) != 0) {
        fprintf(stderr, "outrider-ca: serve: %s\n", err);
        status = 1;
    } else if (confine(ca, listen, sandbox, &rt.report) != 0) {
        or_ca_server_stop(&rt.srv);
        status = 1;
    } else {
        int signums[2] = {SIGTERM, SIGINT};
        for (int i = 0; i < 2; i++) {
            uv_signal_init(&loop, &rt.sigs[i]);
            rt.sigs[i].data = &rt;
            uv_signal_start(&rt.sigs[i], on_signal, signums[i]);
        }
        or_log_info("outrider-ca serving trust domain %s on https://%s", ca->trust_domain,
                    listen);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    or_ca_server_free(&rt.srv);
    uv_loop_close(&loop);
    return status;
}

static int cmd_serve(const ca_args *a, or_keys_rng *rng)
{
    if (!a->listen)
        return or_cli_usage(USAGE);
    or_ca ca;
    char err[512];
    if (or_ca_open(&ca, a->dir, rng, err, sizeof err) != 0) {
        fprintf(stderr, "outrider-ca: serve: %s\n", err);
        or_ca_close(&ca);
        return 1;
    }
    int status = 0;
    if ((a->ttl && duration_s(a->ttl, &ca.default_ttl_s, "--ttl") != 0) ||
        (a->max_ttl && duration_s(a->max_ttl, &ca.max_ttl_s, "--max-ttl") != 0))
        status = 1;
    else if (ca.default_ttl_s > ca.max_ttl_s) {
        fprintf(stderr, "outrider-ca: --ttl is longer than --max-ttl\n");
        status = 1;
    } else {
        status = run_server(&ca, a->listen, &a->sandbox);
    }
    or_ca_close(&ca);
    return status;
}

int main(int argc, char **argv)
{
    if (or_cli_info(argc, argv, "outrider-ca", USAGE))
        return 0;
    if (argc < 2)
        return or_cli_usage(USAGE);
    const char *cmd = argv[1];
    int shift = 1;
    if (strcmp(cmd, "token") == 0) {
        if (argc < 3 || strcmp(argv[2], "create") != 0)
            return or_cli_usage(USAGE);
        shift = 2;
    }
    ca_args a = {0};
    or_sandbox_defaults(&a.sandbox);
    if (parse_args(argc - shift, argv + shift, &a) != 0)
        return or_cli_usage(USAGE);
    or_log_set_thread_name("main");
    or_keys_rng rng;
    char err[256];
    if (or_keys_rng_init(&rng, "outrider-ca", err, sizeof err) != 0) {
        fprintf(stderr, "outrider-ca: %s\n", err);
        return 1;
    }
    int status;
    if (strcmp(cmd, "init") == 0)
        status = cmd_init(&a, &rng);
    else if (strcmp(cmd, "token") == 0)
        status = cmd_token(&a, &rng);
    else if (strcmp(cmd, "serve") == 0)
        status = cmd_serve(&a, &rng);
    else
        status = or_cli_usage(USAGE);
    or_keys_rng_free(&rng);
    return status;
}
