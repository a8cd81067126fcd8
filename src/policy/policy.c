/*
 * policy.c - the policy module: configuration and uplink states in, kernel state out.
 *
 * On every change (an uplink's state, its link, a reload) and at most once per loop turn:
 *  1. build the model (policy_nft.h) from the configuration and the uplinks' states;
 *  2. replace table inet egress with the generated body in one nftables transaction -
 *     if the kernel refuses it, the running table stays as it was and the error is logged;
 *     the sticky sets of the uplinks still chosen stay in place or take over the entries
 *     of the running table's (affinity_take()), so that affinity outlives the change;
 *  3. per uplink, keep its routing table's default route, its fwmark rule and the rule of
 *     its interface into main, beside the rules for the gateway's own traffic and the probe
 *     mark (routing_reconcile(); ours are found by protocol, priority and table -
 *     rule_mine_cb() - so a restart adopts them without duplicates, and removes at once
 *     those of uplinks that are gone);
 *  4. for each uplink that stopped being usable, delete the conntrack entries carrying
 *     its mark, and only those: their clients reconnect at once through another uplink.
 *     A drained uplink ([uplink] enabled = false) only leaves the choice: its routing
 *     table, rule and conntrack entries stay, so its connections go on until they end;
 *     its sticky sets go with the choice (its clients choose again for new connections,
 *     and stay where they went when it comes back, as after a failure);
 *  5. hold the kernel settings this needs (forwarding; per uplink src_valid_mark, loose
 *     rp_filter, accept_ra 2 where it was 1) through sysctl.h, which puts them back.
 *
 * Must not touch anything but table inet egress, rules of our protocol in our priority
 * range that look up our tables, the default routes of our protocol in those tables, and
 * the settings of 5.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <net/if.h>

#include <linux/fib_rules.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>

#include <event2/event.h>

#include "conf_keys.h"
#include "log.h"
#include "module.h"
#include "nft.h"
#include "nl.h"
#include "policy.h"
#include "policy_conf.h"
#include "policy_nft.h"
#include "sysctl.h"
#include "uplink.h"
#include "util.h"

/* Rules of ours live in [rule_priority, rule_priority + POLICY_MAX_UPLINKS). */
#define POLICY_MAX_UPLINKS CONF_BALANCE_RULES
#define RETRY_SEC 2

/* What the last apply left, to tell what changed. */
struct policy_seen {
	char name[64];
	uint32_t mark;
	bool usable;  /* in the choice */
	bool healthy; /* up or degraded, drained or not: its connections may stay */
};

struct policy_module {
	struct event_base *base;
	struct uplink_set *set;
	const struct conf *conf;
	struct nft *nft;
	struct nl *nl; /* NETLINK_ROUTE: rules, routes */
	struct nl *ct; /* NETLINK_NETFILTER: conntrack */
	struct event *apply_ev;
	struct event *retry_ev;
	bool applied; /* the table is in place */
	int adopt;    /* an earlier run's table is running: -1 not looked yet, 0 no, 1 yes */
	char *body;   /* the body last applied */
	struct policy_seen *seen;
	size_t n_seen;
	/* tables whose default route is ours, for the stop */
	uint32_t *tables;
	size_t n_tables;
	uint32_t prio;	     /* rule_priority in force */
	uint32_t table_base; /* table_base in force */
	uint32_t mask;
	bool keep;
	bool strict_said; /* the note on a strict all.rp_filter is logged */
	bool flowtable;	  /* the kernel has nftables flowtables (probed at start) */
};

/* Everything the model points at, freed together. */
struct model_buf {
	struct policy_model m;
	struct policy_uplink *uplinks;
	struct policy_def *policies;
	struct policy_member **members;
	struct policy_set *sets;
	struct policy_rule *rules;
	const char **lan;
	struct policy_carry *carry;
	bool *healthy;				 /* per uplink: up or degraded */
	struct policy_sticky_elem **carry_elems; /* carry[i].elems, to free */
	char **carry_sets;			 /* carry[i].set and keep_sets point into it */
	const char **keep_sets;
};

static void model_buf_clear(struct model_buf *b)
{
	for (size_t i = 0; i < b->m.n_policies; i++)
		free(b->members[i]);
	free(b->members);
	free(b->uplinks);
	free(b->healthy);
	free(b->policies);
	free(b->sets);
	free(b->rules);
	free(b->lan);
	for (size_t i = 0; i < b->m.n_carry; i++)
		free(b->carry_elems[i]);
	free(b->carry_elems);
	free(b->carry);
	policy_nft_names_free(b->carry_sets);
	free(b->keep_sets);
	memset(b, 0, sizeof(*b));
}

static bool uplink_v4(const struct conf_uplink *u)
{
	return !addr_is_set(&u->gateway) || u->gateway.family == AF_INET;
}

static bool uplink_v6(const struct conf_uplink *u)
{
	return addr_is_set(&u->gateway6) ||
	       (addr_is_set(&u->gateway) && u->gateway.family == AF_INET6);
}

