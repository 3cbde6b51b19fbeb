/* SPDX-License-Identifier: MIT */
/*
 * preload.h: for the test programs run with LD_PRELOAD=libtierpool-malloc.so.
 * They are ordinary programs, linked with nothing of tierpool's: whether
 * their malloc is tierpool's is asked of tp_pool_of, which the library
 * exports and the dynamic loader finds at run time.
 */
#ifndef TPO_PRELOAD_H
#define TPO_PRELOAD_H

#include <dlfcn.h>
#include <stddef.h>

typedef void *(*preload_pool_of_fn)(const void *p);

/* tp_pool_of, or NULL when libtierpool-malloc is not loaded. */
static inline preload_pool_of_fn preload_pool_of(void)
{
    return (preload_pool_of_fn)dlsym(RTLD_DEFAULT, "tp_pool_of");
}

#endif /* TPO_PRELOAD_H */
