/*
 * gateway.c - gateway mode's kernel side: table inet egress_gateway, forwarding, the
 * TPROXY rule and route, and the ruleset backup and restore.
 *
 * The fork we replace rewrote iptables' nat table, saved "the rules" only when it felt
 * like it and restored by overwriting the whole firewall.  Here: every rule is in one
 * table of ours, applied in one transaction; the ruleset is saved before our first
 * change (with its time and size); a restore is one transaction that keeps the other
 * modules' egress tables; turning gateway mode off removes only our table.
 *
 * Must not touch any table but inet egress_gateway, except in gateway_restore(), which
 * is the explicit "put my firewall back" request.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/rtnetlink.h>

#include <event2/event.h>

#include "conf_keys.h"
#include "gateway.h"
#include "gateway_conf.h"
#include "gateway_int.h"
#include "log.h"
#include "module.h"
#include "nft.h"
#include "nl.h"
#include "proxy.h"
#include "sysctl.h"
#include "util.h"
#include "xt_legacy.h"

#define BACKUP_MAGIC "# egress ruleset backup, saved "

/* ------------------------------------------------------------ the table */

static void prefixes(struct nft_buf *b, const struct cidr_list *l, int family)
{
	char buf[ADDR_STRLEN + 8];
	bool first = true;

	nft_buf_add(b, "{ ");
	for (size_t i = 0; i < l->n; i++) {
		if (l->v[i].addr.family != family)
			continue;
		cidr_str(&l->v[i], buf, sizeof(buf));
		nft_buf_printf(b, "%s%s", first ? "" : ", ", buf);
		first = false;
	}
	nft_buf_add(b, " }");
}

static bool has_family(const struct cidr_list *l, int family)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->v[i].addr.family == family)
			return true;
	return false;
}

void gateway_body(const struct conf_gateway *g, struct nft_buf *b)
{
	bool tproxy = g->intercept == INTERCEPT_TPROXY;
	bool autonat = !g->nat_interface || streq(g->nat_interface, "auto");

	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		if (!has_family(&g->subnet, family))
			continue;
		nft_buf_printf(b, "\tset clients%s {\n\t\ttype %s_addr\n\t\tflags interval\n"
				  "\t\telements = ",
			f ? "6" : "4", f ? "ipv6" : "ipv4");
		prefixes(b, &g->subnet, family);
		nft_buf_add(b, "\n\t}\n");
	}
	/* DNS to the forwarder; TCP to the proxy (not what is addressed to us: the gateway's
	 * own services stay reachable). */
	nft_buf_add(b, "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; "
		       "policy accept;\n");
	for (int f = 0; f < 2; f++) {
		const char *ip = f ? "ip6" : "ip";
		const char *set = f ? "@clients6" : "@clients4";
		if (!has_family(&g->subnet, f ? AF_INET6 : AF_INET))
			continue;
		nft_buf_printf(b, "\t\t%s saddr %s udp dport 53 counter redirect to :%d\n", ip, set,
			g->dns_port);
		nft_buf_printf(b, "\t\t%s saddr %s tcp dport 53 counter redirect to :%d\n", ip, set,
			g->dns_port);
		if (!tproxy)
			nft_buf_printf(b, "\t\t%s saddr %s meta l4proto tcp fib daddr type != local "
					  "counter redirect to :%d\n",
				ip, set, g->transparent_port);
	}
	nft_buf_add(b, "\t}\n");
	if (tproxy) {
		nft_buf_add(b, "\tchain intercept {\n\t\ttype filter hook prerouting priority mangle; "
			       "policy accept;\n");
		for (int f = 0; f < 2; f++) {
			const char *ip = f ? "ip6" : "ip";
			const char *set = f ? "@clients6" : "@clients4";
			if (!has_family(&g->subnet, f ? AF_INET6 : AF_INET))
				continue;
			/* packets of connections the proxy already holds: deliver locally */
			nft_buf_printf(b, "\t\t%s saddr %s meta l4proto tcp socket transparent 1 "
					  "meta mark set 0x%x accept\n",
				ip, set, g->tproxy_mark);
			nft_buf_printf(b, "\t\t%s saddr %s meta l4proto tcp fib daddr type != local "
					  "counter tproxy %s to :%d meta mark set 0x%x accept\n",
				ip, set, ip, g->transparent_port, g->tproxy_mark);
		}
		nft_buf_add(b, "\t}\n");
	}
	/* everything else from the clients is masqueraded */
	nft_buf_add(b, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; "
		       "policy accept;\n");
	for (int f = 0; f < 2; f++) {
		const char *ip = f ? "ip6" : "ip";
		const char *set = f ? "@clients6" : "@clients4";
		if (!has_family(&g->subnet, f ? AF_INET6 : AF_INET))
			continue;
		if (autonat)
			nft_buf_printf(b, "\t\t%s saddr %s %s daddr != %s counter masquerade\n", ip,
				set, ip, set);
		else
			nft_buf_printf(b, "\t\t%s saddr %s oifname \"%s\" counter masquerade\n", ip,
				set, g->nat_interface);
	}
	nft_buf_add(b, "\t}\n");
}

