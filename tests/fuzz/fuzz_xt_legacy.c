/*
 * fuzz_xt_legacy.c - libFuzzer harness for the reader of the iptables-legacy lines of a
 * gateway backup file (xt_legacy_parse() in src/net/xt_legacy.c).
 *
 * The input is one line.  Checked after each parse:
 *   - the result is 0 or -EBADMSG, with a message exactly on -EBADMSG and a table exactly on 0;
 *   - a parsed table has a family, a name, hooks inside its rules and its entries;
 *   - formatting it and parsing that gives the same table (what we read, we can write).
 * Any violation aborts.  No side effects: no sockets, no files.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "net/xt_legacy.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xt_legacy_table t, again;
	char *err = NULL, *line;
	int r;

	if (size > 1 << 16)
		return 0;
	/* a private copy with nothing after it: the parser must stay inside len */
	line = malloc(size ? size : 1);
	memcpy(line, data, size);
	r = xt_legacy_parse(line, size, &t, &err);
	CHECK(r == 0 || r == -EBADMSG);
	if (r < 0) {
		CHECK(err != NULL && err[0]);
		CHECK(t.entries == NULL);
		free(err);
		free(line);
		return 0;
	}
	CHECK(err == NULL);
	CHECK(t.family == AF_INET || t.family == AF_INET6);
	CHECK(t.name[0] && strlen(t.name) < XT_LEGACY_NAMELEN);
	CHECK(t.size > 0 && t.num_entries > 0 && t.entries);
	for (int h = 0; h < XT_LEGACY_HOOKS; h++)
		if (t.valid_hooks & (1u << h))
			CHECK(t.hook_entry[h] < t.size && t.underflow[h] < t.size);

	char *out = xt_legacy_format(&t);
	CHECK(out != NULL);
	CHECK(xt_legacy_parse(out, strlen(out), &again, &err) == 0);
	CHECK(again.family == t.family && !strcmp(again.name, t.name));
	CHECK(again.size == t.size && again.num_entries == t.num_entries);
	CHECK(!memcmp(again.entries, t.entries, t.size));
	xt_legacy_table_clear(&again);
	xt_legacy_table_clear(&t);
	free(out);
	free(line);
	return 0;
}
