#!/usr/bin/env python3
"""Mock Slack incoming webhook for Herald's slack plugin. Standard library only, except
--oracle, which needs slack-sdk (Tests/mocks/requirements.txt).

    slack_mock.py [--secret S] [--rate-limit N] [--blocks-text-limit C] [--oracle]

Prints "PORT <n>" first; exits when stdin closes.

    POST /services/T00000000/B00000000/<S>
        What Slack checks, answered the way Slack answers: HTTP 200 with the body "ok", or an
        error status with a bare error code as a text/html body:
          - same team and bot, another secret                -> 403 invalid_token
          - any other /services/... path                      -> 404 no_service
          - more than N messages in the last 60 s             -> 429 rate_limited, Retry-After
          - Content-Type not application/json                 -> 400 invalid_payload
          - body not a JSON object                            -> 400 invalid_payload
          - neither "text" nor "blocks"                       -> 400 no_text
          - blocks breaking Block Kit's limits (below)        -> 400 invalid_blocks
          - more than C characters of text in the blocks      -> 400 msg_blocks_too_long
        Accepted messages are recorded for /_received.
    GET /_received
        JSON list of {"headers": {...}, "payload": {...}, "shown": ...} accepted so far; with
        --oracle "shown" is what Slack shows, {"text": fallback, "blocks": [[each text object's
        text, in order], ...]}, mrkdwn with its escapes and <...> sequences undone (<@U1> ->
        @U1, <url|label> -> label, &lt; -> <); else null.

Block Kit limits checked (Slack's block reference): at most 50 blocks of the types header,
section, context, actions, divider; a header's text is plain_text, 1-150 characters; a
section has text (1-3000 characters) or fields (1-10, each 1-2000 characters); a context has
1-10 elements; an actions block has 1-25 elements; a button has plain_text text of 1-75
characters, a url of at most 3000 characters and an action_id unique in the message; a text
object's type is plain_text or mrkdwn. Characters are Unicode code points.

--oracle (independent implementations, after the checks above; a refusal is also on stderr):
    - every block goes through slack-sdk (PyPI): slack_sdk.models.blocks.Block.parse must know
      its type, validate_json() and to_dict() must pass (to_dict validates every nested element
      and text object: lengths such as header 150 / section 3000 / button text 75 and url 3000,
      counts such as 10 fields / 25 elements, button style primary|danger, action_id 255), and
      to_dict() must give back exactly the block sent (a key slack-sdk does not know, which Slack
      refuses as an unknown property, or a value of the wrong kind) -> 400 invalid_blocks
    - every mrkdwn text (blocks and the fallback text) follows Slack's escaping rule: '&' only
      as &amp; &lt; &gt;, '<' only to open <@U..> <#C..> <!subteam^S..> <!here> or
      <scheme:...|label> -> 400 invalid_blocks (blocks) or invalid_payload (text). Slack itself
      would show such text mangled rather than refuse it.
    - the fallback text by slack-sdk's rules: a message without top-level text (slack-sdk's
      _warn_if_message_text_content_is_missing warns) -> 400 no_text; over 40,000 characters
      (slack-sdk's Message logs that Slack truncates) -> 400 msg_too_long

Test hooks (not Slack's; they let one mock drive every failure class):
    POST /services/TFAIL/<status>/<code>   answers HTTP <status> with body <code>; a 429 or
                                           503 carries Retry-After: 7
    POST /services/TFAIL/200/garbage       answers 200 with a body that is not "ok"

Flags:
    --secret S              the webhook's secret path part (default XXXXXXXXXXXXXXXXXXXXXXXX)
    --rate-limit N          messages per rolling 60 s before 429 (default 0 = none; Slack allows
                            about one per second with short bursts)
    --blocks-text-limit C   total block text before msg_blocks_too_long (default 13000: Slack
                            documents none, and answers so at about 13,000 characters)
    --oracle                the slack-sdk and mrkdwn checks above
"""
import argparse
import json
import re
import sys
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler
from mockserver import serve

TEAM, BOT = "T00000000", "B00000000"
MAX_BODY = 1 << 20
BLOCK_TYPES = {"header", "section", "context", "actions", "divider"}

received = []
sent_times = deque()
lock = threading.Lock()


class Invalid(Exception):
    pass


class TextProblem(Exception):
    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def text_object(obj, where, max_chars, plain_only=False):
    """Checks a text object; returns its text."""
    if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
        raise Invalid(f"{where}: not a text object")
    if plain_only and obj["type"] != "plain_text":
        raise Invalid(f"{where}: must be plain_text")
    text = obj.get("text")
    if not isinstance(text, str) or not 1 <= len(text) <= max_chars:
        raise Invalid(f"{where}: text must be 1-{max_chars} characters")
    return text


