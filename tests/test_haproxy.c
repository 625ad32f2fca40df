/* SPDX-License-Identifier: MIT */
/*
 * test_haproxy.c - evringd behind a real haproxy (Debian's package), as
 * README's "Scaling out" runs it: haproxy on 127.0.0.1 balances over two
 * evringd instances on 127.0.0.2 and 127.0.0.3, with send-proxy-v2 and
 * health checks that send a v2 LOCAL header (check-send-proxy).
 *
 * One test walks through what an operator sees, on each backend:
 * 1. clients through haproxy are served by both instances, and each
 *    instance's connection log names the client (its own port), not
 *    haproxy;
 * 2. the per-source limit (2) counts the real client: a client's third
 *    connection to an instance is refused while other clients, all of
 *    them reaching evringd from haproxy's one address, are served;
 * 3. one instance killed: haproxy marks it down, clients keep being
 *    served;
 * 4. a rolling restart (drain one, start it again, then the other):
 *    clients connected to the instance that stays lose no echo byte.
 *
 * Every client has its own source address (127.0.1.N), so that only the
 * clients of step 2 share one. haproxy's state comes from its admin
 * socket (show stat). Everything lives in a scratch directory and ends
 * with the test; haproxy and evringd are stopped by pid.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DRAIN "1s"

struct rig {
	char dir[64];
	char sock[96];
	uint16_t fe;	  /* haproxy's frontend port on 127.0.0.1 */
	uint16_t port[2]; /* the instances' ports */
	struct srv ev[2]; /* evringd on 127.0.0.2, 127.0.0.3 */
	struct srv hap;
	const char *backend;
	int nsrc; /* source addresses handed out */
};

static const char *const inst_addr[2] = { "127.0.0.2", "127.0.0.3" };
static const char *const inst_name[2] = { "a", "b" };

/* ---- pieces ---- */

static uint16_t free_port(const char *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	inet_pton(AF_INET, addr, &sin.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	getsockname(fd, (struct sockaddr *)&sin, &len);
	close(fd);
	return ntohs(sin.sin_port);
}

/* evringd i on its address and port (0: any), echo with PROXY v2. */
static void start_instance(struct rig *r, int i)
{
	char spec[32];
	const char *args[] = { "-b",	      inst_addr[i],
			       "-s",	      spec,
			       "-o",	      "echo.proxy=v2",
			       "--log-conns", "--max-conns-per-source",
			       "2",	      "--drain-timeout",
			       DRAIN,	      NULL };

	snprintf(spec, sizeof(spec), "echo/tcp:%u", r->port[i]);
	cr_assert_eq(srv_start(&r->ev[i], r->backend, 1, args), 0,
		     "instance %s", inst_name[i]);
	r->port[i] = srv_port(&r->ev[i], "echo", AF_INET);
}

/* haproxy's "show stat" status of server be/name: "UP", "DOWN", ... */
static const char *server_status(struct rig *r, const char *name)
{
	static char out[16384], status[32];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	size_t len = 0;
	char key[32], *line;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(status, sizeof(status), "?");
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", r->sock);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    write_all(fd, "show stat\n", 10) < 0) {
		close(fd);
		return status;
	}
	for (ssize_t n; len < sizeof(out) - 1 &&
			(n = read(fd, out + len, sizeof(out) - 1 - len)) > 0;)
		len += (size_t)n;
	out[len] = '\0';
	close(fd);
	snprintf(key, sizeof(key), "\nbe,%s,", name);
	line = strstr(out, key);
	if (!line)
		return status;
	/* CSV: status is the 18th field */
	line++;
	for (int f = 0; f < 17 && line; f++) {
		line = strchr(line, ',');
		if (line)
			line++;
	}
	if (line)
		snprintf(status, sizeof(status), "%.*s",
			 (int)strcspn(line, ","), line);
	return status;
}

static void wait_status(struct rig *r, int i, const char *want)
{
	int64_t deadline = now_ms() + 20000;

	while (strcmp(server_status(r, inst_name[i]), want) &&
	       now_ms() < deadline)
		usleep(20000);
	cr_assert_str_eq(server_status(r, inst_name[i]), want,
			 "haproxy never saw %s %s; its log:\n%s", inst_name[i],
			 want, srv_log(&r->hap));
}

