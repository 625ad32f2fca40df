/* SPDX-License-Identifier: MIT */
/*
 * discard.c - the Discard Protocol, RFC 863.
 *
 * TCP: "Once a connection is established any data received is thrown
 * away. No response is sent." The connection stays open until the client
 * closes it (or a timeout does). UDP: "any received datagram is thrown
 * away. No response is sent." The received buffer goes straight back to
 * the pool; the guard has counted the datagram already.
 */
#include "modules.h"

static void discard_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)c, (void)b;
}

static void discard_datagram(struct evr_udp *u, struct evr_buf *b,
			     const struct sockaddr *peer, socklen_t peerlen)
{
	(void)u, (void)b, (void)peer, (void)peerlen;
}

const struct evr_proto evr_proto_discard = {
	.name = "discard",
	.summary = "RFC 863: reads and throws away every byte or datagram",
	.on_data = discard_data,
	.on_datagram = discard_datagram,
};
