/*
 * explain: `outrider explain`, the RBAC decision for a described request.
 *
 * The command loads the config with the real loader, compiles its policies
 * with or_rbac_compile and hands a request built from the command line to
 * or_rbac_explain, so what it prints is what the proxy decides. It is
 * called with argv[0] == "explain" and parses the rest with getopt_long:
 *
 *   -c/--config FILE  required
 *   --principal ID    required; "none" describes an unauthenticated peer
 *   --ip A            source address (default 127.0.0.1)
 *   --port N          destination port (default: the port of the first
 *                     inbound listener, else 0)
 *   --method M, --path P, --host H, --header k=v (repeatable, at most 64;
 *                     names are lower-cased, repeated names are joined with
 *                     ", " as the proxy does)
 *   --tcp             an l4 request, as on a tcp listener
 *
 * Without --tcp the request is l4 when the first inbound listener is tcp
 * and no HTTP option (--method, --path, --host, --header) is given; else it
 * is an HTTP request, with method GET and path "/" unless given. The path
 * is normalised as the proxy normalises request targets (http_path.h), and
 * the result is what is matched; a target the proxy refuses with 400 is
 * reported as such and counts as denied. A query string in --path is shown
 * but not matched. A config without an rbac section enforces nothing, and
 * the command says so.
 *
 * Exit status: 0 allowed, 2 denied, 1 usage or config error.
 */
#include "outrider/explain.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "outrider/config.h"
#include "outrider/http_path.h"
#include "outrider/rbac.h"
#include "outrider/spiffe.h"

#define OR_EXPLAIN_HEADERS_MAX 64

typedef struct {
    char *name;  /* lower-case */
    char *value; /* repeated headers joined with ", " */
} or_explain_header;

typedef struct {
    const char *config, *principal, *ip, *method, *path, *host;
    const char *port;
    bool tcp;
    or_explain_header headers[OR_EXPLAIN_HEADERS_MAX];
    size_t nheaders, header_options;
} or_explain_args;

/* A string option's value is 256 + the offset of its field in or_explain_args. */
#define STRING_OPT(name, field)                                                                   \
    {name, required_argument, NULL, 256 + (int)offsetof(or_explain_args, field)}
enum { OPT_HEADER = 256 + sizeof(or_explain_args), OPT_TCP };

static void print_usage(FILE *out)
{
    fputs("usage: outrider explain -c FILE --principal ID|none [--ip A] [--port N]\n"
          "                        [--method M] [--path P] [--host H] [--header k=v]... [--tcp]\n"
          "\n"
          "Prints the RBAC decision the proxy configured by FILE makes for the described\n"
          "request, and why. Exit status: 0 allowed, 2 denied, 1 usage or config error.\n"
          "Without --tcp the request is tcp (l4) when the first inbound listener is tcp and\n"
          "no --method, --path, --host or --header is given; HTTP requests default to\n"
          "method GET and path /.\n",
          out);
}

static void free_headers(or_explain_args *args)
{
    for (size_t i = 0; i < args->nheaders; i++) {
        free(args->headers[i].name);
        free(args->headers[i].value);
    }
    args->nheaders = 0;
}

