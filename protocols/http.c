/* SPDX-License-Identifier: MIT */
/*
 * http.c - HTTP/1.1 plaintext: the TechEmpower "plaintext" test over
 * RFC 9110 (semantics) and RFC 9112 (HTTP/1.1 messages).
 *
 * GET / and HEAD / answer "Hello, World!" as text/plain; other targets
 * answer 404, other methods 405. Connections persist (RFC 9112 §9.3) and
 * requests may be pipelined: every request completed by one receive is
 * answered, in order, into one reply buffer that leaves with one evr_send(),
 * so a burst of pipelined requests costs one send system call. Request
 * bodies are never read: a request that announces one is answered, then the
 * connection closes.
 *
 * Requests are parsed in place in the received buffer. Only a request that
 * spans receives is copied, into a per-connection buffer of at most
 * EVR__HTTP_HEAD_MAX bytes that exists only while such a request is
 * incomplete: an idle connection holds nothing but its few bytes of state.
 *
 * A request head must arrive whole within header_timeout of its first byte
 * (default 10 s; nginx's client_header_timeout, haproxy's timeout
 * http-request): a client that dribbles a byte at a time (slowloris) keeps
 * the idle timeout from firing, but not this deadline, which more bytes of
 * the same head do not restart. On expiry the answer is 408 and a close.
 * Between requests a persistent connection waits under the idle timeout
 * only.
 *
 * Every refused request (400, 408, 431, 505) is logged with its peer and
 * the reason, at most one line per 10 s per thread with a count of the
 * others, so that bad input says why without letting anyone fill the log.
 *
 * Layout: the parser (character classes, lines, request line, header
 * fields; pure, declared in http.h), then the replies (table, Date cache,
 * writer, reply buffer), then the configuration and the log of refusals,
 * then the module's handlers.
 */
#include "modules.h"
#include "http.h"
#include "refused.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Parser                                                              */
/* ------------------------------------------------------------------ */

#define C_TCHAR 0x1 /* RFC 9110 §5.6.2 tchar */
#define C_VCHAR 0x2 /* visible: request-target, field values */
#define C_WS	0x4 /* SP, HTAB: RFC 9110 §5.6.3 OWS */
#define C_OBS	0x8 /* obs-text, 0x80-0xff: allowed in field values */

/* clang-format off */
#define T (C_TCHAR | C_VCHAR)
#define V C_VCHAR
#define W C_WS
static const unsigned char char_class[128] = {
	/*         NUL                                 HT                   */
	/* 0x00 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, W, 0, 0, 0, 0, 0, 0,
	/* 0x10 */ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	/*         SP !  "  #  $  %  &  '  (  )  *  +  ,  -  .  /           */
	/* 0x20 */ W, T, V, T, T, T, T, T, V, V, T, T, V, T, T, V,
	/*         0  1  2  3  4  5  6  7  8  9  :  ;  <  =  >  ?           */
	/* 0x30 */ T, T, T, T, T, T, T, T, T, T, V, V, V, V, V, V,
	/*         @  A  B  C  D  E  F  G  H  I  J  K  L  M  N  O           */
	/* 0x40 */ V, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
	/*         P  Q  R  S  T  U  V  W  X  Y  Z  [  \  ]  ^  _           */
	/* 0x50 */ T, T, T, T, T, T, T, T, T, T, T, V, V, V, T, T,
	/*         `  a  b  c  d  e  f  g  h  i  j  k  l  m  n  o           */
	/* 0x60 */ T, T, T, T, T, T, T, T, T, T, T, T, T, T, T, T,
	/*         p  q  r  s  t  u  v  w  x  y  z  {  |  }  ~  DEL         */
	/* 0x70 */ T, T, T, T, T, T, T, T, T, T, T, V, T, V, T, 0,
};
#undef T
#undef V
#undef W
/* clang-format on */

static inline unsigned cls(char ch)
{
	unsigned char c = (unsigned char)ch;

	return c < 128 ? char_class[c] : C_OBS;
}

static inline int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

static inline int is_digit(char c)
{
	return (unsigned char)(c - '0') < 10;
}

/* Where the parser is in its input, and what the fields said so far. */
struct scan {
	const char *p;
	size_t pos; /* start of the next line */
	size_t lim; /* bytes it may look at: min(n, EVR__HTTP_HEAD_MAX) */
	uint64_t content_length;
	uint8_t hosts;
	uint8_t has_length;
};

/*
 * The next line, without its terminator, in *s and *len. RFC 9112 §2.2: a
 * line ends in CRLF, and a recipient may take a bare LF for one; the CR
 * before the LF is dropped. A CR anywhere else stays in the line, where the
 * character checks reject it (§2.2: a bare CR is invalid). Returns 0 when
 * no LF is within the limit yet.
 */
