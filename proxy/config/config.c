/*
 * config: loading and validating the proxy's YAML configuration.
 *
 * The file is parsed with libyaml's document API, which keeps the start
 * mark (line, column) of every node, so each message can point at the exact
 * key or value it is about. The schema is expressed as tables of or_cfg_key:
 * one table per mapping (top level, identity, admin, a listener, ...), each
 * entry naming a key, whether it is required and the handler that checks
 * and stores its value. or_cfg_walk is the only code that iterates a
 * mapping, so unknown keys, duplicate keys and missing required keys are
 * treated the same way everywhere.
 *
 * Loading never stops at the first problem. A handler that finds a bad value
 * reports it and leaves the field at its default; the walk goes on, and at
 * the end the config is returned only if no error was added. Everything a
 * handler allocates is attached to the or_config at once, so or_config_free
 * is the single clean-up path for success and failure alike.
 *
 * This file holds the proxy's own schema; config_rbac.c holds the RBAC
 * policy schema (inline or in their own file); config_yaml.c holds what
 * both stand on (files, messages, the mapping walk, node and scalar
 * readers), behind the private interface in config_yaml.h.
 *
 * A file the config names is checked where it is named: one read at
 * start-up (the identity) must be a regular file that can be read now, one
 * written later (the access log) must be in a directory that exists.
 *
 * Checks that span keys are done where the information is available: the
 * trust domain is read before the walk so listeners can check peer_identity
 * against it wherever it appears in the file, and the admin address is
 * compared with the listeners after the walk.
 */
#include "outrider/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <netinet/in.h>

#include "config_yaml.h"

#define OR_CFG_MAX_WORKERS 64

/* ---- the schema ---- */

typedef struct {
    or_config *cfg;
    const char *trust_domain;        /* valid trust_domain text, read ahead */
    const yaml_node_t *admin_listen; /* for checks made after the walk */
} or_cfg_loader;

typedef struct {
    or_cfg_loader *loader;
    or_listener_config *listener;
    size_t index;
    int mode;                        /* -1 until a valid mode is seen */
} or_listener_ctx;

enum { FILE_WRITTEN_LATER, FILE_READ_NOW };

#define CFG_FIELD(target, key, type) OR_CFG_FIELD(((or_cfg_loader *)(target))->cfg, key, type)

static OR_CFG_HANDLER(on_name)
{
    const char *text = or_cfg_name(f, value, path);
    if (text != NULL)
        *CFG_FIELD(target, key, char *) = or_cfg_strdup(f, value, text);
}

static OR_CFG_HANDLER(on_trust_domain)
{
    char quoted[OR_CFG_QUOTE_MAX];
    const char *why, *text = or_cfg_string(f, value, path);
    if (text == NULL)
        return;
    if (or_cfg_trust_domain_check(text, strlen(text), &why) != 0) {
        or_cfg_error(f, value, "%s: invalid trust domain %s: %s", path,
                     or_cfg_quote(text, quoted), why);
        return;
    }
    *CFG_FIELD(target, key, char *) = or_cfg_strdup(f, value, text);
}

/* The directory part of a path: "." when it has none. */
static char *directory_part(const char *file)
{
    const char *slash = strrchr(file, '/');
    if (slash == NULL)
        return strdup(".");
    return strndup(file, slash == file ? 1 : (size_t)(slash - file));
}

/* A file written at start-up: /dev/stdout, /dev/stderr, or a path whose
 * directory exists, so that the open the proxy makes later can succeed. */
