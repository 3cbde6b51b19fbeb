#!/bin/sh
# SPDX-License-Identifier: MIT
# exports.sh NM LIBRARY: libtierpool-malloc.so must export (define, dynamic)
# the whole allocation surface a program may call, and nothing of the
# engine's internals (tpi_*).
nm=$1 lib=$2
if [ -z "$nm" ] || [ ! -f "$lib" ]; then
    echo "usage: exports.sh NM LIBRARY" >&2
    exit 2
fi

symbols=$("$nm" -D --defined-only "$lib" | awk '{ print $NF }') || exit 1

missing=0
for name in \
    malloc free calloc realloc reallocarray aligned_alloc posix_memalign \
    memalign valloc pvalloc malloc_usable_size cfree free_sized free_aligned_sized \
    malloc_trim mallinfo mallinfo2 mallopt malloc_stats malloc_info \
    __libc_malloc __libc_free __libc_calloc __libc_realloc __libc_memalign \
    __libc_valloc __libc_pvalloc __posix_memalign \
    tp_malloc tp_free tp_pool_of \
    _Znwm _Znam _ZnwmRKSt9nothrow_t _ZnamRKSt9nothrow_t \
    _ZnwmSt11align_val_t _ZnamSt11align_val_t \
    _ZnwmSt11align_val_tRKSt9nothrow_t _ZnamSt11align_val_tRKSt9nothrow_t \
    _ZdlPv _ZdaPv _ZdlPvRKSt9nothrow_t _ZdaPvRKSt9nothrow_t _ZdlPvm _ZdaPvm \
    _ZdlPvSt11align_val_t _ZdaPvSt11align_val_t \
    _ZdlPvmSt11align_val_t _ZdaPvmSt11align_val_t \
    _ZdlPvSt11align_val_tRKSt9nothrow_t _ZdaPvSt11align_val_tRKSt9nothrow_t
do
    if ! printf '%s\n' "$symbols" | grep -qx "$name"; then
        echo "missing: $name"
        missing=$((missing + 1))
    fi
done

internal=$(printf '%s\n' "$symbols" | grep '^tpi_')
if [ -n "$internal" ]; then
    echo "engine internals exported:" $internal
    missing=$((missing + 1))
fi

echo "exports: $missing problem(s) in $lib"
[ "$missing" -eq 0 ]
