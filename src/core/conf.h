/*
 * conf.h - the configuration engine: keyword tables, the INI file, flags.
 *
 * Every setting of egress is a key in a table (struct conf_key) that names
 * its type, where it lives, its bounds and its default.  The INI file (read
 * with inih) and the command-line flags both write through that table, so a
 * flag is a shortcut for a key, never a second implementation.  The parsed
 * configuration prints back in a normalised form that parses again.
 *
 * A configuration is a set of sections: unnamed ones ([global], [route]),
 * which exist at most once, and named ones ([uplink isp1]).  Each section is
 * a struct that begins with struct conf_section.
 *
 * This file must not know about any module: the tables live in conf_keys.c and in each
 * module's folder (route_conf.c, ...).
 */
#ifndef EGRESS_CONF_H
#define EGRESS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "cidr.h"

enum conf_type {
	CONF_STRING,	/* char *, owned by the section */
	CONF_BOOL,	/* bool: true/false, yes/no, on/off, 1/0 */
	CONF_INT,	/* int within [min, max] */
	CONF_U32,	/* uint32_t within [min, max], decimal or 0x hex (marks, table ids) */
	CONF_DURATION,	/* uint32_t milliseconds: 300ms, 1s, 1.5s, 2m, 1h; a bare number is seconds */
	CONF_ENUM,	/* int index into names[] */
	CONF_IFNAME,	/* char[IFNAMSIZ] */
	CONF_ADDR,	/* struct addr */
	CONF_CIDR_LIST, /* struct cidr_list; repeatable, comma or space separated */
	CONF_ADDR_LIST, /* struct addr_list; like CIDR_LIST; "ADDR@N" with CONF_WEIGHT */
	CONF_RANGE_LIST, /* struct range_list: "200-299, 301" within [min, max] */
	CONF_WORD_LIST, /* struct word_list: names separated by commas or spaces */
	_CONF_TYPE_MAX,
};

extern const char *const conf_type_name[_CONF_TYPE_MAX];

enum conf_key_flag {
	CONF_REQUIRED = 1 << 0,	 /* the section is invalid without it */
	CONF_V4 = 1 << 1,	 /* addresses/prefixes: IPv4 only */
	CONF_V6 = 1 << 2,	 /* addresses/prefixes: IPv6 only */
	CONF_HOSTBITS = 1 << 3,	 /* prefixes: clear host bits instead of refusing them */
	CONF_BARE = 1 << 4,	 /* prefixes: a bare address is a host prefix */
	CONF_DEFAULT = 1 << 5,	 /* prefixes: "default" means 0.0.0.0/0 */
	CONF_WEIGHT = 1 << 6,	 /* address lists: "ADDR@N" gives a weight N within [min, max] */
	CONF_HEX = 1 << 7,	 /* CONF_U32: print in hex (marks, masks) */
	CONF_SECRET = 1 << 8,	 /* a password or key: printed masked (CONF_SECRET_MASK) */
};

struct cidr_list {
	struct cidr *v;
	size_t n;
};

struct waddr {
	struct addr addr;
	int weight; /* 0: not given */
};

struct addr_list {
	struct waddr *v;
	size_t n;
};

struct range {
	uint32_t lo, hi;
};

struct range_list {
	struct range *v;
	size_t n;
};

struct word_list {
	char **v;
	size_t n;
};

/* Is v within one of the ranges? */
bool range_list_contains(const struct range_list *l, uint32_t v);

/* List types: repeatable keys whose values append. */
static inline bool conf_type_is_list(int type)
{
	return type == CONF_CIDR_LIST || type == CONF_ADDR_LIST || type == CONF_RANGE_LIST ||
	       type == CONF_WORD_LIST;
}

struct conf_section;

struct conf_key {
	const char *name;
	enum conf_type type;
	size_t offset; /* of the value in the section struct */
	unsigned flags;
	long long min, max;	  /* CONF_INT, CONF_U32, CONF_DURATION (ms) */
	const char *def;	  /* default as text, parsed like file input; NULL = unset */
	const char *const *names; /* CONF_ENUM: the names, index = value */
	int n_names;
	const char *help; /* one line, for --help and the man page */
	/* NULL, or whether the key means anything in this section (conf_print skips it if not) */
	bool (*relevant)(const struct conf_section *s);
	/*
	 * CONF_SECRET strings that hold more than the secret (a connection string with its
	 * password).  NULL: the whole value is masked.  Else mask() gives the value as shown,
	 * only the secret in it replaced by CONF_SECRET_MASK (a new string the caller frees;
	 * NULL when value cannot be read: then it is masked whole), and unmask() the way back:
	 * posted, shown so and sent back, made whole with the secret of running (NULL when
	 * there is no running value).  A new string, or NULL with *why_ret saying why not.
	 */
	char *(*mask)(const char *value);
	char *(*unmask)(const char *posted, const char *running, const char **why_ret);
};

struct conf;
struct conf_errors;
struct rt_claims;

