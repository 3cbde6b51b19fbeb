// SPDX-License-Identifier: MIT
#![doc = include_str!("../README.md")]
//!
//! # Items
//!
//! - [`TierPool`]: a [`GlobalAlloc`] over tierpool's default pool.
//! - [`Pool`]: an explicit pool, destroyed with every block in it when
//!   dropped; its methods hand out blocks as [`NonNull<u8>`].
//! - [`AllocError`]: the error of a failed allocation.
//! - [`version`], [`is_tierpool`], [`stats_json`].
//!
//! The crate builds against the C library, found as `build.rs` says, and
//! adds no dependency. It needs Rust 1.63 (Debian 12's).

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::CStr;
use std::fmt;
use std::os::raw::{c_char, c_void};
use std::ptr::{self, NonNull};

/// The C API of `tierpool.h` that the crate uses.
mod ffi {
    use std::os::raw::{c_char, c_int, c_void};

    #[repr(C)]
    pub struct TpPool {
        _private: [u8; 0],
    }

    /// `tp_oom_handler`: the crate sets none (a null pointer).
    pub type TpOomHandler = Option<unsafe extern "C" fn(*mut TpPool, usize, *mut c_void) -> bool>;

    #[repr(C)]
    pub struct TpPoolConfig {
        pub memory_limit: usize,
        pub oom_handler: TpOomHandler,
        pub oom_arg: *mut c_void,
    }

    pub const TP_STATS_JSON: c_int = 1;

    extern "C" {
        pub fn tp_malloc(size: usize) -> *mut c_void;
        pub fn tp_calloc(count: usize, size: usize) -> *mut c_void;
        pub fn tp_realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
        pub fn tp_aligned_alloc(alignment: usize, size: usize) -> *mut c_void;
        pub fn tp_free_sized(ptr: *mut c_void, size: usize);
        pub fn tp_usable_size(ptr: *const c_void) -> usize;
        pub fn tp_pool_create(name: *const c_char, config: *const TpPoolConfig) -> *mut TpPool;
        pub fn tp_pool_destroy(pool: *mut TpPool);
        pub fn tp_pool_reset(pool: *mut TpPool);
        pub fn tp_pool_trim(pool: *mut TpPool) -> usize;
        pub fn tp_pool_of(ptr: *const c_void) -> *mut TpPool;
        pub fn tp_pool_name(pool: *const TpPool) -> *const c_char;
        pub fn tp_pool_malloc(pool: *mut TpPool, size: usize) -> *mut c_void;
        pub fn tp_pool_calloc(pool: *mut TpPool, count: usize, size: usize) -> *mut c_void;
        pub fn tp_pool_realloc(pool: *mut TpPool, ptr: *mut c_void, size: usize) -> *mut c_void;
        pub fn tp_pool_aligned_alloc(pool: *mut TpPool, alignment: usize, size: usize) -> *mut c_void;
        pub fn tp_stats_write(
            pool: *mut TpPool,
            format: c_int,
            write: extern "C" fn(arg: *mut c_void, text: *const c_char),
            arg: *mut c_void,
        ) -> c_int;
        pub fn tp_version() -> *const c_char;
    }
}

/// Every tierpool block is aligned to this without asking (`tp_malloc`).
const MIN_ALIGN: usize = 16;

/// A failed allocation: out of memory, past a pool's limit, or a layout
/// tierpool cannot serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AllocError;

impl fmt::Display for AllocError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tierpool: memory allocation failed")
    }
}

impl std::error::Error for AllocError {}

/// `"MAJOR.MINOR.PATCH"` of the libtierpool the program runs with.
pub fn version() -> &'static str {
    // SAFETY: tp_version returns a static NUL-terminated ASCII string.
    unsafe { CStr::from_ptr(ffi::tp_version()) }.to_str().unwrap_or("?")
}

/// Whether `ptr` points into a block of any tierpool pool (the default
/// pool included): true for what [`TierPool`] and [`Pool`] hand out.
pub fn is_tierpool(ptr: *const u8) -> bool {
    // SAFETY: tp_pool_of accepts any address, ours or not.
    !unsafe { ffi::tp_pool_of(ptr as *const c_void) }.is_null()
}

