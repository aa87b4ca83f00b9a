/*
 * Unit tests for the access-log writer (access_log.c), end to end: two
 * workers' lines all arrive whole and in order, producers that never pause
 * get every line accounted for (written or counted as dropped), a stalled
 * sink makes lines count as dropped rather than vanish, reopen after
 * rotation loses nothing, a failed reopen keeps the old file, open errors
 * name the path, and /dev/stdout survives close. Fixtures:
 * access_log_fixture.h.
 */
#include "access_log_fixture.h"

typedef struct {
    char *data;
    size_t len;
    size_t nlines;
} file_text;

static file_text read_fd(int fd)
{
    file_text t = {NULL, 0, 0};
    size_t cap = 0;
    for (;;) {
        if (cap - t.len < 65536) {
            cap = cap * 2 + 65536;
            t.data = realloc(t.data, cap + 1);
            assert_non_null(t.data);
        }
        ssize_t n = read(fd, t.data + t.len, cap - t.len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            break;
        t.len += (size_t)n;
    }
    t.data[t.len] = '\0';
    for (size_t i = 0; i < t.len; i++)
        t.nlines += t.data[i] == '\n';
    return t;
}

static file_text read_path(const char *path)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    file_text t = read_fd(fd);
    close(fd);
    return t;
}

static size_t count_file_lines(const char *path)
{
    if (access(path, R_OK) != 0)
        return 0;
    file_text t = read_path(path);
    free(t.data);
    return t.nlines;
}

static void wait_for_lines(const char *path, size_t lines)
{
    for (int i = 0; i < 500 && count_file_lines(path) < lines; i++)
        usleep(10000);
    assert_int_equal(count_file_lines(path), lines);
}

/* Checks every line (text or JSON) and the per-worker sequence carried in
 * request ids "w<worker>-<seq>": strictly increasing, and with no gaps when
 * `contiguous`. Returns the number of lines. */
static size_t check_lines(const file_text *t, bool json, bool contiguous, long first_seq)
{
    long next[2] = {first_seq, first_seq};
    size_t lines = 0;
    for (const char *p = t->data, *end; p < t->data + t->len; p = end + 1) {
        end = memchr(p, '\n', (size_t)(t->data + t->len - p));
        assert_non_null(end);
        size_t n = (size_t)(end - p) + 1;
        if (json)
            assert_true(json_line_valid(p, n));
        else
            assert_int_equal(count_tokens(p, n - 1), TEXT_TOKENS);
        const char *key = json ? "\"request_id\":\"" : "request_id=";
        const char *id = memmem(p, n, key, strlen(key));
        assert_non_null(id);
        id += strlen(key);
        assert_true(id[0] == 'w');
        unsigned worker = (unsigned)(id[1] - '0');
        long seq = strtol(id + 3, NULL, 10);
        assert_true(worker < 2);
        if (contiguous)
            assert_int_equal(seq, next[worker]);
        else
            assert_true(seq >= next[worker]);
        next[worker] = seq + 1;
        lines++;
    }
    return lines;
}

typedef struct {
    or_access_log *log;
    unsigned worker;
    long first, count;
} producer;

static void write_numbered(or_access_log *log, unsigned worker, long seq)
{
    char id[32];
    snprintf(id, sizeof id, "w%u-%ld", worker, seq);
    or_access_record r = http_record();
    r.request_id = id;
    or_access_log_write(log, worker, &r);
}

static void *produce(void *arg)
{
    producer *p = arg;
    for (long i = p->first; i < p->first + p->count; i++)
        write_numbered(p->log, p->worker, i);
    return NULL;
}

static void run_producers(or_access_log *log, long per_worker)
{
    pthread_t threads[2];
    producer args[2];
    for (unsigned w = 0; w < 2; w++) {
        args[w] = (producer){log, w, 0, per_worker};
        assert_int_equal(pthread_create(&threads[w], NULL, produce, &args[w]), 0);
    }
    for (unsigned w = 0; w < 2; w++)
        pthread_join(threads[w], NULL);
}

