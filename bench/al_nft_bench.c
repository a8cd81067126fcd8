/*
 * al_nft_bench - the allowlist's table (src/allowlist/al_nft.c) at scale, in a private
 * network namespace of its own (unshare(CLONE_NEWNET): root, nothing of the host touched).
 *
 *     al_nft_bench N
 *
 * N items (IPv4 /32 in 11.0.0.0/8, every 16th a /28 prefix of 12.0.0.0/8, every 64th an
 * IPv6 /128,
 * every 32nd limited to tcp/443): the seconds to start the table with all of them in one
 * transaction (with a counter per element), to apply the same list again (nothing sent),
 * to apply a delta of 1 and of 1000 changes; one JSON line.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "al_nft.h"
#include "nft.h"
#include "util.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct range port443 = {443, 443};

static void item_make(struct al_item *it, size_t i)
{
	char a[64];

	memset(it, 0, sizeof(*it));
	snprintf(it->key, sizeof(it->key), "%08zu", i);
	it->kind = AL_ITEM_DST;
	if (i % 64 == 63)
		snprintf(a, sizeof(a), "2a00:1::%zx:%zx/128", i >> 16, i & 0xffff);
	else if (i % 16 == 15)
		snprintf(a, sizeof(a), "12.%zu.%zu.%zu/28", (i >> 16) & 255, (i >> 8) & 255,
			(i & 255) & ~15u);
	else
		snprintf(a, sizeof(a), "11.%zu.%zu.%zu/32", (i >> 16) & 255, (i >> 8) & 255,
			i & 255);
	if (cidr_parse(a, CIDR_HOSTBITS, &it->dst) < 0)
		fatalx("bad address %s", a);
	snprintf(it->label, sizeof(it->label), "%s", a);
	if (i % 32 == 7) {
		it->proto = AL_PROTO_TCP;
		it->ports = (struct range_list){.v = &port443, .n = 1};
	}
}

static void check(int r, char *err, const char *what)
{
	if (r < 0)
		fatalx("%s: %s", what, err ? err : strerror(-r));
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	struct al_item *items = xcalloc(n + 1000, sizeof(*items));
	struct al_nft_conf c = {0};
	struct cidr client;
	struct al_nft *t;
	struct nft *nft;
	size_t changed, n1, n2;
	double t0, start_s, again_s, d1_s, d1000_s;
	char *err = NULL;

	if (unshare(CLONE_NEWNET) < 0)
		fatal("unshare(CLONE_NEWNET) (run as root)");
	nft = nft_new();
	if (!nft)
		fatalx("nft_new");
	cidr_parse("10.1.0.0/16", 0, &client);
	c.clients = (struct cidr_list){.v = &client, .n = 1};
	c.nat = true;
	for (size_t i = 0; i < n; i++)
		item_make(&items[i], i);
	t = al_nft_new(nft);
	t0 = now_s();
	check(al_nft_start(t, &c, items, n, &err), err, "start");
	start_s = now_s() - t0;
	n1 = al_nft_count(t);
	t0 = now_s();
	check(al_nft_apply(t, items, n, &changed, &err), err, "again");
	again_s = now_s() - t0;
	if (changed)
		fatalx("the same list changed %zu elements", changed);
	/* one more item */
	item_make(&items[n], n + 200000);
	t0 = now_s();
	check(al_nft_apply(t, items, n + 1, &changed, &err), err, "delta of 1");
	d1_s = now_s() - t0;
	/* 500 items go, 500 come */
	for (size_t i = 0; i < 500; i++)
		item_make(&items[i], n + 300000 + i);
	qsort(items, n + 1, sizeof(*items), (int (*)(const void *, const void *))strcmp);
	t0 = now_s();
	check(al_nft_apply(t, items, n + 1, &changed, &err), err, "delta of 1000");
	d1000_s = now_s() - t0;
	n2 = al_nft_count(t);
	printf("{\"bench\": \"allowlist-table\", \"items\": %zu, \"elements\": %zu, "
	       "\"start_s\": %.4f, \"same_again_s\": %.4f, \"delta1_s\": %.4f, "
	       "\"delta1000_s\": %.4f, \"delta1000_changed\": %zu, \"elements_after\": %zu}\n",
		n, n1, start_s, again_s, d1_s, d1000_s, changed, n2);
	al_nft_remove(t, NULL);
	al_nft_free(t);
	nft_free(nft);
	free(items);
	return 0;
}
