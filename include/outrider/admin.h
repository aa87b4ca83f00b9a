/*
 * admin: the operator's HTTP endpoint (admin.listen, loopback by default).
 *
 * Contract: or_admin_start listens on the main loop and answers one request
 * per connection (then closes): GET /ready, /live, /stats (Prometheus text;
 * with ?format=json the same series as a JSON document, metrics.h),
 * /certs, /config and /server_info (JSON); POST /reload, /drain, /quitquitquit. A
 * mutation asked for with GET, or a read with POST, answers 405 with an
 * Allow header; an unknown path 404; a request over 8 KiB or malformed 400.
 * The answers come from the callbacks in or_admin_ops, which run on the main
 * loop. Requests are bounded in size and time, so a stuck client cannot
 * hold a connection.
 */
#ifndef OUTRIDER_ADMIN_H
#define OUTRIDER_ADMIN_H

#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "outrider/stats.h"
#include "outrider/units.h"

typedef struct {
    void *ctx;
    bool (*ready)(void *ctx, or_buf *why);
    void (*stats)(void *ctx, or_buf *out);
    void (*certs)(void *ctx, or_buf *out);
    void (*config)(void *ctx, or_buf *out);
    void (*server_info)(void *ctx, or_buf *out); /* version, sandbox */
    int (*reload)(void *ctx, or_buf *out);  /* returns the HTTP status */
    void (*drain)(void *ctx);
    void (*quit)(void *ctx);
} or_admin_ops;

typedef struct or_admin or_admin;

or_admin *or_admin_start(uv_loop_t *loop, const or_hostport *listen, const or_admin_ops *ops,
                         char *err, size_t err_len);
void or_admin_stop(or_admin *admin);

#endif