static void test_writer_two_workers(void **state)
{
    (void)state;
    char path[512], err[256] = "";
    tmp_path(path, sizeof path, "two.log");
    unlink(path);
    /* Room for every line, so nothing may be dropped whatever the timing. */
    or_access_log *log = or_access_log_open_sized(path, OR_ACCESS_LOG_TEXT, 2,
                                                  (size_t)4 << 20, err, sizeof err);
    assert_non_null(log);
    run_producers(log, 5000);
    assert_int_equal(or_access_log_dropped(log), 0);
    or_access_log_close(log);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0640 & ~mask);
    file_text t = read_path(path);
    assert_int_equal(t.nlines, 10000);
    assert_int_equal(check_lines(&t, false, true, 0), 10000);
    free(t.data);
    unlink(path);
}

/* Default buffers and producers that never pause: lines may be dropped, but
 * every line is accounted for and the ones written are whole and in order. */
static void test_writer_stress_accounts_for_every_line(void **state)
{
    (void)state;
    char path[512], err[256] = "";
    tmp_path(path, sizeof path, "stress.json");
    unlink(path);
    or_access_log *log = or_access_log_open(path, OR_ACCESS_LOG_JSON, 2, err, sizeof err);
    assert_non_null(log);
    run_producers(log, 20000);
    uint64_t dropped = or_access_log_dropped(log);
    or_access_log_close(log);
    print_message("stress: %llu of 40000 lines dropped\n", (unsigned long long)dropped);
    file_text t = read_path(path);
    assert_int_equal(t.nlines + dropped, 40000);
    assert_int_equal(check_lines(&t, true, dropped == 0, 0), t.nlines);
    free(t.data);
    unlink(path);
}

static void *drain_fifo(void *arg)
{
    int fd = *(int *)arg;
    file_text *t = malloc(sizeof *t);
    assert_non_null(t);
    *t = read_fd(fd);
    return t;
}

/* The sink is a FIFO nobody reads yet: the writer blocks on a full pipe and
 * the worker's 16 KiB buffer overflows. Lines are dropped and counted. */
static void test_writer_overflow_counts_dropped(void **state)
{
    (void)state;
    char path[512], err[256] = "";
    tmp_path(path, sizeof path, "fifo");
    unlink(path);
    assert_int_equal(mkfifo(path, 0600), 0);
    int rfd = open(path, O_RDONLY | O_NONBLOCK);
    assert_true(rfd >= 0);
    (void)fcntl(rfd, F_SETPIPE_SZ, 4096);
    or_access_log *log = or_access_log_open_sized(path, OR_ACCESS_LOG_TEXT, 1, 1, err, sizeof err);
    assert_non_null(log);
    const long attempts = 5000; /* about 1.5 MB against 16 KiB + the pipe */
    for (long i = 0; i < attempts; i++)
        write_numbered(log, 0, i);
    uint64_t dropped = or_access_log_dropped(log);
    assert_true(dropped > 0);

    assert_int_equal(fcntl(rfd, F_SETFL, 0), 0);
    pthread_t reader;
    assert_int_equal(pthread_create(&reader, NULL, drain_fifo, &rfd), 0);
    or_access_log_close(log);
    file_text *t;
    pthread_join(reader, (void **)&t);
    close(rfd);
    assert_int_equal(t->nlines + dropped, (size_t)attempts);
    assert_int_equal(check_lines(t, false, false, 0), t->nlines);
    free(t->data);
    free(t);
    unlink(path);
}

