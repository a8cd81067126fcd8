/*
 * test_al_entry.c - unit tests for src/allowlist/al_entry.c: entries from API bodies and
 * import lines, their normal forms and round trips, refused destinations, items.
 *
 * Pure computation.  Every refusal is checked for the field it names and for the words of
 * what was wrong, so that an operator reading the API's answer can fix the entry.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "al_entry.h"
#include "util.h"

/* ---------------------------------------------------------------- helpers */

static json_t *load(const char *text)
{
	json_error_t je;
	json_t *o = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &je);

	if (!o)
		fail_msg("bad test JSON %s: %s", text, je.text);
	return o;
}

/* Parse a body that must be accepted. */
static void from_json_ok(const char *text, struct al_entry *ret)
{
	struct al_error err = { 0 };
	json_t *o = load(text);
	int r = al_entry_from_json(o, ret, &err);

	json_decref(o);
	if (r != 0)
		fail_msg("%s refused: %s: %s", text, err.field, err.msg);
}

/* Parse a body that must be refused with field and a message holding words. */
static void from_json_bad(const char *text, const char *field, const char *words)
{
	struct al_error err = { 0 };
	struct al_entry e;
	json_t *o = load(text);
	int r = al_entry_from_json(o, &e, &err);

	json_decref(o);
	al_entry_clear(&e);
	if (r != -EINVAL)
		fail_msg("%s: got %d, expected -EINVAL", text, r);
	if (strcmp(err.field, field) != 0)
		fail_msg("%s: field \"%s\", expected \"%s\" (%s)", text, err.field, field, err.msg);
	if (!strstr(err.msg, words))
		fail_msg("%s: message \"%s\" lacks \"%s\"", text, err.msg, words);
}

static void from_line_bad(const char *line, const char *field, const char *words)
{
	struct al_error err = { 0 };
	struct al_entry e;
	int r = al_entry_from_line(line, &e, &err);

	al_entry_clear(&e);
	if (r != -EINVAL)
		fail_msg("%s: got %d, expected -EINVAL", line, r);
	if (strcmp(err.field, field) != 0)
		fail_msg("%s: field \"%s\", expected \"%s\" (%s)", line, err.field, field, err.msg);
	if (!strstr(err.msg, words))
		fail_msg("%s: message \"%s\" lacks \"%s\"", line, err.msg, words);
}

/* The entry's line, which must read back to the same entry, comment included. */
static char *line_round_trip(const struct al_entry *e)
{
	struct al_error err = { 0 };
	struct al_entry back;
	char *line = al_entry_to_line(e);

	assert_non_null(line);
	if (al_entry_from_line(line, &back, &err) != 0)
		fail_msg("\"%s\" does not read back: %s: %s", line, err.field, err.msg);
	assert_true(al_entry_same(e, &back));
	assert_int_equal(e->non_deletable, back.non_deletable);
	if (e->comment)
		assert_string_equal(e->comment, back.comment);
	else
		assert_null(back.comment);
	al_entry_clear(&back);
	return line;
}

/* ---------------------------------------------------------------- values */

static void test_value_kinds(void **state)
{
	static const struct {
		const char *in, *value;
		enum al_kind kind;
	} cases[] = {
		{ "8.8.8.8", "8.8.8.8", AL_IP },
		{ "2606:4700:4700:0:0:0:0:1111", "2606:4700:4700::1111", AL_IP },
		{ "1.1.1.1/32", "1.1.1.1", AL_IP },
		{ "9.9.9.0/24", "9.9.9.0/24", AL_CIDR },
		{ "2a00:1450::/32", "2a00:1450::/32", AL_CIDR },
		{ "Example.COM.", "example.com", AL_DOMAIN },
		{ "api.github.com", "api.github.com", AL_DOMAIN },
		{ "_dmarc.example.org", "_dmarc.example.org", AL_DOMAIN },
		{ "*.CDN.example.net", "*.cdn.example.net", AL_WILDCARD },
	};
	char body[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct al_entry e;
		snprintf(body, sizeof(body), "{\"value\": \"%s\"}", cases[i].in);
		from_json_ok(body, &e);
		assert_string_equal(e.value, cases[i].value);
		assert_int_equal(e.kind, cases[i].kind);
		assert_int_equal(e.proto, AL_PROTO_ANY);
		assert_int_equal(e.ports.n, 0);
		assert_int_equal(e.sources.n, 0);
		assert_null(e.comment);
		assert_false(e.non_deletable);
		al_entry_clear(&e);
	}
}

