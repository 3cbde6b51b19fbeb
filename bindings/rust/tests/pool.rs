// SPDX-License-Identifier: MIT
//! Pool: blocks come from the pool asked for, with their alignment; the
//! limit fails with AllocError; reset and drop free everything; a pool is
//! shared by threads. (This binary keeps the system's global allocator.)
use std::alloc::Layout;
use std::ptr::NonNull;
use std::sync::Arc;
use std::thread;
use tierpool::{AllocError, Pool};

fn pool_listed(name: &str) -> bool {
    tierpool::stats_json().contains(&format!("\"{}\"", name))
}

#[test]
fn blocks_come_from_the_pool() {
    let pool = Pool::new("rust-blocks").unwrap();
    assert_eq!(pool.name(), "rust-blocks");
    let other = Pool::new("rust-other").unwrap();
    for &(size, align) in &[(1usize, 1usize), (24, 8), (100, 256), (5000, 4096), (2 << 20, 64)] {
        let layout = Layout::from_size_align(size, align).unwrap();
        // Several, so that none is aligned only by starting a fresh page.
        let extra: Vec<_> = (0..8).map(|_| pool.allocate(layout).unwrap()).collect();
        assert!(extra.iter().all(|p| p.as_ptr() as usize % align == 0), "size {} align {}", size, align);
        let p = pool.allocate(layout).unwrap();
        assert!(pool.contains(p.as_ptr()) && !other.contains(p.as_ptr()));
        assert_eq!(p.as_ptr() as usize % align, 0, "size {} align {}", size, align);
        unsafe {
            assert!(pool.usable_size(p) >= size);
            p.as_ptr().write_bytes(0xcd, size);
            let q = pool.reallocate(p, layout, size * 3).unwrap();
            assert!(pool.contains(q.as_ptr()));
            assert_eq!(q.as_ptr() as usize % align, 0);
            assert_eq!(*q.as_ptr().add(size - 1), 0xcd);
            pool.deallocate(q, Layout::from_size_align(size * 3, align).unwrap());
        }
        let z = pool.allocate_zeroed(layout).unwrap();
        assert!(unsafe { std::slice::from_raw_parts(z.as_ptr(), size) }.iter().all(|&b| b == 0));
        unsafe { pool.deallocate(z, layout) };
        for p in extra {
            unsafe { pool.deallocate(p, layout) };
        }
    }
    // Outside any pool: the stack, and the system allocator's heap.
    let local = 0u8;
    let boxed = Box::new(0u64);
    assert!(!tierpool::is_tierpool(&local) && !tierpool::is_tierpool(&*boxed as *const u64 as *const u8));
}

#[test]
fn limit_fails_with_alloc_error() {
    let pool = Pool::with_limit("rust-limit", 8 << 20).unwrap();
    let layout = Layout::from_size_align(1 << 20, 16).unwrap();
    let results: Vec<_> = (0..64).map(|_| pool.allocate(layout)).collect();
    assert!(results.iter().any(|r| r.is_ok()));
    assert_eq!(results.last().unwrap(), &Err(AllocError));
    assert!(Pool::new("bad\0name").is_err());
}

#[test]
fn reset_and_drop_free_everything() {
    let mut pool = Pool::new("rust-reset").unwrap();
    let layout = Layout::from_size_align(256, 16).unwrap();
    for _ in 0..10_000 {
        pool.allocate(layout).unwrap();
    }
    let live = |pool: &Pool| {
        let json = pool.stats_json();
        let at = json.find("\"live_blocks\": ").expect("live_blocks in the JSON") + "\"live_blocks\": ".len();
        json[at..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse::<u64>().unwrap()
    };
    assert_eq!(live(&pool), 10_000);
    pool.reset();
    assert_eq!(live(&pool), 0);
    assert!(pool_listed("rust-reset"));
    drop(pool);
    assert!(!pool_listed("rust-reset"));
}

#[test]
fn threads_share_a_pool() {
    let pool = Arc::new(Pool::new("rust-threads").unwrap());
    let layout = Layout::from_size_align(64, 16).unwrap();
    // Blocks made by four threads, freed by this one.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let pool = Arc::clone(&pool);
            thread::spawn(move || (0..1000).map(|_| pool.allocate(layout).unwrap().as_ptr() as usize).collect::<Vec<_>>())
        })
        .collect();
    for h in handles {
        for addr in h.join().unwrap() {
            let p = NonNull::new(addr as *mut u8).unwrap();
            assert!(pool.contains(p.as_ptr()));
            unsafe { pool.deallocate(p, layout) };
        }
    }
    assert!(tierpool::version().split('.').count() == 3);
}
