/* SPDX-License-Identifier: MIT */
/*
 * test_handover.c - what a program needs from the loop to hand sockets
 * and processes around, on both backends, in a loop run by the test
 * itself: descriptor watches (evr_watch), children reaped through the
 * loop (evr_child; io_uring with IORING_OP_WAITID and with it turned off),
 * a connection's socket taken for another owner (evr_conn_detach), a
 * connection moved to another module (evr_conn_switch), and a listener or
 * UDP socket that changes configuration without closing
 * (evr_listener_set_cfg, evr_udp_set_cfg).
 *
 * Clients run on a thread of their own with blocking sockets while the
 * loop runs on the test's thread; a 20 s timer ends a loop that hangs.
 */
#include "harness.h"

#include "evring.h"
#include "evring/modules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* Client threads may not assert (Criterion's asserts end the test from
 * its own thread): they note the first failure, the test asserts it. */
static char thread_fail[256];

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			if (!thread_fail[0])                                   \
				snprintf(thread_fail, sizeof(thread_fail),     \
					 "line %d: " #cond, __LINE__);         \
			goto out;                                              \
		}                                                              \
	} while (0)

/* ---- a loop on the test's thread ---- */

struct rig {
	struct evr_loop *l;
	struct evr_timer guard, poll;
	atomic_bool done;
	bool hung;
};

static void rig_guard(struct evr_timer *t)
{
	struct rig *r = EVR_CONTAINER_OF(t, struct rig, guard);

	r->hung = true;
	evr_loop_stop(r->l);
}

/* The client thread says it is done: stop the loop. */
static void rig_poll(struct evr_timer *t)
{
	struct rig *r = EVR_CONTAINER_OF(t, struct rig, poll);

	if (atomic_load(&r->done))
		evr_loop_stop(r->l);
	else
		evr_timer_start(r->l, &r->poll, 2);
}

static void rig_new(struct rig *r, const char *backend)
{
	struct evr_loop_opts o;

	skip_unless_backend_runs(backend);
	memset(r, 0, sizeof(*r));
	evr_loop_opts_init(&o);
	o.backend = backend;
	o.buf_count = 64;
	cr_assert_eq(evr_loop_new(&r->l, &o), 0);
	evr_timer_init(&r->guard, rig_guard);
	evr_timer_init(&r->poll, rig_poll);
}

/* Run until the client thread is done (or a watch/child callback stops
 * the loop itself); assert it did not hang. */
static void rig_run(struct rig *r, bool poll_done)
{
	evr_timer_start(r->l, &r->guard, 20000);
	if (poll_done)
		evr_timer_start(r->l, &r->poll, 2);
	cr_assert_eq(evr_loop_run(r->l), 0);
	cr_assert_not(r->hung, "the loop hung");
}

static void rig_free(struct rig *r)
{
	cr_assert_eq(evr_loop_free(r->l), 0);
}

static struct evr_listener *
rig_listen(struct rig *r, const struct evr_listen_cfg *cfg, uint16_t *port)
{
	struct sockaddr_storage ss;
	struct evr_listener *ls;
	socklen_t len;

	evr_addr_parse("127.0.0.1", 0, &ss, &len);
	cr_assert_eq(evr_listen(r->l, (struct sockaddr *)&ss, len, cfg, &ls),
		     0);
	evr_listener_addr(ls, &ss, &len);
	*port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	return ls;
}

static bool zombie(pid_t pid)
{
	/* reaped: no such child any more */
	return waitpid(pid, NULL, WNOHANG) != -1 || errno != ECHILD;
}

/* ---- descriptor watches ---- */

struct pipe_watch {
	struct evr_watch w;
	int fds[2];
	int res;
	int calls;
	struct rig *r;
};

static void on_pipe(struct evr_watch *w, int res)
{
	struct pipe_watch *p = EVR_CONTAINER_OF(w, struct pipe_watch, w);

	p->res = res;
	p->calls++;
	evr_loop_stop(p->r->l);
}

static void *write_later(void *arg)
{
	int fd = *(int *)arg;

	usleep(50 * 1000);
	CHECK(write(fd, "x", 1) == 1);
out:
	return NULL;
}

