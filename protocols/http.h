/* SPDX-License-Identifier: MIT */
/*
 * http.h - the HTTP/1.1 request parser of the http module (protocols/http.c).
 *
 * evr__http_parse() is a pure function: it reads bytes, fills a struct and
 * returns a number; it allocates nothing, keeps no state between calls and
 * never reads past p + n, so a fuzz target or a unit test can drive it with
 * any input. The module calls it on the received buffer itself (requests
 * that lie inside one receive are parsed in place) or on its per-connection
 * copy of a request that spans receives.
 *
 * Layout: limits, the parsed request, the parser.
 */
#ifndef EVRING_PROTOCOLS_HTTP_H
#define EVRING_PROTOCOLS_HTTP_H

#include <stddef.h>
#include <stdint.h>

/* Request line, header fields and the empty line together, in bytes. */
#define EVR__HTTP_HEAD_MAX 8192
/* Header fields per request. */
#define EVR__HTTP_FIELDS_MAX 100

/* Methods the module tells apart; every other token is OTHER. */
enum evr__http_method {
	EVR__HTTP_OTHER,
	EVR__HTTP_GET,
	EVR__HTTP_HEAD,
};

/* Bits of evr__http_req.flags. */
#define EVR__HTTP_CLOSE	     0x1 /* Connection: close */
#define EVR__HTTP_KEEP_ALIVE 0x2 /* Connection: keep-alive */
#define EVR__HTTP_BODY	     0x4 /* Content-Length > 0 or Transfer-Encoding */

/*
 * A parsed request head. The pointers point into the bytes given to the
 * parser and live as long as they do. method and version are filled in as
 * soon as they are read, so they are meaningful in part even when the
 * parser returns an error found later in the request.
 */
struct evr__http_req {
	const char *target; /* request-target as sent */
	const char *path;   /* its path: no query, "/" for an empty one */
	uint16_t target_len;
	uint16_t path_len;
	uint8_t method;	 /* enum evr__http_method */
	uint8_t minor;	 /* HTTP/1.minor: 0, or 1 for 1.1 to 1.9 */
	uint8_t flags;	 /* EVR__HTTP_* */
	uint8_t nfields; /* header fields seen */
};

/*
 * Parse the request head at the start of p[0..n) (RFC 9112 §2-§7, as far as
 * a server that reads no bodies needs).
 *
 * Returns the length of the head, empty line included, once it is complete
 * (the next request starts there); 0 when the head does not end within the
 * n bytes and none of its complete lines is invalid, nor the start of an
 * unfinished request line (more are needed); or a negative HTTP status for
 * the response that ends the connection:
 *   -400  malformed request line or header field, missing or repeated Host
 *         in HTTP/1.1, invalid Content-Length; a request line is -400 from
 *         its first byte that no ending can make valid (a TLS handshake:
 *         at once);
 *   -431  head longer than EVR__HTTP_HEAD_MAX, more than EVR__HTTP_FIELDS_MAX
 *         fields;
 *   -505  a well-formed version of a major version other than 1 (RFC 9110
 *         §2.5: HTTP/1.2 to HTTP/1.9 are parsed as HTTP/1.1, minor 1).
 * Calling it again with more bytes of the same request is consistent: a
 * result of 0 for n bytes means the request does not end within them.
 */
int evr__http_parse(const char *p, size_t n, struct evr__http_req *req);

#endif /* EVRING_PROTOCOLS_HTTP_H */
