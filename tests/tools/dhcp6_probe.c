/*
 * dhcp6_probe.c - runs the DHCPv6 clients (src/devices/dhcp6.h) on given interfaces and the
 * router advertisement watch (src/devices/ra.h) on another, and prints what they report as
 * JSON lines on stdout, for the lab tests (tests/lab/test_dhcp6.py).
 *
 *   dhcp6_probe [--ra IF] [--solicit] [--kept IF=JSON]... IF...
 *
 * One client per IF, with the DUID-LL and IAID of the interface's MAC.  --kept gives IF a
 * lease to start with, as the store would after a restart: JSON as in a "bound" line
 * (addr, preferred, valid, t1, t2, server_duid) plus "obtained_at" (unix seconds).  Lines:
 *   {"event": "ready"}
 *   {"event": "bound"|"renewed"|"lost", "if": IF, "addr": ..., "preferred": s, "valid": s,
 *    "t1": s, "t2": s, "server": ..., "dns": [...], "duid": HEX, "iaid": N}
 *   {"event": "ra", "if": IF, "router": ..., "router_mac": ..., "managed": B, "other": B,
 *    "lifetime": s, "prefixes": [{"prefix": ..., "autonomous": B, "onlink": B, ...}]}
 *   {"event": "state", "if": IF, "state": NAME, "sent": N, "received": N, "bad": N}
 * Commands on stdin, one a line: "recheck IF", "release IF", "decline IF", "stop IF",
 * "start IF", "state IF", "solicit" (a router solicitation).  End of input ends the probe
 * (without releasing).  Must not change anything on the interfaces: it only talks.
 */
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "devices/dhcp6.h"
#include "devices/ra.h"
#include "log.h"

#define MAX_CLIENTS 64

struct probe_client {
	char name[IF_NAMESIZE];
	uint8_t duid[DHCP6_DUID_MAX];
	size_t duid_len;
	uint32_t iaid;
	struct dhcp6_client *c;
	bool has_kept;
	struct dhcp6_lease kept;
};

static struct probe_client clients[MAX_CLIENTS];
static size_t n_clients;
static char ra_name[IF_NAMESIZE];
static struct ra_watch *ra;
static struct event_base *base;

static void emit(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);

	printf("%s\n", s);
	fflush(stdout);
	free(s);
	json_decref(j);
}

static json_t *addr_json(const struct addr *a)
{
	char buf[ADDR_STRLEN];

	return json_string(addr_str(a, buf, sizeof(buf)));
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
	char buf[2 * DHCP6_DUID_MAX + 1];

	for (size_t i = 0; i < n; i++)
		snprintf(buf + 2 * i, 3, "%02x", p[i]);
	buf[2 * n] = 0;
	return json_string(buf);
}

static void dhcp6_cb_print(void *arg, enum dhcp6_event ev, const struct dhcp6_lease *l)
{
	static const char *const names[_DHCP6_EV_MAX] = { "bound", "renewed", "lost" };
	struct probe_client *pc = arg;
	json_t *dns = json_array();

	for (size_t i = 0; i < l->n_dns; i++)
		json_array_append_new(dns, addr_json(&l->dns[i]));
	emit(json_pack("{s:s, s:s, s:o, s:I, s:I, s:I, s:I, s:o, s:o, s:I, s:o, s:o, s:I}",
		"event", names[ev], "if", pc->name, "addr", addr_json(&l->addr), "preferred",
		(json_int_t)l->preferred_s, "valid", (json_int_t)l->valid_s, "t1",
		(json_int_t)l->t1_s, "t2", (json_int_t)l->t2_s, "server", addr_json(&l->server),
		"server_duid", hex_json(l->server_duid, l->server_duid_len), "obtained_at",
		(json_int_t)l->obtained_at, "dns", dns, "duid", hex_json(pc->duid, pc->duid_len),
		"iaid", (json_int_t)pc->iaid));
}

static void ra_cb_print(void *arg, const struct ra_info *r)
{
	json_t *pfx = json_array();
	char buf[CIDR_STRLEN], mac[18];

	(void)arg;
	for (size_t i = 0; i < r->n_prefixes; i++) {
		const struct ra_prefix *p = &r->prefixes[i];

		json_array_append_new(pfx, json_pack("{s:s, s:b, s:b, s:I, s:I}", "prefix",
			cidr_str(&p->prefix, buf, sizeof(buf)), "onlink", p->onlink, "autonomous",
			p->autonomous, "valid", (json_int_t)p->valid_s, "preferred",
			(json_int_t)p->preferred_s));
	}
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", r->router_mac[0],
		r->router_mac[1], r->router_mac[2], r->router_mac[3], r->router_mac[4],
		r->router_mac[5]);
	emit(json_pack("{s:s, s:s, s:o, s:s, s:b, s:b, s:i, s:I, s:o}", "event", "ra", "if", ra_name,
		"router", addr_json(&r->router), "router_mac", mac, "managed", r->managed, "other",
		r->other, "lifetime", (int)r->lifetime_s, "mtu", (json_int_t)r->mtu, "prefixes",
		pfx));
}