extern "C" fn append_text(arg: *mut c_void, text: *const c_char) {
    // SAFETY: arg is the String stats_of passed; text is NUL-terminated.
    let out = unsafe { &mut *(arg as *mut String) };
    out.push_str(&unsafe { CStr::from_ptr(text) }.to_string_lossy());
}

fn stats_of(pool: *mut ffi::TpPool) -> String {
    let mut out = String::new();
    // SAFETY: the callback only appends to `out`, which outlives the call.
    unsafe { ffi::tp_stats_write(pool, ffi::TP_STATS_JSON, append_text, &mut out as *mut String as *mut c_void) };
    out
}

/// The statistics of every pool of the process and their total, as the JSON
/// of `tp_stats_print` (docs/monitoring.md describes the fields).
pub fn stats_json() -> String {
    stats_of(ptr::null_mut())
}

/// A [`GlobalAlloc`] over tierpool's default pool: the Rust program's heap
/// becomes tierpool's, with its thread caches and statistics.
///
/// ```
/// #[global_allocator]
/// static GLOBAL: tierpool::TierPool = tierpool::TierPool;
/// # fn main() {
/// let v = vec![1u64; 1000];
/// assert!(tierpool::is_tierpool(v.as_ptr() as *const u8));
/// # }
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TierPool;

