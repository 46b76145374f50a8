//! Claims: what this process believes about each partition it owns, shared by the
//! source (which sets them on assignment) and the writers (which advance them).
//!
//! Architecture Invariant: a writer commits a batch only with a compare-and-set
//! against `expected`, the offset this owner last read or wrote, and only while
//! the batch's generation is the claim's. A revoke or a fence bumps the generation,
//! so batches read under an older ownership are dropped, never written.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// One owned partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    /// Bumped on every assignment and every fence.
    pub generation: u64,
    /// The stored next offset as this owner last read or wrote it.
    pub expected: i64,
    /// Set by a writer whose compare-and-set found another owner's offset: the
    /// source must seek there (or the partition is about to be revoked).
    pub fenced_at: Option<i64>,
}

/// The claims of one pipeline, by partition.
#[derive(Debug, Clone, Default)]
pub struct Claims(Arc<Mutex<HashMap<i32, Claim>>>);

impl Claims {
    /// Locks the map (a poisoned lock is recovered: the map stays consistent
    /// because every update is a single insert or field write).
    pub fn lock(&self) -> MutexGuard<'_, HashMap<i32, Claim>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The claim of `partition` if `generation` is still current and unfenced.
    pub fn current(&self, partition: i32, generation: u64) -> Option<Claim> {
        self.lock()
            .get(&partition)
            .copied()
            .filter(|c| c.generation == generation && c.fenced_at.is_none())
    }

    /// Records a commit: `expected` moves to `next` if the generation still holds.
    pub fn advance(&self, partition: i32, generation: u64, next: i64) -> bool {
        match self.lock().get_mut(&partition) {
            Some(c) if c.generation == generation => {
                c.expected = next;
                true
            }
            _ => false,
        }
    }

    /// Marks a partition fenced at the stored offset another owner wrote.
    pub fn fence(&self, partition: i32, generation: u64, stored: i64) {
        if let Some(c) = self.lock().get_mut(&partition) {
            if c.generation == generation {
                c.fenced_at = Some(stored);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims_at(generation: u64, expected: i64) -> Claims {
        let claims = Claims::default();
        claims.lock().insert(
            3,
            Claim {
                generation,
                expected,
                fenced_at: None,
            },
        );
        claims
    }

    #[test]
    fn a_batch_of_an_older_generation_is_not_current_and_moves_nothing() {
        let claims = claims_at(2, 100);
        assert_eq!(claims.current(3, 2).map(|c| c.expected), Some(100));
        assert!(claims.current(3, 1).is_none());
        assert!(claims.current(4, 2).is_none(), "a partition never claimed");
        assert!(!claims.advance(3, 1, 500));
        assert_eq!(claims.lock()[&3].expected, 100);
        assert!(claims.advance(3, 2, 150));
        assert_eq!(claims.current(3, 2).map(|c| c.expected), Some(150));
    }

    #[test]
    fn a_fence_stops_the_generation_until_the_source_claims_again() {
        let claims = claims_at(2, 100);
        claims.fence(3, 1, 999);
        assert_eq!(
            claims.lock()[&3].fenced_at,
            None,
            "an older batch fenced a newer claim"
        );
        claims.fence(3, 2, 400);
        assert!(claims.current(3, 2).is_none(), "still writable once fenced");
        assert_eq!(claims.lock()[&3].fenced_at, Some(400));
        // The source re-reads the stored offset under a new generation.
        claims.lock().insert(
            3,
            Claim {
                generation: 3,
                expected: 400,
                fenced_at: None,
            },
        );
        assert_eq!(claims.current(3, 3).map(|c| c.expected), Some(400));
        assert!(claims.current(3, 2).is_none());
    }
}
