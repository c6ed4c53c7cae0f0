//! Small recording helpers the pipeline calls: one call per event, the metric names and labels in
//! one place. Without `[metrics]` no recorder is installed and every call costs next to nothing.

use std::time::Duration;

use metrics::{counter, gauge, histogram};
use tracing::{debug, info};

use super::health::{self, LinkState};
use super::names::*;
use crate::capture::SourceStats;
use crate::config::Config;
use crate::model::{ChangeKind, ChangeSet, Transaction};

/// The business table of the tandem heartbeat: a transaction touching only it is progress, not data.
pub const HEARTBEAT_TABLE: &str = "heartbeat";

/// The row changes of `tx` outside tandem's bookkeeping schema (its tombstone and checkpoint writes
/// travel with the data but are not data). A spilled transaction counts every change.
pub fn data_changes(tx: &Transaction, schema: &str) -> u64 {
    match &tx.changes {
        ChangeSet::Memory(changes) => changes
            .iter()
            .filter(|c| c.kind(schema) == ChangeKind::Data)
            .count() as u64,
        ChangeSet::Spilled(_) => tx.changes.len() as u64,
    }
}

/// Whether `tx` is a tandem heartbeat (every change is a write of `<schema>.heartbeat`).
pub fn is_heartbeat(tx: &Transaction, schema: &str) -> bool {
    match &tx.changes {
        ChangeSet::Memory(changes) => {
            !changes.is_empty()
                && changes
                    .iter()
                    .all(|c| c.kind(schema) == ChangeKind::Heartbeat)
        }
        ChangeSet::Spilled(_) => false,
    }
}

/// The meter of one link: counts what the link reads and applies, and reports its state.
#[derive(Debug)]
pub struct LinkMeter {
    link: String,
    schema: String,
    seen: SourceStats,
}

impl LinkMeter {
    /// Registers the link (state `starting`) and its counters at zero, so that a rate or an alert
    /// on them works before the first event.
    pub fn new(config: &Config, source: &str, target: &str) -> LinkMeter {
        let link = crate::capture::link_name(source, target);
        health::set_state(&link, LinkState::Starting);
        gauge!(LINK_UP, "link" => link.clone()).set(0.0);
        for name in [
            TRANSACTIONS_CAPTURED,
            CHANGES_CAPTURED,
            TRANSACTIONS_APPLIED,
            CHANGES_APPLIED,
            ECHOES_SKIPPED,
            HEARTBEATS,
            SOURCE_READ_BYTES,
            RECONNECTS,
            SPILLED_TRANSACTIONS,
        ] {
            counter!(name, "link" => link.clone()).absolute(0);
        }
        for stage in ["apply", "link"] {
            counter!(RETRIES, "link" => link.clone(), "stage" => stage).absolute(0);
        }
        for table in &config.tables {
            counter!(DEAD_LETTERS, "link" => link.clone(), "table" => table.name.clone())
                .absolute(0);
        }
        gauge!(QUEUE_TRANSACTIONS, "link" => link.clone()).set(0.0);
        gauge!(SPILL_BYTES, "link" => link.clone()).set(0.0);
        LinkMeter {
            link,
            schema: config.settings.schema.clone(),
            seen: SourceStats::default(),
        }
    }

    pub fn link(&self) -> &str {
        &self.link
    }

    /// A new source stream was opened: its totals start again from zero.
    pub fn stream_opened(&mut self) {
        self.seen = SourceStats::default();
    }

    /// Takes the stream's running totals and records what changed since the last call.
    pub fn source(&mut self, now: SourceStats) {
        let bytes = now.bytes_read.saturating_sub(self.seen.bytes_read);
        if bytes > 0 {
            counter!(SOURCE_READ_BYTES, "link" => self.link.clone()).increment(bytes);
        }
        let reconnects = now.reconnects.saturating_sub(self.seen.reconnects);
        if reconnects > 0 {
            counter!(RECONNECTS, "link" => self.link.clone()).increment(reconnects);
            info!(link = %self.link, reconnects = now.reconnects, "link reconnected to its source");
        }
        self.seen = now;
    }

    /// A transaction read from the source; returns whether it is a heartbeat.
    pub fn captured(&self, tx: &Transaction) -> bool {
        let link = self.link.clone();
        counter!(TRANSACTIONS_CAPTURED, "link" => link.clone()).increment(1);
        if matches!(tx.changes, ChangeSet::Spilled(_)) {
            counter!(SPILLED_TRANSACTIONS, "link" => link.clone()).increment(1);
        }
        let heartbeat = is_heartbeat(tx, &self.schema);
        if heartbeat {
            counter!(HEARTBEATS, "link" => link).increment(1);
        } else {
            counter!(CHANGES_CAPTURED, "link" => link).increment(data_changes(tx, &self.schema));
        }
        heartbeat
    }

    /// A transaction the loop guard dropped.
    pub fn echo(&self) {
        counter!(ECHOES_SKIPPED, "link" => self.link.clone()).increment(1);
    }

    /// The group about to be applied (held in memory, or in spill files).
    pub fn queued(&self, group: &[Transaction]) {
        let spill: u64 = group
            .iter()
            .filter_map(|t| match &t.changes {
                ChangeSet::Spilled(s) => std::fs::metadata(s.path()).ok().map(|m| m.len()),
                ChangeSet::Memory(_) => None,
            })
            .sum();
        gauge!(QUEUE_TRANSACTIONS, "link" => self.link.clone()).set(group.len() as f64);
        gauge!(SPILL_BYTES, "link" => self.link.clone()).set(spill as f64);
    }

