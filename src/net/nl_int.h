/*
 * nl_int.h - private helpers shared by the nl*.c files: a bounds-checked message builder,
 * defensive attribute readers and growable scratch space for parsed arrays.
 *
 * Not for use outside src/net/nl*.c; the public interface is nl.h.
 */
#ifndef EGRESS_NL_INT_H
#define EGRESS_NL_INT_H

#include <libmnl/libmnl.h>

#include "nl.h"
#include "util.h"

/* Flags of an nl_op request (NLM_F_REQUEST and NLM_F_ACK come on top). */
uint16_t nl_op_flags(enum nl_op op);

/*
 * Message builder over a caller's buffer.  The first error sticks (-EMSGSIZE when the
 * buffer is full) and turns every later call into a no-op, so a builder writes its message
 * top to bottom and checks once, at nlb_end().
 */
struct nlb {
	struct nlmsghdr *nlh;
	size_t cap;
	int err;
};

/* Start a message of type with NLM_F_REQUEST | NLM_F_ACK | flags in buf (caller's). */
void nlb_init(struct nlb *b, void *buf, size_t buflen, uint16_t type, uint16_t flags);
/* Append len zeroed bytes, aligned, and return them (NULL after an error). */
void *nlb_reserve(struct nlb *b, size_t len);
void nlb_put(struct nlb *b, uint16_t type, size_t len, const void *data);
void nlb_u8(struct nlb *b, uint16_t type, uint8_t v);
void nlb_u16(struct nlb *b, uint16_t type, uint16_t v);
void nlb_u32(struct nlb *b, uint16_t type, uint32_t v);
void nlb_be16(struct nlb *b, uint16_t type, uint16_t host);
void nlb_be32(struct nlb *b, uint16_t type, uint32_t host);
void nlb_str(struct nlb *b, uint16_t type, const char *s);
void nlb_flag(struct nlb *b, uint16_t type);
/* The address bytes (4 or 16) of a; -EAFNOSUPPORT if unset. */
void nlb_addr(struct nlb *b, uint16_t type, const struct addr *a);
/* Start a nest of type exactly as given (callers add NLA_F_NESTED where wanted). */
struct nlattr *nlb_nest(struct nlb *b, uint16_t type);
void nlb_nest_end(struct nlb *b, struct nlattr *nest);
/* Record an error of the caller's (e.g. -EINVAL); the first one sticks. */
void nlb_fail(struct nlb *b, int err);
/* The sticky error, 0 if the message is complete. */
int nlb_end(struct nlb *b);

/*
 * Attribute tables: tb[type] = the last attribute of type <= max found after hdrlen bytes
 * of payload (tb is the caller's, max + 1 entries, cleared here).  -EBADMSG if the message
 * is shorter than its fixed header.
 */
int nl_attrs(const struct nlmsghdr *nlh, size_t hdrlen, const struct nlattr **tb, unsigned max);
/* The same over the bytes [start, end), e.g. the attributes of one struct rtnexthop. */
int nl_attrs_range(const void *start, const void *end, const struct nlattr **tb, unsigned max);
int nl_attrs_nested(const struct nlattr *nest, const struct nlattr **tb, unsigned max);
/* Typed readers: -EBADMSG unless the payload has exactly the right size. */
int nl_get_u8(const struct nlattr *a, uint8_t *ret);
int nl_get_u16(const struct nlattr *a, uint16_t *ret);
int nl_get_u32(const struct nlattr *a, uint32_t *ret);
int nl_get_u64(const struct nlattr *a, uint64_t *ret);
int nl_get_be16(const struct nlattr *a, uint16_t *ret);
int nl_get_be32(const struct nlattr *a, uint32_t *ret);
/* A NUL-terminated string that fits buf (len bytes, caller's). */
int nl_get_str(const struct nlattr *a, char *buf, size_t len);
/* An address of family (4 or 16 bytes). */
int nl_get_addr(const struct nlattr *a, int family, struct addr *ret);

/*
 * Growable arrays for parsers that write hops or group members, used by the dumps and the
 * monitor.  Zero-initialise; nl_scratch_clear() frees.
 */
struct nl_scratch {
	struct nl_hop *hops;
	size_t n_hops;
	struct nl_nh_member *members;
	size_t n_members;
};
void nl_scratch_clear(struct nl_scratch *s);
int nl_route_parse_scratch(const struct nlmsghdr *nlh, struct nl_route *ret, struct nl_scratch *s);
int nl_nexthop_parse_scratch(
	const struct nlmsghdr *nlh, struct nl_nexthop *ret, struct nl_scratch *s);

/* The wrappers' send buffer (NL_MSG_BUFSIZE bytes, owned by nl). */
void *nl_sendbuf(struct nl *nl);

#endif