def check_blocks(blocks):
    """Raises Invalid for blocks Slack refuses; returns the characters of text they hold."""
    if not isinstance(blocks, list) or len(blocks) > 50:
        raise Invalid("blocks must be a list of at most 50")
    total, action_ids = 0, set()
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind not in BLOCK_TYPES:
            raise Invalid(f"blocks[{i}]: unknown type {kind!r}")
        if kind == "header":
            total += len(text_object(block.get("text"), f"blocks[{i}].text", 150, plain_only=True))
        elif kind == "section":
            if "text" in block:
                total += len(text_object(block["text"], f"blocks[{i}].text", 3000))
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or not 1 <= len(fields) <= 10:
                    raise Invalid(f"blocks[{i}].fields: 1-10 fields")
                for j, field in enumerate(fields):
                    total += len(text_object(field, f"blocks[{i}].fields[{j}]", 2000))
            if "text" not in block and fields is None:
                raise Invalid(f"blocks[{i}]: a section needs text or fields")
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
                raise Invalid(f"blocks[{i}].elements: 1-10 elements")
            for j, element in enumerate(elements):
                total += len(text_object(element, f"blocks[{i}].elements[{j}]", 3000))
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
                raise Invalid(f"blocks[{i}].elements: 1-25 elements")
            for j, element in enumerate(elements):
                where = f"blocks[{i}].elements[{j}]"
                if not isinstance(element, dict) or element.get("type") != "button":
                    raise Invalid(f"{where}: only buttons are expected")
                total += len(text_object(element.get("text"), f"{where}.text", 75, plain_only=True))
                url = element.get("url")
                if url is not None and (not isinstance(url, str) or not 1 <= len(url) <= 3000):
                    raise Invalid(f"{where}.url: 1-3000 characters")
                action_id = element.get("action_id")
                if action_id is not None:
                    if not isinstance(action_id, str) or not 1 <= len(action_id) <= 255 or action_id in action_ids:
                        raise Invalid(f"{where}.action_id: missing, too long or not unique")
                    action_ids.add(action_id)
                if element.get("style") not in (None, "primary", "danger"):
                    raise Invalid(f"{where}.style: primary or danger")
    return total


# ---- --oracle: slack-sdk (PyPI) and Slack's mrkdwn rules ---------------------------------------

CONTROL_RE = re.compile(r"<([^<>]*)>")
ENTITY_RE = re.compile(r"&(amp|lt|gt);")


