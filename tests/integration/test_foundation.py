"""Foundation properties that no single service test shows: each service
connects as its own role limited to its own schema; migrations are recorded
once; the gateway's rate limit answers 429 with the API.md envelope."""
import concurrent.futures
import time

import suite as suite_mod

from client import call


def _psql_fails(suite, sql, role):
    try:
        suite.psql(sql, role=role)
    except RuntimeError as e:
        return str(e)
    return None


def test_service_roles_are_limited_to_their_schema(suite):
    services = list(suite_mod.SERVICES)
    for svc in services:
        err = _psql_fails(suite, "CREATE TABLE public.intruder (x int)", svc)
        assert err and "permission denied" in err, (svc, err)
        for other in services:
            if other == svc:
                continue
            err = _psql_fails(suite, f"SELECT 1 FROM {other}.outbox LIMIT 1", svc)
            assert err and "permission denied" in err, (svc, other, err)
        # ... and its own schema is its own.
        assert suite.psql("SELECT count(*) >= 0 FROM outbox", role=svc) == [["t"]]


def test_migrations_recorded_once(suite):
    for svc in suite_mod.SERVICES:
        rows = suite.psql(f"SELECT name, count(*) FROM {svc}.schema_migrations GROUP BY name")
        assert rows and all(n == "1" for _, n in rows), (svc, rows)
        assert any(name == "common/001_bus.sql" for name, _ in rows)


def test_gateway_rate_limit_answers_429_envelope(suite):
    # The suite's gateway allows 200 r/s with a burst of 400 per client address.
    def hit(_):
        r = call(suite.gateway, "GET", "/api/v1/auth/me")
        return r.status, r.code
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(hit, range(1200)))
    limited = [a for a in answers if a[0] == 429]
    assert limited, "no request was rate limited"
    assert all(code == "RATE_LIMITED" for _, code in limited)
    assert all(code == "UNAUTHENTICATED" for status, code in answers if status != 429)
    time.sleep(2.5)  # let the bucket refill for the tests that follow