BACKEND_TEST(handover, watch_fires_once_when_the_descriptor_is_ready)
{
	struct pipe_watch p = { 0 };
	struct rig r;
	pthread_t th;
	char c;

	rig_new(&r, backend);
	p.r = &r;
	cr_assert_eq(pipe2(p.fds, O_CLOEXEC), 0);
	cr_assert_eq(evr_watch_start(r.l, &p.w, p.fds[0], POLLIN, on_pipe), 0);
	cr_assert(evr_watch_active(&p.w));
	cr_assert_eq(evr_watch_start(r.l, &p.w, p.fds[0], POLLIN, on_pipe),
		     -EBUSY);
	pthread_create(&th, NULL, write_later, &p.fds[1]);
	rig_run(&r, false);
	pthread_join(th, NULL);
	cr_assert_eq(p.calls, 1);
	cr_assert(p.res & POLLIN, "res %d", p.res);
	cr_assert_not(evr_watch_active(&p.w));
	/* the loop never read: the byte is still there */
	cr_assert_eq(read(p.fds[0], &c, 1), 1);
	rig_free(&r);
	close(p.fds[0]);
	close(p.fds[1]);
}

/* A watch stopped before its descriptor is ready never calls back, and
 * its memory may go at once (ASan would see a later write). A watch keeps
 * the loop running; a stopped one does not. */
BACKEND_TEST(handover, watch_stopped_never_calls_back_and_ends_the_loop)
{
	struct pipe_watch *p = calloc(1, sizeof(*p));
	struct rig r;
	int fds[2];

	rig_new(&r, backend);
	p->r = &r;
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	cr_assert_eq(evr_watch_start(r.l, &p->w, fds[0], POLLIN, on_pipe), 0);
	evr_watch_stop(&p->w);
	evr_watch_stop(&p->w); /* idempotent */
	free(p);
	cr_assert_eq(write(fds[1], "x", 1), 1);
	/* nothing keeps it: returns at once, without the guard timer */
	cr_assert_eq(evr_loop_run(r.l), 0);
	rig_free(&r);
	close(fds[0]);
	close(fds[1]);
}

/* ---- children ---- */

struct kid {
	struct evr_child w;
	pid_t pid;
	int status;
	int calls;
	struct rig *r;
	int *left;
};

static void on_kid(struct evr_child *w, pid_t pid, int status)
{
	struct kid *k = EVR_CONTAINER_OF(w, struct kid, w);

	cr_assert_eq(pid, k->pid);
	k->status = status;
	k->calls++;
	if (--*k->left == 0)
		evr_loop_stop(k->r->l);
}

static pid_t fork_child(int how)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		usleep(20 * 1000);
		if (how == SIGTERM)
			raise(SIGTERM);
		_exit(how);
	}
	return pid;
}

static void children_reaped(const char *backend)
{
	struct kid k[2] = { 0 };
	struct rig r;
	int left = 2;

	rig_new(&r, backend);
	if (getenv("EVRING_DISABLE"))
		cr_assert(strstr(evr_loop_features(r.l), " -waitid"), "%s",
			  evr_loop_features(r.l));
	k[0].pid = fork_child(7);
	k[1].pid = fork_child(SIGTERM);
	for (int i = 0; i < 2; i++) {
		k[i].r = &r;
		k[i].left = &left;
		cr_assert_eq(
		    evr_child_watch(
			r.l, &k[i].w, k[i].pid,
			i ? -1 : (int)syscall(SYS_pidfd_open, k[0].pid, 0),
			on_kid),
		    0);
	}
	rig_run(&r, false);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(k[i].calls, 1);
		cr_assert_not(zombie(k[i].pid), "child %d not reaped", i);
		cr_assert_not(evr_child_active(&k[i].w));
	}
	cr_assert(WIFEXITED(k[0].status) && WEXITSTATUS(k[0].status) == 7,
		  "status %#x", k[0].status);
	cr_assert(WIFSIGNALED(k[1].status) && WTERMSIG(k[1].status) == SIGTERM,
		  "status %#x", k[1].status);
	rig_free(&r);
}

BACKEND_TEST(handover, children_are_reaped_with_their_status)
{
	children_reaped(backend);
}

/* The off-switch reaches the other path: the pidfd is polled. */
Test(handover_io_uring, children_are_reaped_without_waitid, .timeout = 120)
{
	setenv("EVRING_DISABLE", "waitid", 1);
	children_reaped("io_uring");
}

