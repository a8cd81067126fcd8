/*
 * allowlist.js - the behaviour of egress-server's page (allowlist.html).
 *
 * Talks only to egress-server's REST API on the same origin, through session.js (loaded
 * first: the requests, signing in and out, the flash line).  Lists and
 * searches the entries, adds one (an error names its field beside the form), deletes one
 * (a non-deletable entry asks for an explicit override first), imports text or JSON,
 * exports both, and follows the audit log, the list's version and the gateways by polling.
 *
 * What it must not do: keep anything secret outside the page (no storage of the password),
 * or delete a non-deletable entry without the operator asking for the override.
 */
"use strict";

const POLL_MS = 3000;
const SEARCH_DELAY_MS = 250;
const AUDIT_SHOWN = 200;

const state = {
	running: false,
	timers: [],
	search: "",
	searchTimer: 0,
	entries: [],
	auditLast: 0,
	audit: [],    /* newest first */
	version: -1,
	override: new Set(), /* ids whose delete was refused: the next click overrides */
};

function fmtTime(t) {
	const d = typeof t === "number" ? new Date(t * 1000) : new Date(t);
	return isNaN(d) ? "" : d.toLocaleString();
}

/* --- life of the page while signed in --- */

function setupOnce() {
	$("add-form").addEventListener("submit", addEntry);
	$("search").addEventListener("input", () => {
		clearTimeout(state.searchTimer);
		state.searchTimer = setTimeout(() => {
			state.search = $("search").value.trim();
			refreshEntries();
		}, SEARCH_DELAY_MS);
	});
	$("import-submit").addEventListener("click", importEntries);
}

function start() {
	if (state.running)
		return;
	state.running = true;
	refresh();
	state.timers.push(setInterval(refresh, POLL_MS));
}

function stop() {
	state.running = false;
	for (const t of state.timers)
		clearInterval(t);
	state.timers = [];
}

/* --- what the page shows --- */

function refresh() {
	refreshStatus();
	refreshAudit();
	refreshGateways();
}

async function refreshStatus() {
	const r = await api("GET", "/api/status");
	if (!r.ok)
		return;
	const s = r.body;
	$("status").textContent = "version " + s.version + " · " + s.backend + " · replica " +
		s.replica;
	/* the list moved, or a domain shown waits for its first answer */
	const waiting = state.entries.some((e) => e.resolver && !e.resolver.resolved_at &&
		!e.resolver.error);
	if (s.version !== state.version || waiting) {
		state.version = s.version;
		refreshEntries();
	}
}

async function refreshEntries() {
	const q = state.search ? "?search=" + encodeURIComponent(state.search) : "";
	const r = await api("GET", "/api/entries" + q);
	if (!r.ok) {
		flash(errorText(r));
		return;
	}
	state.entries = r.body.entries;
	renderEntries();
}

function limits(e) {
	const parts = [];
	if (e.proto && e.proto !== "any")
		parts.push(e.proto);
	if (e.ports && e.ports.length)
		parts.push("ports " + (Array.isArray(e.ports) ? e.ports.join(",") : e.ports));
	if (e.sources && e.sources.length)
		parts.push("from " + e.sources.join(", "));
	return parts.join(" · ");
}

/* What the resolver says of a domain entry: its addresses, or why it publishes none. */
function resolvedText(r) {
	if (r.publishes_nothing)
		return "publishes nothing: " + r.publishes_nothing;
	if (r.addresses && r.addresses.length)
		return "→ " + r.addresses.map((a) => a.address).join(", ");
	if (r.error)
		return r.error;
	return r.resolving ? "resolving…" : "not resolved yet";
}

function renderEntries() {
	const body = $("entries").tBodies[0];
	body.replaceChildren();
	for (const e of state.entries) {
		const tr = el("tr", e.non_deletable ? "locked" : "");
		tr.dataset.id = e.id;
		tr.dataset.value = e.value;
		const value = el("td", "value", e.value);
		if (e.resolver)
			value.append(el("div", "resolved muted", resolvedText(e.resolver)));
		tr.append(el("td", "num", String(e.id)), value,
			el("td", "kind", e.kind), el("td", "limits", limits(e)),
			el("td", "comment", e.comment || ""),
			el("td", "added muted", fmtTime(e.created) + (e.created_by ? " by " +
				e.created_by : "")));
		const td = el("td");
		const override = state.override.has(e.id);
		const b = el("button", override ? "override" : "quiet delete",
			override ? "Delete anyway" : "Delete");
		b.title = e.non_deletable ? "non-deletable: an admin may override" : "delete";
		b.addEventListener("click", () => deleteEntry(e, override));
		td.append(b);
		tr.append(td);
		body.append(tr);
	}
	$("entry-count").textContent = state.entries.length + (state.search ? " found" : "");
}

