/* SPDX-License-Identifier: MIT */
/*
 * version.c - the library's version at run time (evring.h), as libuv's
 * uv_version() and liburing's io_uring_major_version() tell theirs: a
 * program built against older headers can ask what it runs with.
 */
#include "evring.h"

unsigned evr_version(void)
{
	return EVR_VERSION_NUM;
}

const char *evr_version_string(void)
{
	return EVR_VERSION;
}
