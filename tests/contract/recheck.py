#!/usr/bin/env python3
"""recheck — checks the answers a test run recorded (CAPLAT_CONTRACT_LOG, see
tests/client.py) against proto/openapi.yaml as it is now, and prints what
still mismatches, grouped. Exit 1 when anything does.

  CAPLAT_CONTRACT_LOG=/tmp/drift.jsonl python3 tests/run.py -k test_
  python3 tests/contract/recheck.py /tmp/drift.jsonl
"""
import collections
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from client import Reply, contract  # noqa: E402


def main():
    groups = collections.OrderedDict()
    for line in open(sys.argv[1], encoding="utf-8"):
        rec = json.loads(line)
        reply = Reply(rec["status"], rec["body"].encode(), rec["headers"])
        for p in contract().problems(rec["method"], rec["path"], reply):
            key = re.sub(r"'[^']{24,}'", "'…'", re.sub(r"; body b.*", "", p))
            groups.setdefault(key, []).append(rec["body"][:300])
    for key, bodies in groups.items():
        print(f"{len(bodies):4d} {key}\n       {bodies[0]}")
    sys.exit(1 if groups else 0)


if __name__ == "__main__":
    main()
