/* SPDX-License-Identifier: MIT */
/*
 * uring_floor.c - what io_uring itself reaches on this machine: servers
 * and a client with every io_uring technique that applies and nothing
 * else, so that evringd and evring-bench can be measured against the
 * floor of their own backend and not only against epoll peers.
 *
 *	uring_floor daytime|echo|http [-b ADDR] -p PORT
 *	uring_floor client -c CONNS -s SIZE -d SECS [-w SECS] HOST:PORT
 *
 * One thread, one ring with SINGLE_ISSUER and DEFER_TASKRUN, its fd
 * registered; multishot accept; multishot receives into a provided buffer
 * ring; every send with MSG_WAITALL (the kernel finishes a short send
 * itself) and, where nothing waits for it, IOSQE_CQE_SKIP_SUCCESS.
 *
 *   daytime  the line (evringd's format and length) sent with MSG_MORE,
 *	      linked to the close (IOSQE_IO_LINK): the line and the FIN in
 *	      one segment, one submission, no completion when all goes well.
 *	      No lingering-close check (evringd's FIONREAD).
 *   echo     the received buffers go back out as they are (a sendmsg of
 *	      every buffer that arrived while the previous send was under
 *	      way), and return to the ring with the send's completion.
 *   http     every request completed by a receive ("\r\n\r\n") answered
 *	      with the same 131 bytes evringd's http answers, from one
 *	      static buffer, in one send. No parsing beyond that.
 *   client   CONNS connections each keep one SIZE-byte message in flight
 *	      (as `evring-bench echo -p 1` and peers/epoll_client): send
 *	      from a static pattern, completion skipped; multishot receive;
 *	      every byte checked. Prints the JSON epoll_client prints.
 *
 * No limits, timeouts or logs: a reference, not a server. The servers run
 * until SIGINT or SIGTERM. Needs a 6.1 kernel (DEFER_TASKRUN) and
 * liburing 2.3.
 */
#define PEER_PROG "uring_floor"
#include "../peers/peer.h"

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <time.h>

#define RING_ENTRIES 4096
#define NBUF	     1024	 /* evringd's pool: 1,024 buffers */
#define BUF_SIZE     (16 * 1024) /* of 16 KiB */
#define ECHO_IOV     64
#define HTTP_BATCH   64 /* replies one send carries at most */

enum op { OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CLOSE, OP_SIGNAL };

struct conn {
	int fd;
	bool sending, closing;
	unsigned npend, nsent;
	uint16_t pend[ECHO_IOV];
	struct iovec iov[ECHO_IOV];
	struct msghdr msg;
	unsigned http_state;
	size_t got; /* client: bytes of the current echo */
};

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static struct conn *conns;
static unsigned nconns;
static int lfd = -1;

static uint64_t ud(enum op op, unsigned i)
{
	return (uint64_t)op << 32 | i;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s\n", PEER_PROG, what, strerror(err));
	exit(1);
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	if (!sqe)
		die("io_uring_get_sqe", EBUSY);
	return sqe;
}

static void setup(void)
{
	struct io_uring_params p = {
		.flags = IORING_SETUP_SINGLE_ISSUER |
			 IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL,
	};
	struct io_uring_buf_reg reg = { .ring_entries = NBUF, .bgid = 0 };
	int err;

	err = io_uring_queue_init_params(RING_ENTRIES, &ring, &p);
	if (err < 0)
		die("io_uring_queue_init (DEFER_TASKRUN needs 6.1)", -err);
	io_uring_register_ring_fd(&ring);
	br = mmap(NULL, NBUF * sizeof(struct io_uring_buf),
		  PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	bufs = malloc((size_t)NBUF * BUF_SIZE);
	if (br == MAP_FAILED || !bufs)
		die("buffers", ENOMEM);
	reg.ring_addr = (unsigned long)br;
	err = io_uring_register_buf_ring(&ring, &reg, 0);
	if (err < 0)
		die("io_uring_register_buf_ring", -err);
	io_uring_buf_ring_init(br);
	for (unsigned i = 0; i < NBUF; i++)
		io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_SIZE, BUF_SIZE,
				      (unsigned short)i,
				      io_uring_buf_ring_mask(NBUF), (int)i);
	io_uring_buf_ring_advance(br, NBUF);
}