static struct probe_client *find(const char *name)
{
	for (size_t i = 0; i < n_clients; i++)
		if (!strcmp(clients[i].name, name))
			return &clients[i];
	return NULL;
}

static void print_state(struct probe_client *pc)
{
	struct dhcp6_stats st;

	dhcp6_client_stats(pc->c, &st);
	emit(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I}", "event", "state", "if", pc->name,
		"state", dhcp6_state_name[dhcp6_client_state(pc->c)], "sent", (json_int_t)st.sent,
		"received", (json_int_t)st.received, "bad", (json_int_t)st.bad));
}

static void command(char *line)
{
	char verb[16], name[IF_NAMESIZE + 1];
	struct probe_client *pc;
	int r;

	if (sscanf(line, "%15s %16s", verb, name) == 1 && !strcmp(verb, "solicit")) {
		r = ra ? ra_watch_solicit(ra) : -ENODEV;
		if (r < 0)
			fprintf(stderr, "dhcp6_probe: solicit: %s\n", strerror(-r));
		return;
	}
	if (sscanf(line, "%15s %16s", verb, name) != 2 || !(pc = find(name))) {
		fprintf(stderr, "dhcp6_probe: bad command: %s", line);
		return;
	}
	if (!strcmp(verb, "recheck"))
		dhcp6_client_recheck(pc->c);
	else if (!strcmp(verb, "release"))
		dhcp6_client_release(pc->c);
	else if (!strcmp(verb, "decline"))
		dhcp6_client_decline(pc->c);
	else if (!strcmp(verb, "stop"))
		dhcp6_client_stop(pc->c);
	else if (!strcmp(verb, "start"))
		dhcp6_client_start(pc->c, dhcp6_client_lease(pc->c));
	else if (!strcmp(verb, "state"))
		print_state(pc);
	else
		fprintf(stderr, "dhcp6_probe: bad command: %s", line);
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	static char buf[4096];
	static size_t len;
	ssize_t n;
	char *nl;

	(void)what;
	(void)arg;
	n = read(fd, buf + len, sizeof(buf) - 1 - len);
	if (n <= 0) {
		event_base_loopbreak(base);
		return;
	}
	len += (size_t)n;
	buf[len] = 0;
	while ((nl = strchr(buf, '\n'))) {
		char line[4096];
		size_t l = (size_t)(nl - buf) + 1;

		memcpy(line, buf, l);
		line[l] = 0;
		memmove(buf, nl + 1, len - l + 1);
		len -= l;
		command(line);
	}
	if (len == sizeof(buf) - 1)
		len = 0;
}

/* --kept IF=JSON: the lease IF starts with.  0, or -EINVAL naming nothing (usage error). */
static int parse_kept(const char *arg, struct probe_client *pc)
{
	json_int_t pref, valid, t1, t2, obtained;
	const char *eq = strchr(arg, '='), *addr, *duid;
	json_t *j;
	size_t n;
	int r = -EINVAL;

	if (!eq || (size_t)(eq - arg) >= sizeof(pc->name))
		return -EINVAL;
	memcpy(pc->name, arg, (size_t)(eq - arg));
	pc->name[eq - arg] = 0;
	j = json_loads(eq + 1, 0, NULL);
	if (!j || json_unpack(j, "{s:s, s:I, s:I, s:I, s:I, s:s, s:I}", "addr", &addr, "preferred",
			  &pref, "valid", &valid, "t1", &t1, "t2", &t2, "server_duid", &duid,
			  "obtained_at", &obtained) < 0)
		goto out;
	memset(&pc->kept, 0, sizeof(pc->kept));
	if (addr_parse_family(addr, AF_INET6, &pc->kept.addr) < 0)
		goto out;
	pc->kept.preferred_s = (uint32_t)pref;
	pc->kept.valid_s = (uint32_t)valid;
	pc->kept.t1_s = (uint32_t)t1;
	pc->kept.t2_s = (uint32_t)t2;
	pc->kept.obtained_at = obtained;
	n = strlen(duid) / 2;
	if (n > DHCP6_DUID_MAX)
		goto out;
	for (size_t i = 0; i < n; i++) {
		unsigned b;

		if (sscanf(duid + 2 * i, "%2x", &b) != 1)
			goto out;
		pc->kept.server_duid[i] = (uint8_t)b;
	}
	pc->kept.server_duid_len = n;
	pc->has_kept = true;
	r = 0;
out:
	json_decref(j);
	return r;
}

