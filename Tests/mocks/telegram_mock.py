#!/usr/bin/env python3
"""Mock Telegram Bot API for Herald's telegram plugin. Python 3 standard library only, except
--oracle, which needs python-telegram-bot (Tests/mocks/requirements.txt).

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
    --oracle                  re-check every HTML message with python-telegram-bot (below)

HTML parse mode (parse_html, always on for parse_mode HTML)
    Read as tdlib reads it into plain text + MessageEntity list (offsets and lengths in UTF-16
    code units, as the Bot API gives them): the tags Telegram allows (b strong i em u ins s
    strike del tg-spoiler span class="tg-spoiler" a code pre blockquote [expandable] tg-emoji),
    <a href="tg://user?id=N"> as a text_mention, other hrefs as text_link, <pre><code
    class="language-X"> as a pre with language X; attributes quoted or not, entities decoded in
    them. Stricter than tdlib, as the Bot API documentation asks: every '<', '>' and '&' that is
    not markup must be written &lt; &gt; &amp;; the only entities are &lt; &gt; &amp; &quot; and
    numeric ones (&#39; &#x27;), each with its ';'; a link is http(s):// or tg://. Anything else
    gets Telegram's 400 "Bad Request: can't parse entities: <tdlib's wording>", e.g.
    'Unsupported start tag "hot" at byte offset 12'.

--oracle (an independent implementation, from PyPI)
    For every sendMessage the parsed text + entities become a telegram.Message of
    python-telegram-bot, whose own serialiser (Message.text_html, html.escape for text) writes
    them back as HTML; that HTML is parsed again (as tdlib would, since PTB leaves a link's href
    unescaped) and must give the same plain text and entities, else 400 "Bad Request: can't parse
    entities: python-telegram-bot disagrees: ...". Each text_mention must also read back the same
    when written by telegram.helpers.mention_html(user_id, name), and the text is held to
    telegram.constants.MessageLimit.MAX_TEXT_LENGTH. (PTB writes a pre's language as <code
    class="X"> rather than Telegram's "language-X", so pre blocks are compared without it.)
    So the plugin's escaping must mean what PTB's escaping means. Refusals are also written to
    stderr.

Endpoints
    POST /bot<token>/sendMessage   JSON or form body: chat_id, text, parse_mode (HTML checked
                                   like Telegram: allowed tags, nesting, entities; 1-4096
                                   characters after parsing), reply_markup (inline keyboard:
                                   text + one of url/callback_data; url http(s):// or tg://),
                                   link_preview_options, disable_notification
    GET|POST /bot<token>/getMe
    GET|POST /bot<token>/getUpdates   updates built from --chat (message / channel_post /
                                   my_chat_member, with a duplicate to test de-duplication)
    GET  /_received                JSON list of accepted messages: chat_id, text (the plain text
                                   after HTML parsing: what the chat shows), entities (type,
                                   offset, length in UTF-16 units, url / user_id / language /
                                   custom_emoji_id), html (as sent), ptb_html (python-telegram-
                                   bot's HTML for the same message with --oracle, else null),
                                   reply_markup, disable_notification, link_preview_options, headers
    POST /_control                 JSON {"fail": ["ID:STATUS[:COUNT]", ...]} adds --fail rules
"""
import argparse
import json
import re
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler
from mockserver import serve

MAX_TEXT = 4096

lock = threading.Lock()
received = []
sent_times = {}      # chat id -> [monotonic times]
fail_rules = []      # [chat, status, remaining (0 = forever)]
message_ids = {}     # chat id -> last message id


class ParseError(Exception):
    pass


# Telegram's HTML parse mode (tdlib's parse_html): the tags it knows and the entity each makes.
TAG_ENTITY = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline", "ins": "underline",
              "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough", "tg-spoiler": "spoiler",
              "span": "spoiler", "a": "text_link", "code": "code", "pre": "pre", "blockquote": "blockquote",
              "tg-emoji": "custom_emoji"}
NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
ENTITY_RE = re.compile(r"&(?:#x([0-9A-Fa-f]*)|#([0-9]*)|([A-Za-z]*))(;?)")


def utf16_len(s):
    return len(s.encode("utf-16-le")) // 2


