/* SPDX-License-Identifier: MIT */
/*
 * time.c - the Time Protocol, RFC 868.
 *
 * "The time is the number of seconds since 00:00 (midnight) 1 January 1900
 * GMT", sent as a 32-bit binary number in network byte order. TCP: four
 * bytes on accept, then the server closes. UDP: any datagram, the empty
 * one rdate sends included, gets one datagram of four bytes.
 *
 * 32 bits of seconds from 1900 run out on 2036-02-07 06:28:16 UTC; the
 * count then starts again from 0 (RFC 868 leaves it there; clients such as
 * rdate take a small value to mean the next era). The value sent is the
 * time modulo 2^32, computed from a 64-bit time_t, so the wrap is exact
 * and nothing overflows. Tests move the clock past the wrap with
 * libfaketime, which changes the clock of the real, unmodified evringd;
 * there is no clock option to leave lying around in production.
 */
#include "modules.h"

#include <stdint.h>
#include <time.h>

/* Seconds from 1900-01-01 to 1970-01-01: 70 years, 17 of them leap. */
#define RFC868_EPOCH_OFFSET 2208988800LL

/* The four bytes of RFC 868 for now, in network byte order. */
static void time_now(unsigned char out[4])
{
	uint32_t v = (uint32_t)((int64_t)time(NULL) + RFC868_EPOCH_OFFSET);

	out[0] = (unsigned char)(v >> 24);
	out[1] = (unsigned char)(v >> 16);
	out[2] = (unsigned char)(v >> 8);
	out[3] = (unsigned char)v;
}

static int time_accept(struct evr_conn *c)
{
	unsigned char t[4];
	int err;

	time_now(t);
	err = evr_send_copy(c, t, sizeof(t));
	if (err < 0)
		return err;
	evr_close(c);
	return 0;
}

static void time_datagram(struct evr_udp *u, struct evr_buf *b,
			  const struct sockaddr *peer, socklen_t peerlen)
{
	unsigned char t[4];

	(void)b;
	time_now(t);
	evr_udp_send_copy(u, t, sizeof(t), peer, peerlen);
}

const struct evr_proto evr_proto_time = {
	.name = "time",
	.summary = "RFC 868: sends the time as 32-bit seconds since 1900, "
		   "then closes",
	.on_accept = time_accept,
	.on_datagram = time_datagram,
};