static int mac_of(const char *name, uint8_t mac[6])
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r = 0;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (fd < 0 || ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
		r = -errno;
	else
		memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
	if (fd >= 0)
		close(fd);
	return r;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "ra", required_argument, NULL, 'r' },
		{ "solicit", no_argument, NULL, 's' },
		{ "debug", no_argument, NULL, 'd' },
		{ "kept", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	static struct probe_client kept[MAX_CLIENTS];
	size_t n_kept = 0;
	bool solicit = false, debug = false;
	struct event *ev_in;
	int o, r;

	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (o) {
		case 'r':
			snprintf(ra_name, sizeof(ra_name), "%s", optarg);
			break;
		case 's':
			solicit = true;
			break;
		case 'd':
			debug = true;
			break;
		case 'k':
			if (n_kept < MAX_CLIENTS && parse_kept(optarg, &kept[n_kept]) == 0) {
				n_kept++;
				break;
			}
			fprintf(stderr, "dhcp6_probe: --kept: expected IF={\"addr\": ..., "
					"\"preferred\", \"valid\", \"t1\", \"t2\", "
					"\"server_duid\", \"obtained_at\"}, got %s\n", optarg);
			return 2;
		default:
			fprintf(stderr, "usage: dhcp6_probe [--ra IF] [--solicit] [--debug] "
					"[--kept IF=JSON]... IF...\n");
			return 2;
		}
	}
	log_init("dhcp6_probe", true, debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	base = event_base_new();
	if (!base)
		return 1;
	if (ra_name[0]) {
		r = ra_watch_new(base, (int)if_nametoindex(ra_name), ra_cb_print, NULL, &ra);
		if (r < 0) {
			fprintf(stderr, "dhcp6_probe: ra watch on %s: %s\n", ra_name, strerror(-r));
			return 1;
		}
		if (solicit && (r = ra_watch_solicit(ra)) < 0)
			fprintf(stderr, "dhcp6_probe: solicit on %s: %s\n", ra_name, strerror(-r));
	}
	for (int i = optind; i < argc && n_clients < MAX_CLIENTS; i++) {
		struct probe_client *pc = &clients[n_clients++];
		struct dhcp6_opts opts = { 0 };

		snprintf(pc->name, sizeof(pc->name), "%s", argv[i]);
		opts.ifindex = (int)if_nametoindex(argv[i]);
		if (!opts.ifindex || mac_of(argv[i], opts.mac) < 0) {
			fprintf(stderr, "dhcp6_probe: %s: no such interface\n", argv[i]);
			return 1;
		}
		pc->duid_len = dhcp6_duid_ll(opts.mac, pc->duid);
		pc->iaid = (uint32_t)opts.mac[2] << 24 | (uint32_t)opts.mac[3] << 16 |
			(uint32_t)opts.mac[4] << 8 | opts.mac[5];
		r = dhcp6_client_new(base, &opts, dhcp6_cb_print, pc, &pc->c);
		if (r < 0) {
			fprintf(stderr, "dhcp6_probe: %s: %s\n", argv[i], strerror(-r));
			return 1;
		}
		for (size_t k = 0; k < n_kept; k++) {
			if (!strcmp(kept[k].name, pc->name)) {
				pc->kept = kept[k].kept;
				pc->has_kept = true;
			}
		}
		r = dhcp6_client_start(pc->c, pc->has_kept ? &pc->kept : NULL);
		if (r < 0) {
			fprintf(stderr, "dhcp6_probe: %s: start: %s\n", argv[i], strerror(-r));
			return 1;
		}
	}
	ev_in = event_new(base, 0, EV_READ | EV_PERSIST, stdin_cb, NULL);
	event_add(ev_in, NULL);
	emit(json_pack("{s:s}", "event", "ready"));
	event_base_dispatch(base);
	for (size_t i = 0; i < n_clients; i++)
		dhcp6_client_free(clients[i].c);
	ra_watch_free(ra);
	event_free(ev_in);
	event_base_free(base);
	return 0;
}
