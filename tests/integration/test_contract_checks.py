"""The contract checks themselves: proto/openapi.yaml lints clean with the
Redocly CLI and a broken copy does not; tests/client.py refuses answers the
spec does not allow (an undocumented status, a wrong type, an unknown field,
an undocumented path) and accepts those it does. File-level: the running
suite is not used."""
import os
import subprocess
import tempfile

from client import ContractError, Reply, check_contract, contract

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINT = os.path.join(ROOT, "tests", "contract", "lint-spec.sh")
SPEC = os.path.join(ROOT, "proto", "openapi.yaml")
JSON = {"Content-Type": "application/json"}


def _lint(path):
    return subprocess.run(["bash", LINT, path], capture_output=True, text=True, timeout=300)


def test_spec_lints_clean_and_a_broken_copy_fails(suite):
    r = _lint(SPEC)
    assert r.returncode == 0, r.stdout + r.stderr
    text = open(SPEC, encoding="utf-8").read()
    # the structural error the linter once found: an unquoted comma makes two keys
    broken = text.replace("{description: 'password changed, sessions ended'}",
                          "{description: password changed, sessions ended}")
    assert broken != text
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8") as f:
        f.write(broken)
        f.flush()
        r = _lint(f.name)
    assert r.returncode != 0, "the linter accepted a broken spec"
    assert "sessions ended" in r.stdout + r.stderr


def _refused(method, path, status, body, what):
    raw = body.encode() if isinstance(body, str) else body
    problems = contract().problems(method, path, Reply(status, raw, JSON))
    assert problems, f"not refused: {what}"
    return "; ".join(problems)


def test_client_refuses_answers_outside_the_spec(suite):
    ok = '{"status":"incomplete","name":null,"id_number":null,"email":null,' \
         '"id_card_front_file":null,"id_card_back_file":null}'
    check_contract("GET", "/api/v1/profile", Reply(200, ok.encode(), JSON))
    check_contract("GET", "/api/v1/profile?x=1", Reply(401, b'{"error":{"code":"UNAUTHENTICATED","message":"x"}}', JSON))
    check_contract("GET", "/api/v1/nothing/here", Reply(404, b'{"error":{"code":"NOT_FOUND","message":"x"}}', JSON))
    check_contract("GET", "/sim/trades/1", Reply(200, b"[]", JSON))  # not caplat's API

    e = _refused("GET", "/api/v1/profile", 418, "{}", "an undocumented status")
    assert "entGetProfile" in e and "418" in e
    e = _refused("GET", "/api/v1/profile", 200, ok.replace('"name":null', '"name":7'), "a wrong type")
    assert "entGetProfile" in e and "/name" in e
    e = _refused("GET", "/api/v1/profile", 200, ok[:-1] + ',"nickname":"x"}', "an unknown field")
    assert "nickname" in e
    e = _refused("GET", "/api/v1/profile", 401, '{"error":{"code":"NOPE","message":"x"}}',
                 "an undocumented error code")
    assert "/error/code" in e
    _refused("POST", "/api/v1/auth/logout", 204, "{}", "a body where the spec has none")
    _refused("GET", "/api/v1/nothing/here", 200, "{}", "a path the spec does not have")

    # and a mismatch raises (unless CAPLAT_CONTRACT_LOG asks to record it)
    saved = os.environ.pop("CAPLAT_CONTRACT_LOG", None)
    try:
        check_contract("GET", "/api/v1/profile", Reply(418, b"{}", JSON))
    except ContractError as e:
        assert "GET /api/v1/profile (entGetProfile): status 418" in str(e), e
    else:
        raise AssertionError("check_contract did not raise")
    finally:
        if saved is not None:
            os.environ["CAPLAT_CONTRACT_LOG"] = saved


def test_every_operation_lists_the_answers_any_operation_may_give(suite):
    """The gateway may refuse any call (413, 429, 503), a staff session may call
    an account's operation and the reverse (403), a body may hold a wrong type
    (400 FIELD_TYPE): every operation lists these, so that the check of every
    answer above does not fail on them."""
    import yaml
    doc = yaml.safe_load(open(SPEC, encoding="utf-8"))
    missing = []
    for path, item in doc["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch"):
                continue
            need = {"429", "503"}
            if any("bearerAuth" in s for s in op.get("security", doc["security"])):
                need |= {"401", "403"}
            if method in ("post", "put"):
                need |= {"400", "413"}
            lacking = need - set(op["responses"])
            if lacking:
                missing.append(f"{method.upper()} {path}: {sorted(lacking)}")
    assert not missing, "; ".join(missing)
