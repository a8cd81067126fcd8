"""A public address service for the DDNS lab test: GET answers the address given on the
command line, as plain text or as a JSON object under the key given.  A request that does
not accept application/json is answered 406, as egressd always asks for JSON.  GET /auth
answers the Authorization header of the last other request that carried one (JSON, null
before any), so that a test can see the credentials arrive.

    pubipsrv.py PORT ADDRESS plain|public_ip|ip_address|ip_addr|ip
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/auth":
            self.reply(200, "application/json", json.dumps(self.server.auth).encode())
            return
        if self.headers.get("Authorization"):
            self.server.auth = self.headers["Authorization"]
        if "application/json" not in self.headers.get("Accept", ""):
            self.send_response(406)
            self.end_headers()
            return
        mode, address = self.server.mode, self.server.address
        body = (address + "\n" if mode == "plain" else json.dumps({mode: address})).encode()
        self.reply(200, "text/plain" if mode == "plain" else "application/json", body)

    def reply(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("pubip: " + fmt % args + "\n")


def main():
    port, address, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    srv.address, srv.mode, srv.auth = address, mode, None
    srv.serve_forever()


if __name__ == "__main__":
    main()
