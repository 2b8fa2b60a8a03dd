#!/usr/bin/env python3
"""Mock Tencent Cloud API 3.0 for Herald's tencent-sms and tencent-voice plugins: SMS SendSms
(2021-01-11) and VMS SendTtsVoice (2020-09-02) on one loopback port.

    tencent_mock.py [--secret-id ID] [--secret-key KEY] [--oracle] [--skew S] [--fail CODE[:N]] ...

Prints "PORT <n>" first; exits when stdin closes.

    POST /   (X-TC-Action: SendSms or SendTtsVoice)
        Checks what Tencent checks, in Tencent's order, and answers as Tencent does: HTTP 200
        with {"Response": {..., "RequestId": "<uuid>"}}, errors as Response.Error.{Code,Message}.
          - Content-Type application/json, X-TC-Action/-Version/-Timestamp/-Region present,
            the version matching the action                     -> MissingParameter / NoSuchVersion
          - Authorization "TC3-HMAC-SHA256 Credential=<id>/<date>/<service>/tc3_request,
            SignedHeaders=<list>, Signature=<hex>" well formed    -> AuthFailure.InvalidAuthorization
          - SecretId known                                        -> AuthFailure.SecretIdNotFound
          - X-TC-Timestamp within 5 minutes of the mock's clock   -> AuthFailure.SignatureExpire
          - the signature, recomputed over the canonical request
            (signed headers as sent, the Host header as sent,
            port included; hashed payload; credential scope date
            = the timestamp's UTC date; service = the action's)   -> AuthFailure.SignatureFailure
          - with --oracle, the same signature recomputed by the
            official SDK (tencentcloud-sdk-python-common:
            AbstractClient._get_tc3_signature, Sign.sign_tc3); a
            disagreement answers HTTP 500 "oracle mismatch"
          - SendSms: PhoneNumberSet (1-200 strings), SmsSdkAppId, TemplateId, SignName (mainland),
            TemplateParamSet (strings, each within --param-max characters, as many as
            --template-vars when given); per number: E.164 or IncorrectPhoneNumber, the code
            --number-code gives, else "Ok"
          - SendTtsVoice: TemplateId, TemplateParamSet, CalledNumber (E.164), VoiceSdkAppid,
            PlayTimes 1-3; answers SendStatus.CallId
    GET /_received   JSON list of {"action", "headers", "payload"} of the requests answered with
                     success (SendSms: at least one "Ok"), in order.
    GET /_all        JSON list of {"action", "code"} of every POST (code "" for success).

Test hooks (not Tencent's):
    --fail CODE[:N]       the first N authentic requests (all when N is 0 or absent) answer the
                          request-level error CODE (RequestLimitExceeded, InternalError, ...)
    --http-status S[:N]   the first N requests get HTTP S with an HTML body (a failing gateway)
    --number-code NUM=CODE  SendSms: number NUM gets per-number CODE (repeatable); add ":N" to
                          CODE to give it only the first N times
    --skew S              the mock's clock runs S seconds ahead (Date header included), for the
                          SignatureExpire flow
"""
import argparse
import datetime
import hashlib
import hmac
import json
import re
import threading
import time
import types
import uuid
from http.server import BaseHTTPRequestHandler
from mockserver import serve

DOC_ID = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
DOC_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
ACTIONS = {"SendSms": ("sms", "2021-01-11"), "SendTtsVoice": ("vms", "2020-09-02")}
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
AUTH = re.compile(r"^TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([a-z]+)/tc3_request, SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")

