#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Tests of the `tierpool` tool's monitoring commands (stats, list, top,
record, plot, exporter) and of classes, options and help.

    cli_test.py CASE --tool TIERPOOL --publisher PUBLISHER --malloc LIB
                [--source DIR] [--work DIR] [--sanitize WHAT]

Each case starts what it needs (publisher.c, a process publishing a known
set of blocks in pools "alpha" and "beta"), runs the tool against it and
stops every child it started, even on failure. Exit status 0 (passed), 1
(failed) or 77 (skipped).
"""
import argparse
import contextlib
import difflib
import fcntl
import json
import os
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET

# The JSON schema's version and the number of size classes, as the public
# header defines them.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "include", "tierpool.h")) as _h:
    _header = _h.read()
    STATS_VERSION = int(re.search(r"#define TP_STATS_VERSION (\d+)", _header).group(1))
    STATS_CLASSES = int(re.search(r"#define TP_STATS_CLASSES (\d+)", _header).group(1))

SKIP = 77
# What publisher.c allocates.
ALPHA_BLOCKS, BETA_BLOCKS, BETA_HUGE, DEFAULT_BLOCKS = 1000, 300, 2, 10
NOT_PUBLISHING = "is not publishing statistics (start it with TIERPOOL_PUBLISH=1)"
CSV_HEADER = ("time_s,live_bytes,committed_bytes,resident_bytes,mapped_bytes,allocs,frees,"
              "alloc_rate,free_rate,fragmentation")

opts = None
children = []


class Failure(Exception):
    pass


class Skipped(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


def spawn(args, **kwargs):
    child = subprocess.Popen(args, **kwargs)
    children.append(child)
    return child


def stop_child(child, sig=signal.SIGTERM, timeout=5.0):
    """Signals a child and waits for it; kills it if it lingers."""
    if child.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(sig)
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    return child.returncode


def cleanup():
    for child in children:
        stop_child(child, signal.SIGKILL)
        for stream in (child.stdout, child.stderr):
            if stream:
                stream.close()


def tool(*args, env=None, timeout=30):
    return subprocess.run([opts.tool, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)


def poll_until(attempt, timeout=5.0, what="the expected snapshot"):
    """Calls attempt() until it returns something true; its last failure
    message if it never does."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            result = attempt()
            if result:
                return result
        except Failure as e:
            last = e
        if time.monotonic() > deadline:
            raise Failure(f"no {what} within {timeout} s" + (f": {last}" if last else ""))
        time.sleep(0.05)


def read_line(stream, timeout=10.0):
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def segment(pid):
    return f"/dev/shm/tierpool.{pid}"


@contextlib.contextmanager
def publisher(args=(), command=None, env_extra=None):
    """Starts a publishing process; yields its pid once it printed "ready".
    It is stopped (SIGTERM, then SIGKILL) on the way out, and its segment
    must be gone after it exits normally."""
    env = dict(os.environ, TIERPOOL_PUBLISH_INTERVAL="50ms")
    env.update(env_extra or {})
    child = spawn(command or [opts.publisher, *args], stdout=subprocess.PIPE, text=True, env=env)
    pid = child.pid
    passed = False
    try:
        line = read_line(child.stdout)
        check(line.strip() == f"ready {pid}", f"the publisher did not get ready: {line!r}")
        yield pid
        passed = True
    finally:
        status = stop_child(child)
        exists = os.path.exists(segment(pid))
        if exists:
            with contextlib.suppress(OSError):
                os.unlink(segment(pid))
    check(status == 0, f"the publisher exited with {status}")
    check(not exists, f"{segment(pid)} was left after the publisher exited")


def header_fields(macro):
    """The field names of an X-macro list in include/tierpool.h."""
    text = open(os.path.join(opts.source, "include", "tierpool.h")).read()
    body = re.search(r"#define %s\(X\)(.*?)\n\n" % macro, text, re.S).group(1)
    return re.findall(r"X\((\w+), (counter|gauge), (\w*), \"([^\"]*)\"\)", body)


def stats_json(pid):
    result = tool("stats", pid, "--json")
    check(result.returncode == 0, f"tierpool stats --json exited with {result.returncode}: {result.stderr}")
    pretty = subprocess.run([sys.executable, "-m", "json.tool"], input=result.stdout, capture_output=True, text=True)
    check(pretty.returncode == 0, f"not JSON ({pretty.stderr.strip()}): {result.stdout[:300]}")
    return json.loads(pretty.stdout)


def known_pools(doc):
    """The pools of a snapshot once it shows all publisher.c allocated."""
    pools = {p["pool"]: p for p in doc["pools"]}
    if not {"alpha", "beta", "default"} <= pools.keys():
        raise Failure(f"pools {sorted(pools)}")
    if pools["alpha"]["allocs"] != ALPHA_BLOCKS or pools["beta"]["allocs"] != BETA_BLOCKS + BETA_HUGE:
        raise Failure(f"allocs alpha {pools['alpha']['allocs']}, beta {pools['beta']['allocs']}")
    return pools


# ---- the Prometheus text format -------------------------------------------------------

METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(r"(%s)(?:\{((?:%s)(?:,(?:%s))*)?\})? (\S+)$" % (METRIC, LABEL, LABEL))


def sample(series, name, **labels):
    """The value of the one series of metric `name` whose labels include
    `labels` (others, such as pool_id, may be there too); None if none."""
    found = [v for (n, l), v in series.items()
             if n == name and all(f'{k}="{v}"' in l.split(",") for k, v in labels.items())]
    check(len(found) <= 1, f"{name} {labels}: {len(found)} series")
    return found[0] if found else None


