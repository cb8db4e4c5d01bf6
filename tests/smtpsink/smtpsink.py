#!/usr/bin/env python3
"""smtpsink — a real SMTP server for the tests (Debian's python3-aiosmtpd):
every message accepted is written to DIR/<n>.eml (the DATA as received) with
its envelope in DIR/<n>.json ({"mail_from", "rcpt_tos", "ehlo"}), for the
tests to parse with the email package.

Recipients whose local part starts with "bounce" are refused (550, a
permanent failure); those starting with "flaky" get 451 (try again later)
the first two times, then are accepted.

With --tls-cert/--tls-key the server requires STARTTLS before anything
else; with --auth-file (one line "user:password", read at every AUTH, so a
test can change it) it requires AUTH (PLAIN or LOGIN, only over TLS) before
MAIL. The envelope records whether the session was TLS and who
authenticated ("tls", "auth").

  smtpsink.py --dir DIR --port PORT [--tls-cert PEM --tls-key PEM]
              [--auth-file F] [--watch-pidfile P]
"""
import argparse
import json
import os
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, d):
        self.dir = d
        self.n = 0
        self.flaky = {}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.split("@", 1)[0].lower()
        if local.startswith("bounce"):
            return "550 5.1.1 mailbox unavailable"
        if local.startswith("flaky"):
            with self.lock:
                self.flaky[address] = self.flaky.get(address, 0) + 1
                if self.flaky[address] <= 2:
                    return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.n += 1
            n = self.n
        base = os.path.join(self.dir, f"{n:06d}")
        with open(base + ".eml.tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        with open(base + ".json", "w") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "ehlo": session.host_name, "tls": session.ssl is not None,
                       "auth": session.auth_data.login.decode()
                       if isinstance(session.auth_data, LoginPassword) else None}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"


def authenticator(path):
    def check(server, session, envelope, mechanism, data):
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        with open(path) as f:
            user, _, password = f.readline().rstrip("\r\n").partition(":")
        ok = data.login.decode() == user and data.password.decode() == password
        return AuthResult(success=ok, handled=False, auth_data=data if ok else None)
    return check


def watchdog(pidfile, d):
    gone_since = None
    while True:
        time.sleep(1)
        alive = False
        try:
            os.kill(int(open(pidfile).read().strip()), 0)
            alive = True
        except (OSError, ValueError):
            pass
        if not os.path.isdir(d):
            os._exit(0)
        if alive:
            gone_since = None
        elif gone_since is None:
            gone_since = time.time()
        elif time.time() - gone_since > 20:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--watch-pidfile")
    ap.add_argument("--tls-cert")
    ap.add_argument("--tls-key")
    ap.add_argument("--auth-file")
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    kw = {}
    if args.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.tls_cert, args.tls_key)
        kw.update(tls_context=ctx, require_starttls=True)
    if args.auth_file:
        kw.update(authenticator=authenticator(args.auth_file), auth_required=True,
                  auth_require_tls=True)
    ctl = Controller(Sink(args.dir), hostname="127.0.0.1", port=args.port,
                     server_hostname="smtpsink.test", decode_data=False, **kw)
    ctl.start()
    print(f"smtpsink listening port={args.port}", flush=True)
    if args.watch_pidfile:
        watchdog(args.watch_pidfile, args.dir)
    else:
        threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
