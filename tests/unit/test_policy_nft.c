/*
 * test_policy_nft.c - the policy module's nftables ruleset (src/policy/policy_nft.c), pure.
 *
 * Golden bodies for a model with three uplinks (weights 3:2:1, one masquerading), two policies
 * (one sticky by source, over two tiers), a named destination set and rules by set, port range,
 * source, interface, protocol and "main"; then variants (an uplink not usable, a whole tier
 * down, nothing usable) and every model the generator must refuse.  Nothing here touches the
 * kernel.  test_policy_nft_kernel.c includes this file (with TEST_POLICY_NFT_NO_MAIN) to load
 * the same models into a private network namespace.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy_nft.h"
#include "util.h"

/* ---- the model ------------------------------------------------------------------------ */

/* A mutable copy of the main model, so each variant changes one thing. */
struct fixture {
	struct policy_uplink up[3];
	struct policy_member bal[3], sec[3];
	struct policy_def pol[2];
	struct cidr banks[4], printer_src[2], lab_src[1], lab_dst[1];
	struct policy_set sets[1];
	struct range voip_ports[3];
	struct policy_rule rules[6];
	const char *lan[2];
	struct policy_model m;
};

static struct cidr pfx(const char *s)
{
	struct cidr c;

	assert_int_equal(cidr_parse(s, CIDR_BARE, &c), 0);
	return c;
}

/*
 * isp1 (eth1, v4+v6) : isp2 (eth2, v4 only, masquerade) : isp3 (wwan0, v4+v6) weigh 3:2:1.
 * Policy "balance" spreads over all three (tier 1), no affinity, main as last resort; policy
 * "secure" keeps a source on its uplink for 30 minutes, isp3 only as tier 2, and rejects when
 * nothing is usable.
 */
static void fixture_init(struct fixture *fx)
{
	memset(fx, 0, sizeof(*fx));
	fx->up[0] = (struct policy_uplink){ "isp1", "eth1", 0x100, true, true, true, false, false };
	fx->up[1] = (struct policy_uplink){ "isp2", "eth2", 0x200, true, false, true, true, false };
	fx->up[2] = (struct policy_uplink){ "ISP-3", "wwan0", 0x300, true, true, true, false, false };

	fx->bal[0] = (struct policy_member){ 0, 3, 1 };
	fx->bal[1] = (struct policy_member){ 1, 2, 1 };
	fx->bal[2] = (struct policy_member){ 2, 1, 1 };
	fx->sec[0] = (struct policy_member){ 0, 3, 1 };
	fx->sec[1] = (struct policy_member){ 1, 2, 1 };
	fx->sec[2] = (struct policy_member){ 2, 1, 2 };
	fx->pol[0] = (struct policy_def){ .name = "balance", .members = fx->bal, .n_members = 3,
		.sticky = POLICY_STICKY_NONE, .last_resort = POLICY_LAST_MAIN };
	fx->pol[1] = (struct policy_def){ .name = "secure", .members = fx->sec, .n_members = 3,
		.sticky = POLICY_STICKY_SOURCE, .sticky_timeout_ms = 30 * 60 * 1000,
		.last_resort = POLICY_LAST_REJECT };

	/* Overlapping and adjacent prefixes: the set holds the fewest that cover them. */
	fx->banks[0] = pfx("203.0.113.0/25");
	fx->banks[1] = pfx("203.0.113.128/25");
	fx->banks[2] = pfx("2001:db8:100::/48");
	fx->banks[3] = pfx("198.51.100.7");
	fx->sets[0] = (struct policy_set){ "banks", fx->banks, 4 };

	fx->voip_ports[0] = (struct range){ 10000, 20000 };
	fx->voip_ports[1] = (struct range){ 5060, 5061 };
	fx->voip_ports[2] = (struct range){ 15000, 20001 };
	fx->printer_src[0] = pfx("10.0.5.0/24");
	fx->printer_src[1] = pfx("10.0.5.7");
	fx->lab_src[0] = pfx("2001:db8:1::/64");
	fx->lab_dst[0] = pfx("10.0.0.0/8");

	fx->rules[0] = (struct policy_rule){ .name = "banking", .dst_set = "banks", .policy = 1 };
	fx->rules[1] = (struct policy_rule){ .name = "voip", .proto = IPPROTO_UDP,
		.dport = fx->voip_ports, .n_dport = 3, .policy = 1 };
	fx->rules[2] = (struct policy_rule){ .name = "printer", .src = fx->printer_src,
		.n_src = 2, .policy = -1 };
	fx->rules[3] = (struct policy_rule){ .name = "guests", .iif = "lan1", .proto = IPPROTO_TCP,
		.policy = 0 };
	fx->rules[4] = (struct policy_rule){ .name = "lab", .src = fx->lab_src, .n_src = 1,
		.dst = fx->lab_dst, .n_dst = 1, .policy = 1 };
	fx->rules[5] = (struct policy_rule){ .name = "ping", .proto = IPPROTO_ICMP, .policy = -1 };

	fx->lan[0] = "lan0";
	fx->lan[1] = "lan1";
	fx->m = (struct policy_model){
		.mark_mask = 0xff00,
		.lan = fx->lan,
		.n_lan = 2,
		.output = true,
		.probe_mark = 0xff00,
		.uplinks = fx->up,
		.n_uplinks = 3,
		.policies = fx->pol,
		.n_policies = 2,
		.default_policy = 0,
		.sets = fx->sets,
		.n_sets = 1,
		.rules = fx->rules,
		.n_rules = 6,
	};
}