def shown_mrkdwn(text, where):
    """What Slack shows for a mrkdwn text, checking Slack's escaping rule: '&' and '<' are markup
    ('&' starts &amp; &lt; &gt;; '<' starts a control sequence <@U..>, <!subteam^S..>, <!here>,
    <#C..> or <scheme:...|label>), so a text that means them literally writes &amp; and &lt;
    (and '>' as &gt;, though Slack keeps a raw '>' that is not part of a sequence). Raises
    Invalid for a '&' or '<' that starts nothing."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "&":
            m = ENTITY_RE.match(text, i)
            if not m:
                raise Invalid(f"{where}: a bare '&' at {i} (write &amp;): {text[max(0, i - 20):i + 20]!r}")
            out.append({"amp": "&", "lt": "<", "gt": ">"}[m.group(1)])
            i = m.end()
        elif c == "<":
            m = CONTROL_RE.match(text, i)
            inner = m.group(1) if m else ""
            target, _, label = inner.partition("|")
            if not m or not re.match(r"([@#!]|[A-Za-z][A-Za-z0-9+.-]*:)\S", target):
                raise Invalid(f"{where}: a '<' at {i} that starts no link or mention (write &lt;): {text[max(0, i - 20):i + 20]!r}")
            if target[0] in "@#":
                shown = label or target
                shown = shown if shown[0] in "@#" else target[0] + shown
            elif target[0] == "!":
                name = target[1:].split("^")[-1]
                shown = "@" + (label or name)
            else:
                shown = label or target
            out.append(ENTITY_RE.sub(lambda e: {"amp": "&", "lt": "<", "gt": ">"}[e.group(1)], shown))
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


def sdk_check(payload):
    """The --oracle check. Each block goes through slack-sdk (PyPI), an implementation of Block
    Kit independent of the plugin and of check_blocks: Block.parse must know it, validate_json()
    and to_dict() (which validates every nested element and text object) must pass, and to_dict()
    must give back exactly the block that was sent, so a key slack-sdk does not know (Slack
    refuses unknown properties) or a value of the wrong kind shows. Every mrkdwn text is checked
    with shown_mrkdwn. Raises Invalid (-> invalid_blocks) or TextProblem (-> its code); returns
    what Slack shows, per text: {"text": fallback, "blocks": [[texts of block 0], ...]}."""
    import warnings
    from slack_sdk.models.blocks import Block
    from slack_sdk.web.internal_utils import _warn_if_message_text_content_is_missing

    shown = {"text": None, "blocks": []}
    for i, raw in enumerate(payload.get("blocks") or []):
        if not isinstance(raw, dict):
            raise Invalid(f"blocks[{i}]: not an object")
        try:
            block = Block.parse(raw)
            if block is None:
                raise Invalid(f"blocks[{i}]: slack-sdk knows no block of type {raw.get('type')!r}")
            block.validate_json()
            back = block.to_dict()
        except Invalid:
            raise
        except Exception as error:  # SlackObjectFormationError, or a shape slack-sdk cannot read
            raise Invalid(f"blocks[{i}]: slack-sdk: {type(error).__name__}: {error}")
        if back != raw:
            raise Invalid(f"blocks[{i}]: slack-sdk reads {json.dumps(raw, ensure_ascii=False)[:400]} "
                          f"as {json.dumps(back, ensure_ascii=False)[:400]}")
        texts = []

        def collect(obj, where):
            if isinstance(obj, dict):
                if obj.get("type") in ("plain_text", "mrkdwn") and isinstance(obj.get("text"), str):
                    texts.append(obj["text"] if obj["type"] == "plain_text" else shown_mrkdwn(obj["text"], where))
                    return
                for key, value in obj.items():
                    collect(value, f"{where}.{key}")
            elif isinstance(obj, list):
                for j, value in enumerate(obj):
                    collect(value, f"{where}[{j}]")
        collect(raw, f"blocks[{i}]")
        shown["blocks"].append(texts)

    # The fallback text: slack-sdk warns when a message has no top-level text (notifications and
    # screen readers show it), and Slack cuts text after 40,000 characters (slack-sdk's Message
    # logs an error past that); both are refused here.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _warn_if_message_text_content_is_missing("chat.postMessage", payload)
    if caught:
        raise TextProblem("no_text", f"slack-sdk: {caught[0].message}")
    text = payload.get("text")
    if not isinstance(text, str):
        raise TextProblem("invalid_payload", "text is not a string")
    if len(text) > 40000:
        raise TextProblem("msg_too_long", f"text has {len(text)} characters; Slack keeps 40,000")
    if payload.get("mrkdwn", True) is not False:
        try:
            shown["text"] = shown_mrkdwn(text, "text")
        except Invalid as error:
            raise TextProblem("invalid_payload", str(error))
    else:
        shown["text"] = text
    return shown



def make_handler(secret, rate_limit, blocks_text_limit, oracle=False):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def answer(self, code, text, extra=()):
            data = text.encode()
            self.send_response(code)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/_received":
                data = json.dumps(received).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                return self.wfile.write(data)
            self.answer(404, "not found")

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                return self.answer(413, "request_too_large")
            body = self.rfile.read(length)
            parts = self.path.split("?", 1)[0].split("/")
            # ["", "services", team, bot, secret]
            if len(parts) == 5 and parts[1] == "services" and parts[2] == "TFAIL":
                status, code = int(parts[3]), parts[4]
                retry = [("Retry-After", "7")] if status in (429, 503) else []
                return self.answer(status, code if code != "garbage" else "<html>\x01 upstream says hi</html>", retry)
            if len(parts) != 5 or parts[1] != "services" or parts[2] != TEAM or parts[3] != BOT:
                return self.answer(404, "no_service")
            if parts[4] != secret:
                return self.answer(403, "invalid_token")

            now = time.monotonic()
            with lock:
                while sent_times and now - sent_times[0] >= 60:
                    sent_times.popleft()
                sent_times.append(now)
                over = rate_limit > 0 and len(sent_times) > rate_limit
                wait = int(60 - (now - sent_times[0])) + 1 if over else 0
            if over:
                return self.answer(429, "rate_limited", [("Retry-After", str(wait))])
            if not self.headers.get("Content-Type", "").lower().startswith("application/json"):
                return self.answer(400, "invalid_payload")
            try:
                payload = json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return self.answer(400, "invalid_payload")
            if not isinstance(payload, dict):
                return self.answer(400, "invalid_payload")
            text, blocks = payload.get("text"), payload.get("blocks")
            if not (isinstance(text, str) and text.strip()) and not blocks:
                return self.answer(400, "no_text")
            if blocks is not None:
                try:
                    total = check_blocks(blocks)
                except Invalid as error:
                    sys.stderr.write(f"slack_mock: invalid_blocks: {error}\n")
                    return self.answer(400, "invalid_blocks")
                if total > blocks_text_limit:
                    return self.answer(400, "msg_blocks_too_long")
            shown = None
            if oracle:
                try:
                    shown = sdk_check(payload)
                except Invalid as error:
                    sys.stderr.write(f"slack_mock: oracle: invalid_blocks: {error}\n")
                    return self.answer(400, "invalid_blocks")
                except TextProblem as error:
                    sys.stderr.write(f"slack_mock: oracle: {error.code}: {error}\n")
                    return self.answer(400, error.code)
            with lock:
                received.append({"headers": {k.lower(): v for k, v in self.headers.items()}, "payload": payload,
                                 "shown": shown})
            self.answer(200, "ok")

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--secret", default="XXXXXXXXXXXXXXXXXXXXXXXX")
    parser.add_argument("--rate-limit", type=int, default=0)
    parser.add_argument("--blocks-text-limit", type=int, default=13000)
    parser.add_argument("--oracle", action="store_true")
    args = parser.parse_args()
    if args.oracle:
        import slack_sdk.models.blocks  # noqa: F401  (fail at start, not at the first message, if it is missing)
    serve(make_handler(args.secret, args.rate_limit, args.blocks_text_limit, args.oracle))


if __name__ == "__main__":
    main()
