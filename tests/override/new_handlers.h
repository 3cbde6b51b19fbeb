/* SPDX-License-Identifier: MIT */
// new_handlers.h: the new_handlers the C++ tests of the operators install
// (conformance_cxx.cc, cxx_plugin.cc, test_oom_cxx.cc), each counting its
// calls, a size no allocator can serve, and throws_bad_alloc. Internal to
// each test file that includes it.
#ifndef TPO_NEW_HANDLERS_H
#define TPO_NEW_HANDLERS_H

#include <cstddef>
#include <limits>
#include <new>

namespace {

// A size no allocator can serve; volatile so the compiler cannot see it.
volatile std::size_t impossible = std::numeric_limits<std::size_t>::max() / 2;

int handler_calls;

// Whether f() throws std::bad_alloc.
template <class F> [[maybe_unused]] bool throws_bad_alloc(F f)
{
    try {
        f();
    } catch (const std::bad_alloc &) {
        return true;
    }
    return false;
}

// Gives up on its third call: the allocation must then throw.
[[maybe_unused]] void give_up_handler()
{
    if (++handler_calls == 3) std::set_new_handler(nullptr);
}

// Throws an exception of its own (not a bad_alloc).
struct handler_ran {};
[[maybe_unused]] void throwing_handler()
{
    handler_calls++;
    throw handler_ran();
}

// Throws bad_alloc, as [new.handler] allows.
[[maybe_unused]] void bad_alloc_handler()
{
    handler_calls++;
    throw std::bad_alloc();
}

} // namespace

#endif // TPO_NEW_HANDLERS_H