async function addEntry(ev) {
	ev.preventDefault();
	const body = { value: $("add-value").value.trim() };
	if ($("add-proto").value !== "any")
		body.proto = $("add-proto").value;
	if ($("add-ports").value.trim())
		body.ports = $("add-ports").value.trim();
	const sources = $("add-sources").value.split(/[\s,]+/).filter((s) => s);
	if (sources.length)
		body.sources = sources;
	if ($("add-comment").value.trim())
		body.comment = $("add-comment").value.trim();
	if ($("add-nondel").checked)
		body.non_deletable = true;
	$("add-submit").disabled = true;
	const r = await api("POST", "/api/entries", body);
	$("add-submit").disabled = false;
	for (const i of $("add-form").querySelectorAll("[aria-invalid]"))
		i.removeAttribute("aria-invalid");
	if (!r.ok) {
		$("add-error").textContent = errorText(r);
		const field = r.body && r.body.field ? r.body.field.replace(/\[.*/, "") : "";
		const input = { value: "add-value", proto: "add-proto", ports: "add-ports",
			sources: "add-sources", comment: "add-comment",
			non_deletable: "add-nondel" }[field];
		if (input) {
			$(input).setAttribute("aria-invalid", "true");
			$(input).focus();
		}
		return;
	}
	$("add-error").textContent = "";
	$("add-form").reset();
	flash("Added " + r.body.value + " (entry " + r.body.id + ").", true);
	refresh();
	refreshEntries();
}

async function deleteEntry(e, override) {
	const r = await api("DELETE", "/api/entries/" + e.id + (override ? "?override=1" : ""));
	if (r.status === 409 && !override) {
		state.override.add(e.id);
		flash(errorText(r));
		renderEntries();
		return;
	}
	state.override.delete(e.id);
	if (!r.ok) {
		flash(errorText(r));
		renderEntries();
		return;
	}
	flash("Deleted " + e.value + (override ? " (override, recorded in the audit)" : "") +
		".", true);
	refresh();
	refreshEntries();
}

async function importEntries() {
	const text = $("import-text").value;
	const json = text.trimStart().startsWith("[");
	$("import-submit").disabled = true;
	const r = await api("POST", "/api/entries/import", text,
		json ? "application/json" : "text/plain");
	$("import-submit").disabled = false;
	if (!r.ok) {
		$("import-status").textContent = "Nothing imported: " + errorText(r);
		$("import-status").className = "error";
		return;
	}
	$("import-status").textContent = r.body.imported + " imported, " + r.body.skipped +
		" there already.";
	$("import-status").className = "muted";
	$("import-text").value = "";
	refresh();
	refreshEntries();
}

async function refreshAudit() {
	const r = await api("GET", "/api/audit?after=" + state.auditLast + "&limit=1000");
	if (!r.ok || !r.body.audit.length)
		return;
	/* The poll and an action's refresh can overlap: both ask for the records after the same
	 * id, and the later answer must not add them again (oldest first: each is newer). */
	const fresh = r.body.audit.filter((a) => a.id > state.auditLast);
	if (!fresh.length)
		return;
	for (const a of fresh) {
		state.audit.unshift(a);
		state.auditLast = Math.max(state.auditLast, a.id);
	}
	state.audit.length = Math.min(state.audit.length, AUDIT_SHOWN);
	const list = $("audit");
	list.replaceChildren();
	for (const a of state.audit) {
		const li = el("li", "audit-" + a.action);
		const what = a.detail && a.detail.value ? a.detail.value :
			a.detail && a.detail.message ? a.detail.message : "";
		li.append(el("span", "time", fmtTime(a.time)), el("span", "kind", a.action),
			el("span", "msg", [what, a.entry ? "entry " + a.entry : "", "by " + a.who,
				a.from ? "from " + a.from : ""].filter((s) => s).join(" · ")));
		list.append(li);
	}
}

async function refreshGateways() {
	const r = await api("GET", "/api/gateways");
	$("gateways-block").hidden = !r.ok;
	if (!r.ok)
		return;
	const body = $("gateways").tBodies[0];
	body.replaceChildren();
	for (const g of Array.isArray(r.body) ? r.body : r.body.gateways || []) {
		const tr = el("tr", g.connected ? "up" : "down");
		tr.append(el("td", "", g.name), el("td", "", g.replica || ""),
			el("td", "", g.peer || ""), el("td", "", g.connected ? "connected" : "away"),
			el("td", "num", String(g.version)), el("td", "num", String(g.lag)),
			el("td", "muted", fmtTime(g.last_seen)));
		body.append(tr);
	}
}

/* session.js signs in and out, and calls start and stop */
document.addEventListener("DOMContentLoaded", () => {
	setupOnce();
	sessionBoot(start, stop);
});
