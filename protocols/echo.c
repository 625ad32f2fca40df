/* SPDX-License-Identifier: MIT */
/*
 * echo.c - the Echo Protocol, RFC 862 (TCP).
 *
 * TCP: "Once a connection is established any data received is sent back." The
 * buffer the data arrived in is queued as it is: no byte is copied in user
 * space. When the client shuts down its side, the default end-of-file rule
 * closes once everything received has been sent back.
 */
#include "modules.h"

static void echo_data(struct evr_conn *c, struct evr_buf *b)
{
	int err = evr_send(c, b);

	if (err < 0)
		evr_abort(c, err);
}

/* RFC 862 over UDP: "send back a datagram with the data of the
 * received datagram", here the received buffer itself. */
static void echo_datagram(struct evr_udp *u, struct evr_buf *b,
			  const struct sockaddr *peer, socklen_t peerlen)
{
	evr_udp_send(u, b, peer, peerlen);
}

const struct evr_proto evr_proto_echo = {
	.name = "echo",
	.summary = "RFC 862: sends back every byte (TCP) or datagram (UDP)",
	.on_data = echo_data,
	.on_datagram = echo_datagram,
};
