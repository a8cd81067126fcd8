/*
 * store.c - the store's interface: checks what callers pass, picks the backend [store]
 * names, and calls the subscriber on the loop when the version moved.
 *
 * Must not know how a backend keeps anything (store_sqlite.c, store_pg.c do); every
 * function here is a check, a call and a debug line.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "log.h"
#include "store_conf.h"
#include "store_int.h"
#include "util.h"

/* The backends by [store] backend; NULL: not built in. */
static const struct store_backend_ops *const store_backends[_STORE_KIND_MAX] = {
	[STORE_SQLITE] = &store_sqlite_ops,
	[STORE_POSTGRESQL] = &store_pg_ops,
};

struct store {
	const struct store_backend_ops *ops;
	void *b;		/* the backend's state */
	struct event *moved_ev; /* active when the subscriber has a version to hear */
	uint64_t moved;		/* the newest version told by the backend */
	void (*cb)(void *arg, uint64_t version);
	void *cb_arg;
};

/* A failed call, at debug (the caller reports it). */
static int store_ret(const char *what, int r)
{
	if (r < 0)
		log_debug("store: %s: %s", what, strerror(-r));
	return r;
}

static void store_moved_cb(evutil_socket_t fd, short what, void *arg)
{
	struct store *s = arg;

	(void)fd;
	(void)what;
	if (s->cb)
		s->cb(s->cb_arg, s->moved);
}

void store_version_moved(struct store *s, uint64_t version)
{
	if (version > s->moved)
		s->moved = version;
	/* An event made active again before it ran runs once: one call per loop turn. */
	event_active(s->moved_ev, EV_TIMEOUT, 0);
}

int store_open(struct event_base *base, const struct conf *conf, struct store **ret)
{
	const struct conf_store *c = conf_store(conf);
	struct store *s;
	int r;

	if (!base || !ret)
		return store_ret("open", -EINVAL);
	if (c->backend < 0 || c->backend >= _STORE_KIND_MAX || !store_backends[c->backend]) {
		log_debug("store: backend %s is not built in",
			c->backend >= 0 && c->backend < _STORE_KIND_MAX
				? store_kind_name[c->backend]
				: "?");
		return -EPROTONOSUPPORT;
	}
	s = xcalloc(1, sizeof(*s));
	s->ops = store_backends[c->backend];
	s->moved_ev = event_new(base, -1, 0, store_moved_cb, s);
	if (!s->moved_ev) {
		free(s);
		return store_ret("open", -ENOMEM);
	}
	r = s->ops->open(s, base, conf, &s->b);
	if (r < 0) {
		event_free(s->moved_ev);
		free(s);
		return store_ret("open", r);
	}
	s->moved = s->ops->version(s->b);
	*ret = s;
	return 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	s->ops->close(s->b);
	event_free(s->moved_ev);
	free(s);
}

const char *store_backend(const struct store *s)
{
	return s->ops->name;
}

static bool who_ok(const struct store_who *who)
{
	return who && who->who && who->who[0];
}

static bool entry_ok(const struct al_entry *e)
{
	return e && e->kind >= 0 && e->kind < _AL_KIND_MAX && e->value[0] &&
	       memchr(e->value, 0, sizeof(e->value)) && e->proto >= 0 && e->proto < _AL_PROTO_MAX &&
	       (!e->comment || strlen(e->comment) <= AL_COMMENT_MAX);
}

int store_entry_add(struct store *s, struct al_entry *e, const struct store_who *who)
{
	if (!entry_ok(e) || !who_ok(who))
		return store_ret("add", -EINVAL);
	return store_ret("add", s->ops->entry_add(s->b, e, who));
}

int store_entry_delete(struct store *s, int64_t id, bool override, const struct store_who *who)
{
	if (id <= 0 || !who_ok(who))
		return store_ret("delete", -EINVAL);
	return store_ret("delete", s->ops->entry_delete(s->b, id, override, who));
}

int store_entry_get(struct store *s, int64_t id, struct al_entry *ret)
{
	if (!ret)
		return store_ret("get", -EINVAL);
	al_entry_init(ret);
	if (id <= 0)
		return store_ret("get", -ENOENT);
	return store_ret("get", s->ops->entry_get(s->b, id, ret));
}

