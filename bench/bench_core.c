/*
 * bench_core.c - speed of the foundation's hot paths, printed as JSON lines.
 *
 *   prefix-merge: N random IPv4 prefixes into a pfxset, merged into the fewest prefixes
 *                 (what the route and allowlist modules do with exclusions and allowlists)
 *   public-v4:    complement of the RFC 6890 reserved set, as the route module computes it
 *   conf-parse:   an egress.conf with U uplinks, parsed and validated
 *   dispatch-pick: the proxy's choice of uplink for a client, with one per-client rule and
 *                 with the most (DISPATCH_MAX_RULES): the rules' lookup should cost the same
 *
 * Usage: bench_core [N] [U] [PREFIX_FILE_OUT]; the prefixes are written to
 * PREFIX_FILE_OUT so bench/run.py can give the same input to a peer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cidr.h"
#include "conf_keys.h"
#include "dispatch.h"
#include "modules.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)rng_state;
}

static volatile int g_sink; /* keeps the compiler from dropping the picks */

/* Nanoseconds per dispatch_pick over 2 uplinks with n_rules /32 client rules (every other
 * address of 10.0.0.0/15), clients walking that range. */
static double dispatch_pick_ns(uint32_t n_rules)
{
	const struct dispatch_uplink up[] = {
		{ .name = "u0", .weight = 1, .usable = true },
		{ .name = "u1", .weight = 1, .usable = true },
	};
	const uint32_t picks = 4000000;
	struct dispatch *d = dispatch_new();
	double t0;

	if (dispatch_set_uplinks(d, up, 2) < 0)
		abort();
	for (uint32_t i = 0; i < n_rules; i++) {
		struct cidr r = { .addr = { .family = AF_INET }, .plen = 32 };

		r.addr.v4.s_addr = htonl(0x0a000000u + i * 2);
		if (dispatch_add_rule(d, &r, (int[]){ 0, 1 }, 2, NULL) < 0)
			abort();
	}
	t0 = now_s();
	for (uint32_t i = 0; i < picks; i++) {
		struct addr a = { .family = AF_INET };

		a.v4.s_addr = htonl(0x0a000000u + (i % (2 * DISPATCH_MAX_RULES)));
		g_sink += dispatch_pick(d, &a, 0, -1);
	}
	t0 = (now_s() - t0) * 1e9 / picks;
	dispatch_free(d);
	return t0;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	size_t uplinks = argc > 2 ? strtoul(argv[2], NULL, 10) : 500;
	FILE *out = argc > 3 ? fopen(argv[3], "w") : NULL;
	struct cidr *in = calloc(n, sizeof(*in));
	struct cidr *merged = NULL;
	size_t n_merged = 0;
	char buf[CIDR_STRLEN];

	for (size_t i = 0; i < n; i++) {
		in[i].addr.family = AF_INET;
		in[i].plen = (uint8_t)(16 + rng() % 17);
		uint32_t a = rng() & (in[i].plen ? ~0u << (32 - in[i].plen) : 0);
		in[i].addr.v4.s_addr = htonl(a);
		if (out)
			fprintf(out, "%s\n", cidr_str(&in[i], buf, sizeof(buf)));
	}
	if (out)
		fclose(out);

	double t0 = now_s();
	struct pfxset s;
	pfxset_init(&s);
	for (size_t i = 0; i < n; i++)
		pfxset_add(&s, &in[i]);
	pfxset_to_cidrs(&s, AF_INET, &merged, &n_merged);
	double t1 = now_s();
	printf("{\"bench\": \"prefix-merge\", \"prefixes\": %zu, \"merged\": %zu, \"seconds\": %.6f}\n",
		n, n_merged, t1 - t0);
	free(merged);
	pfxset_clear(&s);

	const int rounds = 1000;
	size_t n_public = 0;
	t0 = now_s();
	for (int i = 0; i < rounds; i++) {
		pfxset_init(&s);
		pfxset_add_reserved(&s, AF_INET);
		pfxset_complement(&s, AF_INET);
		n_public = pfxset_count_cidrs(&s, AF_INET);
		pfxset_clear(&s);
	}
	t1 = now_s();
	printf("{\"bench\": \"public-v4\", \"rounds\": %d, \"prefixes\": %zu, \"seconds_each\": %.9f}\n",
		rounds, n_public, (t1 - t0) / rounds);

	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	fprintf(f, "[global]\nlog_level = info\n");
	for (size_t i = 0; i < uplinks; i++)
		fprintf(f, "[uplink u%zu]\ninterface = eth%zu\ngateway = 10.%zu.%zu.1\nweight = %zu\n",
			i, i % 1000, (i / 250) % 250, i % 250, 1 + i % 200);
	fclose(f);
	struct conf_errors errs = {0};
	t0 = now_s();
	struct conf *c = egress_conf_new();
	int r = conf_load_string(c, "bench.conf", text, &errs);
	if (r == 0)
		r = conf_validate(c, &errs);
	t1 = now_s();
	printf("{\"bench\": \"conf-parse\", \"uplinks\": %zu, \"ok\": %s, \"seconds\": %.6f}\n",
		uplinks, r == 0 ? "true" : "false", t1 - t0);
	conf_free(c);
	conf_errors_clear(&errs);

	printf("{\"bench\": \"dispatch-pick\", \"rules\": [1, %d], \"ns\": [%.1f, %.1f]}\n",
		DISPATCH_MAX_RULES, dispatch_pick_ns(1), dispatch_pick_ns(DISPATCH_MAX_RULES));
	free(text);
	free(in);
	return r == 0 ? 0 : 1;
}
