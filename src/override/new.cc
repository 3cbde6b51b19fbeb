/* SPDX-License-Identifier: MIT */
// override/new.cc: the C++ operators new and delete of libtierpool-malloc,
// every form (plain, array, nothrow, sized, aligned and their combinations).
// Throwing forms call the installed new_handler and retry, then throw
// std::bad_alloc, as the standard asks. They allocate through malloc.c's
// routing (override.h), so TIERPOOL_PASSTHROUGH=1 covers them too.
//
// No C++ runtime. This file is compiled with -fno-exceptions -fno-rtti (and
// unwind tables, so that an exception thrown by a new_handler or by
// std::__throw_bad_alloc passes through these frames), and the library is
// linked as C: it needs libc only, so a C program run under LD_PRELOAD does
// not load libstdc++ (docs/override.md, "C++ without libstdc++"). What needs
// the runtime is reached through it, only when an allocation fails:
//
// - std::get_new_handler and std::__throw_bad_alloc, exported by
//   libstdc++, through weak references: in a C++ program libstdc++ is
//   loaded with the program and they resolve; in a C program they are null,
//   and no handler can have been installed. A libstdc++ loaded later (a C
//   program that dlopens a C++ plugin) is found through its handle.
// - catching, which the nothrow forms need when a new_handler throws: a
//   nothrow form with a handler installed calls libstdc++'s own nothrow
//   operator (found with dlsym in libstdc++.so.6, the one we interpose),
//   which calls the throwing ::operator new, this file's, in a try block
//   and returns nullptr for any exception, exactly as the standard words it.
//
// Without libstdc++ (or with a runtime that does not export
// std::__throw_bad_alloc), a throwing form that runs out of memory prints
// one line and aborts: there is nothing it could throw.
#include <new>

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "override.h"

#define TPO_EXPORT __attribute__((visibility("default")))

// libstdc++'s, resolved at load time when it is loaded with the program,
// null otherwise.
extern "C" {
std::new_handler tpo_cxx_get_new_handler() __asm__("_ZSt15get_new_handlerv") __attribute__((weak));
[[noreturn]] void tpo_cxx_throw_bad_alloc() __asm__("_ZSt17__throw_bad_allocv") __attribute__((weak));
}

namespace {

using new_handler_getter = std::new_handler (*)();
using bad_alloc_thrower = void (*)();
using nothrow_new = void *(*)(std::size_t, const std::nothrow_t &) noexcept;
using nothrow_new_aligned = void *(*)(std::size_t, std::align_val_t, const std::nothrow_t &) noexcept;

// What is found in libstdc++.so.6 by name, once it is needed; a null entry
// is looked up again next time (libstdc++ may have been dlopened since).
struct cxx_runtime {
    new_handler_getter get_new_handler;
    bad_alloc_thrower throw_bad_alloc;
    nothrow_new new_nothrow, new_array_nothrow;
    nothrow_new_aligned new_aligned_nothrow, new_array_aligned_nothrow;
};
cxx_runtime runtime;

template <class F> F load(F *slot) { return __atomic_load_n(slot, __ATOMIC_ACQUIRE); }
template <class F> void store(F *slot, F f) { __atomic_store_n(slot, f, __ATOMIC_RELEASE); }

// `name` in libstdc++.so.6 if the process has loaded it (never loads it),
// else null; `ours` (this library's definition) is never returned.
void *libstdcxx_symbol(const char *name, void *ours)
{
    void *handle = dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD);
    if (!handle) return nullptr;
    void *f = dlsym(handle, name);
    dlclose(handle); // drops the reference NOLOAD took; the library stays
    return f == ours ? nullptr : f;
}

template <class F> F runtime_function(F *slot, F weak, const char *name, void *ours)
{
    if (weak) return weak;
    F f = load(slot);
    if (!f) {
        f = reinterpret_cast<F>(libstdcxx_symbol(name, ours));
        if (f) store(slot, f);
    }
    return f;
}

std::new_handler current_new_handler()
{
    new_handler_getter get =
        runtime_function(&runtime.get_new_handler, &tpo_cxx_get_new_handler, "_ZSt15get_new_handlerv", nullptr);
    return get ? get() : nullptr; // no C++ runtime: no handler can be installed
}

[[noreturn]] void throw_bad_alloc()
{
    bad_alloc_thrower thrower =
        runtime_function(&runtime.throw_bad_alloc, &tpo_cxx_throw_bad_alloc, "_ZSt17__throw_bad_allocv", nullptr);
    if (thrower) thrower();
    static const char msg[] = "tierpool: fatal: operator new out of memory, and no C++ runtime (libstdc++) "
                              "is loaded to throw std::bad_alloc\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
    abort();
}

void *tpo_new(std::size_t size)
{
    for (;;) {
        void *p = tpo_malloc(size);
        if (p) return p;
        std::new_handler handler = current_new_handler();
        if (!handler) throw_bad_alloc();
        handler();
    }
}

