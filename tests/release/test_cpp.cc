/* SPDX-License-Identifier: MIT */
/*
 * test_cpp.cc: include/tierpool.hpp, built by each C++ compiler found (g++
 * and clang++): blocks of the containers, pmr resources and allocate_shared
 * come from the pool asked for, alignment is kept, failures throw, and a
 * pool handle destroys its pool (and moves ownership) as it says.
 */
#include "tierpool.hpp"
#include "../test.h"

#include <map>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

/* Whether a live pool of that name is listed by tp_stats_write. */
static void collect(void *arg, const char *text)
{
    static_cast<std::string *>(arg)->append(text);
}
static bool pool_listed(const char *name)
{
    std::string json;
    tp_stats_write(nullptr, TP_STATS_JSON, collect, &json);
    return json.find(std::string("\"") + name + "\"") != std::string::npos;
}

struct alignas(64) line {
    unsigned char bytes[64];
};

static void test_pool_handle(void)
{
    {
        tierpool::pool p("cpp-handle");
        CHECK(pool_listed("cpp-handle"));
        CHECK(std::string(p.name()) == "cpp-handle");
        void *a = p.allocate(100);
        void *b = p.allocate(100, 256);
        CHECK_PTR_EQ(tp_pool_of(a), p.get());
        CHECK_EQ(reinterpret_cast<uintptr_t>(b) % 256, 0);
        p.deallocate(a);
        /* b is left: the pool's destruction frees it. */

        tierpool::pool q(std::move(p)); /* ownership moves, the pool stays */
        CHECK(p.get() == nullptr);
        CHECK_PTR_EQ(tp_pool_of(b), q.get());
        CHECK(pool_listed("cpp-handle"));
    }
    CHECK(!pool_listed("cpp-handle"));

    tierpool::pool r("cpp-assign");
    r = tierpool::pool("cpp-assigned"); /* the old pool is destroyed */
    CHECK(!pool_listed("cpp-assign"));
    CHECK(pool_listed("cpp-assigned"));
    tp_pool *raw = r.release();
    CHECK(r.get() == nullptr);
    tp_pool_destroy(raw);
    CHECK(!pool_listed("cpp-assigned"));
}

static void test_limit_throws(void)
{
    tierpool::pool p("cpp-limit", 8u << 20);
    bool threw = false;
    try {
        for (int i = 0; i < 100; i++) p.allocate(1u << 20);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);

    threw = false;
    std::vector<char, tierpool::allocator<char>> v{tierpool::allocator<char>(p)};
    try {
        v.resize(64u << 20);
    } catch (const std::bad_alloc &) {
        threw = true;
    }
    CHECK(threw);

    threw = false;
    tierpool::allocator<line> a(p);
    try {
        (void)a.allocate(std::numeric_limits<std::size_t>::max() / 2);
    } catch (const std::bad_array_new_length &) {
        threw = true;
    }
    CHECK(threw);
}

static void test_resource(void)
{
    tierpool::pool p("cpp-resource");
    tierpool::pool_resource res(p);
    CHECK_PTR_EQ(res.get(), p.get());
    {
        std::pmr::vector<int> v(&res);
        for (int i = 0; i < 10000; i++) v.push_back(i);
        CHECK_PTR_EQ(tp_pool_of(v.data()), p.get());
        CHECK_EQ(v[9999], 9999);

        std::pmr::map<int, std::pmr::string> m(&res);
        for (int i = 0; i < 1000; i++) m[i] = std::pmr::string(100, 'x');
        CHECK_PTR_EQ(tp_pool_of(m[500].data()), p.get()); /* the strings use the map's resource */
        CHECK_EQ(m.size(), 1000);

        void *aligned = res.allocate(3000, 4096);
        CHECK_EQ(reinterpret_cast<uintptr_t>(aligned) % 4096, 0);
        CHECK_PTR_EQ(tp_pool_of(aligned), p.get());
        res.deallocate(aligned, 3000, 4096);
    }

    tierpool::pool_resource same(p.get()), other;
    CHECK(res == same);
    CHECK(!(res == other));
    CHECK(*tierpool::default_resource() == other);
    CHECK(!(res == *std::pmr::new_delete_resource()));

    void *d = tierpool::default_resource()->allocate(64);
    CHECK_PTR_EQ(tp_pool_of(d), tp_pool_default());
    tierpool::default_resource()->deallocate(d, 64);
}

static void test_allocator(void)
{
    tierpool::pool p("cpp-allocator");
    {
        std::vector<int, tierpool::allocator<int>> v(p);
        for (int i = 0; i < 5000; i++) v.push_back(i);
        CHECK_PTR_EQ(tp_pool_of(v.data()), p.get());

        using pair_alloc = tierpool::allocator<std::pair<const int, int>>;
        std::map<int, int, std::less<int>, pair_alloc> m{pair_alloc(p)};
        for (int i = 0; i < 1000; i++) m[i] = i * 2;
        CHECK_PTR_EQ(tp_pool_of(&m.find(777)->second), p.get());
        CHECK_EQ(m[777], 1554);

        /* The control block and the object in one block of the pool. */
        auto sp = std::allocate_shared<std::vector<int>>(tierpool::allocator<char>(p), 10, 7);
        CHECK_PTR_EQ(tp_pool_of(sp.get()), p.get());
        CHECK_EQ((*sp)[9], 7);

        std::vector<line, tierpool::allocator<line>> lines(p);
        lines.resize(33);
        CHECK_EQ(reinterpret_cast<uintptr_t>(lines.data()) % 64, 0);
    }

    tierpool::allocator<int> a(p), b(p.get()), d;
    tierpool::allocator<double> c(a);
    CHECK(a == b);
    CHECK(a == c); /* rebound, the same pool */
    CHECK(a != d);
    CHECK_PTR_EQ(d.get(), tp_pool_default());
    CHECK(d == tierpool::allocator<int>(nullptr));

    std::vector<int, tierpool::allocator<int>> dv(100, 1);
    CHECK_PTR_EQ(tp_pool_of(dv.data()), tp_pool_default());
}

TEST_MAIN(CASE(pool_handle), CASE(limit_throws), CASE(resource), CASE(allocator))
