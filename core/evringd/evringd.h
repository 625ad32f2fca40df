/* SPDX-License-Identifier: MIT */
/*
 * evringd.h - what the files of the daemon share.
 *
 * evringd is a program on the public API of libevring (evring.h and the
 * <evring/...> headers of protocols/), like any other: it never includes
 * core/internal.h. Its files, by concern:
 *
 *	options.c	the command line: services, options, limits
 *	deploy.c	running as a system service: its options (their
 *			own table, parsed by options.c) and the steps
 *			main.c takes before binding and once bound
 *	logging.c	where log lines go: journal, RFC 3339, syslog
 *	privs.c		dropping root after binding (--user, --group)
 *	notify.c	sd_notify: READY, RELOADING, STOPPING, STATUS,
 *			WATCHDOG
 *	activation.c	sockets passed by systemd, matched by name
 *	config.c	the inetd.conf parser, pure (config.h)
 *	config_apply.c	a parsed file's services into the daemon's
 *	modload.c	modules from shared objects (--module, #@ module=)
 *	spawn.c		programs: started per connection or per wait
 *			socket, their limits, their children reaped
 *	spawner.c	processes started by a thread, off the loop
 *	mux.c		tcpmux/NAME services: the hand-over to them
 *	listeners.c	binding the sockets, the listener lines on stdout;
 *			the other loops' copies of them (loopsocks)
 *	reload.c	SIGHUP: the file again, sockets kept where they can
 *	stats.c		the counters of every loop, summed: SIGUSR1's line
 *	main.c		the loop group, signals, exit status
 *
 * One error convention: functions return 0 or -errno; a usage error has
 * been logged (with the option it is about) and is -EINVAL; a run-time
 * error has been logged where it happened. Only main() turns them into
 * exit statuses: 2 for usage errors, 1 for run-time errors.
 */
#ifndef EVRINGD_H
#define EVRINGD_H

#include "evring.h"
#include "evring/modules.h"

#include <getopt.h>
#include <sys/types.h>

#define EVRINGD_EXIT_RUNTIME 1
#define EVRINGD_EXIT_USAGE   2
#define MAX_SERVICES	     64
#define MAX_BINDS	     16

enum { P_TCP, P_UDP };
extern const char *const evd_proto_names[2];

struct evd_gen;
struct evd_prog;
struct evd_wait;

struct service {
	const struct evr_proto *proto;
	char name[64];
	bool want[2]; /* serve over TCP, UDP */
	long port[2]; /* -1: from /etc/services */
	void *conf;
	struct evr_udp_guard guard;
	bool guard_set;
	struct evr_conn_limits lim;
	unsigned lim_set; /* bits of evd_limit_keys[] given with -o */
	/* deploy.c: -o NAME.log_conns: 0 the default, 1 on, 2 off */
	uint8_t log_conns;
	/* -o NAME.proxy=v1|v2 (enum evr_proxy), NAME.proxy_timeout */
	uint8_t proxy;
	uint32_t proxy_timeout_ms;
	/* -o NAME.defer_accept=T: TCP_DEFER_ACCEPT in seconds, 0 off */
	uint32_t defer_accept_s;
	/* From a configuration file; zero for -s services. */
	char host[256];	     /* "": every address (or the -b ones) */
	int family;	     /* 0: IPv4 and IPv6; else AF_INET or AF_INET6 */
	char where[80];	     /* "inetd.conf:12", for messages */
	struct evd_gen *gen; /* the configuration it belongs to */
	/* A program (spawn.c), NULL for a module; proto is then
	 * evd_spawn_proto and the listener's conf the service itself. */
	struct evd_prog *prog;
	/* tcpmux/NAME: reached through the tcpmux services, no socket of
	 * its own; a module is switched to through mux_cn (mux.c) */
	bool mux, mux_plus;
	struct evr_connector *mux_cn;
};

/*
 * One configuration: the services of the command line and the file, as
 * one parse made them. Everything that serves a service (a socket, a
 * connection under its configuration, a running program) holds a
 * reference, so that a reload can free the old configuration when the
 * last of them is gone. refs includes one while it is the current one.
 */
struct evd_gen {
	unsigned refs; /* atomic: a connection of any loop may drop one */
	struct service svc[MAX_SERVICES];
};

struct evd_gen *evd_gen_new(void);
void evd_gen_get(struct evd_gen *g);
/* A release callback of evr_listen_cfg: arg is the generation. */
void evd_gen_put(void *arg);
/* No longer the current one: connectors go, the current reference
 * with them. */
void evd_gen_retire(struct evd_gen *g);

