#!/bin/sh
# SPDX-License-Identifier: MIT
# run.sh CASE ARGS...: runs one case of cli_test.py; skipped (77) without python3.
if ! command -v python3 >/dev/null 2>&1; then
    echo "python3 is not installed: skipped"
    exit 77
fi
exec python3 "$(dirname "$0")/cli_test.py" "$@"
