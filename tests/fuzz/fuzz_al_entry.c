/*
 * fuzz_al_entry.c - libFuzzer harness for the allowlist's entry parsers (src/allowlist/
 * al_entry.c): an API body (al_entry_from_json()) and a line of a text import
 * (al_entry_from_line()).
 *
 * The first byte picks the parser: even, the rest is a JSON body; odd, the rest is one line
 * (up to its first NUL).  Checked for every input:
 *   - the result is 0 or -EINVAL (-ENODATA too for a line), and an error fills a
 *     NUL-terminated field and a non-empty message;
 *   - an accepted entry has a value, is not a refused destination, keeps its bounds, and
 *     reads back to the same entry (comment and non_deletable included) from its JSON and
 *     from its line;
 *   - its item encodes and parses back with the same key.
 * Any violation aborts.  No side effects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "allowlist/al_entry.h"

#include "fuzz.h"

static void check_error(const struct al_error *err)
{
	CHECK(memchr(err->field, '\0', sizeof(err->field)));
	CHECK(memchr(err->msg, '\0', sizeof(err->msg)));
	CHECK(err->msg[0] != '\0');
}

static void check_same(const struct al_entry *a, const struct al_entry *b)
{
	CHECK(al_entry_same(a, b));
	CHECK(a->non_deletable == b->non_deletable);
	CHECK(!a->comment == !b->comment);
	CHECK(!a->comment || strcmp(a->comment, b->comment) == 0);
}

static void check_entry(const struct al_entry *e)
{
	struct al_error err;
	struct al_entry back;
	struct al_item it, it2;
	json_t *o;
	char *line;

	CHECK(e->value[0] && strlen(e->value) < AL_VALUE_MAX);
	CHECK(e->kind < _AL_KIND_MAX && e->proto < _AL_PROTO_MAX);
	CHECK(e->ports.n <= AL_PORTS_MAX && e->sources.n <= AL_SOURCES_MAX);
	CHECK(!e->comment || strlen(e->comment) <= AL_COMMENT_MAX);
	for (size_t i = 0; i < e->ports.n; i++) {
		CHECK(e->ports.v[i].lo >= 1 && e->ports.v[i].lo <= e->ports.v[i].hi);
		CHECK(e->ports.v[i].hi <= 65535);
		CHECK(i == 0 || e->ports.v[i].lo > e->ports.v[i - 1].hi + 1);
	}
	if (e->kind == AL_IP || e->kind == AL_CIDR)
		CHECK(!al_dst_refused(&e->dst, NULL));

	o = al_entry_to_json(e);
	CHECK(o);
	CHECK(al_entry_from_json(o, &back, &err) == 0);
	check_same(e, &back);
	al_entry_clear(&back);
	json_decref(o);

	line = al_entry_to_line(e);
	CHECK(line);
	CHECK(!strchr(line, '\n'));
	CHECK(al_entry_from_line(line, &back, &err) == 0);
	check_same(e, &back);
	al_entry_clear(&back);
	free(line);

	CHECK(al_entry_copy(e, &back) == 0);
	check_same(e, &back);
	al_entry_clear(&back);

	CHECK(al_item_of_entry(e, &it) == 0);
	/* an item's key names a stored entry: give it an id as the store would */
	it.entry = 1;
	strcpy(it.key, "1");
	o = al_item_to_json(&it);
	CHECK(o);
	CHECK(al_item_from_json(o, &it2, &err) == 0);
	CHECK(strcmp(it.key, it2.key) == 0 && it.kind == it2.kind && it.proto == it2.proto);
	CHECK(it.ports.n == it2.ports.n && it.sources.n == it2.sources.n);
	json_decref(o);
	al_item_clear(&it);
	al_item_clear(&it2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct al_error err;
	struct al_entry e;
	char *text;
	int r;

	if (size < 1)
		return 0;
	memset(&err, 0, sizeof(err));
	if (data[0] % 2 == 0) {
		json_t *o = json_loadb((const char *)data + 1, size - 1,
			JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
		if (!o)
			return 0;
		r = al_entry_from_json(o, &e, &err);
		json_decref(o);
		CHECK(r == 0 || r == -EINVAL);
	} else {
		text = malloc(size); /* the line and a NUL */
		CHECK(text);
		memcpy(text, data + 1, size - 1);
		text[size - 1] = '\0';
		r = al_entry_from_line(text, &e, &err);
		free(text);
		CHECK(r == 0 || r == -EINVAL || r == -ENODATA);
	}
	if (r == -EINVAL)
		check_error(&err);
	if (r == 0)
		check_entry(&e);
	al_entry_clear(&e);
	return 0;
}
