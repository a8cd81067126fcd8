/*
 * conf.c - the configuration engine: INI file through inih, keyword tables,
 * value parsers, normalised printing and validation.
 *
 * Every error names where it happened (file:line or the flag), the section,
 * the key, what was expected and what was seen.  Parsing never changes a
 * running configuration: callers parse into a new struct conf and swap.
 *
 * Must not know any module's keys (conf_keys.c and each module's *_conf.c), and must
 * not log: errors are returned in struct conf_errors for the caller to print.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "conf.h"
#include "util.h"

/* inih's line buffer (INI_MAX_LINE in the library as Debian builds it). */
#define CONF_LINE_MAX 200
#define CONF_ERRORS_MAX 50

const char *const conf_type_name[_CONF_TYPE_MAX] = {
	[CONF_STRING] = "string",
	[CONF_BOOL] = "bool",
	[CONF_INT] = "integer",
	[CONF_U32] = "integer",
	[CONF_DURATION] = "duration",
	[CONF_ENUM] = "enum",
	[CONF_IFNAME] = "interface",
	[CONF_ADDR] = "address",
	[CONF_CIDR_LIST] = "prefix list",
	[CONF_ADDR_LIST] = "address list",
	[CONF_RANGE_LIST] = "range list",
	[CONF_WORD_LIST] = "list of names",
};

bool range_list_contains(const struct range_list *l, uint32_t v)
{
	for (size_t i = 0; i < l->n; i++)
		if (v >= l->v[i].lo && v <= l->v[i].hi)
			return true;
	return false;
}

/* ---------------------------------------------------------------- errors */

/* The strings of a struct conf_error_at that errs owns are const to its readers only. */
static void free_const(const char *p)
{
	free((void *)(uintptr_t)p);
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static void conf_errors_vadd(struct conf_errors *errs, const struct conf_error_at *at,
	const char *fmt, va_list ap)
{
	char *msg;

	if (errs->n >= CONF_ERRORS_MAX)
		return;
	if (vasprintf(&msg, fmt, ap) < 0)
		return;
	errs->msgs = xrealloc(errs->msgs, (errs->n + 1) * sizeof(*errs->msgs));
	errs->at = xrealloc(errs->at, (errs->n + 1) * sizeof(*errs->at));
	errs->msgs[errs->n] = msg;
	errs->at[errs->n] = (struct conf_error_at){0};
	if (at)
		errs->at[errs->n] = (struct conf_error_at){
			.file = dup_or_null(at->file),
			.line = at->line,
			.section = dup_or_null(at->section),
			.key = dup_or_null(at->key),
			.expected = dup_or_null(at->expected),
			.seen = dup_or_null(at->seen),
		};
	errs->n++;
}

void conf_errors_add(struct conf_errors *errs, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_errors_vadd(errs, NULL, fmt, ap);
	va_end(ap);
}

void conf_errors_add_at(struct conf_errors *errs, const struct conf_error_at *at,
	const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	conf_errors_vadd(errs, at, fmt, ap);
	va_end(ap);
}

static void section_label(const struct conf_section *s, char *buf, size_t len)
{
	if (s->name)
		snprintf(buf, len, "[%s %s]", s->type->name, s->name);
	else
		snprintf(buf, len, "[%s]", s->type->name);
}

/* "uplink isp1", "global": a section as struct conf_error_at names it. */
static void section_name(const struct conf_section *s, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s%s", s->type->name, s->name ? " " : "", s->name ? s->name : "");
}

void conf_section_error(struct conf_errors *errs, const struct conf_section *s, const char *key,
	const char *fmt, ...)
{
	char label[128], where[PATH_MAX + 32], msg[1024], name[128];
	va_list ap;
	int line = s->line;

	if (key) {
		const struct conf_key *k = conf_key_find(s->type, key);
		if (k && s->key_line[conf_key_index(s->type, k)] > 0)
			line = s->key_line[conf_key_index(s->type, k)];
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	section_label(s, label, sizeof(label));
	if (s->file)
		snprintf(where, sizeof(where), "%s:%d: ", s->file, line);
	else
		snprintf(where, sizeof(where), "configuration: ");
	section_name(s, name, sizeof(name));
	struct conf_error_at at = {.file = s->file, .line = s->file ? line : 0, .section = name,
		.key = key};
	if (key)
		conf_errors_add_at(errs, &at, "%s%s %s: %s", where, label, key, msg);
	else
		conf_errors_add_at(errs, &at, "%s%s: %s", where, label, msg);
}

void conf_errors_print(const struct conf_errors *errs, FILE *f)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(f, "%s\n", errs->msgs[i]);
	if (errs->n >= CONF_ERRORS_MAX)
		fprintf(f, "(further errors not shown)\n");
}

void conf_errors_clear(struct conf_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++) {
		struct conf_error_at *at = &errs->at[i];
		free(errs->msgs[i]);
		free_const(at->file);
		free_const(at->section);
		free_const(at->key);
		free_const(at->expected);
		free_const(at->seen);
	}
	free(errs->msgs);
	free(errs->at);
	errs->msgs = NULL;
	errs->at = NULL;
	errs->n = 0;
}

/* ---------------------------------------------------------------- values */

int conf_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * Durations as Go writes them ("1s", "300ms", "1m30s", "1.5s", "2h"), so the
 * flags of the tools our users come from work unchanged; a bare number is
 * seconds.  Resolution is one millisecond.
 */
