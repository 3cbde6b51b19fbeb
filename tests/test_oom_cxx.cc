/* SPDX-License-Identifier: MIT */
// test_oom_cxx.cc: out of memory through libtierpool-malloc (issue 9), run
// with LD_PRELOAD (tests/oom.cmake). In a forked child under RLIMIT_AS:
// operator new of each form throws std::bad_alloc, the nothrow forms return
// nullptr, an installed new_handler is called (and once it makes room, the
// allocation succeeds); the C surface (malloc, calloc, realloc, reallocarray,
// aligned_alloc, memalign, posix_memalign, valloc, pvalloc) returns NULL
// with ENOMEM (posix_memalign returns it); after the limit is raised,
// everything allocates again. Each check is counted; the child's counts come
// back through a pipe.
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "override/new_handlers.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "override/preload.h"

namespace {

unsigned long passed, failed;

void check(bool ok, const char *what, int line)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        std::fprintf(stderr, "test_oom_cxx.cc:%d: FAILED: %s\n", line, what);
    }
}
#define CHECK(x) check((x), #x, __LINE__)

const std::size_t MiB = std::size_t(1) << 20;
const std::size_t BIG = 64 * MiB; // no mapping of that size fits under the limit

std::size_t vm_size()
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    return std::strtoull(buf, nullptr, 10) * std::size_t(sysconf(_SC_PAGESIZE));
}

rlimit saved;

void limit_now()
{
    getrlimit(RLIMIT_AS, &saved);
    rlimit r = saved;
    r.rlim_cur = vm_size() + 6 * MiB; // below one 4 MiB chunk's 8 MiB reservation
    setrlimit(RLIMIT_AS, &r);
}

void unlimit()
{
    setrlimit(RLIMIT_AS, &saved);
}

// Where allocations go, so the compiler cannot elide a new/delete pair.
char *volatile sink;

void handler_giving_up()
{
    handler_calls++;
    std::set_new_handler(nullptr); // the next failure throws
}
void handler_making_room()
{
    handler_calls++;
    unlimit();
}

bool null_enomem(void *p)
{
    bool ok = p == nullptr && errno == ENOMEM;
    std::free(p);
    return ok;
}

void test_cxx()
{
    CHECK(throws_bad_alloc([] { delete static_cast<char *>(::operator new(BIG)); }));
    CHECK(throws_bad_alloc([] { delete[] (sink = new char[BIG]); }));
    CHECK(throws_bad_alloc([] { ::operator delete(::operator new(BIG, std::align_val_t(4 * MiB))); }));
    CHECK(throws_bad_alloc([] { ::operator delete[](::operator new[](BIG, std::align_val_t(64))); }));
    CHECK(new (std::nothrow) char[BIG] == nullptr);
    CHECK(::operator new(BIG, std::nothrow) == nullptr);
    CHECK(::operator new(BIG, std::align_val_t(4 * MiB), std::nothrow) == nullptr);
    CHECK(::operator new[](BIG, std::align_val_t(256), std::nothrow) == nullptr);
    // The handler is called; when it gives up, bad_alloc.
    handler_calls = 0;
    std::set_new_handler(handler_giving_up);
    CHECK(throws_bad_alloc([] { delete[] (sink = new char[BIG]); }));
    CHECK(handler_calls == 1);
    // nothrow new calls it too, then returns nullptr.
    handler_calls = 0;
    std::set_new_handler(handler_giving_up);
    CHECK(::operator new(BIG, std::nothrow) == nullptr);
    CHECK(handler_calls == 1);
    // A handler that makes room: the retry succeeds.
    handler_calls = 0;
    std::set_new_handler(handler_making_room);
    char *p = sink = new char[BIG];
    CHECK(p != nullptr && handler_calls == 1);
    p[BIG - 1] = 1;
    delete[] p;
    std::set_new_handler(nullptr);
}

void test_c()
{
    errno = 0;
    CHECK(null_enomem(std::malloc(BIG)));
    errno = 0;
    CHECK(null_enomem(std::calloc(1, BIG)));
    errno = 0;
    CHECK(null_enomem(std::aligned_alloc(4 * MiB, 4 * MiB)));
    errno = 0;
    CHECK(null_enomem(memalign(64, BIG)));
    errno = 0;
    CHECK(null_enomem(valloc(BIG)));
    errno = 0;
    CHECK(null_enomem(pvalloc(BIG)));
    void *out = &out;
    errno = 0;
    CHECK(posix_memalign(&out, 4096, BIG) == ENOMEM && out == &out && errno == 0);
    char *small = static_cast<char *>(std::malloc(100));
    std::memset(small, 7, 100);
    for (int i = 0; i < 2; i++) {
        errno = 0;
        void *r = i ? reallocarray(small, 2, BIG / 2) : std::realloc(small, BIG);
        CHECK(r == nullptr && errno == ENOMEM);
        if (r) small = static_cast<char *>(r);
    }
    CHECK(small[0] == 7 && small[99] == 7);
    std::free(small);
}

void child()
{
    auto pool_of = preload_pool_of();
    void *warm = std::malloc(100);
    CHECK(pool_of && pool_of(warm)); // tierpool is this process's malloc
    std::free(warm);
    delete new int(1);
    limit_now();
    test_cxx();
    limit_now();
    test_c();
    unlimit();
    char *p = new char[BIG];
    void *q = std::malloc(BIG);
    CHECK(p != nullptr && q != nullptr);
    delete[] p;
    std::free(q);
}

} // namespace

int main()
{
    int fds[2];
    if (pipe(fds) != 0) return 1;
    std::fflush(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        alarm(30);
        child();
        unsigned long counts[2] = {passed, failed};
        ssize_t w = write(fds[1], counts, sizeof counts);
        (void)w;
        _exit(0);
    }
    close(fds[1]);
    unsigned long counts[2] = {0, 1};
    ssize_t r = read(fds[0], counts, sizeof counts);
    int status = 0;
    waitpid(pid, &status, 0);
    if (r != static_cast<ssize_t>(sizeof counts) || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        std::fprintf(stderr, "test_oom_cxx: the child did not finish (status %d)\n", status);
        counts[1]++;
    }
    std::printf("test_oom_cxx: %lu passed, %lu failed\n", counts[0], counts[1]);
    return counts[1] == 0 && counts[0] > 0 ? 0 : 1;
}