/* One of our sockets: bound for a service, or kept by a reload. */
enum { SK_LISTENER, SK_UDP, SK_WAIT };

struct evd_sock {
	int pr, kind;
	/* as configured: what a reload matches (the port as written; 0
	 * for a free port, then also the service's name) */
	struct sockaddr_storage key;
	socklen_t keylen;
	bool v6only;
	char name[64];
	struct sockaddr_storage addr; /* as bound */
	struct service *s;
	struct evr_listener *ls;
	struct evr_udp *u;
	struct evd_wait *w;
	/* reload: the running socket this one keeps; it was claimed */
	struct evd_sock *from;
	bool claimed;
	bool activated; /* passed by systemd (activation.c) */
};

/* Limits any service takes with -o NAME.KEY=VALUE, and as defaults for all
 * services from the command line. */
enum limit_kind { LIM_COUNT, LIM_BYTES, LIM_MS };

struct limit_key {
	const char *key;
	size_t off; /* of a uint32_t in struct evr_conn_limits */
	enum limit_kind kind;
};

extern const struct limit_key evd_limit_keys[];
extern const size_t evd_nlimit_keys;

#define DEFAULT_IDLE_MS	 (300 * 1000)
#define DEFAULT_SEND_MS	 (60 * 1000)
#define DEFAULT_DRAIN_MS (10 * 1000)

struct daemon {
	struct service *svc; /* gen->svc */
	struct evd_gen *gen;
	int nsvc;
	const char *bind[MAX_BINDS];
	int nbind;
	long port_offset;
	long backlog;
	struct evr_conn_limits lim; /* defaults of every service */
	uint32_t drain_ms;
	int stop_signals;
	struct evr_loop_opts lo;
	struct evr_loop *loop;	 /* loop 0: signals, programs, reloads */
	struct evr_group *loops; /* every loop */
	unsigned threads;	 /* --threads; 0: the CPUs we may run on */
	int *cpus;		 /* --cpus */
	unsigned ncpus;
	bool steer_cpu;
	/* the sockets of loops 1 .. threads-1 (listeners.c), each array
	 * touched by its own loop only */
	struct evd_loopsocks *others;
	unsigned nothers;
	struct evd_plan *plan; /* at start, for the others' setup */
	int nls;
	struct evr_udp_guard guard; /* defaults of every UDP service */
	uint16_t own_ports[MAX_SERVICES * 2];
	uint32_t nown;
	/* the listener lines, printed once every socket is open */
	char (*lines)[160];
	int nlines;
	const char *conf_path; /* -f FILE */
	bool check_only;       /* -t: check, print a summary, exit */
	/* deploy.c */
	int log_format;		  /* enum evd_log_format */
	int syslog_facility;	  /* -1: no syslog */
	bool log_conns;		  /* --log-conns */
	const char *user, *group; /* --user, --group */
	uid_t run_uid;		  /* resolved by privs.c */
	gid_t run_gid;
	char run_user[64];
	/* the sockets (listeners.c, reload.c) */
	struct evd_sock *socks;
	int nsocks, socks_cap;
	/* reload.c: the command line, parsed again with the file */
	int argc;
	char **argv;
	/* while a reload binds: the running daemon, whose sockets are kept
	 * where they match; how many were */
	struct daemon *running;
	int kept;
};

/* Defaults of a daemon before its command line is read. */
void evd_defaults(struct daemon *d);

/* options.c: 0, 1 when done (--help, --version printed), or -errno. */
int evd_parse_args(struct daemon *d, int argc, char **argv);
/* The limits of service s: the daemon's, with the service's own over them. */
void evd_service_limits(const struct daemon *d, const struct service *s,
			struct evr_conn_limits *lim);
/* A usage error: logs "msg (see evringd --help)", returns -EINVAL. */
int evd_usage_error(const char *fmt, ...) EVR_PRINTF(1, 2);
/* A duration: "30" (seconds), "500ms", "30s", "5m", "1h". 0 or -EINVAL,
 * -ERANGE. */
int evd_parse_ms(const char *s, uint32_t *out);
/* Set one option of s (a limit, a udp_ key or the module's own): 0, or
 * -EINVAL / -ENOENT with the reason in why, -EPROTOTYPE for a key of TCP
 * listeners on a service without one; logs nothing. */
int evd_service_option(struct daemon *d, struct service *s, const char *key,
		       const char *value, char *why, size_t whylen);
/* Set up s for proto: its configuration, allocated and initialised. 0 or
 * -ENOMEM / -EINVAL (logged). */
