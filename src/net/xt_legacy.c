/*
 * xt_legacy.c - save and put back iptables-legacy's tables (see xt_legacy.h).
 *
 * The IPv4 and IPv6 structures of the socket interface differ only in the entry itself
 * (struct ipt_entry vs struct ip6t_entry); the info, get-entries and replace headers have
 * one layout, checked below, so one code path serves both with the entry's field offsets
 * taken per family.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netinet/in.h> /* before the kernel headers, which defer to it */
#include <linux/netfilter_ipv4/ip_tables.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <openssl/evp.h>

#include "util.h"
#include "xt_legacy.h"

_Static_assert(XT_LEGACY_NAMELEN == XT_TABLE_MAXNAMELEN, "name length");
_Static_assert(XT_LEGACY_HOOKS == NF_INET_NUMHOOKS, "hooks");
_Static_assert(sizeof(struct ipt_getinfo) == sizeof(struct ip6t_getinfo), "getinfo layout");
_Static_assert(sizeof(struct ipt_replace) == sizeof(struct ip6t_replace), "replace layout");
_Static_assert(offsetof(struct ipt_get_entries, entrytable) ==
		       offsetof(struct ip6t_get_entries, entrytable),
	"get_entries layout");

/* The largest table we accept from a file: far above any real ruleset. */
#define XT_MAX_SIZE (64u << 20)
#define XT_TRIES    5

struct family_ops {
	const char *word;      /* in the backup line */
	const char *names;     /* /proc/net file of the tables in use */
	int level;	       /* socket option level */
	size_t entry_size;     /* the fixed part of an entry */
	size_t next_offset_at; /* offsetof(entry, next_offset) */
	size_t counters_at;    /* offsetof(entry, counters) */
};

static const struct family_ops ops_v4 = {
	"ipv4",
	"/proc/net/ip_tables_names",
	IPPROTO_IP,
	sizeof(struct ipt_entry),
	offsetof(struct ipt_entry, next_offset),
	offsetof(struct ipt_entry, counters),
};
static const struct family_ops ops_v6 = {
	"ipv6",
	"/proc/net/ip6_tables_names",
	IPPROTO_IPV6,
	sizeof(struct ip6t_entry),
	offsetof(struct ip6t_entry, next_offset),
	offsetof(struct ip6t_entry, counters),
};

static const struct family_ops *ops_of(int family)
{
	return family == AF_INET6 ? &ops_v6 : &ops_v4;
}

void xt_legacy_table_clear(struct xt_legacy_table *t)
{
	free(t->entries);
	memset(t, 0, sizeof(*t));
}

void xt_legacy_tables_free(struct xt_legacy_table *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		xt_legacy_table_clear(&v[i]);
	free(v);
}