/* The uplink's next hop for family f (unset: the link itself). */
static struct addr uplink_gw(const struct conf_uplink *u, int f)
{
	if (f == AF_INET6 && addr_is_set(&u->gateway6))
		return u->gateway6;
	if (addr_is_set(&u->gateway) && u->gateway.family == f)
		return u->gateway;
	return (struct addr){0};
}

/* Position of the uplink called name among conf's own uplinks; -1 if none. */
static int uplink_index(const struct conf *conf, const char *name)
{
	for (size_t i = 0; i < conf_n_uplinks(conf); i++)
		if (streq(conf_uplink_at(conf, i)->s.name, name))
			return (int)i;
	return -1;
}

static int policy_index(const struct conf *conf, const char *name)
{
	const struct conf_list *l = conf_sections(conf, "policy");

	for (size_t i = 0; i < l->n; i++)
		if (streq(l->items[i]->name, name))
			return (int)i;
	return -1;
}

static const int proto_number[_RULE_PROTO_MAX] = {
	[RULE_PROTO_ANY] = 0,
	[RULE_PROTO_TCP] = IPPROTO_TCP,
	[RULE_PROTO_UDP] = IPPROTO_UDP,
	[RULE_PROTO_ICMP] = IPPROTO_ICMP,
};

/*
 * Do all LAN and uplink interfaces exist now?  A flowtable naming a missing device is refused
 * by the kernel, so without one of them the table has no flowtable until the next apply.
 */
static bool flow_devs_exist(const struct conf *conf)
{
	const struct conf_balance *bal = conf_balance(conf);
	size_t i;

	for (i = 0; i < bal->lan.n; i++)
		if (if_nametoindex(bal->lan.v[i]) == 0)
			return false;
	for (i = 0; i < conf_n_uplinks(conf); i++) {
		const struct conf_uplink *c = conf_uplink_at(conf, i);

		if (c->interface[0] && if_nametoindex(c->interface) == 0)
			return false;
	}
	return true;
}

static void model_build(struct policy_module *pm, struct model_buf *b)
{
	const struct conf *conf = pm->conf;
	const struct conf_balance *bal = conf_balance(conf);
	const struct conf_list *pl = conf_sections(conf, "policy");
	const struct conf_list *sl = conf_sections(conf, "set");
	const struct conf_list *rl = conf_sections(conf, "rule");
	size_t n = conf_n_uplinks(conf);

	memset(b, 0, sizeof(*b));
	b->m.mark_mask = bal->mark_mask;
	b->lan = xcalloc(bal->lan.n + 1, sizeof(*b->lan));
	for (size_t i = 0; i < bal->lan.n; i++)
		b->lan[i] = bal->lan.v[i];
	b->m.lan = b->lan;
	b->m.n_lan = bal->lan.n;
	b->m.output = bal->output;
	b->m.probe_mark = conf_balance_probe_mark(conf, bal);
	b->m.flowtable = pm->flowtable && flow_devs_exist(conf);

	b->uplinks = xcalloc(n + 1, sizeof(*b->uplinks));
	b->healthy = xcalloc(n + 1, sizeof(*b->healthy));
	for (size_t i = 0; i < n; i++) {
		const struct conf_uplink *c = conf_uplink_at(conf, i);
		const struct uplink *u = uplink_find(pm->set, c->s.name);
		struct policy_uplink *p = &b->uplinks[i];
		p->name = c->s.name;
		p->ifname = c->interface[0] ? c->interface : NULL; /* none: a gateway of [route] */
		p->mark = conf_uplink_mark(bal, c, i);
		p->v4 = uplink_v4(c);
		p->v6 = uplink_v6(c);
		/* an uplink without interface (a gateway of [route]) cannot carry policy traffic */
		b->healthy[i] = c->interface[0] && u && uplink_usable(u);
		p->usable = b->healthy[i] && u->enabled;
		p->drained = u && !u->enabled;
		p->masquerade = c->masquerade;
	}
	b->m.uplinks = b->uplinks;
	b->m.n_uplinks = n;

	b->policies = xcalloc(pl->n + 1, sizeof(*b->policies));
	b->members = xcalloc(pl->n + 1, sizeof(*b->members));
	for (size_t i = 0; i < pl->n; i++) {
		const struct conf_policy *cp = (const struct conf_policy *)pl->items[i];
		struct policy_def *d = &b->policies[i];
		b->members[i] = xcalloc(cp->members.n + 1, sizeof(**b->members));
		for (size_t j = 0; j < cp->members.n; j++) {
			struct policy_member_spec ms;
			policy_member_parse(cp->members.v[j], &ms); /* validated */
			int ui = uplink_index(conf, ms.uplink);
			const struct conf_uplink *cu = conf_uplink_at(conf, (size_t)ui);
			b->members[i][j].uplink = (size_t)ui;
			b->members[i][j].weight = ms.weight ? ms.weight : cu->weight;
			b->members[i][j].tier = ms.tier ? ms.tier : cu->tier;
		}
		d->name = cp->s.name;
		d->members = b->members[i];
		d->n_members = cp->members.n;
		d->sticky = cp->sticky == STICKY_SOURCE	       ? POLICY_STICKY_SOURCE
			    : cp->sticky == STICKY_SOURCE_DEST ? POLICY_STICKY_SOURCE_DEST
							       : POLICY_STICKY_NONE;
		d->sticky_timeout_ms = cp->sticky_timeout_ms;
		d->sticky_prefix4 = (uint8_t)cp->sticky_prefix4;
		d->sticky_prefix6 = (uint8_t)cp->sticky_prefix6;
		d->last_resort = cp->last_resort == LAST_RESORT_REJECT ? POLICY_LAST_REJECT
								       : POLICY_LAST_MAIN;
	}
	b->m.policies = b->policies;
	b->m.n_policies = pl->n;
	b->m.default_policy = bal->default_policy ? policy_index(conf, bal->default_policy) : 0;

	b->sets = xcalloc(sl->n + 1, sizeof(*b->sets));
	for (size_t i = 0; i < sl->n; i++) {
		const struct conf_set *cs = (const struct conf_set *)sl->items[i];
		b->sets[i].name = cs->s.name;
		b->sets[i].prefixes = cs->prefixes.v;
		b->sets[i].n = cs->prefixes.n;
	}
	b->m.sets = b->sets;
	b->m.n_sets = sl->n;

	b->rules = xcalloc(rl->n + 1, sizeof(*b->rules));
	for (size_t i = 0; i < rl->n; i++) {
		const struct conf_rule *cr = (const struct conf_rule *)rl->items[i];
		struct policy_rule *r = &b->rules[i];
		r->name = cr->s.name;
		r->src = cr->src.v;
		r->n_src = cr->src.n;
		r->dst = cr->dst.v;
		r->n_dst = cr->dst.n;
		r->dst_set = cr->dst_set;
		r->proto = proto_number[cr->proto];
		r->dport = cr->dport.v;
		r->n_dport = cr->dport.n;
		r->iif = cr->iif[0] ? cr->iif : NULL;
		r->policy = streq(cr->policy, "main") ? -1 : policy_index(conf, cr->policy);
	}
	b->m.rules = b->rules;
	b->m.n_rules = rl->n;
}

