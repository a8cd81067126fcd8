/*
 * bench_core.c - speed of the foundation's hot paths, printed as JSON lines.
 *
 *   prefix-merge: N random IPv4 prefixes into a pfxset, merged into the fewest prefixes
 *                 (what the route and allowlist modules do with exclusions and allowlists)
 *   public-v4:    complement of the RFC 6890 reserved set, as the route module computes it
 *   conf-parse:   an egress.conf with U uplinks, parsed and validated
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
	free(text);
	free(in);
	return r == 0 ? 0 : 1;
}
