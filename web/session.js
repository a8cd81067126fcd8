/*
 * session.js - what egress's pages share (egressd's dashboard, egress-server's allowlist):
 * requests to the REST API on the same origin, signing in and out, the flash line.
 *
 * A page loads it first and calls sessionBoot(start, stop) once its DOM is there: start()
 * runs once signed in (a session cookie from POST /api/login, or one the browser had),
 * stop() when signed out or when the session is gone (a 401).  Every state change carries
 * the session's CSRF token.  The page needs the elements #login, #login-form, #login-user,
 * #login-password, #login-submit, #login-error, #app, #who, #logout and #flash.
 *
 * What it must not do: keep anything secret outside the page (no storage of the password or
 * token).
 */
"use strict";

const session = {
	csrf: null,
	signedIn: false,
	start: null,
	stop: null,
	flashTimer: 0,
};

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
	const e = document.createElement(tag);
	if (cls)
		e.className = cls;
	if (text !== undefined)
		e.textContent = text;
	return e;
}

/* --- the API --- */

/*
 * One request; resolves to {status, ok, body} (body: parsed JSON or text) and never throws
 * for an HTTP status.  An object body goes as JSON, a string as it is with type
 * (text/plain by default).  A 401 while signed in means the session is gone: back to the
 * login.
 */
async function api(method, path, body, type) {
	const opts = { method, headers: {}, credentials: "same-origin" };
	if (typeof body === "string") {
		opts.headers["Content-Type"] = type || "text/plain";
		opts.body = body;
	} else if (body !== undefined) {
		opts.headers["Content-Type"] = "application/json";
		opts.body = JSON.stringify(body);
	}
	if (method !== "GET" && session.csrf)
		opts.headers["X-CSRF-Token"] = session.csrf;
	let res;
	try {
		res = await fetch(path, opts);
	} catch (e) {
		return { status: 0, ok: false, body: { error: "the server does not answer" } };
	}
	const ctype = res.headers.get("Content-Type") || "";
	let payload = await res.text();
	if (ctype.includes("json")) {
		try {
			payload = JSON.parse(payload);
		} catch (e) {
			/* keep the text */
		}
	}
	if (res.status === 401 && session.signedIn && path !== "/api/login")
		signedOut();
	return { status: res.status, ok: res.ok, body: payload };
}

function errorText(r) {
	if (r.body && typeof r.body === "object" && r.body.error)
		return r.body.error + (r.body.field ? " (" + r.body.field + ")" : "");
	if (typeof r.body === "string" && r.body.trim())
		return r.body.trim();
	return "HTTP " + r.status;
}

/* A line under the header: an error (stays until the next), or ok (goes by itself). */
function flash(text, ok) {
	const f = $("flash");
	f.textContent = text;
	f.hidden = !text;
	f.className = "flash" + (ok ? " ok" : "");
	clearTimeout(session.flashTimer);
	if (text && ok)
		session.flashTimer = setTimeout(() => flash(""), 6000);
}

/* --- signing in and out --- */

async function sessionBoot(start, stop) {
	session.start = start;
	session.stop = stop;
	$("login-form").addEventListener("submit", login);
	$("logout").addEventListener("click", logout);
	const r = await api("GET", "/api/session");
	if (r.ok)
		signedIn(r.body);
	else
		showLogin("");
}

function showLogin(message) {
	$("app").hidden = true;
	$("login").hidden = false;
	$("login-error").textContent = message;
	$("login-password").value = "";
	$("login-password").focus();
}

async function login(ev) {
	ev.preventDefault();
	$("login-submit").disabled = true;
	const r = await api("POST", "/api/login",
		{ username: $("login-user").value, password: $("login-password").value });
	$("login-submit").disabled = false;
	if (!r.ok) {
		showLogin(r.status === 401 ? "Wrong user or password." : errorText(r));
		return;
	}
	const s = await api("GET", "/api/session");
	if (!s.ok) {
		showLogin(errorText(s));
		return;
	}
	signedIn(Object.assign({}, r.body, s.body));
}

async function logout() {
	await api("POST", "/api/logout");
	signedOut();
}

function signedIn(s) {
	session.csrf = s.csrf || s.csrf_token || null;
	session.signedIn = true;
	$("who").textContent = s.user || s.username || "";
	$("login").hidden = true;
	$("app").hidden = false;
	session.start();
}

function signedOut() {
	session.stop();
	session.signedIn = false;
	session.csrf = null;
	showLogin("Signed out.");
}
