//! How sessions spread over a Redis cluster. A compare-and-swap touches a session's keys and
//! the `wakeups` and `outbox` sets it may join, so all of them must live in one hash slot: each
//! session belongs to one of [`CLUSTER_SHARDS`] shards (by its client token), and the keys of a
//! shard carry its hash tag `{n}`. The shards' slots fall on every master, so sessions do too.
//! On one node there is one shard and no tag, so key names stay as they always were.

use std::sync::atomic::{AtomicU32, Ordering};

/// Enough shards to fall on every master of a usual cluster, few enough that replicas can ask
/// each one for due work every second.
pub const CLUSTER_SHARDS: u32 = 32;

pub struct Shards {
    count: u32,
    /// Where the next round over the shards starts.
    next: AtomicU32,
}

impl Shards {
    /// One node: one shard, no tags.
    pub fn single() -> Shards {
        Shards {
            count: 1,
            next: AtomicU32::new(0),
        }
    }

    pub fn cluster() -> Shards {
        Shards {
            count: CLUSTER_SHARDS,
            next: AtomicU32::new(0),
        }
    }

    pub fn clustered(&self) -> bool {
        self.count > 1
    }

    fn tag(&self, n: u32) -> String {
        if self.clustered() {
            format!("{{{n}}}")
        } else {
            String::new()
        }
    }

    /// The hash tag of session `ct`'s keys: `{n}`, or nothing on one node.
    pub fn tag_of(&self, ct: &str) -> String {
        // FNV-1a: stable across builds and replicas, and client tokens are random anyway.
        let hash = ct.bytes().fold(0x811c_9dc5u32, |h, b| {
            (h ^ b as u32).wrapping_mul(0x0100_0193)
        });
        self.tag(hash % self.count)
    }

    /// Every shard's tag, in order.
    pub fn all_tags(&self) -> Vec<String> {
        (0..self.count).map(|i| self.tag(i)).collect()
    }

    /// Every shard's tag, starting one further than the previous call did.
    pub fn tags_from_next(&self) -> Vec<String> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..self.count)
            .map(|i| self.tag((start + i) % self.count))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_node_has_no_tags_and_a_cluster_spreads_sessions_over_every_shard() {
        let one = Shards::single();
        assert_eq!(one.tag_of("abc"), "");
        assert_eq!(one.tags_from_next(), vec![String::new()]);

        let c = Shards::cluster();
        assert_eq!(c.tag_of("abc"), c.tag_of("abc"), "stable");
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..2000 {
            seen.insert(c.tag_of(&format!("client-token-{i}")));
        }
        assert_eq!(seen.len(), CLUSTER_SHARDS as usize);
        let first = c.tags_from_next();
        let second = c.tags_from_next();
        assert_eq!(first.len(), CLUSTER_SHARDS as usize);
        assert_ne!(first[0], second[0], "each round starts further on");
        let (mut a, mut b) = (first.clone(), second.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b, "every round asks every shard");
    }
}
