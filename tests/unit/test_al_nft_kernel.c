/*
 * test_al_nft_kernel.c - the allowlist's table (src/allowlist/al_nft.c) in the real kernel.
 *
 * The group setup moves the process into a private network namespace (unshare(CLONE_NEWNET))
 * and brings lo up; nothing runs before the unshare() succeeded.  Each test starts the table
 * from items built here and reads back what the kernel holds: elements of both families,
 * prefixes inside others left out and put back when the outer one goes, limited entries as
 * concatenations, the same items twice sending nothing, learned addresses with their
 * timeouts and their removal with their name, a reconfiguration that keeps the elements.
 * Traffic through the table is the lab's (tests/lab/test_allowlist.py).
 */
#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "al_nft.h"
#include "kernel_test.h"
#include "nft.h"

static struct nft *g_nft;
static struct al_nft *g_al;

/* ---- items ---------------------------------------------------------------------------- */

#define MAX_ITEMS 16
static struct al_item g_items[MAX_ITEMS];
static size_t g_n;
static struct range g_ports[] = {{443, 443}, {8000, 8100}};
static struct cidr g_src[2];

static struct al_item *item_dst(const char *key, const char *dst)
{
	struct al_item *it = &g_items[g_n++];

	memset(it, 0, sizeof(*it));
	snprintf(it->key, sizeof(it->key), "%s", key);
	snprintf(it->label, sizeof(it->label), "%s", dst);
	it->kind = AL_ITEM_DST;
	assert_int_equal(cidr_parse(dst, CIDR_BARE, &it->dst), 0);
	return it;
}

static struct al_item *item_name(const char *key, const char *name)
{
	struct al_item *it = &g_items[g_n++];

	memset(it, 0, sizeof(*it));
	snprintf(it->key, sizeof(it->key), "%s", key);
	snprintf(it->label, sizeof(it->label), "%s", name);
	snprintf(it->name, sizeof(it->name), "%s", name);
	it->kind = AL_ITEM_NAME;
	return it;
}

static int item_cmp_cb(const void *a, const void *b)
{
	return strcmp(((const struct al_item *)a)->key, ((const struct al_item *)b)->key);
}

static void items_sort(void)
{
	qsort(g_items, g_n, sizeof(*g_items), item_cmp_cb);
}

static void item_drop(const char *key)
{
	for (size_t i = 0; i < g_n; i++)
		if (!strcmp(g_items[i].key, key)) {
			memmove(&g_items[i], &g_items[i + 1], (g_n - i - 1) * sizeof(*g_items));
			g_n--;
			return;
		}
	fail_msg("no item %s", key);
}

static const struct al_item *item_find(const char *key)
{
	for (size_t i = 0; i < g_n; i++)
		if (!strcmp(g_items[i].key, key))
			return &g_items[i];
	return NULL;
}

static struct al_nft_conf g_conf;
static struct cidr g_clients[2];

static void conf_init(bool nat)
{
	assert_int_equal(cidr_parse("10.1.0.0/16", 0, &g_clients[0]), 0);
	assert_int_equal(cidr_parse("fd00:1::/64", 0, &g_clients[1]), 0);
	g_conf = (struct al_nft_conf){.clients = {.v = g_clients, .n = 2}, .nat = nat};
}

/* The sample list: hosts and prefixes of both families, a prefix inside another, a limited
 * entry (tcp 443 and 8000-8100 from two sources, one of each family), names. */
static void items_sample(void)
{
	struct al_item *lim;

	g_n = 0;
	item_dst("1", "203.0.113.7");
	item_dst("2", "198.51.100.0/24");
	item_dst("3", "198.51.100.128/25"); /* inside "2": left out */
	item_dst("4", "2001:db8::7");
	lim = item_dst("5", "192.0.2.0/28");
	lim->proto = AL_PROTO_TCP;
	lim->ports = (struct range_list){.v = g_ports, .n = 2};
	assert_int_equal(cidr_parse("10.1.2.0/24", 0, &g_src[0]), 0);
	assert_int_equal(cidr_parse("fd00:1::/64", 0, &g_src[1]), 0);
	lim->sources = (struct cidr_list){.v = g_src, .n = 2};
	item_name("6", "example.com");
	item_name("7", "*.example.net");
	items_sort();
}