static bool writable_later(or_cfg_file *f, const yaml_node_t *value, const char *path,
                           const char *file)
{
    struct stat st;
    if (strcmp(file, "/dev/stdout") == 0 || strcmp(file, "/dev/stderr") == 0)
        return true;
    if (stat(file, &st) == 0 && S_ISDIR(st.st_mode)) {
        or_cfg_error(f, value, "%s: \"%s\" is a directory; name a file in it", path, file);
        return false;
    }
    char *dir = directory_part(file);
    if (dir == NULL) {
        or_cfg_error(f, value, "out of memory");
        return false;
    }
    int rc = stat(dir, &st), err = errno;
    bool ok = rc == 0 && S_ISDIR(st.st_mode);
    if (rc == 0 && !ok)
        or_cfg_error(f, value, "%s: cannot write \"%s\": \"%s\" is not a directory", path,
                     file, dir);
    else if (rc != 0 && (err == ENOENT || err == ENOTDIR))
        or_cfg_error(f, value, "%s: cannot write \"%s\": the directory \"%s\" does not "
                               "exist; create it or name a file in an existing directory",
                     path, file, dir);
    else if (rc != 0)
        or_cfg_error(f, value, "%s: cannot write \"%s\": cannot use the directory \"%s\": %s",
                     path, file, dir, strerror(err));
    free(dir);
    return ok;
}

/* A path, resolved against the file that names it. A file read at start-up
 * (kind FILE_READ_NOW) must be a regular file that can be read already; one
 * written later (FILE_WRITTEN_LATER) must be in an existing directory. */
static OR_CFG_HANDLER(on_file)
{
    char why[160];
    const char *text = or_cfg_string(f, value, path);
    if (text == NULL)
        return;
    if (text[0] == '\0') {
        or_cfg_error(f, value, "%s: must not be empty", path);
        return;
    }
    char *resolved = or_cfg_resolve(f, value, text);
    if (resolved != NULL && f->texts != NULL) {
        /* files of another machine (or_config_load_texts): not looked at */
    } else if (resolved != NULL && key->kind == FILE_READ_NOW) {
        int fd = or_cfg_open_regular(resolved, 0, why, sizeof why);
        if (fd < 0) {
            or_cfg_error(f, value, "%s: cannot read \"%s\": %s", path, resolved, why);
            free(resolved);
            return;
        }
        close(fd);
    }
    if (resolved != NULL && f->texts == NULL && key->kind == FILE_WRITTEN_LATER &&
        !writable_later(f, value, path, resolved)) {
        free(resolved);
        return;
    }
    *CFG_FIELD(target, key, char *) = resolved;
}

static unsigned online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > OR_CFG_MAX_WORKERS ? OR_CFG_MAX_WORKERS : (unsigned)n;
}

static OR_CFG_HANDLER(on_workers)
{
    char quoted[OR_CFG_QUOTE_MAX];
    or_config *cfg = ((or_cfg_loader *)target)->cfg;
    uint64_t n;
    const char *text = or_cfg_string(f, value, path);
    if (text == NULL)
        return;
    if (strcmp(text, "auto") == 0)
        return; /* the default */
    if (!or_cfg_decimal(text, &n) || n < 1 || n > OR_CFG_MAX_WORKERS) {
        or_cfg_error(f, value, "%s: expected \"auto\" or a number from 1 to %d, got %s", path,
                     OR_CFG_MAX_WORKERS, or_cfg_quote(text, quoted));
        return;
    }
    cfg->workers = (unsigned)n;
    cfg->workers_auto = false;
}

static OR_CFG_HANDLER(on_bool)
{
    or_cfg_bool(f, value, path, CFG_FIELD(target, key, bool));
}

/* The enumerations keys take (key->kind): the names of their values, in
 * order from `first`. */
enum { ENUM_PROTOCOL, ENUM_MTLS, ENUM_UPSTREAM_PROTOCOL, ENUM_FORMAT, ENUM_SLASHES, ENUM_SECCOMP };
static const struct {
    const char *names[3];
    size_t count;
    int first;
} enums[] = {
    [ENUM_PROTOCOL] = {{"tcp", "http"}, 2, OR_PROTO_TCP},
    [ENUM_MTLS] = {{"strict", "permissive", "disable"}, 3, OR_MTLS_STRICT},
    [ENUM_UPSTREAM_PROTOCOL] = {{"auto", "http1", "http2"}, 3, OR_UPSTREAM_AUTO},
    [ENUM_FORMAT] = {{"text", "json"}, 2, OR_ACCESS_LOG_TEXT},
    [ENUM_SLASHES] = {{"reject", "decode"}, 2, OR_SLASHES_REJECT},
    [ENUM_SECCOMP] = {{"enforce", "log"}, 2, OR_SECCOMP_ENFORCE},
};