int conf_parse_duration(const char *s, uint32_t *ret_ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	uint64_t total_us = 0;
	const char *p = s;

	if (!*p)
		return -EINVAL;
	if (strspn(p, "0123456789") == strlen(p)) {
		if (strlen(p) > 7)
			return -ERANGE;
		*ret_ms = (uint32_t)strtoul(p, NULL, 10) * 1000;
		return 0;
	}
	while (*p) {
		uint64_t whole = 0, frac = 0, frac_div = 1;
		int digits = 0;

		while (isdigit((unsigned char)*p)) {
			whole = whole * 10 + (uint64_t)(*p++ - '0');
			if (whole > 100000000ULL)
				return -ERANGE;
			digits++;
		}
		if (*p == '.') {
			p++;
			while (isdigit((unsigned char)*p)) {
				if (frac_div < 1000000) {
					frac = frac * 10 + (uint64_t)(*p - '0');
					frac_div *= 10;
				}
				p++;
				digits++;
			}
		}
		if (!digits)
			return -EINVAL;
		size_t best = SIZE_MAX;
		for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
			size_t ul = strlen(units[i].unit);
			if (strncmp(p, units[i].unit, ul) == 0 &&
				(best == SIZE_MAX || ul > strlen(units[best].unit)))
				best = i;
		}
		if (best == SIZE_MAX)
			return -EINVAL;
		/* "m" must not swallow the "m" of "ms": longest unit wins above. */
		p += strlen(units[best].unit);
		total_us += whole * units[best].ms * 1000 + frac * units[best].ms * 1000 / frac_div;
		if (total_us > (uint64_t)UINT32_MAX * 1000)
			return -ERANGE;
	}
	if (total_us % 1000)
		return -EDOM; /* finer than a millisecond */
	*ret_ms = (uint32_t)(total_us / 1000);
	return 0;
}

int conf_format_duration(uint32_t ms, char *buf, size_t len)
{
	if (ms == 0)
		return snprintf(buf, len, "0s");
	if (ms % 3600000 == 0)
		return snprintf(buf, len, "%" PRIu32 "h", ms / 3600000);
	if (ms % 60000 == 0)
		return snprintf(buf, len, "%" PRIu32 "m", ms / 60000);
	if (ms % 1000 == 0)
		return snprintf(buf, len, "%" PRIu32 "s", ms / 1000);
	return snprintf(buf, len, "%" PRIu32 "ms", ms);
}