static void test_value_bad(void **state)
{
	(void)state;
	from_json_bad("{}", "value", "required");
	from_json_bad("{\"value\": 7}", "value", "string");
	from_json_bad("{\"value\": \"\"}", "value", "empty");
	from_json_bad("{\"value\": \"1.2.3.256\"}", "value", "numeric label");
	from_json_bad("{\"value\": \"9.9.9.1/24\"}", "value", "host bits");
	from_json_bad("{\"value\": \"9.9.9.0/33\"}", "value", "198.51.100.0/24");
	from_json_bad("{\"value\": \"localhost\"}", "value", "two labels");
	from_json_bad("{\"value\": \"printer.local\"}", "value", "special-use");
	from_json_bad("{\"value\": \"-a.example.com\"}", "value", "begins or ends");
	from_json_bad("{\"value\": \"a..example.com\"}", "value", "empty label");
	from_json_bad("{\"value\": \"ex ample.com\"}", "value", "only letters");
	from_json_bad("{\"value\": \"a.*.example.com\"}", "value", "only letters");
	from_json_bad("{\"value\": \"*.com\"}", "value", "two labels");
	from_json_bad("{\"value\": \"fe80::1%eth0\"}", "value", "only letters");
	from_json_bad("{\"value\": \"a\\u0000b.com\"}", "value", "expected");
}

static void test_value_too_long(void **state)
{
	char label[64], name[300], body[400];

	(void)state;
	memset(label, 'a', 63);
	label[63] = '\0';
	/* 4 labels of 63 + 3 dots = 255 bytes: past 253 */
	snprintf(name, sizeof(name), "%s.%s.%s.%s", label, label, label, label);
	snprintf(body, sizeof(body), "{\"value\": \"%s\"}", name);
	from_json_bad(body, "value", "253");
	/* 64-byte label */
	snprintf(body, sizeof(body), "{\"value\": \"%sa.com\"}", label);
	from_json_bad(body, "value", "63");
	/* the longest name: 253 bytes, and its wildcard */
	name[253] = '\0';
	name[252] = 'b';
	{
		struct al_entry e;
		snprintf(body, sizeof(body), "{\"value\": \"*.%s\"}", name + 2);
		from_json_ok(body, &e);
		assert_int_equal(strlen(e.value), 253);
		al_entry_clear(&e);
	}
}

static void test_refused_destinations(void **state)
{
	static const struct {
		const char *value, *why;
	} cases[] = {
		{ "10.1.2.3", "is private (RFC 1918)" },
		{ "192.168.0.0/16", "is private (RFC 1918)" },
		{ "127.0.0.1", "is loopback" },
		{ "169.254.169.254", "is link-local" },
		{ "224.0.0.251", "is multicast" },
		{ "192.0.2.7", "is documentation (RFC 5737)" },
		{ "255.255.255.255", "is limited broadcast" },
		{ "100.64.0.1", "is shared address space" },
		{ "0.0.0.0/0", "includes \"this network\"" },
		{ "8.0.0.0/5", "includes private (RFC 1918)" },
		{ "::1", "is loopback" },
		{ "fe80::1", "is link-local" },
		{ "fd00::/8", "is unique local" },
		{ "2001:db8::1", "is documentation (RFC 3849)" },
		{ "::ffff:8.8.8.8", "is IPv4-mapped" },
		{ "ff02::1", "is multicast" },
		{ "::/0", "includes unspecified" },
	};
	char body[128], words[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(body, sizeof(body), "{\"value\": \"%s\"}", cases[i].value);
		snprintf(words, sizeof(words), "%s %s", cases[i].value, cases[i].why);
		from_json_bad(body, "value", words);
		from_json_bad(body, "value", "only public destinations can be allowed");
		snprintf(body, sizeof(body), "%s ports=443", cases[i].value);
		from_line_bad(body, "value", cases[i].why);
	}
}

