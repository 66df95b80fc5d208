//! The component's global allocator. An instance serves one call and is then thrown away with
//! its memory, so what the call allocates never needs to be given back: allocations are
//! bumped from an arena in the instance's memory, and only a call that fills it goes on in the
//! system allocator (dlmalloc). dlmalloc's bookkeeping was a twentieth of a status poll.
//!
//! The arena is in the module's zeroed data, so it costs nothing until used, and the host
//! resets only the pages a call touched.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};

/// Enough for every call but proof verification and issuance, which go on in dlmalloc.
const ARENA_BYTES: usize = 256 << 10;

#[repr(C, align(16))]
struct Arena {
    bytes: UnsafeCell<[u8; ARENA_BYTES]>,
    /// Offset of the first free byte.
    next: Cell<usize>,
}

// SAFETY: the component runs on one thread (wasm32-wasip2 has no threads), so the arena is
// never touched from two at once.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena {
    bytes: UnsafeCell::new([0; ARENA_BYTES]),
    next: Cell::new(0),
};

pub struct CallAllocator;

impl Arena {
    fn base(&self) -> usize {
        self.bytes.get() as usize
    }

    fn holds(&self, ptr: *mut u8) -> bool {
        (self.base()..self.base() + ARENA_BYTES).contains(&(ptr as usize))
    }

    /// `size` bytes aligned to `align`, or null when the arena has no room.
    fn bump(&self, size: usize, align: usize) -> *mut u8 {
        let base = self.base();
        let start = (base + self.next.get()).next_multiple_of(align);
        match start.checked_add(size) {
            Some(end) if end <= base + ARENA_BYTES => {
                self.next.set(end - base);
                start as *mut u8
            }
            _ => std::ptr::null_mut(),
        }
    }

    /// Whether `ptr..ptr + size` is the last allocation, which can shrink, grow or go.
    fn is_last(&self, ptr: *mut u8, size: usize) -> bool {
        ptr as usize + size == self.base() + self.next.get()
    }
}

// SAFETY: every block handed out is either a range of the arena given to no one else (the
// bump only moves forward, except to take back the last block) or dlmalloc's; each kind of
// block is freed and resized by the allocator that made it.
unsafe impl GlobalAlloc for CallAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = ARENA.bump(layout.size(), layout.align());
        if !ptr.is_null() {
            return ptr;
        }
        // SAFETY: forwarded as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARENA.holds(ptr) {
            if ARENA.is_last(ptr, layout.size()) {
                ARENA.next.set(ptr as usize - ARENA.base());
            }
            return;
        }
        // SAFETY: not the arena's, so dlmalloc's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !ARENA.holds(ptr) {
            // SAFETY: not the arena's, so dlmalloc's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        let offset = ptr as usize - ARENA.base();
        if ARENA.is_last(ptr, layout.size()) && offset + new_size <= ARENA_BYTES {
            ARENA.next.set(offset + new_size);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees a valid layout of `new_size` with the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size, as `layout`'s was smaller.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are at least `layout.size()` long and do not overlap.
            unsafe { std::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
        }
        new
    }
}
