#!/usr/bin/python3
"""Load on egressd's REST API for bench/api.py: dashboard clients, or a latency probe.

    apiload.py clients N (--unix PATH | --tcp HOST:PORT) [--token TOKEN]
        N clients that do what the web dashboard (web/egress.js) does while it is open: the
        event stream (GET /api/events/stream) held open and read, GET /api/uplinks every 2 s
        and GET /api/connections every 3 s, each client on its own connections, their
        polls spread over the period.  Prints {"ready": n} once every stream is open (or has
        failed), then runs until stdin reaches EOF and prints one JSON line:
        {"streams": n, "stream_bytes": n, "requests": {"PATH STATUS": n}, "errors": {...}}.
    apiload.py probe (--unix PATH | --tcp HOST:PORT) [--token TOKEN] [--path P] [--interval S]
        GET P (/api/uplinks) on one keep-alive connection, one request every S seconds
        (0.02), until stdin reaches EOF; prints {"n": n, "ms": [latency of each answer],
        "codes": {status: n}, "errors": {...}}.

Either mode stops by itself after 600 s.  Plain HTTP/1.1 over asyncio (stdlib only): bodies
by Content-Length or chunked, keep-alive unless the server closes.
What it must not do: talk to anything but the one API endpoint it is given.
"""
import argparse
import asyncio
import json
import random
import sys
import time

MAX_SECONDS = 600
POLLS = (("/api/uplinks", 2.0), ("/api/connections", 3.0))


class Endpoint:
    def __init__(self, args):
        self.unix = args.unix
        self.tcp = args.tcp
        self.token = args.token

    async def connect(self):
        if self.unix:
            return await asyncio.open_unix_connection(self.unix)
        host, _, port = self.tcp.rpartition(":")
        return await asyncio.open_connection(host.strip("[]"), int(port))

    def head(self, path, extra=""):
        auth = "Authorization: Bearer %s\r\n" % self.token if self.token else ""
        return ("GET %s HTTP/1.1\r\nHost: localhost\r\n%s%s\r\n" % (path, auth, extra)).encode()


async def read_head(reader):
    """(status, {lower-case header: value}) of the next response."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed")
    status = int(line.split()[1])
    headers = {}
    while True:
        line = (await reader.readline()).decode("latin-1").strip()
        if not line:
            return status, headers
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()


async def read_body(reader, headers):
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            body += await reader.readexactly(size + 2)
            if size == 0:
                return body
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read()


class Conn:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, ep):
        self.ep = ep
        self.rw = None

    async def get(self, path):
        if self.rw is None:
            self.rw = await self.ep.connect()
        reader, writer = self.rw
        writer.write(self.ep.head(path))
        await writer.drain()
        status, headers = await read_head(reader)
        await read_body(reader, headers)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status

    def close(self):
        if self.rw:
            self.rw[1].close()
            self.rw = None


def count(d, key, n=1):
    d[key] = d.get(key, 0) + n


async def stream(ep, st, ready):
    """Hold the event stream open and read it."""
    try:
        reader, writer = await ep.connect()
        writer.write(ep.head("/api/events/stream", "Accept: text/event-stream\r\n"))
        await writer.drain()
        status, _ = await read_head(reader)
        count(st["requests"], "/api/events/stream %d" % status)
        if status == 200:
            st["streams"] += 1
    except (OSError, ConnectionError, ValueError, IndexError) as e:
        count(st["errors"], "stream: %s" % type(e).__name__)
        return
    finally:
        ready()
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                count(st["errors"], "stream closed by the server")
                return
            st["stream_bytes"] += len(data)
    except (OSError, ConnectionError) as e:
        count(st["errors"], "stream: %s" % type(e).__name__)
    finally:
        writer.close()


async def poll(ep, st, path, period):
    conn = Conn(ep)
    await asyncio.sleep(random.uniform(0, period))
    try:
        while True:
            try:
                count(st["requests"], "%s %d" % (path, await conn.get(path)))
            except (OSError, ConnectionError, ValueError, IndexError,
                    asyncio.IncompleteReadError) as e:
                count(st["errors"], "%s: %s" % (path, type(e).__name__))
                conn.close()
            await asyncio.sleep(period)
    finally:
        conn.close()


async def stdin_eof():
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)


async def until_eof(tasks):
    try:
        await asyncio.wait_for(stdin_eof(), MAX_SECONDS)
    except asyncio.TimeoutError:
        pass
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def clients(args):
    ep = Endpoint(args)
    st = {"streams": 0, "stream_bytes": 0, "requests": {}, "errors": {}}
    left = [args.n]
    all_ready = asyncio.Event()

    def ready():
        left[0] -= 1
        if left[0] == 0:
            all_ready.set()
    tasks = [asyncio.create_task(stream(ep, st, ready)) for _ in range(args.n)]
    await asyncio.wait_for(all_ready.wait(), 30)
    print(json.dumps({"ready": st["streams"]}), flush=True)
    tasks += [asyncio.create_task(poll(ep, st, path, period))
              for _ in range(args.n) for path, period in POLLS]
    await until_eof(tasks)
    print(json.dumps(st), flush=True)


async def probe(args):
    ep = Endpoint(args)
    st = {"n": 0, "ms": [], "codes": {}, "errors": {}}

    async def run():
        conn = Conn(ep)
        while True:
            t0 = time.monotonic()
            try:
                code = await conn.get(args.path)
                st["ms"].append((time.monotonic() - t0) * 1e3)
                count(st["codes"], str(code))
            except (OSError, ConnectionError, ValueError, IndexError,
                    asyncio.IncompleteReadError) as e:
                count(st["errors"], type(e).__name__)
                conn.close()
            st["n"] += 1
            await asyncio.sleep(args.interval)
    await until_eof([asyncio.create_task(run())])
    print(json.dumps(st), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=("clients", "probe"))
    ap.add_argument("n", type=int, nargs="?", default=20)
    ap.add_argument("--unix")
    ap.add_argument("--tcp")
    ap.add_argument("--token")
    ap.add_argument("--path", default="/api/uplinks")
    ap.add_argument("--interval", type=float, default=0.02)
    args = ap.parse_args()
    if bool(args.unix) == bool(args.tcp):
        ap.error("one of --unix and --tcp")
    asyncio.run(clients(args) if args.mode == "clients" else probe(args))


if __name__ == "__main__":
    main()
