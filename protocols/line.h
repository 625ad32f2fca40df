/* SPDX-License-Identifier: MIT */
/*
 * line.h - the line framer for line-oriented protocols (public API).
 *
 * Installed as <evring/line.h>; needs <evring.h>. The directory module and
 * examples/chat are built on it.
 *
 * A framer lives in a module's per-connection state. Feed it every buffer
 * from on_data; it calls the line handler once per line, in order, with
 * the line's bytes without the terminator.
 *
 * Rules: a line ends at LF; one CR right before the LF is dropped (so
 * CRLF and LF both work). A bare CR is data. A NUL byte makes the line an
 * error unless allow_nul is set. A line longer than max_line bytes is an
 * error, and so is a line not finished within deadline_ms of its first
 * byte (a client that dribbles bytes never ending a line: slowloris). On
 * an error the framer sends "ERR <reason>\r\n", closes the connection,
 * delivers nothing more, and logs the peer and the reason (at most one
 * line per 10 s per thread, with a count of the others).
 *
 * Zero copy: a line that lies inside one received buffer is handed over
 * as a pointer into that buffer (and the buffer itself, so the handler can
 * send the line back with evr_send_ref); only a line that spans buffers is
 * assembled, in a buffer of the framer bounded by max_line.
 *
 * Holding input: a handler whose answers pile up (a client that sends
 * commands and does not read the replies) returns EVR_LINE_HOLD. The framer
 * then keeps the rest of the input, a reference to the buffer and where it
 * stopped (and any buffer that still arrives), pauses reading
 * (evr_conn_pause), and delivers nothing until evr_line_resume(), typically
 * from on_sent once the write queue has drained. Resuming delivers the held
 * lines in order; once none is left, reading resumes. So the replies one
 * receive can cause are bounded by what the module lets queue, not by the
 * size of the receive. While input is held the framer owns the
 * connection's evr_conn_pause/evr_conn_resume.
 */
#ifndef EVRING_LINE_H
#define EVRING_LINE_H

#include "evring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct evr_line;
struct evr__line_held;

/*
 * A line handler. line and len (without the terminator) lie in b; b is lent
 * for the call. line[len] may be written (a NUL to make a C string): there
 * is always a byte of room after a line. Returns:
 *   0              go on with the next line;
 *   EVR_LINE_HOLD  this line is done; hold the rest of the input, and pause
 *                  reading, until evr_line_resume();
 *   < 0            stop for good: no more lines are delivered on this
 *                  connection (a handler that has closed it).
 */
typedef int (*evr_line_cb)(struct evr_conn *c, struct evr_buf *b, char *line,
			   size_t len);

#define EVR_LINE_HOLD 1

struct evr_line_cfg {
	uint32_t max_line;    /* default 8192 */
	uint32_t deadline_ms; /* default 30000; EVR_LINE_NO_DEADLINE: none */
	bool allow_nul;	      /* NUL bytes are data (default: an error) */
};

#define EVR_LINE_NO_DEADLINE UINT32_MAX

struct evr_line {
	/* private: */
	struct evr_conn *c;
	evr_line_cb cb;
	struct evr_buf *acc; /* a line spanning buffers, NULL when none */
	struct evr__line_held *held; /* input held, NULL when none */
	uint32_t max_line;
	uint32_t deadline_ms;
	bool allow_nul;
	bool failed;
	bool holding;	 /* EVR_LINE_HOLD: deliver nothing until resumed */
	bool paused;	 /* our evr_conn_pause() awaits its resume */
	bool delivering; /* inside the line handler */
	bool eof;	 /* evr_line_eof() while holding: close when done */
	struct evr_timer timer;
};

/* From on_accept (or on_connect). cfg may be NULL for the defaults. */
void evr_line_init(struct evr_line *lf, struct evr_conn *c,
		   const struct evr_line_cfg *cfg, evr_line_cb cb);
/* From on_data: split b into lines (or, while holding, keep b whole for
 * later: the framer takes a reference). */
void evr_line_feed(struct evr_line *lf, struct evr_buf *b);
/*
 * Deliver the input held since a handler returned EVR_LINE_HOLD, in order;
 * when all of it is delivered without another hold, resume reading (and
 * close, if evr_line_eof() came meanwhile). A no-op when nothing is held,
 * and from inside the line handler. Typically called from on_sent.
 */
void evr_line_resume(struct evr_line *lf);
/* Whether input is held (EVR_LINE_HOLD, not resumed yet). */
bool evr_line_held(const struct evr_line *lf);
/*
 * From on_eof: the peer sent all it will. Closes the connection
 * (evr_close: queued replies still go out) at once, or, while input is
 * held, once every held line has been delivered, so that no command is
 * left unanswered. An unfinished last line is dropped.
 */
void evr_line_eof(struct evr_line *lf);
/* From on_close: frees what the framer holds. */
void evr_line_fini(struct evr_line *lf);
/* Queue a formatted line followed by CRLF (as evr_sendf). */
int evr_line_sendf(struct evr_conn *c, const char *fmt, ...) EVR_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif
#endif /* EVRING_LINE_H */
