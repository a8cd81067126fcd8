/*
 * al_entry.c - allowlist entries and items: parsing (API JSON bodies, import lines, items on
 * the wire), normalising and printing them back.
 *
 * Pure code shared by egress-server and egressd: no I/O, no logging, no global state.  Every
 * parser takes outside input, refuses what it does not understand with the field and what was
 * expected, and leaves nothing allocated that the caller's _clear() would not free.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "al_entry.h"
#include "util.h"

const char *const al_kind_name[_AL_KIND_MAX] = {
	[AL_IP] = "ip",
	[AL_CIDR] = "cidr",
	[AL_DOMAIN] = "domain",
	[AL_WILDCARD] = "wildcard",
};

const char *const al_proto_name[_AL_PROTO_MAX] = {
	[AL_PROTO_ANY] = "any",
	[AL_PROTO_TCP] = "tcp",
	[AL_PROTO_UDP] = "udp",
};

#define NAME_MAX_LEN  253 /* RFC 1035 s2.3.4, without the trailing dot */
#define LABEL_MAX_LEN 63

/* Longest text of a port list: AL_PORTS_MAX ranges of "65535-65535,". */
#define PORTS_STRLEN (AL_PORTS_MAX * 12)

/* --- errors --- */

int al_error_set(struct al_error *err, const char *field, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return -EINVAL;
	snprintf(err->field, sizeof(err->field), "%s", field);
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* "ports[3]" into buf. */
static const char *field_at(char *buf, size_t len, const char *field, size_t i)
{
	snprintf(buf, len, "%s[%zu]", field, i);
	return buf;
}

/* Text of outside input for an error message: at most 64 bytes, printable ASCII only. */
static const char *shown(const char *s, size_t n, char *buf, size_t len)
{
	size_t o = 0;

	for (size_t i = 0; i < n && i < 64 && o + 5 < len; i++) {
		unsigned char c = (unsigned char)s[i];
		o += (size_t)snprintf(
			buf + o, len - o, c >= 0x20 && c < 0x7f && c != '"' ? "%c" : "\\x%02x", c);
	}
	if (n > 64 && o + 4 < len)
		o += (size_t)snprintf(buf + o, len - o, "...");
	buf[o < len ? o : len - 1] = '\0';
	return buf;
}

/* --- entries: life cycle --- */

void al_entry_init(struct al_entry *e)
{
	memset(e, 0, sizeof(*e));
}

void al_entry_clear(struct al_entry *e)
{
	free(e->ports.v);
	free(e->sources.v);
	free(e->comment);
	free(e->created_by);
	al_entry_init(e);
}

static int dup_array(void **dst, const void *src, size_t n, size_t size)
{
	*dst = NULL;
	if (!n)
		return 0;
	*dst = malloc(n * size);
	if (!*dst)
		return -ENOMEM;
	memcpy(*dst, src, n * size);
	return 0;
}

static int dup_str(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

static int copy_limits(const struct range_list *ports, const struct cidr_list *sources,
	struct range_list *ret_ports, struct cidr_list *ret_sources)
{
	int r;

	r = dup_array((void **)&ret_ports->v, ports->v, ports->n, sizeof(*ports->v));
	if (r < 0)
		return r;
	ret_ports->n = ports->n;
	r = dup_array((void **)&ret_sources->v, sources->v, sources->n, sizeof(*sources->v));
	if (r < 0)
		return r;
	ret_sources->n = sources->n;
	return 0;
}

int al_entry_copy(const struct al_entry *e, struct al_entry *ret)
{
	int r;

	*ret = *e;
	ret->ports = (struct range_list){ 0 };
	ret->sources = (struct cidr_list){ 0 };
	ret->comment = ret->created_by = NULL;
	r = copy_limits(&e->ports, &e->sources, &ret->ports, &ret->sources);
	if (r == 0)
		r = dup_str(&ret->comment, e->comment);
	if (r == 0)
		r = dup_str(&ret->created_by, e->created_by);
	if (r < 0)
		al_entry_clear(ret);
	return r;
}

/* --- values --- */

bool al_dst_refused(const struct cidr *c, const char **why)
{
	const char *w = cidr_reserved(c);

	if (!w && c->addr.family != AF_INET && c->addr.family != AF_INET6)
		w = "is not an IPv4 or IPv6 prefix";
	if (why)
		*why = w;
	return w != NULL;
}

static bool label_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

/*
 * Check a domain name already in lower case without a trailing dot: labels of 1-63 letters,
 * digits, '-' (not first or last) and '_', 253 bytes at most, at least two labels, the last
 * one not all digits (that would be a mistyped address).  NULL or what is wrong.
 */
static const char *name_invalid(const char *s)
{
	size_t n = strlen(s), labels = 0;
	const char *label = s, *last = s;

	if (n == 0)
		return "is empty";
	if (n > NAME_MAX_LEN)
		return "is longer than 253 bytes";
	for (const char *p = s;; p++) {
		if (*p == '.' || *p == '\0') {
			size_t len = (size_t)(p - label);
			if (len == 0)
				return "has an empty label";
			if (len > LABEL_MAX_LEN)
				return "has a label longer than 63 bytes";
			if (label[0] == '-' || p[-1] == '-')
				return "has a label that begins or ends with '-'";
			labels++;
			last = label;
			if (*p == '\0')
				break;
			label = p + 1;
		} else if (!label_char(*p)) {
			return "may hold only letters, digits, '-', '_' and dots";
		}
	}
	if (labels < 2)
		return "needs at least two labels";
	if (strspn(last, "0123456789") == strlen(last))
		return "ends in a numeric label";
	/* RFC 6761 s6.3, s6.4; RFC 6762: never resolved on the internet */
	if (streq(last, "localhost") || streq(last, "invalid") || streq(last, "local"))
		return "is a special-use name (RFC 6761)";
	return NULL;
}

/*
 * Parse a value into kind, value (normalised) and dst.  Reserved destinations are refused
 * when refuse_reserved.
 */
static int value_parse(
	const char *s, size_t n, struct al_entry *e, bool refuse_reserved, struct al_error *err)
{
	const char *expected = "an IPv4 or IPv6 address, a prefix such as 198.51.100.0/24, "
			       "a domain name or *.domain";
	char buf[AL_VALUE_MAX + 1], show[300];
	const char *why, *name;
	size_t given = n;
	struct addr a;
	int r;

	if (n == 0)
		return al_error_set(err, "value", "is empty; expected %s", expected);
	if (n > AL_VALUE_MAX || memchr(s, '\0', n))
		return al_error_set(err, "value", "expected %s, at most %d bytes; got \"%s\"",
			expected, AL_VALUE_MAX - 1, shown(s, n, show, sizeof(show)));
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (strchr(buf, '/')) {
		r = cidr_parse(buf, 0, &e->dst);
		if (r < 0)
			return al_error_set(err, "value",
				"\"%s\": %s; expected a prefix such as "
				"198.51.100.0/24 or 2001:db8::/32",
				shown(s, n, show, sizeof(show)), cidr_strerror(r));
		e->kind = e->dst.plen == addr_len(e->dst.addr.family) * 8 ? AL_IP : AL_CIDR;
	} else if (addr_parse(buf, &a) == 0) {
		cidr_from_addr(&a, &e->dst);
		e->kind = AL_IP;
	} else {
		for (char *p = buf; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (n > 1 && buf[n - 1] == '.')
			buf[--n] = '\0';
		e->kind = strncmp(buf, "*.", 2) == 0 ? AL_WILDCARD : AL_DOMAIN;
		name = e->kind == AL_WILDCARD ? buf + 2 : buf;
		why = name_invalid(name);
		if (why)
			return al_error_set(err, "value", "\"%s\" %s; expected %s",
				shown(s, given, show, sizeof(show)), why, expected);
		/* name_invalid() allows 253 bytes: with "*." it fits */
		memcpy(e->value, buf, n + 1);
		return 0;
	}
	if (e->kind == AL_IP)
		addr_str(&e->dst.addr, e->value, sizeof(e->value));
	else
		cidr_str(&e->dst, e->value, sizeof(e->value));
	if (refuse_reserved && al_dst_refused(&e->dst, &why))
		return al_error_set(err, "value", "%s %s: only public destinations can be allowed",
			e->value, why);
	return 0;
}

static int proto_parse(const char *s, enum al_proto *ret, struct al_error *err)
{
	char show[300];

	for (int i = 0; i < _AL_PROTO_MAX; i++) {
		if (streq(s, al_proto_name[i])) {
			*ret = (enum al_proto)i;
			return 0;
		}
	}
	return al_error_set(err, "proto", "expected \"any\", \"tcp\" or \"udp\"; got \"%s\"",
		shown(s, strlen(s), show, sizeof(show)));
}

static int range_cmp(const void *a, const void *b)
{
	const struct range *x = a, *y = b;

	return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : x->hi < y->hi ? -1 : x->hi > y->hi;
}

/* Sort and merge overlapping or adjacent ranges. */
static void ports_normalise(struct range_list *l)
{
	size_t o = 0;

	if (l->n < 2)
		return;
	qsort(l->v, l->n, sizeof(*l->v), range_cmp);
	for (size_t i = 1; i < l->n; i++) {
		if (l->v[i].lo <= l->v[o].hi + 1) {
			if (l->v[i].hi > l->v[o].hi)
				l->v[o].hi = l->v[i].hi;
		} else {
			l->v[++o] = l->v[i];
		}
	}
	l->n = o + 1;
}

static int port_number(const char *s, size_t n, uint32_t *ret)
{
	uint32_t v = 0;

	if (n == 0 || n > 5 || s[0] == '0')
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint32_t)(s[i] - '0');
	}
	if (v > 65535)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int ports_add(struct range_list *l, struct range rg, struct al_error *err, size_t i)
{
	char f[32];
	struct range *v;

	if (l->n >= AL_PORTS_MAX)
		return al_error_set(err, field_at(f, sizeof(f), "ports", i),
			"too many port ranges; at most %d", AL_PORTS_MAX);
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	l->v[l->n++] = rg;
	return 0;
}

/* One "80" or "8000-8100" of a list, index i. */
static int port_token(struct range_list *l, const char *s, size_t n, struct al_error *err, size_t i)
{
	const char *dash = memchr(s, '-', n);
	char f[32], show[300];
	struct range rg;

	if (port_number(s, dash ? (size_t)(dash - s) : n, &rg.lo) < 0 ||
		(dash ? port_number(dash + 1, n - (size_t)(dash + 1 - s), &rg.hi)
		      : (rg.hi = rg.lo, 0)) < 0 ||
		rg.lo > rg.hi)
		return al_error_set(err, field_at(f, sizeof(f), "ports", i),
			"expected a port from 1 to 65535 or a range such as 8000-8100; got \"%s\"",
			shown(s, n, show, sizeof(show)));
	return ports_add(l, rg, err, i);
}

#define PORT_SEPARATORS ", \t"

/* "80,443,8000-8100" (commas and/or blanks); empty: every port. */
static int ports_parse_text(struct range_list *l, const char *s, struct al_error *err)
{
	size_t i = 0, n;
	int r;

	for (;;) {
		s += strspn(s, PORT_SEPARATORS);
		if (!*s)
			break;
		n = strcspn(s, PORT_SEPARATORS);
		r = port_token(l, s, n, err, i++);
		if (r < 0)
			return r;
		s += n;
	}
	ports_normalise(l);
	return 0;
}

static int ports_parse_json(struct range_list *l, const json_t *v, struct al_error *err)
{
	const char *expected = "a list of ports and ranges, as text (\"80,443,8000-8100\") or "
			       "an array ([80, 443, \"8000-8100\"])";
	char f[32];
	size_t i;
	json_t *x;
	int r;

	if (json_is_string(v))
		return ports_parse_text(l, json_string_value(v), err);
	if (!json_is_array(v))
		return al_error_set(err, "ports", "expected %s", expected);
	json_array_foreach(v, i, x)
	{
		if (json_is_integer(x)) {
			json_int_t p = json_integer_value(x);
			if (p < 1 || p > 65535)
				return al_error_set(err, field_at(f, sizeof(f), "ports", i),
					"expected a port from 1 to 65535; got "
					"%" JSON_INTEGER_FORMAT,
					p);
			r = ports_add(l, (struct range){ (uint32_t)p, (uint32_t)p }, err, i);
		} else if (json_is_string(x)) {
			r = port_token(l, json_string_value(x), json_string_length(x), err, i);
		} else {
			return al_error_set(err, field_at(f, sizeof(f), "ports", i),
				"expected a port number or a range such as \"8000-8100\"");
		}
		if (r < 0)
			return r;
	}
	ports_normalise(l);
	return 0;
}

static int ports_format(const struct range_list *l, char *buf, size_t len)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < l->n && o < len; i++) {
		const struct range *rg = &l->v[i];
		if (rg->lo == rg->hi)
			o += (size_t)snprintf(buf + o, len - o, "%s%" PRIu32, i ? "," : "", rg->lo);
		else
			o += (size_t)snprintf(buf + o, len - o, "%s%" PRIu32 "-%" PRIu32,
				i ? "," : "", rg->lo, rg->hi);
	}
	return o < len ? 0 : -ENOSPC;
}

