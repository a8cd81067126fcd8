/*
 * egressd - the Egress gateway daemon.
 *
 *   egressd [-d] [-v] [-c FILE] [flags]     run
 *   egressd -n [-c FILE] [flags]            check the configuration, print it normalised
 *   egressd route [options] [flags]         the route module alone, with gateway-route-manager's
 *                                           flags (-start-ip, -end-ip, -port, ...)
 *   egressd dispatch [flags] ADDR@N ...     the proxy (and in gateway mode the DNS forwarder and
 *                                           the interception), with go-dispatch-proxy's flags
 *   egressd allowlist [flags]               the allowlist agent alone, with the dynamic egress
 *                                           proxy gateway's -iptables-wss-server
 *   egressd devices -wan IF -lan IF [flags] the device gateway alone: each LAN device with its
 *                                           own upstream identity (-api-port 5050 serves the
 *                                           API where the dual-stack gateway had it)
 *
 * main() only parses the command line; the daemon lives in src/daemon/daemon.c.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <net/if.h>
#include <linux/netlink.h>

#include "conf_keys.h"
#include "daemon.h"
#include "gateway.h"
#include "gateway_conf.h"
#include "log.h"
#include "modules.h"
#include "nft.h"
#include "nl.h"
#include "util.h"

#define DEFAULT_CONF EGRESS_SYSCONFDIR "/egress/egress.conf"

enum {
	OPT_CONF = 256,
	OPT_CHECK,
	OPT_FOREGROUND,
	OPT_VERBOSE,
	OPT_VERSION,
	OPT_HELP,
	OPT_LIST,
	OPT_QUIET,
	OPT_DEBUG,
	OPT_GATEWAY,
	OPT_RESTORE,
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

/* go-dispatch-proxy's options that are not configuration keys. */
static const struct cmd_opt dispatch_opts[] = {
	{"config", 'c', true, OPT_CONF, "FILE", "configuration file (default: none)"},
	{"check", 'n', false, OPT_CHECK, NULL,
		"check the configuration, print it normalised and exit"},
	{"foreground", 'd', false, OPT_FOREGROUND, NULL, "log to stderr instead of syslog"},
	{"verbose", 'v', false, OPT_VERBOSE, NULL, "log debug messages"},
	{"version", 'V', false, OPT_VERSION, NULL, "print the version and exit"},
	{"help", 'h', false, OPT_HELP, NULL, "show this help"},
	{"list", 0, false, OPT_LIST, NULL, "list the interfaces and their addresses, and exit"},
	{"quiet", 0, false, OPT_QUIET, NULL, "log warnings and errors only"},
	{"debug", 0, false, OPT_DEBUG, NULL, "log debug messages"},
	{"gateway", 0, false, OPT_GATEWAY, NULL,
		"gateway mode: transparent proxy, DNS forwarder and NAT for -subnet"},
	{"restore", 0, false, OPT_RESTORE, NULL,
		"put back the ruleset saved in -backup-file (keeping egress's other tables), and exit"},
};

