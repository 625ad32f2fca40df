/* SPDX-License-Identifier: MIT */
/*
 * evd_conf.c - evringd on a configuration file, for tests; see
 * evd_conf.h.
 */
#include "evd_conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char paths[32][64];
static int npaths;

static void remove_paths(void)
{
	while (npaths)
		unlink(paths[--npaths]);
}

const char *conf_write(const char *text)
{
	char *path;
	int fd;

	cr_assert_lt(npaths, 32);
	path = paths[npaths];
	snprintf(path, 64, "/tmp/evring-conf-XXXXXX");
	fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	/* readable by a server that runs as another user */
	chmod(path, 0644);
	if (npaths++ == 0)
		atexit(remove_paths);
	return path;
}

void conf_rewrite(const char *path, const char *text)
{
	char tmp[80];
	int fd;

	/* a rename: the server never reads half a file */
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	cr_assert_eq(rename(tmp, path), 0);
}

void conf_start(struct srv *s, const char *backend, const char *path, int nls,
		const char *const *extra)
{
	const char *argv[32] = { "-f", path };
	int n = 2;

	for (; extra && *extra && n < 31; extra++)
		argv[n++] = *extra;
	argv[n] = NULL;
	cr_assert_eq(srv_start(s, backend, nls, argv), 0, "evringd on %s",
		     path);
}

int evringd_run(const char *const *args, char *out, size_t cap)
{
	const char *argv[32] = { evringd_path() };
	int n = 1;

	for (; *args && n < 31; args++)
		argv[n++] = *args;
	argv[n] = NULL;
	return run_capture(argv, out, cap, 20000);
}

const char *tool(const char *name)
{
	static char path[8][512];
	static int next;
	char *p = path[next++ % 8];

	snprintf(p, 512, "%s", tool_path(name));
	return p;
}

int children_of(pid_t pid, int *zombies)
{
	DIR *d = opendir("/proc");
	struct dirent *de;
	int n = 0;

	*zombies = 0;
	while (d && (de = readdir(d))) {
		char path[300], buf[512], *rp, state;
		int ppid, fd;
		ssize_t r;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		r = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (r <= 0)
			continue;
		buf[r] = '\0';
		/* "pid (comm) S ppid ...": comm may hold anything */
		rp = strrchr(buf, ')');
		if (!rp || sscanf(rp + 1, " %c %d", &state, &ppid) != 2)
			continue;
		if (ppid != pid)
			continue;
		n++;
		if (state == 'Z')
			(*zombies)++;
	}
	if (d)
		closedir(d);
	return n;
}

int wait_no_children(pid_t pid, int ms)
{
	int64_t deadline = now_ms() + ms;
	int z;

	while (children_of(pid, &z)) {
		if (now_ms() > deadline)
			return -1;
		usleep(5000);
	}
	return 0;
}

ssize_t tcp_ask(int family, uint16_t port, const char *out, char *buf,
		size_t cap)
{
	int fd = tcp_connect(family, port);
	ssize_t n;

	if (fd < 0)
		return -1;
	if (out && write_all(fd, out, strlen(out)) < 0) {
		close(fd);
		return -1;
	}
	shutdown(fd, SHUT_WR);
	n = read_to_eof(fd, buf, cap - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return n;
}

bool log_wait(struct srv *s, const char *needle, int ms)
{
	int64_t deadline = now_ms() + ms;

	do {
		if (srv_log_has(s, needle))
			return true;
		usleep(5000);
	} while (now_ms() < deadline);
	return false;
}

int log_count(struct srv *s, const char *needle, int n, int ms)
{
	int64_t deadline = now_ms() + ms;

	while (count_substr(srv_log(s), needle) < n && now_ms() < deadline)
		usleep(5000);
	usleep(50 * 1000);
	return count_substr(srv_log(s), needle);
}

int srv_read_until(struct srv *s, const char *prefix, char *buf, size_t cap,
		   int ms)
{
	int64_t deadline = now_ms() + ms;
	size_t len = 0;

	buf[0] = '\0';
	for (;;) {
		struct pollfd p = { .fd = s->out_fd, .events = POLLIN };
		int64_t left = deadline - now_ms();
		char c;

		if (left <= 0 || poll(&p, 1, (int)left) <= 0)
			return -1;
		/* a byte at a time: what follows stays for the next call */
		if (read(s->out_fd, &c, 1) != 1)
			return -1;
		if (len + 1 < cap)
			buf[len++] = c;
		buf[len] = '\0';
		if (c != '\n')
			continue;
		char *line = memrchr(buf, '\n', len - 1);

		line = line ? line + 1 : buf;
		if (!strncmp(line, prefix, strlen(prefix)))
			return 0;
	}
}

/* The inode of the first listening socket on port in file; *n counts
 * them all (NULL: stop at the first). */
static unsigned long inode_in(const char *file, uint16_t port, int *n)
{
	FILE *f = fopen(file, "r");
	char line[512];
	unsigned long inode = 0;

	while (f && fgets(line, sizeof(line), f)) {
		char local[64];
		unsigned st, lport;
		unsigned long ino;
		char *colon;

		if (sscanf(line, " %*d: %63s %*s %x %*s %*s %*s %*d %*d %lu",
			   local, &st, &ino) != 3)
			continue;
		colon = strrchr(local, ':');
		if (!colon || sscanf(colon + 1, "%x", &lport) != 1)
			continue;
		if (lport == port && st == 0x0A) { /* TCP_LISTEN */
			if (!inode)
				inode = ino;
			if (!n)
				break;
			(*n)++;
		}
	}
	if (f)
		fclose(f);
	return inode;
}

unsigned long listen_inode(uint16_t port)
{
	unsigned long i = inode_in("/proc/net/tcp", port, NULL);

	return i ? i : inode_in("/proc/net/tcp6", port, NULL);
}

int listen_count(uint16_t port)
{
	int n = 0;

	inode_in("/proc/net/tcp", port, &n);
	inode_in("/proc/net/tcp6", port, &n);
	return n;
}

int bind_free(uint16_t *port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	getsockname(fd, (struct sockaddr *)&a, &len);
	*port = ntohs(a.sin_port);
	return fd;
}
