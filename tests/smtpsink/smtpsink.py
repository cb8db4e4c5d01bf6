#!/usr/bin/env python3
"""smtpsink — a real SMTP server for the tests (Debian's python3-aiosmtpd):
every message accepted is written to DIR/<n>.eml (the DATA as received) with
its envelope in DIR/<n>.json ({"mail_from", "rcpt_tos", "ehlo"}), for the
tests to parse with the email package.

Recipients whose local part starts with "bounce" are refused (550, a
permanent failure); those starting with "flaky" get 451 (try again later)
the first two times, then are accepted.

  smtpsink.py --dir DIR --port PORT [--watch-pidfile P]
"""
import argparse
import json
import os
import sys
import threading
import time

from aiosmtpd.controller import Controller


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
                       "ehlo": session.host_name}, f)
        os.rename(base + ".eml.tmp", base + ".eml")
        return "250 Message accepted for delivery"


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
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    ctl = Controller(Sink(args.dir), hostname="127.0.0.1", port=args.port,
                     server_hostname="smtpsink.test", decode_data=False)
    ctl.start()
    print(f"smtpsink listening port={args.port}", flush=True)
    if args.watch_pidfile:
        watchdog(args.watch_pidfile, args.dir)
    else:
        threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
