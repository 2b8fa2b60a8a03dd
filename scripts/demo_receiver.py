#!/usr/bin/env python3
"""A tiny receiver for Herald's generic webhook plugin, for demos and smoke tests.

    scripts/demo_receiver.py --port 9099 [--secret whsec_...] [--count K]

Listens on 127.0.0.1, prints a readable summary of every incident POSTed to it and answers 200.
With --secret it verifies the Standard Webhooks signature first (webhook-id, webhook-timestamp,
webhook-signature; 5-minute timestamp window) and answers 401 with a JSON error when it does
not match. With --count it exits after answering K POSTs (accepted or not).

Standard library only.
"""

import argparse
import base64
import binascii
import hashlib
import hmac
import http.server
import json
import sys
import time

TOLERANCE_SECONDS = 5 * 60
MAX_BODY_BYTES = 10 * 1024 * 1024


def decode_secret(secret):
    """whsec_<base64> -> key bytes."""
    if not secret.startswith("whsec_"):
        raise ValueError("the secret must start with 'whsec_'")
    encoded = secret[len("whsec_"):]
    encoded += "=" * (-len(encoded) % 4)  # padding is optional in the secret
    try:
        key = base64.b64decode(encoded, validate=True)
    except binascii.Error as error:
        raise ValueError(f"the secret is not valid base64 after 'whsec_': {error}") from None
    if not key:
        raise ValueError("the secret decodes to an empty key")
    return key


def verify(key, headers, body, now=None):
    """Returns None when the Standard Webhooks signature is valid, else why it is not."""
    msg_id = headers.get("webhook-id")
    timestamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not (msg_id and timestamp and signatures):
        return "missing webhook-id, webhook-timestamp or webhook-signature header"
    try:
        sent_at = int(timestamp)
    except ValueError:
        return "webhook-timestamp is not an integer"
    now = time.time() if now is None else now
    if abs(now - sent_at) > TOLERANCE_SECONDS:
        return "webhook-timestamp is more than 5 minutes away from this clock"
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = hmac.new(key, signed, hashlib.sha256).digest()
    # The header may list several signatures (key rotation), space-separated, each "v1,<base64>".
    for entry in signatures.split(" "):
        version, _, value = entry.partition(",")
        if version != "v1":
            continue
        try:
            candidate = base64.b64decode(value, validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(candidate, expected):
            return None
    return "no webhook-signature entry matches"


def clean(value):
    """A payload string made safe for a terminal: control characters (ANSI escapes, newlines...)
    are shown as escapes instead of being obeyed."""
    text = value if isinstance(value, str) else json.dumps(value)
    return "".join(c if c.isprintable() else (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}") for c in text)


def summarise(payload, verified):
    """The lines printed for one delivery."""
    def section(name):
        value = payload.get(name)
        return value if isinstance(value, dict) else {}

    herald = section("herald")
    annotations = section("commonAnnotations")
    labels = section("commonLabels")
    number = herald.get("incident_number")
    lines = [
        f"--- incident #{clean(number)} ({clean(herald.get('incident_id', payload.get('groupKey', '?')))})",
        f"title:    {clean(annotations.get('summary', ''))}",
        f"event:    {clean(herald.get('event', '?'))}    severity: {clean(herald.get('severity', labels.get('severity', '?')))}"
        f"    status: {clean(herald.get('status', '?'))} ({clean(payload.get('status', '?'))})",
        f"alerts:   {clean(herald.get('alert_count', len(payload.get('alerts') or [])))}"
        f"    receiver: {clean(payload.get('receiver', ''))}    signature: {verified}",
    ]
    description = annotations.get("description") or ""
    description = description.strip() if isinstance(description, str) else json.dumps(description)
    if description:
        lines.append("body:")
        body_lines = description.split("\n")
        lines.extend(f"  {clean(line)}" for line in body_lines[:10])
        if len(body_lines) > 10:
            lines.append(f"  ... ({len(body_lines) - 10} more lines)")
    for link in herald.get("links") or []:
        if isinstance(link, dict):
            lines.append(f"link:     [{clean(link.get('kind', '?'))}] {clean(link.get('label', ''))}: {clean(link.get('url', ''))}")
    for mention in herald.get("mentions") or []:
        if isinstance(mention, dict):
            lines.append(f"mention:  {clean(mention.get('display_name', ''))}"
                         f" ({clean(mention.get('id_kind', ''))}: {clean(mention.get('id', ''))})")
    return "\n".join(lines)


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "HeraldDemoReceiver/1.0"
    key = None  # set in main()

    def reply(self, status, document):
        data = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        self.server.answered += 1
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY_BYTES:
            self.reply(413 if length > 0 else 400, {"error": "missing, invalid or too large Content-Length"})
            return
        body = self.rfile.read(length)
        headers = {name.lower(): value for name, value in self.headers.items()}
        if self.key is not None:
            problem = verify(self.key, headers, body)
            if problem:
                print(f"--- rejected a POST to {self.path}: {problem}", flush=True)
                self.reply(401, {"error": f"invalid signature: {problem}"})
                return
            verified = "valid"
        else:
            verified = "not checked (no --secret)" if "webhook-signature" in headers else "unsigned"
        try:
            payload = json.loads(body)
            if not isinstance(payload, dict):
                raise ValueError("not a JSON object")
        except ValueError as error:
            print(f"--- rejected a POST to {self.path}: body is not a JSON object ({error})", flush=True)
            self.reply(400, {"error": "the body is not a JSON object"})
            return
        print(summarise(payload, verified), flush=True)
        self.reply(200, {"ok": True})

    def do_GET(self):
        self.reply(405, {"error": "POST only"})

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # the summary is the log; keep stdout readable


def main():
    parser = argparse.ArgumentParser(description="Print incidents POSTed by Herald's webhook plugin.")
    parser.add_argument("--port", type=int, required=True, help="TCP port on 127.0.0.1")
    parser.add_argument("--secret", help="Standard Webhooks secret (whsec_...) to verify signatures with")
    parser.add_argument("--count", type=int, help="exit after answering this many POSTs")
    args = parser.parse_args()
    if args.count is not None and args.count < 1:
        parser.error("--count must be at least 1")
    if args.secret is not None:
        try:
            Handler.key = decode_secret(args.secret)
        except ValueError as error:
            parser.error(str(error))

    server = http.server.HTTPServer(("127.0.0.1", args.port), Handler)
    server.answered = 0
    print(f"listening on http://127.0.0.1:{server.server_address[1]}/ "
          f"({'verifying signatures' if Handler.key else 'not verifying signatures'})", flush=True)
    try:
        while args.count is None or server.answered < args.count:
            server.handle_request()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
