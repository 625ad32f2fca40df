/* SPDX-License-Identifier: MIT */
/*
 * echo.c - the Echo Protocol, RFC 862 (TCP).
 *
 * "Once a connection is established any data received is sent back." The
 * buffer the data arrived in is queued as it is: no byte is copied in user
 * space. When the client shuts down its side, the default end-of-file rule
 * closes once everything received has been sent back.
 */
#include "../core/evring.h"

static void echo_data(struct evr_conn *c, struct evr_buf *b)
{
	int err = evr_send(c, b);

	if (err < 0)
		evr_abort(c, err);
}

const struct evr_proto evr_proto_echo = {
	.name = "echo",
	.summary = "RFC 862: sends back every byte received",
	.on_data = echo_data,
};
