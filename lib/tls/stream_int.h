/*
 * stream_int: what the two halves of or_stream share, private to them:
 * stream.c (life cycle, input, detection, connect) and stream_output.c (the
 * output queue, the loop's flush list and shutdown).
 *
 * The predicates read the link and read states of stream.h; tls_wake and
 * tls_rest bracket every mbedTLS call on an established stream, so an idle
 * one holds no record buffers (tls_idle.h).
 */
#ifndef OUTRIDER_STREAM_INT_H
#define OUTRIDER_STREAM_INT_H

#include <mbedtls/ssl.h>

#include "outrider/stream.h"

#define OR_STREAM_PLAIN_BUF_SIZE (4 * MBEDTLS_SSL_IN_CONTENT_LEN)

static inline bool connected(const or_stream *s) { return s->_link != OR_STREAM_UNCONNECTED; }
static inline bool established(const or_stream *s) { return s->_link == OR_STREAM_ESTABLISHED; }
static inline bool reading(const or_stream *s) { return s->_read == OR_STREAM_READ_ON; }
static inline bool detecting(const or_stream *s) { return s->_link == OR_STREAM_DETECTING; }

static inline int tls_wake(or_stream *s)
{
    return or_tls_idle_wake(&s->_idle, s->ssl, &s->sl->bufs) == 0 ? 0 : UV_ENOMEM;
}

/* After the call: give the record buffers back if nothing is in flight. */
static inline void tls_rest(or_stream *s)
{
    if (established(s) && !s->_tls_busy && !s->_closing)
        (void)or_tls_idle_release(&s->_idle, s->ssl, &s->sl->bufs);
}

/* stream_output.c: puts s on (or takes it off) the loop's flush list. */
void or_stream_schedule_flush(or_stream *s);
void or_stream_unschedule_flush(or_stream *s);
/* stream.c: hands held input to a restarted reader (from the flush). */
void or_stream_replay_held(or_stream *s);

#endif
