/*
 * test_al_proto.c - unit tests for src/allowlist/al_proto.c: every message type encoded and
 * parsed back, and the refusals (unknown types and members, missing or mistyped members,
 * bad items, repeated keys), each naming its field.
 *
 * Pure computation.  The literal messages are those of doc/allowlist-protocol.md's examples.
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

#include "al_proto.h"
#include "util.h"

static void parse_ok(const char *text, struct al_msg *ret)
{
	struct al_error err = { 0 };
	int r = al_msg_parse(text, strlen(text), ret, &err);

	if (r != 0)
		fail_msg("%s refused: %s: %s", text, err.field, err.msg);
}

static void parse_bad(const char *text, const char *field, const char *words)
{
	struct al_error err = { 0 };
	struct al_msg m;
	int r = al_msg_parse(text, strlen(text), &m, &err);

	al_msg_clear(&m);
	if (r != -EINVAL)
		fail_msg("%s: got %d, expected -EINVAL", text, r);
	if (strcmp(err.field, field) != 0)
		fail_msg("%s: field \"%s\", expected \"%s\" (%s)", text, err.field, field, err.msg);
	if (!strstr(err.msg, words))
		fail_msg("%s: message \"%s\" lacks \"%s\"", text, err.msg, words);
}

/* Encode m, parse it back, encode again: the same text. */
static void round_trip(const struct al_msg *m, struct al_msg *ret)
{
	size_t len, len2;
	char *text = al_msg_encode(m, &len), *again;
	struct al_error err = { 0 };

	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	if (al_msg_parse(text, len, ret, &err) != 0)
		fail_msg("%s does not parse back: %s: %s", text, err.field, err.msg);
	again = al_msg_encode(ret, &len2);
	assert_string_equal(again, text);
	free(text);
	free(again);
}

static void test_hello(void **state)
{
	struct al_msg m, back;

	(void)state;
	parse_ok("{\"type\": \"hello\", \"protocol\": 1, \"gateway\": \"gw-1.eu_west\", "
		 "\"version\": 0}",
		&m);
	assert_int_equal(m.type, AL_MSG_HELLO);
	assert_int_equal(m.protocol, AL_PROTOCOL);
	assert_string_equal(m.gateway, "gw-1.eu_west");
	assert_int_equal(m.version, 0);
	round_trip(&m, &back);
	assert_string_equal(back.gateway, "gw-1.eu_west");
	al_msg_clear(&m);
	al_msg_clear(&back);
}

static void test_snapshot(void **state)
{
	struct al_msg m, back;
	char *text;

	(void)state;
	parse_ok("{\"type\": \"snapshot\", \"version\": 9007199254740993, \"items\": ["
		 "{\"key\": \"42\", \"entry\": 42, \"label\": \"example.com\", "
		 "\"name\": \"example.com\"},"
		 "{\"key\": \"42/93.184.215.14\", \"entry\": 42, \"label\": \"example.com\", "
		 "\"dst\": \"93.184.215.14/32\"},"
		 "{\"key\": \"7\", \"entry\": 7, \"label\": \"9.9.9.0/24\", \"dst\": "
		 "\"9.9.9.0/24\", "
		 "\"proto\": \"udp\", \"ports\": \"53,853\", \"sources\": [\"10.1.0.0/16\"]}]}",
		&m);
	assert_int_equal(m.type, AL_MSG_SNAPSHOT);
	assert_true(m.version == 9007199254740993ull); /* past a double's exact integers */
	assert_int_equal(m.n_set, 3);
	assert_int_equal(m.set[0].kind, AL_ITEM_NAME);
	assert_int_equal(m.set[1].kind, AL_ITEM_DST);
	assert_int_equal(m.set[2].proto, AL_PROTO_UDP);
	assert_int_equal(m.set[2].ports.n, 2);
	assert_int_equal(m.set[2].sources.n, 1);
	round_trip(&m, &back);
	assert_int_equal(back.n_set, 3);
	al_msg_clear(&back);
	al_msg_clear(&m);

	/* an empty list is a snapshot too */
	al_msg_init(&m);
	m.type = AL_MSG_SNAPSHOT;
	m.version = 3;
	text = al_msg_encode(&m, NULL);
	assert_string_equal(text, "{\"type\":\"snapshot\",\"version\":3,\"items\":[]}");
	free(text);
}

static void test_delta(void **state)
{
	struct al_msg m, back;
	struct al_item it;
	struct cidr c;
	char *text;

	(void)state;
	al_msg_init(&m);
	m.type = AL_MSG_DELTA;
	m.from = 4;
	m.version = 6;
	al_item_init(&it);
	snprintf(it.key, sizeof(it.key), "5");
	it.kind = AL_ITEM_DST;
	it.entry = 5;
	snprintf(it.label, sizeof(it.label), "1.1.1.1");
	assert_int_equal(cidr_parse("1.1.1.1/32", 0, &c), 0);
	it.dst = c;
	assert_int_equal(al_msg_add_set(&m, &it), 0);
	for (int i = 0; i < 5; i++) {
		char key[32];
		snprintf(key, sizeof(key), "3/8.8.8.%d", i);
		assert_int_equal(al_msg_add_del(&m, key), 0);
	}
	text = al_msg_encode(&m, NULL);
	assert_string_equal(text,
		"{\"type\":\"delta\",\"from\":4,\"version\":6,\"set\":["
		"{\"key\":\"5\",\"entry\":5,\"label\":\"1.1.1.1\","
		"\"dst\":\"1.1.1.1/32\"}],"
		"\"del\":[\"3/8.8.8.0\",\"3/8.8.8.1\",\"3/8.8.8.2\",\"3/8.8.8.3\","
		"\"3/8.8.8.4\"]}");
	free(text);
	round_trip(&m, &back);
	assert_int_equal(back.from, 4);
	assert_int_equal(back.n_del, 5);
	assert_string_equal(back.del[4], "3/8.8.8.4");
	al_msg_clear(&back);
	al_msg_clear(&m);
	assert_null(m.set);
}