static void start_haproxy(struct rig *r)
{
	char cfg[160], conf[2048];
	const char *args[] = { "haproxy", "-db", "-f", cfg, NULL };
	FILE *f;
	int fd = -1;

	snprintf(cfg, sizeof(cfg), "%s/haproxy.cfg", r->dir);
	snprintf(r->sock, sizeof(r->sock), "%s/admin.sock", r->dir);
	r->fe = free_port("127.0.0.1");
	snprintf(conf, sizeof(conf),
		 "global\n"
		 "    stats socket %s mode 600 level admin\n"
		 "    nbthread 1\n"
		 "defaults\n"
		 "    mode tcp\n"
		 "    timeout connect 1s\n"
		 "    timeout client 30s\n"
		 "    timeout server 30s\n"
		 "    timeout check 1s\n"
		 "    retries 3\n"
		 "    option redispatch\n"
		 "frontend fe\n"
		 "    bind 127.0.0.1:%u\n"
		 "    default_backend be\n"
		 "backend be\n"
		 "    balance roundrobin\n"
		 "    server a 127.0.0.2:%u send-proxy-v2 check "
		 "check-send-proxy inter 100ms fall 2 rise 2\n"
		 "    server b 127.0.0.3:%u send-proxy-v2 check "
		 "check-send-proxy inter 100ms fall 2 rise 2\n",
		 r->sock, r->fe, r->port[0], r->port[1]);
	f = fopen(cfg, "w");
	cr_assert_not_null(f);
	fputs(conf, f);
	fclose(f);
	cr_assert_eq(srv_spawn(&r->hap, 0, args), 0);
	for (int64_t t = now_ms() + 10000; fd < 0 && now_ms() < t;
	     usleep(20000))
		fd = tcp_connect(AF_INET, r->fe);
	cr_assert_geq(fd, 0, "haproxy does not listen; its log:\n%s",
		      srv_log(&r->hap));
	close(fd);
	wait_status(r, 0, "UP");
	wait_status(r, 1, "UP");
}

static void rig_start(struct rig *r, const char *backend)
{
	char out[256];
	const char *probe[] = { "haproxy", "-v", NULL };

	memset(r, 0, sizeof(*r));
	if (run_capture(probe, out, sizeof(out), 10000) != 0)
		cr_skip_test("haproxy is not installed (make deps installs "
			     "it): %s",
			     out);
	r->backend = backend;
	snprintf(r->dir, sizeof(r->dir), "/tmp/evring-haproxy-XXXXXX");
	cr_assert_not_null(mkdtemp(r->dir));
	start_instance(r, 0);
	start_instance(r, 1);
	start_haproxy(r);
}

static void rig_stop(struct rig *r)
{
	char path[160];

	if (!r->dir[0])
		return;
	srv_stop(&r->hap, SIGTERM, 10000);
	for (int i = 0; i < 2; i++)
		if (r->ev[i].pid > 0)
			srv_stop(&r->ev[i], SIGTERM, 10000);
	snprintf(path, sizeof(path), "%s/haproxy.cfg", r->dir);
	unlink(path);
	unlink(r->sock);
	rmdir(r->dir);
	r->dir[0] = '\0';
}

/* A connection through haproxy from a source address of its own. */
static int client_connect(struct rig *r, const char *src)
{
	char own[32];
	int fd;

	if (!src) {
		snprintf(own, sizeof(own), "127.0.1.%d", ++r->nsrc);
		src = own;
	}
	fd = tcp_connect_from(src, r->fe);
	cr_assert_geq(fd, 0, "connect through haproxy: %s", strerror(errno));
	return fd;
}

static uint16_t local_port(int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	getsockname(fd, (struct sockaddr *)&sin, &len);
	return ntohs(sin.sin_port);
}

static bool echoes(int fd, uint32_t seed)
{
	char out[64], in[64];

	fill_pattern(out, sizeof(out), seed);
	return xfer(fd, out, sizeof(out), in, sizeof(in), false, 10000) == 0 &&
	       !memcmp(in, out, sizeof(in));
}

