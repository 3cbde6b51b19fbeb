#!/bin/sh
# SPDX-License-Identifier: MIT
# needed.sh READELF LIBRARY: libtierpool-malloc.so must need the C library
# only (DT_NEEDED libc.so.6, and the loader ld-linux if the toolchain lists
# it): its C++ operators reach libstdc++ through weak references, so a C
# program preloading it does not load libstdc++ (docs/override.md).
readelf=$1 lib=$2
if [ -z "$readelf" ] || [ ! -f "$lib" ]; then
    echo "usage: needed.sh READELF LIBRARY" >&2
    exit 2
fi

needed=$("$readelf" -d "$lib" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p') || exit 1
problems=0
for name in $needed; do
    case $name in
        libc.so.6 | ld-linux*.so.*) ;;
        *) echo "needs $name"; problems=$((problems + 1)) ;;
    esac
done
if ! printf '%s\n' "$needed" | grep -qx 'libc.so.6'; then
    echo "does not need libc.so.6 (readelf -d lists: $needed)"
    problems=$((problems + 1))
fi
echo "needed:" $needed
echo "needed: $problems problem(s) in $lib"
[ "$problems" -eq 0 ]
