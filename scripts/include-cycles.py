#!/usr/bin/env python3
"""include-cycles.py: fails when files in src/ include each other.

Two kinds of cycle, both directly or through others:
- headers: a.h includes b.h, which includes a.h;
- modules: a module is a .c file with the header of the same name, its
  public face (store.c and store.h are the module "store").  Module A uses
  module B when A's .c or .h has `#include "B.h"`.  store.c including
  deliver.h while deliver.c includes store.h is such a cycle: data no longer
  flows one way between them (issue 13, part 1).
A header with no .c of its own (store_int.h, deliver_internal.h) holds
declarations that several files share; it is not a module, so including it
is no use of another module, but its own includes count in the header check.

Usage: include-cycles.py [DIR]   (default: src)
Prints each cycle with the includes that close it and exits 1, or exits 0.
"""
import os
import re
import sys

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def includes(top):
    """File name -> [(included file name, "path:line"), ...], within TOP."""
    out = {}
    for name in sorted(os.listdir(top)):
        if not name.endswith((".c", ".h")):
            continue
        path = os.path.join(top, name)
        out[name] = []
        with open(path, encoding="utf-8", errors="replace") as fp:
            for lineno, line in enumerate(fp, 1):
                m = INCLUDE.match(line)
                if m and os.path.isfile(os.path.join(top, m.group(1))):
                    out[name].append((os.path.basename(m.group(1)),
                        "%s:%d" % (path, lineno)))
    return out


def cycles(edges):
    """The strongly connected components of two or more nodes (Tarjan)."""
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


def report(kind, edges, suffix=""):
    """Prints KIND's cycles in EDGES (node -> {node: [where]}); their count."""
    bad = cycles(edges)
    for comp in bad:
        print("%s include cycle between %s:" % (kind, ", ".join(comp)))
        for a in comp:
            for b in comp:
                for where in edges[a].get(b, []):
                    print("  %s includes %s%s" % (where, b, suffix))
    return len(bad)


def main():
    top = sys.argv[1] if len(sys.argv) > 1 else "src"
    inc = includes(top)
    modules = {os.path.splitext(f)[0] for f in inc if f.endswith(".c")}

    headers = {}
    for f, incs in inc.items():
        if f.endswith(".h"):
            for h, where in incs:
                headers.setdefault(f, {}).setdefault(h, []).append(where)
    uses = {}
    for f, incs in inc.items():
        mod = os.path.splitext(f)[0]
        if mod not in modules:
            continue
        for h, where in incs:
            dep = os.path.splitext(h)[0]
            if dep in modules and dep != mod:
                uses.setdefault(mod, {}).setdefault(dep + ".h",
                    []).append(where)
    mod_edges = {m: {os.path.splitext(h)[0]: w for h, w in d.items()}
        for m, d in uses.items()}

    n = report("header", headers) + report("module", mod_edges, ".h")
    if n:
        return 1
    print("include-cycles: %d modules and %d headers in %s, no cycle" %
        (len(modules), sum(f.endswith(".h") for f in inc), top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