static int cidr_qsort_cmp(const void *a, const void *b)
{
	return cidr_cmp(a, b);
}

/* Sort and drop repeats. */
static void sources_normalise(struct cidr_list *l)
{
	size_t o = 0;

	if (l->n < 2)
		return;
	qsort(l->v, l->n, sizeof(*l->v), cidr_qsort_cmp);
	for (size_t i = 1; i < l->n; i++)
		if (cidr_cmp(&l->v[i], &l->v[o]) != 0)
			l->v[++o] = l->v[i];
	l->n = o + 1;
}

static int source_token(
	struct cidr_list *l, const char *s, size_t n, struct al_error *err, size_t i)
{
	char f[32], show[300], buf[CIDR_STRLEN];
	struct cidr *v;
	int r = -EINVAL;

	if (l->n >= AL_SOURCES_MAX)
		return al_error_set(err, field_at(f, sizeof(f), "sources", i),
			"too many source subnets; at most %d", AL_SOURCES_MAX);
	v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	l->v = v;
	if (n < sizeof(buf) && !memchr(s, '\0', n)) {
		memcpy(buf, s, n);
		buf[n] = '\0';
		r = cidr_parse(buf, CIDR_BARE, &l->v[l->n]);
	}
	if (r < 0)
		return al_error_set(err, field_at(f, sizeof(f), "sources", i),
			"expected a client subnet such as 10.1.0.0/16 or 2001:db8:1::/48%s%s; "
			"got \"%s\"",
			r == -EINVAL ? "" : ": ", r == -EINVAL ? "" : cidr_strerror(r),
			shown(s, n, show, sizeof(show)));
	l->n++;
	return 0;
}