int evd_service_init(struct service *s, const struct evr_proto *proto,
		     const char *name);
/* Whether proto can serve pr (P_TCP, P_UDP). */
bool evd_proto_can(const struct evr_proto *proto, int pr);

/* config_apply.c: read d->conf_path and add its services. 0, or -EINVAL
 * after logging every error of the file (file:line: field N ...), or
 * -ENOMEM. */
int evd_config_apply(struct daemon *d);

/* listeners.c: bind every service on every address, then print one line
 * per socket. 0 or -errno (logged). With d->running set (a reload), a
 * socket of the running daemon that matches is claimed instead of bound
 * (evd_sock.from); nothing is printed and nothing of the running daemon
 * changes: reload.c commits or rolls back. */
int evd_start_listeners(struct daemon *d);
/* The configuration of s's sockets, each holding a reference on its
 * generation. */
void evd_listen_cfg(const struct daemon *d, struct service *s, bool v6only,
		    struct evr_listen_cfg *cfg);
void evd_udp_cfg(const struct daemon *d, struct service *s, bool v6only,
		 struct evr_udp_cfg *cfg);
/* Close a socket: a listener drains, a wait socket lets its program
 * finish. */
void evd_sock_close(struct evd_sock *k);
/* Print the listener lines of d's sockets. */
void evd_print_listeners(struct daemon *d);

/*
 * The other loops of a group serve the sockets of loop 0 that every loop
 * may serve (a module without EVR_PROTO_ONE_LOOP; not a program, whose
 * processes loop 0 starts and reaps): each its own socket on the address
 * loop 0 bound, with SO_REUSEPORT, or a duplicate of a socket from the
 * service manager. Loop 0 writes what they must serve into a plan
 * (evd_plan_new, from d's sockets and configuration, on loop 0's thread);
 * each other loop makes its own sockets match it: at start in the group's
 * setup (evd_plan_apply), after a reload through its mailbox
 * (evd_plan_post): sockets kept serve the new configuration, new ones
 * are bound, the others drain.
 */
struct evd_plan;
struct evd_loopsocks;
struct evd_plan *evd_plan_new(struct daemon *d);
void evd_plan_put(struct evd_plan *p);
/* On loop l (index > 0) at start: 0 or -errno (logged). */
int evd_plan_apply(struct daemon *d, struct evr_loop *l, struct evd_plan *p);
/* Every other loop of d's group, through its mailbox. */
void evd_plan_post(struct daemon *d, struct evd_plan *p);
int evd_loopsocks_init(struct daemon *d, unsigned n);
void evd_loopsocks_free(struct daemon *d);
/* Whether every loop of d serves s, or loop 0 alone. */
bool evd_every_loop(const struct daemon *d, const struct service *s);

/* stats.c: log the counters of every loop, summed, as SIGUSR1 asks (from
 * loop 0's thread). */
void evd_log_stats(struct daemon *d, struct evr_loop *l);

/* modload.c: load the module at path and register it (a module loaded
 * already is fine). 0, or -errno with the reason in why. */
int evd_module_load(const char *path, char *why, size_t whylen);

/* spawn.c */
extern const struct evr_proto evd_spawn_proto;
struct evd_conf;
struct evd_conf_entry;
/* A program service from e (the server is a path): checks the program,
 * resolves the user, whom evringd must be able to become once it serves
 * (as root, or as --user; the file's errors go to cf). 0 or -ENOMEM. */
int evd_prog_setup(const struct daemon *d, struct evd_conf *cf,
		   const struct evd_conf_entry *e, struct service *s);
void evd_prog_free(struct evd_prog *p);
/* instances, per_source, cps, retry: 0, -EINVAL, -ENOENT (why). */
int evd_prog_option(struct evd_prog *p, const char *key, const char *value,
		    char *why, size_t whylen);
bool evd_prog_wait(const struct evd_prog *p);
/* A wait service's socket, bound, and watched. */
int evd_wait_bind(struct daemon *d, struct service *s, int pr,
		  const struct sockaddr *sa, socklen_t len, bool v6only,
		  struct evd_wait **out);
int evd_wait_fd(const struct evd_wait *w);
/* Serve w with s from now on (a reload); close it (its program goes on,
 * the socket closes with the program's copy). */
void evd_wait_set(struct evd_wait *w, struct service *s);
void evd_wait_close(struct evd_wait *w);
/* tcpmux: hand c to the program of arg (a service). */
int evd_prog_take(struct evr_conn *c, struct evr_buf *b, size_t off, void *arg);

/* spawner.c: a process to start, off the loop. */
#define EVD_ENV_MAX 12

