#!/usr/bin/env python3
"""suite_up — starts a throw-away suite for a benchmark on free ports (never
make run's fixed ones) and prints shell variables (GATEWAY, AUTH_PORT, TOKEN
of a registered account); `down` stops it and removes its directory. A
failed start stops whatever it started before exiting 1. The gateway's rate
limit is lifted for the run."""
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
        if os.path.exists(os.path.join(base, "ports.json")):
            s = suite_mod.Suite(base, persistent=True)
            s.stop_all()
            s.destroy()
        return
    os.environ["CAPLAT_GATEWAY_RATE"] = "1000000"
    os.environ["CAPLAT_GATEWAY_BURST"] = "1000000"
    os.environ["CAPLAT_LOG_LEVEL"] = "warn"
    s = suite_mod.Suite(base, persistent=True, fixed_ports=False)
    try:
        s.start_all()
    except suite_mod.SuiteError as e:
        print(f"suite_up: {e}", file=sys.stderr)
        s.stop_all()
        sys.exit(1)
    api = Api(s)
    phone = new_phone()
    api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "register"})
    r = api.post("/api/v1/auth/register", {"phone": phone, "sms_code": sms_code(s, phone, "register"),
                                           "password": "abc12345"})
    print(f"GATEWAY={s.gateway}\nGATEWAY_PORT={s.ports['gateway']}\nAUTH_PORT={s.ports['auth']}"
          f"\nTOKEN={r.json['token']}\nPG_PORT={s.ports['postgres']}\nPG_ADMIN_PW={s.secrets['db_admin']}")
    if "--bind" in sys.argv:
        # A bound SM2 and a bound RSA lock, so logins answer "ok".
        from client import issue_cert, pki, ukey
        for alg in ("sm2", "rsa"):
            name = issue_cert(s, alg, "personal", "压测")
            ch = api.post("/api/v1/auth/ca/challenge", {}).json
            sig = ukey(s, "sign", pki(s, name, "key"), ch["nonce"])
            r = api.post("/api/v1/auth/ca/login", {"challenge_id": ch["challenge_id"],
                                                   "certificate": open(pki(s, name)).read(), "signature": sig})
            phone = new_phone()
            api.post("/api/v1/auth/sms", {"phone": phone, "purpose": "bind"})
            api.post("/api/v1/auth/ca/bind", {"bind_token": r.json["bind_token"], "phone": phone,
                                             "sms_code": sms_code(s, phone, "bind")})
            print(f"LOCK_{alg.upper()}={pki(s, name, 'x')[:-len('.x.pem')]}")


if __name__ == "__main__":
    main()
