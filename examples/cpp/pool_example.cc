/* SPDX-License-Identifier: MIT */
/*
 * pool_example.cc: tierpool from C++ (include/tierpool.hpp): a request arena
 * whose containers all come from one pool, freed together when the pool
 * goes; the default pool behind std::pmr's default resource.
 *
 *   cmake -S examples/cpp -B build-example -DCMAKE_PREFIX_PATH=<prefix>
 *   cmake --build build-example && build-example/pool_example
 */
#include <tierpool.hpp>

#include <cstdio>
#include <map>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

struct session {
    int id;
    std::pmr::string user;
};

int main()
{
    /* One pool per request, declared first so that it outlives its users. */
    tierpool::pool request("request", 64u << 20);

    /* An STL allocator: the vector's buffer lives in the pool. */
    std::vector<int, tierpool::allocator<int>> ids(request);
    for (int i = 0; i < 1000; i++) ids.push_back(i);

    /* std::pmr containers over the pool: the map's nodes (and any string too long
     * to be kept inside its object). */
    tierpool::pool_resource arena(request);
    std::pmr::map<int, session> sessions(&arena);
    for (int id : ids) sessions.emplace(id, session{id, std::pmr::string("user-" + std::to_string(id), &arena)});

    /* One block for the object and the shared_ptr's control block. */
    auto config = std::allocate_shared<std::vector<double>>(tierpool::allocator<double>(request), 16, 0.5);

    tp_stats stats;
    tp_stats_get(request.get(), &stats);
    std::printf("pool %s: %zu sessions, %llu live blocks, %llu KiB live; session 999 is %s; config[15] = %.1f\n",
                request.name(), sessions.size(), (unsigned long long)stats.live_blocks,
                (unsigned long long)(stats.live_bytes >> 10), sessions.at(999).user.c_str(), (*config)[15]);

    /* Everything else in the program: the default pool through std::pmr. */
    std::pmr::set_default_resource(tierpool::default_resource());
    std::pmr::vector<std::pmr::string> log{"started", "served 1000 sessions"};
    bool in_default = tp_pool_of(log.data()) == tp_pool_default();
    std::printf("log: %zu lines, in the default pool: %s\n", log.size(), in_default ? "yes" : "no");
    std::pmr::set_default_resource(nullptr);
    return in_default && stats.live_blocks >= sessions.size() + 2 ? 0 : 1;
}
