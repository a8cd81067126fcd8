/*
 * test_conf.c - the configuration engine: every value type, its bounds and
 * errors, sections, defaults, printing back, flags and overrides.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "conf_keys.h"
#include "ddns_conf.h"
#include "dns_conf.h"
#include "modules.h"
#include "util.h"

/* A section with one key of every type. */
enum color { RED, GREEN, BLUE, _COLOR_MAX };
static const char *const color_name[_COLOR_MAX] = {"red", "green", "blue"};

struct t_sec {
	struct conf_section s;
	char *str;
	bool flag;
	int num;
	uint32_t mark;
	uint32_t period;
	int color;
	char ifname[16];
	struct addr addr;
	struct addr addr4;
	struct cidr_list nets;
	struct cidr_list routes;
};

#define K(f) .offset = offsetof(struct t_sec, f)
static const struct conf_key t_keys[] = {
	{.name = "str", .type = CONF_STRING, K(str)},
	{.name = "flag", .type = CONF_BOOL, K(flag), .def = "false"},
	{.name = "num", .type = CONF_INT, K(num), .min = 1, .max = 256, .def = "1"},
	{.name = "mark", .type = CONF_U32, K(mark), .flags = CONF_HEX, .min = 1, .max = 0xffffffff,
		.def = "0x100"},
	{.name = "period", .type = CONF_DURATION, K(period), .min = 100, .max = 3600000,
		.def = "3s"},
	{.name = "color", .type = CONF_ENUM, K(color), .names = color_name,
		.n_names = _COLOR_MAX, .def = "green"},
	{.name = "ifname", .type = CONF_IFNAME, K(ifname)},
	{.name = "addr", .type = CONF_ADDR, K(addr)},
	{.name = "addr4", .type = CONF_ADDR, K(addr4), .flags = CONF_V4},
	{.name = "nets", .type = CONF_CIDR_LIST, K(nets)},
	{.name = "routes", .type = CONF_CIDR_LIST, K(routes), .flags = CONF_V4 | CONF_DEFAULT,
		.def = "default"},
};

static const struct conf_section_type t_global = {
	.name = "global", .size = sizeof(struct conf_section), .keys = NULL, .n_keys = 0};
static const struct conf_section_type t_type = {
	.name = "thing", .named = true, .size = sizeof(struct t_sec), .keys = t_keys,
	.n_keys = ARRAY_SIZE(t_keys)};
static const struct conf_section_type t_single = {
	.name = "single", .size = sizeof(struct t_sec), .keys = t_keys,
	.n_keys = ARRAY_SIZE(t_keys)};
static const struct conf_section_type *const t_types[] = {&t_global, &t_type, &t_single};

static struct conf *load(const char *text, struct conf_errors *errs, int *r)
{
	struct conf *c = conf_new(t_types, ARRAY_SIZE(t_types));

	*r = conf_load_string(c, "t.conf", text, errs);
	return c;
}

/* Load text that must fail with exactly one error equal to want. */
static void expect_error(const char *text, const char *want)
{
	struct conf_errors errs = {0};
	int r;
	struct conf *c = load(text, &errs, &r);

	assert_int_equal(r, -22);
	assert_int_equal(errs.n, 1);
	if (strcmp(errs.msgs[0], want) != 0)
		fail_msg("got error\n  %s\nwanted\n  %s", errs.msgs[0], want);
	conf_errors_clear(&errs);
	conf_free(c);
}

static struct t_sec *load_ok(struct conf **cp, const char *text)
{
	struct conf_errors errs = {0};
	int r;

	*cp = load(text, &errs, &r);
	if (r != 0)
		fail_msg("unexpected error: %s", errs.n ? errs.msgs[0] : "?");
	return (struct t_sec *)conf_find(*cp, "thing", "a");
}

