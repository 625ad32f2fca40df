/* SPDX-License-Identifier: MIT */
/*
 * addr.c - socket addresses to and from text.
 *
 * Only numeric addresses: name resolution belongs to the caller (evringd
 * resolves service names through /etc/services, never host names).
 */
#include "internal.h"

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *evr_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		char scope[IF_NAMESIZE + 1] = "";

		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		if (in6->sin6_scope_id) {
			scope[0] = '%';
			if (!if_indextoname(in6->sin6_scope_id, scope + 1))
				snprintf(scope, sizeof(scope), "%%%u",
					 in6->sin6_scope_id);
		}
		snprintf(buf, len, "[%s%s]:%u", host, scope,
			 ntohs(in6->sin6_port));
	} else {
		snprintf(buf, len, "(family %d)", sa->sa_family);
	}
	return buf;
}

int evr_addr_parse(const char *host, uint16_t port, struct sockaddr_storage *ss,
		   socklen_t *len)
{
	char tmp[INET6_ADDRSTRLEN + IF_NAMESIZE + 4];
	size_t n = strlen(host);

	memset(ss, 0, sizeof(*ss));
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
		if (n - 2 >= sizeof(tmp))
			return -EINVAL;
		memcpy(tmp, host + 1, n - 2);
		tmp[n - 2] = '\0';
		host = tmp;
	}

	struct sockaddr_in *in = (void *)ss;
	if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		*len = sizeof(*in);
		return 0;
	}

	struct sockaddr_in6 *in6 = (void *)ss;
	char addr6[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *pct = strchr(host, '%');
	if (strlen(host) >= sizeof(addr6))
		return -EINVAL;
	strcpy(addr6, host);
	if (pct) {
		addr6[pct - host] = '\0';
		in6->sin6_scope_id = if_nametoindex(pct + 1);
		if (!in6->sin6_scope_id) {
			char *end;
			unsigned long id = strtoul(pct + 1, &end, 10);

			if (*end || !pct[1])
				return -EINVAL;
			in6->sin6_scope_id = (uint32_t)id;
		}
	}
	if (inet_pton(AF_INET6, addr6, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	return -EINVAL;
}
