//! Copy progress for the log: rows done, rows per second, and the time left against the planner's
//! estimate of the table's size. Pure; the caller logs what it returns.

use std::time::{Duration, Instant};

/// How often a progress line is due while a table copies.
const EVERY: Duration = Duration::from_secs(2);

/// One progress report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub done: u64,
    pub estimate: Option<u64>,
    pub rate: f64,
    /// Seconds left at the current rate; `None` without an estimate or a rate.
    pub eta_secs: Option<u64>,
}

pub struct Meter {
    started: Instant,
    last: Option<Instant>,
    /// Rows done before this run (a resumed copy), not counted in the rate.
    base: u64,
    done: u64,
    estimate: Option<u64>,
}

impl Meter {
    pub fn new(done: i64, estimate: Option<u64>) -> Meter {
        let done = u64::try_from(done).unwrap_or(0);
        Meter {
            started: Instant::now(),
            last: None,
            base: done,
            done,
            estimate,
        }
    }

    /// Counts `rows` more; returns a report when one is due (every few seconds, and at the end).
    pub fn record(&mut self, rows: u64, finished: bool) -> Option<Report> {
        self.done += rows;
        let now = Instant::now();
        let due = finished || self.last.is_none_or(|l| now.duration_since(l) >= EVERY);
        if !due {
            return None;
        }
        self.last = Some(now);
        Some(report(
            self.done,
            self.done - self.base,
            now.duration_since(self.started),
            self.estimate,
        ))
    }
}

/// The report for `done` rows, `this_run` of them in `elapsed`.
pub fn report(done: u64, this_run: u64, elapsed: Duration, estimate: Option<u64>) -> Report {
    let secs = elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        this_run as f64 / secs
    } else {
        0.0
    };
    // The estimate is the planner's; a table that grew past it has "unknown" left, not negative.
    let eta_secs = match estimate {
        Some(total) if rate > 0.0 && total > done => Some(((total - done) as f64 / rate) as u64),
        Some(_) if rate > 0.0 => Some(0),
        _ => None,
    };
    Report {
        done,
        estimate,
        rate,
        eta_secs,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_time_left() {
        let r = report(1_500, 1_000, Duration::from_secs(10), Some(2_500));
        assert_eq!(r.rate, 100.0);
        assert_eq!(r.eta_secs, Some(10));
        let r = report(3_000, 3_000, Duration::from_secs(10), Some(2_500));
        assert_eq!(r.eta_secs, Some(0));
        assert_eq!(report(10, 10, Duration::ZERO, Some(20)).eta_secs, None);
        assert_eq!(report(10, 10, Duration::from_secs(1), None).eta_secs, None);
    }

    #[test]
    fn reports_first_and_last_batch() {
        let mut m = Meter::new(0, Some(10));
        assert!(m.record(5, false).is_some());
        assert!(m.record(1, false).is_none());
        let last = m.record(4, true).expect("the last batch reports");
        assert_eq!(last.done, 10);
    }
}
