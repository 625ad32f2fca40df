/* SPDX-License-Identifier: MIT */
/*
 * test_chat.c - the chat example (examples/chat/chat.c) over real sockets
 * on 127.0.0.1, on both backends: joining, broadcast, private messages,
 * nickname rules, /who, leaving; and floods: a member that never reads,
 * which must be dropped, after which the others go on having lost nothing,
 * without the server's memory growing; one that reads slowly, or at full
 * speed, which must never be dropped, however fast the authors write.
 *
 * The floods assert what happens, never how fast: every line reaches every
 * member, in order, and who leaves and why. Their deadlines are hang
 * guards, far beyond anything a slow machine needs.
 *
 * The server is the built example, $EVRING_BUILD/examples/chat (default
 * build/examples/chat), started on an ephemeral port. Where a test must
 * show that a line did NOT arrive, it does not sleep: the client asks for
 * something that comes back after it (/who, or a later line of another
 * member), and that must be the next line, since the server handles one
 * connection's lines in order and each member's output is one queue.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define GREETING                                                               \
	"* welcome; NICK <name> to join, /msg <nick> <text>, /who, /quit"
#define WAIT_MS	 5000
#define NICK_MAX 16

/* ---- the server ---- */

static const char *chat_path(void)
{
	static char path[512];
	const char *dir = getenv("EVRING_BUILD");

	snprintf(path, sizeof(path), "%s/examples/chat",
		 dir && *dir ? dir : "build");
	return path;
}

/* threads: "0" for the default (a loop per CPU). */
static uint16_t start_chat_on(struct srv *s, const char *backend,
			      const char *threads)
{
	const char *args[] = { chat_path(), "-p",	 "0",	  "--backend",
			       backend,	    "--threads", threads, NULL };
	uint16_t port;

	if (!strcmp(threads, "0"))
		args[5] = NULL;
	cr_assert_eq(srv_spawn(s, 1, args), 0, "%s did not start", args[0]);
	cr_assert_str_eq(s->backend, backend);
	port = srv_port(s, "chat", AF_INET);
	cr_assert_neq(port, 0, "no \"listen chat tcp\" line");
	return port;
}

static uint16_t start_chat(struct srv *s, const char *backend)
{
	return start_chat_on(s, backend, "0");
}

static void stop_chat(struct srv *s)
{
	int rc = srv_stop(s, SIGTERM, 10000);

	cr_assert_eq(rc, 0, "chat exit status %d; log:\n%s", rc, srv_log(s));
}

/* ---- clients: lines in, with a deadline on every wait ---- */

struct client {
	int fd;
	size_t len;	 /* bytes in buf */
	char buf[16384]; /* received, not yet taken as lines */
};

static struct client *client_on(int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));

	cr_assert_not_null(cl);
	cr_assert_geq(fd, 0, "connect");
	cl->fd = fd;
	return cl;
}

static void client_free(struct client *cl)
{
	close(cl->fd);
	free(cl);
}

/* Take one complete line from what was received, without its CRLF (every
 * line the server sends ends in CRLF). false when none is complete. */
static bool take_line(struct client *cl, char *line, size_t cap)
{
	char *nl = memchr(cl->buf, '\n', cl->len);
	size_t n;

	if (!nl)
		return false;
	n = (size_t)(nl - cl->buf);
	cr_assert(n >= 1 && nl[-1] == '\r', "a line not ended by CRLF");
	cr_assert_lt(n - 1, cap, "a line of %zu bytes", n - 1);
	memcpy(line, cl->buf, n - 1);
	line[n - 1] = '\0';
	cl->len -= n + 1;
	memmove(cl->buf, nl + 1, cl->len);
	return true;
}

/* Receive what is there now: bytes, 0 at EOF, -1 when nothing (or an
 * error). */
static ssize_t recv_now(struct client *cl)
{
	ssize_t r;

	cr_assert_lt(cl->len, sizeof(cl->buf), "a line longer than 16 KiB");
	r = recv(cl->fd, cl->buf + cl->len, sizeof(cl->buf) - cl->len,
		 MSG_DONTWAIT);
	if (r > 0)
		cl->len += (size_t)r;
	return r;
}

