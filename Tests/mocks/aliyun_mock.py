#!/usr/bin/env python3
"""Mock Alibaba Cloud RPC endpoint (Dysmsapi SendSms and Dyvmsapi IvrCall / SingleCallByTts,
both 2017-05-25) for Herald's aliyun-sms and aliyun-voice plugins.

It checks what Alibaba's gateway checks and answers with Alibaba's real bodies:

    aliyun_mock.py [--access-key-id ID] [--secret S] [--oracle] [--clock-skew SECONDS]
                   [--fail CODE[:HTTP[:COUNT]]] [--limit-message TEXT]
                   [--sign-name NAME] [--template-code CODE] [--template-vars a,b] [--param-max N]

Prints "PORT <n>" first (flushed); exits when stdin closes. Loopback only.

    GET|POST /?<params>                         an RPC call, signed with either
      V3  Authorization: ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<list>,Signature=<hex>
          with x-acs-action, x-acs-version, x-acs-date, x-acs-signature-nonce,
          x-acs-content-sha256. The canonical request is rebuilt from what arrived: the method,
          "/", the query (decoded, sorted, RFC 3986-encoded), every signed header as sent (Host
          with its port), the hashed payload. Every host / content-type / x-acs-* header must be
          signed (IncompleteSignature), x-acs-content-sha256 must be the body's hash.
      V2  Signature, SignatureMethod=HMAC-SHA1, SignatureVersion=1.0, SignatureNonce, Timestamp,
          AccessKeyId, Action, Version in the query (or a form body): the RPC string-to-sign
          METHOD&%2F&pct(sorted canonical query), HMAC-SHA1 with key secret + "&".
      Both: an unknown key id -> 404 InvalidAccessKeyId.NotFound; a wrong signature -> 400
      SignatureDoesNotMatch (with the server string-to-sign, as Alibaba does); a timestamp more
      than 15 minutes from the mock's clock -> 400 InvalidTimeStamp.Expired; a reused nonce ->
      400 SignatureNonceUsed. --oracle checks every signature a second time with Alibaba's own
      SDK helper (alibabacloud_tea_openapi.utils.Utils.get_authorization / get_rpcsignature):
      the request passes only when both agree; GET /_stats counts the checks and disagreements.
      --clock-skew S runs the mock's clock S seconds ahead (its Date header too).
    Business checks (answered with HTTP 200 and a Code, like Alibaba):
      SendSms: PhoneNumbers / SignName / TemplateCode present (MissingPhoneNumbers ...), each
      number mainland (11 digits from 1, optional +86/0086/86) or +<country><number>
      (isv.MOBILE_NUMBER_ILLEGAL), TemplateParam a JSON object of strings
      (isv.INVALID_JSON_PARAM), --template-vars all present (isv.TEMPLATE_MISSING_PARAMETERS),
      each value at most --param-max characters (default 35; isv.PARAM_LENGTH_LIMIT),
      --sign-name / --template-code when given (isv.SMS_SIGNATURE_ILLEGAL / isv.SMS_TEMPLATE_ILLEGAL).
      IvrCall: CalledNumber (mainland, no country code), CalledShowNumber, StartCode,
      MenuKeyMap.N.Key / .Code pairs, OutId at most 15 bytes, PlayTimes 1-3, StartTtsParams a
      JSON object of strings under 250 characters in all.
      --fail CODE[:HTTP[:COUNT]] answers the next COUNT (default: every) correctly signed call
      with that error instead (HTTP defaults: 200 for isv./isp. codes, 503 for
      ServiceUnavailable, 500 for InternalError, 400 otherwise). Repeatable; used in order.
    Success: {"Code":"OK","Message":"OK","BizId":"...","RequestId":"..."} (CallId for voice).
    GET /_received   the accepted calls: {"action", "signature_version", "host", "params", "oracle"}
    GET /_stats      {"oracle_checks": n, "oracle_disagreements": n}
"""
import argparse
import base64
import calendar
import hashlib
import hmac
import json
import re
import threading
import time
import urllib.parse
import uuid
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from mockserver import serve

