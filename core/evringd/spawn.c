/* SPDX-License-Identifier: MIT */
/*
 * spawn.c - programs that serve connections and datagrams, as inetd runs
 * them.
 *
 * nowait stream: each connection is taken from the loop (evr_conn_detach,
 * in on_accept, before a byte is read) and becomes fds 0, 1 and 2 of a
 * new process. wait dgram and wait stream: the socket itself (bound here,
 * watched for readability with evr_watch, never read by the loop) goes to
 * one process, and is watched again when that process has exited.
 *
 * A process starts in a new session, with no other descriptor (close_range
 * over everything from 3; every descriptor of evringd is close-on-exec
 * already), an empty signal mask, every signal at its default action
 * (SIGPIPE too: evringd ignores it, a child must not), the environment
 * described in evringd.conf(5) and nothing else, as the configured user
 * and group with the user's groups (initgroups(3)).
 *
 * The process itself is started by spawner.c, on a thread of its own, so
 * that the loop never waits for an exec; the outcome comes back to the
 * loop (started()): a child to watch, or a failure to log. A start counts
 * as running from the moment it is asked for.
 *
 * Children are reaped through the loop (evr_child: a pidfd, WAITID under
 * io_uring); a failure (exit status, signal) is logged.
 *
 * Limits, checked before each start, in this order: a service taken down
 * (below); instances (at once) and per_source (at once from one source,
 * an IPv4 address or IPv6 /64), as xinetd's; cps RATE,WAIT (xinetd's: over
 * RATE in one second takes the service down for WAIT); .max, OpenBSD's
 * and Debian's meaning: more than MAX starts in 60 s is "server failing
 * (looping)" and takes the service down for retry (10 minutes, as
 * OpenBSD's RETRYTIME). While down, connections are closed at once and
 * datagrams read and dropped, so that nothing spins; refusals are logged
 * once per 10 s.
 */
#include "config.h"
#include "evringd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_MAX	 256	      /* OpenBSD inetd's TOOMANY */
#define MAX_WINDOW_MS	 (60 * 1000)  /* OpenBSD's CNT_INTVL */
#define DEFAULT_RETRY_MS (600 * 1000) /* OpenBSD's RETRYTIME */
#define DEFAULT_CPS_WAIT (10 * 1000)
#define LOG_MS		 10000
#define SRC_KEY_LEN	 17
#define PATH_VALUE                                                             \
	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct src_count {
	uint8_t key[SRC_KEY_LEN];
	uint32_t n;
};

struct evd_prog {
	struct service *s;
	char *path;
	char **argv;
	bool wait, stream;
	/* who it runs as */
	char user[33];
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int ngroups;
	char *home;
	bool switch_user;
	/* limits (0: none) */
	long max; /* starts per minute */
	uint32_t instances, per_source, cps, cps_wait_ms, retry_ms;
	/* the state of the limits */
	uint32_t running;
	struct src_count *src;
	uint32_t nsrc, src_cap;
	uint64_t max_start, cps_start;
	uint32_t max_count, cps_count;
	uint64_t down_until;
	struct evd_ratelimit rl_refuse, rl_exec;
};

/* A socket a wait service hands to its program. */
struct evd_wait {
	struct evr_loop *loop;
	struct service *s; /* holds a reference on its generation */
	int fd, pr;
	struct evr_watch w;
	bool running, closed;
};

/* One program: being started, then running. */
struct evd_child {
	struct evd_start req;
	struct evr_child w;
	struct evr_loop *loop;
	struct service *s; /* holds a reference on its generation */
	struct evd_wait *ws;
	uint8_t key[SRC_KEY_LEN];
	bool counted; /* in s->prog->src */
};

static void on_exit_child(struct evr_child *w, pid_t pid, int status);

bool evd_ratelimit(struct evd_ratelimit *r, uint64_t now, uint32_t ms,
		   uint64_t *more)
{
	if (now < r->next) {
		r->suppressed++;
		return false;
	}
	*more = r->suppressed;
	r->suppressed = 0;
	r->next = now + ms;
	return true;
}

