//! Exponential backoff, the one used by every retry loop: the capture streams' reconnects
//! (`capture::postgres::stream`, `capture::mysql::stream`), the apply retry (`apply::apply_retrying`)
//! and the link restart (`run::run_link`).
//!
//! ```text
//!  transient failure -> next_delay() -> sleep -> try again
//!                       min the first time, doubled after each failure, never above max
//!  success           -> reset()      -> the next failure waits min again
//! ```
//!
//! The type only does the arithmetic; each loop sleeps itself, because each waits differently (the
//! link restart also wakes up on stop). There is no jitter: every loop is one per link, retrying its
//! own connection, so there is no herd of clients to spread out.

use std::time::Duration;

/// Delays that double from `min` to `max`, and the count of failures since the last success.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
    attempts: u32,
}

impl Backoff {
    /// Starts at `min` and doubles up to `max` (a `min` above `max` is taken as `max`).
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let min = min.min(max);
        Backoff {
            min,
            max,
            next: min,
            attempts: 0,
        }
    }

    /// Counts one more failure and says how long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        self.attempts = self.attempts.saturating_add(1);
        delay
    }

    /// Failures since the last [`reset`](Backoff::reset) (or since the start).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// After a success: the next failure waits `min` again.
    pub fn reset(&mut self) {
        self.next = self.min;
        self.attempts = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_min_up_to_max() {
        let mut b = Backoff::new(ms(200), Duration::from_secs(10));
        let delays: Vec<u64> = (0..9).map(|_| b.next_delay().as_millis() as u64).collect();
        assert_eq!(
            delays,
            [200, 400, 800, 1_600, 3_200, 6_400, 10_000, 10_000, 10_000]
        );
        assert_eq!(b.attempts(), 9);
    }

    #[test]
    fn reset_starts_again_from_min() {
        let mut b = Backoff::new(ms(100), Duration::from_secs(30));
        for _ in 0..5 {
            b.next_delay();
        }
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(), ms(100));
        assert_eq!(b.next_delay(), ms(200));
        assert_eq!(b.attempts(), 2);
    }

    #[test]
    fn never_overflows_and_never_exceeds_max() {
        let mut b = Backoff::new(ms(1), Duration::MAX);
        for _ in 0..200 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), Duration::MAX);
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(1));
        assert_eq!(b.next_delay(), Duration::from_secs(1));
        assert_eq!(b.next_delay(), Duration::from_secs(1));
    }
}
