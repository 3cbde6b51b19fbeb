/* SPDX-License-Identifier: MIT */
/*
 * internal.h: the types shared by tierpool's sources, and their vocabulary.
 *
 * The map, from the top down:
 *
 *   pool (tp_pool)    An owner of memory: a set of chunks, a list of huge
 *                     blocks, a lock for its slow paths. The default pool is
 *                     static; explicit pools come from tp_pool_create.
 *   tcache            One per (thread, pool): the thread's view of the pool.
 *                     It owns slab pages; for each size class it keeps a queue
 *                     of pages with free blocks, and the page malloc pops from.
 *   chunk             4 MiB of address space aligned to 4 MiB, taken from the
 *                     OS and resident only as it is touched. Its first 64 KiB
 *                     slice holds the chunk header: page descriptors and the
 *                     slice -> page map. A pointer's chunk is `p & ~(4 MiB-1)`.
 *   slice             64 KiB of a chunk; the unit the pool hands out.
 *   page              A run of 1..32 slices carved into blocks of one size
 *                     class (a "slab"). "OS page" always means the kernel's
 *                     4 KiB page; plain "page" means this.
 *   block             What the user gets. A free block's first word links it
 *                     into one of its page's free lists; above 4 KiB its
 *                     second word may hold an age mark (tpi_page_purge_free).
 *   huge block        Above 1 MiB: a mapping of its own, a header at the start
 *                     of its first chunk.
 *   registry          One byte per 4 MiB of address space: is this chunk ours,
 *                     and is it a slab chunk or a huge block?
 *
 * A page's blocks are in exactly one of four places at any time:
 *   page->free         owner only; malloc pops from it
 *   page->local_free   owner only; the owner's frees push to it
 *   page->thread_free  any thread; other threads' frees push with one CAS
 *   in use             handed out (or pushed on a tcache's delayed list)
 * and page->used counts those not on `free` or `local_free`, so
 *   used == in use + on thread_free, and the page is empty when used == 0;
 * plus one while the page is pinned (tcache.c), which readers other than the
 * fast paths take off with tpi_page_used.
 * Owner-only fields are touched by the owning thread alone, so the fast paths
 * need no atomics; ownership changes only by the owner (abandon at thread
 * exit) or under the pool lock (adoption of an abandoned page).
 */
#ifndef TPI_INTERNAL_H
#define TPI_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>

#include "tierpool.h"
#include "limit.h"
#include "tierpool_segment.h"
#include "lock.h"
#include "track.h"

/* ---- build-time constants ----------------------------------------------------- */

#define TPI_CHUNK_SHIFT 22
#define TPI_CHUNK_SIZE ((size_t)1 << TPI_CHUNK_SHIFT) /* 4 MiB */
#define TPI_CHUNK_MASK (TPI_CHUNK_SIZE - 1)
#define TPI_SLICE_SHIFT 16
#define TPI_SLICE_SIZE ((size_t)1 << TPI_SLICE_SHIFT) /* 64 KiB */
#define TPI_SLICES_PER_CHUNK (TPI_CHUNK_SIZE / TPI_SLICE_SIZE) /* 64 */
#define TPI_OS_PAGE 4096u

#define TPI_SMALL_MAX 4096u                  /* sizes served by the table lookup */
#define TPI_SLAB_MAX 8192u                   /* the largest slab block: above are runs */
#define TPI_SMALL_SLOTS (TPI_SMALL_MAX / 16 + 1) /* 257 */
#define TPI_LARGE_MAX ((size_t)1 << 20)       /* 1 MiB: above is the huge tier */
#define TPI_SLAB_ALIGN_MAX TPI_SLICE_SIZE     /* slab blocks align up to 64 KiB */
#define TPI_MAX_REQUEST ((size_t)PTRDIFF_MAX - 2 * TPI_CHUNK_SIZE)

/* Address bits covered by the registry: user space on x86-64 is 47 bits,
 * 48 on aarch64 and most others. */
#if defined(__x86_64__)
#define TPI_VA_BITS 47
#else
#define TPI_VA_BITS 48
#endif
#define TPI_REGISTRY_SIZE ((size_t)1 << (TPI_VA_BITS - TPI_CHUNK_SHIFT))

#if defined(__GNUC__)
#define tpi_likely(x) __builtin_expect(!!(x), 1)
#define tpi_unlikely(x) __builtin_expect(!!(x), 0)
#define tpi_noinline __attribute__((noinline))
#define tpi_cold __attribute__((cold, noinline))
#define tpi_unused __attribute__((unused))
#else
#define tpi_likely(x) (x)
#define tpi_unlikely(x) (x)
#define tpi_noinline
#define tpi_cold
#define tpi_unused
#endif

/* Thread-locals: initial-exec in the shared libraries (no __tls_get_addr
 * call, and usable when preloaded); local-exec in the static library, which
 * is built for executables, so a TLS load is one instruction. */
#if defined(TPI_TLS_LOCAL_EXEC)
#define TPI_TLS __thread __attribute__((tls_model("local-exec")))
#else
#define TPI_TLS __thread __attribute__((tls_model("initial-exec")))
#endif

/* A TP_SECURE=ON build is secure from the start and cannot be made otherwise. */
#if defined(TPI_SECURE_BUILD)
#define TPI_SECURE_DEFAULT 1
#else
#define TPI_SECURE_DEFAULT 0
#endif

/* ---- options (options.c) ---------------------------------------------------------- */

/* TPI_OPT_PATH: a file name; the field is 1 when one is set, and
 * tpi_option_text gives the name. */
enum { TPI_OPT_BOOL, TPI_OPT_INT, TPI_OPT_SIZE, TPI_OPT_MS, TPI_OPT_FORMAT, TPI_OPT_PATH };
/* Or'ed into a row's type: read from the environment at process start only;
 * tp_option_set refuses it (the process's memory is already laid out). */
#define TPI_OPT_AT_START 0x100
/* Or'ed into a row's type: the option writes or publishes the process's
 * statistics, so the environment is read with secure_getenv: a set-user-ID
 * or set-group-ID program ignores it (its caller is not trusted to decide
 * that); tp_option_set, the program's own call, still sets it. */
#define TPI_OPT_OUTPUT 0x200
#define TPI_OPT_TYPE(type) ((type) & 0xff)

/* X(NAME, field, type, default, min, max, description): one row per option,
 * read from TIERPOOL_<NAME>. Sizes take K/M/G, durations ms or s, booleans
 * 0/1/true/false/on/off, formats 0/1/text/json. docs/tuning.md explains
 * what each trades. */
#define TPI_OPTIONS(X)                                                                               \
    X(PURGE_DELAY, purge_delay_ms, TPI_OPT_MS, 100, 0, 3600000,                                     \
      "base delay before free memory goes back to the OS; adapts between it and purge_delay_max")    \
    X(PURGE_DELAY_MAX, purge_delay_max_ms, TPI_OPT_MS, 10000, 0, 3600000,                            \
      "longest purge delay the adaptation may reach when purged memory is soon needed again")        \
    X(PURGE_MADV_FREE, purge_madv_free, TPI_OPT_BOOL, 0, 0, 1,                                        \
      "purge with MADV_FREE (lazy, RSS falls only under pressure) instead of MADV_DONTNEED")         \
    X(BACKGROUND_PURGE, background_purge, TPI_OPT_BOOL, 0, 0, 1,                                      \
      "a helper thread purges on time, so an idle process shrinks too")                             \
    X(MEMORY_LIMIT, memory_limit, TPI_OPT_SIZE, 0, 0, 1LL << 50,                                      \
      "hard limit on tierpool's committed memory: past it allocations purge, call the OOM handler, fail") \
    X(MEMORY_HIGH, memory_high, TPI_OPT_SIZE, 0, 0, 1LL << 50,                                        \
      "soft limit on tierpool's committed memory: nearing and past it free memory goes back sooner")   \
    X(MEMORY_CGROUP, memory_cgroup, TPI_OPT_BOOL, 1, 0, 1,                                             \
      "follow the cgroup's memory.max/memory.high, the machine's memory and PSI (docs/tuning.md)")      \
    X(HUGE_PAGES, huge_pages, TPI_OPT_BOOL, 0, 0, 1,                                                  \
      "ask for transparent huge pages on slab chunks (faster TLB, more RSS); off asks for none")      \
    X(HUGE_CACHE, huge_cache_bytes, TPI_OPT_SIZE, 64LL << 20, 0, 1LL << 40,                            \
      "bytes of freed huge-block mappings kept per pool for reuse until the purge delay passes")     \
    X(CACHE_KEEP_MAX, cache_keep_max, TPI_OPT_INT, 8, 0, 64,                                          \
      "most empty pages a thread cache keeps per size class when the class thrashes")              \
    X(CHECK, check, TPI_OPT_BOOL, 0, 0, 1,                                                            \
      "validate every free on the slow path: interior pointers and double frees abort with a message") \
    X(PASSTHROUGH, passthrough, TPI_OPT_BOOL | TPI_OPT_AT_START, 0, 0, 1,                             \
      "libtierpool-malloc passes every call to the system allocator (debugging; from the environment)") \
    X(SECURE, secure, TPI_OPT_BOOL | TPI_OPT_AT_START, TPI_SECURE_DEFAULT, TPI_SECURE_DEFAULT, 1,     \
      "hardened heap: encoded free lists, double-free and canary checks, guard pages (docs/security.md)") \
    X(STATS_EXACT, stats_exact, TPI_OPT_BOOL | TPI_OPT_AT_START, 0, 0, 1,                             \
      "exact requested and peak live bytes: every call takes a slow path, 8 bytes more per block")  \
    X(PUBLISH, publish, TPI_OPT_BOOL | TPI_OPT_OUTPUT, 0, 0, 1,                                       \
      "publish statistics to shared memory for `tierpool top` and `tierpool stats PID`")           \
    X(PUBLISH_INTERVAL, publish_interval_ms, TPI_OPT_MS, 1000, 10, 3600000,                           \
      "how often the published statistics are refreshed")                                          \
    X(SHOW_STATS, show_stats, TPI_OPT_FORMAT | TPI_OPT_OUTPUT, 0, 0, 2,                               \
      "print statistics to stderr at exit: 0, 1/text or json")                                     \
    X(VERBOSE, verbose, TPI_OPT_BOOL | TPI_OPT_OUTPUT, 0, 0, 1,                                       \
      "print the effective options to stderr at start")                                               \
    X(PROFILE, profile, TPI_OPT_BOOL, 0, 0, 1,                                                         \
      "sample allocations for heap profiles (docs/profiling.md); PROFILE_AT_EXIT turns it on too")    \
    X(PROFILE_SAMPLE, profile_sample, TPI_OPT_SIZE, 512LL << 10, 0, 1LL << 40,                         \
      "mean bytes allocated between two samples (exponential intervals); 0 samples nothing")        \
    X(PROFILE_AT_EXIT, profile_at_exit, TPI_OPT_PATH | TPI_OPT_OUTPUT, 0, 0, 1,                        \
      "write a heap profile (gperftools' text format, for google-pprof) to this file at exit")

