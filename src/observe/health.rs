//! The state of every link this process runs, shared by the links (which report) and the HTTP
//! server and lag ticker (which read). One process-wide registry: a link registers when it starts.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Where a link stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting, reading its checkpoint.
    Starting,
    /// Reading a backlog: the source had more ready than one target transaction took.
    CatchingUp,
    /// Caught up with its source.
    Running,
    /// Interrupted by a transient error; restarting from its checkpoint.
    Restarting(String),
    /// Its target keeps refusing a transaction with a transient (or not yet known) error; retrying.
    Retrying(String),
    /// Stopped by a definite error; the message says what to do.
    Halted(String),
    /// Stopped on request.
    Stopped,
}

impl LinkState {
    pub fn name(&self) -> &'static str {
        match self {
            LinkState::Starting => "starting",
            LinkState::CatchingUp => "catching_up",
            LinkState::Running => "running",
            LinkState::Restarting(_) => "restarting",
            LinkState::Retrying(_) => "retrying",
            LinkState::Halted(_) => "halted",
            LinkState::Stopped => "stopped",
        }
    }

    /// Running or catching up: what `/health` calls healthy.
    pub fn is_up(&self) -> bool {
        matches!(self, LinkState::Running | LinkState::CatchingUp)
    }
}

/// What the registry knows of one link.
#[derive(Debug, Clone)]
pub struct LinkHealth {
    pub state: LinkState,
    /// Source commit time (µs since the epoch) of the last transaction committed on the target.
    pub last_commit_micros: Option<i64>,
    /// Commit-to-commit delay of the last applied transaction, in seconds.
    pub last_apply_lag: f64,
    /// When the target last committed for this link.
    pub last_applied_at: Option<Instant>,
    /// Row changes applied since the link registered (heartbeats excluded).
    pub changes_applied: u64,
    /// Tables whose changes are held by a schema change of the target, with the reason and fix.
    pub paused: BTreeMap<String, String>,
    /// Changes applied in each of the last [`WINDOW`] seconds, indexed by Unix second modulo the
    /// window; `window_second` is the latest second written.
    window: [u64; WINDOW],
    window_second: u64,
}

/// Seconds over which [`changes_per_second`] averages.
pub const WINDOW: usize = 60;

fn now_second() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LinkHealth {
    fn new() -> Self {
        LinkHealth {
            state: LinkState::Starting,
            last_commit_micros: None,
            last_apply_lag: 0.0,
            last_applied_at: None,
            changes_applied: 0,
            paused: BTreeMap::new(),
            window: [0; WINDOW],
            window_second: 0,
        }
    }

    /// Moves the window to `second`, clearing the seconds skipped since the last write.
    fn advance(&mut self, second: u64) {
        if second <= self.window_second {
            return;
        }
        let gap = (second - self.window_second).min(WINDOW as u64);
        for s in (second + 1 - gap)..=second {
            self.window[(s % WINDOW as u64) as usize] = 0;
        }
        self.window_second = second;
    }

    fn count(&mut self, changes: u64, second: u64) {
        self.advance(second);
        if second + (WINDOW as u64) > self.window_second {
            self.window[(second % WINDOW as u64) as usize] += changes;
        }
        self.changes_applied += changes;
    }
}

/// Changes applied per second, averaged over the last [`WINDOW`] seconds before `second`.
pub fn changes_per_second(h: &LinkHealth, second: u64) -> f64 {
    let mut w = h.clone();
    w.advance(second);
    w.window.iter().sum::<u64>() as f64 / WINDOW as f64
}

/// [`changes_per_second`] now.
pub fn throughput(h: &LinkHealth) -> f64 {
    changes_per_second(h, now_second())
}

fn registry() -> &'static Mutex<BTreeMap<String, LinkHealth>> {
    static REGISTRY: OnceLock<Mutex<BTreeMap<String, LinkHealth>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(BTreeMap::new()))
}

