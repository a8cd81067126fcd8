/*
 * ddns_ip.c - a public address service's reply, and address sets (ddns_ip.h).
 *
 * Must not do I/O or log: the reply is outside input, judged here and reported by the
 * caller.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ddns_ip.h"
#include "util.h"

/* The keys gateway-route-manager reads, in its order. */
static const char *const ip_keys[] = {"public_ip", "ip_address", "ip_addr", "ip"};

static int text_addr(const char *s, size_t len, struct addr *ret, char *why, size_t whylen)
{
	char buf[ADDR_STRLEN + 1];

	while (len && isspace((unsigned char)*s))
		s++, len--;
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (!len) {
		snprintf(why, whylen, "an empty reply");
		return -EINVAL;
	}
	if (len >= sizeof(buf) || memchr(s, '\0', len)) {
		snprintf(why, whylen, "expected an address, got %zu bytes of something else", len);
		return -EINVAL;
	}
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (addr_parse(buf, ret) < 0 || strchr(buf, '%')) {
		for (size_t i = 0; i < len; i++)
			if (!isprint((unsigned char)buf[i]))
				buf[i] = '?';
		snprintf(why, whylen, "expected an address, got \"%s\"", buf);
		return -EINVAL;
	}
	addr_unmap_v4(ret);
	if (addr_is_any(ret)) {
		snprintf(why, whylen, "expected a public address, got \"%s\"", buf);
		return -EINVAL;
	}
	return 0;
}

int ddns_ip_parse(const char *body, size_t len, struct addr *ret, char *why, size_t whylen)
{
	size_t i = 0;
	json_error_t jerr;
	json_t *doc;
	int r = -EINVAL;

	while (i < len && isspace((unsigned char)body[i]))
		i++;
	if (i == len || (body[i] != '{' && body[i] != '"'))
		return text_addr(body, len, ret, why, whylen);
	doc = json_loadb(body, len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (!doc) {
		snprintf(why, whylen, "invalid JSON: %s", jerr.text);
		return -EINVAL;
	}
	if (json_is_string(doc)) {
		r = text_addr(json_string_value(doc), json_string_length(doc), ret, why, whylen);
		goto out;
	}
	if (!json_is_object(doc)) {
		snprintf(why, whylen, "expected a JSON object");
		goto out;
	}
	for (size_t k = 0; k < ARRAY_SIZE(ip_keys); k++) {
		json_t *v = json_object_get(doc, ip_keys[k]);

		if (!v)
			continue;
		if (!json_is_string(v)) {
			snprintf(why, whylen, "expected \"%s\" to be a string", ip_keys[k]);
			goto out;
		}
		r = text_addr(json_string_value(v), json_string_length(v), ret, why, whylen);
		goto out;
	}
	snprintf(why, whylen, "no public_ip, ip_address, ip_addr or ip in the JSON object");
out:
	json_decref(doc);
	return r;
}

/* ------------------------------------------------------------ sets */

void ddns_set_clear(struct ddns_set *s)
{
	free(s->v);
	*s = (struct ddns_set){0};
}

/* Index of a in s, or where it would go (as ~index). */
static long set_find(const struct ddns_set *s, const struct addr *a)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = addr_cmp(&s->v[mid], a);

		if (!c)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return ~(long)lo;
}

void ddns_set_add(struct ddns_set *s, const struct addr *a)
{
	long i = set_find(s, a);
	size_t at;

	if (i >= 0)
		return;
	at = (size_t)~i;
	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 8;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof(*s->v));
	s->v[at] = *a;
	s->n++;
}

bool ddns_set_has(const struct ddns_set *s, const struct addr *a)
{
	return set_find(s, a) >= 0;
}

bool ddns_set_equal(const struct ddns_set *a, const struct ddns_set *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (addr_cmp(&a->v[i], &b->v[i]))
			return false;
	return true;
}

void ddns_set_copy(struct ddns_set *dst, const struct ddns_set *src)
{
	ddns_set_clear(dst);
	for (size_t i = 0; i < src->n; i++)
		ddns_set_add(dst, &src->v[i]);
}

size_t ddns_set_count(const struct ddns_set *s, int family)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += s->v[i].family == family;
	return n;
}

void ddns_set_diff(const struct ddns_set *have, const struct ddns_set *want, struct ddns_set *add,
	struct ddns_set *del)
{
	ddns_set_clear(add);
	ddns_set_clear(del);
	for (size_t i = 0; i < want->n; i++)
		if (!ddns_set_has(have, &want->v[i]))
			ddns_set_add(add, &want->v[i]);
	for (size_t i = 0; i < have->n; i++)
		if (!ddns_set_has(want, &have->v[i]))
			ddns_set_add(del, &have->v[i]);
}

const char *ddns_set_str(const struct ddns_set *s, char *buf, size_t len)
{
	size_t off = 0;
	char a[ADDR_STRLEN];

	if (!len)
		return buf;
	buf[0] = '\0';
	if (!s->n) {
		snprintf(buf, len, "none");
		return buf;
	}
	for (size_t i = 0; i < s->n && off < len; i++)
		off += (size_t)snprintf(buf + off, len - off, "%s%s", i ? ", " : "",
			addr_str(&s->v[i], a, sizeof(a)));
	return buf;
}
