/*
 * Access log: one line per HTTP request or TCP connection, written off the
 * event loops.
 *
 * Lines are formatted by access_log_format.c. Each worker owns a single-
 * producer single-consumer ring of bytes. The worker formats a line on its
 * stack, checks the room against the writer's tail (acquire), copies the
 * line in and publishes its head (release). A line that does not fit is
 * counted in the ring's dropped counter: no lock, no allocation and no
 * syscall, except a non-blocking eventfd write when the ring passes half
 * full, to wake the writer early.
 *
 * One writer thread sleeps in poll(2) on that eventfd for at most
 * OR_ALOG_FLUSH_MS, hands each ring's pending bytes (one or two segments) to
 * writev(2), resuming partial writes and EINTR, and then advances the tail.
 * Rings hold only whole lines, so lines are never split or interleaved and
 * each worker's lines stay in order. A write that fails for good (disk full,
 * closed pipe) adds the lines it held to the lost counter and is reported
 * once on the diagnostic log until a write succeeds again.
 *
 * Reopen (SIGUSR1 after logrotate) sets an atomic flag and wakes the writer,
 * which opens the path before its next pass and only then closes the old
 * descriptor; if the open fails the old one stays and the failure is logged.
 * /dev/stdout and /dev/stderr are duplicates of fds 1 and 2 (opening them by
 * name fails for sockets, as under journald) and are kept across reopen.
 * Close sets a stop flag; the writer drains every ring once more after
 * seeing it, so every line written before or_access_log_close is written.
 */
#include "outrider/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include "outrider/log.h"

#define OR_ALOG_FLUSH_MS 100
#define OR_ALOG_MIN_RING ((size_t)2 * OR_ACCESS_LOG_LINE_MAX)
#define OR_ALOG_MAX_RING ((size_t)1 << 30)
#define OR_ALOG_OPEN_FLAGS (O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC)
/* ---- per-worker rings and the writer thread ----------------------------- */

/* head is advanced by the worker only, tail by the writer only; both count
 * bytes since open and are masked into data. tail sits on its own cache
 * line so the two threads do not share one. */
typedef struct {
    _Atomic uint64_t head;
    _Atomic uint64_t dropped;
    char *data;
    size_t mask;
    _Alignas(64) _Atomic uint64_t tail;
} or_alog_ring;

struct or_access_log {
    char *path;
    or_access_log_format format;
    bool std_stream;     /* fd is a duplicate of 1 or 2; kept across reopen */
    int fd;              /* writer thread only once started */
    int wake_fd;         /* eventfd: workers and reopen/close wake the writer */
    unsigned nrings;
    or_alog_ring *rings;
    bool started;
    bool failing;        /* writer thread only: a write error was reported */
    pthread_t thread;
    atomic_bool stopping;
    atomic_bool reopen_requested;
    _Atomic uint64_t lost; /* lines discarded after a failed write */
};

static void set_err(char *err, size_t err_len, const char *fmt, const char *path, int errnum)
{
    char reason[128];
    if (err != NULL && err_len > 0)
        snprintf(err, err_len, fmt, path, strerror_r(errnum, reason, sizeof reason));
}

static void wake_writer(or_access_log *log)
{
    uint64_t one = 1;
    ssize_t ignored = write(log->wake_fd, &one, sizeof one); /* EAGAIN: already awake */
    (void)ignored;
}

static int open_target(const char *path, bool *std_stream)
{
    *std_stream = true;
    if (strcmp(path, "/dev/stdout") == 0)
        return fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (strcmp(path, "/dev/stderr") == 0)
        return fcntl(STDERR_FILENO, F_DUPFD_CLOEXEC, 3);
    *std_stream = false;
    return open(path, OR_ALOG_OPEN_FLAGS, 0640);
}

