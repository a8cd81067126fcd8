/*
 * dhcp4_probe.c - runs DHCPv4 clients (src/devices/dhcp4.h) on given interfaces, all on one
 * event loop, and prints what they report as JSON lines on stdout, for the lab tests
 * (tests/lab/test_dhcp4.py).
 *
 *   dhcp4_probe [--retry-min MS] [--retry-max MS] [--arp MS|none] [--hostname]
 *               [--configure] [--debug] IF...
 *
 * One client per IF with the interface's MAC (client id 01:MAC); --hostname sends the
 * interface's name as option 12.  --configure adds each bound address to its interface
 * (and removes it when lost or released), as the devices module does through dev_net.c:
 * a server answers a renewal by unicast to that address, so it must answer ARP.  Lines:
 *   {"event": "ready"}
 *   {"event": "bound"|"renewed"|"lost", "if": IF, "addr": ..., "plen": N, "router": ...,
 *    "server": ..., "server_mac": ..., "dns": [...], "lease": s, "t1": s, "t2": s}
 *   {"event": "state", "if": IF, "state": NAME, "sent": N, "received": N, "naks": N,
 *    "declines": N, "bad": N, "attempt": N}
 * Commands on stdin, one a line: "recheck IF", "release IF", "stop IF", "start IF" (with
 * the lease it holds: INIT-REBOOT), "reboot IF ADDR" (start claiming ADDR as a kept lease),
 * "state IF".  End of input ends the probe without releasing.  Without --configure it
 * changes nothing on the interfaces: it only talks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "devices/dhcp4.h"
#include "log.h"
#include "nl.h"

#define MAX_CLIENTS 256

struct probe_client {
	char name[IF_NAMESIZE];
	int ifindex;
	struct dhcp4_client *c;
	bool has_addr; /* --configure: the address we added */
	struct cidr added;
};

static struct probe_client clients[MAX_CLIENTS];
static size_t n_clients;
static struct event_base *base;
static struct nl *nl; /* --configure only */

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

	if (!addr_is_set(a))
		return json_null();
	return json_string(addr_str(a, buf, sizeof(buf)));
}

/* --configure: the address of the lease on the interface, or none. */
static void configure(struct probe_client *pc, const struct dhcp4_lease *l)
{
	struct nl_addr a = { .ifindex = pc->ifindex };
	char buf[ADDR_STRLEN];
	int r;

	if (!nl)
		return;
	if (pc->has_addr) {
		a.local = pc->added;
		r = nl_addr_apply(nl, NL_DEL, &a);
		if (r < 0 && r != -EADDRNOTAVAIL)
			fprintf(stderr, "dhcp4_probe: %s: remove address: %s\n", pc->name,
				strerror(-r));
		pc->has_addr = false;
	}
	if (!l)
		return;
	a.local.addr = l->addr;
	a.local.plen = l->plen;
	r = nl_addr_apply(nl, NL_REPLACE, &a);
	if (r < 0) {
		fprintf(stderr, "dhcp4_probe: %s: add %s: %s\n", pc->name,
			addr_str(&l->addr, buf, sizeof(buf)), strerror(-r));
		return;
	}
	pc->added = a.local;
	pc->has_addr = true;
}

static void dhcp4_cb_print(void *arg, enum dhcp4_event ev, const struct dhcp4_lease *l)
{
	static const char *const names[_DHCP4_EV_MAX] = { "bound", "renewed", "lost" };
	struct probe_client *pc = arg;
	json_t *dns = json_array();
	char mac[18];

	configure(pc, ev == DHCP4_EV_LOST ? NULL : l);
	for (size_t i = 0; i < l->n_dns; i++)
		json_array_append_new(dns, addr_json(&l->dns[i]));
	snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", l->server_mac[0],
		l->server_mac[1], l->server_mac[2], l->server_mac[3], l->server_mac[4],
		l->server_mac[5]);
	emit(json_pack("{s:s, s:s, s:o, s:i, s:o, s:o, s:s, s:o, s:I, s:I, s:I}", "event",
		names[ev], "if", pc->name, "addr", addr_json(&l->addr), "plen", (int)l->plen,
		"router", addr_json(&l->router), "server", addr_json(&l->server_id), "server_mac",
		mac, "dns", dns, "lease", (json_int_t)l->lease_s, "t1", (json_int_t)l->t1_s, "t2",
		(json_int_t)l->t2_s));
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
	struct dhcp4_stats st;

	dhcp4_client_stats(pc->c, &st);
	emit(json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I}", "event", "state", "if",
		pc->name, "state", dhcp4_state_name[dhcp4_client_state(pc->c)], "sent",
		(json_int_t)st.sent, "received", (json_int_t)st.received, "naks",
		(json_int_t)st.naks, "declines", (json_int_t)st.declines, "bad", (json_int_t)st.bad,
		"attempt", (json_int_t)st.attempt));
}

