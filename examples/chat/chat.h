/* SPDX-License-Identifier: MIT */
/*
 * chat.h - what the two halves of the chat example share: the texts that
 * go from the room to every loop, and the messages between the loops
 * (chat.c: each loop's members; room.c: the room, on loop 0).
 */
#ifndef CHAT_H
#define CHAT_H

#include "evring.h"

#include <stdatomic.h>

#define NICK_MAX      16
#define CHAT_LINE_MAX 4096	    /* a chat line, not a file transfer */
#define CHAT_BUF_SIZE 2048	    /* the receive pool; see main */
#define BATCH_BYTES   CHAT_BUF_SIZE /* evr_buf_new's cached size class */
#define IN_CREDIT     (32 * 1024)   /* lines a loop sends the room ahead */
#define OUT_CREDIT    (128 * 1024)  /* lines the room sends a loop ahead */

/* ---- texts: lines made once, read by every loop ---- */

/* Immutable once sent; the last loop to read it frees it. */
struct text {
	atomic_uint refs;
	uint32_t len, cap;
	char data[];
};

struct text *text_new(size_t cap);
void text_put(struct text *t);
/* Append a line to t: head, then len bytes of s with control characters
 * replaced by '?', then CRLF. The caller made room: strlen(head) + len +
 * 2. */
void line_put(struct text *t, const char *head, const char *s, size_t len);

/* ---- messages between the loops ---- */

/* A member, wherever it is: its loop, and its slot in that loop's gate
 * with the slot's generation (a slot reused is another member). Never 0:
 * that is no one. */
typedef uint64_t who_t;

static inline who_t who_make(unsigned loop, uint32_t gen, uint32_t slot)
{
	return (uint64_t)(loop + 1) << 48 | (uint64_t)(gen & 0xffffff) << 24 |
	       (slot & 0xffffff);
}

static inline unsigned who_loop(who_t w)
{
	return (unsigned)(w >> 48) - 1;
}

/* To the room, from a member's loop. */
enum cmd_kind {
	CMD_LINES, /* lines the member typed, each ending in LF */
	CMD_EOF,   /* it sent all it will: close it after the answers */
	CMD_LEAVE, /* it is gone (arg: why, -errno or 0) */
	CMD_LAG,   /* a loop began (arg 1) or ceased (arg -1) to lag */
	CMD_ACK,   /* a loop took in arg bytes of the room's lines */
};

struct cmd {
	struct cmd *next; /* the room's backlog while it holds */
	enum cmd_kind kind;
	unsigned loop; /* the sender's */
	who_t who;
	int arg;
	size_t len;
	char text[];
};

/* To a loop, from the room. */
enum out_kind {
	OUT_ALL,     /* t to every member but who */
	OUT_ONE,     /* t to who */
	OUT_JOINED,  /* who joined as nick; n members now */
	OUT_BYE,     /* "* bye" to who, then close it */
	OUT_CLOSE,   /* close who (its end of file, answered) */
	OUT_HOLD,    /* stop reading from every member */
	OUT_RELEASE, /* read again */
	OUT_ACK,     /* the room ran n bytes of this loop's lines */
};

struct out {
	enum out_kind kind;
	who_t who;
	struct text *t;
	uint32_t n;
	char nick[NICK_MAX + 1];
};

struct cmd *cmd_new(enum cmd_kind kind, unsigned loop, who_t who, int arg,
		    size_t len);
/* Post to loop 0's room (chat.c), to loop i's gate (room.c); a message a
 * loop no longer takes (the server is stopping) is dropped. */
void post_cmd(struct evr_loop *from, struct cmd *m);
void post_out(struct evr_loop *from, unsigned i, struct out *m);

/* A message of the room, on a member's loop (chat.c). */
void gate_out(struct evr_loop *l, void *arg);

/* room.c: the room, made by loop 0's setup for n loops; a message to it
 * (loop 0's thread); freed once every loop has ended. */
int room_init(struct evr_loop *l, unsigned n);
void room_cmd(struct evr_loop *l, void *arg);
void room_fini(void);

#endif