def slice16(s, offset, length):
    """The part of s at a UTF-16 offset and length, as the Bot API's entities address it."""
    return s.encode("utf-16-le")[offset * 2:(offset + length) * 2].decode("utf-16-le")


def parse_html(text, strict=True):
    """Telegram's HTML parse mode. Returns (plain text, entities): each entity a dict with type,
    offset and length in UTF-16 code units (as the Bot API counts them) and url / user_id /
    language / custom_emoji_id where the type has one. Raises ParseError with the Bot API's
    wording ("can't parse entities: ...").

    strict=False reads like tdlib itself: a '&' that starts no entity it knows, and a stray '>',
    are text. strict=True (what the mock holds the plugin to) is what the Bot API documentation
    asks for: every '<', '>' and '&' that is not markup is written &lt; &gt; &amp;, entities are
    only &lt; &gt; &amp; &quot; and numeric ones with their ';', and a link is http(s):// or tg://."""
    out = []
    pos16 = 0
    stack = []        # open tags: [name, utf16 offset, attributes]
    entities = []
    n = len(text)

    def at(k):
        return len(text[:k].encode("utf-8"))

    def fail(message):
        raise ParseError(f"can't parse entities: {message}")

    def entity(k):
        """(character, index after) for the '&' at k, or (None, k + 1) when tdlib keeps it as text."""
        m = ENTITY_RE.match(text, k)
        hexa, dec, name, semi = m.groups()
        ch = None
        if hexa is not None or dec is not None:
            digits = hexa if hexa is not None else dec
            value = int(digits, 16 if hexa is not None else 10) if digits else 0
            # tdlib: no code point 0, none past U+10FFFF, at most 9 bytes for "&#...".
            if 0 < value < 0x10FFFF and len(m.group(0)) - len(semi) < 10 and not 0xD800 <= value <= 0xDFFF:
                ch = chr(value)
        elif name in NAMED_ENTITIES:
            ch = NAMED_ENTITIES[name]
        if strict and (ch is None or not semi):
            shown = m.group(0) if len(m.group(0)) > 1 else "&"
            if ch is None and name:
                fail(f"Unsupported HTML entity \"{shown}\" at byte offset {at(k)}: only &lt; &gt; &amp; &quot; and numeric entities are supported")
            fail(f"Character '&' at byte offset {at(k)} must be escaped as &amp;")
        if ch is None:
            return None, k + 1
        return ch, m.end()

    def decoded(start, stop):
        """Attribute value text[start:stop] with its entities decoded."""
        parts, k = [], start
        while k < stop:
            if text[k] == "&":
                ch, j = entity(k)
                parts.append("&" if ch is None else ch)
                k = min(j, stop)
            else:
                parts.append(text[k])
                k += 1
        return "".join(parts)

    i = 0
    while i < n:
        c = text[i]
        if c == "&":
            ch, i = entity(i)
            ch = "&" if ch is None else ch
            out.append(ch)
            pos16 += utf16_len(ch)
            continue
        if c == ">" and strict:
            fail(f"Character '>' at byte offset {at(i)} must be escaped as &gt;")
        if c != "<":
            out.append(c)
            pos16 += utf16_len(c)
            i += 1
            continue
        begin = i
        i += 1
        if i < n and text[i] == "/":
            j = i + 1
            while j < n and not text[j].isspace() and text[j] != ">":
                j += 1
            name = text[i + 1:j].lower()
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != ">":
                fail(f"Unclosed end tag at byte offset {at(begin)}")
            if not stack:
                fail(f"Unexpected end tag at byte offset {at(begin)}")
            if name and name != stack[-1][0]:
                fail(f"Unmatched end tag at byte offset {at(begin)}, expected \"</{stack[-1][0]}>\", found \"</{name}>\"")
            tag, offset, attrs = stack.pop()
            i = j + 1
            length = pos16 - offset
            if tag == "code" and stack and stack[-1][0] == "pre" and attrs.get("class", "").startswith("language-"):
                stack[-1][2]["language"] = attrs["class"][len("language-"):]
                continue
            if length <= 0:
                continue
            e = {"type": TAG_ENTITY[tag], "offset": offset, "length": length}
            if tag == "a":
                url = attrs.get("href")
                if url is None:  # tdlib: <a> without href links its own text
                    url = slice16("".join(out), offset, length)
                m = re.match(r"tg://user\?id=([0-9]{1,15})$", url)
                if m:
                    e = {"type": "text_mention", "offset": offset, "length": length, "user_id": int(m.group(1))}
                elif re.match(r"(https?://|tg://)\S+$", url):
                    e["url"] = url
                elif strict:
                    fail(f"Unsupported URL \"{url[:40]}\" in the tag \"a\"")
                else:
                    continue
            elif tag == "pre" and attrs.get("language"):
                e["language"] = attrs["language"]
            elif tag == "blockquote" and "expandable" in attrs:
                e["type"] = "expandable_blockquote"
            elif tag == "tg-emoji":
                e["custom_emoji_id"] = attrs.get("emoji-id", "")
            entities.append(e)
            continue
        j = i
        while j < n and not text[j].isspace() and text[j] not in "/>":
            j += 1
        name = text[i:j].lower()
        if name not in TAG_ENTITY:
            fail(f"Unsupported start tag \"{name}\" at byte offset {at(begin)}")
        attrs = {}
        while True:
            while j < n and text[j].isspace():
                j += 1
            if j >= n:
                fail(f"Unclosed start tag at byte offset {at(begin)}")
            if text[j] == ">":
                break
            k = j
            while j < n and not text[j].isspace() and text[j] not in "=>":
                j += 1
            attr = text[k:j].lower()
            if not attr:
                fail(f"Empty attribute name in the tag \"{name}\" at byte offset {at(begin)}")
            while j < n and text[j].isspace():
                j += 1
            if j >= n or text[j] != "=":
                if name == "blockquote" and attr == "expandable":
                    attrs["expandable"] = ""
                    continue
                fail(f"Expected equal sign in declaration of an attribute of the tag \"{name}\" at byte offset {at(begin)}")
            j += 1
            while j < n and text[j].isspace():
                j += 1
            if j >= n:
                fail(f"Unclosed start tag at byte offset {at(begin)}")
            if text[j] in "\"'":
                close = text.find(text[j], j + 1)
                if close < 0:
                    fail(f"Unclosed start tag at byte offset {at(begin)}")
                value = decoded(j + 1, close)
                j = close + 1
            else:
                k = j
                while j < n and (text[j].isalnum() or text[j] in ".-"):
                    j += 1
                value = text[k:j]
            attrs[attr] = value
        if name == "span" and attrs.get("class") != "tg-spoiler":
            fail("Tag \"span\" must have class \"tg-spoiler\"")
        if name == "tg-emoji" and not re.match(r"[0-9]+$", attrs.get("emoji-id", "")):
            fail(f"Custom emoji identifier must be specified in the tag \"tg-emoji\" at byte offset {at(begin)}")
        stack.append([name, pos16, attrs])
        i = j + 1
    if stack:
        fail(f"Can't find end tag corresponding to start tag \"{stack[-1][0]}\"")
    return "".join(out), entities


