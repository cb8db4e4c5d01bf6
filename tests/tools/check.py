#!/usr/bin/env python3
"""check — the tree's own rules, run by `make check` before the tests:

  format   every tracked .c/.h is clean against .clang-format
           (clang-format --dry-run --Werror); prints the files that are not.
  sql      SQL text (a C string literal, adjacent literals joined, holding
           SELECT … FROM, INSERT INTO, UPDATE … SET, DELETE FROM, WITH x AS (,
           CREATE/ALTER/DROP <object>, COPY … FROM/TO) only in the store files:
           services/*/store.c, common/*_store.c, common/db.c (its migration
           bookkeeping), unit tests (test_*.c) and tests/tools/; prints file:line.
  circles  no import circles: from the built objects (nm), file A depends on
           file B when A calls a function B defines (reading a variable, such
           as the service's context struct, is no import); per service and
           in common/, that graph has no
           cycle; prints each cycle with the symbols, and every edge of a
           knot of more than the cycle's files.
  dups     no global symbol defined by two objects of one program (a
           service's objects and common/'s); unit tests link without
           --allow-multiple-definition, so their duplicates fail the link.

  tests/tools/check.py [--build build] [format sql circles dups]
  tests/tools/check.py --self-test   feeds each check a bad input, expects failure

Exit status 1 when a check fails. Standard library, clang-format, nm, cc."""
import argparse
import fnmatch
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tracked(patterns, root=ROOT):
    """Tracked files matching patterns (git ls-files); outside a git
    checkout, every file under root matching them."""
    r = subprocess.run(["git", "-C", root, "ls-files", "--", *patterns],
                       capture_output=True, text=True)
    if r.returncode == 0:
        return sorted(f for f in r.stdout.splitlines() if os.path.exists(os.path.join(root, f)))
    out = []
    for d, _, files in os.walk(root):
        for f in files:
            rel = os.path.relpath(os.path.join(d, f), root)
            if any(fnmatch.fnmatch(f, p) for p in patterns) and not rel.startswith("build"):
                out.append(rel)
    return sorted(out)


# ---- format ------------------------------------------------------------------

def check_format(files, root=ROOT):
    """Names of files clang-format would change (relative to root)."""
    bad = set()
    for i in range(0, len(files), 200):
        chunk = files[i:i + 200]
        r = subprocess.run(["clang-format", "--dry-run", "--Werror", *chunk], cwd=root,
                           capture_output=True, text=True)
        if r.returncode == 0:
            continue
        for line in r.stderr.splitlines():
            m = re.match(r"(.+?):\d+:\d+: (?:error|warning):", line)
            if m:
                bad.add(os.path.relpath(os.path.join(root, m.group(1)), root))
        if not bad:  # clang-format failed without naming a file (bad config)
            raise RuntimeError(r.stderr.strip() or "clang-format failed")
    return sorted(bad)


# ---- sql ---------------------------------------------------------------------

SQL_ALLOWED = ["services/*/store.c", "common/*_store.c", "common/db.c",
               "tests/tools/*", "*/test_*.c", "test_*.c"]
SQL_PATTERNS = [
    r"\bSELECT\b.*\bFROM\b",
    r"\bINSERT\s+INTO\b",
    r"\bUPDATE\s+[\w.\"]+\s+SET\b",
    r"\bDELETE\s+FROM\b",
    r"\bWITH\s+(?:RECURSIVE\s+)?\w+\s*(?:\([^)]*\)\s*)?AS\s*(?:(?:NOT\s+)?MATERIALIZED\s*)?\(",
    r"\b(?:CREATE|ALTER|DROP)\s+(?:OR\s+REPLACE\s+|UNIQUE\s+|TEMP\s+|TEMPORARY\s+)?"
    r"(?:TABLE|INDEX|SCHEMA|VIEW|FUNCTION|TRIGGER|SEQUENCE|TYPE|EXTENSION|ROLE|PROCEDURE)\b",
    r"\bCOPY\s+[\w.\"]+(?:\s*\([^)]*\))?\s+(?:FROM|TO)\b",
]
SQL_RE = re.compile("|".join(f"(?:{p})" for p in SQL_PATTERNS), re.S)