#define SOURCE_SEPARATORS ", \t"

static int sources_parse_text(struct cidr_list *l, const char *s, struct al_error *err)
{
	size_t i = 0, n;
	int r;

	for (;;) {
		s += strspn(s, SOURCE_SEPARATORS);
		if (!*s)
			break;
		n = strcspn(s, SOURCE_SEPARATORS);
		r = source_token(l, s, n, err, i++);
		if (r < 0)
			return r;
		s += n;
	}
	sources_normalise(l);
	return 0;
}

static int sources_parse_json(struct cidr_list *l, const json_t *v, struct al_error *err)
{
	char f[32];
	size_t i;
	json_t *x;
	int r;

	if (json_is_string(v))
		return sources_parse_text(l, json_string_value(v), err);
	if (!json_is_array(v))
		return al_error_set(err, "sources",
			"expected an array of client subnets such as "
			"[\"10.1.0.0/16\"]");
	json_array_foreach(v, i, x)
	{
		if (!json_is_string(x))
			return al_error_set(err, field_at(f, sizeof(f), "sources", i),
				"expected a client subnet as a string such as \"10.1.0.0/16\"");
		r = source_token(l, json_string_value(x), json_string_length(x), err, i);
		if (r < 0)
			return r;
	}
	sources_normalise(l);
	return 0;
}