/* ---- helpers -------------------------------------------------------------------------- */

static char *set_listing(const char *set)
{
	json_t *root = NULL;
	char *s;

	assert_int_equal(nft_set_list_json(g_nft, AL_NFT_FAMILY, AL_NFT_TABLE, set, &root), 0);
	s = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return s;
}

static bool set_has(const char *set, const char *needle)
{
	char *s = set_listing(set);
	bool r = strstr(s, needle) != NULL;

	free(s);
	return r;
}

struct key_find {
	const char *dst;
	char key[AL_KEY_MAX];
	int n;
};

static void key_cb(const char *key, const char *dst, uint64_t packets, uint64_t bytes,
	void *arg)
{
	struct key_find *k = arg;

	(void)packets;
	(void)bytes;
	if (strcmp(dst, k->dst))
		return;
	if (k->n++ && strcmp(k->key, key))
		snprintf(k->key, sizeof(k->key), "?"); /* elements of dst with different keys */
	else
		snprintf(k->key, sizeof(k->key), "%s", key);
}

/* The key al_nft_counters() gives the elements of destination dst (as the counters print
 * it); "" for none or no key, "?" if they disagree.  Static buffer. */
static const char *key_of(const char *dst)
{
	static struct key_find k;

	k = (struct key_find){.dst = dst};
	assert_int_equal(al_nft_counters(g_al, key_cb, NULL, &k), 0);
	return k.key;
}

static void start(void)
{
	char *err = NULL;
	int r = al_nft_start(g_al, &g_conf, g_items, g_n, &err);

	if (r)
		fail_msg("al_nft_start: %d: %s", r, err ? err : "");
}

