/*
 * privs.h - keep only the capabilities a network daemon needs.
 */
#ifndef EGRESS_PRIVS_H
#define EGRESS_PRIVS_H

/*
 * Drop every capability but CAP_NET_ADMIN, CAP_NET_RAW and
 * CAP_NET_BIND_SERVICE from the effective, permitted and bounding sets, after
 * the privileged sockets are open.  A process without them has nothing to
 * drop and returns 0.  Returns 0 or -errno.
 */
int privs_drop(void);

#endif
