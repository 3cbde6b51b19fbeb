// SPDX-License-Identifier: MIT
//! TierPool as the global allocator of this test binary: the standard
//! collections' memory is tierpool's, across threads, reallocation,
//! zeroing and over-aligned layouts.
use std::alloc::{alloc, alloc_zeroed, dealloc, realloc, Layout};
use std::collections::HashMap;
use std::thread;

#[global_allocator]
static GLOBAL: tierpool::TierPool = tierpool::TierPool;

#[test]
fn collections_live_in_tierpool() {
    let v: Vec<u64> = (0..10_000).collect();
    assert!(tierpool::is_tierpool(v.as_ptr() as *const u8));
    let s = "x".repeat(3 << 20); // the huge tier
    assert!(tierpool::is_tierpool(s.as_ptr()));
    let mut m = HashMap::new();
    for i in 0..1000 {
        m.insert(i, format!("value {}", i));
    }
    assert_eq!(m[&999], "value 999");
    assert!(tierpool::is_tierpool(m[&500].as_ptr()));
    let b = Box::new([7u8; 100]);
    assert!(tierpool::is_tierpool(b.as_ptr()));
}

#[test]
fn threads_free_each_others_blocks() {
    let handles: Vec<_> = (0..4)
        .map(|t| thread::spawn(move || (0..2000).map(|i| vec![t as u8; 16 + i % 700]).collect::<Vec<_>>()))
        .collect();
    let mut total = 0usize;
    for h in handles {
        let blocks = h.join().unwrap(); // freed here, by another thread than their allocator
        for b in &blocks {
            assert!(tierpool::is_tierpool(b.as_ptr()));
        }
        total += blocks.iter().map(|b| b.len()).sum::<usize>();
    }
    assert!(total > 4 * 2000 * 16);
}

#[test]
fn raw_layouts() {
    unsafe {
        for &align in &[1usize, 8, 16, 64, 4096, 1 << 16] {
            let layout = Layout::from_size_align(1000, align).unwrap();
            let p = alloc(layout);
            assert!(!p.is_null() && p as usize % align == 0, "align {}", align);
            assert!(tierpool::is_tierpool(p));
            p.write_bytes(0x5a, 1000);
            let q = realloc(p, layout, 100_000);
            assert!(!q.is_null() && q as usize % align == 0);
            assert_eq!(*q.add(999), 0x5a);
            dealloc(q, Layout::from_size_align(100_000, align).unwrap());

            let z = alloc_zeroed(layout);
            assert!(!z.is_null() && z as usize % align == 0);
            assert!((0..1000).all(|i| *z.add(i) == 0));
            dealloc(z, layout);
        }
    }
}