/* ------------------------------------------------------------ backup and restore */

/* The directory of path, and its parents, for a first backup (/var/lib/egress). */
static void mkdir_parents(const char *path)
{
	char *dir = xstrdup(path);

	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		mkdir(dir, 0700);
		*p = '/';
	}
	free(dir);
}

/* fsync the directory path is in, so that a rename into it survives a power loss. */
static int sync_dir_of(const char *path)
{
	char *dir = xstrdup(path), *slash = strrchr(dir, '/');
	int fd, r = 0;

	if (!slash) {
		free(dir);
		dir = xstrdup(".");
	} else {
		slash[slash == dir] = '\0'; /* "/x" is in "/" */
	}
	fd = open(dir, O_DIRECTORY | O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		r = -errno;
	else if (fsync(fd) < 0 && errno != EINVAL) /* EINVAL: a file system that cannot */
		r = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return r;
}

static int write_file_atomic(const char *path, const char *text, size_t len)
{
	char *tmp;
	int fd, r = 0;

	mkdir_parents(path);
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0)
		return -ENOMEM;
	/* a new file of our own (O_EXCL, mode 0600): never a link or file someone put there */
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, text + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = -errno;
			break;
		}
		off += (size_t)w;
	}
	if (!r && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && !r)
		r = -errno;
	if (!r && rename(tmp, path) < 0)
		r = -errno;
	if (r)
		unlink(tmp);
	else
		r = sync_dir_of(path);
out:
	free(tmp);
	return r;
}

