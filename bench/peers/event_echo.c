/* SPDX-License-Identifier: MIT */
/*
 * event_echo.c - benchmark peer: a libevent 2.1 TCP echo server (RFC 862).
 *
 *	event_echo [-b ADDR] -p PORT
 *
 * Written the way the libevent book writes its echo server: an
 * evconnlistener accepts, each connection is a bufferevent, and the read
 * callback moves the input evbuffer onto the output with
 * evbuffer_add_buffer(), which relinks the chains without copying bytes.
 * On EOF with output still queued, reading stops and the bufferevent is
 * freed from the write callback once the output has drained (the book's
 * version frees at once and would lose that tail); on an error it is freed
 * at once. Like the book, it never stops reading while output is queued.
 *
 * Prints "listen echo tcp ADDR:PORT libevent" once listening. SIGINT or
 * SIGTERM (evsignal) frees every connection and exits 0; an error exits 1,
 * bad usage 2.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#define PROG	    "event_echo"
#define EXIT_USAGE  2
#define BACKLOG	    1024 /* evringd's default */
#define ADDRSTR_MAX (INET6_ADDRSTRLEN + 8)

struct conn {
	struct bufferevent *bev;
	LIST_ENTRY(conn) link;
};

struct server {
	struct event_base *base;
	struct evconnlistener *lev;
	struct event *sigint, *sigterm;
	LIST_HEAD(, conn) conns;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: %s [-b ADDR] -p PORT\n"
		"  -b ADDR  numeric IPv4 or IPv6 address (default 127.0.0.1)\n"
		"  -p PORT  TCP port, 0 for an ephemeral one\n",
		PROG);
}

static int addr_parse(const char *host, long port, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}

/* "127.0.0.1:7" or "[::1]:7" */
static const char *addr_str(const struct sockaddr_storage *ss, char *buf,
			    size_t n)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
	char host[INET6_ADDRSTRLEN];

	if (ss->ss_family == AF_INET) {
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, n, "%s:%u", host, ntohs(in->sin_port));
	} else {
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		snprintf(buf, n, "[%s]:%u", host, ntohs(in6->sin6_port));
	}
	return buf;
}

static int parse_args(int argc, char **argv, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	const char *host = "127.0.0.1", *port_arg = NULL;
	char *end;
	long port;
	int c;

	while ((c = getopt(argc, argv, "b:p:h")) != -1) {
		switch (c) {
		case 'b':
			host = optarg;
			break;
		case 'p':
			port_arg = optarg;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc || !port_arg) {
		usage(stderr);
		return -EINVAL;
	}
	errno = 0;
	port = strtol(port_arg, &end, 10);
	if (errno || end == port_arg || *end || port < 0 || port > 65535) {
		fprintf(stderr, "%s: bad port \"%s\"\n", PROG, port_arg);
		return -EINVAL;
	}
	if (addr_parse(host, port, ss, len) < 0) {
		fprintf(stderr,
			"%s: bad address \"%s\" (numeric IPv4 or IPv6)\n", PROG,
			host);
		return -EINVAL;
	}
	return 0;
}

/* A benchmark opens many connections: take every descriptor allowed. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static void conn_free(struct conn *c)
{
	LIST_REMOVE(c, link);
	bufferevent_free(c->bev); /* closes the socket */
	free(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
	(void)arg;
	evbuffer_add_buffer(bufferevent_get_output(bev),
			    bufferevent_get_input(bev));
}

/* After EOF: the output is down to the low watermark, 0. */
static void on_drained(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_free(arg);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
	    evbuffer_get_length(bufferevent_get_output(bev))) {
		/* Everything received goes back before the close. */
		bufferevent_disable(bev, EV_READ);
		bufferevent_setcb(bev, NULL, on_drained, on_event, c);
		return;
	}
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_free(c);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd,
		      struct sockaddr *sa, int socklen, void *arg)
{
	struct server *s = arg;
	struct conn *c = malloc(sizeof(*c));

	(void)lev, (void)sa, (void)socklen;
	if (c)
		c->bev =
		    bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	if (!c || !c->bev) {
		fprintf(stderr, "%s: bufferevent_socket_new: %s\n", PROG,
			strerror(ENOMEM));
		evutil_closesocket(fd);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	LIST_INSERT_HEAD(&s->conns, c, link);
}

static void on_signal(evutil_socket_t signo, short what, void *arg)
{
	(void)signo, (void)what;
	event_base_loopbreak(arg);
}

static int sock_error(const char *call, const struct sockaddr_storage *ss,
		      int err)
{
	char a[ADDRSTR_MAX];

	fprintf(stderr, "%s: %s %s: %s\n", PROG, call,
		addr_str(ss, a, sizeof(a)), strerror(err));
	return -err;
}

/*
 * Linux copies TCP_NODELAY from the listener to every accepted socket, so
 * setting it here covers all connections without a setsockopt per accept
 * (nothing can connect before we print the address).
 */
static int server_listen(struct server *s, struct sockaddr_storage *ss,
			 socklen_t len)
{
	int one = 1;
	int fd;

	s->lev = evconnlistener_new_bind(
	    s->base, on_accept, s,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE,
	    BACKLOG, (struct sockaddr *)ss, (int)len);
	if (!s->lev)
		return sock_error("evconnlistener_new_bind", ss, errno);
	fd = evconnlistener_get_fd(s->lev);
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return sock_error("setsockopt TCP_NODELAY", ss, errno);
	if (getsockname(fd, (struct sockaddr *)ss, &len) < 0)
		return sock_error("getsockname", ss, errno);
	return 0;
}

static int signals_start(struct server *s)
{
	s->sigint = evsignal_new(s->base, SIGINT, on_signal, s->base);
	s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s->base);
	if (!s->sigint || !s->sigterm || evsignal_add(s->sigint, NULL) < 0 ||
	    evsignal_add(s->sigterm, NULL) < 0) {
		fprintf(stderr, "%s: evsignal_add: %s\n", PROG,
			strerror(errno));
		return -1;
	}
	return 0;
}

static void server_fini(struct server *s)
{
	while (!LIST_EMPTY(&s->conns))
		conn_free(LIST_FIRST(&s->conns));
	if (s->lev)
		evconnlistener_free(s->lev);
	if (s->sigint)
		event_free(s->sigint);
	if (s->sigterm)
		event_free(s->sigterm);
	event_base_free(s->base);
	libevent_global_shutdown();
}

int main(int argc, char **argv)
{
	struct server s = { 0 };
	struct sockaddr_storage ss;
	char a[ADDRSTR_MAX];
	socklen_t len;
	int err;

	if (parse_args(argc, argv, &ss, &len) < 0)
		return EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN); /* bufferevents write with writev(2) */
	raise_nofile();
	LIST_INIT(&s.conns);
	s.base = event_base_new();
	if (!s.base) {
		fprintf(stderr, "%s: event_base_new: failed\n", PROG);
		return 1;
	}
	err = signals_start(&s);
	if (!err)
		err = server_listen(&s, &ss, len);
	if (!err) {
		printf("listen echo tcp %s libevent\n",
		       addr_str(&ss, a, sizeof(a)));
		fflush(stdout);
		if (event_base_dispatch(s.base) < 0) {
			fprintf(stderr, "%s: event_base_dispatch: failed\n",
				PROG);
			err = -1;
		}
	}
	server_fini(&s);
	return err < 0 ? 1 : 0;
}
