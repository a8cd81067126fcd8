/*
 * daemon_change.c - an operator's changes of the running configuration: settings layered on
 * top of the file and the flags (env.change), a whole configuration posted through the API,
 * commit-confirmed with its timer, and the state a restart takes up.
 *
 * Every change is applied as a reload is (daemon_reconfigure(): build, validate, check,
 * apply); a change that does not validate changes nothing.  What is persisted is what a
 * restart would run: the settings in [api] state_dir/settings.json, a posted configuration in
 * the configuration file itself (the old one kept beside it as FILE.bak), both written whole
 * (fileio.h).  While a change awaits its confirmation the persisted state is the old one, so
 * a crash or a kill rolls it back as the timer does.  One change may await its confirmation
 * at a time: another gets -EBUSY.  Every change, confirmation and rollback is an EVENT_CONFIG
 * of the event log, with who made it.
 *
 * Must not block the loop beyond writing these small files, or keep a change that failed.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <jansson.h>

#include "api_conf.h"
#include "daemon_int.h"
#include "events.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "modules.h"
#include "util.h"

#define SETTINGS_FILE	  "settings.json"
#define SETTINGS_MAX	  (1024 * 1024)	     /* bytes of settings.json */
#define CONF_FILE_MAX	  (16 * 1024 * 1024) /* bytes of a configuration file kept as .bak */
#define SETTINGS_WHERE	  "operator setting" /* errors of the settings begin with it */

/* [api] state_dir, where the settings are kept. */
static const char *daemon_state_dir(const struct daemon *d)
{
	return conf_api(d->conf)->state_dir;
}

static void settings_path(const struct daemon *d, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", daemon_state_dir(d), SETTINGS_FILE);
}

/* The section type of that name (its name is static: conf_override.section wants one). */
static const struct conf_section_type *settings_type(const char *name)
{
	size_t n;
	const struct conf_section_type *const *types = egress_conf_types(&n);

	for (size_t i = 0; name && i < n; i++)
		if (streq(types[i]->name, name))
			return types[i];
	return NULL;
}

/* "uplink.isp1.weight", "global.log_level": a setting as --set names it. */
static void setting_origin(const char *section, const char *name, const char *key, char *buf,
	size_t len)
{
	snprintf(buf, len, "%s.%s%s%s", section, name ? name : "", name ? "." : "", key);
}

static void settings_add(struct conf_overrides *o, const char *section, const char *name,
	const char *key, const char *value)
{
	char origin[256];

	setting_origin(section, name, key, origin, sizeof(origin));
	conf_overrides_add(o, section, name, key, value, origin);
}

static void settings_copy(struct conf_overrides *dst, const struct conf_overrides *src)
{
	dst->where = SETTINGS_WHERE;
	for (size_t i = 0; i < src->n; i++)
		settings_add(dst, src->v[i].section, src->v[i].name, src->v[i].key,
			src->v[i].value);
}

static bool setting_is(const struct conf_override *ov, const struct conf_setting *v)
{
	return streq(ov->section, v->section) && streq(ov->key, v->key) &&
	       (ov->name ? v->name && streq(ov->name, v->name) : !v->name);
}

/* Put v on top of o: a key set again takes the new value; a NULL value takes it out. */
static void settings_merge(struct conf_overrides *o, const struct conf_setting *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *section = settings_type(v[i].section)->name;
		size_t j = 0;

		while (j < o->n && !setting_is(&o->v[j], &v[i]))
			j++;
		if (j < o->n) {
			free(o->v[j].name);
			free(o->v[j].key);
			free(o->v[j].value);
			free(o->v[j].origin);
			memmove(&o->v[j], &o->v[j + 1], (o->n - j - 1) * sizeof(*o->v));
			o->n--;
		}
		if (v[i].value)
			settings_add(o, section, v[i].name, v[i].key, v[i].value);
	}
}

/* May these settings be made on the running configuration?  Errors name each one. */
static int settings_check(const struct daemon *d, const struct conf_setting *v, size_t n,
	struct conf_errors *errs)
{
	size_t before = errs->n;

