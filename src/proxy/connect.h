/*
 * connect.h - outbound TCP connects through chosen uplinks, raced so that no connect waits
 * for the OS.
 *
 * A race tries its candidates (uplinks, in the caller's order) one after another: the next
 * starts at once when one fails (refused, unreachable), or after race_ms while the earlier
 * ones are still trying; the first to connect wins and the others are closed.  Also the
 * socket set-up every outbound socket of the proxy and the DNS forwarder shares.
 */
#ifndef EGRESS_CONNECT_H
#define EGRESS_CONNECT_H

#include <net/if.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cidr.h"

struct event_base;

#define CONNECT_MAX_VIAS 8

/* One way out. */
struct connect_via {
	int uplink;	       /* the caller's index, handed back */
	struct addr source;    /* bind here (port 0) if set */
	uint32_t mark;	       /* SO_MARK if not 0 */
	char ifname[IFNAMSIZ]; /* SO_BINDTODEVICE if not "" and no source */
};

struct connect_opts {
	uint32_t race_ms;     /* start the next candidate after this; 0: only when one fails */
	uint32_t deadline_ms; /* give up after this (-ETIMEDOUT); 0: when the kernel does */
};

/*
 * fd: the connected socket (nonblocking; ownership passes to the callback) or -1 with err
 * (-errno: the last error seen, -ETIMEDOUT at the deadline, -EAFNOSUPPORT when no candidate
 * had the target's family).  uplink: the winner's .uplink, or on failure that of the candidate
 * whose error err is (-1 if none).  attempts: how many connects were started.  The race is
 * freed before the callback runs: forget its pointer there.
 */
typedef void (*connect_done_cb)(int fd, int err, int uplink, int attempts, void *arg);

struct connect_race;

/*
 * Start a race to target (borrowed; AF_INET or AF_INET6 with its port) over vias (borrowed,
 * copied; 1 <= n <= CONNECT_MAX_VIAS) in that order; a candidate whose source is of the other
 * family is skipped.  o (borrowed) may be NULL for no racing and no deadline.  Returns 0 and
 * the race in *ret (owned by the loop until cb runs or connect_race_cancel() is called), or
 * -errno (-EINVAL bad arguments) with no callback.  cb runs exactly once, on base, never from
 * inside this function.
 */
int connect_race_start(struct event_base *base, const struct sockaddr *target, socklen_t tlen,
	const struct connect_via *vias, size_t n, const struct connect_opts *o, connect_done_cb cb,
	void *arg, struct connect_race **ret);
/* Stop a race: closes its sockets and frees it; no callback after this.  Accepts NULL. */
void connect_race_cancel(struct connect_race *r);

/*
 * A nonblocking, close-on-exec socket of family and type (SOCK_STREAM or SOCK_DGRAM) that
 * leaves through via (borrowed; NULL: no binding): SO_MARK when via->mark, bound to
 * via->source port 0 (streams with IP_BIND_ADDRESS_NO_PORT, so the port is chosen at connect
 * time and a source is not limited to one set of 64k ports), else SO_BINDTODEVICE when
 * via->ifname[0]; TCP_NODELAY on streams.  Returns the fd (the caller's) or -errno:
 * -EAFNOSUPPORT when the source is of the other family.
 */
int uplink_socket(int family, int type, const struct connect_via *via);

#endif
