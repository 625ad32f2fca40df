/* SPDX-License-Identifier: MIT */
/*
 * epoll_udp_echo.c - benchmark peer: an epoll UDP echo server (RFC 862,
 * "UDP Based Echo Service") on recvmmsg/sendmmsg batches.
 *
 *	epoll_udp_echo [-b ADDR] -p PORT
 *
 * One thread, one nonblocking UDP socket in a level-triggered epoll set.
 * Each readiness receives up to BATCH datagrams with one recvmmsg(2) and
 * sends them back to their senders with sendmmsg(2), then returns to
 * epoll_wait: a flood can then never keep the signalfd from being read,
 * and level triggering brings us straight back if more is queued. Every
 * datagram has a 64 KiB slot, so none is ever truncated.
 *
 * Prints "listen echo udp ADDR:PORT epoll" once bound. SIGINT or SIGTERM
 * (through a signalfd) exits 0; an error exits 1, bad usage 2.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define PEER_PROG  "epoll_udp_echo"
#define PEER_PROTO "UDP"
#include "peer.h"

#define BATCH	  64
#define DGRAM_MAX 65536 /* more than any UDP payload (65507 on IPv4) */

struct batch {
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct sockaddr_storage from[BATCH];
	char buf[BATCH][DGRAM_MAX];
};

static int epoll_add(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void batch_init(struct batch *b)
{
	for (int i = 0; i < BATCH; i++) {
		b->iov[i].iov_base = b->buf[i];
		b->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &b->from[i],
			.msg_iov = &b->iov[i],
			.msg_iovlen = 1,
		};
	}
}

/*
 * One batch in, the same batch out. A datagram the kernel refuses to send
 * is skipped and the rest still go; when the send buffer is full the rest
 * are dropped, as UDP may (blocking here would stall every other sender).
 * Returns the number of datagrams received or -errno.
 */
static int echo_batch(int fd, struct batch *b)
{
	int n;

	for (int i = 0; i < BATCH; i++) {
		b->iov[i].iov_len = DGRAM_MAX;
		b->msgs[i].msg_hdr.msg_namelen = sizeof(b->from[i]);
	}
	n = recvmmsg(fd, b->msgs, BATCH, 0, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++)
		b->iov[i].iov_len = b->msgs[i].msg_len;
	for (int i = 0; i < n;) {
		int sent = sendmmsg(fd, b->msgs + i, (unsigned int)(n - i), 0);

		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				break;
			sent = 1;
		}
		i += sent;
	}
	return n;
}

/* Returns 0 after SIGINT/SIGTERM, -errno (reported) on an error. */
static int run(int epfd, int ufd, int sfd, struct batch *b)
{
	struct epoll_event evs[2];

	for (;;) {
		int n = epoll_wait(epfd, evs, 2, -1);

		if (n < 0) {
			int err = -errno;

			if (err == -EINTR)
				continue;
			fprintf(stderr, "%s: epoll_wait: %s\n", PEER_PROG,
				strerror(-err));
			return err;
		}
		for (int i = 0; i < n; i++) {
			int err;

			if (evs[i].data.fd == sfd)
				return 0;
			err = echo_batch(ufd, b);
			if (err < 0) {
				fprintf(stderr, "%s: recvmmsg: %s\n", PEER_PROG,
					strerror(-err));
				return err;
			}
		}
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	int epfd, sfd, ufd, err;
	char a[PEER_ADDRSTR];
	struct batch *b;
	socklen_t len;

	if (peer_parse_args(argc, argv, &ss, &len) < 0)
		return PEER_EXIT_USAGE;
	b = malloc(sizeof(*b)); /* 4 MiB, touched only as far as used */
	if (!b) {
		fprintf(stderr, "%s: malloc: %s\n", PEER_PROG,
			strerror(ENOMEM));
		return 1;
	}
	batch_init(b);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		err = -errno;
		fprintf(stderr, "%s: epoll_create1: %s\n", PEER_PROG,
			strerror(-err));
		goto out_free;
	}
	sfd = peer_signalfd();
	err = sfd;
	if (err >= 0)
		err = epoll_add(epfd, sfd);
	if (err < 0) {
		fprintf(stderr, "%s: signalfd: %s\n", PEER_PROG,
			strerror(-err));
		goto out_sfd;
	}
	ufd = peer_socket(SOCK_DGRAM, &ss, len);
	if (ufd < 0) {
		err = ufd;
		goto out_sfd;
	}
	err = epoll_add(epfd, ufd);
	if (err < 0) {
		peer_sock_error("epoll_ctl", &ss, -err);
		goto out_ufd;
	}
	printf("listen echo udp %s epoll\n", peer_addr_str(&ss, a, sizeof(a)));
	fflush(stdout);
	err = run(epfd, ufd, sfd, b);

out_ufd:
	close(ufd);
out_sfd:
	if (sfd >= 0)
		close(sfd);
	close(epfd);
out_free:
	free(b);
	return err < 0 ? 1 : 0;
}
