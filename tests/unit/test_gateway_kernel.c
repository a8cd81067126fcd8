/*
 * test_gateway_kernel.c - gateway mode's ruleset backup and restore (src/proxy/gateway.c)
 * against the real kernel: the iptables-legacy tables, the rollback of a restore that
 * cannot finish, the backup file and its safety copies, the xtables lock; and TPROXY's rule,
 * which is the module's own and no other rule of its protocol at its priority.
 *
 * Each test moves the process into a fresh network namespace of its own
 * (unshare(CLONE_NEWNET)) before it touches the kernel, so it starts with no legacy table in
 * use; the namespaces die with the process.  Files go to a private directory under /tmp.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <net/if.h> /* before linux/if.h, which ip_tables.h brings */
#include <netinet/in.h>
#include <linux/netfilter_ipv4/ip_tables.h>

#include <cmocka.h>
#include <event2/event.h>

#include "conf.h"
#include "conf_keys.h"
#include "gateway.h"
#include "gateway_conf.h"
#include "gateway_int.h"
#include "kernel_test.h"
#include "modules.h"
#include "nft.h"
#include "nl.h"
#include "util.h"
#include "xt_legacy.h"

static char g_dir[] = "/tmp/egress-gw-test-XXXXXX";
static char g_lock[sizeof(g_dir) + 16];

/* ---- helpers -------------------------------------------------------------------------- */

/* A namespace of our own with nothing in use; false (and the test skips) without legacy
 * x_tables in this kernel. */
static bool fresh_ns(void)
{
	struct xt_legacy_table t;
	int r;

	assert_int_equal(unshare(CLONE_NEWNET), 0);
	r = xt_legacy_get(AF_INET, "filter", &t); /* filter in use, like after boot */
	xt_legacy_table_clear(&t);
	if (r == -ENOENT || r == -ENOPROTOOPT)
		return false;
	assert_int_equal(r, 0);
	return true;
}

static char *path_of(const char *name)
{
	char *s;

	assert_true(asprintf(&s, "%s/%s", g_dir, name) > 0);
	return s;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = xcalloc(1, 1 << 20);

	assert_non_null(f);
	assert_true(fread(buf, 1, (1 << 20) - 1, f) > 0);
	fclose(f);
	return buf;
}

