/* SPDX-License-Identifier: MIT */
/*
 * test_reload.c - SIGHUP reloads evringd's configuration (reload.c), over
 * real sockets on both backends: a listener whose address, port and
 * protocol stay is the same socket (its inode in /proc/net/tcp) and
 * keeps serving, under the new configuration; removed services stop
 * accepting while their connections go on (and hear on_drain); new ones
 * open; each reload prints the listener lines and a summary; a steady
 * load sees no refused connection across reloads; a file with an error,
 * or a port that cannot be bound, leaves everything as it was.
 */
#include "evd_conf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *me(void)
{
	struct passwd *pw = getpwuid(geteuid());

	cr_assert_not_null(pw);
	return pw->pw_name;
}

struct ports {
	uint16_t a, b, c, d;
};

/* Four distinct free ports: each stays bound until all are chosen (a
 * port closed at once could be handed out again by the next bind, and
 * the configuration would name it twice). */
static void pick(struct ports *p)
{
	int fds[4] = { bind_free(&p->a), bind_free(&p->b), bind_free(&p->c),
		       bind_free(&p->d) };

	for (int i = 0; i < 4; i++)
		close(fds[i]);
}

/* echo on a, daytime on b, tcpmux on c */
static void conf1(char *text, size_t n, const struct ports *p)
{
	snprintf(text, n,
		 "127.0.0.1:\n"
		 "%u stream tcp nowait %s echo\n"
		 "%u stream tcp nowait %s daytime\n"
		 "%u stream tcp nowait %s tcpmux\n",
		 p->a, me(), p->b, me(), p->c, me());
}

/* echo on a as before, time instead of daytime on b, c gone, chargen on
 * d */
static void conf2(char *text, size_t n, const struct ports *p)
{
	snprintf(text, n,
		 "127.0.0.1:\n"
		 "%u stream tcp nowait %s echo\n"
		 "%u stream tcp nowait %s time\n"
		 "%u stream tcp nowait %s chargen\n",
		 p->a, me(), p->b, me(), p->d, me());
}

static void reload(struct srv *s, char *out, size_t cap)
{
	kill(s->pid, SIGHUP);
	cr_assert_eq(srv_read_until(s, "reload:", out, cap, 10000), 0,
		     "no summary; stdout: %s; log: %s", out, srv_log(s));
}

static bool echoes(uint16_t port)
{
	char buf[64];

	return tcp_ask(AF_INET, port, "ping\n", buf, sizeof(buf)) == 5 &&
	       !strcmp(buf, "ping\n");
}