/* A child keeps the loop running until it has exited and been reaped. */
BACKEND_TEST(handover, a_watched_child_keeps_the_loop_running)
{
	struct kid k = { 0 };
	struct rig r;
	int left = 1;
	int64_t t0 = now_ms();

	rig_new(&r, backend);
	k.r = &r;
	k.left = &left;
	k.pid = fork();
	cr_assert_geq(k.pid, 0);
	if (k.pid == 0) {
		usleep(300 * 1000);
		_exit(0);
	}
	cr_assert_eq(evr_child_watch(r.l, &k.w, k.pid, -1, on_kid), 0);
	/* no guard timer: only the child keeps it */
	cr_assert_eq(evr_loop_run(r.l), 0);
	cr_assert_eq(k.calls, 1);
	cr_assert_geq(now_ms() - t0, 250);
	cr_assert_not(zombie(k.pid));
	rig_free(&r);
}

/* Unwatched: no callback, the child is the caller's to reap. */
BACKEND_TEST(handover, an_unwatched_child_is_left_to_its_parent)
{
	struct kid k = { 0 };
	struct rig r;
	int left = 1, status;

	rig_new(&r, backend);
	k.r = &r;
	k.left = &left;
	k.pid = fork_child(3);
	cr_assert_eq(evr_child_watch(r.l, &k.w, k.pid, -1, on_kid), 0);
	evr_child_unwatch(&k.w);
	cr_assert_eq(evr_loop_run(r.l), 0);
	cr_assert_eq(waitpid(k.pid, &status, 0), k.pid);
	cr_assert_eq(WEXITSTATUS(status), 3);
	cr_assert_eq(k.calls, 0);
	cr_assert_eq(evr_child_watch(r.l, &k.w, 999999, -1, on_kid), -ESRCH);
	rig_free(&r);
}

/* ---- detach ---- */

struct taker {
	atomic_int fd;
	atomic_int closes;
	atomic_int close_err;
	bool on_line; /* detach at the first LF, else in on_accept */
};

static struct taker taker;

static int take_accept(struct evr_conn *c)
{
	if (!taker.on_line)
		atomic_store(&taker.fd, evr_conn_detach(c));
	return 0;
}

static void take_data(struct evr_conn *c, struct evr_buf *b)
{
	if (taker.on_line && memchr(b->data, '\n', b->len))
		atomic_store(&taker.fd, evr_conn_detach(c));
	else if (!taker.on_line)
		cr_assert_fail("a detached connection got bytes");
}

static void take_close(struct evr_conn *c, int err)
{
	(void)c;
	atomic_store(&taker.close_err, err);
	atomic_fetch_add(&taker.closes, 1);
}

static const struct evr_proto take_proto = {
	.name = "taker",
	.on_accept = take_accept,
	.on_data = take_data,
	.on_close = take_close,
};

struct detach_client {
	uint16_t port;
	struct rig *r;
	char got[64];
	int gotlen;
};

/* The client speaks; the test reads what it said from the descriptor the
 * module took: the loop consumed none of it. */
static void *detach_client(void *arg)
{
	struct detach_client *x = arg;
	int fd = tcp_connect(AF_INET, x->port), mine = -1;
	int64_t deadline = now_ms() + 10000;
	char back[8] = { 0 };

	CHECK(fd >= 0);
	if (taker.on_line)
		CHECK(write_all(fd, "GO\n", 3) == 0);
	while ((mine = atomic_load(&taker.fd)) < 0 && now_ms() < deadline)
		usleep(1000);
	CHECK(mine >= 0);
	/* after the hand-over: these are the new owner's */
	CHECK(write_all(fd, "hello, new owner", 16) == 0);
	shutdown(fd, SHUT_WR);
	fcntl(mine, F_SETFL, fcntl(mine, F_GETFL) & ~O_NONBLOCK);
	x->gotlen = (int)read_to_eof(mine, x->got, sizeof(x->got) - 1);
	/* and the new owner answers: the loop does not hold the socket */
	CHECK(write_all(mine, "bye", 3) == 0);
	close(mine);
	mine = -1;
	CHECK(read_to_eof(fd, back, sizeof(back)) == 3);
	CHECK(!strcmp(back, "bye"));
out:
	if (mine >= 0)
		close(mine);
	if (fd >= 0)
		close(fd);
	atomic_store(&x->r->done, true);
	return NULL;
}

