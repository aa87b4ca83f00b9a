/*
 * explain: the `outrider explain` command.
 *
 * Contract: or_explain_command parses the command line of
 *   outrider explain -c FILE --principal ID [--ip A] [--port N] [--method M]
 *                    [--path P] [--host H] [--header k=v]...
 * loads and compiles the config's policies, evaluates the described request
 * exactly as the proxy would, prints the decision and why, and returns the
 * process exit status: 0 allowed, 2 denied, 1 on a usage or config error.
 */
#ifndef OUTRIDER_EXPLAIN_H
#define OUTRIDER_EXPLAIN_H

int or_explain_command(int argc, char **argv);

#endif