typedef struct tpi_options_t {
#define TPI_OPTION_FIELD(NAME, field, type, def, min, max, desc) long long field;
    TPI_OPTIONS(TPI_OPTION_FIELD)
#undef TPI_OPTION_FIELD
} tpi_options_t;

extern tpi_options_t tpi_options;
/* Options change at run time (tp_option_set) while other threads read them:
 * relaxed atomic loads and stores, plain moves on the machines we run on. */
#define TPI_OPTION(field) __atomic_load_n(&tpi_options.field, __ATOMIC_RELAXED)
/* Reads the environment (again: the fuzzer's harness); tpi_options_ensure_init
 * reads it once. */
void tpi_options_init(void);
void tpi_options_ensure_init(void);
void tpi_options_print(void);
/* The text of a TPI_OPT_PATH option (the address of its field), or NULL if
 * it is not set. */
const char *tpi_option_text(const long long *field);
/* stats.c: registers the at-exit report when SHOW_STATS asks for one. */
void tpi_stats_init(void);
/* stats.c's writers, escape.c's tpi_escape: tierpool_segment.h. */
/* escape.c: the length of the longest prefix of s of at most max bytes that
 * does not split a UTF-8 character. */
size_t tpi_utf8_prefix(const char *s, size_t max);
/* escape.c: the strings after cap (up to a NULL) joined into out[cap]; false
 * if they did not fit (out holds what did). */
bool tpi_concat(char *out, size_t cap, ...) __attribute__((sentinel));
/* services.c: the options and the modes they decide (secure, exact
 * statistics, Memcheck, slow_only), once. */
void tpi_services_init(void);
/* process.c: the services, every layer's start, thread exit and fork
 * handling, once; before the first allocation. */
void tpi_process_ensure_init(void);

/* ---- invariants that run (TP_DEBUG) ----------------------------------------------
 * A TP_DEBUG=ON build (TPI_DEBUG) checks the invariants written in this
 * header on slow paths and at page transitions: a page's lists and counts
 * (page.c), a thread cache's queues (tcache.c); a failed check aborts with
 * the condition. In other builds the checks are nothing at all. */
#if defined(TPI_DEBUG)
_Noreturn void tpi_assert_fail(const char *cond, const char *file, int line);
#define tpi_assert(cond) ((cond) ? (void)0 : tpi_assert_fail(#cond, __FILE__, __LINE__))
#else
#define tpi_assert(cond) ((void)0)
#endif

/* ---- size classes (size_class.c) ------------------------------------------------- */

/* tpi_class_info, TPI_CLASS_COUNT and tpi_classes: tierpool_segment.h. */
_Static_assert(TPI_CLASS_SLICE_BYTES == TPI_SLICE_SIZE, "tierpool_segment.h's slice is not the slice");
/* Classes below this one are slab classes (blocks up to TPI_SLAB_MAX); the
 * rest only group runs for statistics (tests/test_size_class.c checks). */
#define TPI_SLAB_CLASSES 36u

extern const uint8_t tpi_small_class[TPI_SMALL_SLOTS];

/* Class of a request of 1..TPI_LARGE_MAX bytes (0 is served as 16). */
static inline unsigned tpi_class_of(size_t size)
{
    if (size <= TPI_SMALL_MAX) return tpi_small_class[(size + 15) >> 4];
    /* Above the table: four classes per doubling, the top two bits below the
     * leading one pick the class within the doubling; eight from 4 to 8 KiB
     * (size_class.c), the top three bits there, and four more classes below
     * every size above. */
    size_t s = size - 1;
    unsigned log2 = 63u - (unsigned)__builtin_clzll((unsigned long long)s);
    if (log2 == 12u) return 20u + 8u + (unsigned)(s >> 9) - 8u;
    return 20u + (log2 - 10u) * 4u + (unsigned)(s >> (log2 - 2u)) - 4u + (log2 > 12u ? 4u : 0u);
}

/* ---- blocks, pages, chunks (page.c, chunk.c) ----------------------------------- */

typedef struct tpi_block {
    struct tpi_block *next;
} tpi_block;

struct tpi_tcache;
struct tpi_chunk;

/* page->owner: the owning thread's id, with TPI_PAGE_FULL set while the page
 * sits on its tcache's full queue and TPI_PAGE_CHECKED when the CHECK option
 * is on. The free fast path compares the whole word with the caller's id, so
 * a full page, a foreign page and checked mode all take the one slow branch.
 * 0 = no owner (free slices, or abandoned). Thread ids are aligned to 16 at
 * least, leaving the low bits free. */
#define TPI_PAGE_FULL ((uintptr_t)1)
#define TPI_PAGE_CHECKED ((uintptr_t)2)
/* Set by the owner while the page may hold a live sampled block (heap
 * profiles, sample.c): every free of the page's blocks then takes the slow
 * path, which drops the sample. Cleared by the owner alone, once
 * page->sampled is 0. */
#define TPI_PAGE_SAMPLED ((uintptr_t)4)
#define TPI_PAGE_FLAGS (TPI_PAGE_FULL | TPI_PAGE_CHECKED | TPI_PAGE_SAMPLED)
/* page->thread_free: the remote list with TPI_NOTIFY in its low bit while the
 * page is full. The first remote free that sees the bit clears it and pushes
 * its block on the owner's delayed list instead, so the owner learns that the
 * page has a free block again. */
#define TPI_NOTIFY ((uintptr_t)1)

typedef struct tpi_page {
    /* hot: the fast paths touch these three (mimalloc-like field order) */
    tpi_block *free;              /* owner: blocks ready for malloc */
    uint32_t used;                /* owner: blocks not on free/local_free */
    uint32_t capacity;            /* blocks in the page */
    _Atomic uintptr_t owner;      /* owning thread id | TPI_PAGE_FULL; 0 = none */
    tpi_block *local_free;        /* owner: blocks freed by the owner */
    _Atomic uintptr_t thread_free;/* blocks freed by other threads | TPI_NOTIFY */
    /* warm: slow paths */
    _Atomic(struct tpi_tcache *) tcache; /* owner's tcache, NULL when abandoned */
    uint32_t block_size;          /* bytes per block */
    uint32_t carved;              /* blocks carved out so far (carving is lazy) */
    uint8_t class_index;          /* size class */
    uint8_t slice_count;          /* slices in the page; 0 = descriptor unused */
    uint8_t slice_index;          /* first slice within the chunk */
    uint8_t queue;                /* TPI_QUEUE_* the page sits on */
    uint8_t retained;             /* empty, kept by its tcache (adapt.c) */
    uint8_t pinned;               /* a current page of one slice: used is one
                                   * high (tcache.c), so the free fast path
                                   * never finds it empty */
    uint16_t purged;              /* owner: bit j = OS page j purged, its
                                   * blocks off the free lists (page.c) */
    uint8_t checked;              /* its blocks' in-use bits are kept (CHECK or
                                   * SECURE when it was set up): malloc from it
                                   * takes the slow path, and a free of a
                                   * block not in use aborts */
    _Atomic uint16_t sampled;     /* live sampled blocks (owner adds, any
                                   * thread's free subtracts) */
    struct tpi_page *next;        /* links in a tcache queue or abandoned list */
    struct tpi_page *prev;
    struct tpi_chunk *chunk;      /* the chunk holding the page */
    uint64_t block_magic;         /* UINT64_MAX / block_size + 1 (tpi_page_block_index) */
} tpi_page;

/* Blocks in use or on thread_free (used without the pin). */
static inline uint32_t tpi_page_used(const tpi_page *page)
{
    return page->used - page->pinned;
}

/* The owner word a page takes when its owner changes it (adoption, full,
 * back from full): `word` (the tcache's owner_word and flags), with
 * TPI_PAGE_SAMPLED while the page holds sampled blocks. */
