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
 *	listeners.c	binding the sockets of every loop, the listener
 *			lines on stdout
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
	/* From a configuration file; zero for -s services. */
	char host[256]; /* "": every address (or the -b ones) */
	int family;	/* 0: IPv4 and IPv6; else AF_INET or AF_INET6 */
	char where[80]; /* "inetd.conf:12", for messages */
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

/* A socket loop 0 bound; every other loop binds the same address, its
 * port resolved, with SO_REUSEPORT; or, for a socket of the service
 * manager's, serves a duplicate of fd. */
struct bound {
	struct service *s;
	int pr;
	struct sockaddr_storage ss;
	socklen_t len;
	bool v6only;
	int fd; /* -1: bind ss */
};

#define DEFAULT_IDLE_MS	 (300 * 1000)
#define DEFAULT_SEND_MS	 (60 * 1000)
#define DEFAULT_DRAIN_MS (10 * 1000)

struct daemon {
	struct service svc[MAX_SERVICES];
	int nsvc;
	const char *bind[MAX_BINDS];
	int nbind;
	long port_offset;
	long backlog;
	struct evr_conn_limits lim; /* defaults of every service */
	uint32_t drain_ms;
	int stop_signals;
	struct evr_loop_opts lo;
	struct evr_loop *loop;	 /* loop 0: signals */
	struct evr_group *loops; /* the loop group */
	unsigned threads;	 /* --threads; 0: the CPUs we may run on */
	int *cpus;		 /* --cpus */
	unsigned ncpus;
	bool steer_cpu;
	struct bound *bound; /* loop 0's sockets, for the others */
	int nbound;
	int nls;
	struct evr_udp_guard guard; /* defaults of every UDP service */
	uint16_t own_ports[MAX_SERVICES * 2];
	uint32_t nown;
	struct evr_udp *udps[MAX_SERVICES * MAX_BINDS];
	int nudp;
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
};

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
 * -EINVAL / -ENOENT with the reason in why; logs nothing. */
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

/* listeners.c: on loop 0, bind every service on every address; on each
 * other loop, the same sockets (but those of EVR_PROTO_ONE_LOOP modules).
 * 0 or -errno (logged). Then print one line per socket of loop 0. */
int evd_start_listeners(struct daemon *d, struct evr_loop *l);
int evd_listen_more(struct daemon *d, struct evr_loop *l);
void evd_print_listeners(const struct daemon *d);

/* stats.c: log the counters of every loop, summed, as SIGUSR1 asks (from
 * loop 0's thread). */
void evd_log_stats(struct daemon *d, struct evr_loop *l);

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