static int read_file(const char *path, char **ret, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t n = 0, cap = 0, got;
	int r = 0;

	*ret = NULL;
	if (!f)
		return -errno;
	errno = 0;
	do {
		if (n + 4096 + 1 > cap) {
			cap = cap ? cap * 2 : 16384;
			buf = xrealloc(buf, cap);
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got);
	/* a read that failed is not the end of a shorter file */
	if (ferror(f))
		r = errno ? -errno : -EIO;
	fclose(f);
	if (r < 0) {
		free(buf);
		return r;
	}
	buf[n] = '\0';
	*ret = buf;
	if (len)
		*len = n;
	return 0;
}

static char *errdup(const char *fmt, const char *path, int e)
{
	char *s;

	if (asprintf(&s, fmt, path, strerror(-e)) < 0)
		return NULL;
	return s;
}

/* A line of its own after the nft ruleset; the iptables-legacy tables follow it. */
#define LEGACY_MARK "# iptables-legacy tables, put back by egressd dispatch -restore:"

/* What is in place now: the nftables ruleset and the iptables-legacy tables in use. */
struct snapshot {
	char *rules;
	struct xt_legacy_table *xt;
	size_t n_xt;
};

static void snapshot_clear(struct snapshot *s)
{
	free(s->rules);
	xt_legacy_tables_free(s->xt, s->n_xt);
	memset(s, 0, sizeof(*s));
}

static int snapshot_take(struct nft *nft, struct snapshot *ret, char **err)
{
	char *why = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	r = nft_ruleset_dump(nft, &ret->rules);
	if (r < 0) {
		if (err)
			*err = errdup("reading %s: %s", "the nftables ruleset", r);
		return r;
	}
	r = xt_legacy_save_all(&ret->xt, &ret->n_xt, &why);
	if (r < 0) {
		if (err && asprintf(err, "reading the iptables-legacy tables: %s",
				   why ? why : strerror(-r)) < 0)
			*err = NULL;
		free(why);
		snapshot_clear(ret);
	}
	return r;
}

/* The backup file's text: header with the time, the ruleset, the legacy tables. */
static char *snapshot_text(const struct snapshot *s)
{
	char stamp[64];
	time_t now = time(NULL);
	struct nft_buf b;

	strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S %z", localtime(&now));
	nft_buf_init(&b);
	nft_buf_printf(&b, "%s%s (%lld)\n", BACKUP_MAGIC, stamp, (long long)now);
	nft_buf_add(&b, s->rules);
	if (s->n_xt)
		nft_buf_add(&b, "\n" LEGACY_MARK "\n");
	for (size_t i = 0; i < s->n_xt; i++) {
		char *line = xt_legacy_format(&s->xt[i]);
		nft_buf_printf(&b, "%s\n", line);
		free(line);
	}
	return b.data;
}

static int snapshot_write(const struct snapshot *s, const char *path, char **err)
{
	char *text = snapshot_text(s);
	int r = write_file_atomic(path, text, strlen(text));

	if (r < 0 && err)
		*err = errdup("writing %s: %s", path, r);
	else if (r == 0)
		log_info("gateway: saved the ruleset (%zu bytes, %zu iptables-legacy tables) to %s",
			strlen(text), s->n_xt, path);
	free(text);
	return r;
}

/* Whether a backup must be taken: not when one is there and our table is in place. */
static bool backup_needed(struct nft *nft, const char *path)
{
	struct stat st;

	if (stat(path, &st) == 0 && nft_table_exists(nft, "inet", GATEWAY_TABLE) == 1) {
		log_info("gateway: keeping the backup %s of %ld bytes: our table is in place, so "
			 "it holds the ruleset from before us",
			path, (long)st.st_size);
		return false;
	}
	return true;
}

/* The backup, with the xtables lock held (or fd -1: no legacy x_tables); releases it. */
static int backup_locked(struct nft *nft, const char *path, int lock, char **err)
{
	struct snapshot snap;
	int r;

	r = snapshot_take(nft, &snap, err);
	xt_legacy_unlock(lock);
	if (r < 0)
		return r;
	r = snapshot_write(&snap, path, err);
	snapshot_clear(&snap);
	return r;
}

int gateway_backup(struct nft *nft, const char *path, char **err)
{
	int lock, r;

	if (err)
		*err = NULL;
	if (!backup_needed(nft, path))
		return 0;
	/* not while iptables-legacy is halfway through changing a table */
	r = xt_legacy_lock(&lock, err);
	if (r < 0)
		return r;
	return backup_locked(nft, path, lock, err);
}

int gateway_backup_info(const char *path, struct gateway_backup_info *ret)
{
	struct stat st;
	char line[256] = "";
	FILE *f;
	char *open_paren;

	memset(ret, 0, sizeof(*ret));
	if (stat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	f = fopen(path, "re");
	if (!f)
		return -errno;
	if (!fgets(line, sizeof(line), f))
		line[0] = '\0';
	fclose(f);
	if (strncmp(line, BACKUP_MAGIC, strlen(BACKUP_MAGIC)))
		return -EBADMSG;
	open_paren = strrchr(line, '(');
	ret->exists = true;
	ret->size = (size_t)st.st_size;
	ret->timestamp = open_paren ? (time_t)strtoll(open_paren + 1, NULL, 10) : st.st_mtime;
	return 0;
}

/* "table FAMILY egress..." lines (a ruleset listing starts tables at column 0). */
struct table_ref {
	char family[16];
	char name[64];
};

static size_t egress_tables(const char *text, struct table_ref **ret)
{
	size_t n = 0;

	*ret = NULL;
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		struct table_ref t;
		if (sscanf(p, "table %15s %63s {", t.family, t.name) != 2)
			continue;
		if (nft_table_name_check(t.name) != 0)
			continue;
		*ret = xrealloc(*ret, (n + 1) * sizeof(**ret));
		(*ret)[n++] = t;
	}
	return n;
}

/*
 * The saved iptables-legacy tables: the lines after the LEGACY_MARK line, which is cut off
 * (the nft part ends before it).  nft reads an xt-legacy line as a comment, so one anywhere
 * else (the mark edited away, a line put in front of it), or anything but such lines after
 * the mark, is refused here rather than have a table silently not come back.
 */
static int parse_legacy(
	const char *path, char *text, struct xt_legacy_table **ret, size_t *n, char **err)
{
	size_t plen = strlen(XT_LEGACY_PREFIX), mlen = strlen(LEGACY_MARK), lineno = 0;
	const char *what = "bad line";
	char *mark = NULL, *why = NULL;
	int r = 0;

	*ret = NULL;
	*n = 0;
	for (char *p = text; *p;) {
		char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);

		lineno++;
		if (!mark && len == mlen && !memcmp(p, LEGACY_MARK, mlen)) {
			mark = p;
		} else if (len >= plen && !memcmp(p, XT_LEGACY_PREFIX, plen)) {
			if (!mark) {
				what = "an iptables-legacy table, but not after the line "
				       "\"" LEGACY_MARK "\" (missing or changed?)";
				r = -EBADMSG;
				break;
			}
			*ret = xrealloc(*ret, (*n + 1) * sizeof(**ret));
			r = xt_legacy_parse(p, len, &(*ret)[*n], &why);
			if (r < 0)
				break;
			(*n)++;
		} else if (mark && len > 0) {
			what = "expected an iptables-legacy table (\"" XT_LEGACY_PREFIX
			       "...\"): only those follow the line \"" LEGACY_MARK "\"";
			r = -EBADMSG;
			break;
		}
		p += len + (nl ? 1 : 0);
	}
	if (r < 0) {
		if (err && asprintf(err, "%s, line %zu: %s", path, lineno, why ? why : what) < 0)
			*err = NULL;
		free(why);
		xt_legacy_tables_free(*ret, *n);
		*ret = NULL;
		*n = 0;
		return r;
	}
	if (mark)
		*mark = '\0';
	return 0;
}

