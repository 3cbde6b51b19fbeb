#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""make_seeds.py: writes the hand-made seeds of the fuzz harnesses.

    python3 tests/fuzz/make_seeds.py     # rewrites tests/fuzz/seeds/{api,options,segment}/hand-*

Each seed is a short program in the byte language its harness reads (see
the op tables at the bottom of fuzz_api.c and fuzz_options.c, the top of
fuzz_segment.c); this script
spells them with the operation names so that they can be read and changed.
Seeds that fuzzing found are kept beside these as found-* (see
docs/fuzzing.md); this script leaves them alone.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MiB = 1 << 20

# ---- fuzz_api.c ------------------------------------------------------------------

API_OPS = ["malloc", "calloc", "aligned_alloc", "realloc", "free", "malloc_bulk", "free_bulk",
           "remote_free", "remote_alloc", "remote_realloc", "thread", "check", "reset", "destroy",
           "trim", "stats", "option", "errors", "check_all", "monitor"]
EDGES = [0, 1, 16, 17, 128, 129, 1024, 1025, 4095, 4096, 4097, 65536, 65537, MiB - 1, MiB, MiB + 1,
         2 * MiB, 4 * MiB - 4096]


def size(n):
    """The bytes pick_size reads for a request of n bytes."""
    if n in EDGES:
        return bytes([10, EDGES.index(n)])
    if 1 <= n <= 256:
        return bytes([2, n - 1])
    if n <= 4096:
        return bytes([7]) + struct.pack(">H", n - 1)
    if 4096 <= n < 4096 + 65536:
        return bytes([11]) + struct.pack(">H", n - 4096)
    if n <= MiB:
        return bytes([13]) + struct.pack(">I", n - 1)
    return bytes([15]) + struct.pack(">I", n - MiB - 1)


def op(name, *args):
    out = bytes([API_OPS.index(name)])
    for a in args:
        out += a if isinstance(a, bytes) else bytes([a])
    return out


def malloc(slot, pool, n, sel=0):
    return op("malloc", slot, pool, sel, size(n))


def name_bytes(name, how, limit_mib=0):
    """create_from_input: a name, then how (how % 4: 0/1 no limit, 2 MiB limit, 3 bytes limit)."""
    out = bytes([len(name), how]) + name
    if how % 4 == 2:
        out += bytes([limit_mib - 1])
    elif how % 4 == 3:
        out += struct.pack(">H", limit_mib)
    return out


