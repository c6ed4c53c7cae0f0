//! Operator actions on a link: resolving a parked conflict (and releasing the changes that waited
//! behind it) and replaying a dead letter. Each runs in its own target transaction.
//!
//! Error handling: a failed resolution or replay rolls back and leaves the entry as it was (a failed
//! replay records the new error and one more attempt); the error names what to do.

use super::error::ApplyError;
use super::link::Link;
use super::row::RowChange;
use super::target::{Target, Write};
use super::{Applier, DeadLetter, Resolution, Signature};
use crate::config::Config;
use crate::conflict::audit::{ConflictState, StoredConflict};
use crate::model::{Field, Value};

/// `TakeIncoming` is written with the incoming row's own version and origin (as if it had won), so
/// that the changes that waited behind it (based on that version) apply cleanly; it still replicates,
/// without the engine's replication mark, so that the source node, which deferred to this one, sees
/// the decision and closes its deferral (it holds that row already: see `Link::apply_row`).
/// `KeepCurrent` and `Values` are local writes, stamped by the triggers, so that the other node takes
/// them.
pub(super) async fn resolve_on<T: Target>(
    l: &mut Link<T>,
    id: i64,
    resolution: &Resolution,
    signature: &Signature,
) -> Result<(), ApplyError> {
    match resolution {
        Resolution::TakeIncoming => l.t.set_replicating().await?,
        _ => l.t.set_applying(false).await?,
    }
    let done = in_transaction_reviving!(l, async |l| resolve_write(l, id, resolution, signature)
        .await);
    l.t.set_applying(true).await?;
    let (table, key) = done?;
    release_waiting(l, &table, &key).await
}

/// The resolution's write; returns the entry's (target table, key).
async fn resolve_write<T: Target>(
    l: &mut Link<T>,
    id: i64,
    resolution: &Resolution,
    signature: &Signature,
) -> Result<(String, String), ApplyError> {
    let entry =
        l.t.get_conflict(id)
            .await?
            .ok_or_else(|| ApplyError::Invalid(format!("no conflict with id {id}")))?;
    if entry.record.state != ConflictState::Parked {
        return Err(ApplyError::Invalid(format!(
            "conflict {id} is {}, not parked; only parked conflicts are resolved",
            entry.record.state.as_str()
        )));
    }
    let row: RowChange = entry
        .record
        .payload
        .as_deref()
        .and_then(|p| serde_json::from_str(p).ok())
        .ok_or_else(|| ApplyError::Invalid(format!("conflict {id} holds no readable change")))?;
    let mapper = l.mapper.clone();
    let plan = mapper
        .plans()
        .find(|p| p.target.to_string() == entry.record.target_table)
        .ok_or_else(|| {
            ApplyError::Invalid(format!(
                "table {} is not mapped on this link",
                entry.record.target_table
            ))
        })?;
    let info = l.t.table(&plan.target).await?;
    match resolution {
        Resolution::TakeIncoming => l.force(plan, &info, &row).await?,
        Resolution::KeepCurrent => {
            // Rewrite the row as it is, so that the triggers stamp it and it replicates.
            let touch = Write {
                key: row.key.clone(),
                set: row.key.clone(),
            };
            l.t.update(&info, &touch, &row.version_column, None).await?;
        }
        Resolution::Values(values) => {
            let set: Vec<Field> = values
                .iter()
                .map(|(k, v)| Field {
                    name: k.as_str().into(),
                    value: v.clone().map_or(Value::Null, Value::Text),
                })
                .collect();
            let mut w = Write {
                key: row.key.clone(),
                set,
            };
            if l.t.update(&info, &w, &row.version_column, None).await? == 0 {
                w.set.extend(row.key.iter().cloned());
                l.t.insert(&info, &w).await?;
            }
        }
    }
    l.t.set_conflict_state(id, ConflictState::Resolved, Some(resolution.name()))
        .await?;
    l.t.annotate_conflict(id, &signature.by, &signature.note)
        .await?;
    Ok((entry.record.target_table, entry.record.key))
}

/// Applies the changes that waited behind a resolved key, in order, until one parks again.
async fn release_waiting<T: Target>(
    l: &mut Link<T>,
    table: &str,
    key: &str,
) -> Result<(), ApplyError> {
    in_transaction_reviving!(l, async |l| {
        loop {
            let entries = l.t.open_entries(table, key).await?;
            if entries.iter().any(|e| e.state == ConflictState::Parked) {
                break;
            }
            let Some(next) = entries
                .into_iter()
                .find(|e| e.state == ConflictState::Waiting)
            else {
                break;
            };
            l.t.set_conflict_state(next.id, ConflictState::Resolved, Some("released"))
                .await?;
            l.apply_stored(table, next.payload.as_deref().unwrap_or_default(), None)
                .await?;
        }
        let source = l.ctx.source.clone();
        l.t.touch_checkpoint(&source).await
    })
}

/// Any link into `node`, for the actions that read only the node's bookkeeping tables.
async fn any_link(config: &Config, node: &str) -> Result<Applier, ApplyError> {
    let peer = config
        .nodes
        .keys()
        .find(|id| *id != node)
        .ok_or_else(|| ApplyError::Invalid(format!("node {node} has no peer in the file")))?;
    Applier::connect(config, peer, node).await
}