static inline uintptr_t tpi_page_owner_word(const tpi_page *page, uintptr_t word)
{
    return word | (atomic_load_explicit(&page->sampled, memory_order_relaxed) ? TPI_PAGE_SAMPLED : 0);
}

enum { TPI_QUEUE_NONE, TPI_QUEUE_AVAIL, TPI_QUEUE_FULL, TPI_QUEUE_ABANDONED };

/* Registry values, one byte per chunk of address space. */
enum {
    TPI_REG_NONE = 0,       /* not ours */
    TPI_REG_SLAB = 1,       /* a slab chunk: header at the chunk start */
    TPI_REG_HUGE = 2,       /* holds the start of a huge block */
    TPI_REG_HUGE_REST = 3,  /* the rest of a huge mapping */
    TPI_REG_RUN = 4,        /* a run chunk: header at the chunk start (run.c) */
};

#define TPI_CHUNK_MAGIC 0x74706368756e6bULL /* "tpchunk" */

typedef struct tpi_chunk {
    uint64_t magic;                              /* TPI_CHUNK_MAGIC */
    tp_pool *pool;                               /* owning pool */
    struct tpi_chunk *next;                      /* pool's chunk list */
    struct tpi_chunk *prev;
    uint64_t free_slices;                        /* pool lock: bit i = slice i free */
    uint64_t dirty_slices;                       /* pool lock: free but maybe resident */
    uint32_t dirty_since[TPI_SLICES_PER_CHUNK];  /* ms: when slice i last went free */
    uint32_t purged_at[TPI_SLICES_PER_CHUNK];    /* ms: when free slice i was purged; 0 = never, or taken since */
    tpi_page *slice_map[TPI_SLICES_PER_CHUNK];   /* slice -> page holding it */
    tpi_page pages[TPI_SLICES_PER_CHUNK];        /* descriptor of a page starting at slice i */
    /* Checked pages only (secure mode, CHECK; never touched, so never
     * resident, otherwise): one bit per 16 bytes of the chunk, set at the
     * start of each block in use (secure.c). */
    _Atomic uint64_t in_use[TPI_CHUNK_SIZE / 16 / 64];
} tpi_chunk;

/* The chunk header must fit in slice 0, which is never handed out, less the
 * OS page that secure mode turns into a guard. */
_Static_assert(sizeof(tpi_chunk) <= TPI_SLICE_SIZE - TPI_OS_PAGE, "chunk header exceeds slice 0");
_Static_assert(sizeof(tpi_page) <= 128, "page descriptor grew past two cache lines");
/* tierpool.h documents the memory limit's unit. */
_Static_assert(TP_POOL_LIMIT_UNIT == TPI_CHUNK_SIZE, "TP_POOL_LIMIT_UNIT is not the chunk size");

/* Written with atomic stores when a chunk is mapped or unmapped. The free
 * fast path reads its byte with a plain load, so that the compare is one
 * instruction: that byte is of a chunk holding a live block, which no one
 * maps or unmaps meanwhile (unless the program frees a block twice). Every
 * other reader, which may look at chunks around the pointer, loads
 * atomically (as all do under ThreadSanitizer). */
extern uint8_t tpi_registry[TPI_REGISTRY_SIZE];

static inline uint8_t *tpi_registry_byte(uintptr_t addr)
{
    return &tpi_registry[(addr >> TPI_CHUNK_SHIFT) & (TPI_REGISTRY_SIZE - 1)];
}

static inline uint8_t tpi_registry_fast(uintptr_t addr)
{
#if defined(__SANITIZE_THREAD__)
    /* TSan cannot see that munmap orders this read before a later mapping's
     * store to the same byte: give it the atomic load it can follow. */
    return __atomic_load_n(tpi_registry_byte(addr), __ATOMIC_RELAXED);
#else
    return *tpi_registry_byte(addr);
#endif
}

static inline uint8_t tpi_registry_get(uintptr_t addr)
{
    return __atomic_load_n(tpi_registry_byte(addr), __ATOMIC_RELAXED);
}
void tpi_registry_set(uintptr_t start, size_t size, uint8_t first, uint8_t rest);
/* The pool owning the chunk, run or huge block that holds p, or NULL
 * (tp_pool_of; the fatal reporter's lookup). */
tp_pool *tpi_registry_pool(const void *p);

static inline tpi_chunk *tpi_chunk_of(const void *p)
{
    return (tpi_chunk *)((uintptr_t)p & ~(uintptr_t)TPI_CHUNK_MASK);
}
/* A page's first block: the start of its first slice. Computed from the
 * descriptor's place in its chunk header rather than stored, since a stored
 * pointer to the first block would keep that block reachable in the eyes of
 * Memcheck's leak check (track.h). */
static inline char *tpi_page_start(const tpi_page *page)
{
    return (char *)tpi_chunk_of(page) + ((size_t)page->slice_index << TPI_SLICE_SHIFT);
}
static inline tpi_page *tpi_page_of(const void *p)
{
    return tpi_chunk_of(p)->slice_map[((uintptr_t)p >> TPI_SLICE_SHIFT) & (TPI_SLICES_PER_CHUNK - 1)];
}

/* A page with no free blocks that never is anyone's (chunk.c): a free
 * slice's map entry, and `current`/`direct` when a class has no page, so
 * the malloc fast path needs no NULL test. */
extern tpi_page tpi_page_empty;

/* chunk.c: all but the registry under the owning pool's lock */
tpi_chunk *tpi_chunk_create(tp_pool *pool);
void tpi_chunk_destroy(tpi_chunk *chunk);
bool tpi_chunk_is_empty(const tpi_chunk *chunk);
bool tpi_chunk_is_clean(const tpi_chunk *chunk);
int tpi_chunk_find_run(const tpi_chunk *chunk, unsigned count);
/* The page of slices [first, first + count); NULL (errno ENOMEM, the chunk
 * unchanged) if its clean slices would pass the memory limit (limit.c). */
tpi_page *tpi_chunk_take_run(tpi_chunk *chunk, unsigned first, unsigned count);
bool tpi_chunk_run_purged_since(const tpi_chunk *chunk, unsigned first, unsigned count, uint32_t since);
bool tpi_chunk_purged_before(const tpi_chunk *chunk, uint32_t since);
void tpi_chunk_return_run(tpi_chunk *chunk, tpi_page *page, uint32_t now);
size_t tpi_chunk_purge(tpi_chunk *chunk, uint32_t now, uint32_t min_age);

/* page.c */
void tpi_page_init(tpi_page *page, unsigned class_index);
bool tpi_page_extend(tpi_page *page);
/* A page whose owner cycles through the blocks it frees: carves more fresh
 * blocks, and true, while fewer than TPI_CARVE_CYCLE_BYTES are carved. */
bool tpi_page_lengthen_cycle(tpi_page *page);
/* Moves the owner's frees (local_free, non-empty) onto free. */
void tpi_page_take_local(tpi_page *page);
uint32_t tpi_page_collect(tpi_page *page);
uint32_t tpi_page_remote_count(const tpi_page *page);
void tpi_page_free_remote(tpi_page *page, tpi_block *block);
bool tpi_page_mark_full(tpi_page *page);
/* Purges the OS pages of a page that hold only free blocks: blocks free
 * since the last look (aged), or every free block when `every`; the bytes. */
size_t tpi_page_purge_free(tpi_page *page, bool every);
/* A free block's second word: tpi_page_purge_free's mark of its age. */
static inline uintptr_t *tpi_block_age_word(tpi_block *b)
{
    return (uintptr_t *)b + 1;
}
/* Clears the mark of a block malloc just handed out for `size` bytes; with
 * a checker running, out of line, leaving the word as open (within `size`)
 * or closed (past it) to the checker as malloc left it. */
void tpi_block_unmark_tracked(void *p, size_t size);
static inline void *tpi_block_unmark(void *p, size_t size)
{
    if (tpi_unlikely(tpi_track_active))
        tpi_block_unmark_tracked(p, size);
    else
        *tpi_block_age_word(p) = 0;
    return p;
}
/* Blocks from this size up are reused last freed, first out, and malloc
 * clears their age mark (below, every block's mark stays until written). */
#define TPI_PURGE_BLOCK_MIN (TPI_OS_PAGE + 16u)
void tpi_page_clear_notify(tpi_page *page);
#if defined(TPI_DEBUG)
/* The page's invariants, from its owner or under the pool lock. */
void tpi_page_check(const tpi_page *page);
#else
#define tpi_page_check(page) ((void)0)
#endif
/* The start of the block holding p, or NULL past the first `limit` blocks. */
void *tpi_page_block_start(const tpi_page *page, const void *p, uint32_t limit);

/* offset / block_size for an offset inside the page (below 4 GiB), by one
 * multiply instead of a division of 25-90 cycles (Lemire et al., "Faster
 * remainder by direct computation"); the checked and remote frees and the
 * secure mode's link checks pay this on every call. */
static inline uint32_t tpi_page_block_index(const tpi_page *page, size_t offset)
{
    return (uint32_t)(((unsigned __int128)page->block_magic * (uint32_t)offset) >> 64);
}

/* Whether an offset inside the page (below 4 GiB) starts a block. */
static inline bool tpi_page_at_block(const tpi_page *page, size_t offset)
{
    return page->block_magic * (uint32_t)offset <= page->block_magic - 1;
}