def api_seeds():
    seeds = {}
    # every tier in every pool, checked, reallocated both ways, freed four ways
    s = b""
    for i, n in enumerate([1, 16, 100, 1024, 4097, 70000, MiB, MiB + 1, 3 * MiB]):
        s += malloc(i, i % 4, n, sel=i)
    s += op("check", 2, struct.pack(">I", 50)) + op("check", 7, struct.pack(">I", 2 * MiB))
    s += op("realloc", 1, 0, 0x20, size(5000)) + op("realloc", 3, 0, 0x22, size(8))
    s += op("realloc", 7, 0, 0x21, size(3 * MiB)) + op("realloc", 8, 0, 0x23, size(100))
    s += op("realloc", 20, 2, 0x22, size(300)) + op("realloc", 2, 0, 3, b"")  # realloc(NULL), realloc to 0
    for i in range(4):
        s += op("free", i, i)
    s += op("check_all") + op("free", 40, 0)
    seeds["hand-tiers"] = s
    # calloc over freed dirty memory; alignments 1 B .. 4 MiB and bad ones
    s = b""
    for i, n in enumerate([64, 3000, 200000, 2 * MiB]):
        s += malloc(i, 0, n) + op("free", i, 0) + op("calloc", i, 0, 2, 4, size(n))
    for i, shift in enumerate([0, 4, 6, 12, 13, 16, 17, 20, 22]):
        s += op("aligned_alloc", 10 + i, i % 4, i, shift, size(100 + 1000 * i))
    s += op("aligned_alloc", 30, 0, 2, 241, size(64)) + op("aligned_alloc", 31, 1, 0, 255, size(64))
    s += op("calloc", 32, 1, 0, 0, size(0)) + op("check_all")
    seeds["hand-calloc-aligned"] = s
    # blocks freed, allocated and reallocated by other threads
    s = b""
    for i in range(12):
        s += malloc(i, i % 4, [24, 512, 4000, 100000, 2 * MiB, 48][i % 6])
    for i in range(6):
        s += op("remote_free", i, i)
    s += op("remote_alloc", 20, 1, 0, size(200), 0) + op("remote_alloc", 21, 0, 1, size(5000), 0)
    s += op("remote_alloc", 22, 2, 2, size(300), 10) + op("remote_realloc", 6, size(9000))
    s += op("remote_realloc", 10, size(3 * MiB)) + op("thread", 7, 30, 3, 1, 0x11, size(700), 4)
    s += op("thread", 8, 40, 1, 0, 0x02, size(64), 0) + op("free", 30, 0) + op("free", 31, 1)
    s += op("free", 20, 0) + op("free", 21, 0) + op("check_all")
    seeds["hand-threads"] = s
    # pools: reset, destroy and create again (a name needing escapes, a tiny limit), trim
    s = b""
    for i in range(16):
        s += malloc(i, 1 + i % 3, 100 * (i + 1))
    s += op("trim", 1, 0) + op("reset", 1, 0) + op("reset", 0, 1) + op("destroy", 0, 0)
    s += op("destroy", 2, 0, name_bytes(b'say "hi"\\\n\ttab', 2, 2))
    s += malloc(20, 2, 1500000) + malloc(21, 2, 700000) + malloc(22, 2, 64)
    s += op("destroy", 1, 0, name_bytes(b"x" * 39, 3, 4000)) + malloc(23, 1, 32)
    s += op("stats", 2, 0, 1) + op("stats", 2, 0, 2) + op("stats", 0, 2, 1) + op("trim", 0, 1)
    s += op("destroy", 3, 0, name_bytes(b"", 4)) + malloc(24, 3, 64) + op("errors", 6, 0, 3)
    seeds["hand-pools"] = s
    # the limited pool (8 MiB) filled past its limit; reallocs that cannot fit
    s = b""
    for i in range(12):
        s += malloc(i, 3, 900000)
    s += op("realloc", 0, 3, 0x20, size(3 * MiB)) + malloc(12, 3, 3 * MiB)
    s += op("malloc_bulk", 20, 8, 3, 0, size(60000)) + op("errors", 2, 0, 3) + op("check_all")
    seeds["hand-limit"] = s
    # statistics in every format, options, requests that must fail
    s = malloc(0, 0, 64) + malloc(1, 1, 5000) + malloc(2, 3, 2 * MiB)
    for fmt in range(4):
        s += op("stats", fmt % 4, fmt * 2, fmt)
    s += op("stats", 1, 0xf0, 1)
    for which in range(6):
        s += op("option", which, struct.pack(">H", 0x8000 + 7 * which), which)
    for what in range(8):
        for sel in (0, 0x80, 0x81, 3):
            s += op("errors", what, sel, sel % 4)
    s += op("malloc_bulk", 5, 0, 0, 2, size(16)) + op("free_bulk", 0, 8)
    seeds["hand-stats-options-errors"] = s
    # huge blocks: grow and shrink in place and by copy, 4 MiB alignment, then purging
    s = malloc(0, 0, 2 * MiB) + op("realloc", 0, 0, 0x22, size(3 * MiB))
    s += op("realloc", 0, 0, 0x22, size(MiB + 1)) + op("aligned_alloc", 1, 1, 0, 22, size(MiB + 5))
    s += op("option", 0, struct.pack(">H", 0), 0) + op("option", 4, struct.pack(">H", 1), 0)
    s += op("free", 0, 1) + op("trim", 0, 1) + op("calloc", 2, 0, 0, 1, size(2 * MiB))
    s += op("option", 5, struct.pack(">H", 1), 0) + malloc(3, 2, 4096) + op("free", 3, 0)
    s += op("trim", 2, 0) + op("calloc", 4, 2, 0, 1, size(4096)) + op("check_all")
    seeds["hand-huge-purge"] = s
    return seeds


# ---- fuzz_options.c ------------------------------------------------------------------

OPT_OPS = ["set", "set2", "get", "at", "environment", "print", "nulls"]


def oop(name, *args):
    out = bytes([OPT_OPS.index(name)])
    for a in args:
        out += a if isinstance(a, bytes) else bytes([a])
    return out


def row_name(r, kind=0, mask=0):
    """make_name: kind 0/1 a row's name (1: case flipped by mask), 3 spoiled."""
    return bytes([kind, r, mask])


