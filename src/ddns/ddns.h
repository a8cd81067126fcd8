/*
 * ddns.h - egressd's [ddns] module: the public address of each healthy uplink, published
 * under one DNS name (DynuDNS, or RFC 2136 with TSIG).
 */
#ifndef EGRESS_DDNS_H
#define EGRESS_DDNS_H

#include "module.h"

extern const struct module module_ddns;

#endif
