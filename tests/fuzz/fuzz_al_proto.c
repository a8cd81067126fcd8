/*
 * fuzz_al_proto.c - libFuzzer harness for the allowlist protocol's message parser
 * (al_msg_parse() in src/allowlist/al_proto.c), fed what a hub or an agent receives: one
 * WebSocket text message, in a heap buffer of exactly its size (not NUL-terminated).
 *
 * Checked for every input: the result is 0 or -EINVAL, and an error fills a NUL-terminated
 * field and a non-empty message; an accepted message encodes, parses back, and encodes to
 * the same text; its keys are valid.  Any violation aborts.  No side effects.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "allowlist/al_proto.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct al_msg m, back;
	struct al_error err;
	char *buf = fuzz_dup(data, size), *text, *again;
	size_t len, len2;
	int r;

	memset(&err, 0, sizeof(err));
	r = al_msg_parse(buf, size, &m, &err);
	free(buf);
	CHECK(r == 0 || r == -EINVAL);
	if (r < 0) {
		CHECK(memchr(err.field, '\0', sizeof(err.field)));
		CHECK(memchr(err.msg, '\0', sizeof(err.msg)));
		CHECK(err.msg[0] != '\0');
		al_msg_clear(&m);
		return 0;
	}
	CHECK(m.type < _AL_MSG_MAX);
	for (size_t i = 0; i < m.n_set; i++)
		CHECK(al_item_key_valid(m.set[i].key));
	for (size_t i = 0; i < m.n_del; i++)
		CHECK(al_item_key_valid(m.del[i]));
	text = al_msg_encode(&m, &len);
	CHECK(text && len == strlen(text));
	CHECK(al_msg_parse(text, len, &back, &err) == 0);
	again = al_msg_encode(&back, &len2);
	CHECK(again && len2 == len && memcmp(text, again, len) == 0);
	free(text);
	free(again);
	al_msg_clear(&back);
	al_msg_clear(&m);
	return 0;
}
