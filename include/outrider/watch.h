/*
 * watch: follows the identity files and hands over each new valid set.
 *
 * Contract: or_identity_watch_start watches the cert, key and bundle files of
 * a config on the main loop (uv_fs_event on their directories, which
 * survives the rename an atomic writer does, plus a slow uv_fs_poll on each
 * file as a fallback). After a change has settled it loads the set with
 * or_tls_creds_load, which checks that the key matches the certificate, the
 * chain verifies against the (new) bundle, the leaf is an X509-SVID of the
 * trust domain and is within validity; it also requires the same SPIFFE ID
 * as the identity the proxy started with. A set that passes and differs
 * from the current one goes to on_update; one that fails is logged with its
 * reason, counted, and the current set stays. All of it runs on one loop.
 */
#ifndef OUTRIDER_WATCH_H
#define OUTRIDER_WATCH_H

#include <stdint.h>

#include <uv.h>

#include "outrider/config.h"
#include "outrider/tls.h"

typedef void (*or_identity_update_cb)(or_tls_creds *creds, void *ctx);

typedef struct {
    uv_loop_t *loop;
    const or_config *cfg;
    char *expected_id;
    uv_fs_event_t events[3];
    uv_fs_poll_t polls[3];
    size_t nevents;
    uv_timer_t settle;
    or_identity_update_cb on_update;
    void *ctx;
    unsigned char current_digest[32]; /* of cert, key and bundle bytes */
    unsigned char refused_digest[32]; /* the last set refused */
    uint64_t updates, refusals;
} or_identity_watch;

int or_identity_watch_start(or_identity_watch *w, uv_loop_t *loop, const or_config *cfg,
                            const or_tls_creds *current, or_identity_update_cb cb, void *ctx);
void or_identity_watch_stop(or_identity_watch *w);

#endif
