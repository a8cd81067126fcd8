#!/usr/bin/python3
"""Forward TCP from the host's loopback to an address inside a lab namespace.

    webrelay.py --listen 127.0.0.1:8090 --netns eg-RUN-gw --to 127.0.0.1:8090

`make demo` serves egressd's dashboard this way: egressd listens inside the lab's gw
namespace, the browser is on the host.  The relay binds its listening socket in the host's
namespace first, then enters the lab namespace (setns), so each connection it opens to
--to is made there.  It prints "webrelay: listening on HOST:PORT" once ready (with port 0,
the port the kernel chose), relays bytes both ways (server-sent events included) and exits
when its parent does.

What it must not do: change anything in either namespace (no route, link, address or
rule): it only listens on the loopback address it is given and connects.
"""

import argparse
import ctypes
import os
import signal
import socket
import sys
import threading

CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
MAX_CLIENTS = 64
BUF = 65536


def hostport(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def enter_netns(name):
    """Move this process (one thread yet) into network namespace `name` of `ip netns`."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/run/netns/%s" % name, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            e = ctypes.get_errno()
            raise OSError(e, "setns %s: %s" % (name, os.strerror(e)))
    finally:
        os.close(fd)


def die_with_parent():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:
        sys.exit(0)


def pump(src, dst):
    try:
        while True:
            data = src.recv(BUF)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
        try:
            s.shutdown(how)
        except OSError:
            pass


def serve(client, to, slots):
    try:
        with client, socket.create_connection(to, timeout=5) as up:
            up.settimeout(None)
            back = threading.Thread(target=pump, args=(up, client), daemon=True)
            back.start()
            pump(client, up)
            back.join()
    except OSError as e:
        sys.stderr.write("webrelay: %s:%d: %s\n" % (to[0], to[1], e))
    finally:
        slots.release()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:0", help="host address:port to listen on")
    ap.add_argument("--netns", required=True, help="the lab namespace (ip netns name)")
    ap.add_argument("--to", required=True, help="address:port inside the namespace")
    args = ap.parse_args()
    die_with_parent()
    host, port = hostport(args.listen)
    if not (host.startswith("127.") or host in ("::1", "localhost")):
        sys.exit("webrelay: listens on loopback only, not %s" % host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(16)
    enter_netns(args.netns)  # from here on, sockets are made in the lab's namespace
    print("webrelay: listening on %s:%d" % (host, lsock.getsockname()[1]), flush=True)
    to = hostport(args.to)
    slots = threading.BoundedSemaphore(MAX_CLIENTS)
    while True:
        client, _ = lsock.accept()
        if not slots.acquire(blocking=False):
            client.close()
            continue
        threading.Thread(target=serve, args=(client, to, slots), daemon=True).start()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
