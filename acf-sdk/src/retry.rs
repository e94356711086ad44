//! Retry policy for unary calls, as in Python (§1.7): exponential jittered backoff; never retried codes are
//! `UNIMPLEMENTED`, `INVALID_ARGUMENT`, `ALREADY_EXISTS`, `UNAUTHENTICATED`, `PERMISSION_DENIED` and (unless
//! enabled) `NOT_FOUND`.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tonic::Code;

use crate::error::{Error, Result};

/// How a call is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts (1 = no retry; 0 is treated as 1).
    pub max_attempts: u32,
    /// First backoff.
    pub initial: Duration,
    /// Backoff cap.
    pub max: Duration,
    /// Also retry `NOT_FOUND`.
    pub retry_not_found: bool,
}

impl RetryPolicy {
    /// Admin and event calls: `HATCHET_CLIENT_TENACITY_MAX_ATTEMPTS` attempts, 1 s → 5 s.
    pub fn unary(max_attempts: u32, retry_not_found: bool) -> Self {
        Self {
            max_attempts,
            initial: Duration::from_secs(1),
            max: Duration::from_secs(5),
            retry_not_found,
        }
    }

    /// `SendStepActionEvent`: 20 attempts, 0.5 s → 10 s.
    pub fn action_events() -> Self {
        Self {
            max_attempts: 20,
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            retry_not_found: false,
        }
    }

    /// A single attempt (Register, Heartbeat, RefreshTimeout, ReleaseSlot).
    pub fn once() -> Self {
        Self {
            max_attempts: 1,
            initial: Duration::ZERO,
            max: Duration::ZERO,
            retry_not_found: false,
        }
    }

    /// Whether a status code may be retried.
    pub fn is_retryable(&self, code: Code) -> bool {
        match code {
            Code::Unimplemented
            | Code::InvalidArgument
            | Code::AlreadyExists
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::Cancelled => false,
            Code::NotFound => self.retry_not_found,
            _ => true,
        }
    }

    /// The jittered delay before attempt `attempt + 1` (`attempt` ≥ 1): `min(max, initial·2^(attempt-1))`
    /// scaled by a random factor in [0.5, 1].
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(16))
            .min(self.max);
        base.mul_f64(rand::rng().random_range(0.5..=1.0))
    }

    /// Runs `call` until it succeeds, fails with a non-retryable code, or attempts run out.
    pub async fn run<T, F, Fut>(&self, rpc: &'static str, mut call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, tonic::Status>>,
    {
        let attempts = self.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(status) if attempt < attempts && self.is_retryable(status.code()) => {
                    tracing::debug!(rpc, attempt, code = ?status.code(), "retrying after error");
                    tokio::time::sleep(self.delay(attempt)).await;
                    attempt += 1;
                }
                Err(status) => return Err(Error::from_status(rpc, status)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[test]
    fn classifies_codes_like_python() {
        let p = RetryPolicy::unary(5, false);
        assert!(p.is_retryable(Code::Unavailable));
        assert!(p.is_retryable(Code::ResourceExhausted));
        assert!(p.is_retryable(Code::Internal));
        assert!(!p.is_retryable(Code::InvalidArgument));
        assert!(!p.is_retryable(Code::NotFound));
        assert!(RetryPolicy::unary(5, true).is_retryable(Code::NotFound));
    }

    #[test]
    fn delays_grow_and_cap() {
        let p = RetryPolicy::action_events();
        assert!(p.delay(1) <= Duration::from_millis(500));
        assert!(p.delay(10) <= Duration::from_secs(10) && p.delay(10) >= Duration::from_secs(5));
    }

    #[tokio::test]
    async fn retries_transient_errors_only() {
        let calls = AtomicU32::new(0);
        let p = RetryPolicy {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(2),
            ..RetryPolicy::unary(3, false)
        };
        let r: Result<()> = p
            .run("X/Y", || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(tonic::Status::unavailable("down")) }
            })
            .await;
        assert_eq!(r.unwrap_err().code(), Some(Code::Unavailable));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        calls.store(0, Ordering::SeqCst);
        let r: Result<()> = p
            .run("X/Y", || {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err(tonic::Status::invalid_argument("bad")) }
            })
            .await;
        assert!(r.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