/* Which instance logged the connection of this client port (-1: none). */
static int logged_by(struct rig *r, uint16_t port)
{
	char want[64];

	snprintf(want, sizeof(want), " peer=127.0.1.");
	for (int i = 0; i < 2; i++) {
		const char *log = srv_log(&r->ev[i]);

		for (const char *p = log; (p = strstr(p, want)); p++) {
			const char *colon = strchr(p + 6, ':');

			if (colon && atoi(colon + 1) == port)
				return i;
		}
	}
	return -1;
}

/* ---- a client that keeps echoing ---- */

struct client {
	struct rig *r;
	int fd;
	int id;
	uint16_t port;
	pthread_t th;
	atomic_bool stop;
	atomic_long ok;
	atomic_int state; /* 0 running, 1 closed between messages, 2 bad */
	_Atomic int64_t end_ms;
	char why[96];
};

static void *client_run(void *arg)
{
	struct client *c = arg;

	for (uint32_t seq = 0; !c->stop; seq++) {
		char out[64], in[64];
		size_t got;

		fill_pattern(out, sizeof(out), (uint32_t)c->id * 100000 + seq);
		if (write_all(c->fd, out, sizeof(out)) < 0) {
			c->end_ms = now_ms();
			c->state = 1;
			break;
		}
		got = read_exact(c->fd, in, sizeof(in));
		if (got == 0) { /* closed by a drain: the message is lost
				 * with the connection, not a byte of it */
			c->end_ms = now_ms();
			c->state = 1;
			break;
		}
		if (got != sizeof(in) || memcmp(in, out, sizeof(in))) {
			snprintf(c->why, sizeof(c->why),
				 "message %u: %zu bytes, %s", seq, got,
				 got == sizeof(in) ? "wrong bytes"
						   : strerror(errno));
			c->end_ms = now_ms();
			c->state = 2;
			break;
		}
		c->ok++;
		usleep(2000);
	}
	return NULL;
}

static void clients_start(struct rig *r, struct client *cs, int n, int base)
{
	for (int i = 0; i < n; i++) {
		struct client *c = &cs[i];

		memset(c, 0, sizeof(*c));
		c->r = r;
		c->id = base + i;
		c->fd = client_connect(r, NULL);
		c->port = local_port(c->fd);
		cr_assert(echoes(c->fd, 7), "client %d not served", c->id);
		pthread_create(&c->th, NULL, client_run, c);
	}
	/* every one has exchanged a few messages */
	for (int i = 0; i < n; i++)
		for (int64_t t = now_ms() + 10000;
		     cs[i].ok < 5 && !cs[i].state && now_ms() < t; usleep(2000))
			;
}

static void clients_stop(struct client *cs, int n)
{
	for (int i = 0; i < n; i++)
		cs[i].stop = true;
	for (int i = 0; i < n; i++) {
		pthread_join(cs[i].th, NULL);
		close(cs[i].fd);
	}
}

/* Drain instance i (SIGTERM), keep its log in old_log, start it again on
 * its port, wait until haproxy has it UP. */
static void rolling_restart(struct rig *r, int i, char *old_log, size_t len)
{
	cr_assert_eq(srv_stop(&r->ev[i], SIGTERM, 20000), 0,
		     "instance %s did not drain", inst_name[i]);
	snprintf(old_log, len, "%s", srv_log(&r->ev[i]));
	wait_status(r, i, "DOWN");
	start_instance(r, i);
	wait_status(r, i, "UP");
}

/*
 * The clients of a phase in which instance i restarted: those instance i
 * logged ended with it (cleanly, between messages); the others, on the
 * instance that stayed, were still running at end_phase, and none lost
 * or changed a byte. old_log: instance i's log before its restart.
 */
