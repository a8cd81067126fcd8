/*
 * al_proto.c - the allowlist protocol's messages (al_proto.h, doc/allowlist-protocol.md):
 * parsing one WebSocket text message into struct al_msg and encoding one back.
 *
 * Pure codec: no I/O, no logging, no state between messages.  What a message means (which
 * version a delta applies to, whether a protocol number is spoken) is for the hub and the
 * agent; this file checks only that a message is well formed: its members, their types,
 * every item, and that no key appears twice in one message.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "al_proto.h"
#include "util.h"

const char *const al_msg_type_name[_AL_MSG_MAX] = {
	[AL_MSG_HELLO] = "hello",
	[AL_MSG_SNAPSHOT] = "snapshot",
	[AL_MSG_DELTA] = "delta",
	[AL_MSG_ACK] = "ack",
	[AL_MSG_ERROR] = "error",
};

#define ERROR_MAX 1024 /* bytes of an error message's text */

void al_msg_init(struct al_msg *m)
{
	memset(m, 0, sizeof(*m));
}

void al_msg_clear(struct al_msg *m)
{
	for (size_t i = 0; i < m->n_set; i++)
		al_item_clear(&m->set[i]);
	free(m->set);
	for (size_t i = 0; i < m->n_del; i++)
		free(m->del[i]);
	free(m->del);
	free(m->error);
	al_msg_init(m);
}

/* Room for one more element in *v (n used); capacity doubles at powers of two. */
static int grow(void **v, size_t n, size_t size)
{
	void *p;

	if (n & (n - 1))
		return 0; /* not a power of two (nor 0): there is room */
	if (n > SIZE_MAX / size / 2)
		return -ENOMEM;
	p = realloc(*v, (n ? n * 2 : 1) * size);
	if (!p)
		return -ENOMEM;
	*v = p;
	return 0;
}

int al_msg_add_set(struct al_msg *m, const struct al_item *it)
{
	int r = grow((void **)&m->set, m->n_set, sizeof(*m->set));

	if (r == 0)
		r = al_item_copy(it, &m->set[m->n_set]);
	if (r == 0)
		m->n_set++;
	return r;
}

int al_msg_add_del(struct al_msg *m, const char *key)
{
	int r = grow((void **)&m->del, m->n_del, sizeof(*m->del));

	if (r < 0)
		return r;
	m->del[m->n_del] = strdup(key);
	if (!m->del[m->n_del])
		return -ENOMEM;
	m->n_del++;
	return 0;
}

/* --- parsing --- */

/* Message members, by type: what may appear (a "type" member always does). */
enum {
	M_PROTOCOL = 1 << 0,
	M_GATEWAY = 1 << 1,
	M_VERSION = 1 << 2,
	M_FROM = 1 << 3,
	M_ITEMS = 1 << 4,
	M_SET = 1 << 5,
	M_DEL = 1 << 6,
	M_ERROR = 1 << 7,
};

static const char *const member_name[] = { "protocol", "gateway", "version", "from", "items", "set",
	"del", "error" };

static const unsigned members_of[_AL_MSG_MAX] = {
	[AL_MSG_HELLO] = M_PROTOCOL | M_GATEWAY | M_VERSION,
	[AL_MSG_SNAPSHOT] = M_VERSION | M_ITEMS,
	[AL_MSG_DELTA] = M_FROM | M_VERSION | M_SET | M_DEL,
	[AL_MSG_ACK] = M_VERSION,
	[AL_MSG_ERROR] = M_VERSION | M_ERROR,
};

static int version_get(const json_t *v, const char *name, uint64_t *ret, struct al_error *err)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return al_error_set(err, name, "expected a version, an integer from 0");
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

static bool gateway_name_valid(const char *s, size_t n)
{
	if (n == 0 || n >= AL_GATEWAY_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
			    (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' ||
			    s[i] == '-'))
			return false;
	return true;
}