static int parse_number(const char *s, bool allow_hex, long long *ret)
{
	char *end;

	if (!*s || isspace((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	long long v = strtoll(s, &end, allow_hex ? 0 : 10);
	if (*end || errno)
		return errno ? -errno : -EINVAL;
	/* strtoll base 0 reads "010" as octal: nobody writes marks in octal. */
	if (allow_hex && s[0] == '0' && s[1] && s[1] != 'x' && s[1] != 'X')
		return -EINVAL;
	*ret = v;
	return 0;
}

static const char *cidr_family_word(unsigned flags)
{
	if (flags & CONF_V4)
		return "IPv4 ";
	if (flags & CONF_V6)
		return "IPv6 ";
	return "";
}

static int set_cidr_list(struct cidr_list *l, const struct conf_key *k, const char *value,
	char *why, size_t whylen)
{
	unsigned cflags = 0;
	char *copy = xstrdup(value), *save = NULL;
	struct cidr *add = NULL;
	size_t n_add = 0;
	int r = 0;

	if (k->flags & CONF_V4)
		cflags |= CIDR_V4;
	if (k->flags & CONF_V6)
		cflags |= CIDR_V6;
	if (k->flags & CONF_HOSTBITS)
		cflags |= CIDR_HOSTBITS;
	if (k->flags & CONF_BARE)
		cflags |= CIDR_BARE;
	if (k->flags & CONF_DEFAULT)
		cflags |= CIDR_DEFAULT;
	for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		struct cidr c;
		r = cidr_parse(tok, cflags, &c);
		if (r < 0) {
			snprintf(why, whylen, "a list of %sprefixes such as %s (\"%s\": %s)",
				cidr_family_word(k->flags),
				(k->flags & CONF_V6) ? "2001:db8::/32" : "192.0.2.0/24", tok,
				cidr_strerror(r));
			r = -EINVAL;
			goto out;
		}
		add = xrealloc(add, (n_add + 1) * sizeof(*add));
		add[n_add++] = c;
	}
	if (!n_add) {
		snprintf(why, whylen, "a list of %sprefixes", cidr_family_word(k->flags));
		r = -EINVAL;
		goto out;
	}
	l->v = xrealloc(l->v, (l->n + n_add) * sizeof(*l->v));
	memcpy(l->v + l->n, add, n_add * sizeof(*add));
	l->n += n_add;
out:
	free(add);
	free(copy);
	return r;
}

/* Split value into tokens and parse each with one_cb into a temporary array, then append
 * them all to the list at p (all or nothing). */
typedef int (*list_item_cb)(const struct conf_key *k, const char *tok, void *item, char *why,
	size_t whylen);

static int set_list(void **items, size_t *n, size_t item_size, const struct conf_key *k,
	const char *value, list_item_cb one_cb, char *why, size_t whylen)
{
	char *copy = xstrdup(value), *save = NULL;
	char *add = NULL;
	size_t n_add = 0;
	int r = 0;

	for (char *tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		add = xrealloc(add, (n_add + 1) * item_size);
		memset(add + n_add * item_size, 0, item_size);
		r = one_cb(k, tok, add + n_add * item_size, why, whylen);
		if (r < 0)
			goto out;
		n_add++;
	}
	if (!n_add) {
		one_cb(k, "", NULL, why, whylen);
		r = -EINVAL;
		goto out;
	}
	*items = xrealloc(*items, (*n + n_add) * item_size);
	memcpy((char *)*items + *n * item_size, add, n_add * item_size);
	*n += n_add;
out:
	free(add);
	free(copy);
	return r;
}

static int addr_item_cb(const struct conf_key *k, const char *tok, void *item, char *why,
	size_t whylen)
{
	int family = (k->flags & CONF_V4) ? AF_INET : (k->flags & CONF_V6) ? AF_INET6 : 0;
	struct waddr *w = item;
	char buf[64];
	const char *at = strchr(tok, '@');
	long long weight = 0;

	if (w && (size_t)(at ? at - tok : (long)strlen(tok)) < sizeof(buf)) {
		snprintf(buf, sizeof(buf), "%.*s", (int)(at ? at - tok : (long)strlen(tok)), tok);
		if (addr_parse_family(buf, family, &w->addr) == 0) {
			if (!at)
				return 0;
			if ((k->flags & CONF_WEIGHT) && parse_number(at + 1, false, &weight) == 0 &&
				weight >= k->min && weight <= k->max) {
				w->weight = (int)weight;
				return 0;
			}
		}
	}
	if (k->flags & CONF_WEIGHT)
		snprintf(why, whylen, "a list of %saddresses, each optionally with a weight "
				      "from %lld to %lld as in 192.0.2.1@3",
			cidr_family_word(k->flags), k->min, k->max);
	else
		snprintf(why, whylen, "a list of %saddresses such as %s", cidr_family_word(k->flags),
			(k->flags & CONF_V6) ? "2001:db8::1" : "192.0.2.1");
	return -EINVAL;
}

static int range_item_cb(const struct conf_key *k, const char *tok, void *item, char *why,
	size_t whylen)
{
	struct range *rg = item;
	long long lo, hi;
	char buf[64];
	const char *dash = strchr(tok, '-');

	if (rg && strlen(tok) < sizeof(buf)) {
		snprintf(buf, sizeof(buf), "%.*s", (int)(dash ? dash - tok : (long)strlen(tok)), tok);
		if (parse_number(buf, false, &lo) == 0 &&
			(dash ? parse_number(dash + 1, false, &hi) : (hi = lo, 0)) == 0 &&
			lo >= k->min && hi <= k->max && lo <= hi) {
			rg->lo = (uint32_t)lo;
			rg->hi = (uint32_t)hi;
			return 0;
		}
	}
	snprintf(why, whylen, "a list of numbers or ranges from %lld to %lld such as 200-299, 301",
		k->min, k->max);
	return -EINVAL;
}

static int word_item_cb(const struct conf_key *k, const char *tok, void *item, char *why,
	size_t whylen)
{
	char **w = item;
	size_t n = strlen(tok);
	bool ok = w && n > 0 && n <= 64;

	for (size_t i = 0; ok && i < n; i++)
		ok = isalnum((unsigned char)tok[i]) || strchr("-_.@/:[]", tok[i]);
	if (ok) {
		*w = xstrdup(tok);
		return 0;
	}
	snprintf(why, whylen, "a list of names of letters, digits and -_.@/:[] (at most 64 each)");
	(void)k;
	return -EINVAL;
}

static bool ifname_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IFNAMSIZ || streq(s, ".") || streq(s, ".."))
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] == '/' || s[i] == ':' || isspace((unsigned char)s[i]))
			return false;
	return true;
}

