#!/bin/sh
# SPDX-License-Identifier: MIT
# tool_installed.sh CMAKE CC BUILD_DIR SOURCE_DIR WORK
#
# The `tierpool` tool builds against an installed tierpool: installs
# BUILD_DIR into WORK/prefix (emptied first), compiles tools/*.c with that
# prefix's headers (tierpool.h, tierpool_segment.h) and static library only,
# no path into src/, then runs the result: its version, its class table and
# its options, which must be what the tool built in the tree prints.
cmake=$1 cc=$2 build=$3 source=$4 work=$5
if [ $# -ne 5 ]; then
    echo "usage: tool_installed.sh CMAKE CC BUILD_DIR SOURCE_DIR WORK" >&2
    exit 2
fi
prefix=$work/prefix
rm -rf "$work"
mkdir -p "$work"
"$cmake" --install "$build" --prefix "$prefix" >"$work/install.log" 2>&1 || {
    cat "$work/install.log"
    echo "FAILED: cmake --install"
    exit 1
}
lib=$(dirname "$(find "$prefix" -name libtierpool.a -print | head -n 1)")
if [ ! -f "$lib/libtierpool.a" ] || [ ! -f "$prefix/include/tierpool_segment.h" ]; then
    echo "FAILED: the install has no libtierpool.a or tierpool_segment.h"
    exit 1
fi

# The tool's sources copied out of the tree, so that no "../src/" include
# can resolve; the same definitions CMake gives the tool; -I the prefix alone.
mkdir -p "$work/tools"
cp "$source"/tools/*.c "$source"/tools/*.h "$work/tools/"
rm "$work/tools/gen_size_classes.c"
"$cc" -std=gnu11 -O2 -Wall -Wextra -Werror -o "$work/tierpool" "$work"/tools/*.c \
    -I"$prefix/include" "$lib/libtierpool.a" -lpthread -lm \
    -DTP_CLI_LIBDIR='"../lib"' -DTP_CLI_MULTIARCH='""' -DTP_CLI_LIBRARY='"libtierpool-malloc.so"' \
    -DTP_CLI_SOURCE_DIR="\"$source\"" -DTP_CLI_BUILD_DIR="\"$build\"" || {
    echo "FAILED: the tool does not build against the installed headers and library"
    exit 1
}

failed=0
for args in "--version" "classes" "options"; do
    # shellcheck disable=SC2086
    want=$("$build/tierpool" $args 2>&1)
    # shellcheck disable=SC2086
    got=$("$work/tierpool" $args 2>&1)
    if [ "$got" != "$want" ]; then
        echo "FAILED: tierpool $args differs from the tree's tool"
        failed=1
    fi
done
[ "$failed" = 0 ] && echo "tool_installed: passed"
exit $failed
