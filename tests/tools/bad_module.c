/* SPDX-License-Identifier: MIT */
/*
 * bad_module.c - shared objects evringd must refuse with a message and
 * without running them, built three ways:
 *
 *	-DBAD_ABI	an evr_module with another module ABI
 *	-DNO_SYMBOL	a module that exports no evr_module
 *	-DMISSING_CALL	a module that calls an evr_ function evringd does
 *			not have (RTLD_NOW refuses it at load time)
 *
 * Each would crash evringd if it were used: its handler dereferences
 * NULL.
 */
#include "evring.h"

#include <stddef.h>

#ifdef MISSING_CALL
void evr_no_such_function(struct evr_conn *c);
#endif

static void bad_data(struct evr_conn *c, struct evr_buf *b)
{
#ifdef MISSING_CALL
	evr_no_such_function(c);
#endif
	(void)c;
	*(volatile char *)NULL = b->data[0];
}

static const struct evr_proto bad_proto = {
	.name = "bad",
	.on_data = bad_data,
};

#if defined(BAD_ABI)
__attribute__((visibility("default")))
const struct evr_module evr_module = { EVR_MODULE_ABI + 1000,
				       sizeof(struct evr_module), &bad_proto };
#elif defined(NO_SYMBOL)
__attribute__((visibility("default")))
const struct evr_module not_evr_module = { EVR_MODULE_ABI,
					   sizeof(struct evr_module),
					   &bad_proto };
#else
EVR_MODULE_EXPORT(bad_proto);
#endif