/* The next line, waiting up to timeout_ms; false on timeout or EOF. */
static bool next_line(struct client *cl, char *line, size_t cap, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!take_line(cl, line, cap)) {
		struct pollfd pfd = { .fd = cl->fd, .events = POLLIN };
		int64_t left = deadline - now_ms();

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return false;
		if (recv_now(cl) == 0)
			return false;
	}
	return true;
}

static void say(struct client *cl, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line) - 1, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0 && (size_t)n < sizeof(line) - 1);
	line[n++] = '\n';
	cr_assert_eq(write_all(cl->fd, line, (size_t)n), 0, "send");
}

/* The next line must be the formatted one. */
static void expect(struct client *cl, const char *fmt, ...)
{
	char want[2048], got[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	cr_assert(next_line(cl, got, sizeof(got), WAIT_MS),
		  "expected \"%s\", got nothing", want);
	cr_assert_str_eq(got, want);
}

/* The server closed the connection: EOF or a reset, after any lines. */
static void expect_closed(struct client *cl)
{
	cr_assert(wait_closed(cl->fd, WAIT_MS), "the connection is open");
}

/* Connected and greeted, not yet a member. */
static struct client *visitor(uint16_t port)
{
	struct client *cl = client_on(tcp_connect(AF_INET, port));

	expect(cl, GREETING);
	return cl;
}

/* A member: greeted, NICK sent, its own "joined" line read. Members who
 * were there before hear "joined" too; the caller reads that. */
static struct client *join(uint16_t port, const char *nick)
{
	struct client *cl = visitor(port);

	say(cl, "NICK %s", nick);
	expect(cl, "* %s joined", nick);
	return cl;
}

/* ---- the protocol ---- */

BACKEND_TEST(chat, join_greets_then_announces_to_everyone)
{
	struct client *a, *b;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	a = visitor(port);
	say(a, "NICK alice");
	expect(a, "* alice joined");
	b = join(port, "bob");
	expect(a, "* bob joined");
	/* CRLF in works as LF does */
	cr_assert_eq(write_all(a->fd, "/who\r\n", 6), 0);
	expect(a, "* 2 members: alice bob");
	client_free(a);
	client_free(b);
	stop_chat(&s);
}

BACKEND_TEST(chat, broadcast_reaches_the_others_but_not_the_sender)
{
	struct client *a, *b, *c;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	a = join(port, "alice");
	b = join(port, "bob");
	expect(a, "* bob joined");
	c = join(port, "carol");
	expect(a, "* carol joined");
	expect(b, "* carol joined");

	say(a, "hello, world");
	cr_assert_eq(write_all(a->fd, "second  line \r\n", 15), 0);
	expect(b, "alice hello, world");
	expect(b, "alice second  line ");
	expect(c, "alice hello, world");
	expect(c, "alice second  line ");
	/* nothing came back to alice: her /who is the next line she gets */
	say(a, "/who");
	expect(a, "* 3 members: alice bob carol");
	client_free(a);
	client_free(b);
	client_free(c);
	stop_chat(&s);
}

BACKEND_TEST(chat, control_characters_are_relayed_as_question_marks)
{
	struct client *a, *b;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	a = join(port, "alice");
	b = join(port, "bob");
	expect(a, "* bob joined");
	say(a, "\033[2Jgone\rtab\there\177");
	expect(b, "alice ?[2Jgone?tab\there?");
	client_free(a);
	client_free(b);
	stop_chat(&s);
}

BACKEND_TEST(chat, private_message_reaches_only_its_target)
{
	struct client *a, *b, *c;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	a = join(port, "alice");
	b = join(port, "bob");
	expect(a, "* bob joined");
	c = join(port, "carol");
	expect(a, "* carol joined");
	expect(b, "* carol joined");

	say(a, "/msg bob psst, just you");
	expect(b, "*alice* psst, just you");
	say(a, "/MSG BOB names ignore case");
	expect(b, "*alice* names ignore case");
	/* carol's next line is alice's next public one: no private line
	 * before it; and alice got no copy */
	say(a, "public");
	expect(b, "alice public");
	expect(c, "alice public");
	say(a, "/who");
	expect(a, "* 3 members: alice bob carol");

	say(a, "/msg nobody hello");
	expect(a, "ERR no such nick nobody");
	say(a, "/msg bob");
	expect(a, "ERR usage: /msg <nick> <text>");
	client_free(a);
	client_free(b);
	client_free(c);
	stop_chat(&s);
}

BACKEND_TEST(chat, nicknames_are_valid_and_unique)
{
	static const char *const bad[] = {
		"NICK",
		"NICK bad!name",
		"NICK two words",
		"NICK caf\303\251",
		"NICK 12345678901234567", /* 17 */
	};
	struct client *a, *b;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	a = visitor(port);
	/* before joining, only NICK */
	say(a, "hello");
	expect(a, "ERR join first: NICK <name>");
	say(a, "/who");
	expect(a, "ERR join first: NICK <name>");
	say(a, "/msg x y");
	expect(a, "ERR join first: NICK <name>");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		say(a, "%s", bad[i]);
		expect(a, "ERR bad nick: 1-16 of A-Z a-z 0-9 _ -");
	}
	say(a, "nick abcdefghijklmnop"); /* 16; the command in any case */
	expect(a, "* abcdefghijklmnop joined");

	b = visitor(port);
	say(b, "NICK abcdefghijklmnop");
	expect(b, "ERR nick abcdefghijklmnop is taken");
	say(b, "NICK ABCDEFGHIJKLMNOP");
	expect(b, "ERR nick ABCDEFGHIJKLMNOP is taken");
	say(b, "NICK err"); /* would look like the server's errors */
	expect(b, "ERR nick err is reserved");
	say(b, "NICK Zed_-9");
	expect(b, "* Zed_-9 joined");
	expect(a, "* Zed_-9 joined");
	say(b, "NICK again");
	expect(b, "ERR already joined as Zed_-9");
	say(b, "/mgs abcdefghijklmnop typo"); /* not broadcast */
	expect(b, "ERR unknown command (/msg, /who, /quit)");
	say(a, "/who");
	expect(a, "* 2 members: abcdefghijklmnop Zed_-9");
	client_free(a);
	client_free(b);
	stop_chat(&s);
}