static void spill(const char *path, const char *text)
{
	FILE *f = fopen(path, "we");

	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

/* text with the first from replaced by to; caller frees */
static char *replaced(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *s;

	assert_non_null(at);
	assert_true(asprintf(&s, "%.*s%s%s", (int)(at - text), text, to, at + strlen(from)) > 0);
	return s;
}

static bool exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

/* The policy verdict of IPv4 hook h: the standard target at the end of its underflow. */
static int *policy_verdict(struct xt_legacy_table *t, int h)
{
	unsigned char *e = t->entries + t->underflow[h];
	uint16_t target_offset;

	memcpy(&target_offset, e + offsetof(struct ipt_entry, target_offset), 2);
	return (int *)(void *)(e + target_offset + offsetof(struct xt_standard_target, verdict));
}

static int mangle_forward_policy(void)
{
	struct xt_legacy_table t;
	int v;

	assert_int_equal(xt_legacy_get(AF_INET, "mangle", &t), 0);
	v = *policy_verdict(&t, NF_INET_FORWARD);
	xt_legacy_table_clear(&t);
	return v;
}

static bool in_use(const char *names, const char *table)
{
	char *text, want[64];
	bool r;

	if (!exists(names))
		return false;
	text = slurp(names);
	snprintf(want, sizeof(want), "%s\n", table);
	r = strstr(text, want) != NULL;
	free(text);
	return r;
}

/*
 * A backup of ipv4 filter, ipv4 mangle (FORWARD policy DROP: something a fresh table does
 * not have) and ipv6 filter, made in a namespace of its own; returns its path.
 */
static char *make_backup(const char *name)
{
	struct xt_legacy_table t;
	struct nft *nft;
	char *path = path_of(name), *err = NULL;

	assert_int_equal(xt_legacy_get(AF_INET, "mangle", &t), 0);
	*policy_verdict(&t, NF_INET_FORWARD) = -NF_DROP - 1;
	assert_int_equal(xt_legacy_replace(&t, &err), 0);
	xt_legacy_table_clear(&t);
	assert_int_equal(xt_legacy_get(AF_INET6, "filter", &t), 0);
	xt_legacy_table_clear(&t);
	nft = nft_new();
	assert_non_null(nft);
	if (gateway_backup(nft, path, &err) < 0)
		fail_msg("backup: %s", err ? err : "?");
	nft_free(nft);
	return path;
}

static int restore(const char *path, char **err)
{
	struct nft *nft = nft_new();
	int r;

	assert_non_null(nft);
	*err = NULL;
	r = gateway_restore(nft, path, err);
	nft_free(nft);
	return r;
}

/* ---- tests ---------------------------------------------------------------------------- */

/*
 * A restore that fails at its last table undoes the tables before it, including one that
 * was not in use and that the restore itself brought into being: empty, as it was created.
 */
static void test_rollback_created_table(void **state)
{
	char *path, *text, *bad, *badpath, *err;

	if (!fresh_ns()) {
		kt_skip("kernel has no iptables-legacy x_tables (only hosts that use them need it)");
		return;
	}
	path = make_backup("rollback.nft");
	text = slurp(path);
	assert_non_null(strstr(text, "\n# xt-legacy ipv4 mangle "));
	bad = replaced(text, "# xt-legacy ipv6 filter ", "# xt-legacy ipv6 nosuch ");
	badpath = path_of("rollback-bad.nft");
	spill(badpath, bad);

	/* only filter in use, as after boot */
	assert_true(fresh_ns());
	assert_false(in_use("/proc/net/ip_tables_names", "mangle"));
	assert_true(restore(badpath, &err) < 0);
	assert_non_null(err);
	/* mangle now exists (it cannot be unloaded) but holds nothing of the backup */
	assert_true(in_use("/proc/net/ip_tables_names", "mangle"));
	assert_int_equal(mangle_forward_policy(), -NF_ACCEPT - 1);
	/* and the error says so */
	if (!strstr(err, "nosuch") || !strstr(err, "empty"))
		fail_msg("error: %s", err);
	free(err);

	/* the good backup does put it back */
	assert_int_equal(restore(path, &err), 0);
	free(err);
	assert_int_equal(mangle_forward_policy(), -NF_DROP - 1);
	free(badpath);
	free(bad);
	free(text);
	free(path);
}

/* Without its heading line, or with something else among them, the saved iptables-legacy
 * tables would go to nft as comments and be lost: refused before anything changes. */
static void test_refuses_lost_legacy_tables(void **state)
{
	static const struct {
		const char *from, *to, *says;
	} cases[] = {
		{"# iptables-legacy tables, put back", "# iptables legacy tables, put back",
			"line"},
		{"\n# xt-legacy ipv4 mangle ", "\nfoo\n# xt-legacy ipv4 mangle ", "line"},
		{"\n# iptables-legacy tables", "\n# xt-legacy ipv4 x\n# iptables-legacy tables",
			"line"},
	};
	char *path, *text;

	if (!fresh_ns()) {
		kt_skip("kernel has no iptables-legacy x_tables (only hosts that use them need it)");
		return;
	}
	path = make_backup("lost.nft");
	text = slurp(path);
	assert_true(fresh_ns());
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *bad = replaced(text, cases[i].from, cases[i].to), *badpath, *err;

		badpath = path_of("lost-bad.nft");
		spill(badpath, bad);
		assert_true(restore(badpath, &err) < 0);
		assert_non_null(err);
		if (!strstr(err, badpath) || !strstr(err, cases[i].says))
			fail_msg("case %zu: \"%s\" does not name the file and line", i, err);
		free(err);
		/* nothing changed: no before-restore copy, mangle not even created */
		assert_false(in_use("/proc/net/ip_tables_names", "mangle"));
		free(badpath);
		free(bad);
	}
	free(text);
	free(path);
}

/* A file that cannot be read is an error, not an empty (or short) backup. */
static void test_read_error(void **state)
{
	char *err;

	assert_true(restore(g_dir, &err) < 0);
	assert_non_null(err);
	if (!strstr(err, "reading") || !strstr(err, strerror(EISDIR)))
		fail_msg("error: %s", err);
	free(err);
}