/* An array of items into m->set; name "items" or "set". */
static int items_get(const json_t *a, const char *name, struct al_msg *m, struct al_error *err)
{
	struct al_error ie;
	char f[48];
	size_t i;
	json_t *x;
	int r;

	if (!json_is_array(a))
		return al_error_set(err, name, "expected an array of items");
	m->set = calloc(json_array_size(a) ? json_array_size(a) : 1, sizeof(*m->set));
	if (!m->set)
		return -ENOMEM;
	json_array_foreach(a, i, x)
	{
		r = al_item_from_json(x, &m->set[i], &ie);
		m->n_set = i + 1; /* cleared by al_msg_clear() even on error */
		if (r < 0) {
			snprintf(f, sizeof(f), "%s[%zu]", name, i);
			if (r != -EINVAL)
				return r;
			return al_error_set(
				err, f, "%s%s%s", ie.field, ie.field[0] ? ": " : "", ie.msg);
		}
	}
	return 0;
}

static int del_get(const json_t *a, struct al_msg *m, struct al_error *err)
{
	char f[48];
	size_t i;
	json_t *x;

	if (!json_is_array(a))
		return al_error_set(err, "del", "expected an array of keys");
	m->del = calloc(json_array_size(a) ? json_array_size(a) : 1, sizeof(*m->del));
	if (!m->del)
		return -ENOMEM;
	json_array_foreach(a, i, x)
	{
		snprintf(f, sizeof(f), "del[%zu]", i);
		if (!json_is_string(x) || strlen(json_string_value(x)) != json_string_length(x) ||
			!al_item_key_valid(json_string_value(x)))
			return al_error_set(
				err, f, "expected an item's key: \"42\" or \"42/203.0.113.7\"");
		m->del[i] = strdup(json_string_value(x));
		if (!m->del[i])
			return -ENOMEM;
		m->n_del = i + 1;
	}
	return 0;
}

