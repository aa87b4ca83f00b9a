/*
 * sandbox_seccomp: the system-call allowlist of outrider, outrider-ca and
 * outrider-agent, installed with libseccomp after start-up.
 *
 * Where the list comes from: strace -f of each program from launch (a
 * sidecar pair with HTTP and TCP traffic, /stats, /server_info, a reload,
 * an access-log reopen and an identity rewrite; outrider-ca serve; the
 * agent with --once and in its renewal loop), keeping the calls made after
 * the filter was loaded; and the whole test suite (ctest, the optimised and
 * the ASan+UBSan builds) run with a discovery build (-DOR_SECCOMP_DISCOVER:
 * the same table, but calls outside it are allowed and logged by the kernel,
 * "audit: type=1326 ... syscall=N" in dmesg), which added what the strace
 * runs had not reached. The three programs share one list: they stand on
 * the same libuv, mbedTLS and glibc, and one table keeps the reasoning in
 * one place. Calls made only before the filter (bind, setuid, capset,
 * seccomp, prctl, execve) are absent on purpose.
 *
 * Sanitizer builds need more at exit (LeakSanitizer); those calls are added
 * only when the build has AddressSanitizer (a compile-time check), never in
 * a normal build.
 *
 * A name this architecture does not have is skipped, so the table is
 * written once for every architecture.
 */
#include "sandbox_seccomp.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <seccomp.h>

#if defined(__SANITIZE_ADDRESS__)
#define OR_SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define OR_SANITIZER_BUILD 1
#endif
#endif
/* A discovery build (-DOR_SECCOMP_DISCOVER) logs instead of refusing and
 * leaves the sanitizer table out, so that everything beyond the main table
 * shows up in the kernel log. */
#ifdef OR_SECCOMP_DISCOVER
#undef OR_SANITIZER_BUILD
#endif

static const char *const allowed[] = {
    /* memory */
    "brk", "mmap", "munmap", "mprotect", "mremap", "madvise",
    /* files: identity and config re-reads, access log, agent and CA state */
    "openat", "read", "write", "writev", "close", "lseek", "newfstatat", "statx", "access",
    "fcntl", "ioctl", "fsync", "fchmod", "mkdir", "rmdir", "rename", "unlink", "symlink",
    "readlink", "getdents64", "pipe2",
    /* event loop and file watches */
    "epoll_create1", "epoll_ctl", "epoll_wait", "eventfd2", "poll",
    "inotify_init1", "inotify_add_watch", "inotify_rm_watch",
    /* network: workers listen on sockets bound before the sandbox */
    "listen", "accept4", "socket", "connect", "getsockopt", "setsockopt", "getpeername",
    "shutdown",
    /* threads, signals, process */
    "clone3", "futex", "set_robust_list", "rseq", "exit", "exit_group", "rt_sigaction",
    "rt_sigprocmask", "rt_sigreturn", "restart_syscall", "sched_yield", "getpid",
    "getrandom", "prlimit64", "uname",
    /* Not seen in the runs, allowed on purpose: glibc's DNS resolver (the
     * suite resolves names from /etc/hosts only) sends and receives its UDP
     * queries with these; abort() (a failed assertion) signals its own
     * thread. */
    "sendmmsg", "sendto", "recvfrom", "tgkill", "gettid",
};

#ifdef OR_SANITIZER_BUILD
/* LeakSanitizer at exit: a tracer task (clone, on its own sigaltstack)
 * ptraces every thread, after prctl makes the process dumpable and names
 * the tracer; it is reaped with wait4 and checks its parent (getppid).
 * Threads are listed with getdents and /proc files read with open; the
 * sanitizer runtime asks for the CPU set (sched_getaffinity). */
static const char *const sanitizer_only[] = {
    "clone", "sigaltstack", "ptrace", "prctl", "wait4", "getppid", "getdents", "open",
    "sched_getaffinity",
};
#endif

static int add_all(scmp_filter_ctx ctx, const char *const *names, size_t n, unsigned *count)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR)
            continue;
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        if (rc != 0 && rc != -EEXIST)
            return rc;
        (*count)++;
    }
    return 0;
}

static int add_tables(scmp_filter_ctx ctx, unsigned *count)
{
    int rc = add_all(ctx, allowed, sizeof allowed / sizeof allowed[0], count);
#ifdef OR_SANITIZER_BUILD
    if (rc == 0)
        rc = add_all(ctx, sanitizer_only, sizeof sanitizer_only / sizeof sanitizer_only[0], count);
#endif
    return rc;
}

int or_sandbox_seccomp_load(or_seccomp_mode mode, char *err, size_t err_len)
{
#ifdef OR_SECCOMP_DISCOVER
    mode = OR_SECCOMP_LOG;
#endif
    uint32_t refuse = mode == OR_SECCOMP_LOG ? SCMP_ACT_LOG : SCMP_ACT_ERRNO(EPERM);
    scmp_filter_ctx ctx = seccomp_init(refuse);
    if (!ctx) {
        snprintf(err, err_len, "seccomp: cannot set up the filter (out of memory)");
        return -1;
    }
    unsigned count = 0;
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    /* A binary tree over the allowed numbers: every system call runs the
     * filter, and a linear list costs up to one comparison per entry. */
    if (rc == 0)
        rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
    if (rc == 0)
        rc = add_tables(ctx, &count);
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0) {
        snprintf(err, err_len, "seccomp: cannot install the system-call filter: %s; the "
                 "kernel needs CONFIG_SECCOMP_FILTER, or set security.sandbox: false "
                 "(--no-sandbox) to run without it", strerror(-rc));
        return -1;
    }
    return count > 0 ? (int)count : 1;
}