/* ---- configuration ---- */

bool evd_prog_wait(const struct evd_prog *p)
{
	return p->wait;
}

static int parse_u32(const char *v, uint32_t *out)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno || end == v || *end || *v == '-' || n > INT32_MAX)
		return -EINVAL;
	*out = (uint32_t)n;
	return 0;
}

int evd_prog_option(struct evd_prog *p, const char *key, const char *value,
		    char *why, size_t whylen)
{
	char *comma;
	int err = 0;

	if (!strcmp(key, "instances")) {
		err = parse_u32(value, &p->instances);
	} else if (!strcmp(key, "per_source")) {
		err = parse_u32(value, &p->per_source);
	} else if (!strcmp(key, "retry")) {
		err = evd_parse_ms(value, &p->retry_ms);
		if (!err && !p->retry_ms)
			err = -EINVAL;
	} else if (!strcmp(key, "cps")) {
		char rate[16];

		comma = strchr(value, ',');
		snprintf(rate, sizeof(rate), "%.*s",
			 comma ? (int)(comma - value) : 15, value);
		err = parse_u32(rate, &p->cps);
		p->cps_wait_ms = DEFAULT_CPS_WAIT;
		if (!err && comma) {
			uint32_t secs;

			err = parse_u32(comma + 1, &secs);
			if (!err && (secs == 0 || secs > 86400))
				err = -EINVAL;
			p->cps_wait_ms = secs * 1000;
		}
	} else {
		snprintf(why, whylen,
			 "a program takes instances, per_source, cps and "
			 "retry, not \"%.64s\"",
			 key);
		return -ENOENT;
	}
	if (err)
		snprintf(why, whylen, "bad value \"%.64s\"", value);
	return err ? -EINVAL : 0;
}

static bool all_digits(const char *s)
{
	return *s && strspn(s, "0123456789") == strlen(s);
}

/* user[:group]: the ids, the groups of the user, its home. */
/*
 * Who evringd is when it serves: with --user, that user (it drops root
 * once bound, privs.c), else who it runs as. A program as anyone else
 * needs a switch, which only root can make.
 */
static void serving_as(const struct daemon *d, uid_t *uid, gid_t *gid)
{
	struct passwd *pw;
	struct group *gr;

	*uid = geteuid();
	*gid = getegid();
	if (!d->user)
		return;
	pw = getpwnam(d->user);
	if (!pw && all_digits(d->user))
		pw = getpwuid((uid_t)strtoul(d->user, NULL, 10));
	if (pw) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	}
	gr = d->group ? getgrnam(d->group) : NULL;
	if (gr)
		*gid = gr->gr_gid;
	else if (d->group && all_digits(d->group))
		*gid = (gid_t)strtoul(d->group, NULL, 10);
}

