"""A real SMTP server on 127.0.0.1 for the email plugin's tests, built on aiosmtpd.

Three listeners share one handler:
  starttls  STARTTLS required before MAIL, AUTH (PLAIN, LOGIN) required, only after STARTTLS
  smtps     TLS from the first byte (implicit TLS, the smtps:// port), AUTH required
  plain     no TLS at all, no AUTH: a local relay, for allow_plaintext
The TLS certificate is self-signed for 127.0.0.1 and localhost, made at start with the openssl
command line (scripts/setup.sh installs it); tests point the integration's ca_file at it.

Recipients: an address at refuse.example gets 550 at RCPT TO, one at greylist.example 450;
every other address is accepted.

Each accepted message is parsed with Python's email package (policy=default) and recorded:
decoded Subject, From/To display names and addresses, Date, Message-ID, header names, the
content types of the leaf parts in order with their decoded text, parser defects, and raw
facts (longest line, bare LF/CR count).

Prints "PORT <n>" (the HTTP inspection port) first, then serves until stdin closes:
  GET /_ports     {"starttls": n, "smtps": n, "plain": n, "ca_file": path}
  GET /_received  the recorded messages, oldest first

    smtp_mock.py [--user herald] [--password s3cret]
"""
import argparse
import asyncio
import email
import email.policy
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mockserver import serve  # noqa: E402

REFUSE_DOMAIN = "refuse.example"
GREYLIST_DOMAIN = "greylist.example"

received = []
received_lock = threading.Lock()
ports = {}


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1 and localhost; returns (cert, key) paths."""
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
         "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-addext", "basicConstraints=critical,CA:TRUE"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def raw_facts(raw):
    lines = raw.split(b"\r\n")
    bare_lf = sum(1 for line in lines if b"\n" in line)
    bare_cr = sum(1 for line in lines if b"\r" in line)
    return {"max_line": max((len(line) for line in lines), default=0), "bare_lf": bare_lf, "bare_cr": bare_cr}


def raw_header_lines(raw, name):
    """The physical lines of header `name` as sent (folded continuation lines included)."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    out, taking = [], False
    for line in head:
        if line[:1] in (b" ", b"\t"):
            if taking:
                out.append(line.decode("latin-1"))
            continue
        taking = line.lower().startswith(name.lower().encode() + b":")
        if taking:
            out.append(line.decode("latin-1"))
    return out


def describe(raw, envelope, session, listener, tls):
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    defects = [type(d).__name__ for d in msg.defects]
    parts = []
    for part in msg.walk():
        defects += [type(d).__name__ for d in part.defects]
        if part.is_multipart():
            continue
        try:
            text = part.get_content()
        except Exception as error:  # recorded, so the test shows it
            text = f"<undecodable: {error}>"
        parts.append({"type": part.get_content_type(), "charset": part.get_content_charset(),
                      "cte": part.get("Content-Transfer-Encoding"), "text": text})

    def mailboxes(header):
        value = msg[header]
        if value is None:
            return []
        return [{"name": a.display_name, "address": a.addr_spec} for a in value.addresses]

    date = msg["Date"]
    return {
        "listener": listener,
        "tls": tls,
        "auth_login": session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None,
        "auth_mechanism": getattr(session, "herald_mechanism", None),
        "mail_from": envelope.mail_from,
        "rcpt_tos": list(envelope.rcpt_tos),
        "subject": str(msg["Subject"]) if msg["Subject"] is not None else None,
        "subject_lines": raw_header_lines(raw, "Subject"),
        "from": mailboxes("From"),
        "to": mailboxes("To"),
        "date": str(date) if date is not None else None,
        "date_ok": date is not None and getattr(date, "datetime", None) is not None,
        "message_id": str(msg["Message-ID"]) if msg["Message-ID"] is not None else None,
        "mime_version": str(msg["MIME-Version"]) if msg["MIME-Version"] is not None else None,
        "content_type": msg.get_content_type(),
        "header_names": list(msg.keys()),
        "parts": parts,
        "defects": defects,
        **raw_facts(raw),
    }


class Handler:
    def __init__(self, listener):
        self.listener = listener

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = address.rsplit("@", 1)[-1].lower()
        if domain == REFUSE_DOMAIN:
            return "550 5.1.1 Recipient address rejected: User unknown"
        if domain == GREYLIST_DOMAIN:
            return "450 4.2.0 Recipient address rejected: Greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        tls = server._tls_protocol is not None or server.transport.get_extra_info("ssl_object") is not None
        record = describe(envelope.original_content, envelope, session, self.listener, tls)
        with received_lock:
            received.append(record)
            number = len(received)
        return f"250 2.0.0 Ok: queued as MOCK{number}"


def authenticator_for(user, password):
    def authenticate(server, session, envelope, mechanism, auth_data):
        session.herald_mechanism = mechanism
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == user.encode() and auth_data.password == password.encode()
        # handled=False: aiosmtpd then answers "535 5.7.8" itself (the default, True, answers nothing).
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)
    return authenticate


class Inspect(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/_ports":
            body = json.dumps(ports).encode()
        elif self.path == "/_received":
            with received_lock:
                body = json.dumps(received, ensure_ascii=False).encode()
        else:
            self.send_response(404)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--user", default="herald")
    parser.add_argument("--password", default="s3cret")
    args = parser.parse_args()

    directory = tempfile.mkdtemp(prefix="herald-smtp-mock-")
    cert, key = make_certificate(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    authenticate = authenticator_for(args.user, args.password)

    loop = asyncio.new_event_loop()
    factories = {
        "starttls": (lambda: SMTP(Handler("starttls"), hostname="mock.herald.test", tls_context=context, require_starttls=True,
                                  auth_required=True, auth_require_tls=True, authenticator=authenticate), None),
        # Implicit TLS: the transport is TLS already, so AUTH needs no STARTTLS here.
        "smtps": (lambda: SMTP(Handler("smtps"), hostname="mock.herald.test", auth_required=True, auth_require_tls=False,
                               authenticator=authenticate), context),
        "plain": (lambda: SMTP(Handler("plain"), hostname="mock.herald.test"), None),
    }
    for name, (factory, tls) in factories.items():
        server = loop.run_until_complete(loop.create_server(factory, "127.0.0.1", 0, ssl=tls))
        ports[name] = server.sockets[0].getsockname()[1]
    ports["ca_file"] = cert
    threading.Thread(target=loop.run_forever, daemon=True).start()
    try:
        serve(Inspect)
    finally:
        for name in ("cert.pem", "key.pem"):
            try:
                os.unlink(os.path.join(directory, name))
            except OSError:
                pass
        try:
            os.rmdir(directory)
        except OSError:
            pass


if __name__ == "__main__":
    main()
