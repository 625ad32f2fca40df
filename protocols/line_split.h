/* SPDX-License-Identifier: MIT */
/*
 * line_split.h - the line framer's pure core, for line.c and its fuzz
 * target. Not installed: modules use the evr_line_* API of line.h.
 */
#ifndef EVRING_LINE_SPLIT_H
#define EVRING_LINE_SPLIT_H

#include "line.h"

#include <errno.h>

enum {
	EVR__LINE_TOO_LONG = -1000, /* over max_line */
	EVR__LINE_NUL = -1001,	    /* a NUL byte, not allowed */
	EVR__LINE_STOP = -1002,	    /* the handler asked to stop */
	EVR__LINE_HELD = -1003,	    /* the handler returned EVR_LINE_HOLD */
};

/* One complete line: len bytes at line, inside b (lent for the call). */
typedef int (*evr__line_emit)(void *arg, struct evr_buf *b, char *line,
			      size_t len);

/* Set the limits of lf from cfg (NULL: defaults); no connection. */
void evr__line_setup(struct evr_line *lf, const struct evr_line_cfg *cfg);
/* Split b's payload into lines, keeping an unfinished one in lf->acc
 * (buffers of loop l). 0, an EVR__LINE_* error, or -ENOMEM. */
int evr__line_split(struct evr_line *lf, struct evr_loop *l, struct evr_buf *b,
		    evr__line_emit emit, void *arg);
/* The same from *off into b's payload. When emit returns EVR_LINE_HOLD it
 * returns EVR__LINE_HELD with *off just past that line's LF. */
int evr__line_split_at(struct evr_line *lf, struct evr_loop *l,
		       struct evr_buf *b, size_t *off, evr__line_emit emit,
		       void *arg);
/* Drop an unfinished line. */
void evr__line_reset(struct evr_line *lf);

#endif
