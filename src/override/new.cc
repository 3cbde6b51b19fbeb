// override/new.cc: the C++ operators new and delete of libtierpool-malloc,
// every form (plain, array, nothrow, sized, aligned and their combinations).
// Throwing forms call the installed new_handler and retry, then throw
// std::bad_alloc, as the standard asks. They allocate through malloc.c's
// routing (override.h), so TIERPOOL_PASSTHROUGH=1 covers them too.
#include <new>

#include "override.h"

#define TPO_EXPORT __attribute__((visibility("default")))

namespace {

void *tpo_new(std::size_t size)
{
    for (;;) {
        void *p = tpo_malloc(size);
        if (p) return p;
        std::new_handler handler = std::get_new_handler();
        if (!handler) throw std::bad_alloc();
        handler();
    }
}

void *tpo_new_aligned(std::size_t size, std::align_val_t alignment)
{
    for (;;) {
        void *p = tpo_aligned_alloc(static_cast<std::size_t>(alignment), size);
        if (p) return p;
        std::new_handler handler = std::get_new_handler();
        if (!handler) throw std::bad_alloc();
        handler();
    }
}

void *tpo_new_nothrow(std::size_t size) noexcept
{
    try {
        return tpo_new(size);
    } catch (...) {
        return nullptr;
    }
}

void *tpo_new_aligned_nothrow(std::size_t size, std::align_val_t alignment) noexcept
{
    try {
        return tpo_new_aligned(size, alignment);
    } catch (...) {
        return nullptr;
    }
}

} // namespace

TPO_EXPORT void *operator new(std::size_t n) { return tpo_new(n); }
TPO_EXPORT void *operator new[](std::size_t n) { return tpo_new(n); }
TPO_EXPORT void *operator new(std::size_t n, const std::nothrow_t &) noexcept { return tpo_new_nothrow(n); }
TPO_EXPORT void *operator new[](std::size_t n, const std::nothrow_t &) noexcept { return tpo_new_nothrow(n); }
TPO_EXPORT void *operator new(std::size_t n, std::align_val_t a) { return tpo_new_aligned(n, a); }
TPO_EXPORT void *operator new[](std::size_t n, std::align_val_t a) { return tpo_new_aligned(n, a); }
TPO_EXPORT void *operator new(std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
    return tpo_new_aligned_nothrow(n, a);
}
TPO_EXPORT void *operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t &) noexcept
{
    return tpo_new_aligned_nothrow(n, a);
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
