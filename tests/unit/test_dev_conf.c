/*
 * test_dev_conf.c - [devices] (src/devices/dev_conf.c): defaults, the port map parsed into
 * port_map[], every validation error naming its key, MAC parsing and printing, and the
 * section printed back parsing to itself.
 *
 * The section is loaded beside [global] and [uplink] alone, as the module's table would
 * give it; it must not need anything of another module.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "conf.h"
#include "conf_keys.h"
#include "dev_conf.h"
#include "nl.h"
#include "util.h"

static const struct conf_section_type *const types[] = {&conf_global_type, &conf_uplink_type,
	&conf_devices_type};

/* text loaded and validated: the conf (caller frees), or NULL with the errors in errs. */
static struct conf *load(const char *text, struct conf_errors *errs)
{
	struct conf *c = conf_new(types, ARRAY_SIZE(types));

	if (conf_load_string(c, "d.conf", text, errs) < 0 || conf_validate(c, errs) < 0) {
		conf_free(c);
		return NULL;
	}
	return c;
}

/* text must fail, with one error containing want. */
static void expect_error(const char *text, const char *want)
{
	struct conf_errors errs = {0};
	struct conf *c = load(text, &errs);
	bool found = false;

	assert_null(c);
	for (size_t i = 0; i < errs.n; i++)
		if (strstr(errs.msgs[i], want))
			found = true;
	if (!found) {
		conf_errors_print(&errs, stderr);
		fail_msg("no error containing \"%s\"", want);
	}
	conf_errors_clear(&errs);
}

static void test_defaults(void **state)
{
	struct conf_errors errs = {0};
	struct conf *c = load("[devices]\nwan = eth0\nlan = eth1\n", &errs);
	struct conf_devices *d;

	(void)state;
	assert_non_null(c);
	d = conf_devices(c);
	assert_non_null(d);
	assert_string_equal(d->wan, "eth0");
	assert_string_equal(d->lan, "eth1");
	assert_int_equal(d->max_devices, 1000);
	assert_int_equal(d->grace_ms, 600000);
	assert_null(d->leases_file);
	assert_true(d->ipv4);
	assert_true(d->ipv6);
	assert_string_equal(d->state_dir, "/var/lib/egress");
	assert_int_equal(d->table_base, 30000);
	assert_int_equal(d->rule_priority, 3000);
	assert_int_equal(d->macvlan_mode, NL_MACVLAN_PRIVATE);
	assert_true(d->port_forwards);
	/* the reference's defaults: 8080 -> 80, 2323 -> 23 */
	assert_int_equal(d->n_port_map, 2);
	assert_int_equal(d->port_map[0].outer, 8080);
	assert_int_equal(d->port_map[0].inner, 80);
	assert_int_equal(d->port_map[1].outer, 2323);
	assert_int_equal(d->port_map[1].inner, 23);
	assert_false(d->proxy_ndp);
	assert_int_equal(d->relay_idle_ms, 7200000);
	assert_false(d->keep_links);
	assert_int_equal(d->allow.n, 0);
	conf_free(c);
}

static void test_absent(void **state)
{
	struct conf_errors errs = {0};
	struct conf *c = load("[global]\nlog_level = info\n", &errs);

	(void)state;
	assert_non_null(c);
	assert_null(conf_devices(c));
	conf_free(c);
}

static void test_values(void **state)
{
	struct conf_errors errs = {0};
	struct conf *c = load("[devices]\nwan = wan0\nlan = br-lan\n"
			      "allow = AA:BB:CC:DD:EE:01, aa-bb-cc-dd-ee-02\n"
			      "deny = aa:bb:cc:dd:ee:03\nmax_devices = 200\ngrace = 90s\n"
			      "leases_file = /var/lib/misc/dnsmasq.leases\nipv4 = false\n"
			      "port_map = 8080:80 2323:23 8443:443\nport_map = 2222:22\n"
			      "macvlan_mode = bridge\nstate_dir = /srv/egress\n",
		&errs);
	struct conf_devices *d;

	(void)state;
	if (!c)
		conf_errors_print(&errs, stderr);
	assert_non_null(c);
	d = conf_devices(c);
	assert_int_equal(d->allow.n, 2);
	assert_int_equal(d->deny.n, 1);
	assert_int_equal(d->max_devices, 200);
	assert_int_equal(d->grace_ms, 90000);
	assert_string_equal(d->leases_file, "/var/lib/misc/dnsmasq.leases");
	assert_false(d->ipv4);
	assert_int_equal(d->n_port_map, 4);
	assert_int_equal(d->port_map[2].outer, 8443);
	assert_int_equal(d->port_map[2].inner, 443);
	assert_int_equal(d->port_map[3].outer, 2222);
	assert_int_equal(d->port_map[3].inner, 22);
	assert_int_equal(d->macvlan_mode, NL_MACVLAN_BRIDGE);
	assert_string_equal(d->state_dir, "/srv/egress");
	conf_free(c);
}

