/*
 * test_policy_nft_kernel.c - the policy ruleset (src/policy/policy_nft.c) in the real kernel.
 *
 * The group setup moves the process into a private network namespace (unshare(CLONE_NEWNET)),
 * brings lo up and creates veth pairs named like the model's interfaces (eth1, eth2, wwan0,
 * lan0, lan1; the peers stay in the namespace); everything disappears with the process and
 * nothing runs before the unshare() succeeded.  Each variant of test_policy_nft.c (included
 * below) must load with nft_table_apply() and read back; then a traffic check: locally made
 * UDP flows (the model balances OUTPUT too) must carry the conntrack marks the policy chose,
 * in proportion to the weights, never an unusable uplink's, the same one for a sticky source,
 * and none for the gateway's own addresses or when the last resort is the main table.
 */
#define TEST_POLICY_NFT_NO_MAIN
#include "test_policy_nft.c"

#include <arpa/inet.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kernel_test.h"
#include "nft.h"
#include "nl.h"

static struct nft *g_nft;
static struct nl *g_ct;

/* ---- helpers -------------------------------------------------------------------------- */

/* Run `ip ARGS` (space separated) in our namespace; its exit status. */
static int ip(const char *args)
{
	char buf[256], *argv[32] = {"ip"}, *save = NULL, *tok;
	int argc = 1, status;
	pid_t pid;

	snprintf(buf, sizeof(buf), "%s", args);
	for (tok = strtok_r(buf, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execvp("ip", argv);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}


static char *body_variant(int v)
{
	struct fixture fx;

	variant_init(&fx, v);
	return body_of(&fx);
}

static char *listing(void)
{
	char *s = NULL;

	assert_int_equal(nft_table_list(g_nft, "inet", "egress", 0, &s), 0);
	assert_non_null(s);
	return s;
}

static void apply(const char *body)
{
	char *err = NULL;
	int r = nft_table_apply(g_nft, "inet", "egress", body, &err);

	if (r != 0)
		fail_msg("nft_table_apply: %d: %s", r, err ? err : "");
	free(err);
}

/*
 * Send n UDP datagrams to dst:port, each from a new socket and source port of its own (a new
 * flow; an ephemeral port could be reused and merge two flows into one conntrack entry).
 */
static void send_flows(const char *dst, uint16_t port, int n)
{
	static uint16_t next_sport = 20000;
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	struct sockaddr_in src = {.sin_family = AF_INET};
	int i, fd;

	assert_int_equal(inet_pton(AF_INET, dst, &sin.sin_addr), 1);
	for (i = 0; i < n; i++) {
		fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		assert_true(fd >= 0);
		src.sin_port = htons(next_sport++);
		assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof(src)), 0);
		/* A rejected flow fails here (EPERM): that is for the caller to count. */
		(void)sendto(fd, "x", 1, 0, (struct sockaddr *)&sin, sizeof(sin));
		close(fd);
	}
}

/* Conntrack entries to one destination, by (ct mark & 0xff00) >> 8 (index 0..255). */
struct ct_tally {
	struct addr dst;
	int by_mark[256];
	int other_bits; /* entries with mark bits outside 0xff00 */
	int total;
};

static int tally_cb(const struct nl_ct *ct, void *arg)
{
	struct ct_tally *t = arg;

	if (!addr_eq(&ct->dst, &t->dst))
		return 0;
	t->by_mark[(ct->mark & 0xff00) >> 8]++;
	t->other_bits += (ct->mark & ~0xff00u) != 0;
	t->total++;
	return 0;
}

static void tally(const char *dst, struct ct_tally *ret)
{
	memset(ret, 0, sizeof(*ret));
	assert_int_equal(addr_parse(dst, &ret->dst), 0);
	assert_int_equal(nl_ct_dump(g_ct, AF_INET, 0, 0, tally_cb, ret), 0);
}

/*
 * n of total random choices went to a member of weight w out of wsum: within 5 standard
 * deviations of the binomial mean (a false alarm about once in 10^6 runs), squared and
 * scaled by wsum^2 to stay in integers: (n wsum - total w)^2 <= 25 total w (wsum - w).
 */
static void assert_share(const char *member, int n, int total, int w, int wsum)
{
	long long d = (long long)n * wsum - (long long)total * w;

	if (d * d > 25LL * total * w * (wsum - w))
		fail_msg("%s: %d of %d flows, expected about %d (weight %d of %d)", member, n,
			total, total * w / wsum, w, wsum);
}

