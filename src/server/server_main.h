/*
 * server_main.h - egress-server's life cycle as its main() sees it (server.c).
 */
#ifndef EGRESS_SERVER_MAIN_H
#define EGRESS_SERVER_MAIN_H

#include <stdbool.h>

struct conf;
struct conf_overrides;

struct server_opts {
	const char *conf_path;		     /* read again on SIGHUP; NULL: defaults only */
	const struct conf_overrides *overrides; /* the flags, applied again on SIGHUP */
	bool log_level_forced;		     /* -v: debug whatever [server] log_level says */
};

/*
 * Run egress-server with conf (validated; taken: freed at the end) until SIGTERM or
 * SIGINT.  Returns the exit status: 0 after a stop signal, 1 when it could not start.
 */
int server_run(const struct server_opts *opts, struct conf *conf);

#endif