static size_t count_lines(const struct iovec *iov, int iovcnt)
{
    size_t lines = 0;
    for (int i = 0; i < iovcnt; i++) {
        const char *p = iov[i].iov_base, *end = p + iov[i].iov_len;
        while ((p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
            lines++;
            p++;
        }
    }
    return lines;
}

/* Writes every byte of iov, resuming after partial writes, EINTR and EAGAIN
 * (a non-blocking stdout). On any other error the rest is counted as lost. */
static void write_all(or_access_log *log, struct iovec *iov, int iovcnt)
{
    while (iovcnt > 0) {
        ssize_t n = writev(log->fd, iov, iovcnt);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd p = {.fd = log->fd, .events = POLLOUT};
            (void)poll(&p, 1, OR_ALOG_FLUSH_MS);
            continue;
        }
        if (n < 0) {
            size_t lines = count_lines(iov, iovcnt);
            atomic_fetch_add_explicit(&log->lost, lines, memory_order_relaxed);
            if (!log->failing) {
                char reason[128];
                or_log_error("access log write failed path=%s: %s; %zu line(s) lost, "
                             "counted as dropped", log->path,
                             strerror_r(errno, reason, sizeof reason), lines);
            }
            log->failing = true;
            return;
        }
        log->failing = false;
        size_t done = (size_t)n;
        while (iovcnt > 0 && done >= iov[0].iov_len) {
            done -= iov[0].iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + done;
            iov[0].iov_len -= done;
        }
    }
}

static void drain_ring(or_access_log *log, or_alog_ring *ring)
{
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&ring->head, memory_order_acquire);
    if (head == tail)
        return;
    size_t size = ring->mask + 1, off = (size_t)tail & ring->mask;
    size_t pending = (size_t)(head - tail);
    size_t first = pending < size - off ? pending : size - off;
    struct iovec iov[2] = {{ring->data + off, first}, {ring->data, pending - first}};
    write_all(log, iov, pending > first ? 2 : 1);
    atomic_store_explicit(&ring->tail, head, memory_order_release);
}

/* Opens the path again; the old descriptor is closed only once the new one
 * is open, so a failed reopen leaves the log writing where it was. */
static void reopen_file(or_access_log *log)
{
    if (log->std_stream)
        return;
    int fd = open(log->path, OR_ALOG_OPEN_FLAGS, 0640);
    if (fd < 0) {
        char reason[128];
        or_log_error("access log reopen failed path=%s: %s; still writing to the previous file",
                     log->path, strerror_r(errno, reason, sizeof reason));
        return;
    }
    close(log->fd);
    log->fd = fd;
    or_log_info("access log reopened path=%s", log->path);
}

static void wait_for_work(or_access_log *log)
{
    struct pollfd p = {.fd = log->wake_fd, .events = POLLIN};
    if (poll(&p, 1, OR_ALOG_FLUSH_MS) > 0 && (p.revents & POLLIN)) {
        uint64_t count;
        ssize_t ignored = read(log->wake_fd, &count, sizeof count);
        (void)ignored;
    }
}

static void *or_access_log_writer_main(void *arg)
{
    or_access_log *log = arg;
    or_log_set_thread_name("access-log");
    for (;;) {
        bool stopping = atomic_load_explicit(&log->stopping, memory_order_acquire);
        if (atomic_exchange_explicit(&log->reopen_requested, false, memory_order_acq_rel))
            reopen_file(log);
        for (unsigned i = 0; i < log->nrings; i++)
            drain_ring(log, &log->rings[i]);
        if (stopping)
            return NULL;
        wait_for_work(log);
    }
}

/* ---- public interface --------------------------------------------------- */

static void destroy(or_access_log *log)
{
    for (unsigned i = 0; i < log->nrings; i++)
        free(log->rings[i].data);
    free(log->rings);
    if (log->fd >= 0)
        close(log->fd);
    if (log->wake_fd >= 0)
        close(log->wake_fd);
    free(log->path);
    free(log);
}

static size_t ring_size(size_t requested)
{
    size_t size = OR_ALOG_MIN_RING;
    while (size < requested && size < OR_ALOG_MAX_RING)
        size <<= 1;
    return size;
}

static int alloc_rings(or_access_log *log, unsigned nworkers, size_t per_worker_bytes)
{
    size_t bytes = (size_t)nworkers * sizeof(or_alog_ring);
    log->rings = aligned_alloc(_Alignof(or_alog_ring), bytes);
    if (log->rings == NULL)
        return -1;
    memset(log->rings, 0, bytes);
    log->nrings = nworkers;
    size_t size = ring_size(per_worker_bytes);
    for (unsigned i = 0; i < nworkers; i++) {
        or_alog_ring *ring = &log->rings[i];
        ring->mask = size - 1;
        ring->data = malloc(size);
        if (ring->data == NULL)
            return -1;
    }
    return 0;
}

