#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""gen_man.py: writes the man pages tierpool(1), tierpool(3) and tierpool(7)
from the sources the program itself uses, so they cannot drift from it:

  tierpool.1  the tool's commands: `tierpool help` and `tierpool help COMMAND`
              of the built tool
  tierpool.3  the API: every TP_API declaration of include/tierpool.h with the
              comment above it, and the statistics fields of its X-macro lists
  tierpool.7  the options: the library's own table, read through tp_option_at()
              of the built libtierpool.so (what `tierpool options` prints)

The prose around them is in tierpool.N.in beside this script, with
@VERSION@ and the @COMMANDS@, @FUNCTIONS@, @STATS@ or @OPTIONS@ parts.

usage: gen_man.py --tool TIERPOOL --library LIBTIERPOOL.so --header tierpool.h
                  --version X.Y.Z --out DIR
"""
import argparse
import ctypes
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def roff(text):
    """Text escaped for roff: backslashes, hyphens as minus signs (options
    and code), and no line may start with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join(("\\&" + line) if line[:1] in (".", "'") else line for line in text.split("\n"))


def paragraphs(text):
    """Help text as roff: indented paragraphs (option tables, examples) kept
    as they are, the others filled."""
    out = []
    for para in re.split(r"\n\s*\n", text.strip("\n")):
        lines = para.split("\n")
        if all(line.startswith(" ") for line in lines):
            out += [".PP", ".nf", ".RS 2", roff("\n".join(line[2:] if line.startswith("  ") else line for line in lines)), ".RE", ".fi"]
        elif lines[0].endswith(":") and len(lines) > 1 and all(line.startswith(" ") for line in lines[1:]):
            out += [".PP", roff(lines[0]), ".nf", ".RS 2",
                    roff("\n".join(line[2:] if line.startswith("  ") else line for line in lines[1:])), ".RE", ".fi"]
        else:
            out += [".PP", roff(" ".join(line.strip() for line in lines))]
    return "\n".join(out)


# ---- tierpool(1): the commands -------------------------------------------------------------

