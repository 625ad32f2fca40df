/* SPDX-License-Identifier: MIT */
/*
 * seccomp_launch.c - run a program with the io_uring system calls denied,
 * the way Docker's default seccomp profile does.
 *
 *	seccomp-launch EPERM|ENOSYS|KILL PROGRAM [ARGS...]
 *
 * Installs a raw BPF filter (no libseccomp) that makes io_uring_setup,
 * io_uring_enter and io_uring_register fail with the given errno, or kill
 * the process on the first one (KILL: proves a program never calls them),
 * then execs PROGRAM.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup    425
#define __NR_io_uring_enter    426
#define __NR_io_uring_register 427
#endif

#if defined(__x86_64__)
#define ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH AUDIT_ARCH_AARCH64
#else
#error "add this architecture's AUDIT_ARCH"
#endif

int main(int argc, char **argv)
{
	unsigned int action;

	if (argc < 3) {
		fprintf(stderr,
			"usage: seccomp-launch EPERM|ENOSYS|KILL PROGRAM "
			"[ARGS...]\n");
		return 2;
	}
	if (!strcmp(argv[1], "EPERM"))
		action = SECCOMP_RET_ERRNO | EPERM;
	else if (!strcmp(argv[1], "ENOSYS"))
		action = SECCOMP_RET_ERRNO | ENOSYS;
	else if (!strcmp(argv[1], "KILL"))
		action = SECCOMP_RET_KILL_PROCESS;
	else {
		fprintf(stderr, "seccomp-launch: unknown action %s\n", argv[1]);
		return 2;
	}

	struct sock_filter filter[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1,
			 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, action),
	};
	struct sock_fprog prog = {
		.len = sizeof(filter) / sizeof(filter[0]),
		.filter = filter,
	};

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0) {
		perror("seccomp-launch: prctl");
		return 1;
	}
	execv(argv[2], argv + 2);
	perror("seccomp-launch: exec");
	return 127;
}
