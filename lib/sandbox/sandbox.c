/*
 * sandbox: identity, capabilities and system calls after start-up.
 *
 * The order matters. no_new_privs first (nothing exec'd later may gain
 * privileges). Then, while the process still holds CAP_SETPCAP, every
 * capability is dropped from the bounding set and the ambient set is
 * cleared. Then the user switch: setgroups(0) and setgid before setuid,
 * since a process that is no longer root may not change its groups. glibc
 * runs setuid/setgid on every thread of the process, so a thread started
 * earlier does not stay root. The kernel clears the permitted and
 * effective sets when the uid leaves 0; capset clears them anyway, which
 * also covers a process that started as a non-root user with file or
 * inherited capabilities. Then the Landlock rules (sandbox_landlock.c), for
 * the calling thread and what it starts later, and finally the seccomp
 * allowlist (sandbox_seccomp.c), for every thread.
 *
 * Capabilities are handled with raw prctl and capset calls, so no library
 * beyond libc is needed for them.
 */
#include "outrider/sandbox.h"

#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "outrider/log.h"
#include "sandbox_landlock.h"
#include "sandbox_seccomp.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef LANDLOCK_CREATE_RULESET_VERSION
#define LANDLOCK_CREATE_RULESET_VERSION (1U << 0)
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#endif

void or_sandbox_defaults(or_sandbox_settings *s)
{
    s->enabled = true;
    s->run_as = NULL;
    s->allow_root = false;
    s->seccomp = OR_SECCOMP_ENFORCE;
}

/* ---- parsing ---- */

static bool parse_id(const char *text, size_t len, unsigned long *out)
{
    if (len == 0 || len > 10)
        return false;
    unsigned long v = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return false;
        v = v * 10 + (unsigned long)(text[i] - '0');
    }
    if (v >= 4294967295UL)
        return false;
    *out = v;
    return true;
}

int or_sandbox_parse_run_as(const char *text, uid_t *uid, gid_t *gid, char *why, size_t why_len)
{
    const char *colon = strchr(text, ':');
    if (colon) {
        unsigned long u, g;
        if (!parse_id(text, (size_t)(colon - text), &u) || !parse_id(colon + 1, strlen(colon + 1), &g)) {
            snprintf(why, why_len, "expected \"UID:GID\" with decimal numbers (like \"%s\") or a "
                     "user name, got \"%s\"", OR_SANDBOX_DEFAULT_RUN_AS, text);
            return -1;
        }
        *uid = (uid_t)u;
        *gid = (gid_t)g;
        return 0;
    }
    struct passwd pw, *found = NULL;
    char buf[4096];
    if (text[0] == '\0' || getpwnam_r(text, &pw, buf, sizeof buf, &found) != 0 || !found) {
        snprintf(why, why_len, "no user named \"%s\" on this system; name a user from the user "
                 "database or give \"UID:GID\" (like \"%s\")", text, OR_SANDBOX_DEFAULT_RUN_AS);
        return -1;
    }
    *uid = found->pw_uid;
    *gid = found->pw_gid;
    return 0;
}

/* --seccomp: "enforce" or "log". */
static int parse_seccomp(const char *text, or_seccomp_mode *mode)
{
    if (strcmp(text, "enforce") == 0)
        *mode = OR_SECCOMP_ENFORCE;
    else if (strcmp(text, "log") == 0)
        *mode = OR_SECCOMP_LOG;
    else
        return -1;
    return 0;
}

/* ---- Landlock rules ---- */

/* What every program reads after start-up: the name service (resolving
 * upstream and CA names), its modules, its own /proc entries (the runtime
 * and sanitizers read them), the CPU list, and the two devices. */
static const char *const system_read[] = {
    "/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/host.conf", "/etc/gai.conf",
    "/etc/services", "/etc/localtime", "/usr/lib", "/lib", "/lib64", "/proc/self",
    "/sys/devices/system/cpu", "/dev/urandom",
};
static const char *const system_write[] = {"/dev/null"};

static void add_path(or_sandbox_rules *r, const char **table, size_t *n, const char *path)
{
    if (!path)
        return;
    if (*n >= OR_SANDBOX_MAX_PATHS) {
        r->full = true;
        return;
    }
    table[(*n)++] = path;
}

