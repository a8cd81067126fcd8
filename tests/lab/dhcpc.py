#!/usr/bin/env python3
"""A minimal DHCPv4 client for the lab's LAN devices (devlab.py): what a plain device does.

    dhcpc.py acquire IFNAME [--hostname NAME] [--timeout S]
        DISCOVER, OFFER, REQUEST, ACK on IFNAME (broadcast flag set, client identifier = the
        interface's MAC); prints {"address", "prefixlen", "router", "server", "lease"} as JSON
        and exits 0, or exits 1 when no server answered within the timeout.
    dhcpc.py release IFNAME --address A --server S
        DHCPRELEASE of A to server S (the address must still be on IFNAME).

It only talks DHCP: it never adds addresses or routes (the caller does, with `ip`).  Run it
inside a lab namespace (Node.run); stdlib only, nothing written but its output.

What it must not do: run outside a lab namespace, touch any interface.
"""

import argparse
import ipaddress
import json
import os
import random
import select
import socket
import struct
import sys
import time

MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE = 1, 2, 3, 4, 5, 6, 7


def iface_mac(ifname):
    with open("/sys/class/net/%s/address" % ifname) as f:
        return bytes.fromhex(f.read().strip().replace(":", ""))


def message(kind, xid, mac, ciaddr="0.0.0.0", options=()):
    """A BOOTREQUEST of DHCP message type `kind` with options [(code, bytes)]."""
    head = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                       socket.inet_aton(ciaddr), b"\0" * 4, b"\0" * 4, b"\0" * 4,
                       mac + b"\0" * 10, b"", b"")
    opts = [(53, bytes([kind])), (61, b"\x01" + mac)] + list(options)
    body = b"".join(bytes([c, len(v)]) + v for c, v in opts)
    return head + MAGIC + body + b"\xff"


def parse(data):
    """(xid, yiaddr, {code: bytes}) of a BOOTREPLY, or None."""
    if len(data) < 240 or data[0] != 2 or data[236:240] != MAGIC:
        return None
    xid = struct.unpack("!I", data[4:8])[0]
    yiaddr = socket.inet_ntoa(data[16:20])
    opts, i = {}, 240
    while i < len(data) and data[i] != 255:
        if data[i] == 0:
            i += 1
            continue
        if i + 1 >= len(data):
            break
        code, n = data[i], data[i + 1]
        opts[code] = data[i + 2:i + 2 + n]
        i += 2 + n
    return xid, yiaddr, opts


def udp_socket(ifname, addr="0.0.0.0"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    s.bind((addr, 68))
    return s


def exchange(sock, pkt, xid, want, deadline, dst=("255.255.255.255", 67)):
    """Send pkt (again every second) until a reply of a type in `want` with xid comes."""
    next_send = 0
    while time.monotonic() < deadline:
        now = time.monotonic()
        if now >= next_send:
            sock.sendto(pkt, dst)
            next_send = now + 1.0
        r, _, _ = select.select([sock], [], [], max(0.0, min(next_send, deadline) - now))
        if not r:
            continue
        got = parse(sock.recv(4096))
        if got and got[0] == xid and got[2].get(53, b"\0")[0] in want:
            return got
    return None


def acquire(ifname, hostname, timeout):
    mac = iface_mac(ifname)
    xid = random.getrandbits(32)
    deadline = time.monotonic() + timeout
    extra = [(55, bytes([1, 3, 51]))]
    if hostname:
        extra.append((12, hostname.encode()))
    with udp_socket(ifname) as s:
        offer = exchange(s, message(DISCOVER, xid, mac, options=extra), xid, (OFFER,), deadline)
        if offer is None:
            return None
        _, yiaddr, opts = offer
        req = message(REQUEST, xid, mac, options=extra + [
            (50, socket.inet_aton(yiaddr)), (54, opts[54])])
        ack = exchange(s, req, xid, (ACK, NAK), deadline)
    if ack is None or ack[2][53][0] != ACK:
        return None
    _, yiaddr, opts = ack
    mask = socket.inet_ntoa(opts.get(1, b"\xff\xff\xff\0"))
    return {"address": yiaddr,
            "prefixlen": ipaddress.ip_network("0.0.0.0/%s" % mask).prefixlen,
            "router": socket.inet_ntoa(opts[3][:4]) if 3 in opts else None,
            "server": socket.inet_ntoa(opts[54]),
            "lease": struct.unpack("!I", opts[51])[0] if 51 in opts else None}


def release(ifname, address, server):
    mac = iface_mac(ifname)
    with udp_socket(ifname, address) as s:
        s.sendto(message(RELEASE, random.getrandbits(32), mac, ciaddr=address,
                         options=[(54, socket.inet_aton(server))]), (server, 67))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="dhcpc.py")
    ap.add_argument("action", choices=("acquire", "release"))
    ap.add_argument("ifname")
    ap.add_argument("--hostname", default=None)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--address")
    ap.add_argument("--server")
    a = ap.parse_args(argv)
    if not os.path.exists("/sys/class/net/%s" % a.ifname):
        sys.stderr.write("dhcpc.py: no interface %s\n" % a.ifname)
        return 2
    if a.action == "release":
        release(a.ifname, a.address, a.server)
        return 0
    lease = acquire(a.ifname, a.hostname, a.timeout)
    if lease is None:
        sys.stderr.write("dhcpc.py: no lease on %s within %.1fs\n" % (a.ifname, a.timeout))
        return 1
    print(json.dumps(lease))
    return 0


if __name__ == "__main__":
    sys.exit(main())
