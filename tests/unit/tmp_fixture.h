/*
 * tmp_fixture: scratch files for the unit tests that load configs from disk
 * (config_fixture.h, rbac_fixture.h).
 *
 * remove_tree deletes a directory and everything under it, quietly when it
 * does not exist; write_text_file writes a whole file and fails the test
 * when it cannot.
 */
#ifndef OUTRIDER_TEST_TMP_FIXTURE_H
#define OUTRIDER_TEST_TMP_FIXTURE_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static inline int remove_tree_entry(const char *path, const struct stat *st, int flag,
                                    struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static inline void remove_tree(const char *path)
{
    nftw(path, remove_tree_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static inline void write_text_file(const char *path, const char *content)
{
    FILE *fp = fopen(path, "w");
    if (fp == NULL)
        fail_msg("cannot write %s: %s", path, strerror(errno));
    fputs(content, fp);
    fclose(fp);
}

#endif