static bool resolve_user(const struct daemon *d, struct evd_conf *cf,
			 const struct evd_conf_entry *e, struct evd_prog *p)
{
	uid_t su;
	gid_t sg;
	struct passwd *pw = getpwnam(e->user);
	int n = 64;

	if (!pw && all_digits(e->user))
		pw = getpwuid((uid_t)strtoul(e->user, NULL, 10));
	if (!pw) {
		evd_conf_field_error(cf, e, EVD_F_USER, "no user \"%s\"",
				     e->user);
		return false;
	}
	snprintf(p->user, sizeof(p->user), "%s", pw->pw_name);
	p->uid = pw->pw_uid;
	p->gid = pw->pw_gid;
	p->home = strdup(pw->pw_dir);
	if (e->group[0]) {
		struct group *gr = getgrnam(e->group);

		if (!gr && all_digits(e->group))
			gr = getgrgid((gid_t)strtoul(e->group, NULL, 10));
		if (!gr) {
			evd_conf_field_error(cf, e, EVD_F_USER,
					     "no group \"%s\"", e->group);
			return false;
		}
		p->gid = gr->gr_gid;
	}
	/* initgroups(3)'s list, looked up now: the child cannot */
	p->groups = malloc((size_t)n * sizeof(gid_t));
	while (p->groups && getgrouplist(p->user, p->gid, p->groups, &n) < 0) {
		gid_t *g = realloc(p->groups, (size_t)n * sizeof(gid_t));

		if (!g)
			break;
		p->groups = g;
	}
	p->ngroups = p->groups ? n : 0;
	serving_as(d, &su, &sg);
	p->switch_user = p->uid != su || p->gid != sg;
	if (p->switch_user && d->user) {
		evd_conf_field_error(cf, e, EVD_F_USER,
				     "evringd runs as %s once bound (--user) "
				     "and cannot run programs as %s (name "
				     "%s here, or leave --user out)",
				     d->user, e->user, d->user);
		return false;
	}
	if (p->switch_user && geteuid() != 0) {
		evd_conf_field_error(cf, e, EVD_F_USER,
				     "evringd runs as uid %d and cannot run "
				     "programs as %s (start it as root, or "
				     "name the user it runs as)",
				     (int)geteuid(), e->user);
		return false;
	}
	return true;
}

int evd_prog_setup(const struct daemon *d, struct evd_conf *cf,
		   const struct evd_conf_entry *e, struct service *s)
{
	struct evd_prog *p = calloc(1, sizeof(*p));

	if (!p)
		return -ENOMEM;
	s->prog = p;
	p->s = s;
	p->wait = e->wait;
	p->stream = e->stream;
	p->max = e->max < 0 ? DEFAULT_MAX : e->max;
	p->retry_ms = DEFAULT_RETRY_MS;
	p->path = strdup(e->server);
	p->argv = calloc((size_t)e->argc + 1, sizeof(char *));
	if (!p->path || !p->argv)
		return -ENOMEM;
	for (int i = 0; i < e->argc; i++)
		if (!(p->argv[i] = strdup(e->argv[i])))
			return -ENOMEM;
	if (!e->stream && !e->wait) {
		evd_conf_field_error(cf, e, EVD_F_WAIT,
				     "a dgram program is a wait service: it "
				     "reads the datagrams from the socket "
				     "(nowait would start one per datagram, "
				     "racing for it)");
		return 0;
	}
	if (e->wait && e->tcpmux)
		return 0; /* the parser said so already */
	if (access(e->server, X_OK) < 0) {
		evd_conf_field_error(cf, e, EVD_F_SERVER, "cannot execute: %s",
				     strerror(errno));
		return 0;
	}
	resolve_user(d, cf, e, p);
	return 0;
}

void evd_prog_free(struct evd_prog *p)
{
	if (!p)
		return;
	for (char **a = p->argv; a && *a; a++)
		free(*a);
	free(p->argv);
	free(p->path);
	free(p->groups);
	free(p->home);
	free(p->src);
	free(p);
}

/* ---- limits ---- */

/* A source address as --max-conns-per-source counts it: an IPv4 address
 * (mapped ones too) or an IPv6 /64. */
static void src_key(const struct sockaddr *sa, uint8_t key[SRC_KEY_LEN])
{
	memset(key, 0, SRC_KEY_LEN);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	const struct in6_addr *a =
	    &((const struct sockaddr_in6 *)sa)->sin6_addr;
	if (IN6_IS_ADDR_V4MAPPED(a)) {
		key[0] = 4;
		memcpy(key + 1, &a->s6_addr[12], 4);
		return;
	}
	key[0] = 6;
	memcpy(key + 1, a, 8);
}

static struct src_count *src_find(struct evd_prog *p, const uint8_t *key)
{
	for (uint32_t i = 0; i < p->nsrc; i++)
		if (!memcmp(p->src[i].key, key, SRC_KEY_LEN))
			return &p->src[i];
	return NULL;
}

