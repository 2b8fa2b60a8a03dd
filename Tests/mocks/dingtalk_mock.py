#!/usr/bin/env python3
"""Mock DingTalk custom robot for Herald's dingtalk plugin. Python standard library only.

It checks what the real robot endpoint checks and answers with DingTalk's real bodies: HTTP 200
with an `errcode` in the JSON body, errors included.

    dingtalk_mock.py [--token T] [--secret S] [--keyword K]... [--rate-limit N]
                     [--throttle-seconds S] [--http-status CODE] [--errcode N [--errmsg TEXT]]

Prints "PORT <n>" first (flushed); exits when stdin closes.

    POST /robot/send?access_token=<token>[&timestamp=<ms>&sign=<sign>]
        --token T        the robot's access_token (default "test-token"); a missing one gets
                         40035 "缺少参数 access_token", another one 300005 "token is not exist"
        --secret S       加签 on: the query needs timestamp (Unix ms, within one hour of now, else
                         310000 "invalid timestamp") and sign = urlencode(base64(HMAC-SHA256(
                         key = secret, message = "<timestamp>\\n<secret>"))) (else 310000
                         "sign not match"); the sign is compared after one URL-decoding
        --keyword K      custom keyword (repeatable, up to 10): one must occur in the message's
                         text (text.content, markdown title/text, actionCard title/text/button
                         titles), else 310000 "keywords not in content"
        --rate-limit N   after N accepted messages within 60 s the robot is throttled: every
                         message for --throttle-seconds (default 600) gets 130101
                         "send too fast, exceed 20 times per minute" (DingTalk: N = 20, 10 min)
        --http-status C  answer every POST with HTTP C and an HTML body (e.g. 503)
        --errcode N      answer every otherwise-valid POST with {"errcode":N,"errmsg":TEXT}
        --errmsg TEXT    the errmsg for --errcode (default "mock error")
      Also checked: POST only (43002), Content-Type application/json (43004), body <= 20000
      bytes (460101 "message too long, exceed 20000 bytes"), JSON (40035 "缺少参数 json"),
      msgtype known (400105) and its required fields (40035 "缺少参数 <field>"), `at` beside the
      message with atMobiles / atUserIds string lists and isAtAll a boolean.
      Success: {"errcode":0,"errmsg":"ok"}.
    GET /_received
        JSON list of the accepted messages: {"path", "query", "headers", "body", "mentions_in_text"}
        where mentions_in_text says, per atMobiles / atUserIds entry, whether "@<id>" occurs in
        the text (DingTalk shows and notifies a mention only then).
"""
import argparse
import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from mockserver import serve

MAX_BODY = 20000
SUCCESS = {"errcode": 0, "errmsg": "ok"}

received = []
sent_times = []
throttled_until = [0.0]
lock = threading.Lock()


