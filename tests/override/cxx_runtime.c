/* SPDX-License-Identifier: MIT */
/*
 * cxx_runtime.c: libtierpool-malloc's C++ operators without libstdc++
 * (docs/override.md, "C++ without libstdc++"), run with LD_PRELOAD. This is
 * a C program, so nothing loads libstdc++ with it:
 *
 * - c_program: preloading the library does not load libstdc++; the
 *   operators (looked up by name) allocate tierpool's blocks, and the
 *   nothrow forms return NULL for a size no one can serve (no handler can
 *   be installed without the runtime);
 * - no_runtime: a throwing form that fails has nothing to throw, and
 *   aborts with one line saying so;
 * - plugin: a C++ plugin (cxx_plugin.cc) dlopened with RTLD_LOCAL brings
 *   libstdc++ late, where the library's weak references cannot see it: its
 *   operators are the library's and still throw std::bad_alloc, call its
 *   new_handler, and the nothrow forms return nullptr when the handler
 *   throws (the plugin checks, and counts into ours).
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../test.h"
#include "expect_fatal.h"
#include "preload.h"

typedef void *(*new_fn)(size_t);
typedef void *(*new_nothrow_fn)(size_t, const void *);
typedef void *(*new_aligned_fn)(size_t, size_t);
typedef void *(*new_aligned_nothrow_fn)(size_t, size_t, const void *);
typedef void (*delete_fn)(void *);

static const size_t impossible = SIZE_MAX / 2;
static const char nothrow_tag = 0; /* std::nothrow_t is empty: any address */

static int libstdcxx_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[512];
    int found = 0;
    while (fgets(line, sizeof line, f)) found |= strstr(line, "libstdc++") != NULL;
    fclose(f);
    return found;
}

static void *symbol(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    Dl_info info;
    if (!CHECK(f && dladdr(f, &info) && info.dli_fname && strstr(info.dli_fname, "libtierpool-malloc")))
        fprintf(stderr, "    %s is not libtierpool-malloc's\n", name);
    return f;
}

static void test_c_program(void)
{
    preload_pool_of_fn pool_of = preload_pool_of();
    if (!CHECK(pool_of != NULL)) return;
    CHECK_EQ(libstdcxx_mapped(), 0);

    new_fn new_plain = (new_fn)symbol("_Znwm"), new_array = (new_fn)symbol("_Znam");
    new_aligned_fn new_aligned = (new_aligned_fn)symbol("_ZnwmSt11align_val_t");
    delete_fn delete_plain = (delete_fn)symbol("_ZdlPv"), delete_array = (delete_fn)symbol("_ZdaPv");
    new_nothrow_fn nothrow[2] = {(new_nothrow_fn)symbol("_ZnwmRKSt9nothrow_t"),
                                 (new_nothrow_fn)symbol("_ZnamRKSt9nothrow_t")};
    new_aligned_nothrow_fn aligned_nothrow[2] = {
        (new_aligned_nothrow_fn)symbol("_ZnwmSt11align_val_tRKSt9nothrow_t"),
        (new_aligned_nothrow_fn)symbol("_ZnamSt11align_val_tRKSt9nothrow_t")};
    if (!new_plain || !new_array || !new_aligned || !delete_plain || !delete_array || !nothrow[0] || !nothrow[1] ||
        !aligned_nothrow[0] || !aligned_nothrow[1])
        return;

    void *p = new_plain(24), *q = new_array(5000), *r = new_aligned(100, 4096);
    CHECK(p && pool_of(p) && q && pool_of(q) && r && pool_of(r) && (uintptr_t)r % 4096 == 0);
    delete_plain(p);
    delete_array(q);
    delete_plain(r);
    for (int i = 0; i < 2; i++) {
        void *s = nothrow[i](64, &nothrow_tag);
        CHECK(s && pool_of(s));
        delete_plain(s);
        CHECK(nothrow[i](impossible, &nothrow_tag) == NULL);
        CHECK(aligned_nothrow[i](impossible, 64, &nothrow_tag) == NULL);
    }
    CHECK_EQ(libstdcxx_mapped(), 0);
}

static void fail_new(void *arg)
{
    ((new_fn)arg)(impossible);
}

static void fail_new_aligned(void *arg)
{
    ((new_aligned_fn)arg)(impossible, 256);
}

static void test_no_runtime(void)
{
    static const char message[] = "tierpool: fatal: operator new out of memory, and no C++ runtime (libstdc++) "
                                  "is loaded to throw std::bad_alloc";
    void *new_plain = symbol("_Znwm"), *new_array_aligned = symbol("_ZnamSt11align_val_t");
    if (new_plain) expect_fatal(fail_new, new_plain, message);
    if (new_array_aligned) expect_fatal(fail_new_aligned, new_array_aligned, message);
}

static void test_plugin(void)
{
    void *plugin = dlopen(TPO_CXX_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    if (!CHECK(plugin != NULL)) {
        fprintf(stderr, "    %s\n", dlerror());
        return;
    }
    CHECK_EQ(libstdcxx_mapped(), 1);
    /* RTLD_LOCAL: libstdc++ is not in the global scope. */
    CHECK(dlsym(RTLD_DEFAULT, "_ZSt15get_new_handlerv") == NULL);
    void (*check)(unsigned long *, unsigned long *) =
        (void (*)(unsigned long *, unsigned long *))dlsym(plugin, "tpo_cxx_plugin_check");
    if (CHECK(check != NULL)) check(&test_passed, &test_failed);
}

TEST_MAIN(CASE(c_program), CASE(no_runtime), CASE(plugin))
