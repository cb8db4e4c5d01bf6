#!/usr/bin/env python3
"""run — caplat's test runner: unit tests, then integration and end-to-end.

1. Every cmocka unit binary under <build>/tests/ runs; each case counts.
2. A throw-away suite (PostgreSQL, Redis, NATS JetStream, the services and
   nginx) starts in a temporary directory on free ports (deploy/scripts/suite.py).
3. Every function test_*(suite) in tests/integration/test_*.py and
   tests/e2e/test_*.py runs against it; a raised exception is a failure.
   They run in phases, named by a test file's module-level PHASE (default
   "normal"), in the order of PHASES: "normal"; "events" (checks on what the
   normal tests left behind, such as every event matching its schema);
   "faults" (tests that stop and break servers). Within a phase, by file
   path, then function name.
4. The suite stops and one line says "N passed, N failed".

  python3 tests/run.py [--build build] [-k substring] [--keep]
"""
import argparse
import glob
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "deploy", "scripts"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))  # shared fixtures modules
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import suite as suite_mod  # noqa: E402


def run_unit(build, only):
    passed = failed = 0
    for binary in sorted(glob.glob(os.path.join(ROOT, build, "tests", "*"))):
        if not os.access(binary, os.X_OK) or os.path.isdir(binary):
            continue
        name = os.path.basename(binary)
        if only and not any(k in name for k in only.split(",")):
            continue
        r = subprocess.run([binary], capture_output=True, text=True, timeout=300)
        out = r.stdout + r.stderr
        ok = len(re.findall(r"^\[\s+OK\s+\]", out, re.M))
        bad = len(re.findall(r"^\[\s+FAILED\s+\] (?!\d+ test)", out, re.M))
        if r.returncode != 0 and bad == 0:
            bad = 1  # crashed or sanitizer report
        passed += ok
        failed += bad
        print(f"unit {name}: {ok} passed, {bad} failed")
        if bad:
            print(out)
    return passed, failed


PHASES = ["normal", "events", "faults"]


def load_cases(only):
    """[(phase, name, fn)] of the selected tests, in the order they run."""
    cases = []
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "integration", "test_*.py")) +
                       glob.glob(os.path.join(ROOT, "tests", "e2e", "test_*.py"))):
        spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        phase = getattr(mod, "PHASE", "normal")
        if phase not in PHASES:
            raise SystemExit(f"{os.path.relpath(path, ROOT)}: PHASE {phase!r} is not one of {PHASES}")
        for attr in sorted(dir(mod)):
            fn = getattr(mod, attr)
            if attr.startswith("test_") and callable(fn):
                name = f"{os.path.relpath(path, ROOT)}::{attr}"
                if not only or any(k in name for k in only.split(",")):
                    cases.append((phase, name, fn))
    return sorted(cases, key=lambda c: PHASES.index(c[0]))  # stable: path order within a phase


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("-k", dest="only", default=None, help="substrings (comma-separated) of test names")
    ap.add_argument("--keep", action="store_true", help="keep the temporary suite directory")
    args = ap.parse_args()

    passed, failed = run_unit(args.build, args.only)
    cases = load_cases(args.only)
    if cases:
        base = tempfile.mkdtemp(prefix="caplat-test-")
        os.chmod(base, 0o755)
        suite = suite_mod.Suite(base, persistent=False, build=args.build)
        try:
            suite.start_all()
        except suite_mod.SuiteError as e:  # names the command and its own error output
            print(f"suite start-up failed: {e}")
            suite.stop_all()
            suite.destroy()
            print(f"{passed} passed, {failed + len(cases)} failed")
            sys.exit(1)
        except Exception:
            traceback.print_exc()
            for log in glob.glob(os.path.join(suite.log_dir, "*.log")):
                print(f"--- {log}")
                print(open(log, errors="replace").read()[-3000:])
            suite.stop_all()
            print(f"{passed} passed, {failed + len(cases)} failed")
            sys.exit(1)
        try:
            phase = None
            for case_phase, name, fn in cases:
                if case_phase != phase:
                    phase = case_phase
                    print(f"== phase {phase}")
                t0 = time.time()
                try:
                    fn(suite)
                    passed += 1
                    print(f"ok   {name} ({time.time() - t0:.2f}s)")
                except Exception:
                    failed += 1
                    print(f"FAIL {name} ({time.time() - t0:.2f}s)")
                    traceback.print_exc()
        finally:
            suite.stop_all()
            if failed:
                for log in sorted(glob.glob(os.path.join(suite.log_dir, "*.log"))):
                    text = open(log, errors="replace").read()
                    if "lvl=error" in text or "ERROR" in text or "runtime error" in text:
                        print(f"--- tail of {log}")
                        print(text[-2000:])
            if not args.keep:
                suite.destroy()
            else:
                print(f"suite directory kept: {base}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
