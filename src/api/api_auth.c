/*
 * api_auth.c - who may use the API.
 *
 * This first version knows one kind of caller: a peer on the UNIX socket that is root or
 * in [api] socket_group, by the kernel's credentials (SO_PEERCRED, SO_PEERGROUPS), is an
 * admin.  Every other caller may use only the open routes: a TCP request to any other
 * gets 401, a UNIX-socket peer outside the group 403.  Passwords, sessions and tokens come
 * on top of this seam (api_auth.h).
 *
 * Must not block: the group is looked up when the configuration is taken, not per request.
 */
#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_auth.h"
#include "api_conf.h"
#include "api_route.h"
#include "log.h"
#include "util.h"

struct api_auth {
	const struct conf_api *conf;
	struct event_log *events;
	bool have_group; /* socket_group exists */
	gid_t group;
};

static void auth_take(struct api_auth *a, const struct conf_api *c)
{
	struct group *g;

	a->conf = c;
	errno = 0;
	g = getgrnam(c->socket_group);
	a->have_group = g != NULL;
	a->group = g ? g->gr_gid : 0;
	if (!g && !conf_api_no_listen(c))
		log_debug("api: no group %s: only root may use the socket", c->socket_group);
}

int api_auth_new(const struct conf_api *c, struct event_log *events, struct api_auth **ret)
{
	struct api_auth *a = xcalloc(1, sizeof(*a));

	a->events = events;
	auth_take(a, c);
	*ret = a;
	return 0;
}

int api_auth_reconf(struct api_auth *a, const struct conf_api *c)
{
	auth_take(a, c);
	return 0;
}

void api_auth_free(struct api_auth *a)
{
	free(a);
}

static bool peer_in_group(const struct api_auth *a, const struct api_peer *p)
{
	if (!a->have_group)
		return false;
	if (p->gid == a->group)
		return true;
	for (size_t i = 0; i < p->n_groups; i++)
		if (p->groups[i] == a->group)
			return true;
	return false;
}

int api_auth_check(struct api_auth *a, struct evhttp_request *req, const struct api_peer *peer,
	enum api_access need, bool state_change, struct api_caller *caller, const char **err_ret)
{
	(void)req;
	(void)state_change;
	*caller = (struct api_caller){.access = API_OPEN};
	if (peer->unix_socket && (peer->uid == 0 || peer_in_group(a, peer))) {
		caller->access = API_ADMIN;
		snprintf(caller->who, sizeof(caller->who), "uid:%u", (unsigned)peer->uid);
	}
	if (caller->access >= need)
		return 0;
	if (peer->unix_socket) {
		*err_ret = "the UNIX socket is for root and the members of [api] socket_group";
		return 403;
	}
	*err_ret = "authentication required";
	return 401;
}

void api_auth_routes(struct api_auth *a, struct api_route_table *ret)
{
	*ret = (struct api_route_table){.routes = NULL, .n = 0, .arg = a, .running = true};
}
