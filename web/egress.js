/*
 * egress.js - the behaviour of egressd's dashboard (index.html).
 *
 * Talks only to egressd's REST API on the same origin: a session cookie from POST
 * /api/login, the CSRF token of GET /api/session on every state change, the event stream
 * (GET /api/events/stream) for what happens, and a few polls for what changes all the time
 * (RTT, throughput, connections).  Every state change an operator makes from here goes
 * through commit-confirmed (?confirm=N s): a banner counts down and offers Confirm, and
 * egressd rolls the change back by itself when nobody confirms.
 *
 * The API, the login and the flash line are session.js's, which the page loads first.
 *
 * What it must not do: keep anything secret outside the page (no storage of the password or
 * token), or change state without the confirm window.
 */
"use strict";

const UPLINKS_POLL_MS = 2000;
const CONNECTIONS_POLL_MS = 3000;
const ALLOWLIST_POLL_MS = 5000;
const ALLOWLIST_ROWS = 200; /* entries shown; the summary counts them all */
const DEVICES_POLL_MS = 5000;
const PENDING_POLL_MS = 2000;
const CHART_WINDOW_S = 300;
const EVENTS_SHOWN = 200;
const CONNECTIONS_SHOWN = 500;
const CHECK_DELAY_MS = 1000;
const LINE_PX = 20; /* the editor's line height (egress.css) */
const EVENT_KINDS = ["transition", "apply", "error", "config", "login", "change"];
const PALETTE = ["#2f6fde", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0b7285",
	"#f08c00", "#5c7cfa"];

const state = {
	running: false,
	timers: [],
	stream: null,
	uplinks: new Map(),  /* name -> the API's object, as last seen */
	colors: new Map(),   /* name -> colour, stable for the page's life */
	counters: new Map(), /* name -> {t, bytes, conns}: for rates from counters */
	series: new Map(),   /* name -> [{t, mbps, cps}] */
	events: [],          /* sorted by id */
	pending: null,       /* {deadline: ms of the local clock, what} */
	charts: {},
	configLoaded: "",    /* the text as egressd last gave it */
	configErrors: [],
	checkTimer: 0,
	connections: [],
};

/* A list out of a reply that is either a list or an object holding one under key. */
function listOf(body, key) {
	if (Array.isArray(body))
		return body;
	if (body && Array.isArray(body[key]))
		return body[key];
	return [];
}

/* The first of obj's fields that holds a number. */
function num(obj, ...names) {
	for (const n of names) {
		const v = n.split(".").reduce((o, k) => (o == null ? undefined : o[k]), obj);
		if (typeof v === "number" && isFinite(v))
			return v;
	}
	return undefined;
}

/* --- formatting --- */

function fmtMbps(bps) {
	if (bps === undefined)
		return "–";
	const m = bps / 1e6;
	return (m >= 100 ? m.toFixed(0) : m >= 10 ? m.toFixed(1) : m.toFixed(2)) + " Mbit/s";
}

function fmtBytes(b) {
	if (b === undefined)
		return "";
	const units = ["B", "KiB", "MiB", "GiB", "TiB"];
	let i = 0;
	while (b >= 1024 && i < units.length - 1) {
		b /= 1024;
		i++;
	}
	return (i ? b.toFixed(1) : String(b)) + " " + units[i];
}

function fmtAge(s) {
	if (s === undefined)
		return "";
	s = Math.max(0, Math.round(s));
	if (s < 60)
		return s + "s";
	if (s < 3600)
		return Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
	return Math.floor(s / 3600) + "h" + String(Math.floor(s / 60) % 60).padStart(2, "0") + "m";
}

function fmtClock(ms) {
	const d = new Date(ms);
	return [d.getHours(), d.getMinutes(), d.getSeconds()]
		.map((n) => String(n).padStart(2, "0")).join(":");
}

