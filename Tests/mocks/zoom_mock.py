#!/usr/bin/env python3
"""Mock Zoom Team Chat "Incoming Webhook" endpoint for Herald's zoom plugin. Standard library only.

Zoom documents this endpoint thinly; where its behaviour is not documented this mock makes an
assumption, marked ASSUMED below and in Plugins/zoom/README.md.

    zoom_mock.py --webhook-id AbCdEf123 --token s3cr3t-token [--rate-limit N] [--fail STATUS[:COUNT]]

Prints "PORT <n>" first; exits when stdin closes. The plugin's webhook_url:
    http://127.0.0.1:<n>/chat/webhooks/incomingwebhook/<webhook-id>

Flags
    --webhook-id ID      the endpoint's id; another id gives 404 (ASSUMED body {"code":..,"message":..})
    --token T            the verification token; the Authorization header must be exactly T
                         (a "Bearer " prefix or another value gives 401 "Invalid authorization token"; ASSUMED wording)
    --max-chars N        the longest message text accepted (all text fields together, in
                         characters; default 4096; longer gives 400 "Message too long", ASSUMED)
    --rate-limit N       the N+1th message within 60 s gets 429 with Retry-After (ASSUMED: Zoom
                         documents no limit for incoming webhooks)
    --fail STATUS[:COUNT]  the next COUNT (default 1, 0 = always) requests get STATUS (5xx with an
                         HTML body, others with a JSON body)

Endpoints
    POST /chat/webhooks/incomingwebhook/<id>?format=full|message|fields
        checks the token, format, Content-Type and the body shape (format=full: a chatbot
        message card, wrapped in "content" or not; head.text, head.style.color as #RRGGBB,
        body items of known types, fields items with key/value strings, message items with
        text and optional http(s) link and is_markdown_support, mention syntax <!jid|name> only
        in markdown items); answers 200 "OK" (ASSUMED; Linuxfabrik's notifier checks for it)
    GET  /_received      JSON list of accepted messages: query, headers, payload, and "text":
                         the card's visible text in order (head, sub_head, messages, fields)
    POST /_control       JSON {"fail": ["STATUS[:COUNT]", ...]} adds --fail rules
"""
import argparse
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from mockserver import serve

lock = threading.Lock()
received = []
sent_times = []
fail_rules = []  # [status, remaining (0 = forever)]

ITEM_TYPES = {"message", "fields", "section", "attachments", "actions", "divider", "select"}
COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
MENTION = re.compile(r"<!([^|<>\s]+)\|([^<>|]*)>")


class Invalid(Exception):
    pass


def check_style(style, where):
    if style is None:
        return
    if not isinstance(style, dict):
        raise Invalid(f"{where}.style must be an object")
    if "color" in style and not (isinstance(style["color"], str) and COLOR.match(style["color"])):
        raise Invalid(f"{where}.style.color must be #RRGGBB")
    for key in ("bold", "italic"):
        if key in style and not isinstance(style[key], bool):
            raise Invalid(f"{where}.style.{key} must be a boolean")


def check_items(items, where, texts):
    if not isinstance(items, list) or not items:
        raise Invalid(f"{where} must be a non-empty list")
    for n, item in enumerate(items):
        at = f"{where}[{n}]"
        if not isinstance(item, dict) or item.get("type") not in ITEM_TYPES:
            raise Invalid(f"{at}.type must be one of {sorted(ITEM_TYPES)}")
        kind = item["type"]
        if kind == "message":
            text = item.get("text")
            if not isinstance(text, str) or not text:
                raise Invalid(f"{at}.text must be a non-empty string")
            markdown = item.get("is_markdown_support", False)
            if not isinstance(markdown, bool):
                raise Invalid(f"{at}.is_markdown_support must be a boolean")
            if "link" in item and not (isinstance(item["link"], str) and re.match(r"^https?://\S+$", item["link"])):
                raise Invalid(f"{at}.link must be an http(s) URL")
            check_style(item.get("style"), at)
            if markdown:
                for jid, name in MENTION.findall(text):
                    if not name:
                        raise Invalid(f"{at}: a mention needs a display name")
                texts.append(MENTION.sub(lambda m: "@" + m.group(2), text))
            else:
                texts.append(text)  # without markdown, <!jid|name> is shown as written (ASSUMED)
        elif kind == "fields":
            fields = item.get("items")
            if not isinstance(fields, list) or not fields:
                raise Invalid(f"{at}.items must be a non-empty list")
            for f in fields:
                if not isinstance(f, dict) or not isinstance(f.get("key"), str) or not isinstance(f.get("value"), str) or not f["key"]:
                    raise Invalid(f"{at}.items need string key and value")
                texts.append(f"{f['key']}: {f['value']}")
        elif kind == "section":
            color = item.get("sidebar_color")
            if color is not None and not (isinstance(color, str) and COLOR.match(color)):
                raise Invalid(f"{at}.sidebar_color must be #RRGGBB")
            check_items(item.get("sections"), f"{at}.sections", texts)