static const struct xt_legacy_table *find_xt(const struct xt_legacy_table *v, size_t n,
	int family, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].family == family && streq(v[i].name, name))
			return &v[i];
	return NULL;
}

/* The nft text that puts back what backup_rules held, keeping egress's current tables. */
static void restore_text(struct nft *nft, const char *backup_rules, const char *now,
	struct nft_buf *b)
{
	struct table_ref *old = NULL, *cur = NULL;
	size_t n_old, n_cur;

	nft_buf_add(b, backup_rules);
	nft_buf_add(b, "\n");
	/* egress's tables are the running modules' business: drop the saved ones, keep the
	 * current ones (but not gateway mode's own) */
	n_old = egress_tables(backup_rules, &old);
	for (size_t i = 0; i < n_old; i++)
		nft_buf_printf(b, "delete table %s %s\n", old[i].family, old[i].name);
	n_cur = egress_tables(now, &cur);
	for (size_t i = 0; i < n_cur; i++) {
		char *t = NULL;
		if (streq(cur[i].name, GATEWAY_TABLE))
			continue;
		if (nft_table_list(nft, cur[i].family, cur[i].name, 0, &t) == 0) {
			nft_buf_add(b, t);
			nft_buf_add(b, "\n");
		}
		free(t);
	}
	free(old);
	free(cur);
}

/* How many earlier PATH.before-restore copies a restore keeps (.1 the newest). */
#define BEFORE_RESTORE_KEEP 5

/*
 * Make room for a new PATH.before-restore, logrotate style: .4 -> .5 (the oldest goes),
 * ..., PATH.before-restore -> .1.  A second restore must not overwrite the copy of what was
 * there before the first: that one may be the state the user wants back.
 */
static int rotate_before(const char *before, char **err)
{
	struct stat st;
	int r = 0;

	if (lstat(before, &st) < 0)
		return 0; /* nothing there (or nothing we can see: the write will say) */
	for (int i = BEFORE_RESTORE_KEEP; i >= 1 && r == 0; i--) {
		char *from, *to;

		if (asprintf(&to, "%s.%d", before, i) < 0)
			return -ENOMEM;
		if (i == 1)
			from = xstrdup(before);
		else if (asprintf(&from, "%s.%d", before, i - 1) < 0) {
			free(to);
			return -ENOMEM;
		}
		if (rename(from, to) < 0 && errno != ENOENT) {
			r = -errno;
			if (err && asprintf(err, "keeping the earlier %s as %s: %s", from, to,
					   strerror(-r)) < 0)
				*err = NULL;
		}
		free(from);
		free(to);
	}
	return r;
}

/* "ipv4 nat, ipv6 raw": the tables of v; caller frees. */
static char *xt_names(const struct xt_legacy_table *v, size_t n)
{
	struct nft_buf b;

	nft_buf_init(&b);
	for (size_t i = 0; i < n; i++)
		nft_buf_printf(&b, "%s%s %s", i ? ", " : "",
			v[i].family == AF_INET6 ? "ipv6" : "ipv4", v[i].name);
	return b.data;
}