/* ---- secure mode (secure.c) --------------------------------------------------------
 * With the SECURE option (or a TP_SECURE=ON build) every malloc and free takes
 * a slow path, where free-list links are encoded and checked, a bitmap in the
 * chunk header catches double frees, a canary ends every slab block, freed
 * blocks are filled and fresh ones come in random order; guard pages end
 * each chunk header, each chunk and each huge block. Decided once, at
 * process start, before any page exists. */

#if defined(TPI_SECURE_BUILD)
#define tpi_secure true
#define tpi_slow_only true
#else
extern bool tpi_secure;
/* Every malloc and free takes a slow path: secure mode, exact statistics,
 * running under Memcheck (track.h), or passthrough (services.c). Set once at
 * process start, before any page exists. */
extern bool tpi_slow_only;
#endif
extern uintptr_t tpi_secret;          /* per-process random key (secure mode) */
#define TPI_CANARY_SIZE 8u            /* the last bytes of a slab block */
#define TPI_FREE_FILL 0xdf            /* what freed blocks read as */

void tpi_secure_init(void);
uint64_t tpi_secure_random(void);
/* Exact statistics (exact.c): decided once at process start, with
 * tpi_secure. Each slab block then keeps its requested size in a word right
 * after its usable bytes. */
extern bool tpi_stats_exact;
#define TPI_EXACT_SIZE 8u

/* Bytes a slab block needs beyond the request: the canary in secure mode,
 * the requested size with exact statistics. */
static inline size_t tpi_block_extra(void)
{
    return (tpi_secure ? TPI_CANARY_SIZE : 0) + (tpi_stats_exact ? TPI_EXACT_SIZE : 0);
}
_Noreturn void tpi_secure_bad_link(const void *where);
/* A run's canary, in the 8 bytes after its `usable` ones. */
void tpi_secure_run_on_malloc(void *p, size_t usable);
void tpi_secure_run_on_free(void *p, size_t usable);
/* A block of a checked page (page->checked) is handed out: its in-use bit is
 * set; in secure mode a bit set already aborts and the canary is written. */
void tpi_in_use_on_malloc(tpi_page *page, void *p);
/* ... is freed: a bit not set aborts (a double free); in secure mode the
 * canary is checked and the block filled. */
void tpi_in_use_on_free(tpi_page *page, void *p);
/* Links `count` (at most TPI_SECURE_CARVE_MAX) fresh blocks from `first`
 * onto page->free in a random order. */
#define TPI_SECURE_CARVE_MAX 1024u
void tpi_secure_carve(tpi_page *page, char *first, uint32_t count);
/* A checked page's slices go back to the chunk: its bits are cleared. */
void tpi_in_use_forget_page(const tpi_page *page);

/* Secure mode's key for the link stored in block b. */
static inline uintptr_t tpi_link_key(const tpi_block *b)
{
    return tpi_secret ^ (uintptr_t)b;
}

/* Free-list links. Fast paths (never run in secure mode) use block->next
 * directly; slow paths go through these, which in secure mode store the link
 * XORed with the secret and the link's own address, and check on the way
 * back that it names a block of `page` (or nothing). */
static inline void tpi_block_link(tpi_block *b, tpi_block *next)
{
    uintptr_t v = (uintptr_t)next;
    if (tpi_unlikely(tpi_secure)) v ^= tpi_link_key(b);
    tpi_track_link_open(b);
    b->next = (tpi_block *)v;
    tpi_track_link_close(b);
}

/* The raw link word of a free block (checkers told, track.h). */
static inline uintptr_t tpi_block_link_word(const tpi_block *b)
{
    tpi_track_link_open(b);
    uintptr_t v = (uintptr_t)b->next;
    tpi_track_link_close(b);
    return v;
}

static inline tpi_block *tpi_block_next(const tpi_page *page, const tpi_block *b)
{
    uintptr_t v = tpi_block_link_word(b);
    if (tpi_likely(!tpi_secure)) return (tpi_block *)v;
    v ^= tpi_link_key(b);
    size_t offset = v - (uintptr_t)tpi_page_start(page);
    if (v != 0 && (offset >= (size_t)page->capacity * page->block_size || !tpi_page_at_block(page, offset)))
        tpi_secure_bad_link(b);
    return (tpi_block *)v;
}

/* The link of a block on a tcache's delayed list, whose blocks come from
 * many pages: in secure mode checked to be a block of some slab page. */
static inline tpi_block *tpi_block_next_delayed(const tpi_block *b)
{
    uintptr_t v = tpi_block_link_word(b);
    if (tpi_likely(!tpi_secure)) return (tpi_block *)v;
    v ^= tpi_link_key(b);
    if (v != 0 && (tpi_registry_get(v) != TPI_REG_SLAB || tpi_page_of((void *)v)->slice_count == 0))
        tpi_secure_bad_link(b);
    return (tpi_block *)v;
}

/* ---- runs: the large tier (run.c, run_cache.c) ------------------------------------
 * Blocks above TPI_SLAB_MAX up to TPI_LARGE_MAX are runs of whole OS pages:
 * a request is rounded up to 4 KiB and no further. Runs are cut from run
 * chunks that every thread of a pool shares: 4 MiB aligned to 4 MiB, whose
 * first TPI_RUN_HEADER_PAGES pages hold the header, one tag per OS page. A
 * run's first and last tags hold its length and state (boundary tags), so a
 * freed run finds both neighbours in O(1) and merges with the free ones.
 * Free runs wait in the pool's run heap, one list per length with a bitmap
 * of the non-empty ones; an allocation takes the shortest free run that fits
 * (best fit; the most recently freed of that length, likeliest resident)
 * and splits it. Nothing is written into a run's own memory, so a purged run
 * stays non-resident until its user touches it.
 *
 * Each thread cache keeps free runs of up to TPI_RUN_CACHE_PAGES pages, by
 * length, for reuse without the heap's lock, within TPI_RUN_CACHE_BYTES: the
 * runs it freed, and the rest of the runs it took from the heap (a miss
 * takes up to TPI_RUN_CACHE_REFILL pages at once) or cut in two (a longer
 * cached run serves a shorter request). What the cache did not need during
 * a purge delay goes back to the heap (run_cache.c). Whichever thread frees
 * a run caches it: runs have no owner.
 */
#define TPI_RUN_PAGES (TPI_CHUNK_SIZE / TPI_OS_PAGE) /* 1024 tags a chunk */
#define TPI_RUN_CACHE_PAGES 16u                      /* runs of up to 64 KiB are cached */
#define TPI_RUN_CACHE_REFILL 32u                     /* a miss takes up to 128 KiB */
#define TPI_RUN_CACHE_DEPTH 8u                       /* runs of one length a cache keeps */
#define TPI_RUN_CACHE_BYTES ((size_t)256 << 10)      /* bytes a cache keeps at most */
#define TPI_RUN_MIN_PAGES ((TPI_SLAB_MAX >> 12) + 1)  /* the shortest run a request needs */
#define TPI_RUN_MAGIC 0x747072756e636bULL            /* "tprunck" */
#define TPI_RUN_SLACK_DIV 64                         /* free pages kept past the recent peak: */
#define TPI_RUN_SLACK_MIN ((size_t)128 << 10)        /* 1/64 of the use, 128 KiB at least (run.c) */

/* Run chunks of two kinds: runs that thread caches keep (up to
 * TPI_RUN_CACHE_PAGES) and longer ones. Apart, the long runs a program frees
 * are not nibbled into by the far more numerous short ones, and stay whole
 * for the next long request (the note's workload: docs/design.md). */
#define TPI_RUN_KINDS 2
#define TPI_RUN_KIND(pages) ((pages) > TPI_RUN_CACHE_PAGES ? 1u : 0u)

/* A run tag's state: NONE inside a run and for header pages; PURGING while
 * a purge pass has the free run out of the heap (neither free nor a block). */
enum { TPI_RUN_NONE = 0, TPI_RUN_FREE = 1, TPI_RUN_USED = 2, TPI_RUN_CACHED = 3, TPI_RUN_PURGING = 4 };

typedef struct tpi_run {
    uint32_t pages;          /* first and last tag: the run's length in OS pages */
    _Atomic uint8_t state;   /* first and last tag: TPI_RUN_*. Atomic: a thread
                              * caching its run flips USED/CACHED while the heap
                              * reads the tag to merge a neighbour (both mean
                              * "not free") */
    uint8_t class_index;     /* used or cached: the statistics class */
    uint8_t tail;            /* 1 on the last tag of a run of 2 pages or more */
    uint8_t dirty;           /* free: in the heap's set of runs with dirty pages */
    uint32_t freed_ms;       /* free: when it last grew by a freed run */
    uint32_t purged_ms;      /* free: when part of it was purged; 0 = never, or taken since */
    union {
        struct {
            struct tpi_run *next, *prev; /* free: the heap's list of its length */
        };
        uint64_t requested;  /* used, exact statistics: the bytes asked for */
    };
} tpi_run;

typedef struct tpi_run_chunk {
    uint64_t magic;                      /* TPI_RUN_MAGIC */
    tp_pool *pool;                       /* owning pool */
    struct tpi_run_chunk *next, *prev;   /* the heap's chunks */
    uint32_t free_pages;                 /* pages in free runs */
    uint32_t purged_ms;                  /* when pages of it were last purged */
    uint32_t kind;                       /* TPI_RUN_KIND_*: the runs it serves */
    uint64_t dirty[TPI_RUN_PAGES / 64];  /* bit per page: free and perhaps resident */
    tpi_run runs[TPI_RUN_PAGES];         /* tag per OS page */
} tpi_run_chunk;