static size_t apply(void)
{
	char *err = NULL;
	size_t changed = 99;
	int r = al_nft_apply(g_al, g_items, g_n, &changed, &err);

	if (r)
		fail_msg("al_nft_apply: %d: %s", r, err ? err : "");
	assert_null(err);
	return changed;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_start(void **state)
{
	(void)state;
	conf_init(true);
	items_sample();
	start();
	assert_true(set_has("dst4", "\"203.0.113.7\""));
	assert_true(set_has("net4", "\"198.51.100.0\""));
	assert_false(set_has("net4", "198.51.100.128")); /* inside 198.51.100.0/24 */
	assert_true(set_has("dst6", "\"2001:db8::7\""));
	/* keys come from the elements kept, not from comments (they cost a third of a large
	 * transaction) */
	assert_false(set_has("dst4", "comment"));
	assert_false(set_has("lim4", "comment"));
	assert_string_equal(key_of("203.0.113.7"), "1");
	assert_string_equal(key_of("198.51.100.0/24"), "2");
	assert_string_equal(key_of("2001:db8::7"), "4");
	assert_string_equal(key_of("192.0.2.0/28"), "5");
	/* 2 ports x 1 source of the family, tcp only */
	assert_true(set_has("lim4", "\"10.1.2.0\""));
	assert_true(set_has("lim4", "8100"));
	assert_false(set_has("lim4", "fd00")); /* the IPv6 source: not for an IPv4 destination */
	assert_false(set_has("lim6", "fd00"));
	assert_false(set_has("net4", "192.0.2.0"));
	assert_true(set_has("clients4", "10.1.0.0"));
	assert_true(set_has("clients6", "fd00:1::"));
	/* 1 (dst4) + 1 (net4) + 1 (dst6) + 2 (lim4) */
	assert_int_equal(al_nft_count(g_al), 5);
}

static void test_idempotent(void **state)
{
	char *before, *after;

	(void)state;
	conf_init(true);
	items_sample();
	start();
	assert_int_equal(nft_table_list(g_nft, AL_NFT_FAMILY, AL_NFT_TABLE, NFT_LIST_HANDLES,
				 &before),
		0);
	assert_int_equal(apply(), 0);
	assert_int_equal(apply(), 0);
	assert_int_equal(nft_table_list(g_nft, AL_NFT_FAMILY, AL_NFT_TABLE, NFT_LIST_HANDLES,
				 &after),
		0);
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* A delta: an entry goes, one comes, and the prefix that shadowed another one goes in the
 * same transaction as the inner one comes in. */
static void test_delta(void **state)
{
	(void)state;
	conf_init(false);
	items_sample();
	start();
	item_drop("1");
	item_drop("2");
	item_dst("8", "2001:db8:1::/48");
	items_sort();
	/* -203.0.113.7, -198.51.100.0/24, +198.51.100.128/25, +2001:db8:1::/48 */
	assert_int_equal(apply(), 4);
	assert_false(set_has("dst4", "203.0.113.7"));
	assert_false(set_has("net4", "\"198.51.100.0\""));
	assert_true(set_has("net4", "\"198.51.100.128\""));
	assert_string_equal(key_of("198.51.100.128/25"), "3");
	assert_true(set_has("net6", "2001:db8:1::"));
	assert_int_equal(apply(), 0);
	/* and back: the outer prefix replaces the inner one */
	item_dst("2", "198.51.100.0/24");
	items_sort();
	assert_int_equal(apply(), 2);
	assert_false(set_has("net4", "198.51.100.128"));
	assert_true(set_has("net4", "198.51.100.0"));
}

/* Two items for one address: it stays while either one is there. */
static void test_shared_address(void **state)
{
	(void)state;
	conf_init(false);
	g_n = 0;
	item_dst("10/203.0.113.50", "203.0.113.50");
	item_dst("11/203.0.113.50", "203.0.113.50");
	items_sort();
	start();
	assert_string_equal(key_of("203.0.113.50"), "10/203.0.113.50");
	item_drop("10/203.0.113.50");
	/* the element goes to the one left: delete and add (its counter starts again) */
	assert_int_equal(apply(), 2);
	assert_string_equal(key_of("203.0.113.50"), "11/203.0.113.50");
	item_drop("11/203.0.113.50");
	assert_int_equal(apply(), 1);
	assert_false(set_has("dst4", "203.0.113.50"));
}

static void test_learn(void **state)
{
	struct al_nft_learn l[3] = {0};
	char *err = NULL;
	size_t added = 99;

	(void)state;
	conf_init(true);
	items_sample();
	start();
	l[0].item = item_find("6");
	assert_int_equal(addr_parse("203.0.113.80", &l[0].addr), 0);
	l[0].timeout_s = 600;
	l[1].item = item_find("6");
	assert_int_equal(addr_parse("2001:db8::80", &l[1].addr), 0);
	l[1].timeout_s = 600;
	l[2].item = item_find("7");
	assert_int_equal(addr_parse("203.0.113.81", &l[2].addr), 0);
	l[2].timeout_s = 300;
	assert_int_equal(al_nft_learn(g_al, l, 3, &added, &err), 0);
	assert_int_equal(added, 3);
	assert_true(set_has("dns4", "\"203.0.113.80\""));
	assert_true(set_has("dns4", "\"timeout\":600"));
	assert_true(set_has("dns6", "\"2001:db8::80\""));
	assert_int_equal(al_nft_learned(g_al), 3);
	assert_string_equal(key_of("203.0.113.80"), "6");
	assert_string_equal(key_of("2001:db8::80"), "6");
	assert_string_equal(key_of("203.0.113.81"), "7");
	/* a shorter timeout for an address already there sends nothing */
	l[0].timeout_s = 60;
	assert_int_equal(al_nft_learn(g_al, l, 1, &added, &err), 0);
	assert_int_equal(added, 0);
	/* a longer one refreshes it */
	l[0].timeout_s = 900;
	assert_int_equal(al_nft_learn(g_al, l, 1, &added, &err), 0);
	assert_int_equal(added, 1);
	assert_true(set_has("dns4", "\"timeout\":900"));
	/* the name goes: so do its addresses, the other name's stay */
	item_drop("6");
	assert_int_equal(apply(), 2);
	assert_false(set_has("dns4", "203.0.113.80"));
	assert_false(set_has("dns6", "2001:db8::80"));
	assert_true(set_has("dns4", "203.0.113.81"));
	assert_int_equal(al_nft_learned(g_al), 1);
}

/* A limited name learns into dnslim with its limits. */
static void test_learn_limited(void **state)
{
	struct al_nft_learn l = {0};
	struct al_item *it;
	char *err = NULL;
	size_t added;

	(void)state;
	conf_init(true);
	g_n = 0;
	it = item_name("9", "*.cdn.example");
	it->proto = AL_PROTO_UDP;
	start();
	l.item = it;
	assert_int_equal(addr_parse("198.51.100.200", &l.addr), 0);
	l.timeout_s = 120;
	assert_int_equal(al_nft_learn(g_al, &l, 1, &added, &err), 0);
	assert_int_equal(added, 1);
	assert_true(set_has("dnslim4", "198.51.100.200"));
	assert_false(set_has("dns4", "198.51.100.200"));
	assert_string_equal(key_of("198.51.100.200"), "9");
}

/* New client subnets and NAT off: element sets, learned addresses included, stay. */
static void test_reconf_keeps_elements(void **state)
{
	struct al_nft_learn l = {0};
	char *err = NULL, *list = NULL;
	size_t added;

	(void)state;
	conf_init(true);
	items_sample();
	start();
	l.item = item_find("7");
	assert_int_equal(addr_parse("203.0.113.90", &l.addr), 0);
	l.timeout_s = 600;
	assert_int_equal(al_nft_learn(g_al, &l, 1, &added, &err), 0);
	assert_int_equal(cidr_parse("10.9.0.0/16", 0, &g_clients[0]), 0);
	g_conf.nat = false;
	if (al_nft_reconf(g_al, &g_conf, &err))
		fail_msg("al_nft_reconf: %s", err ? err : "");
	assert_true(set_has("clients4", "10.9.0.0"));
	assert_false(set_has("clients4", "10.1.0.0"));
	assert_true(set_has("dst4", "203.0.113.7"));
	assert_true(set_has("dns4", "203.0.113.90"));
	assert_int_equal(nft_table_list(g_nft, AL_NFT_FAMILY, AL_NFT_TABLE, 0, &list), 0);
	assert_null(strstr(list, "masquerade"));
	free(list);
	assert_int_equal(apply(), 0);
}

struct tally {
	int elements, drops;
	bool saw_key1;
};

static void counter_cb(const char *key, const char *dst, uint64_t packets, uint64_t bytes,
	void *arg)
{
	struct tally *t = arg;

	(void)packets;
	(void)bytes;
	t->elements++;
	if (!strcmp(key, "1"))
		t->saw_key1 = !strcmp(dst, "203.0.113.7");
}

static void drop_cb(const char *client, uint64_t packets, uint64_t bytes, void *arg)
{
	(void)client;
	(void)packets;
	(void)bytes;
	((struct tally *)arg)->drops++;
}

static void test_counters_and_remove(void **state)
{
	struct tally t = {0};
	char *err = NULL;

	(void)state;
	conf_init(true);
	items_sample();
	start();
	assert_int_equal(al_nft_counters(g_al, counter_cb, drop_cb, &t), 0);
	assert_int_equal(t.elements, 5);
	assert_true(t.saw_key1);
	assert_int_equal(t.drops, 0);
	assert_int_equal(al_nft_remove(g_al, &err), 0);
	assert_int_equal(nft_table_exists(g_nft, AL_NFT_FAMILY, AL_NFT_TABLE), 0);
	/* not started: a change is refused, nothing sent */
	assert_int_equal(al_nft_apply(g_al, g_items, g_n, NULL, &err), -ENOENT);
	free(err);
}

/* ---- setup ---------------------------------------------------------------------------- */

static int group_setup(void **state)
{
	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0)
		return -1;
	g_nft = nft_new();
	return g_nft ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	nft_free(g_nft);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	g_al = al_nft_new(g_nft);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	al_nft_remove(g_al, NULL);
	al_nft_free(g_al);
	g_al = NULL;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delta, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shared_address, setup, teardown),
		cmocka_unit_test_setup_teardown(test_learn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_learn_limited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconf_keeps_elements, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counters_and_remove, setup, teardown),
	};

	return kt_exit_status(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
