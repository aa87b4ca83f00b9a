/*
 * sandbox_landlock: the Landlock part of the sandbox, private to sandbox.c.
 *
 * or_sandbox_landlock applies `rules` to the calling thread (and what it
 * starts later) with what the kernel's Landlock ABI `abi` supports. It
 * returns 0 (also when abi is 0: nothing to do) or -1 with a message.
 */
#ifndef OUTRIDER_SANDBOX_LANDLOCK_H
#define OUTRIDER_SANDBOX_LANDLOCK_H

#include <stddef.h>

#include "outrider/sandbox.h"

int or_sandbox_landlock(const or_sandbox_rules *rules, int abi, char *err, size_t err_len);

#endif
