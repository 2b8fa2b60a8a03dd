#!/usr/bin/env python3
"""Mock Telegram Bot API for Herald's telegram plugin. Python 3 standard library only.

It checks what the real Bot API checks for the methods the plugin uses, and answers with the
real envelopes: {"ok":true,"result":...} or {"ok":false,"error_code":N,"description":"...",
"parameters":{...}}.

    telegram_mock.py --token 123456:ABC-def --chat -1001234567890:supergroup:Ops [--chat ...]

Prints "PORT <n>" first; exits when stdin closes. Base URL for the plugin: http://127.0.0.1:<n>
Write values that start with "-" as --flag=VALUE (argparse reads "-100...:..." as an option).

Flags
    --token T                 the bot token; another token in the path gives 401 Unauthorized
    --chat ID[:TYPE[:TITLE]]  a chat the bot may post to (repeatable). TYPE: group, supergroup
                              (default), channel or private. ID may be @channelname.
    --blocked ID              posting to ID gives 403 "Forbidden: bot was kicked from the group chat"
    --migrated OLD:NEW        posting to OLD gives 400 "group chat was upgraded to a supergroup
                              chat" with parameters.migrate_to_chat_id NEW
    --rate-limit N            the N+1th message to one chat within 60 s gets 429 "Too Many
                              Requests: retry after S" with parameters.retry_after S
    --fail ID:STATUS[:COUNT]  the next COUNT (default 1, 0 = always) messages to chat ID (or "*"
                              for any chat) get STATUS: 5xx and 429 answers look like
                              Telegram's; 400 gives "Bad Request: wrong parameter action in
                              request" (a code the plugin has no rule for); 200 gives a non-JSON body
    --webhook-set             getUpdates gives 409 Conflict (a webhook is set)
    --no-updates              getUpdates returns no updates

Endpoints
    POST /bot<token>/sendMessage   JSON or form body: chat_id, text, parse_mode (HTML checked
                                   like Telegram: allowed tags, nesting, entities; 1-4096
                                   characters after parsing), reply_markup (inline keyboard:
                                   text + one of url/callback_data; url http(s):// or tg://),
                                   link_preview_options, disable_notification
    GET|POST /bot<token>/getMe
    GET|POST /bot<token>/getUpdates   updates built from --chat (message / channel_post /
                                   my_chat_member, with a duplicate to test de-duplication)
    GET  /_received                JSON list of accepted messages: chat_id, text (after entity
                                   parsing), html (as sent), reply_markup, disable_notification,
                                   link_preview_options, headers
    POST /_control                 JSON {"fail": ["ID:STATUS[:COUNT]", ...]} adds --fail rules
"""
import argparse
import json
import re
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from mockserver import serve

MAX_TEXT = 4096
ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "code", "pre",
                "blockquote", "tg-emoji"}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}

lock = threading.Lock()
received = []
sent_times = {}      # chat id -> [monotonic times]
fail_rules = []      # [chat, status, remaining (0 = forever)]
message_ids = {}     # chat id -> last message id


class ParseError(Exception):
    pass