static char *buf_of(unsigned bid)
{
	return bufs + (size_t)bid * BUF_SIZE;
}

static void buf_return(unsigned bid)
{
	io_uring_buf_ring_add(br, buf_of(bid), BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(NBUF), 0);
	io_uring_buf_ring_advance(br, 1);
}

static void arm_accept(void)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	sqe->user_data = ud(OP_ACCEPT, 0);
}

static void arm_recv(int fd)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = 0;
	sqe->user_data = ud(OP_RECV, (unsigned)fd);
}

/* A send whose success nobody waits for: the data is static. */
static void send_static(int fd, const void *p, size_t len, int flags,
			unsigned sqe_flags)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_send(sqe, fd, p, len, MSG_NOSIGNAL | MSG_WAITALL | flags);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS | sqe_flags;
	sqe->user_data = ud(OP_SEND, (unsigned)fd);
}

static void close_async(int fd)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_close(sqe, fd);
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	sqe->user_data = ud(OP_CLOSE, (unsigned)fd);
}

static struct conn *conn_of(int fd)
{
	if (fd < 0 || (unsigned)fd >= nconns)
		die("descriptor beyond the table", EMFILE);
	return &conns[fd];
}

/* ---- daytime ------------------------------------------------------------ */

/* evringd's daytime line: "Monday, December 7, 2026 05:11:48-UTC\r\n" */
static const char *daytime_line(size_t *len)
{
	static char line[64];
	static size_t n;
	static time_t sec = -1;
	time_t now = time(NULL);
	struct tm tm;

	if (now != sec) {
		gmtime_r(&now, &tm);
		n = strftime(line, sizeof(line) - 2,
			     "%A, %B %-d, %Y %H:%M:%S-UTC", &tm);
		line[n++] = '\r';
		line[n++] = '\n';
		sec = now;
	}
	*len = n;
	return line;
}

static void daytime_accepted(int fd)
{
	size_t len;
	const char *line = daytime_line(&len);

	send_static(fd, line, len, MSG_MORE, IOSQE_IO_LINK);
	close_async(fd);
}

/* ---- echo --------------------------------------------------------------- */

static void echo_flush(struct conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->sending || !c->npend)
		return;
	c->nsent = c->npend;
	memset(&c->msg, 0, sizeof(c->msg));
	c->msg.msg_iov = c->iov;
	c->msg.msg_iovlen = c->nsent;
	sqe = sqe_get();
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL | MSG_WAITALL);
	sqe->user_data = ud(OP_SEND, (unsigned)c->fd);
	c->sending = true;
}

static void echo_data(struct conn *c, unsigned bid, int len)
{
	if (c->npend == ECHO_IOV) {
		fprintf(stderr, "%s: more than %d buffers waiting on fd %d\n",
			PEER_PROG, ECHO_IOV, c->fd);
		exit(1);
	}
	c->pend[c->npend] = (uint16_t)bid;
	c->iov[c->npend].iov_base = buf_of(bid);
	c->iov[c->npend].iov_len = (size_t)len;
	c->npend++;
	echo_flush(c);
}

static void echo_sent(struct conn *c)
{
	unsigned i;

	for (i = 0; i < c->nsent; i++)
		buf_return(c->pend[i]);
	memmove(c->pend, c->pend + c->nsent,
		(c->npend - c->nsent) * sizeof(c->pend[0]));
	memmove(c->iov, c->iov + c->nsent,
		(c->npend - c->nsent) * sizeof(c->iov[0]));
	c->npend -= c->nsent;
	c->nsent = 0;
	c->sending = false;
	if (c->closing) {
		for (i = 0; i < c->npend; i++)
			buf_return(c->pend[i]);
		c->npend = 0;
		close_async(c->fd);
		return;
	}
	echo_flush(c);
}

/* ---- http --------------------------------------------------------------- */

static char http_replies[HTTP_BATCH * 160];
static size_t http_reply_len;
static time_t http_sec = -1;

/* evringd's reply, 131 bytes: the Date changes once a second. */
static void http_update(void)
{
	char date[40], one[160];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	if (now == http_sec)
		return;
	http_sec = now;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	n = snprintf(one, sizeof(one),
		     "HTTP/1.1 200 OK\r\nServer: evring\r\nDate: %s\r\n"
		     "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\n"
		     "Hello, World!",
		     date);
	http_reply_len = (size_t)n;
	for (int i = 0; i < HTTP_BATCH; i++)
		memcpy(http_replies + (size_t)i * http_reply_len, one,
		       http_reply_len);
}

