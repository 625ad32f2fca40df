/* SPDX-License-Identifier: MIT */
/*
 * cli.h - evring-bench's command-line values: durations with units,
 * C escapes, and targets by name.
 */
#ifndef EVRING_BENCH_CLI_H
#define EVRING_BENCH_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* "10", "10s", "500ms", "2m", "1h", "250us" to seconds. A bare number is
 * seconds. 0 or -EINVAL. */
int cli_duration(const char *s, double *secs);

/*
 * Decode the C escapes of s (\r \n \t \\ \" \0 \xHH) into a new string of
 * *len bytes (NUL-terminated, but it may hold NULs). The caller frees *out.
 * 0, -EINVAL for an unknown or cut escape, -ENOMEM.
 */
int cli_unescape(const char *s, char **out, size_t *len);

/*
 * Resolve a target "HOST:PORT" ("localhost:7", "127.0.0.1:echo",
 * "[::1]:7") for a socket of type (SOCK_STREAM or SOCK_DGRAM). Addresses
 * outside loopback are skipped unless allow_remote. When the name has
 * several addresses (localhost: ::1 and 127.0.0.1), the first that takes
 * a probe wins: a TCP connection (closed at once), or for UDP an empty
 * datagram that draws no "port unreachable"; a TCP target is probed even
 * when it has one address, so that a refused one is known at once.
 * Returns 0 and the address in ss/len, or -errno with a message in why:
 * -EINVAL (bad form), -ENOENT (no such name), -EPERM (not on loopback),
 * or the probe's error (-ECONNREFUSED).
 */
int cli_resolve(const char *target, int type, bool allow_remote,
		struct sockaddr_storage *ss, socklen_t *len, char *why,
		size_t whylen);

#endif
