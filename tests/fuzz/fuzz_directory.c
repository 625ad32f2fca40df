/* SPDX-License-Identifier: MIT */
/*
 * fuzz_directory.c - libFuzzer target for the directory module, driven
 * through a live epoll loop over a socketpair: arbitrary byte streams, cut
 * at arbitrary points, as a client would send them.
 *
 * An input is a header and the bytes the client sends:
 *
 *	byte 0	k = byte % 16, the number of cut bytes that follow
 *	k bytes	chunk lengths (byte + 1), used in turn; k = 0: one chunk
 *	rest	the stream
 *
 * Per input: a fresh directory configuration, a socketpair whose one end
 * is served with evr_adopt() by a connector of the directory module, and a
 * second socketpair, the ticker, adopted with a module of this file. The
 * ticker's peer writes a byte after each of its turns, so the ticker runs
 * once per loop iteration without a timer (a timer restarted from a timer
 * callback waits at least 1 ms). On each turn it reads what the server
 * answered, and writes the next chunk once the server has taken all of the
 * previous one (SIOCOUTQ is 0): every chunk arrives in a receive of its
 * own. After the last chunk it shuts down its writing side; once the
 * server has closed, the ticker closes and the loop ends. A guard timer
 * fails the input if that takes more than GUARD_MS.
 *
 * Then the answer is checked against what the input asks for, worked out
 * here from the module's contract (directory.c, "Line framing" in
 * evring.h): one reply per command line, in order, each a line starting
 * with "OK" or "ERR" except the bodies of LIST and HELP; LIST's body lines
 * are well formed, without repeats, and counted by its OK line; nothing
 * after QUIT or a framing error. And nothing may leak: connections,
 * buffers, queued bytes, timers and both descriptors are gone.
 */
#include "evring.h"
#include "evring/modules.h"

#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUARD_MS     10000
#define LINE_MAX_DEF 8192 /* evring.h: evr_line_cfg.max_line default */
#define WORDS_MAX    6	  /* directory.c: more words are an error */
#define PER_CONN_MAX 64	  /* directory.c: registrations per connection */

static struct evr_loop *loop;
static const struct evr_proto *dir_proto = &evr_proto_directory;

static void fail(const char *what)
{
	fprintf(stderr, "fuzz_directory: %s\n", what);
	abort();
}

/* ---- the client: the ticker and the socket it drives ---- */

struct client {
	const uint8_t *s; /* the stream */
	size_t n, pos;
	const uint8_t *cuts;
	size_t k, ci;
	int peer;      /* our end of the server's socketpair */
	int tick_peer; /* our end of the ticker's socketpair */
	bool wrote_all, shut, eof, done, timed_out;
	char *out; /* what the server answered */
	size_t out_len, out_cap;
	struct evr_timer guard;
};

static void read_replies(struct client *cl)
{
	for (;;) {
		if (cl->out_cap - cl->out_len < 4096) {
			cl->out_cap = cl->out_cap ? cl->out_cap * 2 : 65536;
			cl->out = realloc(cl->out, cl->out_cap);
			if (!cl->out)
				fail("out of memory");
		}
		ssize_t r = recv(cl->peer, cl->out + cl->out_len,
				 cl->out_cap - cl->out_len, MSG_DONTWAIT);
		if (r > 0) {
			cl->out_len += (size_t)r;
			continue;
		}
		/* a reset: the server closed with our bytes unread */
		if (r == 0 || errno == ECONNRESET)
			cl->eof = true;
		else if (errno != EAGAIN && errno != EINTR)
			fail("recv from the server");
		return;
	}
}

/* The next chunk, once the server has taken all of the previous one. */
static void write_chunk(struct client *cl)
{
	size_t len = cl->n - cl->pos;
	int unread = 0;

	if (cl->pos == cl->n) {
		cl->wrote_all = true;
		return;
	}
	if (ioctl(cl->peer, SIOCOUTQ, &unread) < 0)
		fail("ioctl SIOCOUTQ");
	if (unread > 0)
		return;
	if (cl->k && (size_t)cl->cuts[cl->ci % cl->k] + 1 < len)
		len = (size_t)cl->cuts[cl->ci % cl->k] + 1;
	cl->ci++;
	ssize_t w =
	    send(cl->peer, cl->s + cl->pos, len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w >= 0)
		cl->pos += (size_t)w;
	else if (errno == EPIPE || errno == ECONNRESET)
		cl->wrote_all = true; /* the server is gone */
	else if (errno != EAGAIN && errno != EINTR)
		fail("send to the server");
}

