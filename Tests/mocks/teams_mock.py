#!/usr/bin/env python3
"""Mock Microsoft Teams Workflows webhook (the Power Automate trigger "When a Teams webhook
request is received" behind the template "Post to a channel when a webhook request is received")
for Herald's teams plugin. Standard library only.

Like the real trigger it answers 202 Accepted as soon as the request is authorised and the body
is JSON; the flow then runs on its own, so a card Teams cannot post does NOT change the HTTP
answer: the mock files it under /_flow_failures instead of /_received. Error bodies use the
Azure Logic Apps envelope {"error":{"code":"...","message":"..."}}; the codes below are the ones
Logic Apps uses for these cases as far as public reports show (the exact wording is ASSUMED).

    teams_mock.py --workflow-id 0123abcd --sig AbCdEf [--rate-limit N] [--fail STATUS[:COUNT]]

Prints "PORT <n>" first; exits when stdin closes. The plugin's webhook_url:
    http://127.0.0.1:<n>/workflows/<id>/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=<sig>
(the Power Platform form /powerautomate/automations/direct/workflows/<id>/triggers/manual/paths/invoke works too)

Flags
    --workflow-id ID       another id gives 404 WorkflowNotFound
    --sig S                a missing sig gives 401 DirectApiAuthorizationRequired, a wrong one
                           401 DirectApiInvalidAuthorizationSignature
    --disabled             the flow is turned off: 409 WorkflowTriggerIsNotEnabled
    --max-bytes N          larger bodies get 413 MessageTooLarge "Request Entity too large" (default 28672)
    --rate-limit N         the N+1th request within 60 s gets 429 WorkflowRequestsThrottled with Retry-After
    --fail STATUS[:COUNT]  the next COUNT (default 1, 0 = always) requests get STATUS

Endpoints
    POST .../triggers/manual/paths/invoke?api-version=...&sig=...   202, with x-ms-workflow-run-id
    GET  /_received        cards the flow posted: headers, payload, "text" (visible TextBlock and
                           fact text, <at>..</at> resolved to @name), "actions" [(title, url)], "mentions"
    GET  /_flow_failures   requests accepted with 202 whose flow run failed, with the reason
    POST /_control         JSON {"fail": ["STATUS[:COUNT]", ...]} adds --fail rules
"""
import argparse
import json
import re
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler
from mockserver import serve

lock = threading.Lock()
received = []
flow_failures = []
sent_times = []
fail_rules = []