BACKEND_TEST(reload, kept_sockets_stay_removed_ones_drain_new_ones_open)
{
	char text[1024], out[2048], buf[64];
	unsigned long ia, ib, ic;
	struct ports p;
	struct srv s;
	int open_echo, open_mux;
	const char *path;

	pick(&p);
	conf1(text, sizeof(text), &p);
	path = conf_write(text);
	conf_start(&s, backend, path, 3, NULL);
	ia = listen_inode(p.a);
	ib = listen_inode(p.b);
	ic = listen_inode(p.c);
	cr_assert(ia && ib && ic);
	/* connections under the first configuration */
	open_echo = tcp_connect(AF_INET, p.a);
	open_mux = tcp_connect(AF_INET, p.c);
	cr_assert(open_echo >= 0 && open_mux >= 0);
	cr_assert_eq(write_all(open_echo, "a", 1), 0);
	cr_assert_eq(read_exact(open_echo, buf, 1), 1);

	conf2(text, sizeof(text), &p);
	conf_rewrite(path, text);
	reload(&s, out, sizeof(out));
	cr_assert(strstr(out, "reload: 2 kept, 1 opened, 1 closed"), "%s", out);
	cr_assert_eq(count_substr(out, "listen "), 3, "%s", out);
	cr_assert(strstr(out, "listen time tcp"), "%s", out);
	cr_assert(strstr(out, "listen chargen tcp"), "%s", out);
	/* the same sockets; the removed one gone, the new one there */
	cr_assert_eq(listen_inode(p.a), ia, "echo's socket changed");
	cr_assert_eq(listen_inode(p.b), ib, "the socket on b changed");
	cr_assert_eq(listen_inode(p.c), 0, "tcpmux still listens");
	cr_assert_neq(listen_inode(p.d), 0, "chargen does not listen");
	/* b serves the new configuration: 4 bytes of time */
	cr_assert_eq(tcp_ask(AF_INET, p.b, NULL, buf, sizeof(buf)), 4);
	cr_assert(echoes(p.a));
	cr_assert_lt(tcp_connect(AF_INET, p.c), 0, "c still accepts");
	/* the old connections go on; tcpmux's heard on_drain */
	cr_assert_eq(write_all(open_echo, "b", 1), 0);
	cr_assert_eq(read_exact(open_echo, buf, 1), 1);
	cr_assert_eq(buf[0], 'b');
	memset(buf, 0, sizeof(buf));
	cr_assert_gt(read_to_eof(open_mux, buf, sizeof(buf) - 1), 0);
	cr_assert(strstr(buf, "-Server shutting down"), "%s", buf);
	close(open_echo);
	close(open_mux);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* With two loops each serves its own socket of a port (tcpmux, loop 0's
 * alone): a reload reaches both. 32 connections from as many source
 * ports spread over the two sockets (all on one has odds of 2^-31), so
 * a loop that kept the old configuration, or a socket that stayed open,
 * would show. */
BACKEND_TEST(reload, every_loop_serves_the_new_configuration)
{
	const char *const extra[] = { "--threads", "2", NULL };
	char text[1024], out[2048], buf[64];
	const char *path;
	struct ports p;
	struct srv s;

	pick(&p);
	conf1(text, sizeof(text), &p);
	path = conf_write(text);
	conf_start(&s, backend, path, 3, extra);
	cr_assert(log_wait(&s, "2 threads", 5000), "%s", srv_log(&s));
	cr_assert_eq(listen_count(p.a), 2, "echo: one socket per loop");
	cr_assert_eq(listen_count(p.b), 2, "daytime: one socket per loop");
	cr_assert_eq(listen_count(p.c), 1, "tcpmux: loop 0's alone");

	conf2(text, sizeof(text), &p);
	conf_rewrite(path, text);
	reload(&s, out, sizeof(out));
	cr_assert(strstr(out, "reload: 2 kept, 1 opened, 1 closed"), "%s", out);
	/* the other loop hears of it through its mailbox: wait for it */
	for (int i = 0; i < 500 && listen_count(p.d) < 2; i++)
		usleep(10000);
	cr_assert_eq(listen_count(p.a), 2, "echo");
	cr_assert_eq(listen_count(p.b), 2, "time");
	cr_assert_eq(listen_count(p.d), 2, "chargen: one socket per loop");
	for (int i = 0; i < 500 && listen_count(p.c); i++)
		usleep(10000);
	cr_assert_eq(listen_count(p.c), 0, "tcpmux still listens");
	for (int i = 0; i < 32; i++) {
		int fd;

		cr_assert_eq(tcp_ask(AF_INET, p.b, NULL, buf, sizeof(buf)), 4,
			     "connection %d to b: not time: %s", i, buf);
		cr_assert(echoes(p.a), "connection %d to a", i);
		cr_assert_lt(tcp_connect(AF_INET, p.c), 0, "c accepts");
		fd = tcp_connect(AF_INET, p.d);
		cr_assert_geq(fd, 0, "connection %d to d", i);
		cr_assert_eq(read_exact(fd, buf, 8), 8, "chargen on d");
		cr_assert_eq(memcmp(buf, " !\"#$%&'", 8), 0, "%.8s", buf);
		close(fd);
	}
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* ---- under load ---- */

struct load {
	uint16_t port;
	atomic_bool stop;
	atomic_int ok, failed;
	char why[128];
};

static void *load_main(void *arg)
{
	struct load *l = arg;

	while (!atomic_load(&l->stop)) {
		char buf[64];
		ssize_t n = tcp_ask(AF_INET, l->port, "x\n", buf, sizeof(buf));

		if (n == 2 && !strcmp(buf, "x\n")) {
			atomic_fetch_add(&l->ok, 1);
		} else {
			if (!atomic_fetch_add(&l->failed, 1))
				snprintf(l->why, sizeof(l->why),
					 "got %zd bytes (%s)", n,
					 n < 0 ? strerror(errno) : "");
		}
	}
	return NULL;
}

BACKEND_TEST(reload, a_steady_load_sees_no_refused_connection)
{
	char t1[1024], t2[1024], out[2048];
	struct load l = { 0 };
	pthread_t th[4];
	struct ports p;
	struct srv s;
	const char *path;
	unsigned long ia;

	pick(&p);
	conf1(t1, sizeof(t1), &p);
	conf2(t2, sizeof(t2), &p);
	path = conf_write(t1);
	conf_start(&s, backend, path, 3, NULL);
	ia = listen_inode(p.a);
	l.port = p.a;
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, load_main, &l);
	for (int i = 0; i < 20; i++) {
		conf_rewrite(path, i % 2 ? t1 : t2);
		reload(&s, out, sizeof(out));
		cr_assert(strstr(out, "reload: 2 kept, 1 opened, 1 closed"),
			  "%s", out);
		usleep(20 * 1000);
	}
	atomic_store(&l.stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(atomic_load(&l.failed), 0, "%d of %d failed, first: %s",
		     atomic_load(&l.failed),
		     atomic_load(&l.ok) + atomic_load(&l.failed), l.why);
	cr_assert_gt(atomic_load(&l.ok), 20);
	cr_assert_eq(listen_inode(p.a), ia);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* ---- what must change nothing ---- */

BACKEND_TEST(reload, a_broken_file_keeps_the_running_services)
{
	char text[1024], buf[64];
	unsigned long ia, ic;
	struct ports p;
	struct srv s;
	const char *path;

	pick(&p);
	conf1(text, sizeof(text), &p);
	path = conf_write(text);
	conf_start(&s, backend, path, 3, NULL);
	ia = listen_inode(p.a);
	ic = listen_inode(p.c);
	/* the new file removes c and has an error on its last line */
	snprintf(text, sizeof(text),
		 "127.0.0.1:\n%u stream tcp nowait %s echo\n"
		 "%u stream tcp nowiat %s time\n",
		 p.a, me(), p.b, me());
	conf_rewrite(path, text);
	kill(s.pid, SIGHUP);
	cr_assert(log_wait(&s, "is refused", 10000), "%s", srv_log(&s));
	cr_assert(strstr(srv_log(&s), ":3: field 4 \"nowiat\""), "%s",
		  srv_log(&s));
	cr_assert(strstr(srv_log(&s), "the running configuration goes on "
				      "unchanged"),
		  "%s", srv_log(&s));
	cr_assert_eq(listen_inode(p.a), ia);
	cr_assert_eq(listen_inode(p.c), ic, "c was closed");
	cr_assert(echoes(p.a));
	cr_assert_gt(tcp_ask(AF_INET, p.b, NULL, buf, sizeof(buf)), 10,
		     "b is not daytime any more");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* A port of the new file that cannot be bound: what was bound for it is
 * closed again, the running services go on. */
BACKEND_TEST(reload, a_port_that_cannot_be_bound_keeps_the_running_services)
{
	char text[1024];
	struct sockaddr_storage ss;
	unsigned long ic;
	struct ports p;
	struct srv s;
	const char *path;
	socklen_t len;
	uint16_t taken;
	int hold, one = 1;

	pick(&p);
	conf1(text, sizeof(text), &p);
	path = conf_write(text);
	conf_start(&s, backend, path, 3, NULL);
	ic = listen_inode(p.c);
	hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(hold, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	len = loopback_addr(AF_INET, 0, &ss);
	cr_assert_eq(bind(hold, (struct sockaddr *)&ss, len), 0);
	cr_assert_eq(listen(hold, 1), 0);
	len = sizeof(ss);
	getsockname(hold, (struct sockaddr *)&ss, &len);
	taken = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	/* d opens first, then the taken port fails */
	snprintf(text, sizeof(text),
		 "127.0.0.1:\n%u stream tcp nowait %s echo\n"
		 "%u stream tcp nowait %s chargen\n"
		 "%u stream tcp nowait %s time\n",
		 p.a, me(), p.d, me(), taken, me());
	conf_rewrite(path, text);
	kill(s.pid, SIGHUP);
	cr_assert(log_wait(&s, "cannot open the sockets", 10000), "%s",
		  srv_log(&s));
	cr_assert(strstr(srv_log(&s), "Address already in use"), "%s",
		  srv_log(&s));
	cr_assert_eq(listen_inode(p.c), ic, "c was closed");
	cr_assert_eq(listen_inode(p.d), 0, "d was left open");
	cr_assert(echoes(p.a));
	close(hold);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}

/* A program's port keeps its socket when the program changes; a wait
 * service's socket too. */
BACKEND_TEST(reload, a_program_changes_on_the_same_socket)
{
	char text[1024], out[2048], buf[256];
	unsigned long ia;
	struct ports p;
	struct srv s;
	const char *path;

	pick(&p);
	snprintf(text, sizeof(text),
		 "127.0.0.1:\n%u stream tcp nowait %s /bin/cat cat\n", p.a,
		 me());
	path = conf_write(text);
	conf_start(&s, backend, path, 1, NULL);
	ia = listen_inode(p.a);
	cr_assert(echoes(p.a));
	snprintf(text, sizeof(text),
		 "127.0.0.1:\n%u stream tcp nowait %s /bin/date date\n", p.a,
		 me());
	conf_rewrite(path, text);
	reload(&s, out, sizeof(out));
	cr_assert(strstr(out, "reload: 1 kept, 0 opened, 0 closed"), "%s", out);
	cr_assert_eq(listen_inode(p.a), ia);
	/* cat would say nothing to a client that says nothing */
	cr_assert_gt(tcp_ask(AF_INET, p.a, NULL, buf, sizeof(buf)), 20,
		     "still cat");
	cr_assert_eq(wait_no_children(s.pid, 10000), 0);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0, "%s", srv_log(&s));
}
