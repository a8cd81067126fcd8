/*
 * fuzz_conf.c - libFuzzer harness for the configuration parser.
 *
 * The input is an egress.conf.  Whatever parses and validates must print to
 * a text that parses again to the same printout (the -n round trip).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf_keys.h"
#include "log.h"
#include "modules.h"

#include "fuzz.h"

static char *print(const struct conf *c)
{
	char *out = NULL;
	size_t len;
	FILE *f = open_memstream(&out, &len);

	conf_print(c, f);
	fclose(f);
	return out;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf_errors errs = {0};
	char *text = malloc(size + 1);

	if (size > 1 << 16)
		goto out;
	memcpy(text, data, size);
	text[size] = '\0';
	struct conf *c = egress_conf_new();
	if (conf_load_string(c, "fuzz.conf", text, &errs) == 0 && conf_validate(c, &errs) == 0) {
		char *once = print(c);
		struct conf *c2 = egress_conf_new();
		if (conf_load_string(c2, "again.conf", once, &errs) != 0 ||
			conf_validate(c2, &errs) != 0) {
			fprintf(stderr, "normalised output does not parse:\n%s\n%s\n", once,
				errs.n ? errs.msgs[0] : "");
			abort();
		}
		char *twice = print(c2);
		if (strcmp(once, twice) != 0) {
			fprintf(stderr, "round trip differs:\n%s\n---\n%s\n", once, twice);
			abort();
		}
		free(once);
		free(twice);
		conf_free(c2);
	}
	conf_free(c);
out:
	conf_errors_clear(&errs);
	free(text);
	return 0;
}