BACKEND_TEST(chat, who_lists_members_in_order_of_joining)
{
	struct client *a, *b, *c, *v;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	a = join(port, "alice");
	say(a, "/who");
	expect(a, "* 1 member: alice");
	v = visitor(port); /* not a member until NICK */
	b = join(port, "bob");
	expect(a, "* bob joined");
	c = join(port, "carol");
	expect(a, "* carol joined");
	expect(b, "* carol joined");
	say(c, "/who");
	expect(c, "* 3 members: alice bob carol");
	client_free(b);
	expect(a, "* bob left");
	say(a, "/who");
	expect(a, "* 2 members: alice carol");
	client_free(a);
	client_free(c);
	client_free(v);
	stop_chat(&s);
}

BACKEND_TEST(chat, leaving_is_announced)
{
	struct client *a, *b, *c, *v;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	a = join(port, "alice");
	b = join(port, "bob");
	expect(a, "* bob joined");
	c = join(port, "carol");
	expect(a, "* carol joined");
	expect(b, "* carol joined");

	say(a, "/quit");
	expect(a, "* bye");
	expect_closed(a);
	expect(b, "* alice left");
	expect(c, "* alice left");
	/* closing without /quit is leaving too */
	shutdown(c->fd, SHUT_WR);
	expect_closed(c);
	expect(b, "* carol left");
	/* a visitor who never joined leaves unannounced (its connection
	 * closes after on_close has run: anything announced would come
	 * before bob's /who) */
	v = visitor(port);
	say(v, "/quit");
	expect(v, "* bye");
	expect_closed(v);
	client_free(v);
	say(b, "/who");
	expect(b, "* 1 member: bob");
	client_free(a);
	client_free(b);
	client_free(c);
	stop_chat(&s);
}

/*
 * Two loops: members are spread over both (the kernel picks), and each
 * hears every other's lines, private messages cross loops, and /who lists
 * everyone in order of joining, whatever loop serves whom.
 */
