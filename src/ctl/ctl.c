/*
 * ctl.c - egressctl's command line: global options, the table of subcommands, and the
 * checks that make a bad command line exit 2 before anything is sent to egressd.
 *
 * What it must not do: accept a token on the command line (it would show in ps and in
 * shell histories); only --token-file and EGRESS_TOKEN carry one.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl.h"
#include "ctl_cmds.h"
#include "util.h"

enum {
	OPT_SOCKET = 's',
	OPT_URL = 'u',
	OPT_JSON = 'j',
	OPT_FOLLOW = 'f',
	OPT_TIMEOUT = 't',
	OPT_HELP = 'h',
	OPT_VERSION = 'V',
	OPT_TOKEN_FILE = 256,
	OPT_CACERT,
	OPT_CONFIRM,
	OPT_LOCAL,
	OPT_DIRECT,
	OPT_STATE_DIR,
	OPT_FIX_ALL,
	OPT_CONFIG = 'c',
};

static const struct option long_opts[] = {
	{"socket", required_argument, NULL, OPT_SOCKET},
	{"url", required_argument, NULL, OPT_URL},
	{"token-file", required_argument, NULL, OPT_TOKEN_FILE},
	{"cacert", required_argument, NULL, OPT_CACERT},
	{"json", no_argument, NULL, OPT_JSON},
	{"timeout", required_argument, NULL, OPT_TIMEOUT},
	{"follow", no_argument, NULL, OPT_FOLLOW},
	{"confirm", required_argument, NULL, OPT_CONFIRM},
	{"local", no_argument, NULL, OPT_LOCAL},
	{"direct", no_argument, NULL, OPT_DIRECT},
	{"config", required_argument, NULL, OPT_CONFIG},
	{"state-dir", required_argument, NULL, OPT_STATE_DIR},
	{"fix-all", no_argument, NULL, OPT_FIX_ALL},
	{"help", no_argument, NULL, OPT_HELP},
	{"version", no_argument, NULL, OPT_VERSION},
	{0},
};

static void usage(FILE *f)
{
	fprintf(f, "usage: egressctl [options] COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < ctl_cmds_n; i++)
		fprintf(f, "  %-36s %s\n", ctl_cmds[i].synopsis, ctl_cmds[i].help);
	fprintf(f,
		"\noptions:\n"
		"  -s, --socket PATH     egressd's UNIX socket (default " CTL_DEFAULT_SOCKET ")\n"
		"  -u, --url URL         HTTP(S) instead of the socket, e.g. https://gw:8090\n"
		"      --token-file FILE the API token for --url (else $EGRESS_TOKEN)\n"
		"      --cacert FILE     CA certificates to check egressd's TLS certificate\n"
		"  -j, --json            print the API's JSON (one document) instead of tables\n"
		"  -t, --timeout SECS    give up on egressd after SECS (default 10)\n"
		"  -f, --follow          events: follow the live stream\n"
		"      --confirm DUR     config apply, drain, undrain: roll back unless confirmed\n"
		"                        within DUR (60s, 5m) by `egressctl confirm`\n"
		"      --local           config check: validate here, without egressd\n"
		"      --direct          devices, status: read the devices' store, without egressd\n"
		"  -c, --config FILE     --direct: the store is in FILE's [devices] state_dir\n"
		"      --state-dir DIR   --direct: the store is in DIR (default: egressd's\n"
		"                        configuration's, else /var/lib/egress)\n"
		"      --fix-all         diagnose: repair what can safely be repaired\n"
		"  -h, --help            show this help\n"
		"  -V, --version         print the version\n"
		"\nexit: 0 done, 1 refused by egressd or invalid, 2 usage, 3 egressd unreachable,\n"
		"      4 not allowed\n");
}

/* The token in path: its first line, without the line end; NULL after printing why. */
static char *read_token(const char *path, FILE *err)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	FILE *f = fopen(path, "re");

	if (!f) {
		fprintf(err, "egressctl: --token-file %s: %s\n", path, strerror(errno));
		return NULL;
	}
	n = getline(&line, &cap, f);
	fclose(f);
	while (n > 0 && isspace((unsigned char)line[n - 1]))
		line[--n] = '\0';
	if (n <= 0) {
		fprintf(err, "egressctl: --token-file %s: no token in the file\n", path);
		free(line);
		return NULL;
	}
	return line;
}

