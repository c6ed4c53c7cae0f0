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
        let entry = r.entry(link.to_string()).or_insert_with(|| LinkHealth {
            state: LinkState::Starting,
            last_commit_micros: None,
            last_apply_lag: 0.0,
            last_applied_at: None,
        });
        let previous = entry.state.clone();
        entry.state = state;
        Some(previous)
    })
}

/// Records a target commit whose last source transaction committed at `commit_micros`.
pub fn applied(link: &str, commit_micros: i64, lag_seconds: f64) {
    with(|r| {
        if let Some(entry) = r.get_mut(link) {
            entry.last_commit_micros = Some(commit_micros);
            entry.last_apply_lag = lag_seconds;
            entry.last_applied_at = Some(Instant::now());
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

/// The `/health` answer: `Ok` with one line per link when every link is running or catching up,
/// `Err` with the reasons otherwise.
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
        if h.state.is_up() {
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
            last_applied_at: None,
        }
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
