/*
 * cli: what the control-plane programs' command lines share.
 *
 * or_cli_info answers `PROGRAM --help` (or -h) with `usage` and `PROGRAM
 * --version` (or -V) with "PROGRAM VERSION", on stdout, when the option is
 * the only argument, and returns true: the program then exits 0. Anything
 * else returns false and prints nothing. or_cli_usage prints `usage` on
 * stderr and returns 2, the exit status of a usage error.
 */
#ifndef OUTRIDER_CLI_H
#define OUTRIDER_CLI_H

#include <stdbool.h>

bool or_cli_info(int argc, char **argv, const char *program, const char *usage);
int or_cli_usage(const char *usage);

#endif
