#!/usr/bin/env python3
"""Mock Feishu / Lark custom group bot for Herald's feishu plugin. Python standard library only.

It checks what the real custom-bot webhook checks and answers with Feishu's real bodies: HTTP 200
with a `code` in the JSON body for almost everything (the HTTP status says little).

    feishu_mock.py [--token T] [--secret S] [--keyword K]... [--rate-limit N]
                   [--http-status CODE] [--code N [--msg TEXT]] [--legacy]

Prints "PORT <n>" first (flushed); exits when stdin closes.

    POST /open-apis/bot/v2/hook/<token>
        --token T        the hook id in the URL (default "test-token"); any other id gets
                         code 19001 "param invalid: incoming webhook access token invalid"
        --secret S       signature verification on: the body needs "timestamp" (Unix seconds,
                         within one hour of now) and "sign" = base64(HMAC-SHA256(key =
                         "<timestamp>\\n<secret>", message = "")), else code 19021
        --keyword K      custom keyword (repeatable, up to 10): one must occur in the message's
                         text fields (text, title, content; never href/url), else code 19024
        --rate-limit N   the N+1th accepted message within 60 s gets code 11232 (frequency limited)
        --http-status C  answer every POST with HTTP C and an HTML body (e.g. 503)
        --code N         answer every otherwise-valid POST with HTTP 200 {"code":N,"msg":TEXT}
        --msg TEXT       the msg for --code (default "mock error")
        --legacy         answer success with the legacy {"Extra":null,"StatusCode":0,...} body
      Also checked: POST only, Content-Type application/json, body <= 20 KB and valid JSON
      (else HTTP 400 code 9499 "Bad Request"), msg_type known (10208) and the body's shape for
      text / post / interactive (card JSON 1.0 or 2.0) (19002 "params error, ...").
      Success: {"StatusCode":0,"StatusMessage":"success","code":0,"data":{},"msg":"success"}.
    GET /_received
        JSON list of the accepted messages: {"path", "headers", "body"} (body parsed).
"""
import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from mockserver import serve

HOOK_PREFIX = "/open-apis/bot/v2/hook/"
MAX_BODY = 20 * 1024
SUCCESS = {"StatusCode": 0, "StatusMessage": "success", "code": 0, "data": {}, "msg": "success"}
LEGACY_SUCCESS = {"Extra": None, "StatusCode": 0, "StatusMessage": "success"}
POST_TAGS = {"text", "a", "at", "img", "media", "emotion", "hr", "code_block", "md"}
CARD1_TAGS = {"div", "hr", "action", "note", "img", "markdown", "column_set"}
CARD2_TAGS = {"div", "hr", "markdown", "img", "column_set", "button", "form", "collapsible_panel", "interactive_container"}
COLOURS = {"blue", "wathet", "turquoise", "green", "yellow", "orange", "red", "carmine", "violet", "purple", "indigo", "grey", "default"}
TEXT_KEYS = {"text", "content", "title", "user_name"}

received = []
sent_times = []
lock = threading.Lock()


class Refusal(Exception):
    def __init__(self, code, msg, http=200):
        super().__init__(msg)
        self.code, self.msg, self.http = code, msg, http


