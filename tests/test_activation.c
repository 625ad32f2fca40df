/* SPDX-License-Identifier: MIT */
/*
 * test_activation.c - sockets bound by a service manager (systemd's
 * socket activation): the library serves them (evr_listen_fd,
 * evr_udp_bind_fd) and evringd matches them to its services by name.
 *
 * The test plays systemd: it binds the sockets, keeps them open, and
 * passes them through tests/tools/listen_fds.c (LISTEN_FDS, LISTEN_PID,
 * LISTEN_FDNAMES); the real systemd-socket-activate is used too. Since
 * the test keeps the listening socket, evringd can stop and start again
 * while clients connect: none of them may be refused or lose a byte.
 */
#include "harness.h"

#include "evring/modules.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* A socket bound on 127.0.0.1, port 0, listening when TCP; inheritable
 * (no close-on-exec), as systemd's are. */
static int bound(int type, uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, type, 0);

	cr_assert_geq(fd, 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	if (type == SOCK_STREAM)
		cr_assert_eq(listen(fd, 1024), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	if (port)
		*port = ntohs(sin.sin_port);
	return fd;
}

/* evringd through listen-fds with fds named names, then evringd's args. */
static int start_activated(struct srv *s, const char *backend,
			   const char *names, const int *fds, int nfds,
			   int nlisteners, const char *const *args)
{
	static char fdstr[8][8], be[32];
	const char *argv[48];
	int n = 0;

	argv[n++] = tool_path("listen-fds");
	argv[n++] = names;
	for (int i = 0; i < nfds; i++) {
		snprintf(fdstr[i], sizeof(fdstr[i]), "%d", fds[i]);
		argv[n++] = fdstr[i];
	}
	argv[n++] = "--";
	argv[n++] = evringd_path();
	snprintf(be, sizeof(be), "--backend=%s", backend);
	argv[n++] = be;
	for (; *args && n < 47; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return srv_spawn(s, nlisteners, argv);
}

/* The srv_listener line of service/proto, NULL if none. */
static const struct srv_listener *
line_of(const struct srv *s, const char *service, const char *proto)
{
	for (int i = 0; i < s->nls; i++)
		if (!strcmp(s->ls[i].service, service) &&
		    !strcmp(s->ls[i].proto, proto))
			return &s->ls[i];
	return NULL;
}

static void echo_tcp(uint16_t port)
{
	char buf[5];
	int fd = tcp_connect(AF_INET, port);

	cr_assert_geq(fd, 0, "connect to %u: %s", port, strerror(errno));
	cr_assert_eq(xfer(fd, "hello", 5, buf, 5, true, 10000), 0);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	close(fd);
}

static void echo_udp(uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(AF_INET, port, &ss);
	struct timeval tv = { .tv_sec = 1 };
	char buf[16];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ssize_t r = -1;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < 10 && r != 4; i++) {
		sendto(fd, "ping", 4, 0, (struct sockaddr *)&ss, len);
		r = recv(fd, buf, sizeof(buf), 0);
	}
	close(fd);
	cr_assert_eq(r, 4, "no UDP echo from %u", port);
}

/* ---- the library ---- */

static struct evr_loop *loop_of(const char *backend)
{
	struct evr_loop_opts o;
	struct evr_loop *l = NULL;

	evr_loop_opts_init(&o);
	o.backend = backend;
	cr_assert_eq(evr_loop_new(&l, &o), 0);
	return l;
}

BACKEND_TEST(listen_fd, takes_a_bound_socket_and_closes_it_on_success)
{
	struct evr_loop *l = loop_of(backend);
	struct evr_listen_cfg cfg = { .proto = &evr_proto_echo };
	struct evr_listener *ls;
	struct sockaddr_storage ss;
	socklen_t len;
	uint16_t port;
	int fd, plain;

	/* a bound socket that is not listening yet: evr_listen_fd listens */
	plain = socket(AF_INET, SOCK_STREAM, 0);
	{
		struct sockaddr_in sin = { .sin_family = AF_INET };

		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		cr_assert_eq(bind(plain, (struct sockaddr *)&sin, sizeof(sin)),
			     0);
	}
	cr_assert_eq(evr_listen_fd(l, plain, &cfg, &ls), 0);
	cr_assert_eq(fcntl(plain, F_GETFD), -1, "the original fd stays open");
	cr_assert_eq(errno, EBADF);
	evr_listener_addr(ls, &ss, &len);
	port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	cr_assert_neq(port, 0);
	cr_assert(fcntl(evr_listener_fd(ls), F_GETFD) & FD_CLOEXEC);
	cr_assert(fcntl(evr_listener_fd(ls), F_GETFL) & O_NONBLOCK);

	/* wrong kinds: refused, and the fd is still the caller's */
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_eq(evr_listen_fd(l, fd, &cfg, &ls), -EPROTOTYPE);
	cr_assert_geq(fcntl(fd, F_GETFD), 0);
	close(fd);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	{
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		/* autobind: an abstract address */
		bind(fd, (struct sockaddr *)&sun, sizeof(sa_family_t));
	}
	cr_assert_eq(evr_listen_fd(l, fd, &cfg, &ls), -EAFNOSUPPORT);
	cr_assert_geq(fcntl(fd, F_GETFD), 0);
	close(fd);
	cr_assert_eq(evr_listen_fd(l, 1000, &cfg, &ls), -EBADF);
	evr_loop_free(l);
}

BACKEND_TEST(listen_fd, udp_takes_a_bound_datagram_socket)
{
	struct evr_loop *l = loop_of(backend);
	struct evr_udp_cfg cfg = { .proto = &evr_proto_echo };
	struct evr_udp *u;
	uint16_t port;
	int fd = bound(SOCK_DGRAM, &port), tcp;

	cr_assert_eq(evr_udp_bind_fd(l, fd, &cfg, &u), 0);
	cr_assert_eq(fcntl(fd, F_GETFD), -1);
	tcp = bound(SOCK_STREAM, NULL);
	cr_assert_eq(evr_udp_bind_fd(l, tcp, &cfg, &u), -EPROTOTYPE);
	cr_assert_geq(fcntl(tcp, F_GETFD), 0);
	close(tcp);
	evr_loop_free(l);
}

/* ---- evringd ---- */

/*
 * Passed in an order unrelated to the services (daytime's, then echo's
 * UDP, then echo's TCP), matched by name; the socket not passed (daytime
 * over UDP) evringd binds itself.
 */
BACKEND_TEST(activation, sockets_are_matched_by_name_not_order)
{
	static const char *const args[] = { "-b", "127.0.0.1", "-s", "echo",
					    "-s", "daytime:0", NULL };
	uint16_t pday, pecho_u, pecho_t;
	int fds[3];
	struct srv s;
	char buf[128];
	int fd;

	fds[0] = bound(SOCK_STREAM, &pday);
	fds[1] = bound(SOCK_DGRAM, &pecho_u);
	fds[2] = bound(SOCK_STREAM, &pecho_t);
	cr_assert_eq(
	    start_activated(&s, backend, "daytime:echo:echo", fds, 3, 4, args),
	    0);
	cr_assert_eq(line_of(&s, "echo", "tcp")->port, pecho_t);
	cr_assert_eq(line_of(&s, "echo", "udp")->port, pecho_u);
	cr_assert_eq(line_of(&s, "daytime", "tcp")->port, pday);
	cr_assert_not_null(line_of(&s, "daytime", "udp"));
	cr_assert_neq(line_of(&s, "daytime", "udp")->port, pday,
		      "daytime/udp was bound by evringd itself");
	echo_tcp(pecho_t);
	echo_udp(pecho_u);
	fd = tcp_connect(AF_INET, pday);
	cr_assert_gt(read_to_eof(fd, buf, sizeof(buf)), 10, "no daytime line");
	close(fd);
	cr_assert(srv_log_has(&s, "echo/tcp: serving 127.0.0.1:"), "%s",
		  srv_log(&s));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
}

static int defer_of(int fd)
{
	int v = -1;
	socklen_t len = sizeof(v);

	cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &len),
		     0);
	return v;
}