    /// The group was committed on the target after `elapsed`; `more` says whether the source had more
    /// ready (catching up) or not (caught up).
    pub fn applied(&self, group: &[Transaction], elapsed: Duration, more: bool) {
        let link = self.link.clone();
        gauge!(QUEUE_TRANSACTIONS, "link" => link.clone()).set(0.0);
        gauge!(SPILL_BYTES, "link" => link.clone()).set(0.0);
        histogram!(APPLY_DURATION, "link" => link.clone()).record(elapsed.as_secs_f64());
        let data: Vec<&Transaction> = group
            .iter()
            .filter(|t| !is_heartbeat(t, &self.schema))
            .collect();
        counter!(TRANSACTIONS_APPLIED, "link" => link.clone()).increment(data.len() as u64);
        let changes: u64 = data.iter().map(|t| data_changes(t, &self.schema)).sum();
        counter!(CHANGES_APPLIED, "link" => link.clone()).increment(changes);
        let now = super::now_micros();
        gauge!(LAST_APPLIED, "link" => link).set(now as f64 / 1e6);
        if let Some(last) = group.last() {
            let lag = ((now - last.commit_time) as f64 / 1e6).max(0.0);
            health::applied(&self.link, last.commit_time, lag, changes);
        }
        self.progress(!more);
    }

    /// The source said it has nothing more for now (a keepalive or an unmapped transaction).
    pub fn idle(&self) {
        self.progress(true);
    }

    fn progress(&self, caught_up: bool) {
        let state = if caught_up {
            LinkState::Running
        } else {
            LinkState::CatchingUp
        };
        let previous = health::set_state(&self.link, state.clone());
        if previous.as_ref() != Some(&state) {
            gauge!(LINK_UP, "link" => self.link.clone()).set(1.0);
            match state {
                LinkState::Running => info!(link = %self.link, "link caught up"),
                _ => info!(link = %self.link, "link catching up"),
            }
        }
    }

    /// The link restarts from its checkpoint after a transient error.
    pub fn restarting(&self, reason: &str) {
        counter!(RETRIES, "link" => self.link.clone(), "stage" => "link").increment(1);
        gauge!(LINK_UP, "link" => self.link.clone()).set(0.0);
        health::set_state(&self.link, LinkState::Restarting(reason.to_string()));
    }

    /// The link halted with a definite error.
    pub fn halted(&self, reason: &str) {
        gauge!(LINK_UP, "link" => self.link.clone()).set(0.0);
        health::set_state(&self.link, LinkState::Halted(reason.to_string()));
    }

    /// The link stopped on request.
    pub fn stopped(&self) {
        gauge!(LINK_UP, "link" => self.link.clone()).set(0.0);
        health::set_state(&self.link, LinkState::Stopped);
    }
}

/// A conflict was decided on the link `source -> target`. Logged here, once: the key's values only
/// at debug level (DESIGN rule 9), a reference to it (`key_ref`) above.
pub fn conflict(source: &str, target: &str, table: &str, key: &str, kind: &str, decision: &str) {
    let link = crate::capture::link_name(source, target);
    let key_ref = crate::model::digest::key_ref(key);
    info!(link = %link, table = %table, key_ref = %key_ref, kind = %kind, decision = %decision, "conflict decided");
    debug!(link = %link, table = %table, key_ref = %key_ref, key = %key, "conflict key");
    counter!(CONFLICTS, "link" => link, "table" => table.to_string(), "kind" => kind.to_string(), "decision" => decision.to_string())
        .increment(1);
}

/// A replicated truncate of `table` was decided (`applied` or `ignored`): counted with the conflicts
/// (kind `truncate`); the applier logs it itself.
pub fn truncate(source: &str, target: &str, table: &str, decision: &str) {
    let link = crate::capture::link_name(source, target);
    counter!(CONFLICTS, "link" => link, "table" => table.to_string(), "kind" => "truncate", "decision" => decision.to_string())
        .increment(1);
}

/// A transaction of the link `source -> target` went to the dead-letter table.
pub fn dead_letter(source: &str, target: &str, table: &str) {
    let link = crate::capture::link_name(source, target);
    counter!(DEAD_LETTERS, "link" => link, "table" => table.to_string()).increment(1);
}

/// A table of the link `source -> target` was paused by a schema change of the target (`reason`
/// says which column or table and the fix), or resumed (`None`): the gauge and `/health`.
pub fn table_paused(source: &str, target: &str, table: &str, reason: Option<&str>) {
    let link = crate::capture::link_name(source, target);
    gauge!(TABLE_PAUSED, "link" => link.clone(), "table" => table.to_string())
        .set(if reason.is_some() { 1.0 } else { 0.0 });
    health::set_paused(&link, table, reason);
}

/// `columns` columns of the table's changes stay on the source of `source -> target`.
pub fn columns_home(source: &str, target: &str, table: &str, columns: usize) {
    let link = crate::capture::link_name(source, target);
    gauge!(COLUMNS_NOT_SYNCED, "link" => link, "table" => table.to_string()).set(columns as f64);
}

/// A target transaction of the link `source -> target` is retried after a transient error; `reason`
/// (an error without row values) is what `/health` shows until the link applies again.
pub fn apply_retry(source: &str, target: &str, reason: &str) {
    let link = crate::capture::link_name(source, target);
    counter!(RETRIES, "link" => link.clone(), "stage" => "apply").increment(1);
    gauge!(LINK_UP, "link" => link.clone()).set(0.0);
    health::set_state(&link, LinkState::Retrying(reason.to_string()));
}
