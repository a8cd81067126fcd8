/*
 * egressd - the Egress gateway daemon.
 *
 *   egressd [-d] [-v] [-c FILE] [flags]     run
 *   egressd -n [-c FILE] [flags]            check the configuration, print it normalised
 *   egressd route [options] [flags]         the route module alone, with gateway-route-manager's
 *                                           flags (-start-ip, -end-ip, -port, ...)
 *
 * main() only parses the command line; the daemon lives in src/core/daemon.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf_keys.h"
#include "daemon.h"
#include "log.h"
#include "util.h"

#define DEFAULT_CONF EGRESS_SYSCONFDIR "/egress/egress.conf"

enum {
	OPT_CONF = 256,
	OPT_CHECK,
	OPT_FOREGROUND,
	OPT_VERBOSE,
	OPT_VERSION,
	OPT_HELP,
};

static const struct cmd_opt opts[] = {
	{"config", 'c', true, OPT_CONF, "FILE", "configuration file (default " DEFAULT_CONF ")"},
	{"check", 'n', false, OPT_CHECK, NULL,
		"check the configuration, print it normalised and exit"},
	{"foreground", 'd', false, OPT_FOREGROUND, NULL, "log to stderr instead of syslog"},
	{"verbose", 'v', false, OPT_VERBOSE, NULL, "log debug messages"},
	{"version", 'V', false, OPT_VERSION, NULL, "print the version and exit"},
	{"help", 'h', false, OPT_HELP, NULL, "show this help"},
};

static const struct conf_flag flags[] = {
	{"log-level", 0, "global", NULL, "log_level"},
	{"metrics-port", 0, "global", NULL, "metrics_port"},
};

/* gateway-route-manager's flags, with its names and defaults, plus ours. */
static const struct conf_flag route_flags[] = {
	{"start-ip", 0, "route", NULL, "start_ip"},
	{"end-ip", 0, "route", NULL, "end_ip"},
	{"port", 0, "route", NULL, "port"},
	{"path", 0, "route", NULL, "path"},
	{"scheme", 0, "route", NULL, "scheme"},
	{"timeout", 0, "route", NULL, "timeout"},
	{"check-period", 0, "route", NULL, "check_period"},
	{"route", 0, "route", NULL, "route"},
	{"exclude-cidr", 0, "route", NULL, "exclude_cidr"},
	{"exclude-reserved-cidrs", 0, "route", NULL, "exclude_reserved_cidrs"},
	{"metrics-port", 0, "global", NULL, "metrics_port"},
	{"log-level", 0, "global", NULL, "log_level"},
	{"gateway", 0, "route", NULL, "gateway"},
	{"iptables-gateway", 0, "route", NULL, "iptables_gateway"},
	{"host", 0, "route", NULL, "host"},
	{"tls-verify", 0, "route", NULL, "tls_verify"},
	{"fall", 0, "route", NULL, "fall"},
	{"rise", 0, "route", NULL, "rise"},
	{"fail", 0, "route", NULL, "fail"},
	{"keep-routes", 0, "route", NULL, "keep_routes"},
	{"table", 0, "route", NULL, "table"},
	{"rule-priority", 0, "route", NULL, "rule_priority"},
	{"resilient", 0, "route", NULL, "resilient"},
};

struct args {
	const char *conf_path;
	bool conf_given;
	bool check;
	bool foreground;
	bool verbose;
};

struct command {
	const char *name; /* NULL: egressd itself */
	const char *synopsis;
	const struct conf_flag *flags;
	size_t n_flags;
};

static const struct command commands[] = {
	{NULL, "egressd [-d] [-v] [-n] [-c FILE] [flags]\n       egressd route [options] [flags]",
		flags, ARRAY_SIZE(flags)},
	{"route",
		"egressd route [-d] [-v] [-n] [-c FILE] -start-ip A -end-ip B | -gateway IP[@N]... | "
		"-iptables-gateway IP... [flags]",
		route_flags, ARRAY_SIZE(route_flags)},
};

static const struct command *cmd = &commands[0];

static void usage(FILE *f)
{
	conf_usage(f, cmd->synopsis, opts, ARRAY_SIZE(opts), cmd->flags, cmd->n_flags,
		egress_conf_types, egress_conf_n_types);
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
		printf("egressd %s\n", EGRESS_VERSION);
		exit(0);
	case OPT_HELP:
		usage(stdout);
		exit(0);
	}
	return -EINVAL;
}

int main(int argc, char **argv)
{
	struct args a = {.conf_path = DEFAULT_CONF};
	struct conf_overrides o = {0};
	struct conf_errors errs = {0};
	struct conf *conf;
	int r, status;

	if (argc > 1 && argv[1][0] != '-') {
		for (size_t i = 1; i < ARRAY_SIZE(commands); i++)
			if (streq(argv[1], commands[i].name))
				cmd = &commands[i];
		if (!cmd->name) {
			fprintf(stderr, "egressd: unknown command '%s' (commands: route)\n", argv[1]);
			status = 2;
			goto out;
		}
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	if (cmd->name && streq(cmd->name, "route")) {
		/* gateway-route-manager serves metrics on 9090 unless told otherwise */
		conf_overrides_preset(&o, "route", NULL, NULL, NULL);
		conf_overrides_preset(&o, "global", NULL, "metrics_port", "9090");
	}
	r = conf_args_parse(argc, argv, opts, ARRAY_SIZE(opts), cmd->flags, cmd->n_flags,
		egress_conf_types, egress_conf_n_types, opt_cb, &a, &o);
	if (r < 0) {
		status = 2;
		goto out;
	}
	if (r < argc) {
		fprintf(stderr, "egressd: unexpected argument '%s' (see --help)\n", argv[r]);
		status = 2;
		goto out;
	}
	/* Without -c, a missing default file means "flags only"; a command such as
	 * `egressd route` reads a file only when given one. */
	if (!a.conf_given && (cmd->name || (access(a.conf_path, F_OK) < 0 && errno == ENOENT)))
		a.conf_path = NULL;

	conf = egress_conf_read(a.conf_path, &o, &errs);
	if (!conf) {
		conf_errors_print(&errs, stderr);
		fprintf(stderr, "egressd: %zu error%s in the configuration\n", errs.n,
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

	bool fg = a.foreground || isatty(STDERR_FILENO);
	log_init("egressd", fg, a.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	struct daemon_opts dopts = {
		.conf_path = a.conf_path,
		.overrides = &o,
		.log_level_forced = a.verbose,
		.forced_level = LOG_LEVEL_DEBUG,
	};
	status = daemon_run(&dopts, conf);
out:
	conf_errors_clear(&errs);
	conf_overrides_clear(&o);
	return status;
}