/* The socket is systemd's (DeferAcceptSec=): evringd leaves its deferral
 * alone unless told otherwise. */
BACKEND_TEST(activation, the_managers_deferred_accept_is_kept)
{
	const char *plain[] = { "-b", "127.0.0.1", "-s", "echo/tcp", NULL };
	const char *set[] = { "-b",	  "127.0.0.1", "-s",
			      "echo/tcp", "-o",	       "echo.defer_accept=30s",
			      NULL };
	uint16_t port;
	int fd = bound(SOCK_STREAM, &port), three = 3, orig;
	struct srv s;

	cr_assert_eq(setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &three,
				sizeof(three)),
		     0);
	orig = defer_of(fd);
	cr_assert_gt(orig, 0);
	cr_assert_eq(start_activated(&s, backend, "echo", &fd, 1, 1, plain), 0);
	echo_tcp(port);
	cr_assert_eq(defer_of(fd), orig, "evringd changed the manager's");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	cr_assert_eq(defer_of(fd), orig);

	cr_assert_eq(start_activated(&s, backend, "echo", &fd, 1, 1, set), 0);
	echo_tcp(port);
	cr_assert_geq(defer_of(fd), 30, "the option was not applied");
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	close(fd);
}

/* A socket whose name is no service, or a service not served over its
 * protocol, or with no name at all: refused before anything is bound,
 * with the socket, its name and what is served. */
