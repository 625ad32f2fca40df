/* SPDX-License-Identifier: MIT */
/*
 * stats.c - the server's counters over HTTP, in the Prometheus text
 * exposition format 0.0.4: GET /metrics.
 *
 * Every counter and gauge of EVR_STATS (evring.h), one series per loop
 * with a `loop` label, gathered from every loop of the group without
 * stopping any (evr_group_stats: each loop copies its own in its next
 * iteration, through its mailbox) while the connection waits; then the
 * process's own: evring_build_info, process_open_fds, process_max_fds,
 * process_resident_memory_bytes. Counters are named evring_NAME_total,
 * gauges evring_NAME; every family has its # HELP and # TYPE lines.
 *
 * One request per connection: the response says Connection: close
 * (scrapers reconnect). GET and HEAD of /metrics; other paths get 404,
 * other methods 405, a malformed head 400 (the http module's parser,
 * protocols/http.h). The module keeps no state of its own and changes no
 * configuration: any loop may serve it. A program binds it where only
 * the operator can reach it: EVR_PROTO_LOCAL asks for loopback unless
 * told otherwise.
 */
#include "http.h"
#include "modules.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define STATS_PATH "/metrics"

/* A scrape waiting for the counters of every loop. When the connection
 * closes first, c becomes NULL and the answer is dropped. */
struct scrape {
	struct evr_conn *c;
	bool head; /* HEAD: headers only */
};

struct stats_conn {
	char head[EVR__HTTP_HEAD_MAX];
	size_t len;
	bool done; /* answered, or answering */
	struct scrape *pending;
};

/* ---- the exposition ---- */

struct out {
	char *p;
	size_t len, cap;
};

static void put(struct out *o, const char *fmt, ...) EVR_PRINTF(2, 3);

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (o->len >= o->cap)
		return;
	va_start(ap, fmt);
	n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static long open_fds(void)
{
	struct dirent *de;
	DIR *d = opendir("/proc/self/fd");
	long n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory's own */
}

static long long resident_bytes(void)
{
	long long size, rss;
	FILE *f = fopen("/proc/self/statm", "re");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%lld %lld", &size, &rss) == 2;
	fclose(f);
	return ok ? rss * sysconf(_SC_PAGESIZE) : -1;
}

static void put_process(struct out *o, struct evr_loop *l, unsigned n)
{
	struct rlimit rl;
	long fds = open_fds();
	long long rss = resident_bytes();

	put(o,
	    "# HELP evring_build_info The evring version and backend, "
	    "always 1.\n"
	    "# TYPE evring_build_info gauge\n"
	    "evring_build_info{version=\"%s\",backend=\"%s\",loops=\"%u\"} "
	    "1\n",
	    EVR_VERSION, evr_loop_backend(l), n);
	if (fds >= 0)
		put(o,
		    "# HELP process_open_fds Number of open file "
		    "descriptors.\n"
		    "# TYPE process_open_fds gauge\n"
		    "process_open_fds %ld\n",
		    fds);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		put(o,
		    "# HELP process_max_fds Maximum number of open file "
		    "descriptors.\n"
		    "# TYPE process_max_fds gauge\n"
		    "process_max_fds %llu\n",
		    (unsigned long long)rl.rlim_cur);
	if (rss >= 0)
		put(o,
		    "# HELP process_resident_memory_bytes Resident memory "
		    "size in bytes.\n"
		    "# TYPE process_resident_memory_bytes gauge\n"
		    "process_resident_memory_bytes %lld\n",
		    rss);
}