def prometheus_check(text):
    """Checks the text format: HELP and TYPE once per family and before its
    samples, a family's samples together, names and labels well formed,
    values floats, counters named *_total, no series twice. Returns
    {(name, labels): value}."""
    check(text.endswith("\n"), "the exposition does not end with a newline")
    helps, types, series, closed = set(), {}, {}, set()
    current = None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"line {number}: {line!r}"
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            check(len(parts) == 4 and re.fullmatch(METRIC, parts[2]), f"bad comment, {where}")
            name = parts[2]
            if parts[1] == "HELP":
                check(name not in helps, f"a second HELP for {name}, {where}")
                helps.add(name)
            else:
                check(name not in types, f"a second TYPE for {name}, {where}")
                check(parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), f"bad type, {where}")
                types[name] = parts[3]
            if name != current:
                if current:
                    closed.add(current)
                check(name not in closed, f"family {name} split, {where}")
                current = name
            continue
        check(line and not line.startswith("#"), f"unexpected line, {where}")
        match = SAMPLE.match(line)
        check(match, f"not a sample, {where}")
        name, labels, value = match.groups()
        check(name == current, f"a sample of {name} outside its family (after {current}), {where}")
        check(name in types and name in helps, f"no HELP and TYPE before {where}")
        try:
            number_value = float(value)
        except ValueError:
            raise Failure(f"value is not a float, {where}")
        if types[name] == "counter":
            check(name.endswith("_total"), f"counter {name} does not end in _total")
        key = (name, labels or "")
        check(key not in series, f"series twice, {where}")
        series[key] = number_value
    return series


# ---- cases ---------------------------------------------------------------------------

def case_stats_json():
    pool_fields = [f[0] for f in header_fields("TP_STATS_POOL_FIELDS")]
    class_fields = [f[0] for f in header_fields("TP_STATS_CLASS_FIELDS")]
    check(len(pool_fields) > 10 and len(class_fields) > 5, "cannot read the X-macro lists")
    with publisher() as pid:
        doc = poll_until(lambda: known_pools(stats_json(pid)) and stats_json(pid))
        pools = known_pools(doc)
    check(doc["version"] == STATS_VERSION, f"version {doc['version']}, tierpool.h says {STATS_VERSION}")
    check(list(doc.keys()) == ["version", "pools", "process"], f"top-level keys {list(doc.keys())}")
    for p in doc["pools"] + [doc["process"]]:
        id_key = ["pool_id"] if p is not doc["process"] else []
        check(list(p.keys()) == ["pool"] + id_key + pool_fields + ["fragmentation", "classes"],
              f"pool {p['pool']}: keys {list(p.keys())}")
        for c in p["classes"]:
            check(list(c.keys()) == class_fields, f"pool {p['pool']}: class keys {list(c.keys())}")
    alpha, beta, default = pools["alpha"], pools["beta"], pools["default"]
    check(alpha["live_blocks"] == ALPHA_BLOCKS and alpha["frees"] == 0, f"alpha {alpha}")
    check([(c["block_size"], c["allocs"], c["live_blocks"]) for c in alpha["classes"]] == [(112, 1000, 1000)],
          f"alpha's classes {alpha['classes']}")
    check(alpha["live_bytes"] == 112 * ALPHA_BLOCKS, f"alpha live_bytes {alpha['live_bytes']}")
    check(beta["huge_blocks"] == BETA_HUGE and beta["live_blocks"] == BETA_BLOCKS + BETA_HUGE, f"beta {beta}")
    check([(c["block_size"], c["allocs"]) for c in beta["classes"]] == [(3072, BETA_BLOCKS)],
          f"beta's classes {beta['classes']}")
    check(default["allocs"] >= DEFAULT_BLOCKS, f"default allocs {default['allocs']}")
    process = doc["process"]
    check(process["pool"] == "process", f"process {process['pool']}")
    check(process["allocs"] == sum(p["allocs"] for p in doc["pools"]), "process allocs is not the pools' sum")
    check(process["live_bytes"] >= alpha["live_bytes"] + beta["live_bytes"], "process live_bytes")
    check(0.0 <= process["fragmentation"] <= 1.0, "fragmentation out of 0..1")


def case_stats_prometheus():
    # More pools than the library writes under one HELP and TYPE (8).
    with publisher(["--extra-pools", "12"]) as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        result = tool("stats", pid, "--prometheus")
    check(result.returncode == 0, f"exit {result.returncode}: {result.stderr}")
    series = prometheus_check(result.stdout)
    check(sample(series, "tierpool_allocs_total", pool="extra11") is not None, "not every pool is exported")
    check(sample(series, "tierpool_allocs_total", pool="alpha") == ALPHA_BLOCKS, "tierpool_allocs_total of alpha")
    check(sample(series, "tierpool_huge_blocks", pool="beta") == BETA_HUGE, "tierpool_huge_blocks of beta")
    check(sample(series, "tierpool_class_live_blocks", pool="alpha", size_class="112") == ALPHA_BLOCKS,
          "tierpool_class_live_blocks of alpha's 112-byte class")
    check(sample(series, "tierpool_purge_delay_seconds", pool="alpha") is not None,
          "purge_delay_ms is not exported in seconds")
    check(sample(series, "tierpool_fragmentation_ratio", pool="beta") is not None, "no fragmentation ratio")
    names = {name for name, _ in series}
    for field, kind, unit, _ in header_fields("TP_STATS_POOL_FIELDS"):
        base = field[:-3] + "_seconds" if unit == "ms" else field
        check("tierpool_" + base + ("_total" if kind == "counter" else "") in names, f"no metric for {field}")


def case_stats_same_as_library():
    """What the tool prints of a snapshot is what tp_stats_print printed in
    the process itself, to the byte."""
    work = opts.work
    os.makedirs(work, exist_ok=True)
    with publisher(["--self-stats", work]) as pid:
        for flag, name in (("--text", "text.txt"), ("--json", "json.json"), ("--prometheus", "prometheus.txt")):
            expected = open(os.path.join(work, name)).read()

            def same():
                got = tool("stats", pid, flag)
                if got.stdout != expected:
                    diff = "".join(difflib.unified_diff(expected.splitlines(True), got.stdout.splitlines(True),
                                                        "tp_stats_print", "tierpool stats " + flag, n=1))
                    raise Failure(diff[:3000])
                return True

            poll_until(same, what=f"stats {flag} equal to the library's")