/* ---- tests ---------------------------------------------------------------------------- */

/* Every variant loads, reads back, and a broken body changes nothing. */
static void test_apply_variants(void **state)
{
	char *body, *list, *list2, *bad, *err = NULL, *p;
	int v;

	for (v = 0; v < _V_MAX; v++) {
		body = body_variant(v);
		assert_int_equal(nft_table_check(g_nft, "inet", "egress", body, NULL), 0);
		apply(body);
		list = listing();
		assert_non_null(strstr(list, "chain policy.secure {"));
		assert_non_null(strstr(list, "chain prerouting {"));
		/* the output chain always records the probes' marks; it classifies with output */
		assert_non_null(strstr(list, "chain output {"));
		assert_true(!strstr(list, "jump classify\n\t}\n\n\tchain postrouting") ==
			    (v == V_NO_OUTPUT));
		assert_true(!strstr(list, "sticky.secure.isp2") ==
			    (v == V_ISP2_DOWN || v == V_TIER1_DOWN || v == V_ALL_DOWN));
		assert_true(
			!strstr(list, "numgen random") == (v == V_ALL_DOWN || v == V_TIER1_DOWN));
		if (v == V_MAIN) {
			assert_non_null(
				strstr(list, "elements = { 198.51.100.7, 203.0.113.0/24 }"));
			assert_non_null(strstr(list, "comment \"rule banking\""));
		}

		/* Applying the same body again gives the same table. */
		apply(body);
		list2 = listing();
		assert_string_equal(list2, list);
		free(list2);

		/* Negative: a jump to a chain that does not exist is refused, the table stays. */
		bad = xstrdup(body);
		p = strstr(bad, "goto restore.isp1");
		assert_non_null(p);
		memcpy(p, "goto restore.zzz1", 17);
		assert_true(nft_table_apply(g_nft, "inet", "egress", bad, &err) < 0);
		assert_non_null(err);
		FREE_AND_NULL(err);
		list2 = listing();
		assert_string_equal(list2, list);
		free(list2);
		free(bad);
		free(list);
		free(body);
	}
}

/* The marks conntrack records for the gateway's own UDP flows. */
static void test_traffic(void **state)
{
	struct ct_tally t;
	char *body;
	int i, used;

	body = body_variant(V_MAIN);
	apply(body);
	free(body);

	/* Default policy "balance": 3:2:1 over isp1, isp2, isp3 (marks 0x100, 0x200, 0x300);
	 * enough flows that 5 deviations stay well below the error of weights such as 4:3:2. */
	send_flows("198.51.100.1", 9, 3000);
	tally("198.51.100.1", &t);
	assert_int_equal(t.total, 3000);
	assert_int_equal(t.by_mark[0], 0);
	assert_int_equal(t.by_mark[1] + t.by_mark[2] + t.by_mark[3], 3000);
	assert_int_equal(t.other_bits, 0);
	assert_share("isp1", t.by_mark[1], 3000, 3, 6);
	assert_share("isp2", t.by_mark[2], 3000, 2, 6);
	assert_share("isp3", t.by_mark[3], 3000, 1, 6);

	/* Negative: the gateway's own address is never balanced. */
	send_flows("127.0.0.1", 9, 20);
	tally("127.0.0.1", &t);
	assert_int_equal(t.total, 20);
	assert_int_equal(t.by_mark[0], 20);

	/* Rule voip (udp 5060) -> policy secure, sticky by source: one uplink for every flow. */
	send_flows("198.51.100.3", 5060, 60);
	tally("198.51.100.3", &t);
	assert_int_equal(t.total, 60);
	for (i = 1, used = 0; i < 4; i++)
		used += t.by_mark[i] != 0;
	assert_int_equal(used, 1);
	assert_int_equal(t.by_mark[3], 0); /* isp3 is tier 2 */

	/* isp2 not usable: it vanishes from the choice. */
	body = body_variant(V_ISP2_DOWN);
	apply(body);
	free(body);
	send_flows("198.51.100.2", 9, 300);
	tally("198.51.100.2", &t);
	assert_int_equal(t.total, 300);
	assert_int_equal(t.by_mark[2], 0);
	assert_int_equal(t.by_mark[1] + t.by_mark[3], 300);
	assert_share("isp1", t.by_mark[1], 300, 3, 4);
	assert_share("isp3", t.by_mark[3], 300, 1, 4);

	/* Nothing usable: balance falls back to main (no mark), secure rejects (no entry). */
	body = body_variant(V_ALL_DOWN);
	apply(body);
	free(body);
	send_flows("198.51.100.4", 9, 20);
	tally("198.51.100.4", &t);
	assert_int_equal(t.total, 20);
	assert_int_equal(t.by_mark[0], 20);
	send_flows("198.51.100.5", 5060, 20);
	tally("198.51.100.5", &t);
	assert_int_equal(t.total, 0);
}