	for (size_t i = 0; i < n; i++) {
		const struct conf_setting *s = &v[i];
		const struct conf_section_type *t = settings_type(s->section);
		char origin[256], label[128];

		setting_origin(s->section ? s->section : "?", s->name, s->key ? s->key : "?", origin,
			sizeof(origin));
		snprintf(label, sizeof(label), "%s%s%s", s->section ? s->section : "",
			s->name ? " " : "", s->name ? s->name : "");
		struct conf_error_at at = {.section = label, .key = s->key, .seen = s->value};
		if (!t) {
			at.section = NULL;
			conf_errors_add_at(errs, &at, "%s: %s: no such section type", SETTINGS_WHERE,
				origin);
			continue;
		}
		if (t->named != (s->name != NULL)) {
			conf_errors_add_at(errs, &at, "%s: %s: [%s] %s", SETTINGS_WHERE, origin,
				t->name, t->named ? "needs a section name" : "takes no name");
			continue;
		}
		if (!s->key || !conf_key_find(t, s->key)) {
			conf_errors_add_at(errs, &at, "%s: %s: [%s] has no such key", SETTINGS_WHERE,
				origin, t->name);
			continue;
		}
		if (!s->value || !s->name)
			continue;
		const struct conf_section *sec = conf_find(d->conf, t->name, s->name);
		if (!sec)
			conf_errors_add_at(errs, &at, "%s: %s: there is no [%s %s]", SETTINGS_WHERE,
				origin, t->name, s->name);
		else if (sec->origin)
			conf_errors_add_at(errs, &at,
				"%s: %s: [%s %s] is implied by [%s]: change that section instead",
				SETTINGS_WHERE, origin, t->name, s->name, sec->origin->type->name);
	}
	return errs->n > before ? -EINVAL : 0;
}

static json_t *settings_json(const struct conf_setting *v, size_t n)
{
	json_t *list = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(list, json_pack("{s:s, s:s?, s:s, s:s?}", "section",
						    v[i].section, "name", v[i].name, "key", v[i].key,
						    "value", v[i].value));
	return list;
}

/* "uplink.isp1.weight = 3, uplink.isp2.enabled back to the file's" */
static void settings_describe(const struct conf_setting *v, size_t n, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < len; i++) {
		char origin[256];
		setting_origin(v[i].section, v[i].name, v[i].key, origin, sizeof(origin));
		off += (size_t)snprintf(buf + off, len - off, "%s%s%s%s", i ? ", " : "", origin,
			v[i].value ? " = " : " back to the file's",
			v[i].value ? v[i].value : "");
	}
}

/* ---- persisted state ---------------------------------------------------------------- */