/* Stores the value named into the enum field at key->offset in `base`. */
static void store_enum(or_cfg_file *f, const or_cfg_key *key, void *base, yaml_node_t *value,
                       const char *path)
{
    int i = or_cfg_enum(f, value, path, enums[key->kind].names, enums[key->kind].count);
    if (i >= 0)
        *OR_CFG_FIELD(base, key, int) = enums[key->kind].first + i;
}

static OR_CFG_HANDLER(on_enum) { store_enum(f, key, ((or_cfg_loader *)target)->cfg, value, path); }

static OR_CFG_HANDLER(on_duration)
{
    char quoted[OR_CFG_QUOTE_MAX];
    const char *why, *text = or_cfg_string(f, value, path);
    if (text != NULL && or_parse_duration_ms(text, CFG_FIELD(target, key, uint64_t), &why) != 0)
        or_cfg_error(f, value, "%s: invalid duration %s: %s", path, or_cfg_quote(text, quoted),
                     why);
}

static OR_CFG_HANDLER(on_max_connections)
{
    or_cfg_uint(f, value, path, 1, UINT32_MAX, CFG_FIELD(target, key, uint64_t));
}

static OR_CFG_HANDLER(on_header_size)
{
    char quoted[OR_CFG_QUOTE_MAX];
    uint64_t bytes;
    const char *why, *text = or_cfg_string(f, value, path);
    if (text == NULL)
        return;
    if (or_parse_size(text, &bytes, &why) != 0)
        or_cfg_error(f, value, "%s: invalid size %s: %s", path, or_cfg_quote(text, quoted), why);
    else if (bytes < 1024 || bytes > 1024 * 1024)
        or_cfg_error(f, value, "%s: must be from 1KiB to 1MiB, got %s", path,
                     or_cfg_quote(text, quoted));
    else
        *CFG_FIELD(target, key, uint64_t) = bytes;
}

/* ---- addresses ---- */

static bool addresses_conflict(const or_hostport *a, const or_hostport *b)
{
    static const uint8_t zero[16];
    if (!a->is_ip || !b->is_ip || a->port != b->port || a->addr.ss_family != b->addr.ss_family)
        return false;
    const void *pa, *pb;
    size_t len;
    if (a->addr.ss_family == AF_INET) {
        pa = &((const struct sockaddr_in *)&a->addr)->sin_addr;
        pb = &((const struct sockaddr_in *)&b->addr)->sin_addr;
        len = 4;
    } else {
        pa = &((const struct sockaddr_in6 *)&a->addr)->sin6_addr;
        pb = &((const struct sockaddr_in6 *)&b->addr)->sin6_addr;
        len = 16;
    }
    /* A wildcard bind takes the port on every address of its family. */
    return memcmp(pa, pb, len) == 0 || memcmp(pa, zero, len) == 0 || memcmp(pb, zero, len) == 0;
}

/* An address to bind: host:port with a literal IP. */
static bool parse_bind_address(or_cfg_file *f, const yaml_node_t *value, const char *path,
                               or_hostport *out)
{
    char quoted[OR_CFG_QUOTE_MAX];
    const char *why, *text = or_cfg_string(f, value, path);
    if (text == NULL)
        return false;
    if (or_parse_hostport(text, out, &why) != 0) {
        or_cfg_error(f, value, "%s: invalid address %s: %s", path, or_cfg_quote(text, quoted),
                     why);
        return false;
    }
    if (!out->is_ip) {
        or_cfg_error(f, value, "%s: expected a literal IP address and port, got %s", path,
                     or_cfg_quote(text, quoted));
        memset(out, 0, sizeof(*out));
        return false;
    }
    return true;
}

/* Reports when addr is already taken by one of the first n listeners. */
static void check_address_free(or_cfg_file *f, const yaml_node_t *value, const char *path,
                               const or_hostport *addr, const or_config *cfg, size_t n)
{
    char text[INET6_ADDRSTRLEN + 8];
    for (size_t i = 0; i < n; i++) {
        if (addresses_conflict(addr, &cfg->listeners[i].listen)) {
            or_cfg_error(f, value, "%s: address %s is already used by listeners[%zu] (line %lu)",
                         path, or_addr_format((const struct sockaddr *)&addr->addr, text,
                                              sizeof(text)),
                         i, cfg->listeners[i].pos.line);
            return;
        }
    }
}

