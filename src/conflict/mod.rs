//! Conflicts: what the per-row version check found, and which side wins.
//!
//! An applier reads the target's current row (locked) before it writes an update or delete whose version
//! check failed, or an insert whose key exists. It hands this module a [`Conflict`]: who wrote each side
//! and when ([`Stamp`]), and, column by column, which side changed the value since the common base.
//! [`resolve`] returns a [`Decision`]; the applier carries it out and writes the audit record (see
//! [`audit`]). Nothing here touches a database.
//!
//! ```text
//!  incoming change (before, after, versions) ─┐
//!                                             ├─> Conflict { kind, incoming: Stamp, current: Stamp,
//!  target row, locked (version, origin,       │             columns: [changed here? changed there?] }
//!  per column: same as before? as incoming?) ─┘        │ resolve(rule)
//!                                                      v
//!              Decision: apply incoming | keep current | merge columns | park | defer | skip
//! ```
//!
//! ## What "current" means, and how both nodes reach the same answer
//!
//! A conflict between a write on node A and a write on node B to the same row is detected twice: on A
//! (incoming = B's write, current = A's) and on B (incoming = A's, current = B's). Every rule must give
//! the same final row on both, so no decision may depend on which side is "ours":
//!
//! - **Time.** The managed version column (`_tandem_version`) is a hybrid clock: a local write sets it to
//!   `max(old + 1, now in microseconds)`, and the applier writes the *incoming* version unchanged. A
//!   version therefore both identifies a row state (the equality check of rule 4) and tells when it was
//!   written, on the node that wrote it, with no extra column. The current row's write time is its
//!   version; the incoming row's is the version in its after-image. An application version column
//!   (`lock_version`, `updated_at`) is compared the same way when it is numeric or a time; one that is
//!   neither leaves only the tie-break.
//! - **Tie-break.** Equal (or unknown) versions go to the higher node priority, then the greater node id.
//!   The node of each side is the row's origin marker (`_tandem_origin`), so both nodes compare the same
//!   pair of stamps, only in mirror order; [`Stamp::cmp_lww`] is antisymmetric.
//! - **Deletes.** A delete is stamped with the version of the row it removed, plus one: it comes
//!   right after the write it saw, and both nodes can compute that stamp from the delete's
//!   before-image. A delete leaves a *tombstone* (key, stamp and deleting node; written by a
//!   trigger for a local delete and by the applier for an applied one), so a change that arrives
//!   after the row is gone can still be weighed against it. An insert is a conflict
//!   (`insert_deleted`) only when it was concurrent with a delete here: its transaction shows which
//!   tombstones its node held (see `apply::link`), and an insert made after seeing every delete this
//!   node knows of is applied as it is. Under
//!   `last_write_wins` and `merge`: `delete_differs` deletes when the delete's stamp is later than
//!   the current row's version; `update_missing` and `insert_deleted` bring the row back unless the
//!   tombstone is later than the incoming version (equal stamps: the row stays). Without a tombstone
//!   (an application version column, or a row that never existed here) the update wins. Under
//!   `prefer` the preferred node's side wins; for an insert the deleting side is the delete its
//!   node had not seen (the concurrent one), not a later delete of its own that it had seen.
//! - **Merge.** The base is the incoming before-image, or, for an update that continues a run of
//!   the same node's changes to the key whose previous one was merged here, that merge's base (the
//!   last state both nodes held; kept with the merge's audit record): otherwise, once both nodes
//!   have moved a column to the same value, the rest of the other node's run would look one-sided
//!   here. A column changed on one side only takes that
//!   side's value; one changed on both falls back to the column's own rule or `merge_fallback`. The
//!   merged row gets the greater of the two versions and the origin of the last-write-wins winner, so
//!   both nodes end with the same values *and* the same version.
//!   A merge decided from two different bases (a sequence of writes on each side) can still
//!   differ between the nodes, so the *decider* of the pair (higher priority, else greater node id)
//!   announces its merged row: after the commit it rewrites the row as a local write, which
//!   replicates, and the other node takes it (its version check passes, or its own merge of a
//!   value-less rewrite keeps nothing of its own that the decider had not merged).
//!   A row kept over the other node's delete (`delete_differs`, kept) is announced by the node that
//!   kept it, decider or not, when a merge of a change from the deleting node since the row was
//!   last written changed its values: it holds columns merged from the updates that delete
//!   ended, which the deleting node never merges (it takes this row whole, over its own older
//!   delete). Only then: announcing every kept row multiplied rewrites crossing in flight, and with
//!   them divergent merges.
//! - **Manual.** Both nodes detect the conflict; only the *decider* (the `prefer` node, else the higher
//!   priority, else the greater node id) parks the incoming change in its review queue. The other node
//!   keeps its row and records a *deferral*: the next change to that key from the decider is applied
//!   without a version check, because the decider's resolution (or any later write of the decider) is
//!   what both nodes must end with.
//!
//! ## Known limits
//!
//! Tombstones are pruned by age (`[tandem] tombstone_retention`). `merge` takes as the common base
//! the incoming before-image or its run's first base, which is still not the true common ancestor
//! when both sides wrote runs that interleave; the decider's announcement (see
//! Merge above) is what makes both nodes end with the same row, so a merge between two nodes that
//! both outrank nobody (a mesh's lower nodes) relies on the top node's announcements reaching them.
//!
//! Error handling: none; the functions here are total.