void *tpo_new_aligned(std::size_t size, std::align_val_t alignment)
{
    for (;;) {
        void *p = tpo_aligned_alloc(static_cast<std::size_t>(alignment), size);
        if (p) return p;
        std::new_handler handler = current_new_handler();
        if (!handler) throw_bad_alloc();
        handler();
    }
}

// The nothrow forms: the first attempt, and nullptr when no handler is
// installed, need no runtime. With a handler, which may throw, libstdc++'s
// nothrow operator runs the rest inside its try block (it calls the
// throwing form, which is ours). Should it not be found (a runtime other
// than libstdc++), the loop runs here: right for a handler that returns,
// but an exception the handler throws then leaves the nothrow operator.
void *tpo_new_nothrow(std::size_t size, const std::nothrow_t &nt, nothrow_new *slot, const char *name,
                      void *ours) noexcept
{
    void *p = tpo_malloc(size);
    if (p || !current_new_handler()) return p;
    nothrow_new trampoline = runtime_function(slot, static_cast<nothrow_new>(nullptr), name, ours);
    if (trampoline) return trampoline(size, nt);
    for (;;) {
        std::new_handler handler = current_new_handler();
        if (!handler) return nullptr;
        handler();
        if ((p = tpo_malloc(size))) return p;
    }
}

void *tpo_new_aligned_nothrow(std::size_t size, std::align_val_t alignment, const std::nothrow_t &nt,
                              nothrow_new_aligned *slot, const char *name, void *ours) noexcept
{
    void *p = tpo_aligned_alloc(static_cast<std::size_t>(alignment), size);
    if (p || !current_new_handler()) return p;
    nothrow_new_aligned trampoline = runtime_function(slot, static_cast<nothrow_new_aligned>(nullptr), name, ours);
    if (trampoline) return trampoline(size, alignment, nt);
    for (;;) {
        std::new_handler handler = current_new_handler();
        if (!handler) return nullptr;
        handler();
        if ((p = tpo_aligned_alloc(static_cast<std::size_t>(alignment), size))) return p;
    }
}

} // namespace

TPO_EXPORT void *operator new(std::size_t n) { return tpo_new(n); }
TPO_EXPORT void *operator new[](std::size_t n) { return tpo_new(n); }
TPO_EXPORT void *operator new(std::size_t n, const std::nothrow_t &nt) noexcept
{
    return tpo_new_nothrow(n, nt, &runtime.new_nothrow, "_ZnwmRKSt9nothrow_t",
                           reinterpret_cast<void *>(static_cast<nothrow_new>(&::operator new)));
}
TPO_EXPORT void *operator new[](std::size_t n, const std::nothrow_t &nt) noexcept
{
    return tpo_new_nothrow(n, nt, &runtime.new_array_nothrow, "_ZnamRKSt9nothrow_t",
                           reinterpret_cast<void *>(static_cast<nothrow_new>(&::operator new[])));
}
TPO_EXPORT void *operator new(std::size_t n, std::align_val_t a) { return tpo_new_aligned(n, a); }
TPO_EXPORT void *operator new[](std::size_t n, std::align_val_t a) { return tpo_new_aligned(n, a); }
TPO_EXPORT void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &nt) noexcept
{
    return tpo_new_aligned_nothrow(n, a, nt, &runtime.new_aligned_nothrow, "_ZnwmSt11align_val_tRKSt9nothrow_t",
                                   reinterpret_cast<void *>(static_cast<nothrow_new_aligned>(&::operator new)));
}
TPO_EXPORT void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &nt) noexcept
{
    return tpo_new_aligned_nothrow(n, a, nt, &runtime.new_array_aligned_nothrow, "_ZnamSt11align_val_tRKSt9nothrow_t",
                                   reinterpret_cast<void *>(static_cast<nothrow_new_aligned>(&::operator new[])));
}

TPO_EXPORT void operator delete(void *p) noexcept { tpo_free(p); }
TPO_EXPORT void operator delete[](void *p) noexcept { tpo_free(p); }
TPO_EXPORT void operator delete(void *p, const std::nothrow_t &) noexcept { tpo_free(p); }
TPO_EXPORT void operator delete[](void *p, const std::nothrow_t &) noexcept { tpo_free(p); }
TPO_EXPORT void operator delete(void *p, std::size_t n) noexcept { tpo_free_sized(p, n); }
TPO_EXPORT void operator delete[](void *p, std::size_t n) noexcept { tpo_free_sized(p, n); }
TPO_EXPORT void operator delete(void *p, std::align_val_t) noexcept { tpo_free(p); }
TPO_EXPORT void operator delete[](void *p, std::align_val_t) noexcept { tpo_free(p); }
TPO_EXPORT void operator delete(void *p, std::size_t n, std::align_val_t) noexcept { tpo_free_sized(p, n); }
TPO_EXPORT void operator delete[](void *p, std::size_t n, std::align_val_t) noexcept { tpo_free_sized(p, n); }
TPO_EXPORT void operator delete(void *p, std::align_val_t, const std::nothrow_t &) noexcept { tpo_free(p); }
TPO_EXPORT void operator delete[](void *p, std::align_val_t, const std::nothrow_t &) noexcept { tpo_free(p); }