def string_literals(text):
    """(line, text) of every C string literal, adjacent literals (only blanks
    and comments between them) joined into one; comments and character
    constants skipped."""
    out = []
    i, n, line = 0, len(text), 1
    cur, cur_line, pending = None, 0, False  # pending: a literal may continue
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif c in " \t\r\f\v" or (c == "\\" and i + 1 < n and text[i + 1] == "\n"):
            i += 1 if c != "\\" else 2
            line += 1 if c == "\\" else 0
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == '"' or c == "'":
            j, buf = i + 1, []
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n:
                    if text[j + 1] == "\n":
                        line += 1
                    buf.append(text[j:j + 2])
                    j += 2
                else:
                    if text[j] == "\n":  # unterminated: stop at the line's end
                        break
                    buf.append(text[j])
                    j += 1
            if c == '"':
                if pending and cur is not None:
                    cur += "".join(buf)
                else:
                    if cur is not None:
                        out.append((cur_line, cur))
                    cur, cur_line = "".join(buf), line
                pending = True
            else:
                pending = False
            i = j + 1
        else:
            # an encoding prefix (u8"…", L"…") keeps a literal going
            m = re.match(r"(?:u8|u|U|L)(?=\")", text[i:i + 3])
            if m:
                i += len(m.group(0))
                continue
            pending = False
            i += 1
    if cur is not None:
        out.append((cur_line, cur))
    return out


def sql_allowed(path):
    return any(fnmatch.fnmatch(path, p) for p in SQL_ALLOWED)


def check_sql(files, root=ROOT):
    """file:line: text of every SQL literal outside the store files."""
    bad = []
    for f in files:
        if sql_allowed(f):
            continue
        text = open(os.path.join(root, f), encoding="utf-8", errors="replace").read()
        for line, lit in string_literals(text):
            if SQL_RE.search(lit):
                snippet = " ".join(lit.replace("\\n", " ").split())
                bad.append(f"{f}:{line}: \"{snippet[:90]}{'…' if len(snippet) > 90 else ''}\"")
    return bad


# ---- objects: circles and duplicate symbols --------------------------------

def object_groups(build, root=ROOT):
    """{group: [object paths]}: common/ and each service, unit tests left
    out, and objects whose source is gone (a renamed file's stale .o)."""
    groups = {}
    for d in ["common"] + sorted(os.path.relpath(p, root) for p in glob.glob(os.path.join(root, "services", "*"))
                                 if os.path.isdir(p)):
        objs = sorted(o for o in glob.glob(os.path.join(build, d, "*.o"))
                      if not os.path.basename(o).startswith("test_")
                      and os.path.exists(os.path.join(root, src_name(o, build))))
        if objs:
            groups[d] = objs
    return groups


DATA = set()  # defined symbols that are variables, not functions


def symbols(objs):
    """{object: (defined globals, undefined)} from one nm call."""
    table = {o: (set(), set()) for o in objs}
    if not objs:
        return table
    r = subprocess.run(["nm", "-A", *objs], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        m = re.match(r"(.+?\.o):\s*(?:[0-9a-fA-F]+)?\s+(\w)\s+(\S+)$", line)
        if not m:
            continue
        obj, kind, sym = m.groups()
        if kind == "U":
            table[obj][1].add(sym)
        elif kind.isupper() and kind not in "WV":  # strong global definition
            table[obj][0].add(sym)
            if kind != "T":
                DATA.add(sym)
    return table


def names(syms, most):
    """A short list of symbols; variables marked [var]."""
    shown = [s + (" [var]" if s in DATA else "") for s in syms[:most]]
    return ", ".join(shown) + (", …" if len(syms) > most else "")


def src_name(obj, build):
    return os.path.relpath(obj, build)[:-2] + ".c"


def check_circles(groups, build):
    """Every cycle of the file dependency graph, as printable lines."""
    bad = []
    for group, objs in groups.items():
        table = symbols(objs)
        owner = {}
        for o, (defs, _) in table.items():
            for s in defs:
                owner.setdefault(s, o)
        edges = {o: {} for o in objs}  # o -> {dep: [symbols]}
        for o, (_, undef) in table.items():
            for s in sorted(undef):
                dep = owner.get(s)
                # A call is an import; reading the service's one context
                # struct (orders, pay, …, defined beside the route table)
                # is not.
                if dep and dep != o and s not in DATA:
                    edges[o].setdefault(dep, []).append(s)
        for comp in sccs(objs, edges):
            if len(comp) < 2:
                continue
            cycle = one_cycle(comp, edges)
            parts = [src_name(cycle[0], build)]
            for a, b in zip(cycle, cycle[1:]):
                syms = edges[a][b]
                parts.append(f"{src_name(b, build)} ({names(syms, 3)})")
            bad.append(f"{group}: circle: " + " → ".join(parts))
            if len(comp) > len(cycle) - 1:  # a bigger knot: every edge inside it
                for a in sorted(comp):
                    for b in sorted(d for d in edges[a] if d in comp):
                        syms = edges[a][b]
                        bad.append(f"    {src_name(a, build)} → {src_name(b, build)} "
                                   f"({names(syms, 4)})")
    return bad


def sccs(nodes, edges):
    """Tarjan's strongly connected components."""
    index, low, on, stack, out, n = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def one_cycle(comp, edges):
    """A shortest cycle through the component's first node: [a, …, a]."""
    comp = set(comp)
    start = min(comp)
    prev, frontier = {start: None}, [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v]):
                if w == start:
                    path = [v]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path)) + [start]
                if w in comp and w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a strongly connected component without a cycle")


