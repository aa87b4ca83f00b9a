/*
 * sandbox_seccomp: the system-call allowlist, private to sandbox.c.
 *
 * or_sandbox_seccomp_load installs the filter on every thread of the
 * process and returns how many calls it allows, 0 when this build has no
 * seccomp support, or -1 with a message.
 */
#ifndef OUTRIDER_SANDBOX_SECCOMP_H
#define OUTRIDER_SANDBOX_SECCOMP_H

#include <stddef.h>

#include "outrider/sandbox.h"

int or_sandbox_seccomp_load(or_seccomp_mode mode, char *err, size_t err_len);

#endif