static void test_defaults(void **state)
{
	struct conf *c;
	struct t_sec *t = load_ok(&c, "[thing a]\nstr = x\n");
	char buf[64];

	(void)state;
	assert_non_null(t);
	assert_string_equal(t->str, "x");
	assert_false(t->flag);
	assert_int_equal(t->num, 1);
	assert_int_equal(t->mark, 0x100);
	assert_int_equal(t->period, 3000);
	assert_int_equal(t->color, GREEN);
	assert_int_equal(t->routes.n, 1);
	cidr_str(&t->routes.v[0], buf, sizeof(buf));
	assert_string_equal(buf, "0.0.0.0/0");
	assert_false(addr_is_set(&t->addr));
	assert_false(conf_key_is_set(&t->s, conf_key_find(&t_type, "num")));
	assert_true(conf_key_is_set(&t->s, conf_key_find(&t_type, "str")));
	conf_free(c);
}

static void test_values(void **state)
{
	struct conf *c;
	struct t_sec *t = load_ok(&c, "[thing a]\n"
				       "flag = Yes\n"
				       "num = 256\n"
				       "mark = 0xff00\n"
				       "period = 1m30s\n"
				       "color = BLUE\n"
				       "ifname = eth0.100\n"
				       "addr = 2001:db8::1\n"
				       "addr4 = 192.0.2.1\n"
				       "nets = 10.0.0.0/8, 2001:db8::/32 192.168.0.0/16\n"
				       "nets = 172.16.0.0/12\n"
				       "routes = 1.0.0.0/8\n");
	char buf[64];

	(void)state;
	assert_true(t->flag);
	assert_int_equal(t->num, 256);
	assert_int_equal(t->mark, 0xff00);
	assert_int_equal(t->period, 90000);
	assert_int_equal(t->color, BLUE);
	assert_string_equal(t->ifname, "eth0.100");
	assert_int_equal(t->addr.family, AF_INET6);
	assert_int_equal(t->addr4.family, AF_INET);
	assert_int_equal(t->nets.n, 4);
	cidr_str(&t->nets.v[3], buf, sizeof(buf));
	assert_string_equal(buf, "172.16.0.0/12");
	/* a list given in the file replaces its default instead of adding to it */
	assert_int_equal(t->routes.n, 1);
	cidr_str(&t->routes.v[0], buf, sizeof(buf));
	assert_string_equal(buf, "1.0.0.0/8");
	conf_free(c);
}

