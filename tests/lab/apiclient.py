"""Call egressd's REST API from a lab test: over its UNIX socket or over TCP inside a node.

    api = ApiClient.unix(d)                          # d: a running Egressd (its own socket)
    r = api.get("/api/modules")                      # Response: .status, .headers, .body, .json()
    assert r.status == 200, r
    api = ApiClient.tcp(lab["gw"], "http://127.0.0.1:8090")
    r = api.post("/api/config", {"weight": 3})       # a dict is sent as JSON
    api.token = "..."                                # Authorization: Bearer
    api.cookie = {"egress_session": "..."}           # Cookie; Set-Cookie of replies updates it
    api.csrf = "..."                                 # X-CSRF-Token on every state change
    with api.stream("/api/events/stream") as s:      # server-sent events
        ev = s.next_event(timeout=5)                 # {"event":..., "id":..., "data":...}

Every request runs curl inside the node (`ip netns exec`), so a test reaches exactly what a
client in that namespace would, and the host's own network is never touched.  curl's
--unix-socket reaches the daemon's socket in the lab's run directory.

What it must not do: talk to anything outside the lab; hide a status (a Response is returned
whatever the status; check it).
"""

import json
import os
import select
import subprocess
import time

from lab import LabError


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # {lower-case name: value}; Set-Cookie values in .cookies
        self.body = body        # bytes
        self.cookies = {}

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %s>" % (self.status, self.text[:300])


def _parse_head(raw):
    """curl -D output: possibly several header blocks (1xx first); the last is the reply's."""
    blocks = [b for b in raw.replace(b"\r\n", b"\n").split(b"\n\n") if b.strip()]
    if not blocks:
        raise LabError("no HTTP response head")
    lines = blocks[-1].decode("latin-1").split("\n")
    status = int(lines[0].split()[1])
    headers, cookies = {}, {}
    for line in lines[1:]:
        if ":" not in line:
            continue
        k, v = line.split(":", 1)
        k, v = k.strip().lower(), v.strip()
        if k == "set-cookie":
            name, _, rest = v.partition("=")
            cookies[name.strip()] = rest.split(";", 1)[0]
        headers[k] = v
    return status, headers, cookies