static int settings_save(const struct daemon *d, const struct conf_overrides *o)
{
	const char *dir = daemon_state_dir(d);
	char path[PATH_MAX];
	json_t *list = json_array();
	char *text;
	int r;

	for (size_t i = 0; i < o->n; i++) {
		json_t *e = json_pack("{s:s}", "section", o->v[i].section);
		if (o->v[i].name) /* an unnamed section's setting has none */
			json_object_set_new(e, "name", json_string(o->v[i].name));
		json_object_set_new(e, "key", json_string(o->v[i].key));
		json_object_set_new(e, "value", json_string(o->v[i].value));
		json_array_append_new(list, e);
	}
	json_t *root = json_pack("{s:o}", "settings", list);
	text = json_dumps(root, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
	json_decref(root);
	settings_path(d, path, sizeof(path));
	r = dir_ensure(dir, 0700);
	if (r == 0)
		r = file_write_atomic(path, text, strlen(text), 0600);
	if (r < 0)
		log_error("%s: cannot keep the operator's settings: %s", path, strerror(-r));
	free(text);
	return r;
}

/* The settings kept in the state folder; malformed entries are logged and left out. */
static void settings_read(const struct daemon *d, struct conf_overrides *ret)
{
	char path[PATH_MAX], *text = NULL;
	json_error_t jerr;
	json_t *root, *list, *e;
	size_t i;
	int r;

	settings_path(d, path, sizeof(path));
	r = file_read(path, SETTINGS_MAX, &text, NULL);
	if (r == -ENOENT)
		return;
	if (r < 0) {
		log_error("%s: cannot read the operator's settings: %s", path, strerror(-r));
		return;
	}
	root = json_loads(text, 0, &jerr);
	free(text);
	list = json_object_get(root, "settings");
	if (!json_is_array(list)) {
		log_error("%s: not the operator's settings (line %d: %s): left out", path, jerr.line,
			root ? "expected {\"settings\": [...]}" : jerr.text);
		json_decref(root);
		return;
	}
	json_array_foreach(list, i, e) {
		const char *section = NULL, *name = NULL, *key = NULL, *value = NULL;
		const struct conf_section_type *t;

		if (json_unpack(e, "{s:s, s?s, s:s, s:s}", "section", &section, "name", &name, "key",
			    &key, "value", &value) < 0 ||
			!(t = settings_type(section)) || !conf_key_find(t, key) ||
			t->named != (name != NULL)) {
			log_error("%s: setting %zu is not one of egress.conf: left out", path, i);
			continue;
		}
		settings_add(ret, t->name, name, key, value);
	}
	json_decref(root);
}

void daemon_settings_load(struct daemon *d)
{
	struct conf_overrides o = {.where = SETTINGS_WHERE};
	struct conf_errors errs = {0};
	struct conf *conf;

	settings_read(d, &o);
	if (!o.n)
		return;
	conf = egress_conf_layers(d->opts->conf_path, NULL, d->opts->overrides, &o, d->conf, &errs);
	if (!conf) {
		log_error("the operator's settings do not apply to this configuration; running "
			  "without them:");
		for (size_t i = 0; i < errs.n; i++)
			log_error("  %s", errs.msgs[i]);
		conf_errors_clear(&errs);
		conf_overrides_clear(&o);
		return;
	}
	conf_free(d->conf);
	d->conf = conf;
	d->settings = o;
	log_info("running with %zu operator setting%s", o.n, o.n == 1 ? "" : "s");
}

/* The posted configuration becomes the file: written whole, the old one kept as FILE.bak. */
static int config_file_write(const char *path, const char *text)
{
	char bak[PATH_MAX], *old = NULL;
	mode_t mode = 0644;
	struct stat st;
	size_t len;
	int r;

	if (stat(path, &st) == 0)
		mode = st.st_mode & 07777;
	r = file_read(path, CONF_FILE_MAX, &old, &len);
	if (r == 0) {
		snprintf(bak, sizeof(bak), "%s.bak", path);
		r = file_write_atomic(bak, old, len, mode);
		free(old);
	} else if (r == -ENOENT) {
		r = 0;
	}
	if (r == 0)
		r = file_write_atomic(path, text, strlen(text), mode);
	if (r < 0)
		log_error("%s: cannot write the configuration: %s", path, strerror(-r));
	return r;
}

/*
 * Keep what runs, so that a restart runs it: the settings to the state folder, then a posted
 * configuration to the file.  kept: the settings persisted so far, put back when the file
 * cannot be written.  0 or -errno (what was persisted is as it was).
 */
static int daemon_keep(struct daemon *d, const struct conf_overrides *kept)
{
	int r = settings_save(d, &d->settings);

	if (r < 0 || !d->text)
		return r;
	r = config_file_write(d->opts->conf_path, d->text);
	if (r < 0) {
		settings_save(d, kept);
		return r;
	}
	FREE_AND_NULL(d->text);
	return 0;
}

/* ---- switching layers ---------------------------------------------------------------- */

/*
 * Run text and settings (both taken) in place of the running layers, whose values go to
 * *old_text and *old_settings.  -EINVAL: nothing changed.  A module that fails to take the
 * result: back to the old layers, -errno.
 */
static int layers_switch(struct daemon *d, char *text, struct conf_overrides *settings,
	const char *why, struct conf_errors *errs, char **old_text,
	struct conf_overrides *old_settings)
{
	struct conf_errors back_errs = {0};
	int r;

	r = daemon_reconfigure(d, text, settings, why, errs);
	if (r == -EINVAL) {
		free(text);
		conf_overrides_clear(settings);
		return r;
	}
	*old_text = d->text;
	*old_settings = d->settings;
	d->text = text;
	d->settings = *settings;
	if (r == 0)
		return 0;
	/* a module could not take it: back to what ran */
	log_error("%s: a module could not take the change (%s): rolling back", why, strerror(-r));
	if (daemon_reconfigure(d, *old_text, old_settings, "rollback", &back_errs) == -EINVAL)
		conf_errors_clear(&back_errs);
	free(d->text);
	conf_overrides_clear(&d->settings);
	d->text = *old_text;
	d->settings = *old_settings;
	*old_text = NULL;
	*old_settings = (struct conf_overrides){0};
	return r;
}

/* ---- commit-confirmed ---------------------------------------------------------------- */

static void pending_free(struct daemon_pending *p)
{
	if (!p)
		return;
	event_free(p->timer);
	conf_overrides_clear(&p->old_settings);
	free(p->what);
	free(p->who);
	free(p);
}

/* Go back to what the persisted state says: the file and the old settings. */
static void daemon_rollback(struct daemon *d, const char *who, const char *why)
{
	struct daemon_pending *p = d->pending;
	struct conf_errors errs = {0};
	char *old_text = NULL;
	struct conf_overrides old_settings = {0};
	int r;

	d->pending = NULL;
	r = layers_switch(d, NULL, &p->old_settings, "rollback", &errs, &old_text, &old_settings);
	p->old_settings = (struct conf_overrides){0}; /* taken */
	if (r == -EINVAL) {
		log_error("rollback of %s failed, running it still:", p->what);
		for (size_t i = 0; i < errs.n; i++)
			log_error("  %s", errs.msgs[i]);
		conf_errors_clear(&errs);
	}
	free(old_text);
	conf_overrides_clear(&old_settings);
	event_log_add(d->events, EVENT_CONFIG, who,
		json_pack("{s:s, s:s, s:s, s:b}", "action", "rollback", "what", p->what, "by",
			p->who, "ok", r == 0),
		"%s (by %s) rolled back: %s", p->what, p->who, why);
	log_info("%s (by %s) rolled back: %s", p->what, p->who, why);
	pending_free(p);
}

static void daemon_pending_cb(evutil_socket_t fd, short what, void *arg)
{
	struct daemon *d = arg;

	(void)fd;
	(void)what;
	daemon_rollback(d, NULL, "not confirmed in time");
}

/* old_settings is taken. */
static void pending_start(struct daemon *d, const char *what, const char *who,
	uint32_t confirm_ms, struct conf_overrides *old_settings)
{
	struct daemon_pending *p = xcalloc(1, sizeof(*p));
	struct timeval tv = {.tv_sec = confirm_ms / 1000, .tv_usec = (confirm_ms % 1000) * 1000};

	p->what = xstrdup(what);
	p->who = xstrdup(who);
	p->deadline_ms = now_ms() + confirm_ms;
	p->old_settings = *old_settings;
	*old_settings = (struct conf_overrides){0};
	p->timer = evtimer_new(loop_base(d->loop), daemon_pending_cb, d);
	if (!p->timer || evtimer_add(p->timer, &tv) < 0)
		fatalx("cannot arm the confirmation timer");
	d->pending = p;
}

int daemon_confirm(struct daemon *d, const char *who)
{
	struct daemon_pending *p = d->pending;
	int r;

	if (!p)
		return -ENOENT;
	r = daemon_keep(d, &p->old_settings);
	if (r < 0)
		return r;
	d->pending = NULL;
	event_log_add(d->events, EVENT_CONFIG, who,
		json_pack("{s:s, s:s, s:s}", "action", "confirm", "what", p->what, "by", p->who),
		"%s (by %s) confirmed", p->what, p->who);
	log_info("%s (by %s) confirmed by %s", p->what, p->who, who);
	pending_free(p);
	return 0;
}

int daemon_cancel(struct daemon *d, const char *who)
{
	char why[160];

	if (!d->pending)
		return -ENOENT;
	snprintf(why, sizeof(why), "cancelled by %s", who);
	daemon_rollback(d, who, why);
	return 0;
}

/* ---- the changes ---------------------------------------------------------------------- */

/* After a change that runs: await the confirmation, or keep it now (a failure takes it
 * back).  what: how the change reads in the log; data (taken) goes to its event. */
static int change_finish(struct daemon *d, const char *what, const char *who,
	uint32_t confirm_ms, char *old_text, struct conf_overrides *old_settings, json_t *data)
{
	struct conf_errors errs = {0};
	char *t = NULL;
	struct conf_overrides s = {0};
	int r;

	if (confirm_ms) {
		free(old_text); /* a rollback goes back to the file: nothing else awaits */
		pending_start(d, what, who, confirm_ms, old_settings);
		json_object_set_new(data, "confirm_s", json_integer((confirm_ms + 999) / 1000));
		event_log_add(d->events, EVENT_CONFIG, who, data,
			"%s; rolls back in %us unless confirmed", what, (confirm_ms + 999) / 1000);
		return 0;
	}
	r = daemon_keep(d, old_settings);
	if (r < 0) {
		layers_switch(d, old_text, old_settings, "rollback", &errs, &t, &s);
		conf_errors_clear(&errs);
		free(t);
		conf_overrides_clear(&s);
		json_decref(data);
		return r;
	}
	free(old_text);
	conf_overrides_clear(old_settings);
	event_log_add(d->events, EVENT_CONFIG, who, data, "%s", what);
	return 0;
}

static int daemon_change(struct daemon *d, const struct conf_setting *v, size_t n,
	uint32_t confirm_ms, const char *who, struct conf_errors *errs)
{
	struct conf_overrides next = {0}, old_settings = {0};
	char what[512], why[600];
	char *old_text = NULL;
	int r;

	if (d->pending)
		return -EBUSY;
	if (settings_check(d, v, n, errs) < 0)
		return -EINVAL;
	settings_copy(&next, &d->settings);
	settings_merge(&next, v, n);
	settings_describe(v, n, what, sizeof(what));
	snprintf(why, sizeof(why), "%s, by %s", what, who);
	r = layers_switch(d, d->text ? xstrdup(d->text) : NULL, &next, why, errs, &old_text,
		&old_settings);
	if (r < 0)
		return r;
	return change_finish(d, what, who, confirm_ms, old_text, &old_settings,
		json_pack("{s:s, s:o}", "action", "change", "settings", settings_json(v, n)));
}

int daemon_change_cb(void *arg, const struct conf_setting *v, size_t n, uint32_t confirm_ms,
	const char *who, struct conf_errors *errs)
{
	return daemon_change(arg, v, n, confirm_ms, who ? who : "egressd", errs);
}

int daemon_config_post(struct daemon *d, const char *text, uint32_t confirm_ms, const char *who,
	struct conf_errors *errs)
{
	struct conf_overrides none = {.where = SETTINGS_WHERE}, old_settings = {0};
	char *old_text = NULL, why[300];
	int r;

	if (!d->opts->conf_path)
		return -ENOENT;
	if (d->pending)
		return -EBUSY;
	snprintf(why, sizeof(why), "configuration posted by %s", who);
	r = layers_switch(d, xstrdup(text), &none, why, errs, &old_text, &old_settings);
	if (r < 0)
		return r;
	return change_finish(d, "configuration posted", who, confirm_ms, old_text, &old_settings,
		json_pack("{s:s}", "action", "config"));
}

char *daemon_conf_text(const struct conf *conf)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		fatal("open_memstream");
	conf_print(conf, f);
	fclose(f);
	return text;
}

void daemon_change_clear(struct daemon *d)
{
	pending_free(d->pending);
	d->pending = NULL;
	conf_overrides_clear(&d->settings);
	FREE_AND_NULL(d->text);
}