static void test_dst_refused(void **state)
{
	const char *why = "unset";
	struct cidr c;

	(void)state;
	assert_int_equal(cidr_parse("8.8.8.0/24", 0, &c), 0);
	assert_false(al_dst_refused(&c, &why));
	assert_null(why);
	assert_int_equal(cidr_parse("2a00:1450:4001::/48", 0, &c), 0);
	assert_false(al_dst_refused(&c, NULL));
	assert_int_equal(cidr_parse("172.20.0.0/16", 0, &c), 0);
	assert_true(al_dst_refused(&c, &why));
	assert_string_equal(why, "is private (RFC 1918)");
	/* a prefix that covers a reserved range is refused as a whole */
	assert_int_equal(cidr_parse("192.0.0.0/8", 0, &c), 0);
	assert_true(al_dst_refused(&c, &why));
	assert_string_equal(why, "includes IETF protocol assignments (RFC 6890)");
	memset(&c, 0, sizeof(c));
	assert_true(al_dst_refused(&c, &why));
}

/* ---------------------------------------------------------------- limits */

static void test_limits(void **state)
{
	struct al_entry e;
	char *line;
	json_t *o;

	(void)state;
	from_json_ok("{\"value\": \"example.com\", \"proto\": \"tcp\", "
		     "\"ports\": \"8000-8100, 443,80 8050-8200\", "
		     "\"sources\": [\"10.2.0.0/16\", \"10.1.0.0/16\", \"10.2.0.0/16\", "
		     "\"2001:db8:1::/48\", \"10.9.9.9\"], "
		     "\"comment\": \"  CI runners  \", \"non_deletable\": true}",
		&e);
	assert_int_equal(e.proto, AL_PROTO_TCP);
	assert_int_equal(e.ports.n, 3); /* 80, 443, 8000-8200 */
	assert_int_equal(e.ports.v[0].lo, 80);
	assert_int_equal(e.ports.v[1].lo, 443);
	assert_int_equal(e.ports.v[2].lo, 8000);
	assert_int_equal(e.ports.v[2].hi, 8200);
	assert_int_equal(e.sources.n, 4); /* sorted, the repeat dropped */
	assert_string_equal(e.comment, "CI runners");
	assert_true(e.non_deletable);

	line = line_round_trip(&e);
	assert_string_equal(line, "example.com proto=tcp ports=80,443,8000-8200 "
				  "sources=10.1.0.0/16,10.2.0.0/16,10.9.9.9/32,2001:db8:1::/48 "
				  "non_deletable # CI runners");
	free(line);

	o = al_entry_to_json(&e);
	assert_non_null(o);
	assert_string_equal(json_string_value(json_object_get(o, "ports")), "80,443,8000-8200");
	assert_string_equal(json_string_value(json_object_get(o, "kind")), "domain");
	assert_int_equal(json_array_size(json_object_get(o, "sources")), 4);
	json_decref(o);
	al_entry_clear(&e);

	/* ports as an array of numbers and ranges; proto any with ports means TCP and UDP */
	from_json_ok("{\"value\": \"9.9.9.9\", \"ports\": [53, \"853-853\", 54]}", &e);
	assert_int_equal(e.proto, AL_PROTO_ANY);
	assert_int_equal(e.ports.n, 2); /* 53-54, 853 */
	assert_int_equal(e.ports.v[0].hi, 54);
	al_entry_clear(&e);

	/* empty lists: every port, every client */
	from_json_ok("{\"value\": \"9.9.9.9\", \"ports\": \"\", \"sources\": [], "
		     "\"comment\": \"   \"}",
		&e);
	assert_int_equal(e.ports.n, 0);
	assert_int_equal(e.sources.n, 0);
	assert_null(e.comment);
	al_entry_clear(&e);
}