int conf_set(struct conf_section *s, const struct conf_key *k, const char *value, char *why,
	size_t whylen)
{
	char *p = (char *)s + k->offset;
	long long v = 0;
	int r;

	why[0] = '\0';
	switch (k->type) {
	case CONF_STRING:
		free(*(char **)p);
		*(char **)p = xstrdup(value);
		return 0;
	case CONF_BOOL:
		if (conf_parse_bool(value, (bool *)p) < 0) {
			snprintf(why, whylen, "true or false");
			return -EINVAL;
		}
		return 0;
	case CONF_INT:
	case CONF_U32:
		r = parse_number(value, k->type == CONF_U32, &v);
		if (r < 0 || v < k->min || v > k->max) {
			if (k->type == CONF_U32 && k->max > 0xffff)
				snprintf(why, whylen, "an integer from %lld to %lld (or 0x%llx)", k->min,
					k->max, k->max);
			else
				snprintf(why, whylen, "an integer from %lld to %lld", k->min, k->max);
			return -EINVAL;
		}
		if (k->type == CONF_INT)
			*(int *)p = (int)v;
		else
			*(uint32_t *)p = (uint32_t)v;
		return 0;
	case CONF_DURATION: {
		uint32_t ms;
		char lo[32], hi[32];

		conf_format_duration((uint32_t)k->min, lo, sizeof(lo));
		conf_format_duration((uint32_t)k->max, hi, sizeof(hi));
		r = conf_parse_duration(value, &ms);
		if (r < 0 || ms < k->min || ms > k->max) {
			snprintf(why, whylen, "a duration from %s to %s such as 300ms, 2s or 1m", lo,
				hi);
			return -EINVAL;
		}
		*(uint32_t *)p = ms;
		return 0;
	}
	case CONF_ENUM:
		for (int i = 0; i < k->n_names; i++) {
			if (k->names[i] && strcasecmp(value, k->names[i]) == 0) {
				*(int *)p = i;
				return 0;
			}
		}
		{
			size_t off = (size_t)snprintf(why, whylen, "one of");
			for (int i = 0; i < k->n_names && off < whylen; i++)
				if (k->names[i])
					off += (size_t)snprintf(why + off, whylen - off, "%s %s",
						i ? "," : "", k->names[i]);
		}
		return -EINVAL;
	case CONF_IFNAME:
		if (!ifname_valid(value)) {
			snprintf(why, whylen, "an interface name of 1 to %d characters without '/', "
					      "':' or spaces",
				IFNAMSIZ - 1);
			return -EINVAL;
		}
		snprintf(p, IFNAMSIZ, "%s", value);
		return 0;
	case CONF_ADDR: {
		int family = (k->flags & CONF_V4) ? AF_INET : (k->flags & CONF_V6) ? AF_INET6 : 0;
		if (addr_parse_family(value, family, (struct addr *)p) < 0) {
			snprintf(why, whylen, "an %saddress such as %s",
				family == AF_INET6 ? "IPv6 " : family == AF_INET ? "IPv4 " : "IP ",
				family == AF_INET6 ? "2001:db8::1" : "192.0.2.1");
			return -EINVAL;
		}
		return 0;
	}
	case CONF_CIDR_LIST:
		return set_cidr_list((struct cidr_list *)p, k, value, why, whylen);
	case CONF_ADDR_LIST: {
		struct addr_list *l = (struct addr_list *)p;
		return set_list((void **)&l->v, &l->n, sizeof(*l->v), k, value, addr_item_cb, why,
			whylen);
	}
	case CONF_RANGE_LIST: {
		struct range_list *l = (struct range_list *)p;
		return set_list((void **)&l->v, &l->n, sizeof(*l->v), k, value, range_item_cb, why,
			whylen);
	}
	case CONF_WORD_LIST: {
		struct word_list *l = (struct word_list *)p;
		return set_list((void **)&l->v, &l->n, sizeof(*l->v), k, value, word_item_cb, why,
			whylen);
	}
	case _CONF_TYPE_MAX:
		break;
	}
	abort();
}

size_t conf_value_count(const struct conf_section *s, const struct conf_key *k)
{
	const char *p = (const char *)s + k->offset;

	switch (k->type) {
	case CONF_STRING:
		return *(char *const *)p ? 1 : 0;
	case CONF_IFNAME:
		return p[0] ? 1 : 0;
	case CONF_ADDR:
		return addr_is_set((const struct addr *)p) ? 1 : 0;
	case CONF_CIDR_LIST:
		return ((const struct cidr_list *)p)->n;
	case CONF_ADDR_LIST:
		return ((const struct addr_list *)p)->n;
	case CONF_RANGE_LIST:
		return ((const struct range_list *)p)->n;
	case CONF_WORD_LIST:
		return ((const struct word_list *)p)->n;
	default:
		/* Scalars always have a value: their default or what was set. */
		return 1;
	}
}

int conf_format(const struct conf_section *s, const struct conf_key *k, size_t i, char *buf,
	size_t len)
{
	const char *p = (const char *)s + k->offset;

	switch (k->type) {
	case CONF_STRING:
		return snprintf(buf, len, "%s", *(char *const *)p ? *(char *const *)p : "");
	case CONF_BOOL:
		return snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false");
	case CONF_INT:
		return snprintf(buf, len, "%d", *(const int *)p);
	case CONF_U32:
		if (k->flags & CONF_HEX)
			return snprintf(buf, len, "0x%" PRIx32, *(const uint32_t *)p);
		return snprintf(buf, len, "%" PRIu32, *(const uint32_t *)p);
	case CONF_DURATION:
		return conf_format_duration(*(const uint32_t *)p, buf, len);
	case CONF_ENUM: {
		int v = *(const int *)p;
		return snprintf(buf, len, "%s", v >= 0 && v < k->n_names ? k->names[v] : "?");
	}
	case CONF_IFNAME:
		return snprintf(buf, len, "%s", p);
	case CONF_ADDR:
		addr_str((const struct addr *)p, buf, len);
		return (int)strlen(buf);
	case CONF_CIDR_LIST:
		cidr_str(&((const struct cidr_list *)p)->v[i], buf, len);
		return (int)strlen(buf);
	case CONF_ADDR_LIST: {
		const struct waddr *w = &((const struct addr_list *)p)->v[i];
		addr_str(&w->addr, buf, len);
		if (w->weight) {
			size_t off = strlen(buf);
			snprintf(buf + off, len - off, "@%d", w->weight);
		}
		return (int)strlen(buf);
	}
	case CONF_RANGE_LIST: {
		const struct range *rg = &((const struct range_list *)p)->v[i];
		if (rg->lo == rg->hi)
			return snprintf(buf, len, "%" PRIu32, rg->lo);
		return snprintf(buf, len, "%" PRIu32 "-%" PRIu32, rg->lo, rg->hi);
	}
	case CONF_WORD_LIST:
		return snprintf(buf, len, "%s", ((const struct word_list *)p)->v[i]);
	case _CONF_TYPE_MAX:
		break;
	}
	abort();
}

