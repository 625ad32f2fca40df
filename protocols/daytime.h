/* SPDX-License-Identifier: MIT */
/*
 * daytime.h - the daytime module's line formatter (public API).
 *
 * Installed as <evring/daytime.h>; needs <evring.h>.
 */
#ifndef EVRING_DAYTIME_H
#define EVRING_DAYTIME_H

#include "evring.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * daytime's line for time t (RFC 867 leaves the format free), followed by
 * CRLF and a NUL. fmt is a strftime(3) format, NULL for the default; utc
 * chooses UTC or local time. Default: "Wednesday, November 25, 2026
 * 03:35:50-UTC". Returns the length written (without the NUL), -ENOSPC
 * when it does not fit in outlen or the format yields nothing, -EINVAL
 * when t cannot be converted.
 */
int evr_daytime_format(char *out, size_t outlen, const char *fmt, bool utc,
		       int64_t t);

#ifdef __cplusplus
}
#endif
#endif /* EVRING_DAYTIME_H */