int gateway_restore(struct nft *nft, const char *path, char **err)
{
	char *backup = NULL, *before = NULL, *why = NULL, *failed = NULL;
	char *names = NULL, *created = NULL;
	struct xt_legacy_table *xt = NULL, *fresh = NULL;
	struct snapshot now = { 0 };
	size_t n_xt = 0, n_fresh = 0, done;
	bool undo_failed = false;
	struct nft_buf b;
	int lock = -1, r;

	if (err)
		*err = NULL;
	r = read_file(path, &backup, NULL);
	if (r < 0) {
		if (err)
			*err = errdup("reading %s: %s", path, r);
		return r;
	}
	if (strncmp(backup, BACKUP_MAGIC, strlen(BACKUP_MAGIC)) || !strchr(backup, '\n')) {
		if (err && asprintf(err, "%s: not a ruleset backup of egress", path) < 0)
			*err = NULL;
		free(backup);
		return -EBADMSG;
	}
	/* cuts the nft part off at the iptables-legacy tables */
	r = parse_legacy(path, backup, &xt, &n_xt, err);
	if (r < 0)
		goto out;
	/* iptables-legacy stays out from the look at what is there to the end of the rollback */
	r = xt_legacy_lock(&lock, err);
	if (r < 0)
		goto out;
	/* what is there now is saved too, as a backup of its own: a restore loses nothing */
	r = snapshot_take(nft, &now, err);
	if (r < 0)
		goto out;
	if (asprintf(&before, "%s.before-restore", path) < 0) {
		r = -ENOMEM;
		goto out;
	}
	r = rotate_before(before, err);
	if (r < 0)
		goto out;
	r = snapshot_write(&now, before, err);
	if (r < 0)
		goto out;
	/*
	 * A saved table that is not in use now is created by the kernel as the restore asks
	 * for it, and cannot be unloaded again: undoing the restore means putting back the
	 * table as created (no rules, ACCEPT policies).  Asking for it now creates it and
	 * gives us that image.
	 */
	for (size_t i = 0; i < n_xt; i++) {
		struct xt_legacy_table t;

		if (find_xt(now.xt, now.n_xt, xt[i].family, xt[i].name) ||
			find_xt(fresh, n_fresh, xt[i].family, xt[i].name))
			continue;
		r = xt_legacy_get(xt[i].family, xt[i].name, &t);
		if (r == -ENOENT) { /* no such table: putting it back fails, nothing to undo */
			r = 0;
			continue;
		}
		if (r < 0) {
			if (err && asprintf(err, "reading iptables-legacy %s table %s: %s",
					   xt[i].family == AF_INET6 ? "ipv6" : "ipv4", xt[i].name,
					   strerror(-r)) < 0)
				*err = NULL;
			goto out;
		}
		fresh = xrealloc(fresh, (n_fresh + 1) * sizeof(*fresh));
		fresh[n_fresh++] = t;
	}
	nft_buf_init(&b);
	restore_text(nft, strchr(backup, '\n') + 1, now.rules, &b);
	r = nft_ruleset_restore(nft, b.data, err);
	nft_buf_clear(&b);
	if (r < 0)
		goto out;
	for (done = 0; done < n_xt; done++) {
		r = xt_legacy_replace(&xt[done], &why);
		if (r < 0)
			break;
		if (why) /* rules in, counters not */
			log_warnx("gateway: %s", why);
		free(why);
		why = NULL;
	}
	if (r < 0) {
		/* all or nothing: put back what this restore replaced */
		failed = why;
		why = NULL;
		if (nft_ruleset_restore(nft, now.rules, &why) < 0) {
			log_error(
				"gateway: rolling back the nftables ruleset: %s", why ? why : "?");
			undo_failed = true;
		}
		free(why);
		why = NULL;
		for (size_t i = 0; i < done; i++) {
			const struct xt_legacy_table *t =
				find_xt(now.xt, now.n_xt, xt[i].family, xt[i].name);

			if (!t)
				t = find_xt(fresh, n_fresh, xt[i].family, xt[i].name);
			if (!t) {
				undo_failed = true;
				continue;
			}
			if (xt_legacy_replace(t, &why) < 0) {
				log_error("gateway: rolling back: %s", why ? why : "?");
				undo_failed = true;
			} else if (why) { /* the rules are back, their counts are not */
				log_warnx("gateway: rolling back: %s", why);
			}
			free(why);
			why = NULL;
		}
		if (undo_failed) {
			if (err && asprintf(err,
					   "restoring iptables-legacy tables from %s: %s; undoing "
					   "the restore failed too, so the ruleset is partly "
					   "restored: what was there before is in %s",
					   path, failed ? failed : strerror(-r), before) < 0)
				*err = NULL;
			goto out;
		}
		/* a table created by the restore is still there: as it was made, empty */
		names = xt_names(fresh, n_fresh);
		if (n_fresh && asprintf(&created,
				       ", except that the iptables-legacy tables it "
				       "brought into use (%s) stay, empty: the kernel "
				       "cannot unload a table",
				       names) < 0)
			created = NULL;
		if (err &&
			asprintf(err,
				"restoring iptables-legacy tables from %s: %s (undone: the "
				"ruleset is as it was before the restore%s)",
				path, failed ? failed : strerror(-r), created ? created : "") < 0)
			*err = NULL;
		goto out;
	}
	for (size_t i = 0; i < now.n_xt; i++) {
		const struct xt_legacy_table *t = &now.xt[i];
		if (!find_xt(xt, n_xt, t->family, t->name))
			log_info("gateway: left iptables-legacy %s table %s as it is: it was not in "
				 "use when %s was saved",
				t->family == AF_INET6 ? "ipv6" : "ipv4", t->name, path);
	}
	log_info("gateway: restored the ruleset%s from %s (what was there is in %s)",
		n_xt ? " and the iptables-legacy tables" : "", path, before);
out:
	xt_legacy_unlock(lock);
	xt_legacy_tables_free(xt, n_xt);
	xt_legacy_tables_free(fresh, n_fresh);
	snapshot_clear(&now);
	free(names);
	free(created);
	free(failed);
	free(before);
	free(backup);
	return r;
}

