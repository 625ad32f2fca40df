/* SPDX-License-Identifier: MIT */
/*
 * activation.c - sockets passed by systemd (socket activation,
 * sd_listen_fds(3)), without libsystemd.
 *
 * When $LISTEN_PID is our pid, descriptors 3 .. 3+$LISTEN_FDS-1 are
 * sockets the service manager bound for us, and $LISTEN_FDNAMES names
 * them ("echo:echo:daytime"; each socket unit's FileDescriptorName=). The
 * order of descriptors across socket units is not defined, so they are
 * matched to services by name, never by position; each one's protocol
 * comes from the socket itself (SO_TYPE) and must be one the service is
 * served over. A service that has passed sockets for a protocol is served
 * on exactly those; evringd binds the others itself (listeners.c).
 *
 * A socket whose name is no service served, over a protocol the service
 * is not served over, or that is a connection (Accept=yes) rather than a
 * listening socket, is refused at start, before anything is bound: a
 * usage error naming the socket, its name and what is served. The
 * variables are removed from the environment and the descriptors made
 * close-on-exec, so that programs evringd starts inherit neither.
 */
#include "evringd.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define LISTEN_FDS_START 3
#define MAX_ACTIVATED	 (MAX_SERVICES * 4)

struct activated {
	int fd;
	int pr;	    /* P_TCP, P_UDP */
	bool taken; /* by a service (a name may have several entries) */
	char name[64];
	char addr[EVR_ADDRSTRLEN];
};

static struct activated act[MAX_ACTIVATED];
static int nact;

/* A service called name served over pr; else, in *named, whether any
 * service has that name (a configuration file has one entry per
 * protocol). */
static const struct service *service_for(const struct daemon *d,
					 const char *name, int pr, bool *named)
{
	*named = false;
	for (int i = 0; i < d->nsvc; i++) {
		if (strcmp(d->svc[i].name, name))
			continue;
		*named = true;
		if (d->svc[i].want[pr])
			return &d->svc[i];
	}
	return NULL;
}

static void served_list(const struct daemon *d, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int i = 0; i < d->nsvc && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s",
					i ? ", " : "", d->svc[i].name);
}

/* The name of descriptor i from "a:b:c", or "unknown" (as
 * sd_listen_fds_with_names(3) says when there is none). */
static void name_of(const char *names, int i, char *out, size_t len)
{
	const char *p = names;

	snprintf(out, len, "unknown");
	for (int k = 0; p && k < i; k++) {
		p = strchr(p, ':');
		if (p)
			p++;
	}
	if (p && *p && *p != ':')
		snprintf(out, len, "%.*s", (int)strcspn(p, ":"), p);
}

/* What kind of socket fd is: 0 and *pr, or a reason in why. */
static int inspect(int fd, struct activated *a, char *why, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss), il = sizeof(int);
	int type = 0, accepting = 0;

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &il) < 0) {
		snprintf(why, len, "not a socket (%s)", strerror(errno));
		return -EINVAL;
	}
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0 ||
	    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)) {
		snprintf(why, len, "not an IPv4 or IPv6 socket");
		return -EINVAL;
	}
	evr_addr_str((struct sockaddr *)&ss, a->addr, sizeof(a->addr));
	if (type == SOCK_DGRAM) {
		a->pr = P_UDP;
		return 0;
	}
	if (type != SOCK_STREAM) {
		snprintf(why, len, "neither a stream nor a datagram socket");
		return -EINVAL;
	}
	a->pr = P_TCP;
	il = sizeof(int);
	sl = sizeof(ss);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &il) == 0 &&
	    !accepting && getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		snprintf(why, len,
			 "a connection, not a listening socket (Accept=yes? "
			 "evringd wants Accept=no)");
		return -EINVAL;
	}
	return 0;
}

static int check_one(const struct daemon *d, struct activated *a)
{
	bool named;
	const struct service *s = service_for(d, a->name, a->pr, &named);
	char served[512];

	served_list(d, served, sizeof(served));
	if (!named)
		return evd_usage_error(
		    "socket activation: socket %d (%s %s) is named \"%s\", "
		    "which is no service evringd serves (%s); name each "
		    "socket after its service: FileDescriptorName= in its "
		    "socket unit, --fdname= of systemd-socket-activate",
		    a->fd, evd_proto_names[a->pr], a->addr, a->name, served);
	if (!s)
		return evd_usage_error("socket activation: socket %d (%s %s) "
				       "is named \"%s\", but %s is not served "
				       "over %s",
				       a->fd, evd_proto_names[a->pr], a->addr,
				       a->name, a->name,
				       evd_proto_names[a->pr]);
	return 0;
}

int evd_activation_init(struct daemon *d)
{
	const char *pid = getenv("LISTEN_PID");
	const char *fds = getenv("LISTEN_FDS");
	const char *names = getenv("LISTEN_FDNAMES");
	char why[160];
	long n;
	int err = 0;

	nact = 0;
	if (!pid || !fds || atol(pid) != (long)getpid())
		goto out;
	n = atol(fds);
	if (n <= 0)
		goto out;
	if (n > MAX_ACTIVATED) {
		err = evd_usage_error("socket activation: %ld sockets passed, "
				      "at most %d",
				      n, MAX_ACTIVATED);
		goto out;
	}
	for (int i = 0; i < n && !err; i++) {
		struct activated *a = &act[nact++];

		a->fd = LISTEN_FDS_START + i;
		fcntl(a->fd, F_SETFD, FD_CLOEXEC);
		name_of(names, i, a->name, sizeof(a->name));
		if (inspect(a->fd, a, why, sizeof(why)) < 0)
			err = evd_usage_error("socket activation: socket %d "
					      "(\"%s\"): %s",
					      a->fd, a->name, why);
		else
			err = check_one(d, a);
	}
out:
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return err;
}

int evd_activated(const struct service *s, int pr, int *fds, int max)
{
	int n = 0;

	for (int i = 0; i < nact && n < max; i++)
		if (!act[i].taken && act[i].pr == pr &&
		    !strcmp(act[i].name, s->name)) {
			act[i].taken = true;
			fds[n++] = act[i].fd;
		}
	return n;
}
