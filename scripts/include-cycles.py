#!/usr/bin/env python3
"""include-cycles.py: fails when modules in src/ include each other.

A module is a file name without its extension: src/store.c and src/store.h
are the module "store".  A module depends on another when its .c or .h has
`#include "other.h"` for a header in the same directory.  Two or more modules
that reach each other through these includes, directly or transitively, form
a cycle: data no longer flows one way between them (issue 13, part 1).

Usage: include-cycles.py [DIR]   (default: src)
Prints each cycle with the includes that close it and exits 1, or exits 0.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def graph(top):
    """Module -> {module it includes: [(file, line), ...]}."""
    edges = {}
    for name in sorted(os.listdir(top)):
        if not name.endswith((".c", ".h")):
            continue
        mod = os.path.splitext(name)[0]
        edges.setdefault(mod, {})
        path = os.path.join(top, name)
        with open(path, encoding="utf-8", errors="replace") as fp:
            for lineno, line in enumerate(fp, 1):
                m = INCLUDE.match(line)
                if m is None:
                    continue
                inc = m.group(1)
                if not os.path.isfile(os.path.join(top, inc)):
                    continue
                dep = os.path.splitext(os.path.basename(inc))[0]
                if dep != mod:
                    edges[mod].setdefault(dep, []).append(
                        "%s:%d" % (path, lineno))
    return edges


def cycles(edges):
    """The strongly connected components of two or more modules (Tarjan)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else "src"
    edges = graph(top)
    bad = cycles(edges)
    for comp in bad:
        print("include cycle between %s:" % ", ".join(comp))
        for a in comp:
            for b in comp:
                for where in edges[a].get(b, []):
                    print("  %s includes %s.h" % (where, b))
    if bad:
        return 1
    print("include-cycles: %d modules in %s, no cycle" % (len(edges), top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