/* Requests end with an empty line: count "\n" "\r"* "\n". */
static void http_data(struct conn *c, unsigned bid, int len)
{
	const char *p = buf_of(bid);
	unsigned st = c->http_state, k = 0;

	for (int i = 0; i < len; i++) {
		if (p[i] == '\n') {
			k += st;
			st = !st;
		} else if (p[i] != '\r') {
			st = 0;
		}
	}
	c->http_state = st;
	buf_return(bid);
	while (k) {
		unsigned n = k < HTTP_BATCH ? k : HTTP_BATCH;

		http_update();
		send_static(c->fd, http_replies, n * http_reply_len, 0, 0);
		k -= n;
	}
}

/* ---- the server loop ---------------------------------------------------- */

enum mode { DAYTIME, ECHO, HTTP };

static void on_recv(enum mode m, int fd, int res, unsigned flags)
{
	struct conn *c = conn_of(fd);

	if (res > 0 && (flags & IORING_CQE_F_BUFFER)) {
		unsigned bid = flags >> IORING_CQE_BUFFER_SHIFT;

		if (m == ECHO)
			echo_data(c, bid, res);
		else
			http_data(c, bid, res);
	}
	if (flags & IORING_CQE_F_MORE)
		return;
	if (res > 0 || res == -ENOBUFS) {
		arm_recv(fd);
		return;
	}
	/* end of stream or an error: close once the last send is done */
	if (c->sending)
		c->closing = true;
	else
		close_async(fd);
}

static int serve(enum mode m, int sfd)
{
	struct signalfd_siginfo si;
	struct io_uring_sqe *sqe;

	arm_accept();
	sqe = sqe_get();
	io_uring_prep_read(sqe, sfd, &si, sizeof(si), 0);
	sqe->user_data = ud(OP_SIGNAL, 0);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int err = io_uring_submit_and_wait(&ring, 1);

		if (err < 0 && err != -EINTR)
			die("io_uring_submit_and_wait", -err);
		io_uring_for_each_cqe (&ring, head, cqe) {
			enum op op = (enum op)(cqe->user_data >> 32);
			int fd = (int)(uint32_t)cqe->user_data, res = cqe->res;

			seen++;
			switch (op) {
			case OP_ACCEPT:
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_accept();
				if (res < 0)
					break;
				conn_of(res)->fd = res;
				if (m == DAYTIME) {
					daytime_accepted(res);
				} else {
					memset(&conns[res], 0, sizeof(*conns));
					conns[res].fd = res;
					arm_recv(res);
				}
				break;
			case OP_RECV:
				on_recv(m, fd, res, cqe->flags);
				break;
			case OP_SEND:
				/* daytime and http: failures only (the close
				 * linked behind a failed daytime send is
				 * cancelled: see OP_CLOSE) */
				if (m == ECHO)
					echo_sent(conn_of(fd));
				break;
			case OP_CLOSE:
				if (res == -ECANCELED)
					close(fd);
				break;
			case OP_SIGNAL:
				return 0;
			}
		}
		io_uring_cq_advance(&ring, seen);
	}
}

static int server_main(enum mode m, int argc, char **argv)
{
	static const char *names[] = { "daytime", "echo", "http" };
	struct sockaddr_storage ss;
	struct rlimit rl;
	char a[PEER_ADDRSTR];
	socklen_t len;
	int sfd;

	if (peer_parse_args(argc, argv, &ss, &len) < 0)
		return PEER_EXIT_USAGE;
	signal(SIGPIPE, SIG_IGN);
	peer_raise_nofile();
	getrlimit(RLIMIT_NOFILE, &rl);
	nconns = rl.rlim_cur > 1 << 20 ? 1 << 20 : (unsigned)rl.rlim_cur;
	conns = calloc(nconns, sizeof(*conns));
	if (!conns)
		die("calloc", ENOMEM);
	sfd = peer_signalfd();
	if (sfd < 0)
		die("signalfd", -sfd);
	setup();
	lfd = peer_socket(SOCK_STREAM, &ss, len);
	if (lfd < 0)
		return 1;
	printf("listen %s tcp %s io_uring-floor\n", names[m],
	       peer_addr_str(&ss, a, sizeof(a)));
	fflush(stdout);
	serve(m, sfd);
	close(lfd);
	close(sfd);
	io_uring_queue_exit(&ring);
	free(conns);
	free(bufs);
	return 0;
}

