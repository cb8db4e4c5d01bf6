"""The README's curl walk-through (issue 12: "the README's curl walk-through
shows an administrator approving a member"), run as written through nginx:
the steps 1-5 of "Try it with curl" are taken from README.md itself and run
by bash with curl, with only the machine's places replaced (the gateway, the
demo PKI's directory, the SMS directory, the ukey tool) and, so that the run
does not depend on what other tests did, a fresh master lock of a fresh
enterprise and fresh phones. A README step that no longer works fails here."""
import os
import re
import subprocess

from client import Api, issue_cert, new_phone, new_uscc

README = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "README.md")
DEMO_USCC = "91350100M000100Y43"
DEMO_NAME = "福州某某建设工程有限公司"


def walkthrough():
    """The shell lines of "Try it with curl" from `G=` up to step 6."""
    text = open(README, encoding="utf-8").read()
    block = text.split("## Try it with curl", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    start = block.index("G=http://127.0.0.1:8080")
    end = block.index("# 6.")
    return block[start:end]


def test_readme_walkthrough_admin_approves_a_member(suite):
    script = walkthrough()
    for needed in ("/api/v1/auth/ca/bind", "/api/v1/auth/member-applications/$APP/approve",
                   "/api/v1/auth/identities/$APP/switch", DEMO_USCC, "var/pki/sm2-master"):
        assert needed in script, needed
    uscc = new_uscc()
    lock = issue_cert(suite, "sm2", "master", "张三", DEMO_NAME, uscc)
    admin_phone, lead_phone = new_phone(), new_phone()
    ukey = os.path.join(suite.build, "bin", "ukey")
    for old, new in [("http://127.0.0.1:8080", suite.gateway),
                     ("var/pki/sm2-master", os.path.join(suite.pki_dir, lock)),
                     ("var/sms/", suite.sms_dir + "/"), ("build/bin/ukey", ukey),
                     ("13800138000", admin_phone), ("13900139000", lead_phone), (DEMO_USCC, uscc)]:
        assert old in script, old
        script = script.replace(old, new)
    script += 'echo\necho "V5 TOKEN=$TOKEN"\necho "V5 LEAD=$LEAD"\necho "V5 APP=$APP"\n'
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = dict(re.findall(r"^V5 (\w+)=(.*)$", r.stdout, re.M))
    assert got["TOKEN"] and got["LEAD"] and got["APP"], r.stdout + r.stderr

    api = Api(suite)
    # The lock holder is the enterprise's administrator, proven by the lock.
    admin = api.get("/api/v1/auth/me", token=got["TOKEN"]).json
    assert admin["current_identity"]["role"] == "admin" and admin["current_identity"]["source"] == "lock", admin
    assert admin["current_identity"]["uscc"] == uscc and admin["account"]["phone"] == admin_phone
    # The colleague's application was approved and is the current identity.
    lead = api.get("/api/v1/auth/me", token=got["LEAD"]).json
    cur = lead["current_identity"]
    assert cur["id"] == got["APP"] and cur["role"] == "project_lead" and cur["status"] == "active", lead
    assert cur["source"] == "approval" and cur["uscc"] == uscc
    # 人员管理 lists both; the application is decided.
    members = api.get("/api/v1/auth/members", token=got["TOKEN"]).json["members"]
    assert {(m["role"], m["status"]) for m in members} == {("admin", "active"), ("project_lead", "active")}, members
    apps = api.get("/api/v1/auth/member-applications?status=pending", token=got["TOKEN"]).json["applications"]
    assert got["APP"] not in {a["identity_id"] for a in apps}
    # The outputs the README shows.
    assert '"status":"binding_required"' in r.stdout.replace(" ", ""), r.stdout
