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
 * an error the framer sends "ERR <reason>\r\n", closes the connection and
 * delivers nothing more.
 *
 * Zero copy: a line that lies inside one received buffer is handed over
 * as a pointer into that buffer (and the buffer itself, so the handler can
 * send the line back with evr_send_ref); only a line that spans buffers is
 * assembled, in a buffer of the framer bounded by max_line.
 */
#ifndef EVRING_LINE_H
#define EVRING_LINE_H

#include "evring.h"

#ifdef __cplusplus
extern "C" {
#endif

struct evr_line;

/* line and len (without the terminator) lie in b; b is lent for the call.
 * line[len] may be written (a NUL to make a C string): there is always a
 * byte of room after a line. Return <0 to stop: no more lines are
 * delivered for this buffer. */
typedef int (*evr_line_cb)(struct evr_conn *c, struct evr_buf *b, char *line,
			   size_t len);

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
	uint32_t max_line;
	uint32_t deadline_ms;
	bool allow_nul;
	bool failed;
	struct evr_timer timer;
};

/* From on_accept (or on_connect). cfg may be NULL for the defaults. */
void evr_line_init(struct evr_line *lf, struct evr_conn *c,
		   const struct evr_line_cfg *cfg, evr_line_cb cb);
/* From on_data: split b into lines. */
void evr_line_feed(struct evr_line *lf, struct evr_buf *b);
/* From on_close: frees what the framer holds. */
void evr_line_fini(struct evr_line *lf);
/* Queue a formatted line followed by CRLF (as evr_sendf). */
int evr_line_sendf(struct evr_conn *c, const char *fmt, ...) EVR_PRINTF(2, 3);

#ifdef __cplusplus
}
#endif
#endif /* EVRING_LINE_H */