def case_not_publishing():
    sleeper = spawn(["sleep", "30"])
    try:
        for command in (["stats"], ["stats", "--json"], ["top", "--once"], ["record", "-t", "1s"],
                        ["exporter", "--listen", "127.0.0.1:0"]):
            result = tool(*command, sleeper.pid)
            check(result.returncode == 1 and f"process {sleeper.pid} {NOT_PUBLISHING}" in result.stderr,
                  f"{command} of a process that does not publish: exit {result.returncode}, {result.stderr!r}")
    finally:
        stop_child(sleeper)
    gone = subprocess.Popen(["true"])
    gone.wait()
    result = tool("stats", gone.pid)
    check(result.returncode == 1 and "no process" in result.stderr, f"stats of an exited pid: {result.stderr!r}")
    for command in (["stats"], ["stats", "abc"], ["stats", "1", "--bogus"], ["stats", "1", "2"], ["record"],
                    ["top", "-n"], ["top", "1", "--interval", "x"], ["exporter", "x"], ["exporter", "--bogus"],
                    ["plot"], ["classes", "x"], ["list", "x"], ["no-such-command"]):
        result = tool(*command)
        check(result.returncode == 2, f"usage error {command}: exit {result.returncode}")


def case_list():
    with publisher() as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        result = tool("list")
        check(result.returncode == 0, f"exit {result.returncode}")
        rows = [line.split() for line in result.stdout.splitlines()]
        check([str(pid), "cli_publisher", "3"] in [row[:3] for row in rows], f"pid {pid} not listed: {result.stdout}")
        # Without a pid, top takes the only publishing process or lists them.
        result = tool("top", "--once")
        check(f"pid {pid} (cli_publisher)" in result.stdout or str(pid) in result.stdout,
              f"top without a pid: {result.stdout} {result.stderr}")


def case_top():
    with publisher() as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        # Not on a terminal: plain frames.
        result = tool("top", pid, "-n", "2", "--interval", "100ms")
        check(result.returncode == 0, f"top -n 2: exit {result.returncode}: {result.stderr}")
        check(result.stdout.count(f"tierpool top - pid {pid} ") == 2, f"top -n 2 drew: {result.stdout}")
        check("\x1b" not in result.stdout, "escapes written to a pipe")
        for text in ("POOL", "alpha", "beta", "default", "CLASS", "112", "3072", "fragmentation", "cache hit",
                     "limit   ", "pressure "):
            check(text in result.stdout, f"no {text!r} in top's frame: {result.stdout}")
        result = tool("top", pid, "--once")
        check(result.returncode == 0 and "allocs  0/s" in result.stdout, f"top --once has no rates: {result.stdout}")
        # getopt_long conventions: a value attached or apart, options after
        # the pid; a bare number is milliseconds.
        for args in (["-n1", "-d100ms", pid], ["-n", "1", "-d", "100ms", pid], [pid, "--iterations=1", "-d", "100"]):
            result = tool("top", *args)
            check(result.returncode == 0 and result.stdout.count("tierpool top - pid") == 1,
                  f"top {args}: {result.returncode} {result.stderr}")
        result = tool("top", pid, "-d", "1")
        check(result.returncode == 2 and "a bare number is milliseconds" in result.stderr, f"-d 1: {result.stderr}")
        top_on_terminal(pid)


def top_on_terminal(pid):
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    before = termios.tcgetattr(slave)
    child = spawn([opts.tool, "top", str(pid), "--interval", "100ms"], stdin=slave, stdout=slave, stderr=slave)
    screen = b""
    try:
        def shows(*texts):
            nonlocal screen
            while select.select([master], [], [], 0.05)[0]:
                screen += os.read(master, 65536)
            text = screen.decode(errors="replace")
            return all(t in text for t in texts)

        poll_until(lambda: shows(f"tierpool top - pid {pid}", "alpha", "beta", "q quits", "allocs  0/s"),
                   what="top screen")
        check("\x1b[H" in screen.decode() and "\x1b[J" in screen.decode(), "top does not redraw in place")
        raw = termios.tcgetattr(slave)
        check(not raw[3] & termios.ICANON and not raw[3] & termios.ECHO, "top left the terminal in line mode")
        os.write(master, b"q")
        child.wait(5)
        check(child.returncode == 0, f"top exited with {child.returncode} after q")
        shows()
        check(screen.decode().endswith("\x1b[?25h"), "top did not show the cursor again")
        check(termios.tcgetattr(slave)[3] == before[3], "top did not restore the terminal")
    except subprocess.TimeoutExpired:
        raise Failure("top did not quit on q: " + screen.decode(errors="replace")[-2000:])
    finally:
        stop_child(child)
        os.close(master)
        os.close(slave)


PYTHON_WORKLOAD = """
import os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
blocks = [bytes(100) for _ in range(10000)]
print("ready", os.getpid(), flush=True)
time.sleep(30)
"""


def case_preload():
    if opts.sanitize:
        raise Skipped("a sanitizer build cannot preload an allocator")
    env = {"LD_PRELOAD": opts.malloc, "TIERPOOL_PUBLISH": "1", "PYTHONMALLOC": "malloc"}
    with publisher(command=[sys.executable, "-c", PYTHON_WORKLOAD], env_extra=env) as pid:
        def loaded():
            doc = stats_json(pid)
            pools = {p["pool"]: p for p in doc["pools"]}
            check("default" in pools, f"no default pool: {sorted(pools)}")
            d = pools["default"]
            check(d["allocs"] >= 10000 and d["live_blocks"] >= 10000 and d["live_bytes"] >= 10000 * 100,
                  f"default pool: allocs {d['allocs']}, live {d['live_blocks']}")
            # Python's start allocates as much: the bytes objects (133 bytes
            # each) must be there too.
            check(any(c["block_size"] == 160 and c["live_blocks"] >= 10000 for c in d["classes"]),
                  "no 160-byte class holding 10000 blocks")
            return d
        poll_until(loaded)


def read_csv(path):
    lines = open(path).read().splitlines()
    check(lines and lines[0] == CSV_HEADER, f"{path}: header {lines[:1]}")
    return lines