static void tick(struct evr_conn *c)
{
	struct client *cl = evr_conn_conf(c);

	if (cl->done)
		return;
	read_replies(cl);
	if (!cl->wrote_all)
		write_chunk(cl);
	if (cl->wrote_all && !cl->shut) {
		shutdown(cl->peer, SHUT_WR);
		cl->shut = true;
	}
	if (cl->shut && cl->eof) {
		cl->done = true;
		evr_timer_stop(evr_conn_loop(c), &cl->guard);
		evr_close(c);
		return;
	}
	if (send(cl->tick_peer, "t", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
		fail("send to the ticker");
}

static void tick_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)b;
	tick(c);
}

static const struct evr_proto tick_proto = {
	.name = "fuzz-tick",
	.on_connect = tick,
	.on_data = tick_data,
};

static void guard_expired(struct evr_timer *t)
{
	struct client *cl = EVR_CONTAINER_OF(t, struct client, guard);

	cl->timed_out = true;
	evr_loop_stop(loop);
}

/* ---- what the input asks for ---- */

enum want {
	W_REGISTER,   /* "OK registered ..." or "ERR ..." */
	W_UNREGISTER, /* "OK unregistered ..." or "ERR ..." */
	W_LOOKUP,     /* "OK name ..." or "ERR ..." */
	W_AUTH,	      /* "ERR ..." (no token here) */
	W_UNKNOWN,    /* "ERR unknown command ..." */
	W_TOO_MANY,   /* "ERR too many words" */
	W_LIST,	      /* body lines, then "OK N entries" */
	W_HELP,	      /* the command list, then "OK" */
	W_QUIT,	      /* "OK bye", then nothing */
	W_TOO_LONG,   /* a framing error, then nothing */
	W_NUL,
};

static bool is_word_sep(uint8_t c)
{
	return c == ' ' || c == '\t';
}

static bool word_is(const uint8_t *w, size_t len, const char *cmd)
{
	return len == strlen(cmd) && !strncasecmp((const char *)w, cmd, len);
}

/* One command line (no LF, CR stripped): what it asks for, or -1 for a
 * blank line, which gets no reply. */
static int want_of_line(const uint8_t *s, size_t len)
{
	const uint8_t *w0 = NULL;
	size_t w0len = 0, words = 0, i = 0;

	while (i < len) {
		while (i < len && is_word_sep(s[i]))
			i++;
		if (i == len)
			break;
		size_t st = i;

		while (i < len && !is_word_sep(s[i]))
			i++;
		if (!words++) {
			w0 = s + st;
			w0len = i - st;
		}
	}
	if (!words)
		return -1;
	if (words > WORDS_MAX)
		return W_TOO_MANY;
	if (word_is(w0, w0len, "REGISTER"))
		return W_REGISTER;
	if (word_is(w0, w0len, "UNREGISTER"))
		return W_UNREGISTER;
	if (word_is(w0, w0len, "LOOKUP"))
		return W_LOOKUP;
	if (word_is(w0, w0len, "LIST") && words == 1)
		return W_LIST;
	if (word_is(w0, w0len, "AUTH"))
		return W_AUTH;
	if (word_is(w0, w0len, "HELP"))
		return W_HELP;
	if (word_is(w0, w0len, "QUIT"))
		return W_QUIT;
	return W_UNKNOWN;
}

/* The replies the stream asks for, in order, in want[]; returns how many.
 * Framing as evring.h says: LF ends a line, one CR before it is dropped,
 * over LINE_MAX_DEF bytes or a NUL is an error that ends the connection;
 * an unfinished last line is too long only past LINE_MAX_DEF + 1 (it may
 * still end in CR LF), else it gets nothing. */
static size_t wants_of(const uint8_t *s, size_t n, uint8_t *want)
{
	size_t pos = 0, m = 0;

	while (pos < n) {
		const uint8_t *lf = memchr(s + pos, '\n', n - pos);
		size_t len;
		int w;

		if (!lf) {
			if (n - pos > LINE_MAX_DEF + 1)
				want[m++] = W_TOO_LONG;
			break;
		}
		len = (size_t)(lf - (s + pos));
		if (len && s[pos + len - 1] == '\r')
			len--;
		if (len > LINE_MAX_DEF) {
			want[m++] = W_TOO_LONG;
			break;
		}
		if (memchr(s + pos, '\0', len)) {
			want[m++] = W_NUL;
			break;
		}
		w = want_of_line(s + pos, len);
		if (w >= 0)
			want[m++] = (uint8_t)w;
		if (w == W_QUIT)
			break;
		pos = (size_t)(lf - s) + 1;
	}
	return m;
}