/* go-dispatch-proxy's flags and its gateway mode's, plus ours. */
static const struct conf_flag dispatch_flags[] = {
	{"lhost", 0, "proxy", NULL, "address"},
	{"lport", 0, "proxy", NULL, "port"},
	{"tunnel", 0, "proxy", NULL, "tunnel"},
	{"gateway-ip", 0, "gateway", NULL, "address"},
	{"subnet", 0, "gateway", NULL, "subnet"},
	{"transparent-port", 0, "gateway", NULL, "transparent_port"},
	{"dns-port", 0, "gateway", NULL, "dns_port"},
	{"nat-interface", 0, "gateway", NULL, "nat_interface"},
	{"auto-config", 0, "gateway", NULL, "auto_config"},
	{"intercept", 0, "gateway", NULL, "intercept"},
	{"backup-file", 0, "gateway", NULL, "backup_file"},
	{"web", 0, "api", NULL, "listen"},
	{"metrics-port", 0, "global", NULL, "metrics_port"},
	{"log-level", 0, "global", NULL, "log_level"},
	{"tproxy-port", 0, "proxy", NULL, "tproxy_port"},
	{"username", 0, "proxy", NULL, "username"},
	{"password", 0, "proxy", NULL, "password"},
	{"connect-timeout", 0, "proxy", NULL, "connect_timeout"},
	{"connect-deadline", 0, "proxy", NULL, "connect_deadline"},
	{"idle-timeout", 0, "proxy", NULL, "idle_timeout"},
	{"client-rules", 0, "proxy", NULL, "client_rules"},
	{"affinity", 0, "proxy", NULL, "affinity"},
	{"workers", 0, "proxy", NULL, "workers"},
	{"check-kind", 0, "proxy", NULL, "check"},
	{"check-target", 0, "proxy", NULL, "check_target"},
	{"check-port", 0, "proxy", NULL, "check_port"},
	{"check-interval", 0, "proxy", NULL, "check_interval"},
	{"resolver", 0, "proxy", NULL, "resolver"},
	{"allow", 0, "proxy", NULL, "allow"},
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
	{"idle-timer", 0, "route", NULL, "idle_timer"},
	{"unbalanced-timer", 0, "route", NULL, "unbalanced_timer"},
	/* gateway-route-manager's DDNS and public address flags ([ddns]) */
	{"ddns-provider", 0, "ddns", NULL, "provider"},
	{"ddns-username", 0, "ddns", NULL, "username"},
	{"ddns-password", 0, "ddns", NULL, "password"},
	{"ddns-hostname", 0, "ddns", NULL, "hostname"},
	{"ddns-timeout", 0, "ddns", NULL, "timeout"},
	{"ddns-record-ttl", 0, "ddns", NULL, "record_ttl"},
	{"ddns-require-ip-address", 0, "ddns", NULL, "require_ip_address"},
	{"public-ip-service-hostname", 0, "ddns", NULL, "public_ip_service_hostname"},
	{"public-ip-service-port", 0, "ddns", NULL, "public_ip_service_port"},
	{"public-ip-service-scheme", 0, "ddns", NULL, "public_ip_service_scheme"},
	{"public-ip-service-path", 0, "ddns", NULL, "public_ip_service_path"},
	{"public-ip-service-username", 0, "ddns", NULL, "public_ip_service_username"},
	{"public-ip-service-password", 0, "ddns", NULL, "public_ip_service_password"},
	/* ours: the rest of [ddns] */
	{"ddns-dynu-url", 0, "ddns", NULL, "dynu_url"},
	{"ddns-password-file", 0, "ddns", NULL, "password_file"},
	{"ddns-server", 0, "ddns", NULL, "server"},
	{"ddns-server-port", 0, "ddns", NULL, "server_port"},
	{"ddns-zone", 0, "ddns", NULL, "zone"},
	{"ddns-tsig-key-name", 0, "ddns", NULL, "tsig_key_name"},
	{"ddns-tsig-algorithm", 0, "ddns", NULL, "tsig_algorithm"},
	{"ddns-tsig-secret-file", 0, "ddns", NULL, "tsig_secret_file"},
	{"public-ip-service-hostname6", 0, "ddns", NULL, "public_ip_service_hostname6"},
	{"public-ip-service-tls-verify", 0, "ddns", NULL, "public_ip_service_tls_verify"},
	{"public-ip-interval", 0, "ddns", NULL, "public_ip_interval"},
	{"public-ip-timeout", 0, "ddns", NULL, "public_ip_timeout"},
};

/* The dynamic egress proxy gateway's flag, plus ours: [allowlist]'s keys, metrics, log level. */
static const struct conf_flag allowlist_flags[] = {
	{"iptables-wss-server", 0, "allowlist", NULL, "server"},
	{"clients", 0, "allowlist", NULL, "clients"},
	{"token", 0, "allowlist", NULL, "token"},
	{"token-file", 0, "allowlist", NULL, "token_file"},
	{"ca", 0, "allowlist", NULL, "ca"},
	{"cert", 0, "allowlist", NULL, "cert"},
	{"key", 0, "allowlist", NULL, "key"},
	{"name", 0, "allowlist", NULL, "name"},
	{"nat", 0, "allowlist", NULL, "nat"},
	{"state-dir", 0, "allowlist", NULL, "state_dir"},
	{"dns", 0, "allowlist", NULL, "dns"},
	{"metrics-port", 0, "global", NULL, "metrics_port"},
	{"log-level", 0, "global", NULL, "log_level"},
};

