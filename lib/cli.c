/*
 * cli: --help, --version and usage errors for outrider-ca and
 * outrider-agent (cli.h).
 */
#include "outrider/cli.h"

#include <stdio.h>
#include <string.h>

#include "outrider/version.h"

bool or_cli_info(int argc, char **argv, const char *program, const char *usage)
{
    if (argc != 2)
        return false;
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
        fputs(usage, stdout);
    else if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
        printf("%s %s\n", program, OUTRIDER_VERSION);
    else
        return false;
    return true;
}

int or_cli_usage(const char *usage)
{
    fputs(usage, stderr);
    return 2;
}
