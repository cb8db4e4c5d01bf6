"""The real audit chain at the end of the run (phase "events": after every
normal test acted, before the faults): every audit entry any service wrote
to its outbox reached auth's chain exactly once, and `caplat-audit verify`
recomputes every hash of it."""
import os
import subprocess

from client import wait_until

PHASE = "events"


def test_every_audit_event_is_chained_once_and_the_chain_verifies(suite):
    import suite as suite_mod
    ids = set()
    for svc in suite_mod.SERVICES:
        ids |= {r[0] for r in suite.psql(f"SELECT id FROM {svc}.audit_outbox WHERE type = '{svc}.audit.recorded'")}

    def missing():
        chained = {r[0] for r in suite.psql("SELECT event_id FROM auth.audit_log")}
        return ids - chained
    wait_until(lambda: not missing(), timeout=60, what="every audit event in the chain")
    dup = suite.psql("SELECT count(*) - count(DISTINCT event_id) FROM auth.audit_log")[0][0]
    assert dup == "0"
    url = (f"postgresql://admin:{suite.secrets['db_admin']}@127.0.0.1:"
           f"{suite.ports['postgres']}/caplat")
    r = subprocess.run([os.path.join(suite.build, "bin", "caplat-audit"), "verify"],
                       env=dict(os.environ, CAPLAT_DB_URL=url), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and r.stdout.startswith("ok: "), r.stdout + r.stderr
    n = int(r.stdout.split()[1])
    assert n >= len(ids), (n, len(ids))