def raw_name(text):
    return bytes([2, 0, 0, len(text)]) + text


def value_number(n, nbytes, sel_rest=0):
    """make_value how 0: a number of nbytes bytes with the kind's suffix (sel picks it)."""
    sel = (nbytes - 1) + 4 * sel_rest
    return bytes([0, sel]) + n.to_bytes(nbytes, "big")


def value_word(i):
    return bytes([3, i])


def value_edge(i):
    return bytes([4, i])


def value_raw(text):
    return bytes([5, 0, len(text)]) + text


def options_seeds():
    seeds = {}
    s = b""
    for r in range(14):  # every row, good values (a row past the table wraps around)
        s += oop("set", row_name(r, 1, 0x5a), value_number(100, 1, r)) + oop("get", row_name(r, 0, 0x30))
        s += oop("set", row_name(r), value_word(r % 12)) + oop("at", 2 * r + 1)
    seeds["hand-set-get"] = s
    s = b""
    for i in range(19):
        s += oop("set", row_name(i % 14, 0, 0x10), value_edge(i))
    s += oop("set", raw_name(b"NOT_AN_OPTION"), 0, value_raw(b"1"))
    s += oop("set", row_name(3, 3, 0x81), 0, value_raw(b"1"))
    s += oop("set", row_name(5), value_raw(b"12 K")) + oop("set", row_name(5), value_raw(b"3MiB"))
    s += oop("set", row_name(0), value_raw(b"250MS")) + oop("nulls", 2) + oop("at", 0xf1) + oop("at", 0xf0)
    seeds["hand-bad-values"] = s
    s = oop("environment", 3, 0, value_raw(b"250ms"), 5, value_raw(b"12M"), 6, value_raw(b"bogus"),
            7, value_raw(b"yes"), 4)
    s += oop("print") + oop("environment", 0, 9, value_raw(b" 50"), 2)
    s += oop("environment", 1, 10, value_raw(b"json"), 11, value_raw(b"-0"), 1)
    seeds["hand-environment"] = s
    return seeds


# ---- fuzz_segment.c -----------------------------------------------------------------

def stats_layout():
    """Offsets in tpi_shm (src/monitor.h) of the process total's name and
    fragmentation, and of the first pool, from the X-macro list."""
    text = open(os.path.join(HERE, "..", "..", "include", "tierpool.h")).read()
    body = text[text.index("#define TP_STATS_POOL_FIELDS(X)"):text.index("#define TP_STATS_CLASS_FIELDS(X)")]
    fields = body.count("    X(")
    process = 64                       # magic, version, stats_size, seq, pid, updated, interval, count, pid_ns
    frag = process + 48 + 8 * fields   # version, size, name[32], pool_id, reserved, the fields
    size = frag + 8 + 60 * 13 * 8      # the classes after it
    return process + 8, frag, process + size


def patch(where, data):
    return struct.pack(">HB", where, len(data)) + data


def segment_seeds():
    name, frag, pool0 = stats_layout()
    nan = struct.pack("<d", float("nan"))
    return {
        "hand-valid": b"\0",
        "hand-empty": b"\1\0\0",
        "hand-short": b"\1\0\x40",
        "hand-longer": b"\2",
        "hand-magic": b"\0" + patch(0, b"tpmonit2"),
        "hand-other-pid": b"\0" + patch(24, struct.pack("<q", 1)),
        "hand-not-updated": b"\0" + patch(32, bytes(8)),
        "hand-pool-count": b"\0" + patch(48, struct.pack("<I", 0xffffffff)),
        "hand-names": b"\0" + patch(name, b"\x1b[2J" * 6 + b"ab") + patch(pool0 + 8, b"\xff" * 32),
        "hand-utf8": b"\0" + patch(name, "caf\u00e9 \u0085 \u6f22".encode() + b"\xc3\x00"),
        "hand-nan": b"\0" + patch(frag, nan) + patch(pool0 + frag - 64, struct.pack("<d", float("inf"))),
        "hand-namespace": b"\0" + patch(56, struct.pack("<Q", 4026531836 + 1)),
    }


def write(folder, seeds):
    path = os.path.join(HERE, "seeds", folder)
    os.makedirs(path, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    write("api", api_seeds())
    write("options", options_seeds())
    write("segment", segment_seeds())
