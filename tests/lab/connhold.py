#!/usr/bin/python3
"""Many TCP connections from one process: hold N idle ones open, or churn short ones.

    connhold.py serve PORT [BIND]
        accept and keep every connection (epoll, one thread, no per-connection thread);
        a line "who" is answered "peer <client-ip>", anything else is dropped.
    connhold.py hold HOST PORT N [WINDOW]
        open N connections (at most WINDOW connecting at once, default 256), send "who" on
        each and wait for its answer, so each one is known to reach the server end to end
        (through a proxy, the proxy's own accept is not enough).  Then print one JSON line
        {"open": n, "fail": n, "errors": {...}, "peers": {addr: n}, "seconds": s} and keep
        them all open, idle, until stdin reaches EOF; then close them and exit.
    connhold.py churn HOST PORT SECONDS [CONC [PROCS]]
        for SECONDS, keep CONC connections in flight in each of PROCS processes: each one
        connects, sends "GET / HTTP/1.0" (tests/lab's nginx answers "<name> <client-ip>"),
        reads to EOF and closes.  Prints {"ok": n, "fail": n, "errors": {...},
        "peers": {addr: n}, "seconds": s}; ok counts complete answers only.

    connhold.py --socks5 PROXY:PORT hold|churn ...
        the same through a SOCKS5 proxy (no authentication): each connection goes to the
        proxy, sends its greeting and CONNECT request for HOST PORT followed at once by its
        own bytes, and strips the proxy's replies from what it reads (a refused request
        counts as an error "socks5 <reply code>").

The file descriptor limit is raised to what N needs (resource.setrlimit; as root the hard
limit too).  What it must not do: change anything in the namespace it runs in.
"""
import errno
import json
import os
import resource
import selectors
import socket
import sys
import time

CONNECT_TIMEOUT = 10.0
SOCKS5 = None  # (proxy address, port) with --socks5