def expected_sign(timestamp, secret):
    key = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def texts(node, key=None):
    """Every string a keyword may match: values of text-type keys, never href / url."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("href", "url", "multi_url", "default_url", "pc_url", "ios_url", "android_url"):
                continue
            yield from texts(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from texts(item, key)
    elif isinstance(node, str) and key in TEXT_KEYS:
        yield node


def need(ok, detail):
    if not ok:
        raise Refusal(19002, f"params error, {detail}")


def check_text_obj(obj, where):
    need(isinstance(obj, dict) and obj.get("tag") in ("plain_text", "lark_md") and isinstance(obj.get("content"), str),
         f"{where} must be a plain_text or lark_md text object")


def check_button(button, where):
    need(isinstance(button, dict) and button.get("tag") == "button", f"{where} must be a button")
    check_text_obj(button.get("text"), f"{where}.text")
    need(button.get("type", "default") in ("default", "primary", "danger", "text", "laser", "primary_filled",
                                           "danger_filled", "primary_text", "danger_text"), f"{where}.type is unknown")
    url = button.get("url")
    if url is not None:
        need(isinstance(url, str) and url.startswith(("http://", "https://")), f"{where}.url must be an http(s) URL")


def check_card(card):
    need(isinstance(card, dict), "card must be an object")
    header = card.get("header")
    if header is not None:
        need(isinstance(header, dict), "card.header must be an object")
        check_text_obj(header.get("title"), "card.header.title")
        need(header.get("template", "default") in COLOURS, "card.header.template is not a card colour")
    if card.get("schema") == "2.0":
        body = card.get("body")
        need(isinstance(body, dict) and isinstance(body.get("elements"), list), "card.body.elements must be an array")
        for i, element in enumerate(body["elements"]):
            need(isinstance(element, dict) and element.get("tag") in CARD2_TAGS, f"card.body.elements[{i}].tag is unknown")
        return
    elements = card.get("elements", [])
    need(isinstance(elements, list), "card.elements must be an array")
    for i, element in enumerate(elements):
        where = f"card.elements[{i}]"
        need(isinstance(element, dict) and element.get("tag") in CARD1_TAGS, f"{where}.tag is unknown")
        if element["tag"] == "div":
            need("text" in element or "fields" in element, f"{where} needs text or fields")
            if "text" in element:
                check_text_obj(element["text"], f"{where}.text")
            for j, field in enumerate(element.get("fields", [])):
                need(isinstance(field, dict), f"{where}.fields[{j}] must be an object")
                check_text_obj(field.get("text"), f"{where}.fields[{j}].text")
        elif element["tag"] == "action":
            actions = element.get("actions")
            need(isinstance(actions, list) and actions, f"{where}.actions must be a non-empty array")
            for j, button in enumerate(actions):
                check_button(button, f"{where}.actions[{j}]")
        elif element["tag"] == "markdown":
            need(isinstance(element.get("content"), str), f"{where}.content must be a string")


def check_post(content):
    post = content.get("post") if isinstance(content, dict) else None
    need(isinstance(post, dict) and post, "content.post must be an object keyed by locale")
    for locale, doc in post.items():
        need(isinstance(doc, dict), f"content.post.{locale} must be an object")
        need(isinstance(doc.get("title", ""), str), f"content.post.{locale}.title must be a string")
        paragraphs = doc.get("content")
        need(isinstance(paragraphs, list), f"content.post.{locale}.content must be an array of paragraphs")
        for i, paragraph in enumerate(paragraphs):
            need(isinstance(paragraph, list), f"content.post.{locale}.content[{i}] must be an array")
            for j, tag in enumerate(paragraph):
                where = f"content.post.{locale}.content[{i}][{j}]"
                need(isinstance(tag, dict) and tag.get("tag") in POST_TAGS, f"{where}.tag is unknown")
                if tag["tag"] == "text":
                    need(isinstance(tag.get("text"), str), f"{where}.text must be a string")
                elif tag["tag"] == "a":
                    need(isinstance(tag.get("text"), str) and isinstance(tag.get("href"), str), f"{where} needs text and href")
                elif tag["tag"] == "at":
                    need(isinstance(tag.get("user_id"), str) and tag["user_id"], f"{where}.user_id is required")


def check_shape(doc):
    msg_type = doc.get("msg_type")
    need(isinstance(msg_type, str) and msg_type, "msg_type need")
    if msg_type not in ("text", "post", "image", "share_chat", "interactive"):
        raise Refusal(10208, f"msg type {msg_type} not support")
    if msg_type == "text":
        content = doc.get("content")
        need(isinstance(content, dict) and isinstance(content.get("text"), str) and content["text"], "content.text need")
    elif msg_type == "post":
        check_post(doc.get("content"))
    elif msg_type == "interactive":
        check_card(doc.get("card"))
    else:
        need(isinstance(doc.get("content"), dict), "content need")


def make_handler(args):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, http, document, content_type="application/json; charset=utf-8"):
            body = document if isinstance(document, bytes) else json.dumps(document).encode()
            self.send_response(http)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_received":
                with lock:
                    return self.send(200, received)
            self.send(404, b"404 page not found", "text/plain")

        def do_PUT(self):
            self.send(405, b"405 method not allowed", "text/plain")

        do_DELETE = do_PUT

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            if not self.path.startswith(HOOK_PREFIX):
                return self.send(404, b"404 page not found", "text/plain")
            if args.http_status:
                return self.send(args.http_status, f"<html><body>{args.http_status} mock</body></html>".encode(), "text/html")
            try:
                doc = self.check(raw)
            except Refusal as refusal:
                return self.send(refusal.http, {"code": refusal.code, "msg": refusal.msg, "data": {}})
            with lock:
                now = time.monotonic()
                sent_times[:] = [t for t in sent_times if now - t < 60]
                if args.rate_limit is not None and len(sent_times) >= args.rate_limit:
                    return self.send(200, {"code": 11232, "msg": "frequency limited psm[lark.oapi.app_platform_runtime]appID[-1]", "data": {}})
                sent_times.append(now)
                if args.code is not None:
                    return self.send(200, {"code": args.code, "msg": args.msg, "data": {}})
                received.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": doc})
            self.send(200, LEGACY_SUCCESS if args.legacy else SUCCESS)

        def check(self, raw):
            token = self.path[len(HOOK_PREFIX):].split("?", 1)[0]
            if token != args.token:
                raise Refusal(19001, "param invalid: incoming webhook access token invalid")
            if not (self.headers.get("Content-Type") or "").lower().startswith("application/json"):
                raise Refusal(9499, "Bad Request", 400)
            if len(raw) > MAX_BODY:
                raise Refusal(9499, "Bad Request", 400)
            try:
                doc = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise Refusal(9499, "Bad Request", 400)
            if not isinstance(doc, dict):
                raise Refusal(9499, "Bad Request", 400)
            if args.secret is not None:
                timestamp, sign = doc.get("timestamp"), doc.get("sign")
                try:
                    fresh = abs(time.time() - int(timestamp)) <= 3600
                except (TypeError, ValueError):
                    fresh = False
                if not fresh or not isinstance(sign, str) or not hmac.compare_digest(sign, expected_sign(timestamp, args.secret)):
                    raise Refusal(19021, "sign match fail or timestamp is not within one hour from current time")
            check_shape(doc)
            if args.keyword and not any(k in t for t in texts(doc) for k in args.keyword):
                raise Refusal(19024, "Key Words Not Found")
            return doc

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--secret")
    parser.add_argument("--keyword", action="append", default=[])
    parser.add_argument("--rate-limit", type=int)
    parser.add_argument("--http-status", type=int)
    parser.add_argument("--code", type=int)
    parser.add_argument("--msg", default="mock error")
    parser.add_argument("--legacy", action="store_true")
    args = parser.parse_args()
    if len(args.keyword) > 10:
        parser.error("Feishu allows at most 10 keywords")
    serve(make_handler(args))


if __name__ == "__main__":
    main()
