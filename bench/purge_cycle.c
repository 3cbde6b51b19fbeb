/*
 * purge_cycle.c: the cost of giving memory back too eagerly.
 *
 *   purge_cycle [ROUNDS] [PAUSE_MS]
 *
 * Each round allocates 64 blocks of 1 MiB, fills them, frees them, then
 * pauses PAUSE_MS (a request burst, then quiet). An allocator that purges
 * freed memory during the pause pays the first touch again in the next burst
 * (about 12 us per 4 KiB page on a VM); one that never purges keeps 64 MiB.
 * Prints "seconds S rss_after_pause BYTES" (RSS at the end of the last pause).
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static size_t rss_bytes(void)
{
    char buf[128];
    int fd = open("/proc/self/statm", O_RDONLY);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strchr(buf, ' ');
    return p ? (size_t)strtoull(p + 1, NULL, 10) * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20;
    int pause_ms = argc > 2 ? atoi(argv[2]) : 200;
    void *blocks[64];
    double busy = 0;
    size_t rss = 0;
    for (int r = 0; r < rounds; r++) {
        double t0 = now_s();
        for (int i = 0; i < 64; i++) {
            blocks[i] = malloc(1 << 20);
            memset(blocks[i], r + i, 1 << 20);
        }
        for (int i = 0; i < 64; i++) free(blocks[i]);
        busy += now_s() - t0;
        /* The pause, with a trickle of small requests (slow paths happen). */
        double end = now_s() + pause_ms / 1000.0;
        while (now_s() < end) {
            for (int k = 0; k < 100; k++) {
                void *volatile p = malloc(64 + (size_t)k);
                free(p);
            }
            usleep(1000);
        }
        rss = rss_bytes();
    }
    printf("seconds %.4f rss_after_pause %zu\n", busy, rss);
    return 0;
}