static int scan_line(struct scan *sc, const char **s, size_t *len)
{
	const char *start, *lf;
	size_t l;

	if (sc->pos >= sc->lim) /* and p may be NULL when n is 0 */
		return 0;
	start = sc->p + sc->pos;
	lf = memchr(start, '\n', sc->lim - sc->pos);
	if (!lf)
		return 0;
	l = (size_t)(lf - start);
	if (l && start[l - 1] == '\r')
		l--;
	*s = start;
	*len = l;
	sc->pos = (size_t)(lf - sc->p) + 1;
	return 1;
}

static int method_of(const char *s, size_t n)
{
	/* RFC 9110 §9.1: the method token is case-sensitive */
	if (n == 3 && !memcmp(s, "GET", 3))
		return EVR__HTTP_GET;
	if (n == 4 && !memcmp(s, "HEAD", 4))
		return EVR__HTTP_HEAD;
	return EVR__HTTP_OTHER;
}

/* RFC 3986 §3.1: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
static int is_scheme_char(char c, int first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
		return 1;
	return !first && (is_digit(c) || c == '+' || c == '-' || c == '.');
}

/*
 * Check the form of req->target and find its path (RFC 9112 §3.2):
 * origin-form "/path?query", absolute-form "scheme:[//authority]path?query"
 * (§3.2.2: a server must accept it; the path is what counts), asterisk-form
 * "*". The path excludes the query; an empty one is "/". 0 or -400.
 */
static int parse_target(struct evr__http_req *req)
{
	const char *t = req->target, *end = t + req->target_len, *path, *q;
	size_t i = 0;

	if (t[0] == '/' || (t[0] == '*' && req->target_len == 1)) {
		path = t;
	} else {
		while (i < req->target_len && is_scheme_char(t[i], i == 0))
			i++;
		if (!i || i == req->target_len || t[i] != ':')
			return -400;
		path = t + i + 1;
		if (end - path >= 2 && path[0] == '/' && path[1] == '/') {
			path += 2; /* authority, up to the path or query */
			while (path < end && *path != '/' && *path != '?')
				path++;
		}
	}
	q = memchr(path, '?', (size_t)(end - path));
	req->path = path;
	req->path_len = (uint16_t)((q ? q : end) - path);
	if (!req->path_len) {
		req->path = "/";
		req->path_len = 1;
	}
	return 0;
}

/*
 * RFC 9112 §2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT, case-sensitive.
 * Anything else is a malformed line (-400). RFC 9110 §2.5: a request of a
 * minor version above the highest one we implement within major version 1
 * is processed as HTTP/1.1, the highest; a major version other than 1 is
 * one this server does not speak (-505, RFC 9110 §15.6.6).
 */
static int parse_version(const char *s, size_t n, struct evr__http_req *req)
{
	if (n != 8 || memcmp(s, "HTTP/", 5) || !is_digit(s[5]) || s[6] != '.' ||
	    !is_digit(s[7]))
		return -400;
	if (s[5] != '1')
		return -505;
	req->minor = s[7] == '0' ? 0 : 1;
	return 0;
}

/*
 * RFC 9112 §3: request-line = method SP request-target SP HTTP-version,
 * with exactly one SP between the three. A line without a version (the
 * HTTP/0.9 form) is malformed. Returns 0, -400 or -505.
 */
static int parse_request_line(const char *s, size_t n,
			      struct evr__http_req *req)
{
	size_t i = 0, t;
	int err;

	while (i < n && (cls(s[i]) & C_TCHAR)) /* RFC 9110 §9.1: a token */
		i++;
	if (!i || i == n || s[i] != ' ')
		return -400;
	req->method = (uint8_t)method_of(s, i);
	t = ++i;
	while (i < n && (cls(s[i]) & C_VCHAR))
		i++;
	if (i == t || i == n || s[i] != ' ')
		return -400;
	req->target = s + t;
	req->target_len = (uint16_t)(i - t);
	err = parse_target(req);
	if (err)
		return err;
	return parse_version(s + i + 1, n - i - 1, req);
}

/*
 * RFC 9110 §7.6.1: Connection is a comma-separated list of options,
 * case-insensitive; "close" (RFC 9112 §9.6) and "keep-alive" (the HTTP/1.0
 * way to persist, §9.3) are the ones that matter here.
 */
static int field_connection(struct scan *sc, const char *v, size_t n,
			    struct evr__http_req *req)
{
	const char *end = v + n;

	(void)sc;
	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end;