static void test_durations(void **state)
{
	static const struct {
		const char *in;
		int r;
		uint32_t ms;
	} cases[] = {
		{"1s", 0, 1000}, {"300ms", 0, 300}, {"1.5s", 0, 1500}, {"2m", 0, 120000},
		{"1h", 0, 3600000}, {"1m30s", 0, 90000}, {"5", 0, 5000}, {"0", 0, 0},
		{"0.25s", 0, 250}, {"", -22, 0}, {"s", -22, 0}, {"1x", -22, 0},
		{"1.0001s", -33, 0}, {"-1s", -22, 0}, {"1 s", -22, 0}, {"99999999h", -34, 0},
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint32_t ms = 12345;
		int r = conf_parse_duration(cases[i].in, &ms);
		if (r != cases[i].r)
			fail_msg("\"%s\": got %d, wanted %d", cases[i].in, r, cases[i].r);
		if (r == 0)
			assert_int_equal(ms, cases[i].ms);
		else
			assert_int_equal(ms, 12345); /* untouched on error */
	}
	conf_format_duration(1500, buf, sizeof(buf));
	assert_string_equal(buf, "1500ms");
	conf_format_duration(90000, buf, sizeof(buf));
	assert_string_equal(buf, "90s");
	conf_format_duration(120000, buf, sizeof(buf));
	assert_string_equal(buf, "2m");
	conf_format_duration(0, buf, sizeof(buf));
	assert_string_equal(buf, "0s");
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[thing a]\nnum = 0\n",
		"t.conf:2: [thing a] num: expected an integer from 1 to 256, got \"0\"");
	expect_error("[thing a]\nnum = 12abc\n",
		"t.conf:2: [thing a] num: expected an integer from 1 to 256, got \"12abc\"");
	expect_error("[thing a]\n\nmark = 0\n",
		"t.conf:3: [thing a] mark: expected an integer from 1 to 4294967295 (or "
		"0xffffffff), got \"0\"");
	expect_error("[thing a]\nmark = 010\n",
		"t.conf:2: [thing a] mark: expected an integer from 1 to 4294967295 (or "
		"0xffffffff), got \"010\"");
	expect_error("[thing a]\nflag = maybe\n",
		"t.conf:2: [thing a] flag: expected true or false, got \"maybe\"");
	expect_error("[thing a]\nperiod = 50ms\n",
		"t.conf:2: [thing a] period: expected a duration from 100ms to 1h such as 300ms, "
		"2s or 1m, got \"50ms\"");
	expect_error("[thing a]\ncolor = pink\n",
		"t.conf:2: [thing a] color: expected one of red, green, blue, got \"pink\"");
	expect_error("[thing a]\nifname = averyveryverylongname\n",
		"t.conf:2: [thing a] ifname: expected an interface name of 1 to 15 characters "
		"without '/', ':' or spaces, got \"averyveryverylongname\"");
	expect_error("[thing a]\naddr4 = 2001:db8::1\n",
		"t.conf:2: [thing a] addr4: expected an IPv4 address such as 192.0.2.1, got "
		"\"2001:db8::1\"");
	expect_error("[thing a]\nnets = 10.0.0.1/8\n",
		"t.conf:2: [thing a] nets: expected a list of prefixes such as 192.0.2.0/24 "
		"(\"10.0.0.1/8\": host bits set), got \"10.0.0.1/8\"");
	expect_error("[thing a]\nnumb = 3\n",
		"t.conf:2: [thing a]: unknown key 'numb' (did you mean 'num'?)");
	expect_error("[thing a]\nzzzzzz = 3\n", "t.conf:2: [thing a]: unknown key 'zzzzzz'");
	expect_error("[thing a]\nnum = 2\nnum = 3\n",
		"t.conf:3: [thing a] num: set twice (first at line 2)");
	expect_error("[thingy a]\nnum = 2\n",
		"t.conf:1: unknown section [thingy a]: expected one of [global], [thing NAME], "
		"[single]");
	expect_error("[thing]\nnum = 2\n",
		"t.conf:1: section [thing] needs exactly one name, as in [thing NAME]");
	expect_error("[single x]\n", "t.conf:1: section [single x] takes no name, as in [single]");
	expect_error("[thing a/b]\n",
		"t.conf:1: [thing] name: expected 1 to 32 letters, digits, '-', '_' or '.', got "
		"\"a/b\"");
	expect_error("[thing a]\nnum = 2\n[thing a]\n",
		"t.conf:3: section [thing a] is defined twice (first at t.conf:1)");
	expect_error("[thing a]\nthis is not a key\n",
		"t.conf:2: syntax error: expected '[section]', 'key = value' or a comment");
}

static void test_long_line(void **state)
{
	char text[600];
	struct conf_errors errs = {0};
	int r;

	(void)state;
	snprintf(text, sizeof(text), "[thing a]\nstr = %0300d\nnum = 2\n", 7);
	struct conf *c = load(text, &errs, &r);
	assert_int_equal(r, -22);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msgs[0], "t.conf:2: line longer than"));
	/* the next line is still read as its own line */
	struct t_sec *t = (struct t_sec *)conf_find(c, "thing", "a");
	assert_int_equal(t->num, 2);
	conf_errors_clear(&errs);
	conf_free(c);
}

static void test_errors_collected(void **state)
{
	struct conf_errors errs = {0};
	int r;

	(void)state;
	struct conf *c = load("[thing a]\nnum = 0\ncolor = pink\n[nope]\nx = 1\n[thing b]\n"
			      "flag = 2\n",
		&errs, &r);
	assert_int_equal(r, -22);
	/* one per bad line; keys under the refused [nope] are not reported again */
	assert_int_equal(errs.n, 4);
	assert_non_null(strstr(errs.msgs[3], "t.conf:7: [thing b] flag"));
	conf_errors_clear(&errs);
	conf_free(c);
}