static void test_limits_bad(void **state)
{
	char body[1024];
	size_t o;

	(void)state;
	from_json_bad("{\"value\": \"example.com\", \"proto\": \"icmp\"}", "proto", "\"tcp\"");
	from_json_bad("{\"value\": \"example.com\", \"proto\": 6}", "proto", "\"tcp\"");
	from_json_bad(
		"{\"value\": \"example.com\", \"ports\": \"80,0\"}", "ports[1]", "1 to 65535");
	from_json_bad("{\"value\": \"example.com\", \"ports\": \"65536\"}", "ports[0]", "65535");
	from_json_bad("{\"value\": \"example.com\", \"ports\": \"90-80\"}", "ports[0]", "range");
	from_json_bad("{\"value\": \"example.com\", \"ports\": \"080\"}", "ports[0]", "port");
	from_json_bad("{\"value\": \"example.com\", \"ports\": \"8o\"}", "ports[0]", "\"8o\"");
	from_json_bad("{\"value\": \"example.com\", \"ports\": [80, 70000]}", "ports[1]", "70000");
	from_json_bad("{\"value\": \"example.com\", \"ports\": [80.5]}", "ports[0]", "port");
	from_json_bad("{\"value\": \"example.com\", \"ports\": {}}", "ports", "array");
	from_json_bad("{\"value\": \"example.com\", \"sources\": [\"10.0.0.1/8\"]}", "sources[0]",
		"host bits");
	from_json_bad("{\"value\": \"example.com\", \"sources\": [\"x\"]}", "sources[0]",
		"client subnet");
	from_json_bad("{\"value\": \"example.com\", \"sources\": [7]}", "sources[0]", "string");
	from_json_bad("{\"value\": \"example.com\", \"comment\": \"a\\nb\"}", "comment",
		"control character");
	from_json_bad("{\"value\": \"example.com\", \"comment\": 5}", "comment", "string");
	from_json_bad("{\"value\": \"example.com\", \"non_deletable\": \"yes\"}", "non_deletable",
		"true or false");
	from_json_bad("{\"value\": \"example.com\", \"port\": 80}", "port", "unknown member");
	from_json_bad("{\"value\": \"example.com\", \"kind\": \"ip\"}", "kind", "domain");
	from_json_bad("{\"value\": \"example.com\", \"id\": \"x\"}", "id", "integer");
	from_json_bad("[1]", "", "object");

	/* more ranges than AL_PORTS_MAX */
	o = (size_t)snprintf(body, sizeof(body), "{\"value\": \"example.com\", \"ports\": \"");
	for (int i = 0; i <= AL_PORTS_MAX; i++)
		o += (size_t)snprintf(body + o, sizeof(body) - o, "%d,", 1000 + 2 * i);
	snprintf(body + o, sizeof(body) - o, "\"}");
	from_json_bad(body, "ports[64]", "at most 64");

	/* a comment of AL_COMMENT_MAX + 1 bytes */
	{
		static char big[AL_COMMENT_MAX + 64];
		o = (size_t)snprintf(
			big, sizeof(big), "{\"value\": \"example.com\", \"comment\": \"");
		for (int i = 0; i <= AL_COMMENT_MAX; i++)
			big[o++] = 'c';
		snprintf(big + o, sizeof(big) - o, "\"}");
		from_json_bad(big, "comment", "at most 512");
	}
}