		while (v < e && is_ows(*v))
			v++;
		while (e > v && is_ows(e[-1]))
			e--;
		if (e - v == 5 && !strncasecmp(v, "close", 5))
			req->flags |= EVR__HTTP_CLOSE;
		else if (e - v == 10 && !strncasecmp(v, "keep-alive", 10))
			req->flags |= EVR__HTTP_KEEP_ALIVE;
		v = comma ? comma + 1 : end;
	}
	return 0;
}

/*
 * RFC 9110 §8.6: Content-Length = 1*DIGIT. RFC 9112 §6.3 item 5: an
 * invalid value, or repeated fields that disagree, make the framing
 * unknowable: 400.
 */
static int field_content_length(struct scan *sc, const char *v, size_t n,
				struct evr__http_req *req)
{
	uint64_t len = 0;

	if (!n || n > 18) /* 18 digits cannot overflow 64 bits */
		return -400;
	for (size_t i = 0; i < n; i++) {
		if (!is_digit(v[i]))
			return -400;
		len = len * 10 + (uint64_t)(v[i] - '0');
	}
	if (sc->has_length && sc->content_length != len)
		return -400;
	sc->has_length = 1;
	sc->content_length = len;
	if (len)
		req->flags |= EVR__HTTP_BODY;
	return 0;
}

/* RFC 9112 §3.2: more than one Host field line is a 400. */
static int field_host(struct scan *sc, const char *v, size_t n,
		      struct evr__http_req *req)
{
	(void)v, (void)n, (void)req;
	return ++sc->hosts > 1 ? -400 : 0;
}

/* RFC 9112 §6.1: a body follows, whatever its codings. */
static int field_transfer_encoding(struct scan *sc, const char *v, size_t n,
				   struct evr__http_req *req)
{
	(void)sc, (void)v, (void)n;
	req->flags |= EVR__HTTP_BODY;
	return 0;
}

static const struct {
	const char *name;
	size_t len;
	int (*parse)(struct scan *sc, const char *v, size_t n,
		     struct evr__http_req *req);
} known_fields[] = {
	{ "connection", 10, field_connection },
	{ "content-length", 14, field_content_length },
	{ "host", 4, field_host },
	{ "transfer-encoding", 17, field_transfer_encoding },
};

/*
 * One field line (RFC 9112 §5): field-name ":" OWS field-value OWS. The
 * name is a token, with no whitespace before the colon (§5.1: a server
 * must reject that with 400); a line that starts with whitespace is an
 * obs-fold (§5.2) or whitespace after the request line (§2.2), both
 * rejected. Field names are case-insensitive (RFC 9110 §5.1). The value
 * may hold VCHAR, obs-text, SP and HTAB only (RFC 9110 §5.5). Returns 0,
 * -400 or -431 (too many fields).
 */
static int parse_field(struct scan *sc, const char *s, size_t n,
		       struct evr__http_req *req)
{
	size_t i = 0, v, e;

	if (++req->nfields > EVR__HTTP_FIELDS_MAX)
		return -431;
	while (i < n && (cls(s[i]) & C_TCHAR))
		i++;
	if (!i || i == n || s[i] != ':')
		return -400;
	for (v = i + 1; v < n && is_ows(s[v]); v++)
		;
	for (e = n; e > v && is_ows(s[e - 1]); e--)
		;
	for (size_t j = v; j < e; j++)
		if (!(cls(s[j]) & (C_VCHAR | C_WS | C_OBS)))
			return -400;
	for (size_t k = 0; k < sizeof(known_fields) / sizeof(known_fields[0]);
	     k++)
		if (known_fields[k].len == i &&
		    !strncasecmp(s, known_fields[k].name, i))
			return known_fields[k].parse(sc, s + v, e - v, req);
	return 0;
}

/* No line end within the limit: more bytes may finish the head, unless the
 * limit itself was reached. */
static int scan_more(size_t n)
{
	return n >= EVR__HTTP_HEAD_MAX ? -431 : 0;
}

/*
 * Whether the n bytes at t can begin a request-target that parse_target()
 * accepts: "/...", "*", or a scheme up to its ':'.
 */
static bool target_can_start(const char *t, size_t n)
{
	size_t i = 0;

	if (t[0] == '/')
		return true;
	if (t[0] == '*')
		return n == 1;
	while (i < n && is_scheme_char(t[i], i == 0))
		i++;
	return i == n || (i && t[i] == ':');
}

/*
 * The start of a request line whose end has not arrived, the rest of sc's
 * input: -400 when no ending can make it valid, else 0. It applies
 * parse_request_line()'s rules to what is there, so a client that speaks
 * something else (a TLS ClientHello starts with 0x16, not a tchar of a
 * method: RFC 9110 §5.6.2) is answered from its first bytes instead of
 * holding the connection until a line end that never comes. Only what is
 * certain is -400: a result here is always the one the whole line gets.
 */
