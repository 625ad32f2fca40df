/* SPDX-License-Identifier: MIT */
/*
 * registry.c - protocol modules by name (<evring/modules.h>).
 *
 * The built-in modules are a const table made from builtin.def; modules a
 * program registers at run time go in a small fixed table after them.
 * Only programs use this (evringd's -s NAME); the core takes modules by
 * address and never looks one up by name.
 */
#include "modules.h"

#include <errno.h>
#include <string.h>

#define EVR_PROTO_USER_MAX 64

static const struct evr_proto *const builtin[] = {
#define EVR_BUILTIN(name) &evr_proto_##name,
#include "builtin.def"
#undef EVR_BUILTIN
};

static const struct evr_proto *user[EVR_PROTO_USER_MAX];
static size_t nuser;

const struct evr_proto *evr_proto_at(size_t i)
{
	size_t nbuiltin = sizeof(builtin) / sizeof(builtin[0]);

	if (i < nbuiltin)
		return builtin[i];
	i -= nbuiltin;
	return i < nuser ? user[i] : NULL;
}

const struct evr_proto *evr_proto_find(const char *name)
{
	const struct evr_proto *p;

	for (size_t i = 0; (p = evr_proto_at(i)); i++)
		if (!strcmp(p->name, name))
			return p;
	return NULL;
}

int evr_proto_register(const struct evr_proto *p)
{
	char why[160];

	if (evr_proto_validate(p, why, sizeof(why)) < 0) {
		evr_log_err("register: %s", why);
		return -EINVAL;
	}
	if (evr_proto_find(p->name))
		return -EEXIST;
	if (nuser == EVR_PROTO_USER_MAX)
		return -ENOSPC;
	user[nuser++] = p;
	return 0;
}
