/* SPDX-License-Identifier: MIT */
/*
 * spawner.c - processes started by a thread of their own, so that the
 * loop never waits for one.
 *
 * Both ways of starting a process wait for the child's execve: posix_spawn
 * (glibc: clone(CLONE_VM|CLONE_VFORK)) and the clone made here when the
 * user changes, since posix_spawn cannot switch users. Measured on the
 * loop (bench/spawn.sh), that wait held it about 100 us a start, and
 * several milliseconds when the CPU was busy, since the parent runs again
 * only once the child has reached its exec. So the loop hands each start
 * to this thread (a queue under a mutex, a condition variable) and goes
 * on; the thread starts the process and hands the outcome back through a
 * pipe that the loop watches (evr_watch), where evd_start.done runs.
 *
 * The process: fds 0, 1 and 2 are r->fd, nothing else is open
 * (close_range from 3; every descriptor of evringd is close-on-exec
 * anyway), a new session, an empty signal mask, every signal at its
 * default action, the environment of r->envp and nothing else, and, when
 * r->switch_user, the user's groups, group and user (looked up when the
 * configuration was read: nothing here may look anything up).
 *
 * The clone way's child shares our memory until execve: it makes raw
 * system calls only, on a stack of its own, with every signal blocked
 * (this thread blocks them all) until each has its default action.
 * EVRINGD_SPAWN=clone takes that way for every program, to measure it
 * and to test it without root.
 *
 * One spawner serves the loop that first asked; with a loop group each
 * loop will have its own.
 */
#include "evringd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SPAWN_STACK (64 * 1024)

struct spawner {
	struct evr_loop *loop;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct evd_start *todo, **todo_tail;
	struct evd_start *done, **done_tail;
	int pipe[2]; /* the thread tells the loop: starts are done */
	struct evr_watch w;
	bool running, stop;
	char *stack; /* the clone way's child runs here */
};

static struct spawner sp = {
	.mu = PTHREAD_MUTEX_INITIALIZER,
	.cv = PTHREAD_COND_INITIALIZER,
	.pipe = { -1, -1 },
};

void evd_env_add(struct evd_start *r, const char *fmt, ...)
{
	size_t room = sizeof(r->envbuf) - r->envlen;
	va_list ap;
	int n, i = 0;

	while (r->envp[i])
		i++;
	if (i == EVD_ENV_MAX || room == 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(r->envbuf + r->envlen, room, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= room)
		return;
	r->envp[i] = r->envbuf + r->envlen;
	r->envp[i + 1] = NULL;
	r->envlen += (size_t)n + 1;
}

/* ---- the two ways ---- */

struct clone_args {
	const struct evd_start *r;
	int err; /* written by the child: why exec failed */
};

static int clone_child(void *arg)
{
	struct clone_args *a = arg;
	const struct evd_start *r = a->r;
	struct { /* the kernel's struct sigaction: SIG_DFL, no flags */
		void *handler;
		unsigned long flags;
		void *restorer;
		uint64_t mask;
	} dfl;
	sigset_t none;

	/* the raw call: glibc's sigaction() refuses its own internal
	 * signals, which must not stay ignored either */
	memset(&dfl, 0, sizeof(dfl));
	for (int sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			syscall(SYS_rt_sigaction, sig, &dfl, NULL, _NSIG / 8);
	if (syscall(SYS_setsid) < 0)
		goto fail;
	if (r->switch_user &&
	    (syscall(SYS_setgroups, (size_t)r->ngroups, r->groups) < 0 ||
	     syscall(SYS_setgid, r->gid) < 0 ||
	     syscall(SYS_setuid, r->uid) < 0))
		goto fail;
	for (int i = 0; i < 3; i++)
		if (syscall(SYS_dup2, r->fd, i) < 0)
			goto fail;
	syscall(SYS_close_range, 3, ~0U, 0);
	sigemptyset(&none);
	syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, _NSIG / 8);
	syscall(SYS_execve, r->path, r->argv, r->envp);
fail:
	a->err = errno ? errno : EINVAL;
	syscall(SYS_exit_group, 127);
	return 127;
}

static int spawn_clone(struct evd_start *r)
{
	struct clone_args a = { .r = r };

	if (!sp.stack) {
		void *m = mmap(NULL, SPAWN_STACK, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);

		if (m == MAP_FAILED)
			return -errno;
		sp.stack = m;
	}
	r->pid = clone(clone_child, sp.stack + SPAWN_STACK,
		       CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
	if (r->pid < 0)
		return -errno;
	if (a.err) {
		/* it exited without exec: reap it now */
		waitpid(r->pid, NULL, 0);
		r->pid = -1;
	}
	return -a.err;
}

static int spawn_posix(struct evd_start *r)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int err;

	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	for (int i = 0; i < 3; i++)
		posix_spawn_file_actions_adddup2(&fa, r->fd, i);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	sigemptyset(&none);
	/* every signal, glibc's internal ones too: sigfillset() leaves them
	 * out, and posix_spawn() then sets them to SIG_IGN in the child,
	 * which an execve keeps */
	memset(&all, 0xff, sizeof(all));
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &all);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
					  POSIX_SPAWN_SETSIGMASK |
					  POSIX_SPAWN_SETSIGDEF);
	err = posix_spawn(&r->pid, r->path, &fa, &at, r->argv, r->envp);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return -err;
}