static OR_CFG_HANDLER(on_admin_listen)
{
    or_cfg_loader *loader = target;
    if (parse_bind_address(f, value, path, &loader->cfg->admin.listen))
        loader->admin_listen = value;
}

static const or_cfg_key admin_keys[] = {
    {"listen", true, on_admin_listen, 0, 0},
    {"allow_non_loopback", false, on_bool, offsetof(or_config, admin.allow_non_loopback), 0},
};

static OR_CFG_HANDLER(on_admin)
{
    char addr[INET6_ADDRSTRLEN + 8];
    or_cfg_loader *loader = target;
    or_config *cfg = loader->cfg;
    if (or_cfg_walk(f, value, path, admin_keys, OR_CFG_COUNT(admin_keys), target) < 0)
        return;
    cfg->admin.enabled = true;
    if (loader->admin_listen != NULL && !cfg->admin.allow_non_loopback &&
        !or_addr_is_loopback(&cfg->admin.listen.addr))
        or_cfg_error(f, loader->admin_listen,
                     "%s.listen: %s is not a loopback address; the admin API must stay on "
                     "127.0.0.1 or [::1] unless admin.allow_non_loopback is true",
                     path,
                     or_addr_format((const struct sockaddr *)&cfg->admin.listen.addr, addr,
                                    sizeof(addr)));
}

/* ---- listeners ---- */

static OR_CFG_HANDLER(on_listener_name)
{
    char quoted[OR_CFG_QUOTE_MAX];
    or_listener_ctx *ctx = target;
    const char *text = or_cfg_name(f, value, path);
    if (text == NULL)
        return;
    for (size_t i = 0; i < ctx->index; i++) {
        const or_listener_config *other = &ctx->loader->cfg->listeners[i];
        if (other->name != NULL && strcmp(other->name, text) == 0) {
            or_cfg_error(f, value,
                         "%s: duplicate listener name %s (also listeners[%zu] at line %lu)", path,
                         or_cfg_quote(text, quoted), i, other->pos.line);
            return;
        }
    }
    ctx->listener->name = or_cfg_strdup(f, value, text);
}

static OR_CFG_HANDLER(on_listener_mode)
{
    static const char *const modes[] = {"inbound", "outbound"};
    or_listener_ctx *ctx = target;
    ctx->mode = or_cfg_enum(f, value, path, modes, OR_CFG_COUNT(modes));
    if (ctx->mode >= 0)
        ctx->listener->mode = ctx->mode == 0 ? OR_MODE_INBOUND : OR_MODE_OUTBOUND;
}

static OR_CFG_HANDLER(on_listener_listen)
{
    or_listener_ctx *ctx = target;
    if (parse_bind_address(f, value, path, &ctx->listener->listen))
        check_address_free(f, value, path, &ctx->listener->listen, ctx->loader->cfg, ctx->index);
}

static OR_CFG_HANDLER(on_listener_upstream)
{
    char quoted[OR_CFG_QUOTE_MAX];
    or_listener_ctx *ctx = target;
    const char *why, *text = or_cfg_string(f, value, path);
    or_listener_config *l = ctx->listener;
    if (text == NULL)
        return;
    if (or_parse_hostport(text, &l->upstream, &why) != 0) {
        or_cfg_error(f, value, "%s: invalid address %s: %s", path, or_cfg_quote(text, quoted),
                     why);
        return;
    }
    snprintf(l->upstream_text, sizeof l->upstream_text,
             l->upstream.is_ip && strchr(l->upstream.host, ':') ? "[%s]:%u" : "%s:%u",
             l->upstream.host, l->upstream.port);
}

