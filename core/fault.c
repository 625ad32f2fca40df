/* SPDX-License-Identifier: MIT */
/*
 * fault.c - fault injection for tests: make chosen calls fail.
 *
 * A table of injection points, each failing every Nth call after the first
 * `after` calls with a chosen error (or cutting a transfer short). Tests set
 * it through evr__fault_set(); nothing else touches it. When no point is
 * set the io_uring filter costs one predictable branch per completion and
 * the epoll backend calls the real system calls through evr__sys. Points,
 * where they act and what they model are listed in docs/reliability.md.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct evr__fault evr__faults[EVR__F__COUNT];
bool evr__faults_on;

struct evr__syscalls evr__sys = {
	.accept4 = accept4,
	.recv = recv,
	.sendmsg = sendmsg,
};

/* ---- the epoll backend's system calls, failing on demand ---- */

static int fault_accept4(int fd, struct sockaddr *sa, socklen_t *len, int flags)
{
	int ferr = evr__fault_hit(EVR__F_ACCEPT);

	if (ferr) {
		errno = -ferr;
		return -1;
	}
	return accept4(fd, sa, len, flags);
}

static ssize_t fault_recv(int fd, void *p, size_t n, int flags)
{
	int ferr = evr__fault_hit(EVR__F_RECV);

	if (ferr) {
		errno = -ferr;
		return -1;
	}
	return recv(fd, p, evr__fault_cut(EVR__F_RECV_SHORT, n), flags);
}

static ssize_t fault_sendmsg(int fd, const struct msghdr *m, int flags)
{
	struct iovec iov[64];
	struct msghdr cut = *m;
	size_t total = 0;
	int cnt = (int)(m->msg_iovlen < 64 ? m->msg_iovlen : 64);
	int ferr = evr__fault_hit(EVR__F_SEND);

	if (ferr) {
		errno = -ferr;
		return -1;
	}
	for (int i = 0; i < cnt; i++) {
		iov[i] = m->msg_iov[i];
		total += iov[i].iov_len;
	}
	evr__iov_cut(iov, &cnt, evr__fault_cut(EVR__F_SEND_SHORT, total));
	cut.msg_iov = iov;
	cut.msg_iovlen = (size_t)cnt;
	return sendmsg(fd, &cut, flags);
}

static void faults_update(void)
{
	evr__faults_on = false;
	for (int i = 0; i < EVR__F__COUNT; i++)
		if (evr__faults[i].every)
			evr__faults_on = true;
	evr__sys.accept4 = evr__faults_on ? fault_accept4 : accept4;
	evr__sys.recv = evr__faults_on ? fault_recv : recv;
	evr__sys.sendmsg = evr__faults_on ? fault_sendmsg : sendmsg;
}

void evr__fault_set(enum evr__fault_point p, uint32_t every, uint32_t after,
		    int err)
{
	evr__faults[p] = (struct evr__fault){
		.every = every,
		.after = after,
		.err = err,
	};
	faults_update();
}

void evr__fault_clear(void)
{
	memset(evr__faults, 0, sizeof(evr__faults));
	faults_update();
}

int evr__fault_hit(enum evr__fault_point p)
{
	struct evr__fault *f = &evr__faults[p];

	if (!f->every)
		return 0;
	if (++f->calls <= f->after || (f->calls - f->after) % f->every)
		return 0;
	f->hits++;
	return f->err ? f->err : -EIO;
}

size_t evr__fault_cut(enum evr__fault_point p, size_t len)
{
	struct evr__fault *f = &evr__faults[p];

	if (len <= 1 || !evr__fault_hit(p))
		return len;
	/* a deterministic length in 1..len-1 */
	return 1 + (size_t)((f->calls * 2654435761u) % (len - 1));
}

void *evr__malloc(size_t n)
{
	if (EVR_UNLIKELY(evr__faults_on) && evr__fault_hit(EVR__F_ALLOC))
		return NULL;
	return malloc(n);
}

void *evr__calloc(size_t n, size_t size)
{
	if (EVR_UNLIKELY(evr__faults_on) && evr__fault_hit(EVR__F_ALLOC))
		return NULL;
	return calloc(n, size);
}