static void test_empty_section_exists(void **state)
{
	struct conf *c;

	(void)state;
	load_ok(&c, "[single]\n[thing a]\n");
	assert_non_null(conf_find(c, "single", NULL));
	assert_non_null(conf_find(c, "thing", "a"));
	assert_null(conf_find(c, "thing", "b"));
	conf_free(c);
}

static void test_print_roundtrip(void **state)
{
	struct conf *c, *c2;
	char *out1 = NULL, *out2 = NULL;
	size_t len1, len2;
	FILE *f;

	(void)state;
	load_ok(&c, "; comment\n[thing a]\nstr = hello world\nperiod = 1500ms\nmark = 255\n"
		    "nets = 10.0.0.0/8 2001:db8::/32\naddr = 2001:DB8:0::1\n[single]\n");
	f = open_memstream(&out1, &len1);
	conf_print(c, f);
	fclose(f);
	assert_non_null(strstr(out1, "[thing a]\nstr = hello world\nflag = false\nnum = 1\n"
				     "mark = 0xff\nperiod = 1500ms\ncolor = green\n"
				     "addr = 2001:db8::1\nnets = 10.0.0.0/8\nnets = 2001:db8::/32\n"
				     "routes = 0.0.0.0/0\n"));
	assert_non_null(strstr(out1, "[single]\n"));
	load_ok(&c2, out1);
	f = open_memstream(&out2, &len2);
	conf_print(c2, f);
	fclose(f);
	assert_string_equal(out1, out2);
	free(out1);
	free(out2);
	conf_free(c);
	conf_free(c2);
}

static void test_validate_required(void **state)
{
	static const struct conf_key req_keys[] = {
		{.name = "need", .type = CONF_STRING, .offset = offsetof(struct t_sec, str),
			.flags = CONF_REQUIRED},
	};
	static const struct conf_section_type req = {.name = "req", .named = true,
		.size = sizeof(struct t_sec), .keys = req_keys, .n_keys = 1};
	static const struct conf_section_type *const types[] = {&t_global, &req};
	struct conf *c = conf_new(types, 2);
	struct conf_errors errs = {0};

	(void)state;
	assert_int_equal(conf_load_string(c, "r.conf", "\n[req x]\n", &errs), 0);
	assert_int_equal(conf_validate(c, &errs), -22);
	assert_int_equal(errs.n, 1);
	assert_string_equal(errs.msgs[0], "r.conf:2: [req x]: missing required key 'need'");
	conf_errors_clear(&errs);
	conf_free(c);
}