void conf_value_clear(struct conf_section *s, const struct conf_key *k)
{
	char *p = (char *)s + k->offset;

	if (k->type == CONF_STRING) {
		FREE_AND_NULL(*(char **)p);
	} else if (k->type == CONF_WORD_LIST) {
		struct word_list *l = (struct word_list *)p;
		for (size_t i = 0; i < l->n; i++)
			free(l->v[i]);
		FREE_AND_NULL(l->v);
		l->n = 0;
	} else if (conf_type_is_list(k->type)) {
		/* every list struct is { T *v; size_t n; } */
		struct cidr_list *l = (struct cidr_list *)p;
		FREE_AND_NULL(l->v);
		l->n = 0;
	}
}

/* ---------------------------------------------------------------- sections */

const struct conf_key *conf_key_find(const struct conf_section_type *t, const char *name)
{
	for (size_t i = 0; i < t->n_keys; i++)
		if (streq(t->keys[i].name, name))
			return &t->keys[i];
	return NULL;
}

int conf_key_index(const struct conf_section_type *t, const struct conf_key *k)
{
	return (int)(k - t->keys);
}

bool conf_key_is_set(const struct conf_section *s, const struct conf_key *k)
{
	return s->key_line[conf_key_index(s->type, k)] != 0;
}

static int type_index(const struct conf *conf, const char *type)
{
	for (size_t i = 0; i < conf->n_types; i++)
		if (streq(conf->types[i]->name, type))
			return (int)i;
	return -1;
}

static void section_free(struct conf_section *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->type->n_keys; i++)
		conf_value_clear(s, &s->type->keys[i]);
	free(s->name);
	free(s->file);
	free(s->key_line);
	free(s);
}

/* A section with every default applied.  Defaults are table text and must parse. */
static struct conf_section *section_new(const struct conf_section_type *t, const char *name)
{
	struct conf_section *s = xcalloc(1, t->size);
	char why[256];

	s->type = t;
	s->name = name ? xstrdup(name) : NULL;
	s->key_line = xcalloc(t->n_keys ? t->n_keys : 1, sizeof(*s->key_line));
	for (size_t i = 0; i < t->n_keys; i++) {
		const struct conf_key *k = &t->keys[i];
		if (k->def && conf_set(s, k, k->def, why, sizeof(why)) < 0) {
			fprintf(stderr, "internal error: default of [%s] %s: \"%s\" is not %s\n",
				t->name, k->name, k->def, why);
			abort();
		}
	}
	return s;
}

static void list_append(struct conf_list *l, struct conf_section *s)
{
	l->items = xrealloc(l->items, (l->n + 1) * sizeof(*l->items));
	l->items[l->n++] = s;
}

struct conf *conf_new(const struct conf_section_type *const *types, size_t n_types)
{
	struct conf *conf = xcalloc(1, sizeof(*conf));

	conf->types = types;
	conf->n_types = n_types;
	conf->lists = xcalloc(n_types, sizeof(*conf->lists));
	/* The first type is the global section: it always exists. */
	if (n_types && !types[0]->named)
		list_append(&conf->lists[0], section_new(types[0], NULL));
	return conf;
}

void conf_free(struct conf *conf)
{
	if (!conf)
		return;
	for (size_t i = 0; i < conf->n_types; i++) {
		for (size_t j = 0; j < conf->lists[i].n; j++)
			section_free(conf->lists[i].items[j]);
		free(conf->lists[i].items);
	}
	free(conf->lists);
	free(conf->path);
	free(conf);
}

const struct conf_list *conf_sections(const struct conf *conf, const char *type)
{
	static const struct conf_list empty;
	int ti = type_index(conf, type);

	return ti < 0 ? &empty : &conf->lists[ti];
}

struct conf_section *conf_find(const struct conf *conf, const char *type, const char *name)
{
	const struct conf_list *l = conf_sections(conf, type);

	for (size_t i = 0; i < l->n; i++) {
		const char *n = l->items[i]->name;
		if ((!name && !n) || (name && n && streq(name, n)))
			return l->items[i];
	}
	return NULL;
}

struct conf_section *conf_get_unnamed(struct conf *conf, const char *type)
{
	int ti = type_index(conf, type);
	struct conf_section *s;

	if (ti < 0 || conf->types[ti]->named)
		return NULL;
	s = conf_find(conf, type, NULL);
	if (!s) {
		s = section_new(conf->types[ti], NULL);
		list_append(&conf->lists[ti], s);
	}
	return s;
}

/* ---------------------------------------------------------------- file */

struct load_ctx {
	struct conf *conf;
	struct conf_errors *errs;
	const char *file;
	int line;	      /* lines handed to inih so far = the current line */
	int last_error_line;  /* the last line we reported */
	int long_line;	      /* first line that was too long, 0 = none */
	bool after_key;		  /* the last line was a key: indented lines continue it */
	struct conf_section *cur; /* section of the keys that follow */
	bool cur_bad;		  /* the current section header was refused */
	/* input: a FILE or a string */
	FILE *f;
	const char *str;
};

static unsigned edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	unsigned row[64];

	if (la >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		unsigned prev = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned cur = row[j];
			unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
			row[j] = MIN(MIN(row[j] + 1, row[j - 1] + 1), prev + cost);
			prev = cur;
		}
	}
	return row[lb];
}

void conf_suggest_init(struct conf_suggest *s, const char *word)
{
	*s = (struct conf_suggest){.word = word, .best = NULL, .best_d = 3};
}

void conf_suggest_add(struct conf_suggest *s, const char *name)
{
	unsigned d = edit_distance(s->word, name);

	if (d < s->best_d) {
		s->best_d = d;
		s->best = name;
	}
}

