/* SPDX-License-Identifier: MIT */
/*
 * modules.h - the modules built into libevring, and modules by name.
 *
 * Installed as <evring/modules.h>; needs <evring.h>. A program may serve a
 * built-in module directly (evr_listen with .proto = &evr_proto_echo) or
 * look modules up by name, as evringd does for `-s NAME`. The core never
 * looks anything up by name: this registry belongs to the programs.
 */
#ifndef EVRING_MODULES_H
#define EVRING_MODULES_H

#include "evring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVR_BUILTIN(name) extern const struct evr_proto evr_proto_##name;
#include "builtin.def"
#undef EVR_BUILTIN

/*
 * The built-in modules are registered from the start; evr_proto_register()
 * adds a program's own module after validating it (evr_proto_validate),
 * logging the reason when it is invalid. Returns 0, -EINVAL, -EEXIST (the
 * name is taken) or -ENOSPC (at most 64 modules added). Not thread-safe:
 * register before starting loops.
 */
int evr_proto_register(const struct evr_proto *p);
/* The module of that name, NULL when there is none. */
const struct evr_proto *evr_proto_find(const char *name);
/* The n-th module (built-in ones first), NULL past the end. */
const struct evr_proto *evr_proto_at(size_t n);

#ifdef __cplusplus
}
#endif
#endif /* EVRING_MODULES_H */