class ApiClient:
    """A client of one egressd API endpoint: a UNIX socket (`socket`) or a base URL."""

    def __init__(self, node, base="http://localhost", socket=None, token=None, cookie=None,
                 csrf=None, cacert=None, insecure=False, timeout=5):
        self.node = node
        self.base = base.rstrip("/")
        self.socket = socket
        self.token = token
        self.cookie = dict(cookie or {})
        self.csrf = csrf
        self.cacert = cacert
        self.insecure = insecure
        self.timeout = timeout
        self._n = 0

    @classmethod
    def unix(cls, daemon, **kw):
        """The daemon's UNIX socket (root: an admin)."""
        return cls(daemon.node, socket=daemon.api_socket, **kw)

    @classmethod
    def tcp(cls, node, base, **kw):
        """base: "http://127.0.0.1:8090" or "https://..." as seen from inside node."""
        return cls(node, base=base, **kw)

    def _curl_argv(self, method, path, headers, extra=()):
        argv = ["curl", "-sS", "--path-as-is", "--max-time", str(self.timeout), "-X", method,
                "-H", "Expect:"]
        if self.socket:
            argv += ["--unix-socket", str(self.socket)]
        if self.cacert:
            argv += ["--cacert", str(self.cacert)]
        if self.insecure:
            argv += ["-k"]
        hdrs = {}
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        if self.cookie:
            hdrs["Cookie"] = "; ".join("%s=%s" % kv for kv in self.cookie.items())
        if self.csrf and method not in ("GET", "HEAD"):
            hdrs["X-CSRF-Token"] = self.csrf
        hdrs.update(headers or {})
        for k, v in hdrs.items():
            argv += ["-H", "%s: %s" % (k, v)]
        if method == "HEAD":
            argv += ["-I"]
        return argv + list(extra) + [self.base + path]

    def request(self, method, path, body=None, headers=None, raw=None):
        """Send a request; body (a dict or list) goes as JSON, raw (bytes/str) as it is.
        Returns a Response whatever the status (curl failing to connect raises LabError)."""
        headers = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        self._n += 1
        tag = "%d.%d" % (os.getpid(), self._n)
        head = self.node.lab.dir / ("api-%s.head" % tag)
        out = self.node.lab.dir / ("api-%s.body" % tag)
        extra = ["-D", str(head), "-o", str(out)]
        if data is not None:
            extra += ["--data-binary", "@-"]
        argv = self._curl_argv(method, path, headers, extra)
        try:
            p = subprocess.run(self.node._argv(argv), input=data, capture_output=True,
                               timeout=self.timeout + 10)
            if p.returncode in (18, 28) or (p.returncode != 0 and (
                    not head.exists() or not head.stat().st_size)):
                # 18, 28: the body cut short or the time out while it came
                raise LabError("curl %s %s%s: exit %d: %s" % (method, self.base, path,
                               p.returncode, p.stderr.decode(errors="replace").strip()))
            status, hdrs, cookies = _parse_head(head.read_bytes())
            # curl --head writes the head to -o too: a HEAD reply has no body
            body_bytes = out.read_bytes() if out.exists() and method != "HEAD" else b""
        finally:
            for f in (head, out):
                try:
                    f.unlink()
                except FileNotFoundError:
                    pass
        r = Response(status, hdrs, body_bytes)
        r.cookies = cookies
        self.cookie.update(cookies)
        return r

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def head(self, path, **kw):
        return self.request("HEAD", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=None, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def login(self, password, username="admin", path="/api/login"):
        """POST the credentials; keep the session cookie (Set-Cookie) and the CSRF token the
        reply carries (JSON field "csrf"). Returns the Response."""
        r = self.post(path, {"username": username, "password": password})
        if r.status == 200:
            try:
                self.csrf = r.json().get("csrf", self.csrf)
            except ValueError:
                pass
        return r

    def stream(self, path, headers=None):
        """Open a server-sent event stream (GET path); use as a context manager."""
        return EventStream(self, path, headers)


class EventStream:
    """curl -N reading text/event-stream inside the node; next_event() parses one event."""

    def __init__(self, client, path, headers=None):
        argv = client._curl_argv("GET", path, headers, ["-N", "--max-time", "3600"])
        # the client's own --max-time would end the stream: the last one wins in curl
        self.proc = subprocess.Popen(client.node._argv(argv), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self._buf = b""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()

    def _read(self, deadline):
        fd = self.proc.stdout.fileno()
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            return False
        chunk = os.read(fd, 65536)
        if not chunk:
            raise LabError("event stream ended: %s"
                           % self.proc.stderr.read().decode(errors="replace"))
        self._buf += chunk
        return True

    def next_event(self, timeout=5.0, comments=False):
        """The next event as {"event", "id", "data"} (data lines joined with newlines);
        comment-only blocks (keep-alives) are skipped unless comments. AssertionError if
        none comes within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            sep = self._buf.find(b"\n\n")
            if sep >= 0:
                block, self._buf = self._buf[:sep].decode(), self._buf[sep + 2:]
                ev = {"event": None, "id": None, "data": None}
                data = []
                for line in block.split("\n"):
                    if line.startswith(":"):
                        continue
                    k, _, v = line.partition(":")
                    v = v[1:] if v.startswith(" ") else v
                    if k == "data":
                        data.append(v)
                    elif k in ("event", "id"):
                        ev[k] = v
                if data:
                    ev["data"] = "\n".join(data)
                if data or ev["event"] or ev["id"] or comments:
                    return ev
                continue
            if not self._read(deadline):
                raise AssertionError("no event within %.1fs (have %r)" % (timeout, self._buf))