unsafe impl GlobalAlloc for TierPool {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            ffi::tp_malloc(layout.size()) as *mut u8
        } else {
            ffi::tp_aligned_alloc(layout.align(), layout.size()) as *mut u8
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            return ffi::tp_calloc(1, layout.size()) as *mut u8;
        }
        let p = self.alloc(layout);
        if !p.is_null() {
            ptr::write_bytes(p, 0, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ffi::tp_free_sized(ptr as *mut c_void, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.align() <= MIN_ALIGN {
            return ffi::tp_realloc(ptr as *mut c_void, new_size) as *mut u8;
        }
        let new = self.alloc(Layout::from_size_align_unchecked(new_size, layout.align()));
        if !new.is_null() {
            ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

/// An explicit tierpool pool: blocks of any size and alignment from any
/// thread, freed one by one or all at once by [`Pool::reset`] and by drop,
/// which also gives the pool's memory back to the OS.
///
/// Blocks are raw memory ([`NonNull<u8>`]): reading and writing them is
/// `unsafe`, and so is using one after its pool was reset or dropped.
pub struct Pool {
    raw: NonNull<ffi::TpPool>,
}

// SAFETY: a tierpool pool may be used from many threads at once.
unsafe impl Send for Pool {}
unsafe impl Sync for Pool {}

impl Pool {
    /// A pool named `name` (up to 31 bytes are kept; no NUL inside).
    pub fn new(name: &str) -> Result<Pool, AllocError> {
        Pool::with_limit(name, 0)
    }

    /// A pool that maps at most `memory_limit` bytes (0: no limit);
    /// allocations past it fail with [`AllocError`].
    pub fn with_limit(name: &str, memory_limit: usize) -> Result<Pool, AllocError> {
        let mut cname = Vec::with_capacity(name.len() + 1);
        cname.extend_from_slice(name.as_bytes());
        if cname.contains(&0) {
            return Err(AllocError);
        }
        cname.push(0);
        let config = ffi::TpPoolConfig { memory_limit, oom_handler: None, oom_arg: std::ptr::null_mut() };
        // SAFETY: cname is NUL-terminated; the pool copies it.
        let raw = unsafe { ffi::tp_pool_create(cname.as_ptr() as *const c_char, &config) };
        NonNull::new(raw).map(|raw| Pool { raw }).ok_or(AllocError)
    }

    /// The pool's name.
    pub fn name(&self) -> &str {
        // SAFETY: the name lives as long as the pool.
        unsafe { CStr::from_ptr(ffi::tp_pool_name(self.raw.as_ptr())) }.to_str().unwrap_or("?")
    }

    /// A block for `layout` (a zero size gets a unique block).
    pub fn allocate(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        let pool = self.raw.as_ptr();
        // SAFETY: the pool is live for as long as self.
        let p = unsafe {
            if layout.align() <= MIN_ALIGN {
                ffi::tp_pool_malloc(pool, layout.size())
            } else {
                ffi::tp_pool_aligned_alloc(pool, layout.align(), layout.size())
            }
        };
        NonNull::new(p as *mut u8).ok_or(AllocError)
    }

    /// A block for `layout`, filled with zeros.
    pub fn allocate_zeroed(&self, layout: Layout) -> Result<NonNull<u8>, AllocError> {
        if layout.align() <= MIN_ALIGN {
            // SAFETY: as in allocate.
            let p = unsafe { ffi::tp_pool_calloc(self.raw.as_ptr(), 1, layout.size()) };
            return NonNull::new(p as *mut u8).ok_or(AllocError);
        }
        let p = self.allocate(layout)?;
        // SAFETY: the block has layout.size() bytes.
        unsafe { ptr::write_bytes(p.as_ptr(), 0, layout.size()) };
        Ok(p)
    }

    /// Moves a block to `new_size` bytes, keeping its contents up to the
    /// smaller size; on error the old block is left as it was.
    ///
    /// # Safety
    /// `ptr` is a live block of this pool allocated with `layout`.
    pub unsafe fn reallocate(&self, ptr: NonNull<u8>, layout: Layout, new_size: usize) -> Result<NonNull<u8>, AllocError> {
        if layout.align() <= MIN_ALIGN {
            let p = ffi::tp_pool_realloc(self.raw.as_ptr(), ptr.as_ptr() as *mut c_void, new_size);
            return NonNull::new(p as *mut u8).ok_or(AllocError);
        }
        let new_layout = Layout::from_size_align(new_size, layout.align()).map_err(|_| AllocError)?;
        let new = self.allocate(new_layout)?;
        ptr::copy_nonoverlapping(ptr.as_ptr(), new.as_ptr(), layout.size().min(new_size));
        self.deallocate(ptr, layout);
        Ok(new)
    }

    /// Frees a block.
    ///
    /// # Safety
    /// `ptr` is a live block of this pool allocated with `layout`, not used
    /// after this call.
    pub unsafe fn deallocate(&self, ptr: NonNull<u8>, layout: Layout) {
        ffi::tp_free_sized(ptr.as_ptr() as *mut c_void, layout.size());
    }

    /// Usable bytes of a block, at least the size asked for.
    ///
    /// # Safety
    /// `ptr` is a live tierpool block.
    pub unsafe fn usable_size(&self, ptr: NonNull<u8>) -> usize {
        ffi::tp_usable_size(ptr.as_ptr() as *const c_void)
    }

    /// Whether `ptr` points into a block of this pool.
    pub fn contains(&self, ptr: *const u8) -> bool {
        // SAFETY: tp_pool_of accepts any address.
        unsafe { ffi::tp_pool_of(ptr as *const c_void) == self.raw.as_ptr() }
    }

    /// Frees every block of the pool at once and keeps its memory for the
    /// next ones, as a request arena does. Blocks handed out before must not
    /// be used after.
    pub fn reset(&mut self) {
        // SAFETY: &mut self: no other thread uses the pool during the call.
        unsafe { ffi::tp_pool_reset(self.raw.as_ptr()) }
    }

    /// Gives the pool's free memory back to the OS now; the bytes given back.
    pub fn trim(&self) -> usize {
        // SAFETY: the pool is live.
        unsafe { ffi::tp_pool_trim(self.raw.as_ptr()) }
    }

    /// The pool's statistics as JSON, as `tp_stats_print` writes them.
    pub fn stats_json(&self) -> String {
        stats_of(self.raw.as_ptr())
    }
}

impl Drop for Pool {
    /// Destroys the pool: every block in it is freed and its memory unmapped.
    fn drop(&mut self) {
        // SAFETY: the pool is ours, and no block may outlive it.
        unsafe { ffi::tp_pool_destroy(self.raw.as_ptr()) }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("name", &self.name()).finish()
    }
}