class Refusal(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code, self.msg = code, msg


def expected_sign(timestamp, secret):
    message = f"{timestamp}\n{secret}".encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def oracle_sign(timestamp, secret):
    """The sign the PyPI package DingtalkChatbot computes for this timestamp: an implementation
    independent of both the plugin and expected_sign above (it only signs "SEC..." secrets)."""
    from dingtalkchatbot.chatbot import DingtalkChatbot
    bot = DingtalkChatbot("https://oapi.dingtalk.com/robot/send?access_token=x", secret=secret)
    bot.start_time = int(timestamp) / 1000
    bot.update_webhook()
    return urllib.parse.parse_qs(urllib.parse.urlsplit(bot.webhook).query)["sign"][0]


def need(ok, field):
    if not ok:
        raise Refusal(40035, f"缺少参数 {field}")


def is_str(v):
    return isinstance(v, str) and v != ""


def message_texts(doc):
    """The text DingTalk shows (keywords and @mentions are looked for here)."""
    kind = doc["msgtype"]
    if kind == "text":
        return [doc["text"]["content"]]
    if kind == "markdown":
        return [doc["markdown"]["title"], doc["markdown"]["text"]]
    if kind == "actionCard":
        card = doc["actionCard"]
        return [card["title"], card["text"]] + [b.get("title", "") for b in card.get("btns", [])] + [card.get("singleTitle", "")]
    if kind == "link":
        return [doc["link"]["title"], doc["link"]["text"]]
    if kind == "feedCard":
        return [link.get("title", "") for link in doc["feedCard"]["links"]]
    return []


def check_shape(doc):
    kind = doc.get("msgtype")
    need(is_str(kind), "msgtype")
    if kind not in ("text", "markdown", "link", "actionCard", "feedCard"):
        raise Refusal(400105, "不支持的消息类型")
    body = doc.get(kind)
    need(isinstance(body, dict), kind)
    if kind == "text":
        need(is_str(body.get("content")), "text.content")
    elif kind == "markdown":
        need(is_str(body.get("title")), "markdown.title")
        need(is_str(body.get("text")), "markdown.text")
    elif kind == "link":
        for field in ("title", "text", "messageUrl"):
            need(is_str(body.get(field)), f"link.{field}")
    elif kind == "actionCard":
        need(is_str(body.get("title")), "actionCard.title")
        need(is_str(body.get("text")), "actionCard.text")
        need(body.get("btnOrientation", "0") in ("0", "1"), "actionCard.btnOrientation")
        btns = body.get("btns")
        if btns is None:
            need(is_str(body.get("singleTitle")), "actionCard.singleTitle")
            need(is_str(body.get("singleURL")), "actionCard.singleURL")
        else:
            need(isinstance(btns, list) and btns, "actionCard.btns")
            for btn in btns:
                need(isinstance(btn, dict) and is_str(btn.get("title")), "actionCard.btns.title")
                need(is_str(btn.get("actionURL")), "actionCard.btns.actionURL")
    elif kind == "feedCard":
        need(isinstance(body.get("links"), list) and body["links"], "feedCard.links")
    at = doc.get("at")
    if at is not None:
        need(isinstance(at, dict), "at")
        for field in ("atMobiles", "atUserIds"):
            need(isinstance(at.get(field, []), list) and all(is_str(x) for x in at.get(field, [])), f"at.{field}")
        need(isinstance(at.get("isAtAll", False), bool), "at.isAtAll")


def make_handler(args):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def send(self, http, document, content_type="application/json;charset=utf-8"):
            body = document if isinstance(document, bytes) else json.dumps(document, ensure_ascii=False).encode()
            self.send_response(http)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path == "/_received":
                with lock:
                    return self.send(200, received)
            if urllib.parse.urlsplit(self.path).path == "/robot/send":
                return self.send(200, {"errcode": 43002, "errmsg": "需要POST请求"})
            self.send(404, b"404 Not Found", "text/plain")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            parts = urllib.parse.urlsplit(self.path)
            if parts.path != "/robot/send":
                return self.send(404, b"404 Not Found", "text/plain")
            if args.http_status:
                return self.send(args.http_status, f"<html><body>{args.http_status} mock</body></html>".encode(), "text/html")
            # parse_qs decodes once, as DingTalk does; a sign encoded twice keeps its %2B and fails.
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(parts.query, keep_blank_values=True).items()}
            try:
                doc = self.check(raw, query)
            except Refusal as refusal:
                return self.send(200, {"errcode": refusal.code, "errmsg": refusal.msg})
            with lock:
                now = time.monotonic()
                if now < throttled_until[0]:
                    return self.send(200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
                sent_times[:] = [t for t in sent_times if now - t < 60]
                if args.rate_limit is not None and len(sent_times) >= args.rate_limit:
                    throttled_until[0] = now + args.throttle_seconds
                    return self.send(200, {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"})
                sent_times.append(now)
                if args.errcode is not None:
                    return self.send(200, {"errcode": args.errcode, "errmsg": args.errmsg})
                text = "\n".join(message_texts(doc))
                at = doc.get("at") or {}
                shown = {x: f"@{x}" in text for x in at.get("atMobiles", []) + at.get("atUserIds", [])}
                received.append({"path": parts.path, "query": query, "headers": {k.lower(): v for k, v in self.headers.items()},
                                 "body": doc, "mentions_in_text": shown})
            self.send(200, SUCCESS)

        def check(self, raw, query):
            token = query.get("access_token")
            if not token:
                raise Refusal(40035, "缺少参数 access_token")
            if token != args.token:
                raise Refusal(300005, "token is not exist")
            if not (self.headers.get("Content-Type") or "").lower().startswith("application/json"):
                raise Refusal(43004, "无效的HTTP HEADER Content-Type")
            if len(raw) > MAX_BODY:
                raise Refusal(460101, "message too long, exceed 20000 bytes")
            if args.secret is not None:
                timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
                try:
                    fresh = abs(time.time() * 1000 - int(timestamp)) <= 3600 * 1000
                except ValueError:
                    fresh = False
                if not fresh:
                    raise Refusal(310000, "invalid timestamp")
                if not hmac.compare_digest(sign, expected_sign(timestamp, args.secret)):
                    raise Refusal(310000, "sign not match")
                if args.oracle and not hmac.compare_digest(sign, oracle_sign(timestamp, args.secret)):
                    raise Refusal(310000, "sign not match (DingtalkChatbot computes another)")
            try:
                doc = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                raise Refusal(40035, "缺少参数 json")
            need(isinstance(doc, dict), "json")
            check_shape(doc)
            if args.keyword and not any(k in t for t in message_texts(doc) for k in args.keyword):
                raise Refusal(310000, "keywords not in content")
            return doc

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", default="test-token")
    parser.add_argument("--secret")
    parser.add_argument("--oracle", action="store_true",
                        help="also check each sign against the DingtalkChatbot package (PyPI)")
    parser.add_argument("--keyword", action="append", default=[])
    parser.add_argument("--rate-limit", type=int)
    parser.add_argument("--throttle-seconds", type=float, default=600)
    parser.add_argument("--http-status", type=int)
    parser.add_argument("--errcode", type=int)
    parser.add_argument("--errmsg", default="mock error")
    args = parser.parse_args()
    if len(args.keyword) > 10:
        parser.error("DingTalk allows at most 10 keywords")
    serve(make_handler(args))


if __name__ == "__main__":
    main()