def check_dups(groups, build):
    """Global symbols defined by two objects linked into one program: within
    common/, and between a service's objects and common/'s."""
    bad = []
    common = symbols(groups.get("common", []))
    for group, objs in groups.items():
        table = dict(common)
        table.update(symbols(objs))
        where = {}
        for o in sorted(table):
            for s in table[o][0]:
                where.setdefault(s, []).append(o)
        for s, objs_of in sorted(where.items()):
            if len(objs_of) > 1 and any(o in objs for o in objs_of):
                bad.append(f"{group}: {s} defined in " + ", ".join(src_name(o, build) for o in objs_of))
    return bad


# ---- driver ------------------------------------------------------------------

def run_checks(names, build, root=ROOT, out=print):
    failed = []
    if "format" in names:
        bad = check_format(tracked(["*.c", "*.h"], root), root)
        for f in bad:
            out(f"format: {f} is not clang-format clean (clang-format -i {f})")
        if bad:
            failed.append("format")
    if "sql" in names:
        bad = check_sql(tracked(["*.c", "*.h"], root), root)
        for b in bad:
            out(f"sql: {b}")
        if bad:
            failed.append("sql")
    if "circles" in names or "dups" in names:
        groups = object_groups(build, root)
        if not groups:
            out(f"circles/dups: no objects under {build} (run make first)")
            failed.append("objects")
    if "circles" in names and groups:
        bad = check_circles(groups, build)
        for b in bad:
            out(b)
        if bad:
            failed.append("circles")
    if "dups" in names and groups:
        bad = check_dups(groups, build)
        for b in bad:
            out(f"dups: {b}")
        if bad:
            failed.append("dups")
    return failed


