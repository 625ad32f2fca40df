/* SPDX-License-Identifier: MIT */
/*
 * chargen.c - the Character Generator Protocol, RFC 864.
 *
 * The data is RFC 864's "popular pattern": lines of 72 characters followed
 * by CRLF, line n (from 0) holding the 95 printable ASCII characters
 * (' ' to '~') starting with the n-th, wrapping around. After 95 lines the
 * pattern repeats, so one period is 95 * 74 = 7,030 bytes and the stream
 * is that period again and again.
 *
 * TCP: the server sends the pattern until the client closes. It writes
 * only as fast as the client reads: each connection holds one buffer with
 * one period (made at accept) and queues references to it, never more
 * than CHARGEN_QUEUED bytes; on_sent tops the queue up. A send completes
 * only once the kernel took the bytes into the socket's buffer, so a
 * client that stops reading stops the refills, and the send timeout ends
 * a client that never reads again. What the client sends is thrown away;
 * its end of file does not stop the stream (as BSD inetd), a close or a
 * reset does. On drain the connection closes after what is queued.
 *
 * UDP: any datagram is answered with one datagram of the pattern, "a
 * random number (between 0 and 512) of characters" in RFC 864. Here the
 * number is the largest the amplification guard lets through for this
 * request, at most 512 (evr_udp_reply_max(): with the default cap of 3x
 * in bytes on the wire, 56 characters to an empty IPv4 datagram), so the
 * reply is never cut and never dropped by the guard. Each datagram starts
 * at the line after the one the previous datagram of the thread started
 * at, as BSD inetd rotates its lines.
 */
#include "modules.h"

#include <errno.h>

#define CHARGEN_FIRST	' '
#define CHARGEN_CHARS	95 /* ' ' to '~' */
#define CHARGEN_LINE	72
#define CHARGEN_LINELEN (CHARGEN_LINE + 2)
#define CHARGEN_PERIOD	(CHARGEN_CHARS * CHARGEN_LINELEN)
/* Bytes queued per connection at most: four periods, about 28 KiB, far
 * below the write queue's high-water mark (256 KiB by default). */
#define CHARGEN_QUEUED	(4 * CHARGEN_PERIOD)
#define CHARGEN_UDP_MAX 512 /* RFC 864 */

struct chargen_conn {
	struct evr_buf *period;
};

/* Write len bytes of the pattern, starting at byte off of a period, to
 * out. */
static void chargen_fill(char *out, size_t off, size_t len)
{
	for (size_t i = 0; i < len; i++, off++) {
		size_t line = (off / CHARGEN_LINELEN) % CHARGEN_CHARS;
		size_t col = off % CHARGEN_LINELEN;

		if (col == CHARGEN_LINE)
			out[i] = '\r';
		else if (col == CHARGEN_LINE + 1)
			out[i] = '\n';
		else
			out[i] = (char)(CHARGEN_FIRST +
					(line + col) % CHARGEN_CHARS);
	}
}

static int chargen_top_up(struct evr_conn *c)
{
	struct chargen_conn *st = evr_conn_state(c);

	while (evr_conn_queued(c) + CHARGEN_PERIOD <= CHARGEN_QUEUED) {
		int err = evr_send(c, st->period);

		if (err < 0)
			return err;
	}
	return 0;
}

static int chargen_accept(struct evr_conn *c)
{
	struct chargen_conn *st = evr_conn_state(c);

	st->period = evr_buf_new(evr_conn_loop(c), CHARGEN_PERIOD);
	if (!st->period)
		return -ENOMEM;
	chargen_fill(st->period->data, 0, CHARGEN_PERIOD);
	st->period->len = CHARGEN_PERIOD;
	return chargen_top_up(c);
}

static void chargen_sent(struct evr_conn *c, size_t n)
{
	int err;

	(void)n;
	if (evr_conn_closing(c))
		return;
	err = chargen_top_up(c);
	if (err < 0)
		evr_abort(c, err);
}

static void chargen_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)c, (void)b;
}

static void chargen_eof(struct evr_conn *c)
{
	(void)c;
}

static void chargen_drain(struct evr_conn *c)
{
	evr_close(c);
}

static void chargen_close(struct evr_conn *c, int err)
{
	struct chargen_conn *st = evr_conn_state(c);

	(void)err;
	if (st->period)
		evr_buf_unref(st->period);
	st->period = NULL;
}

static void chargen_datagram(struct evr_udp *u, struct evr_buf *b,
			     const struct sockaddr *peer, socklen_t peerlen)
{
	static __thread unsigned line;
	char text[CHARGEN_UDP_MAX];
	size_t len = evr_udp_reply_max(u);

	(void)b;
	if (len > sizeof(text))
		len = sizeof(text);
	chargen_fill(text, (size_t)line * CHARGEN_LINELEN, len);
	line = (line + 1) % CHARGEN_CHARS;
	evr_udp_send_copy(u, text, len, peer, peerlen);
}

const struct evr_proto evr_proto_chargen = {
	.name = "chargen",
	.summary = "RFC 864: sends the 72-character rotating lines until "
		   "closed (TCP), or one datagram of them (UDP)",
	.state_size = sizeof(struct chargen_conn),
	.on_accept = chargen_accept,
	.on_data = chargen_data,
	.on_eof = chargen_eof,
	.on_sent = chargen_sent,
	.on_drain = chargen_drain,
	.on_close = chargen_close,
	.on_datagram = chargen_datagram,
};
