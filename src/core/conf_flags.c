/*
 * conf_flags.c - command-line flags that write through the keyword table.
 *
 * getopt_long_only() is used so that both GNU "--flag" and the single-dash
 * long options of the tools our users come from ("-start-ip 10.0.0.1",
 * "-exclude-reserved-cidrs=false") work as written.  A single-dash word of more
 * than one letter is always a long option: short options are never clustered.  A flag only records
 * (section, key, value); the value is parsed by the same code as the file, in
 * conf_apply_overrides(), so errors read the same.
 *
 * Must not print anything but usage and argument errors, to stderr.
 */
#include <errno.h>
#include <stdbool.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "util.h"

/* getopt ids: command options use their own id; flags use FLAG_BASE + index. */
#define FLAG_BASE 0x10000
#define SET_ID	  0x20000

static const struct conf_section_type *find_type(const struct conf_section_type *const *types,
	size_t n_types, const char *name)
{
	for (size_t i = 0; i < n_types; i++)
		if (streq(types[i]->name, name))
			return types[i];
	return NULL;
}

static const struct conf_key *flag_key(const struct conf_flag *fl,
	const struct conf_section_type *const *types, size_t n_types)
{
	const struct conf_section_type *t = find_type(types, n_types, fl->section);

	if (!t)
		return NULL;
	return conf_key_find(t, fl->key);
}

static void override_add(struct conf_overrides *o, const char *section, const char *name,
	const char *key, const char *value, const char *origin)
{
	struct conf_override *ov;

	o->v = xrealloc(o->v, (o->n + 1) * sizeof(*o->v));
	ov = &o->v[o->n++];
	ov->section = section;
	ov->name = name ? xstrdup(name) : NULL;
	ov->key = key ? xstrdup(key) : NULL;
	ov->value = value ? xstrdup(value) : NULL;
	ov->origin = xstrdup(origin);
	ov->preset = false;
}

void conf_overrides_preset(struct conf_overrides *o, const char *section, const char *name,
	const char *key, const char *value)
{
	override_add(o, section, name, key, value, "default");
	o->v[o->n - 1].preset = true;
}

void conf_overrides_add(struct conf_overrides *o, const char *section, const char *name,
	const char *key, const char *value, const char *origin)
{
	override_add(o, section, name, key, value, origin);
}

void conf_overrides_clear(struct conf_overrides *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->v[i].name);
		free(o->v[i].key);
		free(o->v[i].value);
		free(o->v[i].origin);
	}
	free(o->v);
	o->v = NULL;
	o->n = 0;
}

/* "--set uplink.isp1.weight=3" or "--set global.log_level=debug". */
static int parse_set(const char *arg, const struct conf_section_type *const *types, size_t n_types,
	struct conf_overrides *ret)
{
	char *copy = xstrdup(arg), *eq, *dot1, *dot2 = NULL, *key;
	const struct conf_section_type *t;
	char origin[256];
	int r = -EINVAL;

	eq = strchr(copy, '=');
	dot1 = strchr(copy, '.');
	if (!eq || !dot1 || dot1 > eq)
		goto bad;
	*eq = '\0';
	*dot1 = '\0';
	t = find_type(types, n_types, copy);
	if (!t) {
		fprintf(stderr, "--set %s: unknown section '%s'\n", arg, copy);
		goto out;
	}
	if (t->named) {
		dot2 = strchr(dot1 + 1, '.');
		if (!dot2)
			goto bad;
		*dot2 = '\0';
		key = dot2 + 1;
	} else {
		key = dot1 + 1;
	}
	if (!conf_key_find(t, key)) {
		fprintf(stderr, "--set %s: [%s] has no key '%s'\n", arg, t->name, key);
		goto out;
	}
	snprintf(origin, sizeof(origin), "--set %.*s", (int)(eq - copy), arg);
	override_add(ret, t->name, t->named ? dot1 + 1 : NULL, key, eq + 1, origin);
	r = 0;
	goto out;
bad:
	fprintf(stderr, "--set %s: expected SECTION.KEY=VALUE or SECTION.NAME.KEY=VALUE\n", arg);
out:
	free(copy);
	return r;
}

/*
 * getopt_long_only() takes a single-dash word that names no long option apart as
 * a cluster of short options ("-ddns-hostname" would run as -d -d -n ...) and then
 * names the wrong word in its error.  Refuse such a word, and an unknown "--word",
 * before getopt sees it, as typed and with the closest option.  A word that
 * abbreviates long options is left to getopt.  Returns 0 or -EINVAL.
 */
