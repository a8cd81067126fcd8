"""A fake of DynuDNS's API v2 for the DDNS lab test: the calls egressd makes (those of
gateway-route-manager), with Dynu's error replies ({"exception": {"type", "message"}}).

    fakedynu.py PORT API_KEY DOMAIN [STATE_FILE]

    GET    /v2/dns/getroot/HOSTNAME   {"id": 1, "domainName": DOMAIN, "node": ...}
    GET    /v2/dns/1/record           {"statusCode": 200, "dnsRecords": [...]}
    DELETE /v2/dns/1/record/RID
    POST   /v2/dns/1/record           {"nodeName", "recordType", "ttl", "state",
                                       "ipv4Address" | "ipv6Address"}
    GET    /state                     the records, without a key (for the test)
    POST   /state                     replace the records (for the test)

Every /v2 call needs the API-Key header; requests are counted by method in /state.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"records": [], "next_id": 100, "calls": {}}


class Handler(BaseHTTPRequestHandler):
    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def error(self, code, kind, message):
        self.reply(code, {"statusCode": code, "exception": {"type": kind, "message": message}})

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(n) or b"null")

    def handle_any(self, method):
        path = self.path
        if path == "/state":
            with LOCK:
                if method == "POST":
                    STATE["records"] = self.body()
                self.reply(200, STATE)
            return
        with LOCK:
            STATE["calls"][method] = STATE["calls"].get(method, 0) + 1
        if self.headers.get("API-Key") != self.server.key:
            self.error(401, "Authentication Exception", "Invalid API credentials.")
            return
        if not path.startswith("/v2/dns/"):
            self.error(404, "Not Found", "No such endpoint.")
            return
        parts = path[len("/v2/dns/"):].split("/")
        domain = self.server.domain
        with LOCK:
            if method == "GET" and parts[0] == "getroot" and len(parts) == 2:
                host = parts[1].lower().rstrip(".")
                if host == domain:
                    self.reply(200, {"statusCode": 200, "id": 1, "domainName": domain,
                                     "hostname": host, "node": ""})
                elif host.endswith("." + domain):
                    self.reply(200, {"statusCode": 200, "id": 1, "domainName": domain,
                                     "hostname": host, "node": host[:-len(domain) - 1]})
                else:
                    self.error(501, "Argument Exception", "Host name is not valid.")
                return
            if parts[0] != "1" or len(parts) < 2 or parts[1] != "record":
                self.error(404, "Not Found", "Domain not found.")
                return
            if method == "GET" and len(parts) == 2:
                self.reply(200, {"statusCode": 200, "dnsRecords": STATE["records"]})
            elif method == "DELETE" and len(parts) == 3:
                rid = int(parts[2])
                left = [r for r in STATE["records"] if r["id"] != rid]
                if len(left) == len(STATE["records"]):
                    self.error(404, "Not Found", "DNS record not found.")
                    return
                STATE["records"] = left
                self.reply(200, {"statusCode": 200})
            elif method == "POST" and len(parts) == 2:
                r = self.body()
                kind = r.get("recordType") if isinstance(r, dict) else None
                key = {"A": "ipv4Address", "AAAA": "ipv6Address"}.get(kind)
                if not key or not isinstance(r.get(key), str) or \
                        not isinstance(r.get("ttl"), int) or "nodeName" not in r:
                    self.error(400, "Validation Exception", "Invalid DNS record.")
                    return
                rec = {"id": STATE["next_id"], "domainId": 1, "domainName": domain,
                       "nodeName": r["nodeName"], "recordType": kind, "ttl": r["ttl"],
                       "state": r.get("state", True), key: r[key]}
                STATE["next_id"] += 1
                STATE["records"].append(rec)
                self.reply(200, dict(rec, statusCode=200))
            else:
                self.error(405, "Method Not Allowed", "Not supported.")

    def do_GET(self):
        self.handle_any("GET")

    def do_POST(self):
        self.handle_any("POST")

    def do_DELETE(self):
        self.handle_any("DELETE")

    def log_message(self, fmt, *args):
        sys.stderr.write("fakedynu: " + fmt % args + "\n")


def main():
    port, key, domain = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    srv = ThreadingHTTPServer(("0.0.0.0", port), Handler)
    srv.key, srv.domain = key, domain
    srv.serve_forever()


if __name__ == "__main__":
    main()
