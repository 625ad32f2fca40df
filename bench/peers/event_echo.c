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

#define PEER_PROG "event_echo"
#include "peer.h"

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
		fprintf(stderr, "%s: bufferevent_socket_new: %s\n", PEER_PROG,
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
	    PEER_BACKLOG, (struct sockaddr *)ss, (int)len);
	if (!s->lev)
		return peer_sock_error("evconnlistener_new_bind", ss, errno);
	fd = evconnlistener_get_fd(s->lev);
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
		return peer_sock_error("setsockopt TCP_NODELAY", ss, errno);
	if (getsockname(fd, (struct sockaddr *)ss, &len) < 0)
		return peer_sock_error("getsockname", ss, errno);
	return 0;
}

static int signals_start(struct server *s)
{
	s->sigint = evsignal_new(s->base, SIGINT, on_signal, s->base);
	s->sigterm = evsignal_new(s->base, SIGTERM, on_signal, s->base);
	if (!s->sigint || !s->sigterm || evsignal_add(s->sigint, NULL) < 0 ||
	    evsignal_add(s->sigterm, NULL) < 0) {
		fprintf(stderr, "%s: evsignal_add: %s\n", PEER_PROG,
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
	char a[PEER_ADDRSTR];
	socklen_t len;
	int err;

	if (peer_parse_args(argc, argv, &ss, &len) < 0)
		return PEER_EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN); /* bufferevents write with writev(2) */
	peer_raise_nofile();
	LIST_INIT(&s.conns);
	s.base = event_base_new();
	if (!s.base) {
		fprintf(stderr, "%s: event_base_new: failed\n", PEER_PROG);
		return 1;
	}
	err = signals_start(&s);
	if (!err)
		err = server_listen(&s, &ss, len);
	if (!err) {
		printf("listen echo tcp %s libevent\n",
		       peer_addr_str(&ss, a, sizeof(a)));
		fflush(stdout);
		if (event_base_dispatch(s.base) < 0) {
			fprintf(stderr, "%s: event_base_dispatch: failed\n",
				PEER_PROG);
			err = -1;
		}
	}
	server_fini(&s);
	return err < 0 ? 1 : 0;
}