static int check_long_word(const char *prog, const char *word, const struct option *lo)
{
	bool dashes = word[0] == '-' && word[1] == '-';
	const char *name = word + (dashes ? 2 : 1), *eq = strchr(name, '=');
	size_t len = eq ? (size_t)(eq - name) : strlen(name);
	struct conf_suggest sg;
	char typed[64];

	if (word[0] != '-' || len == 0 || (!dashes && len == 1))
		return 0; /* an operand, "-", "--", or one short option */
	for (const struct option *o = lo; o->name; o++)
		if (!strncmp(o->name, name, len))
			return 0;
	snprintf(typed, sizeof(typed), "%.*s", (int)len, name);
	conf_suggest_init(&sg, typed);
	for (const struct option *o = lo; o->name; o++)
		conf_suggest_add(&sg, o->name);
	if (sg.best)
		fprintf(stderr, "%s: unknown option %s%s (did you mean %s%s?)\n", prog,
			dashes ? "--" : "-", typed, dashes ? "--" : "-", sg.best);
	else
		fprintf(stderr, "%s: unknown option %s%s (see --help)\n", prog, dashes ? "--" : "-",
			typed);
	return -EINVAL;
}

int conf_args_parse(int argc, char **argv, const struct cmd_opt *opts, size_t n_opts,
	const struct conf_flag *flags, size_t n_flags, const struct conf_section_type *const *types,
	size_t n_types, cmd_opt_cb cb, void *userdata, struct conf_overrides *ret)
{
	size_t n = n_opts + n_flags + 1;
	struct option *lo = xcalloc(n + 1, sizeof(*lo));
	char shortopts[128] = "+:";
	size_t so = strlen(shortopts), li = 0;
	const char *prog;
	int r = 0, c;

	for (size_t i = 0; i < n_opts; i++) {
		lo[li++] = (struct option){opts[i].flag, opts[i].has_arg ? required_argument
									 : no_argument,
			NULL, opts[i].id};
		if (opts[i].short_opt && so + 3 < sizeof(shortopts)) {
			shortopts[so++] = (char)opts[i].short_opt;
			if (opts[i].has_arg)
				shortopts[so++] = ':';
		}
	}
	for (size_t i = 0; i < n_flags; i++) {
		const struct conf_key *k = flag_key(&flags[i], types, n_types);
		if (!k) {
			fprintf(stderr, "internal error: flag -%s names unknown key %s.%s\n",
				flags[i].flag, flags[i].section, flags[i].key);
			abort();
		}
		lo[li++] = (struct option){flags[i].flag,
			k->type == CONF_BOOL ? optional_argument : required_argument, NULL,
			FLAG_BASE + (int)i};
		if (flags[i].short_opt && so + 3 < sizeof(shortopts)) {
			shortopts[so++] = (char)flags[i].short_opt;
			if (k->type != CONF_BOOL)
				shortopts[so++] = ':';
		}
	}
	lo[li++] = (struct option){"set", required_argument, NULL, SET_ID};
	shortopts[so] = '\0';

	prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	optind = 1;
	opterr = 0;
	for (;;) {
		/* Nothing is clustered, so each call takes the word at optind (and its value). */
		const char *bad = optind < argc ? argv[optind] : "";

		if (optind < argc && check_long_word(prog, bad, lo) < 0) {
			r = -EINVAL;
			break;
		}
		c = getopt_long_only(argc, argv, shortopts, lo, NULL);
		if (c == -1)
			break;
		if (c == '?') {
			fprintf(stderr, "%s: unknown option %s (see --help)\n", prog, bad);
			r = -EINVAL;
			break;
		}
		if (c == ':') {
			fprintf(stderr, "%s: option %s needs a value\n", prog, bad);
			r = -EINVAL;
			break;
		}
		/* Short options come back as their letter: map them to their id. */
		for (size_t i = 0; i < n_flags && c < 256; i++)
			if (flags[i].short_opt == c)
				c = FLAG_BASE + (int)i;
		for (size_t i = 0; i < n_opts && c < 256; i++)
			if (opts[i].short_opt == c)
				c = opts[i].id;
		if (c == SET_ID) {
			r = parse_set(optarg, types, n_types, ret);
		} else if (c >= FLAG_BASE) {
			const struct conf_flag *fl = &flags[c - FLAG_BASE];
			const struct conf_key *k = flag_key(fl, types, n_types);
			char origin[64];

			snprintf(origin, sizeof(origin), "-%s", fl->flag);
			override_add(ret, fl->section, fl->name, fl->key,
				optarg ? optarg : (k->type == CONF_BOOL ? "true" : ""), origin);
		} else {
			r = cb(c, optarg, userdata);
		}
		if (r < 0)
			break;
	}
	free(lo);
	return r < 0 ? r : optind;
}

