/*
 * sandbox: how outrider, outrider-ca and outrider-agent confine themselves
 * once start-up is done (config read, keys loaded, sockets bound).
 *
 * Contract: or_sandbox_confine is called once, on the main thread, after
 * everything that needs privileges and before the program serves. It sets
 * no_new_privs; when the process runs as root and allow_root is not set it
 * switches to run_as (supplementary groups cleared, then gid, then uid: glibc
 * applies setuid to every thread); it clears every capability (effective,
 * permitted, inheritable, ambient and, when it may, the bounding set); it
 * applies the Landlock rules (when given and the kernel has Landlock: to the
 * calling thread and what it starts later, so call it before starting
 * threads); then it installs the seccomp allowlist. If anything fails, or the process would
 * still be root without allow_root, it returns -1 and logs a message saying
 * what to change, and the program must not start. With `enabled` false nothing
 * is applied and the report says so.
 *
 * The report describes what applied, as one log line (logged at start-up),
 * as JSON (or_sandbox_json) and as Prometheus labels (or_sandbox_metric).
 */
#ifndef OUTRIDER_SANDBOX_H
#define OUTRIDER_SANDBOX_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "outrider/buf.h"

#define OR_SANDBOX_DEFAULT_RUN_AS "65532:65532"

typedef enum { OR_SECCOMP_ENFORCE, OR_SECCOMP_LOG } or_seccomp_mode;

typedef struct {
    bool enabled;             /* false: nothing is applied */
    const char *run_as;       /* "uid:gid" or a user name; NULL = the default */
    bool allow_root;          /* stay uid 0 (capabilities are still dropped) */
    or_seccomp_mode seccomp;  /* enforce: refused calls fail with EPERM; log: logged */
} or_sandbox_settings;

/* What the program may touch after start-up (Landlock, best effort by the
 * kernel's ABI): files and directories it reads, directories it writes,
 * TCP ports it binds and connects to. Paths that do not exist are skipped.
 * Fill it with the or_sandbox_rules_* helpers; or_sandbox_confine adds the
 * system paths every program needs (name service files and modules,
 * /proc/self, /dev/null, /dev/urandom, the CPU list). */
#define OR_SANDBOX_MAX_PATHS 64
#define OR_SANDBOX_MAX_PORTS 160
#define OR_SANDBOX_MAX_DIRS 12
typedef struct {
    const char *read[OR_SANDBOX_MAX_PATHS];
    size_t nread;
    const char *write[OR_SANDBOX_MAX_PATHS];
    size_t nwrite;
    uint16_t bind[OR_SANDBOX_MAX_PORTS];
    size_t nbind;
    uint16_t connect[OR_SANDBOX_MAX_PORTS];
    size_t nconnect;
    char dirs[OR_SANDBOX_MAX_DIRS][PATH_MAX]; /* storage for derived directories */
    size_t ndirs;
    bool full;                /* a table overflowed: nothing is applied */
} or_sandbox_rules;

void or_sandbox_rules_read(or_sandbox_rules *r, const char *path);
void or_sandbox_rules_write(or_sandbox_rules *r, const char *path);
/* The directory of `file` (read or written beneath it). */
void or_sandbox_rules_read_dir_of(or_sandbox_rules *r, const char *file);
void or_sandbox_rules_write_dir_of(or_sandbox_rules *r, const char *file);
/* The nearest existing directory at or above `dir` (for a directory that a
 * program creates later). */
void or_sandbox_rules_write_nearest(or_sandbox_rules *r, const char *dir);
void or_sandbox_rules_bind(or_sandbox_rules *r, uint16_t port);
void or_sandbox_rules_connect(or_sandbox_rules *r, uint16_t port);

typedef struct {
    bool enabled;
    uid_t uid;
    gid_t gid;
    bool no_new_privs;
    bool capabilities_cleared;
    bool bounding_cleared;    /* false when started without CAP_SETPCAP */
    bool seccomp_applied;
    or_seccomp_mode seccomp;
    unsigned seccomp_calls;
    int landlock_abi;         /* 0: the kernel has no Landlock */
    bool landlock_applied;
    bool landlock_net;        /* ports too (ABI 4 and later) */
    size_t landlock_paths, landlock_ports;
} or_sandbox_report;

void or_sandbox_defaults(or_sandbox_settings *s);

/* Parses run_as: "uid:gid" (decimal) or a user name from the user database.
 * Returns 0, or -1 with `why` saying what is wrong. */
int or_sandbox_parse_run_as(const char *text, uid_t *uid, gid_t *gid, char *why, size_t why_len);

void or_sandbox_json(const or_sandbox_report *r, or_buf *out);
void or_sandbox_metric(const or_sandbox_report *r, or_buf *out);

/* Applies the settings and rules, then logs the start-up line (or the
 * error). */
int or_sandbox_confine(const or_sandbox_settings *s, const or_sandbox_rules *rules,
                       or_sandbox_report *r);

/* The command-line form (outrider-ca serve, outrider-agent): --run-as
 * USER|UID:GID, --no-sandbox, --allow-root, --seccomp enforce|log. Use
 * OR_SANDBOX_LONG_OPTIONS in a getopt_long table and pass the returned
 * code here; returns -1 with a message for a bad value. */
enum {
    OR_SANDBOX_OPT_RUN_AS = 0x1000,
    OR_SANDBOX_OPT_NO_SANDBOX,
    OR_SANDBOX_OPT_ALLOW_ROOT,
    OR_SANDBOX_OPT_SECCOMP,
};
#define OR_SANDBOX_LONG_OPTIONS                                          \
    {"run-as", required_argument, NULL, OR_SANDBOX_OPT_RUN_AS},          \
    {"no-sandbox", no_argument, NULL, OR_SANDBOX_OPT_NO_SANDBOX},        \
    {"allow-root", no_argument, NULL, OR_SANDBOX_OPT_ALLOW_ROOT},        \
    {"seccomp", required_argument, NULL, OR_SANDBOX_OPT_SECCOMP}
#define OR_SANDBOX_USAGE "[--run-as USER|UID:GID] [--no-sandbox] [--allow-root] [--seccomp enforce|log]"
int or_sandbox_option(or_sandbox_settings *s, int opt, const char *arg, char *err,
                      size_t err_len);

#endif
