/*
 * devices.h - egressd's [devices] module: each LAN device with its own upstream identity.
 *
 * A device found on the LAN (neighbour events, the LAN DHCP server's leases) gets a macvlan
 * on the WAN carrying its MAC, its own DHCPv4 lease (dhcp4.h), IPv6 by SLAAC and DHCPv6
 * (dhcp6.h, ra.h), per-device SNAT and policy routing (dev_net.h) and port forwards, IPv4
 * by DNAT and IPv6 to IPv4 through a splice relay (dev_fwd.h).  Its state is kept in SQLite
 * (dev_store.h) so that a restart renews leases instead of acquiring new ones.
 */
#ifndef EGRESS_DEVICES_H
#define EGRESS_DEVICES_H

#include "module.h"

extern const struct module module_devices;

#endif