/* ------------------------------------------------------------ routes and rules */

/*
 * The kernel settings a balancing gateway needs, held while the module runs (sysctl.h puts
 * them back).  Replies that come in through an uplink carry its mark again (restore.UP),
 * and with src_valid_mark the reverse-path check looks them up with it: in the uplink's
 * own table, whose default route leaves by that interface.  So they pass even when main
 * has no route back, and even under strict filtering - which matters, because the
 * effective rp_filter is the higher of `all` and the interface's: loose on the interface
 * does not loosen a host whose `all` is strict, and we do not weaken the host's other
 * interfaces to make it.
 */
static void uplink_sysctls(struct policy_module *pm, const struct conf_uplink *c)
{
	char key[128], why[128];
	int v;

	snprintf(why, sizeof(why), "uplink %s: its replies are checked with its mark", c->s.name);
	snprintf(key, sizeof(key), "net/ipv4/conf/%s/src_valid_mark", c->interface);
	sysctl_hold(pm, key, 1, why);
	snprintf(why, sizeof(why), "uplink %s: loose reverse-path filtering", c->s.name);
	snprintf(key, sizeof(key), "net/ipv4/conf/%s/rp_filter", c->interface);
	sysctl_hold(pm, key, 2, why);
	/* forwarding turns router advertisements off where accept_ra is 1: keep taking them */
	snprintf(key, sizeof(key), "net/ipv6/conf/%s/accept_ra", c->interface);
	if (uplink_v6(c) && sysctl_read(key, &v) == 0 && v > 0) { /* 2: ours, or theirs */
		snprintf(why, sizeof(why), "uplink %s: router advertisements while forwarding",
			c->s.name);
		sysctl_hold(pm, key, 2, why);
	}
}

static void host_sysctls(struct policy_module *pm, bool v4, bool v6)
{
	int all = 0;

	if (v4)
		sysctl_hold(pm, "net/ipv4/ip_forward", 1, "policy: the LAN is forwarded");
	if (v6)
		sysctl_hold(pm, "net/ipv6/conf/all/forwarding", 1, "policy: the LAN is forwarded");
	if (v4 && sysctl_read("net/ipv4/conf/all/rp_filter", &all) == 0 && all == 1 &&
		!pm->strict_said) {
		log_info("policy: net.ipv4.conf.all.rp_filter is 1 (strict), so the uplinks' "
			 "filtering stays strict; replies pass it with their uplink's mark");
		pm->strict_said = true;
	}
}

static bool table_known(const struct policy_module *pm, uint32_t table)
{
	for (size_t i = 0; i < pm->n_tables; i++)
		if (pm->tables[i] == table)
			return true;
	return false;
}

static void table_remember(struct policy_module *pm, uint32_t table)
{
	if (table_known(pm, table))
		return;
	pm->tables = xrealloc(pm->tables, (pm->n_tables + 1) * sizeof(*pm->tables));
	pm->tables[pm->n_tables++] = table;
}