static int src_add(struct evd_prog *p, const uint8_t *key)
{
	struct src_count *c = src_find(p, key);

	if (!c) {
		if (p->nsrc == p->src_cap) {
			uint32_t cap = p->src_cap ? 2 * p->src_cap : 16;
			struct src_count *m = realloc(p->src, cap * sizeof(*m));

			if (!m)
				return -ENOMEM;
			p->src = m;
			p->src_cap = cap;
		}
		c = &p->src[p->nsrc++];
		memcpy(c->key, key, SRC_KEY_LEN);
		c->n = 0;
	}
	c->n++;
	return 0;
}

static void src_del(struct evd_prog *p, const uint8_t *key)
{
	struct src_count *c = src_find(p, key);

	if (c && --c->n == 0)
		*c = p->src[--p->nsrc];
}

static const char *proto_of(const struct evd_prog *p)
{
	return p->stream ? "tcp" : "udp";
}

static void take_down(struct evd_prog *p, uint64_t now, uint32_t ms,
		      const char *why)
{
	p->down_until = now + ms;
	evr_log_err("%s/%s: server failing (looping): %s; not served for "
		    "%u s",
		    p->s->name, proto_of(p), why, ms / 1000);
}

/*
 * May a program start now, for a client at peer (NULL: a wait socket)?
 * NULL, or why not (for the log). Counts the start when it may.
 */
static const char *admit(struct evd_prog *p, uint64_t now, const uint8_t *key)
{
	static char why[128];
	struct src_count *c;

	if (now < p->down_until)
		return "the service is down (server failing)";
	if (p->down_until) {
		p->down_until = 0;
		evr_log_info("%s/%s: served again", p->s->name, proto_of(p));
	}
	if (p->instances && p->running >= p->instances) {
		snprintf(why, sizeof(why), "instances limit of %u reached",
			 p->instances);
		return why;
	}
	if (key && p->per_source && (c = src_find(p, key)) &&
	    c->n >= p->per_source) {
		snprintf(why, sizeof(why), "per_source limit of %u reached",
			 p->per_source);
		return why;
	}
	if (p->cps) {
		if (now - p->cps_start >= 1000) {
			p->cps_start = now;
			p->cps_count = 0;
		}
		if (++p->cps_count > p->cps) {
			snprintf(why, sizeof(why),
				 "more than %u connections in a second (cps)",
				 p->cps);
			take_down(p, now, p->cps_wait_ms, why);
			return why;
		}
	}
	if (p->max) {
		if (!p->max_count || now - p->max_start > MAX_WINDOW_MS) {
			p->max_start = now;
			p->max_count = 0;
		}
		if (++p->max_count > (uint32_t)p->max) {
			snprintf(why, sizeof(why),
				 "more than %ld servers started in a minute "
				 "(.max)",
				 p->max);
			take_down(p, now, p->retry_ms, why);
			p->max_count = 0;
			return why;
		}
	}
	return NULL;
}

static void log_refused(struct evd_prog *p, uint64_t now, const char *why)
{
	uint64_t more;

	if (evd_ratelimit(&p->rl_refuse, now, LOG_MS, &more))
		evr_log_warn("%s/%s: refused: %s (%llu more refused in the "
			     "last %d s)",
			     p->s->name, proto_of(p), why,
			     (unsigned long long)more, LOG_MS / 1000);
}

/* ---- starting a process ---- */

static void env_addr(struct evd_start *r, const char *what,
		     const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN] = "";
	uint16_t port;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)ss;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else {
		const struct sockaddr_in6 *in6 = (const void *)ss;

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	evd_env_add(r, "%s_ADDR=%s", what, host);
	evd_env_add(r, "%s_PORT=%u", what, port);
}