/* ------------------------------------------------------------ the module */

static const char *const forward_key[2] = {
	"net/ipv4/ip_forward",
	"net/ipv6/conf/all/forwarding",
};

static void forwarding_on(struct gateway_module *m, const struct conf_gateway *g)
{
	for (int f = 0; f < 2; f++)
		if (has_family(&g->subnet, f ? AF_INET6 : AF_INET))
			sysctl_hold(m, forward_key[f], 1, "gateway mode forwards its subnets");
}

static void forwarding_back(struct gateway_module *m)
{
	sysctl_release_all(m, false);
}

/* The TPROXY rule of family: fwmark MARK/MARK at priority lookup table. */
static struct nl_rule tproxy_rule(int family, uint32_t priority, uint32_t mark, uint32_t table)
{
	return (struct nl_rule){.family = family, .protocol = RTPROT_EGRESS, .has_priority = true,
		.priority = priority, .has_fwmark = true, .fwmark = mark, .fwmask = mark,
		.table = table};
}

struct tproxy_shape {
	uint32_t priority, mark, table;
};

/* Ours: our rule's shape, of either family.  Another rule of our protocol at our priority
 * (into another table, say) is another module's or tool's and stays. */
static bool tproxy_rule_mine(const struct nl_rule *r, void *arg)
{
	const struct tproxy_shape *t = arg;
	struct nl_rule shape = tproxy_rule(r->family, t->priority, t->mark, t->table);

	return nl_rule_same(r, &shape);
}

/* TPROXY: packets marked by the tproxy chain are delivered locally. */
static int tproxy_routing(struct gateway_module *m, bool on, const struct conf_gateway *g)
{
	struct nl_rule want[2];
	struct tproxy_shape t;
	size_t n = 0;
	int r = 0, e;

	if (m->tproxy_routing) {
		for (int f = 0; f < 2; f++) {
			struct nl_route rt = {.family = f ? AF_INET6 : AF_INET,
				.table = m->tproxy_table, .protocol = RTPROT_EGRESS,
				.type = RTN_LOCAL};
			nl_route_apply(m->nl, NL_DEL, &rt);
		}
		t = (struct tproxy_shape){m->tproxy_prio, m->tproxy_mark, m->tproxy_table};
		nl_rule_reconcile_mine(m->nl, RTPROT_EGRESS, t.priority, t.priority + 1,
			tproxy_rule_mine, &t, NULL, 0);
		m->tproxy_routing = false;
	}
	if (!on)
		return 0;
	m->tproxy_table = g->tproxy_table;
	m->tproxy_prio = g->rule_priority;
	m->tproxy_mark = g->tproxy_mark;
	m->tproxy_routing = true;
	for (int f = 0; f < 2; f++) {
		int family = f ? AF_INET6 : AF_INET;
		if (!has_family(&g->subnet, family))
			continue;
		struct nl_route rt = {.family = family, .table = g->tproxy_table,
			.protocol = RTPROT_EGRESS, .type = RTN_LOCAL, .scope = RT_SCOPE_HOST,
			.oif = 1 /* lo */};
		e = nl_route_apply(m->nl, NL_REPLACE, &rt);
		if (e < 0) {
			log_warnx("gateway: tproxy: local route in table %u: %s%s%s",
				g->tproxy_table, strerror(-e), *nl_last_error(m->nl) ? ": " : "",
				nl_last_error(m->nl));
			r = r ? r : e;
		}
		want[n++] = tproxy_rule(family, g->rule_priority, g->tproxy_mark, g->tproxy_table);
	}
	t = (struct tproxy_shape){g->rule_priority, g->tproxy_mark, g->tproxy_table};
	e = nl_rule_reconcile_mine(m->nl, RTPROT_EGRESS, t.priority, t.priority + 1,
		tproxy_rule_mine, &t, want, n);
	return r ? r : e;
}