static bool force_clone(void)
{
	static int forced = -1;

	if (forced < 0) {
		const char *e = getenv("EVRINGD_SPAWN");

		forced = e && !strcmp(e, "clone");
	}
	return forced;
}

/* ---- the thread ---- */

static void run_one(struct evd_start *r)
{
	struct timespec t0, t1;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r->err =
	    r->switch_user || force_clone() ? spawn_clone(r) : spawn_posix(r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	r->took_us = (uint32_t)((t1.tv_sec - t0.tv_sec) * 1000000 +
				(t1.tv_nsec - t0.tv_nsec) / 1000);
}

static void *spawner_main(void *arg)
{
	sigset_t all;

	(void)arg;
	/* no handler of ours may run here, nor in a clone's child */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, NULL);
	pthread_mutex_lock(&sp.mu);
	for (;;) {
		struct evd_start *r = sp.todo;

		if (!r && sp.stop)
			break;
		if (!r) {
			pthread_cond_wait(&sp.cv, &sp.mu);
			continue;
		}
		sp.todo = r->next;
		if (!sp.todo)
			sp.todo_tail = &sp.todo;
		pthread_mutex_unlock(&sp.mu);
		run_one(r);
		pthread_mutex_lock(&sp.mu);
		r->next = NULL;
		*sp.done_tail = r;
		sp.done_tail = &r->next;
		/* a full pipe holds a wake-up already */
		if (write(sp.pipe[1], "", 1) < 0)
			(void)0;
	}
	pthread_mutex_unlock(&sp.mu);
	return NULL;
}

/* ---- the loop's side ---- */

static void on_done(struct evr_watch *w, int res)
{
	struct evd_start *r;
	char buf[64];

	(void)res;
	while (read(sp.pipe[0], buf, sizeof(buf)) > 0)
		;
	pthread_mutex_lock(&sp.mu);
	r = sp.done;
	sp.done = NULL;
	sp.done_tail = &sp.done;
	pthread_mutex_unlock(&sp.mu);
	evr_watch_start(sp.loop, w, sp.pipe[0], POLLIN, on_done);
	while (r) {
		struct evd_start *next = r->next;

		evr_loop_unhold(sp.loop);
		r->done(r);
		r = next;
	}
}

static int spawner_init(struct evr_loop *l)
{
	int err;

	if (pipe2(sp.pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	sp.loop = l;
	sp.todo_tail = &sp.todo;
	sp.done_tail = &sp.done;
	err = evr_watch_start(l, &sp.w, sp.pipe[0], POLLIN, on_done);
	if (!err)
		err = -pthread_create(&sp.th, NULL, spawner_main, NULL);
	if (err) {
		evr_watch_stop(&sp.w);
		close(sp.pipe[0]);
		close(sp.pipe[1]);
		sp.pipe[0] = sp.pipe[1] = -1;
		return err;
	}
	sp.running = true;
	return 0;
}

int evd_spawner_submit(struct evr_loop *l, struct evd_start *r)
{
	int err;

	if (!sp.running) {
		err = spawner_init(l);
		if (err < 0)
			return err;
	}
	if (l != sp.loop)
		return -EXDEV; /* one loop for now */
	r->next = NULL;
	r->pid = -1;
	r->err = 0;
	/* a drain waits for the answer: it may be a child to wait for */
	evr_loop_hold(l);
	pthread_mutex_lock(&sp.mu);
	*sp.todo_tail = r;
	sp.todo_tail = &r->next;
	pthread_cond_signal(&sp.cv);
	pthread_mutex_unlock(&sp.mu);
	return 0;
}

/* At exit, after the loop: the thread finishes what it was asked, and
 * every start hears -ESHUTDOWN (its child, if any, is left running). */
void evd_spawner_fini(void)
{
	struct evd_start *r;

	if (!sp.running)
		return;
	pthread_mutex_lock(&sp.mu);
	sp.stop = true;
	pthread_cond_signal(&sp.cv);
	pthread_mutex_unlock(&sp.mu);
	pthread_join(sp.th, NULL);
	sp.running = false;
	evr_watch_stop(&sp.w);
	for (r = sp.done; r;) {
		struct evd_start *next = r->next;

		r->err = -ESHUTDOWN;
		r->done(r);
		r = next;
	}
	sp.done = NULL;
	close(sp.pipe[0]);
	close(sp.pipe[1]);
	sp.pipe[0] = sp.pipe[1] = -1;
	if (sp.stack)
		munmap(sp.stack, SPAWN_STACK);
	sp.stack = NULL;
}