static void test_reopen_after_rotation(void **state)
{
    (void)state;
    char path[512], rotated[600], err[256] = "";
    tmp_path(path, sizeof path, "rotate.log");
    snprintf(rotated, sizeof rotated, "%s.1", path);
    unlink(path);
    unlink(rotated);
    or_access_log *log = or_access_log_open(path, OR_ACCESS_LOG_JSON, 1, err, sizeof err);
    assert_non_null(log);
    for (long i = 0; i < 100; i++)
        write_numbered(log, 0, i);
    wait_for_lines(path, 100);
    assert_int_equal(rename(path, rotated), 0);
    or_access_log_reopen(log);
    for (long i = 100; i < 200; i++)
        write_numbered(log, 0, i);
    or_access_log_close(log);
    file_text old = read_path(rotated), cur = read_path(path);
    assert_int_equal(old.nlines, 100);
    assert_int_equal(check_lines(&old, true, true, 0), 100);
    assert_int_equal(cur.nlines, 100);
    assert_int_equal(check_lines(&cur, true, true, 100), 100);
    free(old.data);
    free(cur.data);
    unlink(path);
    unlink(rotated);
}

/* The directory disappears before the reopen: the writer keeps the old
 * descriptor and no line is lost. */
static void test_failed_reopen_keeps_writing(void **state)
{
    (void)state;
    char dir[512], path[600], err[256] = "";
    tmp_path(dir, sizeof dir, "gone");
    snprintf(path, sizeof path, "%s/access.log", dir);
    mkdir(dir, 0755);
    or_access_log *log = or_access_log_open(path, OR_ACCESS_LOG_TEXT, 1, err, sizeof err);
    assert_non_null(log);
    for (long i = 0; i < 10; i++)
        write_numbered(log, 0, i);
    wait_for_lines(path, 10);
    int keep = open(path, O_RDONLY);
    assert_true(keep >= 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    or_access_log_reopen(log);
    for (long i = 10; i < 20; i++)
        write_numbered(log, 0, i);
    or_access_log_close(log);
    file_text t = read_fd(keep);
    close(keep);
    assert_int_equal(t.nlines, 20);
    assert_int_equal(check_lines(&t, false, true, 0), 20);
    free(t.data);
}

static void test_open_errors(void **state)
{
    (void)state;
    char err[256] = "";
    const char *missing = "/nonexistent-outrider-dir/sub/access.log";
    assert_null(or_access_log_open(missing, OR_ACCESS_LOG_TEXT, 1, err, sizeof err));
    assert_string_equal(err, "cannot open access log /nonexistent-outrider-dir/sub/access.log: "
                             "No such file or directory");
    const char *dir = tmp_dir();
    assert_null(or_access_log_open(dir, OR_ACCESS_LOG_JSON, 1, err, sizeof err));
    assert_non_null(strstr(err, dir));
    assert_non_null(strstr(err, "Is a directory"));
    assert_null(or_access_log_open("", OR_ACCESS_LOG_JSON, 1, err, sizeof err));
    assert_non_null(strstr(err, "Invalid argument"));
    assert_null(or_access_log_open("/dev/null", OR_ACCESS_LOG_JSON, 0, err, sizeof err));
    assert_null(or_access_log_open(missing, OR_ACCESS_LOG_JSON, 1, NULL, 0));
}

/* /dev/stdout is a duplicate of fd 1: closing the log leaves stdout open,
 * and a write for a worker that does not exist is counted, not lost. */
static void test_stdout_and_bad_worker(void **state)
{
    (void)state;
    char err[256] = "";
    or_access_log *log = or_access_log_open("/dev/stdout", OR_ACCESS_LOG_TEXT, 1, err,
                                            sizeof err);
    assert_non_null(log);
    or_access_record r = tcp_record();
    or_access_log_write(log, 0, &r);
    or_access_log_write(log, 7, &r);
    assert_int_equal(or_access_log_dropped(log), 1);
    or_access_log_reopen(log);
    or_access_log_close(log);
    assert_true(fcntl(STDOUT_FILENO, F_GETFD) >= 0);
    or_access_log_close(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_two_workers),
        cmocka_unit_test(test_writer_stress_accounts_for_every_line),
        cmocka_unit_test(test_writer_overflow_counts_dropped),
        cmocka_unit_test(test_reopen_after_rotation),
        cmocka_unit_test(test_failed_reopen_keeps_writing),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_stdout_and_bad_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
