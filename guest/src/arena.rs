//! The component's global allocator. An instance serves one call and is then thrown away with
//! its memory, so what the call allocates never needs to be given back: allocations are
//! bumped from an arena in the instance's memory, and only a call that fills it goes on in
//! dlmalloc. dlmalloc's bookkeeping was a twentieth of a status poll.
//!
//! The arena is in the module's zeroed data, so it costs nothing until used, and the host
//! resets only the pages a call touched.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, UnsafeCell};

/// Where allocations go once the arena is full.
#[cfg(target_arch = "wasm32")]
use dlmalloc::GlobalDlmalloc as Fallback;
#[cfg(not(target_arch = "wasm32"))]
use std::alloc::System as Fallback;

/// Enough for every call but proof verification and issuance, which go on in dlmalloc.
const ARENA_BYTES: usize = 256 << 10;

#[repr(C, align(16))]
pub struct Arena {
    bytes: UnsafeCell<[u8; ARENA_BYTES]>,
    /// Offset of the first free byte.
    next: Cell<usize>,
}

// SAFETY: the component runs on one thread (wasm32-wasip2 has no threads), so the arena is
// never touched from two at once. (Natively, only single-threaded unit tests make one.)
unsafe impl Sync for Arena {}

impl Arena {
    pub const fn new() -> Arena {
        Arena {
            bytes: UnsafeCell::new([0; ARENA_BYTES]),
            next: Cell::new(0),
        }
    }

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
            _ => core::ptr::null_mut(),
        }
    }

    /// Whether `ptr..ptr + size` is the last block handed out, which can shrink, grow or go.
    fn is_last(&self, ptr: *mut u8, size: usize) -> bool {
        ptr as usize + size == self.base() + self.next.get()
    }

    /// Takes back the last block, which starts at `ptr`.
    fn pop(&self, ptr: *mut u8) {
        self.next.set(ptr as usize - self.base());
    }
}

// SAFETY: every block handed out is either a range of the arena given to no one else (the
// bump only moves forward, except to take back the last block) or the fallback's; each kind of
// block is freed and resized by the allocator that made it.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = self.bump(layout.size(), layout.align());
        if !ptr.is_null() {
            return ptr;
        }
        // SAFETY: forwarded as given.
        unsafe { Fallback.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.holds(ptr) {
            if self.is_last(ptr, layout.size()) {
                self.pop(ptr);
            }
            return;
        }
        // SAFETY: not the arena's, so the fallback's.
        unsafe { Fallback.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.holds(ptr) {
            // SAFETY: not the arena's, so the fallback's.
            return unsafe { Fallback.realloc(ptr, layout, new_size) };
        }
        let last = self.is_last(ptr, layout.size());
        let offset = ptr as usize - self.base();
        if last && offset + new_size <= ARENA_BYTES {
            self.next.set(offset + new_size);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees a valid layout of `new_size` with the same alignment.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // The last block grown past the arena's end cannot fit anywhere in it: straight to the
        // fallback, and its room goes back to the arena once it has moved (not before: on a
        // failure the caller still owns it, unchanged).
        // SAFETY: a non-zero size, as `layout`'s was smaller.
        let new = unsafe {
            if last {
                Fallback.alloc(new_layout)
            } else {
                self.alloc(new_layout)
            }
        };
        if !new.is_null() {
            // SAFETY: both blocks are at least `layout.size()` long and distinct (a bump only
            // hands out bytes past the end of `ptr`'s block, which is not taken back yet).
            unsafe { core::ptr::copy_nonoverlapping(ptr, new, layout.size()) };
            if last {
                self.pop(ptr);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::boxed::Box;

    fn arena() -> Box<Arena> {
        Box::new(Arena::new())
    }

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn bumps_aligned_blocks_and_takes_back_only_the_last() {
        let a = arena();
        unsafe {
            let x = a.alloc(layout(3, 1));
            let y = a.alloc(layout(8, 8));
            assert!(a.holds(x) && a.holds(y));
            assert_eq!(y as usize % 8, 0);
            assert!(y as usize >= x as usize + 3);
            // Freeing a block that is not the last keeps its bytes reserved.
            a.dealloc(x, layout(3, 1));
            assert_eq!(a.next.get(), y as usize + 8 - a.base());
            // Freeing the last one takes it back: the next block starts where it did.
            a.dealloc(y, layout(8, 8));
            assert_eq!(a.alloc(layout(8, 8)), y);
        }
    }

    #[test]
    fn grows_the_last_block_in_place_and_moves_others_with_their_bytes() {
        let a = arena();
        unsafe {
            let x = a.alloc(layout(4, 1));
            x.copy_from(b"abcd".as_ptr(), 4);
            let x2 = a.realloc(x, layout(4, 1), 100);
            assert_eq!(x2, x, "the last block grows where it is");
            let y = a.alloc(layout(4, 1));
            let x3 = a.realloc(x2, layout(100, 1), 200);
            assert_ne!(x3, x2, "a block with another after it moves");
            assert!(x3 as usize > y as usize);
            assert_eq!(std::slice::from_raw_parts(x3, 4), b"abcd");
            // Shrinking never moves.
            assert_eq!(a.realloc(x3, layout(200, 1), 10), x3);
        }
    }

    #[test]
    fn goes_on_in_the_fallback_when_full_and_frees_there() {
        let a = arena();
        unsafe {
            let big = a.alloc(layout(ARENA_BYTES - 16, 16));
            assert!(a.holds(big));
            let out = a.alloc(layout(64, 8));
            assert!(
                !out.is_null() && !a.holds(out),
                "past the arena: the fallback's"
            );
            out.write_bytes(7, 64);
            let out2 = a.realloc(out, layout(64, 8), 1 << 20);
            assert!(!a.holds(out2));
            assert_eq!(*out2.add(63), 7);
            a.dealloc(out2, layout(1 << 20, 8));
            // The last arena block, grown past the end, moves out with its bytes and gives
            // its room back.
            big.write_bytes(9, 16);
            let moved = a.realloc(big, layout(ARENA_BYTES - 16, 16), ARENA_BYTES + 16);
            assert!(!a.holds(moved));
            assert_eq!(*moved.add(15), 9);
            assert_eq!(a.next.get(), 0);
            a.dealloc(moved, layout(ARENA_BYTES + 16, 16));
        }
    }
}