static void test_ack_error(void **state)
{
	struct al_msg m, back;

	(void)state;
	parse_ok("{\"version\": 12, \"type\": \"ack\"}", &m);
	assert_int_equal(m.type, AL_MSG_ACK);
	assert_int_equal(m.version, 12);
	round_trip(&m, &back);
	al_msg_clear(&back);
	al_msg_clear(&m);

	parse_ok("{\"type\": \"error\", \"version\": 0, \"error\": \"protocol 2 not spoken\"}", &m);
	assert_string_equal(m.error, "protocol 2 not spoken");
	round_trip(&m, &back);
	al_msg_clear(&back);
	al_msg_clear(&m);
}

static void test_bad(void **state)
{
	(void)state;
	parse_bad("", "", "not JSON");
	parse_bad("[]", "", "object");
	parse_bad("{\"type\": \"ack\", \"version\": 1} x", "", "not JSON");
	parse_bad("{\"version\": 1}", "type", "required");
	parse_bad("{\"type\": \"bye\", \"version\": 1}", "type", "unknown message type");
	parse_bad("{\"type\": \"ack\"}", "version", "required");
	parse_bad("{\"type\": \"ack\", \"version\": -1}", "version", "integer from 0");
	parse_bad("{\"type\": \"ack\", \"version\": \"1\"}", "version", "integer");
	parse_bad("{\"type\": \"ack\", \"version\": 1, \"version\": 2}", "", "duplicate");
	parse_bad("{\"type\": \"ack\", \"version\": 1, \"items\": []}", "items",
		"not a member of a ack");
	parse_bad("{\"type\": \"hello\", \"protocol\": 1, \"version\": 0}", "gateway", "required");
	parse_bad("{\"type\": \"hello\", \"protocol\": 0, \"gateway\": \"g\", \"version\": 0}",
		"protocol", "number");
	parse_bad("{\"type\": \"hello\", \"protocol\": 1, \"gateway\": \"g w\", \"version\": 0}",
		"gateway", "letters");
	parse_bad("{\"type\": \"hello\", \"protocol\": 1, \"gateway\": \"\", \"version\": 0}",
		"gateway", "letters");
	parse_bad("{\"type\": \"snapshot\", \"version\": 1}", "items", "required");
	parse_bad("{\"type\": \"snapshot\", \"version\": 1, \"items\": {}}", "items", "array");
	parse_bad("{\"type\": \"snapshot\", \"version\": 1, \"items\": [{\"key\": \"1\", "
		  "\"entry\": 1, \"label\": \"a\", \"dst\": \"1.1.1.1/32\"}, {\"key\": \"2\", "
		  "\"entry\": 2, \"label\": \"a\", \"dst\": \"bad\"}]}",
		"items[1]", "dst: ");
	parse_bad("{\"type\": \"snapshot\", \"version\": 1, \"items\": [{\"key\": \"1\", "
		  "\"entry\": 1, \"label\": \"a\", \"dst\": \"1.1.1.1/32\"}, {\"key\": \"1\", "
		  "\"entry\": 1, \"label\": \"a\", \"dst\": \"1.1.1.1/32\"}]}",
		"items", "more than once");
	parse_bad("{\"type\": \"delta\", \"from\": 1, \"version\": 2, \"set\": []}", "del",
		"required");
	parse_bad("{\"type\": \"delta\", \"from\": 3, \"version\": 2, \"set\": [], \"del\": []}",
		"from", "past");
	parse_bad("{\"type\": \"delta\", \"from\": 1, \"version\": 2, \"set\": [], "
		  "\"del\": [\"1\", 2]}",
		"del[1]", "key");
	parse_bad("{\"type\": \"delta\", \"from\": 1, \"version\": 2, \"set\": [{\"key\": \"1\", "
		  "\"entry\": 1, \"label\": \"a\", \"dst\": \"1.1.1.1/32\"}], \"del\": [\"1\"]}",
		"set", "more than once");
	parse_bad("{\"type\": \"error\", \"version\": 1, \"error\": \"\"}", "error", "reason");
}

/* Not NUL-terminated: the parser reads len bytes only. */
static void test_length(void **state)
{
	static const char text[] = "{\"type\": \"ack\", \"version\": 5}{garbage";
	struct al_error err = { 0 };
	struct al_msg m;
	char *copy;

	(void)state;
	copy = malloc(29);
	memcpy(copy, text, 29);
	assert_int_equal(al_msg_parse(copy, 29, &m, &err), 0);
	assert_int_equal(m.version, 5);
	al_msg_clear(&m);
	assert_int_equal(al_msg_parse(copy, 28, &m, &err), -EINVAL);
	al_msg_clear(&m);
	free(copy);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_snapshot),
		cmocka_unit_test(test_delta),
		cmocka_unit_test(test_ack_error),
		cmocka_unit_test(test_bad),
		cmocka_unit_test(test_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