/* What each error is about, for the API: file, line, section, key, expected, seen. */
static void test_error_details(void **state)
{
	struct conf_errors errs = {0};
	struct conf_overrides o = {.where = "api"};
	int r;

	(void)state;
	struct conf *c = load("[thing a]\nnum = 999\nbogus = 1\n[nope]\n", &errs, &r);
	assert_int_equal(r, -22);
	assert_int_equal(errs.n, 3);
	assert_string_equal(errs.at[0].file, "t.conf");
	assert_int_equal(errs.at[0].line, 2);
	assert_string_equal(errs.at[0].section, "thing a");
	assert_string_equal(errs.at[0].key, "num");
	assert_string_equal(errs.at[0].expected, "an integer from 1 to 256");
	assert_string_equal(errs.at[0].seen, "999");
	assert_int_equal(errs.at[1].line, 3); /* an unknown key: no value expected */
	assert_string_equal(errs.at[1].key, "bogus");
	assert_null(errs.at[1].expected);
	assert_int_equal(errs.at[2].line, 4); /* an unknown section: a line, no key */
	assert_null(errs.at[2].section);
	assert_null(errs.at[2].key);
	conf_errors_clear(&errs);
	assert_int_equal(errs.n, 0);
	conf_free(c);

	/* a section's own check names its line and key */
	struct conf_section_type req = t_type;
	static const struct conf_key need[] = {
		{.name = "need", .type = CONF_STRING, .offset = offsetof(struct t_sec, str),
			.flags = CONF_REQUIRED},
	};
	req.keys = need;
	req.n_keys = 1;
	const struct conf_section_type *const types[] = {&t_global, &req};
	c = conf_new(types, 2);
	assert_int_equal(conf_load_string(c, "r.conf", "\n\n[thing x]\n", &errs), 0);
	assert_int_equal(conf_validate(c, &errs), -22);
	assert_int_equal(errs.at[0].line, 3);
	assert_string_equal(errs.at[0].section, "thing x");
	conf_errors_clear(&errs);
	conf_free(c);

	/* overrides: no file, where they came from begins the message */
	conf_overrides_add(&o, "thing", "a", "num", "0", "uplink.a.num");
	c = conf_new(t_types, ARRAY_SIZE(t_types));
	assert_int_equal(conf_apply_overrides(c, &o, &errs), -22);
	assert_string_equal(errs.msgs[0],
		"api: uplink.a.num: expected an integer from 1 to 256, got \"0\"");
	assert_null(errs.at[0].file);
	assert_int_equal(errs.at[0].line, 0);
	assert_string_equal(errs.at[0].section, "thing a");
	assert_string_equal(errs.at[0].key, "num");
	assert_string_equal(errs.at[0].seen, "0");
	conf_errors_clear(&errs);
	conf_overrides_clear(&o);
	conf_free(c);
}

/* ------------------------------------------------------------ flags */

static const struct conf_flag t_flags[] = {
	{"num", 'N', "single", NULL, "num"},
	{"flag", 0, "single", NULL, "flag"},
	{"route", 0, "single", NULL, "routes"},
	{"period", 0, "single", NULL, "period"},
};

enum { OPT_X = 300 };
static const struct cmd_opt t_opts[] = {
	{"x", 'x', true, OPT_X, "ARG", "an option of the command"},
};

static int t_opt_cb(int id, const char *arg, void *userdata)
{
	assert_int_equal(id, OPT_X);
	*(const char **)userdata = arg;
	return 0;
}

static int parse_args(int argc, char **argv, struct conf_overrides *o, const char **x)
{
	return conf_args_parse(argc, argv, t_opts, ARRAY_SIZE(t_opts), t_flags,
		ARRAY_SIZE(t_flags), t_types, ARRAY_SIZE(t_types), t_opt_cb, x, o);
}

static void test_flags(void **state)
{
	char *argv[] = {"prog", "-num", "7", "--flag", "-route=1.0.0.0/8", "-route",
		"2.0.0.0/8", "-x", "hello", "-period=500ms", "--set", "thing.a.color=red",
		"operand"};
	struct conf_overrides o = {0};
	struct conf_errors errs = {0};
	const char *x = NULL;
	struct conf *c;
	int r;

	(void)state;
	r = parse_args(ARRAY_SIZE(argv), argv, &o, &x);
	assert_int_equal(r, 12); /* index of "operand" */
	assert_string_equal(x, "hello");
	load_ok(&c, "[single]\nnum = 3\nroutes = 9.0.0.0/8\n[thing a]\n");
	assert_int_equal(conf_apply_overrides(c, &o, &errs), 0);
	struct t_sec *s = (struct t_sec *)conf_find(c, "single", NULL);
	assert_int_equal(s->num, 7); /* flag wins over the file */
	assert_true(s->flag);
	assert_int_equal(s->period, 500);
	/* the flags' list replaces the file's, repeated flags append */
	assert_int_equal(s->routes.n, 2);
	assert_int_equal(((struct t_sec *)conf_find(c, "thing", "a"))->color, RED);
	conf_overrides_clear(&o);
	conf_free(c);

	/* bool with =false, and a short option */
	char *argv2[] = {"prog", "-flag=false", "-N", "9"};
	c = conf_new(t_types, ARRAY_SIZE(t_types));
	assert_int_equal(parse_args(ARRAY_SIZE(argv2), argv2, &o, &x), 4);
	assert_int_equal(conf_apply_overrides(c, &o, &errs), 0);
	s = (struct t_sec *)conf_find(c, "single", NULL);
	assert_false(s->flag);
	assert_int_equal(s->num, 9);
	conf_overrides_clear(&o);
	conf_free(c);
}

