/* SPDX-License-Identifier: MIT */
/*
 * lock.c: the contended side of tpi_lock (lock.h): spin, then sleep on a
 * futex.
 */
#include "lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Rounds of reading the word before a waiter sleeps: each a pause (about 40
 * cycles on current x86), so some microseconds in all, longer than the run
 * heap's critical sections. */
#define TPI_LOCK_SPINS 512

static inline void tpi_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void tpi_lock_wait(tpi_lock *lock)
{
    for (unsigned i = 0; i < TPI_LOCK_SPINS; i++) {
        if (atomic_load_explicit(&lock->word, memory_order_relaxed) == 0 && tpi_lock_try(lock)) return;
        tpi_cpu_relax();
    }
    /* Mark the word contended, and sleep while another thread holds it;
     * whoever takes it this way leaves it at 2, so its give wakes the next. */
    while (atomic_exchange_explicit(&lock->word, 2, memory_order_acquire) != 0)
        syscall(SYS_futex, &lock->word, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void tpi_lock_wake(tpi_lock *lock)
{
    syscall(SYS_futex, &lock->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}