static void detach_run(const char *backend, bool on_line)
{
	struct evr_listen_cfg cfg = { .proto = &take_proto };
	struct detach_client x = { 0 };
	struct rig r;
	pthread_t th;
	struct evr_stats st;

	memset(&taker, 0, sizeof(taker));
	atomic_store(&taker.fd, -1);
	taker.on_line = on_line;
	rig_new(&r, backend);
	rig_listen(&r, &cfg, &x.port);
	x.r = &r;
	pthread_create(&th, NULL, detach_client, &x);
	rig_run(&r, true);
	pthread_join(th, NULL);
	cr_assert_eq(thread_fail[0], 0, "client: %s", thread_fail);
	cr_assert_eq(x.gotlen, 16, "the new owner got %d bytes", x.gotlen);
	cr_assert_eq(memcmp(x.got, "hello, new owner", 16), 0);
	cr_assert_eq(atomic_load(&taker.closes), 1, "on_close once");
	cr_assert_eq(atomic_load(&taker.close_err), 0);
	evr_loop_stats(r.l, &st);
	cr_assert_eq(st.conns_open, 0);
	cr_assert_eq(st.bufs_free, st.bufs_total);
	rig_free(&r);
}

BACKEND_TEST(handover, detach_in_on_accept_leaves_every_byte_to_the_owner)
{
	detach_run(backend, false);
}

BACKEND_TEST(handover, detach_after_a_request_takes_no_later_byte)
{
	detach_run(backend, true);
}

/* ---- switch ---- */

static struct evr_connector *switch_to;

static void mux_data(struct evr_conn *c, struct evr_buf *b)
{
	char *nl = memchr(b->data, '\n', b->len);
	size_t off;

	if (!nl)
		return;
	off = (size_t)(nl + 1 - b->data);
	cr_assert_eq(evr_conn_switch(c, switch_to, b->data + off, b->len - off),
		     0);
}

static const struct evr_proto mux_proto = {
	.name = "mux",
	.state_size = 8, /* smaller than the line framer's: a new state */
	.on_data = mux_data,
};

struct switch_client {
	uint16_t port;
	struct rig *r;
};

static void *switch_client(void *arg)
{
	struct switch_client *x = arg;
	char buf[64] = { 0 };
	int fd = tcp_connect(AF_INET, x->port);

	CHECK(fd >= 0);
	/* the name, and bytes for the service in the same segment */
	CHECK(write_all(fd, "echo\nabc", 8) == 0);
	CHECK(read_exact(fd, buf, 3) == 3);
	CHECK(!strcmp(buf, "abc"));
	CHECK(write_all(fd, "def", 3) == 0);
	shutdown(fd, SHUT_WR);
	CHECK(read_to_eof(fd, buf, sizeof(buf)) == 3);
	CHECK(!memcmp(buf, "def", 3));
out:
	if (fd >= 0)
		close(fd);
	atomic_store(&x->r->done, true);
	return NULL;
}

BACKEND_TEST(handover, switch_hands_the_connection_and_its_bytes_over)
{
	struct evr_listen_cfg cfg = { .proto = &mux_proto };
	struct evr_listen_cfg ecfg = { .proto = &evr_proto_echo };
	struct switch_client x = { 0 };
	struct evr_stats st;
	struct rig r;
	pthread_t th;

	rig_new(&r, backend);
	cr_assert_eq(evr_connector_new(r.l, &ecfg, &switch_to), 0);
	rig_listen(&r, &cfg, &x.port);
	x.r = &r;
	pthread_create(&th, NULL, switch_client, &x);
	rig_run(&r, true);
	pthread_join(th, NULL);
	cr_assert_eq(thread_fail[0], 0, "client: %s", thread_fail);
	evr_loop_stats(r.l, &st);
	cr_assert_eq(st.conns_open, 0);
	cr_assert_eq(st.bufs_heap, 0);
	evr_connector_free(switch_to);
	rig_free(&r);
}

/* ---- a listener and a UDP socket change configuration ---- */

static atomic_int released[2];