static void check_phase(struct rig *r, struct client *cs, int n, int i,
			const char *old_log, int64_t end_phase)
{
	int survivors = 0;

	for (int k = 0; k < n; k++) {
		struct client *c = &cs[k];
		char want[32];
		bool on_i;

		cr_assert_neq(c->state, 2, "client %d lost bytes: %s", c->id,
			      c->why);
		snprintf(want, sizeof(want), ":%u duration=", c->port);
		on_i = strstr(old_log, want) != NULL;
		if (on_i)
			continue;
		survivors++;
		cr_assert(!c->state || c->end_ms > end_phase,
			  "client %d on the instance that stayed ended during "
			  "the restart of %s",
			  c->id, inst_name[i]);
	}
	cr_assert_gt(survivors, 0, "no client was on the instance that stayed");
	cr_log_info("restart of %s: %d of %d clients on the instance that "
		    "stayed, none lost a byte",
		    inst_name[i], survivors, n);
	(void)r;
}

/* After a failed assertion too: the processes die with the test
 * (PR_SET_PDEATHSIG), the scratch directory goes here. */
static struct rig r;

static void rig_fini(void)
{
	if (r.dir[0])
		rig_stop(&r);
}

BACKEND_TEST(haproxy, two_instances_behind_send_proxy_v2, .fini = rig_fini)
{
	struct client set1[4], set2[4];
	uint16_t ports[8];
	int served[2] = { 0, 0 }, fds[6];
	static char old_log[1 << 16];
	int64_t end_phase;

	rig_start(&r, backend);

	/* 1. served by both; the logs name the clients */
	for (int k = 0; k < 8; k++) {
		int fd = client_connect(&r, NULL);

		cr_assert(echoes(fd, (uint32_t)k), "client %d not served", k);
		ports[k] = local_port(fd);
		close(fd);
	}
	for (int k = 0; k < 8; k++) {
		int who = -1;

		for (int64_t t = now_ms() + 10000; who < 0 && now_ms() < t;
		     usleep(5000))
			who = logged_by(&r, ports[k]);
		cr_assert_geq(who, 0, "no instance logged client port %u",
			      ports[k]);
		served[who]++;
	}
	cr_log_info("served by a: %d, by b: %d", served[0], served[1]);
	cr_assert_gt(served[0], 0, "127.0.0.2 served nobody");
	cr_assert_gt(served[1], 0, "127.0.0.3 served nobody");

	/* 2. per-source limit 2 per instance: with round robin, one
	 * client's connections 1-4 are served (two on each), the fifth is
	 * refused; another client is still served */
	for (int k = 0; k < 4; k++) {
		fds[k] = client_connect(&r, "127.0.2.1");
		cr_assert(echoes(fds[k], 100 + (uint32_t)k),
			  "connection %d of 127.0.2.1 not served", k + 1);
	}
	fds[4] = client_connect(&r, "127.0.2.1");
	cr_assert(!echoes(fds[4], 104), "a third connection on an instance");
	fds[5] = client_connect(&r, "127.0.2.2");
	cr_assert(echoes(fds[5], 105), "another client was refused");
	cr_assert(srv_log_has(&r.ev[0], "per-source limit of 2") ||
		      srv_log_has(&r.ev[1], "per-source limit of 2"),
		  "no refusal logged");
	for (int k = 0; k < 6; k++)
		close(fds[k]);

	/* 3. instance a killed: marked down, clients still served */
	cr_assert_eq(srv_stop(&r.ev[0], SIGKILL, 10000), 128 + SIGKILL);
	wait_status(&r, 0, "DOWN");
	for (int k = 0; k < 6; k++) {
		int fd = client_connect(&r, NULL);

		cr_assert(echoes(fd, 200 + (uint32_t)k),
			  "not served with a down");
		close(fd);
	}
	start_instance(&r, 0);
	wait_status(&r, 0, "UP");

	/* 4. rolling restart: a, then b, under long-lived clients */
	clients_start(&r, set1, 4, 300);
	rolling_restart(&r, 0, old_log, sizeof(old_log));
	end_phase = now_ms();
	usleep(200 * 1000);
	check_phase(&r, set1, 4, 0, old_log, end_phase);

	clients_start(&r, set2, 4, 400);
	rolling_restart(&r, 1, old_log, sizeof(old_log));
	end_phase = now_ms();
	usleep(200 * 1000);
	check_phase(&r, set2, 4, 1, old_log, end_phase);
	clients_stop(set1, 4);
	clients_stop(set2, 4);
}
