/*
 * privs.c - least privilege through libcap-ng.
 *
 * egressd runs as root (or with ambient capabilities from its unit) only to
 * talk to the kernel's network stack; everything else is dropped once the
 * loop is set up.  Must not change the uid: files egressd reads on reload
 * (the configuration) stay readable as they were.
 */
#include <errno.h>
#include <linux/capability.h>

#include <cap-ng.h>

#include "log.h"
#include "privs.h"

int privs_drop(void)
{
	if (capng_get_caps_process() < 0)
		return -EIO;
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) == CAPNG_NONE)
		return 0;
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_updatev(CAPNG_ADD, CAPNG_EFFECTIVE | CAPNG_PERMITTED | CAPNG_BOUNDING_SET,
		    CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE, -1) < 0)
		return -EINVAL;
	if (capng_apply(CAPNG_SELECT_BOTH) < 0)
		return -EPERM;
	log_debug("privileges: kept CAP_NET_ADMIN, CAP_NET_RAW, CAP_NET_BIND_SERVICE");
	return 0;
}