API_VERSION = "2017-05-25"
ACTIONS = {"SendSms": "dysmsapi", "IvrCall": "dyvmsapi", "SingleCallByTts": "dyvmsapi"}

# Alibaba's own messages for the codes the mock can answer (gateway ones in English, business
# ones in Chinese, as the services send them).
MESSAGES = {
    "isv.BUSINESS_LIMIT_CONTROL": "触发天级流控Permits:10",
    "isv.MOBILE_NUMBER_ILLEGAL": "非法手机号",
    "isv.AMOUNT_NOT_ENOUGH": "账户余额不足",
    "isv.SMS_TEMPLATE_ILLEGAL": "模板不合法(不存在或被拉黑)",
    "isv.SMS_SIGNATURE_ILLEGAL": "签名不合法(不存在或被拉黑)",
    "isv.INVALID_JSON_PARAM": "JSON参数不合法，只接受字符串值",
    "isv.TEMPLATE_MISSING_PARAMETERS": "模板缺少变量",
    "isv.PARAM_LENGTH_LIMIT": "参数超出长度限制",
    "isv.OUT_OF_SERVICE": "业务停机",
    "isp.SYSTEM_ERROR": "系统错误",
    "isp.GATEWAY_ERROR": "网关错误",
    "Throttling.User": "Request was denied due to user flow control.",
    "Throttling.Api": "Request was denied due to api flow control.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "InternalError": "The request processing has failed due to some unknown error, exception or failure.",
    "SignatureDoesNotMatch": "Specified signature is not matched with our calculation.",
    "IncompleteSignature": "The request signature does not conform to Aliyun standards.",
    "InvalidAccessKeyId.NotFound": "Specified access key is not found.",
    "InvalidTimeStamp.Expired": "Specified time stamp or date value is expired.",
    "InvalidTimeStamp.Format": "Specified time stamp or date value is not well formatted.",
    "SignatureNonceUsed": "Specified signature nonce was used already.",
}

received = []
stats = {"oracle_checks": 0, "oracle_disagreements": 0}
nonces = {}
lock = threading.Lock()


class Refusal(Exception):
    def __init__(self, code, http=None, message=None):
        super().__init__(code)
        self.code = code
        self.http = http if http is not None else default_http(code)
        self.message = message if message is not None else MESSAGES.get(code, code)


def default_http(code):
    if code.startswith(("isv.", "isp.")):
        return 200
    if code == "ServiceUnavailable":
        return 503
    if code == "InternalError":
        return 500
    if code == "InvalidAccessKeyId.NotFound":
        return 404
    return 400


def pct(s):
    return urllib.parse.quote(s, safe="~", encoding="utf-8")


def canonical_query(params):
    return "&".join(f"{pct(k)}={pct(v)}" for k, v in sorted(params.items()))


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


class Oracle:
    """Alibaba's own signing helpers from the SDK (PyPI alibabacloud-tea-openapi)."""

    def __init__(self):
        from alibabacloud_tea_openapi.utils import Utils
        self.utils = Utils

    def v3(self, method, query, signed_headers, payload_hash, ak, secret):
        class Req:
            pass
        req = Req()
        req.method, req.pathname, req.query, req.headers = method, "/", dict(query), dict(signed_headers)
        return self.utils.get_authorization(req, "ACS3-HMAC-SHA256", payload_hash, ak, secret)

    def v2(self, params, method, secret):
        return self.utils.get_rpcsignature(dict(params), method, secret)


