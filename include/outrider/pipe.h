/*
 * pipe: bytes both ways between a connection's downstream and upstream.
 *
 * Contract: or_tcp_phase is the protocol phase (conn.h) of tcp listeners:
 * its start opens the listener's upstream and pipes once it is ready; an upstream failure closes the downstream in
 * an orderly way (FIN, not reset) and flags the log line "UF". or_pipe_start
 * pipes between c->down and a ready c->up (also used after an HTTP Upgrade),
 * with backpressure (a side stops reading while the other side's queue is
 * above OR_PIPE_HIGH_WATERMARK, resumes at OR_PIPE_LOW_WATERMARK),
 * half-close (EOF on one side becomes a shutdown of the other) and the idle
 * timeout. The connection ends when both sides have finished, or at the
 * first error.
 */
#ifndef OUTRIDER_PIPE_H
#define OUTRIDER_PIPE_H

#include "outrider/conn.h"

#define OR_PIPE_HIGH_WATERMARK (1024 * 1024)
#define OR_PIPE_LOW_WATERMARK (256 * 1024)

extern const or_conn_phase_ops or_tcp_phase;
void or_pipe_start(or_conn *c);

#endif