def normalized(entities):
    """Entities as a sorted list of tuples, for comparing two parses (order is not meaningful)."""
    return sorted((e["type"], e["offset"], e["length"], e.get("url") or "", e.get("user_id") or 0,
                   e.get("language") or "", e.get("custom_emoji_id") or "") for e in entities)


def ptb_oracle(plain, entities):
    """The --oracle check: python-telegram-bot (PyPI), an implementation independent of the
    plugin, serialises the parsed message back to HTML; that HTML, read as Telegram reads it, must
    give the same text and entities. Returns PTB's HTML; raises ParseError when it disagrees."""
    import datetime
    from telegram import Chat, Message, MessageEntity, User
    from telegram.constants import MessageLimit
    from telegram.helpers import mention_html

    def refuse(why):
        raise ParseError(f"can't parse entities: python-telegram-bot disagrees: {why}")

    if len(plain) > MessageLimit.MAX_TEXT_LENGTH:
        raise ParseError("message is too long")
    ptb_entities = []
    for e in entities:
        name = slice16(plain, e["offset"], e["length"])
        user = User(id=e["user_id"], first_name=name, is_bot=False) if "user_id" in e else None
        ptb_entities.append(MessageEntity(type=e["type"], offset=e["offset"], length=e["length"], url=e.get("url"),
                                          user=user, language=e.get("language"),
                                          custom_emoji_id=e.get("custom_emoji_id")))
        if e["type"] == "text_mention":
            # A mention of a user by id: PTB's own helper must write one that reads back the same.
            fragment = mention_html(e["user_id"], name)
            got = parse_html(fragment, strict=True)
            if got[0] != name or normalized(got[1]) != normalized([{"type": "text_mention", "offset": 0,
                                                                   "length": utf16_len(name), "user_id": e["user_id"]}]):
                refuse(f"mention_html({e['user_id']}, {name!r}) = {fragment!r} reads back as {got!r}")
    message = Message(message_id=1, date=datetime.datetime.now(datetime.timezone.utc),
                      chat=Chat(id=-1001, type=Chat.SUPERGROUP), text=plain, entities=ptb_entities)
    rendered = message.text_html
    try:
        again, again_entities = parse_html(rendered, strict=False)
    except ParseError as error:
        refuse(f"its HTML {rendered[:300]!r} does not parse ({error})")
    if again != plain:
        refuse(f"its HTML {rendered[:300]!r} reads as text {again[:300]!r}, the message as {plain[:300]!r}")
    # PTB writes a pre's language as <code class="X">, where Telegram reads class="language-X" (and
    # otherwise a code entity inside the pre): compare pre blocks without their language.
    def comparable(found):
        pres = {(e["offset"], e["length"]) for e in found if e["type"] == "pre"}
        return normalized([dict(e, language=None) for e in found
                           if not (e["type"] == "code" and (e["offset"], e["length"]) in pres)])
    if comparable(again_entities) != comparable(entities):
        refuse(f"its HTML {rendered[:300]!r} has entities {normalized(again_entities)}, the message {normalized(entities)}")
    return rendered


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
            ptb_html = None
            try:
                if mode is None:
                    visible, entities = text, []
                elif str(mode).lower() == "html":
                    visible, entities = parse_html(text)
                else:
                    return self.error(400, f"Bad Request: unsupported parse_mode {mode} in this mock")
                if not visible.strip():
                    raise ParseError("message text is empty")
                if len(visible) > MAX_TEXT:
                    raise ParseError("message is too long")
                if args.oracle:
                    ptb_html = ptb_oracle(visible, entities)
            except ParseError as error:
                if args.oracle:
                    sys.stderr.write(f"telegram_mock: refused {text[:500]!r}: {error}\n")
                return self.error(400, f"Bad Request: {error}")
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
                received.append({"chat_id": params.get("chat_id"), "text": visible, "entities": entities, "html": text,
                                 "ptb_html": ptb_html, "reply_markup": markup,
                                 "disable_notification": params.get("disable_notification", False),
                                 "link_preview_options": lpo, "message_id": mid,
                                 "headers": {k.lower(): v for k, v in self.headers.items()}})
            chat = {"id": int(key) if not key.startswith("@") else -1009999999999, "type": ctype, "title": title}
            result = {"message_id": mid, "from": {"id": int(args.token.split(":")[0]), "is_bot": True, "first_name": "Herald test bot",
                                                  "username": "herald_test_bot"},
                      "chat": chat, "date": int(time.time()), "text": visible}
            if entities:
                result["entities"] = [{k: v for k, v in e.items() if k != "user_id"} |
                                      ({"user": {"id": e["user_id"], "is_bot": False, "first_name": slice16(visible, e["offset"], e["length"])}}
                                       if "user_id" in e else {}) for e in entities]
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
    parser.add_argument("--oracle", action="store_true")
    args = parser.parse_args()
    chats = {}
    for spec in args.chat:
        parts = spec.split(":", 2)
        chats[parts[0]] = (parts[1] if len(parts) > 1 else "supergroup", parts[2] if len(parts) > 2 else f"Chat {parts[0]}")
    args.blocked = set(args.blocked)
    args.migrated = dict(m.split(":", 1) for m in args.migrated)
    fail_rules.extend(parse_fail(rule) for rule in args.fail)
    if args.oracle:
        import telegram  # noqa: F401  (fail at start, not at the first message, if it is missing)
    serve(make_handler(args, chats))


if __name__ == "__main__":
    main()
