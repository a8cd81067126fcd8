/*
 * fuzz.h - what every libFuzzer harness here shares: the entry point's prototype and CHECK(),
 * which aborts (so that libFuzzer keeps the input) when an invariant is broken.
 */
#ifndef EGRESS_FUZZ_H
#define EGRESS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__,       \
				#cond);                                                            \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#endif