/*
 * --confirm: a whole number of seconds (60, 60s) or minutes (5m), 1s to 1h, normalised to
 * "60s" as the API's ?confirm= takes it.  0 or -EINVAL.
 */
int ctl_parse_confirm(const char *s, char *ret, size_t size)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (errno)
		return -EINVAL;
	if (streq(end, "m"))
		v = v > 60 ? 3601 : v * 60;
	else if (*end && !streq(end, "s"))
		return -EINVAL;
	if (v < 1 || v > 3600)
		return -EINVAL;
	snprintf(ret, size, "%lus", v);
	return 0;
}

/* Is name a command of subcommands ("config", "port-forward")? */
static bool has_subs(const char *name)
{
	for (size_t i = 0; i < ctl_cmds_n; i++)
		if (streq(name, ctl_cmds[i].name) && ctl_cmds[i].sub)
			return true;
	return false;
}

/* The subcommand named by argv (one word, or two as "config check"), or NULL. */
static const struct ctl_cmd *find_cmd(int argc, char **argv, int *words_ret)
{
	for (size_t i = 0; i < ctl_cmds_n; i++) {
		const struct ctl_cmd *cmd = &ctl_cmds[i];

		if (!streq(argv[0], cmd->name))
			continue;
		if (!cmd->sub) {
			*words_ret = 1;
			return cmd;
		}
		if (argc > 1 && streq(argv[1], cmd->sub)) {
			*words_ret = 2;
			return cmd;
		}
	}
	return NULL;
}