static void on_release(void *arg)
{
	atomic_fetch_add(&released[(intptr_t)arg], 1);
}

struct setcfg_client {
	uint16_t port, uport;
	struct rig *r;
	struct evr_listener *ls;
	struct evr_udp *u;
	atomic_int phase; /* 1: the test switched the configuration */
	int fd_after;	  /* the listener's socket after the switch */
};

static void *setcfg_client(void *arg)
{
	struct setcfg_client *x = arg;
	char buf[128] = { 0 };
	int old = tcp_connect(AF_INET, x->port), fresh = -1;
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, x->uport, &ss);
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct timeval tv = { .tv_sec = 5 };

	CHECK(old >= 0 && u >= 0);
	CHECK(write_all(old, "1", 1) == 0);
	CHECK(read_exact(old, buf, 1) == 1); /* echoed: accepted */
	atomic_store(&x->phase, 1);
	while (atomic_load(&x->phase) != 2)
		usleep(1000);
	/* the old connection keeps its module; a new one gets daytime */
	CHECK(write_all(old, "2", 1) == 0);
	CHECK(read_exact(old, buf, 1) == 1);
	CHECK(buf[0] == '2');
	CHECK(atomic_load(&released[0]) == 0); /* still in use */
	fresh = tcp_connect(AF_INET, x->port);
	CHECK(fresh >= 0);
	CHECK(read_to_eof(fresh, buf, sizeof(buf) - 1) > 10);
	CHECK(strstr(buf, "\r\n"));
	/* UDP: daytime answers now */
	setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	CHECK(sendto(u, "x", 1, 0, (struct sockaddr *)&ss, len) == 1);
	memset(buf, 0, sizeof(buf));
	ssize_t n;

	do /* a stop and continue of the process is not the end */
		n = recv(u, buf, sizeof(buf) - 1, 0);
	while (n < 0 && errno == EINTR);
	CHECK(n > 10);
	CHECK(strstr(buf, "\r\n"));
out:
	if (fresh >= 0)
		close(fresh);
	if (old >= 0)
		close(old);
	if (u >= 0)
		close(u);
	atomic_store(&x->r->done, true);
	return NULL;
}

static void setcfg_tick(struct evr_timer *t);
static struct setcfg_client *setcfg_x;
static struct evr_timer setcfg_timer;

static void setcfg_tick(struct evr_timer *t)
{
	struct setcfg_client *x = setcfg_x;
	struct evr_listen_cfg cfg = { .proto = &evr_proto_daytime,
				      .release = on_release,
				      .release_arg = (void *)1 };
	struct evr_udp_cfg ucfg = { .proto = &evr_proto_daytime,
				    .release = on_release,
				    .release_arg = (void *)1 };

	if (atomic_load(&x->phase) != 1) {
		evr_timer_start(x->r->l, t, 2);
		return;
	}
	ucfg.guard.rate = EVR_UDP_UNLIMITED;
	cr_assert_eq(evr_listener_set_cfg(x->ls, &cfg), 0);
	cr_assert_eq(evr_udp_set_cfg(x->u, &ucfg), 0);
	x->fd_after = evr_listener_fd(x->ls);
	atomic_store(&x->phase, 2);
}

BACKEND_TEST(handover, set_cfg_serves_new_clients_and_keeps_the_old_ones)
{
	struct evr_listen_cfg cfg = { .proto = &evr_proto_echo,
				      .release = on_release,
				      .release_arg = (void *)0 };
	struct evr_udp_cfg ucfg = { .proto = &evr_proto_echo };
	struct setcfg_client x = { 0 };
	struct sockaddr_storage ss;
	struct rig r;
	pthread_t th;
	socklen_t len;
	int fd0;

	rig_new(&r, backend);
	x.ls = rig_listen(&r, &cfg, &x.port);
	fd0 = evr_listener_fd(x.ls);
	evr_addr_parse("127.0.0.1", 0, &ss, &len);
	cr_assert_eq(
	    evr_udp_bind(r.l, (struct sockaddr *)&ss, len, &ucfg, &x.u), 0);
	evr_udp_addr(x.u, &ss, &len);
	x.uport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	x.r = &r;
	setcfg_x = &x;
	evr_timer_init(&setcfg_timer, setcfg_tick);
	evr_timer_start(r.l, &setcfg_timer, 1);
	pthread_create(&th, NULL, setcfg_client, &x);
	rig_run(&r, true);
	pthread_join(th, NULL);
	cr_assert_eq(thread_fail[0], 0, "client: %s", thread_fail);
	cr_assert_eq(x.fd_after, fd0, "the socket changed");
	/* echo's configuration went with its last connection, daytime's
	 * with the listener and the socket (evr_loop_stop closed them) */
	cr_assert_eq(atomic_load(&released[0]), 1);
	cr_assert_eq(atomic_load(&released[1]), 2);
	rig_free(&r);
}

