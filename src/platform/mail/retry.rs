//! What a failed send means for its message, one policy for the outbox and
//! the digest alike: a permanent refusal (a 5xx reply) is final and a hard
//! bounce; a transient one (a 4xx reply, a dropped connection) is tried
//! again after a wait that doubles with each attempt, up to a cap, until
//! the last attempt.

use chrono::{DateTime, Duration, Utc};

use super::model::SendError;
use crate::platform::config::{DigestSettings, WorkerSettings};

#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: i32,
    pub backoff_base_secs: i64,
    pub backoff_cap_secs: i64,
}

/// What a failed send means for its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Refused for good: the address is to be suppressed.
    Refused(String),
    /// Failed again on the last attempt.
    GaveUp(String),
    RetryAt(DateTime<Utc>, String),
}

impl RetryPolicy {
    /// The verdict on the `attempts`-th send of a message, failed at `now`.
    pub fn judge(&self, failure: SendError, attempts: i32, now: DateTime<Utc>) -> Verdict {
        match failure {
            SendError::Permanent(error) => Verdict::Refused(error),
            SendError::Transient(error) if attempts >= self.max_attempts => Verdict::GaveUp(error),
            SendError::Transient(error) => Verdict::RetryAt(now + self.backoff(attempts), error),
        }
    }

    /// base · 2^(attempt-1), capped.
    fn backoff(&self, attempt: i32) -> Duration {
        let exponent = u32::try_from(attempt.saturating_sub(1))
            .unwrap_or(0)
            .min(20);
        Duration::seconds(
            self.backoff_base_secs
                .saturating_mul(1_i64 << exponent)
                .min(self.backoff_cap_secs),
        )
    }
}

impl From<&WorkerSettings> for RetryPolicy {
    fn from(settings: &WorkerSettings) -> Self {
        Self {
            max_attempts: settings.max_attempts,
            backoff_base_secs: settings.backoff_base_secs,
            backoff_cap_secs: settings.backoff_cap_secs,
        }
    }
}

impl From<&DigestSettings> for RetryPolicy {
    fn from(settings: &DigestSettings) -> Self {
        Self {
            max_attempts: settings.max_attempts,
            backoff_base_secs: settings.backoff_base_secs,
            backoff_cap_secs: settings.backoff_cap_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_and_the_last_attempt_gives_up() {
        let policy = RetryPolicy {
            max_attempts: 5,
            backoff_base_secs: 30,
            backoff_cap_secs: 100,
        };
        let now = Utc::now();
        let transient = || SendError::Transient("451".into());
        let waits: Vec<Verdict> = (1..=5).map(|n| policy.judge(transient(), n, now)).collect();
        assert_eq!(
            waits,
            [
                Verdict::RetryAt(now + Duration::seconds(30), "451".into()),
                Verdict::RetryAt(now + Duration::seconds(60), "451".into()),
                Verdict::RetryAt(now + Duration::seconds(100), "451".into()),
                Verdict::RetryAt(now + Duration::seconds(100), "451".into()),
                Verdict::GaveUp("451".into()),
            ]
        );
        let refused = policy.judge(SendError::Permanent("550".into()), 1, now);
        assert_eq!(refused, Verdict::Refused("550".into()));
    }
}
