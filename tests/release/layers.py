#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""layers.py: the engine's calls run one way (docs/design.md, "Layers").

Derives the call graph between the engine's source files from their object
files: for each member of the static library (and each extra object given,
such as the malloc override's), `nm` lists the symbols it defines and the
ones it leaves undefined; an undefined symbol that one other file defines is
an edge from the first file to the second. Data counts as well as code (a
file that reads another's variable depends on it).

Every file has a layer in LAYERS below, bottom up. The check fails on
  - an edge to a higher layer (a call up),
  - a cycle among files, even within one layer,
  - an engine file that LAYERS does not place (a new file must be placed),
and prints each with the symbols that make it.

usage: layers.py [--nm NM] LIBRARY.a [OBJECT.o ...]
"""
import argparse
import collections
import os
import re
import subprocess
import sys

# Bottom up; a file may use its own layer and those below it. Keep in step
# with the diagram at the top of docs/design.md.
LAYERS = [
    ("services", ["options.c", "escape.c", "version.c", "size_class.c", "fatal.c", "track.c",
                  "secure.c", "exact.c", "services.c", "lock.c"]),
    ("os", ["os.c"]),
    ("chunk", ["chunk.c", "page.c", "limit.c"]),
    ("page source", ["decay.c", "pool_base.c", "run.c", "purge.c", "huge.c", "page_source.c"]),
    ("thread cache", ["tcache.c", "tcache_store.c", "run_cache.c", "adapt.c", "thread.c", "sample.c"]),
    ("pool", ["pool.c", "stats.c", "monitor.c", "process.c"]),
    ("API", ["alloc.c", "oom.c", "profile.c"]),
    ("override", ["malloc.c"]),
]

# Edges the refactoring of issue 17 has not removed yet, each "from -> to".
# They are reported, not failed on; an entry that no longer occurs fails, so
# the list only shrinks.
PENDING = set()


def source_name(member):
    """alloc.c.o (CMake's object name) -> alloc.c"""
    name = os.path.basename(member)
    return name[:-2] if name.endswith(".o") else name


def read_symbols(nm, path):
    """{file: (defined set, undefined set)} for an archive or an object."""
    out = subprocess.run([nm, "-A", path], capture_output=True, text=True, check=True).stdout
    files = collections.defaultdict(lambda: (set(), set()))
    for line in out.splitlines():
        # "lib.a:member.o:VALUE TYPE NAME", "file.o:VALUE TYPE NAME"; no VALUE when undefined
        m = re.match(r"^(?:.*:)?([^:]+\.o):\s*(?:[0-9a-fA-F]+\s+)?(\S)\s+(\S+)$", line)
        if not m:
            continue
        member, kind, name = m.groups()
        defined, undefined = files[source_name(member)]
        if kind in ("U", "w", "v"):  # undefined, or an undefined weak reference
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return files


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nm", default="nm")
    ap.add_argument("library")
    ap.add_argument("objects", nargs="*")
    args = ap.parse_args()

    files = read_symbols(args.nm, args.library)
    for obj in args.objects:
        files.update(read_symbols(args.nm, obj))

    layer_of = {}
    for index, (_, names) in enumerate(LAYERS):
        for name in names:
            layer_of[name] = index
    owner = {}
    for name, (defined, _) in files.items():
        for sym in defined:
            owner[sym] = name

    edges = collections.defaultdict(set)  # (from, to) -> symbols
    for name, (_, undefined) in files.items():
        for sym in undefined:
            to = owner.get(sym)
            if to and to != name:
                edges[(name, to)].add(sym)

    failures = 0
    for name in sorted(files):
        if name not in layer_of:
            print(f"unplaced: {name} has no layer in tests/release/layers.py")
            failures += 1

    pending_seen = set()
    for (a, b), syms in sorted(edges.items()):
        if a not in layer_of or b not in layer_of or layer_of[a] >= layer_of[b]:
            continue
        what = f"{a} ({LAYERS[layer_of[a]][0]}) -> {b} ({LAYERS[layer_of[b]][0]}): {' '.join(sorted(syms))}"
        if f"{a} -> {b}" in PENDING:
            pending_seen.add(f"{a} -> {b}")
            print(f"pending upward edge: {what}")
        else:
            print(f"upward edge: {what}")
            failures += 1

    # Cycles: strongly connected components of more than one file (Tarjan).
    graph = collections.defaultdict(set)
    for (a, b) in edges:
        if f"{a} -> {b}" not in PENDING:
            graph[a].add(b)
    index, low, stack, on_stack, counter, components = {}, {}, [], set(), [0], []

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
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
                components.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(files):
        if v not in index:
            visit(v)
    for comp in components:
        print(f"cycle among: {' '.join(comp)}")
        for (a, b), syms in sorted(edges.items()):
            if a in comp and b in comp and f"{a} -> {b}" not in PENDING:
                print(f"  {a} -> {b}: {' '.join(sorted(syms))}")
        failures += 1

    for gone in sorted(set(PENDING) - pending_seen):
        print(f"pending edge no longer occurs (remove it from PENDING): {gone}")
        failures += 1

    print(f"layers: {len(files)} files, {len(edges)} edges, {len(pending_seen)} pending, "
          f"{failures} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