BACKEND_TEST(chat, members_on_every_loop_hear_each_other)
{
	enum { N = 12 };
	struct client *m[N];
	char nick[16], who[256] = "";
	struct srv s;
	uint16_t port = start_chat_on(&s, backend, "2");

	for (int i = 0; i < N; i++) {
		snprintf(nick, sizeof(nick), "m%02d", i);
		m[i] = join(port, nick);
		for (int j = 0; j < i; j++)
			expect(m[j], "* %s joined", nick);
		strcat(who, " ");
		strcat(who, nick);
	}
	cr_assert(srv_log_has(&s, "on loop 0") && srv_log_has(&s, "on loop 1"),
		  "members on one loop only:\n%s", srv_log(&s));
	for (int i = 0; i < N; i++) {
		say(m[i], "hello from %d", i);
		for (int j = 0; j < N; j++)
			if (j != i)
				expect(m[j], "m%02d hello from %d", i, i);
	}
	say(m[0], "/msg m%02d psst", N - 1);
	expect(m[N - 1], "*m00* psst");
	say(m[N - 1], "/who");
	expect(m[N - 1], "* %d members:%s", N, who);
	for (int i = 0; i < N; i++)
		client_free(m[i]);
	stop_chat(&s);
}

/* ---- floods: members that never read, read slowly, or keep up ---- */

/*
 * Resident memory measures what the server holds only without a sanitizer
 * or valgrind in the way: their quarantines keep freed memory resident
 * (the chat allocates the messages between its loops). EVRING_TSAN: the
 * server is a ThreadSanitizer build.
 */
static bool rss_is_meaningful(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return false;
#else
	const char *wrap = getenv("EVRING_WRAP"), *tsan = getenv("EVRING_TSAN");

	return (!wrap || !*wrap) && (!tsan || *tsan != '1');
#endif
}

enum {
	FLOOD_LINE_MAX = 1024, /* bytes of an author's line, with its LF */
	FLOOD_CHUNK = 16384,   /* bytes an author has ready to send */
	FLOOD_PEERS = 9,
	/* A hang guard, not a measure of speed: far longer than chat's send
	 * timeout, the longest that a member who reads may rightly wait. */
	HANG_MS = 60000,
	RSS_GROWTH_MAX_KIB = 32 * 1024,
	SLOW_READ_MAX = 4096, /* a slow reader takes this much at a time */
	SLOW_NAP_US = 1000,   /* and sleeps this long after each read */
};

/* A member taking part in a flood: an author sends lines lines to the
 * room, every peer must receive every other author's lines, in order. */
struct peer {
	struct client *cl;
	const char *nick;
	bool author;
	bool slow; /* reads SLOW_READ_MAX bytes at a time, then naps */
	/* as an author */
	char out[FLOOD_CHUNK]; /* lines being sent */
	size_t out_off, out_len;
	unsigned made; /* lines put in out so far */
	/* as a reader */
	unsigned got[FLOOD_PEERS]; /* lines of each peer received */
	bool saw_left;		   /* "* S left" */
};

/* A flood: each author sends lines lines of line_len bytes with their
 * LF, numbered, or, of 2 bytes, one letter (a to z, then again). */
struct flood {
	unsigned lines, line_len; /* per author */
	struct peer p[FLOOD_PEERS];
	int n;
	int64_t worst_stall; /* longest time no peer received a line, ms */
	long rss_max;	     /* KiB */
};

/* A member whose receive buffer is small (set before connect, so that the
 * window is small from the start): the server's queue for it, not the
 * kernel's buffers, takes what it has not read yet. */
static struct client *join_small_rcvbuf(uint16_t port, const char *nick)
{
	struct sockaddr_in to = { .sin_family = AF_INET,
				  .sin_port = htons(port) };
	struct timeval tv = { .tv_sec = 10 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rcvbuf = 4096;
	struct client *cl;