/* Adds "name=value"; returns an error message or NULL. */
static const char *add_header(or_explain_args *args, const char *text)
{
    const char *eq = strchr(text, '=');
    if (eq == NULL || eq == text)
        return "--header takes name=value";
    if (++args->header_options > OR_EXPLAIN_HEADERS_MAX)
        return "too many --header options (at most 64)";
    size_t name_len = (size_t)(eq - text);
    for (size_t i = 0; i < args->nheaders; i++) {
        or_explain_header *h = &args->headers[i];
        if (strlen(h->name) != name_len || strncasecmp(h->name, text, name_len) != 0)
            continue;
        char *joined;
        if (asprintf(&joined, "%s, %s", h->value, eq + 1) < 0)
            return "out of memory";
        free(h->value);
        h->value = joined;
        return NULL;
    }
    or_explain_header *h = &args->headers[args->nheaders];
    h->name = strndup(text, name_len);
    h->value = strdup(eq + 1);
    if (h->name == NULL || h->value == NULL) {
        free(h->name);
        free(h->value);
        return "out of memory";
    }
    for (char *p = h->name; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    args->nheaders++;
    return NULL;
}

/* Parses argv; returns -1 on a usage error (reported), 1 for --help, 0. */
static int parse_args(int argc, char **argv, or_explain_args *args)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'}, STRING_OPT("principal", principal),
        STRING_OPT("ip", ip),     STRING_OPT("port", port), STRING_OPT("method", method),
        STRING_OPT("path", path), STRING_OPT("host", host),
        {"header", required_argument, NULL, OPT_HEADER},
        {"tcp", no_argument, NULL, OPT_TCP},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *problem = NULL;
    int opt;
    optind = 1;
    while (problem == NULL && (opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        switch (opt) {
        case 'c': args->config = optarg; break;
        case 'h': return 1;
        case OPT_HEADER: problem = add_header(args, optarg); break;
        case OPT_TCP: args->tcp = true; break;
        default:
            if (opt < 256) /* getopt_long has said why */
                return -1;
            *(const char **)((char *)args + opt - 256) = optarg;
        }
    }
    if (problem == NULL && optind != argc)
        problem = "unexpected argument";
    else if (problem == NULL && (args->config == NULL || args->principal == NULL))
        problem = args->config == NULL ? "missing -c FILE" : "missing --principal ID (or none)";
    else if (problem == NULL && args->tcp &&
             (args->method || args->path || args->host || args->nheaders))
        problem = "--tcp describes a tcp connection, which has no method, path, host or headers";
    if (problem == NULL)
        return 0;
    fprintf(stderr, "outrider explain: %s\n", problem);
    return -1;
}

static const char *lookup_header(void *ctx, const char *name, size_t name_len, size_t *value_len)
{
    const or_explain_args *args = ctx;
    for (size_t i = 0; i < args->nheaders; i++) {
        const or_explain_header *h = &args->headers[i];
        if (strlen(h->name) == name_len && memcmp(h->name, name, name_len) == 0) {
            *value_len = strlen(h->value);
            return h->value;
        }
    }
    return NULL;
}

static const or_listener_config *first_inbound(const or_config *cfg)
{
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].mode == OR_MODE_INBOUND)
            return &cfg->listeners[i];
    return NULL;
}

static bool parse_ip(const char *text, struct sockaddr_storage *out)
{
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        return true;
    }
    if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        return true;
    }
    return false;
}

static bool parse_port(const char *text, uint16_t *port)
{
    char *end;
    unsigned long value = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || value < 1 || value > 65535)
        return false;
    *port = (uint16_t)value;
    return true;
}

/* Fills the request from the arguments and the config; returns -1 after
 * reporting a bad --ip or --port. */
static int build_request(const or_explain_args *args, const or_config *cfg,
                         struct sockaddr_storage *source, or_rbac_request *req)
{
    const or_listener_config *inbound = first_inbound(cfg);
    const char *ip = args->ip ? args->ip : "127.0.0.1";
    memset(req, 0, sizeof(*req));
    if (!parse_ip(ip, source)) {
        fprintf(stderr, "outrider explain: --ip: expected an IPv4 or IPv6 address, got \"%s\"\n",
                ip);
        return -1;
    }
    req->source = (const struct sockaddr *)source;
    req->port = inbound ? inbound->upstream.port : 0;
    if (args->port != NULL && !parse_port(args->port, &req->port)) {
        fprintf(stderr, "outrider explain: --port: expected 1 to 65535, got \"%s\"\n", args->port);
        return -1;
    }
    req->principal = strcmp(args->principal, "none") == 0 ? NULL : args->principal;
    bool http_given = args->method || args->path || args->host || args->nheaders;
    req->l4 = args->tcp || (!http_given && inbound && inbound->protocol == OR_PROTO_TCP);
    if (req->l4)
        return 0;
    req->method = args->method ? args->method : "GET";
    req->method_len = strlen(req->method);
    req->path = args->path ? args->path : "/";
    req->path_len = strlen(req->path);
    req->host = args->host;
    req->host_len = args->host ? strlen(args->host) : 0;
    req->header = lookup_header;
    req->header_ctx = (void *)args;
    return 0;
}