#define TPI_RUN_HEADER_PAGES ((unsigned)((sizeof(tpi_run_chunk) + TPI_OS_PAGE - 1) / TPI_OS_PAGE))
#define TPI_RUN_MAX_PAGES (TPI_RUN_PAGES - TPI_RUN_HEADER_PAGES) /* longest run */
_Static_assert(sizeof(tpi_run) == 32, "a run tag grew");
_Static_assert((TPI_LARGE_MAX >> 12) + TPI_SLAB_ALIGN_MAX / TPI_OS_PAGE <= TPI_RUN_PAGES - 16,
               "a run chunk must hold the largest aligned run");


/* A thread cache's runs (run_cache.c): by length, a stack each. */
typedef struct tpi_run_cache {
    size_t bytes;                          /* held in all */
    size_t low_bytes;                      /* fewest held since the last look: not needed */
    uint64_t lengths;                      /* bit per length with a run on its stack */
    void *last_long;                       /* a freed run longer than TPI_RUN_CACHE_PAGES, or NULL */
    uint32_t asked_long;                   /* pages of the last request for such a run */
    struct {
        uint8_t count;                     /* runs on the stack */
        void *runs[TPI_RUN_CACHE_DEPTH];
    } bins[TPI_RUN_CACHE_REFILL + 1];      /* by length in pages */
} tpi_run_cache;
_Static_assert(TPI_RUN_CACHE_REFILL < 64, "a run cache's lengths fit its bitmap");
_Static_assert((size_t)TPI_RUN_CACHE_REFILL * TPI_OS_PAGE <= TPI_RUN_CACHE_BYTES * 3 / 4,
               "every run a cache takes fits under its budget after a spill");

struct tpi_tcache;
struct tpi_run_heap;
void tpi_run_heap_init(struct tpi_run_heap *heap);
/* run_cache.c: a run for `size` bytes (above TPI_SLAB_MAX - extra) aligned to `alignment`
 * (a power of two up to TPI_SLAB_ALIGN_MAX): from the thread's cache, else
 * the heap. NULL (errno ENOMEM) if no memory or the pool's limit. */
void *tpi_run_malloc(struct tpi_tcache *tc, size_t size, size_t alignment);
/* Frees the run at p; tc is the calling thread's live cache of the run's
 * pool (tpi_thread_live_tcache), or NULL. */
void tpi_run_free(struct tpi_tcache *tc, void *p);

/* realloc in place: shrinks the run at p to the pages `size` needs (the
 * tail goes back to the heap), or grows it into the free run after it;
 * false if that is not free or too short. tc as for tpi_run_free. */
bool tpi_run_resize(struct tpi_tcache *tc, void *p, size_t size);
/* The run's tag for a pointer of a run chunk, or NULL if p starts no run
 * handed out. */
tpi_run *tpi_run_of(const void *p);
/* The run chunk holding p (an address inside one, or one of its tags). */
static inline tpi_run_chunk *tpi_run_chunk_of(const void *p)
{
    return (tpi_run_chunk *)((uintptr_t)p & ~(uintptr_t)TPI_CHUNK_MASK);
}
/* The tag of the run starting at p (a page of a run chunk; no checks). */
static inline tpi_run *tpi_run_tag(const void *p)
{
    return &tpi_run_chunk_of(p)->runs[((uintptr_t)p & TPI_CHUNK_MASK) >> 12];
}
/* A run's usable bytes: its pages, less secure mode's canary at the end
 * (exact statistics keep the requested size in the tag instead). */
static inline size_t tpi_run_usable(const tpi_run *run)
{
    return (size_t)run->pages * TPI_OS_PAGE - (tpi_secure ? TPI_CANARY_SIZE : 0);
}
/* Purges runs free for `min_age` ms (all when force) and unmaps chunks left
 * empty; no lock held on entry. Returns the bytes given back. */
size_t tpi_run_heap_purge(tp_pool *pool, uint64_t now, bool force);
/* Purges every dirty free run now (the slab side grows: page_source.c); the
 * pool lock may be held. Returns the bytes purged. */
size_t tpi_run_heap_purge_dirty(tp_pool *pool);
/* Pool cleared (reset or destroy, both locks held): every run is free; the
 * chunks are unmapped unless kept. */
void tpi_run_heap_clear(tp_pool *pool, bool keep_chunks);
/* In the child of a fork (heap lock held): a purge pass cut short by the
 * fork gives its runs back. */
void tpi_run_heap_after_fork(struct tpi_run_heap *h);
/* Pool lock held: unmaps the chunks with no run in use (the pool's memory
 * limit needs the room); returns the bytes. */
size_t tpi_run_heap_release_empty(tp_pool *pool);
/* Heap lock held: the resident bytes of its chunks, by `resident`. */
size_t tpi_run_heap_resident(struct tpi_run_heap *heap, size_t (*resident)(const void *addr, size_t size));

/* Cuts the run at p (in use or cached, held by the caller) after its first
 * `pages` pages; both parts keep its state. Returns the second part. */
void *tpi_run_split(void *p, unsigned pages);
/* The pool a run belongs to. */
static inline tp_pool *tpi_run_pool(const void *p)
{
    return tpi_run_chunk_of(p)->pool;
}
/* The heap's side of a thread's large blocks (run.c; run_cache.c is the
 * thread's side). A run of `pages` pages on a multiple of `align_pages`,
 * or up to `most` pages if a longer free run fits (the caller cuts it),
 * after the `count` runs `give` go back under the same lock; NULL if no
 * memory or the pool's limit. */
void *tpi_run_heap_take(tp_pool *pool, unsigned pages, unsigned align_pages, unsigned most, void **give,
                        unsigned count);
/* The run at p back to the heap, then a purge pass if one is due; not
 * `counted` in a thread cache's statistics: the heap counts the free. */
void tpi_run_heap_free(void *p, bool counted);
/* realloc in place (tpi_run_resize): the run at p made `want` pages long;
 * false if the free run after it is missing or too short. */
bool tpi_run_heap_resize(void *p, unsigned want, bool counted);
/* Aborts for a free of p, a run chunk's address that starts no run in use. */
_Noreturn void tpi_run_bad_free(const void *p);

/* run_cache.c: the thread's side. */
/* Once per purge delay: the bytes the cache did not need since the last
 * look go back to the heap. */
void tpi_run_cache_decay(struct tpi_tcache *tc);
/* Every cached run back to the heap (thread exit, trim). */
void tpi_run_cache_flush(struct tpi_tcache *tc);
/* Heap side of the cache: gives `count` runs back under one lock. */
void tpi_run_heap_free_batch(tp_pool *pool, void **runs, unsigned count);

/* ---- heap profile samples (sample.c) ----------------------------------------------
 * With the PROFILE option one allocation in about PROFILE_SAMPLE bytes is a
 * sample: its stack, size and pool go into the live set until it is freed,
 * and profile.c writes the set out, each sample scaled by the inverse of its
 * chance of being one. The byte stream of each thread cache is cut at
 * exponentially distributed intervals (a Poisson process over bytes, so no
 * size is favoured); an allocation of c bytes is a sample with chance
 * 1 - exp(-c / PROFILE_SAMPLE).
 *
 * The fast paths do nothing of this. A batch of blocks that the malloc fast
 * path will pop is counted when the slow path hands it over (tcache.c):
 * when the interval ends inside it, only the blocks before that point are
 * handed over, the rest wait on the page's local_free, and the class is
 * armed, so that the fast path runs dry exactly at the sampled allocation
 * and the slow path takes the sample. Every other allocation (large, huge,
 * classes above 4 KiB, slow-only modes) is counted one by one on its slow
 * path. A sampled slab block marks its page (TPI_PAGE_SAMPLED), whose frees
 * then miss the fast path; runs and huge blocks are freed on slow paths,
 * which look them up while any is sampled. */
typedef struct tpi_sampler {
    int64_t left;          /* bytes until the next sample; <= 0: draw one */
    uint64_t armed;        /* bit per slab class: its next slow-path pop is a sample */
    uint64_t rng;          /* xorshift state; 0 until seeded */
} tpi_sampler;
_Static_assert(TPI_SLAB_CLASSES <= 64, "a sampler's armed classes fit one word");

#define TPI_SAMPLE_FRAMES 64
/* Runs and huge blocks sampled and live: their frees look them up. */
extern _Atomic size_t tpi_sample_large_live;
/* The start of an interval: bytes to the next sample, exponential with the
 * PROFILE_SAMPLE mean (at least 1). */
int64_t tpi_sample_interval(tpi_sampler *s, uint64_t mean);
/* Counts `charged` bytes allocated one at a time; true if this one is a sample. */
static inline bool tpi_sample_charge(tpi_sampler *s, uint64_t mean, size_t charged)
{
    if (s->left <= 0) s->left = tpi_sample_interval(s, mean);
    s->left -= (int64_t)charged;
    if (s->left > 0) return false;
    s->left = tpi_sample_interval(s, mean);
    return true;
}
/* Records block p of `size` bytes asked for, `charged` of the stream, with
 * the caller's stack; `large`: a run or huge block. False if not recorded
 * (this thread is already recording, or no memory for the record). */
bool tpi_sample_add(tp_pool *pool, const void *p, size_t size, size_t charged, bool large);
/* The API layer notes its entry points at load: in a static link, frames
 * from the lowest of them up to the end of the program's text are taken
 * for tierpool's own. */
