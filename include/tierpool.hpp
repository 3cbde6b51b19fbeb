/* SPDX-License-Identifier: MIT */
/*
 * tierpool.hpp: tierpool for C++17 programs, over the C API of tierpool.h.
 *
 *   tierpool::pool             a pool that is destroyed, with every block in
 *                              it, when the handle goes (RAII; movable)
 *   tierpool::pool_resource    a std::pmr::memory_resource over a pool, or
 *                              over the default pool (default_resource())
 *   tierpool::allocator<T>     an allocator for the standard containers and
 *                              std::allocate_shared, over a pool or the
 *                              default pool
 *
 *     tierpool::pool arena("request");                       // first: it outlives
 *     std::vector<int, tierpool::allocator<int>> v(arena);   // the containers
 *     tierpool::pool_resource res(arena);
 *     std::pmr::unordered_map<int, std::pmr::string> m(&res);
 *
 * A pool's blocks go when the pool goes: destroy the containers that use a
 * pool before it (declare the pool first), or call nothing on them after.
 * Failures throw std::bad_alloc, as operator new does. Any tierpool block
 * may be freed from any thread; a pool may be used by many threads at once.
 * examples/cpp/pool_example.cc shows all three.
 */
#ifndef TIERPOOL_HPP
#define TIERPOOL_HPP

#if __cplusplus < 201703L
#error "tierpool.hpp needs C++17 (std::pmr::memory_resource)"
#endif

#include "tierpool.h"

#include <cstddef>
#include <limits>
#include <memory_resource>
#include <new>
#include <utility>

namespace tierpool {

namespace detail {
/* size bytes aligned to `alignment` from pool (NULL: the default pool); throws
 * std::bad_alloc. tp_pool_malloc already aligns to max_align_t. */
inline void *allocate(tp_pool *pool, std::size_t size, std::size_t alignment)
{
    void *p = alignment <= alignof(std::max_align_t) ? tp_pool_malloc(pool, size)
                                                     : tp_pool_aligned_alloc(pool, alignment, size);
    if (!p) throw std::bad_alloc();
    return p;
}
} // namespace detail

/* An explicit pool, destroyed with its blocks when the handle is. */
class pool {
public:
    /* tp_pool_create(name, {memory_limit}); memory_limit 0 is unlimited.
     * Throws std::bad_alloc when the pool cannot be made. */
    explicit pool(const char *name = nullptr, std::size_t memory_limit = 0)
    {
        tp_pool_config config{};
        config.memory_limit = memory_limit;
        pool_ = tp_pool_create(name, &config);
        if (!pool_) throw std::bad_alloc();
    }
    ~pool() { tp_pool_destroy(pool_); }

    pool(const pool &) = delete;
    pool &operator=(const pool &) = delete;
    pool(pool &&other) noexcept : pool_(std::exchange(other.pool_, nullptr)) {}
    pool &operator=(pool &&other) noexcept
    {
        if (this != &other) {
            tp_pool_destroy(pool_);
            pool_ = std::exchange(other.pool_, nullptr);
        }
        return *this;
    }

    /* The C handle, for the tp_pool_* calls; NULL after a move. */
    tp_pool *get() const noexcept { return pool_; }
    /* Gives up ownership: the caller destroys the pool. */
    tp_pool *release() noexcept { return std::exchange(pool_, nullptr); }
    const char *name() const noexcept { return tp_pool_name(pool_); }

    /* size bytes with the given alignment; throws std::bad_alloc, also past
     * the memory limit. Free with deallocate or tp_free. */
    void *allocate(std::size_t size, std::size_t alignment = alignof(std::max_align_t))
    {
        return detail::allocate(pool_, size, alignment);
    }
    void deallocate(void *p) noexcept { tp_free(p); }

    /* tp_pool_reset: every block freed at once, the memory kept. */
    void reset() noexcept { tp_pool_reset(pool_); }
    /* tp_pool_trim: free memory back to the OS; the bytes given back. */
    std::size_t trim() noexcept { return tp_pool_trim(pool_); }

private:
    tp_pool *pool_;
};

/* A std::pmr::memory_resource over a pool it does not own (the pool must
 * outlive it), or over the default pool. Two resources are equal when they
 * serve the same pool. */
class pool_resource : public std::pmr::memory_resource {
public:
    /* Over the default pool. */
    pool_resource() noexcept : pool_(tp_pool_default()) {}
    explicit pool_resource(tp_pool *p) noexcept : pool_(p ? p : tp_pool_default()) {}
    explicit pool_resource(const pool &p) noexcept : pool_resource(p.get()) {}

    tp_pool *get() const noexcept { return pool_; }

protected:
    void *do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        return detail::allocate(pool_, bytes, alignment);
    }
    void do_deallocate(void *p, std::size_t bytes, std::size_t) override { tp_free_sized(p, bytes); }
    bool do_is_equal(const std::pmr::memory_resource &other) const noexcept override
    {
        auto *o = dynamic_cast<const pool_resource *>(&other);
        return o && o->pool_ == pool_;
    }

private:
    tp_pool *pool_;
};

/* The resource of the default pool, for std::pmr::set_default_resource. */
inline pool_resource *default_resource() noexcept
{
    static pool_resource resource;
    return &resource;
}

/* An allocator over a pool (which must outlive the blocks) or the default
 * pool. Allocators of the same pool are equal, whatever their T; they are
 * not propagated on container copy, move or swap, as polymorphic_allocator
 * is not. */
template <class T>
class allocator {
public:
    using value_type = T;

    /* Over the default pool. */
    allocator() noexcept : pool_(tp_pool_default()) {}
    allocator(tp_pool *p) noexcept : pool_(p ? p : tp_pool_default()) {}
    allocator(const pool &p) noexcept : allocator(p.get()) {}
    template <class U>
    allocator(const allocator<U> &other) noexcept : pool_(other.get())
    {
    }

    T *allocate(std::size_t n)
    {
        if (n > std::numeric_limits<std::size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
        return static_cast<T *>(detail::allocate(pool_, n * sizeof(T), alignof(T)));
    }
    void deallocate(T *p, std::size_t n) noexcept { tp_free_sized(p, n * sizeof(T)); }

    tp_pool *get() const noexcept { return pool_; }

private:
    tp_pool *pool_;
};

template <class T, class U>
bool operator==(const allocator<T> &a, const allocator<U> &b) noexcept
{
    return a.get() == b.get();
}
template <class T, class U>
bool operator!=(const allocator<T> &a, const allocator<U> &b) noexcept
{
    return a.get() != b.get();
}

} // namespace tierpool

#endif /* TIERPOOL_HPP */
