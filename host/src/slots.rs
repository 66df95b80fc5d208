//! At most `--guest-concurrency` guest calls at once: the instance pool has a slot for each
//! (plus a few for the checks of a candidate guest, which run outside these). A call beyond
//! them waits for a slot, in turn and without blocking a thread (counted in `/metrics`), so a
//! burst of proofs is slower, not refused.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub struct Slots {
    capacity: usize,
    free: Arc<Semaphore>,
}

/// A slot held; given back when dropped.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    slots: Arc<Slots>,
}

impl Slots {
    pub fn new(capacity: u32) -> Arc<Slots> {
        let capacity = capacity.max(1) as usize;
        Arc::new(Slots {
            capacity,
            free: Arc::new(Semaphore::new(capacity)),
        })
    }

    /// A slot at once, if one is free.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let permit = self.free.clone().try_acquire_owned().ok()?;
        Some(self.held(permit))
    }

    /// A slot, waiting (first come, first served) while all are in use.
    pub async fn take(self: &Arc<Self>) -> Slot {
        if let Some(slot) = self.try_take() {
            return slot;
        }
        crate::metrics::guest_instance_wait();
        let permit = self
            .free
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        self.held(permit)
    }

    fn held(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> Slot {
        crate::metrics::guest_instances(self.in_use());
        Slot {
            permit: Some(permit),
            slots: self.clone(),
        }
    }

    fn in_use(&self) -> usize {
        self.capacity - self.free.available_permits()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        crate::metrics::guest_instances(self.slots.in_use());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_call_beyond_capacity_waits_for_the_slot_freed() {
        let slots = Slots::new(1);
        let held = slots.take().await;
        assert!(slots.try_take().is_none(), "the only slot is taken");
        let s = slots.clone();
        let waiter = tokio::spawn(async move {
            let _slot = s.take().await;
        });
        drop(held);
        waiter.await.expect("the waiter got the freed slot");
        assert_eq!(slots.in_use(), 0);
        assert!(slots.try_take().is_some());
    }
}