/* ---- the client ------------------------------------------------------- */

static int client_main(int argc, char **argv)
{
	struct peer_client_opts o;
	char *msg;
	long n, size;
	int one = 1;

	if (peer_client_args(argc, argv,
			     "client -c CONNS -s SIZE -d SECS [-w SECS] "
			     "HOST:PORT",
			     BUF_SIZE, &o) < 0)
		return PEER_EXIT_USAGE;
	n = o.conns;
	size = o.size;
	msg = malloc((size_t)size);
	conns = calloc((size_t)n, sizeof(*conns));
	if (!msg || !conns)
		die("malloc", ENOMEM);
	for (long i = 0; i < size; i++)
		msg[i] = (char)('a' + i % 26);
	setup();
	/* conns[] is indexed by descriptor in the servers, by number here */
	nconns = (unsigned)n;
	for (unsigned i = 0; i < nconns; i++) {
		int fd = socket(o.to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&o.to, o.tolen))
			die("connect", errno);
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conns[i].fd = fd;
		struct io_uring_sqe *sqe = sqe_get();

		io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = 0;
		sqe->user_data = ud(OP_RECV, i);
		send_static(fd, msg, (size_t)size, 0, 0);
	}

	double tm = peer_now_s() + o.warm, tend = tm + o.secs, c0 = 0;
	unsigned long long ops = 0;
	bool measuring = false;

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int err = io_uring_submit_and_wait(&ring, 1);
		double t = peer_now_s();

		if (err < 0 && err != -EINTR)
			die("io_uring_submit_and_wait", -err);
		if (!measuring && t >= tm) {
			measuring = true;
			ops = 0;
			c0 = peer_cpu_s();
		}
		if (t >= tend)
			break;
		io_uring_for_each_cqe (&ring, head, cqe) {
			struct conn *c = &conns[(uint32_t)cqe->user_data];
			unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

			seen++;
			if ((cqe->user_data >> 32) != OP_RECV)
				die("send", -cqe->res);
			if (cqe->res == -ENOBUFS) {
				if (!(cqe->flags & IORING_CQE_F_MORE))
					arm_recv(c->fd);
				continue;
			}
			if (cqe->res <= 0)
				die("receive",
				    cqe->res ? -cqe->res : ECONNRESET);
			if (memcmp(buf_of(bid), msg + c->got,
				   (size_t)cqe->res)) {
				fprintf(stderr, "%s: echo differs\n",
					PEER_PROG);
				return 1;
			}
			buf_return(bid);
			c->got += (size_t)cqe->res;
			if (!(cqe->flags & IORING_CQE_F_MORE))
				arm_recv(c->fd);
			if (c->got < (size_t)size)
				continue;
			c->got = 0;
			ops++;
			send_static(c->fd, msg, (size_t)size, 0, 0);
		}
		io_uring_cq_advance(&ring, seen);
	}
	double used = peer_cpu_s() - c0;

	printf("{\"mode\":\"uring_floor\",\"ops\":%llu,\"ops_per_s\":%.1f,"
	       "\"client_cpu_us_per_op\":%.3f}\n",
	       ops, (double)ops / o.secs, ops ? used * 1e6 / (double)ops : 0);
	return 0;
}

int main(int argc, char **argv)
{
	static const char *modes[] = { "daytime", "echo", "http" };

	if (argc >= 2 && !strcmp(argv[1], "client"))
		return client_main(argc - 1, argv + 1);
	for (int m = DAYTIME; m <= HTTP; m++)
		if (argc >= 2 && !strcmp(argv[1], modes[m]))
			return server_main((enum mode)m, argc - 1, argv + 1);
	fprintf(stderr,
		"usage: %s daytime|echo|http [-b ADDR] -p PORT\n"
		"       %s client -c CONNS -s SIZE -d SECS [-w SECS] "
		"HOST:PORT\n",
		PEER_PROG, PEER_PROG);
	return PEER_EXIT_USAGE;
}