/*
 * Is r (our protocol, our priority range) ours?  At rule_priority, a rule into main: the
 * gateway's own (iif lo) with suppress_prefixlength 0, or by an uplink's incoming interface
 * (earlier versions had one for all, with suppress_prefixlength 0: it goes); at
 * rule_priority + 1 + i, a rule by mark into a table of ours: one an uplink has had in this
 * run, or table_base + i, uplink i's by default (an earlier run's too, one with more
 * uplinks); at the last priority of the range, the probe mark's unreachable rule.  Another
 * tool's rule in the range is none of these.  The tables of ours found are remembered:
 * their routes go when no rule of ours needs them.
 */
static bool rule_mine_cb(const struct nl_rule *r, void *arg)
{
	struct policy_module *pm = arg;
	uint32_t i = r->priority - pm->prio;

	if (i == 0)
		return r->table == RT_TABLE_MAIN && !r->has_fwmark && !r->oif[0] &&
		       !r->src.plen && !r->dst.plen && (r->has_suppress_prefixlen || r->iif[0]);
	if (i == POLICY_MAX_UPLINKS - 1)
		return r->action == FR_ACT_UNREACHABLE && r->has_fwmark && !r->iif[0] &&
		       !r->oif[0] && !r->src.plen && !r->dst.plen;
	if (!r->has_fwmark ||
		(r->table != (uint64_t)pm->table_base + i - 1 && !table_known(pm, r->table)))
		return false;
	table_remember(pm, r->table);
	return true;
}

/* Make our rules exactly want[0..n). 0 or the first error. */
static int rules_reconcile(struct policy_module *pm, const struct nl_rule *want, size_t n)
{
	int r = nl_rule_reconcile_mine(pm->nl, RTPROT_EGRESS, pm->prio,
		pm->prio + POLICY_MAX_UPLINKS, rule_mine_cb, pm, want, n);

	if (r < 0)
		log_warnx("policy: rules: %s%s%s", strerror(-r), *nl_last_error(pm->nl) ? ": " : "",
			nl_last_error(pm->nl));
	return r;
}

static void table_default_del(struct policy_module *pm, uint32_t table)
{
	for (int f = 0; f < 2; f++) {
		struct nl_route rt = {.family = f ? AF_INET6 : AF_INET, .table = table,
			.protocol = RTPROT_EGRESS};
		nl_route_apply(pm->nl, NL_DEL, &rt);
	}
}

/* The default routes of the tables no rule of ours (want[0..n)) looks up any more: their
 * uplinks went away, in this run or since an earlier one. */
static void tables_prune(struct policy_module *pm, const struct nl_rule *want, size_t n)
{
	size_t k = 0;

	for (size_t i = 0; i < pm->n_tables; i++) {
		bool used = false;

		for (size_t j = 0; j < n && !used; j++)
			used = want[j].has_fwmark && want[j].table == pm->tables[i];
		if (used)
			pm->tables[k++] = pm->tables[i];
		else
			table_default_del(pm, pm->tables[i]);
	}
	pm->n_tables = k;
}

/* Is a rule of family `family` from ifname already in want[0..n)? */
static bool iif_rule_wanted(const struct nl_rule *want, size_t n, int family, const char *ifname)
{
	for (size_t j = 0; j < n; j++)
		if (want[j].family == family && streq(want[j].iif, ifname))
			return true;
	return false;
}

/*
 * Each uplink's table gets its default route; each uplink its fwmark rule, and its
 * interface a rule into main.  So a balanced packet's first rule after the local table is
 * its uplink's: one lookup, in that table, as plain forwarding does one in main.
 *
 * That needs main's specific routes never to be wanted by a marked forwarded packet:
 *  - the ruleset marks no new connection from the LAN whose destination main routes by
 *    more than its default route.  It finds out with one lookup per new connection, under
 *    the probe mark (policy_nft.h): the rule `iif lo lookup main suppress_prefixlength 0`
 *    finds main's specific routes (nft's lookups come from lo), and where only the
 *    default would match, the probe mark's rule (`unreachable`, last in our range) makes
 *    the lookup fail;
 *  - replies carry their uplink's mark (their reverse-path check looks the sender up with
 *    it, in the uplink's table, where main may have no route back), but come in through
 *    the uplink's interface, whose rule into main (before the marks) routes them to the
 *    LAN: one lookup again;
 *  - the gateway's own packets (from lo) keep main's specific routes ahead of their mark,
 *    as before: the rule for lo.
 */