static int parse(struct ctl *c, int argc, char **argv, unsigned *opts_ret)
{
	static char confirm[32];
	const char *token_file = NULL;
	int o;

	*opts_ret = 0;
	optind = 1;
	opterr = 0;
	while ((o = getopt_long(argc, argv, ":s:u:jt:fhVc:", long_opts, NULL)) != -1) {
		switch (o) {
		case OPT_SOCKET:
			c->socket_path = optarg;
			break;
		case OPT_URL:
			if (strncmp(optarg, "http://", 7) && strncmp(optarg, "https://", 8)) {
				fprintf(c->err, "egressctl: --url: expected http://HOST[:PORT] or "
						"https://HOST[:PORT], got \"%s\"\n", optarg);
				return -EINVAL;
			}
			c->url = optarg;
			break;
		case OPT_TOKEN_FILE:
			token_file = optarg;
			break;
		case OPT_CACERT:
			c->cacert = optarg;
			break;
		case OPT_JSON:
			c->json = true;
			break;
		case OPT_TIMEOUT: {
			char *end;

			errno = 0;
			c->timeout_s = strtol(optarg, &end, 10);
			if (errno || *end || c->timeout_s < 1 || c->timeout_s > 3600) {
				fprintf(c->err, "egressctl: --timeout: expected seconds from 1 to "
						"3600, got \"%s\"\n", optarg);
				return -EINVAL;
			}
			c->timeout_set = true;
			break;
		}
		case OPT_DIRECT:
			c->direct = true;
			*opts_ret |= CTL_OPT_DIRECT;
			break;
		case OPT_CONFIG:
			c->conf_path = optarg;
			*opts_ret |= CTL_OPT_DIRECT;
			break;
		case OPT_STATE_DIR:
			c->state_dir = optarg;
			*opts_ret |= CTL_OPT_DIRECT;
			break;
		case OPT_FIX_ALL:
			c->fix_all = true;
			*opts_ret |= CTL_OPT_FIX;
			break;
		case OPT_FOLLOW:
			c->follow = true;
			*opts_ret |= CTL_OPT_FOLLOW;
			break;
		case OPT_CONFIRM:
			if (ctl_parse_confirm(optarg, confirm, sizeof(confirm)) < 0) {
				fprintf(c->err, "egressctl: --confirm: expected a duration from 1s to "
						"1h such as 60s or 5m, got \"%s\"\n", optarg);
				return -EINVAL;
			}
			c->confirm = confirm;
			*opts_ret |= CTL_OPT_CONFIRM;
			break;
		case OPT_LOCAL:
			c->local = true;
			*opts_ret |= CTL_OPT_LOCAL;
			break;
		case OPT_HELP:
			usage(c->out);
			exit(0);
		case OPT_VERSION:
			fprintf(c->out, "egressctl %s\n", EGRESS_VERSION);
			exit(0);
		case ':':
			fprintf(c->err, "egressctl: %s needs a value (see --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(c->err, "egressctl: unknown option '%s' (see --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if ((c->conf_path || c->state_dir) && !c->direct) {
		fprintf(c->err, "egressctl: %s says where the store is for --direct: add --direct\n",
			c->conf_path ? "-c" : "--state-dir");
		return -EINVAL;
	}
	if (token_file) {
		c->token = read_token(token_file, c->err);
		if (!c->token)
			return -EINVAL;
	} else if (getenv("EGRESS_TOKEN") && *getenv("EGRESS_TOKEN")) {
		c->token = xstrdup(getenv("EGRESS_TOKEN"));
	}
	return optind;
}

int ctl_main(int argc, char **argv)
{
	struct ctl c = {
		.socket_path = CTL_DEFAULT_SOCKET,
		.timeout_s = 10,
		.out = stdout,
		.err = stderr,
	};
	const struct ctl_cmd *cmd;
	unsigned opts;
	int first, words, n, r;

	first = parse(&c, argc, argv, &opts);
	if (first < 0) {
		r = CTL_USAGE;
		goto out;
	}
	if (first >= argc) {
		usage(c.err);
		r = CTL_USAGE;
		goto out;
	}
	cmd = find_cmd(argc - first, argv + first, &words);
	if (!cmd) {
		bool sub = has_subs(argv[first]);

		fprintf(c.err, "egressctl: unknown command '%s%s%s' (see --help)\n", argv[first],
			sub && first + 1 < argc ? " " : "", sub && first + 1 < argc ? argv[first + 1] : "");
		r = CTL_USAGE;
		goto out;
	}
	n = argc - first - words;
	if (n < cmd->min_args || n > cmd->max_args) {
		fprintf(c.err, "egressctl: usage: egressctl %s\n", cmd->synopsis);
		r = CTL_USAGE;
		goto out;
	}
	if (opts & ~cmd->opts) {
		fprintf(c.err, "egressctl: %s takes no %s (usage: egressctl %s)\n",
			cmd->sub ? "this command" : cmd->name,
			opts & ~cmd->opts & CTL_OPT_FOLLOW	? "-f"
			: opts & ~cmd->opts & CTL_OPT_CONFIRM ? "--confirm"
			: opts & ~cmd->opts & CTL_OPT_DIRECT  ? "--direct"
			: opts & ~cmd->opts & CTL_OPT_FIX     ? "--fix-all"
							      : "--local",
			cmd->synopsis);
		r = CTL_USAGE;
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(c.err, "egressctl: cannot initialise libcurl\n");
		r = CTL_UNREACHABLE;
		goto out;
	}
	r = cmd->run(&c, argv + first + words);
	fflush(c.out);
	curl_global_cleanup();
out:
	if (c.token) {
		explicit_bzero(c.token, strlen(c.token));
		free(c.token);
	}
	return r;
}