/* Each restore keeps the copies of what was there before the earlier ones, up to five. */
static void test_before_restore_rotation(void **state)
{
	char *path, *before, *older[7], *err = NULL, *s;

	if (!fresh_ns()) {
		kt_skip("kernel has no iptables-legacy x_tables (only hosts that use them need it)");
		return;
	}
	path = make_backup("rotate.nft");
	assert_true(asprintf(&before, "%s.before-restore", path) > 0);
	for (int i = 1; i <= 6; i++)
		assert_true(asprintf(&older[i], "%s.before-restore.%d", path, i) > 0);

	assert_int_equal(restore(path, &err), 0);
	assert_true(exists(before));
	assert_false(exists(older[1]));
	/* a mark to follow as it moves down */
	spill(before, "first\n");
	assert_int_equal(restore(path, &err), 0);
	assert_true(exists(before));
	s = slurp(older[1]);
	assert_string_equal(s, "first\n");
	free(s);
	for (int i = 0; i < 4; i++)
		assert_int_equal(restore(path, &err), 0);
	s = slurp(older[5]);
	assert_string_equal(s, "first\n");
	free(s);
	assert_false(exists(older[6]));
	/* one more and the oldest goes */
	assert_int_equal(restore(path, &err), 0);
	s = slurp(older[5]);
	assert_true(!strncmp(s, "# egress ruleset backup, saved ", 31));
	free(s);
	assert_false(exists(older[6]));
	for (int i = 1; i <= 6; i++) {
		unlink(older[i]);
		free(older[i]);
	}
	unlink(before);
	free(before);
	free(path);
}

