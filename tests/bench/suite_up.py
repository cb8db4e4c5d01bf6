#!/usr/bin/env python3
"""suite_up — starts a throw-away suite for a benchmark and prints shell
variables (GATEWAY, AUTH_PORT, TOKEN of a registered account); `down`
stops it. The gateway's rate limit is lifted for the run."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
import suite as suite_mod  # noqa: E402
from client import Api, new_phone, sms_code  # noqa: E402


def main():
    cmd, base = sys.argv[1], sys.argv[2]
    if cmd == "down":
        suite_mod.Suite(base, persistent=True).stop_all()
        return
    os.environ["CAPLAT_GATEWAY_RATE"] = "1000000"
    os.environ["CAPLAT_GATEWAY_BURST"] = "1000000"
    os.environ["CAPLAT_LOG_LEVEL"] = "warn"
    s = suite_mod.Suite(base, persistent=True)
    s.start_all()
    api = Api(s)
    phone = new_phone()
    api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"})
    r = api.post("/api/v1/auth/register", {"phone": phone, "sms_code": sms_code(s, phone, "register"),
                                           "password": "abc12345"})
    print(f"GATEWAY={s.gateway}\nAUTH_PORT={s.ports['auth']}\nTOKEN={r.json['token']}")


if __name__ == "__main__":
    main()