static int routing_reconcile(struct policy_module *pm)
{
	const struct conf *conf = pm->conf;
	const struct conf_balance *bal = conf_balance(conf);
	size_t n = conf_n_uplinks(conf);
	struct nl_rule *want = xcalloc(4 * n + 5, sizeof(*want));
	size_t n_want = 0;
	int r = 0, e;
	bool fam[2] = {false, false};

	sysctl_mark(pm);

	for (int f = 0; f < 2; f++) {
		want[n_want] = (struct nl_rule){.family = f ? AF_INET6 : AF_INET,
			.protocol = RTPROT_EGRESS, .has_priority = true, .priority = pm->prio,
			.table = RT_TABLE_MAIN, .has_suppress_prefixlen = true,
			.suppress_prefixlen = 0};
		snprintf(want[n_want].iif, sizeof(want[n_want].iif), "lo");
		n_want++;
		want[n_want++] = (struct nl_rule){.family = f ? AF_INET6 : AF_INET,
			.protocol = RTPROT_EGRESS, .has_priority = true,
			.priority = pm->prio + POLICY_MAX_UPLINKS - 1, .action = FR_ACT_UNREACHABLE,
			.has_fwmark = true, .fwmark = conf_balance_probe_mark(conf, bal),
			.fwmask = bal->mark_mask};
	}
	for (size_t i = 0; i < n && i + 2 < POLICY_MAX_UPLINKS; i++) {
		const struct conf_uplink *c = conf_uplink_at(conf, i);
		const struct uplink *u = uplink_find(pm->set, c->s.name);
		uint32_t table = conf_uplink_table(bal, c, i);

		if (c->s.origin || !c->interface[0])
			continue;
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;

			if (f ? !uplink_v6(c) : !uplink_v4(c))
				continue;
			if (iif_rule_wanted(want, n_want, family, c->interface))
				continue;
			want[n_want] = (struct nl_rule){.family = family,
				.protocol = RTPROT_EGRESS, .has_priority = true,
				.priority = pm->prio, .table = RT_TABLE_MAIN};
			snprintf(want[n_want].iif, sizeof(want[n_want].iif), "%s", c->interface);
			n_want++;
		}
		for (int f = 0; f < 2; f++) {
			if (f ? !uplink_v6(c) : !uplink_v4(c))
				continue;
			want[n_want++] = (struct nl_rule){.family = f ? AF_INET6 : AF_INET,
				.protocol = RTPROT_EGRESS, .has_priority = true,
				.priority = pm->prio + 1 + (uint32_t)i, .has_fwmark = true,
				.fwmark = conf_uplink_mark(bal, c, i), .fwmask = bal->mark_mask,
				.table = table};
		}
		table_remember(pm, table);
		fam[0] = fam[0] || uplink_v4(c);
		fam[1] = fam[1] || uplink_v6(c);
		if (!u || !u->ifindex)
			continue; /* no interface now: its link event brings us back */
		uplink_sysctls(pm, c);
		for (int f = 0; f < 2; f++) {
			int family = f ? AF_INET6 : AF_INET;
			if (f ? !uplink_v6(c) : !uplink_v4(c))
				continue;
			struct nl_route rt = {.family = family, .table = table,
				.protocol = RTPROT_EGRESS, .oif = u->ifindex, .gw = uplink_gw(c, family)};
			e = nl_route_apply(pm->nl, NL_REPLACE, &rt);
			if (e < 0) {
				log_debug("policy: uplink %s: default route in table %u: %s%s%s",
					c->s.name, table, strerror(-e),
					*nl_last_error(pm->nl) ? ": " : "", nl_last_error(pm->nl));
				r = r ? r : e;
			}
		}
	}
	host_sysctls(pm, fam[0], fam[1]);
	sysctl_sweep(pm);
	e = rules_reconcile(pm, want, n_want);
	if (e == 0)
		tables_prune(pm, want, n_want);
	free(want);
	return r ? r : e;
}

/* ------------------------------------------------------------ conntrack */

static const struct policy_seen *seen_find(const struct policy_module *pm, const char *name)
{
	for (size_t i = 0; i < pm->n_seen; i++)
		if (streq(pm->seen[i].name, name))
			return &pm->seen[i];
	return NULL;
}

/*
 * Delete the connections of uplinks that were healthy and are not now (or are gone, or
 * have another mark).  Draining is not failing: a drained uplink's connections stay.
 */
static void conntrack_flush(struct policy_module *pm, const struct model_buf *b)
{
	for (size_t i = 0; i < pm->n_seen; i++) {
		const struct policy_seen *old = &pm->seen[i];
		bool still = false;
		size_t count = 0;

		if (!old->healthy)
			continue;
		for (size_t j = 0; j < b->m.n_uplinks; j++)
			if (streq(b->uplinks[j].name, old->name) && b->healthy[j] &&
				b->uplinks[j].mark == old->mark)
				still = true;
		if (still)
			continue;
		nl_ct_count(pm->ct, AF_UNSPEC, old->mark, pm->mask, &count);
		int r = nl_ct_delete_mark(pm->ct, AF_UNSPEC, old->mark, pm->mask);
		if (r < 0)
			log_warnx("policy: uplink %s: deleting its connections: %s", old->name,
				strerror(-r));
		else
			log_info("policy: uplink %s: %zu connection%s deleted, clients reconnect "
				 "through the others",
				old->name, count, count == 1 ? "" : "s");
	}
}