/* The TPROXY rule and route in place are those g asks for (or none, and none asked for). */
static bool tproxy_same(const struct gateway_module *m, const struct conf_gateway *g)
{
	if (m->tproxy_routing != (g->intercept == INTERCEPT_TPROXY))
		return false;
	return !m->tproxy_routing ||
	       (m->tproxy_prio == g->rule_priority && m->tproxy_table == g->tproxy_table &&
		       m->tproxy_mark == g->tproxy_mark);
}

static void lock_wait_end(struct gateway_module *m)
{
	if (m->lock_ev)
		evtimer_del(m->lock_ev);
	xt_legacy_unlock(m->lock_fd);
	m->lock_fd = -1;
	m->lock_deadline = 0;
	m->lock_waited = false;
}

/*
 * The backup before our first change, not while iptables-legacy is halfway through
 * changing a table.  0 taken (or not needed), 1 the lock is held by another program and
 * lock_cb tries again, -errno with err set (also when the lock stayed held past
 * XT_LOCK_WAIT_MS).
 */
static int backup_try(struct gateway_module *m, const char *path, char **err)
{
	int r;

	if (!m->lock_deadline) {
		if (!backup_needed(m->nft, path))
			return 0;
		r = xt_legacy_lock_open(&m->lock_fd, err);
		if (r < 0)
			return r;
		m->lock_deadline = now_ms() + XT_LOCK_WAIT_MS;
	}
	r = xt_legacy_lock_try(m->lock_fd, err);
	if (r == -EWOULDBLOCK && now_ms() < m->lock_deadline) {
		struct timeval tv = {0, XT_LOCK_POLL_MS * 1000};

		if (!m->lock_waited)
			log_info("gateway: the xtables lock %s is held by another program: the "
				 "backup, and then the table, wait for it (up to %d s)",
				xt_legacy_lock_path(), XT_LOCK_WAIT_MS / 1000);
		m->lock_waited = true;
		evtimer_add(m->lock_ev, &tv);
		return 1;
	}
	if (r == -EWOULDBLOCK) {
		*err = xt_legacy_lock_held_error();
		r = -EBUSY;
	}
	if (r == 0) {
		r = backup_locked(m->nft, path, m->lock_fd, err);
		m->lock_fd = -1; /* released by backup_locked */
	}
	lock_wait_end(m);
	return r;
}

static int gateway_apply(struct gateway_module *m);

/* Another try for the lock; a start that cannot take the backup fails the start. */
static void lock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct gateway_module *m = arg;
	int r;

	(void)fd;
	(void)what;
	r = gateway_apply(m);
	if (m->lock_deadline)
		return; /* still waiting */
	if (r < 0 && m->starting && m->failed_cb)
		m->failed_cb(m->failed_arg);
	m->starting = false;
}

/* Take back what gateway mode installed: the table, the TPROXY routing, forwarding. */
static void gateway_withdraw(struct gateway_module *m)
{
	char *err = NULL;

	lock_wait_end(m); /* no change of ours to come, no backup to wait for */
	if (!m->applied)
		return;
	if (nft_table_delete(m->nft, "inet", GATEWAY_TABLE, &err) < 0)
		log_warnx("gateway: removing table inet %s: %s", GATEWAY_TABLE, err ? err : "?");
	free(err);
	tproxy_routing(m, false, NULL);
	forwarding_back(m);
	m->applied = false;
	FREE_AND_NULL(m->body);
	log_info("gateway: removed table inet %s", GATEWAY_TABLE);
}

