/* SPDX-License-Identifier: MIT */
/*
 * override/override.h: what malloc.c gives new.cc. The C++ operators
 * allocate and free through these (hidden, so called directly), which
 * route like malloc and free: to the default pool, or with
 * TIERPOOL_PASSTHROUGH=1 to the system allocator.
 */
#ifndef TPO_OVERRIDE_H
#define TPO_OVERRIDE_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TPO_HIDDEN __attribute__((visibility("hidden")))
TPO_HIDDEN void *tpo_malloc(size_t size);
TPO_HIDDEN void *tpo_aligned_alloc(size_t alignment, size_t size);
TPO_HIDDEN void tpo_free(void *p);
TPO_HIDDEN void tpo_free_sized(void *p, size_t size);

#ifdef __cplusplus
}
#endif

#endif /* TPO_OVERRIDE_H */