/* Every family of EVR_STATS, a series per loop. */
static void put_loops(struct out *o, const struct evr_stats *st, unsigned n)
{
#define STATS_FAMILY(name, type, help)                                         \
	put(o, "# HELP evring_%s%s %s\n# TYPE evring_%s%s %s\n", #name,        \
	    !strcmp(#type, "counter") ? "_total" : "", help, #name,            \
	    !strcmp(#type, "counter") ? "_total" : "", #type);                 \
	for (unsigned i = 0; i < n; i++)                                       \
		put(o, "evring_%s%s{loop=\"%u\"} %llu\n", #name,               \
		    !strcmp(#type, "counter") ? "_total" : "", i,              \
		    (unsigned long long)st[i].name);
	EVR_STATS(STATS_FAMILY)
#undef STATS_FAMILY
}

/* Room for it all: the families' lines and one series per loop each. */
static size_t exposition_size(unsigned n)
{
	size_t families = 0;

#define STATS_COUNT(name, type, help) families++;
	EVR_STATS(STATS_COUNT)
#undef STATS_COUNT
	return 1024 + families * (256 + (size_t)n * 96);
}

/* ---- responses ---- */

static void respond(struct evr_conn *c, int status, const char *reason,
		    const char *body, size_t len, bool head)
{
	struct evr_buf *b = evr_buf_new(evr_conn_loop(c), 256 + len);

	if (!b) {
		evr_abort(c, -ENOMEM);
		return;
	}
	b->len = (uint32_t)snprintf(
	    b->data, 256,
	    "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "Connection: close\r\n\r\n",
	    status, reason,
	    status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
			  : "text/plain; charset=utf-8",
	    len);
	if (!head) {
		memcpy(b->data + b->len, body, len);
		b->len += (uint32_t)len;
	}
	if (evr_send(c, b) < 0)
		evr_abort(c, -ENOMEM);
	else
		evr_close(c);
	evr_buf_unref(b);
}

static void respond_error(struct evr_conn *c, int status)
{
	static const struct {
		int status;
		const char *reason;
	} reasons[] = {
		{ 400, "Bad Request" },
		{ 404, "Not Found" },
		{ 405, "Method Not Allowed" },
		{ 431, "Request Header Fields "
		       "Too Large" },
		{ 500, "Internal Server Error" },
	};
	const char *reason = "Error";
	char body[64];
	int n;

	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].status == status)
			reason = reasons[i].reason;
	n = snprintf(body, sizeof(body), "%d %s\n", status, reason);
	respond(c, status, reason, body, (size_t)n, false);
}

/* The counters of every loop are in: the exposition, sent on the
 * connection if it is still there. */
static void collected(const struct evr_stats *per_loop, unsigned n,
		      const struct evr_stats *total, void *arg)
{
	struct scrape *s = arg;
	struct evr_conn *c = s->c;
	struct out o;

	(void)total;
	if (!c) {
		free(s);
		return;
	}
	((struct stats_conn *)evr_conn_state(c))->pending = NULL;
	o.cap = exposition_size(n);
	o.len = 0;
	o.p = malloc(o.cap);
	if (!o.p) {
		respond_error(c, 500);
		free(s);
		return;
	}
	put_loops(&o, per_loop, n);
	put_process(&o, evr_conn_loop(c), n);
	respond(c, 200, "OK", o.p, o.len, s->head);
	free(o.p);
	free(s);
}

static void scrape(struct evr_conn *c, bool head)
{
	struct stats_conn *st = evr_conn_state(c);
	struct evr_loop *l = evr_conn_loop(c);
	struct evr_group *g = evr_loop_group(l);
	struct scrape *s = calloc(1, sizeof(*s));
	struct evr_stats one, total;

	if (!s) {
		respond_error(c, 500);
		return;
	}
	s->c = c;
	s->head = head;
	if (!g) { /* a loop on its own: its counters now */
		evr_loop_stats(l, &one);
		total = one;
		collected(&one, 1, &total, s);
		return;
	}
	st->pending = s;
	if (evr_group_stats(g, l, collected, s) < 0) {
		st->pending = NULL;
		free(s);
		respond_error(c, 500);
	}
}

/* ---- the module ---- */

static void handle(struct evr_conn *c, const struct evr__http_req *req)
{
	bool metrics = req->path_len == strlen(STATS_PATH) &&
		       !memcmp(req->path, STATS_PATH, req->path_len);

	if (!metrics)
		respond_error(c, 404);
	else if (req->method != EVR__HTTP_GET && req->method != EVR__HTTP_HEAD)
		respond_error(c, 405);
	else
		scrape(c, req->method == EVR__HTTP_HEAD);
}

static void stats_data(struct evr_conn *c, struct evr_buf *b)
{
	struct stats_conn *st = evr_conn_state(c);
	struct evr__http_req req;
	size_t take;
	int n;

	if (st->done)
		return; /* one request per connection */
	take = b->len < sizeof(st->head) - st->len ? b->len
						   : sizeof(st->head) - st->len;
	memcpy(st->head + st->len, b->data, take);
	st->len += take;
	n = evr__http_parse(st->head, st->len, &req);
	if (n == 0 && st->len == sizeof(st->head))
		n = -431;
	if (n == 0)
		return;
	st->done = true;
	if (n < 0)
		respond_error(c, -n);
	else
		handle(c, &req);
}

/* A client that half-closes after its request still gets the answer. */
static void stats_eof(struct evr_conn *c)
{
	struct stats_conn *st = evr_conn_state(c);

	if (!st->done)
		evr_close(c);
}

static void stats_close(struct evr_conn *c, int err)
{
	struct stats_conn *st = evr_conn_state(c);

	(void)err;
	if (st->pending)
		st->pending->c = NULL; /* its answer finds no one */
}

const struct evr_proto evr_proto_stats = {
	.name = "stats",
	.summary = "the server's counters for Prometheus: HTTP GET /metrics "
		   "(bound to loopback unless -b says otherwise)",
	.state_size = sizeof(struct stats_conn),
	.on_data = stats_data,
	.on_eof = stats_eof,
	.on_close = stats_close,
	.flags = EVR_PROTO_LOCAL,
};