static OR_CFG_HANDLER(on_listener_peer)
{
    char quoted[OR_CFG_QUOTE_MAX];
    or_listener_ctx *ctx = target;
    const char *why, *expected = ctx->loader->trust_domain;
    or_spiffe_id id;
    const char *text = or_cfg_string(f, value, path);
    if (text == NULL)
        return;
    if (or_cfg_spiffe_id_check(text, &id, &why) != 0) {
        or_cfg_error(f, value, "%s: invalid SPIFFE ID %s: %s", path, or_cfg_quote(text, quoted),
                     why);
        return;
    }
    if (expected != NULL && (strlen(expected) != id.trust_domain_len ||
                             memcmp(expected, id.trust_domain, id.trust_domain_len) != 0)) {
        or_cfg_error(f, value,
                     "%s: trust domain \"%.*s\" is not the configured trust_domain \"%s\"", path,
                     (int)id.trust_domain_len, id.trust_domain, expected);
        return;
    }
    ctx->listener->peer_identity = or_cfg_strdup(f, value, text);
}

static OR_CFG_HANDLER(on_listener_enum)
{
    store_enum(f, key, ((or_listener_ctx *)target)->listener, value, path);
}

static OR_CFG_HANDLER(on_listener_bool)
{
    or_cfg_bool(f, value, path, OR_CFG_FIELD(((or_listener_ctx *)target)->listener, key, bool));
}

static const or_cfg_key listener_keys[] = {
    {"name", true, on_listener_name, 0, 0},
    {"mode", true, on_listener_mode, 0, 0},
    {"protocol", true, on_listener_enum, offsetof(or_listener_config, protocol), ENUM_PROTOCOL},
    {"listen", true, on_listener_listen, 0, 0},
    {"upstream", true, on_listener_upstream, 0, 0},
    {"peer_identity", false, on_listener_peer, 0, 0},
    {"mtls", false, on_listener_enum, offsetof(or_listener_config, mtls), ENUM_MTLS},
    {"http2", false, on_listener_bool, offsetof(or_listener_config, http2), 0},
    {"upstream_protocol", false, on_listener_enum, offsetof(or_listener_config, upstream_protocol),
     ENUM_UPSTREAM_PROTOCOL},
    {"multiplex", false, on_listener_bool, offsetof(or_listener_config, multiplex), 0},
};

static void load_listener(or_cfg_file *f, or_cfg_loader *loader, size_t index,
                          yaml_node_t *node, const char *path)
{
    or_listener_ctx ctx = {loader, &loader->cfg->listeners[index], index, -1};
    ctx.listener->pos = or_cfg_pos(f, node);
    ctx.listener->multiplex = true;
    if (or_cfg_walk(f, node, path, listener_keys, OR_CFG_COUNT(listener_keys), &ctx) < 0)
        return;
    const yaml_node_t *peer = or_cfg_lookup(f, node, "peer_identity");
    const yaml_node_t *mtls = or_cfg_lookup(f, node, "mtls");
    const yaml_node_t *upstream_protocol = or_cfg_lookup(f, node, "upstream_protocol");
    if (ctx.mode == 1 && peer == NULL)
        or_cfg_error(f, node, "%s: an outbound listener needs peer_identity, the SPIFFE ID the "
                              "upstream must present", path);
    if (ctx.mode == 0 && peer != NULL)
        or_cfg_error(f, peer, "%s.peer_identity: only outbound listeners take a "
                              "peer_identity (inbound peers are checked by rbac)", path);
    if (ctx.mode == 1 && mtls != NULL)
        or_cfg_error(f, mtls, "%s.mtls: only inbound listeners take mtls (an outbound "
                              "listener always originates mTLS)", path);
    if (ctx.listener->http2 && ctx.listener->protocol != OR_PROTO_HTTP)
        or_cfg_error(f, or_cfg_lookup(f, node, "http2"),
                     "%s.http2: only protocol http listeners take http2", path);
    const yaml_node_t *multiplex = or_cfg_lookup(f, node, "multiplex");
    if (multiplex != NULL && ctx.listener->protocol != OR_PROTO_HTTP)
        or_cfg_error(f, multiplex, "%s.multiplex: only protocol http listeners take multiplex "
                                   "(remove it, or set protocol: http)", path);
    if (ctx.listener->protocol != OR_PROTO_HTTP)
        ctx.listener->multiplex = false;
    if (upstream_protocol != NULL && ctx.listener->protocol != OR_PROTO_HTTP)
        or_cfg_error(f, upstream_protocol,
                     "%s.upstream_protocol: only protocol http listeners take upstream_protocol "
                     "(remove it, or set protocol: http)", path);
}