void tpi_sample_note_code(const void *fn);
/* Drops p's sample if it has one; true if it had. */
bool tpi_sample_remove(const void *p);
/* Block `from` is now `to` of `size` bytes (realloc): its sample, if any, follows. */
void tpi_sample_move(const void *from, const void *to, size_t size);
/* Pool locks held: the pool's blocks are all gone (reset, destroy). */
void tpi_sample_forget_pool(tp_pool *pool);
/* One stack of the live set, as the writer sees it. Estimates are scaled by
 * each sample's chance. */
typedef struct tpi_sample_totals {
    const uintptr_t *frames;  /* return addresses, the allocating function's first */
    unsigned depth;
    tp_pool *pool;
    double live_objects, live_bytes;   /* live now */
    double alloc_objects, alloc_bytes; /* allocated since start (or the last mark) */
} tpi_sample_totals;
/* Calls fn for every stack with samples of `pool` (NULL: of every pool),
 * without a lock held (fn may allocate). Writers are serialised. */
void tpi_sample_each(tp_pool *pool, void (*fn)(void *arg, const tpi_sample_totals *t), void *arg);
/* The allocations counted since start restart from zero. */
void tpi_sample_mark(void);
/* fork: every lock of the live set, taken and given back (process.c): the
 * writer's before every other lock of the engine, the rest after them. */
void tpi_sample_fork_prepare_writer(void);
void tpi_sample_fork_prepare(void);
void tpi_sample_fork_done(void);
void tpi_sample_fork_done_writer(void);

/* ---- the per-class capacity policy (adapt.c) ------------------------------------ */

#define TPI_ADAPT_WINDOW 4     /* acquire this soon after a release: grow */
#define TPI_ADAPT_PERIOD 256   /* no growth for this long: shrink */
#define TPI_ADAPT_DECAY_EVERY 64 /* page events between two decay passes */
#define TPI_ADAPT_KEEP_BYTES ((size_t)1 << 20) /* a class keeps at most 1 MiB of empty pages */
#define TPI_SLOW_CALLS_PER_CLOCK 8 /* malloc slow paths between two looks at the clock */

typedef struct tpi_adapt {
    uint8_t keep;          /* empty pages the tcache may keep beyond the current one */
    uint8_t retained;      /* empty pages it keeps now */
    uint32_t last_release; /* tick of the last page given back; 0 = never */
    uint32_t last_grow;    /* tick of the last growth (or decay) */
} tpi_adapt;

void tpi_adapt_init(tpi_adapt *a);
bool tpi_adapt_may_keep(tpi_adapt *a);
void tpi_adapt_on_release(tpi_adapt *a, uint32_t tick);
void tpi_adapt_on_acquire(tpi_adapt *a, uint32_t tick, unsigned cap);
unsigned tpi_adapt_decay(tpi_adapt *a, uint32_t tick, bool force);

/* ---- thread caches (tcache.c) ------------------------------------------------------ */

/* Counters a tcache keeps per class, written by its thread only (stats.c
 * reads them racily, which is benign for aligned 64-bit words). */
typedef struct tpi_class_counters {
    uint64_t allocs;       /* slow-path allocations (fast ones: slot_allocs) */
    uint64_t requested;    /* bytes requested by those: a sample of the class's
                            * requests, from which stats.c estimates the
                            * requested bytes of live blocks */
    uint64_t fast_allocs;  /* fast-path allocations (pool's retired counters only) */
    uint64_t refills;      /* batches taken into a page's free list */
    uint64_t flushes;      /* empty pages handed back to the pool */
    uint64_t remote_frees; /* blocks collected from pages' remote lists */
    uint64_t run_frees;    /* runs this thread freed (run classes only) */
    uint64_t run_bytes;    /* usable bytes of runs this thread allocated, less
                            * those it freed (wraps below zero: the sum over
                            * threads is right) */
} tpi_class_counters;

typedef struct tpi_page_queue {
    tpi_page *first;
    tpi_page *last;
} tpi_page_queue;

typedef struct tpi_tcache {
    /* hot: malloc of <= 4 KiB indexes this by (size + 15) / 16 */
    tpi_page *direct[TPI_SMALL_SLOTS];
    uint64_t slot_allocs[TPI_SMALL_SLOTS];    /* fast-path allocations per slot */
    uintptr_t thread_id;                  /* owner's id (tpi_thread_id) */
    uintptr_t owner_word;                 /* thread_id | TPI_PAGE_CHECKED if checking */
    tp_pool *pool;
    _Atomic uintptr_t delayed_free;       /* blocks other threads sent us (full pages) */
    tpi_page *current[TPI_CLASS_COUNT];   /* page malloc pops from; head of avail */
    tpi_page_queue avail[TPI_CLASS_COUNT];/* pages with free blocks (or not yet known full) */
    tpi_page_queue full[TPI_CLASS_COUNT]; /* pages with none */
    tpi_adapt adapt[TPI_CLASS_COUNT];     /* how many empty pages to keep */
    tpi_class_counters counters[TPI_CLASS_COUNT];
    tpi_run_cache runs;                   /* freed runs kept for reuse */
    struct tpi_tcache *live_next;         /* pool's list of tcaches in use */
    struct tpi_tcache *live_prev;
    uint32_t ticks;                       /* page events so far: adapt.c's clock */
    uint32_t slow_calls;                  /* malloc slow paths, to pace clock reads */
    uint32_t recycled_at[TPI_SLAB_CLASSES]; /* slow_calls at a class's last recycle of its own frees */
    uint32_t purge_epoch;                 /* the pool's purge_epoch last acted on */
    uint32_t last_decay_ms;               /* when it last shrank after a pass */
    struct tpi_tcache *next_free;         /* pool's list of unused tcaches */
    tpi_sampler sampler;                  /* heap profile sampling (sample.c) */
} tpi_tcache;

/* The tcache of a thread that has not allocated yet: all direct[] entries
 * point to tpi_page_empty, so the first malloc takes the slow path. */
extern tpi_tcache tpi_tcache_empty;

/* Page queues: a tcache's avail and full queues, a pool's abandoned ones. */
static inline void tpi_queue_remove(tpi_page_queue *q, tpi_page *page)
{
    if (page->prev) page->prev->next = page->next; else q->first = page->next;
    if (page->next) page->next->prev = page->prev; else q->last = page->prev;
    page->next = page->prev = NULL;
}

static inline void tpi_queue_push_front(tpi_page_queue *q, tpi_page *page)
{
    page->prev = NULL;
    page->next = q->first;
    if (q->first) q->first->prev = page; else q->last = page;
    q->first = page;
}

static inline void tpi_queue_push_back(tpi_page_queue *q, tpi_page *page)
{
    page->next = NULL;
    page->prev = q->last;
    if (q->last) q->last->next = page; else q->first = page;
    q->last = page;
}

/* Adds an adopted page that turned out to have no free block to the
 * tcache's full queue (page_source.c, while acquiring for that tcache). */
static inline void tpi_tcache_park_full(tpi_tcache *tc, tpi_page *page)
{
    tpi_queue_push_back(&tc->full[page->class_index], page);
    page->queue = TPI_QUEUE_FULL;
    atomic_store_explicit(&page->owner, tpi_page_owner_word(page, tc->owner_word | TPI_PAGE_FULL), memory_order_relaxed);
}

void tpi_tcache_init(tpi_tcache *tc, tp_pool *pool, uintptr_t thread_id);
void *tpi_tcache_malloc_slow(size_t size, tpi_tcache *tc);
/* What tpi_tcache_malloc_slow does when it fails: registered at start-up by
 * the API layer (alloc.c, its recovery in oom.c), which the thread cache
 * does not name; none: return NULL. */
void tpi_tcache_set_failure_hook(void *(*hook)(size_t size, tpi_tcache *tc));
void tpi_tcache_set_slow_hook(void (*hook)(void));
#if defined(TPI_DEBUG)
/* The tcache's queues and each of their pages, from its thread. */
void tpi_tcache_check(const tpi_tcache *tc);
#else
#define tpi_tcache_check(tc) ((void)0)
#endif
void tpi_tcache_abandon(tpi_tcache *tc);
void tpi_tcache_trim(tpi_tcache *tc);
void tpi_tcache_free_local_slow(tpi_page *page, tpi_block *block);
void tpi_tcache_retire(tpi_tcache *tc, tpi_page *page);
void tpi_tcache_page_empty(tpi_page *page);
void *tpi_tcache_malloc_class(tpi_tcache *tc, unsigned cls, size_t size);
/* With PROFILE on: a run or huge block p (NULL: none) of `size` bytes
 * asked for, allocated outside tpi_tcache_malloc_slow, is counted and
 * perhaps sampled. */
void tpi_tcache_sample_large(tpi_tcache *tc, void *p, size_t size);

/* ---- threads (thread.c) --------------------------------------------------------------- */

extern TPI_TLS tpi_tcache *tpi_tls_default;    /* default pool's tcache, never NULL */

/* Unique among live threads: the thread pointer (one instruction on x86-64
 * and aarch64) or else the address of a thread-local variable. A thread's
 * pages are all handed back before it exits, so reuse of an id is harmless. */