static void test_flag_errors(void **state)
{
	char *bad_value[] = {"prog", "-num", "999"};
	char *unknown[] = {"prog", "-bogus"};
	char *missing[] = {"prog", "-num"};
	char *bad_set[] = {"prog", "--set", "thing.color=red"};
	struct conf_overrides o = {0};
	struct conf_errors errs = {0};
	const char *x;
	struct conf *c;

	(void)state;
	assert_int_equal(parse_args(3, bad_value, &o, &x), 3);
	c = conf_new(t_types, ARRAY_SIZE(t_types));
	assert_int_equal(conf_apply_overrides(c, &o, &errs), -22);
	assert_string_equal(errs.msgs[0],
		"command line: -num: expected an integer from 1 to 256, got \"999\"");
	/* nothing was changed by the refused value */
	assert_int_equal(((struct t_sec *)conf_find(c, "single", NULL))->num, 1);
	conf_errors_clear(&errs);
	conf_overrides_clear(&o);
	conf_free(c);

	assert_int_equal(parse_args(2, unknown, &o, &x), -22);
	assert_int_equal(parse_args(2, missing, &o, &x), -22);
	assert_int_equal(parse_args(3, bad_set, &o, &x), -22);
	assert_int_equal(o.n, 0);
}

/* What parse_args() prints to stderr for argv; its result in *r.  The caller frees. */
static char *parse_args_err(int argc, char **argv, struct conf_overrides *o, int *r)
{
	FILE *saved = stderr;
	const char *x = NULL;
	char *out = NULL;
	size_t len = 0;

	stderr = open_memstream(&out, &len);
	assert_non_null(stderr);
	*r = parse_args(argc, argv, o, &x);
	fclose(stderr);
	stderr = saved;
	return out;
}

/* A single-dash word that names no flag is refused as typed, never taken apart as short
 * options (-N and -x take values, so "-Nope" would have set num to "ope"). */
static void test_flag_unknown_word(void **state)
{
	char *cluster[] = {"prog", "-num", "7", "-Nope", "3"};
	char *with_value[] = {"prog", "-xylophone", "1"};
	char *typo[] = {"prog", "-nmu=4"};
	char *dashes[] = {"prog", "--perod", "1s"};
	char *abbrev[] = {"prog", "-peri", "1s", "-N", "2"};
	struct conf_overrides o = {0};
	char *err;
	int r;

	(void)state;
	err = parse_args_err(ARRAY_SIZE(cluster), cluster, &o, &r);
	assert_int_equal(r, -22);
	assert_string_equal(err, "prog: unknown option -Nope (see --help)\n");
	free(err);
	err = parse_args_err(ARRAY_SIZE(with_value), with_value, &o, &r);
	assert_int_equal(r, -22);
	assert_string_equal(err, "prog: unknown option -xylophone (see --help)\n");
	free(err);
	err = parse_args_err(ARRAY_SIZE(typo), typo, &o, &r);
	assert_int_equal(r, -22);
	assert_string_equal(err, "prog: unknown option -nmu (did you mean -num?)\n");
	free(err);
	err = parse_args_err(ARRAY_SIZE(dashes), dashes, &o, &r);
	assert_int_equal(r, -22);
	assert_string_equal(err, "prog: unknown option --perod (did you mean --period?)\n");
	free(err);
	/* only the first flag was taken before the refusal */
	assert_int_equal(o.n, 1);
	conf_overrides_clear(&o);

	/* abbreviations of a long option and single short options still work */
	err = parse_args_err(ARRAY_SIZE(abbrev), abbrev, &o, &r);
	assert_int_equal(r, 5);
	assert_string_equal(err, "");
	free(err);
	assert_int_equal(o.n, 2);
	assert_string_equal(o.v[0].key, "period");
	assert_string_equal(o.v[1].value, "2");
	conf_overrides_clear(&o);
}

