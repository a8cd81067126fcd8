/*
 * server_conf.h - egress-server's configuration: its own section [server], and the file
 * as a whole (the section types of server_conf_types[], with the defaults egress-server
 * gives [api]).
 */
#ifndef EGRESS_SERVER_CONF_H
#define EGRESS_SERVER_CONF_H

#include "conf.h"

/* [server]: this replica. */
struct conf_server {
	struct conf_section s;
	char *name;    /* NULL: the host name */
	int log_level; /* enum log_level */
};

extern const struct conf_section_type conf_server_type;

/* The [server] section (it always exists in a configuration made by server_conf_read()). */
const struct conf_server *conf_server(const struct conf *conf);

/*
 * Read egress-server's configuration: the file at path (NULL: defaults only), then the
 * flags of o (may be NULL), then egress-server's own defaults of [api] where neither set
 * them; validated.  A secret shown masked by -n and written back so is running's (NULL: a
 * mask is an error).  Every unnamed section exists.  NULL with the errors in errs; else the
 * caller's (conf_free()).
 */
struct conf *server_conf_read(const char *path, const struct conf_overrides *o,
	const struct conf *running,
	struct conf_errors *errs);

#endif
