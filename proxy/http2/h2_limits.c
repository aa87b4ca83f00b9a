/*
 * HTTP/2 abuse limits of a downstream session: what a peer may send per
 * second, per header block and per stream, and what happens when it sends
 * more (docs/http2.md, "Limits"). Called from the session's nghttp2
 * callbacks (h2_session.c): a limit broken there is recorded on the
 * session (hs->abuse), the callback fails, and the session ends the
 * connection with GOAWAY once the input has been read.
 */
#include <limits.h>
#include <string.h>

#include "h2_session.h"
#include "outrider/log.h"

#define OR_H2_MATURE_MS 1000

/* Frames of each kind per one-second window. WINDOW_UPDATE is limited by
 * what it answers: a client that reads fast sends one per half window of
 * DATA, so it may send OR_H2_WINDOW_UPDATES_PER_DATA for each DATA frame
 * sent in the window, above a base of RATE_WINDOW's limit. RATE_DATA_SENT
 * only counts. */
enum { RATE_SETTINGS, RATE_PING, RATE_RST, RATE_EMPTY, RATE_CONTROL, RATE_WINDOW, RATE_DATA_SENT,
       RATE_KINDS };
#define OR_H2_WINDOW_UPDATES_PER_DATA 4
static const unsigned rate_limit[RATE_KINDS] = {100, 100, 100, 100, 1000, 1000, UINT_MAX};
static const or_h2_abuse rate_abuse[RATE_KINDS] = {
    OR_H2_ABUSE_SETTINGS, OR_H2_ABUSE_PING, OR_H2_ABUSE_RAPID_RESET, OR_H2_ABUSE_EMPTY_FRAMES,
    OR_H2_ABUSE_CONTROL_FRAMES, OR_H2_ABUSE_CONTROL_FRAMES, OR_H2_ABUSE_NONE,
};

const char *or_h2_abuse_name(or_h2_abuse a)
{
    switch (a) {
    case OR_H2_ABUSE_NONE: return "none";
    case OR_H2_ABUSE_RAPID_RESET: return "rapid_reset";
    case OR_H2_ABUSE_CONTINUATION: return "continuation_flood";
    case OR_H2_ABUSE_HEADER_BOMB: return "header_bomb";
    case OR_H2_ABUSE_SETTINGS: return "settings_flood";
    case OR_H2_ABUSE_PING: return "ping_flood";
    case OR_H2_ABUSE_EMPTY_FRAMES: return "empty_frames";
    case OR_H2_ABUSE_CONTROL_FRAMES: return "control_flood";
    case OR_H2_ABUSE_HEADERS_TIMEOUT: return "headers_timeout";
    case OR_H2_ABUSE_FLOOD: return "outbound_flood";
    case OR_H2_ABUSE_PROTOCOL: return "protocol_error";
    case OR_H2_ABUSE_KINDS: break;
    }
    return "unknown";
}

static uint64_t now_ms(const or_h2_session *hs) { return uv_now(&hs->c->worker->loop); }

void or_h2_abuse_count(or_h2_session *hs, or_h2_abuse kind)
{
    or_conn *c = hs->c;
    or_stats_add(c->worker->stats.h2_abuse[kind], 1);
    or_log_warn("http2 connection ended listener=%s peer=%s reason=%s", c->listener->cfg->name,
                c->peer, or_h2_abuse_name(kind));
}

/* From a callback: the peer broke a limit. The callback then fails, which
 * stops nghttp2 from reading further; the GOAWAY is sent after. */
int or_h2_abuse_raise(or_h2_session *hs, or_h2_abuse kind)
{
    if (hs->abuse == OR_H2_ABUSE_NONE)
        hs->abuse = kind;
    return NGHTTP2_ERR_CALLBACK_FAILURE;
}

static int count_rate(or_h2_session *hs, int kind)
{
    uint64_t now = now_ms(hs);
    if (now - hs->rate_window_ms >= 1000) {
        hs->rate_window_ms = now;
        memset(hs->rate, 0, sizeof hs->rate);
    }
    unsigned limit = rate_limit[kind];
    if (kind == RATE_WINDOW)
        limit += OR_H2_WINDOW_UPDATES_PER_DATA * hs->rate[RATE_DATA_SENT];
    if (++hs->rate[kind] > limit)
        return or_h2_abuse_raise(hs, rate_abuse[kind]);
    return 0;
}

/* Rapid reset (CVE-2023-44487) opens streams and resets them at once. On
 * the hop one connection carries the cancellations of all the peer
 * sidecar's clients, so there only premature resets count: a stream reset
 * once its response has started, or after OR_H2_MATURE_MS, is a client
 * that gave up, and at most OR_H2_MAX_STREAMS of those fit in a second. */
static bool premature_reset(or_h2_session *hs, int32_t id)
{
    if (!hs->hop)
        return true;
    const or_h2_stream *st = nghttp2_session_get_stream_user_data(hs->ng, id);
    return !st || (st->rs == OR_H2_RS_NONE &&
                   uv_hrtime() - st->started_ns < (uint64_t)OR_H2_MATURE_MS * 1000000);
}

int or_h2_limit_frame(or_h2_session *hs, const nghttp2_frame_hd *hd)
{
    switch (hd->type) {
    case NGHTTP2_HEADERS:
        hs->continuations = 0;
        if (!(hd->flags & NGHTTP2_FLAG_END_HEADERS))
            hs->block_started_ms = now_ms(hs);
        return 0;
    case NGHTTP2_CONTINUATION:
        if (++hs->continuations > OR_H2_MAX_CONTINUATIONS)
            return or_h2_abuse_raise(hs, OR_H2_ABUSE_CONTINUATION);
        return 0;
    case NGHTTP2_DATA:
        return hd->length == 0 && !(hd->flags & NGHTTP2_FLAG_END_STREAM)
                   ? count_rate(hs, RATE_EMPTY)
                   : 0;
    case NGHTTP2_SETTINGS:
        return hd->flags & NGHTTP2_FLAG_ACK ? 0 : count_rate(hs, RATE_SETTINGS);
    case NGHTTP2_PING:
        return hd->flags & NGHTTP2_FLAG_ACK ? 0 : count_rate(hs, RATE_PING);
    case NGHTTP2_RST_STREAM:
        return premature_reset(hs, hd->stream_id) ? count_rate(hs, RATE_RST) : 0;
    case NGHTTP2_WINDOW_UPDATE:
        return count_rate(hs, RATE_WINDOW);
    default:
        return count_rate(hs, RATE_CONTROL);
    }
}

void or_h2_limit_data_sent(or_h2_session *hs) { count_rate(hs, RATE_DATA_SENT); }