static OR_CFG_HANDLER(on_listeners)
{
    char item_path[OR_CFG_PATH_MAX];
    or_cfg_loader *loader = target;
    if (!or_cfg_expect_list(f, value, path))
        return;
    size_t n = or_cfg_length(value);
    loader->cfg->listeners = calloc(n, sizeof(or_listener_config));
    if (loader->cfg->listeners == NULL) {
        or_cfg_error(f, value, "out of memory");
        return;
    }
    loader->cfg->nlisteners = n;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = or_cfg_item(f, value, i);
        if (item == NULL)
            return;
        or_cfg_index_path(item_path, path, i);
        load_listener(f, loader, i, item, item_path);
    }
}

/* ---- the other sections ---- */

static const or_cfg_key access_log_keys[] = {
    {"path", true, on_file, offsetof(or_config, access_log.path), FILE_WRITTEN_LATER},
    {"format", false, on_enum, offsetof(or_config, access_log.format), ENUM_FORMAT},
};

static OR_CFG_HANDLER(on_rbac_default)
{
    static const char *const decisions[] = {"deny", "allow"};
    int i = or_cfg_enum(f, value, path, decisions, OR_CFG_COUNT(decisions));
    if (i >= 0) {
        ((or_cfg_loader *)target)->cfg->rbac.default_allow = i == 1;
        ((or_cfg_loader *)target)->cfg->rbac.default_written = true;
    }
}

static OR_CFG_HANDLER(on_namespace)
{
    char **slot = CFG_FIELD(target, key, char *);
    const char *text = or_cfg_namespace(f, value, path);
    if (text == NULL)
        return;
    free(*slot);
    *slot = or_cfg_strdup(f, value, text);
    if (key->kind == 1)
        ((or_cfg_loader *)target)->cfg->namespace_written = true;
}

static OR_CFG_HANDLER(on_labels)
{
    or_cfg_labels(f, value, path, &((or_cfg_loader *)target)->cfg->labels);
}

static OR_CFG_HANDLER(on_rbac_policies)
{
    or_cfg_load_policies(f, value, path, ((or_cfg_loader *)target)->cfg);
}

static OR_CFG_HANDLER(on_sandbox)
{
    or_config *cfg = ((or_cfg_loader *)target)->cfg;
    if (or_cfg_bool(f, value, path, &cfg->security.settings.enabled) &&
        !cfg->security.settings.enabled)
        or_cfg_warning(f, value, "%s: false: the proxy keeps the user and capabilities it "
                       "started with and has no system-call filter; remove it to confine the "
                       "proxy after start-up", path);
}

static OR_CFG_HANDLER(on_run_as)
{
    or_config *cfg = ((or_cfg_loader *)target)->cfg;
    const char *text = or_cfg_string(f, value, path);
    uid_t uid;
    gid_t gid;
    char why[256];
    if (text == NULL)
        return;
    if (or_sandbox_parse_run_as(text, &uid, &gid, why, sizeof why) != 0) {
        or_cfg_error(f, value, "%s: %s", path, why);
        return;
    }
    free(cfg->security.run_as);
    cfg->security.run_as = or_cfg_strdup(f, value, text);
    cfg->security.settings.run_as = cfg->security.run_as;
}

static OR_CFG_HANDLER(on_allow_root)
{
    or_config *cfg = ((or_cfg_loader *)target)->cfg;
    if (or_cfg_bool(f, value, path, &cfg->security.settings.allow_root) &&
        cfg->security.settings.allow_root)
        or_cfg_warning(f, value, "%s: true: if the proxy starts as root it stays root after "
                       "start-up (without capabilities); set run_as to an unprivileged user "
                       "instead", path);
}

static const or_cfg_key security_keys[] = {
    {"sandbox", false, on_sandbox, 0, 0},
    {"run_as", false, on_run_as, 0, 0},
    {"allow_root", false, on_allow_root, 0, 0},
    {"seccomp", false, on_enum, offsetof(or_config, security.settings.seccomp), ENUM_SECCOMP},
};