static char *body_of(const struct fixture *fx)
{
	char *s = NULL;

	assert_int_equal(policy_nft_body(&fx->m, &s), 0);
	assert_non_null(s);
	return s;
}


/* ---- golden texts --------------------------------------------------------------------- */

/* The main model's whole body: this documents the ruleset. */
static const char golden_main[] =
	"# egressd policy: multi-WAN balancing by conntrack mark (generated, do not edit).\n"
	"# Only the bits 0x0000ff00 of the packet and conntrack marks are ours.\n"
	"\tset dst.banks.v4 {\n"
	"\t\ttype ipv4_addr\n"
	"\t\tflags interval\n"
	"\t\tauto-merge\n"
	"\t\telements = { 198.51.100.7, 203.0.113.0/24 }\n"
	"\t}\n"
	"\tset dst.banks.v6 {\n"
	"\t\ttype ipv6_addr\n"
	"\t\tflags interval\n"
	"\t\tauto-merge\n"
	"\t\telements = { 2001:db8:100::/48 }\n"
	"\t}\n"
	"\tset sticky.secure.isp1.v4 {\n"
	"\t\ttype ipv4_addr\n"
	"\t\tflags dynamic,timeout\n"
	"\t\ttimeout 30m\n"
	"\t}\n"
	"\tset sticky.secure.isp1.v6 {\n"
	"\t\ttype ipv6_addr\n"
	"\t\tflags dynamic,timeout\n"
	"\t\ttimeout 30m\n"
	"\t}\n"
	"\tset sticky.secure.isp2.v4 {\n"
	"\t\ttype ipv4_addr\n"
	"\t\tflags dynamic,timeout\n"
	"\t\ttimeout 30m\n"
	"\t}\n"
	"\tchain mark.isp1 {\n"
	"\t\tcomment \"uplink isp1 (eth1): new connections\"\n"
	"\t\tct mark set ct mark and 0xffff00ff or 0x00000100\n"
	"\t\tmeta mark set meta mark and 0xffff00ff or 0x00000100\n"
	"\t}\n"
	"\tchain restore.isp1 {\n"
	"\t\tmeta mark set meta mark and 0xffff00ff or 0x00000100\n"
	"\t}\n"
	"\tchain mark.isp2 {\n"
	"\t\tcomment \"uplink isp2 (eth2): new connections\"\n"
	"\t\tct mark set ct mark and 0xffff00ff or 0x00000200\n"
	"\t\tmeta mark set meta mark and 0xffff00ff or 0x00000200\n"
	"\t}\n"
	"\tchain restore.isp2 {\n"
	"\t\tmeta mark set meta mark and 0xffff00ff or 0x00000200\n"
	"\t}\n"
	"\tchain mark.isp_3 {\n"
	"\t\tcomment \"uplink isp_3 (wwan0): new connections\"\n"
	"\t\tct mark set ct mark and 0xffff00ff or 0x00000300\n"
	"\t\tmeta mark set meta mark and 0xffff00ff or 0x00000300\n"
	"\t}\n"
	"\tchain restore.isp_3 {\n"
	"\t\tmeta mark set meta mark and 0xffff00ff or 0x00000300\n"
	"\t}\n"
	"\tchain pick.secure.isp1 {\n"
	"\t\tupdate @sticky.secure.isp1.v4 { ip saddr }\n"
	"\t\tupdate @sticky.secure.isp1.v6 { ip6 saddr }\n"
	"\t\tgoto mark.isp1\n"
	"\t}\n"
	"\tchain pick.secure.isp2 {\n"
	"\t\tupdate @sticky.secure.isp2.v4 { ip saddr }\n"
	"\t\tgoto mark.isp2\n"
	"\t}\n"
	"\tchain policy.balance {\n"
	"\t\tcomment \"policy balance: sticky none, last resort main\"\n"
	"\t\tmeta nfproto ipv4 numgen random mod 6 vmap { 0-2 : goto mark.isp1, 3-4 : goto mark.isp2, 5 : goto mark.isp_3 } comment \"tier 1\"\n"
	"\t\tmeta nfproto ipv6 numgen random mod 4 vmap { 0-2 : goto mark.isp1, 3 : goto mark.isp_3 } comment \"tier 1\"\n"
	"\t}\n"
	"\tchain policy.secure {\n"
	"\t\tcomment \"policy secure: sticky source 30m, last resort reject\"\n"
	"\t\tip saddr @sticky.secure.isp1.v4 goto pick.secure.isp1\n"
	"\t\tip6 saddr @sticky.secure.isp1.v6 goto pick.secure.isp1\n"
	"\t\tip saddr @sticky.secure.isp2.v4 goto pick.secure.isp2\n"
	"\t\tmeta nfproto ipv4 numgen random mod 5 vmap { 0-2 : goto pick.secure.isp1, 3-4 : goto pick.secure.isp2 } comment \"tier 1\"\n"
	"\t\tmeta nfproto ipv6 goto pick.secure.isp1 comment \"tier 1\"\n"
	"\t}\n"
	"\tchain classify {\n"
	"\t\tcomment \"new connections: the first matching rule wins\"\n"
	"\t\tip daddr @dst.banks.v4 goto policy.secure comment \"rule banking\"\n"
	"\t\tip6 daddr @dst.banks.v6 goto policy.secure comment \"rule banking\"\n"
	"\t\tudp dport { 5060-5061, 10000-20001 } goto policy.secure comment \"rule voip\"\n"
	"\t\tip saddr 10.0.5.0/24 return comment \"rule printer: main\"\n"
	"\t\tiifname \"lan1\" meta l4proto tcp goto policy.balance comment \"rule guests\"\n"
	"\t\t# rule lab matches no address family: left out\n"
	"\t\tmeta l4proto { icmp, ipv6-icmp } return comment \"rule ping: main\"\n"
	"\t\tgoto policy.balance comment \"default policy\"\n"
	"\t}\n"
	"\tchain prerouting {\n"
	"\t\ttype filter hook prerouting priority mangle; policy accept;\n"
	"\t\tct mark and 0x0000ff00 vmap { 0x00000100 : goto restore.isp1, 0x00000200 : goto restore.isp2, 0x00000300 : goto restore.isp_3 }\n"
	"\t\tct state != new return\n"
	"\t\tiifname \"eth1\" ct mark set ct mark and 0xffff00ff or 0x00000100 meta mark set meta mark and 0xffff00ff or 0x00000100 return comment \"from uplink isp1: replies leave through it\"\n"
	"\t\tiifname \"eth2\" ct mark set ct mark and 0xffff00ff or 0x00000200 meta mark set meta mark and 0xffff00ff or 0x00000200 return comment \"from uplink isp2: replies leave through it\"\n"
	"\t\tiifname \"wwan0\" ct mark set ct mark and 0xffff00ff or 0x00000300 meta mark set meta mark and 0xffff00ff or 0x00000300 return comment \"from uplink isp_3: replies leave through it\"\n"
	"\t\tfib daddr type { local, broadcast, multicast } return comment \"to the gateway itself\"\n"
	"\t\tiifname { \"lan0\", \"lan1\" } meta mark set meta mark and 0xffff00ff or 0x0000ff00 fib daddr . mark oif exists meta mark set meta mark and 0xffff00ff return comment \"main routes it: not balanced\"\n"
	"\t\tiifname { \"lan0\", \"lan1\" } meta mark set meta mark and 0xffff00ff jump classify\n"
	"\t}\n"
	"\tchain output {\n"
	"\t\ttype route hook output priority mangle; policy accept;\n"
	"\t\tct mark and 0x0000ff00 vmap { 0x00000100 : goto restore.isp1, 0x00000200 : goto restore.isp2, 0x00000300 : goto restore.isp_3 }\n"
	"\t\tct state != new return\n"
	"\t\tmeta mark and 0x0000ff00 vmap { 0x00000100 : goto mark.isp1, 0x00000200 : goto mark.isp2, 0x00000300 : goto mark.isp_3 }\n"
	"\t\tmeta mark and 0x0000ff00 != 0 return comment \"the socket chose its uplink\"\n"
	"\t\tfib daddr type { local, broadcast, multicast } return comment \"to the gateway itself\"\n"
	"\t\tjump classify\n"
	"\t}\n"
	"\tchain postrouting {\n"
	"\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
	"\t\tmeta nfproto ipv4 oifname \"eth2\" masquerade comment \"uplink isp2\"\n"
	"\t}\n";

