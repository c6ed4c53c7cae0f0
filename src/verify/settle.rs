//! Live writes: a difference seen in a pass may be a change still travelling. Before keys are
//! re-read, every streaming link between the nodes compared must have applied what its source had
//! committed when the pass ended.
//!
//! ```text
//!  status of every link ─ mark = end of the source's log now (PostgreSQL WAL insert position,
//!                          MariaDB GTID position or binlog file and offset)
//!  one heartbeat write on each source, so a quiet source's links commit a checkpoint past the mark
//!  poll: mark within the link's checkpoint on its target (`<schema>.checkpoint`)?  until all, or timeout
//! ```
//!
//! A link that is not streaming (no `tandem run` reading it) is not waited for: nothing it holds
//! will arrive. Both cases are reported, so the operator knows which differences may still be in
//! flight.
//!
//! Error handling: a node that cannot be asked leaves its links unconfirmed (reported as lagging);
//! a failed heartbeat write is logged and the wait goes on (a busy source moves its links anyway).

use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::config::Config;
use crate::model::Position;
use crate::observe::probe::{status, LinkStatus};

/// How the wait for in-flight changes ended.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Settled {
    /// Seconds waited.
    pub waited_seconds: f64,
    /// Links that had not applied up to their mark when the wait ended.
    pub lagging: Vec<String>,
    /// Links no process was streaming, not waited for.
    pub not_streaming: Vec<String>,
}

impl Settled {
    pub fn complete(&self) -> bool {
        self.lagging.is_empty() && self.not_streaming.is_empty()
    }
}

fn between(l: &LinkStatus, nodes: &[String]) -> bool {
    nodes.contains(&l.source) && nodes.contains(&l.target)
}

fn position(text: Option<&str>) -> Option<Position> {
    text.and_then(|p| p.parse().ok())
}

/// Waits until every streaming link between `nodes` has applied what its source held now, or
/// `timeout` (see the module doc).
pub async fn wait(config: &Config, nodes: &[String], timeout: Duration) -> Settled {
    wait_links(config, |l| between(l, nodes), timeout).await
}

/// Waits until every streaming link that `pick` chooses has applied what its source held now, or
/// `timeout` (`tandem cutover`: the links into the node the applications move to).
pub async fn wait_links(
    config: &Config,
    pick: impl Fn(&LinkStatus) -> bool,
    timeout: Duration,
) -> Settled {
    let started = Instant::now();
    let now: Vec<LinkStatus> = status(config, None)
        .await
        .into_iter()
        .filter(|l| pick(l))
        .collect();
    let mut settled = Settled::default();
    let mut marks: Vec<(String, Position)> = Vec::new();
    for l in &now {
        if l.state != "streaming" {
            settled.not_streaming.push(l.link.clone());
            continue;
        }
        match position(l.source_position.as_deref()) {
            Some(p) => marks.push((l.link.clone(), p)),
            None => settled.lagging.push(l.link.clone()),
        }
    }
    let sources: std::collections::BTreeSet<&String> = now
        .iter()
        .filter(|l| marks.iter().any(|(m, _)| *m == l.link))
        .map(|l| &l.source)
        .collect();
    for s in sources {
        if let Some(node) = config.node(s) {
            if let Err(e) = crate::observe::heartbeat::beat_once(config, node).await {
                warn!(node = %s, error = %crate::config::scrub(&e, &node.url), "verify could not write a heartbeat; a quiet source's links may not confirm the mark");
            }
        }
    }
    while !marks.is_empty() && started.elapsed() < timeout {
        let now = status(config, None).await;
        marks.retain(|(link, mark)| {
            let confirmed = now
                .iter()
                .find(|l| l.link == *link)
                .and_then(|l| position(l.confirmed_position.as_deref()));
            !confirmed.is_some_and(|c| mark.is_within(&c))
        });
        if !marks.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    settled.lagging.extend(marks.into_iter().map(|(l, _)| l));
    settled.waited_seconds = started.elapsed().as_secs_f64();
    info!(
        waited_ms = started.elapsed().as_millis() as u64,
        lagging = settled.lagging.len(),
        not_streaming = settled.not_streaming.len(),
        "waited for the links to apply what their sources held"
    );
    settled
}