int store_entries_each(struct store *s, const char *search,
	int (*cb)(const struct al_entry *e, void *arg), void *arg)
{
	if (!cb)
		return store_ret("entries", -EINVAL);
	if (search && !search[0])
		search = NULL;
	return store_ret("entries", s->ops->entries_each(s->b, search, cb, arg));
}

int store_import(struct store *s, struct al_entry *v, size_t n, const struct store_who *who,
	size_t *skipped_ret)
{
	size_t skipped;
	int r;

	if ((n && !v) || !who_ok(who))
		return store_ret("import", -EINVAL);
	for (size_t i = 0; i < n; i++)
		if (!entry_ok(&v[i]))
			return store_ret("import", -EINVAL);
	r = s->ops->import(s->b, v, n, who, &skipped);
	if (r == 0 && skipped_ret)
		*skipped_ret = skipped;
	return store_ret("import", r);
}

int store_resolved_set(struct store *s, int64_t entry, const struct addr *addrs, size_t n)
{
	struct cidr c;

	if (entry <= 0 || (n && !addrs))
		return store_ret("resolved_set", -EINVAL);
	for (size_t i = 0; i < n; i++) {
		if (addrs[i].family != AF_INET && addrs[i].family != AF_INET6)
			return store_ret("resolved_set", -EINVAL);
		cidr_from_addr(&addrs[i], &c);
		if (al_dst_refused(&c, NULL))
			return store_ret("resolved_set", -EINVAL);
	}
	return store_ret("resolved_set", s->ops->resolved_set(s->b, entry, addrs, n));
}

int store_resolved_get(struct store *s, int64_t entry, struct addr **ret, size_t *n_ret)
{
	if (!ret || !n_ret)
		return store_ret("resolved_get", -EINVAL);
	*ret = NULL;
	*n_ret = 0;
	if (entry <= 0)
		return store_ret("resolved_get", -ENOENT);
	return store_ret("resolved_get", s->ops->resolved_get(s->b, entry, ret, n_ret));
}

uint64_t store_version(struct store *s)
{
	return s->ops->version(s->b);
}

int store_changes(struct store *s, uint64_t from, struct al_msg *ret)
{
	int r;

	if (!ret)
		return store_ret("changes", -EINVAL);
	al_msg_init(ret);
	r = s->ops->changes(s->b, from, ret);
	if (r < 0) {
		al_msg_clear(ret);
		al_msg_init(ret);
	}
	return store_ret("changes", r);
}

void store_subscribe(struct store *s, void (*cb)(void *arg, uint64_t version), void *arg)
{
	s->cb = cb;
	s->cb_arg = cb ? arg : NULL;
}

int store_audit(struct store *s, const struct store_who *who, const char *action, int64_t entry,
	const json_t *detail)
{
	if (!who_ok(who) || !action || !action[0] || entry < 0 ||
		(detail && !json_is_object(detail)))
		return store_ret("audit", -EINVAL);
	return store_ret("audit", s->ops->audit(s->b, who, action, entry, detail));
}

int store_audit_each(struct store *s, int64_t after, size_t limit,
	int (*cb)(json_t *record, void *arg), void *arg)
{
	if (!cb || after < 0)
		return store_ret("audit_each", -EINVAL);
	return store_ret("audit_each", s->ops->audit_each(s->b, after, limit, cb, arg));
}

int store_gateway_report(struct store *s, const struct store_gateway *g)
{
	if (!g || !g->name[0] || !memchr(g->name, 0, sizeof(g->name)) ||
		!memchr(g->replica, 0, sizeof(g->replica)) || !memchr(g->peer, 0, sizeof(g->peer)))
		return store_ret("gateway_report", -EINVAL);
	return store_ret("gateway_report", s->ops->gateway_report(s->b, g));
}

int store_gateways_each(
	struct store *s, int (*cb)(const struct store_gateway *g, void *arg), void *arg)
{
	if (!cb)
		return store_ret("gateways", -EINVAL);
	return store_ret("gateways", s->ops->gateways_each(s->b, cb, arg));
}

bool store_leader(struct store *s)
{
	return s->ops->leader(s->b);
}
