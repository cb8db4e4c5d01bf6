"""proto/events and the code agree: every event any service wrote to its
outbox during the test run has data valid against proto/events/<type>.json
(phase "events": after the normal tests produced events, before the faults)."""
import glob
import json
import os

from jsonschema import Draft202012Validator, RefResolver

PHASE = "events"  # tests/run.py: after the normal tests, before the faults
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _validators():
    schemas = {os.path.basename(path)[:-5]: json.load(open(path))
               for path in glob.glob(os.path.join(ROOT, "proto", "events", "*.json"))}
    # A schema may $ref a sibling file (the five <svc>.audit.recorded refer
    # to audit.recorded.json): resolve those from the directory, by $id.
    store = {s["$id"]: s for s in schemas.values() if "$id" in s}
    out = {}
    for name, schema in schemas.items():
        if name != "envelope":
            out[name] = Draft202012Validator(schema, resolver=RefResolver.from_schema(schema, store=store),
                                             format_checker=Draft202012Validator.FORMAT_CHECKER)
    return out


def test_outbox_events_validate_against_their_schemas(suite):
    import suite as suite_mod
    validators = _validators()
    seen = 0
    for svc in suite_mod.SERVICES:
        rows = suite.psql(f"SELECT type, data::text FROM {svc}.outbox")
        for type_, data in rows:
            # Events a test injected to stand for another service are checked
            # with the same schema, so they must be valid too.
            assert type_ in validators, f"{svc} wrote an event with no schema: {type_}"
            errors = sorted(validators[type_].iter_errors(json.loads(data)), key=str)
            assert not errors, f"{svc} {type_}: {errors[0].message} in {data[:300]}"
            seen += 1
    assert seen > 0
