/*
 * daemon.h - egressd's life cycle: start, reload, stop.
 */
#ifndef EGRESS_DAEMON_H
#define EGRESS_DAEMON_H

#include <stdbool.h>

#include "conf.h"

struct daemon_opts {
	const char *conf_path;		     /* may be NULL: flags only */
	const struct conf_overrides *overrides; /* flags, re-applied on every reload */
	bool log_level_forced;		     /* -v/-d given: the file's log_level does not win */
	int forced_level;
};

/*
 * Run egressd until SIGTERM/SIGINT.  conf is the validated configuration
 * (ownership passes to the daemon).  Returns the process exit status.
 */
int daemon_run(const struct daemon_opts *opts, struct conf *conf);

#endif
