/* SPDX-License-Identifier: MIT */
/*
 * watch.c - a descriptor's readiness (evr_watch) and a child's exit
 * (evr_child), watched by the loop.
 *
 * Both are one record, struct evr__watch, that the loop allocates and the
 * backend arms: the user's structure only points to it, so it can be
 * reused as soon as it is stopped while the kernel may still hold the
 * record (an io_uring request is answered even when cancelled). Every
 * start of a record is answered by exactly one evr__watch_done(); a
 * record whose owner went is freed there.
 *
 * A child is watched through its pidfd (pidfd_open(2), kernel 5.3): no
 * SIGCHLD handler, so no race between the signal and the pid, and no pid
 * reused under us, since the child stays a zombie until we reap it. The
 * io_uring backend waits with IORING_OP_WAITID (6.7), which reaps it and
 * fills in si; otherwise (epoll, older kernels, EVRING_DISABLE=waitid) the
 * pidfd becomes readable when the child exits and waitid(P_PIDFD,
 * WNOHANG) here reaps it. Where there is no pidfd_open(2) at all (a
 * kernel before 5.3, valgrind), the child's end is polled with
 * waitid(P_PID, WNOHANG) on a timer, every CHILD_POLL_MS.
 */
#include "internal.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3 /* waitid(2) by pidfd, kernel 5.4 */
#endif

#define CHILD_POLL_MS 50

static struct evr__watch *watch_new(struct evr_loop *l, void *owner, int fd,
				    uint8_t kind)
{
	struct evr__watch *w = evr__calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->loop = l;
	w->owner = owner;
	w->fd = fd;
	w->kind = kind;
	evr__list_add_tail(&l->watches, &w->link);
	return w;
}

static void watch_free(struct evr__watch *w)
{
	evr__list_del(&w->link);
	if (w->kind == EVR__W_CHILD && w->fd >= 0)
		close(w->fd);
	free(w);
}

static int watch_arm(struct evr__watch *w)
{
	int err = w->loop->be_ops->watch_start(w);

	if (err < 0)
		return err;
	w->armed = true;
	return 0;
}

int evr_watch_start(struct evr_loop *l, struct evr_watch *ew, int fd,
		    uint32_t events, evr_watch_cb cb)
{
	struct evr__watch *w;
	int err;

	if (ew->req)
		return -EBUSY;
	if (fd < 0 || !cb)
		return -EINVAL;
	w = watch_new(l, ew, fd, EVR__W_FD);
	if (!w)
		return -ENOMEM;
	w->events = events;
	err = watch_arm(w);
	if (err < 0) {
		watch_free(w);
		return err;
	}
	ew->req = w;
	ew->cb = cb;
	l->nwatches++;
	return 0;
}

/* The owner lets go; the record follows once the backend answers. */
static void watch_disown(struct evr__watch *w)
{
	w->owner = NULL;
	evr_timer_stop(w->loop, &w->poll);
	if (w->armed)
		w->loop->be_ops->watch_stop(w);
	else
		watch_free(w);
}

static void child_done(struct evr__watch *w, int res);

/* No pidfd: has the child ended? */
static void child_poll(struct evr_timer *t)
{
	struct evr__watch *w = EVR_CONTAINER_OF(t, struct evr__watch, poll);

	memset(&w->si, 0, sizeof(w->si));
	if (waitid(P_PID, (id_t)w->pid, &w->si, WEXITED | WNOHANG) < 0) {
		child_done(w, -errno);
		return;
	}
	if (w->si.si_pid == 0) {
		evr_timer_start(w->loop, &w->poll, CHILD_POLL_MS);
		return;
	}
	w->waitid = true; /* reaped: si holds its end */
	child_done(w, 0);
}

void evr_watch_stop(struct evr_watch *ew)
{
	struct evr__watch *w = ew->req;

	if (!w)
		return;
	ew->req = NULL;
	w->loop->nwatches--;
	watch_disown(w);
}