static int request_line_start(const struct scan *sc)
{
	static const char version[] = "HTTP/0.0"; /* '0': any DIGIT */
	struct evr__http_req req = { 0 };
	const char *s = sc->p + sc->pos;
	size_t n = sc->lim - sc->pos, i = 0, t;

	if (n && s[n - 1] == '\r')
		n--; /* perhaps the CR of the CRLF that ends the line */
	while (i < n && (cls(s[i]) & C_TCHAR))
		i++;
	if (i == n)
		return 0;
	if (!i || s[i] != ' ')
		return -400;
	t = ++i;
	while (i < n && (cls(s[i]) & C_VCHAR))
		i++;
	if (i == t)
		return i == n ? 0 : -400;
	if (!target_can_start(s + t, i - t))
		return -400;
	if (i == n)
		return 0;
	if (s[i] != ' ')
		return -400;
	req.target = s + t;
	req.target_len = (uint16_t)(i - t);
	if (parse_target(&req) < 0)
		return -400;
	for (size_t k = 0; ++i < n; k++)
		if (k == sizeof(version) - 1 ||
		    (version[k] == '0' ? !is_digit(s[i]) : s[i] != version[k]))
			return -400;
	return 0;
}

int evr__http_parse(const char *p, size_t n, struct evr__http_req *req)
{
	struct scan sc = { .p = p,
			   .lim = n < EVR__HTTP_HEAD_MAX ? n
							 : EVR__HTTP_HEAD_MAX };
	const char *s;
	size_t len;
	int err;

	memset(req, 0, sizeof(*req));
	do { /* RFC 9112 §2.2: ignore empty lines before the request line */
		if (!scan_line(&sc, &s, &len)) {
			/* p may be NULL when n is 0 */
			err = sc.pos < sc.lim ? request_line_start(&sc) : 0;
			return err ? err : scan_more(n);
		}
	} while (!len);
	err = parse_request_line(s, len, req);
	if (err)
		return err;
	for (;;) {
		if (!scan_line(&sc, &s, &len))
			return scan_more(n);
		if (!len)
			break;
		err = parse_field(&sc, s, len, req);
		if (err)
			return err;
	}
	/* RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400 */
	if (req->minor == 1 && !sc.hosts)
		return -400;
	return (int)sc.pos;
}

/* ------------------------------------------------------------------ */
/* Replies                                                             */
/* ------------------------------------------------------------------ */

enum reply_id {
	R_OK,
	R_BAD_REQUEST,
	R_NOT_FOUND,
	R_NOT_ALLOWED,
	R_TOO_LARGE,
	R_BAD_VERSION,
	R_TIMEOUT
};

#define S(s) s, sizeof(s) - 1
static const struct reply {
	const char *line; /* status line, CRLF included */
	size_t line_len;
	const char *extra; /* header fields particular to the status */
	size_t extra_len;
	const char *body;
	size_t body_len;
} replies[] = {
	[R_OK] = { S("HTTP/1.1 200 OK\r\n"), S(""), S("Hello, World!") },
	[R_BAD_REQUEST] = { S("HTTP/1.1 400 Bad Request\r\n"), S(""),
			    S("Bad Request\n") },
	[R_NOT_FOUND] = { S("HTTP/1.1 404 Not Found\r\n"), S(""),
			  S("Not Found\n") },
	/* RFC 9110 §15.5.6: a 405 must list the allowed methods */
	[R_NOT_ALLOWED] = { S("HTTP/1.1 405 Method Not Allowed\r\n"),
			    S("Allow: GET, HEAD\r\n"),
			    S("Method Not Allowed\n") },
	/* RFC 6585 §5 */
	[R_TOO_LARGE] = { S("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
			  S(""), S("Request Header Fields Too Large\n") },
	[R_BAD_VERSION] = { S("HTTP/1.1 505 HTTP Version Not Supported\r\n"),
			    S(""), S("HTTP Version Not Supported\n") },
	/* RFC 9110 §15.5.9: sent with "close" */
	[R_TIMEOUT] = { S("HTTP/1.1 408 Request Timeout\r\n"), S(""),
			S("Request Timeout\n") },
};
#undef S

/* Fixed header fields, in the order they are sent. */
static const char hdr_server_date[] = "Server: evring\r\nDate: ";
static const char hdr_type_length[] =
    "\r\nContent-Type: text/plain\r\nContent-Length: ";
static const char hdr_close[] = "Connection: close\r\n";
static const char hdr_keep_alive[] = "Connection: keep-alive\r\n";

#define IMF_FIXDATE_LEN 29 /* "Wed, 25 Nov 2026 03:35:50 GMT" */

/* How a reply is sent (bits). */
#define RF_HEAD	      0x1 /* no body (RFC 9110 §9.3.2) */
#define RF_CLOSE      0x2 /* Connection: close, then the server closes */
#define RF_KEEP_ALIVE 0x4 /* Connection: keep-alive (to HTTP/1.0) */

static char *put(char *o, const void *s, size_t n)
{
	memcpy(o, s, n);
	return o + n;
}

static char *put2(char *o, int v)
{
	o[0] = (char)('0' + v / 10);
	o[1] = (char)('0' + v % 10);
	return o + 2;
}

/*
 * t as an IMF-fixdate (RFC 9110 §5.6.7), "Sun, 06 Nov 1994 08:49:37 GMT":
 * IMF_FIXDATE_LEN characters and a NUL at out. -EOVERFLOW for a year past
 * 9999, which the format cannot hold.
 */
static int imf_fixdate(char *out, time_t t)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed",
					 "Thu", "Fri", "Sat" };
	static const char months[12][4] = { "Jan", "Feb", "Mar", "Apr",
					    "May", "Jun", "Jul", "Aug",
					    "Sep", "Oct", "Nov", "Dec" };
	struct tm tm;
	char *o = out;
	int year;

	if (!gmtime_r(&t, &tm))
		return -EOVERFLOW;
	year = tm.tm_year + 1900;
	if (year < 0 || year > 9999)
		return -EOVERFLOW;
	o = put(o, days[tm.tm_wday], 3);
	o = put(o, ", ", 2);
	o = put2(o, tm.tm_mday);
	*o++ = ' ';
	o = put(o, months[tm.tm_mon], 3);
	*o++ = ' ';
	o = put2(put2(o, year / 100), year % 100);
	*o++ = ' ';
	o = put2(o, tm.tm_hour);
	*o++ = ':';
	o = put2(o, tm.tm_min);
	*o++ = ':';
	o = put2(o, tm.tm_sec);
	memcpy(o, " GMT", 5);
	return 0;
}

