#!/usr/bin/env python3
"""Tiny HTTP server that answers with its own name, for the Egress lab.

GET /            -> 200 "<name> <client-ip>\n"   (tells a test which server, hence which
                                                    uplink, carried a flow, and the source
                                                    address the server saw)
GET /bytes/N     -> 200 with N bytes of 'x'       (bulk transfer for rate tests; N <= 1 GiB)
HEAD on either   -> the same headers, no body

IPv4-mapped client addresses (::ffff:a.b.c.d on a dual-stack "::" socket) are shown as plain
IPv4. Run it inside a namespace (Node.http_server() does that); it binds only the address it is
given and must not touch anything else: stdlib only, no files written, logs to stderr.

    namesrv.py --port 8080 --name isp1 [--bind 0.0.0.0|::|ADDR]
"""

import argparse
import http.server
import ipaddress
import signal
import socket
import sys

MAX_BYTES = 1 << 30


def client_ip(addr):
    """Return the textual client address, with IPv4-mapped IPv6 shown as IPv4."""
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "namesrv/1"
    protocol_version = "HTTP/1.1"

    def _body(self):
        path = self.path.split("?", 1)[0]
        if path.startswith("/bytes/"):
            try:
                n = int(path[len("/bytes/"):])
            except ValueError:
                return 400, b"bad byte count\n"
            if n < 0 or n > MAX_BYTES:
                return 400, b"byte count out of range\n"
            return 200, n
        text = "%s %s\n" % (self.server.name, client_ip(self.client_address[0]))
        return 200, text.encode()

    def _answer(self, send_body):
        code, body = self._body()
        length = body if isinstance(body, int) else len(body)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(length))
        self.send_header("X-Server-Name", self.server.name)
        self.end_headers()
        if not send_body:
            return
        if isinstance(body, bytes):
            self.wfile.write(body)
            return
        chunk = b"x" * 65536
        while length > 0:
            n = min(length, len(chunk))
            self.wfile.write(chunk[:n])
            length -= n

    def do_GET(self):
        self._answer(True)

    def do_HEAD(self):
        self._answer(False)

    def log_message(self, fmt, *args):
        sys.stderr.write("%s %s\n" % (self.client_address[0], fmt % args))


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, bind, port, name):
        self.name = name
        self.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
        super().__init__((bind, port), Handler, bind_and_activate=False)
        if self.address_family == socket.AF_INET6:
            # "::" serves IPv4 too, as the caller asked for "any address".
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        self.server_bind()
        self.server_activate()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--bind", default="0.0.0.0")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = Server(args.bind, args.port, args.name)
    sys.stderr.write("namesrv %s listening on %s port %d\n" % (args.name, args.bind, args.port))
    sys.stderr.flush()
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
