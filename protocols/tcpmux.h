/* SPDX-License-Identifier: MIT */
/*
 * tcpmux.h - the TCP Port Service Multiplexer, RFC 1078 (public API).
 *
 * Installed as <evring/tcpmux.h>; needs <evring.h>. The tcpmux module
 * (evr_proto_tcpmux, <evring/modules.h>) reads a service name from each
 * client and hands the connection to the service of that name. A program
 * declares the services with evr_tcpmux_add() on the module's
 * configuration (evringd does it for the tcpmux/NAME lines of its file).
 *
 * What the client sees: it sends the name and CRLF (LF alone is taken
 * too; case does not matter; the name may arrive in pieces). "HELP" lists
 * the services, one name per line, and closes. An unknown name gets
 * "-Service not available" and a close. A known one gets "+Go" first when
 * the service was added with plus (the tcpmux/+NAME form); otherwise the
 * service answers "+" or "-" itself. Replies end in CRLF, with nothing
 * after it (no NUL). A name line not finished within the deadline (option
 * timeout, default 10 s) or longer than 64 bytes gets a "-" reply and a
 * close.
 */
#ifndef EVRING_TCPMUX_H
#define EVRING_TCPMUX_H

#include "evring.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EVR_TCPMUX_NAME_MAX 64

/*
 * Take the connection c for a service: b, lent for the call, holds from
 * b->data + off the b->len - off bytes the client sent after the name line
 * (maybe none); they belong to the service, nothing is lost. Later bytes
 * still reach the tcpmux module, which drops them: take moves the
 * connection to the service (another module, a program). Return < 0 to
 * close it.
 */
typedef int (*evr_tcpmux_take_cb)(struct evr_conn *c, struct evr_buf *b,
				  size_t off, void *arg);

/*
 * Offer a service named name (1 to EVR_TCPMUX_NAME_MAX - 1 printable
 * characters, no blank) through the tcpmux configuration conf. With plus,
 * the module sends "+Go" before calling take. The name is copied. 0,
 * -EINVAL for a bad name, -EEXIST when a service of that name (in any
 * case) is there, -ENOMEM.
 */
int evr_tcpmux_add(void *conf, const char *name, bool plus,
		   evr_tcpmux_take_cb take, void *arg);

#ifdef __cplusplus
}
#endif
#endif /* EVRING_TCPMUX_H */
