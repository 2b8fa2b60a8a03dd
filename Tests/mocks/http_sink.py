#!/usr/bin/env python3
"""Loopback HTTP (and SMTP) sink for Herald's HTTP engine tests. Python 3 stdlib only.

Usage:
    python3 http_sink.py [--tls CERT KEY]   # HTTP/1.1 with keep-alive (HTTPS with --tls)
    python3 http_sink.py --smtp             # a minimal SMTP server

Binds 127.0.0.1 on a free port, prints "PORT <n>" as its first stdout line, then serves until
killed (or until stdin closes, so a crashed test run leaves no process behind).

HTTP behaviour by path (any method):
    /status/<code>       answers <code>
    /slow/<ms>           sleeps <ms> then answers 200
    /echo                answers JSON {method, path, headers: [[name, value]...], body_b64, body_utf8}
    /retry-after/<s>     answers 429 with "Retry-After: <s>"
    /big/<n>             answers <n> bytes
    /redirect            answers 302 with "Location: /echo"
    (a request with "Expect: 100-continue" first gets a 100 response carrying "X-Interim: yes")
    /_stats              answers JSON {connections, accepted, requests}: connections that carried a
                         recorded request, and TCP connections accepted (stats connections excluded)
    /_requests           answers JSON [[method, path]...] of the requests recorded so far
    anything else        answers 200 "ok"

SMTP: advertises AUTH PLAIN (user "herald", password "s3cret"); RCPT TO addresses containing
"reject" get 550; a message gets "250 2.0.0 Ok: queued as Q<n>".
"""

import base64
import json
import signal
import socketserver
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.connections = 0
        self.accepted = 0
        self.requests = []


STATS = Stats()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed
    server_version = "HeraldSink/1"

    counted = False  # per connection: counted once it carries a request other than /_stats, /_requests
    first = True

    def setup(self):
        super().setup()
        with STATS.lock:
            STATS.accepted += 1

    def handle_expect_100(self):
        # An interim response with a header of its own: clients must not mix it into the final headers.
        self.wfile.write(b"HTTP/1.1 100 Continue\r\nX-Interim: yes\r\n\r\n")
        self.wfile.flush()
        return True

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def __getattr__(self, name):
        # BaseHTTPRequestHandler dispatches to do_<METHOD>; accept every method.
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def reply(self, code, body=b"", headers=()):
        if code < 200 or code in (204, 304):
            body = b""  # these statuses have no body; sending one would corrupt a kept-alive connection
        self.send_response(code)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def dispatch(self):
        body = self.read_body()
        path = self.path.split("?", 1)[0]
        parts = [p for p in path.split("/") if p]
        if self.first and path in ("/_stats", "/_requests"):
            with STATS.lock:
                STATS.accepted -= 1  # the test's own stats connection
        self.first = False
        if path not in ("/_stats", "/_requests"):
            with STATS.lock:
                STATS.requests.append([self.command, self.path])
                if not self.counted:
                    self.counted = True
                    STATS.connections += 1
        head = parts[0] if parts else ""
        arg = parts[1] if len(parts) > 1 else None

        if head == "status" and arg:
            self.reply(int(arg), f"status {arg}".encode())
        elif head == "slow" and arg:
            time.sleep(int(arg) / 1000)
            self.reply(200, b"slow")
        elif head == "echo":
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                text = None
            doc = {
                "method": self.command,
                "path": self.path,
                "headers": [[k, v] for k, v in self.headers.items()],
                "body_b64": base64.b64encode(body).decode(),
                "body_utf8": text,
            }
            self.reply(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])
        elif head == "retry-after" and arg:
            self.reply(429, b'{"error":"slow down"}', [("Retry-After", arg), ("Content-Type", "application/json")])
        elif head == "big" and arg:
            n = int(arg)
            self.reply(200, (b"0123456789" * (n // 10 + 1))[:n])
        elif head == "redirect":
            self.reply(302, b"moved", [("Location", "/echo")])
        elif head == "_stats":
            with STATS.lock:
                doc = {"connections": STATS.connections, "accepted": STATS.accepted, "requests": len(STATS.requests)}
            self.reply(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])
        elif head == "_requests":
            with STATS.lock:
                doc = list(STATS.requests)
            self.reply(200, json.dumps(doc).encode(), [("Content-Type", "application/json")])
        else:
            self.reply(200, b"ok")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # many concurrent connects in tests; the default backlog of 5 drops SYNs

    def handle_error(self, request, client_address):
        pass  # clients hanging up mid-response (timeouts, truncation) are expected


class SMTPHandler(socketserver.StreamRequestHandler):
    counter = 0
    counter_lock = threading.Lock()

    def send(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        self.send("220 herald-sink ESMTP")
        recipients = 0
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-herald-sink\r\n250-AUTH PLAIN\r\n250 SIZE 1000000\r\n")
                self.wfile.flush()
            elif verb == "AUTH":
                fields = line.split(" ")
                if len(fields) < 3:
                    self.send("334 ")
                    fields.append(self.rfile.readline().decode().strip())
                creds = base64.b64decode(fields[2]).split(b"\0")
                ok = creds[1:] == [b"herald", b"s3cret"]
                self.send("235 2.7.0 ok" if ok else "535 5.7.8 bad credentials")
            elif verb == "MAIL":
                recipients = 0
                self.send("250 2.1.0 ok")
            elif verb == "RCPT":
                if "reject" in line.lower():
                    self.send("550 5.1.1 mailbox unavailable")
                else:
                    recipients += 1
                    self.send("250 2.1.5 ok")
            elif verb == "DATA":
                self.send("354 go ahead")
                while True:
                    data = self.rfile.readline()
                    if not data or data in (b".\r\n", b".\n"):
                        break
                with SMTPHandler.counter_lock:
                    SMTPHandler.counter += 1
                    n = SMTPHandler.counter
                self.send(f"250 2.0.0 Ok: queued as Q{n}")
            elif verb in ("RSET", "NOOP"):
                self.send("250 2.0.0 ok")
            elif verb == "QUIT":
                self.send("221 2.0.0 bye")
                return
            else:
                self.send("502 5.5.2 unknown command")


class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def exit_when_stdin_closes():
    try:
        sys.stdin.read()
    finally:
        import os
        os._exit(0)


def main(argv):
    # A parent that spawns us from a thread with signals blocked (Foundation.Process on Linux)
    # would otherwise leave SIGTERM blocked and the sink unkillable.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    if "--smtp" in argv:
        server = SMTPServer(("127.0.0.1", 0), SMTPHandler)
    else:
        server = Server(("127.0.0.1", 0), Handler)
        if "--tls" in argv:
            i = argv.index("--tls")
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(argv[i + 1], argv[i + 2])
            context.set_alpn_protocols(["http/1.1"])
            server.socket = context.wrap_socket(server.socket, server_side=True)
    print(f"PORT {server.server_address[1]}", flush=True)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
