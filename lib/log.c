/*
 * Diagnostic log on stderr.
 *
 * Each line is formatted into a stack buffer and written with one write(2),
 * so lines from several worker threads never interleave and no lock is
 * needed. The worker name lives in thread-local storage; the minimum level is
 * set once at start-up, before any worker runs, and only read afterwards.
 */
#include "outrider/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_min_level = OR_LOG_INFO;
static _Thread_local char log_thread_name[16] = "main";

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void or_log_set_level(or_log_level min) { atomic_store(&log_min_level, (int)min); }

void or_log_set_thread_name(const char *name)
{
    snprintf(log_thread_name, sizeof log_thread_name, "%s", name);
}

void or_log(or_log_level level, const char *fmt, ...)
{
    if ((int)level < atomic_load(&log_min_level))
        return;
    char line[2048];
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(line + n, sizeof line - n, ".%03ldZ %s [%s] ", now.tv_nsec / 1000000,
                          level_names[level], log_thread_name);
    va_list ap;
    va_start(ap, fmt);
    int body = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    va_end(ap);
    if (body < 0)
        return;
    n += (size_t)body;
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, n);
    (void)ignored;
}