/* The environment of a program: evringd.conf(5) lists it. */
static void env_make(struct evd_start *r, const struct evd_prog *p, int fd,
		     const struct sockaddr_storage *peer)
{
	struct sockaddr_storage local;
	socklen_t len = sizeof(local);

	evd_env_add(r, "PATH=" PATH_VALUE);
	evd_env_add(r, "HOME=%s", p->home ? p->home : "/");
	evd_env_add(r, "USER=%s", p->user);
	evd_env_add(r, "LOGNAME=%s", p->user);
	evd_env_add(r, "EVRINGD_SERVICE=%s", p->s->name);
	evd_env_add(r, "PROTO=%s", p->stream ? "TCP" : "UDP");
	if (peer)
		env_addr(r, "REMOTE", peer);
	if (getsockname(fd, (struct sockaddr *)&local, &len) == 0 &&
	    (local.ss_family == AF_INET || local.ss_family == AF_INET6))
		env_addr(r, "LOCAL", &local);
}

static void on_exit_child(struct evr_child *w, pid_t pid, int status);

static void consume(struct evd_wait *ws);
static void wait_arm(struct evd_wait *ws);
static void wait_free(struct evd_wait *ws);

/* A start is over: a child to watch, or a failure to log. On the loop. */
static void started(struct evd_start *r)
{
	struct evd_child *ch = EVR_CONTAINER_OF(r, struct evd_child, req);
	struct service *s = ch->s;
	struct evd_prog *p = s->prog;
	uint64_t more;
	int err = r->err;

	if (!err) {
		err = evr_child_watch(ch->loop, &ch->w, r->pid, -1,
				      on_exit_child);
		if (err < 0) /* cannot happen short of memory */
			evr_log_err("%s: watch pid %d: %s", s->name,
				    (int)r->pid, strerror(-err));
	}
	if (!ch->ws)
		close(r->fd); /* the child's copy is its own */
	if (!err) {
		evr_log_debug("%s/%s: started %s, pid %d (in %u us, off the "
			      "loop)",
			      s->name, proto_of(p), p->path, (int)r->pid,
			      r->took_us);
		return;
	}
	if (err != -ESHUTDOWN &&
	    evd_ratelimit(&p->rl_exec, evr_loop_now(ch->loop), LOG_MS, &more))
		evr_log_err("%s/%s: cannot run %s: %s (%llu more failures in "
			    "the last %d s)",
			    s->name, proto_of(p), p->path, strerror(-err),
			    (unsigned long long)more, LOG_MS / 1000);
	p->running--;
	if (ch->counted)
		src_del(p, ch->key);
	if (ch->ws) {
		ch->ws->running = false;
		if (ch->ws->closed) {
			wait_free(ch->ws);
		} else if (err != -ESHUTDOWN) {
			consume(ch->ws);
			wait_arm(ch->ws);
		}
	}
	free(ch);
	evd_gen_put(s->gen);
}

/*
 * Start s's program on fd (made blocking: the descriptor is shared with
 * the child, and programs expect blocking sockets), for peer (NULL for a
 * wait socket ws). The loop hands it to the spawner thread and goes on;
 * started() hears how it went. It counts as running from now on, so
 * that the limits see it. 0, or -errno when it could not even be asked
 * for (fd is then the caller's still).
 */