static json_t *sources_json(const struct cidr_list *l)
{
	json_t *a = json_array();
	char buf[CIDR_STRLEN];

	for (size_t i = 0; a && i < l->n; i++) {
		if (json_array_append_new(a, json_string(cidr_str(&l->v[i], buf, sizeof(buf)))) <
			0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/*
 * A comment: trimmed of blanks at both ends, valid UTF-8 without control characters, at
 * most AL_COMMENT_MAX bytes; empty means none.  *ret malloc'd or NULL.
 */
static int comment_parse(const char *s, size_t n, char **ret, struct al_error *err)
{
	json_t *utf8;

	*ret = NULL;
	while (n && (*s == ' ' || *s == '\t'))
		s++, n--;
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n > AL_COMMENT_MAX)
		return al_error_set(
			err, "comment", "is %zu bytes long; at most %d", n, AL_COMMENT_MAX);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return al_error_set(err, "comment",
				"has a control character at byte %zu; expected "
				"text on one line",
				i);
	}
	utf8 = json_stringn(s, n); /* NULL for invalid UTF-8 */
	if (!utf8)
		return al_error_set(err, "comment", "is not valid UTF-8");
	json_decref(utf8);
	if (n == 0)
		return 0;
	*ret = strndup(s, n);
	return *ret ? 0 : -ENOMEM;
}

/* --- entries: JSON --- */

/* jansson's iterators take a json_t * but only read: iterate over a borrowed const object. */
static json_t *unconst(const json_t *o)
{
	return (json_t *)(uintptr_t)o;
}

/* Members the store fills in: accepted on input (an export imports again), not taken. */
static const char *const store_members[] = { "id", "created", "created_by" };

static int store_member_check(const char *key, const json_t *v, struct al_error *err)
{
	if (streq(key, "created_by")) {
		if (!json_is_string(v) && !json_is_null(v))
			return al_error_set(err, key, "expected a string or null");
	} else if (!json_is_integer(v) || json_integer_value(v) < 0) {
		return al_error_set(err, key, "expected a non-negative integer");
	}
	return 0;
}

static bool is_store_member(const char *key)
{
	for (size_t i = 0; i < ARRAY_SIZE(store_members); i++)
		if (streq(key, store_members[i]))
			return true;
	return false;
}

int al_entry_from_json(const json_t *o, struct al_entry *ret, struct al_error *err)
{
	const char *key, *kind = NULL;
	json_t *v;
	int r;

	al_entry_init(ret);
	if (!json_is_object(o))
		return al_error_set(
			err, "", "expected a JSON object such as {\"value\": \"example.com\"}");
	v = json_object_get(o, "value");
	if (!v)
		return al_error_set(err, "value",
			"is required: an address, a prefix, a domain or "
			"*.domain");
	if (!json_is_string(v))
		return al_error_set(err, "value", "expected a string");
	r = value_parse(json_string_value(v), json_string_length(v), ret, true, err);
	if (r < 0)
		return r;
	json_object_foreach(unconst(o), key, v)
	{
		if (streq(key, "value")) {
			continue;
		} else if (streq(key, "kind")) {
			if (!json_is_string(v))
				return al_error_set(err, key, "expected a string");
			kind = json_string_value(v);
		} else if (streq(key, "proto")) {
			if (!json_is_string(v))
				return al_error_set(
					err, key, "expected \"any\", \"tcp\" or \"udp\"");
			r = proto_parse(json_string_value(v), &ret->proto, err);
		} else if (streq(key, "ports")) {
			r = ports_parse_json(&ret->ports, v, err);
		} else if (streq(key, "sources")) {
			r = sources_parse_json(&ret->sources, v, err);
		} else if (streq(key, "comment")) {
			if (!json_is_string(v) && !json_is_null(v))
				return al_error_set(err, key, "expected a string or null");
			if (json_is_string(v))
				r = comment_parse(json_string_value(v), json_string_length(v),
					&ret->comment, err);
		} else if (streq(key, "non_deletable")) {
			if (!json_is_boolean(v))
				return al_error_set(err, key, "expected true or false");
			ret->non_deletable = json_is_true(v);
		} else if (is_store_member(key)) {
			r = store_member_check(key, v, err);
		} else {
			char show[300];
			return al_error_set(err, shown(key, strlen(key), show, sizeof(show)),
				"unknown member; expected value, proto, ports, sources, comment or "
				"non_deletable");
		}
		if (r < 0)
			return r;
	}
	if (kind && !streq(kind, al_kind_name[ret->kind]))
		return al_error_set(err, "kind", "is \"%s\" but the value is a%s %s", kind,
			ret->kind == AL_IP ? "n" : "", al_kind_name[ret->kind]);
	return 0;
}

json_t *al_entry_to_json(const struct al_entry *e)
{
	char ports[PORTS_STRLEN];
	json_t *o;

	if (ports_format(&e->ports, ports, sizeof(ports)) < 0)
		return NULL;
	o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:o, s:o, s:b, s:I, s:o}", "id", (json_int_t)e->id,
		"kind", al_kind_name[e->kind], "value", e->value, "proto", al_proto_name[e->proto],
		"ports", ports, "sources", sources_json(&e->sources), "comment",
		e->comment ? json_string(e->comment) : json_null(), "non_deletable",
		e->non_deletable, "created", (json_int_t)e->created, "created_by",
		e->created_by ? json_string(e->created_by) : json_null());
	return o;
}