static void seen_take(struct policy_module *pm, const struct model_buf *b)
{
	free(pm->seen);
	pm->seen = xcalloc(b->m.n_uplinks + 1, sizeof(*pm->seen));
	pm->n_seen = b->m.n_uplinks;
	for (size_t i = 0; i < b->m.n_uplinks; i++) {
		snprintf(pm->seen[i].name, sizeof(pm->seen[i].name), "%s", b->uplinks[i].name);
		pm->seen[i].mark = b->uplinks[i].mark;
		pm->seen[i].usable = b->uplinks[i].usable;
		pm->seen[i].healthy = b->healthy[i];
	}
}

/* ------------------------------------------------------------ affinity */

/*
 * Affinity across a replacement of the table, for the sticky sets the new body (body, without
 * carried entries) declares: a set whose declaration is the same as in the running table
 * (pm->body) stays in place with its entries (b->m.keep_sets, nft_table_apply_keep()); any
 * other is read back into b->m.carry, and the new table puts its entries back with what is
 * left of their timeouts.  So a change of one uplink does not move the clients of the others.
 * The sets of uplinks the body leaves out (no longer chosen) are dropped: their clients choose
 * again.  An entry a packet adds to a carried set between this read and the commit is lost
 * (its connection keeps its mark; the client's next one chooses again).  Returns the number
 * of sets whose entries are kept or carried.
 */
static size_t affinity_take(struct policy_module *pm, struct model_buf *b, const char *body)
{
	size_t sets = 0, n, n_keep = 0;

	if (policy_nft_sticky_sets(&b->m, &b->carry_sets) < 0)
		return 0;
	for (n = 0; b->carry_sets[n]; n++)
		;
	b->carry = xcalloc(n + 1, sizeof(*b->carry));
	b->carry_elems = xcalloc(n + 1, sizeof(*b->carry_elems));
	b->keep_sets = xcalloc(n + 1, sizeof(*b->keep_sets));
	for (size_t i = 0; i < n; i++) {
		struct policy_carry *c = &b->carry[b->m.n_carry];
		struct policy_sticky_elem *elems = NULL;
		json_t *root = NULL;
		int r;

		if (pm->body && policy_nft_set_same(pm->body, body, b->carry_sets[i])) {
			b->keep_sets[n_keep++] = b->carry_sets[i];
			sets++;
			continue;
		}
		r = nft_set_list_json(pm->nft, "inet", "egress", b->carry_sets[i], &root);
		if (r == 0)
			r = policy_nft_sticky_parse(root, &elems, &c->n);
		json_decref(root);
		if (r < 0) {
			if (r != -ENOENT)
				log_debug("policy: reading set %s: %s", b->carry_sets[i],
					strerror(-r));
			continue;
		}
		c->set = b->carry_sets[i];
		c->elems = b->carry_elems[b->m.n_carry] = elems;
		sets += c->n > 0;
		b->m.n_carry++;
	}
	b->m.carry = b->carry;
	b->m.keep_sets = n_keep ? b->keep_sets : NULL;
	return sets;
}

/* ------------------------------------------------------------ apply */

static void policy_log_choice(const struct policy_module *pm, const struct model_buf *b,
	size_t kept)
{
	char list[512];
	size_t off = 0;

	list[0] = '\0';
	for (size_t i = 0; i < b->m.n_uplinks && off < sizeof(list); i++) {
		const struct policy_seen *old = seen_find(pm, b->uplinks[i].name);
		if (old && old->usable == b->uplinks[i].usable)
			continue;
		off += (size_t)snprintf(list + off, sizeof(list) - off, "%s%s %s", off ? ", " : "",
			b->uplinks[i].name,
			b->uplinks[i].usable ? "in" : b->uplinks[i].drained ? "out, drained" : "out");
	}
	if (off && kept)
		log_info("policy: table inet egress replaced (%s), affinity kept in %zu set%s", list,
			kept, kept == 1 ? "" : "s");
	else if (off)
		log_info("policy: table inet egress replaced (%s)", list);
}

/* Replace the table with body, keeping the affinity of the running one (affinity_take()).
 * 0 or -errno (the running table then stays); the number of sticky sets kept in *kept. */
static int table_replace(struct policy_module *pm, struct model_buf *b, const char *body,
	size_t *kept)
{
	char *full = NULL, *err = NULL;
	int r;

	*kept = affinity_take(pm, b, body);
	if (*kept && policy_nft_body(&b->m, &full) == 0) {
		if (b->m.keep_sets)
			r = nft_table_apply_keep(pm->nft, "inet", "egress", pm->body, full,
				b->m.keep_sets, &err);
		else
			r = nft_table_apply(pm->nft, "inet", "egress", full, &err);
		free(full);
		if (r == 0)
			return 0;
		log_warnx("policy: cannot keep the affinity over the new table, the clients choose "
			  "again: %s",
			err ? err : strerror(-r));
		FREE_AND_NULL(err);
	}
	*kept = 0;
	r = nft_table_apply(pm->nft, "inet", "egress", body, &err);
	if (r < 0)
		log_error("policy: nftables refused the new table, the running one stays: %s",
			err ? err : strerror(-r));
	free(err);
	return r;
}

/*
 * A table an earlier run left (keep_dataplane, a crash) stays as it is until every uplink has
 * its first verdict: replaced before, it would send all new connections to the last resort for
 * the first check round and drop the affinity it holds (the sticky sets of uplinks not judged
 * yet are left out).  True while that is so.
 */
