/* SPDX-License-Identifier: MIT */
/*
 * uring_compat.h - io_uring pieces newer than the liburing we build with.
 *
 * Debian 12 ships liburing 2.3, which lacks io_uring_setup_buf_ring() (2.4)
 * and the names of newer kernel flags. Those are built here from the raw
 * interface, under project-private names, so that a newer liburing header
 * never clashes with them. Whether the running kernel supports a feature is
 * decided by probing it at run time (backend_uring.c), never by these
 * definitions being present.
 */
#ifndef EVRING_URING_COMPAT_H
#define EVRING_URING_COMPAT_H

#include <errno.h>
#include <liburing.h>
#include <string.h>
#include <sys/mman.h>

/* io_uring_setup(2) flags, by kernel version */
#define EVR_IORING_SETUP_COOP_TASKRUN  (1U << 8)  /* 5.19 */
#define EVR_IORING_SETUP_SUBMIT_ALL    (1U << 7)  /* 5.18 */
#define EVR_IORING_SETUP_SINGLE_ISSUER (1U << 12) /* 6.0 */
#define EVR_IORING_SETUP_DEFER_TASKRUN (1U << 13) /* 6.1 */

/* io_uring_params.features */
#define EVR_IORING_FEAT_NODROP		(1U << 1)  /* 5.5 */
#define EVR_IORING_FEAT_FAST_POLL	(1U << 5)  /* 5.7 */
#define EVR_IORING_FEAT_EXT_ARG		(1U << 8)  /* 5.11 */
#define EVR_IORING_FEAT_CQE_SKIP	(1U << 11) /* 5.17 */
#define EVR_IORING_FEAT_RECVSEND_BUNDLE (1U << 14) /* 6.10 */

/* opcodes newer than liburing 2.3 knows */
#define EVR_IORING_OP_WAITID 50 /* 6.7 */

/* sqe->ioprio bits of recv/send */
#define EVR_IORING_RECV_MULTISHOT (1U << 1) /* 6.0 */
/* one receive fills several buffers, taken in ring order from the one the
 * completion names; res is their total */
#define EVR_IORING_RECVSEND_BUNDLE (1U << 4) /* 6.10 */

/* sqe->flags */
#define EVR_IOSQE_CQE_SKIP_SUCCESS (1U << 6) /* 5.17 */

/* cqe->flags */
#define EVR_IORING_CQE_F_BUFFER	    (1U << 0)
#define EVR_IORING_CQE_F_MORE	    (1U << 1)
#define EVR_IORING_CQE_BUFFER_SHIFT 16

/*
 * A provided-buffer ring (kernel 5.19): entries io_uring_buf slots in
 * page-aligned memory shared with the kernel, registered as group bgid.
 * Returns the ring or NULL with *err set to -errno. The memory is
 * ring_entries * 16 bytes; free with evr__buf_ring_free().
 */
static inline struct io_uring_buf_ring *
evr__buf_ring_setup(struct io_uring *ring, unsigned entries, int bgid, int *err)
{
	struct io_uring_buf_reg reg;
	struct io_uring_buf_ring *br;
	size_t len = (size_t)entries * sizeof(struct io_uring_buf);
	int ret;

	br = mmap(NULL, len, PROT_READ | PROT_WRITE,
		  MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (br == MAP_FAILED) {
		*err = -errno;
		return NULL;
	}
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)br;
	reg.ring_entries = entries;
	reg.bgid = (unsigned short)bgid;
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret < 0) {
		munmap(br, len);
		*err = ret;
		return NULL;
	}
	io_uring_buf_ring_init(br);
	*err = 0;
	return br;
}

static inline void evr__buf_ring_free(struct io_uring *ring,
				      struct io_uring_buf_ring *br,
				      unsigned entries, int bgid)
{
	io_uring_unregister_buf_ring(ring, bgid);
	munmap(br, (size_t)entries * sizeof(struct io_uring_buf));
}

#endif /* EVRING_URING_COMPAT_H */
