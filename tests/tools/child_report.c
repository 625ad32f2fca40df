/* SPDX-License-Identifier: MIT */
/*
 * child_report.c - a program for evringd to start, for the tests of
 * spawn.c. Its first argument says what to do:
 *
 *	report		write, on stdout (the connection), what it was given:
 *			"fd N" per open descriptor, "env NAME=VALUE" per
 *			variable, "sigblk HEX", "sigign HEX" (from
 *			/proc/self/status), "uid N", "gid N", "groups N...",
 *			"sid N pid N", then "end"
 *	dgram-echo	a wait dgram server: answer each datagram on fd 0
 *			with the same bytes, exit after 1 s without one
 *	accept-echo	a wait stream server: accept on fd 0, echo one
 *			connection to its end, accept the next, exit after
 *			1 s without one
 *	hold SECONDS	read stdin to its end, then wait SECONDS and exit
 *	exit N		exit with status N at once
 *	kill SIG	raise signal SIG
 *	clean PROG ARGS	close every descriptor from 3 on, then run PROG
 *			(a server under test inherits nothing of the test)
 *	nopidfd PROG ARGS
 *			run PROG where pidfd_open(2) fails with ENOSYS (a
 *			seccomp filter), as on kernels before 5.3
 */
#include <dirent.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

extern char **environ;

static void status_line(const char *key, const char *name)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];

	while (f && fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, strlen(key))) {
			printf("%s %s", name, line + strlen(key));
			break;
		}
	}
	if (f)
		fclose(f);
}

static int report(void)
{
	gid_t groups[64];
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n, dfd = d ? dirfd(d) : -1;

	while (d && (de = readdir(d)))
		if (de->d_name[0] != '.' && atoi(de->d_name) != dfd)
			printf("fd %s\n", de->d_name);
	if (d)
		closedir(d);
	for (char **e = environ; *e; e++)
		printf("env %s\n", *e);
	status_line("SigBlk:\t", "sigblk");
	status_line("SigIgn:\t", "sigign");
	printf("uid %d\ngid %d\ngroups", (int)getuid(), (int)getgid());
	n = getgroups(64, groups);
	for (int i = 0; i < n; i++)
		printf(" %d", (int)groups[i]);
	printf("\nsid %d pid %d\nend\n", (int)getsid(0), (int)getpid());
	fflush(stdout);
	return 0;
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static int dgram_echo(void)
{
	char buf[65536];
	struct sockaddr_storage from;

	while (readable(0, 1000)) {
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(0, buf, sizeof(buf), 0,
				     (struct sockaddr *)&from, &len);

		if (n < 0)
			return 1;
		sendto(0, buf, (size_t)n, 0, (struct sockaddr *)&from, len);
	}
	return 0;
}

static int accept_echo(void)
{
	char buf[4096];

	while (readable(0, 1000)) {
		int c = accept(0, NULL, NULL);
		ssize_t n;

		if (c < 0)
			return 1;
		while ((n = read(c, buf, sizeof(buf))) > 0)
			write(c, buf, (size_t)n);
		close(c);
	}
	return 0;
}

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif

static int no_pidfd(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_pidfd_open, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "report";
	char buf[4096];

	if (!strcmp(what, "report"))
		return report();
	if (!strcmp(what, "dgram-echo"))
		return dgram_echo();
	if (!strcmp(what, "accept-echo"))
		return accept_echo();
	if (!strcmp(what, "hold") && argc > 2) {
		while (read(0, buf, sizeof(buf)) > 0)
			;
		sleep((unsigned)atoi(argv[2]));
		return 0;
	}
	if (!strcmp(what, "nopidfd") && argc > 2) {
		if (no_pidfd() < 0)
			return 126;
		execv(argv[2], argv + 2);
		return 127;
	}
	if (!strcmp(what, "clean") && argc > 2) {
		syscall(SYS_close_range, 3, ~0U, 0);
		execv(argv[2], argv + 2);
		return 127;
	}
	if (!strcmp(what, "exit") && argc > 2)
		return atoi(argv[2]);
	if (!strcmp(what, "kill") && argc > 2)
		raise(atoi(argv[2]));
	return 2;
}
