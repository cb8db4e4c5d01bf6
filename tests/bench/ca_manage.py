#!/usr/bin/env python3
"""ca_manage — fills a bench suite's registry for tests/bench/ca_manage.sh:
N certificates (default 10⁵) in issuance's tables, of which ENT (default
5000) belong to one enterprise whose administrator the suite's account
becomes; the rest spread over other enterprises (200 each). Prints
ADMIN_TOKEN=… for the shell. Rows go in with one set-based INSERT each
(the registry's read path is what is measured, not the sync)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "issuance"))
import suite as suite_mod  # noqa: E402
from client import grant_admin  # noqa: E402
from kit import new_uscc  # noqa: E402


def main():
    base, token = sys.argv[1], sys.argv[2]
    total = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    ent = int(sys.argv[4]) if len(sys.argv) > 4 else 5000
    s = suite_mod.Suite(base, persistent=True)
    uscc = new_uscc()
    # an administrator only by proof (issue 12): an approved administrator application
    grant_admin(s, token, uscc, name="压测企业")
    # lineage i: the admin's enterprise for i <= ent, else enterprise 'B<i/200>'
    s.psql(f"""
        INSERT INTO issuance.lineages (id, type, lock_kind, holder, enterprise_name, uscc, account_id,
                                       key_serial, key_vendor, applied_at)
        SELECT md5('bench-l' || i)::uuid, 'enterprise',
               (ARRAY['master','project_lead','agent','cost_engineer'])[1 + i % 4],
               '持锁人' || lpad(i::text, 6, '0'), '压测企业',
               CASE WHEN i <= {ent} THEN '{uscc}' ELSE 'B' || (i / 200) END,
               CASE WHEN i % 3 = 0 THEN md5('bench-a' || i)::uuid END,
               'KEY' || i, (ARRAY['飞天诚信','握奇','海泰'])[1 + i % 3],
               now() - make_interval(days => 400 + i % 2000)
        FROM generate_series(1, {total}) i;
        INSERT INTO issuance.certificates (id, cert_id, issuer, serial, vendor, not_before, not_after,
                                           platforms, source)
        SELECT md5('bench-c' || i)::uuid, md5('bench-l' || i)::uuid,
               'CN=Bench CA,O=' || (ARRAY['CFCA','GDCA','SIMCA'])[1 + i % 3] || ',C=CN',
               upper(md5('bench-s' || i)), (ARRAY['CFCA','GDCA','SIMCA'])[1 + i % 3],
               now() - interval '300 days', now() + make_interval(days => -30 + i % 400),
               '{{LN_JSGC,DL_GGZY}}', 'sync'
        FROM generate_series(1, {total}) i;
        ANALYZE issuance.lineages; ANALYZE issuance.certificates;""")
    # As a registry that has been in use: vacuumed (hint bits set, the
    # 10⁵ lineage updates of the not_after trigger pruned, the visibility
    # map set) and checkpointed, so that the runs do not pay the fill's
    # one-off pruning, its WAL and autovacuum's pass (measured: without
    # it the first runs' PostgreSQL CPU included heap_page_prune_opt,
    # MarkBufferDirty and WAL writes).
    s.psql("VACUUM (ANALYZE) issuance.lineages, issuance.certificates")
    s.psql("CHECKPOINT")
    n = s.psql("SELECT count(*) FROM issuance.certificates")[0][0]
    print(f"ADMIN_TOKEN={token}\nBENCH_USCC={uscc}\nBENCH_CERTS={n}\nBENCH_ENT={ent}")


if __name__ == "__main__":
    main()