static bool adopt_wait(struct policy_module *pm)
{
	bool pending = false;

	if (pm->body || !pm->adopt)
		return false;
	for (size_t i = 0; i < conf_n_uplinks(pm->conf) && !pending; i++) {
		const struct conf_uplink *c = conf_uplink_at(pm->conf, i);
		const struct uplink *u = uplink_find(pm->set, c->s.name);

		pending = c->interface[0] && !c->s.origin && u && u->state == UPLINK_INIT;
	}
	if (!pending)
		return false;
	if (pm->adopt < 0) {
		pm->adopt = nft_table_exists(pm->nft, "inet", "egress") == 1;
		if (pm->adopt)
			log_info("policy: the table an earlier run left stays until every uplink has "
				 "been checked");
	}
	return pm->adopt;
}

static int policy_apply(struct policy_module *pm)
{
	struct model_buf b;
	char *body = NULL;
	size_t kept;
	int r;

	model_build(pm, &b);
	/* without the affinity entries: the text that tells whether anything changed */
	r = policy_nft_body(&b.m, &body);
	if (r < 0) {
		log_error("policy: cannot build the ruleset: %s", strerror(-r));
		goto out;
	}
	if (!adopt_wait(pm) && (!pm->body || !streq(body, pm->body))) {
		r = table_replace(pm, &b, body, &kept);
		if (r < 0)
			goto out;
		policy_log_choice(pm, &b, kept);
		free(pm->body);
		pm->body = body;
		body = NULL;
		pm->applied = true;
	}
	r = routing_reconcile(pm);
	if (r < 0)
		event_add(pm->retry_ev, &(struct timeval){.tv_sec = RETRY_SEC});
	if (conf_balance(pm->conf)->flush_conntrack)
		conntrack_flush(pm, &b);
	seen_take(pm, &b);
	r = 0;
out:
	free(body);
	model_buf_clear(&b);
	return r;
}

static void policy_apply_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	policy_apply(arg);
}

static void policy_uplink_cb(struct uplink *u, enum uplink_event ev, void *arg)
{
	struct policy_module *pm = arg;

	(void)u;
	(void)ev;
	event_active(pm->apply_ev, EV_TIMEOUT, 0);
}

/* ------------------------------------------------------------ life cycle */

/* Look once whether the kernel has flowtables, and say what that means for the fast path. */
static void policy_flowtable_probe(struct policy_module *pm)
{
	char *err = NULL;
	int r = nft_flowtable_probe(pm->nft, &err);

	pm->flowtable = r == 1;
	if (r == 1)
		log_info("policy: nftables flowtables available: established connections of ours "
			 "are forwarded through flowtable fast");
	else
		log_info("policy: nftables flowtables not available in this kernel (%s): "
			 "established connections take the ruleset's one-rule path",
			r == 0 ? "no CONFIG_NF_FLOW_TABLE" : strerror(-r));
	free(err);
}

int policy_module_new(struct event_base *base, const struct conf *conf, struct uplink_set *set,
	struct policy_module **ret)
{
	struct policy_module *pm = xcalloc(1, sizeof(*pm));
	const struct conf_balance *bal = conf_balance(conf);
	int r;

	if (!bal) {
		free(pm);
		return -EINVAL;
	}
	pm->base = base;
	pm->set = set;
	pm->conf = conf;
	pm->prio = bal->rule_priority;
	pm->table_base = bal->table_base;
	pm->adopt = -1;
	pm->mask = bal->mark_mask;
	pm->keep = bal->keep;
	pm->nft = nft_new();
	if (!pm->nft) {
		r = -ENOMEM;
		goto fail;
	}
	policy_flowtable_probe(pm);
	r = nl_open(NETLINK_ROUTE, &pm->nl);
	if (r < 0)
		goto fail;
	r = nl_open(NETLINK_NETFILTER, &pm->ct);
	if (r < 0)
		goto fail;
	pm->apply_ev = event_new(base, -1, 0, policy_apply_cb, pm);
	pm->retry_ev = evtimer_new(base, policy_apply_cb, pm);
	r = policy_apply(pm);
	if (r < 0)
		goto fail;
	uplink_set_subscribe(set, policy_uplink_cb, pm);
	log_info("policy: balancing %zu LAN interface%s over %zu uplinks, %zu polic%s, %zu rule%s",
		bal->lan.n, bal->lan.n == 1 ? "" : "s", conf_n_uplinks(conf),
		conf_sections(conf, "policy")->n, conf_sections(conf, "policy")->n == 1 ? "y" : "ies",
		conf_sections(conf, "rule")->n, conf_sections(conf, "rule")->n == 1 ? "" : "s");
	*ret = pm;
	return 0;
fail:
	log_error("policy: cannot start: %s", strerror(-r));
	pm->keep = true; /* leave whatever an earlier run left: we did not take it over */
	policy_module_free(pm);
	return r;
}