def parse_html(text):
    """Telegram's HTML parse mode: returns the visible text, or raises ParseError with
    Telegram's wording."""
    out = []
    stack = []
    i = 0
    raw = text.encode("utf-8")

    def offset(pos):
        return len(text[:pos].encode("utf-8"))

    while i < len(text):
        c = text[i]
        if c == "<":
            end = text.find(">", i)
            if end < 0:
                raise ParseError(f"Can't parse entities: unclosed start tag at byte offset {offset(i)}")
            inner = text[i + 1:end]
            if inner.startswith("/"):
                name = inner[1:].strip().lower()
                if not stack:
                    raise ParseError(f"Can't parse entities: unexpected end tag at byte offset {offset(i)}")
                if stack[-1] != name:
                    raise ParseError(f"Can't parse entities: can't find end tag corresponding to start tag \"{stack[-1]}\"")
                stack.pop()
            else:
                m = re.match(r"([A-Za-z][A-Za-z0-9-]*)(.*)$", inner, re.S)
                if not m:
                    raise ParseError(f"Can't parse entities: unsupported start tag \"{inner[:20]}\" at byte offset {offset(i)}")
                name, attrs = m.group(1).lower(), m.group(2)
                if name not in ALLOWED_TAGS:
                    raise ParseError(f"Can't parse entities: unsupported start tag \"{name}\" at byte offset {offset(i)}")
                parsed = dict((k.lower(), v) for k, v in re.findall(r'\s*([A-Za-z-]+)\s*=\s*"([^"]*)"', attrs))
                leftover = re.sub(r'\s*([A-Za-z-]+)\s*=\s*"([^"]*)"', "", attrs).strip()
                if leftover not in ("", "expandable"):
                    raise ParseError(f"Can't parse entities: can't parse attributes of tag \"{name}\" at byte offset {offset(i)}")
                if name == "a":
                    href = unescape(parsed.get("href", ""), i)
                    if not re.match(r"(https?://|tg://)", href):
                        raise ParseError(f"Can't parse entities: unsupported URL \"{href[:40]}\" in tag \"a\"")
                if name == "span" and parsed.get("class") != "tg-spoiler":
                    raise ParseError("Can't parse entities: tag \"span\" must have class \"tg-spoiler\"")
                stack.append(name)
            i = end + 1
        elif c == "&":
            m = re.match(r"&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z]+);", text[i:])
            if not m:
                raise ParseError(f"Can't parse entities: character '&' must be escaped at byte offset {offset(i)}")
            ent = m.group(1)
            if ent.startswith("#x"):
                out.append(chr(int(ent[2:], 16)))
            elif ent.startswith("#"):
                out.append(chr(int(ent[1:])))
            elif ent in NAMED_ENTITIES:
                out.append(NAMED_ENTITIES[ent])
            else:
                raise ParseError(f"Can't parse entities: unsupported entity \"&{ent};\" at byte offset {offset(i)}")
            i += len(m.group(0))
        elif c == ">":
            raise ParseError(f"Can't parse entities: character '>' must be escaped at byte offset {offset(i)}")
        else:
            out.append(c)
            i += 1
    if stack:
        raise ParseError(f"Can't parse entities: can't find end tag corresponding to start tag \"{stack[-1]}\"")
    del raw
    return "".join(out)


def unescape(value, pos):
    def repl(m):
        ent = m.group(1)
        if ent.startswith("#x"):
            return chr(int(ent[2:], 16))
        if ent.startswith("#"):
            return chr(int(ent[1:]))
        if ent in NAMED_ENTITIES:
            return NAMED_ENTITIES[ent]
        raise ParseError(f"Can't parse entities: unsupported entity \"&{ent};\"")
    if re.search(r"&(?!(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z]+);)", value):
        raise ParseError("Can't parse entities: character '&' must be escaped")
    return re.sub(r"&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|[A-Za-z]+);", repl, value)