struct evd_start {
	struct evd_start *next;
	/* what to run, and as whom (looked up already) */
	const char *path;
	char *const *argv;
	bool switch_user;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	int ngroups;
	int fd; /* becomes 0, 1 and 2 */
	char *envp[EVD_ENV_MAX + 1];
	char envbuf[1024];
	size_t envlen;
	/* how it went: pid, or err (-errno: it could not be executed) */
	pid_t pid;
	int err;
	uint32_t took_us; /* the start, on the spawner's thread */
	/* runs on the loop once it is known; err -ESHUTDOWN at exit */
	void (*done)(struct evd_start *r);
};

/* Add NAME=VALUE to r's environment (at most EVD_ENV_MAX). */
void evd_env_add(struct evd_start *r, const char *fmt, ...) EVR_PRINTF(2, 3);
/* Have r started; r->done(r) follows on l. 0, or -errno (nothing will
 * happen). */
int evd_spawner_submit(struct evr_loop *l, struct evd_start *r);
/* At exit, after the loop is freed. */
void evd_spawner_fini(void);

/* mux.c: the tcpmux/NAME services of d into its tcpmux services' tables
 * (file errors to cf); their connectors, once the loop exists. */
int evd_mux_apply(struct daemon *d, struct evd_conf *cf);
int evd_mux_start(struct daemon *d);

/* reload.c: SIGHUP */
void evd_reload(struct daemon *d);

/* Log at most once per interval; *more: events not logged since. */
struct evd_ratelimit {
	uint64_t next;
	uint64_t suppressed;
};
bool evd_ratelimit(struct evd_ratelimit *r, uint64_t now, uint32_t ms,
		   uint64_t *more);

/* deploy.c: options with getopt values from EVD_OPT_DEPLOY up, handled
 * by evd_deploy_option(); their help; the keys every service takes, with
 * -o and in the configuration file (evd_deploy_service_option, called by
 * evd_service_option: 0, -ENOENT when key is not one, -EINVAL with the
 * reason in why; logs nothing). main() calls
 * evd_deploy_prepare() once the command line is read, before the loop is
 * made, and evd_deploy_ready() once every listener is open, before the
 * loop runs; both return 0 or -errno (logged; -EINVAL: usage). */
#define EVD_OPT_DEPLOY 1024
extern const struct option evd_deploy_opts[];
extern const char evd_deploy_usage[];
void evd_deploy_init(struct daemon *d);
int evd_deploy_option(struct daemon *d, int opt, const char *arg);
int evd_deploy_service_option(struct daemon *d, struct service *s,
			      const char *key, const char *value, char *why,
			      size_t whylen);
int evd_deploy_prepare(struct daemon *d);
int evd_deploy_ready(struct daemon *d);
/* The drain (drain true) or the immediate stop begins. */
void evd_deploy_stopping(struct daemon *d, bool drain);
/* A reload begins; it is done (listeners open again). */
void evd_deploy_reloading(struct daemon *d);
void evd_deploy_reloaded(struct daemon *d);

/* activation.c: take the sockets of $LISTEN_FDS (when $LISTEN_PID is
 * ours), check each against the services (-EINVAL, logged, on a
 * mismatch); then the ones for s over pr, into fds (at most max). */
int evd_activation_init(struct daemon *d);
int evd_activated(const struct service *s, int pr, int *fds, int max);

/* notify.c: read and unset $NOTIFY_SOCKET and $WATCHDOG_USEC (at start);
 * READY=1 with STATUS and the watchdog timer (every listener open);
 * RELOADING=1 with MONOTONIC_USEC; STOPPING=1. No-ops without
 * $NOTIFY_SOCKET. */
int evd_notify_init(void);
bool evd_notify_enabled(void);
void evd_notify_ready(struct daemon *d);
void evd_notify_reloading(struct daemon *d);
void evd_notify_stopping(struct daemon *d, bool drain);

/* privs.c: look --user and --group up (at start); switch to them, or
 * drop capabilities, once bound. */
int evd_privs_resolve(struct daemon *d);
int evd_privs_drop(struct daemon *d);

/* logging.c */
enum evd_log_format {
	EVD_LOG_AUTO,
	EVD_LOG_JOURNAL,
	EVD_LOG_RFC3339,
	EVD_LOG_PLAIN,
};
int evd_log_parse_format(const char *s, enum evd_log_format *out);
int evd_log_parse_facility(const char *s, int *out);
/* Take the library's lines and write them as configured. */
void evd_log_start(const struct daemon *d);
void evd_log_stop(void);

#endif /* EVRINGD_H */
