/*
 * fuzz.h - what every libFuzzer harness here shares: the entry point's prototype and CHECK(),
 * which aborts (so that libFuzzer keeps the input) when an invariant is broken; and helpers
 * of the HTTP harnesses.
 */
#ifndef EGRESS_FUZZ_H
#define EGRESS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* A heap copy of exactly n bytes (at least one allocated), so that ASan sees a read past n. */
static inline void *fuzz_dup(const void *data, size_t n)
{
	void *c = malloc(n ? n : 1);

	CHECK(c);
	memcpy(c, data, n);
	return c;
}

/* Every line of h[0..len) ends in CRLF: no NUL, bare CR or bare LF. */
static inline void fuzz_check_crlf(const char *h, size_t len)
{
	CHECK(!memchr(h, '\0', len));
	for (size_t i = 0; i < len; i++) {
		if (h[i] == '\r')
			CHECK(i + 1 < len && h[i + 1] == '\n');
		if (h[i] == '\n')
			CHECK(i > 0 && h[i - 1] == '\r');
	}
}

/* How many lines of the HTTP head h[0..len) start with name ":" (case-insensitive). */
static inline size_t fuzz_count_field(const char *h, size_t len, const char *name)
{
	size_t nl = strlen(name), count = 0;

	for (size_t i = 0; i < len; i++) {
		if (i && h[i - 1] != '\n')
			continue;
		if (len - i > nl && !strncasecmp(h + i, name, nl) && h[i + nl] == ':')
			count++;
	}
	return count;
}

#endif