def self_test():
    """Each check fails on a bad input and passes on a good one."""
    problems = []
    tmp = tempfile.mkdtemp(prefix="caplat-check-")
    try:
        shutil.copy(os.path.join(ROOT, ".clang-format"), tmp)

        def write(rel, text):
            p = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(p), exist_ok=True)
            with open(p, "w") as f:
                f.write(text)

        def expect(what, got, want):
            if bool(got) != want:  # got: the finding (or whether it was the right one)
                problems.append(f"{what}: not {'found' if want else 'clean'} as it should be ({got!r})")

        # format: a misformatted file is named, a clean one is not
        write("common/ugly.c", "int  f( int x ){return x;}\n")
        write("common/clean.c", "int\nf(int x)\n{\n\treturn x;\n}\n")
        got = check_format(["common/ugly.c", "common/clean.c"], tmp)
        expect("format misformatted", got == ["common/ugly.c"], True)

        # sql: a stray statement split over literals is found with its line
        write("services/x/handlers.c",
              '#include <stdio.h>\n/* "SELECT a FROM b" in a comment is no SQL */\n'
              'static const char *msg = "select the file from the list";\n'
              'static const char *q = "SELECT id, name "\n\t"FROM t WHERE id = $1";\n'
              "static const char c = '\"';\n"
              'static const char *r = "UPDATE t SET a = 1";\n')
        write("services/x/store.c", 'static const char *q = "SELECT id FROM t";\n')
        write("services/x/test_store.c", 'static const char *q = "DELETE FROM t";\n')
        write("common/stray.c", 'static const char *s = "WITH c AS (SELECT 1) SELECT * FROM c";\n'
                             'static const char *t = "selected from menu";\n')
        got = check_sql(["services/x/handlers.c", "services/x/store.c",
                         "services/x/test_store.c"], tmp)
        expect("sql stray", [g.split(": ")[0] for g in got] ==
               ["services/x/handlers.c:4", "services/x/handlers.c:7"], True)
        expect("sql in store", check_sql(["services/x/store.c", "services/x/test_store.c"], tmp), False)
        got = check_sql(["common/stray.c"], tmp)
        expect("sql CTE outside store", [g.split(": ")[0] for g in got] == ["common/stray.c:1"], True)
        for lit in ["INSERT INTO t (a) VALUES ($1)", "DELETE FROM t", "CREATE TABLE t (a int)",
                    "ALTER TABLE t ADD b int", "DROP INDEX i", "COPY t FROM STDIN",
                    "WITH RECURSIVE r(n) AS (VALUES (1))"]:
            expect(f"sql pattern {lit!r}", SQL_RE.search(lit), True)
        for text in ["Update the settings", "select a file", "WITH care AS usual", "created"]:
            expect(f"sql prose {text!r}", SQL_RE.search(text), False)

        # circles and dups: two files calling each other; a symbol twice
        build = os.path.join(tmp, "build")
        srcs = {"services/x/a.c": "int b(void);\nint a(void) { return b(); }\n",
                "services/x/b.c": "int a(void);\nint b(void) { return a() + 1; }\n",
                "services/y/a.c": "int b(void);\nint a(void) { return b(); }\n",
                "services/y/b.c": "int b(void) { return 1; }\n",
                "services/w/a.c": "int gone(void);\nint a(void) { return gone(); }\n",
                "services/w/gone.c": "int a(void);\nint gone(void) { return a(); }\n",
                "services/v/a.c": "int ctx;\nint b(void);\nint a(void) { return b(); }\n",
                "services/v/b.c": "extern int ctx;\nint b(void) { return ctx; }\n",
                "services/z/a.c": "int twice(void) { return 1; }\n",
                "services/z/b.c": "int twice(void) { return 2; }\n",
                "common/c.c": "int c(void) { return 1; }\n"}
        for rel, text in srcs.items():
            write(rel, text)
            o = os.path.join(build, rel[:-2] + ".o")
            os.makedirs(os.path.dirname(o), exist_ok=True)
            subprocess.run(["cc", "-c", os.path.join(tmp, rel), "-o", o], check=True)
        os.remove(os.path.join(tmp, "services/w/gone.c"))  # its object is stale: left out
        groups = object_groups(build, tmp)
        got = check_circles(groups, build)
        expect("circles two-file", len(got) == 1 and got[0].startswith("services/x: circle: services/x/a.c"), True)
        expect("circles one-way", [g for g in got if g.startswith("services/y")], False)
        expect("circles variable only", [g for g in got if g.startswith("services/v")], False)
        expect("circles stale object", [g for g in got if g.startswith("services/w")], False)
        got = check_dups(groups, build)
        expect("dups", got == ["services/z: twice defined in services/z/a.c, services/z/b.c"], True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for p in problems:
        print(f"check self-test: {p}")
    print(f"check self-test: {'FAILED' if problems else 'ok'}")
    return not problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("checks", nargs="*", default=["format", "sql", "circles", "dups"])
    args = ap.parse_args()
    if args.self_test:
        sys.exit(0 if self_test() else 1)
    build = os.path.join(ROOT, args.build) if not os.path.isabs(args.build) else args.build
    failed = run_checks(args.checks, build)
    print(f"check: {', '.join(args.checks)}: " + (f"FAILED ({', '.join(failed)})" if failed else "ok"))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
