//! The companion's one retry helper: exponential backoff with jitter (via `backon`) around any async operation, with the caller deciding per error whether and when to retry.

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};

/// How often and how patiently to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = try once).
    pub retries: u32,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Upper bound for a server-requested wait (`Retry-After`), so a bogus
    /// header cannot stall a run for hours.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 4, min_delay: Duration::from_millis(250), max_delay: Duration::from_secs(10), max_retry_after: Duration::from_secs(60) }
    }
}

impl RetryPolicy {
    pub fn with_retries(retries: u32) -> Self {
        RetryPolicy { retries, ..RetryPolicy::default() }
    }
}

/// What to do after an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Permanent: return the error now.
    Fail,
    /// Transient: retry after the backoff delay.
    Retry,
    /// Transient, and the server said how long to wait.
    RetryAfter(Duration),
}

/// The last result and how many retries it took.
#[derive(Debug)]
pub struct Retried<T, E> {
    pub result: Result<T, E>,
    pub retries: u32,
}

/// Runs `f` until it succeeds, `classify` says [`Verdict::Fail`], or
/// `policy.retries` retries are spent.
pub async fn retry<T, E, F, Fut>(policy: &RetryPolicy, classify: impl Fn(&E) -> Verdict, f: F) -> Retried<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(usize::try_from(policy.retries).unwrap_or(usize::MAX))
        .with_jitter();
    let mut retries = 0u32;
    let result = f
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|e| classify(e) != Verdict::Fail)
        // `delay` is None once the backoff is spent: a Retry-After never extends the budget.
        .adjust(|e, delay| match (classify(e), delay) {
            (Verdict::RetryAfter(d), Some(_)) => Some(d.min(policy.max_retry_after)),
            (_, delay) => delay,
        })
        .notify(|_, _| retries += 1)
        .await;
    Retried { result, retries }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn quick(retries: u32) -> RetryPolicy {
        RetryPolicy { retries, min_delay: Duration::from_millis(1), max_delay: Duration::from_millis(2), max_retry_after: Duration::from_millis(5) }
    }

    #[tokio::test]
    async fn retries_transient_errors_until_success() {
        let calls = Cell::new(0);
        let r = retry(
            &quick(4),
            |_: &&str| Verdict::Retry,
            || async {
                calls.set(calls.get() + 1);
                if calls.get() < 3 {
                    Err("flaky")
                } else {
                    Ok(calls.get())
                }
            },
        )
        .await;
        assert_eq!((r.result, r.retries), (Ok(3), 2));
    }

    #[tokio::test]
    async fn stops_at_the_budget_and_on_permanent_errors() {
        let calls = Cell::new(0);
        let r: Retried<(), _> = retry(
            &quick(2),
            |_: &&str| Verdict::Retry,
            || async {
                calls.set(calls.get() + 1);
                Err("down")
            },
        )
        .await;
        assert_eq!((r.result, r.retries, calls.get()), (Err("down"), 2, 3));

        calls.set(0);
        let r: Retried<(), _> = retry(
            &quick(5),
            |_: &&str| Verdict::Fail,
            || async {
                calls.set(calls.get() + 1);
                Err("bad request")
            },
        )
        .await;
        assert_eq!((r.retries, calls.get()), (0, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured_but_capped() {
        let start = tokio::time::Instant::now();
        let calls = Cell::new(0);
        let policy = RetryPolicy { max_retry_after: Duration::from_secs(3), ..quick(3) };
        let r = retry(
            &policy,
            |_: &&str| Verdict::RetryAfter(Duration::from_secs(100)),
            || async {
                calls.set(calls.get() + 1);
                if calls.get() < 2 {
                    Err("429")
                } else {
                    Ok(())
                }
            },
        )
        .await;
        assert_eq!((r.result, r.retries), (Ok(()), 1));
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }
}
