/* SPDX-License-Identifier: MIT */
/*
 * modload.c - modules from shared objects: `evringd --module PATH` and
 * `#@ module=PATH` lines (evringd.conf(5)).
 *
 * A module exports struct evr_module under the name evr_module
 * (EVR_MODULE_EXPORT in evring.h). Its abi is read before anything else
 * of it: a module built against another EVR_MODULE_ABI is refused with a
 * message, never run. It resolves the evr_ functions it calls in evringd
 * (which exports them: the Makefile links evringd with a dynamic list),
 * so a module that calls a function this evringd lacks fails to load,
 * with the loader's message, instead of crashing later (RTLD_NOW).
 *
 * Then it is registered like a built-in module and served by name, with
 * every option and limit. A module is never unloaded: connections of a
 * configuration a reload replaced may still run its code. Loading the same
 * file again (a reload) finds the module loaded already; a new build of a
 * loaded file needs a restart.
 */
#include "evringd.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int evd_module_load(const char *path, char *why, size_t whylen)
{
	const struct evr_module *m;
	const struct evr_proto *p, *q;
	char reason[160];
	void *h;
	int err;

	if (!strchr(path, '/')) {
		snprintf(why, whylen,
			 "give a path (./%s, or an absolute one): a bare name "
			 "would be searched for in the library path",
			 path);
		return -EINVAL;
	}
	h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(why, whylen, "%s", dlerror());
		return -ENOENT;
	}
	m = dlsym(h, EVR_MODULE_SYMBOL);
	if (!m) {
		snprintf(why, whylen,
			 "not an evring module: it exports no symbol %s (see "
			 "EVR_MODULE_EXPORT in evring.h)",
			 EVR_MODULE_SYMBOL);
		goto out_close;
	}
	if (m->abi != EVR_MODULE_ABI) {
		snprintf(why, whylen,
			 "built for module ABI %u, this evringd (%s) has ABI "
			 "%u: rebuild the module against its evring.h",
			 m->abi, EVR_VERSION, EVR_MODULE_ABI);
		goto out_close;
	}
	if (m->size < sizeof(*m) || !m->proto) {
		snprintf(why, whylen, "a damaged evr_module (size %u)",
			 m->size);
		goto out_close;
	}
	p = m->proto;
	if (evr_proto_validate(p, reason, sizeof(reason)) < 0) {
		snprintf(why, whylen, "%s", reason);
		goto out_close;
	}
	q = evr_proto_find(p->name);
	if (q == p)
		return 0; /* loaded already */
	if (q) {
		snprintf(why, whylen,
			 "a module named %s is there already (built in, or "
			 "loaded from another file)",
			 p->name);
		dlclose(h);
		return -EEXIST;
	}
	err = evr_proto_register(p);
	if (err < 0) {
		snprintf(why, whylen, "cannot register %s: %s", p->name,
			 strerror(-err));
		dlclose(h);
		return err;
	}
	evr_log_info("module %s loaded from %s", p->name, path);
	return 0;

out_close:
	dlclose(h);
	return -EINVAL;
}