static int key_ptr_cmp(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* No key twice among the message's items and deletions (one version holds a key once). */
static int keys_unique(const struct al_msg *m, struct al_error *err)
{
	size_t n = m->n_set + m->n_del;
	const char **keys;
	int r = 0;

	if (n < 2)
		return 0;
	keys = malloc(n * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	for (size_t i = 0; i < m->n_set; i++)
		keys[i] = m->set[i].key;
	for (size_t i = 0; i < m->n_del; i++)
		keys[m->n_set + i] = m->del[i];
	qsort(keys, n, sizeof(*keys), key_ptr_cmp);
	for (size_t i = 1; i < n && r == 0; i++)
		if (streq(keys[i - 1], keys[i]))
			r = al_error_set(err, m->type == AL_MSG_SNAPSHOT ? "items" : "set",
				"key \"%s\" appears more than once", keys[i]);
	free(keys);
	return r;
}

static int member_get(const json_t *v, unsigned which, struct al_msg *m, struct al_error *err)
{
	json_int_t p;

	switch (which) {
	case M_PROTOCOL:
		p = json_is_integer(v) ? json_integer_value(v) : 0;
		if (p < 1 || p > INT32_MAX)
			return al_error_set(
				err, "protocol", "expected the protocol's number, %d", AL_PROTOCOL);
		m->protocol = (int)p;
		return 0;
	case M_GATEWAY:
		if (!json_is_string(v) ||
			!gateway_name_valid(json_string_value(v), json_string_length(v)))
			return al_error_set(err, "gateway",
				"expected a gateway's name: 1 to %d letters, "
				"digits, '.', '_' or '-'",
				AL_GATEWAY_MAX - 1);
		snprintf(m->gateway, sizeof(m->gateway), "%s", json_string_value(v));
		return 0;
	case M_VERSION:
		return version_get(v, "version", &m->version, err);
	case M_FROM:
		return version_get(v, "from", &m->from, err);
	case M_ITEMS:
		return items_get(v, "items", m, err);
	case M_SET:
		return items_get(v, "set", m, err);
	case M_DEL:
		return del_get(v, m, err);
	case M_ERROR:
		if (!json_is_string(v) || json_string_length(v) == 0 ||
			json_string_length(v) > ERROR_MAX ||
			strlen(json_string_value(v)) != json_string_length(v))
			return al_error_set(err, "error",
				"expected a reason, a string of 1 to %d bytes", ERROR_MAX);
		m->error = strdup(json_string_value(v));
		return m->error ? 0 : -ENOMEM;
	}
	abort();
}

static int msg_from_json(json_t *o, struct al_msg *m, struct al_error *err)
{
	const char *key, *type;
	unsigned allowed, seen = 0;
	json_t *v;
	size_t k;
	int r;

	if (!json_is_object(o))
		return al_error_set(err, "", "expected a JSON object");
	v = json_object_get(o, "type");
	if (!v || !json_is_string(v))
		return al_error_set(
			err, "type", "is required: hello, snapshot, delta, ack or error");
	type = json_string_value(v);
	for (k = 0; k < _AL_MSG_MAX; k++)
		if (streq(type, al_msg_type_name[k]))
			break;
	if (k == _AL_MSG_MAX)
		return al_error_set(err, "type",
			"unknown message type; expected hello, snapshot, delta, "
			"ack or error");
	m->type = (enum al_msg_type)k;
	allowed = members_of[m->type];
	json_object_foreach(o, key, v)
	{
		if (streq(key, "type"))
			continue;
		for (k = 0; k < ARRAY_SIZE(member_name); k++)
			if (streq(key, member_name[k]))
				break;
		if (k == ARRAY_SIZE(member_name) || !(allowed & (1u << k)))
			return al_error_set(err, key, "is not a member of a %s message",
				al_msg_type_name[m->type]);
		r = member_get(v, 1u << k, m, err);
		if (r < 0)
			return r;
		seen |= 1u << k;
	}
	for (k = 0; k < ARRAY_SIZE(member_name); k++)
		if ((allowed & ~seen) & (1u << k))
			return al_error_set(err, member_name[k], "is required in a %s message",
				al_msg_type_name[m->type]);
	if (m->type == AL_MSG_DELTA && m->from > m->version)
		return al_error_set(err, "from", "is past the delta's version");
	return keys_unique(m, err);
}

int al_msg_parse(const char *buf, size_t len, struct al_msg *ret, struct al_error *err)
{
	json_error_t je;
	json_t *o;
	int r;

	al_msg_init(ret);
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
	if (!o)
		return al_error_set(err, "", "not JSON: %s (at byte %d)", je.text, je.position);
	r = msg_from_json(o, ret, err);
	json_decref(o);
	return r;
}

/* --- encoding --- */

static json_t *items_json(const struct al_item *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, al_item_to_json(&v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *keys_json(char *const *v, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a && i < n; i++) {
		if (json_array_append_new(a, json_string(v[i])) < 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static json_t *msg_json(const struct al_msg *m)
{
	const char *type = al_msg_type_name[m->type];
	json_int_t version = (json_int_t)m->version;

	switch (m->type) {
	case AL_MSG_HELLO:
		return json_pack("{s:s, s:i, s:s, s:I}", "type", type, "protocol", m->protocol,
			"gateway", m->gateway, "version", version);
	case AL_MSG_SNAPSHOT:
		return json_pack("{s:s, s:I, s:o}", "type", type, "version", version, "items",
			items_json(m->set, m->n_set));
	case AL_MSG_DELTA:
		return json_pack("{s:s, s:I, s:I, s:o, s:o}", "type", type, "from",
			(json_int_t)m->from, "version", version, "set",
			items_json(m->set, m->n_set), "del", keys_json(m->del, m->n_del));
	case AL_MSG_ACK:
		return json_pack("{s:s, s:I}", "type", type, "version", version);
	case AL_MSG_ERROR:
		return json_pack("{s:s, s:I, s:s}", "type", type, "version", version, "error",
			m->error ? m->error : "error");
	case _AL_MSG_MAX:
		break;
	}
	abort(); /* a message of no type: the caller's bug */
}

char *al_msg_encode(const struct al_msg *m, size_t *len_ret)
{
	json_t *o = msg_json(m);
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	if (s && len_ret)
		*len_ret = strlen(s);
	return s;
}