def case_record_plot():
    work = opts.work
    os.makedirs(work, exist_ok=True)
    csv, svg = os.path.join(work, "record.csv"), os.path.join(work, "record.svg")
    for path in (csv, svg):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    with publisher() as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        start = time.monotonic()
        result = tool("record", pid, "-o", csv, "--interval", "100ms", "--duration", "1s")
        took = time.monotonic() - start
        check(result.returncode == 0, f"record: exit {result.returncode}: {result.stderr}")
        # Only lower bounds on time: a loaded machine makes a run longer,
        # never shorter. The recorder samples at 0, 100, ..., 1000 ms (a
        # snapshot caught mid-update is skipped), so at most 11 rows, the
        # k-th (from 0) at k * 100 ms or later.
        check(took >= 0.95, f"record --duration 1s stopped after {took:.2f} s")
        lines = read_csv(csv)
        check(2 <= len(lines) - 1 <= 11, f"{len(lines) - 1} rows for 1 s at 100 ms")
        rows = [[float(v) for v in line.split(",")] for line in lines[1:]]
        check(all(len(r) == 10 for r in rows), "rows without 10 columns")
        check(all(b[0] > a[0] for a, b in zip(rows, rows[1:])), "time_s does not grow")
        check(all(r[0] >= k * 0.1 - 0.0015 for k, r in enumerate(rows)), "rows closer than the 100 ms interval")
        check(all(r[1] >= 112 * ALPHA_BLOCKS + 3072 * BETA_BLOCKS for r in rows), "live_bytes too low")
        check(all(r[5] >= ALPHA_BLOCKS + BETA_BLOCKS for r in rows), "allocs too low")
        check(all(r[7] == 0 and r[8] == 0 for r in rows), "allocation rates of a quiet process are not 0")
        # A second recording appends rows, not a second header; it stops
        # when the process exits.
        recorder = spawn([opts.tool, "record", str(pid), "-o", csv, "-i", "100ms"], stderr=subprocess.PIPE,
                         text=True)
        # Three rows, however long the recorder takes to start.
        poll_until(lambda: len(open(csv).read().splitlines()) >= len(lines) + 3, timeout=30,
                   what="three rows from the second recording")
    recorder.wait(20)
    stderr = recorder.stderr.read()
    check(recorder.returncode == 0 and "has exited" in stderr, f"record after the process exited: {stderr!r}")
    lines = read_csv(csv)
    check(lines.count(CSV_HEADER) == 1, "a second header appended")
    check(len(lines) - 1 >= len(rows) + 3, "the second recording appended no rows")

    result = tool("plot", csv, "-o", svg, "--title", "publisher <test> & co")
    check(result.returncode == 0, f"plot: exit {result.returncode}: {result.stderr}")
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    check(root.tag == ns + "svg", f"root {root.tag}")
    texts = [t.text for t in root.iter(ns + "text")]
    for label in ("publisher <test> & co", "MiB", "time (s)", "live", "committed", "resident", "allocations/s"):
        check(label in texts, f"no text {label!r} in the SVG")
    groups = {g.get("class"): g for g in root.iter(ns + "g")}
    for column in ("live_bytes", "committed_bytes", "resident_bytes", "alloc_rate", "free_rate"):
        check(column in groups, f"no line for {column}")
        # two recordings: two runs of the line, time restarting at 0
        check(len(groups[column].findall(ns + "polyline")) == 2, f"{column}: not two runs")
    check(len(groups["ticks"].findall(ns + "text")) >= 4, "too few tick labels")
    result = tool("plot", os.path.join(opts.source, "include", "tierpool.h"), "-o", svg)
    check(result.returncode == 1 and "time_s" in result.stderr, f"plot of a non-CSV file: {result.stderr!r}")
    # nan, inf and absurd values: skipped, never written as coordinates.
    bad = os.path.join(work, "bad.csv")
    with open(bad, "w") as f:
        f.write(CSV_HEADER + "\n")
        for t, v in enumerate(["1", "nan", "inf", "-inf", "1e300", "-nan", "2"]):
            f.write(f"{t},{v},2,3,4,{v},{v},6,{v},0.5\n")
    result = tool("plot", bad, "-o", svg)
    check(result.returncode == 0, f"plot of nan and inf: {result.stderr!r}")
    root = ET.parse(svg).getroot()
    for element in root.iter():
        for name, value in element.attrib.items():
            numbers = re.findall(r"[-+]?[0-9.]*[a-zA-Z]+|[-+]?[0-9.]+", value) if name in (
                "x", "y", "x1", "x2", "y1", "y2", "points") else []
            check(all(re.fullmatch(r"[-+]?[0-9.]+", n) for n in numbers), f"{name}={value!r} in the SVG")


def case_record_ring():
    """record --ring keeps a file of fixed size, the newest rows over the
    oldest, across recordings; plot draws it from the oldest."""
    work = opts.work
    os.makedirs(work, exist_ok=True)
    ring, svg = os.path.join(work, "ring.csv"), os.path.join(work, "ring.svg")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(ring)
    with publisher() as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        sizes, times = [], []
        for _ in range(2):  # the second recording goes on where the first stopped
            result = tool("record", pid, "-o", ring, "--ring", "5", "-i", "50ms", "-t", "600ms")
            check(result.returncode == 0 and "rows written to the ring" in result.stderr, f"record: {result.stderr}")
            written = int(re.search(r"(\d+) rows written", result.stderr).group(1))
            check(written > 5, f"only {written} rows: the ring never wrapped")
            sizes.append(os.path.getsize(ring))
            lines = open(ring).read().splitlines()
            check(lines[0].startswith("# tierpool ring rows=000000005 ") and lines[1] == CSV_HEADER,
                  f"ring header: {lines[:2]}")
            slots = lines[2:]
            check(len(slots) == 5 and all(len(line) == 199 for line in slots), f"slots: {slots}")
            nxt = int(re.search(r"next=(\d+)", lines[0]).group(1))
            ordered = [float(line.split(",")[0]) for line in slots[nxt:] + slots[:nxt]]
            check(ordered == sorted(ordered) and len(set(ordered)) == 5, f"the ring from its oldest: {ordered}")
            times.append(ordered)
        check(sizes[0] == sizes[1], f"the ring grew: {sizes}")
        check(times[1][0] > times[0][-1], f"the second recording's times do not go on: {times}")
        result = tool("record", pid, "-o", ring, "--ring", "6", "-t", "100ms")
        check(result.returncode == 1 and "not a ring of 6 rows" in result.stderr, f"--ring 6: {result.stderr}")
        result = tool("record", pid, "--ring", "5")
        check(result.returncode == 2, "--ring without -o")
    result = tool("plot", ring, "-o", svg)
    check(result.returncode == 0, f"plot of a ring: {result.stderr}")
    ns = "{http://www.w3.org/2000/svg}"
    groups = {g.get("class"): g for g in ET.parse(svg).getroot().iter(ns + "g")}
    runs = groups["live_bytes"].findall(ns + "polyline")
    check(len(runs) == 1 and len(runs[0].get("points").split()) == 5, "the ring is not one run of 5 points")


