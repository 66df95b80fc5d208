//! At most `--guest-concurrency` guest instances at once: the instance pool has that many
//! slots, and an instantiation beyond them would fail. A call beyond them waits for a slot
//! instead (counted in `/metrics`), so a burst of proofs is slower, not refused.

use std::sync::{Condvar, Mutex};

pub struct Slots {
    capacity: usize,
    in_use: Mutex<usize>,
    freed: Condvar,
}

/// A slot held; given back when dropped.
pub struct Slot<'a>(&'a Slots);

impl Slots {
    pub fn new(capacity: u32) -> Slots {
        Slots {
            capacity: capacity.max(1) as usize,
            in_use: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    /// Takes a slot, waiting (on this thread) while all are in use.
    pub fn take(&self) -> Slot<'_> {
        let mut n = self.in_use.lock().expect("not poisoned");
        if *n >= self.capacity {
            crate::metrics::guest_instance_wait();
            n = self
                .freed
                .wait_while(n, |n| *n >= self.capacity)
                .expect("not poisoned");
        }
        *n += 1;
        crate::metrics::guest_instances(*n);
        Slot(self)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut n = self.0.in_use.lock().expect("not poisoned");
        *n -= 1;
        crate::metrics::guest_instances(*n);
        drop(n);
        self.0.freed.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_call_beyond_capacity_waits_for_a_slot() {
        let slots = Arc::new(Slots::new(1));
        let held = slots.take();
        let (tx, rx) = std::sync::mpsc::channel();
        let s = slots.clone();
        let waiter = std::thread::spawn(move || {
            let _slot = s.take();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "no slot was free"
        );
        drop(held);
        rx.recv_timeout(std::time::Duration::from_secs(30))
            .expect("the freed slot was taken");
        waiter.join().unwrap();
        assert_eq!(*slots.in_use.lock().unwrap(), 0);
    }
}
