/* SPDX-License-Identifier: MIT */
/*
 * test_monitor.c: statistics published to shared memory and read from
 * another process, as `tierpool top` does.
 */
#define _GNU_SOURCE
#include "../src/internal.h"
#include "tierpool_segment.h"
#include "test.h"
#include "util.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>

/* In a child process: maps the parent's segment and waits (up to 10 s) for a
 * snapshot showing pool `name` with `allocs` allocations. Exit status 0 if
 * seen, 1 if not. */
static int child_reads(pid_t parent, const char *name, uint64_t allocs)
{
    char path[64];
    snprintf(path, sizeof path, TPI_SHM_NAME_FORMAT, (long)parent);
    static tpi_shm copy;
    for (int tries = 0; tries < 1000; tries++) {
        int fd = shm_open(path, O_RDONLY, 0);
        if (fd >= 0) {
            const tpi_shm *shm = mmap(NULL, sizeof(tpi_shm), PROT_READ, MAP_SHARED, fd, 0);
            close(fd);
            if (shm != MAP_FAILED) {
                int ok = tpi_shm_read(shm, &copy) == 0 && copy.pid == parent;
                munmap((void *)shm, sizeof(tpi_shm));
                for (uint32_t i = 0; ok && i < copy.pool_count; i++)
                    if (strcmp(copy.pools[i].pool, name) == 0 && copy.pools[i].allocs == allocs &&
                        copy.process.allocs >= allocs)
                        return 0;
            }
        }
        struct timespec t = {0, 10 * 1000 * 1000};
        nanosleep(&t, NULL);
    }
    return 1;
}

int main(void)
{
    CHECK_EQ(tp_option_set("publish_interval", "10ms"), 0);
    CHECK_EQ(tp_monitor_start(), 0);
    CHECK_EQ(tp_monitor_start(), 0); /* idempotent */
    tp_pool *pool = tp_pool_create("monitored", NULL);
    void *blocks[300];
    for (int i = 0; i < 300; i++) blocks[i] = tp_pool_malloc(pool, 100);
    pid_t parent = getpid();
    pid_t child = fork();
    if (child == 0) _exit(child_reads(parent, "monitored", 300));
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (int i = 0; i < 300; i++) tp_free(blocks[i]);
    tp_pool_destroy(pool);
    return test_report();
}