static bool name_ok(const char *s, size_t len)
{
	if (len == 0 || len >= XT_TABLE_MAXNAMELEN)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/*
 * Walk the entries: each next_offset at least an entry, aligned, inside the blob, ending
 * exactly at its end after num_entries of them.  counters: filled in order when not NULL.
 */
static int walk_entries(
	const struct family_ops *ops, const struct xt_legacy_table *t, struct xt_counters *counters)
{
	size_t off = 0, n = 0;

	while (off < t->size) {
		uint16_t next;

		if (t->size - off < ops->entry_size || n == t->num_entries)
			return -EBADMSG;
		memcpy(&next, t->entries + off + ops->next_offset_at, sizeof(next));
		if (next < ops->entry_size || next % __alignof__(struct ipt_entry) ||
			next > t->size - off)
			return -EBADMSG;
		if (counters)
			memcpy(&counters[n], t->entries + off + ops->counters_at,
				sizeof(*counters));
		off += next;
		n++;
	}
	return n == t->num_entries ? 0 : -EBADMSG;
}

static int xt_socket(int family)
{
	int fd = socket(
		family == AF_INET6 ? AF_INET6 : AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);

	return fd < 0 ? -errno : fd;
}

static int get_info(
	int fd, const struct family_ops *ops, const char *name, struct ipt_getinfo *info)
{
	socklen_t len = sizeof(*info);

	memset(info, 0, sizeof(*info));
	snprintf(info->name, sizeof(info->name), "%s", name);
	if (getsockopt(fd, ops->level, IPT_SO_GET_INFO, info, &len) < 0)
		return -errno;
	return 0;
}

/* The same table layout: nothing changed between the two calls that read it. */
static bool same_info(const struct ipt_getinfo *a, const struct ipt_getinfo *b)
{
	return a->size == b->size && a->num_entries == b->num_entries &&
	       a->valid_hooks == b->valid_hooks &&
	       !memcmp(a->hook_entry, b->hook_entry, sizeof(a->hook_entry)) &&
	       !memcmp(a->underflow, b->underflow, sizeof(a->underflow));
}

static int get_table(int fd, int family, const char *name, struct xt_legacy_table *ret)
{
	const struct family_ops *ops = ops_of(family);
	size_t head = offsetof(struct ipt_get_entries, entrytable);

	memset(ret, 0, sizeof(*ret));
	for (int tries = 0; tries < XT_TRIES; tries++) {
		struct ipt_getinfo info, again;
		struct ipt_get_entries *get;
		socklen_t len;
		int r = get_info(fd, ops, name, &info);

		if (r < 0)
			return r;
		/* xt_legacy_parse() refuses more: a backup of it could never come back */
		if (info.size > XT_MAX_SIZE)
			return -EFBIG;
		len = (socklen_t)(head + info.size);
		get = xcalloc(1, len);
		memcpy(get->name, info.name, sizeof(get->name));
		get->size = info.size;
		if (getsockopt(fd, ops->level, IPT_SO_GET_ENTRIES, get, &len) < 0) {
			r = -errno;
			free(get);
			if (r == -EAGAIN) /* the table changed between the two calls */
				continue;
			return r;
		}
		/*
		 * GET_ENTRIES only checks the size: a change to rules of the same size in between
		 * would pair these hook offsets with other rules.  The same layout after the
		 * entries were read says they belong together.
		 */
		r = get_info(fd, ops, name, &again);
		if (r < 0) {
			free(get);
			return r;
		}
		if (!same_info(&info, &again)) {
			free(get);
			continue;
		}
		ret->family = family;
		memcpy(ret->name, info.name, sizeof(ret->name));
		ret->name[sizeof(ret->name) - 1] = '\0';
		ret->valid_hooks = info.valid_hooks;
		memcpy(ret->hook_entry, info.hook_entry, sizeof(ret->hook_entry));
		memcpy(ret->underflow, info.underflow, sizeof(ret->underflow));
		ret->num_entries = info.num_entries;
		ret->size = info.size;
		ret->entries = xmalloc(info.size ? info.size : 1);
		memcpy(ret->entries, (unsigned char *)get + head, info.size);
		free(get);
		/* what we save must be what the restore accepts */
		if (walk_entries(ops, ret, NULL) < 0) {
			xt_legacy_table_clear(ret);
			return -EBADMSG;
		}
		return 0;
	}
	return -EAGAIN;
}

int xt_legacy_get(int family, const char *name, struct xt_legacy_table *ret)
{
	int fd = xt_socket(family), r;

	memset(ret, 0, sizeof(*ret));
	if (fd < 0)
		return fd;
	r = get_table(fd, family, name, ret);
	close(fd);
	return r;
}

static void save_error(char **err, const struct family_ops *ops, const char *name, int r)
{
	const char *why = strerror(-r);

	if (!err)
		return;
	if (r == -EFBIG)
		why = "more rules than the 64 MiB a backup can hold";
	else if (r == -EBADMSG)
		why = "the kernel handed out entries that do not add up";
	else if (r == -EAGAIN)
		why = "it kept changing while it was read";
	if (asprintf(err, "%s table %s: %s", ops->word, name, why) < 0)
		*err = NULL;
}

static int save_family(int family, struct xt_legacy_table **v, size_t *n, char **err)
{
	const struct family_ops *ops = ops_of(family);
	FILE *f = fopen(ops->names, "re");
	char line[64];
	int fd, r = 0;

	if (!f) { /* no legacy x_tables in this kernel, or none ever loaded: nothing in use */
		if (errno == ENOENT)
			return 0;
		r = -errno;
		if (err && asprintf(err, "%s: %s", ops->names, strerror(-r)) < 0)
			*err = NULL;
		return r;
	}
	fd = xt_socket(family);
	if (fd < 0) {
		fclose(f);
		if (err && asprintf(err, "%s tables: socket: %s", ops->word, strerror(-fd)) < 0)
			*err = NULL;
		return fd;
	}
	while (r == 0 && fgets(line, sizeof(line), f)) {
		struct xt_legacy_table t;

		line[strcspn(line, "\n")] = '\0';
		if (!name_ok(line, strlen(line)))
			continue;
		r = get_table(fd, family, line, &t);
		if (r < 0) {
			save_error(err, ops, line, r);
			break;
		}
		*v = xrealloc(*v, (*n + 1) * sizeof(**v));
		(*v)[(*n)++] = t;
	}
	close(fd);
	fclose(f);
	return r;
}

int xt_legacy_save_all(struct xt_legacy_table **ret, size_t *n, char **err)
{
	int r;

	*ret = NULL;
	*n = 0;
	if (err)
		*err = NULL;
	r = save_family(AF_INET, ret, n, err);
	if (r == 0)
		r = save_family(AF_INET6, ret, n, err);
	if (r < 0) {
		xt_legacy_tables_free(*ret, *n);
		*ret = NULL;
		*n = 0;
	}
	return r;
}

int xt_legacy_replace(const struct xt_legacy_table *t, char **err)
{
	const struct family_ops *ops = ops_of(t->family);
	struct xt_counters_info *add = NULL;
	struct ipt_replace *repl = NULL;
	struct ipt_getinfo info;
	size_t add_len;
	int fd, r;

	*err = NULL;
	fd = xt_socket(t->family);
	if (fd < 0) {
		r = fd;
		goto fail;
	}
	repl = xcalloc(1, sizeof(*repl) + t->size);
	memcpy(repl->name, t->name, sizeof(repl->name));
	repl->valid_hooks = t->valid_hooks;
	repl->num_entries = t->num_entries;
	repl->size = t->size;
	memcpy(repl->hook_entry, t->hook_entry, sizeof(repl->hook_entry));
	memcpy(repl->underflow, t->underflow, sizeof(repl->underflow));
	memcpy(repl->entries, t->entries, t->size);
	for (int tries = 0;; tries++) {
		/* the kernel hands the old counters back: it wants to know how many there are */
		r = get_info(fd, ops, t->name, &info);
		if (r < 0)
			goto fail;
		free(repl->counters);
		repl->num_counters = info.num_entries;
		repl->counters = xcalloc(
			info.num_entries ? info.num_entries : 1, sizeof(struct xt_counters));
		if (setsockopt(fd, ops->level, IPT_SO_SET_REPLACE, repl, sizeof(*repl) + t->size) ==
			0)
			break;
		r = -errno;
		/* EAGAIN: the table changed after GET_INFO and holds another number of rules */
		if (r != -EAGAIN || tries + 1 == XT_TRIES)
			goto fail;
	}
	/* the new rules start at zero: add what they had counted */
	add_len = sizeof(*add) + (size_t)t->num_entries * sizeof(struct xt_counters);
	add = xcalloc(1, add_len);
	memcpy(add->name, t->name, sizeof(add->name));
	add->num_counters = t->num_entries;
	r = walk_entries(ops, t, add->counters);
	if (r == 0 && setsockopt(fd, ops->level, IPT_SO_SET_ADD_COUNTERS, add, add_len) < 0)
		r = -errno;
	if (r < 0) {
		/* the rules are in; only the counts are not: say so, do not undo */
		if (asprintf(err, "%s table %s: rules restored, counters not: %s", ops->word,
			    t->name, strerror(-r)) < 0)
			*err = NULL;
		r = 0;
	}
	goto out;
fail:
	if (asprintf(err, "%s table %s: %s", ops->word, t->name, strerror(-r)) < 0)
		*err = NULL;
out:
	if (repl)
		free(repl->counters);
	free(repl);
	free(add);
	if (fd >= 0)
		close(fd);
	return r;
}

/* ---- the xtables lock ---------------------------------------------------------------- */

#define XT_LOCK_FILE	"/run/xtables.lock"

int xt_legacy_lock_open(int *ret, char **err)
{
	const char *path = xt_legacy_lock_path();
	int fd;

	*ret = -1;
	if (err)
		*err = NULL;
	/* no legacy x_tables, no iptables-legacy to keep out: leave no lock file behind */
	if (access(ops_v4.names, F_OK) < 0 && access(ops_v6.names, F_OK) < 0)
		return 0;
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int r = -errno;

		if (err && asprintf(err, "opening the xtables lock %s: %s", path, strerror(-r)) < 0)
			*err = NULL;
		return r;
	}
	*ret = fd;
	return 0;
}