def fetch(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=10) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def start_exporter(*args):
    child = spawn([opts.tool, "exporter", "--listen", "127.0.0.1:0", *map(str, args)], stdout=subprocess.PIPE,
                  text=True)
    line = read_line(child.stdout)
    match = re.search(r"serving (http://127\.0\.0\.1:\d+)/metrics", line)
    check(match, f"exporter said {line!r}")
    return child, match.group(1)


def without_labels(text, *names):
    """The exposition with the labels `names` taken out of every sample."""
    for name in names:
        text = re.sub(r'%s="(?:[^"\\]|\\.)*",?' % name, "", text)
    return text.replace(",}", "}").replace("{}", "")


def case_exporter():
    with publisher() as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        exporter, base = start_exporter(pid)
        status, headers, body = fetch(base + "/metrics")
        check(status == 200, f"/metrics: {status}")
        check(headers["Content-Type"].startswith("text/plain; version=0.0.4"), f"type {headers['Content-Type']}")
        series = prometheus_check(body)
        check(sample(series, "tierpool_allocs_total", pool="alpha", pid=pid, comm="cli_publisher") == ALPHA_BLOCKS,
              "no alpha of the publisher in /metrics")
        # The library's families, labelled with the process (classes only
        # with --classes), then the exporter's own.
        library = tool("stats", pid, "--prometheus").stdout
        library = library[:library.index("# HELP tierpool_class_")]
        mine = without_labels(body, "pid", "comm")
        check(mine.startswith(library), "/metrics differs from stats --prometheus")
        check(sample(series, "tierpool_exporter_processes") == 1, "tierpool_exporter_processes")
        status, _, _ = fetch(base + "/other")
        check(status == 404, f"/other: {status}")
        status, _, _ = fetch(base + "/metrics?x=1")
        check(status == 200, f"/metrics?x=1: {status}")
        check(stop_child(exporter, signal.SIGTERM) == 0, f"exporter exited with {exporter.returncode} on SIGTERM")

        exporter, base = start_exporter("--classes", pid)
        _, _, body = fetch(base + "/metrics")
        series = prometheus_check(body)
        check(sample(series, "tierpool_class_live_blocks", pool="alpha", size_class="112") == ALPHA_BLOCKS,
              "--classes: no class families")
        stop_child(exporter)

        exporter, base = start_exporter(pid, "--max-requests", "2")
        fetch(base + "/metrics")
        fetch(base + "/")
        exporter.wait(5)
        check(exporter.returncode == 0, f"exporter --max-requests 2 exited with {exporter.returncode}")

        exporter, base = start_exporter(pid)
    # The process is gone: the exporter stops by itself.
    exporter.wait(5)
    check(exporter.returncode == 0, f"exporter after the process exited: {exporter.returncode}")


def trickle(sock, stop):
    """Sends a request one byte at a time, never finishing it."""
    request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
    i = 0
    while not stop.is_set():
        try:
            sock.send(request[i % len(request):i % len(request) + 1])
        except OSError:
            return
        i += 1
        stop.wait(0.2)


def case_exporter_slow_clients():
    """50 clients that send a byte at a time, and idle ones, do not stall a
    scrape; past the cap a client is told 503 at once; a slow client is cut
    off at its deadline."""
    import socket
    import threading
    with publisher() as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        exporter, base = start_exporter(pid)
        host, port = base[len("http://"):].split(":")
        stop = threading.Event()
        slow = [socket.create_connection((host, int(port))) for _ in range(50)]
        threads = [threading.Thread(target=trickle, args=(c, stop), daemon=True) for c in slow[:40]]
        for t in threads:
            t.start()
        try:
            # The slow ones keep their connections for the whole scrape: one
            # server at a time would answer it only after all of them.
            status, _, body = fetch(base + "/metrics")
            check(status == 200 and "tierpool_allocs_total" in body, f"scrape beside 50 slow clients: {status}")
            check(all(t.is_alive() for t in threads), "the slow clients stopped before the scrape was answered")
        finally:
            stop.set()
            for c in slow:
                c.close()
        stop_child(exporter)

        exporter, base = start_exporter(pid, "--max-connections", "3")
        host, port = base[len("http://"):].split(":")
        idle = [socket.create_connection((host, int(port))) for _ in range(3)]
        time.sleep(0.3)
        status, _, body = fetch(base + "/metrics")
        check(status == 503 and "too many connections" in body, f"past the cap: {status} {body!r}")
        # An idle client is cut off at its deadline (5 s): recv sees the end.
        idle[0].settimeout(20)
        check(idle[0].recv(100) == b"", "an idle client was not cut off")
        for c in idle:
            c.close()
        status, _, _ = fetch(base + "/metrics")
        check(status == 200, f"after the idle clients left: {status}")
        stop_child(exporter)