static inline uintptr_t tpi_thread_id(void)
{
#if defined(__GNUC__) && !defined(__clang__) && (defined(__x86_64__) || defined(__aarch64__))
    return (uintptr_t)__builtin_thread_pointer();
#else
    extern TPI_TLS char tpi_tls_id_anchor;
    return (uintptr_t)&tpi_tls_id_anchor;
#endif
}

/* The explicit pool this thread used last, kept by tpi_thread_tcache so
 * that tp_pool_malloc finds its tcache without a call: two compares (the
 * pool, its generation) where the table (tpi_thread_tcache_peek) takes a
 * call and about twenty instructions. `pool` is never NULL nor the default
 * pool: with none it is an address no pool has, so that a NULL pool misses
 * without a test of its own. */
typedef struct tpi_thread_last {
    tp_pool *pool;
    tpi_tcache *tcache; /* this thread's tcache of pool, of generation gen */
    uint32_t gen;
} tpi_thread_last;
extern TPI_TLS tpi_thread_last tpi_tls_last; /* tested by tpi_thread_last_is (alloc.h) */

tpi_tcache *tpi_thread_tcache(tp_pool *pool);
/* The calling thread's live tcache for the pool, or NULL; creates none.
 * Like tpi_thread_tcache, it makes a tcache found the thread's last. */
tpi_tcache *tpi_thread_tcache_peek(tp_pool *pool);
/* The calling thread's live cache of the pool (the default one too), or
 * NULL if it has none. */
tpi_tcache *tpi_thread_live_tcache(tp_pool *pool);
tpi_tcache *tpi_thread_init_default(void);
void tpi_threads_init(void);
void tpi_threads_lock(void);
void tpi_threads_unlock(void);

/* ---- giving memory back (purge.c) ---------------------------------------------------
 * Free slices and cached huge mappings go back to the OS once they have been
 * free for the pool's purge delay. The delay adapts: purged memory taken
 * again within TPI_REGRET_WINDOW delays is regret, and TPI_REGRET_BYTES of it
 * per 100 ms of delay within such a window double the delay (up to
 * PURGE_DELAY_MAX); a delay without a doubling for 4 delays halves it back
 * toward PURGE_DELAY. Time comes from tpi_clock, which tests replace to
 * drive the policy without sleeping. */

#define TPI_REGRET_WINDOW 4                    /* delays */
#define TPI_REGRET_BYTES ((size_t)4 << 20)     /* 4 MiB (1024 page faults) per 100 ms of delay */

typedef struct tpi_decay {
    uint32_t delay_ms;      /* current purge delay; written under the pool lock
                             * with atomic stores, read without it by thread
                             * caches through tpi_decay_delay */
    uint32_t pressure_gen;  /* tpi_pressure_gen at the last pass (limit.c) */
    uint32_t last_regret;   /* ms of the last doubling */
    uint64_t next_pass;     /* ms before which a pass has nothing due */
    size_t regretted;       /* bytes of regret in the window from window_start */
    uint32_t window_start;  /* ms */
} tpi_decay;

extern uint64_t (*tpi_clock)(void);
/* The delay in force: the adapted one, shortened by memory pressure. */
static inline uint32_t tpi_decay_delay(const tpi_decay *d)
{
    return tpi_pressure_delay(__atomic_load_n(&d->delay_ms, __ATOMIC_RELAXED));
}
/* A pass is due: its time came, or pressure rose since the last one. */
static inline bool tpi_decay_due(const tpi_decay *d, uint64_t now)
{
    return now >= __atomic_load_n(&d->next_pass, __ATOMIC_RELAXED) ||
           __atomic_load_n(&d->pressure_gen, __ATOMIC_RELAXED) !=
               atomic_load_explicit(&tpi_pressure_gen, memory_order_relaxed);
}
void tpi_decay_init(tpi_decay *d);
void tpi_decay_on_regret(tpi_decay *d, uint32_t now, size_t bytes);
void tpi_decay_on_pass(tpi_decay *d, uint32_t now);
size_t tpi_pool_purge(tp_pool *pool, uint64_t now, bool force);
size_t tpi_pool_release_empty_chunks(tp_pool *pool);
void tpi_purge_maybe(tp_pool *pool);
void tpi_purge_maybe_unlocked(tp_pool *pool);
void tpi_background_ensure(void);
/* monitor.c: starts publishing if PUBLISH asks for it (no lock held). */
void tpi_monitor_ensure(void);
/* How the monitor thread answers `tierpool profile` (tierpool_segment.h):
 * fn writes the profile of the pool named `pool` (empty: all) to `path`,
 * returning 0 or an errno; registered at load by profile.c. */
void tpi_monitor_set_profile_writer(int (*fn)(const char *path, const char *pool));
/* profile.c: at load, from the API layer: the exit handler that writes
 * TIERPOOL_PROFILE_AT_EXIT's profile, and the monitor's writer. */
void tpi_profile_init(void);
void tpi_monitor_after_fork(void);
void tpi_background_after_fork(void);

/* ---- exact statistics (exact.c) -------------------------------------------------------- */

/* Live and peak bytes of one class, of a pool's huge blocks, of a pool or of
 * the process. Atomic: frees from any thread update them. */
typedef struct tpi_exact_bytes {
    _Atomic uint64_t live_usable;
    _Atomic uint64_t peak_usable;      /* highest live_usable so far */
    _Atomic uint64_t live_requested;   /* a pool's classes only */
} tpi_exact_bytes;

#define TPI_EXACT_HUGE TPI_CLASS_COUNT /* the index of the huge tier */
typedef struct tpi_exact {
    tpi_exact_bytes classes[TPI_CLASS_COUNT + 1];
    tpi_exact_bytes total;
} tpi_exact;

/* Without exact statistics: the highest live bytes a statistics read has
 * seen, per class and in all (a lower bound of the true peak). */
typedef struct tpi_live_peaks {
    _Atomic uint64_t classes[TPI_CLASS_COUNT];
    _Atomic uint64_t total;
} tpi_live_peaks;

struct tp_stats;
void tpi_exact_init(void);
void tpi_exact_on_slab_malloc(tp_pool *pool, tpi_page *page, void *block, size_t size);
void tpi_exact_on_slab_free(tp_pool *pool, tpi_page *page, void *block);
void tpi_exact_on_slab_resize(tp_pool *pool, tpi_page *page, void *block, size_t size);
/* A run of class cls and `usable` bytes appeared (or, negative, went away). */
void tpi_exact_on_run(tp_pool *pool, unsigned cls, int64_t usable, int64_t requested);
/* A huge block of `usable` bytes appeared (or, negative, went away). */
void tpi_exact_on_huge(tp_pool *pool, int64_t usable, int64_t requested);
/* Pool lock held: the pool's blocks are all gone at once (reset, destroy). */
void tpi_exact_pool_clear(tp_pool *pool);
/* Requested bytes of the pool's live blocks of a class. */
uint64_t tpi_exact_requested(const tp_pool *pool, unsigned cls);
/* Fills the peak figures of a snapshot (NULL pool: the process's) from the
 * exact counters or, without them, from what reads have seen. */
void tpi_exact_fill_peaks(tp_pool *pool, struct tp_stats *out);

/* ---- pools (pool.c) -------------------------------------------------------------------- */

#define TPI_POOL_NAME_MAX 32

/* The pool's run heap. The lock guards everything here and every free tag;
 * no system call is made under it (chunks are mapped and runs purged
 * outside, run.c). */
typedef struct tpi_run_heap {
    tpi_lock lock;                         /* spins, then sleeps (lock.h) */
    tpi_run_chunk *chunks;
    /* Free runs by length, in sets by chunk kind and dirtiness: set
     * 2 * kind + 1 holds the runs with a dirty page, 2 * kind the clean
     * ones. Dirty runs are used first: memory already resident serves a
     * request before memory that a touch would commit. */
    tpi_run *bins[2 * TPI_RUN_KINDS][TPI_RUN_PAGES];
    uint64_t nonempty[2 * TPI_RUN_KINDS][TPI_RUN_PAGES / 64]; /* bit per length with a free run */
    size_t used_bytes;                     /* in runs handed out or cached */
    size_t peak_used_bytes;                /* highest used_bytes */
    size_t window_peak[2];                 /* highest used_bytes in this window
                                            * and the last (tpi_run_dirty_cap) */
    uint32_t window_start;                 /* ms */
    size_t dirty_bytes;                    /* free and perhaps resident */
    size_t mapped_chunks;                  /* run chunks */
    size_t purged_bytes;                   /* total purged */
    size_t purges;                         /* passes that purged */
    bool purging;                          /* a pass has runs out of the bins */
    tpi_decay decay;                       /* the purge delay of runs */
    uint64_t frees[TPI_CLASS_COUNT];       /* runs freed by threads with no cache of the pool */
    uint64_t freed_bytes[TPI_CLASS_COUNT];
} tpi_run_heap;