pub mod audit;
mod resolve;

#[cfg(test)]
mod tests;

pub use resolve::{resolve, ColumnRules, Rules};

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// What the version check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConflictKind {
    /// An insert whose key already exists on the target.
    InsertExists,
    /// An update of a row the target does not have.
    UpdateMissing,
    /// An update whose before-image version differs from the target row's version.
    UpdateDiffers,
    /// A delete of a row the target does not have.
    DeleteMissing,
    /// A delete whose before-image version differs from the target row's version.
    DeleteDiffers,
    /// A change from a node that does not own the table or a changed column.
    NotOwner,
    /// An insert of a key deleted here by a delete the inserting node had not seen (tombstones say so).
    InsertDeleted,
}

impl ConflictKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictKind::InsertExists => "insert_exists",
            ConflictKind::UpdateMissing => "update_missing",
            ConflictKind::UpdateDiffers => "update_differs",
            ConflictKind::DeleteMissing => "delete_missing",
            ConflictKind::DeleteDiffers => "delete_differs",
            ConflictKind::NotOwner => "not_owner",
            ConflictKind::InsertDeleted => "insert_deleted",
        }
    }

    /// Whether the incoming change is a delete.
    pub fn incoming_is_delete(self) -> bool {
        matches!(
            self,
            ConflictKind::DeleteMissing | ConflictKind::DeleteDiffers
        )
    }

    /// Whether the target has no row for the key.
    pub fn current_missing(self) -> bool {
        matches!(
            self,
            ConflictKind::UpdateMissing | ConflictKind::DeleteMissing | ConflictKind::InsertDeleted
        )
    }
}

/// Who wrote one side of a conflict, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    /// The row version as an orderable number (managed version: microseconds; an application's
    /// `lock_version` or `updated_at` in microseconds); `None` when the version is unknown or not
    /// orderable.
    pub version: Option<i128>,
    /// The node whose write produced this side (the row's origin marker).
    pub node: String,
    /// That node's configured priority.
    pub priority: i32,
}

impl Stamp {
    /// Last-write-wins order: version, then priority, then node id. `Greater` means `self` wins.
    /// Antisymmetric, so two nodes comparing the same pair in mirror order agree.
    pub fn cmp_lww(&self, other: &Stamp) -> Ordering {
        self.version
            .cmp(&other.version)
            .then(self.priority.cmp(&other.priority))
            .then_with(|| self.node.cmp(&other.node))
    }
}

/// One column of the incoming row, as the conflict sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnState {
    /// Physical target column name.
    pub name: String,
    /// The incoming change altered this column (after differs from before, or no before known).
    pub changed_incoming: bool,
    /// The target's current value differs from the incoming before-image (changed here since the
    /// base), or the base is unknown.
    pub changed_current: bool,
    /// The target's current value differs from the incoming after-image.
    pub differs: bool,
}

/// Everything [`resolve`] needs to decide one conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub kind: ConflictKind,
    pub incoming: Stamp,
    /// `None` when the target has no row.
    pub current: Option<Stamp>,
    /// The incoming row's columns (empty for a delete).
    pub columns: Vec<ColumnState>,
    /// The incoming after-image can be written as a whole row (no column the source left unsent).
    pub incoming_complete: bool,
    /// When the target has no row: the stamp of the delete that removed it (its tombstone).
    pub deleted_at: Option<i128>,
    /// When the target has no row: the node whose delete removed it (its tombstone's node).
    pub deleted_by: Option<String>,
}

/// What to do with a conflicting incoming change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Write the incoming change as it is (an insert becomes an upsert; a delete deletes), with the
    /// incoming version and origin.
    ApplyIncoming,
    /// Leave the target row as it is.
    KeepCurrent,
    /// Write these incoming columns over the current row, and the given version and origin.
    Merge {
        take_incoming: Vec<String>,
        /// The merged row takes the incoming version (else keeps the current one): the greater of the two.
        version_from_incoming: bool,
        /// The origin marker of the merged row: the last-write-wins winner's node.
        origin: String,
        /// This node is the decider of the pair (higher priority, then greater node id): once the
        /// merge is committed it rewrites the merged row as a local write, which replicates, so the
        /// other node ends with exactly this row even where its own merge saw another base.
        announce: bool,
    },
    /// Hold the change in the review queue (`manual`, on the deciding node).
    Park,
    /// Keep the current row and let the deciding node's next change to the key through unchecked
    /// (`manual`, on the other node).
    Defer { decider: String },
}

impl Decision {
    /// Short name stored in the audit log.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::ApplyIncoming => "apply_incoming",
            Decision::KeepCurrent => "keep_current",
            Decision::Merge { .. } => "merge",
            Decision::Park => "park",
            Decision::Defer { .. } => "defer",
        }
    }
}