/* What al_entry_to_json() gives imports again: the export of egress-server is an import. */
static void test_json_round_trip(void **state)
{
	struct al_error err = { 0 };
	struct al_entry e, back;
	json_t *o;

	(void)state;
	from_json_ok("{\"value\": \"2a00:1450::/32\", \"proto\": \"udp\", \"ports\": \"443\", "
		     "\"sources\": [\"fd00:1::/64\"], \"comment\": \"quic\"}",
		&e);
	e.id = 42;
	e.created = 1700000000;
	e.created_by = strdup("token:ci");
	o = al_entry_to_json(&e);
	assert_non_null(o);
	assert_int_equal(json_integer_value(json_object_get(o, "id")), 42);
	assert_string_equal(json_string_value(json_object_get(o, "created_by")), "token:ci");
	assert_int_equal(al_entry_from_json(o, &back, &err), 0);
	assert_true(al_entry_same(&e, &back));
	assert_string_equal(back.comment, "quic");
	assert_int_equal(back.id, 0); /* the store's, not taken from the body */
	assert_null(back.created_by);
	json_decref(o);
	al_entry_clear(&back);

	/* a copy is deep and equal */
	assert_int_equal(al_entry_copy(&e, &back), 0);
	assert_true(al_entry_same(&e, &back));
	assert_ptr_not_equal(back.ports.v, e.ports.v);
	assert_string_equal(back.created_by, "token:ci");
	al_entry_clear(&e);
	al_entry_clear(&back);
	/* cleared entries are zero and clear again */
	al_entry_clear(&back);
	assert_null(back.comment);
}

static void test_same(void **state)
{
	struct al_entry a, b;

	(void)state;
	from_json_ok("{\"value\": \"example.com\", \"ports\": \"443,80\", \"comment\": \"a\"}", &a);
	from_json_ok("{\"value\": \"EXAMPLE.com.\", \"ports\": [80, 443], \"comment\": \"b\", "
		     "\"non_deletable\": true}",
		&b);
	assert_true(al_entry_same(&a, &b)); /* comment and non_deletable do not count */
	al_entry_clear(&b);
	from_json_ok("{\"value\": \"example.com\", \"ports\": \"443\"}", &b);
	assert_false(al_entry_same(&a, &b));
	al_entry_clear(&b);
	from_json_ok("{\"value\": \"example.com\", \"ports\": \"443,80\", \"proto\": \"tcp\"}", &b);
	assert_false(al_entry_same(&a, &b));
	al_entry_clear(&b);
	from_json_ok("{\"value\": \"*.example.com\", \"ports\": \"443,80\"}", &b);
	assert_false(al_entry_same(&a, &b));
	al_entry_clear(&a);
	al_entry_clear(&b);
}

/* ---------------------------------------------------------------- lines */

static void test_lines(void **state)
{
	struct al_error err = { 0 };
	struct al_entry e;
	char *line;

	(void)state;
	assert_int_equal(al_entry_from_line("", &e, &err), -ENODATA);
	assert_int_equal(al_entry_from_line("   \t\r\n", &e, &err), -ENODATA);
	assert_int_equal(al_entry_from_line("# a comment", &e, &err), -ENODATA);
	assert_int_equal(al_entry_from_line("  # indented", &e, &err), -ENODATA);

	assert_int_equal(
		al_entry_from_line("  *.Example.org\tproto=udp   ports=53 #dns\r\n", &e, &err), 0);
	assert_int_equal(e.kind, AL_WILDCARD);
	assert_string_equal(e.value, "*.example.org");
	assert_int_equal(e.proto, AL_PROTO_UDP);
	assert_string_equal(e.comment, "dns");
	line = line_round_trip(&e);
	assert_string_equal(line, "*.example.org proto=udp ports=53 # dns");
	free(line);
	al_entry_clear(&e);

	/* a comment may hold '#'; sources separated by commas */
	assert_int_equal(
		al_entry_from_line("8.8.8.8 sources=10.1.0.0/16,10.2.0.0/16 # a # b", &e, &err), 0);
	assert_string_equal(e.comment, "a # b");
	assert_int_equal(e.sources.n, 2);
	free(line_round_trip(&e));
	al_entry_clear(&e);

	assert_int_equal(al_entry_from_line("1.1.1.1", &e, &err), 0);
	line = line_round_trip(&e);
	assert_string_equal(line, "1.1.1.1");
	free(line);
	al_entry_clear(&e);
}

