//! Counts attempts per key in a sliding window, on the injected clock.
//! The counts live in this process: with several instances each enforces its
//! own limit, which still bounds guessing to a small multiple.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use chrono::{DateTime, Duration, Utc};

/// Above this many keys, stale entries are swept on the next write.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug)]
pub struct WindowLimiter {
    limit: usize,
    window: Duration,
    attempts: Mutex<Attempts>,
}

#[derive(Debug)]
struct Attempts {
    by_key: HashMap<String, VecDeque<DateTime<Utc>>>,
    /// The size at which the next sweep runs: twice what the last one left,
    /// so that when most keys are still in their window (a busy sign-up
    /// day) a write does not walk them all again; each key is swept a
    /// bounded number of times on average. A sweep on every write past a
    /// fixed size had taken a third of a sign-up's CPU.
    sweep_above: usize,
}

impl WindowLimiter {
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
            window,
            attempts: Mutex::new(Attempts {
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
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let Attempts {
            by_key,
            sweep_above,
        } = &mut *attempts;
        if let Some(times) = by_key.get_mut(key) {
            Self::expire(times, now, self.window);
            if let Some(oldest) = times.front().filter(|_| times.len() >= self.limit) {
                return Err(*oldest + self.window - now);
            }
        }
        if by_key.len() > *sweep_above {
            by_key.retain(|_, times| {
                Self::expire(times, now, self.window);
                !times.is_empty()
            });
            *sweep_above = SWEEP_ABOVE.max(2 * by_key.len());
        }
        by_key.entry(key.to_owned()).or_default().push_back(now);
        Ok(())
    }

    /// Takes back one attempt counted by `reserve` at `at`.
    pub fn release(&self, key: &str, at: DateTime<Utc>) {
        let by_key = &mut self
            .attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key;
        if let Some(times) = by_key.get_mut(key) {
            if let Some(i) = times.iter().rposition(|t| *t == at) {
                times.remove(i);
            }
            if times.is_empty() {
                by_key.remove(key);
            }
        }
    }

    pub fn clear(&self, key: &str) {
        self.attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_key
            .remove(key);
    }

    fn expire(times: &mut VecDeque<DateTime<Utc>>, now: DateTime<Utc>, window: Duration) {
        while times.front().is_some_and(|t| *t + window <= now) {
            times.pop_front();
        }
    }
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