static const or_cfg_key http_keys[] = {
    {"escaped_slashes", false, on_enum, offsetof(or_config, http.escaped_slashes), ENUM_SLASHES},
};

static const or_cfg_key rbac_keys[] = {
    {"default", false, on_rbac_default, 0, 0},
    {"root_namespace", false, on_namespace, offsetof(or_config, rbac.root_namespace), 0},
    {"policies", false, on_rbac_policies, 0, 0},
};

static const or_cfg_key identity_keys[] = {
    {"cert", true, on_file, offsetof(or_config, identity.cert), FILE_READ_NOW},
    {"key", true, on_file, offsetof(or_config, identity.key), FILE_READ_NOW},
    {"bundle", true, on_file, offsetof(or_config, identity.bundle), FILE_READ_NOW},
};

static const or_cfg_key timeout_keys[] = {
    {"connect", false, on_duration, offsetof(or_config, timeouts.connect_ms), 0},
    {"handshake", false, on_duration, offsetof(or_config, timeouts.handshake_ms), 0},
    {"idle", false, on_duration, offsetof(or_config, timeouts.idle_ms), 0},
    {"request_headers", false, on_duration, offsetof(or_config, timeouts.request_headers_ms), 0},
    {"drain", false, on_duration, offsetof(or_config, timeouts.drain_ms), 0},
    {"detect", false, on_duration, offsetof(or_config, timeouts.detect_ms), 0},
    {"keepalive", false, on_duration, offsetof(or_config, timeouts.keepalive_ms), 0},
};

static const or_cfg_key limit_keys[] = {
    {"max_connections", false, on_max_connections, offsetof(or_config, limits.max_connections), 0},
    {"max_request_headers", false, on_header_size,
     offsetof(or_config, limits.max_request_headers), 0},
};

/* Handlers for sections that are a mapping of keys from one table. With
 * kind 1, the section's `enabled` (at key->offset) is set once it is read. */
static OR_CFG_HANDLER(on_section)
{
    static const struct {
        const char *name;
        const or_cfg_key *keys;
        size_t nkeys;
    } sections[] = {
        {"identity", identity_keys, OR_CFG_COUNT(identity_keys)},
        {"timeouts", timeout_keys, OR_CFG_COUNT(timeout_keys)},
        {"limits", limit_keys, OR_CFG_COUNT(limit_keys)},
        {"http", http_keys, OR_CFG_COUNT(http_keys)},
        {"security", security_keys, OR_CFG_COUNT(security_keys)},
        {"access_log", access_log_keys, OR_CFG_COUNT(access_log_keys)},
        {"rbac", rbac_keys, OR_CFG_COUNT(rbac_keys)},
    };
    for (size_t i = 0; i < OR_CFG_COUNT(sections); i++)
        if (strcmp(sections[i].name, key->name) == 0 &&
            or_cfg_walk(f, value, path, sections[i].keys, sections[i].nkeys, target) >= 0 &&
            key->kind == 1)
            *CFG_FIELD(target, key, bool) = true;
}

static const or_cfg_key top_keys[] = {
    {"service", true, on_name, offsetof(or_config, service), 0},
    {"trust_domain", true, on_trust_domain, offsetof(or_config, trust_domain), 0},
    {"namespace", false, on_namespace, offsetof(or_config, namespace), 1},
    {"labels", false, on_labels, 0, 0},
    {"identity", true, on_section, 0, 0},
    {"workers", false, on_workers, 0, 0},
    {"admin", false, on_admin, 0, 0},
    {"listeners", true, on_listeners, 0, 0},
    {"access_log", false, on_section, offsetof(or_config, access_log.enabled), 1},
    {"rbac", false, on_section, offsetof(or_config, rbac.enabled), 1},
    {"timeouts", false, on_section, 0, 0},
    {"limits", false, on_section, 0, 0},
    {"http", false, on_section, 0, 0},
    {"security", false, on_section, 0, 0},
};

/* ---- loading ---- */