fn with<R>(f: impl FnOnce(&mut BTreeMap<String, LinkHealth>) -> R) -> R {
    // A panic while holding the lock leaves plain data behind; keep serving it.
    let mut guard = registry().lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

/// Sets a link's state, registering the link on first use; returns the previous state.
pub fn set_state(link: &str, state: LinkState) -> Option<LinkState> {
    with(|r| {
        let entry = r.entry(link.to_string()).or_insert_with(LinkHealth::new);
        let previous = entry.state.clone();
        entry.state = state;
        Some(previous)
    })
}

/// Marks `table` of `link` paused for `reason`, or resumed (`None`), registering the link.
pub fn set_paused(link: &str, table: &str, reason: Option<&str>) {
    with(|r| {
        let entry = r.entry(link.to_string()).or_insert_with(LinkHealth::new);
        match reason {
            Some(reason) => entry.paused.insert(table.to_string(), reason.to_string()),
            None => entry.paused.remove(table),
        };
    })
}

/// Records a target commit of `changes` row changes whose last source transaction committed at
/// `commit_micros`.
pub fn applied(link: &str, commit_micros: i64, lag_seconds: f64, changes: u64) {
    let second = now_second();
    with(|r| {
        if let Some(entry) = r.get_mut(link) {
            entry.last_commit_micros = Some(commit_micros);
            entry.last_apply_lag = lag_seconds;
            entry.last_applied_at = Some(Instant::now());
            entry.count(changes, second);
        }
    })
}

/// Every registered link, by name.
pub fn snapshot() -> BTreeMap<String, LinkHealth> {
    with(|r| r.clone())
}

/// The lag to report for a link now (see [`super::names::LAG_SECONDS`]).
pub fn lag_seconds(h: &LinkHealth, now_micros: i64) -> Option<f64> {
    if h.state == LinkState::Running {
        return Some(h.last_apply_lag);
    }
    h.last_commit_micros
        .map(|c| ((now_micros - c) as f64 / 1e6).max(0.0))
}

/// The `/health` answer: `Ok` with one line per link when every link is running or catching up
/// with no table paused, `Err` with the reasons otherwise.
pub fn verdict(links: &BTreeMap<String, LinkHealth>) -> Result<String, String> {
    let mut lines = String::new();
    let mut bad = String::new();
    for (name, h) in links {
        let line = match &h.state {
            LinkState::Halted(reason)
            | LinkState::Restarting(reason)
            | LinkState::Retrying(reason) => {
                format!("{name}: {}: {reason}\n", h.state.name())
            }
            other => format!("{name}: {}\n", other.name()),
        };
        let mut line = line;
        for (table, reason) in &h.paused {
            line.push_str(&format!("{name}: table {table} paused: {reason}\n"));
        }
        if h.state.is_up() && h.paused.is_empty() {
            lines.push_str(&line);
        } else {
            bad.push_str(&line);
        }
    }
    if links.is_empty() {
        return Err("no link is running\n".into());
    }
    if bad.is_empty() {
        Ok(lines)
    } else {
        Err(bad + &lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(state: LinkState) -> LinkHealth {
        LinkHealth {
            state,
            last_commit_micros: Some(1_000_000),
            last_apply_lag: 0.02,
            ..LinkHealth::new()
        }
    }

    #[test]
    fn throughput_averages_the_last_minute() {
        let mut h = LinkHealth::new();
        h.count(600, 1000);
        h.count(600, 1030);
        assert_eq!(changes_per_second(&h, 1030), 20.0);
        assert_eq!(changes_per_second(&h, 1059), 20.0);
        // The first second leaves the window; then the second.
        assert_eq!(changes_per_second(&h, 1060), 10.0);
        assert_eq!(changes_per_second(&h, 1090), 0.0);
        assert_eq!(changes_per_second(&h, 5000), 0.0);
        h.count(60, 5000);
        assert_eq!(changes_per_second(&h, 5000), 1.0);
        assert_eq!(h.changes_applied, 1260);
    }

    #[test]
    fn verdict_is_unhealthy_when_any_link_is_not_up() {
        let mut links = BTreeMap::new();
        links.insert("a_to_b".to_string(), health(LinkState::Running));
        links.insert("b_to_a".to_string(), health(LinkState::CatchingUp));
        assert!(verdict(&links).is_ok());
        links.insert(
            "c_to_a".to_string(),
            health(LinkState::Halted("table t: fix it".into())),
        );
        let reason = verdict(&links).unwrap_err();
        assert!(
            reason.starts_with("c_to_a: halted: table t: fix it"),
            "{reason}"
        );
        assert!(verdict(&BTreeMap::new()).is_err());
    }

    #[test]
    fn lag_is_the_apply_delay_when_running_and_grows_otherwise() {
        let running = health(LinkState::Running);
        assert_eq!(lag_seconds(&running, 9_000_000), Some(0.02));
        let halted = health(LinkState::Halted("x".into()));
        assert_eq!(lag_seconds(&halted, 9_000_000), Some(8.0));
        let mut fresh = health(LinkState::Starting);
        fresh.last_commit_micros = None;
        assert_eq!(lag_seconds(&fresh, 9_000_000), None);
    }
}