def check_card(doc):
    """The visible text of a format=full card, or raises Invalid."""
    if not isinstance(doc, dict):
        raise Invalid("the body must be a JSON object")
    card = doc.get("content", doc)
    if not isinstance(card, dict):
        raise Invalid("content must be an object")
    texts = []
    settings = card.get("settings")
    if settings is not None:
        color = settings.get("default_sidebar_color") if isinstance(settings, dict) else None
        if not isinstance(settings, dict) or (color is not None and not (isinstance(color, str) and COLOR.match(color))):
            raise Invalid("settings.default_sidebar_color must be #RRGGBB")
    head = card.get("head")
    if head is not None:
        if not isinstance(head, dict) or not isinstance(head.get("text"), str) or not head["text"]:
            raise Invalid("head.text must be a non-empty string")
        check_style(head.get("style"), "head")
        texts.append(head["text"])
        sub = head.get("sub_head")
        if sub is not None:
            if not isinstance(sub, dict) or not isinstance(sub.get("text"), str):
                raise Invalid("head.sub_head.text must be a string")
            texts.append(sub["text"])
    if "body" in card:
        check_items(card["body"], "body", texts)
    if head is None and "body" not in card:
        raise Invalid("the card needs a head or a body")
    return texts


def make_handler(args):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, code, body, content_type="application/json", extra=()):
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def error(self, code, message, extra=()):
            self.answer(code, {"code": code, "message": message}, extra=extra)

        def do_GET(self):
            if self.path == "/_received":
                with lock:
                    return self.answer(200, received)
            self.error(404, "Not found")

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/_control":
                try:
                    with lock:
                        for rule in json.loads(body).get("fail", []):
                            status, _, count = str(rule).partition(":")
                            fail_rules.append([int(status), int(count or 1)])
                except (ValueError, AttributeError) as error:
                    return self.answer(400, {"error": str(error)})
                return self.answer(200, {"ok": True})
            m = re.match(r"^/chat/webhooks/incomingwebhook/([^/]+)$", url.path)
            if not m or m.group(1) != args.webhook_id:
                return self.error(404, "Webhook not found")
            if self.headers.get("Authorization") != args.token:
                return self.error(401, "Invalid authorization token")
            query = urllib.parse.parse_qs(url.query)
            fmt = query.get("format", ["message"])[-1]
            if fmt not in ("message", "fields", "full"):
                return self.error(400, f"Invalid format {fmt}")
            with lock:
                rule = fail_rules[0] if fail_rules else None
                if rule and rule[1] > 0:
                    rule[1] -= 1
                    if rule[1] == 0:
                        fail_rules.pop(0)
            if rule:
                if rule[0] >= 500:
                    return self.answer(rule[0], f"<html><body><h1>{rule[0]} Service Unavailable</h1></body></html>", "text/html")
                return self.error(rule[0], f"Error {rule[0]} scripted by the mock")
            if args.rate_limit:
                now = time.monotonic()
                with lock:
                    sent_times[:] = [t for t in sent_times if now - t < 60]
                    limited = len(sent_times) >= args.rate_limit
                    wait = max(1, int(60 - (now - sent_times[0])) + 1) if limited else 0
                    if not limited:
                        sent_times.append(now)
                if limited:
                    return self.error(429, "Too many requests", extra=[("Retry-After", str(wait))])
            if fmt == "message":
                texts = [body.decode("utf-8", "replace")]
                payload = None
            else:
                if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
                    return self.error(400, "Content-Type must be application/json")
                try:
                    payload = json.loads(body.decode("utf-8"))
                except (ValueError, UnicodeDecodeError) as error:
                    return self.error(400, f"Invalid JSON: {error}")
                try:
                    if fmt == "full":
                        texts = check_card(payload)
                    else:
                        if not isinstance(payload, dict):
                            raise Invalid("format=fields needs a JSON object")
                        texts = [f"{k}: {v}" for k, v in payload.items()]
                except Invalid as error:
                    return self.error(400, f"Invalid message: {error}")
            if sum(len(t) for t in texts) > args.max_chars:
                return self.error(400, "Message too long")
            with lock:
                received.append({"query": {k: v[-1] for k, v in query.items()}, "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "payload": payload, "text": texts})
            self.answer(200, "OK", "text/plain")

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--webhook-id", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--max-chars", type=int, default=4096)
    parser.add_argument("--rate-limit", type=int, default=0)
    parser.add_argument("--fail", action="append", default=[])
    args = parser.parse_args()
    for rule in args.fail:
        status, _, count = rule.partition(":")
        fail_rules.append([int(status), int(count or 1)])
    serve(make_handler(args))


if __name__ == "__main__":
    main()