static void command(char *line)
{
	char verb[16], name[IF_NAMESIZE + 1], arg[64] = "";
	struct probe_client *pc;
	int n = sscanf(line, "%15s %16s %63s", verb, name, arg), r = 0;

	if (n < 2 || !(pc = find(name))) {
		fprintf(stderr, "dhcp4_probe: bad command: %s", line);
		return;
	}
	if (!strcmp(verb, "recheck")) {
		dhcp4_client_recheck(pc->c);
	} else if (!strcmp(verb, "release")) {
		dhcp4_client_release(pc->c);
		configure(pc, NULL);
	} else if (!strcmp(verb, "stop")) {
		dhcp4_client_stop(pc->c);
	} else if (!strcmp(verb, "start")) {
		const struct dhcp4_lease *l = dhcp4_client_lease(pc->c);
		struct dhcp4_lease kept;

		if (l)
			kept = *l;
		r = dhcp4_client_start(pc->c, l ? &kept : NULL);
	} else if (!strcmp(verb, "reboot")) {
		struct dhcp4_lease kept = { .plen = 24, .lease_s = 120, .t1_s = 60, .t2_s = 105 };

		if (addr_parse_family(arg, AF_INET, &kept.addr) < 0) {
			fprintf(stderr, "dhcp4_probe: reboot: bad address: %s\n", arg);
			return;
		}
		kept.obtained_at = time(NULL);
		dhcp4_client_stop(pc->c);
		r = dhcp4_client_start(pc->c, &kept);
	} else if (!strcmp(verb, "state")) {
		print_state(pc);
	} else {
		fprintf(stderr, "dhcp4_probe: bad command: %s", line);
	}
	if (r < 0)
		fprintf(stderr, "dhcp4_probe: %s %s: %s\n", verb, name, strerror(-r));
}

static void stdin_cb(evutil_socket_t fd, short what, void *arg)
{
	static char buf[4096];
	static size_t len;
	ssize_t n;
	char *nl_at;

	(void)what;
	(void)arg;
	n = read(fd, buf + len, sizeof(buf) - 1 - len);
	if (n <= 0) {
		event_base_loopbreak(base);
		return;
	}
	len += (size_t)n;
	buf[len] = 0;
	while ((nl_at = strchr(buf, '\n'))) {
		char line[4096];
		size_t l = (size_t)(nl_at - buf) + 1;

		memcpy(line, buf, l);
		line[l] = 0;
		memmove(buf, nl_at + 1, len - l + 1);
		len -= l;
		command(line);
	}
	if (len == sizeof(buf) - 1)
		len = 0;
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

static uint32_t ms_arg(const char *s)
{
	char *end;
	unsigned long v;

	if (!strcmp(s, "none"))
		return UINT32_MAX;
	v = strtoul(s, &end, 10);
	if (*end || !v || v >= UINT32_MAX) {
		fprintf(stderr, "dhcp4_probe: expected milliseconds (1 or more), not '%s'\n", s);
		exit(2);
	}
	return (uint32_t)v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "retry-min", required_argument, NULL, 'm' },
		{ "retry-max", required_argument, NULL, 'M' },
		{ "arp", required_argument, NULL, 'a' },
		{ "hostname", no_argument, NULL, 'h' },
		{ "configure", no_argument, NULL, 'c' },
		{ "debug", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	struct dhcp4_opts base_opts = { 0 };
	bool debug = false, hostname = false;
	struct event *ev_in;
	int o, r;

	while ((o = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (o) {
		case 'm':
			base_opts.retry_min_ms = ms_arg(optarg);
			break;
		case 'M':
			base_opts.retry_max_ms = ms_arg(optarg);
			break;
		case 'a':
			base_opts.arp_probe_ms = ms_arg(optarg);
			break;
		case 'h':
			hostname = true;
			break;
		case 'c':
			r = nl_open(NETLINK_ROUTE, &nl);
			if (r < 0) {
				fprintf(stderr, "dhcp4_probe: netlink: %s\n", strerror(-r));
				return 1;
			}
			break;
		case 'd':
			debug = true;
			break;
		default:
			fprintf(stderr, "usage: dhcp4_probe [--retry-min MS] [--retry-max MS] "
					"[--arp MS|none] [--hostname] [--configure] [--debug] IF...\n");
			return 2;
		}
	}
	log_init("dhcp4_probe", true, debug ? LOG_LEVEL_DEBUG : LOG_LEVEL_WARN);
	base = event_base_new();
	if (!base)
		return 1;
	for (int i = optind; i < argc && n_clients < MAX_CLIENTS; i++) {
		struct probe_client *pc = &clients[n_clients++];
		struct dhcp4_opts opts = base_opts;

		snprintf(pc->name, sizeof(pc->name), "%s", argv[i]);
		pc->ifindex = opts.ifindex = (int)if_nametoindex(argv[i]);
		if (!opts.ifindex || mac_of(argv[i], opts.mac) < 0) {
			fprintf(stderr, "dhcp4_probe: %s: no such interface\n", argv[i]);
			return 1;
		}
		if (hostname)
			opts.hostname = pc->name;
		r = dhcp4_client_new(base, &opts, dhcp4_cb_print, pc, &pc->c);
		if (!r)
			r = dhcp4_client_start(pc->c, NULL);
		if (r < 0) {
			fprintf(stderr, "dhcp4_probe: %s: %s\n", argv[i], strerror(-r));
			return 1;
		}
	}
	ev_in = event_new(base, 0, EV_READ | EV_PERSIST, stdin_cb, NULL);
	event_add(ev_in, NULL);
	emit(json_pack("{s:s}", "event", "ready"));
	event_base_dispatch(base);
	for (size_t i = 0; i < n_clients; i++)
		dhcp4_client_free(clients[i].c);
	nl_free(nl);
	event_free(ev_in);
	event_base_free(base);
	return 0;
}
