/*
 * dnswatch.c - DNS answers as the forwarder passes them, handed to subscribers
 * (dnswatch.h).
 *
 * A short list of (callback, argument) pairs; dnswatch_answer() calls each in the order
 * they subscribed.  A subscriber may unsubscribe itself (or another) from inside a
 * callback: removal during a walk only clears the slot, which the walk's end compacts.
 * Must not name any module.
 */
#include <errno.h>
#include <stdlib.h>

#include "dnswatch.h"
#include "util.h"

struct dnswatch_sub {
	dnswatch_cb cb;
	void *arg;
};

struct dnswatch {
	struct dnswatch_sub *v;
	size_t n;
	unsigned walking; /* dnswatch_answer() calls in progress */
	unsigned live;	  /* atomic: subscribers; dnswatch_wanted() reads it from any thread */
};

int dnswatch_new(struct dnswatch **ret)
{
	*ret = calloc(1, sizeof(**ret));
	return *ret ? 0 : -ENOMEM;
}

void dnswatch_free(struct dnswatch *w)
{
	if (!w)
		return;
	free(w->v);
	free(w);
}

int dnswatch_subscribe(struct dnswatch *w, dnswatch_cb cb, void *arg)
{
	struct dnswatch_sub *v;

	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].cb == cb && w->v[i].arg == arg)
			return -EEXIST;
	v = realloc(w->v, (w->n + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	w->v = v;
	w->v[w->n++] = (struct dnswatch_sub){cb, arg};
	__atomic_add_fetch(&w->live, 1, __ATOMIC_RELEASE);
	return 0;
}

static void compact(struct dnswatch *w)
{
	size_t out = 0;

	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].cb)
			w->v[out++] = w->v[i];
	w->n = out;
}

void dnswatch_unsubscribe(struct dnswatch *w, dnswatch_cb cb, void *arg)
{
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].cb == cb && w->v[i].arg == arg) {
			w->v[i].cb = NULL;
			__atomic_sub_fetch(&w->live, 1, __ATOMIC_RELEASE);
		}
	if (!w->walking)
		compact(w);
}

bool dnswatch_wanted(const struct dnswatch *w)
{
	return w && __atomic_load_n(&w->live, __ATOMIC_ACQUIRE) > 0;
}

void dnswatch_answer(struct dnswatch *w, const struct dnswatch_answer *a)
{
	if (!w)
		return;
	w->walking++;
	/* w->n may grow during the walk (a subscribe from a callback): new ones wait for the
	 * next answer */
	for (size_t i = 0, n = w->n; i < n; i++)
		if (w->v[i].cb)
			w->v[i].cb(w->v[i].arg, a);
	if (--w->walking == 0)
		compact(w);
}