/* " (did you mean 'weight'?)" for a key that is close to a real one. */
static void suggest_key(const struct conf_section_type *t, const char *key, char *buf, size_t len)
{
	struct conf_suggest sg;

	buf[0] = '\0';
	conf_suggest_init(&sg, key);
	for (size_t i = 0; i < t->n_keys; i++)
		conf_suggest_add(&sg, t->keys[i].name);
	if (sg.best)
		snprintf(buf, len, " (did you mean '%s'?)", sg.best);
}

/* An error at the line being read, about key of section s (both may be NULL). */
static void load_error_at(struct load_ctx *c, const struct conf_section *s, const char *key,
	const char *expected, const char *seen, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));
static void load_error_at(struct load_ctx *c, const struct conf_section *s, const char *key,
	const char *expected, const char *seen, const char *fmt, ...)
{
	char msg[1024], name[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s)
		section_name(s, name, sizeof(name));
	struct conf_error_at at = {.file = c->file, .line = c->line, .section = s ? name : NULL,
		.key = key, .expected = expected, .seen = seen};
	conf_errors_add_at(c->errs, &at, "%s:%d: %s", c->file, c->line, msg);
	c->last_error_line = c->line;
}

#define load_error(c, ...) load_error_at((c), NULL, NULL, NULL, NULL, __VA_ARGS__)

static bool name_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i]))
			return false;
	return true;
}

/* A new "[type name]" header: find or create the section it names. */
static void begin_section(struct load_ctx *c, const char *header)
{
	char type[64] = "", name[64] = "", extra[8] = "";
	int n, ti;

	c->cur = NULL;
	c->cur_bad = true;
	n = sscanf(header, "%63s %63s %7s", type, name, extra);
	if (n < 1) {
		load_error(c, "empty section header []");
		return;
	}
	ti = type_index(c->conf, type);
	if (ti < 0) {
		char known[256] = "";
		size_t off = 0;
		for (size_t i = 0; i < c->conf->n_types && off < sizeof(known); i++)
			off += (size_t)snprintf(known + off, sizeof(known) - off, "%s[%s%s]",
				i ? ", " : "", c->conf->types[i]->name,
				c->conf->types[i]->named ? " NAME" : "");
		load_error(c, "unknown section [%s]: expected one of %s", header, known);
		return;
	}
	const struct conf_section_type *t = c->conf->types[ti];
	if (t->named && n != 2) {
		load_error(c, "section [%s] needs exactly one name, as in [%s NAME]", header,
			t->name);
		return;
	}
	if (!t->named && n != 1) {
		load_error(c, "section [%s] takes no name, as in [%s]", header, t->name);
		return;
	}
	if (t->named && !name_valid(name)) {
		load_error(c, "[%s] name: expected 1 to 32 letters, digits, '-', '_' or '.', got "
			      "\"%s\"",
			t->name, name);
		return;
	}
	struct conf_section *s = conf_find(c->conf, t->name, t->named ? name : NULL);
	if (s && s->file) {
		load_error(c, "section [%s] is defined twice (first at %s:%d)", header, s->file,
			s->line);
		return;
	}
	if (!s) {
		s = section_new(t, t->named ? name : NULL);
		list_append(&c->conf->lists[ti], s);
	}
	s->file = xstrdup(c->file);
	s->line = c->line;
	c->cur = s;
	c->cur_bad = false;
}

static int load_handler_cb(void *user, const char *section, const char *key, const char *value)
{
	struct load_ctx *c = user;
	char why[512], hint[64];

	(void)section; /* tracked by load_reader_cb, which also sees empty sections */
	if (c->line == c->long_line)
		return 1; /* already reported */
	if (!c->cur && !c->cur_bad) {
		/* keys before any header belong to the global section */
		c->cur = conf_get_unnamed(c->conf, c->conf->types[0]->name);
		c->cur_bad = !c->cur;
		if (c->cur && !c->cur->file) {
			c->cur->file = xstrdup(c->file);
			c->cur->line = c->line;
		}
	}
	if (c->cur_bad)
		return 1; /* the header was reported; skip its keys quietly */
	struct conf_section *s = c->cur;
	const struct conf_key *k = conf_key_find(s->type, key);
	char label[128];
	section_label(s, label, sizeof(label));
	if (!k) {
		suggest_key(s->type, key, hint, sizeof(hint));
		load_error_at(c, s, key, NULL, NULL, "%s: unknown key '%s'%s", label, key, hint);
		return 0;
	}
	int ki = conf_key_index(s->type, k);
	if (s->key_line[ki] > 0 && !conf_type_is_list(k->type)) {
		load_error_at(c, s, key, NULL, NULL, "%s %s: set twice (first at line %d)", label,
			key, s->key_line[ki]);
		return 0;
	}
	/* A list key given in the file replaces its default rather than adding to it. */
	if (conf_type_is_list(k->type) && s->key_line[ki] == 0)
		conf_value_clear(s, k);
	if (conf_set(s, k, value, why, sizeof(why)) < 0) {
		load_error_at(c, s, key, why, value, "%s %s: expected %s, got \"%s\"", label, key,
			why, value);
		return 0;
	}
	s->key_line[ki] = c->line;
	return 1;
}

/*
 * Every line is classified here the way inih will read it, so that syntax
 * errors are reported for every bad line (inih only returns the first) and
 * a section without keys ("[route]" to enable a module with its defaults)
 * exists too.  A bad line is blanked so inih skips it.
 */