/*
 * The Date field value (RFC 9110 §6.6.1), always GMT. It changes once a
 * second, so each thread formats it at most once a second and every reply
 * of that second copies it.
 */
static const char *http_date(void)
{
	static __thread struct {
		time_t sec;
		char s[IMF_FIXDATE_LEN + 1];
	} cache;
	time_t now = time(NULL);

	if (cache.s[0] && cache.sec == now)
		return cache.s;
	if (imf_fixdate(cache.s, now) < 0 && !cache.s[0])
		imf_fixdate(cache.s, 0); /* a clock past 9999: any valid date */
	cache.sec = now;
	return cache.s;
}

static size_t digits(size_t v)
{
	size_t n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Bytes of reply r sent with flags rf. */
static size_t reply_len(const struct reply *r, unsigned rf)
{
	size_t n = r->line_len + sizeof(hdr_server_date) - 1 + IMF_FIXDATE_LEN +
		   r->extra_len + sizeof(hdr_type_length) - 1 +
		   digits(r->body_len) + 4;

	if (rf & RF_CLOSE)
		n += sizeof(hdr_close) - 1;
	else if (rf & RF_KEEP_ALIVE)
		n += sizeof(hdr_keep_alive) - 1;
	return (rf & RF_HEAD) ? n : n + r->body_len;
}

/*
 * Write reply r at o: exactly reply_len(r, rf) bytes, with date as the
 * value of the Date field. Date comes before the status-specific fields:
 * the order of fields with different names does not matter (RFC 9110
 * §5.3).
 */
static void reply_write(char *o, const struct reply *r, unsigned rf,
			const char *date)
{
	char num[20];
	size_t nd = digits(r->body_len);

	o = put(o, r->line, r->line_len);
	o = put(o, hdr_server_date, sizeof(hdr_server_date) - 1);
	o = put(o, date, IMF_FIXDATE_LEN);
	o = put(o, hdr_type_length, sizeof(hdr_type_length) - 1);
	for (size_t v = r->body_len, i = nd; i-- > 0; v /= 10)
		num[i] = (char)('0' + v % 10);
	o = put(o, num, nd);
	o = put(o, "\r\n", 2);
	o = put(o, r->extra, r->extra_len);
	if (rf & RF_CLOSE)
		o = put(o, hdr_close, sizeof(hdr_close) - 1);
	else if (rf & RF_KEEP_ALIVE)
		o = put(o, hdr_keep_alive, sizeof(hdr_keep_alive) - 1);
	o = put(o, "\r\n", 2);
	if (!(rf & RF_HEAD))
		put(o, r->body, r->body_len);
}

/*
 * The replies of one on_data call, gathered in buffers before they are
 * queued. mid is the size of the receive buffers: evr_buf_new() serves
 * sizes up to it from the loop's caches (architecture.md, Buffers), so a
 * long run of replies takes several cached buffers, which still leave in
 * one send, rather than one allocation sized to fit.
 */
struct http_out {
	struct evr_conn *c;
	struct evr_buf *b; /* replies not queued yet, or NULL */
	const char *date;  /* http_date(), read at the first reply */
	size_t mid;
	int err;    /* the first error: the connection is aborted */
	bool close; /* close once the replies are queued */
};

/* Queue the gathered replies and let go of the buffer. */
static void out_queue(struct http_out *o)
{
	int err;

	if (!o->b)
		return;
	if (!o->err && o->b->len) {
		err = evr_send(o->c, o->b);
		if (err < 0)
			o->err = err;
	}
	evr_buf_unref(o->b);
	o->b = NULL;
}

/*
 * Room for len more bytes of replies, in a new buffer of about hint bytes
 * (the replies still expected from this receive) when the current one is
 * full. NULL after an error, which is kept in o->err.
 */
static char *out_reserve(struct http_out *o, size_t len, size_t hint)
{
	size_t cap = hint < o->mid ? hint : o->mid;

	if (o->b && o->b->cap - o->b->len >= len)
		return o->b->data + o->b->len;
	out_queue(o);
	if (o->err)
		return NULL;
	o->b = evr_buf_new(evr_conn_loop(o->c), cap > len ? cap : len);
	if (!o->b) {
		o->err = -ENOMEM;
		return NULL;
	}
	return o->b->data;
}

/* Append reply r; about `more` replies like it are expected after it. */
static void out_reply(struct http_out *o, const struct reply *r, unsigned rf,
		      size_t more)
{
	size_t len = reply_len(r, rf);
	char *dst = out_reserve(o, len, len * (more + 1));

	if (!dst)
		return;
	if (!o->date)
		o->date = http_date();
	reply_write(dst, r, rf, o->date);
	o->b->len += (uint32_t)len;
	if (rf & RF_CLOSE)
		o->close = true;
}

/* Queue what is gathered, then close or abort as the replies decided. */
static void out_finish(struct http_out *o)
{
	out_queue(o);
	if (o->err)
		evr_abort(o->c, o->err);
	else if (o->close)
		evr_close(o->c);
}

/* ------------------------------------------------------------------ */
/* Configuration, and the log of refused requests                      */
/* ------------------------------------------------------------------ */

/* 10 s: a browser or a load balancer sends its head in one packet, a
 * mobile link may take a few round trips more; nginx allows 60 s, haproxy
 * recommends a few seconds. Each waiting head holds a buffer. */
#define HTTP_HEADER_TIMEOUT_MS 10000
#define HTTP_TIMEOUT_MAX_MS    (24u * 3600 * 1000)

struct http_conf {
	uint32_t header_timeout_ms; /* 0: no deadline */
};

static const struct http_conf http_conf_default = {
	.header_timeout_ms = HTTP_HEADER_TIMEOUT_MS,
};

static int http_conf_init(void *p)
{
	*(struct http_conf *)p = http_conf_default;
	return 0;
}

/* A duration as evringd writes them: "10" or "10s", "1500ms", "2m". */
static int parse_ms(const char *v, uint32_t *ms)
{
	unsigned long long n, mul = 1000;
	char *end;

	if (*v < '0' || *v > '9')
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (!strcmp(end, "ms"))
		mul = 1;
	else if (!strcmp(end, "m"))
		mul = 60000;
	else if (*end && strcmp(end, "s"))
		return -EINVAL;
	if (errno || n > HTTP_TIMEOUT_MAX_MS / mul)
		return -EINVAL;
	*ms = (uint32_t)(n * mul);
	return 0;
}

static int http_conf_set(void *p, const char *key, const char *value)
{
	struct http_conf *cf = p;

	if (!strcmp(key, "header_timeout"))
		return parse_ms(value, &cf->header_timeout_ms);
	return -ENOENT;
}

static const struct http_conf *conf_of(const struct evr_conn *c)
{
	const struct http_conf *cf = evr_conn_conf(c);

	return cf ? cf : &http_conf_default;
}

static __thread struct evr__refusals refusals;

#define log_refused(c, ...) evr__log_refused(&refusals, c, "http", __VA_ARGS__)

/* The words for a parser's error status; start: the request's bytes. */
static void log_error(struct evr_conn *c, int status, const char *start)
{
	switch (status) {
	case -431:
		log_refused(c,
			    "431: request head over %d bytes or %d fields; "
			    "closing",
			    EVR__HTTP_HEAD_MAX, EVR__HTTP_FIELDS_MAX);
		break;
	case -505:
		log_refused(c, "505: an HTTP major version other than 1; "
			       "closing");
		break;
	default:
		/* RFC 8446 §5.1: a TLS record starts with its type, 22 */
		log_refused(c, "400: malformed request%s; closing",
			    start[0] == 0x16 ? " (a TLS handshake on a "
					       "plaintext port?)"
					     : "");
	}
}

/* ------------------------------------------------------------------ */
/* The module                                                          */
/* ------------------------------------------------------------------ */

/* Per-connection state. */
struct http_conn {
	struct evr_conn *c;
	/* The start of a request that spans receives, or NULL; at most
	 * EVR__HTTP_HEAD_MAX bytes. */
	struct evr_buf *partial;
	/* Runs while partial exists: the head's deadline. */
	struct evr_timer head_timer;
	/* The server drains: close after the next reply. */
	bool draining;
};

static enum reply_id reply_of_error(int status)
{
	switch (status) {
	case -431:
		return R_TOO_LARGE;
	case -505:
		return R_BAD_VERSION;
	default:
		return R_BAD_REQUEST;
	}
}

/*
 * Whether the connection persists after a well-formed request (RFC 9112
 * §9.3): HTTP/1.1 unless "close" was sent (§9.6), HTTP/1.0 only with
 * "keep-alive". A body this module does not read (§6), or a drain, closes
 * it too. Returns RF_CLOSE, RF_KEEP_ALIVE (persist and say so to an
 * HTTP/1.0 client) or 0.
 */
static unsigned persistence(const struct http_conn *hc,
			    const struct evr__http_req *req)
{
	bool keep;

	if (req->flags & EVR__HTTP_CLOSE)
		keep = false;
	else if (req->minor == 0)
		keep = req->flags & EVR__HTTP_KEEP_ALIVE;
	else
		keep = true;
	if (!keep || (req->flags & EVR__HTTP_BODY) || hc->draining)
		return RF_CLOSE;
	return req->minor == 0 ? RF_KEEP_ALIVE : 0;
}

/*
 * Answer one request, whose bytes start at start: status is the parser's
 * result, the request's length or a negative status; more is how many
 * bytes of the receive follow it, to size the reply buffer.
 */
static void http_answer(struct http_conn *hc, struct http_out *o,
			const struct evr__http_req *req, int status,
			const char *start, size_t more)
{
	enum reply_id id;
	unsigned rf;

	if (status < 0) {
		id = reply_of_error(status);
		rf = RF_CLOSE;
		log_error(o->c, status, start);
	} else {
		if (req->method == EVR__HTTP_OTHER)
			id = R_NOT_ALLOWED;
		else if (req->path_len == 1 && req->path[0] == '/')
			id = R_OK;
		else
			id = R_NOT_FOUND;
		rf = persistence(hc, req);
	}
	if (req->method == EVR__HTTP_HEAD)
		rf |= RF_HEAD;
	out_reply(o, &replies[id], rf, status > 0 ? more / (size_t)status : 0);
}

/* The request under way is over: its bytes and its deadline go. */
static void partial_drop(struct http_conn *hc)
{
	evr_timer_stop(evr_conn_loop(hc->c), &hc->head_timer);
	evr_buf_unref(hc->partial);
	hc->partial = NULL;
}

/*
 * Keep the n bytes at p, the start of a request, for the next receive.
 * n < EVR__HTTP_HEAD_MAX: the parser answers -431 for a longer head. The
 * head's deadline starts: these are its first bytes.
 */
static void partial_keep(struct http_conn *hc, struct http_out *o,
			 const char *p, size_t n)
{
	uint32_t ms = conf_of(o->c)->header_timeout_ms;
	struct evr_buf *pb;

	pb = evr_buf_new(evr_conn_loop(o->c), EVR__HTTP_HEAD_MAX);
	if (!pb) {
		o->err = -ENOMEM;
		return;
	}
	memcpy(pb->data, p, n);
	pb->len = (uint32_t)n;
	hc->partial = pb;
	if (ms)
		evr_timer_start(evr_conn_loop(o->c), &hc->head_timer, ms);
}

/*
 * Append the n bytes at p up to and including their first LF (all of them
 * when there is none) to the kept request, within EVR__HTTP_HEAD_MAX.
 * Returns how many were appended.
 */
static size_t partial_append_line(struct evr_buf *pb, const char *p, size_t n)
{
	size_t room = EVR__HTTP_HEAD_MAX - pb->len;
	size_t k = n < room ? n : room;
	const char *lf = memchr(p, '\n', k);

	if (lf)
		k = (size_t)(lf - p) + 1;
	memcpy(pb->data + pb->len, p, k);
	pb->len += (uint32_t)k;
	return k;
}

/* Whether the kept bytes end with an empty line, which may end the head. */
static bool partial_ends_empty_line(const struct evr_buf *pb)
{
	const char *d = pb->data;
	uint32_t l = pb->len;

	return l >= 2 && d[l - 1] == '\n' &&
	       (d[l - 2] == '\n' ||
		(l >= 3 && d[l - 2] == '\r' && d[l - 3] == '\n'));
}

/*
 * Feed the n bytes at p to the request kept from earlier receives. Only
 * its own bytes are copied: a line at a time, parsing when an empty line
 * may have ended the head, when the buffer is full (-431) or when p runs
 * out. Returns how many bytes of p belonged to the request, so the rest
 * can be parsed in place: all n when it is still incomplete, or when it
 * ended in an error reply, which stops the parsing anyway.
 */
static size_t partial_feed(struct http_conn *hc, struct http_out *o,
			   const char *p, size_t n)
{
	struct evr_buf *pb = hc->partial;
	size_t old = pb->len, used = 0;
	struct evr__http_req req;
	int r = 0;

	for (;;) {
		used += partial_append_line(pb, p + used, n - used);
		if (used < n && pb->len < EVR__HTTP_HEAD_MAX &&
		    !partial_ends_empty_line(pb))
			continue;
		r = evr__http_parse(pb->data, pb->len, &req);
		if (r || used == n)
			break;
	}
	if (r == 0)
		return n;
	/* r > old: the kept bytes held no complete request */
	used = r > 0 ? (size_t)r - old : n;
	http_answer(hc, o, &req, r, pb->data, n - used);
	partial_drop(hc);
	return used;
}

/*
 * Bytes arrived: answer every request they complete, in order, into one
 * reply buffer queued at the end; keep the start of an incomplete one.
 * After a reply that closes, the rest of the input is discarded.
 */
static void http_data(struct evr_conn *c, struct evr_buf *b)
{
	struct http_conn *hc = evr_conn_state(c);
	struct http_out o = { .c = c, .mid = b->cap };
	const char *p = b->data;
	size_t n = b->len, used;
	struct evr__http_req req;
	int r;

	if (hc->partial) {
		used = partial_feed(hc, &o, p, n);
		p += used;
		n -= used;
	}
	while (n && !o.close && !o.err) {
		r = evr__http_parse(p, n, &req);
		if (r == 0) {
			partial_keep(hc, &o, p, n);
			break;
		}
		used = r > 0 ? (size_t)r : n;
		http_answer(hc, &o, &req, r, p, n - used);
		p += used;
		n -= used;
	}
	out_finish(&o);
}

/*
 * The head did not arrive whole within header_timeout of its first byte:
 * 408 with Connection: close (RFC 9110 §15.5.9), then close.
 */
static void http_head_expired(struct evr_timer *t)
{
	struct http_conn *hc =
	    EVR_CONTAINER_OF(t, struct http_conn, head_timer);
	struct http_out o = { .c = hc->c, .mid = EVR__HTTP_HEAD_MAX };

	log_refused(hc->c,
		    "408: request head not complete within %u ms (%u bytes "
		    "so far); closing",
		    conf_of(hc->c)->header_timeout_ms, hc->partial->len);
	partial_drop(hc);
	out_reply(&o, &replies[R_TIMEOUT], RF_CLOSE, 0);
	out_finish(&o);
}

static int http_accept(struct evr_conn *c)
{
	struct http_conn *hc = evr_conn_state(c);

	hc->c = c;
	evr_timer_init(&hc->head_timer, http_head_expired);
	return 0;
}

/*
 * Drain (RFC 9112 §9.6 allows closing an idle persistent connection at
 * any time): an idle connection closes now; one with a request under way
 * answers it with Connection: close.
 */
static void http_drain(struct evr_conn *c)
{
	struct http_conn *hc = evr_conn_state(c);

	if (hc->partial)
		hc->draining = true;
	else
		evr_close(c);
}

static void http_close(struct evr_conn *c, int err)
{
	struct http_conn *hc = evr_conn_state(c);

	(void)err;
	if (hc->partial)
		partial_drop(hc);
}

static const struct evr_proto_opt http_opts[] = {
	{ "header_timeout",
	  "DURATION: a request head must arrive whole within this time of "
	  "its first byte, else 408 and close (default 10s; 0: no limit)" },
	{ NULL, NULL },
};

const struct evr_proto evr_proto_http = {
	.name = "http",
	.summary = "HTTP/1.1 plaintext: GET / answers \"Hello, World!\"",
	.opts = http_opts,
	.state_size = sizeof(struct http_conn),
	.conf_size = sizeof(struct http_conf),
	.conf_init = http_conf_init,
	.conf_set = http_conf_set,
	.on_accept = http_accept,
	.on_data = http_data,
	.on_drain = http_drain,
	.on_close = http_close,
};
