#!/usr/bin/env python3
"""The tree's shape, checked: include cycles, upward dependencies, file sizes.

Usage: tests/lint/check_layout.py [ROOT]     (exit 1 on any finding)

Rules (../STYLE.md, "one direction of dependencies"):
  - no cycle among the project's own files (#include "..." resolved from ROOT);
  - common/ includes only common/; storage/ only storage/ and common/;
    load-tests/ only load-tests/ and common/; only server/ and tests/
    include server/ (server/omsctl/ is a client: common/ and itself only);
  - no product source file (common/, storage/, server/, load-tests/) over
    600 lines, unless its first 30 lines say why ("over 600 lines").
"""
import os
import re
import sys

ROOT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else
                       os.path.join(os.path.dirname(__file__), "..", ".."))
DIRS = ["common", "storage", "server", "load-tests", "tests"]
PRODUCT = ["common", "storage", "server", "load-tests"]
EXTS = (".h", ".hpp", ".cpp", ".cc")
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
MAX_LINES = 600

ALLOWED = {  # prefix of the including file -> prefixes it may include
    "common/": ("common/",),
    "storage/": ("storage/", "common/"),
    "server/omsctl/": ("server/omsctl/", "common/"),
    "server/": ("server/", "storage/", "common/"),
    "load-tests/": ("load-tests/", "common/"),
    "tests/": ("tests/", "server/", "storage/", "common/", "load-tests/"),
}


def files():
    for top in DIRS:
        for dirpath, _, names in os.walk(os.path.join(ROOT, top)):
            if "/build" in dirpath or "node_modules" in dirpath:
                continue
            for n in names:
                if n.endswith(EXTS):
                    yield os.path.relpath(os.path.join(dirpath, n), ROOT)


def includes(path):
    out = []
    with open(os.path.join(ROOT, path), encoding="utf-8", errors="replace") as f:
        for line in f:
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            for cand in (inc, os.path.normpath(os.path.join(os.path.dirname(path), inc))):
                if os.path.isfile(os.path.join(ROOT, cand)):
                    out.append(cand)
                    break
    return out


def main():
    graph = {p: includes(p) for p in sorted(files())}
    problems = []
    for src, incs in graph.items():
        rule = next((v for k, v in ALLOWED.items() if src.startswith(k)), None)
        for inc in incs:
            if rule is not None and not inc.startswith(rule):
                problems.append(f"upward or sideways include: {src} -> {inc}")
    # Cycles between components: a header and its .cpp are one component
    # (router.cpp including ws_session.h while ws_session.cpp includes
    # router.h is a cycle even though no file includes itself).
    comp = lambda p: os.path.splitext(p)[0]
    cgraph = {}
    for src, incs in graph.items():
        cgraph.setdefault(comp(src), set()).update(comp(i) for i in incs if comp(i) != comp(src))
    graph = {k: sorted(v) for k, v in cgraph.items()}
    # Cycles: iterative DFS with colours; report each back edge's cycle once.
    colour, stack_pos, seen_cycles = {}, {}, set()
    for start in graph:
        if colour.get(start):
            continue
        stack = [(start, iter(graph[start]))]
        colour[start], stack_pos[start] = 1, 0
        path = [start]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                colour[node] = 2
                stack.pop()
                path.pop()
                continue
            if nxt not in graph:
                continue
            if colour.get(nxt) == 1:
                cyc = path[path.index(nxt):] + [nxt]
                key = frozenset(cyc)
                if key not in seen_cycles:
                    seen_cycles.add(key)
                    problems.append("include cycle: " + " -> ".join(cyc))
            elif not colour.get(nxt):
                colour[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(graph[nxt])))
    for p in sorted(files()):
        if not p.startswith(tuple(d + "/" for d in PRODUCT)):
            continue
        with open(os.path.join(ROOT, p), encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
        if len(lines) > MAX_LINES and not any("over 600 lines" in l for l in lines[:30]):
            problems.append(f"{p}: {len(lines)} lines (over {MAX_LINES}, and its header does not say why)")
    # A test case's name with ';' is split by CMake's list handling in
    # doctest_discover_tests: its CTest test then selects no test case and
    # passes without running anything.
    for p in sorted(files()):
        if not (p.startswith("tests/") and p.endswith(".cpp")):
            continue
        with open(os.path.join(ROOT, p), encoding="utf-8", errors="replace") as f:
            for no, line in enumerate(f, 1):
                m = re.search(r'TEST_CASE\("([^"]*)"', line)
                if m and ";" in m.group(1):
                    problems.append(f"{p}:{no}: ';' in a test case's name (CTest would run nothing)")
    for p in problems:
        print(p)
    print(f"check_layout: {len(graph)} components, "
          f"{sum(len(v) for v in graph.values())} dependencies between them, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