MESSAGES = {
    "AuthFailure.SignatureFailure": "The provided credentials could not be validated. Please check your signature is correct.",
    "AuthFailure.SecretIdNotFound": "The SecretId is not found, please ensure that your SecretId is correct.",
    "AuthFailure.SignatureExpire": "Signature expired. Timestamp: {ts}. Server time: {now}.",
    "AuthFailure.InvalidAuthorization": "Authorization header is invalid.",
    "RequestLimitExceeded": "Your current request times exceeds the limit, please try again later.",
    "InternalError": "An internal error has occurred. Retry your request, but if the problem persists, contact us.",
    "InternalError.Timeout": "Request timed out, please try again.",
    "FailedOperation.InsufficientBalanceInSmsPackage": "insufficient balance in SMS package",
    "FailedOperation.TemplateIncorrectOrUnapproved": "template is not approved or request content does not match the approved template content",
    "FailedOperation.SignatureIncorrectOrUnapproved": "signature format is incorrect or signature is not approved",
    "FailedOperation.TemplateParamSetNotMatchApprovedTemplate": "the number of template parameters does not match the template",
    "InvalidParameterValue.TemplateParameterLengthLimit": "the length of a single template variable exceeds the limit",
    "UnauthorizedOperation.SmsSdkAppIdVerifyFail": "SmsSdkAppId verification failed",
    "UnauthorizedOperation.VoiceSdkAppidVerifyFail": "VoiceSdkAppid verification failed",
    "InvalidParameterValue.CalledNumberVerifyFail": "called number {number} verification failed",
    "FailedOperation.InsufficientBalanceInVoicePackage": "insufficient balance in voice package",
    "LimitExceeded.PhoneNumberDailyLimit": "the number of SMS messages sent to {number} from a single mobile number every day exceeds the upper limit",
    "LimitExceeded.PhoneNumberThirtySecondLimit": "the number of SMS messages sent to {number} within 30 seconds exceeds the upper limit",
    "InvalidParameterValue.IncorrectPhoneNumber": "incorrect mobile number format: {number}",
    "FailedOperation.PhoneNumberInBlacklist": "the number {number} is in the blacklist",
    "MissingParameter": "The request is missing a required parameter `{name}`.",
    "NoSuchVersion": "The requested version `{name}` of API is not supported.",
    "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber": "the request contains both mainland China and international numbers",
    "InvalidParameter": "parameter `{name}` is invalid",
}

received, everything = [], []
lock = threading.Lock()


