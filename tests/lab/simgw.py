"""Simulated gateways of the allowlist protocol (doc/allowlist-protocol.md), for lab tests and
bench/allowlist_fanout.py: they speak the real protocol to a real egress-server's hub over
python3-websockets, and keep the list the way a gateway must (a snapshot replaces, a delta
applies to exactly its "from" version).

    gw = SimGateway("ws://127.0.0.1:8091/ws", "gw1", token=TOKEN)
    msg = await gw.connect()             # hello with gw.version; the server's first answer
    await gw.ack()                       # acknowledge what it holds
    msg = await gw.recv(timeout=5)       # the next snapshot or delta, applied
    gw.items                             # {key: item}
    await gw.close()

silent_gateway() opens a connection, says hello and then reads nothing (nor answers a
ping): what a hung gateway looks like to the server.

What it must not do: connect anywhere but the URL it is given (loopback or a lab namespace).
"""

import asyncio
import base64
import json
import os
import socket
import struct
import urllib.parse

import websockets


class ProtocolError(Exception):
    pass


class SimGateway:
    def __init__(self, url, name, token=None, ssl=None, version=0):
        self.url = url
        self.name = name
        self.token = token
        self.ssl = ssl
        self.version = version  # what it holds
        self.items = {}
        self.ws = None
        self.received = []  # every message from the server, parsed

    async def open(self):
        """The WebSocket only (raises websockets' InvalidStatusCode on a refusal)."""
        headers = {"Authorization": "Bearer " + self.token} if self.token else {}
        self.ws = await websockets.connect(self.url, extra_headers=headers, ssl=self.ssl,
                                           max_size=None, ping_interval=None,
                                           open_timeout=10)

    async def send(self, obj):
        await self.ws.send(obj if isinstance(obj, str) else json.dumps(obj))

    async def hello(self, version=None, protocol=1):
        await self.send({"type": "hello", "protocol": protocol, "gateway": self.name,
                         "version": self.version if version is None else version})

    async def connect(self, version=None, timeout=10):
        """Open, say hello, return the server's answer (applied)."""
        await self.open()
        await self.hello(version)
        return await self.recv(timeout)

    async def recv_raw(self, timeout=10):
        text = await asyncio.wait_for(self.ws.recv(), timeout)
        msg = json.loads(text)
        self.received.append(msg)
        return msg

    async def recv(self, timeout=10):
        """The next message, applied: a snapshot replaces, a delta must start at our version."""
        msg = await self.recv_raw(timeout)
        self.apply(msg)
        return msg

    def apply(self, msg):
        t = msg.get("type")
        if t == "snapshot":
            self.items = {it["key"]: it for it in msg["items"]}
        elif t == "delta":
            if msg["from"] != self.version:
                raise ProtocolError("delta from %s, holding %s" % (msg["from"], self.version))
            for it in msg["set"]:
                self.items[it["key"]] = it
            for k in msg["del"]:
                self.items.pop(k, None)
        elif t == "error":
            raise ProtocolError("server error: %s" % msg["error"])
        else:
            raise ProtocolError("unexpected message %r" % msg)
        self.version = msg["version"]

    async def ack(self, version=None):
        await self.send({"type": "ack", "version": self.version if version is None else version})

    async def close(self):
        if self.ws:
            await self.ws.close()
            self.ws = None


def silent_gateway(url, name, token, version=0):
    """A gateway that says hello and then reads nothing: returns its socket (close it)."""
    u = urllib.parse.urlsplit(url)
    sock = socket.create_connection((u.hostname, u.port or 80), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "Authorization: Bearer %s\r\n\r\n" % (u.path or "/", u.netloc, key, token))
    sock.sendall(req.encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the head is consumed
        if not chunk:
            raise ProtocolError("closed during the handshake: %r" % head)
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ProtocolError("handshake refused: %r" % head[:200])
    payload = json.dumps({"type": "hello", "protocol": 1, "gateway": name,
                          "version": version}).encode()
    mask = os.urandom(4)
    frame = bytes([0x81])
    if len(payload) < 126:
        frame += bytes([0x80 | len(payload)])
    else:
        frame += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
    frame += mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(frame)
    return sock
