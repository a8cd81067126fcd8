/*
 * al_proto.h - the messages between egress-server's hub and egressd's allowlist agent:
 * JSON objects, one per WebSocket text message (doc/allowlist-protocol.md).
 *
 *   gateway -> server  {"type": "hello", "protocol": 1, "gateway": "gw1", "version": N}
 *                      (N: the version it holds, 0: none)
 *   server -> gateway  {"type": "snapshot", "version": V, "items": [ITEM...]}
 *                      {"type": "delta", "from": N, "version": V, "set": [ITEM...],
 *                       "del": ["KEY"...]}
 *   gateway -> server  {"type": "ack", "version": V}
 *   either way         {"type": "error", "version": V, "error": "why"} (then close)
 *
 * Every message carries a version.  A delta applies to exactly the version in "from";
 * a gateway that holds another one asks again with a new hello (or reconnects).
 * Heartbeats are WebSocket pings both ways (src/ws/).  Pure codec: no I/O.
 */
#ifndef EGRESS_AL_PROTO_H
#define EGRESS_AL_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "al_entry.h"

#define AL_PROTOCOL 1
#define AL_GATEWAY_MAX 64 /* a gateway's name: [A-Za-z0-9._-], 1-63 bytes */

enum al_msg_type {
	AL_MSG_HELLO,
	AL_MSG_SNAPSHOT,
	AL_MSG_DELTA,
	AL_MSG_ACK,
	AL_MSG_ERROR,
	_AL_MSG_MAX,
};
extern const char *const al_msg_type_name[_AL_MSG_MAX];

struct al_msg {
	enum al_msg_type type;
	int protocol;		      /* hello */
	char gateway[AL_GATEWAY_MAX]; /* hello */
	uint64_t version;	      /* every message */
	uint64_t from;		      /* delta */
	struct al_item *set;	      /* snapshot: items; delta: set */
	size_t n_set;
	char **del;		      /* delta: keys */
	size_t n_del;
	char *error;		      /* error */
};

void al_msg_init(struct al_msg *m);
void al_msg_clear(struct al_msg *m);
/* Append to m->set (copied) / m->del.  0 or -ENOMEM. */
int al_msg_add_set(struct al_msg *m, const struct al_item *it);
int al_msg_add_del(struct al_msg *m, const char *key);

/*
 * Parse one message of at most len bytes (not NUL-terminated).  Unknown types, missing
 * or mistyped members, bad items: -EINVAL with *err (field "items[3].dst").  *ret is
 * initialised by the call and the caller's to clear, also on error.
 */
int al_msg_parse(const char *buf, size_t len, struct al_msg *ret, struct al_error *err);
/* The message as compact JSON text; malloc'd, *len_ret its length; NULL on ENOMEM. */
char *al_msg_encode(const struct al_msg *m, size_t *len_ret);

#endif