/* ---- setup ---------------------------------------------------------------------------- */

/* Affinity read back from the running table goes into its replacement with the time it had
 * left, not a fresh timeout; the set of an uplink that went down loses its entries. */
static void test_carry_over(void **state)
{
	struct policy_sticky_elem *elems[3] = {NULL, NULL, NULL};
	struct policy_carry carry[3];
	char **names = NULL, *err = NULL, *body, *list;
	struct fixture fx;
	size_t n = 0;

	variant_init(&fx, V_MAIN);
	body = body_of(&fx);
	apply(body);
	free(body);
	if (nft_run(g_nft, "add element inet egress sticky.secure.isp1.v4 { 10.0.0.2 expires 100s, "
			   "10.0.0.3 }\n"
			   "add element inet egress sticky.secure.isp2.v4 { 10.0.0.9 }\n",
		    &err) < 0)
		fail_msg("add element: %s", err);
	/* isp2 goes down: read back the sets the new body declares */
	fx.up[1].usable = false;
	assert_int_equal(policy_nft_sticky_sets(&fx.m, &names), 0);
	for (size_t i = 0; names[i]; i++) {
		json_t *root = NULL;

		assert_int_equal(nft_set_list_json(g_nft, "inet", "egress", names[i], &root), 0);
		carry[n].set = names[i];
		assert_int_equal(policy_nft_sticky_parse(root, &elems[n], &carry[n].n), 0);
		carry[n].elems = elems[n];
		n++;
		json_decref(root);
	}
	assert_int_equal(n, 2); /* isp1's v4 and v6 */
	assert_int_equal(carry[0].n, 2);
	fx.m.carry = carry;
	fx.m.n_carry = n;
	body = body_of(&fx);
	apply(body);
	free(body);
	list = listing();
	/* 10.0.0.2 kept what it had left, to the second (100 s, not a fresh 30 minutes);
	 * 10.0.0.3 had its 30 minutes */
	assert_non_null(strstr(list, "10.0.0.2 expires 1m"));
	assert_true(strstr(list, "10.0.0.3 expires 29m") || strstr(list, "10.0.0.3 expires 30m"));
	assert_null(strstr(list, "10.0.0.9"));
	assert_null(strstr(list, "sticky.secure.isp2"));
	free(list);
	/* negative: a set that does not exist is not read */
	assert_int_equal(nft_set_list_json(g_nft, "inet", "egress", "sticky.secure.isp2.v4",
				 &(json_t *){NULL}),
		-ENOENT);
	for (size_t i = 0; i < n; i++)
		free(elems[i]);
	policy_nft_names_free(names);
}

/* In-run changes keep the sticky sets whose declaration is unchanged in place: their entries
 * keep their exact timeouts, the chains are replaced, and the set of an uplink that went down
 * goes; a set to keep that the old body did not declare changes nothing. */