int evr_child_watch(struct evr_loop *l, struct evr_child *ec, pid_t pid,
		    int pidfd, evr_child_cb cb)
{
	struct evr__watch *w;
	int fd = pidfd, err;

	if (ec->req)
		return -EBUSY;
	if (pid <= 0 || !cb)
		return -EINVAL;
	if (fd < 0) {
		/* always close-on-exec */
		fd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (fd < 0 && errno != ENOSYS)
			return -errno;
	}
	w = watch_new(l, ec, fd, EVR__W_CHILD);
	if (!w)
		goto out_fd;
	w->pid = pid;
	w->events = POLLIN;
	evr_timer_init(&w->poll, child_poll);
	if (fd < 0) /* no pidfd_open(2) */
		err = evr_timer_start(l, &w->poll, CHILD_POLL_MS);
	else
		err = watch_arm(w);
	if (err < 0) {
		w->fd = -1; /* the caller's again, or closed below */
		watch_free(w);
		goto out_err;
	}
	ec->req = w;
	ec->cb = cb;
	ec->pid = pid;
	l->nchildren++;
	return 0;

out_fd:
	err = -ENOMEM;
out_err:
	if (pidfd < 0 && fd >= 0)
		close(fd);
	return err;
}

void evr_child_unwatch(struct evr_child *ec)
{
	struct evr__watch *w = ec->req;

	if (!w)
		return;
	ec->req = NULL;
	w->loop->nchildren--;
	watch_disown(w);
}

/* waitid(2)'s account of a child as waitpid(2) would give it. */
static int wait_status(const siginfo_t *si)
{
	switch (si->si_code) {
	case CLD_EXITED:
		return (si->si_status & 0xff) << 8;
	case CLD_DUMPED:
		return (si->si_status & 0x7f) | 0x80;
	default: /* CLD_KILLED */
		return si->si_status & 0x7f;
	}
}

/* A child's pidfd is readable, or WAITID completed: reap, tell. */
static void child_done(struct evr__watch *w, int res)
{
	struct evr_child *ec = w->owner;
	struct evr_loop *l = w->loop;
	int status;

	if (!w->waitid && res >= 0) {
		memset(&w->si, 0, sizeof(w->si));
		if (waitid(P_PIDFD, (id_t)w->fd, &w->si, WEXITED | WNOHANG) < 0)
			res = -errno;
		else if (w->si.si_pid == 0 && watch_arm(w) == 0)
			return; /* readable before its end: wait on */
	}
	if (res < 0) /* -ECHILD: reaped elsewhere (SIGCHLD ignored?) */
		evr_log_err("child %d: waitid: %s", (int)w->pid,
			    evr__strerror(res));
	status = res < 0 ? -1 : wait_status(&w->si);
	ec->req = NULL;
	l->nchildren--;
	watch_free(w);
	ec->cb(ec, ec->pid, status);
}

void evr__watch_done(struct evr__watch *w, int res)
{
	struct evr_watch *ew = w->owner;

	w->armed = false;
	if (!ew) {
		watch_free(w);
		return;
	}
	if (w->kind == EVR__W_CHILD) {
		child_done(w, res);
		return;
	}
	ew->req = NULL;
	w->loop->nwatches--;
	watch_free(w);
	ew->cb(ew, res);
}

/* Loop teardown: the backend is gone, no request is answered any more. */
void evr__watch_free_all(struct evr_loop *l)
{
	while (!evr__list_empty(&l->watches)) {
		struct evr__watch *w =
		    EVR_CONTAINER_OF(l->watches.next, struct evr__watch, link);

		if (w->owner && w->kind == EVR__W_CHILD)
			((struct evr_child *)w->owner)->req = NULL;
		else if (w->owner)
			((struct evr_watch *)w->owner)->req = NULL;
		watch_free(w);
	}
	l->nwatches = l->nchildren = 0;
}
