#!/usr/bin/python3
"""Open COUNT connections through a SOCKS5 proxy and say where each one came out.

    socksflows.py PROXY_HOST PROXY_PORT HOST PORT COUNT [CONCURRENCY [BIND]]

Each connection: SOCKS5 greeting (no auth), CONNECT HOST:PORT (an IPv4 address or a
name), then "who" to the echo server (tests/lab/echosrv.py), whose answer names the
address it saw - i.e. the uplink.  BIND: the client's source address.  Prints one JSON
object: {"peers": {addr: n}, "fail": n, "errors": {...}, "connect_max": seconds,
"connect_avg": seconds}; connect time is from the TCP connect to the proxy to its
CONNECT reply.
"""
import ipaddress
import json
import socket
import struct
import sys
import threading
import time

lock = threading.Lock()
peers, errors, times = {}, {}, []


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise ConnectionError("proxy closed")
        b += c
    return b


def one(proxy, host, port, bind):
    t0 = time.monotonic()
    try:
        s = socket.create_connection(proxy, timeout=10, source_address=(bind, 0) if bind else None)
        with s:
            s.sendall(b"\x05\x01\x00")
            if recv_exact(s, 2) != b"\x05\x00":
                raise ConnectionError("method refused")
            try:
                a = ipaddress.ip_address(host)
                atyp = b"\x01" if a.version == 4 else b"\x04"
                dst = atyp + a.packed
            except ValueError:
                dst = b"\x03" + bytes([len(host)]) + host.encode()
            s.sendall(b"\x05\x01\x00" + dst + struct.pack("!H", port))
            head = recv_exact(s, 4)
            if head[1] != 0:
                raise ConnectionError("reply %d" % head[1])
            alen = {1: 4, 4: 16}.get(head[3])
            if alen is None:
                alen = recv_exact(s, 1)[0]
            recv_exact(s, alen + 2)
            dt = time.monotonic() - t0
            s.sendall(b"who\n")
            answer = s.makefile("rb").readline().decode().strip()
        peer = answer.split()[-1] if answer.startswith("peer ") else "?" + answer
        with lock:
            peers[peer] = peers.get(peer, 0) + 1
            times.append(dt)
    except (OSError, ConnectionError) as e:
        key = "%s: %s" % (e.__class__.__name__, e)
        with lock:
            errors[key] = errors.get(key, 0) + 1


def main():
    ph, pp, host, port, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), \
        int(sys.argv[5])
    conc = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    bind = sys.argv[7] if len(sys.argv) > 7 else None
    todo = list(range(count))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            one((ph, pp), host, port, bind)

    ts = [threading.Thread(target=worker) for _ in range(conc)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    print(json.dumps({"peers": peers, "fail": sum(errors.values()), "errors": errors,
                      "connect_max": max(times) if times else None,
                      "connect_avg": sum(times) / len(times) if times else None}))


if __name__ == "__main__":
    main()