def check_keyboard(markup):
    if isinstance(markup, str):
        try:
            markup = json.loads(markup)
        except ValueError:
            raise ParseError("can't parse reply keyboard markup JSON object")
    if not isinstance(markup, dict) or not isinstance(markup.get("inline_keyboard"), list):
        raise ParseError("can't parse reply keyboard markup JSON object")
    for row in markup["inline_keyboard"]:
        if not isinstance(row, list):
            raise ParseError("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
        for button in row:
            if not isinstance(button, dict) or not isinstance(button.get("text"), str) or not button["text"]:
                raise ParseError("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
            kinds = [k for k in ("url", "callback_data", "web_app", "login_url", "switch_inline_query", "pay") if k in button]
            if len(kinds) != 1:
                raise ParseError("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
            if "url" in button and not re.match(r"(https?://|tg://)[^\s]+$", str(button["url"])):
                raise ParseError("BUTTON_URL_INVALID")
            if "callback_data" in button and not (1 <= len(str(button["callback_data"]).encode()) <= 64):
                raise ParseError("BUTTON_DATA_INVALID")
    return markup


def parse_fail(rule):
    parts = rule.rsplit(":", 2) if rule.count(":") >= 2 else rule.rsplit(":", 1)
    if len(parts) == 3:
        return [parts[0], int(parts[1]), int(parts[2])]
    return [parts[0], int(parts[1]), 1]


def make_handler(args, chats):
    def chat_key(value):
        if isinstance(value, bool):
            return None
        if isinstance(value, int):
            return str(value)
        if isinstance(value, str) and re.match(r"^(-?[0-9]+|@[A-Za-z0-9_]+)$", value):
            return value
        return None

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, code, document, extra=(), raw=None, content_type="application/json"):
            body = raw if raw is not None else json.dumps(document, ensure_ascii=False).encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def error(self, code, description, parameters=None):
            doc = {"ok": False, "error_code": code, "description": description}
            if parameters:
                doc["parameters"] = parameters
            self.answer(code, doc)

        def do_GET(self):
            if self.path == "/_received":
                with lock:
                    return self.answer(200, received)
            self.route(b"")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0") or 0)
            body = self.rfile.read(length)
            if self.path == "/_control":
                try:
                    control = json.loads(body)
                    with lock:
                        for rule in control.get("fail", []):
                            fail_rules.append(parse_fail(rule))
                except (ValueError, AttributeError, IndexError) as error:
                    return self.answer(400, {"error": str(error)})
                return self.answer(200, {"ok": True})
            self.route(body)

        def params(self, body):
            url = urllib.parse.urlsplit(self.path)
            params = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if body:
                if ctype == "application/json":
                    try:
                        doc = json.loads(body.decode("utf-8"))
                    except (ValueError, UnicodeDecodeError):
                        raise ParseError("can't parse JSON encoded request: the body is not valid JSON")
                    if not isinstance(doc, dict):
                        raise ParseError("can't parse JSON encoded request: the body must be an object")
                    params.update(doc)
                elif ctype == "application/x-www-form-urlencoded":
                    params.update({k: v[-1] for k, v in urllib.parse.parse_qs(body.decode("utf-8")).items()})
                else:
                    raise ParseError(f"unsupported Content-Type {ctype or '(none)'}")
            return params

        def route(self, body):
            m = re.match(r"^/bot([^/]*)/([A-Za-z]+)(\?.*)?$", self.path)
            if not m:
                return self.error(404, "Not Found")
            token, method = m.group(1), m.group(2)
            if not re.match(r"^[0-9]+:[A-Za-z0-9_-]+$", token):
                return self.error(404, "Not Found")
            if token != args.token:
                return self.error(401, "Unauthorized")
            try:
                params = self.params(body)
            except ParseError as error:
                return self.error(400, f"Bad Request: {error}")
            if method.lower() == "getme":
                return self.answer(200, {"ok": True, "result": {"id": int(args.token.split(":")[0]), "is_bot": True,
                                                                "first_name": "Herald test bot", "username": "herald_test_bot",
                                                                "can_join_groups": True}})
            if method.lower() == "getupdates":
                return self.get_updates(params)
            if method.lower() == "sendmessage":
                return self.send_message(params)
            return self.error(404, "Not Found")

        def get_updates(self, params):
            if args.webhook_set:
                return self.error(409, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first")
            updates = []
            if not args.no_updates:
                now = int(time.time())
                update_id = 100000
                sender = {"id": 111111, "is_bot": False, "first_name": "Ann \"<Ops>\"", "username": "ann_ops"}
                for cid, (ctype, title) in chats.items():
                    if cid.startswith("@"):
                        continue
                    chat = {"id": int(cid), "type": ctype}
                    if ctype == "private":
                        chat.update({"first_name": title, "username": "someone"})
                    else:
                        chat["title"] = title
                    update_id += 1
                    if ctype == "channel":
                        updates.append({"update_id": update_id, "channel_post": {"message_id": 1, "date": now, "chat": chat, "text": "hello"}})
                    else:
                        updates.append({"update_id": update_id, "message": {"message_id": 1, "from": sender, "date": now, "chat": chat,
                                                                              "text": "@herald_test_bot hi"}})
                    update_id += 1
                    updates.append({"update_id": update_id, "my_chat_member": {"chat": chat, "from": sender, "date": now,
                                                                               "old_chat_member": {"status": "left", "user": sender},
                                                                               "new_chat_member": {"status": "member", "user": sender}}})
            limit = int(params.get("limit", 100) or 100)
            return self.answer(200, {"ok": True, "result": updates[:max(1, min(limit, 100))]})

        def send_message(self, params):
            key = chat_key(params.get("chat_id"))
            if key is None:
                return self.error(400, "Bad Request: chat_id is empty" if "chat_id" not in params else "Bad Request: chat not found")
            # Scripted failures come first: they stand for Telegram's own trouble.
            with lock:
                rule = next((r for r in fail_rules if r[0] in (key, "*")), None)
                if rule and rule[2] > 0:
                    rule[2] -= 1
                    if rule[2] == 0:
                        fail_rules.remove(rule)
            if rule:
                status = rule[1]
                if status == 429:
                    return self.error(429, "Too Many Requests: retry after 5", {"retry_after": 5})
                if status in (502, 504):
                    title = "502 Bad Gateway" if status == 502 else "504 Gateway Time-out"
                    return self.answer(status, None, raw=f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n".encode(),
                                       content_type="text/html")
                if status >= 500:
                    return self.error(status, "Internal Server Error")
                if status == 200:
                    return self.answer(200, None, raw=b"<html>maintenance</html>", content_type="text/html")
                if status == 400:
                    return self.error(400, "Bad Request: wrong parameter action in request")
                return self.error(status, f"Error {status}: scripted by the mock")
            if key in args.blocked:
                return self.error(403, "Forbidden: bot was kicked from the group chat")
            if key in args.migrated:
                return self.error(400, "Bad Request: group chat was upgraded to a supergroup chat",
                                  {"migrate_to_chat_id": int(args.migrated[key])})
            if key not in chats:
                return self.error(400, "Bad Request: chat not found")
            text = params.get("text")
            if not isinstance(text, str) or not text.strip():
                return self.error(400, "Bad Request: message text is empty")
            mode = params.get("parse_mode")
            try:
                if mode is None:
                    visible = text
                elif str(mode).lower() == "html":
                    visible = parse_html(text)
                else:
                    return self.error(400, f"Bad Request: unsupported parse_mode {mode} in this mock")
            except ParseError as error:
                return self.error(400, f"Bad Request: {error}")
            if not visible.strip():
                return self.error(400, "Bad Request: message text is empty")
            if len(visible) > MAX_TEXT:
                return self.error(400, "Bad Request: message is too long")
            markup = params.get("reply_markup")
            if markup is not None:
                try:
                    markup = check_keyboard(markup)
                except ParseError as error:
                    return self.error(400, f"Bad Request: {error}")
            for flag in ("disable_notification", "protect_content"):
                if flag in params and not isinstance(params[flag], bool) and params[flag] not in ("true", "false"):
                    return self.error(400, f"Bad Request: can't parse {flag}")
            lpo = params.get("link_preview_options")
            if lpo is not None and not isinstance(lpo, (dict, str)):
                return self.error(400, "Bad Request: can't parse link preview options")
            if lpo is not None and "disable_web_page_preview" in params:
                return self.error(400, "Bad Request: can't use both link_preview_options and disable_web_page_preview")
            if args.rate_limit:
                now = time.monotonic()
                with lock:
                    times = [t for t in sent_times.get(key, []) if now - t < 60]
                    sent_times[key] = times
                    if len(times) >= args.rate_limit:
                        wait = max(1, int(60 - (now - times[0])) + 1)
                        limited = True
                    else:
                        times.append(now)
                        limited = False
                if limited:
                    return self.error(429, f"Too Many Requests: retry after {wait}", {"retry_after": wait})
            ctype, title = chats[key]
            with lock:
                message_ids[key] = message_ids.get(key, 0) + 1
                mid = message_ids[key]
                received.append({"chat_id": params.get("chat_id"), "text": visible, "html": text, "reply_markup": markup,
                                 "disable_notification": params.get("disable_notification", False),
                                 "link_preview_options": lpo, "message_id": mid,
                                 "headers": {k.lower(): v for k, v in self.headers.items()}})
            chat = {"id": int(key) if not key.startswith("@") else -1009999999999, "type": ctype, "title": title}
            result = {"message_id": mid, "from": {"id": int(args.token.split(":")[0]), "is_bot": True, "first_name": "Herald test bot",
                                                  "username": "herald_test_bot"},
                      "chat": chat, "date": int(time.time()), "text": visible}
            if markup is not None:
                result["reply_markup"] = markup
            self.answer(200, {"ok": True, "result": result})

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--token", required=True)
    parser.add_argument("--chat", action="append", default=[])
    parser.add_argument("--blocked", action="append", default=[])
    parser.add_argument("--migrated", action="append", default=[])
    parser.add_argument("--rate-limit", type=int, default=0)
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("--webhook-set", action="store_true")
    parser.add_argument("--no-updates", action="store_true")
    args = parser.parse_args()
    chats = {}
    for spec in args.chat:
        parts = spec.split(":", 2)
        chats[parts[0]] = (parts[1] if len(parts) > 1 else "supergroup", parts[2] if len(parts) > 2 else f"Chat {parts[0]}")
    args.blocked = set(args.blocked)
    args.migrated = dict(m.split(":", 1) for m in args.migrated)
    fail_rules.extend(parse_fail(rule) for rule in args.fail)
    serve(make_handler(args, chats))


if __name__ == "__main__":
    main()