/* Warns about a principal the proxy could never see. */
static void check_principal(const char *principal, const or_config *cfg)
{
    or_spiffe_id id;
    const char *why;
    if (principal == NULL)
        return;
    if (or_spiffe_id_parse(principal, strlen(principal), &id, &why) != 0) {
        fprintf(stderr, "outrider explain: warning: principal \"%s\" is not a valid SPIFFE ID "
                        "(%s); the proxy only sees verified SPIFFE IDs\n", principal, why);
        return;
    }
    if (cfg->trust_domain != NULL && (id.trust_domain_len != strlen(cfg->trust_domain) ||
                                      memcmp(id.trust_domain, cfg->trust_domain,
                                             id.trust_domain_len) != 0))
        fprintf(stderr, "outrider explain: warning: principal \"%s\" is not in trust domain "
                        "\"%s\"; the proxy refuses such peers at the TLS handshake\n",
                principal, cfg->trust_domain);
}

/* Replaces the request's path with the normalised target, as the proxy
 * does; an absolute-form authority becomes the host. Returns -1, having said
 * why, when the proxy would refuse the target. */
static int normalise_target(const or_config *cfg, or_rbac_request *req, or_buf *target)
{
    or_target t;
    if (req->l4)
        return 0;
    or_path_status st = or_http_target_normalize(req->path, req->path_len,
                                                 cfg->http.escaped_slashes, target, &t);
    if (st == OR_PATH_OK && target->data[0] == '*' && strcmp(req->method, "OPTIONS") != 0)
        st = OR_PATH_BAD_FORM;
    if (st != OR_PATH_OK) {
        printf("decision: DENY with 400 before any policy (the request target \"%s\" is "
               "refused: %s)\n", req->path, or_http_path_status_text(st));
        return -1;
    }
    if (target->len != req->path_len || memcmp(target->data, req->path, req->path_len) != 0)
        printf("note: the proxy normalises the request target \"%s\" to \"%.*s\"; policies "
               "match, and the application gets, the latter\n",
               req->path, (int)target->len, target->data);
    req->path = target->data;
    req->path_len = target->len;
    if (t.authority_len > 0) {
        req->host = t.authority;
        req->host_len = or_http_host_len(t.authority, t.authority_len);
    }
    return 0;
}

/* Loads, compiles and explains; returns the exit status. */
static int explain_config(or_explain_args *args)
{
    or_diag diag;
    or_diag_init(&diag);
    or_config *cfg = or_config_load(args->config, &diag);
    or_rbac *rbac = cfg && cfg->rbac.enabled ? or_rbac_compile(cfg, &diag) : NULL;
    or_diag_print(&diag, stderr);
    or_diag_free(&diag);
    int status = 1;
    struct sockaddr_storage source;
    or_rbac_request req;
    or_buf target = {0};
    if (cfg == NULL || (cfg->rbac.enabled && rbac == NULL)) {
        fprintf(stderr, "outrider explain: %s: cannot load the config\n", args->config);
    } else if (build_request(args, cfg, &source, &req) != 0) {
        status = 1;
    } else if (normalise_target(cfg, &req, &target) != 0) {
        status = 2;
    } else {
        check_principal(req.principal, cfg);
        if (rbac != NULL) {
            or_rbac_decision decision;
            or_rbac_evaluate(rbac, &req, &decision);
            or_rbac_explain(rbac, &req, stdout);
            status = decision.allowed ? 0 : 2;
        } else {
            printf("decision: ALLOW (the config has no rbac section, so the proxy enforces "
                   "no policy)\n");
            status = 0;
        }
    }
    or_buf_free(&target);
    or_rbac_free(rbac);
    or_config_free(cfg);
    return status;
}

int or_explain_command(int argc, char **argv)
{
    or_explain_args args;
    memset(&args, 0, sizeof(args));
    int parsed = parse_args(argc, argv, &args);
    int status = 1;
    if (parsed == 1) {
        print_usage(stdout);
        status = 0;
    } else if (parsed < 0) {
        print_usage(stderr);
    } else {
        status = explain_config(&args);
    }
    free_headers(&args);
    fflush(stdout);
    return status;
}