	cr_assert_geq(fd, 0);
	to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	cr_assert_eq(connect(fd, (struct sockaddr *)&to, sizeof(to)), 0);
	cl = client_on(fd);
	expect(cl, GREETING);
	say(cl, "NICK %s", nick);
	expect(cl, "* %s joined", nick);
	return cl;
}

/* Add a member to the flood: an author, a reader, or both. */
static struct peer *flood_add(struct flood *f, struct client *cl,
			      const char *nick, bool author, bool slow)
{
	struct peer *p = &f->p[f->n++];

	cr_assert_leq(f->n, FLOOD_PEERS);
	p->cl = cl;
	p->nick = nick;
	p->author = author;
	p->slow = slow;
	return p;
}

/* Line i of a flood: line_len bytes with its LF. */
static void flood_line(const struct flood *f, char *p, unsigned i)
{
	int n;

	if (f->line_len == 2) {
		p[0] = (char)('a' + i % 26);
		p[1] = '\n';
		return;
	}
	n = snprintf(p, f->line_len, "line %07u ", i);

	memset(p + n, 'a' + i % 26, f->line_len - 1 - (size_t)n);
	p[f->line_len - 1] = '\n';
}

/* Send all that the author's socket takes now: as fast as the server
 * reads. false once every line is sent. */
static bool send_lines(struct flood *f, struct peer *p)
{
	for (;;) {
		ssize_t w;

		if (p->out_off == p->out_len) {
			if (p->made == f->lines)
				return false;
			p->out_off = p->out_len = 0;
			while (p->made < f->lines &&
			       p->out_len + f->line_len <= sizeof(p->out)) {
				flood_line(f, p->out + p->out_len, p->made++);
				p->out_len += f->line_len;
			}
		}
		w = send(p->cl->fd, p->out + p->out_off,
			 p->out_len - p->out_off, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0) {
			cr_assert(errno == EAGAIN, "%s: send: %s", p->nick,
				  strerror(errno));
			return true;
		}
		p->out_off += (size_t)w;
	}
}

/* The author of a line "nick text": one of the others. */
static struct peer *author_of(struct flood *f, const struct peer *to,
			      const char *line)
{
	for (int i = 0; i < f->n; i++) {
		struct peer *p = &f->p[i];
		size_t n = strlen(p->nick);

		if (p->author && p != to && !strncmp(line, p->nick, n) &&
		    line[n] == ' ')
			return p;
	}
	return NULL;
}

/* A line to p during the flood: S's departure, or the next line of one of
 * the other authors, as "nick line...", in order. */
static void check_line(struct flood *f, struct peer *p, const char *line)
{
	char want[FLOOD_LINE_MAX];
	struct peer *from;
	unsigned *got;
	size_t n;

	if (!strcmp(line, "* S left")) {
		p->saw_left = true;
		return;
	}
	from = author_of(f, p, line);
	cr_assert(from, "%s got \"%.60s\" during the flood", p->nick, line);
	got = &p->got[from - f->p];
	cr_assert_lt(*got, f->lines, "%s: more lines than %s sent", p->nick,
		     from->nick);
	flood_line(f, want, *got);
	n = strlen(from->nick) + 1;
	cr_assert(strlen(line) == n + f->line_len - 1 &&
		      !memcmp(line + n, want, f->line_len - 1),
		  "%s: line %u of %s is wrong or out of order: \"%.40s...\"",
		  p->nick, *got, from->nick, line);
	(*got)++;
}

/* Receive what p's socket holds (SLOW_READ_MAX at most for a slow
 * reader) and check its lines; true if anything arrived. */
static bool read_lines(struct flood *f, struct peer *p)
{
	char line[FLOOD_LINE_MAX + 64];
	struct client *cl = p->cl;
	bool progress = false;
	ssize_t r;

	do {
		size_t room = sizeof(cl->buf) - cl->len;

		if (p->slow && room > SLOW_READ_MAX)
			room = SLOW_READ_MAX;
		r = recv(cl->fd, cl->buf + cl->len, room, MSG_DONTWAIT);
		cr_assert_neq(r, 0, "%s was disconnected", p->nick);
		if (r < 0) {
			cr_assert(errno == EAGAIN, "%s: recv: %s", p->nick,
				  strerror(errno));
			break;
		}
		cl->len += (size_t)r;
		progress = true;
		while (take_line(cl, line, sizeof(line)))
			check_line(f, p, line);
	} while (!p->slow);
	return progress;
}

/* Every peer has every line of every other author. */
static bool flood_done(const struct flood *f)
{
	for (int i = 0; i < f->n; i++)
		for (int j = 0; j < f->n; j++)
			if (i != j && f->p[j].author &&
			    f->p[i].got[j] < f->lines)
				return false;
	return true;
}

/* Sample the server's resident memory, at most every 10 ms. */
static void sample_rss(struct srv *s, struct flood *f, int64_t *sampled)
{
	int64_t now = now_ms();
	long kib;

	if (now - *sampled < 10)
		return;
	kib = rss_kib(s->pid);
	if (kib > f->rss_max)
		f->rss_max = kib;
	*sampled = now;
}

/* The authors write their lines as fast as the server takes them while
 * every peer reads, each at its pace; one poll loop serves all, so none
 * can block another. The server's RSS is sampled all along. */
static void flood(struct srv *s, struct flood *f)
{
	int64_t t0 = now_ms(), last = t0, sampled = 0;
	bool sending[FLOOD_PEERS];

	for (int i = 0; i < f->n; i++)
		sending[i] = f->p[i].author;
	f->rss_max = rss_kib(s->pid);
	while (!flood_done(f)) {
		struct pollfd pfd[FLOOD_PEERS];
		bool slow = false;

		cr_assert_lt(now_ms() - last, HANG_MS,
			     "no line arrived for %d ms", HANG_MS);
		sample_rss(s, f, &sampled);
		for (int i = 0; i < f->n; i++) {
			pfd[i].fd = f->p[i].cl->fd;
			pfd[i].events = POLLIN | (sending[i] ? POLLOUT : 0);
		}
		if (poll(pfd, (nfds_t)f->n, 100) < 0)
			cr_assert_fail("poll: %s", strerror(errno));
		for (int i = 0; i < f->n; i++) {
			if (pfd[i].revents & POLLOUT)
				sending[i] = send_lines(f, &f->p[i]);
			if (!pfd[i].revents || !read_lines(f, &f->p[i]))
				continue;
			if (now_ms() - last > f->worst_stall)
				f->worst_stall = now_ms() - last;
			last = now_ms();
			slow |= f->p[i].slow;
		}
		if (slow)
			usleep(SLOW_NAP_US);
	}
	cr_log_info("chat %s: %u lines of %u bytes from each author in %lld "
		    "ms, longest wait %lld ms, RSS at most %ld KiB",
		    s->backend, f->lines, f->line_len,
		    (long long)(now_ms() - t0), (long long)f->worst_stall,
		    f->rss_max);
}

/* The room still works: A and B are its members, and hear each other. */
static void room_goes_on(struct client *a, struct client *b)
{
	say(a, "/who");
	expect(a, "* 2 members: A B");
	say(b, "still here");
	expect(a, "B still here");
	say(a, "so am I");
	expect(b, "A so am I");
}

/*
 * S stops reading while A floods the room. The room holds A back while S
 * lags, until S's queue has not moved for the send timeout and the server
 * drops it; then A goes on. B loses nothing and is not dropped, and the
 * server's memory does not grow with the flood.
 */
BACKEND_TEST(chat, a_member_that_never_reads_is_dropped_and_the_others_go_on)
{
	struct flood *f = calloc(1, sizeof(*f));
	struct client *a, *b, *sl;
	struct srv s;
	uint16_t port = start_chat(&s, backend);
	long rss0;

	/* 64 MiB: far more than S's queue, the kernel's buffers or the RSS
	 * bound hold */
	cr_assert_not_null(f);
	f->lines = 65536;
	f->line_len = 1024;
	a = join(port, "A");
	b = join(port, "B");
	expect(a, "* B joined");
	sl = join_small_rcvbuf(port, "S"); /* S reads no more after this */
	expect(a, "* S joined");
	expect(b, "* S joined");
	flood_add(f, a, "A", true, false);
	flood_add(f, b, "B", false, false);
	rss0 = rss_kib(s.pid);
	cr_assert_gt(rss0, 0);

	flood(&s, f);

	if (rss_is_meaningful())
		cr_assert_lt(f->rss_max - rss0, RSS_GROWTH_MAX_KIB,
			     "the server's RSS grew by %ld KiB",
			     f->rss_max - rss0);
	/* S was dropped by the server, for a queue that did not move */
	expect_closed(sl);
	if (!f->p[1].saw_left)
		expect(b, "* S left");
	if (!f->p[0].saw_left)
		expect(a, "* S left");
	cr_assert(srv_log_has(&s, "S left: Connection timed out"),
		  "S was not dropped by the send timeout; log:\n%s",
		  srv_log(&s));
	room_goes_on(a, b);
	cr_assert(!srv_log_has(&s, "B left"), "log:\n%s", srv_log(&s));
	free(f);
	client_free(a);
	client_free(b);
	client_free(sl);
	stop_chat(&s);
}

/* B reads, but slower than A writes: the room holds A to B's pace, and B
 * is never dropped for being behind. */
BACKEND_TEST(chat, a_member_that_reads_slowly_is_never_dropped)
{
	struct flood *f = calloc(1, sizeof(*f));
	struct client *a, *b;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	/* 8 MiB: more than the kernel's buffers and B's queue hold */
	cr_assert_not_null(f);
	f->lines = 8192;
	f->line_len = 1024;
	a = join(port, "A");
	b = join_small_rcvbuf(port, "B");
	expect(a, "* B joined");
	flood_add(f, a, "A", true, false);
	flood_add(f, b, "B", false, true);

	flood(&s, f);

	room_goes_on(a, b);
	cr_assert(!srv_log_has(&s, " left"), "log:\n%s", srv_log(&s));
	free(f);
	client_free(a);
	client_free(b);
	stop_chat(&s);
}

/* Two authors flood, reading each other at full speed; B reads slowly.
 * Both are held back for B and both go on when it has caught up: every
 * line reaches every member, in order, and no one is dropped. */
BACKEND_TEST(chat, two_authors_are_held_for_a_slow_reader_and_lose_nothing)
{
	struct flood *f = calloc(1, sizeof(*f));
	struct client *a, *b, *c;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	cr_assert_not_null(f);
	f->lines = 4096; /* 4 MiB each */
	f->line_len = 1024;
	a = join(port, "A");
	b = join_small_rcvbuf(port, "B");
	expect(a, "* B joined");
	c = join(port, "C");
	expect(a, "* C joined");
	expect(b, "* C joined");
	flood_add(f, a, "A", true, false);
	flood_add(f, b, "B", false, true);
	flood_add(f, c, "C", true, false);

	flood(&s, f);

	say(c, "/who");
	expect(c, "* 3 members: A B C");
	cr_assert(!srv_log_has(&s, " left"), "log:\n%s", srv_log(&s));
	free(f);
	client_free(a);
	client_free(b);
	client_free(c);
	stop_chat(&s);
}

/*
 * Eight authors with the longest nicknames write one-letter lines, which
 * come out ten times as long as they go in, while B reads slowly. The room
 * must be held before their lines pile up in B's queue, not once each
 * author's have: B must not be dropped.
 */
BACKEND_TEST(chat, a_slow_reader_stays_while_eight_authors_send_one_letter)
{
	enum { AUTHORS = 8 };
	struct flood *f = calloc(1, sizeof(*f));
	char nicks[AUTHORS][NICK_MAX + 1], who[256];
	struct client *b, *au[AUTHORS];
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	cr_assert_not_null(f);
	f->lines = 65536; /* 1.25 MiB to B from each */
	f->line_len = 2;
	b = join_small_rcvbuf(port, "B");
	flood_add(f, b, "B", false, true);
	snprintf(who, sizeof(who), "* %d members: B", AUTHORS + 1);
	for (int i = 0; i < AUTHORS; i++) {
		snprintf(nicks[i], sizeof(nicks[i]), "author%010d", i);
		au[i] = join(port, nicks[i]);
		expect(b, "* %s joined", nicks[i]);
		for (int j = 0; j < i; j++)
			expect(au[j], "* %s joined", nicks[i]);
		flood_add(f, au[i], nicks[i], true, false);
		strcat(who, " ");
		strcat(who, nicks[i]); /* 9 names of 16 at most fit */
	}

	flood(&s, f);

	say(b, "/who");
	expect(b, "%s", who);
	cr_assert(!srv_log_has(&s, " left"), "log:\n%s", srv_log(&s));
	for (int i = 0; i < AUTHORS; i++)
		client_free(au[i]);
	client_free(b);
	free(f);
	stop_chat(&s);
}

/* Short lines are many queue entries per byte: a member who reads at full
 * speed must not be dropped for it. */
BACKEND_TEST(chat, a_member_that_keeps_up_with_a_flood_of_short_lines_stays)
{
	struct flood *f = calloc(1, sizeof(*f));
	struct client *a, *b;
	struct srv s;
	uint16_t port = start_chat(&s, backend);

	cr_assert_not_null(f);
	f->lines = 200000; /* 8 MB */
	f->line_len = 40;
	a = join(port, "A");
	b = join(port, "B");
	expect(a, "* B joined");
	flood_add(f, a, "A", true, false);
	flood_add(f, b, "B", false, false);

	flood(&s, f);

	room_goes_on(a, b);
	cr_assert(!srv_log_has(&s, " left"), "log:\n%s", srv_log(&s));
	free(f);
	client_free(a);
	client_free(b);
	stop_chat(&s);
}