def tool_output(tool, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIERPOOL_")}
    return subprocess.run([tool, *args], check=True, capture_output=True, text=True, env=env).stdout


def commands_section(tool):
    listing = tool_output(tool, "help")
    names = re.findall(r"^  (\S+)", listing.split("commands:", 1)[1], re.M)
    if not names:
        sys.exit("gen_man.py: no commands in `tierpool help`")
    out = []
    for name in names:
        text = tool_output(tool, "help", name)
        first, _, rest = text.partition("\n")
        usage = first[len("usage: "):] if first.startswith("usage: ") else first
        summary, _, body = rest.strip("\n").partition("\n\n")
        out += [".SS " + roff(usage), roff(summary.strip().replace("\n", " ")) + "."]
        if body.strip():
            out.append(paragraphs(body))
    return "\n".join(out)


# ---- tierpool(3): the API ------------------------------------------------------------------

def clean_comment(lines):
    text = []
    for line in lines:
        line = line.strip()
        line = re.sub(r"^/\*+", "", line)
        line = re.sub(r"\*+/$", "", line)
        line = re.sub(r"^\*", "", line)
        text.append(line.strip())
    return " ".join(t for t in text if t)


def functions_section(header):
    """Each run of TP_API declarations with the comment above it, under the
    header's banner comments ("---- explicit pools ----")."""
    lines = open(header).read().split("\n")
    out, comment, decls = [], [], []
    i = 0

    def flush():
        if decls:
            out.append(".PP")
            out.append(".nf")
            out.extend("\\fB" + roff(d) + "\\fR" for d in decls)
            out.append(".fi")
            if comment:
                out.extend([".RS 4", roff(clean_comment(comment)), ".RE"])
        decls.clear()

    while i < len(lines):
        line = lines[i]
        banner = re.match(r"/\* ---- (.*?) -+", line.strip())
        if banner:
            flush()
            comment = []
            out.append(".SS " + roff(banner.group(1).strip()))
            i += 1
            continue
        if line.lstrip().startswith("/*"):
            flush()
            comment = [line]
            while "*/" not in lines[i]:
                i += 1
                comment.append(lines[i])
            i += 1
            continue
        if "TP_API" in line and not line.startswith("#"):
            decl = line
            while ";" not in decl:
                i += 1
                decl += " " + lines[i].strip()
            decl = re.sub(r"\bTP_(API|MALLOC_ATTR)\b\s*", "", decl).strip()
            decls.append(re.sub(r"\s+", " ", decl))
            i += 1
            continue
        if not line.strip():
            flush()
            comment = []
        i += 1
    flush()
    return "\n".join(out)


def stats_section(header):
    text = open(header).read()
    out = []
    for macro, title in (("TP_STATS_POOL_FIELDS", "Per pool"), ("TP_STATS_CLASS_FIELDS", "Per size class")):
        body = re.search(r"#define " + macro + r"\(X\)(.*?)\n\n", text, re.S)
        if not body:
            sys.exit(f"gen_man.py: no {macro} in {header}")
        out.append(".SS " + title)
        for name, kind, unit, help_ in re.findall(r'X\((\w+),\s*(\w+),\s*(\w*)\s*,\s*"([^"]*)"\)', body.group(1)):
            out += [".TP", "\\fB" + roff(name) + "\\fR (" + kind + (", " + unit if unit else "") + ")", roff(help_)]
    return "\n".join(out)


# ---- tierpool(7): the options --------------------------------------------------------------

class OptionDesc(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("type", ctypes.c_char_p), ("description", ctypes.c_char_p),
                ("value", ctypes.c_longlong), ("default_value", ctypes.c_longlong),
                ("min", ctypes.c_longlong), ("max", ctypes.c_longlong)]


def format_value(kind, v):
    """A value in the option's own terms, as `tierpool options` writes it."""
    if kind == "bool":
        return "on" if v else "off"
    if kind == "format":
        return {1: "text", 2: "json"}.get(v, "0")
    if kind == "path":
        return "(set)" if v else "(none)"
    if kind == "milliseconds":
        return "0" if v == 0 else f"{v // 1000}s" if v % 1000 == 0 else f"{v}ms"
    if kind == "size":
        u = -1
        while v and v % 1024 == 0 and u < 3:
            v //= 1024
            u += 1
        return f"{v}{'KMGT'[u]}" if u >= 0 else str(v)
    return str(v)


def options_section(library):
    lib = ctypes.CDLL(library)
    lib.tp_option_at.argtypes = [ctypes.c_size_t, ctypes.POINTER(OptionDesc)]
    lib.tp_option_at.restype = ctypes.c_int
    out = []
    d = OptionDesc()
    i = 0
    while lib.tp_option_at(i, ctypes.byref(d)) == 0:
        name, kind = d.name.decode(), d.type.decode()
        value_kind = {"milliseconds": "duration"}.get(kind, kind)
        line = f"Default {format_value(kind, d.default_value)}"
        if kind not in ("bool", "format", "path"):
            line += f", from {format_value(kind, d.min)} to {format_value(kind, d.max)}"
        out += [".TP", f"\\fBTIERPOOL_{roff(name)}\\fR=\\fI{value_kind}\\fR",
                roff(d.description.decode()) + ".", ".br", roff(line) + "."]
        i += 1
    if not out:
        sys.exit(f"gen_man.py: {library} lists no option")
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tool", required=True)
    ap.add_argument("--library", required=True)
    ap.add_argument("--header", required=True)
    ap.add_argument("--version", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    parts = {
        "@COMMANDS@": lambda: commands_section(a.tool),
        "@FUNCTIONS@": lambda: functions_section(a.header),
        "@STATS@": lambda: stats_section(a.header),
        "@OPTIONS@": lambda: options_section(a.library),
    }
    os.makedirs(a.out, exist_ok=True)
    for section in (1, 3, 7):
        text = open(os.path.join(HERE, f"tierpool.{section}.in")).read().replace("@VERSION@", a.version)
        for key, make in parts.items():
            if key in text:
                text = text.replace(key, make())
        tmp = os.path.join(a.out, f"tierpool.{section}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, os.path.join(a.out, f"tierpool.{section}"))


if __name__ == "__main__":
    main()