struct tp_pool {
    pthread_mutex_t lock;              /* everything below but id/gen */
    uint32_t id;                       /* index into each thread's tcache table */
    _Atomic uint32_t gen;              /* bumped on reset/destroy: stale tcaches */
    char name[TPI_POOL_NAME_MAX];
    size_t memory_limit;               /* 0 = unlimited */
    tp_oom_handler oom_handler;        /* tp_pool_config's, NULL: the process's */
    void *oom_arg;
    size_t mapped;                     /* bytes of chunks and huge mappings */
    tpi_decay decay;                   /* purge delay and its adaptation */
    _Atomic uint32_t purge_epoch;      /* bumped by each purge pass: tcaches then
                                        * shrink the empty pages they keep */
    size_t purged_bytes;               /* total bytes purged */
    size_t purges;                     /* purge calls made */
    struct tpi_huge *huge_cache;       /* freed huge mappings kept for reuse */
    size_t huge_cache_bytes;
    tpi_chunk *chunks;                 /* slab chunks */
    struct tpi_huge *huge;             /* live huge blocks */
    tpi_run_heap runs;                 /* the large tier (its own lock) */
    tpi_page_queue abandoned[TPI_CLASS_COUNT]; /* pages of exited threads */
    tpi_tcache *free_tcaches;          /* tcaches of exited threads, for reuse */
    tpi_tcache *live_tcaches;          /* tcaches in use, for statistics */
    tpi_class_counters retired[TPI_CLASS_COUNT]; /* counters of released tcaches */
    uint64_t huge_allocs;              /* huge blocks allocated */
    size_t page_bytes;                 /* bytes of slices in pages now */
    size_t huge_live_bytes;            /* bytes mapped for live huge blocks */
    size_t peak_page_bytes;            /* highest page_bytes + huge bytes */
    tpi_exact exact;                   /* exact statistics (exact.c) */
    tpi_live_peaks seen;               /* highest live bytes statistics reads saw */
    bool live;                         /* false once destroyed (struct is reused) */
    struct tp_pool *next;              /* all pools ever made, for fork handling */
    struct tp_pool *next_free;         /* destroyed pools, for reuse */
};

extern tp_pool tpi_pool_default_instance;

tpi_page *tpi_pool_page_acquire(tp_pool *pool, tpi_tcache *tc, unsigned class_index);
void tpi_pool_page_release(tp_pool *pool, tpi_page *page);
tpi_tcache *tpi_pool_tcache_acquire(tp_pool *pool, uintptr_t thread_id);
void tpi_pool_tcache_release(tp_pool *pool, tpi_tcache *tc);
void tpi_pool_fold_counters(tp_pool *pool, const tpi_tcache *tc);
void tpi_tcache_retire_list(tpi_tcache *first, size_t link_offset);
void tpi_tcache_store_lock(void);
void tpi_tcache_store_unlock(void);
void tpi_pool_page_abandon(tp_pool *pool, tpi_page *page);
void tpi_pools_lock_all(void);
void tpi_pools_each(void (*fn)(tp_pool *pool, void *arg), void *arg);
/* Up to `cap` live pools into out[], for work done outside the pools lock
 * (a pool destroyed meanwhile keeps its struct, never unmapped); how many. */
size_t tpi_pools_list(tp_pool **out, size_t cap);
void tpi_pools_each_held(void (*fn)(tp_pool *pool, void *arg), void *arg);
void tpi_pools_add(tp_pool *pool);
pthread_mutex_t *tpi_pools_mutex(void);
void tpi_pools_unlock_all(void);
bool tpi_pool_charge(tp_pool *pool, size_t bytes);
/* Pool lock held: purges the free slices of the pool's slab chunks now;
 * returns the bytes. */
size_t tpi_pool_purge_free_slices(tp_pool *pool);
/* Pool lock held: counts a purge that gave back `purged` bytes (none: no
 * count), wherever in the pool it was done. */
void tpi_pool_count_purge(tp_pool *pool, size_t purged);
size_t tpi_pool_reclaim(tp_pool *pool);
/* pool.c's reclaim, which process.c registers for tpi_pool_reclaim. */
void tpi_pool_set_reclaim(size_t (*fn)(tp_pool *pool));
size_t tpi_pool_reclaim_unused(tp_pool *pool);
void *tpi_pool_map(tp_pool *pool, size_t size, size_t alignment, size_t offset);
void tpi_pool_note_peak(tp_pool *pool);
void tpi_pool_collect_abandoned(tp_pool *pool);
void tpi_pool_unlink_chunk(tp_pool *pool, tpi_chunk *c);

/* A pool's memory at a glance, read under its lock (slow; for reports). */
typedef struct tpi_usage {
    size_t mapped;           /* chunks and huge mappings */
    size_t chunks;           /* slab chunks */
    size_t page_bytes;       /* slices in pages (blocks in use or cached) */
    size_t free_slice_bytes; /* slices free in the pool's chunks */
    size_t huge_blocks;
    size_t huge_bytes;       /* bytes mapped for huge blocks */
    size_t run_chunks;       /* run chunks (the large tier) */
    size_t run_bytes;        /* bytes of runs in use or cached */
} tpi_usage;
void tpi_pool_usage(tp_pool *pool, tpi_usage *out);

/* ---- huge blocks (huge.c) ------------------------------------------------------------- */

#define TPI_HUGE_MAGIC 0x7470687567650aULL

typedef struct tpi_huge {
    uint64_t magic;        /* TPI_HUGE_MAGIC */
    tp_pool *pool;
    size_t offset : 24;    /* from the header to the user's block, at most a
                            * chunk (not a pointer to it: Memcheck's leak
                            * check would count the block reachable through it) */
    size_t committed_pages : 40; /* OS pages from the header on that the
                            * requests covered: counted as committed (limit.c) */
    size_t size;           /* usable bytes */
    size_t map_size;       /* bytes mapped from the header on */
    union {                /* the header fits in TPI_HUGE_OFFSET (64) bytes */
        size_t requested;  /* live: bytes asked for */
        uint64_t freed_ms; /* in the huge cache: when it entered */
    };
    struct tpi_huge *next; /* pool's huge list */
    struct tpi_huge *prev;
} tpi_huge;

_Static_assert(TPI_CHUNK_SIZE < ((size_t)1 << 24), "a huge block's offset field is too narrow");

static inline char *tpi_huge_block(const tpi_huge *h)
{
    return (char *)h + h->offset;
}
/* A pool's list of huge blocks, live or cached. */
static inline void tpi_huge_link_to(tpi_huge **list, tpi_huge *h)
{
    h->prev = NULL;
    h->next = *list;
    if (*list) (*list)->prev = h;
    *list = h;
}

static inline void tpi_huge_unlink_from(tpi_huge **list, tpi_huge *h)
{
    if (h->prev) h->prev->next = h->next; else *list = h->next;
    if (h->next) h->next->prev = h->prev;
}
void *tpi_huge_malloc(tp_pool *pool, size_t size, size_t alignment, bool zero);
void tpi_huge_free(void *p);
void *tpi_huge_realloc(void *p, size_t size);
tpi_huge *tpi_huge_of(const void *p);
void tpi_huge_release_all(tp_pool *pool);
size_t tpi_huge_cache_purge(tp_pool *pool, uint64_t now, uint32_t min_age);

/* ---- the OS contract (os.c) ----------------------------------------------------------- */

/* Maps `size` bytes of zeroed, readable and writable memory whose address
 * plus `offset` is a multiple of `alignment` (both multiples of the OS page,
 * alignment a power of two), resident on first touch but charged to the
 * kernel's commit accounting at once (more than the machine has fails).
 * NULL on failure. */
void *tpi_os_map_aligned(size_t size, size_t alignment, size_t offset);
/* Returns a mapping to the OS. */
void tpi_os_unmap(void *addr, size_t size);
/* Tells the OS the contents are no longer needed: resident memory drops
 * (at once with MADV_DONTNEED after which the range reads as zero; or, when
 * `lazy`, under memory pressure with MADV_FREE, after which the contents are
 * undefined). Range must be OS-page aligned. */
void tpi_os_discard(void *addr, size_t size, bool lazy);
/* The purge of free memory: discarded as the PURGE_MADV_FREE option says. */
static inline void tpi_os_purge(void *addr, size_t size)
{
    tpi_os_discard(addr, size, TPI_OPTION(purge_madv_free) != 0);
}
/* Resizes a mapping in place or moves it to `new_addr` (a region of the
 * caller's own mapping, which this replaces) without copying. NULL on failure. */
void *tpi_os_remap(void *addr, size_t old_size, size_t new_size, void *new_addr);
/* Grows or shrinks a mapping without moving it; false if it cannot. */
bool tpi_os_resize_in_place(void *addr, size_t old_size, size_t new_size);
/* Makes a range inaccessible (a guard page); false if the kernel refuses
 * (out of memory for the split mapping). */
bool tpi_os_protect(void *addr, size_t size);
/* Asks for transparent huge pages on the range, or for none. */
void tpi_os_huge_pages(void *addr, size_t size, bool enable);
/* Milliseconds of a monotonic clock. */
uint64_t tpi_os_clock_ms(void);

/* ---- errors (fatal.c) ----------------------------------------------------------------- */

_Noreturn void tpi_fatal(const char *what, const void *ptr);
/* Start-up registers how tpi_fatal names the pool of a pointer. */
void tpi_fatal_set_owner(tp_pool *(*owner)(const void *p));
/* The same for a misuse of a pool handle, naming the pool. */
_Noreturn void tpi_fatal_pool(const char *what, const tp_pool *pool);
/* alloc.c: the malloc override (libtierpool-malloc) registers at start-up
 * what free does with a pointer found in no chunk of ours: fn returns true
 * if it took it (a block of the system allocator's, freed there). Without
 * one, such a free is fatal. */
void tpi_set_foreign_free(bool (*fn)(void *p));
void tpi_free_generic(void *p);
void *tpi_malloc_slow(size_t size, tpi_tcache *tc);
void *tpi_pool_malloc_slow(tp_pool *pool, size_t size);

#endif /* TPI_INTERNAL_H */