BACKEND_TEST(activation, a_mismatch_is_refused_clearly)
{
	static const struct {
		const char *names;
		int type;
		const char *says;
	} cases[] = {
		{ "bogus", SOCK_STREAM,
		  "socket 3 (tcp 127.0.0.1:%u) is named \"bogus\", which is no "
		  "service evringd serves (echo, daytime)" },
		{ "-", SOCK_STREAM,
		  "socket 3 (tcp 127.0.0.1:%u) is named \"unknown\"" },
		{ "echo", SOCK_DGRAM,
		  "socket 3 (udp 127.0.0.1:%u) is named \"echo\", but echo is "
		  "not served over udp" },
	};
	static const char *const args[] = {
		"-b", "127.0.0.1", "-s", "echo/tcp:0", "-s", "daytime:0", NULL
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char says[256];
		uint16_t port;
		int fd = bound(cases[i].type, &port);
		struct srv s;

		cr_assert_neq(start_activated(&s, backend, cases[i].names, &fd,
					      1, 1, args),
			      0, "it served");
		snprintf(says, sizeof(says), cases[i].says, port);
		cr_assert(srv_log_has(&s, says), "no \"%s\" in:\n%s", says,
			  srv_log(&s));
		cr_assert(srv_log_has(&s, "FileDescriptorName=") ||
			      cases[i].type == SOCK_DGRAM,
			  "no hint: %s", srv_log(&s));
		close(fd);
	}
}

/* LISTEN_PID names another process: the sockets are not ours, evringd
 * binds its own. */
BACKEND_TEST(activation, sockets_of_another_pid_are_not_ours)
{
	static const char *const args[] = { "-b", "127.0.0.1", "-s",
					    "echo/tcp:0", NULL };
	const char *argv[] = { tool_path("listen-fds"),
			       "--pid",
			       "1",
			       "echo",
			       NULL,
			       "--",
			       evringd_path(),
			       NULL,
			       args[0],
			       args[1],
			       args[2],
			       args[3],
			       NULL };
	char fdstr[8], be[32];
	uint16_t port;
	int fd = bound(SOCK_STREAM, &port);
	struct srv s;

	snprintf(fdstr, sizeof(fdstr), "%d", fd);
	snprintf(be, sizeof(be), "--backend=%s", backend);
	argv[4] = fdstr;
	argv[7] = be;
	cr_assert_eq(srv_spawn(&s, 1, argv), 0);
	cr_assert_neq(srv_port(&s, "echo", AF_INET), port);
	echo_tcp(srv_port(&s, "echo", AF_INET));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	close(fd);
}

/* The real systemd-socket-activate: it binds, waits for the first
 * client, then execs evringd with the socket named by --fdname. */
BACKEND_TEST(activation, systemd_socket_activate)
{
	char listen[64], be[32];
	const char *probe[] = { "systemd-socket-activate", "--version", NULL };
	const char *argv[] = { "systemd-socket-activate",
			       "-l",
			       listen,
			       "--fdname=echo",
			       evringd_path(),
			       be,
			       "-b",
			       "127.0.0.1",
			       "-s",
			       "echo/tcp:0",
			       NULL };
	char out[512], buf[5];
	struct srv s;
	uint16_t port;
	int fd, tmp, rc = -1;

	if (run_capture(probe, out, sizeof(out), 10000) != 0)
		cr_skip_test("systemd-socket-activate cannot run: %s", out);
	snprintf(be, sizeof(be), "--backend=%s", backend);
	/* a port free a moment ago; taken by someone else meanwhile, the
	 * tool fails and we try another */
	for (int attempt = 0; attempt < 5 && rc != 0; attempt++) {
		tmp = bound(SOCK_STREAM, &port);
		close(tmp);
		snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
		rc = srv_spawn(&s, 0, argv);
		cr_assert_eq(rc, 0);
		fd = -1;
		for (int64_t t = now_ms() + 5000; fd < 0 && now_ms() < t;
		     usleep(10000))
			fd = tcp_connect(AF_INET, port);
		if (fd < 0) {
			srv_stop(&s, SIGKILL, 2000);
			rc = -1;
		}
	}
	cr_assert_eq(rc, 0, "systemd-socket-activate never listened");
	/* the first client started evringd, and is served */
	cr_assert_eq(xfer(fd, "hello", 5, buf, 5, true, 10000), 0, "%s",
		     srv_log(&s));
	close(fd);
	echo_tcp(port);
	cr_assert(srv_log_has(&s, "echo/tcp: serving 127.0.0.1:"), "%s",
		  srv_log(&s));
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
}

