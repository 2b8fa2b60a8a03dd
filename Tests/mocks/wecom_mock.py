#!/usr/bin/env python3
"""Mock WeCom (企业微信) group bot webhook for Herald's wecom plugin. Standard library only.

    wecom_mock.py [--key KEY] [--rate-limit N]

Prints "PORT <n>" first; exits when stdin closes.

    POST /cgi-bin/webhook/send?key=<KEY>
        What WeCom checks, answered the way WeCom answers: always HTTP 200 with
        {"errcode": N, "errmsg": "..."}; errcode 0 is success.
          - unknown or missing key                          -> 93000 invalid webhook url
          - more than N messages in the last 60 s (counted
            whether or not they succeed, as WeCom does)     -> 45009 api freq out of limit
          - body not a JSON object / not application/json   -> 40035 invalid parameter
          - msgtype other than text / markdown              -> 40008 invalid message type
          - missing or empty content                        -> 44004 empty content
          - markdown content over 4096 bytes, text content
            over 2048 bytes (UTF-8)                         -> 45002 content size out of limit
          - mentioned_list / mentioned_mobile_list not a
            list of strings, or present on markdown         -> 40035 invalid parameter
        Accepted messages are recorded for /_received.
    GET /_received
        JSON list of {"headers": {...}, "payload": {...}} accepted so far.

Test hooks (not WeCom's; they let one mock drive every failure class). A key of
    errcode-<N>   answers errcode N with WeCom's errmsg for it (45009, -1, 93000, 40008, ...)
    http-<S>      answers HTTP S (e.g. 502) with an HTML body, as a failing gateway would
    garbage       answers HTTP 200 with a body that is not JSON
    no-errcode    answers HTTP 200 {"errmsg": "ok"} (no errcode)
Test-hook keys skip the checks above and are not rate limited.

Flags:
    --key KEY          the bot key the mock accepts (default: the WeCom documentation's sample)
    --rate-limit N     messages per rolling 60 s before 45009 (default 20, WeCom's limit; 0 = none)

Where WeCom's exact wording is not documented, the errmsg texts follow what WeCom is seen to
answer ("<message>, hint: [<id>], from ip: <ip>, more info at <url>"); only errcode is a
contract, and that is all the plugin relies on. Two checks are stricter than WeCom, so a test
notices a plugin mistake that WeCom would let pass silently: the mock insists on
application/json (WeCom is not known to check Content-Type), and it refuses mentioned_list /
mentioned_mobile_list in a markdown message (WeCom ignores them there).
"""
import argparse
import json
import threading
import time
import uuid
from collections import deque
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit
from mockserver import serve

DOC_KEY = "693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa"
MARKDOWN_MAX = 4096
TEXT_MAX = 2048
MAX_BODY = 1 << 20

ERRMSG = {
    -1: "system busy",
    93000: "invalid webhook url",
    45009: "api freq out of limit",
    45033: "api concurrent out of limit",
    40035: "invalid parameter",
    40008: "invalid message type",
    44004: "empty content",
    45002: "content size out of limit",
    40003: "invalid userid",
    46004: "user no exist",
}

received = []
sent_times = deque()
lock = threading.Lock()


def errmsg(code, detail=""):
    text = ERRMSG.get(code, "unknown error")
    if detail:
        text += f", {detail}"
    if code == 0:
        return "ok"
    hint = f"{int(time.time())}_{uuid.uuid4().hex[:16]}"
    return f"{text}, hint: [{hint}], from ip: 127.0.0.1, more info at https://open.work.weixin.qq.com/devtool/query?e={code}"


def check_payload(payload):
    """(errcode, detail) for a parsed body, (0, "") when WeCom would accept it."""
    if not isinstance(payload, dict):
        return 40035, "body is not a JSON object"
    msgtype = payload.get("msgtype")
    if msgtype not in ("text", "markdown"):
        return 40008, f"msgtype {msgtype!r} is not text or markdown"
    part = payload.get(msgtype)
    if not isinstance(part, dict):
        return 40035, f"missing {msgtype} object"
    content = part.get("content")
    if not isinstance(content, str) or content == "":
        return 44004, ""
    limit = MARKDOWN_MAX if msgtype == "markdown" else TEXT_MAX
    size = len(content.encode("utf-8"))
    if size > limit:
        return 45002, f"content is {size} bytes, limit {limit}"
    for name in ("mentioned_list", "mentioned_mobile_list"):
        if name in part:
            value = part[name]
            if msgtype == "markdown":
                return 40035, f"{name} is not a markdown field"
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                return 40035, f"{name} must be a list of strings"
    return 0, ""


def make_handler(key, rate_limit):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, code, body, content_type="application/json; charset=UTF-8"):
            data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def wecom(self, code, detail=""):
            self.answer(200, {"errcode": code, "errmsg": errmsg(code, detail)})

        def do_GET(self):
            if self.path == "/_received":
                with lock:
                    return self.answer(200, received)
            self.answer(404, b"not found", "text/plain")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                return self.answer(413, b"<html>413 Request Entity Too Large</html>", "text/html")
            body = self.rfile.read(length)
            url = urlsplit(self.path)
            if url.path != "/cgi-bin/webhook/send":
                return self.answer(404, b"<html>404 Not Found</html>", "text/html")
            given = parse_qs(url.query).get("key", [""])[0]

            # Test hooks.
            if given.startswith("errcode-"):
                return self.wecom(int(given[len("errcode-"):]))
            if given.startswith("http-"):
                return self.answer(int(given[len("http-"):]), b"<html><body>Bad Gateway</body></html>", "text/html")
            if given == "garbage":
                return self.answer(200, b"<html>\x00\xff not json", "text/html")
            if given == "no-errcode":
                return self.answer(200, {"errmsg": "ok"})

            if given != key:
                return self.wecom(93000)
            now = time.monotonic()
            with lock:
                while sent_times and now - sent_times[0] >= 60:
                    sent_times.popleft()
                sent_times.append(now)
                over = rate_limit > 0 and len(sent_times) > rate_limit
            if over:
                return self.wecom(45009)
            if not self.headers.get("Content-Type", "").lower().startswith("application/json"):
                return self.wecom(40035, "Content-Type must be application/json")
            try:
                payload = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as error:
                return self.wecom(40035, f"Warning: wrong json format. {error}")
            code, detail = check_payload(payload)
            if code:
                return self.wecom(code, detail)
            with lock:
                received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "payload": payload})
            self.wecom(0)

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--key", default=DOC_KEY)
    parser.add_argument("--rate-limit", type=int, default=20)
    args = parser.parse_args()
    serve(make_handler(args.key, args.rate_limit))


if __name__ == "__main__":
    main()