struct conf_section_type {
	const char *name;
	bool named;
	size_t size; /* of the section struct, which starts with struct conf_section */
	const struct conf_key *keys;
	size_t n_keys;
	/* Cross-key checks after parsing; report with conf_section_error(). */
	void (*validate)(const struct conf *conf, const void *section, struct conf_errors *errs);
	/* After validation: add the sections this one implies (conf_add_generated()), e.g.
	 * [route]'s gateways become uplinks.  Generated sections are validated, not printed. */
	void (*expand)(struct conf *conf, const struct conf_section *s, struct conf_errors *errs);
	/* Once everything else passed, generated sections included: checks that need the
	 * whole expanded configuration, e.g. what every module puts in the kernel. */
	void (*validate_expanded)(const struct conf *conf, const void *section,
		struct conf_errors *errs);
	/* The kernel's routing rules and tables a section of this type has its module use,
	 * each range told to conf_routing_claim() (conf_keys.h); NULL: none. */
	void (*routing_claims)(const struct conf *conf, const void *section,
		struct rt_claims *c);
};

struct conf_section {
	const struct conf_section_type *type;
	char *name;   /* named sections only */
	char *file;   /* where it was defined; NULL when it only holds defaults */
	int line;
	int *key_line; /* per key: line where set in the file, 0 = not set, -1 = set by a flag */
	const struct conf_section *origin; /* generated sections: the section that implied it */
};

/* The configuration: one list of sections per type, in file order. */
struct conf_list {
	struct conf_section **items;
	size_t n;
};

struct conf {
	char *path; /* file it was read from, or NULL */
	const struct conf_section_type *const *types;
	size_t n_types;
	struct conf_list *lists; /* indexed like types */
};

/* What an error is about, as far as it is known (the API answers with it). */
struct conf_error_at {
	const char *file;     /* NULL: not from a file */
	int line;	      /* 0: unknown */
	const char *section;  /* "uplink isp1", "global"; NULL: none or unknown */
	const char *key;      /* NULL */
	const char *expected; /* "an integer from 1 to 256"; NULL */
	const char *seen;     /* the value as given; NULL */
};

/* Errors are collected, not just the first: a user fixes them in one go. */
struct conf_errors {
	char **msgs;
	struct conf_error_at *at; /* per message; its strings are owned by errs */
	size_t n;
};

