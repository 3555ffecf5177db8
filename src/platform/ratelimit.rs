//! Counts attempts per key in a sliding window, on the injected clock.
//! The counts live in this process: with several instances each enforces its
//! own limit, which still bounds guessing to a small multiple.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};
use smallvec::SmallVec;

/// Above this many keys, stale entries are swept on the next write.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct WindowLimiter {
    limit: usize,
    /// In microseconds, as the attempts' times.
    window: i64,
    attempts: Mutex<Attempts>,
}

/// A key is kept as its hash under a key drawn at start, and its attempts as
/// microseconds, inline for the first two: a busy sign-up day puts an entry
/// per address in each limiter, and as the address and a queue of times on
/// the heap those entries were most of what sign-ups added to the process
/// (about 15 MB over 45,000 addresses in two limiters). Two keys share a
/// count only if their 64-bit hashes collide, which nobody outside the
/// process can aim for.
#[derive(Debug)]
struct Attempts {
    hasher: RandomState,
    by_key: HashMap<u64, Times>,
    /// The size at which the next sweep runs: twice what the last one left,
    /// so that when most keys are still in their window (a busy sign-up
    /// day) a write does not walk them all again; each key is swept a
    /// bounded number of times on average. A sweep on every write past a
    /// fixed size had taken a third of a sign-up's CPU.
    sweep_above: usize,
}

/// Times of the attempts in the window, oldest first, in microseconds since
/// the epoch.
type Times = SmallVec<[i64; 2]>;

impl WindowLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            window: window.num_microseconds().unwrap_or(i64::MAX),
            attempts: Mutex::new(Attempts {
                hasher: RandomState::new(),
                by_key: HashMap::new(),
                sweep_above: SWEEP_ABOVE,
            }),
        }
    }

    /// Counts an attempt, or answers `Err` with the time until the oldest
    /// attempt in the window expires once `limit` have been counted for
    /// `key`. Checking and counting are one step, taken before the caller
    /// knows how the attempt ends (a login limiter counts failures): parallel
    /// attempts cannot all pass the check while none has been counted yet.
    /// `release` takes the count back when the attempt turns out not to
    /// count.
    pub fn reserve(&self, key: &str, now: DateTime<Utc>) -> Result<(), Duration> {
        let now = now.timestamp_micros();
        let window = self.window;
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let hash = attempts.hasher.hash_one(key);
        let Attempts {
            by_key,
            sweep_above,
            ..
        } = &mut *attempts;
        if let Some(times) = by_key.get_mut(&hash) {
            expire(times, now, window);
            if let Some(oldest) = times.first().filter(|_| times.len() >= self.limit) {
                return Err(Duration::microseconds(oldest + window - now));
            }
        }
        if by_key.len() > *sweep_above {
            by_key.retain(|_, times| {
                expire(times, now, window);
                !times.is_empty()
            });
            *sweep_above = SWEEP_ABOVE.max(2 * by_key.len());
        }
        by_key.entry(hash).or_default().push(now);
        Ok(())
    }

    /// Takes back one attempt counted by `reserve` at `at`.
    pub fn release(&self, key: &str, at: DateTime<Utc>) {
        let at = at.timestamp_micros();
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let hash = attempts.hasher.hash_one(key);
        let Some(times) = attempts.by_key.get_mut(&hash) else {
            return;
        };
        if let Some(i) = times.iter().rposition(|t| *t == at) {
            times.remove(i);
        }
        if times.is_empty() {
            attempts.by_key.remove(&hash);
        }
    }

    pub fn clear(&self, key: &str) {
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let hash = attempts.hasher.hash_one(key);
        attempts.by_key.remove(&hash);
    }
}

fn expire(times: &mut Times, now: i64, window: i64) {
    let expired = times
        .iter()
        .take_while(|t| t.saturating_add(window) <= now)
        .count();
    times.drain(..expired);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trips_at_the_limit_and_recovers_after_the_window() {
        let limiter = WindowLimiter::new(3, Duration::minutes(15));
        let start = Utc::now();
        for i in 0..3 {
            assert!(
                limiter.reserve("k", start + Duration::minutes(i)).is_ok(),
                "attempt {i}"
            );
        }
        let wait = limiter
            .reserve("k", start + Duration::minutes(3))
            .expect_err("limited");
        assert_eq!(wait, Duration::minutes(12));
        assert!(limiter.reserve("other", start).is_ok());
        assert!(limiter.reserve("k", start + Duration::minutes(15)).is_ok());
        limiter.clear("k");
        assert!(limiter.reserve("k", start + Duration::minutes(15)).is_ok());
    }

    #[test]
    fn keys_past_their_window_are_swept_and_live_ones_kept() {
        let window = Duration::minutes(15);
        let limiter = WindowLimiter::new(1, window);
        let start = Utc::now();
        let keys = |n: usize, at| {
            for i in 0..n {
                assert!(limiter.reserve(&format!("{at}-{i}"), at).is_ok());
            }
        };
        let count = || limiter.attempts.lock().expect("lock").by_key.len();
        keys(SWEEP_ABOVE, start);
        let later = start + window;
        keys(SWEEP_ABOVE, later);
        assert!(count() <= SWEEP_ABOVE + 1, "the first keys are gone");
        keys(SWEEP_ABOVE, later + Duration::minutes(1));
        assert_eq!(count(), 2 * SWEEP_ABOVE, "keys in their window stay");
        assert!(limiter.reserve(&format!("{later}-0"), later).is_err());
    }

    #[test]
    fn a_released_attempt_no_longer_counts() {
        let limiter = WindowLimiter::new(2, Duration::minutes(15));
        let now = Utc::now();
        assert!(limiter.reserve("k", now).is_ok());
        assert!(limiter.reserve("k", now).is_ok());
        assert!(limiter.reserve("k", now).is_err());
        limiter.release("k", now);
        assert!(limiter.reserve("k", now).is_ok());
    }
}