def raise_nofile(need):
    """Raise RLIMIT_NOFILE to at least need (the hard limit too when allowed)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard != resource.RLIM_INFINITY and hard < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (need, need))
            return
        except (ValueError, OSError):
            need = hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))


def peer_of(addr):
    a = addr[0]
    return a[7:] if a.startswith("::ffff:") else a


def serve(port, bind):
    raise_nofile(1 << 17)
    fam = socket.AF_INET6 if ":" in bind else socket.AF_INET
    ls = socket.socket(fam, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        ls.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    ls.bind((bind, port))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                for _ in range(256):
                    try:
                        c, addr = ls.accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:  # EMFILE and friends: the next turn retries
                        if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS):
                            break
                        raise
                    c.setblocking(False)
                    sel.register(c, selectors.EVENT_READ, [peer_of(addr), b""])
                continue
            c, st = key.fileobj, key.data
            try:
                data = c.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c)
                c.close()
                continue
            st[1] += data
            while b"\n" in st[1]:
                line, st[1] = st[1].split(b"\n", 1)
                if line.strip() == b"who":
                    try:
                        c.send(("peer %s\n" % st[0]).encode())
                    except OSError:
                        pass
            st[1] = st[1][-256:]


def _socks5_prefix(host, port):
    """The greeting and CONNECT request for host:port that go before a connection's bytes
    (b"" without --socks5)."""
    if not SOCKS5:
        return b""
    if ":" in host:
        addr = b"\x04" + socket.inet_pton(socket.AF_INET6, host)
    else:
        addr = b"\x01" + socket.inet_aton(host)
    return b"\x05\x01\x00" + b"\x05\x01\x00" + addr + port.to_bytes(2, "big")


def _socks5_strip(buf):
    """(error or None, the bytes after the proxy's replies), or None while they are
    incomplete (buf as it came without --socks5)."""
    if not SOCKS5:
        return None, buf
    if len(buf) < 7:
        return None
    if buf[1] != 0:
        return "socks5 method %d" % buf[1], b""
    if buf[3] != 0:
        return "socks5 %d" % buf[3], b""
    atyp = buf[5]
    n = 2 + 4 + (4 if atyp == 1 else 16 if atyp == 4 else 1 + buf[6]) + 2
    if len(buf) < n:
        return None
    return None, buf[n:]


def _connect(host, port):
    if SOCKS5:
        host, port = SOCKS5
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setblocking(False)
    try:
        s.connect((host, port))
    except BlockingIOError:
        pass
    except OSError:
        s.close()
        raise
    return s


def _count(d, k):
    d[k] = d.get(k, 0) + 1


def _error_name(e):
    return errno.errorcode.get(e.errno, e.__class__.__name__) if e.errno else \
        e.__class__.__name__


def hold(host, port, n, window):
    """Open n connections, each answered once; returns (stats, list of open sockets)."""
    raise_nofile(n + 1024)
    sel = selectors.DefaultSelector()
    st = {"open": 0, "fail": 0, "errors": {}, "peers": {}}
    done, started, inflight = [], 0, 0
    t0 = time.monotonic()

    def fail(s, why):
        nonlocal inflight
        st["fail"] += 1
        _count(st["errors"], why)
        inflight -= 1
        try:
            sel.unregister(s)
        except (KeyError, ValueError):
            pass
        s.close()

    while started < n or inflight:
        while started < n and inflight < window:
            started += 1
            try:
                s = _connect(host, port)
            except OSError as e:
                st["fail"] += 1
                _count(st["errors"], _error_name(e))
                continue
            inflight += 1
            sel.register(s, selectors.EVENT_WRITE, [time.monotonic(), b""])
        for key, ev in sel.select(timeout=0.2):
            s, data = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fail(s, errno.errorcode.get(err, str(err)))
                    continue
                try:
                    s.send(_socks5_prefix(host, port) + b"who\n")
                except OSError as e:
                    fail(s, _error_name(e))
                    continue
                sel.modify(s, selectors.EVENT_READ, data)
                continue
            try:
                chunk = s.recv(256)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                fail(s, _error_name(e))
                continue
            if not chunk:
                fail(s, "closed")
                continue
            data[1] += chunk
            got = _socks5_strip(data[1])
            if got and got[0]:
                fail(s, got[0])
                continue
            if got and b"\n" in got[1]:
                answer = got[1].split(b"\n", 1)[0].decode(errors="replace").split()
                _count(st["peers"], answer[-1] if answer else "?")
                st["open"] += 1
                inflight -= 1
                sel.unregister(s)
                done.append(s)
        now = time.monotonic()
        for key in list(sel.get_map().values()):
            if now - key.data[0] > CONNECT_TIMEOUT:
                fail(key.fileobj, "timeout")
    st["seconds"] = round(time.monotonic() - t0, 3)
    return st, done


def churn_one(host, port, seconds, conc):
    """One process's share of churn(): returns its stats dict."""
    raise_nofile(conc + 1024)
    sel = selectors.DefaultSelector()
    st = {"ok": 0, "fail": 0, "errors": {}, "peers": {}}
    req = b"GET / HTTP/1.0\r\nHost: bench\r\n\r\n"
    t0 = time.monotonic()
    end = t0 + seconds
    inflight = 0

    def close(s, why=None, answer=b""):
        nonlocal inflight
        inflight -= 1
        sel.unregister(s)
        s.close()
        if why is not None:
            st["fail"] += 1
            _count(st["errors"], why)
            return
        got = _socks5_strip(answer)
        if not got or got[0]:
            st["fail"] += 1
            _count(st["errors"], got[0] if got else "socks5 reply cut")
            return
        answer = got[1]
        body = answer.split(b"\r\n\r\n", 1)
        if not answer.startswith(b"HTTP/1.1 200") or len(body) < 2:
            st["fail"] += 1
            _count(st["errors"], "bad answer")
            return
        words = body[1].decode(errors="replace").split()
        st["ok"] += 1
        _count(st["peers"], words[-1] if words else "?")

    while True:
        now = time.monotonic()
        if now >= end and not inflight:
            break
        while now < end and inflight < conc:
            try:
                s = _connect(host, port)
            except OSError as e:
                st["fail"] += 1
                _count(st["errors"], _error_name(e))
                break
            inflight += 1
            sel.register(s, selectors.EVENT_WRITE, [now, b""])
        for key, ev in sel.select(timeout=0.1):
            s, data = key.fileobj, key.data
            if ev & selectors.EVENT_WRITE:
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    close(s, errno.errorcode.get(err, str(err)))
                    continue
                try:
                    s.send(_socks5_prefix(host, port) + req)
                except OSError as e:
                    close(s, _error_name(e))
                    continue
                sel.modify(s, selectors.EVENT_READ, data)
                continue
            try:
                chunk = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                close(s, _error_name(e))
                continue
            if chunk:
                data[1] += chunk
            else:
                close(s, answer=data[1])
        now = time.monotonic()
        for key in list(sel.get_map().values()):
            if now - key.data[0] > CONNECT_TIMEOUT:
                close(key.fileobj, "timeout")
    # connections still running at the end count in the rate by when the last one finished
    st["seconds"] = time.monotonic() - t0
    return st


def churn(host, port, seconds, conc, procs):
    """Run churn_one in procs processes (forked; each writes its JSON to a pipe); sum."""
    kids = []
    for _ in range(procs):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                out = json.dumps(churn_one(host, port, seconds, conc)).encode()
                os.write(w, out)
            finally:
                os._exit(0)
        os.close(w)
        kids.append((pid, r))
    total = {"ok": 0, "fail": 0, "errors": {}, "peers": {}, "seconds": 0.0}
    for pid, r in kids:
        with os.fdopen(r, "rb") as f:
            part = json.loads(f.read() or b"{}")
        os.waitpid(pid, 0)
        if not part:
            total["fail"] += 1
            _count(total["errors"], "worker died")
            continue
        total["ok"] += part["ok"]
        total["fail"] += part["fail"]
        for k in ("errors", "peers"):
            for a, n in part[k].items():
                total[k][a] = total[k].get(a, 0) + n
        total["seconds"] = max(total["seconds"], part["seconds"])
    total["seconds"] = round(total["seconds"], 3)
    return total


def main(argv):
    global SOCKS5
    if len(argv) >= 2 and argv[0] == "--socks5":
        h, p = argv[1].rsplit(":", 1)
        SOCKS5 = (h.strip("[]"), int(p))
        argv = argv[2:]
    if len(argv) >= 2 and argv[0] == "serve":
        serve(int(argv[1]), argv[2] if len(argv) > 2 else "::")
        return 0
    if len(argv) >= 4 and argv[0] == "hold":
        window = int(argv[4]) if len(argv) > 4 else 256
        st, socks = hold(argv[1], int(argv[2]), int(argv[3]), window)
        print(json.dumps(st), flush=True)
        sys.stdin.read()  # hold until the caller closes our stdin
        for s in socks:
            s.close()
        return 0
    if len(argv) >= 4 and argv[0] == "churn":
        conc = int(argv[4]) if len(argv) > 4 else 32
        procs = int(argv[5]) if len(argv) > 5 else 1
        print(json.dumps(churn(argv[1], int(argv[2]), float(argv[3]), conc, procs)))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
