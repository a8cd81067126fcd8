/*
 * dev_fwd.h - port forwards of the devices: the model and the IPv6 -> IPv4 relay.
 *
 * IPv4 forwards are DNAT rules (dev_net_nft()).  IPv6 clients reach an IPv4-only device
 * through egressd's own splice relay (the proxy's relay pool, relay.h): a listener bound to
 * the device's WAN IPv6 and the forward's outer port (IPV6_FREEBIND: it may be bound before
 * DAD ends) accepts, connects to the device's LAN IPv4 and inner port, and relays.  No
 * socat, no HAProxy, no process per port.  Counters per forward (connections, bytes each way).
 */
#ifndef EGRESS_DEV_FWD_H
#define EGRESS_DEV_FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cidr.h"
#include "dev_store.h"

struct event_base;
struct dev_relay;

/*
 * "8080:80" -> outer 8080, inner 80; ports 1..65535.  0 or -EINVAL with why (static text).
 */
int dev_port_map_parse(const char *s, uint16_t *outer, uint16_t *inner, const char **why);

/* idle_ms: idle timeout of a relayed connection (0: none); mark: the listeners' SO_MARK
 * (their connections inherit it), which the device's IPv6 rule asks for (0: none). */
int dev_relay_new(struct event_base *base, uint32_t idle_ms, uint32_t mark,
	struct dev_relay **ret);
/*
 * Make the device's listeners exactly fwds[0..n) on listen6 (unset, or n = 0: none) towards
 * dst4.  Listeners already right stay (their connections too).  0 or the first -errno (the
 * rest still attempted; a port taken is logged with the device and port).
 */
int dev_relay_set(struct dev_relay *r, const uint8_t mac[6], const struct addr *listen6,
	const struct addr *dst4, const struct dev_forward *fwds, size_t n);
/* Per forward of mac: [{"gateway_port", "device_port", "listen", "connections_active",
 * "connections_total", "bytes_in", "bytes_out", "errors"}]. */
json_t *dev_relay_json(const struct dev_relay *r, const uint8_t mac[6]);
void dev_relay_free(struct dev_relay *r);

#endif