void or_sandbox_rules_read(or_sandbox_rules *r, const char *path)
{
    add_path(r, r->read, &r->nread, path);
}

void or_sandbox_rules_write(or_sandbox_rules *r, const char *path)
{
    add_path(r, r->write, &r->nwrite, path);
}

static const char *store_dir(or_sandbox_rules *r, const char *file)
{
    if (!file || r->ndirs >= OR_SANDBOX_MAX_DIRS) {
        r->full = r->full || file;
        return NULL;
    }
    char *slot = r->dirs[r->ndirs++];
    snprintf(slot, PATH_MAX, "%s", file);
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", slot);
    snprintf(slot, PATH_MAX, "%s", dirname(copy));
    return slot;
}

void or_sandbox_rules_read_dir_of(or_sandbox_rules *r, const char *file)
{
    or_sandbox_rules_read(r, store_dir(r, file));
}

void or_sandbox_rules_write_dir_of(or_sandbox_rules *r, const char *file)
{
    or_sandbox_rules_write(r, store_dir(r, file));
}

void or_sandbox_rules_write_nearest(or_sandbox_rules *r, const char *dir)
{
    if (!dir || r->ndirs >= OR_SANDBOX_MAX_DIRS) {
        r->full = r->full || dir;
        return;
    }
    char *slot = r->dirs[r->ndirs++];
    snprintf(slot, PATH_MAX, "%s", dir);
    struct stat st;
    while (stat(slot, &st) != 0 && strcmp(slot, "/") != 0 && strcmp(slot, ".") != 0) {
        char copy[PATH_MAX];
        snprintf(copy, sizeof copy, "%s", slot);
        snprintf(slot, PATH_MAX, "%s", dirname(copy));
    }
    or_sandbox_rules_write(r, slot);
}

static void add_port(or_sandbox_rules *r, uint16_t *table, size_t *n, uint16_t port)
{
    for (size_t i = 0; i < *n; i++)
        if (table[i] == port)
            return;
    if (*n >= OR_SANDBOX_MAX_PORTS) {
        r->full = true;
        return;
    }
    table[(*n)++] = port;
}

void or_sandbox_rules_bind(or_sandbox_rules *r, uint16_t port)
{
    add_port(r, r->bind, &r->nbind, port);
}

void or_sandbox_rules_connect(or_sandbox_rules *r, uint16_t port)
{
    add_port(r, r->connect, &r->nconnect, port);
}

static int apply_landlock(const or_sandbox_rules *given, or_sandbox_report *r, char *err,
                          size_t err_len)
{
    if (!given || given->full || r->landlock_abi <= 0)
        return 0;
    or_sandbox_rules all = *given;
    for (size_t i = 0; i < sizeof system_read / sizeof system_read[0]; i++)
        or_sandbox_rules_read(&all, system_read[i]);
    for (size_t i = 0; i < sizeof system_write / sizeof system_write[0]; i++)
        or_sandbox_rules_write(&all, system_write[i]);
    if (all.full)
        return 0;
    if (or_sandbox_landlock(&all, r->landlock_abi, err, err_len) != 0)
        return -1;
    r->landlock_applied = true;
    r->landlock_net = r->landlock_abi >= 4;
    r->landlock_paths = all.nread + all.nwrite;
    r->landlock_ports = r->landlock_net ? all.nbind + all.nconnect : 0;
    return 0;
}

/* ---- capabilities and identity ---- */

static int landlock_abi(void)
{
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return abi > 0 ? (int)abi : 0;
}

/* Drops every capability from the bounding set; needs CAP_SETPCAP. */
static int drop_bounding_set(void)
{
    for (int cap = 0; cap < 64; cap++) {
        if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0)
            break; /* past the last capability this kernel knows */
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
            return -1;
    }
    return 0;
}

static int clear_capabilities(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    memset(data, 0, sizeof data);
    return (int)syscall(SYS_capset, &hdr, data);
}

static bool capabilities_empty(void)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2];
    if (syscall(SYS_capget, &hdr, data) != 0)
        return false;
    for (int i = 0; i < 2; i++)
        if (data[i].effective || data[i].permitted || data[i].inheritable)
            return false;
    return true;
}