/* An egress.conf that must load and validate. */
static struct conf *egress_ok(const char *text)
{
	struct conf_errors errs = {0};
	struct conf *c = egress_conf_new();

	assert_int_equal(conf_load_string(c, "e.conf", text, &errs), 0);
	assert_int_equal(conf_validate(c, &errs), 0);
	return c;
}

/*
 * What -n and GET /api/config print masks each secret; posted back, the mask keeps the
 * running value instead of becoming the password, and without a running value it is an
 * error naming the key.
 */
static void test_secret_mask_round_trip(void **state)
{
	struct conf_errors errs = {0};
	struct conf *running = egress_conf_new(), *posted = egress_conf_new();
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	(void)state;
	assert_int_equal(conf_load_string(running, "e.conf",
				 "[ddns]\nprovider = dynudns\nhostname = gw.example.net\n"
				 "password = s3cret\n",
				 &errs),
		0);
	conf_print(running, f);
	fclose(f);
	assert_null(strstr(text, "s3cret"));
	assert_non_null(strstr(text, "password = " CONF_SECRET_MASK "\n"));

	assert_int_equal(conf_load_string(posted, "posted", text, &errs), 0);
	conf_keep_secrets(posted, running, &errs);
	assert_int_equal(errs.n, 0);
	assert_string_equal(conf_ddns(posted)->password, "s3cret");
	conf_free(posted);

	/* nothing running to keep: the mask is refused, not taken as the password */
	posted = egress_conf_new();
	assert_int_equal(conf_load_string(posted, "posted", text, &errs), 0);
	conf_keep_secrets(posted, NULL, &errs);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.msgs[0], "[ddns] password: expected the secret itself"));
	conf_errors_clear(&errs);
	conf_free(posted);
	conf_free(running);
	free(text);
}

#define RELOAD_CONF(balance_base, proxy_base)                                                \
	"[balance]\nlan = lan0\ntable_base = " balance_base "\n"                                \
	"[policy all]\nmember = a, b\n"                                                         \
	"[uplink a]\ninterface = isp1\nsource = 192.0.2.10\n"                                   \
	"[uplink b]\ninterface = isp2\nsource = 192.0.2.11\n"                                   \
	"[proxy]\nport = 1080\ntable_base = " proxy_base "\n"

/* A reload must not hand a routing range from one running module to another. */
static void test_reload_ranges(void **state)
{
	struct conf *running = egress_ok(RELOAD_CONF("4600", "5000"));
	struct conf *swap = egress_ok(RELOAD_CONF("5000", "4600"));
	struct conf *onto = egress_ok(RELOAD_CONF("6000", "4601"));
	struct conf *own = egress_ok(RELOAD_CONF("4601", "4990"));
	struct conf_errors errs = {0};

	(void)state;
	assert_int_equal(egress_conf_check_reload(running, swap, &errs), -22);
	assert_int_equal(errs.n, 2);
	assert_string_equal(errs.msgs[0],
		"e.conf:3: [balance] table_base: routing tables 5000-5001 overlap those [proxy] "
		"table_base (5000-5001) holds in the running configuration: a reload cannot hand "
		"a range from one module to another (move it in two reloads, or restart)");
	assert_string_equal(errs.msgs[1],
		"e.conf:14: [proxy] table_base: routing tables 4600-4601 overlap those [balance] "
		"table_base (4600-4601) holds in the running configuration: a reload cannot hand "
		"a range from one module to another (move it in two reloads, or restart)");
	conf_errors_clear(&errs);
	/* one table onto another's old range is enough, even when the old owner moves away */
	assert_int_equal(egress_conf_check_reload(running, onto, &errs), -22);
	assert_int_equal(errs.n, 1);
	conf_errors_clear(&errs);
	/* a module moving inside its own old range, or to free tables, is fine */
	assert_int_equal(egress_conf_check_reload(running, own, &errs), 0);
	assert_int_equal(egress_conf_check_reload(running, running, &errs), 0);
	assert_int_equal(errs.n, 0);
	/* in two reloads: the old owner moves away, then the other takes its old range */
	struct conf *away = egress_ok(RELOAD_CONF("6000", "5000"));
	struct conf *then = egress_ok(RELOAD_CONF("6000", "4600"));
	assert_int_equal(egress_conf_check_reload(running, away, &errs), 0);
	assert_int_equal(egress_conf_check_reload(away, then, &errs), 0);
	assert_int_equal(errs.n, 0);
	conf_free(away);
	conf_free(then);
	conf_free(running);
	conf_free(swap);
	conf_free(onto);
	conf_free(own);
}

