/*
 * modules.c - the table of egressd's modules: the one place that names them all.
 *
 * The daemon starts and reconfigures them in this order and stops them in the reverse
 * one.  The order matters: gateway mode diverts a subnet's TCP to the proxy and its DNS to
 * the forwarder, so it comes after both and starts only while the proxy runs
 * (module_gateway.needs); it goes first on the way out.  A new module adds its line here.
 */
#include "dns.h"
#include "gateway.h"
#include "modules.h"
#include "policy.h"
#include "proxy.h"
#include "route.h"
#include "util.h"

const struct module *const modules[] = {
	&module_route,
	&module_policy,
	&module_proxy,
	&module_dns,
	&module_gateway,
};
const size_t modules_n = ARRAY_SIZE(modules);
