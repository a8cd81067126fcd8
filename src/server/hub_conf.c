/*
 * hub_conf.c - the keyword table of [hub], the gateways' WebSocket endpoint, and its
 * validation.
 *
 * Must not hold logic beyond the section's own: parsing is conf.c's, serving hub.c's.
 */
#include <stddef.h>
#include <string.h>

#include "api_route.h"
#include "conf_keys.h"
#include "hub_conf.h"
#include "util.h"

static const struct conf_key hub_keys[] = {
	{
		.name = "path",
		.type = CONF_STRING,
		KEY(conf_hub, path),
		.def = "/ws",
		.help = "the path gateways connect to on the API's listeners (a WebSocket)",
	},
	{
		.name = "max_message",
		.type = CONF_INT,
		KEY(conf_hub, max_message),
		.min = 1024,
		.max = 16777216,
		.def = "65536",
		.help = "bytes of one message from a gateway; a bigger one closes its connection",
	},
	{
		.name = "max_pending",
		.type = CONF_INT,
		KEY(conf_hub, max_pending),
		.min = 65536,
		.max = 1073741824,
		.def = "67108864",
		.help = "bytes queued for one gateway; a gateway too slow to read more is dropped",
	},
	{
		.name = "ping",
		.type = CONF_DURATION,
		KEY(conf_hub, ping_ms),
		.min = 100,
		.max = 3600000,
		.def = "10s",
		.help = "a WebSocket ping after this long without anything from a gateway",
	},
	{
		.name = "timeout",
		.type = CONF_DURATION,
		KEY(conf_hub, timeout_ms),
		.min = 200,
		.max = 3600000,
		.def = "30s",
		.help = "a gateway silent this long (pongs count), or without its hello, is dropped",
	},
	{
		.name = "max_gateways",
		.type = CONF_INT,
		KEY(conf_hub, max_gateways),
		.min = 1,
		.max = 100000,
		.def = "1000",
		.help = "gateway connections at once; more are refused (503)",
	},
};

static void hub_validate(const struct conf *conf, const void *section, struct conf_errors *errs)
{
	const struct conf_hub *c = section;
	struct api_path p;

	(void)conf;
	if (!c->path || c->path[0] != '/' || strlen(c->path) >= HUB_PATH_MAX ||
		strpbrk(c->path, "{}?#") || api_path_parse(c->path, &p) < 0 || p.n == 0)
		conf_section_error(errs, &c->s, "path",
			"expected an absolute path of at most %d bytes without {}?#, not \"/\", "
			"got \"%s\"", HUB_PATH_MAX - 1, c->path ? c->path : "");
	if (c->timeout_ms <= c->ping_ms)
		conf_section_error(errs, &c->s, "timeout",
			"expected more than ping (%ums), got %ums", c->ping_ms, c->timeout_ms);
}

const struct conf_section_type conf_hub_type = {
	.name = "hub",
	.size = sizeof(struct conf_hub),
	.keys = hub_keys,
	.n_keys = ARRAY_SIZE(hub_keys),
	.validate = hub_validate,
};

const struct conf_hub *conf_hub(const struct conf *conf)
{
	return (const struct conf_hub *)conf_find(conf, "hub", NULL);
}