/* The block of chain `name` in body (from its "\tchain" line to its closing "\t}"); caller
 * frees.  NULL if there is no such chain. */
static UNUSED char *chain_of(const char *body, const char *name)
{
	char head[128];
	const char *a, *e;

	snprintf(head, sizeof(head), "\tchain %s {\n", name);
	a = strstr(body, head);
	if (!a)
		return NULL;
	e = strstr(a, "\n\t}\n");
	assert_non_null(e);
	return strndup(a, (size_t)(e - a) + 4);
}

static UNUSED void assert_chain(const char *body, const char *name, const char *want)
{
	char *got = chain_of(body, name);

	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

/* ---- variants (shared with the kernel test) -------------------------------------------- */

enum variant {
	V_MAIN,
	V_ISP2_DOWN,	/* one uplink not usable */
	V_TIER1_DOWN,	/* isp1 and isp2 down: secure falls to tier 2 */
	V_ALL_DOWN,	/* nothing usable: last resorts */
	V_SOURCE_DEST,	/* secure sticky by source and destination /24, /64 */
	V_NO_OUTPUT,	/* no OUTPUT chain, no LAN, no rules, no sets */
	_V_MAX,
};

static void variant_init(struct fixture *fx, int v)
{
	fixture_init(fx);
	switch (v) {
	case V_ISP2_DOWN:
		fx->up[1].usable = false;
		break;
	case V_TIER1_DOWN:
		fx->up[0].usable = false;
		fx->up[1].usable = false;
		break;
	case V_ALL_DOWN:
		fx->up[0].usable = fx->up[1].usable = fx->up[2].usable = false;
		break;
	case V_SOURCE_DEST:
		fx->pol[1].sticky = POLICY_STICKY_SOURCE_DEST;
		fx->pol[1].sticky_prefix4 = 24;
		fx->pol[1].sticky_prefix6 = 64;
		fx->pol[1].sticky_timeout_ms = 90 * 60 * 1000 + 1500;
		break;
	case V_NO_OUTPUT:
		fx->m.output = false;
		fx->m.n_lan = 0;
		fx->m.n_rules = 0;
		fx->m.n_sets = 0;
		break;
	}
}

#ifndef TEST_POLICY_NFT_NO_MAIN

/* ---- tests ---------------------------------------------------------------------------- */

static void test_golden_main(void **state)
{
	struct fixture fx;
	char *s, *again;

	variant_init(&fx, V_MAIN);
	s = body_of(&fx);
	assert_string_equal(s, golden_main);
	/* Deterministic: the same model gives the same text. */
	again = body_of(&fx);
	assert_string_equal(again, s);
	free(again);
	/* Negative: a change of weight changes the text. */
	fx.bal[0].weight = 4;
	again = body_of(&fx);
	assert_string_not_equal(again, s);
	assert_non_null(strstr(again, "numgen random mod 7 vmap { 0-3 : goto mark.isp1, 4-5 : "));
	free(again);
	free(s);
}

static void test_uplink_down(void **state)
{
	struct fixture fx;
	char *s;

	variant_init(&fx, V_ISP2_DOWN);
	s = body_of(&fx);
	/* isp2 leaves the vmaps and the totals shrink; both families now choose alike. */
	assert_chain(s, "policy.balance",
		"\tchain policy.balance {\n"
		"\t\tcomment \"policy balance: sticky none, last resort main\"\n"
		"\t\tnumgen random mod 4 vmap { 0-2 : goto mark.isp1, 3 : goto mark.isp_3 } "
		"comment \"tier 1\"\n"
		"\t}\n");
	assert_chain(s, "policy.secure",
		"\tchain policy.secure {\n"
		"\t\tcomment \"policy secure: sticky source 30m, last resort reject\"\n"
		"\t\tip saddr @sticky.secure.isp1.v4 goto pick.secure.isp1\n"
		"\t\tip6 saddr @sticky.secure.isp1.v6 goto pick.secure.isp1\n"
		"\t\tgoto pick.secure.isp1 comment \"tier 1\"\n"
		"\t}\n");
	assert_null(strstr(s, "sticky.secure.isp2"));
	assert_null(chain_of(s, "pick.secure.isp2"));
	/* Its connections still restore their mark and it still masquerades. */
	assert_non_null(strstr(s, "0x00000200 : goto restore.isp2"));
	assert_non_null(strstr(s, "oifname \"eth2\" masquerade"));
	free(s);
}

/* Drained: out of the choice as a down uplink is; the ruleset only says why. */
static void test_uplink_drained(void **state)
{
	struct fixture fx;
	char *down, *drained;

	variant_init(&fx, V_ISP2_DOWN);
	down = body_of(&fx);
	fx.up[1].drained = true;
	drained = body_of(&fx);
	assert_non_null(strstr(drained, "comment \"uplink isp2 (eth2), drained: new connections\""));
	assert_null(strstr(drained, "isp2 (eth2), not usable"));
	assert_non_null(strstr(down, "comment \"uplink isp2 (eth2), not usable: new connections\""));
	/* Everything but that comment is the same: no choice, no sticky set, restore kept. */
	for (const char *const *c = (const char *const[]){"policy.balance", "policy.secure",
		     "prerouting", NULL};
		*c; c++) {
		char *want = chain_of(down, *c);
		assert_chain(drained, *c, want);
		free(want);
	}
	assert_null(strstr(drained, "sticky.secure.isp2"));
	assert_non_null(strstr(drained, "0x00000200 : goto restore.isp2"));
	free(down);
	free(drained);
}

static void test_tier_down(void **state)
{
	struct fixture fx;
	char *s;

	variant_init(&fx, V_TIER1_DOWN);
	s = body_of(&fx);
	assert_chain(s, "policy.secure",
		"\tchain policy.secure {\n"
		"\t\tcomment \"policy secure: sticky source 30m, last resort reject\"\n"
		"\t\tip saddr @sticky.secure.isp_3.v4 goto pick.secure.isp_3\n"
		"\t\tip6 saddr @sticky.secure.isp_3.v6 goto pick.secure.isp_3\n"
		"\t\tgoto pick.secure.isp_3 comment \"tier 2\"\n"
		"\t}\n");
	assert_chain(s, "pick.secure.isp_3",
		"\tchain pick.secure.isp_3 {\n"
		"\t\tupdate @sticky.secure.isp_3.v4 { ip saddr }\n"
		"\t\tupdate @sticky.secure.isp_3.v6 { ip6 saddr }\n"
		"\t\tgoto mark.isp_3\n"
		"\t}\n");
	assert_chain(s, "policy.balance",
		"\tchain policy.balance {\n"
		"\t\tcomment \"policy balance: sticky none, last resort main\"\n"
		"\t\tgoto mark.isp_3 comment \"tier 1\"\n"
		"\t}\n");
	assert_null(chain_of(s, "pick.secure.isp1"));
	free(s);

	/* Negative: with isp1 back, tier 1 wins again and isp3 is out. */
	fx.up[0].usable = true;
	s = body_of(&fx);
	assert_null(strstr(s, "pick.secure.isp_3"));
	assert_non_null(strstr(s, "goto pick.secure.isp1 comment \"tier 1\""));
	free(s);
}

static void test_all_down(void **state)
{
	struct fixture fx;
	char *s;

	variant_init(&fx, V_ALL_DOWN);
	s = body_of(&fx);
	assert_chain(s, "policy.balance",
		"\tchain policy.balance {\n"
		"\t\tcomment \"policy balance: sticky none, last resort main\"\n"
		"\t\treturn comment \"no usable uplink: main table\"\n"
		"\t}\n");
	assert_chain(s, "policy.secure",
		"\tchain policy.secure {\n"
		"\t\tcomment \"policy secure: sticky source 30m, last resort reject\"\n"
		"\t\tmeta l4proto tcp reject with tcp reset comment \"no usable uplink\"\n"
		"\t\treject with icmpx type admin-prohibited\n"
		"\t}\n");
	assert_null(strstr(s, "numgen"));
	assert_null(strstr(s, "set sticky."));
	free(s);

	/* One family only: isp2 (IPv4 only) back; IPv6 still has nothing. */
	fx.up[1].usable = true;
	s = body_of(&fx);
	assert_chain(s, "policy.secure",
		"\tchain policy.secure {\n"
		"\t\tcomment \"policy secure: sticky source 30m, last resort reject\"\n"
		"\t\tip saddr @sticky.secure.isp2.v4 goto pick.secure.isp2\n"
		"\t\tmeta nfproto ipv4 goto pick.secure.isp2 comment \"tier 1\"\n"
		"\t\tmeta l4proto tcp reject with tcp reset comment \"no usable uplink\"\n"
		"\t\treject with icmpx type admin-prohibited\n"
		"\t}\n");
	free(s);
}

static void test_source_dest(void **state)
{
	struct fixture fx;
	char *s;

	variant_init(&fx, V_SOURCE_DEST);
	s = body_of(&fx);
	assert_non_null(strstr(s, "\tset sticky.secure.isp1.v6 {\n"
				  "\t\ttype ipv6_addr . ipv6_addr\n"
				  "\t\tflags dynamic,timeout\n"
				  "\t\ttimeout 1h30m1s500ms\n"
				  "\t}\n"));
	assert_chain(s, "pick.secure.isp1",
		"\tchain pick.secure.isp1 {\n"
		"\t\tupdate @sticky.secure.isp1.v4 { ip saddr . ip daddr and 255.255.255.0 }\n"
		"\t\tupdate @sticky.secure.isp1.v6 { ip6 saddr . ip6 daddr and ffff:ffff:ffff:ffff:: }\n"
		"\t\tgoto mark.isp1\n"
		"\t}\n");
	assert_non_null(strstr(s, "\t\tip saddr . ip daddr and 255.255.255.0 "
				  "@sticky.secure.isp2.v4 goto pick.secure.isp2\n"));
	free(s);

	/* A full-length destination prefix needs no mask. */
	fx.pol[1].sticky_prefix4 = 32;
	s = body_of(&fx);
	assert_non_null(strstr(s, "update @sticky.secure.isp1.v4 { ip saddr . ip daddr }"));
	assert_null(strstr(s, "255.255.255.255"));
	free(s);
}

static void test_no_output(void **state)
{
	struct fixture fx;
	char *s, *c;

	variant_init(&fx, V_NO_OUTPUT);
	s = body_of(&fx);
	/* only the probes' marks are recorded, for their replies */
	assert_chain(s, "output",
		"\tchain output {\n"
		"\t\ttype route hook output priority mangle; policy accept;\n"
		"\t\tct state != new return\n"
		"\t\tmeta mark and 0x0000ff00 vmap { 0x00000100 : goto mark.isp1, 0x00000200 : goto mark.isp2, 0x00000300 : goto mark.isp_3 }\n"
		"\t}\n");
	assert_null(strstr(s, "jump classify"));
	assert_null(strstr(s, "dst.banks"));
	assert_chain(s, "classify",
		"\tchain classify {\n"
		"\t\tcomment \"new connections: the first matching rule wins\"\n"
		"\t\tgoto policy.balance comment \"default policy\"\n"
		"\t}\n");
	free(s);
	/* Negative: output back on. */
	fx.m.output = true;
	s = body_of(&fx);
	c = chain_of(s, "output");
	assert_non_null(c);
	assert_non_null(strstr(c, "\t\tjump classify\n\t}\n"));
	free(c);
	free(s);
}

/* Rules: family split, merging, ports, ICMP of a family. */
static void test_rule_forms(void **state)
{
	struct fixture fx;
	struct cidr src[3], dst[1];
	struct range ports[2] = { { 443, 443 }, { 80, 80 } };
	char *s;

	fixture_init(&fx);
	src[0] = pfx("10.1.0.0/16");
	src[1] = pfx("2001:db8:2::/48");
	src[2] = pfx("10.2.0.0/16");
	dst[0] = pfx("192.0.2.1");
	fx.rules[0] = (struct policy_rule){ .name = "Web Out", .src = src, .n_src = 3,
		.proto = IPPROTO_TCP, .dport = ports, .n_dport = 2, .iif = "lan0", .policy = 1 };
	fx.rules[1] = (struct policy_rule){ .dst = dst, .n_dst = 1, .proto = IPPROTO_ICMP,
		.policy = 0 };
	fx.m.n_rules = 2;
	s = body_of(&fx);
	assert_chain(s, "classify",
		"\tchain classify {\n"
		"\t\tcomment \"new connections: the first matching rule wins\"\n"
		"\t\tiifname \"lan0\" ip saddr { 10.1.0.0/16, 10.2.0.0/16 } tcp dport { 80, 443 } "
		"goto policy.secure comment \"rule web_out\"\n"
		"\t\tiifname \"lan0\" ip6 saddr 2001:db8:2::/48 tcp dport { 80, 443 } "
		"goto policy.secure comment \"rule web_out\"\n"
		"\t\tip daddr 192.0.2.1 meta l4proto icmp goto policy.balance comment \"rule 2\"\n"
		"\t\tgoto policy.balance comment \"default policy\"\n"
		"\t}\n");
	free(s);
}

/* The sticky sets a body declares, by name: only those of chosen members. */
static void test_sticky_sets(void **state)
{
	struct fixture fx;
	char **names = NULL;

	variant_init(&fx, V_MAIN);
	assert_int_equal(policy_nft_sticky_sets(&fx.m, &names), 0);
	assert_non_null(names);
	assert_string_equal(names[0], "sticky.secure.isp1.v4");
	assert_string_equal(names[1], "sticky.secure.isp1.v6");
	assert_string_equal(names[2], "sticky.secure.isp2.v4");
	assert_null(names[3]);
	policy_nft_names_free(names);

	/* isp2 down: its set goes; tier 1 down: only tier 2's */
	variant_init(&fx, V_ISP2_DOWN);
	assert_int_equal(policy_nft_sticky_sets(&fx.m, &names), 0);
	assert_string_equal(names[1], "sticky.secure.isp1.v6");
	assert_null(names[2]);
	policy_nft_names_free(names);
	variant_init(&fx, V_TIER1_DOWN);
	assert_int_equal(policy_nft_sticky_sets(&fx.m, &names), 0);
	assert_string_equal(names[0], "sticky.secure.isp_3.v4");
	assert_string_equal(names[1], "sticky.secure.isp_3.v6");
	assert_null(names[2]);
	policy_nft_names_free(names);

	/* negative: an inconsistent model gives nothing */
	fx.m.mark_mask = 0;
	names = (char **)&fx;
	assert_int_equal(policy_nft_sticky_sets(&fx.m, &names), -EINVAL);
	assert_ptr_equal(names, (char **)&fx);
}

/* `nft -j list set` of sticky sets, as libnftables 1.0.6 prints them. */
static const char json_sticky_v4[] =
	"{\"nftables\": [{\"metainfo\": {\"version\": \"1.0.6\", \"json_schema_version\": 1}}, "
	"{\"set\": {\"family\": \"inet\", \"name\": \"sticky.secure.isp1.v4\", "
	"\"table\": \"egress\", \"type\": \"ipv4_addr\", \"handle\": 1, "
	"\"flags\": [\"timeout\"], \"timeout\": 1800, \"elem\": ["
	"{\"elem\": {\"val\": \"10.0.0.2\", \"expires\": 99}}, "
	"{\"elem\": {\"val\": \"10.0.0.3\", \"timeout\": 3600, \"expires\": 3599}}, "
	"{\"elem\": {\"val\": \"10.0.0.4\"}}, "			/* under a second left */
	"{\"elem\": {\"val\": \"10.0.0.5\", \"expires\": 0}}, "
	"\"10.0.0.6\", "						/* no timeout at all */
	"{\"elem\": {\"val\": \"localhost\", \"expires\": 50}}, "	/* not a literal */
	"{\"elem\": {\"val\": {\"prefix\": {\"addr\": \"10.1.0.0\", \"len\": 16}}, "
	"\"expires\": 50}}]}}]}";
static const char json_sticky_pair[] =
	"{\"nftables\": [{\"set\": {\"family\": \"inet\", \"name\": \"sticky.secure.isp1.v4\", "
	"\"table\": \"egress\", \"type\": [\"ipv4_addr\", \"ipv4_addr\"], \"timeout\": 1800, "
	"\"elem\": [{\"elem\": {\"val\": {\"concat\": [\"10.0.0.1\", \"1.2.3.0\"]}, "
	"\"expires\": 599}}, "
	"{\"elem\": {\"val\": {\"concat\": [\"10.0.0.1\"]}, \"expires\": 599}}]}}]}";

static struct policy_sticky_elem *parse_json(const char *text, size_t *n)
{
	struct policy_sticky_elem *e = NULL;
	json_t *root = json_loads(text, 0, NULL);

	assert_non_null(root);
	assert_int_equal(policy_nft_sticky_parse(root, &e, n), 0);
	json_decref(root);
	return e;
}

static void test_sticky_parse(void **state)
{
	struct policy_sticky_elem *e;
	char a[ADDR_STRLEN];
	json_t *root;
	size_t n;

	e = parse_json(json_sticky_v4, &n);
	assert_int_equal(n, 2);
	assert_string_equal(addr_str(&e[0].src, a, sizeof(a)), "10.0.0.2");
	assert_false(addr_is_set(&e[0].dst));
	assert_int_equal(e[0].expires_ms, 99000);
	assert_string_equal(addr_str(&e[1].src, a, sizeof(a)), "10.0.0.3");
	assert_int_equal(e[1].expires_ms, 3599000);
	free(e);

	e = parse_json(json_sticky_pair, &n);
	assert_int_equal(n, 1);
	assert_string_equal(addr_str(&e[0].src, a, sizeof(a)), "10.0.0.1");
	assert_string_equal(addr_str(&e[0].dst, a, sizeof(a)), "1.2.3.0");
	assert_int_equal(e[0].expires_ms, 599000);
	free(e);

	/* an empty set; and negative: no set at all */
	e = parse_json("{\"nftables\": [{\"set\": {\"name\": \"x\"}}]}", &n);
	assert_int_equal(n, 0);
	assert_null(e);
	root = json_loads("{\"nftables\": [{\"metainfo\": {}}]}", 0, NULL);
	assert_int_equal(policy_nft_sticky_parse(root, &e, &n), -EBADMSG);
	json_decref(root);
}

static struct policy_sticky_elem sticky_elem(const char *src, const char *dst, uint32_t ms)
{
	struct policy_sticky_elem e = { .expires_ms = ms };

	assert_int_equal(addr_parse(src, &e.src), 0);
	if (dst)
		assert_int_equal(addr_parse(dst, &e.dst), 0);
	return e;
}

/* Carried entries go back into the sets still declared, with what was left of their time. */
static void test_carry(void **state)
{
	struct policy_sticky_elem isp1[4], isp1v6[1], isp2[1], isp3[1];
	struct policy_carry carry[5];
	struct fixture fx;
	char *s, *set;

	isp1[0] = sticky_elem("10.0.0.2", NULL, 99000);
	isp1[1] = sticky_elem("10.0.0.3", NULL, 3599000);	   /* longer than the set's 30m */
	isp1[2] = sticky_elem("2001:db8::2", NULL, 5000);	   /* the other family */
	isp1[3] = sticky_elem("10.0.0.4", "1.2.3.0", 5000);	   /* a pair in a source set */
	isp1v6[0] = sticky_elem("2001:db8::7", NULL, 61500);
	isp2[0] = sticky_elem("10.0.0.9", NULL, 1000);
	isp3[0] = sticky_elem("10.0.0.33", NULL, 1000);
	carry[0] = (struct policy_carry){ "sticky.secure.isp1.v4", isp1, 4 };
	carry[1] = (struct policy_carry){ "sticky.secure.isp1.v6", isp1v6, 1 };
	carry[2] = (struct policy_carry){ "sticky.secure.isp2.v4", isp2, 1 };
	carry[3] = (struct policy_carry){ "sticky.secure.isp_3.v4", isp3, 1 }; /* not chosen */
	carry[4] = (struct policy_carry){ "sticky.secure.isp2.v6", isp2, 1 };  /* no such set */

	variant_init(&fx, V_MAIN);
	fx.m.carry = carry;
	fx.m.n_carry = 5;
	s = body_of(&fx);
	assert_non_null(strstr(s, "\tset sticky.secure.isp1.v4 {\n"
				  "\t\ttype ipv4_addr\n"
				  "\t\tflags dynamic,timeout\n"
				  "\t\ttimeout 30m\n"
				  "\t\telements = { 10.0.0.2 expires 1m39s, 10.0.0.3 expires 30m }\n"
				  "\t}\n"));
	assert_non_null(strstr(s, "\t\ttimeout 30m\n"
				  "\t\telements = { 2001:db8::7 expires 1m1s500ms }\n"
				  "\t}\n"));
	assert_non_null(strstr(s, "elements = { 10.0.0.9 expires 1s }"));
	assert_null(strstr(s, "10.0.0.33"));
	assert_null(strstr(s, "10.0.0.4"));
	/* everything else is the text without carry */
	set = strstr(s, "\tchain mark.isp1");
	assert_non_null(set);
	assert_string_equal(set, strstr(golden_main, "\tchain mark.isp1"));
	free(s);

	/* isp2 goes down: its clients' entries go with its set, isp1's stay */
	fx.up[1].usable = false;
	s = body_of(&fx);
	assert_null(strstr(s, "10.0.0.9"));
	assert_non_null(strstr(s, "elements = { 10.0.0.2 expires 1m39s, 10.0.0.3 expires 30m }"));
	free(s);

	/* source-dest affinity takes pairs masked as its prefix is now, nothing else */
	variant_init(&fx, V_SOURCE_DEST);
	isp1[3] = sticky_elem("10.0.0.4", "1.2.3.0", 5000);
	isp1[2] = sticky_elem("10.0.0.5", "1.2.3.4", 5000); /* masked with another length */
	fx.m.carry = carry;
	fx.m.n_carry = 1;
	s = body_of(&fx);
	assert_non_null(strstr(s, "\t\ttimeout 1h30m1s500ms\n"
				  "\t\telements = { 10.0.0.4 . 1.2.3.0 expires 5s }\n"));
	assert_null(strstr(s, "10.0.0.2"));
	assert_null(strstr(s, "10.0.0.5"));
	free(s);
}

/* A sticky set whose declaration did not change can stay in the running table: the body
 * then leaves it out. */
static void test_keep_sets(void **state)
{
	static const char *const keep[] = { "sticky.secure.isp1.v4", NULL };
	struct fixture fx;
	char *old, *s;

	variant_init(&fx, V_MAIN);
	old = body_of(&fx);
	fx.up[1].usable = false;
	s = body_of(&fx);
	assert_true(policy_nft_set_same(old, s, "sticky.secure.isp1.v4"));
	assert_true(policy_nft_set_same(old, s, "sticky.secure.isp1.v6"));
	/* negative: a set one body lacks, a set whose timeout changed */
	assert_false(policy_nft_set_same(old, s, "sticky.secure.isp2.v4"));
	assert_false(policy_nft_set_same(NULL, s, "sticky.secure.isp1.v4"));
	free(s);
	fx.pol[1].sticky_timeout_ms = 20 * 60 * 1000;
	s = body_of(&fx);
	assert_false(policy_nft_set_same(old, s, "sticky.secure.isp1.v4"));
	free(s);

	fx.pol[1].sticky_timeout_ms = 30 * 60 * 1000;
	fx.m.keep_sets = keep;
	s = body_of(&fx);
	assert_null(strstr(s, "\tset sticky.secure.isp1.v4 {"));
	assert_non_null(strstr(s, "\tset sticky.secure.isp1.v6 {"));
	/* the rules still use it */
	assert_non_null(strstr(s, "ip saddr @sticky.secure.isp1.v4 goto pick.secure.isp1"));
	free(s);
	free(old);
}

/* Every inconsistent model is refused, and *ret is left alone. */
static void test_einval(void **state)
{
	static const struct range bad_port = { 1, 65536 };
	struct fixture fx;
	char *s;
	int i;

	for (i = 0;; i++) {
		fixture_init(&fx);
		switch (i) {
		case 0: fx.up[0].mark = 0x10100; break;		/* outside the mask */
		case 1: fx.up[0].mark = 0; break;		/* zero */
		case 2: fx.up[2].mark = 0x100; break;		/* duplicate */
		case 3: fx.bal[1].weight = 0; break;
		case 4: fx.bal[1].weight = 257; break;
		case 5: fx.rules[0].dst_set = "nosuch"; break;
		case 6: fx.rules[1].proto = 0; break;		/* dport without tcp/udp */
		case 7: fx.rules[1].proto = IPPROTO_ICMP; break;
		case 8: fx.up[1].name = "ISP1"; break;		/* clashes with isp1 */
		case 9: fx.up[1].ifname = NULL; break;		/* masquerade without ifname */
		case 10: fx.m.default_policy = 2; break;
		case 11: fx.rules[2].policy = 2; break;
		case 12: fx.rules[1].dport = &bad_port; fx.rules[1].n_dport = 1; break;
		case 13: fx.sec[2].tier = 0; break;
		case 14: fx.sec[2].uplink = 0; break;		/* isp1 twice */
		case 15: fx.sec[2].uplink = 3; break;		/* no such uplink */
		case 16: fx.pol[1].sticky_timeout_ms = 0; break;
		case 17: fx.pol[1].sticky = POLICY_STICKY_SOURCE_DEST; break; /* prefix 0 */
		case 18: fx.up[0].ifname = "eth\"1"; break;
		case 19: fx.lan[1] = "eth2"; break;		/* a LAN that is an uplink */
		case 20: fx.m.mark_mask = 0; break;
		case 21: fx.pol[0].name = ""; break;
		case 22: fx.rules[3].proto = 47; break;	/* GRE: not supported */
		case 23: fx.m.n_policies = 0; break;
		case 24: fx.pol[1].last_resort = _POLICY_LAST_MAX; break;
		case 25: fx.banks[1].addr.family = 0; break;
		case 26: fx.lan[0] = "a-very-long-interface"; break;
		case 27: fx.m.n_carry = 1; break;		/* without carry */
		case 28: fx.m.probe_mark = 0x200; break;	/* isp2's mark */
		case 29: fx.m.probe_mark = 0x10000; break;	/* outside the mask */
		default: return;
		}
		s = (char *)&fx; /* sentinel */
		if (policy_nft_body(&fx.m, &s) != -EINVAL)
			fail_msg("case %d: not refused", i);
		assert_ptr_equal(s, (char *)&fx);
		/* Negative: the unchanged fixture is accepted. */
		fixture_init(&fx);
		s = body_of(&fx);
		free(s);
	}
}

/* flow is plain with the flowtable block before mark.isp1 and the forward chain at the end. */
static __attribute__((noinline)) void assert_flow_rest(const char *plain, const char *flow)
{
	const char *at = "\tchain mark.isp1 {\n";
	size_t head = (size_t)(strstr(plain, at) - plain), n = strlen(plain) - head;
	const char *tail = strstr(flow, at);
	char *fwd = chain_of(flow, "forward");

	assert_int_equal(strncmp(flow, plain, head), 0);
	assert_int_equal(strncmp(tail, plain + head, n), 0);
	assert_string_equal(tail + n, fwd);
	free(fwd);
}

/* The flowtable, where the kernel has one: declared on every LAN and uplink interface, filled
 * from a forward chain with established connections of ours; everything else unchanged. */
static void test_flowtable(void **state)
{
	struct fixture fx;
	char *plain, *flow;

	variant_init(&fx, V_MAIN);
	plain = body_of(&fx);
	/* Negative: a kernel without flowtables gets none and no forward chain. */
	assert_null(strstr(plain, "flowtable"));
	assert_null(chain_of(plain, "forward"));
	fx.m.flowtable = true;
	flow = body_of(&fx);
	assert_non_null(strstr(flow, "\tflowtable fast {\n"
				     "\t\thook ingress priority filter\n"
				     "\t\tdevices = { \"lan0\", \"lan1\", \"eth1\", \"eth2\", "
				     "\"wwan0\" }\n"
				     "\t}\n"
				     "\tchain mark.isp1 {\n"));
	assert_chain(flow, "forward",
		"\tchain forward {\n"
		"\t\ttype filter hook forward priority filter; policy accept;\n"
		"\t\tct state established ct mark and 0x0000ff00 != 0 meta l4proto { tcp, udp } "
		"flow add @fast comment \"established: the flowtable from now on\"\n"
		"\t}\n");
	/* The rest is the same text: the ruleset's path stays for what the flowtable lacks. */
	assert_flow_rest(plain, flow);
	free(flow);
	/* No LAN interface: nothing to forward through a flowtable. */
	variant_init(&fx, V_NO_OUTPUT);
	fx.m.flowtable = true;
	flow = body_of(&fx);
	assert_null(strstr(flow, "flowtable"));
	free(flow);
	free(plain);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_golden_main),
		cmocka_unit_test(test_uplink_down),
		cmocka_unit_test(test_uplink_drained),
		cmocka_unit_test(test_tier_down),
		cmocka_unit_test(test_all_down),
		cmocka_unit_test(test_source_dest),
		cmocka_unit_test(test_no_output),
		cmocka_unit_test(test_rule_forms),
		cmocka_unit_test(test_sticky_sets),
		cmocka_unit_test(test_sticky_parse),
		cmocka_unit_test(test_carry),
		cmocka_unit_test(test_keep_sets),
		cmocka_unit_test(test_einval),
		cmocka_unit_test(test_flowtable),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