static int start(struct service *s, struct evr_loop *l, int fd,
		 const struct sockaddr_storage *peer, struct evd_wait *ws)
{
	struct evd_prog *p = s->prog;
	struct evd_child *ch = calloc(1, sizeof(*ch));
	int fl = fcntl(fd, F_GETFL), err;

	if (!ch)
		return -ENOMEM;
	if (fl >= 0 && (fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
	ch->loop = l;
	ch->s = s;
	ch->ws = ws;
	ch->req.path = p->path;
	ch->req.argv = p->argv;
	ch->req.switch_user = p->switch_user;
	ch->req.uid = p->uid;
	ch->req.gid = p->gid;
	ch->req.groups = p->groups;
	ch->req.ngroups = p->ngroups;
	ch->req.fd = fd;
	ch->req.done = started;
	env_make(&ch->req, p, fd, peer);
	err = evd_spawner_submit(l, &ch->req);
	if (err < 0) {
		evr_log_err("%s: cannot start %s: %s", s->name, p->path,
			    strerror(-err));
		free(ch);
		return err;
	}
	if (peer && p->per_source) {
		src_key((const struct sockaddr *)peer, ch->key);
		ch->counted = src_add(p, ch->key) == 0;
	}
	p->running++;
	evd_gen_get(s->gen);
	return 0;
}

static void on_exit_child(struct evr_child *w, pid_t pid, int status)
{
	struct evd_child *ch = EVR_CONTAINER_OF(w, struct evd_child, w);
	struct service *s = ch->s;
	struct evd_prog *p = s->prog;

	if (status == -1)
		; /* logged by the loop */
	else if (WIFSIGNALED(status))
		evr_log_warn("%s/%s: %s (pid %d) killed by signal %d (%s)%s",
			     s->name, proto_of(p), p->path, (int)pid,
			     WTERMSIG(status), strsignal(WTERMSIG(status)),
			     WCOREDUMP(status) ? ", core dumped" : "");
	else if (WEXITSTATUS(status))
		evr_log_warn("%s/%s: %s (pid %d) exited with status %d",
			     s->name, proto_of(p), p->path, (int)pid,
			     WEXITSTATUS(status));
	else
		evr_log_debug("%s/%s: pid %d done", s->name, proto_of(p),
			      (int)pid);
	p->running--;
	if (ch->counted)
		src_del(p, ch->key);
	if (ch->ws) {
		ch->ws->running = false;
		if (ch->ws->closed)
			wait_free(ch->ws);
		else
			wait_arm(ch->ws);
	}
	free(ch);
	evd_gen_put(s->gen);
}

/* ---- nowait stream: a connection each ---- */

static int spawn_accept(struct evr_conn *c)
{
	struct service *s = evr_conn_conf(c);
	struct evd_prog *p = s->prog;
	struct evr_loop *l = evr_conn_loop(c);
	struct sockaddr_storage peer;
	uint8_t key[SRC_KEY_LEN];
	socklen_t len;
	const char *why;
	int fd, err;

	err = evr_conn_peer(c, &peer, &len);
	if (err < 0)
		return err; /* reset before we saw it */
	src_key((struct sockaddr *)&peer, key);
	why = admit(p, evr_loop_now(l), key);
	if (why) {
		log_refused(p, evr_loop_now(l), why);
		return -EAGAIN;
	}
	fd = evr_conn_detach(c);
	if (fd < 0)
		return fd;
	if (start(s, l, fd, &peer, NULL) < 0)
		close(fd); /* else closed once the child has it */
	return 0;
}

/* The loop never calls it: connections leave in on_accept. */
static void spawn_data(struct evr_conn *c, struct evr_buf *b)
{
	(void)b;
	evr_close(c);
}

const struct evr_proto evd_spawn_proto = {
	.name = "program",
	.summary = "a program per connection",
	.on_accept = spawn_accept,
	.on_data = spawn_data,
};

/* tcpmux: the name line was read; the client waits for our answer, so
 * the socket changes hands without a byte in flight. */
int evd_prog_take(struct evr_conn *c, struct evr_buf *b, size_t off, void *arg)
{
	struct service *s = arg;
	struct evd_prog *p = s->prog;
	struct evr_loop *l = evr_conn_loop(c);
	struct sockaddr_storage peer;
	uint8_t key[SRC_KEY_LEN];
	socklen_t len;
	const char *why;
	int fd;

	if (b->len > off) {
		/* a program cannot be given bytes we have read */
		evr_sendf(c, "-Wait for the reply before sending data\r\n");
		return -EPROTO;
	}
	if (evr_conn_peer(c, &peer, &len) < 0)
		return -ENOTCONN;
	src_key((struct sockaddr *)&peer, key);
	why = admit(p, evr_loop_now(l), key);
	if (why) {
		log_refused(p, evr_loop_now(l), why);
		evr_sendf(c, "-Service not available now\r\n");
		return -EAGAIN;
	}
	fd = evr_conn_detach(c);
	if (fd < 0)
		return fd;
	if (s->mux_plus && send(fd, "+Go\r\n", 5, MSG_NOSIGNAL) != 5) {
		close(fd);
		return 0;
	}
	if (start(s, l, fd, &peer, NULL) < 0)
		close(fd);
	return 0;
}

/* ---- wait: the socket itself, one program at a time ---- */

/* Refused or failed: take what made the socket readable, so that it does
 * not fire again at once. */
static void consume(struct evd_wait *ws)
{
	char c;

	if (ws->pr == P_UDP) {
		while (recv(ws->fd, &c, 1, MSG_DONTWAIT | MSG_TRUNC) < 0 &&
		       errno == EINTR)
			;
		return;
	}
	int fd = accept4(ws->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd >= 0)
		close(fd);
}

static void wait_ready(struct evr_watch *w, int res)
{
	struct evd_wait *ws = EVR_CONTAINER_OF(w, struct evd_wait, w);
	struct evd_prog *p = ws->s->prog;
	uint64_t now = evr_loop_now(ws->loop);
	const char *why;

	if (res < 0) {
		evr_log_err("%s/%s: watch: %s", ws->s->name, proto_of(p),
			    strerror(-res));
		return;
	}
	why = admit(p, now, NULL);
	if (why) {
		log_refused(p, now, why);
		consume(ws);
		wait_arm(ws);
		return;
	}
	if (start(ws->s, ws->loop, ws->fd, NULL, ws) < 0) {
		consume(ws);
		wait_arm(ws);
		return;
	}
	ws->running = true; /* its socket is the program's: unwatched */
}

static void wait_arm(struct evd_wait *ws)
{
	int err = evr_watch_start(ws->loop, &ws->w, ws->fd, POLLIN, wait_ready);

	if (err < 0)
		evr_log_err("%s: watch: %s", ws->s->name, strerror(-err));
}

int evd_wait_bind(struct daemon *d, struct service *s, int pr,
		  const struct sockaddr *sa, socklen_t len, bool v6only,
		  struct evd_wait **out)
{
	struct evd_wait *ws = calloc(1, sizeof(*ws));
	int one = 1, fd, err = 0;

	if (!ws)
		return -ENOMEM;
	/* blocking, as a program expects its socket; never read here */
	fd = socket(sa->sa_family,
		    (pr == P_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		free(ws);
		return -errno;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    (v6only && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
				  sizeof(one)) < 0) ||
	    bind(fd, sa, len) < 0 ||
	    (pr == P_TCP &&
	     listen(fd, d->backlog > 0 ? (int)d->backlog : 1024) < 0))
		err = -errno;
	if (err) {
		close(fd);
		free(ws);
		return err;
	}
	ws->loop = d->loop;
	ws->fd = fd;
	ws->pr = pr;
	ws->s = s;
	evd_gen_get(s->gen);
	wait_arm(ws);
	*out = ws;
	return 0;
}

int evd_wait_fd(const struct evd_wait *w)
{
	return w->fd;
}

void evd_wait_set(struct evd_wait *ws, struct service *s)
{
	struct service *old = ws->s;

	evd_gen_get(s->gen);
	ws->s = s;
	evd_gen_put(old->gen);
}

static void wait_free(struct evd_wait *ws)
{
	close(ws->fd);
	evd_gen_put(ws->s->gen);
	free(ws);
}

/* A program being started or running has the socket: our descriptor goes
 * when it has ended (the program holds the socket open till then
 * anyway). */
void evd_wait_close(struct evd_wait *ws)
{
	evr_watch_stop(&ws->w);
	ws->closed = true;
	if (!ws->running)
		wait_free(ws);
}