static void test_lines_bad(void **state)
{
	(void)state;
	from_line_bad("example.com port=80", "port", "unknown option");
	from_line_bad("example.com ports=80 ports=443", "ports", "twice");
	from_line_bad("example.com proto", "proto", "needs a value");
	from_line_bad("example.com non_deletable=yes", "non_deletable", "no value");
	from_line_bad("example.com proto=sctp", "proto", "\"tcp\"");
	from_line_bad("example.com ports=80,99999", "ports[1]", "65535");
	from_line_bad("example.com sources=10.0.0.0/8,nope", "sources[1]", "client subnet");
	from_line_bad("example.com mple.com", "mple.com", "unknown option");
	from_line_bad("10.0.0.1 # private", "value", "private");
	from_line_bad("example.com # \x01", "comment", "control character");
	from_line_bad("example.com # \xff\xfe", "comment", "UTF-8");
}

/* ---------------------------------------------------------------- items */

static void test_items(void **state)
{
	struct al_error err = { 0 };
	struct al_entry e;
	struct al_item it, back;
	struct addr a;
	json_t *o;
	char *text;

	(void)state;
	from_json_ok("{\"value\": \"example.com\", \"proto\": \"tcp\", \"ports\": \"443\"}", &e);
	e.id = 42;
	assert_int_equal(al_item_of_entry(&e, &it), 0);
	assert_string_equal(it.key, "42");
	assert_int_equal(it.kind, AL_ITEM_NAME);
	assert_string_equal(it.name, "example.com");
	o = al_item_to_json(&it);
	text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"entry\":42,\"key\":\"42\",\"label\":\"example.com\","
				  "\"name\":\"example.com\",\"ports\":\"443\",\"proto\":\"tcp\"}");
	free(text);
	assert_int_equal(al_item_from_json(o, &back, &err), 0);
	assert_string_equal(back.key, "42");
	assert_int_equal(back.entry, 42);
	assert_int_equal(back.ports.n, 1);
	json_decref(o);
	al_item_clear(&back);
	al_item_clear(&it);

	/* an address the domain resolved to; resolved addresses are not refused here */
	assert_int_equal(addr_parse("2001:db8::7", &a), 0);
	assert_int_equal(al_item_resolved(&e, &a, &it), 0);
	assert_string_equal(it.key, "42/2001:db8::7");
	assert_int_equal(it.kind, AL_ITEM_DST);
	assert_string_equal(it.label, "example.com");
	o = al_item_to_json(&it);
	assert_string_equal(json_string_value(json_object_get(o, "dst")), "2001:db8::7/128");
	assert_int_equal(al_item_from_json(o, &back, &err), 0);
	assert_int_equal(back.dst.plen, 128);
	json_decref(o);
	al_item_clear(&it);
	assert_int_equal(al_item_copy(&back, &it), 0);
	assert_string_equal(it.key, back.key);
	assert_int_equal(cidr_cmp(&it.dst, &back.dst), 0);
	assert_int_equal(it.ports.n, 1);
	assert_ptr_not_equal(it.ports.v, back.ports.v);
	al_item_clear(&back);
	al_item_clear(&it);
	al_entry_clear(&e);

	/* an ip entry's item is its DST; al_item_resolved() is for domains only */
	from_json_ok("{\"value\": \"9.9.9.0/24\"}", &e);
	e.id = 7;
	assert_int_equal(al_item_of_entry(&e, &it), 0);
	assert_int_equal(it.kind, AL_ITEM_DST);
	assert_string_equal(it.label, "9.9.9.0/24");
	al_item_clear(&it);
	assert_int_equal(al_item_resolved(&e, &a, &it), -EINVAL);
	al_entry_clear(&e);
}