static void test_keep_in_place(void **state)
{
	static const char *const keep[] = { "sticky.secure.isp1.v4", "sticky.secure.isp1.v6", NULL };
	static const char *const bad[] = { "sticky.secure.isp2.v4", NULL };
	char *old, *body, *list, *err = NULL;
	struct fixture fx;

	variant_init(&fx, V_MAIN);
	old = body_of(&fx);
	apply(old);
	if (nft_run(g_nft, "add element inet egress sticky.secure.isp1.v4 { 10.0.0.2 expires 100s }\n"
			   "add element inet egress sticky.secure.isp2.v4 { 10.0.0.9 }\n",
		    &err) < 0)
		fail_msg("add element: %s", err);
	fx.up[1].usable = false;
	fx.m.keep_sets = keep;
	body = body_of(&fx);
	assert_int_equal(nft_table_apply_keep(g_nft, "inet", "egress", old, body, keep, &err), 0);
	list = listing();
	/* what it had left (100 s less the moments since), not a fresh 30 minutes */
	assert_non_null(strstr(list, "elements = { 10.0.0.2 expires 1m"));
	assert_null(strstr(list, "sticky.secure.isp2"));
	assert_null(strstr(list, "10.0.0.9"));
	assert_null(strstr(list, "chain pick.secure.isp2"));
	assert_non_null(strstr(list, "ip saddr @sticky.secure.isp1.v4 goto pick.secure.isp1"));
	/* negative: keeping what the old body lacks is refused before anything is sent */
	assert_int_equal(nft_table_apply_keep(g_nft, "inet", "egress", old, body, bad, &err),
		-ENOENT);
	assert_non_null(err);
	FREE_AND_NULL(err);
	/* and a name the old body quotes is never put into a command */
	assert_int_equal(nft_table_apply_keep(g_nft, "inet", "egress",
				 "chain \"a; flush ruleset\" {\n}\n", body, NULL, &err),
		-EINVAL);
	assert_non_null(err);
	free(err);
	free(body);
	free(list);
	/* nothing changed (the listing itself moves on with the timeouts) */
	list = listing();
	assert_non_null(strstr(list, "elements = { 10.0.0.2 expires 1m"));
	assert_null(strstr(list, "sticky.secure.isp2"));
	free(list);
	free(old);
}

static int group_setup(void **state)
{
	static const char *const cmds[] = {
		"link add eth1 type veth peer name eth1p",
		"link add eth2 type veth peer name eth2p",
		"link add wwan0 type veth peer name wwan0p",
		"link add lan0 type veth peer name lan0p",
		"link add lan1 type veth peer name lan1p",
		"link set eth1 up",
		"link set eth1p up",
		"link set eth2 up",
		"link set eth2p up",
		"link set wwan0 up",
		"link set wwan0p up",
		"addr add 10.1.0.1/24 dev eth1",
		"route add 198.51.100.0/24 dev eth1",
	};
	size_t i;

	(void)state;
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "unshare(CLONE_NEWNET): %s\n", strerror(errno));
		return -1;
	}
	if (kt_lo_up() < 0)
		return -1;
	/* Only now, inside the private namespace, touch links and open sockets. */
	for (i = 0; i < ARRAY_SIZE(cmds); i++) {
		if (ip(cmds[i]) != 0) {
			fprintf(stderr, "ip %s failed\n", cmds[i]);
			return -1;
		}
	}
	g_nft = nft_new();
	if (!g_nft || nl_open(NETLINK_NETFILTER, &g_ct) < 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	nft_free(g_nft);
	nl_free(g_ct);
	return 0;
}

/*
 * The flowtable: the probe says whether this kernel has flowtables, and the body with one
 * matches the answer: it loads (and reads back with the flowtable on every interface) where
 * the kernel has them; where it does not, the kernel refuses it (ENOENT) and nothing changes,
 * which is why the module asks first.  The body without a flowtable loads either way.
 */
static void test_flowtable(void **state)
{
	struct fixture fx;
	char *body, *err = NULL, *list = NULL;
	int has = nft_flowtable_probe(g_nft, &err);

	free(err);
	err = NULL;
	assert_true(has == 0 || has == 1);
	/* the probe leaves nothing behind */
	assert_int_equal(nft_table_exists(g_nft, "inet", "egress_probe"), 0);
	variant_init(&fx, V_MAIN);
	fx.m.flowtable = true;
	body = body_of(&fx);
	nft_table_delete(g_nft, "inet", "egress", NULL);
	if (has) {
		assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body, &err), 0);
		assert_int_equal(nft_table_list(g_nft, "inet", "egress", 0, &list), 0);
		assert_non_null(strstr(list, "flowtable fast {"));
		assert_non_null(strstr(list, "flow add @fast"));
		free(list);
	} else {
		print_message("kernel without flowtables: the flowtable body must be refused\n");
		assert_int_equal(nft_table_apply(g_nft, "inet", "egress", body, &err), -ENOENT);
		assert_int_equal(nft_table_exists(g_nft, "inet", "egress"), 0);
	}
	free(err);
	free(body);
	body = body_variant(V_MAIN);
	apply(body);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_apply_variants),
		cmocka_unit_test(test_traffic),
		cmocka_unit_test(test_carry_over),
		cmocka_unit_test(test_keep_in_place),
		cmocka_unit_test(test_flowtable),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