int policy_module_reconf(struct policy_module *pm, const struct conf *conf)
{
	const struct conf_balance *bal = conf_balance(conf);

	/* the daemon frees the old configuration after this: even if the kernel refuses the
	 * new table (the running one then stays), conf is what we read from now on */
	pm->conf = conf;
	if (bal->rule_priority != pm->prio || bal->mark_mask != pm->mask) {
		/* our rules move: remove those at the old place first */
		rules_reconcile(pm, NULL, 0);
		pm->prio = bal->rule_priority;
		pm->mask = bal->mark_mask;
	}
	pm->table_base = bal->table_base; /* the old one's tables are remembered */
	pm->keep = bal->keep;
	return policy_apply(pm);
}

void policy_module_free(struct policy_module *pm)
{
	char *err = NULL;

	if (!pm)
		return;
	uplink_set_unsubscribe(pm->set, policy_uplink_cb, pm);
	if (!pm->keep && pm->nl) {
		if (nft_table_delete(pm->nft, "inet", "egress", &err) < 0)
			log_warnx("policy: removing table inet egress: %s", err ? err : "failed");
		free(err);
		rules_reconcile(pm, NULL, 0);
		for (size_t i = 0; i < pm->n_tables; i++)
			table_default_del(pm, pm->tables[i]);
		log_info("policy: table, rules and routes removed");
		sysctl_release_all(pm, false);
	} else if (pm->applied) {
		log_info("policy: dataplane kept in place");
	}
	sysctl_release_all(pm, true); /* nothing left after the removal above */
	if (pm->apply_ev)
		event_free(pm->apply_ev);
	if (pm->retry_ev)
		event_free(pm->retry_ev);
	nl_free(pm->nl);
	nl_free(pm->ct);
	nft_free(pm->nft);
	free(pm->body);
	free(pm->seen);
	free(pm->tables);
	free(pm);
}

/* The module as the daemon sees it (module.h): runs while conf has [balance]. */
static bool policy_wanted_cb(const struct conf *conf)
{
	return conf_balance(conf) != NULL;
}

static int policy_new_cb(struct module_env *env, const struct conf *conf, void **ret)
{
	struct policy_module *m = NULL;
	int r = policy_module_new(env->base, conf, env->uplinks, &m);

	*ret = m;
	return r;
}

static int policy_reconf_cb(void *m, const struct conf *conf)
{
	return policy_module_reconf(m, conf);
}

static void policy_free_cb(void *m)
{
	policy_module_free(m);
}

/*
 * Its status for GET /api/modules: per uplink its mark and table and, as the last apply left
 * them, whether it is in the choice of new connections, healthy (its connections stay) and
 * drained; the policies, and where its rules live.
 */
static json_t *policy_status_cb(void *m)
{
	struct policy_module *pm = m;
	const struct conf_balance *bal = conf_balance(pm->conf);
	const struct conf_list *pl = conf_sections(pm->conf, "policy");
	json_t *ups = json_array(), *pols = json_array(), *lan = json_array();
	char mark[16];

	for (size_t i = 0; i < conf_n_uplinks(pm->conf); i++) {
		const struct conf_uplink *c = conf_uplink_at(pm->conf, i);
		const struct policy_seen *seen = seen_find(pm, c->s.name);
		const struct uplink *u = uplink_find(pm->set, c->s.name);

		if (!c->interface[0])
			continue; /* a gateway of [route]: not the policy's */
		snprintf(mark, sizeof(mark), "0x%x", conf_uplink_mark(bal, c, i));
		json_array_append_new(ups, json_pack("{s:s, s:s, s:s, s:I, s:b, s:b, s:b}", "name",
			c->s.name, "interface", c->interface, "mark", mark, "table",
			(json_int_t)conf_uplink_table(bal, c, i), "in_choice", seen && seen->usable,
			"healthy", seen && seen->healthy, "enabled", u && u->enabled));
	}
	for (size_t i = 0; i < pl->n; i++)
		json_array_append_new(pols, json_string(pl->items[i]->name));
	for (size_t i = 0; i < bal->lan.n; i++)
		json_array_append_new(lan, json_string(bal->lan.v[i]));
	snprintf(mark, sizeof(mark), "0x%x", pm->mask);
	return json_pack("{s:b, s:b, s:o, s:o, s:o, s:i, s:s, s:I}", "applied", pm->applied,
		"adopted_table_kept", pm->adopt > 0 && !pm->body, "uplinks", ups, "policies", pols,
		"lan", lan, "rules", (int)conf_sections(pm->conf, "rule")->n, "mark_mask", mark,
		"rule_priority", (json_int_t)pm->prio);
}

static const struct conf_section_type *const policy_conf_types[] = {
	&conf_balance_type,
	&conf_policy_type,
	&conf_set_type,
	&conf_rule_type,
};

const struct module module_policy = {
	.name = "policy",
	.conf_types = policy_conf_types,
	.n_conf_types = ARRAY_SIZE(policy_conf_types),
	.wanted = policy_wanted_cb,
	.new = policy_new_cb,
	.reconf = policy_reconf_cb,
	.free = policy_free_cb,
	.status = policy_status_cb,
};
