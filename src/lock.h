/* SPDX-License-Identifier: MIT */
/*
 * lock.h: a lock for short critical sections that many threads take often
 * (the run heap's): it spins before it sleeps, long enough that a waiter
 * seldom sleeps at all.
 *
 * The word is 0 (free), 1 (held) or 2 (held, and a thread may sleep on it).
 * Taking it uncontended is one compare-and-swap; giving it back is one
 * exchange, and a futex wake only if the word said 2 (after U. Drepper,
 * "Futexes Are Tricky", mutex 3). A waiter first spins, reading the word
 * until it is free, for about as long as a critical section of the run heap
 * takes; only then does it mark the word 2 and sleep in the kernel. With
 * glibc's adaptive mutex, which spins a hundred rounds, two threads taking
 * the run heap's lock on the note's workload spent a fifth of their time in
 * futex calls (docs/design.md).
 */
#ifndef TIERPOOL_LOCK_H
#define TIERPOOL_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct tpi_lock {
    _Atomic uint32_t word;
} tpi_lock;

#define TPI_LOCK_INIT {0}

/* The waits of a contended take (lock.c). */
void tpi_lock_wait(tpi_lock *lock);
void tpi_lock_wake(tpi_lock *lock);

static inline bool tpi_lock_try(tpi_lock *lock)
{
    uint32_t free_word = 0;
    return atomic_compare_exchange_strong_explicit(&lock->word, &free_word, 1, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void tpi_lock_take(tpi_lock *lock)
{
    if (!tpi_lock_try(lock)) tpi_lock_wait(lock);
}

static inline void tpi_lock_give(tpi_lock *lock)
{
    if (atomic_exchange_explicit(&lock->word, 0, memory_order_release) == 2) tpi_lock_wake(lock);
}

#endif