/* The writer blocks every signal so that they reach the loops' threads and
 * a write to a closed pipe returns EPIPE instead of raising SIGPIPE here. */
static int start_writer(or_access_log *log)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&log->thread, NULL, or_access_log_writer_main, log);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0)
        return rc;
    pthread_setname_np(log->thread, "or-access-log");
    log->started = true;
    return 0;
}

or_access_log *or_access_log_open_sized(const char *path, or_access_log_format format,
                                        unsigned nworkers, size_t per_worker_bytes,
                                        char *err, size_t err_len)
{
    if (path == NULL || path[0] == '\0' || nworkers == 0) {
        set_err(err, err_len, "cannot open access log %s: %s",
                path != NULL && path[0] != '\0' ? path : "(no path)", EINVAL);
        return NULL;
    }
    or_access_log *log = calloc(1, sizeof *log);
    if (log == NULL) {
        set_err(err, err_len, "cannot open access log %s: %s", path, ENOMEM);
        return NULL;
    }
    log->format = format;
    log->wake_fd = -1;
    log->fd = open_target(path, &log->std_stream);
    if (log->fd < 0) {
        set_err(err, err_len, "cannot open access log %s: %s", path, errno);
        destroy(log);
        return NULL;
    }
    log->path = strdup(path);
    log->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    int rc = log->path == NULL ? ENOMEM : log->wake_fd < 0 ? errno : 0;
    if (rc == 0 && alloc_rings(log, nworkers, per_worker_bytes) != 0)
        rc = ENOMEM;
    if (rc == 0)
        rc = start_writer(log);
    if (rc != 0) {
        set_err(err, err_len, "cannot start the access log writer for %s: %s", path, rc);
        destroy(log);
        return NULL;
    }
    return log;
}

or_access_log *or_access_log_open(const char *path, or_access_log_format format,
                                  unsigned nworkers, char *err, size_t err_len)
{
    return or_access_log_open_sized(path, format, nworkers, OR_ACCESS_LOG_BUFFER_DEFAULT, err,
                                    err_len);
}

/* Copies a whole line into the ring and publishes it, or counts it dropped. */
static void ring_put(or_access_log *log, or_alog_ring *ring, const char *line, size_t n)
{
    size_t size = ring->mask + 1;
    uint64_t head = atomic_load_explicit(&ring->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&ring->tail, memory_order_acquire);
    size_t used = (size_t)(head - tail);
    if (n > size - used) {
        atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
        return;
    }
    size_t off = (size_t)head & ring->mask;
    size_t first = n < size - off ? n : size - off;
    memcpy(ring->data + off, line, first);
    memcpy(ring->data, line + first, n - first);
    atomic_store_explicit(&ring->head, head + n, memory_order_release);
    if (used < size / 2 && used + n >= size / 2)
        wake_writer(log);
}

void or_access_log_write(or_access_log *log, unsigned worker, const or_access_record *r)
{
    if (log == NULL || r == NULL)
        return;
    if (worker >= log->nrings) {
        atomic_fetch_add_explicit(&log->lost, 1, memory_order_relaxed);
        return;
    }
    or_alog_ring *ring = &log->rings[worker];
    char line[OR_ACCESS_LOG_LINE_MAX];
    size_t n = log->format == OR_ACCESS_LOG_JSON ? or_access_log_format_json(r, line, sizeof line)
                                                 : or_access_log_format_text(r, line, sizeof line);
    if (n == 0)
        atomic_fetch_add_explicit(&ring->dropped, 1, memory_order_relaxed);
    else
        ring_put(log, ring, line, n);
}

void or_access_log_reopen(or_access_log *log)
{
    if (log == NULL)
        return;
    atomic_store_explicit(&log->reopen_requested, true, memory_order_release);
    wake_writer(log);
}

uint64_t or_access_log_dropped(const or_access_log *log)
{
    if (log == NULL)
        return 0;
    uint64_t total = atomic_load_explicit(&log->lost, memory_order_relaxed);
    for (unsigned i = 0; i < log->nrings; i++)
        total += atomic_load_explicit(&log->rings[i].dropped, memory_order_relaxed);
    return total;
}

void or_access_log_close(or_access_log *log)
{
    if (log == NULL)
        return;
    if (log->started) {
        atomic_store_explicit(&log->stopping, true, memory_order_release);
        wake_writer(log);
        pthread_join(log->thread, NULL);
    }
    destroy(log);
}