def message(code, **fields):
    text = MESSAGES.get(code, "something new went wrong")
    try:
        return text.format(**fields)
    except (KeyError, IndexError):
        return text


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def hmac256(key, msg):
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def own_signature(secret_key, method, headers, signed, payload, timestamp, date, service):
    """The mock's own TC3 implementation: canonical request over the signed headers as sent."""
    canonical_headers = "".join(f"{name}:{headers.get(name, '').strip().lower()}\n" for name in signed)
    canonical = "\n".join([method, "/", "", canonical_headers, ";".join(signed), sha256_hex(payload)])
    string_to_sign = "\n".join(["TC3-HMAC-SHA256", timestamp, f"{date}/{service}/tc3_request", sha256_hex(canonical.encode("utf-8"))])
    k = hmac256(("TC3" + secret_key).encode("utf-8"), date)
    k = hmac256(k, service)
    k = hmac256(k, "tc3_request")
    return hmac.new(k, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest(), string_to_sign


def oracle_signature(secret_key, headers, signed, payload, date, service, string_to_sign):
    """The official SDK's answer. For content-type;host (what the SDK signs) it runs the SDK's own
    request-signing path on a request object built from what arrived; otherwise Sign.sign_tc3."""
    from tencentcloud.common.abstract_client import AbstractClient
    from tencentcloud.common.sign import Sign
    if signed == ["content-type", "host"]:
        req = types.SimpleNamespace(method="POST", uri="/", data=payload,
                                    header={"Content-Type": headers.get("content-type", ""), "Host": headers.get("host", ""),
                                            "X-TC-Timestamp": headers.get("x-tc-timestamp", "")})
        return AbstractClient._get_tc3_signature(None, None, req, date, service, secret_key)
    return Sign.sign_tc3(secret_key, date, service, string_to_sign)


def make_handler(args):
    fail_left = {"n": args.fail_count}
    http_left = {"n": args.http_count}
    number_codes = {}
    for spec in args.number_code:
        number, _, code = spec.partition("=")
        code, _, times = code.partition(":")
        number_codes[number] = [code, int(times) if times else 0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def date_time_string(self, timestamp=None):
            return super().date_time_string(time.time() + args.skew)

        def send_json(self, status, body, content_type="application/json"):
            data = json.dumps(body, ensure_ascii=False).encode("utf-8") if not isinstance(body, bytes) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def error(self, action, code, **fields):
            with lock:
                everything.append({"action": action, "code": code})
            self.send_json(200, {"Response": {"Error": {"Code": code, "Message": message(code, **fields)}, "RequestId": str(uuid.uuid4())}})

        def do_GET(self):
            with lock:
                if self.path == "/_received":
                    return self.send_json(200, list(received))
                if self.path == "/_all":
                    return self.send_json(200, list(everything))
            self.send_json(404, {"error": "not found"})

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            payload = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            action = headers.get("x-tc-action", "")
            with lock:
                if http_left["n"] != 0 and args.http_status:
                    http_left["n"] -= 1
                    everything.append({"action": action, "code": f"HTTP {args.http_status}"})
                    return self.send_json(args.http_status, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            if self.path != "/":
                return self.error(action, "InvalidParameter", name="path")
            if not headers.get("content-type", "").lower().startswith("application/json"):
                return self.error(action, "InvalidParameter", name="Content-Type")
            for name in ("x-tc-action", "x-tc-version", "x-tc-timestamp", "x-tc-region", "authorization"):
                if not headers.get(name):
                    return self.error(action, "MissingParameter", name=name)
            if action not in ACTIONS:
                return self.error(action, "InvalidAction")
            service, version = ACTIONS[action]
            if headers["x-tc-version"] != version:
                return self.error(action, "NoSuchVersion", name=headers["x-tc-version"])
            m = AUTH.match(headers["authorization"])
            if not m:
                return self.error(action, "AuthFailure.InvalidAuthorization")
            secret_id, date, scope_service, signed_text, signature = m.groups()
            if secret_id != args.secret_id:
                return self.error(action, "AuthFailure.SecretIdNotFound")
            ts = headers["x-tc-timestamp"]
            now = int(time.time() + args.skew)
            if not ts.isdigit() or abs(int(ts) - now) > 300:
                return self.error(action, "AuthFailure.SignatureExpire", ts=ts, now=now)
            signed = signed_text.split(";")
            expected_date = datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime("%Y-%m-%d")
            if "content-type" not in signed or "host" not in signed or signed != sorted(signed) or date != expected_date or scope_service != service:
                return self.error(action, "AuthFailure.SignatureFailure")
            mine, string_to_sign = own_signature(args.secret_key, "POST", headers, signed, payload, ts, date, service)
            if args.oracle:
                theirs = oracle_signature(args.secret_key, headers, signed, payload, date, service, string_to_sign)
                if theirs != mine:
                    with lock:
                        everything.append({"action": action, "code": "oracle mismatch"})
                    return self.send_json(500, {"error": f"oracle mismatch: mock {mine}, SDK {theirs}"})
            if not hmac.compare_digest(mine, signature):
                return self.error(action, "AuthFailure.SignatureFailure")
            with lock:
                if args.fail and fail_left["n"] != 0:
                    fail_left["n"] -= 1
                    code = args.fail
                else:
                    code = None
            if code:
                return self.error(action, code)
            try:
                body = json.loads(payload)
            except ValueError:
                return self.error(action, "FailedOperation.JsonParseFail" if action == "SendSms" else "InvalidParameter", name="body")
            if not isinstance(body, dict):
                return self.error(action, "InvalidParameter", name="body")
            if action == "SendSms":
                return self.send_sms(body, headers)
            return self.send_tts(body, headers)

        def check_params(self, action, body, limit):
            params = body.get("TemplateParamSet", [])
            if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
                return "InvalidParameter", {"name": "TemplateParamSet"}
            if args.template_vars is not None and len(params) != args.template_vars:
                return "FailedOperation.TemplateParamSetNotMatchApprovedTemplate", {}
            if limit and any(len(p) > limit for p in params):
                return "InvalidParameterValue.TemplateParameterLengthLimit", {}
            return None, {}

        def send_sms(self, body, headers):
            action = "SendSms"
            for name in ("PhoneNumberSet", "SmsSdkAppId", "TemplateId"):
                if name not in body:
                    return self.error(action, "MissingParameter", name=name)
            numbers = body["PhoneNumberSet"]
            if not isinstance(numbers, list) or not numbers or not all(isinstance(n, str) for n in numbers):
                return self.error(action, "InvalidParameter", name="PhoneNumberSet")
            if len(numbers) > 200:
                return self.error(action, "LimitExceeded.PhoneNumberCountLimit")
            if body["SmsSdkAppId"] != args.app_id:
                return self.error(action, "UnauthorizedOperation.SmsSdkAppIdVerifyFail")
            if body["TemplateId"] != args.template_id:
                return self.error(action, "FailedOperation.TemplateIncorrectOrUnapproved")
            mainland = [n.startswith("+86") for n in numbers]
            if any(mainland) and not all(mainland):
                return self.error(action, "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber")
            if any(mainland) and body.get("SignName") != args.sign:
                return self.error(action, "FailedOperation.SignatureIncorrectOrUnapproved")
            code, fields = self.check_params(action, body, args.param_max)
            if code:
                return self.error(action, code, **fields)
            results = []
            with lock:
                for number in numbers:
                    per = "Ok"
                    if not E164.match(number):
                        per = "InvalidParameterValue.IncorrectPhoneNumber"
                    elif number in number_codes:
                        spec = number_codes[number]
                        if spec[1] >= 0:
                            per = spec[0]
                            if spec[1] > 0:
                                spec[1] -= 1
                                if spec[1] == 0:
                                    spec[1] = -1
                    results.append({"SerialNo": f"5000:{uuid.uuid4().int % 10**28:028d}" if per == "Ok" else "",
                                    "PhoneNumber": number, "Fee": 1 if per == "Ok" else 0,
                                    "SessionContext": body.get("SessionContext", ""), "Code": per,
                                    "Message": "send success" if per == "Ok" else message(per, number=number),
                                    "IsoCode": "CN" if number.startswith("+86") else "XX"})
                everything.append({"action": action, "code": "", "results": [r["Code"] for r in results]})
                if any(r["Code"] == "Ok" for r in results):
                    received.append({"action": action, "headers": headers, "payload": body})
            self.send_json(200, {"Response": {"SendStatusSet": results, "RequestId": str(uuid.uuid4())}})

        def send_tts(self, body, headers):
            action = "SendTtsVoice"
            for name in ("TemplateId", "CalledNumber", "VoiceSdkAppid"):
                if name not in body:
                    return self.error(action, "MissingParameter", name=name)
            if body["VoiceSdkAppid"] != args.voice_app_id:
                return self.error(action, "UnauthorizedOperation.VoiceSdkAppidVerifyFail")
            if body["TemplateId"] != args.template_id:
                return self.error(action, "FailedOperation.TemplateIncorrectOrUnapproved")
            number = body["CalledNumber"]
            if not isinstance(number, str) or not E164.match(number):
                return self.error(action, "InvalidParameterValue.CalledNumberVerifyFail", number=number)
            if number in number_codes:
                return self.error(action, number_codes[number][0], number=number)
            play = body.get("PlayTimes", 2)
            if not isinstance(play, int) or not 1 <= play <= 3:
                return self.error(action, "InvalidParameter", name="PlayTimes")
            code, fields = self.check_params(action, body, 0)
            if code:
                return self.error(action, code, **fields)
            call_id = str(uuid.uuid1())
            with lock:
                everything.append({"action": action, "code": ""})
                received.append({"action": action, "headers": headers, "payload": body, "call_id": call_id})
            self.send_json(200, {"Response": {"SendStatus": {"CallId": call_id, "SessionContext": body.get("SessionContext", "")},
                                              "RequestId": str(uuid.uuid4())}})

    return Handler


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--secret-id", default=DOC_ID)
    p.add_argument("--secret-key", default=DOC_KEY)
    p.add_argument("--app-id", default="1400006666")
    p.add_argument("--voice-app-id", default="1400000000")
    p.add_argument("--template-id", default="449739")
    p.add_argument("--sign", default="Herald")
    p.add_argument("--template-vars", type=int, default=None)
    p.add_argument("--param-max", type=int, default=0, help="characters per template variable (0: no limit)")
    p.add_argument("--oracle", action="store_true")
    p.add_argument("--skew", type=int, default=0)
    p.add_argument("--fail", default="")
    p.add_argument("--http-status", default="")
    p.add_argument("--number-code", action="append", default=[])
    args = p.parse_args()
    code, _, count = args.fail.partition(":")
    args.fail, args.fail_count = code, int(count) if count and int(count) > 0 else -1
    status, _, count = args.http_status.partition(":")
    args.http_status, args.http_count = (int(status) if status else 0), (int(count) if count and int(count) > 0 else -1)
    if args.oracle:
        import tencentcloud.common.sign  # noqa: F401  (fail at start, not on the first request)
    serve(make_handler(args))


if __name__ == "__main__":
    main()