/* [devices]' keys worth a flag, the API's port as the dual-stack gateway had it, metrics, log. */
static const struct conf_flag devices_flags[] = {
	{"wan", 0, "devices", NULL, "wan"},
	{"lan", 0, "devices", NULL, "lan"},
	{"allow", 0, "devices", NULL, "allow"},
	{"deny", 0, "devices", NULL, "deny"},
	{"max-devices", 0, "devices", NULL, "max_devices"},
	{"grace", 0, "devices", NULL, "grace"},
	{"leases-file", 0, "devices", NULL, "leases_file"},
	{"ipv4", 0, "devices", NULL, "ipv4"},
	{"ipv6", 0, "devices", NULL, "ipv6"},
	{"state-dir", 0, "devices", NULL, "state_dir"},
	{"port-forwards", 0, "devices", NULL, "port_forwards"},
	{"port-map", 0, "devices", NULL, "port_map"},
	{"proxy-ndp", 0, "devices", NULL, "proxy_ndp"},
	{"macvlan-mode", 0, "devices", NULL, "macvlan_mode"},
	{"table-base", 0, "devices", NULL, "table_base"},
	{"rule-priority", 0, "devices", NULL, "rule_priority"},
	{"keep-links", 0, "devices", NULL, "keep_links"},
	{"api-port", 0, "api", NULL, "listen"},
	{"metrics-port", 0, "global", NULL, "metrics_port"},
	{"log-level", 0, "global", NULL, "log_level"},
};

struct args {
	struct conf_overrides *o;
	bool list, gateway, restore;
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
	const struct cmd_opt *opts; /* NULL: egressd's */
	size_t n_opts;
};

static const struct command commands[] = {
	{NULL, "egressd [-d] [-v] [-n] [-c FILE] [flags]\n       egressd route [options] [flags]",
		flags, ARRAY_SIZE(flags), NULL, 0},
	{"route",
		"egressd route [-d] [-v] [-n] [-c FILE] -start-ip A -end-ip B | -gateway IP[@N]... | "
		"-iptables-gateway IP... [flags]",
		route_flags, ARRAY_SIZE(route_flags), NULL, 0},
	{"dispatch",
		"egressd dispatch [-d] [-v] [-n] [-c FILE] [-lhost ADDR] [-lport PORT] [-tunnel] [-list] "
		"[-quiet]\n       [-gateway [-gateway-ip IP] [-subnet CIDR] [-transparent-port P] "
		"[-dns-port P]\n        [-nat-interface IF] [-auto-config]] [flags] ADDR@N ...",
		dispatch_flags, ARRAY_SIZE(dispatch_flags), dispatch_opts, ARRAY_SIZE(dispatch_opts)},
	{"allowlist",
		"egressd allowlist [-d] [-v] [-n] [-c FILE] -iptables-wss-server wss://HOST/ws "
		"-clients CIDR,... [-token T | -token-file F] [flags]",
		allowlist_flags, ARRAY_SIZE(allowlist_flags), NULL, 0},
	{"devices",
		"egressd devices [-d] [-v] [-n] [-c FILE] -wan IF -lan IF [-api-port PORT] "
		"[-port-map OUTER:INNER,...] [flags]",
		devices_flags, ARRAY_SIZE(devices_flags), NULL, 0},
};

static const struct command *cmd = &commands[0];

static void usage(FILE *f)
{
	size_t n_types;
	const struct conf_section_type *const *types = egress_conf_types(&n_types);

	conf_usage(f, cmd->synopsis, cmd->opts ? cmd->opts : opts,
		cmd->opts ? cmd->n_opts : ARRAY_SIZE(opts), cmd->flags, cmd->n_flags,
		types, n_types);
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
	case OPT_LIST:
		a->list = true;
		return 0;
	case OPT_QUIET:
		conf_overrides_add(a->o, "global", NULL, "log_level", "warn", "-quiet");
		return 0;
	case OPT_DEBUG:
		conf_overrides_add(a->o, "global", NULL, "log_level", "debug", "-debug");
		return 0;
	case OPT_RESTORE:
		a->restore = true;
		a->gateway = true;
		return 0;
	case OPT_GATEWAY:
		a->gateway = true;
		conf_overrides_add(a->o, "gateway", NULL, NULL, NULL, "-gateway");
		return 0;
	}
	return -EINVAL;
}

/* go-dispatch-proxy's -list: every interface with its addresses. */
static int list_addr_cb(const struct nl_addr *a, void *arg)
{
	FILE *f = arg;
	char ifname[IF_NAMESIZE] = "?", buf[ADDR_STRLEN];

	if_indextoname((unsigned)a->ifindex, ifname);
	addr_str(&a->local.addr, buf, sizeof(buf));
	fprintf(f, "[%s] %s/%d\n", ifname, buf, a->local.plen);
	return 0;
}