static int switch_user(uid_t uid, gid_t gid, char *err, size_t err_len)
{
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0) {
        snprintf(err, err_len, "cannot switch to group %u: %s", (unsigned)gid, strerror(errno));
        return -1;
    }
    if (setresuid(uid, uid, uid) != 0) {
        snprintf(err, err_len, "cannot switch to user %u: %s", (unsigned)uid, strerror(errno));
        return -1;
    }
    return 0;
}

static int drop_privileges(const or_sandbox_settings *s, or_sandbox_report *r, char *err,
                           size_t err_len)
{
    uid_t uid;
    gid_t gid;
    char why[256];
    const char *run_as = s->run_as ? s->run_as : OR_SANDBOX_DEFAULT_RUN_AS;
    if (or_sandbox_parse_run_as(run_as, &uid, &gid, why, sizeof why) != 0) {
        snprintf(err, err_len, "run_as: %s", why);
        return -1;
    }
    bool root = geteuid() == 0;
    r->bounding_cleared = drop_bounding_set() == 0;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) {
        snprintf(err, err_len, "cannot clear the ambient capabilities: %s", strerror(errno));
        return -1;
    }
    if (root && !s->allow_root && switch_user(uid, gid, err, err_len) != 0)
        return -1;
    if (clear_capabilities() != 0 || !capabilities_empty()) {
        snprintf(err, err_len, "cannot clear the capabilities: %s", strerror(errno));
        return -1;
    }
    r->capabilities_cleared = true;
    uid_t ru, eu, su;
    if (getresuid(&ru, &eu, &su) != 0 || ((ru == 0 || eu == 0 || su == 0) && !s->allow_root)) {
        snprintf(err, err_len, "still running as root after start-up; set run_as to a user "
                 "other than root, or allow_root (not recommended)");
        return -1;
    }
    r->uid = geteuid();
    r->gid = getegid();
    return 0;
}

