/*
 * egress-server - the allowlist's server: its API and page, its store, its resolver and
 * the gateways' WebSocket hub.
 *
 *   egress-server [-d] [-v] [-server-conf-path FILE] [flags]    run
 *   egress-server -n [-server-conf-path FILE] [flags]           check the configuration,
 *                                                               print it normalised
 *
 * -server-conf-path is the dynamic egress proxy's flag; -c is the same.  main() only
 * parses the command line; the server lives in src/server/server.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "server.h"
#include "server_conf.h"
#include "server_main.h"
#include "util.h"

#define DEFAULT_CONF EGRESS_SYSCONFDIR "/egress/egress-server.conf"

enum {
	OPT_CONF = 256,
	OPT_CHECK,
	OPT_FOREGROUND,
	OPT_VERBOSE,
	OPT_VERSION,
	OPT_HELP,
};

static const struct cmd_opt opts[] = {
	{"server-conf-path", 'c', true, OPT_CONF, "FILE",
		"configuration file (default " DEFAULT_CONF ")"},
	{"check", 'n', false, OPT_CHECK, NULL,
		"check the configuration, print it normalised and exit"},
	{"foreground", 'd', false, OPT_FOREGROUND, NULL, "log to stderr instead of syslog"},
	{"verbose", 'v', false, OPT_VERBOSE, NULL, "log debug messages"},
	{"version", 'V', false, OPT_VERSION, NULL, "print the version and exit"},
	{"help", 'h', false, OPT_HELP, NULL, "show this help"},
};

static const struct conf_flag flags[] = {
	{"log-level", 0, "server", NULL, "log_level"},
	{"name", 0, "server", NULL, "name"},
};

struct args {
	const char *conf_path;
	bool conf_given;
	bool check;
	bool foreground;
	bool verbose;
};

static void usage(FILE *f)
{
	conf_usage(f, "egress-server [-d] [-v] [-n] [-server-conf-path FILE] [flags]", opts,
		ARRAY_SIZE(opts), flags, ARRAY_SIZE(flags), server_conf_types,
		n_server_conf_types);
}

static int opt_cb(int id, const char *arg, void *userdata)
{
	struct args *a = userdata;

	switch (id) {
	case OPT_CONF:
		a->conf_path = arg;
		a->conf_given = true;
		return 0;
	case OPT_CHECK:
		a->check = true;
		return 0;
	case OPT_FOREGROUND:
		a->foreground = true;
		return 0;
	case OPT_VERBOSE:
		a->verbose = true;
		return 0;
	case OPT_VERSION:
		printf("egress-server %s\n", EGRESS_VERSION);
		exit(0);
	case OPT_HELP:
		usage(stdout);
		exit(0);
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct conf_overrides o = {0};
	struct args a = {.conf_path = DEFAULT_CONF};
	struct conf_errors errs = {0};
	struct conf *conf;
	int r, status;

	r = conf_args_parse(argc, argv, opts, ARRAY_SIZE(opts), flags, ARRAY_SIZE(flags),
		server_conf_types, n_server_conf_types, opt_cb, &a, &o);
	if (r < 0) {
		status = 2;
		goto out;
	}
	if (r < argc) {
		fprintf(stderr, "egress-server: unexpected argument '%s' (see --help)\n", argv[r]);
		status = 2;
		goto out;
	}
	/* Without -server-conf-path, a missing default file means "defaults and flags only". */
	if (!a.conf_given && access(a.conf_path, F_OK) < 0 && errno == ENOENT)
		a.conf_path = NULL;
	conf = server_conf_read(a.conf_path, &o, NULL, &errs);
	if (!conf) {
		conf_errors_print(&errs, stderr);
		fprintf(stderr, "egress-server: %zu error%s in the configuration\n", errs.n,
			errs.n == 1 ? "" : "s");
		status = 1;
		goto out;
	}
	if (a.check) {
		conf_print(conf, stdout);
		conf_free(conf);
		status = 0;
		goto out;
	}
	log_init("egress-server", a.foreground || isatty(STDERR_FILENO),
		a.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	status = server_run(&(struct server_opts){.conf_path = a.conf_path, .overrides = &o,
				    .log_level_forced = a.verbose},
		conf);
out:
	conf_errors_clear(&errs);
	conf_overrides_clear(&o);
	return status;
}