def make_handler(args):
    oracle = Oracle() if args.oracle else None
    failures = []
    for spec in args.fail:
        parts = spec.split(":")
        code = parts[0]
        http = int(parts[1]) if len(parts) > 1 and parts[1] else None
        count = int(parts[2]) if len(parts) > 2 else None
        failures.append([code, http, count])

    def now():
        return time.time() + args.clock_skew

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def date_time_string(self, timestamp=None):
            return formatdate(now() if timestamp is None else timestamp, usegmt=True)

        def send(self, http, document):
            body = json.dumps(document, ensure_ascii=False).encode()
            self.send_response(http)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            path = urllib.parse.urlsplit(self.path).path
            if path == "/_received":
                with lock:
                    return self.send(200, received)
            if path == "/_stats":
                with lock:
                    return self.send(200, stats)
            self.handle_rpc(b"")

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            self.handle_rpc(self.rfile.read(length) if length else b"")

        def handle_rpc(self, body):
            request_id = str(uuid.uuid4()).upper()
            host = self.headers.get("Host", "")
            try:
                split = urllib.parse.urlsplit(self.path)
                if split.path != "/":
                    raise Refusal("InvalidAction.NotFound", 404, "Specified api is not found, please check your url and method.")
                params = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
                auth = self.headers.get("Authorization", "")
                if auth.startswith("ACS3-HMAC-SHA256 "):
                    version, action = "v3", self.verify_v3(auth, params, body, host)
                else:
                    ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
                    if body and ctype == "application/x-www-form-urlencoded":
                        params.update(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
                    version, action = "v2", self.verify_v2(params)
                    params = {k: v for k, v in params.items() if k not in (
                        "AccessKeyId", "Action", "Format", "SignatureMethod", "SignatureNonce", "SignatureVersion",
                        "Timestamp", "Version", "Signature")}
                with lock:
                    for f in failures:
                        if f[2] is None or f[2] > 0:
                            if f[2] is not None:
                                f[2] -= 1
                            code, http = f[0], f[1]
                            message = args.limit_message if code == "isv.BUSINESS_LIMIT_CONTROL" and args.limit_message else None
                            raise Refusal(code, http, message)
                if action == "SendSms":
                    result = self.send_sms(params)
                else:
                    result = self.ivr_call(params) if action == "IvrCall" else self.tts_call(params)
                with lock:
                    received.append({"action": action, "signature_version": version, "host": host, "params": params,
                                     "oracle": oracle is not None})
                result["RequestId"] = request_id
                self.send(200, result)
            except Refusal as r:
                document = {"RequestId": request_id, "Code": r.code, "Message": r.message}
                if r.http != 200:
                    document["HostId"] = host.split(":")[0]
                    document["Recommend"] = f"https://api.aliyun.com/troubleshoot?q={r.code}&product=Dysmsapi"
                self.send(r.http, document)

        # ---- signatures ------------------------------------------------------------------------

        def check_fresh(self, stamp, nonce):
            try:
                when = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
            except (ValueError, TypeError):
                raise Refusal("InvalidTimeStamp.Format")
            if abs(now() - when) > 15 * 60:
                raise Refusal("InvalidTimeStamp.Expired")
            with lock:
                cutoff = now() - 30 * 60
                for n in [n for n, t in nonces.items() if t < cutoff]:
                    del nonces[n]
                if not nonce or nonce in nonces:
                    raise Refusal("SignatureNonceUsed")
                nonces[nonce] = now()

        def verify_v3(self, auth, params, body, host):
            m = re.fullmatch(r"ACS3-HMAC-SHA256 Credential=([^,]+),SignedHeaders=([^,]+),Signature=([0-9a-f]{64})", auth)
            if not m:
                raise Refusal("IncompleteSignature")
            key_id, signed, signature = m.group(1), m.group(2).split(";"), m.group(3)
            if key_id != args.access_key_id:
                raise Refusal("InvalidAccessKeyId.NotFound")
            if signed != sorted(signed) or any(h != h.lower() for h in signed):
                raise Refusal("IncompleteSignature", 400, "SignedHeaders must be lower-case and sorted.")
            headers = {}
            for name, value in self.headers.items():
                headers.setdefault(name.lower(), []).append(value.strip())
            for name in headers:
                if (name in ("host", "content-type") or name.startswith("x-acs-")) and name not in signed:
                    raise Refusal("IncompleteSignature", 400, f"The header {name} must be signed.")
            for name in ("host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce", "x-acs-content-sha256"):
                if name not in signed:
                    raise Refusal("IncompleteSignature", 400, f"The header {name} is required and must be signed.")
            for name in signed:
                if name not in headers:
                    raise Refusal("IncompleteSignature", 400, f"The signed header {name} is missing.")
            one = {name: ",".join(sorted(headers[name])) for name in signed}
            if one["x-acs-content-sha256"] != sha256_hex(body):
                raise Refusal("SignatureDoesNotMatch", 400, "x-acs-content-sha256 is not the hash of the body.")
            action, version = one["x-acs-action"], one["x-acs-version"]
            if action not in ACTIONS:
                raise Refusal("InvalidAction.NotFound", 404, f"Specified api {action} is not found.")
            if version != API_VERSION:
                raise Refusal("InvalidVersion", 400, f"Specified parameter Version is not valid.")
            canonical = "\n".join([
                self.command, "/", canonical_query(params),
                "".join(f"{name}:{one[name]}\n" for name in signed),
                ";".join(signed), one["x-acs-content-sha256"]])
            sts = "ACS3-HMAC-SHA256\n" + sha256_hex(canonical.encode())
            expected = hmac.new(args.secret.encode(), sts.encode(), hashlib.sha256).hexdigest()
            own_ok = hmac.compare_digest(expected, signature)
            if oracle is not None:
                oracle_auth = oracle.v3(self.command, params, one, one["x-acs-content-sha256"], args.access_key_id, args.secret)
                oracle_ok = hmac.compare_digest(oracle_auth, auth)
                with lock:
                    stats["oracle_checks"] += 1
                    if oracle_ok != own_ok:
                        stats["oracle_disagreements"] += 1
                own_ok = own_ok and oracle_ok
            if not own_ok:
                raise Refusal("SignatureDoesNotMatch", 400, MESSAGES["SignatureDoesNotMatch"] + " server string to sign is:" + sts)
            self.check_fresh(one["x-acs-date"], one["x-acs-signature-nonce"])
            return action

        def verify_v2(self, params):
            for name in ("AccessKeyId", "Signature", "SignatureNonce", "Timestamp", "Action", "Version"):
                if not params.get(name):
                    raise Refusal(f"Missing{name}", 400, f"{name} is mandatory for this action.")
            if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
                raise Refusal("IncompleteSignature")
            if params["AccessKeyId"] != args.access_key_id:
                raise Refusal("InvalidAccessKeyId.NotFound")
            if params["Action"] not in ACTIONS:
                raise Refusal("InvalidAction.NotFound", 404, "Specified api is not found.")
            if params["Version"] != API_VERSION:
                raise Refusal("InvalidVersion", 400, "Specified parameter Version is not valid.")
            signed = {k: v for k, v in params.items() if k != "Signature"}
            sts = f"{self.command}&%2F&" + pct(canonical_query(signed))
            expected = base64.b64encode(hmac.new((args.secret + "&").encode(), sts.encode(), hashlib.sha1).digest()).decode()
            own_ok = hmac.compare_digest(expected, params["Signature"])
            if oracle is not None:
                oracle_ok = hmac.compare_digest(oracle.v2(signed, self.command, args.secret), params["Signature"])
                with lock:
                    stats["oracle_checks"] += 1
                    if oracle_ok != own_ok:
                        stats["oracle_disagreements"] += 1
                own_ok = own_ok and oracle_ok
            if not own_ok:
                raise Refusal("SignatureDoesNotMatch", 400, MESSAGES["SignatureDoesNotMatch"] + " server string to sign is:" + sts)
            self.check_fresh(params["Timestamp"], params["SignatureNonce"])
            return params["Action"]

        # ---- business checks -------------------------------------------------------------------

        @staticmethod
        def mainland(number, allow_country_code):
            n = number
            if allow_country_code:
                for prefix in ("+86", "0086"):
                    if n.startswith(prefix):
                        n = n[len(prefix):]
                        break
                else:
                    if n.startswith("86") and len(n) == 13:
                        n = n[2:]
            return bool(re.fullmatch(r"1\d{10}", n)) or bool(re.fullmatch(r"0\d{9,11}", n))

        @staticmethod
        def string_object(text, code):
            try:
                doc = json.loads(text)
            except ValueError:
                raise Refusal(code)
            if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
                raise Refusal(code)
            return doc

        def send_sms(self, p):
            for name in ("PhoneNumbers", "SignName", "TemplateCode"):
                if not p.get(name):
                    raise Refusal(f"Missing{name}", 400, f"{name} is mandatory for this action.")
            numbers = p["PhoneNumbers"].split(",")
            if len(numbers) > 1000:
                raise Refusal("isv.MOBILE_COUNT_OVER_LIMIT")
            for n in numbers:
                if not (self.mainland(n, True) or re.fullmatch(r"\+[1-9]\d{6,14}", n)):
                    raise Refusal("isv.MOBILE_NUMBER_ILLEGAL")
            if args.sign_name and p["SignName"] != args.sign_name:
                raise Refusal("isv.SMS_SIGNATURE_ILLEGAL")
            if args.template_code and p["TemplateCode"] != args.template_code:
                raise Refusal("isv.SMS_TEMPLATE_ILLEGAL")
            values = self.string_object(p["TemplateParam"], "isv.INVALID_JSON_PARAM") if "TemplateParam" in p else {}
            for var in filter(None, args.template_vars.split(",")):
                if var not in values:
                    raise Refusal("isv.TEMPLATE_MISSING_PARAMETERS")
            if any(len(v) > args.param_max for v in values.values()):
                raise Refusal("isv.PARAM_LENGTH_LIMIT")
            return {"Code": "OK", "Message": "OK", "BizId": f"{int(now() * 1000) % 10**15}^0"}

        def ivr_call(self, p):
            for name in ("CalledNumber", "CalledShowNumber", "StartCode"):
                if not p.get(name):
                    raise Refusal(f"Missing{name}", 400, f"{name} is mandatory for this action.")
            if not self.mainland(p["CalledNumber"], False):
                raise Refusal("isv.MOBILE_NUMBER_ILLEGAL")
            keys = sorted({m.group(1) for k in p for m in [re.fullmatch(r"MenuKeyMap\.(\d+)\.(Key|Code|TtsParams)", k)] if m})
            if not keys:
                raise Refusal("MissingMenuKeyMap", 400, "MenuKeyMap is mandatory for this action.")
            for i in keys:
                if not p.get(f"MenuKeyMap.{i}.Key") or not p.get(f"MenuKeyMap.{i}.Code"):
                    raise Refusal("InvalidParameter", 400, f"MenuKeyMap.{i} needs Key and Code.")
            if "OutId" in p and not 1 <= len(p["OutId"].encode()) <= 15:
                raise Refusal("InvalidParameter", 400, "OutId must be 1 to 15 bytes.")
            if "PlayTimes" in p and p["PlayTimes"] not in ("1", "2", "3"):
                raise Refusal("InvalidParameter", 400, "PlayTimes must be 1 to 3.")
            if "StartTtsParams" in p:
                values = self.string_object(p["StartTtsParams"], "isv.INVALID_JSON_PARAM")
                if sum(len(v) for v in values.values()) >= 250:
                    raise Refusal("isv.PARAM_LENGTH_LIMIT")
            return {"Code": "OK", "Message": "OK", "CallId": f"116012354148^{int(now() * 1000) % 10**11}"}

        def tts_call(self, p):
            for name in ("CalledNumber", "TtsCode"):
                if not p.get(name):
                    raise Refusal(f"Missing{name}", 400, f"{name} is mandatory for this action.")
            return {"Code": "OK", "Message": "OK", "CallId": f"116012354148^{int(now() * 1000) % 10**11}"}

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--access-key-id", default="testid")
    parser.add_argument("--secret", default="testsecret")
    parser.add_argument("--oracle", action="store_true")
    parser.add_argument("--clock-skew", type=float, default=0.0)
    parser.add_argument("--fail", action="append", default=[])
    parser.add_argument("--limit-message", default="")
    parser.add_argument("--sign-name", default="")
    parser.add_argument("--template-code", default="")
    parser.add_argument("--template-vars", default="")
    parser.add_argument("--param-max", type=int, default=35)
    serve(make_handler(parser.parse_args()))


if __name__ == "__main__":
    main()
