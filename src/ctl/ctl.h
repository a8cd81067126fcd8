/*
 * ctl.h - egressctl, the operator's command line face of egressd: its subcommands call
 * egressd's REST API (src/api/api.h) over the UNIX socket or over HTTP(S) with a token, and
 * print tables, or the API's JSON for scripts.
 *
 * Exit codes are part of the interface (doc/egressctl.8): scripts rely on them.
 */
#ifndef EGRESS_CTL_H
#define EGRESS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

#define CTL_DEFAULT_SOCKET "/run/egress/egressd.sock"

enum ctl_exit {
	CTL_OK = 0,
	CTL_REFUSED = 1,     /* egressd refused the request, or the configuration is invalid */
	CTL_USAGE = 2,       /* bad command line */
	CTL_UNREACHABLE = 3, /* no answer from egressd: no socket, refused, timeout, not HTTP */
	CTL_AUTH = 4,	     /* not allowed: 401, 403, or no permission on the socket */
};

struct ctl {
	const char *socket_path; /* the UNIX socket, unless url */
	const char *url;	 /* "https://gw:8090": HTTP(S) instead of the socket */
	const char *cacert;	 /* CA file for https, or NULL for the system's */
	char *token;		 /* Bearer token (--token-file or EGRESS_TOKEN), or NULL; owned */
	long timeout_s;		 /* of a whole request (a stream: of its connection) */
	bool json;		 /* print the API's JSON instead of tables */
	bool follow;		 /* events -f */
	bool local;		 /* config check --local */
	const char *confirm;	 /* --confirm DURATION, or NULL */
	bool timeout_set;	 /* --timeout given (else a command may wait longer) */
	bool direct;		 /* devices, status: read the devices' store, not egressd */
	const char *conf_path;	 /* --direct: -c FILE, whose [devices] state_dir holds the store */
	const char *state_dir;	 /* --direct: --state-dir DIR */
	bool fix_all;		 /* diagnose --fix-all */
	FILE *out;
	FILE *err;
};

struct ctl_reply {
	long status;  /* HTTP status */
	char *body;   /* NUL-terminated; owned */
	size_t len;
	json_t *json; /* the body parsed, when it is JSON; owned */
};

void ctl_reply_clear(struct ctl_reply *r);

/*
 * One request: method ("GET"), path with its query ("/api/config?dry_run=1"), body (NULL for
 * none; JSON unless content_type says otherwise).  Returns CTL_OK with the reply in *ret for
 * any HTTP answer when accept_status says which non-2xx status the caller handles itself
 * (0: none); otherwise a 4xx/5xx is printed to c->err and turned into its exit code.
 * CTL_UNREACHABLE when egressd did not answer (printed too).
 */
int ctl_request(struct ctl *c, const char *method, const char *path, const char *body,
	const char *content_type, long accept_status, struct ctl_reply *ret);

/* GET path and parse it as JSON (CTL_OK and *ret owned by the caller, or an exit code). */
int ctl_get_json(struct ctl *c, const char *path, json_t **ret);

/*
 * Follow a server-sent event stream (text/event-stream) until egressd closes it: cb gets
 * each event's id, type (NULL when none) and data.  cb returns 0 to go on.  last_id > 0 is
 * sent as Last-Event-ID.  Returns CTL_UNREACHABLE when the stream ends or cannot start
 * (egressd went away), an exit code for an HTTP refusal, or what cb returned.
 */
typedef int (*ctl_event_cb)(unsigned long long id, const char *event, const char *data,
	void *arg);
int ctl_stream(struct ctl *c, const char *path, unsigned long long last_id, ctl_event_cb cb,
	void *arg);

/* Print an error reply {"error", "field"} (or the raw body) of egressd. */
void ctl_print_error(struct ctl *c, const struct ctl_reply *r);

/* Read a password: prompted twice without echo on a terminal, else one line of stdin.
 * Returns a new string (the caller owns and wipes it) or NULL after printing why. */
char *ctl_read_password(FILE *err);

/* main() of egressctl. */
int ctl_main(int argc, char **argv);

#endif