void conf_errors_add(struct conf_errors *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same, telling what it is about (at's strings are copied; at may be NULL). */
void conf_errors_add_at(struct conf_errors *errs, const struct conf_error_at *at,
	const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Error located at a section (and key, which may be NULL), e.g.
 * "egress.conf:7: [uplink isp1] weight: expected ..., got \"0\"". */
void conf_section_error(struct conf_errors *errs, const struct conf_section *s, const char *key,
	const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void conf_errors_print(const struct conf_errors *errs, FILE *f);
void conf_errors_clear(struct conf_errors *errs);

/* A new configuration over the given section types; unnamed sections that
 * are marked always-present (the first type, [global]) exist with defaults. */
struct conf *conf_new(const struct conf_section_type *const *types, size_t n_types);
void conf_free(struct conf *conf);

/* Read an INI file into conf. Returns 0, or -EINVAL with errors in errs
 * (-errno if the file cannot be read, also reported in errs). */
int conf_load_file(struct conf *conf, const char *path, struct conf_errors *errs);
/* The same from a string; name is used in error messages. */
int conf_load_string(struct conf *conf, const char *name, const char *text,
	struct conf_errors *errs);

/* Run every section's validate hook and the required-key checks. */
int conf_validate(struct conf *conf, struct conf_errors *errs);

/* What -n and the API show of a secret's value. */
#define CONF_SECRET_MASK "********"

/* A secret key's value as -n and the API show it (k has CONF_SECRET): into buf. */
void conf_secret_shown(const struct conf_key *k, const char *value, char *buf, size_t len);

/* Print the normalised configuration: every section, every key that has a
 * value, canonical spelling.  The output parses back to the same config, but for
 * secrets (CONF_SECRET), which it masks. */
void conf_print(const struct conf *conf, FILE *f);

/*
 * A configuration printed by conf_print() and posted back carries CONF_SECRET_MASK for
 * each secret: take such a value as "the running one" and copy it from `from`'s section of
 * the same type and name (from may be NULL: nothing runs).  A key with an unmask hook
 * takes the mask inside its value too (a connection string's password).  A mask where
 * `from` has no value is an error of that key (the mask would otherwise become the
 * password).  Run it before conf_validate().
 */
void conf_keep_secrets(struct conf *conf, const struct conf *from, struct conf_errors *errs);

/*
 * A section implied by origin (see conf_section_type.expand), with defaults.  Returns NULL
 * and reports an error if a section of that type and name exists already.
 */
struct conf_section *conf_add_generated(struct conf *conf, const char *type, const char *name,
	const struct conf_section *origin, struct conf_errors *errs);
/* conf_set() by key name; a failure is an internal error (the caller built the value). */
void conf_set_key(struct conf_section *s, const char *key, const char *value);

/* Lookups. */
struct conf_section *conf_find(const struct conf *conf, const char *type, const char *name);
struct conf_section *conf_get_unnamed(struct conf *conf, const char *type); /* created on demand */
const struct conf_list *conf_sections(const struct conf *conf, const char *type);
const struct conf_key *conf_key_find(const struct conf_section_type *t, const char *name);

/* "Did you mean": feed the candidates of a misspelt word; best is the closest one within
 * two edits, or NULL.  Holds the pointers it is given, owns nothing. */
struct conf_suggest {
	const char *word;
	const char *best;
	unsigned best_d;
};
void conf_suggest_init(struct conf_suggest *s, const char *word);
void conf_suggest_add(struct conf_suggest *s, const char *name);
int conf_key_index(const struct conf_section_type *t, const struct conf_key *k);
bool conf_key_is_set(const struct conf_section *s, const struct conf_key *k);

/*
 * Set one key from text.  On error returns -EINVAL and writes what was
 * expected (e.g. "an integer from 1 to 256") into why.
 */
int conf_set(struct conf_section *s, const struct conf_key *k, const char *value, char *why,
	size_t whylen);
/* Free a key's value (strings, lists) and leave it unset. */
void conf_value_clear(struct conf_section *s, const struct conf_key *k);
/* Format a key's value canonically into buf (for lists: element i). */
int conf_format(const struct conf_section *s, const struct conf_key *k, size_t i, char *buf,
	size_t len);
/* How many values a key has (0 if unset, n for lists). */
size_t conf_value_count(const struct conf_section *s, const struct conf_key *k);

/* Parsers exposed for flags of commands and for tests. */
int conf_parse_duration(const char *s, uint32_t *ret_ms);
int conf_format_duration(uint32_t ms, char *buf, size_t len);
int conf_parse_bool(const char *s, bool *ret);

/*
 * Command-line flags that write through the keyword table.
 *
 * A conf_flag maps "-start-ip" onto a section type (and name, for named
 * sections) and a key.  Bool keys take an optional "=false".  Flags are
 * parsed with getopt_long_only(), so "-flag", "--flag", "-flag=v",
 * "-flag v" all work, as do the original tools' single-dash long options.
 */
struct conf_flag {
	const char *flag;    /* long name without dashes */
	int short_opt;	     /* 0 = none */
	const char *section; /* section type */
	const char *name;    /* section name for named sections, else NULL */
	const char *key;
};

/* Options of a command that are not configuration keys (-c, -n, -h). */
struct cmd_opt {
	const char *flag;
	int short_opt;
	bool has_arg;
	int id; /* passed to the callback */
	const char *arg_name;
	const char *help;
};

struct conf_override {
	const char *section; /* type */
	char *name;	     /* section name or NULL */
	char *key;
	char *value;  /* NULL (presets only): just make sure the section exists */
	char *origin; /* "-log-level" or "--set uplink.isp1.weight", for errors */
	bool preset;  /* a command's default: applies only where the file set nothing */
};

struct conf_overrides {
	struct conf_override *v;
	size_t n;
	const char *where; /* static; NULL: "command line" (errors begin with it) */
};

typedef int (*cmd_opt_cb)(int id, const char *arg, void *userdata);

/*
 * Parse argv.  Command options go to cb (which returns 0 or -EINVAL);
 * configuration flags, and "--set SECTION[.NAME].KEY=VALUE", are appended to
 * *ret.  Returns the index of the first operand, or -EINVAL after printing
 * what was wrong to stderr.  Takes no ownership; *ret is freed with
 * conf_overrides_clear().
 */
int conf_args_parse(int argc, char **argv, const struct cmd_opt *opts, size_t n_opts,
	const struct conf_flag *flags, size_t n_flags, const struct conf_section_type *const *types,
	size_t n_types, cmd_opt_cb cb, void *userdata, struct conf_overrides *ret);
void conf_overrides_clear(struct conf_overrides *o);
/* Add a command's default (e.g. `egressd route` serves metrics on 9090 unless told otherwise);
 * value NULL only makes the section exist.  Add presets before parsing the flags. */
void conf_overrides_preset(struct conf_overrides *o, const char *section, const char *name,
	const char *key, const char *value);

/* Add an override as a flag would (section: a static string, e.g. operands of a command). */
void conf_overrides_add(struct conf_overrides *o, const char *section, const char *name,
	const char *key, const char *value, const char *origin);

/*
 * Apply overrides on top of conf (after the file).  A list key set by a flag
 * replaces the file's list; repeated flags append.  Named sections that do
 * not exist yet are created.  Returns 0 or -EINVAL with errors in errs.
 */
int conf_apply_overrides(struct conf *conf, const struct conf_overrides *o,
	struct conf_errors *errs);

/* --help text from the tables, with each flag's default. */
void conf_usage(FILE *f, const char *synopsis, const struct cmd_opt *opts, size_t n_opts,
	const struct conf_flag *flags, size_t n_flags, const struct conf_section_type *const *types,
	size_t n_types);

#endif
