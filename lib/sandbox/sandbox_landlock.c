/*
 * sandbox_landlock: file and port rules with Landlock, best effort by ABI.
 *
 * The ruleset handles every file access right the kernel's ABI knows (1:
 * the base set, 2: REFER, 3: TRUNCATE, 5: IOCTL_DEV) and, from ABI 4, TCP
 * bind and connect. Paths in `read` get read rights (a file: read it; a
 * directory: read and list everything beneath), paths in `write` get read
 * and write rights beneath them; ports in `bind` and `connect` are the
 * only TCP ports the process may bind or connect to. A path that does not
 * exist is skipped. Landlock confines the calling thread and the threads
 * and processes it starts later; threads that already run are not
 * confined, so the caller applies it before starting its workers.
 *
 * Debian 12's linux/landlock.h knows ABI 1 and 2 only; what later ABIs
 * added is defined here.
 */
#include "sandbox_landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/landlock.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif
#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0)
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_RULE_NET_PORT
#define LANDLOCK_RULE_NET_PORT 2
struct landlock_net_port_attr {
    uint64_t allowed_access;
    uint64_t port;
};
#endif
#ifndef SYS_landlock_create_ruleset
#define SYS_landlock_create_ruleset 444
#define SYS_landlock_add_rule 445
#define SYS_landlock_restrict_self 446
#endif

/* The ruleset attribute as of ABI 4 (handled_access_net added). */
struct or_landlock_ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
};

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_FILE_ONLY                                                                      \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

static uint64_t fs_handled(int abi)
{
    uint64_t all = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: bits 0-12 */
    if (abi >= 2)
        all |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        all |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        all |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    return all;
}

static int add_path(int ruleset, const char *path, uint64_t access, uint64_t handled)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == EACCES ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return -1;
    }
    access &= handled;
    if (!S_ISDIR(st.st_mode))
        access &= FS_FILE_ONLY;
    struct landlock_path_beneath_attr attr = {.allowed_access = access, .parent_fd = fd};
    int rc = (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0);
    close(fd);
    return rc;
}

static int add_port(int ruleset, uint16_t port, uint64_t access)
{
    struct landlock_net_port_attr attr = {.allowed_access = access, .port = port};
    return (int)syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_NET_PORT, &attr, 0);
}

static int add_rules(int ruleset, const or_sandbox_rules *rules, int abi, uint64_t handled)
{
    for (size_t i = 0; i < rules->nread; i++)
        if (add_path(ruleset, rules->read[i], FS_READ | LANDLOCK_ACCESS_FS_EXECUTE, handled) != 0)
            return -1;
    for (size_t i = 0; i < rules->nwrite; i++)
        if (add_path(ruleset, rules->write[i], handled & ~LANDLOCK_ACCESS_FS_EXECUTE, handled) != 0)
            return -1;
    if (abi < 4)
        return 0;
    for (size_t i = 0; i < rules->nbind; i++)
        if (add_port(ruleset, rules->bind[i], LANDLOCK_ACCESS_NET_BIND_TCP) != 0)
            return -1;
    for (size_t i = 0; i < rules->nconnect; i++)
        if (add_port(ruleset, rules->connect[i], LANDLOCK_ACCESS_NET_CONNECT_TCP) != 0)
            return -1;
    return 0;
}

int or_sandbox_landlock(const or_sandbox_rules *rules, int abi, char *err, size_t err_len)
{
    if (abi <= 0 || !rules)
        return 0;
    struct or_landlock_ruleset_attr attr = {.handled_access_fs = fs_handled(abi)};
    size_t attr_size = sizeof attr.handled_access_fs;
    if (abi >= 4) {
        attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
        attr_size = sizeof attr;
    }
    int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, attr_size, 0);
    if (ruleset < 0) {
        snprintf(err, err_len, "landlock: cannot create a ruleset: %s", strerror(errno));
        return -1;
    }
    int rc = add_rules(ruleset, rules, abi, attr.handled_access_fs);
    if (rc == 0)
        rc = (int)syscall(SYS_landlock_restrict_self, ruleset, 0);
    int saved = errno;
    close(ruleset);
    if (rc != 0) {
        snprintf(err, err_len, "landlock: cannot apply the file and port rules: %s",
                 strerror(saved));
        return -1;
    }
    return 0;
}
