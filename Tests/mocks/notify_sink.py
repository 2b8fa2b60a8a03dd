#!/usr/bin/env python3
"""A webhook sink for Herald's escalation, outbox and reliability tests. Standard library only.

    notify_sink.py [--log FILE]

Prints "PORT <n>" first; exits when stdin closes.

    POST <any path>     records the request and answers as the current mode says. The record:
                        {"path", "key" (the Idempotency-Key header), "at" (Unix seconds),
                         "event", "number", "title", "status"} (the last four from the webhook
                        plugin's JSON body, when present). With --log every record is also
                        appended to FILE as a JSON line, so it survives anything the test does
                        to Herald.
    GET /_received      JSON list of records answered 2xx
    GET /_attempts      JSON list of every record, whatever the answer (with "answer")
    POST /_mode         JSON {"mode": M, "count": N}: from now on, the next N requests (0 = all)
                        answer M, then "ok" again (a new /_mode replaces the previous one):
                          "ok"            200 {"ok": true}
                          "500"           500 with an HTML body
                          "429:<s>"       429 with Retry-After: <s>
                          "400"           400 {"error": "bad payload"} (permanent)
                          "hang:<s>"      waits <s> seconds, then answers 200
                          "reset"         closes the connection without answering (TCP RST)
"""
import argparse
import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler
from mockserver import serve

lock = threading.Lock()
received = []
attempts = []
modes = []  # [(mode, remaining)]; remaining 0 = forever
log_file = None


def next_mode():
    with lock:
        while modes:
            mode, remaining = modes[0]
            if remaining == 0:
                return mode
            if remaining == 1:
                modes.pop(0)
            else:
                modes[0] = (mode, remaining - 1)
            return mode
    return "ok"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body, content_type="application/json", headers=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        with lock:
            if self.path == "/_received":
                return self.answer(200, json.dumps(received))
            if self.path == "/_attempts":
                return self.answer(200, json.dumps(attempts))
        self.answer(404, '{"error": "not found"}')

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        if self.path == "/_mode":
            spec = json.loads(body)
            with lock:
                modes[:] = [(spec["mode"], int(spec.get("count", 0)))]
            return self.answer(200, '{"ok": true}')
        record = {"path": self.path, "key": self.headers.get("Idempotency-Key", ""), "at": time.time()}
        try:
            doc = json.loads(body)
            herald = doc.get("herald", {})
            record.update(event=herald.get("event"), number=herald.get("incident_number"),
                          title=(doc.get("commonAnnotations") or {}).get("summary"), status=doc.get("status"))
        except (ValueError, AttributeError):
            pass
        mode = next_mode()
        record["answer"] = mode
        with lock:
            attempts.append(record)
        if mode == "reset":
            # SO_LINGER with a zero timeout makes close() send RST.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        if mode.startswith("hang:"):
            time.sleep(float(mode.split(":")[1]))
            mode = "ok"
        if mode == "ok":
            with lock:
                received.append(record)
                if log_file:
                    with open(log_file, "a", encoding="utf-8") as f:
                        f.write(json.dumps(record) + "\n")
            return self.answer(200, '{"ok": true}')
        if mode == "500":
            return self.answer(500, "<html><body>Internal Server Error</body></html>", "text/html")
        if mode.startswith("429:"):
            return self.answer(429, '{"error": "slow down"}', headers=[("Retry-After", mode.split(":")[1])])
        if mode == "400":
            return self.answer(400, '{"error": "bad payload"}')
        self.answer(500, '{"error": "unknown mode"}')


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--log")
    log_file = parser.parse_args().log
    serve(Handler)
