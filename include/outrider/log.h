/*
 * log: diagnostic lines on stderr (not the access log).
 *
 * Contract: one line per call, written with a single write(2) so lines from
 * several workers never interleave. Each line carries an RFC 3339 UTC time
 * with milliseconds, the level and the worker ("main" or "w<N>") set by
 * or_log_set_thread_name for the calling thread. Callers never pass secrets.
 */
#ifndef OUTRIDER_LOG_H
#define OUTRIDER_LOG_H

typedef enum { OR_LOG_DEBUG, OR_LOG_INFO, OR_LOG_WARN, OR_LOG_ERROR } or_log_level;

void or_log_set_level(or_log_level min);
void or_log_set_thread_name(const char *name);
void or_log(or_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define or_log_debug(...) or_log(OR_LOG_DEBUG, __VA_ARGS__)
#define or_log_info(...) or_log(OR_LOG_INFO, __VA_ARGS__)
#define or_log_warn(...) or_log(OR_LOG_WARN, __VA_ARGS__)
#define or_log_error(...) or_log(OR_LOG_ERROR, __VA_ARGS__)

#endif