/* ---- the answer ---- */

struct reply {
	const char *p; /* the next line */
	const char *end;
	const char *line; /* the current one, NUL-terminated copy */
	size_t len;
	char buf[16384];
};

/* The next CRLF-terminated line of the answer; false at its end. */
static bool next_line(struct reply *rp)
{
	const char *e;

	if (rp->p == rp->end)
		return false;
	e = memmem(rp->p, (size_t)(rp->end - rp->p), "\r\n", 2);
	if (!e)
		fail("an answer line without CRLF");
	rp->len = (size_t)(e - rp->p);
	if (rp->len >= sizeof(rp->buf))
		fail("an answer line longer than any reply");
	memcpy(rp->buf, rp->p, rp->len);
	rp->buf[rp->len] = '\0';
	rp->line = rp->buf;
	rp->p = e + 2;
	return true;
}

static bool starts(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static bool valid_name(const char *s, size_t n)
{
	return n >= 1 && n <= 63 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789._-") >= n;
}

/* "name port/proto scope", as LIST sends an entry; the key is name/proto.
 * (Its second word holds a '/', so no entry reads as LIST's OK line.) */
static bool list_entry(const char *s, char *key, size_t keylen)
{
	const char *sp1 = strchr(s, ' '), *slash, *sp2;
	unsigned long port;
	char *end;

	if (!sp1 || !valid_name(s, (size_t)(sp1 - s)))
		return false;
	if (sp1[1] < '1' || sp1[1] > '9')
		return false;
	port = strtoul(sp1 + 1, &end, 10);
	slash = end;
	if (port > 65535 || *slash != '/' ||
	    (strncmp(slash + 1, "tcp ", 4) && strncmp(slash + 1, "udp ", 4)))
		return false;
	sp2 = slash + 4;
	if (strcmp(sp2 + 1, "persistent") && strcmp(sp2 + 1, "session") &&
	    strcmp(sp2 + 1, "evringd"))
		return false;
	snprintf(key, keylen, "%.*s/%.3s", (int)(sp1 - s), s, slash + 1);
	return true;
}

static void check_list(struct reply *rp)
{
	static char keys[PER_CONN_MAX][80];
	size_t n = 0;
	char key[80];
	unsigned count;
	int end;

	for (;;) {
		if (!next_line(rp))
			fail("LIST without its OK line");
		end = -1;
		if (sscanf(rp->line, "OK %u entries%n", &count, &end) == 1 &&
		    end >= 0 && rp->line[end] == '\0') {
			if (count != n)
				fail("LIST's count differs from its lines");
			return;
		}
		if (!list_entry(rp->line, key, sizeof(key)))
			fail("a LIST line that is not an entry");
		if (n == PER_CONN_MAX)
			fail("LIST shows more entries than one connection "
			     "may register");
		for (size_t i = 0; i < n; i++)
			if (!strcmp(keys[i], key))
				fail("LIST shows an entry twice");
		memcpy(keys[n++], key, sizeof(key));
	}
}

static void expect_line(struct reply *rp, const char *what)
{
	if (!next_line(rp))
		fail("a command without its reply");
	if (strcmp(rp->line, what)) {
		fprintf(stderr, "fuzz_directory: got \"%s\", want \"%s\"\n",
			rp->line, what);
		fail("a reply differs");
	}
}

static void expect_prefix(struct reply *rp, const char *ok, const char *err)
{
	if (!next_line(rp))
		fail("a command without its reply");
	if (!starts(rp->line, ok) && !(err && starts(rp->line, err))) {
		fprintf(stderr, "fuzz_directory: got \"%s\", want \"%s\"%s%s\n",
			rp->line, ok, err ? " or " : "", err ? err : "");
		fail("a reply of the wrong kind");
	}
}

static void check_answer(const char *out, size_t len, const uint8_t *want,
			 size_t m)
{
	static struct reply rp;
	static const char *const help[] = {
		"REGISTER name port [tcp|udp] [session]",
		"UNREGISTER name",
		"LOOKUP name",
		"LIST",
		"AUTH token",
		"QUIT",
		"OK",
	};

	rp.p = out;
	rp.end = out + len;
	for (size_t i = 0; i < m; i++) {
		switch (want[i]) {
		case W_REGISTER:
			expect_prefix(&rp, "OK registered ", "ERR ");
			break;
		case W_UNREGISTER:
			expect_prefix(&rp, "OK unregistered ", "ERR ");
			break;
		case W_LOOKUP:
			expect_prefix(&rp, "OK ", "ERR ");
			break;
		case W_AUTH:
			expect_prefix(&rp, "ERR ", NULL);
			break;
		case W_UNKNOWN:
			expect_prefix(&rp, "ERR unknown command \"", NULL);
			break;
		case W_TOO_MANY:
			expect_line(&rp, "ERR too many words");
			break;
		case W_LIST:
			check_list(&rp);
			break;
		case W_HELP:
			for (size_t h = 0; h < sizeof(help) / sizeof(*help);
			     h++)
				expect_line(&rp, help[h]);
			break;
		case W_QUIT:
			expect_line(&rp, "OK bye");
			break;
		case W_TOO_LONG:
			expect_line(&rp, "ERR line too long (more than 8192 "
					 "bytes)");
			break;
		case W_NUL:
			expect_line(&rp, "ERR line contains a NUL byte");
			break;
		}
	}
	if (next_line(&rp)) {
		fprintf(stderr, "fuzz_directory: extra line \"%s\"\n", rp.line);
		fail("a reply no command asked for");
	}
}

/* ---- one input ---- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct evr_loop_opts o;
	int err;

	(void)argc, (void)argv;
	evr_log_set_level(EVR_LOG_WARN);
	evr_loop_opts_init(&o);
	o.backend = "epoll";
	err = evr_loop_new(&loop, &o);
	if (err < 0) {
		fprintf(stderr, "fuzz_directory: evr_loop_new: %s\n",
			strerror(-err));
		exit(1);
	}
	return 0;
}

static void adopt(struct evr_connector **cn, const struct evr_proto *p,
		  void *conf, int fd)
{
	struct evr_listen_cfg cfg = { .proto = p, .conf = conf };
	struct evr_conn *c;

	if (evr_connector_new(loop, &cfg, cn) < 0)
		fail("evr_connector_new");
	if (evr_adopt(*cn, fd, &c) < 0)
		fail("evr_adopt");
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0 || errno != EBADF;
}

/* Nothing of the input left: connections, buffers, bytes, timers, fds. */
static void check_nothing_left(const struct evr_stats *st0, int sfd, int tfd)
{
	struct evr_stats st;

	evr_loop_stats(loop, &st);
	if (st.conns_open != 0)
		fail("a connection is still open");
	if (st.bufs_heap != st0->bufs_heap)
		fail("a buffer was not given back (bufs_heap)");
	if (st.bufs_free != st.bufs_total)
		fail("a receive buffer was not given back");
	if (st.bytes_queued != 0)
		fail("bytes still queued");
	if (st.timers != 0)
		fail("a timer is still running");
	if (fd_open(sfd) || fd_open(tfd))
		fail("the loop did not close an adopted socket");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct client cl;
	struct evr_connector *dir_cn, *tick_cn;
	struct evr_stats st0;
	int sv[2], tp[2];
	uint8_t *want;
	size_t k, m;
	void *conf;

	if (size < 1 || size < 1 + (size_t)(data[0] % 16))
		return 0;
	k = data[0] % 16;
	char *out = cl.out;
	size_t out_cap = cl.out_cap;

	cl = (struct client){ .cuts = data + 1,
			      .k = k,
			      .s = data + 1 + k,
			      .n = size - 1 - k,
			      .out = out,
			      .out_cap = out_cap };
	want = malloc(cl.n + 1);
	if (!want)
		fail("out of memory");
	m = wants_of(cl.s, cl.n, want);

	conf = calloc(1, dir_proto->conf_size);
	if (!conf || dir_proto->conf_init(conf) < 0)
		fail("directory conf_init");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 ||
	    socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, tp) < 0)
		fail("socketpair");
	cl.peer = sv[1];
	cl.tick_peer = tp[1];
	evr_loop_stats(loop, &st0);
	adopt(&dir_cn, dir_proto, conf, sv[0]);
	adopt(&tick_cn, &tick_proto, &cl, tp[0]);
	evr_timer_init(&cl.guard, guard_expired);
	evr_timer_start(loop, &cl.guard, GUARD_MS);

	if (evr_loop_run(loop) < 0)
		fail("evr_loop_run");
	if (cl.timed_out)
		fail("the server did not finish within the guard time");
	evr_connector_free(dir_cn);
	evr_connector_free(tick_cn);
	check_nothing_left(&st0, sv[0], tp[0]);
	close(sv[1]);
	close(tp[1]);
	check_answer(cl.out, cl.out_len, want, m);

	dir_proto->conf_fini(conf);
	free(conf);
	free(want);
	cl.out_len = 0;
	return 0;
}