function fmtCountdown(s) {
	s = Math.max(0, Math.ceil(s));
	return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

/* --- life of the page while signed in --- */

function start() {
	if (state.running)
		return;
	state.running = true;
	if (!state.charts.throughput)
		setupOnce();
	openStream();
	refreshEvents();
	refreshUplinks();
	refreshConnections();
	refreshGateway();
	refreshAllowlist();
	refreshDevices();
	refreshPending();
	loadConfig();
	every(ALLOWLIST_POLL_MS, refreshAllowlist);
	every(DEVICES_POLL_MS, refreshDevices);
	every(UPLINKS_POLL_MS, refreshUplinks);
	every(CONNECTIONS_POLL_MS, refreshConnections);
	every(PENDING_POLL_MS, () => state.pending && refreshPending());
	every(250, tickCountdown);
}

function stop() {
	state.running = false;
	for (const t of state.timers)
		clearInterval(t);
	state.timers = [];
	if (state.stream)
		state.stream.close();
	state.stream = null;
}

function every(ms, fn) {
	state.timers.push(setInterval(fn, ms));
}

function setupOnce() {
	state.charts.throughput = makeChart($("chart-throughput"), "Mbit/s");
	state.charts.newconns = makeChart($("chart-newconns"), "per second");
	$("conn-filter").addEventListener("input", renderConnections);
	$("al-filter").addEventListener("input", refreshAllowlist);
	$("gateway-toggle").addEventListener("change", toggleGateway);
	$("pending-confirm").addEventListener("click", confirmPending);
	$("pending-cancel").addEventListener("click", cancelPending);
	$("config-check").addEventListener("click", () => checkConfig(true));
	$("config-apply").addEventListener("click", applyConfig);
	$("config-reload").addEventListener("click", () => loadConfig(true));
	const text = $("config-text");
	text.addEventListener("input", configEdited);
	text.addEventListener("scroll", syncEditorScroll);
}

/* --- the event stream and the event log --- */

/*
 * The stream starts after the last event the page has (?after=ID), so that a stream opened
 * again misses nothing and repeats nothing.
 */
function openStream() {
	const ids = state.events.map((e) => e.id).filter((id) => typeof id === "number");
	const after = ids.length ? Math.max(...ids) : 0;
	const es = new EventSource("/api/events/stream" + (after ? "?after=" + after : ""));
	state.stream = es;
	state.streamOpened = Date.now();
	es.onopen = () => setLive(true);
	/*
	 * A server-sent event named "error" and the stream's own failure both arrive as "error":
	 * only the first carries data.
	 */
	const onEvent = (m) => {
		if (m.data === undefined) {
			streamFailed(es);
			return;
		}
		try {
			gotEvent(JSON.parse(m.data), m.lastEventId);
		} catch (e) {
			/* not JSON: ignore */
		}
	};
	es.onmessage = onEvent;
	for (const kind of EVENT_KINDS)
		es.addEventListener(kind, onEvent);
}

/*
 * The browser would come back by itself, but only after seconds: a transition meanwhile
 * would wait for it.  Come back at once instead (at most once a second), after making sure
 * we are still signed in.
 */
async function streamFailed(es) {
	setLive(false);
	es.close();
	if (state.stream !== es)
		return;
	const r = await api("GET", "/api/session");
	const wait = Math.max(0, 1000 - (Date.now() - state.streamOpened));
	if (r.ok && state.running && state.stream === es)
		setTimeout(() => state.running && state.stream === es && openStream(), wait);
}

function setLive(on) {
	const l = $("live");
	l.textContent = on ? "live" : "reconnecting";
	l.className = "live " + (on ? "on" : "off");
}

async function refreshEvents() {
	const r = await api("GET", "/api/events");
	if (r.ok)
		for (const e of listOf(r.body, "events"))
			addEvent(e, false);
	renderEvents();
}

function gotEvent(e, lastId) {
	if (e.id === undefined && lastId)
		e.id = Number(lastId);
	if (!addEvent(e, true))
		return;
	renderEvents();
	const data = e.data || {};
	if (e.kind === "transition") {
		const name = data.uplink || data.name;
		const to = data.to || data.state;
		const u = state.uplinks.get(name);
		if (u && to) {
			u.state = to;
			renderUplinks();
		}
		refreshUplinks();
	} else if (e.kind === "config" || e.kind === "change") {
		refreshPending();
		refreshAfterChange();
	}
}

/* Insert by id; false if already there. */
function addEvent(e, live) {
	const ev = state.events;
	if (e.id !== undefined && ev.some((x) => x.id === e.id))
		return false;
	let i = ev.length;
	while (i > 0 && e.id !== undefined && ev[i - 1].id > e.id)
		i--;
	ev.splice(i, 0, e);
	if (ev.length > EVENTS_SHOWN)
		ev.splice(0, ev.length - EVENTS_SHOWN);
	return true;
}

function eventTime(e) {
	if (typeof e.time === "number")
		return e.time > 1e11 ? e.time : e.time * 1000;
	if (typeof e.time === "string")
		return Date.parse(e.time);
	return Date.now();
}

function renderEvents() {
	const list = $("events");
	list.replaceChildren();
	for (let i = state.events.length - 1; i >= 0; i--) {
		const e = state.events[i];
		const li = el("li", "ev-" + (e.kind || "other"));
		li.append(el("span", "time", fmtClock(eventTime(e))), el("span", "kind", e.kind || ""));
		const who = e.who && e.who !== "egressd" ? " — " + e.who : "";
		li.append(el("span", "msg", (e.message || "") + who));
		list.append(li);
	}
	if (!state.events.length)
		list.append(el("li", "muted", "No events yet."));
}

/* --- uplinks: cards and charts --- */

async function refreshUplinks() {
	const r = await api("GET", "/api/uplinks");
	if (!r.ok)
		return;
	const now = Date.now();
	const seen = new Set();
	for (const u of listOf(r.body, "uplinks")) {
		seen.add(u.name);
		state.uplinks.set(u.name, u);
		sample(u, now);
	}
	for (const name of [...state.uplinks.keys()])
		if (!seen.has(name))
			state.uplinks.delete(name);
	renderUplinks();
	renderCharts(now);
}

function colorOf(name) {
	if (!state.colors.has(name))
		state.colors.set(name, PALETTE[state.colors.size % PALETTE.length]);
	return state.colors.get(name);
}

/* Throughput in bit/s: a rate the API gives, or one from its byte counters. */
function rates(u, now) {
	let bps = num(u, "throughput_bps", "throughput.bps");
	if (bps === undefined) {
		const rx = num(u, "rx_bps", "throughput.rx_bps");
		const tx = num(u, "tx_bps", "throughput.tx_bps");
		if (rx !== undefined || tx !== undefined)
			bps = (rx || 0) + (tx || 0);
	}
	let cps = num(u, "new_connections_per_s", "connections.new_per_s");
	const bytes = num(u, "bytes", "rx_bytes") === undefined ? undefined :
		(num(u, "bytes") ?? (num(u, "rx_bytes") || 0) + (num(u, "tx_bytes") || 0));
	const conns = num(u, "new_connections", "connections_total", "connections.total");
	const prev = state.counters.get(u.name);
	state.counters.set(u.name, { t: now, bytes, conns });
	if (prev && now > prev.t) {
		const dt = (now - prev.t) / 1000;
		if (bps === undefined && bytes !== undefined && prev.bytes !== undefined)
			bps = Math.max(0, (bytes - prev.bytes) * 8 / dt);
		if (cps === undefined && conns !== undefined && prev.conns !== undefined)
			cps = Math.max(0, (conns - prev.conns) / dt);
	}
	return { bps, cps };
}

/* One point of the charts per uplink and poll; a refresh between polls adds none. */
function sample(u, now) {
	if (!state.series.has(u.name))
		state.series.set(u.name, []);
	const s = state.series.get(u.name);
	const prev = s.length ? s[s.length - 1] : null;
	if (prev && now - prev.t < UPLINKS_POLL_MS * 0.75) {
		u._bps = prev.mbps === null ? undefined : prev.mbps * 1e6;
		return;
	}
	const r = rates(u, now);
	u._bps = r.bps;
	s.push({ t: now, mbps: r.bps === undefined ? null : r.bps / 1e6, cps: r.cps ?? null });
	while (s.length && s[0].t < now - CHART_WINDOW_S * 1000)
		s.shift();
}

function uplinkState(u) {
	return String(u.state || "unknown").toLowerCase();
}

function renderUplinks() {
	const box = $("uplinks");
	const cards = new Map([...box.children].map((c) => [c.dataset.name, c]));
	for (const [name, u] of state.uplinks) {
		let card = cards.get(name);
		if (!card) {
			card = makeCard(name);
			box.append(card);
		}
		cards.delete(name);
		fillCard(card, u);
	}
	for (const card of cards.values())
		card.remove();
	if (!state.uplinks.size && !box.querySelector(".muted"))
		box.append(el("p", "muted", "No uplinks."));
	else if (state.uplinks.size)
		box.querySelectorAll("p.muted").forEach((p) => p.remove());
}

function makeCard(name) {
	const card = el("article", "card");
	card.dataset.name = name;
	const head = el("div", "card-head");
	const sw = el("span", "swatch");
	sw.style.background = colorOf(name);
	head.append(sw, el("span", "name", name), el("span", "state"));
	const dl = el("dl");
	for (const [key, label] of [["rtt", "RTT"], ["loss", "Loss"], ["weight", "Weight"],
		["share", "Share"], ["throughput", "Throughput"], ["address", "Public address"]]) {
		const dd = el("dd");
		dd.dataset.key = key;
		dl.append(el("dt", "", label), dd);
	}
	const actions = el("div", "actions");
	const drain = el("button", "quiet drain");
	drain.addEventListener("click", () => setEnabled(name, !isEnabled(state.uplinks.get(name))));
	actions.append(drain);
	card.append(head, el("div", "why"), dl, actions);
	return card;
}

function isEnabled(u) {
	return !u || u.enabled !== false;
}

function fillCard(card, u) {
	const st = uplinkState(u);
	const enabled = isEnabled(u);
	card.className = "card " + st + (enabled ? "" : " drained");
	card.dataset.state = st;
	card.dataset.enabled = String(enabled);
	card.querySelector(".state").textContent = enabled ? st : st + " · drained";
	const set = (key, text) => {
		card.querySelector('dd[data-key="' + key + '"]').textContent = text;
	};
	const rtt = num(u, "rtt_ms", "rtt.ms");
	set("rtt", rtt === undefined ? "–" : rtt.toFixed(1) + " ms");
	const loss = num(u, "loss_pct", "loss");
	set("loss", loss === undefined ? "–" : loss.toFixed(loss < 10 ? 1 : 0) + " %");
	const tier = num(u, "tier");
	set("weight", String(num(u, "weight") ?? "–") + (tier !== undefined ? " (tier " + tier + ")" : ""));
	let share = num(u, "share_pct");
	if (share === undefined && num(u, "share") !== undefined)
		share = num(u, "share") * 100; /* 0..1 */
	set("share", share === undefined ? "–" : share.toFixed(share && share < 10 ? 1 : 0) + " %");
	set("throughput", fmtMbps(u._bps));
	set("address", (u.public_ips && u.public_ips.length ? u.public_ips.join(", ") :
		u.public_address || u.public_ip) || (u.public_ip_error ? "? (" + u.public_ip_error + ")" : "–"));
	card.querySelector(".why").textContent = (u.since ? st + " since " +
		fmtClock(eventTime({ time: u.since })) : "") + (u.reason ? " (" + u.reason + ")" : "");
	card.querySelector(".why").title = (u.transitions || []).map((t) =>
		fmtClock(eventTime(t)) + " " + t.from + " → " + t.to + " (" + t.reason + ")").join("\n");
	const b = card.querySelector("button.drain");
	b.textContent = enabled ? "Drain" : "Undrain";
	b.title = enabled ? "No new connection or flow takes this uplink; existing ones go on" :
		"Let new connections take this uplink again";
}

function makeChart(canvas, unit) {
	return new Chart(canvas, {
		type: "line",
		data: { datasets: [] },
		options: {
			animation: false,
			maintainAspectRatio: false,
			parsing: false,
			normalized: true,
			spanGaps: false,
			interaction: { mode: "nearest", axis: "x", intersect: false },
			elements: { point: { radius: 0 }, line: { borderWidth: 2, tension: 0.2 } },
			scales: {
				x: {
					type: "linear",
					min: -CHART_WINDOW_S,
					max: 0,
					ticks: {
						stepSize: 60,
						callback: (v) => (v === 0 ? "now" : Math.round(v / 60) + " min"),
					},
				},
				y: { beginAtZero: true, title: { display: false, text: unit } },
			},
			plugins: {
				legend: { position: "bottom", labels: { boxWidth: 12 } },
				tooltip: {
					callbacks: {
						title: (items) => (items.length ? fmtAge(-items[0].parsed.x) + " ago" : ""),
					},
				},
			},
		},
	});
}

function renderCharts(now) {
	const c = state.charts;
	if (!c.throughput)
		return;
	for (const [chart, field] of [[c.throughput, "mbps"], [c.newconns, "cps"]]) {
		chart.data.datasets = [...state.uplinks.keys()].map((name) => ({
			label: name,
			borderColor: colorOf(name),
			backgroundColor: colorOf(name),
			data: (state.series.get(name) || [])
				.map((p) => ({ x: (p.t - now) / 1000, y: p[field] })),
		}));
		chart.update("none");
	}
	const counted = [...state.series.values()].some((s) => s.some((p) => p.cps !== null));
	$("newconns-note").hidden = counted || !state.uplinks.size;
}

/* --- changes with commit-confirmed --- */

function confirmSecs() {
	return Number($("confirm-secs").value) || 60;
}

/* Start the countdown after a change egressd took with ?confirm=. */
function changed(r, what) {
	const b = r.body && typeof r.body === "object" ? r.body : {};
	const left = num(b, "seconds_left", "pending.seconds_left", "confirm_in") ?? confirmSecs();
	state.pending = { deadline: Date.now() + left * 1000, what };
	showPending();
	flash("");
}

function showPending() {
	const p = state.pending;
	$("pending").hidden = !p;
	if (!p)
		return;
	$("pending-text").textContent = (p.what || "A change") +
		": rolls back by itself unless confirmed in";
	tickCountdown();
}

function tickCountdown() {
	const p = state.pending;
	if (!p)
		return;
	const left = (p.deadline - Date.now()) / 1000;
	$("pending-countdown").textContent = left > 0 ? fmtCountdown(left) : "rolling back…";
	if (left <= -1 && !p.checking) {
		p.checking = true;
		refreshPending().then(refreshAfterChange);
	}
}

async function refreshPending() {
	const r = await api("GET", "/api/config/pending");
	const b = r.ok && r.body && typeof r.body === "object" ? r.body : null;
	const left = b ? num(b, "seconds_left", "remaining") : undefined;
	if (!r.ok && r.status !== 404 && state.pending)
		return; /* egressd did not say: keep counting */
	if (!b || b.pending === false || left === undefined) {
		/* gone at its time: rolled back (a confirmation from here clears it first) */
		if (state.pending && Date.now() > state.pending.deadline - 2000)
			flash("Not confirmed in time: egressd rolled the change back.");
		state.pending = null;
	} else {
		const what = b.what ? b.what + (b.who ? " (by " + b.who + ")" : "") :
			state.pending && state.pending.what;
		state.pending = { deadline: Date.now() + left * 1000, what };
	}
	showPending();
}

async function confirmPending() {
	const r = await api("POST", "/api/config/confirm");
	if (r.ok) {
		state.pending = null;
		showPending();
		flash("Confirmed: the change stays.", true);
	} else {
		flash("Confirm: " + errorText(r));
		refreshPending();
	}
}

async function cancelPending() {
	const r = await api("POST", "/api/config/cancel");
	if (r.ok) {
		state.pending = null;
		showPending();
		flash("Rolled back.", true);
		refreshAfterChange();
	} else {
		flash("Roll back: " + errorText(r));
		refreshPending();
	}
}

/* What a change, its confirmation or its rollback may have moved. */
function refreshAfterChange() {
	refreshUplinks();
	refreshGateway();
	if (!configDirty())
		loadConfig();
}

async function setEnabled(name, enabled) {
	const r = await api("PATCH", "/api/uplinks/" + encodeURIComponent(name) +
		"?confirm=" + confirmSecs() + "s", { enabled });
	if (!r.ok) {
		flash((enabled ? "Undrain " : "Drain ") + name + ": " + errorText(r));
		return;
	}
	changed(r, (enabled ? "Undrained " : "Drained ") + name);
	refreshUplinks();
}

async function refreshGateway() {
	const r = await api("GET", "/api/gateway");
	const box = $("gateway-toggle");
	if (r.ok && r.body && typeof r.body.enabled === "boolean") {
		box.disabled = false;
		box.checked = r.body.enabled;
		$("gateway-note").textContent = "";
	} else {
		box.disabled = true;
		box.checked = false;
		$("gateway-note").textContent = r.status === 503 || r.status === 404 ?
			"(not configured)" : "";
	}
}

async function toggleGateway() {
	const want = $("gateway-toggle").checked;
	const r = await api("POST", "/api/gateway/toggle?confirm=" + confirmSecs() + "s",
		{ enabled: want });
	if (!r.ok) {
		flash("Gateway mode: " + errorText(r));
		refreshGateway();
		return;
	}
	changed(r, "Gateway mode " + (want ? "on" : "off"));
}

/* --- allowlist: the agent's server connection, the entries enforced, drops per client --- */

/* The agent's connection as an operator says it: connected, connecting or backoff. */
function alConnection(c) {
	if (!c)
		return {text: "kept list", up: true};
	if (c.state === "synced" || c.state === "syncing")
		return {text: c.state === "synced" ? "connected" : "connected, syncing", up: true};
	if (c.state === "waiting")
		return {text: "backoff" + (c.retry_in_ms >= 1000 ? ", retry in " +
			fmtAge(c.retry_in_ms / 1000) : ""), up: false};
	return {text: c.state, up: false};
}

let alAsked = 0; /* the newest request: an older answer arriving late is dropped */

async function refreshAllowlist() {
	const q = $("al-filter").value.trim();
	const asked = ++alAsked;
	const r = await api("GET", "/api/allowlist?limit=" + ALLOWLIST_ROWS +
		(q ? "&search=" + encodeURIComponent(q) : ""));
	if (asked !== alAsked)
		return;
	const box = $("allowlist");
	if (!r.ok || !r.body || typeof r.body !== "object") {
		box.hidden = true; /* the module is not running (503) or not there */
		return;
	}
	box.hidden = false;
	const s = r.body;
	const c = s.connection;
	const now = Date.now() / 1000;
	$("al-server").textContent = s.server || "none (the kept list)";
	const conn = alConnection(c);
	$("al-state").textContent = conn.text;
	$("al-state").className = "al-state " + (conn.up ? "up" : "down");
	$("al-state").dataset.state = c ? (conn.up ? "connected" : c.state) : "none";
	$("al-versions").textContent = c ? "acknowledged " + (c.acked || "none") : "";
	$("al-contact").textContent = c && c.last_contact ?
		"last contact " + fmtAge(now - c.last_contact) + " ago" : "";
	$("al-error").textContent = c && !conn.up && c.last_error ? c.last_error : "";
	$("al-summary").textContent = "version " + s.version + " · " + s.items + " items · " +
		s.elements + " in the kernel · " + s.learned + " learned from DNS" +
		(s.skipped ? " · " + s.skipped + " skipped" : "");

	const body = $("al-entries").tBodies[0];
	body.replaceChildren();
	for (const it of listOf(s, "list")) {
		const limits = [it.proto, it.ports, (it.sources || []).join(", ")].filter((x) => x);
		/* one row per destination in the kernel; a name not yet learned has none */
		const dsts = listOf(it, "traffic").length ? it.traffic :
			[{dst: it.dst || it.name || ""}];
		for (const t of dsts) {
			const tr = el("tr");
			tr.append(el("td", "", it.label), el("td", "", t.dst),
				el("td", "muted", limits.join(" · ")),
				el("td", "num", t.packets === undefined ? "" : String(t.packets)),
				el("td", "num", fmtBytes(t.bytes)));
			body.append(tr);
		}
	}
	const shown = listOf(s, "list").length;
	if (s.truncated || !shown) {
		const tr = el("tr");
		const td = el("td", "muted", shown ? "… and " + (s.matched - shown) + " more" :
			q ? "No entry matches." : "No entry.");
		td.colSpan = 5;
		tr.append(td);
		body.append(tr);
	}

	const drops = $("al-drops").tBodies[0];
	drops.replaceChildren();
	for (const d of listOf(s, "drops").sort((a, b) => b.packets - a.packets)) {
		const tr = el("tr");
		tr.append(el("td", "", d.client), el("td", "num", String(d.packets)),
			el("td", "num", fmtBytes(d.bytes)));
		drops.append(tr);
	}

	const skipped = listOf(s, "skipped_items");
	$("al-skipped-box").hidden = !skipped.length;
	const sk = $("al-skipped").tBodies[0];
	sk.replaceChildren();
	for (const k of skipped) {
		const tr = el("tr");
		tr.append(el("td", "", k.what), el("td", "", k.dst), el("td", "muted", k.why),
			el("td", "num", fmtAge(now - k.at) + " ago"));
		sk.append(tr);
	}
}

/* --- devices: each LAN device's identity upstream, leases and port forwards --- */

/* When a lease ends, from now: "in 23m04s", "expired", "" without one. */
function leaseLeft(lease, now) {
	if (!lease || typeof lease.expires !== "number")
		return "";
	const left = lease.expires - now;
	return left > 0 ? "in " + fmtAge(left) : "expired";
}

/* "8080→80" for each forward; an IPv6 listener that failed says so. */
function devForwards(d) {
	const relay = new Map(listOf(d.relay, "forwards").map((f) => [f.gateway_port, f]));
	return listOf(d, "forwards").map((f) => {
		const l = relay.get(f.gateway_port);
		return f.gateway_port + "→" + f.device_port +
			(l && l.listening === false ? " (IPv6: " + (l.error || "not listening") + ")" : "");
	}).join(", ");
}

async function refreshDevices() {
	const r = await api("GET", "/api/devices");
	const box = $("devices");
	if (!r.ok || !r.body || typeof r.body !== "object") {
		box.hidden = true; /* the module is not running (503) or not there */
		return;
	}
	box.hidden = false;
	const devs = listOf(r.body, "devices");
	const now = Date.now() / 1000;
	const counts = {};
	for (const d of devs)
		counts[d.status] = (counts[d.status] || 0) + 1;
	$("dev-summary").textContent = devs.length + " devices" +
		Object.keys(counts).sort().map((k) => " · " + counts[k] + " " + k).join("");
	const body = $("dev-table").tBodies[0];
	body.replaceChildren();
	for (const d of devs) {
		const tr = el("tr");
		tr.dataset.mac = d.mac_address;
		const st = el("td", "dev-status " + d.status, d.status);
		const v4 = leaseLeft(d.lease4, now), v6 = leaseLeft(d.lease6, now);
		const leases = [v4 && "v4 " + v4, v6 && "v6 " + v6].filter((x) => x).join(" · ");
		tr.append(st, el("td", "mono", d.mac_address), el("td", "", d.hostname || ""),
			el("td", "mono", d.ipv4_address || ""), el("td", "mono", d.ipv4_wan_address || ""),
			el("td", "mono", d.ipv6_address || ""), el("td", "", leases),
			el("td", "", devForwards(d)));
		body.append(tr);
	}
	if (!devs.length) {
		const tr = el("tr");
		const td = el("td", "muted", "No device seen on the LAN yet.");
		td.colSpan = 8;
		tr.append(td);
		body.append(tr);
	}
}

/* --- connections --- */

/* Host and port as one word; an IPv6 address in brackets. */
function hostPort(addr, port) {
	if (!addr)
		return "";
	const a = String(addr).includes(":") ? "[" + addr + "]" : String(addr);
	return port ? a + ":" + port : a;
}

/*
 * The proxy's live connections in go-dispatch-proxy's shape: {active_connections: [...],
 * matched, limit}, each with source_ip/port, destination_ip/port, host, uplink, bytes_in
 * (what the client received) and bytes_out, age.
 */
async function refreshConnections() {
	if (document.hidden)
		return;
	const r = await api("GET", "/api/connections");
	if (!r.ok) {
		state.connections = [];
		state.connectionsMatched = 0;
		$("conn-note").textContent = r.status === 503 || r.status === 404 ?
			"No connection table: the proxy is not running (the policy module's flows " +
			"are the kernel's)." : "Connections: " + errorText(r);
	} else {
		state.connections = listOf(r.body, "active_connections").map((c) => ({
			client: hostPort(c.source_ip, c.source_port),
			destination: hostPort(c.destination_ip, c.destination_port),
			host: c.host || "",
			uplink: c.uplink || c.load_balancer || "",
			up: num(c, "bytes_out"),
			down: num(c, "bytes_in"),
			age: num(c, "age"),
		}));
		state.connectionsMatched = num(r.body, "matched") ?? state.connections.length;
		$("conn-note").textContent = state.connectionsMatched > state.connections.length ?
			"Showing the first " + state.connections.length + " of " +
			state.connectionsMatched + "." : "";
	}
	renderConnections();
}

function renderConnections() {
	const words = $("conn-filter").value.toLowerCase().split(/\s+/).filter(Boolean);
	const rows = state.connections.filter((c) => {
		const t = [c.client, c.destination, c.host, c.uplink].join(" ").toLowerCase();
		return words.every((w) => t.includes(w));
	});
	const body = $("connections").tBodies[0];
	body.replaceChildren();
	for (const c of rows.slice(0, CONNECTIONS_SHOWN)) {
		const tr = el("tr");
		const dst = el("td", "", c.host ? c.host + " " : "");
		if (c.host)
			dst.append(el("span", "muted", c.destination));
		else
			dst.textContent = c.destination;
		tr.append(el("td", "", c.client), dst, el("td", "", c.uplink),
			el("td", "num", fmtBytes(c.up)), el("td", "num", fmtBytes(c.down)),
			el("td", "num", fmtAge(c.age)));
		body.append(tr);
	}
	const total = state.connections.length;
	$("conn-count").textContent = words.length ? rows.length + " of " + total : String(total);
	if (!rows.length) {
		const tr = el("tr");
		const td = el("td", "muted", total ? "No connection matches." : "No connections.");
		td.colSpan = 6;
		tr.append(td);
		body.append(tr);
	}
}

/* --- the configuration editor --- */

async function loadConfig(force) {
	if (!force && configDirty())
		return;
	const r = await api("GET", "/api/config");
	if (!r.ok) {
		$("config-status").textContent = "Configuration: " + errorText(r);
		return;
	}
	state.configLoaded = typeof r.body === "string" ? r.body : r.body.config || "";
	$("config-text").value = state.configLoaded;
	state.configErrors = [];
	$("config-status").textContent = "";
	$("config-diff").hidden = true;
	renderEditor();
}

function configDirty() {
	return $("config-text").value !== state.configLoaded;
}

function configEdited() {
	renderEditor();
	clearTimeout(state.checkTimer);
	state.checkTimer = setTimeout(() => configDirty() && checkConfig(false), CHECK_DELAY_MS);
}

/* The errors of a refused config: [{line, message}] from the API's reply. */
function configErrorsOf(r) {
	const b = r.body && typeof r.body === "object" ? r.body : { error: errorText(r) };
	const list = Array.isArray(b.errors) && b.errors.length ? b.errors : [b];
	return list.map((e) => {
		let msg = e.message || e.error || "";
		if (!msg && (e.expected || e.seen))
			msg = (e.key ? e.key + ": " : "") + "expected " + e.expected + ", got " +
				JSON.stringify(e.seen);
		const line = typeof e.line === "number" && e.line > 0 ? e.line : undefined;
		/* beside its line, "FILE:LINE: " says nothing new */
		if (line !== undefined)
			msg = msg.replace(/^\S*:\d+: /, "");
		return { line, message: msg };
	});
}

async function checkConfig(explicit) {
	const text = $("config-text").value;
	const r = await api("POST", "/api/config?dry_run=1", text);
	if (text !== $("config-text").value)
		return; /* edited meanwhile: the next check tells */
	showConfigResult(r, explicit ? "Valid: nothing applied (check only)." : "Valid.", explicit);
}

/* A check's or an apply's answer: errors beside their lines (reveal: scroll to the first),
 * or what the text would change. */
function showConfigResult(r, okText, reveal) {
	const diff = r.ok && r.body && typeof r.body.diff === "string" ? r.body.diff : "";
	if (r.ok) {
		state.configErrors = [];
		$("config-status").textContent = okText +
			(r.body && r.body.changes === false ? " It changes nothing." : "");
	} else if (r.status === 400 || r.status === 422) {
		state.configErrors = configErrorsOf(r);
		$("config-status").textContent = state.configErrors.length === 1 ? "1 error" :
			state.configErrors.length + " errors";
	} else {
		state.configErrors = [];
		$("config-status").textContent = errorText(r);
	}
	$("config-diff").textContent = diff;
	$("config-diff").hidden = !diff;
	renderEditor();
	const first = state.configErrors.find((e) => e.line !== undefined);
	if (reveal && first)
		showLine(first.line);
}

async function applyConfig() {
	const text = $("config-text").value;
	const r = await api("POST", "/api/config?confirm=" + confirmSecs() + "s", text);
	showConfigResult(r, "Applied.", true);
	if (r.ok) {
		state.configLoaded = text;
		changed(r, "New configuration");
		loadConfig(true);
	}
}

/* Line numbers in the gutter; bad lines marked, their message beside them. */
function renderEditor() {
	const lines = $("config-text").value.split("\n");
	const byLine = new Map();
	for (const e of state.configErrors)
		if (e.line !== undefined)
			byLine.set(e.line, (byLine.has(e.line) ? byLine.get(e.line) + "; " : "") + e.message);
	const gutter = $("config-gutter");
	const back = $("config-back");
	gutter.replaceChildren();
	back.replaceChildren();
	lines.forEach((text, i) => {
		const n = i + 1;
		const msg = byLine.get(n);
		const g = el("div", msg ? "bad" : "", String(n));
		const b = el("div", msg ? "bad" : "", text);
		if (msg) {
			b.dataset.line = n;
			b.append(el("span", "msg", "◀ " + msg));
		}
		gutter.append(g);
		back.append(b);
	});
	/* room for the textarea's scroll bar, so both scroll to the same last line */
	back.append(el("div", "", ""), el("div", "", ""));
	gutter.append(el("div", "", ""), el("div", "", ""));
	const list = $("config-errors");
	list.replaceChildren();
	for (const e of state.configErrors) {
		const li = el("li");
		if (e.line !== undefined) {
			const a = el("a", "", "line " + e.line);
			a.href = "#";
			a.addEventListener("click", (ev) => {
				ev.preventDefault();
				goToLine(e.line);
			});
			li.append(a, ": ");
		}
		li.append(e.message);
		list.append(li);
	}
	syncEditorScroll();
}

function goToLine(n) {
	const t = $("config-text");
	const lines = t.value.split("\n");
	const at = lines.slice(0, n - 1).reduce((s, l) => s + l.length + 1, 0);
	t.focus();
	t.setSelectionRange(at, at + (lines[n - 1] || "").length);
	showLine(n);
}

/* Scroll the editor, if it must, so that line n is in sight. */
function showLine(n) {
	const t = $("config-text");
	const top = (n - 1) * LINE_PX;
	if (top < t.scrollTop || top + 2 * LINE_PX > t.scrollTop + t.clientHeight)
		t.scrollTop = Math.max(0, top - 3 * LINE_PX);
	syncEditorScroll();
}

function syncEditorScroll() {
	const t = $("config-text");
	$("config-back").scrollTop = t.scrollTop;
	$("config-back").scrollLeft = t.scrollLeft;
	$("config-gutter").scrollTop = t.scrollTop;
}

/* session.js signs in and out, and calls these */
document.addEventListener("DOMContentLoaded", () => sessionBoot(start, stop));