/* ---- a listener drained on its own ---- */

static void bye_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)c, (void)b;
}

static void bye_drain(struct evr_conn *c)
{
	evr_send_copy(c, "bye\n", 4);
	evr_close(c);
}

static const struct evr_proto bye_proto = {
	.name = "bye",
	.on_data = bye_data,
	.on_drain = bye_drain,
};

struct drain_client {
	uint16_t port;
	struct rig *r;
	atomic_int phase;
};

static void *drain_client(void *arg)
{
	struct drain_client *x = arg;
	char buf[16] = { 0 };
	int fd = tcp_connect(AF_INET, x->port), again = -1;

	CHECK(fd >= 0);
	CHECK(write_all(fd, "x", 1) == 0);
	atomic_store(&x->phase, 1);
	CHECK(read_to_eof(fd, buf, sizeof(buf)) == 4);
	CHECK(!strcmp(buf, "bye\n"));
	again = tcp_connect(AF_INET, x->port);
	CHECK(again < 0 && errno == ECONNREFUSED);
out:
	if (fd >= 0)
		close(fd);
	if (again >= 0)
		close(again);
	atomic_store(&x->r->done, true);
	return NULL;
}

static struct drain_client *drain_x;
static struct evr_listener *drain_ls;
static struct evr_timer drain_timer;

static void drain_tick(struct evr_timer *t)
{
	struct evr_stats st;

	evr_loop_stats(drain_x->r->l, &st);
	if (atomic_load(&drain_x->phase) != 1 || st.conns_open == 0) {
		evr_timer_start(drain_x->r->l, t, 2);
		return;
	}
	evr_listener_drain(drain_ls);
}

/* The connection was accepted under a configuration set later: the drain
 * reaches it too. */
BACKEND_TEST(handover, a_drained_listener_tells_its_connections)
{
	struct evr_listen_cfg cfg = { .proto = &evr_proto_echo };
	struct evr_listen_cfg bye = { .proto = &bye_proto };
	struct drain_client x = { 0 };
	struct rig r;
	pthread_t th;

	rig_new(&r, backend);
	drain_ls = rig_listen(&r, &cfg, &x.port);
	cr_assert_eq(evr_listener_set_cfg(drain_ls, &bye), 0);
	x.r = &r;
	drain_x = &x;
	evr_timer_init(&drain_timer, drain_tick);
	evr_timer_start(r.l, &drain_timer, 1);
	pthread_create(&th, NULL, drain_client, &x);
	rig_run(&r, true);
	pthread_join(th, NULL);
	cr_assert_eq(thread_fail[0], 0, "client: %s", thread_fail);
	rig_free(&r);
}

/* ---- holds ---- */

static struct evr_timer unhold_timer;
static struct evr_loop *hold_loop;
static int64_t unheld_at;

static void unhold_later(struct evr_timer *t)
{
	(void)t;
	unheld_at = now_ms();
	evr_loop_unhold(hold_loop);
}

/* A hold keeps a draining loop running until it is undone; a timer alone
 * would not. */
BACKEND_TEST(handover, a_hold_keeps_a_draining_loop_until_undone)
{
	struct rig r;
	int64_t t0;

	rig_new(&r, backend);
	hold_loop = r.l;
	evr_loop_hold(r.l);
	evr_timer_init(&unhold_timer, unhold_later);
	evr_timer_start(r.l, &unhold_timer, 200);
	evr_loop_drain(r.l, 10000);
	t0 = now_ms();
	cr_assert_eq(evr_loop_run(r.l), 0);
	cr_assert_gt(unheld_at, 0, "returned before the unhold");
	cr_assert_geq(now_ms() - t0, 150);
	rig_free(&r);
}