/* --- entries: lines --- */

static bool line_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* One "key=value" or "non_deletable" option of a line. */
static int line_option(
	const char *tok, size_t n, struct al_entry *e, unsigned *seen, struct al_error *err)
{
	static const char *const names[] = { "proto", "ports", "sources", "non_deletable" };
	const char *eq = memchr(tok, '=', n);
	size_t klen = eq ? (size_t)(eq - tok) : n;
	char val[PORTS_STRLEN + 1], show[300];
	size_t vlen = eq ? n - klen - 1 : 0;
	size_t k;

	for (k = 0; k < ARRAY_SIZE(names); k++)
		if (strlen(names[k]) == klen && !strncmp(tok, names[k], klen))
			break;
	if (k == ARRAY_SIZE(names))
		return al_error_set(err, shown(tok, klen, show, sizeof(show)),
			"unknown option; expected proto=, ports=, sources=, non_deletable or "
			"# comment");
	if (*seen & (1u << k))
		return al_error_set(err, names[k], "is given twice");
	*seen |= 1u << k;
	if (k == 3) {
		if (eq)
			return al_error_set(
				err, names[k], "takes no value; write non_deletable alone");
		e->non_deletable = true;
		return 0;
	}
	if (!eq)
		return al_error_set(err, names[k], "needs a value, as in %s=%s", names[k],
			k == 0	 ? "tcp"
			: k == 1 ? "80,443"
				 : "10.1.0.0/16");
	if (vlen >= sizeof(val))
		return al_error_set(err, names[k], "is too long (%zu bytes)", vlen);
	memcpy(val, eq + 1, vlen);
	val[vlen] = '\0';
	if (k == 0)
		return proto_parse(val, &e->proto, err);
	if (k == 1)
		return ports_parse_text(&e->ports, val, err);
	return sources_parse_text(&e->sources, val, err);
}

