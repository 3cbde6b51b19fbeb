/* SPDX-License-Identifier: MIT */
// conformance_cxx.cc: the C++ half of conformance.c. Every form of
// operator new and delete (plain, array, nothrow, sized, aligned and their
// combinations) must return tierpool's blocks; the throwing forms must call
// the installed new_handler until it is removed, then throw std::bad_alloc;
// the nothrow forms return nullptr instead. Under LD_PRELOAD the operators
// are libtierpool-malloc's own; in the static link they are libstdc++'s
// over tierpool's malloc, and must behave the same.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef TPO_STATIC
#include <dlfcn.h>
#endif

#include "../test.h"
#include "conformance.h"
#include "new_handlers.h"

namespace {

using std::size_t;

bool aligned(const void *p, size_t alignment)
{
    return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

bool check_new(void *p, size_t alignment)
{
    if (!CHECK(p != nullptr)) return false;
    bool ok = CHECK(aligned(p, alignment));
    ok &= CHECK(conf_ours(p));
    return ok;
}

// One row per (new, delete) pairing; the forms that take no alignment
// ignore the argument.
struct form {
    const char *name;
    bool takes_alignment;
    void *(*allocate)(size_t n, std::align_val_t a);
    void (*release)(void *p, size_t n, std::align_val_t a);
};

const form forms[] = {
    {"new/delete", false, [](size_t n, std::align_val_t) { return ::operator new(n); },
     [](void *p, size_t, std::align_val_t) { ::operator delete(p); }},
    {"new/sized delete", false, [](size_t n, std::align_val_t) { return ::operator new(n); },
     [](void *p, size_t n, std::align_val_t) { ::operator delete(p, n); }},
    {"new[]/delete[]", false, [](size_t n, std::align_val_t) { return ::operator new[](n); },
     [](void *p, size_t, std::align_val_t) { ::operator delete[](p); }},
    {"new[]/sized delete[]", false, [](size_t n, std::align_val_t) { return ::operator new[](n); },
     [](void *p, size_t n, std::align_val_t) { ::operator delete[](p, n); }},
    {"nothrow new/delete", false, [](size_t n, std::align_val_t) { return ::operator new(n, std::nothrow); },
     [](void *p, size_t, std::align_val_t) { ::operator delete(p, std::nothrow); }},
    {"nothrow new[]/delete[]", false, [](size_t n, std::align_val_t) { return ::operator new[](n, std::nothrow); },
     [](void *p, size_t, std::align_val_t) { ::operator delete[](p, std::nothrow); }},
    {"aligned new/delete", true, [](size_t n, std::align_val_t a) { return ::operator new(n, a); },
     [](void *p, size_t, std::align_val_t a) { ::operator delete(p, a); }},
    {"aligned new/sized delete", true, [](size_t n, std::align_val_t a) { return ::operator new(n, a); },
     [](void *p, size_t n, std::align_val_t a) { ::operator delete(p, n, a); }},
    {"aligned new[]/delete[]", true, [](size_t n, std::align_val_t a) { return ::operator new[](n, a); },
     [](void *p, size_t, std::align_val_t a) { ::operator delete[](p, a); }},
    {"aligned new[]/sized delete[]", true, [](size_t n, std::align_val_t a) { return ::operator new[](n, a); },
     [](void *p, size_t n, std::align_val_t a) { ::operator delete[](p, n, a); }},
    {"aligned nothrow new/delete", true,
     [](size_t n, std::align_val_t a) { return ::operator new(n, a, std::nothrow); },
     [](void *p, size_t, std::align_val_t a) { ::operator delete(p, a, std::nothrow); }},
    {"aligned nothrow new[]/delete[]", true,
     [](size_t n, std::align_val_t a) { return ::operator new[](n, a, std::nothrow); },
     [](void *p, size_t, std::align_val_t a) { ::operator delete[](p, a, std::nothrow); }},
};

void test_forms()
{
    static const size_t sizes[] = {0, 1, 100, 5000, 100000, 3u << 20};
    for (const form &f : forms) {
        for (size_t n : sizes) {
            size_t top = f.takes_alignment ? size_t(1) << 20 : 16;
            for (size_t align = 16; align <= top; align <<= 1) {
                void *p = f.allocate(n, std::align_val_t(align));
                if (!check_new(p, align)) std::fprintf(stderr, "    %s (%zu, %zu)\n", f.name, n, align);
                f.release(p, n, std::align_val_t(align));
            }
        }
    }
}

// new-expressions and the standard library's containers.
void test_expressions()
{
    struct alignas(64) line {
        char bytes[100];
        ~line() {}
    };
    line *one = new line;
    check_new(one, 64);
    delete one;
    line *many = new line[10]; // a cookie before the elements; still aligned
    check_new(many, 64);
    delete[] many;

    std::vector<int> v(10000, 1);
    CHECK(conf_ours(v.data()));
    std::string s(1000, 'x');
    CHECK(conf_ours(s.data()));
    std::map<int, std::string> m;
    for (int i = 0; i < 1000; i++) m[i] = std::to_string(i) + std::string(40, 'y');
    CHECK(conf_ours(&*m.begin()));
    auto shared = std::make_shared<std::vector<char>>(5000);
    CHECK(conf_ours(shared.get()));
    CHECK(conf_ours(shared->data()));
    try {
        throw std::runtime_error(std::string(200, 'e'));
    } catch (const std::exception &e) {
        CHECK(conf_ours(&e)); // exception objects come from malloc as well
    }
}

void test_failure()
{
    // Each of the throwing forms: bad_alloc with no handler, and after the
    // handler has run until it removed itself.
    for (const form &f : forms) {
        bool nothrow = std::string(f.name).find("nothrow") != std::string::npos;
        for (std::new_handler handler : {std::new_handler(nullptr), give_up_handler}) {
            handler_calls = 0;
            std::set_new_handler(handler);
            bool threw = false;
            void *p = reinterpret_cast<void *>(1);
            try {
                p = f.allocate(impossible, std::align_val_t(64));
            } catch (const std::bad_alloc &) {
                threw = true;
            }
            if (!CHECK(nothrow ? !threw && p == nullptr : threw)) std::fprintf(stderr, "    %s\n", f.name);
            CHECK_EQ(handler_calls, handler ? 3 : 0);
            std::set_new_handler(nullptr);
        }
    }

    // A handler's own exception goes through plain new.
    handler_calls = 0;
    std::set_new_handler(throwing_handler);
    bool ran = false;
    try {
        void *p = ::operator new(impossible);
        ::operator delete(p);
    } catch (const handler_ran &) {
        ran = true;
    }
    std::set_new_handler(nullptr);
    CHECK(ran);
    CHECK_EQ(handler_calls, 1);

    // A nothrow form whose handler throws returns nullptr: it calls the
    // throwing form and returns nullptr for any exception ([new.delete]).
    for (std::new_handler handler : {throwing_handler, bad_alloc_handler}) {
        for (const form &f : forms) {
            if (std::string(f.name).find("nothrow") == std::string::npos) continue;
            handler_calls = 0;
            std::set_new_handler(handler);
            void *p = reinterpret_cast<void *>(1);
            bool threw = false;
            try {
                p = f.allocate(impossible, std::align_val_t(64));
            } catch (...) {
                threw = true;
            }
            std::set_new_handler(nullptr);
            if (!CHECK(!threw && p == nullptr)) std::fprintf(stderr, "    %s, a handler that throws\n", f.name);
            CHECK_EQ(handler_calls, 1);
        }
    }
}

#ifndef TPO_STATIC
// Under LD_PRELOAD each operator must resolve to the library's.
void test_symbols()
{
    static const char *const names[] = {
        "_Znwm", "_Znam", "_ZnwmRKSt9nothrow_t", "_ZnamRKSt9nothrow_t", "_ZnwmSt11align_val_t",
        "_ZnamSt11align_val_t", "_ZnwmSt11align_val_tRKSt9nothrow_t", "_ZnamSt11align_val_tRKSt9nothrow_t",
        "_ZdlPv", "_ZdaPv", "_ZdlPvRKSt9nothrow_t", "_ZdaPvRKSt9nothrow_t", "_ZdlPvm", "_ZdaPvm",
        "_ZdlPvSt11align_val_t", "_ZdaPvSt11align_val_t", "_ZdlPvmSt11align_val_t", "_ZdaPvmSt11align_val_t",
        "_ZdlPvSt11align_val_tRKSt9nothrow_t", "_ZdaPvSt11align_val_tRKSt9nothrow_t",
    };
    for (const char *name : names) {
        void *sym = dlsym(RTLD_DEFAULT, name);
        Dl_info info;
        bool found = sym && dladdr(sym, &info) && info.dli_fname && std::strstr(info.dli_fname, "libtierpool-malloc");
        if (!CHECK(found)) std::fprintf(stderr, "    %s is not libtierpool-malloc's\n", name);
    }
}
#endif

} // namespace

void conformance_cxx(unsigned long *passed, unsigned long *failed)
{
#ifndef TPO_STATIC
    test_symbols();
#endif
    test_forms();
    test_expressions();
    test_failure();
    *passed += test_passed;
    *failed += test_failed;
}