/* No automatic forward: port_forwards off (an empty list is no list). */
static void test_port_map_off(void **state)
{
	struct conf_errors errs = {0};
	struct conf *c = load("[devices]\nwan = eth0\nlan = eth1\nport_forwards = no\n", &errs);

	(void)state;
	if (!c)
		conf_errors_print(&errs, stderr);
	assert_non_null(c);
	assert_false(conf_devices(c)->port_forwards);
	assert_int_equal(conf_devices(c)->n_port_map, 2);
	conf_free(c);
	expect_error("[devices]\nwan = eth0\nlan = eth1\nport_map =\n", "port_map");
}

#define BASE "[devices]\nwan = eth0\nlan = eth1\n"

static void test_errors(void **state)
{
	(void)state;
	expect_error("[devices]\nlan = eth1\n", "missing required key 'wan'");
	expect_error("[devices]\nwan = eth0\n", "missing required key 'lan'");
	expect_error("[devices]\nwan = eth0\nlan = eth0\n",
		"[devices] lan: expected an interface other than wan");
	expect_error(BASE "allow = aa:bb:cc:dd:ee\n",
		"[devices] allow: expected a MAC address such as aa:bb:cc:dd:ee:ff, got "
		"\"aa:bb:cc:dd:ee\"");
	expect_error(BASE "deny = zz:bb:cc:dd:ee:ff\n", "[devices] deny: expected a MAC");
	expect_error(BASE "deny = 01:00:5e:00:00:01\n", "[devices] deny: expected a unicast MAC");
	expect_error(BASE "port_map = 8080\n",
		"[devices] port_map: expected GATEWAY_PORT:DEVICE_PORT");
	expect_error(BASE "port_map = 0:80\n", "got \"0:80\"");
	expect_error(BASE "port_map = 8080:65536\n", "got \"8080:65536\"");
	expect_error(BASE "port_map = 8080:80x\n", "got \"8080:80x\"");
	expect_error(BASE "port_map = 8080:80 8080:81\n",
		"[devices] port_map: gateway port 8080 is mapped twice");
	expect_error(BASE "ipv4 = false\nipv6 = false\n", "[devices] ipv6: ipv4 and ipv6 are both off");
	expect_error(BASE "dhcp4_retry_min = 10s\ndhcp4_retry_max = 5s\n",
		"[devices] dhcp4_retry_max: expected at least dhcp4_retry_min");
	expect_error(BASE "state_dir = var/lib\n", "[devices] state_dir: expected an absolute path");
	expect_error(BASE "leases_file = leases\n",
		"[devices] leases_file: expected an absolute path");
	expect_error(BASE "macvlan_mode = passthru\n",
		"[devices] macvlan_mode: expected bridge, private or vepa");
	expect_error(BASE "max_devices = 0\n", "max_devices");
	expect_error(BASE "grace = 0\n", "grace");
	expect_error(BASE "wat = 1\n", "wat");
}

/* The devices' ranges of tables and rules against another section's. */
static void test_routing_claims(void **state)
{
	(void)state;
	expect_error(BASE "table_base = 253\n", "table_base");
}

static void test_print_roundtrip(void **state)
{
	struct conf_errors errs = {0};
	struct conf *c = load(BASE "allow = aa:bb:cc:dd:ee:01\nport_map = 8080:80 2222:22\n", &errs);
	struct conf *again;
	char *text = NULL, *text2 = NULL;
	size_t len = 0, len2 = 0;
	FILE *f;

	(void)state;
	assert_non_null(c);
	f = open_memstream(&text, &len);
	conf_print(c, f);
	fclose(f);
	assert_non_null(strstr(text, "port_map = 8080:80\nport_map = 2222:22\n"));
	assert_non_null(strstr(text, "grace = 10m\n"));
	again = load(text, &errs);
	assert_non_null(again);
	f = open_memstream(&text2, &len2);
	conf_print(again, f);
	fclose(f);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	conf_free(c);
	conf_free(again);
}

static void test_mac(void **state)
{
	uint8_t mac[6];
	char buf[18];

	(void)state;
	assert_int_equal(dev_mac_parse("AA:bb:0C:dd:ee:0f", mac), 0);
	assert_string_equal(dev_mac_str(mac, buf), "aa:bb:0c:dd:ee:0f");
	assert_int_equal(dev_mac_parse("aa-bb-0c-dd-ee-0f", mac), 0);
	assert_string_equal(dev_mac_str(mac, buf), "aa:bb:0c:dd:ee:0f");
	assert_int_equal(dev_mac_parse("aa:bb-0c:dd:ee:0f", mac), -EINVAL);
	assert_int_equal(dev_mac_parse("aa:bb:0c:dd:ee:0", mac), -EINVAL);
	assert_int_equal(dev_mac_parse("aa:bb:0c:dd:ee:0ff", mac), -EINVAL);
	assert_int_equal(dev_mac_parse("aabb.0cdd.ee0f", mac), -EINVAL);
	assert_int_equal(dev_mac_parse("", mac), -EINVAL);
	assert_int_equal(dev_mac_parse(NULL, mac), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_absent),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_port_map_off),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_routing_claims),
		cmocka_unit_test(test_print_roundtrip),
		cmocka_unit_test(test_mac),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
