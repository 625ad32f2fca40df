/* SPDX-License-Identifier: MIT */
/*
 * privs.c - dropping privileges once the sockets are bound.
 *
 * Binding a port below 1024 is the only thing evringd needs root (or
 * CAP_NET_BIND_SERVICE) for, and it is done before the loop serves
 * anyone. So:
 *
 *   --user USER [--group GROUP]   started as root: after binding, take
 *       USER's groups (initgroups(3)), then its group (or GROUP), then its
 *       uid. Changing uid from 0 without SECBIT_KEEP_CAPS clears every
 *       capability (capabilities(7)), so nothing is kept: nothing is
 *       needed after binding. That setuid(0) then fails is checked.
 *   no --user, not root, with capabilities (systemd's AmbientCapabilities=
 *       CAP_NET_BIND_SERVICE with DynamicUser= or User=): they are
 *       dropped after binding, ambient ones included.
 *   no --user, as root: evringd stays root, and says so.
 *
 * The user and group are looked up at start, before anything is bound: a
 * name that does not exist is a usage error (exit 2), a change of user
 * without root a run-time error (exit 1).
 */
#include "evringd.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A name, or a number when no name matches. */
static int lookup_user(const char *name, struct passwd *out, char *buf,
		       size_t len)
{
	struct passwd *pw = NULL;
	char *end;
	unsigned long v;

	if (getpwnam_r(name, out, buf, len, &pw) == 0 && pw)
		return 0;
	errno = 0;
	v = strtoul(name, &end, 10);
	if (!errno && *name && !*end && v < (uid_t)-1 &&
	    getpwuid_r((uid_t)v, out, buf, len, &pw) == 0 && pw)
		return 0;
	return -ENOENT;
}

static int lookup_group(const char *name, gid_t *out)
{
	struct group gr, *g = NULL;
	char buf[4096], *end;
	unsigned long v;

	if (getgrnam_r(name, &gr, buf, sizeof(buf), &g) == 0 && g) {
		*out = g->gr_gid;
		return 0;
	}
	errno = 0;
	v = strtoul(name, &end, 10);
	if (!errno && *name && !*end && v < (gid_t)-1) {
		*out = (gid_t)v; /* a number needs no entry */
		return 0;
	}
	return -ENOENT;
}

int evd_privs_resolve(struct daemon *d)
{
	struct passwd pw;
	char buf[4096];

	if (d->group && !d->user)
		return evd_usage_error("--group %s: only with --user",
				       d->group);
	if (!d->user)
		return 0;
	if (lookup_user(d->user, &pw, buf, sizeof(buf)) < 0)
		return evd_usage_error("--user %s: no such user", d->user);
	d->run_uid = pw.pw_uid;
	d->run_gid = pw.pw_gid;
	snprintf(d->run_user, sizeof(d->run_user), "%s", pw.pw_name);
	if (d->group && lookup_group(d->group, &d->run_gid) < 0)
		return evd_usage_error("--group %s: no such group", d->group);
	if (geteuid() != 0 &&
	    (geteuid() != d->run_uid || getegid() != d->run_gid)) {
		evr_log_err("--user %s: evringd runs as uid %d, not root: it "
			    "cannot become another user",
			    d->user, (int)geteuid());
		return -EPERM;
	}
	return 0;
}

/* Clear every capability set: effective, permitted, inheritable, ambient.
 * Raw system calls: no libcap for so little. */
static int caps_clear(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 &&
	    errno != EINVAL)
		return -errno;
	if (syscall(SYS_capset, &h, data) < 0)
		return -errno;
	return 0;
}

static bool has_caps(void)
{
	struct __user_cap_header_struct h = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[2];

	if (syscall(SYS_capget, &h, data) < 0)
		return false;
	return data[0].permitted || data[1].permitted;
}

static int switch_user(struct daemon *d)
{
	if (initgroups(d->run_user, d->run_gid) < 0) {
		evr_log_err("initgroups %s: %s", d->run_user, strerror(errno));
		return -errno;
	}
	if (setgid(d->run_gid) < 0) {
		evr_log_err("setgid %d: %s", (int)d->run_gid, strerror(errno));
		return -errno;
	}
	if (setuid(d->run_uid) < 0) {
		evr_log_err("setuid %d: %s", (int)d->run_uid, strerror(errno));
		return -errno;
	}
	/* root must be out of reach now */
	if (d->run_uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		evr_log_err("--user %s: root could be regained; stopping",
			    d->run_user);
		return -EPERM;
	}
	evr_log_info("privileges dropped after binding: uid %d (%s), gid %d",
		     (int)getuid(), d->run_user, (int)getgid());
	return 0;
}

int evd_privs_drop(struct daemon *d)
{
	int err;

	if (d->user)
		return switch_user(d);
	if (geteuid() == 0) {
		evr_log_info("running as root (--user drops privileges after "
			     "binding)");
		return 0;
	}
	if (!has_caps())
		return 0;
	err = caps_clear();
	if (err < 0) {
		evr_log_err("dropping capabilities: %s", strerror(-err));
		return err;
	}
	evr_log_info("capabilities dropped after binding");
	return 0;
}