static int apply(const or_sandbox_settings *s, const or_sandbox_rules *rules,
                 or_sandbox_report *r, char *err, size_t err_len)
{
    memset(r, 0, sizeof *r);
    r->landlock_abi = landlock_abi();
    r->seccomp = s->seccomp;
    r->uid = geteuid();
    r->gid = getegid();
    r->no_new_privs = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1;
    if (!s->enabled)
        return 0;
    r->enabled = true;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(err, err_len, "cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
    r->no_new_privs = true;
    if (drop_privileges(s, r, err, err_len) != 0 || apply_landlock(rules, r, err, err_len) != 0)
        return -1;
    int calls = or_sandbox_seccomp_load(s->seccomp, err, err_len);
    if (calls < 0)
        return -1;
    r->seccomp_applied = calls > 0;
    r->seccomp_calls = (unsigned)calls;
    return 0;
}

/* ---- reporting ---- */

static const char *seccomp_mode_name(or_seccomp_mode m)
{
    return m == OR_SECCOMP_LOG ? "log" : "enforce";
}

/* "sandbox applied: run_as=65532:65532 capabilities=none ..." */
static void describe(const or_sandbox_report *r, char *out, size_t out_len)
{
    if (!r->enabled) {
        snprintf(out, out_len, "sandbox off (security.sandbox: false or --no-sandbox): "
                 "running as uid %u gid %u with the capabilities it started with",
                 (unsigned)r->uid, (unsigned)r->gid);
        return;
    }
    char seccomp[64];
    if (r->seccomp_applied)
        snprintf(seccomp, sizeof seccomp, "%s (%u calls allowed)", seccomp_mode_name(r->seccomp),
                 r->seccomp_calls);
    else
        snprintf(seccomp, sizeof seccomp, "off (not built with libseccomp)");
    char landlock[128];
    if (r->landlock_applied && r->landlock_net)
        snprintf(landlock, sizeof landlock, "ABI %d (%zu paths, %zu TCP ports)", r->landlock_abi,
                 r->landlock_paths, r->landlock_ports);
    else if (r->landlock_applied)
        snprintf(landlock, sizeof landlock, "ABI %d (%zu paths; ports need ABI 4)",
                 r->landlock_abi, r->landlock_paths);
    else if (r->landlock_abi > 0)
        snprintf(landlock, sizeof landlock, "off (kernel ABI %d; no rules for this program)",
                 r->landlock_abi);
    else
        snprintf(landlock, sizeof landlock, "off (the kernel has no Landlock)");
    snprintf(out, out_len,
             "sandbox applied: run_as=%u:%u capabilities=none%s no_new_privs=1 seccomp=%s "
             "landlock=%s",
             (unsigned)r->uid, (unsigned)r->gid,
             r->bounding_cleared ? "" : " (bounding set kept: started without CAP_SETPCAP)",
             seccomp, landlock);
}

void or_sandbox_json(const or_sandbox_report *r, or_buf *out)
{
    or_buf_printf(out,
                  "{\"enabled\":%s,\"uid\":%u,\"gid\":%u,\"capabilities\":\"%s\","
                  "\"bounding_set_cleared\":%s,\"no_new_privs\":%s,\"seccomp\":",
                  r->enabled ? "true" : "false", (unsigned)r->uid, (unsigned)r->gid,
                  r->capabilities_cleared ? "none" : "unchanged",
                  r->bounding_cleared ? "true" : "false", r->no_new_privs ? "true" : "false");
    if (r->seccomp_applied)
        or_buf_printf(out, "{\"mode\":\"%s\",\"calls\":%u}", seccomp_mode_name(r->seccomp),
                      r->seccomp_calls);
    else
        or_buf_printf(out, "null");
    or_buf_printf(out, ",\"landlock\":{\"abi\":%d,\"applied\":%s,\"paths\":%zu,\"ports\":%zu}}",
                  r->landlock_abi, r->landlock_applied ? "true" : "false", r->landlock_paths,
                  r->landlock_ports);
}

void or_sandbox_metric(const or_sandbox_report *r, or_buf *out)
{
    or_buf_printf(out,
                  "# HELP outrider_sandbox_info What confines the process since start-up.\n"
                  "# TYPE outrider_sandbox_info gauge\n"
                  "outrider_sandbox_info{enabled=\"%s\",uid=\"%u\",gid=\"%u\","
                  "capabilities=\"%s\",no_new_privs=\"%s\",seccomp=\"%s\",seccomp_calls=\"%u\","
                  "landlock_abi=\"%d\",landlock=\"%s\"} 1\n",
                  r->enabled ? "true" : "false", (unsigned)r->uid, (unsigned)r->gid,
                  r->capabilities_cleared ? "none" : "unchanged",
                  r->no_new_privs ? "true" : "false",
                  r->seccomp_applied ? seccomp_mode_name(r->seccomp) : "off", r->seccomp_calls,
                  r->landlock_abi,
                  !r->landlock_applied ? "off" : r->landlock_net ? "files,ports" : "files");
}

int or_sandbox_confine(const or_sandbox_settings *s, const or_sandbox_rules *rules,
                       or_sandbox_report *r)
{
    char err[320], line[512];
    if (apply(s, rules, r, err, sizeof err) != 0) {
        or_log_error("sandbox: %s; start-up stopped", err);
        return -1;
    }
    describe(r, line, sizeof line);
    if (r->enabled)
        or_log_info("%s", line);
    else
        or_log_warn("%s", line);
    return 0;
}

int or_sandbox_option(or_sandbox_settings *s, int opt, const char *arg, char *err, size_t err_len)
{
    uid_t uid;
    gid_t gid;
    char why[256];
    switch (opt) {
    case OR_SANDBOX_OPT_NO_SANDBOX: s->enabled = false; return 0;
    case OR_SANDBOX_OPT_ALLOW_ROOT: s->allow_root = true; return 0;
    case OR_SANDBOX_OPT_RUN_AS:
        if (or_sandbox_parse_run_as(arg, &uid, &gid, why, sizeof why) != 0) {
            snprintf(err, err_len, "--run-as: %s", why);
            return -1;
        }
        s->run_as = arg;
        return 0;
    case OR_SANDBOX_OPT_SECCOMP:
        if (parse_seccomp(arg, &s->seccomp) != 0) {
            snprintf(err, err_len, "--seccomp: expected enforce or log, got \"%s\"", arg);
            return -1;
        }
        return 0;
    default: return -1;
    }
}