static void reader_line(struct load_ctx *c, char *line)
{
	const char *p = line + strspn(line, " \t\r\n");
	const char *end;
	char header[256];

	if (!*p || strchr(";#", *p))
		return; /* blank or comment */
	if (p > line && c->after_key)
		return; /* continuation of the previous key's value */
	if (*p == '[') {
		c->after_key = false;
		end = strchr(p, ']');
		if (!end) {
			load_error(c, "section header without ']'");
			c->cur = NULL;
			c->cur_bad = true;
			goto blank;
		}
		snprintf(header, sizeof(header), "%.*s", (int)(end - p - 1), p + 1);
		begin_section(c, header);
		return;
	}
	if (!strpbrk(p, "=:")) {
		load_error(c, "syntax error: expected '[section]', 'key = value' or a comment");
		goto blank;
	}
	c->after_key = true;
	return;
blank:
	line[0] = '\n';
	line[1] = '\0';
}

/*
 * inih reads through this so we know the line number (Debian's inih is built
 * without INI_HANDLER_LINENO) and can refuse lines longer than inih's buffer,
 * which it would otherwise split silently into two lines.
 */
static char *load_reader_cb(char *buf, int num, void *stream)
{
	struct load_ctx *c = stream;
	size_t n = 0;

	if (c->f) {
		if (!fgets(buf, num, c->f))
			return NULL;
		n = strlen(buf);
		c->line++;
		if (n == (size_t)num - 1 && buf[n - 1] != '\n') {
			int ch;
			while ((ch = fgetc(c->f)) != EOF && ch != '\n')
				;
			goto too_long;
		}
		reader_line(c, buf);
		return buf;
	}
	if (!*c->str)
		return NULL;
	const char *eol = strchr(c->str, '\n');
	size_t len = eol ? (size_t)(eol - c->str) + 1 : strlen(c->str);
	c->line++;
	if (len > (size_t)num - 1) {
		c->str += len;
		goto too_long;
	}
	memcpy(buf, c->str, len);
	buf[len] = '\0';
	c->str += len;
	reader_line(c, buf);
	return buf;
too_long:
	if (!c->long_line)
		c->long_line = c->line;
	conf_errors_add_at(c->errs, &(struct conf_error_at){.file = c->file, .line = c->line},
		"%s:%d: line longer than %d characters (split a list over several lines of the "
		"same key)",
		c->file, c->line, num - 2);
	c->last_error_line = c->line;
	buf[0] = '\n';
	buf[1] = '\0';
	return buf;
}

static int load(struct load_ctx *c)
{
	size_t errs_before = c->errs->n;
	int r = ini_parse_stream(load_reader_cb, c, load_handler_cb, c);

	/* inih returns the first line that it or a handler refused; ours are reported. */
	if (r > 0 && c->errs->n == errs_before)
		conf_errors_add_at(c->errs, &(struct conf_error_at){.file = c->file, .line = r},
			"%s:%d: syntax error", c->file, r);
	if (r < 0)
		conf_errors_add(c->errs, "%s: cannot read", c->file);
	return c->errs->n > errs_before ? -EINVAL : 0;
}

int conf_load_file(struct conf *conf, const char *path, struct conf_errors *errs)
{
	struct load_ctx c = {.conf = conf, .errs = errs, .file = path};
	int r;

	c.f = fopen(path, "re");
	if (!c.f) {
		r = -errno;
		conf_errors_add(errs, "%s: %s", path, strerror(errno));
		return r;
	}
	free(conf->path);
	conf->path = xstrdup(path);
	r = load(&c);
	if (ferror(c.f)) {
		conf_errors_add(errs, "%s: read error", path);
		r = -EIO;
	}
	fclose(c.f);
	return r;
}

int conf_load_string(struct conf *conf, const char *name, const char *text,
	struct conf_errors *errs)
{
	struct load_ctx c = {.conf = conf, .errs = errs, .file = name, .str = text};

	return load(&c);
}

/* ---------------------------------------------------------------- validate, print */

static void validate_section(struct conf *conf, struct conf_section *s, struct conf_errors *errs)
{
	const struct conf_section_type *t = s->type;

	for (size_t ki = 0; ki < t->n_keys; ki++) {
		const struct conf_key *k = &t->keys[ki];
		if ((k->flags & CONF_REQUIRED) && !conf_value_count(s, k))
			conf_section_error(errs, s, NULL, "missing required key '%s'", k->name);
	}
	if (t->validate)
		t->validate(conf, s, errs);
}

int conf_validate(struct conf *conf, struct conf_errors *errs)
{
	size_t before = errs->n;

	for (size_t i = 0; i < conf->n_types; i++)
		for (size_t j = 0; j < conf->lists[i].n; j++)
			validate_section(conf, conf->lists[i].items[j], errs);
	if (errs->n > before)
		return -EINVAL;
	/* Expand; the lists grow while we walk them, so walk by index over what was there. */
	for (size_t i = 0; i < conf->n_types; i++) {
		size_t n = conf->lists[i].n;
		for (size_t j = 0; j < n; j++) {
			struct conf_section *s = conf->lists[i].items[j];
			if (!s->origin && conf->types[i]->expand)
				conf->types[i]->expand(conf, s, errs);
		}
	}
	for (size_t i = 0; i < conf->n_types; i++)
		for (size_t j = 0; j < conf->lists[i].n; j++)
			if (conf->lists[i].items[j]->origin)
				validate_section(conf, conf->lists[i].items[j], errs);
	if (errs->n > before)
		return -EINVAL;
	for (size_t i = 0; i < conf->n_types; i++)
		for (size_t j = 0; j < conf->lists[i].n; j++)
			if (conf->types[i]->validate_expanded)
				conf->types[i]->validate_expanded(conf, conf->lists[i].items[j], errs);
	return errs->n > before ? -EINVAL : 0;
}