COLORS = {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"}
SIZES = {"Default", "Small", "Medium", "Large", "ExtraLarge"}
WEIGHTS = {"Default", "Lighter", "Bolder"}
SPACINGS = {"None", "Small", "Default", "Medium", "Large", "ExtraLarge", "Padding"}
ELEMENTS = {"TextBlock", "FactSet", "Container", "ColumnSet", "Image", "RichTextBlock", "ActionSet"}


class CardError(Exception):
    pass


def enum(value, allowed, where):
    if value is not None and (not isinstance(value, str) or value.lower() not in {a.lower() for a in allowed}):
        raise CardError(f"{where} must be one of {sorted(allowed)}")


def check_elements(elements, where, texts):
    if not isinstance(elements, list):
        raise CardError(f"{where} must be a list")
    for n, el in enumerate(elements):
        at = f"{where}[{n}]"
        if not isinstance(el, dict) or el.get("type") not in ELEMENTS:
            raise CardError(f"{at}.type must be one of {sorted(ELEMENTS)}")
        if el["type"] == "TextBlock":
            if not isinstance(el.get("text"), str):
                raise CardError(f"{at}.text must be a string")
            enum(el.get("color"), COLORS, f"{at}.color")
            enum(el.get("size"), SIZES, f"{at}.size")
            enum(el.get("weight"), WEIGHTS, f"{at}.weight")
            enum(el.get("spacing"), SPACINGS, f"{at}.spacing")
            for key in ("wrap", "isSubtle"):
                if key in el and not isinstance(el[key], bool):
                    raise CardError(f"{at}.{key} must be a boolean")
            texts.append(el["text"])
        elif el["type"] == "FactSet":
            facts = el.get("facts")
            if not isinstance(facts, list) or not facts:
                raise CardError(f"{at}.facts must be a non-empty list")
            for f in facts:
                if not isinstance(f, dict) or not isinstance(f.get("title"), str) or not isinstance(f.get("value"), str):
                    raise CardError(f"{at}.facts need string title and value")
                texts.append(f"{f['title']}: {f['value']}")
        elif el["type"] == "Container":
            check_elements(el.get("items", []), f"{at}.items", texts)


def check_card(payload):
    """(texts, actions, mentions) of a Teams webhook payload, or raises CardError (the flow run fails)."""
    if not isinstance(payload, dict) or payload.get("type") != "message":
        raise CardError("the body must be {\"type\":\"message\",\"attachments\":[...]}")
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        raise CardError("attachments must be a non-empty list")
    att = attachments[0]
    if not isinstance(att, dict) or att.get("contentType") != "application/vnd.microsoft.card.adaptive":
        raise CardError("attachments[0].contentType must be application/vnd.microsoft.card.adaptive")
    card = att.get("content")
    if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
        raise CardError("attachments[0].content.type must be AdaptiveCard")
    version = card.get("version")
    if not isinstance(version, str) or not re.match(r"^1\.[0-5]$", version):
        raise CardError("the card version must be 1.0 to 1.5 (Teams renders up to 1.5)")
    texts = []
    check_elements(card.get("body", []), "body", texts)
    actions = []
    for n, action in enumerate(card.get("actions", []) or []):
        if not isinstance(action, dict) or not isinstance(action.get("title"), str):
            raise CardError(f"actions[{n}] needs a title")
        if action.get("type") in ("Action.Submit", "Action.Execute"):
            raise CardError(f"actions[{n}]: {action['type']} does not reach the sender from a flow-posted card")
        if action.get("type") != "Action.OpenUrl" or not isinstance(action.get("url"), str) or not re.match(r"^https?://\S+$", action["url"]):
            raise CardError(f"actions[{n}] must be Action.OpenUrl with an http(s) url")
        actions.append((action["title"], action["url"]))
    mentions = []
    ms = card.get("msteams", {})
    if not isinstance(ms, dict):
        raise CardError("msteams must be an object")
    for n, entity in enumerate(ms.get("entities", []) or []):
        if not isinstance(entity, dict) or entity.get("type") != "mention":
            raise CardError(f"msteams.entities[{n}].type must be mention")
        text, mentioned = entity.get("text"), entity.get("mentioned")
        if not isinstance(text, str) or not re.match(r"^<at>[^<>]+</at>$", text):
            raise CardError(f"msteams.entities[{n}].text must be <at>name</at>")
        if not isinstance(mentioned, dict) or not isinstance(mentioned.get("id"), str) or not isinstance(mentioned.get("name"), str):
            raise CardError(f"msteams.entities[{n}].mentioned needs id and name")
        if not any(text in t for t in texts):
            raise CardError(f"mention {text} does not appear in any TextBlock")
        mentions.append(mentioned)
    # <at>name</at> with an entity becomes a mention; without one it stays text (ASSUMED).
    known = {e.get("text") for e in ms.get("entities", []) or [] if isinstance(e, dict)}
    visible = [re.sub(r"<at>[^<>]*</at>", lambda t: "@" + t.group(0)[4:-5] if t.group(0) in known else t.group(0), t) for t in texts]
    return visible, actions, mentions


def make_handler(args):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def answer(self, code, body, content_type="application/json; charset=utf-8", extra=()):
            data = body.encode() if isinstance(body, str) else (json.dumps(body).encode() if body is not None else b"")
            self.send_response(code)
            if data:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def error(self, code, error_code, message, extra=()):
            self.answer(code, {"error": {"code": error_code, "message": message}}, extra=extra)

        def do_GET(self):
            if self.path == "/_received":
                with lock:
                    return self.answer(200, received)
            if self.path == "/_flow_failures":
                with lock:
                    return self.answer(200, flow_failures)
            self.error(404, "NotFound", "not found")

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
            m = re.match(r"^(?:/powerautomate/automations/direct)?/workflows/([^/]+)/triggers/manual/paths/invoke$", url.path)
            if not m:
                return self.error(404, "NotFound", "The requested resource was not found.")
            query = {k: v[-1] for k, v in urllib.parse.parse_qs(url.query).items()}
            if "api-version" not in query:
                return self.error(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
            if m.group(1) != args.workflow_id:
                return self.error(404, "WorkflowNotFound", f"The workflow '{m.group(1)}' could not be found.")
            if "sig" not in query:
                return self.error(401, "DirectApiAuthorizationRequired", "The request must be authenticated only by Shared Access scheme.")
            if query["sig"] != args.sig:
                return self.error(401, "DirectApiInvalidAuthorizationSignature", "The provided authentication signature is not valid.")
            if args.disabled:
                return self.error(409, "WorkflowTriggerIsNotEnabled", f"Could not find a trigger in workflow '{args.workflow_id}' that is enabled.")
            with lock:
                rule = fail_rules[0] if fail_rules else None
                if rule and rule[1] > 0:
                    rule[1] -= 1
                    if rule[1] == 0:
                        fail_rules.pop(0)
            if rule:
                if rule[0] == 502:
                    return self.answer(502, "<html><head><title>502 Bad Gateway</title></head></html>", "text/html")
                if rule[0] >= 500:
                    return self.error(rule[0], "ServiceUnavailable", "The server is currently unable to handle the request.")
                return self.error(rule[0], "ScriptedByMock", f"Error {rule[0]} scripted by the mock.")
            if args.rate_limit:
                now = time.monotonic()
                with lock:
                    sent_times[:] = [t for t in sent_times if now - t < 60]
                    limited = len(sent_times) >= args.rate_limit
                    wait = max(1, int(60 - (now - sent_times[0])) + 1) if limited else 0
                    if not limited:
                        sent_times.append(now)
                if limited:
                    return self.error(429, "WorkflowRequestsThrottled", "The number of requests exceeded the rate limit. Retry the request later.",
                                      extra=[("Retry-After", str(wait))])
            if len(body) > args.max_bytes:
                return self.error(413, "MessageTooLarge", "Request Entity too large")
            if (self.headers.get("Content-Type") or "").split(";")[0].strip().lower() != "application/json":
                return self.error(400, "InvalidRequestContent", "The request content type must be application/json.")
            try:
                payload = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as error:
                return self.error(400, "InvalidRequestContent", f"The request content is not valid and could not be deserialized: '{error}'.")
            run_id = "08584" + uuid.uuid4().hex[:20].upper()
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                texts, actions, mentions = check_card(payload)
            except CardError as error:
                with lock:
                    flow_failures.append({"run_id": run_id, "reason": str(error), "payload": payload})
            else:
                with lock:
                    received.append({"run_id": run_id, "headers": headers, "payload": payload, "text": texts, "actions": actions,
                                     "mentions": mentions})
            self.answer(202, None, extra=[("x-ms-workflow-run-id", run_id), ("x-ms-correlation-id", str(uuid.uuid4())),
                                          ("x-ms-tracking-id", str(uuid.uuid4()))])

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workflow-id", required=True)
    parser.add_argument("--sig", required=True)
    parser.add_argument("--disabled", action="store_true")
    parser.add_argument("--max-bytes", type=int, default=28 * 1024)
    parser.add_argument("--rate-limit", type=int, default=0)
    parser.add_argument("--fail", action="append", default=[])
    args = parser.parse_args()
    for rule in args.fail:
        status, _, count = rule.partition(":")
        fail_rules.append([int(status), int(count or 1)])
    serve(make_handler(args))


if __name__ == "__main__":
    main()