static void set_defaults(or_config *cfg)
{
    cfg->workers_auto = true;
    cfg->workers = online_cpus();
    cfg->access_log.format = OR_ACCESS_LOG_TEXT;
    cfg->rbac.default_allow = false;
    cfg->timeouts.connect_ms = 5 * 1000;
    cfg->timeouts.handshake_ms = 10 * 1000;
    cfg->timeouts.idle_ms = 5 * 60 * 1000;
    cfg->timeouts.request_headers_ms = 10 * 1000;
    cfg->timeouts.drain_ms = 30 * 1000;
    cfg->timeouts.detect_ms = 1000;
    cfg->timeouts.keepalive_ms = 10 * 1000;
    cfg->limits.max_connections = 10000;
    cfg->limits.max_request_headers = 64 * 1024;
    or_sandbox_defaults(&cfg->security.settings);
}

/* The trust domain, read ahead of the walk when it is valid. */
static const char *peek_trust_domain(or_cfg_file *f, const yaml_node_t *root)
{
    const char *why;
    yaml_node_t *node = or_cfg_lookup(f, root, "trust_domain");
    if (node == NULL || node->type != YAML_SCALAR_NODE)
        return NULL;
    const char *text = (const char *)node->data.scalar.value;
    return or_cfg_trust_domain_check(text, strlen(text), &why) == 0 ? text : NULL;
}

static void load_root(or_cfg_file *f, yaml_node_t *root, or_config *cfg)
{
    or_cfg_loader loader = {cfg, NULL, NULL};
    if (root == NULL) {
        or_diag_add(f->diag, OR_DIAG_ERROR, f->file, 0, 0,
                    "the file is empty; expected service, trust_domain, identity and listeners");
        return;
    }
    loader.trust_domain = peek_trust_domain(f, root);
    int known = or_cfg_walk(f, root, "", top_keys, OR_CFG_COUNT(top_keys), &loader);
    if (known >= 0 && loader.admin_listen != NULL)
        check_address_free(f, loader.admin_listen, "admin.listen", &cfg->admin.listen, cfg,
                           cfg->nlisteners);
    if (known >= 0)
        or_cfg_resolve_workload(f, cfg);
}

or_config *or_config_load(const char *path, or_diag *diag)
{
    return or_config_load_texts(path, NULL, diag);
}

or_config *or_config_load_texts(const char *path, const or_config_texts *texts, or_diag *diag)
{
    size_t errors_before = diag->errors;
    const char *file;
    or_cfg_file f;
    yaml_node_t *root;

    or_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || (cfg->path = strdup(path)) == NULL || or_cfg_add_file(cfg, path, &file) ||
        (cfg->rbac.root_namespace = strdup("istio-system")) == NULL) {
        or_diag_add(diag, OR_DIAG_ERROR, path, 0, 0, "out of memory");
        or_config_free(cfg);
        return NULL;
    }
    set_defaults(cfg);
    int rc = or_cfg_open_in(&f, diag, file, texts, &root);
    if (rc == 0)
        load_root(&f, root, cfg);
    else if (rc == OR_CFG_UNREADABLE)
        or_diag_add(diag, OR_DIAG_ERROR, file, 0, 0, "cannot read the file: %s", f.why);
    or_cfg_close(&f);
    if (diag->errors > errors_before) {
        or_config_free(cfg);
        return NULL;
    }
    return cfg;
}

void or_config_free(or_config *cfg)
{
    if (cfg == NULL)
        return;
    or_cfg_free_policies(cfg);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].peer_identity);
    }
    free(cfg->listeners);
    free(cfg->access_log.path);
    free(cfg->rbac.policies_file);
    free(cfg->identity.cert);
    free(cfg->identity.key);
    free(cfg->identity.bundle);
    free(cfg->service);
    free(cfg->trust_domain);
    free(cfg->namespace);
    or_cfg_free_labels(&cfg->labels);
    free(cfg->rbac.root_namespace);
    free(cfg->security.run_as);
    for (size_t i = 0; i < cfg->nfiles; i++)
        free(cfg->files[i]);
    free(cfg->files);
    free(cfg->path);
    free(cfg);
}