struct conf_section *conf_add_generated(struct conf *conf, const char *type, const char *name,
	const struct conf_section *origin, struct conf_errors *errs)
{
	int ti = type_index(conf, type);
	struct conf_section *s;

	if (ti < 0)
		abort();
	s = conf_find(conf, type, name);
	if (s) {
		char label[128];
		section_label(origin, label, sizeof(label));
		conf_section_error(errs, origin, NULL, "implies [%s %s], which is defined %s%s", type,
			name ? name : "", s->origin ? "by " : "already", s->origin ? label : "");
		return NULL;
	}
	s = section_new(conf->types[ti], name);
	s->origin = origin;
	if (origin->file)
		s->file = xstrdup(origin->file);
	s->line = origin->line;
	list_append(&conf->lists[ti], s);
	return s;
}

void conf_set_key(struct conf_section *s, const char *key, const char *value)
{
	const struct conf_key *k = conf_key_find(s->type, key);
	char why[256];

	if (!k || conf_set(s, k, value, why, sizeof(why)) < 0) {
		fprintf(stderr, "internal error: [%s] %s = \"%s\": %s\n", s->type->name, key, value,
			k ? why : "no such key");
		abort();
	}
	s->key_line[conf_key_index(s->type, k)] = s->line ? s->line : -1;
}

void conf_keep_secrets(struct conf *conf, const struct conf *from, struct conf_errors *errs)
{
	for (size_t i = 0; i < conf->n_types; i++) {
		const struct conf_section_type *t = conf->types[i];
		for (size_t j = 0; j < conf->lists[i].n; j++) {
			struct conf_section *s = conf->lists[i].items[j];
			const struct conf_section *fs = NULL;
			for (size_t ki = 0; ki < t->n_keys; ki++) {
				const struct conf_key *k = &t->keys[ki];
				char **v = (char **)((char *)s + k->offset);
				if (!(k->flags & CONF_SECRET) || k->type != CONF_STRING || !*v)
					continue;
				bool whole = streq(*v, CONF_SECRET_MASK);
				if (!whole && !(k->unmask && strstr(*v, CONF_SECRET_MASK)))
					continue;
				if (!fs && from)
					fs = conf_find(from, t->name, s->name);
				char *const *fv = fs ? (char *const *)((const char *)fs + k->offset)
						     : NULL;
				if (!whole) {
					const char *why = "cannot be read";
					char *made = k->unmask(*v, fv ? *fv : NULL, &why);
					if (!made) {
						conf_section_error(errs, s, k->name, "%s", why);
						continue;
					}
					free(*v);
					*v = made;
					continue;
				}
				if (!fv || !*fv) {
					conf_section_error(errs, s, k->name,
						"expected the secret itself: %s stands for the running "
						"value, and there is none",
						CONF_SECRET_MASK);
					continue;
				}
				free(*v);
				*v = xstrdup(*fv);
			}
		}
	}
}

void conf_secret_shown(const struct conf_key *k, const char *value, char *buf, size_t len)
{
	char *m = k->mask ? k->mask(value) : NULL;

	snprintf(buf, len, "%s", m ? m : CONF_SECRET_MASK);
	free(m);
}

/* Values that inih would not read back as written need a different spelling. */
static bool printable_value(const char *v)
{
	size_t n = strlen(v);

	if (n && (isspace((unsigned char)v[0]) || isspace((unsigned char)v[n - 1])))
		return false;
	for (const char *p = v; *p; p++)
		if (*p == '\n' || (*p == ';' && p > v && isspace((unsigned char)p[-1])))
			return false;
	return true;
}

void conf_print(const struct conf *conf, FILE *f)
{
	char buf[512];
	bool first = true;

	for (size_t i = 0; i < conf->n_types; i++) {
		const struct conf_section_type *t = conf->types[i];
		for (size_t j = 0; j < conf->lists[i].n; j++) {
			const struct conf_section *s = conf->lists[i].items[j];
			if (s->origin) {
				/* implied by another section, which is printed */
				char label[128];
				section_label(s->origin, label, sizeof(label));
				fprintf(f, "; [%s%s%s] is implied by %s\n", t->name, s->name ? " " : "",
					s->name ? s->name : "", label);
				continue;
			}
			if (!first)
				fputc('\n', f);
			first = false;
			if (s->name)
				fprintf(f, "[%s %s]\n", t->name, s->name);
			else
				fprintf(f, "[%s]\n", t->name);
			for (size_t ki = 0; ki < t->n_keys; ki++) {
				const struct conf_key *k = &t->keys[ki];
				size_t n = conf_value_count(s, k);
				if (k->relevant && !k->relevant(s))
					continue;
				for (size_t vi = 0; vi < n; vi++) {
					conf_format(s, k, vi, buf, sizeof(buf));
					if (k->flags & CONF_SECRET) {
						char shown[sizeof(buf)];
						conf_secret_shown(k, buf, shown, sizeof(shown));
						snprintf(buf, sizeof(buf), "%s", shown);
					}
					if (printable_value(buf))
						fprintf(f, "%s = %s\n", k->name, buf);
					else
						fprintf(f, "; %s cannot be printed back\n", k->name);
				}
			}
		}
	}
}
