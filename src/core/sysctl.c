/*
 * sysctl.c - the one place egressd changes kernel settings (see sysctl.h): each change
 * logged with the value it replaces, counted per holder, and put back when the last
 * holder lets go, unless someone else has changed it since.
 *
 * Must not write a setting nobody holds, nor put back one that is no longer ours.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "sysctl.h"
#include "util.h"

struct holder {
	const void *owner;
	bool stale;
};

struct setting {
	char *key;
	int value;   /* what we hold it at */
	int old;     /* what it was before */
	bool changed; /* we wrote it: old goes back at the end */
	bool quiet;   /* its change and end logged at debug (sysctl_hold_quiet()) */
	struct holder *h;
	size_t n_h;
};

/* In the order they were first held: put back from the end. */
static struct setting *settings;
static size_t n_settings;
static const char *root = "/proc/sys";

void sysctl_set_root(const char *dir)
{
	root = dir ? dir : "/proc/sys";
}

/* "net/ipv4/conf/eth1/rp_filter" as sysctl(8) shows it. */
static const char *dotted(const char *key, char *buf, size_t len)
{
	snprintf(buf, len, "%s", key);
	for (char *p = buf; *p; p++)
		if (*p == '/')
			*p = '.';
	return buf;
}

int sysctl_read(const char *key, int *ret)
{
	char path[256], buf[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, key);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		n = -errno;
	close(fd);
	if (n < 0)
		return (int)n;
	if (n == 0)
		return -EIO;
	*ret = atoi(buf);
	return 0;
}

static int sysctl_write(const char *key, int value)
{
	char path[256], buf[32];
	int fd, r = 0;
	size_t len;

	snprintf(path, sizeof(path), "%s/%s", root, key);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = (size_t)snprintf(buf, sizeof(buf), "%d\n", value);
	if (write(fd, buf, len) != (ssize_t)len)
		r = errno ? -errno : -EIO;
	close(fd);
	return r;
}

static struct setting *setting_find(const char *key)
{
	for (size_t i = 0; i < n_settings; i++)
		if (streq(settings[i].key, key))
			return &settings[i];
	return NULL;
}

static struct holder *holder_find(struct setting *s, const void *owner)
{
	for (size_t i = 0; i < s->n_h; i++)
		if (s->h[i].owner == owner)
			return &s->h[i];
	return NULL;
}

static int hold(const void *owner, const char *key, int value, const char *why, bool quiet)
{
	struct setting *s = setting_find(key);
	struct holder *h;
	char name[256];
	int now, r;

	if (s) {
		if (s->value != value) {
			log_warnx("sysctl %s: wanted at %d (%s), but held at %d already",
				dotted(key, name, sizeof(name)), value, why, s->value);
			return -EBUSY;
		}
		h = holder_find(s, owner);
		if (h) {
			h->stale = false;
			return 0;
		}
		s->h = xrealloc(s->h, (s->n_h + 1) * sizeof(*s->h));
		s->h[s->n_h++] = (struct holder){.owner = owner};
		return 0;
	}
	r = sysctl_read(key, &now);
	if (r < 0)
		return r;
	if (now != value) {
		r = sysctl_write(key, value);
		if (r < 0) {
			log_warnx("sysctl %s: cannot set %d (%s): %s", dotted(key, name, sizeof(name)),
				value, why, strerror(-r));
			return r;
		}
		log_msg(quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO, "sysctl %s: %d -> %d (%s)",
			dotted(key, name, sizeof(name)), now, value, why);
	}
	settings = xrealloc(settings, (n_settings + 1) * sizeof(*settings));
	s = &settings[n_settings++];
	*s = (struct setting){.key = xstrdup(key), .value = value, .old = now,
		.changed = now != value, .quiet = quiet, .h = xcalloc(1, sizeof(*s->h)), .n_h = 1};
	s->h[0] = (struct holder){.owner = owner};
	return 0;
}

int sysctl_hold(const void *owner, const char *key, int value, const char *why)
{
	return hold(owner, key, value, why, false);
}

int sysctl_hold_quiet(const void *owner, const char *key, int value, const char *why)
{
	return hold(owner, key, value, why, true);
}

/* The last holder let go of settings[i]: put it back if it is still ours, and forget it. */
static void setting_end(size_t i, bool keep)
{
	struct setting *s = &settings[i];
	enum log_level lvl = s->quiet ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO;
	char name[256];
	int now, r;

	dotted(s->key, name, sizeof(name));
	if (!s->changed) {
		/* nothing to put back */
	} else if (keep) {
		log_msg(lvl, "sysctl %s: left at %d with the dataplane (it was %d)", name, s->value,
			s->old);
	} else if ((r = sysctl_read(s->key, &now)) < 0) {
		/* e.g. the interface is gone, and its settings with it */
		log_debug("sysctl %s: not put back: %s", name, strerror(-r));
	} else if (now != s->value) {
		log_msg(lvl,
			"sysctl %s: left at %d: changed by someone else since we set %d (it was %d)",
			name, now, s->value, s->old);
	} else if ((r = sysctl_write(s->key, s->old)) < 0) {
		log_warnx("sysctl %s: cannot put back %d: %s", name, s->old, strerror(-r));
	} else {
		log_msg(lvl, "sysctl %s: %d -> %d (put back)", name, s->value, s->old);
	}
	free(s->key);
	free(s->h);
	memmove(&settings[i], &settings[i + 1], (n_settings - i - 1) * sizeof(*settings));
	if (--n_settings == 0) {
		free(settings);
		settings = NULL;
	}
}

/* Drop owner's hold on settings[i]; true if the setting went with it. */
static bool drop(size_t i, const void *owner, bool keep)
{
	struct setting *s = &settings[i];
	struct holder *h = holder_find(s, owner);

	if (!h)
		return false;
	*h = s->h[--s->n_h];
	if (s->n_h)
		return false;
	setting_end(i, keep);
	return true;
}

void sysctl_release(const void *owner, const char *key)
{
	for (size_t i = 0; i < n_settings; i++)
		if (streq(settings[i].key, key)) {
			drop(i, owner, false);
			return;
		}
}

void sysctl_mark(const void *owner)
{
	for (size_t i = 0; i < n_settings; i++) {
		struct holder *h = holder_find(&settings[i], owner);
		if (h)
			h->stale = true;
	}
}

void sysctl_sweep(const void *owner)
{
	for (size_t i = n_settings; i-- > 0;) {
		struct holder *h = holder_find(&settings[i], owner);
		if (h && h->stale)
			drop(i, owner, false);
	}
}

void sysctl_release_all(const void *owner, bool keep)
{
	for (size_t i = n_settings; i-- > 0;)
		drop(i, owner, keep);
}