static void item_bad(const char *text, const char *field, const char *words)
{
	struct al_error err = { 0 };
	struct al_item it;
	json_t *o = load(text);
	int r = al_item_from_json(o, &it, &err);

	json_decref(o);
	al_item_clear(&it);
	if (r != -EINVAL)
		fail_msg("%s: got %d, expected -EINVAL", text, r);
	if (strcmp(err.field, field) != 0)
		fail_msg("%s: field \"%s\", expected \"%s\" (%s)", text, err.field, field, err.msg);
	if (!strstr(err.msg, words))
		fail_msg("%s: message \"%s\" lacks \"%s\"", text, err.msg, words);
}

static void test_items_bad(void **state)
{
	(void)state;
	item_bad("{\"entry\": 1, \"label\": \"a.com\", \"name\": \"a.com\"}", "key", "required");
	item_bad(
		"{\"key\": \"1\", \"label\": \"a.com\", \"name\": \"a.com\"}", "entry", "positive");
	item_bad("{\"key\": \"2\", \"entry\": 1, \"label\": \"a.com\", \"name\": \"a.com\"}", "key",
		"\"1\"");
	item_bad("{\"key\": \"1/1.2.3.4\", \"entry\": 1, \"label\": \"a.com\", \"dst\": "
		 "\"1.2.3.5/32\"}",
		"dst", "not the address");
	item_bad("{\"key\": \"1/01.2.3.4\", \"entry\": 1, \"label\": \"a.com\", \"dst\": "
		 "\"1.2.3.4/32\"}",
		"key", "canonical");
	item_bad("{\"key\": \"1\", \"entry\": 1, \"label\": \"a.com\"}", "dst", "exactly one");
	item_bad("{\"key\": \"1\", \"entry\": 1, \"label\": \"a.com\", \"name\": \"a.com\", "
		 "\"dst\": \"8.8.8.8/32\"}",
		"name", "exactly one");
	item_bad("{\"key\": \"1\", \"entry\": 1, \"label\": \"a\", \"name\": \"A.com\"}", "name",
		"lower-case");
	item_bad("{\"key\": \"1\", \"entry\": 1, \"label\": \"a\", \"dst\": \"8.8.8.1/24\"}", "dst",
		"host bits");
	item_bad("{\"key\": \"1\", \"entry\": 1, \"label\": \"a\", \"dst\": \"8.8.8.8/32\", "
		 "\"ports\": \"0\"}",
		"ports[0]", "1 to 65535");
	item_bad("{\"key\": \"1\", \"entry\": 1, \"label\": \"a\", \"dst\": \"8.8.8.8/32\", "
		 "\"extra\": 1}",
		"extra", "unknown member");
	item_bad("{\"key\": \"1\", \"entry\": 1, \"label\": \"\", \"dst\": \"8.8.8.8/32\"}",
		"label", "1 to");
	/* reserved destinations pass: the agent skips and logs them */
	{
		struct al_error err = { 0 };
		struct al_item it;
		json_t *o = load("{\"key\": \"3\", \"entry\": 3, \"label\": \"x\", "
				 "\"dst\": \"10.0.0.0/8\"}");
		assert_int_equal(al_item_from_json(o, &it, &err), 0);
		json_decref(o);
		al_item_clear(&it);
	}
	assert_true(al_item_key_valid("42"));
	assert_true(al_item_key_valid("42/2001:db8::7"));
	assert_false(al_item_key_valid("042"));
	assert_false(al_item_key_valid("42/"));
	assert_false(al_item_key_valid("42/2001:DB8::7"));
	assert_false(al_item_key_valid("99999999999999999999"));
	assert_false(al_item_key_valid(""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_value_kinds),
		cmocka_unit_test(test_value_bad),
		cmocka_unit_test(test_value_too_long),
		cmocka_unit_test(test_refused_destinations),
		cmocka_unit_test(test_dst_refused),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_limits_bad),
		cmocka_unit_test(test_json_round_trip),
		cmocka_unit_test(test_same),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_lines_bad),
		cmocka_unit_test(test_items),
		cmocka_unit_test(test_items_bad),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
