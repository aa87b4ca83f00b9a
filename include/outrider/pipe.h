/*
 * pipe: one proxied TCP connection, downstream <-> upstream.
 *
 * Contract: or_pipe_accept takes a pending connection from a listener and
 * owns it from then on: it terminates or originates mTLS as the listener's
 * mode says, connects the upstream, and copies bytes both ways with
 * backpressure (a side stops reading while the other side's output queue is
 * above the high watermark, and resumes below the low one), half-close, and
 * the connect, handshake and idle timeouts. Every failure ends the
 * connection cleanly and is logged; nothing outlives the connection. The
 * connection is linked on its worker's list until its last handle closes.
 */
#ifndef OUTRIDER_PIPE_H
#define OUTRIDER_PIPE_H

#include "outrider/worker.h"

#define OR_PIPE_HIGH_WATERMARK (1024 * 1024)
#define OR_PIPE_LOW_WATERMARK (256 * 1024)

void or_pipe_accept(or_worker_listener *listener);
/* Closes every connection of the worker at once. */
void or_pipe_abort_all(or_worker *w);

#endif
