#!/usr/bin/env python3
"""Mock receiver for Herald's webhook plugin. It checks what a careful receiver checks, using the
`standardwebhooks` package from PyPI as an independent verifier of the signature.

    webhook_receiver.py --secret whsec_...

Prints "PORT <n>" first; exits when stdin closes.
    POST /hook                 verify the signature and the payload shape; 200 {"ok":true}, or
                               401/400 {"error": "..."} naming what is wrong
    POST /status/<code>        verify, then answer <code> (429/503 carry Retry-After: 7)
    GET  /_received            JSON list of {"headers": {...}, "payload": {...}} accepted so far
"""
import argparse
import json
import threading
from http.server import BaseHTTPRequestHandler

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from mockserver import serve

received = []
lock = threading.Lock()
REQUIRED = ["version", "groupKey", "status", "receiver", "alerts", "commonLabels", "commonAnnotations", "herald"]


def make_handler(secret):
    hook = Webhook(secret)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, code, document, extra=()):
            body = json.dumps(document).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_received":
                with lock:
                    return self.answer(200, received)
            self.answer(404, {"error": "not found"})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                hook.verify(body, headers)
            except WebhookVerificationError as error:
                return self.answer(401, {"error": f"signature: {error}"})
            if headers.get("content-type") != "application/json":
                return self.answer(400, {"error": "Content-Type must be application/json"})
            try:
                payload = json.loads(body)
            except ValueError as error:
                return self.answer(400, {"error": f"body is not JSON: {error}"})
            missing = [key for key in REQUIRED if key not in payload]
            if missing or payload.get("version") != "4" or not payload.get("alerts"):
                return self.answer(400, {"error": f"payload is missing {missing or 'alerts'}"})
            with lock:
                received.append({"headers": headers, "payload": payload})
            if self.path.startswith("/status/"):
                code = int(self.path.rsplit("/", 1)[1])
                retry = [("Retry-After", "7")] if code in (429, 503) else []
                return self.answer(code, {"error": f"told to answer {code}"}, retry)
            self.answer(200, {"ok": True})

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", required=True)
    args = parser.parse_args()
    serve(make_handler(args.secret))


if __name__ == "__main__":
    main()