def case_exporter_fleet():
    """One exporter for the machine: started before two publishers, it
    serves both with their pid and comm, drops one once it exited, keeps
    serving; its output parses with prometheus_client."""
    parser = prometheus_parser()
    exporter, base = start_exporter()
    _, _, body = fetch(base + "/metrics")
    with publisher(["--comm", "fleet-one"]) as one, publisher(["--comm", "fleet-two", "--pool", "alpha"]) as two:
        def both():
            _, _, text = fetch(base + "/metrics")
            series = prometheus_check(text)
            check(sample(series, "tierpool_allocs_total", pid=one, comm="fleet-one", pool="alpha") == ALPHA_BLOCKS,
                  "fleet-one's alpha")
            check(sample(series, "tierpool_live_blocks", pid=two, comm="fleet-two", pool="alpha", pool_id="3") == 1,
                  "fleet-two's second alpha pool")
            return text
        text = poll_until(both, what="both publishers in /metrics")
        families = {f.name: f for f in parser(text)}
        pids = {s.labels["pid"] for s in families["tierpool_live_bytes"].samples}
        check({str(one), str(two)} <= pids, f"prometheus_client sees pids {pids}")
        # Two pools named alpha in one process: two series.
        alphas = [s for s in families["tierpool_live_bytes"].samples
                  if s.labels["pid"] == str(two) and s.labels["pool"] == "alpha"]
        check(len(alphas) == 2 and len({s.labels["pool_id"] for s in alphas}) == 2, f"two alpha pools: {alphas}")
        publishers = [c for c in children if c.pid == one]
        stop_child(publishers[0])

        def dropped():
            _, _, text = fetch(base + "/metrics")
            series = prometheus_check(text)
            check(sample(series, "tierpool_allocs_total", pid=one, pool="alpha") is None, "fleet-one still served")
            check(sample(series, "tierpool_allocs_total", pid=two, pool="beta") is not None, "fleet-two not served")
            return True
        poll_until(dropped, what="fleet-one gone from /metrics")
    check(exporter.poll() is None, "the exporter exited with its targets")
    status, _, body = fetch(base + "/metrics")
    check(status == 200 and sample(prometheus_check(body), "tierpool_exporter_processes") is not None,
          f"the exporter after both exited: {status}")
    stop_child(exporter)


def prometheus_parser():
    try:
        from prometheus_client.parser import text_string_to_metric_families
    except ImportError:
        # Debian's package, when this python3 is not Debian's (pyenv, venv)
        sys.path.append("/usr/lib/python3/dist-packages")
        try:
            from prometheus_client.parser import text_string_to_metric_families
        except ImportError:
            raise Skipped("needs python3-prometheus-client (tools/install-deps.sh installs it)")
    return lambda text: list(text_string_to_metric_families(text))


# Pool names a program may give: UTF-8, control characters and escapes for
# terminals, quotes and backslashes, one name twice, an unnamed pool, and a
# long one cut at 31 bytes in the middle of a character.
NASTY_NAMES = ["dup", "dup", "-", "caf\u00e9 \u00fc\u00df \u6f22\u5b57", "\x1b[31mred\x1b[0m\x07\tq\"b\\s\nl",
               "\x1b]0;title\x07", "x" * 29 + "\u00e9\u00e9", "\u0085c1"]