/* ---- a restart under load ---- */

struct load {
	uint16_t port;
	atomic_bool stop;
	atomic_long ok, refused, failed;
	char why[128];
	pthread_mutex_t mu;
};

/* Connect, send 16 bytes, read them back, close; again and again. */
static void *client(void *arg)
{
	struct load *ld = arg;
	uint32_t seed = (uint32_t)(uintptr_t)&seed;

	while (!ld->stop) {
		char out[16], in[16];
		int fd = tcp_connect(AF_INET, ld->port);

		if (fd < 0) {
			if (errno == ECONNREFUSED)
				ld->refused++;
			else
				ld->failed++;
			continue;
		}
		fill_pattern(out, sizeof(out), seed++);
		if (write_all(fd, out, sizeof(out)) < 0 ||
		    read_exact(fd, in, sizeof(in)) != sizeof(in) ||
		    memcmp(in, out, sizeof(in))) {
			pthread_mutex_lock(&ld->mu);
			snprintf(ld->why, sizeof(ld->why), "%s",
				 strerror(errno));
			pthread_mutex_unlock(&ld->mu);
			ld->failed++;
		} else {
			ld->ok++;
		}
		close(fd);
	}
	return NULL;
}

static void wait_ok(struct load *ld, long more)
{
	long want = ld->ok + more;
	int64_t deadline = now_ms() + 30000;

	while (ld->ok < want && now_ms() < deadline)
		usleep(2000);
	cr_assert_geq(ld->ok, want, "the load stalled (%ld ok)", ld->ok);
}

/*
 * systemd keeps the listening socket while the service restarts: clients
 * that connect meanwhile wait in the backlog. Stop evringd (it drains),
 * start it again on the same socket, twice, under a steady load: no
 * client is refused, none loses its echo.
 */
BACKEND_TEST(activation, restart_under_load_refuses_no_connection)
{
	static const char *const args[] = { "-b", "127.0.0.1", "-s",
					    "echo/tcp:0", NULL };
	struct load ld = { .mu = PTHREAD_MUTEX_INITIALIZER };
	pthread_t th[4];
	struct srv s;
	int fd = bound(SOCK_STREAM, &ld.port);

	cr_assert_eq(start_activated(&s, backend, "echo", &fd, 1, 1, args), 0);
	for (int i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, client, &ld);
	wait_ok(&ld, 200);
	for (int round = 0; round < 2; round++) {
		struct srv_stats st;

		cr_assert_eq(srv_stop(&s, SIGTERM, 20000), 0,
			     "the drain did not end");
		cr_assert_eq(
		    start_activated(&s, backend, "echo", &fd, 1, 1, args), 0);
		wait_ok(&ld, 200);
		cr_assert_eq(srv_stats(&s, &st), 0);
		cr_assert_gt(st.conns_accepted, 0,
			     "the new evringd served nobody");
	}
	ld.stop = true;
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	cr_assert_eq(srv_stop(&s, SIGTERM, 20000), 0);
	close(fd);
	cr_assert_eq(ld.refused, 0, "%ld connections refused", ld.refused);
	cr_assert_eq(ld.failed, 0, "%ld exchanges failed (last: %s)", ld.failed,
		     ld.why);
	cr_assert_gt(ld.ok, 600);
}

/* A configuration file has one entry per protocol of a service: each
 * socket goes to the entry of its name and protocol. */
BACKEND_TEST(activation, sockets_match_entries_of_a_configuration_file)
{
	char path[] = "/tmp/evring-act-conf-XXXXXX";
	static const char conf[] = "127.0.0.1:\n"
				   "0\tstream\ttcp\tnowait\troot\techo\n"
				   "0\tdgram\tudp\twait\troot\techo\n";
	const char *args[] = { "-f", path, NULL };
	uint16_t pt, pu;
	int fds[2], fd = mkstemp(path);
	struct srv s;

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, conf, sizeof(conf) - 1),
		     (ssize_t)sizeof(conf) - 1);
	close(fd);
	fds[0] = bound(SOCK_DGRAM, &pu);
	fds[1] = bound(SOCK_STREAM, &pt);
	cr_assert_eq(start_activated(&s, backend, "echo:echo", fds, 2, 2, args),
		     0);
	unlink(path);
	cr_assert_eq(line_of(&s, "echo", "tcp")->port, pt);
	cr_assert_eq(line_of(&s, "echo", "udp")->port, pu);
	echo_tcp(pt);
	echo_udp(pu);
	cr_assert_eq(srv_stop(&s, SIGTERM, 10000), 0);
	close(fds[0]);
	close(fds[1]);
}