static int list_interfaces(FILE *f)
{
	struct nl *nl;
	int r = nl_open(NETLINK_ROUTE, &nl);

	if (r < 0) {
		fprintf(stderr, "egressd: netlink: %s\n", strerror(-r));
		return r;
	}
	r = nl_addr_dump(nl, AF_UNSPEC, 0, list_addr_cb, f);
	if (r < 0)
		fprintf(stderr, "egressd: listing addresses: %s\n", strerror(-r));
	nl_free(nl);
	return r;
}

/* -restore: the backup file named by -backup-file (or the default). */
static int restore_ruleset(const struct conf_overrides *o)
{
	const char *path = conf_key_find(&conf_gateway_type, "backup_file")->def;
	struct nft *nft;
	char *err = NULL;
	int r;

	for (size_t i = 0; i < o->n; i++)
		if (streq(o->v[i].section, "gateway") && o->v[i].key &&
			streq(o->v[i].key, "backup_file"))
			path = o->v[i].value;
	nft = nft_new();
	if (!nft)
		return -ENOMEM;
	r = gateway_restore(nft, path, &err);
	if (r < 0)
		fprintf(stderr, "egressd: restore: %s\n", err ? err : strerror(-r));
	else
		printf("restored the ruleset saved in %s\n", path);
	free(err);
	nft_free(nft);
	return r;
}

int main(int argc, char **argv)
{
	struct conf_overrides o = {0};
	struct args a = {.conf_path = DEFAULT_CONF, .o = &o};
	struct conf_errors errs = {0};
	struct conf *conf;
	size_t n_types;
	const struct conf_section_type *const *types = egress_conf_types(&n_types);
	int r, status;

	if (argc > 1 && argv[1][0] != '-') {
		for (size_t i = 1; i < ARRAY_SIZE(commands); i++)
			if (streq(argv[1], commands[i].name))
				cmd = &commands[i];
		if (!cmd->name) {
			fprintf(stderr, "egressd: unknown command '%s' (commands: route, dispatch, "
					"allowlist, devices)\n", argv[1]);
			status = 2;
			goto out;
		}
		argv[1] = argv[0];
		argv++;
		argc--;
	}
	/* a command of a module this egressd was built without (its flags name no section) */
	for (size_t i = 0; i < cmd->n_flags; i++) {
		size_t t = 0;

		while (t < n_types && !streq(types[t]->name, cmd->flags[i].section))
			t++;
		if (t == n_types) {
			fprintf(stderr, "egressd: %s: this egressd has no [%s] module\n", cmd->name,
				cmd->flags[i].section);
			status = 2;
			goto out;
		}
	}
	if (cmd->name && streq(cmd->name, "route")) {
		/* gateway-route-manager serves metrics on 9090 unless told otherwise */
		conf_overrides_preset(&o, "route", NULL, NULL, NULL);
		conf_overrides_preset(&o, "global", NULL, "metrics_port", "9090");
	}
	if (cmd->name && streq(cmd->name, "dispatch"))
		conf_overrides_preset(&o, "proxy", NULL, NULL, NULL);
	if (cmd->name && streq(cmd->name, "allowlist"))
		conf_overrides_preset(&o, "allowlist", NULL, NULL, NULL);
	if (cmd->name && streq(cmd->name, "devices"))
		conf_overrides_preset(&o, "devices", NULL, NULL, NULL);
	r = conf_args_parse(argc, argv, cmd->opts ? cmd->opts : opts,
		cmd->opts ? cmd->n_opts : ARRAY_SIZE(opts), cmd->flags, cmd->n_flags,
		types, n_types, opt_cb, &a, &o);
	if (r < 0) {
		status = 2;
		goto out;
	}
	if (a.restore) {
		status = restore_ruleset(&o) < 0 ? 1 : 0;
		goto out;
	}
	if (a.list) {
		status = list_interfaces(stdout) < 0 ? 1 : 0;
		goto out;
	}
	if (cmd->name && streq(cmd->name, "dispatch")) {
		/* the operands are the uplinks: ADDR@N (or HOST:PORT@N with -tunnel) */
		for (; r < argc; r++)
			conf_overrides_add(&o, "proxy", NULL, "dispatch", argv[r], argv[r]);
		for (size_t i = 0; i < o.n && !a.gateway; i++)
			if (streq(o.v[i].section, "gateway")) {
				fprintf(stderr, "egressd: %s is a gateway mode flag: add -gateway\n",
					o.v[i].origin);
				status = 2;
				goto out;
			}
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