def case_names():
    parse = prometheus_parser()
    args = []
    for name in NASTY_NAMES:
        args += ["--pool", name]
    work = opts.work
    os.makedirs(work, exist_ok=True)
    with publisher(args + ["--self-stats", work]) as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        doc = stats_json(pid)
        names = [p["pool"] for p in doc["pools"]]
        ids = [p["pool_id"] for p in doc["pools"]]
        check(len(set(ids)) == len(ids), f"pool ids repeat: {ids}")
        for name in NASTY_NAMES[3:6] + [NASTY_NAMES[7]]:
            check(name in names, f"{name!r} not in the JSON names {names}")
        check(names.count("dup") == 2 and "" in names, f"dup twice and an unnamed pool: {names}")
        check("x" * 29 + "\u00e9" in names, f"the long name is not cut at a character: {names}")
        text = tool("stats", pid, "--prometheus")
        check(text.returncode == 0, "stats --prometheus")
        families = {f.name: f for f in parse(text.stdout)}
        live = families["tierpool_live_blocks"].samples
        keys = [(s.labels["pool"], s.labels["pool_id"]) for s in live]
        check(len(set(keys)) == len(keys), f"series repeat: {keys}")
        check(sum(1 for s in live if s.labels["pool"] == "dup") == 2, "two dup series")
        # Control characters show as escapes, nothing raw reaches a terminal.
        for flag in ("--text", "--json", "--prometheus"):
            out = tool("stats", pid, flag).stdout
            check(not re.search(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]", out), f"stats {flag}: a raw control character")
        red = [s.labels["pool"] for s in live if "red" in s.labels["pool"]]
        check(red == ["\\x1b[31mred\\x1b[0m\\x07\\x09q\"b\\s\nl"], f"the escaped name reads {red}")
        # The library's own output of the same pools parses too.
        json.load(open(os.path.join(work, "json.json")))
        parse(open(os.path.join(work, "prometheus.txt")).read())
        for command in (["top", pid, "--once"], ["list"]):
            out = tool(*command).stdout
            check("\x1b" not in out and "\x07" not in out, f"{command}: a raw escape")
            check(not command[0] == "top" or "\\x1b[31mred" in out, f"top shows no escaped name: {out}")
        exporter, base = start_exporter(pid)
        _, _, body = fetch(base + "/metrics")
        stop_child(exporter)
        parse(body)


def forged_copy(source_pid, target_pid):
    """The bytes of a real segment, rewritten as if process target_pid had
    published them."""
    data = bytearray(open(segment(source_pid), "rb").read())
    data[24:32] = struct.pack("<q", target_pid)
    return data


def case_untrusted_segments():
    """Files in /dev/shm named like a segment but not one are never opened
    in a way that blocks, never shown as a process's statistics, and what a
    segment holds is checked before it is printed."""
    sleeper = spawn(["sleep", "60"])
    path = segment(sleeper.pid)
    try:
        # A FIFO: opening it would block for ever.
        os.mkfifo(path)
        for command in (["list"], ["stats", sleeper.pid], ["top", sleeper.pid, "--once"]):
            try:
                result = tool(*command, timeout=15)
            except subprocess.TimeoutExpired:
                raise Failure(f"{command} hangs on a FIFO named {path}")
            check(command[0] == "list" or (result.returncode == 1 and "not a segment" in result.stderr),
                  f"{command} with a FIFO: {result.returncode} {result.stderr!r}")
        os.unlink(path)
        with publisher(["--pool", "forged"]) as pid:
            poll_until(lambda: known_pools(stats_json(pid)))
            data = forged_copy(pid, sleeper.pid)
            # A link to a real segment is not followed.
            os.symlink(segment(pid), path)
            result = tool("stats", sleeper.pid)
            check(result.returncode == 1 and "not a segment" in result.stderr, f"a symlink: {result.stderr!r}")
            os.unlink(path)
            if os.geteuid() == 0:
                # Another user's file: forged figures for a process not theirs.
                with open(path, "wb") as f:
                    f.write(data)
                os.chown(path, 65534, 65534)
                result = tool("stats", sleeper.pid)
                check(result.returncode == 1 and "forged" not in result.stdout and "not a segment" in result.stderr,
                      f"another user's file shown as process {sleeper.pid}'s: {result.stdout[:200]!r}")
                check(str(sleeper.pid) not in tool("list").stdout, "list shows the forged segment")
                os.unlink(path)
            # Counts beyond the layout and names without their NUL.
            size = (len(data) - 64) // 33
            data[48:52] = struct.pack("<I", 100000)
            for i in range(33):
                data[64 + i * size + 8:64 + i * size + 40] = b"\x1b" * 32
            with open(path, "wb") as f:
                f.write(data)
            result = tool("stats", sleeper.pid)
            check(result.returncode == 1, f"a pool count of 100000: exit {result.returncode}")
            data[48:52] = struct.pack("<I", 3)
            with open(path, "wb") as f:
                f.write(data)
            for flag in ("--text", "--json", "--prometheus"):
                result = tool("stats", sleeper.pid, flag)
                check(result.returncode == 0 and "\x1b" not in result.stdout,
                      f"names without NUL, {flag}: {result.returncode} {result.stderr[-300:]}")
            os.unlink(path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        stop_child(sleeper)


def case_squatted_name():
    """A segment name another user holds: the process publishes under a
    fresh name, says so once, and the tool finds it."""
    if os.geteuid() != 0:
        raise Skipped("needs root to make a file of another user")

    def squat():
        """In the child: another user (65533) takes the name, then the
        publisher runs as nobody (65534), who cannot remove it."""
        path = segment(os.getpid())
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.fchown(fd, 65533, 65533)
        os.close(fd)
        os.setgid(65534)
        os.setuid(65534)
    env = dict(os.environ, TIERPOOL_PUBLISH_INTERVAL="50ms")
    child = spawn([opts.publisher], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                  preexec_fn=squat)
    try:
        line = read_line(child.stdout)
        check(line.strip() == f"ready {child.pid}", f"the publisher did not start: {line!r}")
        doc = poll_until(lambda: known_pools(stats_json(child.pid)))
        check(doc, "no statistics")
        fallback = [n for n in os.listdir("/dev/shm") if n.startswith(f"tierpool.{child.pid}.")]
        check(len(fallback) == 1, f"segments {fallback}")
    finally:
        stop_child(child)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(segment(child.pid))
    said = child.stderr.read()
    check(said.count("is taken by another user; publishing to") == 1, f"stderr: {said!r}")
    check(not [n for n in os.listdir("/dev/shm") if n.startswith(f"tierpool.{child.pid}.")],
          "the fallback segment was left")


def dead_segments():
    out = []
    for name in os.listdir("/dev/shm"):
        match = re.fullmatch(r"tierpool\.(\d+)(\..*)?", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            out.append(name)
    return out


def case_children_exit():
    """20 forked children that publish and leave by _exit leave segments
    behind; the next tierpool list removes them (--prune says so)."""
    # Each child checks that its segment is there before it leaves (or the
    # publisher fails); a list run by another test beside this one may
    # remove some before ours.
    with publisher(["--fork-children", "20"]) as pid:
        left = dead_segments()
        result = tool("list", "--prune")
        check(result.returncode == 0, f"list --prune: {result.stdout[:500]}")
        still = [name for name in left if os.path.exists("/dev/shm/" + name)]
        check(not still, f"left after list: {still}")
        said = [line for line in result.stdout.splitlines() if line.startswith("removed ")]
        check(all(line.endswith(": its process is gone") for line in said if any(n in line for n in left)),
              f"list --prune: {said}")
        check(str(pid) in result.stdout, "list lost the live publisher")


def case_exec_child():
    """A child that publishes and then calls exec leaves its segment, which
    it no longer maps: list --prune removes it once it is older than
    SNAPSHOT_PRUNE_AGE_S (5 s), and not before."""
    with publisher(["--exec-child", "30"]):
        def sleeper_segment():
            for name in os.listdir("/dev/shm"):
                match = re.fullmatch(r"tierpool\.(\d+)", name)
                with contextlib.suppress(OSError):
                    if match and open(f"/proc/{match.group(1)}/comm").read().strip() == "sleep":
                        return name, int(match.group(1))
            return None
        name, child = poll_until(sleeper_segment, what="the exec'd child's segment")
        try:
            tool("list")
            check(os.path.exists("/dev/shm/" + name), "a young segment was pruned")
            time.sleep(6.0)
            result = tool("list", "--prune")
            # Another test's list, run beside this one, may have removed it first.
            check(not os.path.exists("/dev/shm/" + name), f"the exec'd child's segment stays: {result.stdout}")
            said = [line for line in result.stdout.splitlines() if line.startswith("removed ") and name in line]
            check(all(line.endswith("its process no longer maps it (exec)") for line in said),
                  f"removed for another reason: {said}")
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def case_truncated_segment():
    """The owner truncating a live segment does not kill the publisher
    (SIGBUS); it publishes again."""
    with publisher() as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        for _ in range(3):
            os.truncate(segment(pid), 0)
            time.sleep(0.2)
            os.truncate(segment(pid), 4096)
            time.sleep(0.2)
        poll_until(lambda: known_pools(stats_json(pid)), what="statistics after the truncations")
        check(os.path.getsize(segment(pid)) > 4096, "the segment was not made anew")


def served_metrics(body):
    return {line.split("{")[0].split(" ")[0] for line in body.splitlines() if line and not line.startswith("#")}


def rule_expressions(path):
    """The expr: of each rule in a Prometheus rule file (the plain YAML
    contrib/ writes: `expr: ...` or `expr: |` and an indented block)."""
    lines = open(path).read().splitlines()
    exprs = []
    for i, line in enumerate(lines):
        match = re.match(r"(\s*)expr:\s*(.*)$", line)
        if not match:
            continue
        if match.group(2) not in ("|", ">", "|-", ">-"):
            exprs.append(match.group(2))
            continue
        indent, block = len(match.group(1)), []
        for follow in lines[i + 1:]:
            if follow.strip() and len(follow) - len(follow.lstrip()) <= indent:
                break
            block.append(follow.strip())
        exprs.append(" ".join(block))
    return exprs


def case_contrib():
    """contrib/: the Grafana dashboard is JSON, and it and the alert rules
    name only metrics the exporter serves; promtool accepts the rules (when
    installed); the systemd unit's exporter command runs."""
    contrib = os.path.join(opts.source, "contrib")
    dashboard = json.load(open(os.path.join(contrib, "grafana", "tierpool-dashboard.json")))
    rules = os.path.join(contrib, "prometheus", "tierpool-alerts.yml")
    unit = open(os.path.join(contrib, "systemd", "tierpool-exporter.service")).read()
    check(os.path.exists(os.path.join(contrib, "containers.md")), "no container guide")
    with publisher() as pid:
        poll_until(lambda: known_pools(stats_json(pid)))
        # The unit's command, on a free port, answering one scrape.
        exec_start = re.search(r"^ExecStart=\S*tierpool (exporter .*)$", unit, re.M)
        check(exec_start, "the unit has no ExecStart running tierpool exporter")
        args = re.sub(r"--listen \S+", "", exec_start.group(1)).split()[1:]
        exporter, base = start_exporter("--classes", *args)
        status, _, body = fetch(base + "/metrics")
        stop_child(exporter)
        check(status == 200, f"the unit's exporter command: {status}")
    served = served_metrics(body)
    check("tierpool_memory_limit_bytes" in served and "tierpool_class_allocs_total" in served,
          f"served: {sorted(served)}")
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    check(len(exprs) >= 10, f"only {len(exprs)} dashboard queries")
    rule_exprs = rule_expressions(rules)
    check(len(rule_exprs) >= 3, f"only {len(rule_exprs)} alert rules")
    for where, texts in (("dashboard", exprs), ("alert rules", rule_exprs)):
        for text in texts:
            for name in re.findall(r"\btierpool_\w+", text):
                check(name in served, f"the {where} name {name}, which the exporter does not serve: {text}")
    promtool = shutil.which("promtool")
    if not promtool:
        print("contrib: promtool skipped: needs the Debian package prometheus")
        return
    result = subprocess.run([promtool, "check", "rules", rules], capture_output=True, text=True)
    check(result.returncode == 0, f"promtool check rules: {result.stdout} {result.stderr}")


def case_classes():
    result = tool("classes")
    check(result.returncode == 0, f"exit {result.returncode}")
    rows = [line.split() for line in result.stdout.splitlines() if re.match(r"\s*\d+ (small|large) ", line)]
    check(len(rows) == STATS_CLASSES, f"{len(rows)} classes")
    check([int(r[0]) for r in rows] == list(range(STATS_CLASSES)), "classes not numbered from 0")
    check(rows[0][2] == "16" and rows[-1][2] == "1048576", "first or last block size")
    check(rows[0][3] == "1..16" and rows[1][3] == "17..32", "request ranges")
    check(rows[0][7] == "93.75%" and rows[-1][5] == "32", "waste or slices")
    for r in rows:
        check(int(r[5]) * 65536 // int(r[2]) == int(r[6]), f"class {r[0]}: blocks per page")


def case_options():
    text = open(os.path.join(opts.source, "src", "internal.h")).read()
    names = re.findall(r"X\((\w+), \w+, TPI_OPT_", text)
    check(len(names) >= 10, "cannot read the option table")
    result = tool("options", env=dict(os.environ, TIERPOOL_PUBLISH_INTERVAL="250ms"))
    check(result.returncode == 0, f"exit {result.returncode}")
    listed = {line.split()[0]: line.split() for line in result.stdout.splitlines() if re.match(r"[A-Z_]+ ", line)}
    check(sorted(listed) == sorted(names + ["OPTION"]), f"options listed: {sorted(listed)}")
    check(listed["PUBLISH_INTERVAL"][1:4] == ["milliseconds", "1s", "250ms"], f"{listed['PUBLISH_INTERVAL']}")
    check("TIERPOOL_PUBLISH_INTERVAL=250ms" in result.stdout, "the environment's value is not shown")


def case_bench():
    if opts.sanitize:
        raise Skipped("sanitizer builds have no benchmark programs (TP_BUILD_BENCH=OFF)")
    out = os.path.join(opts.work, "results")
    result = tool("bench", "--only", "pair", "--quick", "--runs", "1", "--out", out, timeout=240)
    check(result.returncode == 0, f"exit {result.returncode}: {result.stderr[-500:]}")
    report = open(os.path.join(out, "pair.md")).read()
    check("ns per malloc+free pair" in report and "| tierpool" in report, "pair.md lacks its table")


def case_help():
    result = tool("--help")
    check(result.returncode == 0, "--help")
    commands = re.findall(r"^  (\w+)", result.stdout, re.M)
    for name in ("run", "stats", "list", "top", "record", "plot", "exporter", "classes", "options", "bench"):
        check(name in commands, f"--help does not list {name}")
    for name in commands:
        for args in ((name, "--help"), ("help", name)):
            result = tool(*args)
            check(result.returncode == 0 and result.stdout.startswith(f"usage: tierpool {name}"),
                  f"tierpool {' '.join(args)}: {result.stdout[:200]!r}")


def main():
    global opts
    parser = argparse.ArgumentParser()
    parser.add_argument("case")
    parser.add_argument("--tool", required=True)
    parser.add_argument("--publisher", required=True)
    parser.add_argument("--malloc", required=True)
    parser.add_argument("--source", default=os.path.join(os.path.dirname(__file__), "..", ".."))
    parser.add_argument("--work", default="cli-work")
    parser.add_argument("--sanitize", default="")
    opts = parser.parse_args()
    case = globals().get("case_" + opts.case)
    if not case:
        print(f"no case {opts.case}")
        return 2
    try:
        case()
    except Skipped as e:
        print(f"{opts.case}: skipped: {e}")
        return SKIP
    except Failure as e:
        print(f"FAILED {opts.case}: {e}")
        return 1
    finally:
        cleanup()
    print(f"{opts.case}: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