/// `tandem conflicts list`: conflict records on `node`, newest first (`open_only`: parked, waiting
/// and deferred entries only).
pub async fn list_conflicts(
    config: &Config,
    node: &str,
    open_only: bool,
    limit: i64,
) -> Result<Vec<StoredConflict>, ApplyError> {
    any_link(config, node)
        .await?
        .list_conflicts(open_only, limit)
        .await
}

/// `tandem conflicts show`.
pub async fn show_conflict(
    config: &Config,
    node: &str,
    id: i64,
) -> Result<Option<StoredConflict>, ApplyError> {
    any_link(config, node).await?.show_conflict(id).await
}

/// `tandem conflicts resolve` (and the console's resolve): resolves parked conflict `id` on `node`,
/// on the link it came from, recording `signature` in its audit record.
pub async fn resolve_conflict(
    config: &Config,
    node: &str,
    id: i64,
    resolution: &Resolution,
    signature: &Signature,
) -> Result<(), ApplyError> {
    let entry = show_conflict(config, node, id)
        .await?
        .ok_or_else(|| ApplyError::Invalid(format!("no conflict with id {id} on node {node}")))?;
    let mut link = Applier::connect(config, &entry.record.source_node, node).await?;
    link.resolve_conflict(id, resolution, signature).await
}

/// `tandem dead-letter list`.
pub async fn list_dead_letters(
    config: &Config,
    node: &str,
    open_only: bool,
) -> Result<Vec<DeadLetter>, ApplyError> {
    any_link(config, node)
        .await?
        .list_dead_letters(open_only)
        .await
}

/// A failed [`replay_dead_letter`]: the error, and whether the replay got as far as the entry.
#[derive(Debug)]
pub struct ReplayFailure {
    pub error: ApplyError,
    /// The replay ran on the entry: a definite error is then recorded on it.
    reached: bool,
    /// Recording a definite error on the entry failed too: why (the entry is as it was).
    unrecorded: Option<String>,
}

impl ReplayFailure {
    /// What the failure left of the entry, for the operator: a definite error met by the replay is
    /// recorded on it (it stays open with that error, one attempt more) unless recording it failed
    /// too; a transient one (the node unreachable, a lock wait, a deadlock) changed nothing, and
    /// the replay can simply be run again; a definite one before the replay ran (a refused
    /// password, a TLS setting) changed nothing either, and needs its fix first. `None` when there
    /// is no such entry.
    pub fn left(&self) -> Option<String> {
        let left = match &self.error {
            ApplyError::Invalid(m) if m.starts_with("no dead letter") => return None,
            e if e.is_transient() => {
                "the entry is as it was (the error is transient: replay it again)"
            }
            _ if !self.reached => {
                "the entry is as it was (nothing was replayed: fix this, then replay it)"
            }
            _ => match &self.unrecorded {
                Some(why) => {
                    return Some(format!(
                        "the entry is as it was (recording this error on it failed: {why})"
                    ))
                }
                None => "the entry stays open with this error",
            },
        };
        Some(left.to_string())
    }
}

impl std::fmt::Display for ReplayFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

/// `tandem dead-letter replay`: applies dead letter `id` on `node` again, on the link it came from.
pub async fn replay_dead_letter(config: &Config, node: &str, id: i64) -> Result<(), ReplayFailure> {
    let before = |error| ReplayFailure {
        error,
        reached: false,
        unrecorded: None,
    };
    let letters = list_dead_letters(config, node, false)
        .await
        .map_err(before)?;
    let letter = letters.iter().find(|d| d.id == id).ok_or_else(|| {
        before(ApplyError::Invalid(format!(
            "no dead letter with id {id} on node {node}"
        )))
    })?;
    let mut link = Applier::connect(config, &letter.source_node, node)
        .await
        .map_err(before)?;
    link.replay_noting(id)
        .await
        .map_err(|(error, unrecorded)| ReplayFailure {
            error,
            reached: true,
            unrecorded: unrecorded.as_ref().map(super::error::with_cause),
        })
}

#[cfg(test)]
mod replay_tests {
    use super::*;

    #[test]
    fn a_failed_replay_says_what_it_left_of_the_entry() {
        let failed = |error, reached| {
            ReplayFailure {
                error,
                reached,
                unrecorded: None,
            }
            .left()
        };
        let refused = || ApplyError::Invalid("value too long for column name".into());
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            failed(refused(), true),
            some("the entry stays open with this error")
        );
        assert_eq!(
            failed(refused(), false),
            some("the entry is as it was (nothing was replayed: fix this, then replay it)")
        );
        let unrecorded = ReplayFailure {
            error: refused(),
            reached: true,
            unrecorded: Some("permission denied for table dead_letter".into()),
        };
        assert_eq!(
            unrecorded.left(),
            some("the entry is as it was (recording this error on it failed: permission denied for table dead_letter)")
        );
        let unreachable = || ApplyError::ReviveDue("the trigger is made after the rollback".into());
        for reached in [true, false] {
            assert_eq!(
                failed(unreachable(), reached),
                some("the entry is as it was (the error is transient: replay it again)")
            );
        }
        let none = ApplyError::Invalid("no dead letter with id 7 on node b".into());
        assert_eq!(failed(none, false), None);
    }
}