int al_entry_from_line(const char *line, struct al_entry *ret, struct al_error *err)
{
	const char *hash = strchr(line, '#');
	const char *end = hash ? hash : line + strlen(line);
	const char *p = line;
	unsigned seen = 0;
	size_t n;
	int r;

	al_entry_init(ret);
	while (p < end && line_blank(*p))
		p++;
	if (p == end)
		return -ENODATA; /* blank, or only a comment */
	for (n = 0; p + n < end && !line_blank(p[n]); n++)
		;
	r = value_parse(p, n, ret, true, err);
	if (r < 0)
		return r;
	for (p += n;;) {
		while (p < end && line_blank(*p))
			p++;
		if (p == end)
			break;
		for (n = 0; p + n < end && !line_blank(p[n]); n++)
			;
		r = line_option(p, n, ret, &seen, err);
		if (r < 0)
			return r;
		p += n;
	}
	if (hash) {
		const char *c = hash + 1;
		size_t clen = strlen(c);
		while (clen && (c[clen - 1] == '\n' || c[clen - 1] == '\r'))
			clen--;
		r = comment_parse(c, clen, &ret->comment, err);
	}
	return r;
}

char *al_entry_to_line(const struct al_entry *e)
{
	char ports[PORTS_STRLEN], cbuf[CIDR_STRLEN];
	char *buf = NULL;
	size_t len = 0;
	FILE *f;

	if (ports_format(&e->ports, ports, sizeof(ports)) < 0)
		return NULL;
	f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fputs(e->value, f);
	if (e->proto != AL_PROTO_ANY)
		fprintf(f, " proto=%s", al_proto_name[e->proto]);
	if (e->ports.n)
		fprintf(f, " ports=%s", ports);
	for (size_t i = 0; i < e->sources.n; i++)
		fprintf(f, "%s%s",
			i ? "," : " sources=", cidr_str(&e->sources.v[i], cbuf, sizeof(cbuf)));
	if (e->non_deletable)
		fputs(" non_deletable", f);
	if (e->comment)
		fprintf(f, " # %s", e->comment);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static bool limits_same(enum al_proto pa, const struct range_list *ra, const struct cidr_list *sa,
	enum al_proto pb, const struct range_list *rb, const struct cidr_list *sb)
{
	if (pa != pb || ra->n != rb->n || sa->n != sb->n)
		return false;
	for (size_t i = 0; i < ra->n; i++)
		if (ra->v[i].lo != rb->v[i].lo || ra->v[i].hi != rb->v[i].hi)
			return false;
	for (size_t i = 0; i < sa->n; i++)
		if (cidr_cmp(&sa->v[i], &sb->v[i]) != 0)
			return false;
	return true;
}

bool al_entry_same(const struct al_entry *a, const struct al_entry *b)
{
	return a->kind == b->kind && streq(a->value, b->value) &&
	       limits_same(a->proto, &a->ports, &a->sources, b->proto, &b->ports, &b->sources);
}

/* --- items --- */

void al_item_init(struct al_item *it)
{
	memset(it, 0, sizeof(*it));
}

void al_item_clear(struct al_item *it)
{
	free(it->ports.v);
	free(it->sources.v);
	al_item_init(it);
}

int al_item_copy(const struct al_item *it, struct al_item *ret)
{
	int r;

	*ret = *it;
	ret->ports = (struct range_list){ 0 };
	ret->sources = (struct cidr_list){ 0 };
	r = copy_limits(&it->ports, &it->sources, &ret->ports, &ret->sources);
	if (r < 0)
		al_item_clear(ret);
	return r;
}

static int item_from(const struct al_entry *e, struct al_item *ret)
{
	int r;

	al_item_init(ret);
	ret->entry = e->id;
	snprintf(ret->label, sizeof(ret->label), "%s", e->value);
	ret->proto = e->proto;
	r = copy_limits(&e->ports, &e->sources, &ret->ports, &ret->sources);
	if (r < 0)
		al_item_clear(ret);
	return r;
}

int al_item_of_entry(const struct al_entry *e, struct al_item *ret)
{
	int r = item_from(e, ret);

	if (r < 0)
		return r;
	snprintf(ret->key, sizeof(ret->key), "%" PRId64, e->id);
	if (e->kind == AL_IP || e->kind == AL_CIDR) {
		ret->kind = AL_ITEM_DST;
		ret->dst = e->dst;
	} else {
		ret->kind = AL_ITEM_NAME;
		snprintf(ret->name, sizeof(ret->name), "%s", e->value);
	}
	return 0;
}

int al_item_resolved(const struct al_entry *e, const struct addr *a, struct al_item *ret)
{
	char buf[ADDR_STRLEN];
	int r;

	al_item_init(ret);
	if (e->kind != AL_DOMAIN || !addr_is_set(a))
		return -EINVAL;
	r = item_from(e, ret);
	if (r < 0)
		return r;
	snprintf(
		ret->key, sizeof(ret->key), "%" PRId64 "/%s", e->id, addr_str(a, buf, sizeof(buf)));
	ret->kind = AL_ITEM_DST;
	cidr_from_addr(a, &ret->dst);
	return 0;
}

json_t *al_item_to_json(const struct al_item *it)
{
	char buf[PORTS_STRLEN];
	json_t *o;
	int r;

	o = json_pack("{s:s, s:I, s:s}", "key", it->key, "entry", (json_int_t)it->entry, "label",
		it->label);
	if (!o)
		return NULL;
	if (it->kind == AL_ITEM_DST)
		r = json_object_set_new(
			o, "dst", json_string(cidr_str(&it->dst, buf, sizeof(buf))));
	else
		r = json_object_set_new(o, "name", json_string(it->name));
	if (r == 0 && it->proto != AL_PROTO_ANY)
		r = json_object_set_new(o, "proto", json_string(al_proto_name[it->proto]));
	if (r == 0 && it->ports.n) {
		r = ports_format(&it->ports, buf, sizeof(buf));
		if (r == 0)
			r = json_object_set_new(o, "ports", json_string(buf));
	}
	if (r == 0 && it->sources.n)
		r = json_object_set_new(o, "sources", sources_json(&it->sources));
	if (r < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* "42" or "42/203.0.113.7" (canonical address text): the entry number and the address. */
static int key_parse(const char *s, int64_t *ret_entry, struct addr *ret_addr)
{
	char buf[ADDR_STRLEN];
	int64_t v = 0;
	const char *p = s;

	if (*p < '1' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (INT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (*p - '0');
	}
	*ret_entry = v;
	memset(ret_addr, 0, sizeof(*ret_addr));
	if (*p == '\0')
		return 0;
	if (*p != '/' || addr_parse(p + 1, ret_addr) < 0)
		return -EINVAL;
	return streq(addr_str(ret_addr, buf, sizeof(buf)), p + 1) ? 0 : -EINVAL;
}

bool al_item_key_valid(const char *key)
{
	int64_t entry;
	struct addr a;

	return strlen(key) < AL_KEY_MAX && key_parse(key, &entry, &a) == 0;
}

static int item_string(
	const json_t *o, const char *name, size_t max, const char **ret, struct al_error *err)
{
	json_t *v = json_object_get(o, name);

	*ret = NULL;
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) >= max ||
		strlen(json_string_value(v)) != json_string_length(v))
		return al_error_set(err, name, "expected a string of 1 to %zu bytes", max - 1);
	*ret = json_string_value(v);
	return 0;
}

/* The members of an item other than its limits. */
static int item_head(const json_t *o, struct al_item *ret, struct al_error *err)
{
	const char *key, *label, *dst, *name;
	struct al_entry e;
	int64_t entry;
	struct addr a;
	json_t *v;
	int r;

	r = item_string(o, "key", AL_KEY_MAX, &key, err);
	if (r == 0)
		r = item_string(o, "label", AL_VALUE_MAX, &label, err);
	if (r == 0)
		r = item_string(o, "dst", CIDR_STRLEN, &dst, err);
	if (r == 0)
		r = item_string(o, "name", AL_VALUE_MAX, &name, err);
	if (r < 0)
		return r;
	if (!key)
		return al_error_set(err, "key", "is required: \"42\" or \"42/203.0.113.7\"");
	if (!label)
		return al_error_set(err, "label", "is required: the entry's value");
	v = json_object_get(o, "entry");
	if (!v || !json_is_integer(v) || json_integer_value(v) < 1)
		return al_error_set(err, "entry", "expected the entry's id, a positive integer");
	ret->entry = json_integer_value(v);
	if (key_parse(key, &entry, &a) < 0 || entry != ret->entry)
		return al_error_set(err, "key",
			"expected \"%" JSON_INTEGER_FORMAT "\" or \"%" JSON_INTEGER_FORMAT
			"/ADDRESS\" (canonical address text)",
			json_integer_value(v), json_integer_value(v));
	snprintf(ret->key, sizeof(ret->key), "%s", key);
	snprintf(ret->label, sizeof(ret->label), "%s", label);
	if (!dst == !name)
		return al_error_set(
			err, dst ? "name" : "dst", "expected exactly one of dst and name");
	if (dst) {
		ret->kind = AL_ITEM_DST;
		r = cidr_parse(dst, 0, &ret->dst);
		if (r < 0)
			return al_error_set(err, "dst",
				"%s; expected a prefix such as 198.51.100.7/32", cidr_strerror(r));
		if (addr_is_set(&a) &&
			(ret->dst.plen != addr_len(a.family) * 8 || !addr_eq(&a, &ret->dst.addr)))
			return al_error_set(
				err, "dst", "is not the address of the key \"%s\"", key);
		return 0;
	}
	ret->kind = AL_ITEM_NAME;
	if (addr_is_set(&a))
		return al_error_set(err, "key", "a name item's key is its entry's id alone");
	al_entry_init(&e);
	r = value_parse(name, strlen(name), &e, false, err);
	if (r == 0 && e.kind != AL_DOMAIN && e.kind != AL_WILDCARD)
		r = -EINVAL;
	if (r == 0 && !streq(e.value, name))
		r = -EINVAL;
	al_entry_clear(&e);
	if (r < 0)
		return al_error_set(err, "name", "expected a lower-case domain name or *.domain");
	snprintf(ret->name, sizeof(ret->name), "%s", name);
	return 0;
}

int al_item_from_json(const json_t *o, struct al_item *ret, struct al_error *err)
{
	static const char *const known[] = { "key", "entry", "label", "dst", "name" };
	const char *key;
	json_t *v;
	int r;

	al_item_init(ret);
	if (!json_is_object(o))
		return al_error_set(err, "", "expected an item, a JSON object");
	json_object_foreach(unconst(o), key, v)
	{
		size_t k;
		for (k = 0; k < ARRAY_SIZE(known); k++)
			if (streq(key, known[k]))
				break;
		if (k < ARRAY_SIZE(known)) {
			r = 0;
		} else if (streq(key, "proto")) {
			r = json_is_string(v) ? proto_parse(json_string_value(v), &ret->proto, err)
					      : al_error_set(err, key,
							"expected \"any\", \"tcp\" or \"udp\"");
		} else if (streq(key, "ports")) {
			r = ports_parse_json(&ret->ports, v, err);
		} else if (streq(key, "sources")) {
			r = sources_parse_json(&ret->sources, v, err);
		} else {
			char show[300];
			r = al_error_set(err, shown(key, strlen(key), show, sizeof(show)),
				"unknown member; expected key, entry, label, dst or name, proto, "
				"ports, sources");
		}
		if (r < 0)
			return r;
	}
	return item_head(o, ret, err);
}