int xt_legacy_lock_try(int fd, char **err)
{
	if (err)
		*err = NULL;
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) == 0)
		return 0;
	if (errno == EWOULDBLOCK || errno == EINTR)
		return -EWOULDBLOCK;
	int r = -errno;
	if (err && asprintf(err, "taking the xtables lock %s: %s", xt_legacy_lock_path(),
			   strerror(-r)) < 0)
		*err = NULL;
	return r;
}

const char *xt_legacy_lock_path(void)
{
	const char *path = getenv("XTABLES_LOCKFILE");

	return path && *path ? path : XT_LOCK_FILE;
}

char *xt_legacy_lock_held_error(void)
{
	char *s;

	if (asprintf(&s,
		    "the xtables lock %s is held by another program (an iptables-legacy still "
		    "running?); gave up after %d s",
		    xt_legacy_lock_path(), XT_LOCK_WAIT_MS / 1000) < 0)
		return NULL;
	return s;
}

int xt_legacy_lock(int *ret, char **err)
{
	int fd, r;

	r = xt_legacy_lock_open(&fd, err);
	if (r < 0 || fd < 0) {
		*ret = -1;
		return r;
	}
	/* polled, not waited for: a program that never lets go must not hang us */
	for (int waited = 0;; waited += XT_LOCK_POLL_MS) {
		r = xt_legacy_lock_try(fd, err);
		if (r == 0)
			break;
		if (r != -EWOULDBLOCK || waited >= XT_LOCK_WAIT_MS) {
			if (r == -EWOULDBLOCK && err)
				*err = xt_legacy_lock_held_error();
			close(fd);
			*ret = -1;
			return r == -EWOULDBLOCK ? -EBUSY : r;
		}
		usleep(XT_LOCK_POLL_MS * 1000);
	}
	*ret = fd;
	return 0;
}