int conf_apply_overrides(struct conf *conf, const struct conf_overrides *o,
	struct conf_errors *errs)
{
	size_t before = errs->n;
	char why[512];


	for (size_t i = 0; i < o->n; i++) {
		const struct conf_override *ov = &o->v[i];
		struct conf_section *s;

		s = conf_find(conf, ov->section, ov->name);
		if (!s) {
			if (ov->name) {
				/* A flag naming a section creates it, as a file section would. */
				const char *t = ov->section;
				char text[160];
				snprintf(text, sizeof(text), "[%s %s]\n", t, ov->name);
				if (conf_load_string(conf, "command line", text, errs) < 0)
					continue;
				s = conf_find(conf, t, ov->name);
				free(s->file);
				s->file = NULL;
			} else {
				s = conf_get_unnamed(conf, ov->section);
			}
		}
		if (!ov->value)
			continue;
		const struct conf_key *k = conf_key_find(s->type, ov->key);
		int ki = conf_key_index(s->type, k);
		if (ov->preset) {
			char why2[256];
			if (conf_key_is_set(s, k))
				continue;
			/* a command's default replaces the key's default, even for a list */
			if (conf_type_is_list(k->type) && !(i > 0 && o->v[i - 1].preset &&
				o->v[i - 1].value && !strcmp(o->v[i - 1].section, ov->section) &&
				!strcmp(o->v[i - 1].key, ov->key)))
				conf_value_clear(s, k);
			if (conf_set(s, k, ov->value, why2, sizeof(why2)) < 0)
				abort(); /* presets are ours and must parse */
			continue;
		}
		/* The first flag for a list replaces the file's list; the next ones append
		 * (a key set by a flag has key_line -1). */
		if (conf_type_is_list(k->type) && s->key_line[ki] != -1)
			conf_value_clear(s, k);
		if (conf_set(s, k, ov->value, why, sizeof(why)) < 0) {
			char name[128];
			snprintf(name, sizeof(name), "%s%s%s", ov->section, ov->name ? " " : "",
				ov->name ? ov->name : "");
			struct conf_error_at at = {.section = name, .key = ov->key, .expected = why,
				.seen = ov->value};
			conf_errors_add_at(errs, &at, "%s: %s: expected %s, got \"%s\"",
				o->where ? o->where : "command line", ov->origin, why, ov->value);
			continue;
		}
		s->key_line[ki] = -1;
	}
	return errs->n > before ? -EINVAL : 0;
}

void conf_usage(FILE *f, const char *synopsis, const struct cmd_opt *opts, size_t n_opts,
	const struct conf_flag *flags, size_t n_flags, const struct conf_section_type *const *types,
	size_t n_types)
{
	char left[96];

	fprintf(f, "usage: %s\n\n", synopsis);
	for (size_t i = 0; i < n_opts; i++) {
		int off = 0;
		if (opts[i].short_opt)
			off = snprintf(left, sizeof(left), "-%c, ", opts[i].short_opt);
		snprintf(left + off, sizeof(left) - (size_t)off, "-%s%s%s", opts[i].flag,
			opts[i].arg_name ? " " : "", opts[i].arg_name ? opts[i].arg_name : "");
		fprintf(f, "  %-30s %s\n", left, opts[i].help);
	}
	for (size_t i = 0; i < n_flags; i++) {
		const struct conf_key *k = flag_key(&flags[i], types, n_types);
		int off = 0;
		if (flags[i].short_opt)
			off = snprintf(left, sizeof(left), "-%c, ", flags[i].short_opt);
		snprintf(left + off, sizeof(left) - (size_t)off, "-%s%s", flags[i].flag,
			k->type == CONF_BOOL ? "[=false]" : " VALUE");
		fprintf(f, "  %-30s %s", left, k->help ? k->help : "");
		if (k->def)
			fprintf(f, " (default %s)", k->def);
		fprintf(f, "  [%s] %s\n", flags[i].section, k->name);
	}
	fprintf(f, "  %-30s %s\n", "-set SECTION[.NAME].KEY=VALUE",
		"set any configuration key (repeatable)");
}