static void test_egress_uplink(void **state)
{
	struct conf_errors errs = {0};
	struct conf *c = egress_conf_new();

	(void)state;
	assert_int_equal(conf_load_string(c, "e.conf",
				 "log_level = debug\n"
				 "[uplink a]\ninterface = eth0\ngateway = 192.0.2.1\nweight = 3\n"
				 "[uplink b]\nweight = 2\n"
				 "[uplink c]\ngateway = 192.0.2.1\nsource = 2001:db8::2\n"
				 "[uplink d]\ngateway = fe80::1\n",
				 &errs),
		0);
	assert_int_equal(conf_global(c)->log_level, LOG_LEVEL_DEBUG);
	assert_int_equal(conf_n_uplinks(c), 4);
	assert_int_equal(conf_uplink_at(c, 0)->weight, 3);
	assert_int_equal(conf_validate(c, &errs), -22);
	assert_int_equal(errs.n, 3);
	assert_string_equal(errs.msgs[0], "e.conf:6: [uplink b]: an uplink needs at least one of "
					  "'interface', 'gateway', 'source' or 'tunnel'");
	assert_string_equal(errs.msgs[1],
		"e.conf:10: [uplink c] source: expected an address of the gateway's family "
		"(gateway 192.0.2.1), got \"2001:db8::2\"");
	assert_string_equal(errs.msgs[2],
		"e.conf:12: [uplink d] gateway: a link-local gateway needs 'interface' to say "
		"which link");
	conf_errors_clear(&errs);
	conf_free(c);
}

/* Gateway mode's implied DNS forwarder serves the transparent proxy's clients: it takes
 * [proxy] allow; a [dns] section of its own keeps its own list. */
static void test_gateway_dns_allow(void **state)
{
	static const char *const texts[] = {
		"[proxy]\nallow = local 203.0.113.0/24\ndispatch = 192.0.2.1\n"
		"[gateway]\nsubnet = 10.0.0.0/24\n",
		"[proxy]\nallow = local 203.0.113.0/24\ndispatch = 192.0.2.1\n"
		"[gateway]\nsubnet = 10.0.0.0/24\n"
		"[dns]\naddress = ::\nport = 5353\nupstream = 192.0.2.53\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(texts); i++) {
		struct conf_errors errs = {0};
		struct conf *c = egress_conf_new();
		const struct conf_dns *d;

		assert_int_equal(conf_load_string(c, "g.conf", texts[i], &errs), 0);
		assert_int_equal(conf_validate(c, &errs), 0);
		d = conf_dns(c);
		assert_non_null(d);
		assert_int_equal(d->allow.n, i == 0 ? 2 : 1);
		assert_string_equal(d->allow.v[0], "local");
		if (i == 0)
			assert_string_equal(d->allow.v[1], "203.0.113.0/24");
		conf_free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_secret_mask_round_trip),
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_errors_collected),
		cmocka_unit_test(test_empty_section_exists),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_validate_required),
		cmocka_unit_test(test_error_details),
		cmocka_unit_test(test_flags),
		cmocka_unit_test(test_flag_errors),
		cmocka_unit_test(test_flag_unknown_word),
		cmocka_unit_test(test_reload_ranges),
		cmocka_unit_test(test_egress_uplink),
		cmocka_unit_test(test_gateway_dns_allow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