void xt_legacy_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* the last descriptor of the open file: the lock goes with it */
}

/* ---- the text form ------------------------------------------------------------------- */

char *xt_legacy_format(const struct xt_legacy_table *t)
{
	size_t b64_len = 4 * ((t->size + 2) / 3) + 1;
	char *b64 = xmalloc(b64_len), *s;

	EVP_EncodeBlock((unsigned char *)b64, t->entries, (int)t->size);
	if (asprintf(&s, "%s%s %s %u %u %u %u,%u,%u,%u,%u %u,%u,%u,%u,%u %s", XT_LEGACY_PREFIX,
		    ops_of(t->family)->word, t->name, t->valid_hooks, t->num_entries, t->size,
		    t->hook_entry[0], t->hook_entry[1], t->hook_entry[2], t->hook_entry[3],
		    t->hook_entry[4], t->underflow[0], t->underflow[1], t->underflow[2],
		    t->underflow[3], t->underflow[4], b64) < 0)
		s = NULL;
	free(b64);
	return s;
}

/* The next space-separated word of [*p, end); false at the end. */
static bool word(const char **p, const char *end, const char **w, size_t *wlen)
{
	while (*p < end && **p == ' ')
		(*p)++;
	*w = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	*wlen = (size_t)(*p - *w);
	return *wlen > 0;
}

static bool uint_word(const char *w, size_t len, unsigned int *v)
{
	unsigned long long x = 0;

	if (len == 0 || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (w[i] < '0' || w[i] > '9')
			return false;
		x = x * 10 + (unsigned)(w[i] - '0');
	}
	if (x > UINT32_MAX)
		return false;
	*v = (unsigned int)x;
	return true;
}

