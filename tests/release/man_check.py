#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""man_check.py TOOL MAN_DIR HEADER: the generated man pages say what the
program says: every option `tierpool options` lists is in tierpool(7) with
the same default, every command of `tierpool help` has its section in
tierpool(1), every TP_API function of tierpool.h is in tierpool(3); and man
renders each page without a warning (when man is installed)."""
import os
import re
import shutil
import subprocess
import sys

tool, man_dir, header = sys.argv[1:4]
failed = 0
checked = 0


def check(ok, what):
    global failed, checked
    checked += 1
    if not ok:
        failed += 1
        print("FAILED:", what)


def page(n):
    # Undo the generator's roff escapes for the comparisons.
    return open(os.path.join(man_dir, f"tierpool.{n}")).read().replace("\\-", "-").replace("\\e", "\\")


env = {k: v for k, v in os.environ.items() if not k.startswith("TIERPOOL_")}
run = lambda *a: subprocess.run([tool, *a], check=True, capture_output=True, text=True, env=env).stdout

# tierpool(7): "NAME  TYPE  DEFAULT  CURRENT  RANGE" rows of `tierpool options`.
seven = page(7)
rows = [line.split() for line in run("options").split("\n")[1:] if re.match(r"[A-Z][A-Z0-9_]+ ", line)]
check(rows, "`tierpool options` lists options")
for name, _type, default, *_ in rows:
    entry = re.search(r"\\fBTIERPOOL_" + name + r"\\fR=[^\n]*\n(?:(?!\.TP)[^\n]*\n)*?Default ([^,.\n]+)", seven)
    check(entry, f"TIERPOOL_{name} in tierpool(7)")
    if entry:
        check(entry.group(1) == default, f"TIERPOOL_{name}: default {entry.group(1)} in tierpool(7), {default} in the tool")

# tierpool(1): one .SS per command.
one = page(1)
commands = re.findall(r"^  (\S+)", run("help").split("commands:", 1)[1], re.M)
check(commands, "`tierpool help` lists commands")
for name in commands:
    check(re.search(r"^\.SS tierpool " + re.escape(name) + r"\b", one, re.M), f"command {name} in tierpool(1)")

# tierpool(3): every function declared with TP_API.
three = page(3)
functions = re.findall(r"TP_API[^;(]*?\b(tp_\w+)\s*\(", open(header).read())
check(functions, "tierpool.h declares functions")
for name in functions:
    check(re.search(r"\\fB[^\n]*\b" + name + r"\(", three), f"{name} in tierpool(3)")

if shutil.which("man"):
    for n in (1, 3, 7):
        r = subprocess.run(["man", "--warnings=w", "-l", os.path.join(man_dir, f"tierpool.{n}")],
                           capture_output=True, text=True, env=dict(env, MANWIDTH="80", LC_ALL="C.UTF-8"))
        check(r.returncode == 0 and not r.stderr.strip(), f"man renders tierpool.{n} cleanly: {r.stderr.strip()}")
else:
    print("skipped: needs man (rendering not checked)")

print(f"man_check: {checked - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