static int gateway_apply(struct gateway_module *m)
{
	const struct conf_gateway *g = conf_gateway(m->conf);
	struct nft_buf b;
	char *err = NULL;
	int r;

	if (!g) {
		if (m->applied || !m->off_logged)
			log_info("gateway: gateway mode is switched off ([gateway] enabled = no)");
		m->off_logged = true;
		gateway_withdraw(m);
		return 0;
	}
	m->off_logged = false;
	nft_buf_init(&b);
	gateway_body(g, &b);
	if (!g->auto_config) {
		gateway_withdraw(m);
		log_info("gateway: auto_config is off: install the interception yourself, e.g. "
			 "`nft -f` of:\ntable inet %s {\n%s}",
			GATEWAY_TABLE, b.data);
		nft_buf_clear(&b);
		return 0;
	}
	if (m->applied && m->body && streq(m->body, b.data) && tproxy_same(m, g)) {
		nft_buf_clear(&b);
		return 0;
	}
	if (!m->applied) {
		r = backup_try(m, g->backup_file, &err);
		if (r == 1) {
			nft_buf_clear(&b);
			return 0; /* lock_cb applies once the lock is ours */
		}
		if (r < 0) {
			/* no backup, no change: the promise is that the old ruleset can come back */
			log_error("gateway: %s; not changing the firewall", err ? err : strerror(-r));
			free(err);
			nft_buf_clear(&b);
			return r;
		}
	}
	r = nft_table_apply(m->nft, "inet", GATEWAY_TABLE, b.data, &err);
	if (r < 0) {
		log_error("gateway: applying table inet %s: %s", GATEWAY_TABLE,
			err ? err : strerror(-r));
		free(err);
		nft_buf_clear(&b);
		return r;
	}
	free(m->body);
	m->body = nft_buf_steal(&b);
	nft_buf_clear(&b);
	m->applied = true;
	forwarding_on(m, g);
	r = tproxy_routing(m, g->intercept == INTERCEPT_TPROXY, g);
	log_info("gateway: intercepting %zu subnet%s (%s to :%d, DNS to :%d), table inet %s",
		g->subnet.n, g->subnet.n == 1 ? "" : "s", gateway_intercept_name[g->intercept],
		g->transparent_port, g->dns_port, GATEWAY_TABLE);
	return r;
}

int gateway_module_new(struct event_base *base, const struct conf *conf,
	gateway_failed_cb failed_cb, void *arg, struct gateway_module **ret)
{
	struct gateway_module *m = xcalloc(1, sizeof(*m));
	int r;

	m->conf = conf;
	m->lock_fd = -1;
	m->failed_cb = failed_cb;
	m->failed_arg = arg;
	m->nft = nft_new();
	if (!m->nft) {
		free(m);
		return -ENOMEM;
	}
	r = nl_open(NETLINK_ROUTE, &m->nl);
	if (r < 0) {
		nft_free(m->nft);
		free(m);
		return r;
	}
	m->lock_ev = evtimer_new(base, lock_cb, m);
	if (!m->lock_ev) {
		gateway_module_free(m);
		return -ENOMEM;
	}
	r = gateway_apply(m);
	if (r < 0) {
		gateway_module_free(m);
		return r;
	}
	m->starting = m->lock_deadline != 0;
	*ret = m;
	return 0;
}

/* A failed apply keeps conf all the same: the daemon frees the old one once every module
 * has been handed the new (module.h), and what is in place is told by m->applied. */
int gateway_module_reconf(struct gateway_module *m, const struct conf *conf)
{
	m->conf = conf;
	return gateway_apply(m) < 0 ? -EINVAL : 0;
}

void gateway_module_free(struct gateway_module *m)
{
	if (!m)
		return;
	gateway_withdraw(m);
	if (m->lock_ev)
		event_free(m->lock_ev);
	nl_free(m->nl);
	nft_free(m->nft);
	free(m->body);
	free(m);
}

/* The module as the daemon sees it (module.h): runs while conf has [gateway], once the
 * proxy runs (it carries the intercepted traffic); switched off (enabled = no), it runs on
 * with nothing installed, so the API can switch it on again. */
static bool gateway_wanted_cb(const struct conf *conf)
{
	return conf_gateway_section(conf) != NULL;
}

/* The backup could not be taken once the loop ran: egressd stops, as on a failed start. */
static void gateway_failed_env_cb(void *arg)
{
	struct module_env *env = arg;

	env->failed_cb(env->failed_arg, "gateway mode");
}

static int gateway_new_cb(struct module_env *env, const struct conf *conf, void **ret)
{
	struct gateway_module *m = NULL;
	int r = gateway_module_new(env->base, conf, gateway_failed_env_cb, env, &m);

	if (m)
		m->env = env;
	*ret = m;
	return r;
}

static int gateway_reconf_cb(void *m, const struct conf *conf)
{
	return gateway_module_reconf(m, conf);
}

static void gateway_free_cb(void *m)
{
	gateway_module_free(m);
}

static json_t *gateway_status_cb(void *m)
{
	return gateway_info_json(m);
}

static const struct conf_section_type *const gateway_conf_types[] = {
	&conf_gateway_type,
};

const struct module module_gateway = {
	.name = "gateway",
	.conf_types = gateway_conf_types,
	.n_conf_types = ARRAY_SIZE(gateway_conf_types),
	.wanted = gateway_wanted_cb,
	.needs = &module_proxy,
	.new = gateway_new_cb,
	.reconf = gateway_reconf_cb,
	.free = gateway_free_cb,
	.status = gateway_status_cb,
	.api_routes = gateway_api_routes,
	.n_api_routes = ARRAY_SIZE(gateway_api_routes),
};