/* The temporary file is a new one of our own: a planted link is not followed. */
static void test_backup_does_not_follow_links(void **state)
{
	char *path = path_of("linked.nft"), *tmp, *victim = path_of("victim");
	struct nft *nft;
	struct stat st;
	char *err = NULL;

	if (!fresh_ns()) {
		kt_skip("kernel has no iptables-legacy x_tables (only hosts that use them need it)");
		return;
	}
	assert_true(asprintf(&tmp, "%s.tmp", path) > 0);
	spill(victim, "");
	assert_int_equal(symlink(victim, tmp), 0);
	nft = nft_new();
	assert_non_null(nft);
	if (gateway_backup(nft, path, &err) < 0)
		fail_msg("backup: %s", err ? err : "?");
	nft_free(nft);
	assert_int_equal(stat(victim, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	unlink(tmp);
	free(tmp);
	free(victim);
	free(path);
}

/* While another program holds the xtables lock, no backup is taken: it may be halfway
 * through changing a table. */
static void test_xtables_lock(void **state)
{
	char *path = path_of("locked.nft"), *lock = g_lock, *err = NULL;
	struct timespec t0, t1;
	struct nft *nft;
	int fd, r;

	if (!fresh_ns()) {
		kt_skip("kernel has no iptables-legacy x_tables (only hosts that use them need it)");
		return;
	}
	fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(flock(fd, LOCK_EX), 0);
	nft = nft_new();
	assert_non_null(nft);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = gateway_backup(nft, path, &err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(r < 0);
	assert_non_null(err);
	if (!strstr(err, lock) || !strstr(err, "held by another program"))
		fail_msg("error: %s", err);
	free(err);
	err = NULL;
	assert_true(t1.tv_sec - t0.tv_sec >= 4); /* it waited for it */
	assert_false(exists(path));

	/* released: the backup is taken */
	close(fd);
	if (gateway_backup(nft, path, &err) < 0)
		fail_msg("backup: %s", err ? err : "?");
	assert_true(exists(path));
	nft_free(nft);
	free(path);
}

/* ---- the module waits for the lock on the loop ---------------------------------------- */

struct waiting {
	struct event_base *base;
	struct nft *nft;
	const char *backup;
	int lock_fd;	     /* held by "another program" until released */
	unsigned ticks;	     /* another timer of the loop, fired while the backup waited */
	bool failed;	     /* the module's failed_cb */
	struct event *tick, *release;
};

static void failed_cb(void *arg)
{
	struct waiting *w = arg;

	w->failed = true;
	event_base_loopbreak(w->base);
}

/* Every 10 ms: count while the backup waits; stop the loop once the table is there. */
static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct waiting *w = arg;

	(void)fd;
	(void)what;
	if (nft_table_exists(w->nft, "inet", "egress_gateway") == 1) {
		event_base_loopbreak(w->base);
		return;
	}
	if (!exists(w->backup))
		w->ticks++;
}

/* After some ticks, the other program lets go of the lock. */
static void release_cb(evutil_socket_t fd, short what, void *arg)
{
	struct waiting *w = arg;

	(void)fd;
	(void)what;
	assert_false(exists(w->backup));
	assert_int_equal(nft_table_exists(w->nft, "inet", "egress_gateway"), 0);
	close(w->lock_fd);
	w->lock_fd = -1;
}

static struct conf *gateway_conf(const char *backup)
{
	struct conf_errors errs = {0};
	struct conf *c = egress_conf_new();
	char *text;

	assert_true(asprintf(&text,
			    "[proxy]\nport = 1080\ndispatch = 192.0.2.10\n"
			    "[gateway]\nsubnet = 192.168.100.0/24\nauto_config = yes\n"
			    "backup_file = %s\n",
			    backup) > 0);
	assert_int_equal(conf_load_string(c, "gw.conf", text, &errs), 0);
	assert_int_equal(conf_validate(c, &errs), 0);
	free(text);
	return c;
}

/* While another program holds the xtables lock, gateway mode's start waits for it on the
 * loop, not in it: other events go on, and the table comes after the backup. */
static void test_module_waits_on_the_loop(void **state)
{
	struct waiting w = {0};
	struct timeval every = {0, 10000}, later = {0, 200000};
	struct gateway_module *m = NULL;
	char *path = path_of("module.nft");
	struct conf *conf = gateway_conf(path);

	(void)state;
	if (!fresh_ns()) {
		kt_skip("kernel has no iptables-legacy x_tables (no lock to wait for)");
		free(path);
		conf_free(conf);
		return;
	}
	w.base = event_base_new();
	w.nft = nft_new();
	w.backup = path;
	w.lock_fd = open(g_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_true(w.lock_fd >= 0);
	assert_int_equal(flock(w.lock_fd, LOCK_EX), 0);
	w.tick = event_new(w.base, -1, EV_PERSIST, tick_cb, &w);
	w.release = evtimer_new(w.base, release_cb, &w);
	event_add(w.tick, &every);
	evtimer_add(w.release, &later);

	assert_int_equal(gateway_module_new(w.base, conf, failed_cb, &w, &m), 0);
	assert_non_null(m);
	assert_false(exists(path)); /* waiting: no backup, no change */
	assert_int_equal(nft_table_exists(w.nft, "inet", "egress_gateway"), 0);
	assert_int_equal(event_base_dispatch(w.base), 0);
	assert_false(w.failed);
	assert_true(w.ticks > 0); /* the loop ran while the backup waited */
	assert_true(exists(path));
	assert_int_equal(nft_table_exists(w.nft, "inet", "egress_gateway"), 1);
	gateway_module_free(m);
	assert_int_equal(nft_table_exists(w.nft, "inet", "egress_gateway"), 0);
	unlink(path);

	/* held for good: after 5 s the start fails, with no backup and no change */
	w.lock_fd = open(g_lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	assert_int_equal(flock(w.lock_fd, LOCK_EX), 0);
	w.ticks = 0;
	assert_int_equal(gateway_module_new(w.base, conf, failed_cb, &w, &m), 0);
	assert_int_equal(event_base_dispatch(w.base), 0);
	assert_true(w.failed);
	assert_true(w.ticks > 0);
	assert_false(exists(path));
	assert_int_equal(nft_table_exists(w.nft, "inet", "egress_gateway"), 0);
	gateway_module_free(m);
	close(w.lock_fd);
	event_free(w.tick);
	event_free(w.release);
	event_base_free(w.base);
	nft_free(w.nft);
	conf_free(conf);
	free(path);
}

struct rule_count {
	uint32_t prio, table, mark;
	size_t n;
};

static int rule_count_cb(const struct nl_rule *r, void *arg)
{
	struct rule_count *c = arg;

	c->n += r->protocol == RTPROT_EGRESS && r->priority == c->prio && r->table == c->table &&
		r->has_fwmark == !!c->mark && r->fwmark == c->mark;
	return 0;
}

/* The rules of family at prio into table of egress's protocol, with mark (0: none). */
static size_t rules_of(struct nl *nl, int family, uint32_t prio, uint32_t table, uint32_t mark)
{
	struct rule_count c = {.prio = prio, .table = table, .mark = mark};

	assert_int_equal(nl_rule_dump(nl, family, rule_count_cb, &c), 0);
	return c.n;
}

static struct conf *tproxy_conf_on(const char *backup, uint32_t prio, uint32_t table,
	bool enabled)
{
	struct conf_errors errs = {0};
	struct conf *c = egress_conf_new();
	char *text;

	assert_true(asprintf(&text,
			    "[proxy]\nport = 1080\ndispatch = 192.0.2.10\n"
			    "[gateway]\nsubnet = 192.168.100.0/24, fd00:100::/64\n"
			    "auto_config = yes\nintercept = tproxy\nbackup_file = %s\n"
			    "rule_priority = %u\ntproxy_table = %u\ntproxy_mark = 0x4\n"
			    "enabled = %s\n",
			    backup, prio, table, enabled ? "yes" : "no") > 0);
	assert_int_equal(conf_load_string(c, "gw.conf", text, &errs), 0);
	assert_int_equal(conf_validate(c, &errs), 0);
	free(text);
	return c;
}

static struct conf *tproxy_conf(const char *backup, uint32_t prio, uint32_t table)
{
	return tproxy_conf_on(backup, prio, table, true);
}

/* What GET /api/gateway says of m: its "status" and "enabled". */
static void assert_gateway_status(struct gateway_module *m, const char *status, bool enabled)
{
	json_t *o = gateway_info_json(m);

	assert_string_equal(json_string_value(json_object_get(o, "status")), status);
	assert_int_equal(json_is_true(json_object_get(o, "enabled")), enabled);
	json_decref(o);
}

/*
 * Switched off ([gateway] enabled = no, the API's toggle), gateway mode runs with nothing
 * installed: no table, no TPROXY rule, no backup; switched on by a reload it installs them,
 * and switched off again it takes them back, the backup kept.
 */
static void test_switched_off(void **state)
{
	char *path = path_of("off.nft");
	struct conf *off = tproxy_conf_on(path, 4400, 4700, false);
	struct conf *on = tproxy_conf_on(path, 4400, 4700, true);
	struct gateway_module *m = NULL;
	struct event_base *base;
	struct nft *nft;
	struct nl *nl;

	(void)state;
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	assert_int_equal(nl_open(NETLINK_ROUTE, &nl), 0);
	assert_int_equal(nl_link_set_up(nl, 1, true), 0);
	nft = nft_new();
	base = event_base_new();
	assert_null(conf_gateway(off));
	assert_non_null(conf_gateway_section(off));
	assert_int_equal(gateway_module_new(base, off, NULL, NULL, &m), 0);
	assert_int_equal(nft_table_exists(nft, "inet", "egress_gateway"), 0);
	assert_int_equal(rules_of(nl, AF_INET, 4400, 4700, 0x4), 0);
	assert_false(exists(path));
	assert_gateway_status(m, "disabled", false);

	assert_int_equal(gateway_module_reconf(m, on), 0);
	assert_int_equal(nft_table_exists(nft, "inet", "egress_gateway"), 1);
	assert_int_equal(rules_of(nl, AF_INET, 4400, 4700, 0x4), 1);
	assert_true(exists(path));
	assert_gateway_status(m, "active", true);

	assert_int_equal(gateway_module_reconf(m, off), 0);
	assert_int_equal(nft_table_exists(nft, "inet", "egress_gateway"), 0);
	assert_int_equal(rules_of(nl, AF_INET, 4400, 4700, 0x4), 0);
	assert_int_equal(rules_of(nl, AF_INET6, 4400, 4700, 0x4), 0);
	assert_true(exists(path));
	assert_gateway_status(m, "disabled", false);
	gateway_module_free(m);
	assert_gateway_status(NULL, "disabled", false);

	nft_free(nft);
	nl_free(nl);
	event_base_free(base);
	conf_free(on);
	conf_free(off);
	unlink(path);
	free(path);
}

/*
 * A reload that gateway mode cannot apply (its TPROXY route: no loopback up here) leaves it
 * running on the new configuration, which the daemon keeps, not on the old one, which the
 * daemon frees: GET /api/gateway reads it afterwards (the old conf was used after free).
 */
static void test_failed_reconf_keeps_the_new_conf(void **state)
{
	char *path = path_of("failed.nft");
	struct conf *off = tproxy_conf_on(path, 4400, 4700, false);
	struct conf *on = tproxy_conf_on(path, 4400, 4700, true);
	struct gateway_module *m = NULL;
	struct event_base *base;
	json_t *info;

	(void)state;
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	base = event_base_new();
	assert_int_equal(gateway_module_new(base, off, NULL, NULL, &m), 0);
	assert_int_equal(gateway_module_reconf(m, on), -EINVAL);
	conf_free(off); /* as the daemon does after a reload */
	info = gateway_info_json(m);
	assert_true(json_is_true(json_object_get(info, "enabled")));
	json_decref(info);
	gateway_module_free(m);
	event_base_free(base);
	conf_free(on);
	unlink(path);
	free(path);
}

/*
 * TPROXY's rule (fwmark 0x4 lookup tproxy_table at rule_priority) is made at start, moved by a
 * reload that changes the priority or table, and removed at stop; another tool's rules of
 * egress's protocol at those priorities into another table are never touched.
 */
static void test_tproxy_rule_is_its_own(void **state)
{
	static const int fams[] = {AF_INET, AF_INET6};
	char *path = path_of("tproxy.nft");
	struct conf *c1 = tproxy_conf(path, 4400, 4700), *c2 = tproxy_conf(path, 4410, 4710);
	struct gateway_module *m = NULL;
	struct event_base *base;
	struct nl_rule foreign[4];
	struct nl *nl;

	(void)state;
	assert_int_equal(unshare(CLONE_NEWNET), 0);
	assert_int_equal(nl_open(NETLINK_ROUTE, &nl), 0);
	assert_int_equal(nl_link_set_up(nl, 1, true), 0);
	for (size_t i = 0; i < 4; i++) {
		foreign[i] = (struct nl_rule){.family = fams[i % 2], .protocol = RTPROT_EGRESS,
			.has_priority = true, .priority = i < 2 ? 4400 : 4410, .table = 300};
		assert_int_equal(nl_rule_apply(nl, NL_ADD, &foreign[i]), 0);
	}
	base = event_base_new();
	assert_int_equal(gateway_module_new(base, c1, NULL, NULL, &m), 0);
	for (size_t f = 0; f < 2; f++) {
		assert_int_equal(rules_of(nl, fams[f], 4400, 4700, 0x4), 1);
		assert_int_equal(rules_of(nl, fams[f], 4400, 300, 0), 1);
		assert_int_equal(rules_of(nl, fams[f], 4410, 300, 0), 1);
	}

	/* a reload to another priority and table: the old rule goes, the foreign ones stay */
	assert_int_equal(gateway_module_reconf(m, c2), 0);
	for (size_t f = 0; f < 2; f++) {
		assert_int_equal(rules_of(nl, fams[f], 4400, 4700, 0x4), 0);
		assert_int_equal(rules_of(nl, fams[f], 4410, 4710, 0x4), 1);
		assert_int_equal(rules_of(nl, fams[f], 4400, 300, 0), 1);
		assert_int_equal(rules_of(nl, fams[f], 4410, 300, 0), 1);
	}

	/* stop: its rule goes, the foreign ones stay */
	gateway_module_free(m);
	for (size_t f = 0; f < 2; f++) {
		assert_int_equal(rules_of(nl, fams[f], 4410, 4710, 0x4), 0);
		assert_int_equal(rules_of(nl, fams[f], 4400, 300, 0), 1);
		assert_int_equal(rules_of(nl, fams[f], 4410, 300, 0), 1);
	}
	nl_free(nl);
	event_base_free(base);
	conf_free(c2);
	conf_free(c1);
	unlink(path);
	free(path);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int group_setup(void **state)
{
	if (geteuid() != 0) {
		fprintf(stderr, "needs root (unshare(CLONE_NEWNET))\n");
		return -1;
	}
	if (!mkdtemp(g_dir)) {
		perror("mkdtemp");
		return -1;
	}
	/* iptables-legacy's lock, of our own: the host's /run/xtables.lock is not ours */
	snprintf(g_lock, sizeof(g_lock), "%s/xtables.lock", g_dir);
	setenv("XTABLES_LOCKFILE", g_lock, 1);
	return 0;
}

static int group_teardown(void **state)
{
	nftw(g_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rollback_created_table),
		cmocka_unit_test(test_refuses_lost_legacy_tables),
		cmocka_unit_test(test_read_error),
		cmocka_unit_test(test_before_restore_rotation),
		cmocka_unit_test(test_backup_does_not_follow_links),
		cmocka_unit_test(test_xtables_lock),
		cmocka_unit_test(test_module_waits_on_the_loop),
		cmocka_unit_test(test_tproxy_rule_is_its_own),
		cmocka_unit_test(test_switched_off),
		cmocka_unit_test(test_failed_reconf_keeps_the_new_conf),
	};

	return kt_exit_status(cmocka_run_group_tests_name(
		"gateway backup and restore", tests, group_setup, group_teardown));
}
