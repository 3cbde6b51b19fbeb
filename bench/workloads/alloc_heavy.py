# SPDX-License-Identifier: MIT
"""alloc_heavy.py N: an allocation-heavy Python job for bench/run.py, run
with PYTHONMALLOC=malloc (every object from malloc, not from Python's own
arenas) under each allocator. Builds N records as dicts of strings and
lists, round-trips them through JSON, indexes words, then drops half the
records and rebuilds them; prints a digest that must not depend on the
allocator."""
import hashlib
import json
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 100000
records = {}
for i in range(n):
    records["rec%07d" % i] = {
        "id": i,
        "name": ("n%x" % (i * 2654435761 % 1000003)) * (1 + i % 5),
        "tags": [str(j * i % 97) for j in range(i % 9)],
        "score": (i * 37 % 1000) / 10.0,
    }
text = json.dumps(records, sort_keys=True)
back = json.loads(text)
assert back == records
index = {}
for key, rec in back.items():
    for word in rec["name"].split("n") + rec["tags"]:
        index.setdefault(word, []).append(key)
for key in list(records)[::2]:
    del records[key]
for i in range(0, n, 2):
    records["new%07d" % i] = {"id": -i, "name": "x" * (i % 40), "tags": [], "score": 0.0}
digest = hashlib.sha256(json.dumps(records, sort_keys=True).encode()).hexdigest()
print(len(text), len(index), sum(len(v) for v in index.values()), len(records), digest)