/* "a,b,c,d,e": NF_INET_NUMHOOKS numbers */
static bool hooks_word(const char *w, size_t len, unsigned int *v)
{
	const char *end = w + len;

	for (int i = 0; i < NF_INET_NUMHOOKS; i++) {
		const char *comma = memchr(w, ',', (size_t)(end - w));
		const char *stop = comma && i < NF_INET_NUMHOOKS - 1 ? comma : end;

		if (i < NF_INET_NUMHOOKS - 1 && !comma)
			return false;
		if (!uint_word(w, (size_t)(stop - w), &v[i]))
			return false;
		w = stop + 1;
	}
	return true;
}

static int bad(char **err, const char *what)
{
	if (asprintf(err, "iptables-legacy table line: %s", what) < 0)
		*err = NULL;
	return -EBADMSG;
}

int xt_legacy_parse(const char *line, size_t len, struct xt_legacy_table *ret, char **err)
{
	const char *p = line, *end = line + len, *w;
	const struct family_ops *ops;
	struct xt_legacy_table t = {0};
	size_t wlen, plen = strlen(XT_LEGACY_PREFIX);
	int decoded, pad = 0;

	*err = NULL;
	memset(ret, 0, sizeof(*ret));
	if (len < plen || memcmp(line, XT_LEGACY_PREFIX, plen))
		return bad(err, "does not start with \"" XT_LEGACY_PREFIX "\"");
	p += plen;
	if (!word(&p, end, &w, &wlen))
		return bad(err, "no family");
	if (wlen == 4 && !memcmp(w, "ipv4", 4))
		t.family = AF_INET;
	else if (wlen == 4 && !memcmp(w, "ipv6", 4))
		t.family = AF_INET6;
	else
		return bad(err, "family: expected ipv4 or ipv6");
	ops = ops_of(t.family);
	if (!word(&p, end, &w, &wlen) || !name_ok(w, wlen))
		return bad(err, "table name: expected 1 to 31 of a-z, 0-9 and _");
	memcpy(t.name, w, wlen);
	if (!word(&p, end, &w, &wlen) || !uint_word(w, wlen, &t.valid_hooks) ||
		t.valid_hooks == 0 || t.valid_hooks >= 1u << NF_INET_NUMHOOKS)
		return bad(err, "hooks: expected a mask of the 5 netfilter hooks");
	if (!word(&p, end, &w, &wlen) || !uint_word(w, wlen, &t.num_entries) || t.num_entries == 0)
		return bad(err, "entries: expected a number above 0");
	if (!word(&p, end, &w, &wlen) || !uint_word(w, wlen, &t.size) || t.size == 0 ||
		t.size > XT_MAX_SIZE)
		return bad(err, "size: expected a byte count up to 64 MiB");
	if (!word(&p, end, &w, &wlen) || !hooks_word(w, wlen, t.hook_entry))
		return bad(err, "hook entries: expected 5 numbers separated by commas");
	if (!word(&p, end, &w, &wlen) || !hooks_word(w, wlen, t.underflow))
		return bad(err, "underflows: expected 5 numbers separated by commas");
	for (int h = 0; h < NF_INET_NUMHOOKS; h++)
		if ((t.valid_hooks & (1u << h)) &&
			(t.hook_entry[h] >= t.size || t.underflow[h] >= t.size))
			return bad(err, "a hook entry or underflow lies outside the rules");
	if (!word(&p, end, &w, &wlen) || wlen % 4 || wlen / 4 * 3 < t.size ||
		wlen / 4 * 3 - t.size > 2)
		return bad(err, "rules: expected base64 of exactly size bytes");
	if (p != end)
		return bad(err, "text after the rules");
	for (size_t i = wlen; i > 0 && w[i - 1] == '='; i--)
		pad++;
	t.entries = xmalloc(wlen / 4 * 3);
	decoded = EVP_DecodeBlock(t.entries, (const unsigned char *)w, (int)wlen);
	if (decoded < 0 || (size_t)decoded - (size_t)pad != t.size) {
		free(t.entries);
		return bad(err, "rules: not base64 of exactly size bytes");
	}
	if (walk_entries(ops, &t, NULL) < 0) {
		free(t.entries);
		return bad(err, "rules: the entries do not add up to the size and count given");
	}
	*ret = t;
	return 0;
}
