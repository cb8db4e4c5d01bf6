#!/usr/bin/env python3
"""openapi_mark — marks every operation of a service (x-caplat-service) in
proto/openapi.yaml as `x-caplat-status: implemented` (a text edit, so the
file's layout and comments stay). tests/integration/test_openapi_served.py
then proves each one is routed to code.   openapi_mark.py SERVICE"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
path = os.path.join(ROOT, "proto", "openapi.yaml")
svc = sys.argv[1]
lines = open(path, encoding="utf-8").read().split("\n")
out, op, changed = [], [], 0


def flush():
    global changed
    if any(re.match(rf"\s+x-caplat-service: {svc}\s*$", l) for l in op):
        for i, l in enumerate(op):
            if re.match(r"\s+x-caplat-status: planned\s*$", l):
                op[i] = l.replace("planned", "implemented")
                changed += 1
    out.extend(op)
    op.clear()


for line in lines:
    # an operation starts at "    get:" / "    post:" … under a path
    if re.match(r"^  \S", line) or re.match(r"^    (get|post|put|delete|patch):", line):
        flush()
    op.append(line)
flush()
open(path, "w", encoding="utf-8").write("\n".join(out))
print(f"{svc}: {changed} operations marked implemented")
