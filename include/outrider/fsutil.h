/*
 * fsutil: durable file operations for the control plane.
 *
 * Contract: or_fs_write_atomic replaces a file so that a reader sees either
 * the old bytes or the new ones, never a mix, and the new bytes survive a
 * crash once it returns 0: it writes a temp file in the same directory with
 * the requested mode, fsyncs it, renames it over the target and fsyncs the
 * directory. or_fs_append_sync appends one record and fsyncs before
 * returning, for logs whose entries must not be lost (used tokens, audit).
 * or_fs_read_file reads a whole file up to a size limit into a NUL-terminated
 * malloc'd buffer. Errors return -1 with a message in err that names the path.
 */
#ifndef OUTRIDER_FSUTIL_H
#define OUTRIDER_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

int or_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode,
                       char *err, size_t err_len);
int or_fs_append_sync(const char *path, const char *data, size_t len, mode_t mode,
                      char *err, size_t err_len);
int or_fs_read_file(const char *path, size_t max, char **out, size_t *out_len,
                    char *err, size_t err_len);
/* fsync of the directory that holds path (or of path itself when it is one). */
int or_fs_sync_dir(const char *dir, char *err, size_t err_len);
/* Replaces the symlink at path by one pointing at target, atomically. */
int or_fs_symlink_atomic(const char *target, const char *path, char *err, size_t err_len);
/* mkdir -p with the given mode for the directories it creates. */
int or_fs_mkdirs(const char *path, mode_t mode, char *err, size_t err_len);

#endif
