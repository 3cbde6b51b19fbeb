/* SPDX-License-Identifier: MIT */
/*
 * bufpool.c: a server's buffer pool replaced by malloc: connection threads
 * take and return buffers of 4 KiB .. 1 MiB.
 *
 *   bufpool THREADS REQUESTS [MAX_KIB]
 *
 * Each thread is a connection that handles REQUESTS requests. A request
 * takes a receive buffer (4 KiB .. MAX_KIB, default 1024, about
 * log-uniform), writes the request into it, then takes a response buffer of
 * another size, writes it, returns the receive buffer and queues the
 * response. A connection keeps up to 8 responses queued and sends (checks
 * and frees) the oldest when the queue is full. Every fourth response is
 * sent by the next connection's thread instead, handed over through its
 * inbox, so a quarter of the frees are of another thread's buffers.
 *
 * A buffer is written in full up to 4 KiB and in one byte of every further
 * 4 KiB page (the pages a server would fill from the network), so an
 * allocator that gave a buffer's memory back pays its page faults again,
 * without copying dominating the time. Contents are checked before a buffer
 * is returned. Prints "check requests N bytes B bad X" (the same for every
 * allocator unless one is wrong).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"

#define PAGE 4096
#define QUEUE 8  /* responses a connection keeps queued */
#define INBOX 64 /* responses waiting in a connection's inbox, at most */

typedef struct buffer {
    size_t size;
    uint32_t seq; /* sets the contents */
} buffer;

typedef struct connection {
    pthread_mutex_t lock;
    unsigned inbox_count;
    buffer *inbox[INBOX];
    char pad[64];
} connection;

static connection *connections;
static int thread_count;
static long requests;
static size_t max_size;
static _Atomic long bad_buffers;
static _Atomic uint64_t total_bytes;

static unsigned char content(uint32_t seq, size_t offset)
{
    return (unsigned char)(seq * 31 + offset / PAGE + offset);
}

/* A buffer of `size` bytes with the contents for `seq`. */
static buffer *take(size_t size, uint32_t seq)
{
    unsigned char *p = malloc(size);
    if (!p) {
        fprintf(stderr, "bufpool: malloc(%zu) failed\n", size);
        exit(1);
    }
    buffer *b = (buffer *)p;
    b->size = size;
    b->seq = seq;
    size_t head = size < PAGE ? size : PAGE;
    for (size_t i = sizeof *b; i < head; i++) p[i] = content(seq, i);
    for (size_t i = PAGE; i < size; i += PAGE) p[i] = content(seq, i);
    p[size - 1] = content(seq, size - 1);
    return b;
}

/* Checks a buffer's contents (a sample of them), then frees it. */
static void give_back(buffer *b)
{
    unsigned char *p = (unsigned char *)b;
    size_t size = b->size;
    int bad = size < PAGE || size > max_size;
    if (!bad) {
        for (size_t i = sizeof *b; i < PAGE; i += 61) bad |= p[i] != content(b->seq, i);
        for (size_t i = PAGE; i < size; i += PAGE) bad |= p[i] != content(b->seq, i);
        bad |= p[size - 1] != content(b->seq, size - 1);
    }
    if (bad) atomic_fetch_add_explicit(&bad_buffers, 1, memory_order_relaxed);
    free(b);
}

static void drain_inbox(connection *c)
{
    buffer *batch[INBOX];
    pthread_mutex_lock(&c->lock);
    unsigned n = c->inbox_count;
    memcpy(batch, c->inbox, n * sizeof batch[0]);
    c->inbox_count = 0;
    pthread_mutex_unlock(&c->lock);
    for (unsigned i = 0; i < n; i++) give_back(batch[i]);
}

/* Hands a response to connection c; sends it here if c's inbox is full. */
static void hand_over(connection *c, buffer *b)
{
    pthread_mutex_lock(&c->lock);
    int queued = c->inbox_count < INBOX;
    if (queued) c->inbox[c->inbox_count++] = b;
    pthread_mutex_unlock(&c->lock);
    if (!queued) give_back(b);
}

static void *connection_thread(void *arg)
{
    long id = (long)(uintptr_t)arg;
    connection *self = &connections[id], *next = &connections[(id + 1) % thread_count];
    uint64_t seed = (uint64_t)id * 2654435761u + 17;
    buffer *queue[QUEUE] = {0};
    uint64_t bytes = 0;
    for (long r = 0; r < requests; r++) {
        uint32_t seq = (uint32_t)(id * requests + r);
        size_t in_size = bench_log_size(&seed, PAGE, max_size);
        size_t out_size = bench_log_size(&seed, PAGE, max_size);
        bytes += in_size + out_size;
        buffer *in = take(in_size, seq);
        buffer *out = take(out_size, seq + 1);
        give_back(in);
        if (thread_count > 1 && r % 4 == 3) {
            hand_over(next, out);
        } else {
            unsigned slot = (unsigned)(r % QUEUE);
            if (queue[slot]) give_back(queue[slot]);
            queue[slot] = out;
        }
        if (r % 8 == 7) drain_inbox(self);
    }
    for (unsigned i = 0; i < QUEUE; i++)
        if (queue[i]) give_back(queue[i]);
    drain_inbox(self);
    atomic_fetch_add_explicit(&total_bytes, bytes, memory_order_relaxed);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s THREADS REQUESTS [MAX_KIB]\n", argv[0]);
        return 2;
    }
    thread_count = atoi(argv[1]);
    requests = atol(argv[2]);
    max_size = (size_t)(argc > 3 ? atol(argv[3]) : 1024) << 10;
    if (thread_count < 1 || thread_count > 256 || requests < 1 || max_size <= PAGE) {
        fprintf(stderr, "bufpool: bad arguments\n");
        return 2;
    }
    connections = calloc((size_t)thread_count, sizeof *connections);
    pthread_t *threads = calloc((size_t)thread_count, sizeof *threads);
    if (!connections || !threads) return 1;
    for (int i = 0; i < thread_count; i++) pthread_mutex_init(&connections[i].lock, NULL);
    double start = bench_now();
    for (long i = 0; i < thread_count; i++)
        pthread_create(&threads[i], NULL, connection_thread, (void *)(uintptr_t)i);
    for (int i = 0; i < thread_count; i++) pthread_join(threads[i], NULL);
    /* Responses handed to a connection after it finished. */
    for (int i = 0; i < thread_count; i++) drain_inbox(&connections[i]);
    double seconds = bench_now() - start;
    printf("bufpool %d threads %.4f s %.0f requests/s\n", thread_count, seconds,
           (double)thread_count * (double)requests / seconds);
    printf("check requests %ld bytes %llu bad %ld\n", (long)thread_count * requests,
           (unsigned long long)atomic_load(&total_bytes), atomic_load(&bad_buffers));
    free(threads);
    free(connections);
    return 0;
}
