/* SPDX-License-Identifier: MIT */
// cxx_plugin.cc: the C++ plugin cxx_runtime.c dlopens (RTLD_LOCAL), which
// brings libstdc++ into a C program after libtierpool-malloc was loaded.
// Its operators new and delete are the library's; out of memory they must
// behave as the standard says even so: the throwing forms call the
// new_handler, then throw std::bad_alloc; the nothrow forms return nullptr,
// also when the handler throws.
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <new>

#include <dlfcn.h>

#include "new_handlers.h"

namespace {

unsigned long *passed, *failed;

bool check(bool ok, const char *what, int line)
{
    ++*(ok ? passed : failed);
    if (!ok) std::fprintf(stderr, "cxx_plugin.cc:%d: FAILED: %s\n", line, what);
    return ok;
}
#define CHECK(x) check((x), #x, __LINE__)

bool libtierpool_malloc(const char *name)
{
    void *f = dlsym(RTLD_DEFAULT, name);
    Dl_info info;
    return f && dladdr(f, &info) && info.dli_fname && std::strstr(info.dli_fname, "libtierpool-malloc");
}

} // namespace

extern "C" __attribute__((visibility("default"))) void tpo_cxx_plugin_check(unsigned long *p, unsigned long *f)
{
    passed = p;
    failed = f;
    CHECK(libtierpool_malloc("_Znwm") && libtierpool_malloc("_ZnwmRKSt9nothrow_t"));
    auto pool_of = reinterpret_cast<void *(*)(const void *)>(dlsym(RTLD_DEFAULT, "tp_pool_of"));
    if (!CHECK(pool_of != nullptr)) return;
    int *one = new int(7);
    CHECK(pool_of(one) != nullptr);
    delete one;

    // Throwing forms: bad_alloc, after the handler has run until it gave up.
    CHECK(throws_bad_alloc([] { ::operator delete(::operator new(impossible)); }));
    CHECK(throws_bad_alloc([] { ::operator delete[](::operator new[](impossible, std::align_val_t(64))); }));
    handler_calls = 0;
    std::set_new_handler(give_up_handler);
    CHECK(throws_bad_alloc([] { ::operator delete(::operator new(impossible)); }));
    CHECK(handler_calls == 3);
    handler_calls = 0;
    std::set_new_handler(throwing_handler);
    bool ran = false;
    try {
        ::operator delete(::operator new(impossible, std::align_val_t(128)));
    } catch (const handler_ran &) {
        ran = true;
    }
    CHECK(ran && handler_calls == 1);

    // Nothrow forms: nullptr, whatever the handler does.
    for (std::new_handler handler : {give_up_handler, throwing_handler, bad_alloc_handler}) {
        for (int form = 0; form < 4; form++) {
            handler_calls = 0;
            std::set_new_handler(handler);
            void *q = reinterpret_cast<void *>(1);
            try {
                switch (form) {
                case 0: q = ::operator new(impossible, std::nothrow); break;
                case 1: q = ::operator new[](impossible, std::nothrow); break;
                case 2: q = ::operator new(impossible, std::align_val_t(64), std::nothrow); break;
                default: q = ::operator new[](impossible, std::align_val_t(4096), std::nothrow); break;
                }
            } catch (...) {
                CHECK(!"a nothrow operator new threw");
            }
            CHECK(q == nullptr);
            if (!CHECK(handler_calls == (handler == give_up_handler ? 3 : 1)))
                std::fprintf(stderr, "    form %d: %d handler calls\n", form, handler_calls);
        }
    }
    std::set_new_handler(nullptr);
}
