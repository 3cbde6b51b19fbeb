#!/bin/sh
# SPDX-License-Identifier: MIT
# spdx.sh SOURCE_DIR [--add]: every source file git tracks in SOURCE_DIR
# carries "SPDX-License-Identifier: MIT" in its first three lines
# (CONTRIBUTING.md); lists those that do not and fails. --add writes the line
# into them instead, in the comment syntax of each kind of file (after a #!
# line). Documentation, data (fuzz seeds, images) and the generated
# Cargo.lock are not sources.
src=${1:?usage: spdx.sh SOURCE_DIR [--add]}
add=${2:-}
tag="SPDX-License-Identifier: MIT"
if ! git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    echo "skipped: needs a git checkout"
    exit 77
fi
cd "$src" || exit 1

# The comment that carries the tag in a file of that name; nothing for a
# file that is no source.
comment_for() {
    case $1 in
    *.c | *.h | *.cc | *.hpp | *.inc | *.h.in | *.map) echo "/* $tag */" ;;
    *.rs) echo "// $tag" ;;
    *.lua | *.sql) echo "-- $tag" ;;
    man/*.in) echo ".\\\" $tag" ;;
    *.py | *.sh | *.cmake | *.cmake.in | *.pc.in | CMakeLists.txt | */CMakeLists.txt | Makefile | *.toml | .ci/run | *.supp)
        echo "# $tag" ;;
    esac
}

sources=$(git ls-files | while read -r f; do [ -n "$(comment_for "$f")" ] && echo "$f"; done)
# shellcheck disable=SC2086 # file names without spaces, one per word
missing=$(awk -v tag="$tag" 'FNR == 1 { if (NR > 1 && !found) print name; name = FILENAME; found = 0 }
    FNR <= 3 && index($0, tag) { found = 1 }
    END { if (NR && !found) print name }' $sources)
count=$(echo "$sources" | wc -l)

if [ "$add" = --add ]; then
    for f in $missing; do
        line=$(comment_for "$f")
        if head -n 1 "$f" | grep -q '^#!/'; then
            { head -n 1 "$f"; echo "$line"; tail -n +2 "$f"; } >"$f.spdx"
        else
            { echo "$line"; cat "$f"; } >"$f.spdx"
        fi
        chmod --reference="$f" "$f.spdx" && mv "$f.spdx" "$f"
        echo "added: $f"
    done
    exit 0
fi
for f in $missing; do echo "no SPDX line: $f"; done
n=$(echo "$missing" | grep -c .)
echo "spdx: $((count - n)) passed, $n failed"
[ "$n" -eq 0 ]
