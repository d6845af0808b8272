//! Small helpers with one home each: progress display, retry, rate limit.

pub mod progress;
pub mod retry;
