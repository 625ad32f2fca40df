/* SPDX-License-Identifier: MIT */
/*
 * results.c - evring-bench's report; see bench.h.
 *
 * Layout: the server from /proc (CPU time, memory), the results of a run
 * computed once, then the two ways of printing them: a table for people,
 * one JSON object for scripts (bench/run.sh).
 */
#include "bench.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

/* ---- the server, from /proc ---- */

uint64_t proc_cpu_ns(int pid)
{
	char path[64];
	struct dirent *de;
	uint64_t total = 0;
	DIR *d;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[320];
		unsigned long long ns;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", pid,
			 de->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &ns) == 1)
			total += ns;
		fclose(f);
	}
	closedir(d);
	return total;
}

long proc_rss_kib(int pid)
{
	char path[64], line[128];
	long kib = -1;
	FILE *f;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static uint64_t rusage_us(const struct rusage *ru)
{
	return (uint64_t)(ru->ru_utime.tv_sec + ru->ru_stime.tv_sec) *
		   1000000u +
	       (uint64_t)(ru->ru_utime.tv_usec + ru->ru_stime.tv_usec);
}

/* ---- results ---- */

struct result {
	double secs, ops_s, mb_s, cli_per, srv_per; /* srv_per < 0: none */
	uint64_t errs;
	long rss1, held;       /* idle mode */
	double bytes_per_conn; /* idle mode, < 0: none */
	bool rate_limited, ok;
	uint64_t recv_nobufs;
};

static void result_get(struct result *r)
{
	struct rusage ru;
	struct evr_stats st;
	uint64_t cli_us, srv_ns;

	memset(r, 0, sizeof(*r));
	r->secs = (double)(R.t_end - R.t_measure) / 1e9;
	r->ops_s = r->secs > 0 ? (double)R.ops / r->secs : 0;
	r->mb_s = r->secs > 0 ? (double)R.bytes / r->secs / 1e6 : 0;
	getrusage(RUSAGE_SELF, &ru);
	cli_us = rusage_us(&ru) - rusage_us(&R.ru0);
	srv_ns = o.server_pid ? proc_cpu_ns(o.server_pid) - R.srv_cpu0 : 0;
	r->srv_per = -1;
	if (R.ops) {
		r->cli_per = (double)cli_us / (double)R.ops;
		if (o.server_pid)
			r->srv_per = (double)srv_ns / 1e3 / (double)R.ops;
	}
	for (int i = 0; i < E__COUNT; i++)
		r->errs += R.errors[i];
	r->held = o.mode == M_IDLE ? R.nconns : 0;
	r->rss1 = proc_rss_kib(o.server_pid);
	r->bytes_per_conn = -1;
	if (r->held && r->rss1 >= 0 && R.srv_rss0 >= 0)
		r->bytes_per_conn =
		    (double)(r->rss1 - R.srv_rss0) * 1024 / (double)r->held;
	r->rate_limited = load_udp_rate_limited(r->ops_s);
	r->ok = o.mode == M_IDLE ? r->held > 0 : R.ops > 0;
	evr_loop_stats(R.loop, &st);
	r->recv_nobufs = st.recv_nobufs;
}

static void report_json(const struct result *r)
{
	printf("{\"mode\":\"%s\",\"target\":\"%s\",\"addr\":\"%s\","
	       "\"backend\":\"%s\",\"conns\":%u,\"size\":%u,\"depth\":%u,"
	       "\"rate\":%.0f,\"secs\":%.3f,\"ops\":%llu,\"ops_per_s\":%.1f,"
	       "\"mb_per_s\":%.3f,",
	       mode_names[o.mode], o.target, R.dst_str,
	       evr_loop_backend(R.loop), o.conns, o.size, o.depth, o.rate,
	       r->secs, (unsigned long long)R.ops, r->ops_s, r->mb_s);
	printf("\"lat_us\":{\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,"
	       "\"p999\":%.1f,\"max\":%.1f,\"mean\":%.1f,\"stddev\":%.1f},",
	       hist_quantile(&R.hist, 0.5) / 1e3,
	       hist_quantile(&R.hist, 0.9) / 1e3,
	       hist_quantile(&R.hist, 0.99) / 1e3,
	       hist_quantile(&R.hist, 0.999) / 1e3, R.hist.max / 1e3,
	       hist_mean(&R.hist) / 1e3, hist_stddev(&R.hist) / 1e3);
	printf("\"client_cpu_us_per_op\":%.3f,", r->cli_per);
	if (r->srv_per >= 0)
		printf("\"server_cpu_us_per_op\":%.3f,", r->srv_per);
	else
		printf("\"server_cpu_us_per_op\":null,");
	if (o.mode == M_IDLE) {
		printf("\"held\":%ld,\"server_rss_kib_before\":%ld,"
		       "\"server_rss_kib\":%ld,",
		       r->held, R.srv_rss0, r->rss1);
		if (r->bytes_per_conn >= 0)
			printf("\"server_bytes_per_conn\":%.0f,",
			       r->bytes_per_conn);
		else
			printf("\"server_bytes_per_conn\":null,");
	}
	if (o.mode == M_UDP)
		printf("\"udp_rate_limited\":%s,",
		       r->rate_limited ? "true" : "false");
	printf("\"client_recv_nobufs\":%llu,\"connected\":%u,\"ok\":%s,"
	       "\"errors\":{",
	       (unsigned long long)r->recv_nobufs, R.connected,
	       r->ok ? "true" : "false");
	for (int i = 0; i < E__COUNT; i++)
		printf("%s\"%s\":%llu", i ? "," : "", err_names[i],
		       (unsigned long long)R.errors[i]);
	printf("}}\n");
}

static void report_load(void)
{
	switch (o.mode) {
	case M_ECHO:
		printf("load        %u connections, %u-byte messages, %u in "
		       "flight on each\n",
		       o.conns, o.size, o.depth);
		break;
	case M_RATE:
		printf("load        %.0f messages/s of %u bytes over %u "
		       "connections (open loop)\n",
		       o.rate, o.size, o.conns);
		break;
	case M_CONNECT:
		if (o.close_after)
			printf(
			    "load        %u connections at a time: connect,%s "
			    "read %llu bytes, close\n",
			    o.conns, o.request ? " request," : "",
			    (unsigned long long)o.close_after);
		else
			printf(
			    "load        %u connections at a time: connect,%s "
			    "read to EOF, close\n",
			    o.conns, o.request ? " request," : "");
		break;
	case M_UDP:
		printf("load        %u datagrams of %u bytes in flight\n",
		       o.conns, o.size);
		break;
	case M_IDLE:
		printf("load        %u idle connections\n", o.conns);
		break;
	}
}

static void report_idle(const struct result *r)
{
	printf("held        %ld of %u connections at the end\n", r->held,
	       o.conns);
	if (r->bytes_per_conn >= 0)
		printf("server RSS  %ld KiB before, %ld KiB holding them: "
		       "%.0f bytes per connection (pid %d)\n",
		       R.srv_rss0, r->rss1, r->bytes_per_conn, o.server_pid);
	else
		printf("server RSS  unknown: pass --server-pid PID\n");
}

static void report_text(const struct result *r)
{
	static const double qs[] = { 0.5, 0.9, 0.99, 0.999 };

	printf("target      %s (%s; %s client)\n", o.target, R.dst_str,
	       evr_loop_backend(R.loop));
	report_load();
	printf("measured    %.2f s after %.2f s warm-up\n", r->secs, o.warmup);
	if (o.mode == M_IDLE) {
		report_idle(r);
	} else {
		printf("throughput  %.1f ops/s, %.2f MB/s (%llu ops)\n",
		       r->ops_s, r->mb_s, (unsigned long long)R.ops);
		printf("latency     ");
		for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++)
			printf("p%g %.1f us  ", qs[i] * 100,
			       hist_quantile(&R.hist, qs[i]) / 1e3);
		printf("max %.1f us\n", R.hist.max / 1e3);
		printf("            mean %.1f us  sd %.1f us\n",
		       hist_mean(&R.hist) / 1e3, hist_stddev(&R.hist) / 1e3);
		printf("client CPU  %.3f us/op\n", r->cli_per);
		if (r->srv_per >= 0)
			printf("server CPU  %.3f us/op (pid %d)\n", r->srv_per,
			       o.server_pid);
	}
	printf("errors      ");
	if (!r->errs)
		printf("none");
	for (int i = 0; i < E__COUNT; i++)
		if (R.errors[i])
			printf("%s %llu  ", err_names[i],
			       (unsigned long long)R.errors[i]);
	printf("\n");
	if (r->rate_limited)
		printf("note        answers came at a steady %.0f/s while %llu "
		       "went unanswered:\n"
		       "            that looks like the server's per-source "
		       "rate limit, not its\n"
		       "            capacity (evringd: --udp-rate, default "
		       "100/s; run it with\n"
		       "            --udp-rate off to measure it)\n",
		       r->ops_s, (unsigned long long)R.errors[E_LOST]);
}

bool results_report(void)
{
	struct result r;

	result_get(&r);
	if (o.json)
		report_json(&r);
	else
		report_text(&r);
	fflush(stdout);
	return r.ok;
}
