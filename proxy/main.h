/*
 * main: the process-level state of a running proxy, shared by main.c
 * (start-up, signals) and operations.c (admin endpoints, reload). Private
 * to those two files; everything here lives on the main thread's loop.
 */
#ifndef OUTRIDER_MAIN_H
#define OUTRIDER_MAIN_H

#include <stdint.h>

#include <uv.h>

#include "outrider/admin.h"
#include "outrider/sandbox.h"
#include "outrider/watch.h"
#include "outrider/worker.h"

typedef struct {
    or_runtime rt;
    or_worker *workers;
    unsigned nworkers;
    uv_loop_t *loop;
    uv_signal_t sigs[4]; /* SIGTERM, SIGINT, SIGHUP, SIGUSR1 */
    uv_async_t worker_exited;
    or_identity_watch identity;
    or_admin *admin;
    int stop_level;
    uint64_t reloads_ok, reloads_failed;
    or_sandbox_report sandbox; /* what confines the process (GET /server_info) */
} or_main;

/* Level 1 drains, level 2 closes every connection; `why` is logged. */
void or_main_stop(or_main *m, int level, const char *why);
/* Reloads the config file: applies changed policies, refuses anything else
 * that changed. Writes what happened to `out`; returns an HTTP status. */
int or_main_reload(or_main *m, or_buf *out);
int or_main_start_admin(or_main *m);

#endif
