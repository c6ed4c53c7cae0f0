//! The resolution rules. Pure: a [`Conflict`] and the table's [`Rules`] in, a [`Decision`] out.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{Conflict, ConflictKind, Decision, Stamp};
use crate::config::ConflictRule;
use crate::mapping::TablePlan;

/// A table's conflict settings, in target physical column names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    pub rule: ConflictRule,
    /// The preferred node (`prefer`, or the table owner).
    pub prefer: Option<String>,
    pub merge_fallback: ConflictRule,
    /// Columns with a rule of their own.
    pub columns: BTreeMap<String, ColumnRules>,
    /// The node where the conflict is being decided (the link's target).
    pub local_node: String,
    pub local_priority: i32,
}

/// A column's own rule.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ColumnRules {
    pub rule: Option<ConflictRule>,
    pub prefer: Option<String>,
}

impl Rules {
    /// The rules of a table plan, decided on `local_node`.
    pub fn from_plan(plan: &TablePlan, local_node: &str, local_priority: i32) -> Rules {
        Rules {
            rule: plan.conflict,
            prefer: plan.prefer.clone(),
            merge_fallback: plan.merge_fallback,
            columns: plan
                .columns
                .iter()
                .filter(|(_, c)| c.conflict.is_some() || c.prefer.is_some())
                .map(|(name, c)| {
                    (
                        name.clone(),
                        ColumnRules {
                            rule: c.conflict,
                            prefer: c.prefer.clone(),
                        },
                    )
                })
                .collect(),
            local_node: local_node.to_string(),
            local_priority,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Incoming,
    Current,
}

/// Decides one conflict. The same conflict seen from the other node (incoming and current swapped)
/// always leads to the same final row.
pub fn resolve(c: &Conflict, rules: &Rules) -> Decision {
    match c.kind {
        ConflictKind::NotOwner | ConflictKind::DeleteMissing => Decision::KeepCurrent,
        ConflictKind::UpdateMissing | ConflictKind::DeleteDiffers | ConflictKind::InsertDeleted => {
            delete_vs_update(c, rules)
        }
        ConflictKind::InsertExists | ConflictKind::UpdateDiffers => row_conflict(c, rules),
    }
}

fn current_stamp(c: &Conflict, rules: &Rules) -> Stamp {
    c.current.clone().unwrap_or_else(|| Stamp {
        version: None,
        node: rules.local_node.clone(),
        priority: rules.local_priority,
    })
}

fn lww(c: &Conflict, rules: &Rules) -> Side {
    match c.incoming.cmp_lww(&current_stamp(c, rules)) {
        Ordering::Greater => Side::Incoming,
        _ => Side::Current,
    }
}

/// The side written by `node`, if `node` wrote one of them; otherwise last write wins.
fn preferred(c: &Conflict, rules: &Rules, node: Option<&str>) -> Side {
    let current = current_stamp(c, rules);
    match node {
        Some(p) if c.incoming.node == p && current.node != p => Side::Incoming,
        Some(p) if current.node == p && c.incoming.node != p => Side::Current,
        _ => lww(c, rules),
    }
}

/// Under `manual`, the node that parks the change: the preferred node if it is one of the two, else
/// the higher priority, else the greater node id.
fn manual(c: &Conflict, rules: &Rules) -> Decision {
    let local = (rules.local_priority, rules.local_node.as_str());
    let remote = (c.incoming.priority, c.incoming.node.as_str());
    let decider = match rules.prefer.as_deref() {
        Some(p) if p == local.1 || p == remote.1 => p,
        _ => local.max(remote).1,
    };
    if decider == rules.local_node {
        Decision::Park
    } else {
        Decision::Defer {
            decider: decider.to_string(),
        }
    }
}

/// A delete on one side met an update (or nothing) on the other.
fn delete_vs_update(c: &Conflict, rules: &Rules) -> Decision {
    let delete_wins = match rules.rule {
        ConflictRule::Manual => return manual(c, rules),
        ConflictRule::Prefer => {
            let current = current_stamp(c, rules);
            let (deleter, updater) = if c.kind == ConflictKind::DeleteDiffers {
                (c.incoming.node.as_str(), current.node.as_str())
            } else {
                (
                    c.deleted_by.as_deref().unwrap_or(current.node.as_str()),
                    c.incoming.node.as_str(),
                )
            };
            if deleter == updater {
                // One node deleted and wrote the row: its later act stands.
                delete_is_later(c)
            } else {
                !matches!(rules.prefer.as_deref(), Some(p) if p == updater)
            }
        }
        ConflictRule::LastWriteWins | ConflictRule::Merge => delete_is_later(c),
    };
    match (c.kind == ConflictKind::DeleteDiffers, delete_wins) {
        (true, true) => Decision::ApplyIncoming,
        (true, false) | (false, true) => Decision::KeepCurrent,
        (false, false) if c.incoming_complete => Decision::ApplyIncoming,
        // The row must come back but the source did not send all of it: a person decides.
        (false, false) => Decision::Park,
    }
}

/// The delete's stamp against the row's version; equal stamps keep the row (see the module doc).
fn delete_is_later(c: &Conflict) -> bool {
    match c.kind {
        ConflictKind::DeleteDiffers => {
            c.incoming.version.is_some()
                && c.incoming.version > c.current.as_ref().and_then(|s| s.version)
        }
        _ => c.deleted_at.is_some() && c.deleted_at > c.incoming.version,
    }
}

/// Both sides hold a row for the key and their versions differ.
fn row_conflict(c: &Conflict, rules: &Rules) -> Decision {
    if !c.columns.iter().any(|col| col.differs) {
        // Same values on both sides: only the version and origin differ; adopt the later stamp.
        return whole_row(lww(c, rules));
    }
    let row_winner = match rules.rule {
        ConflictRule::Manual => return manual(c, rules),
        ConflictRule::LastWriteWins => Some(lww(c, rules)),
        ConflictRule::Prefer => Some(preferred(c, rules, rules.prefer.as_deref())),
        ConflictRule::Merge => None,
    };
    let mut take_incoming = Vec::new();
    let mut mixed = row_winner.is_none();
    for col in c.columns.iter().filter(|col| col.differs) {
        let side = match row_winner {
            Some(row) => match rules.columns.get(&col.name) {
                Some(own) => match column_rule(c, rules, own.rule, own.prefer.as_deref()) {
                    Some(side) => side,
                    None => return manual(c, rules),
                },
                None => row,
            },
            None => match merge_column(c, rules, col) {
                Some(side) => side,
                None => return manual(c, rules),
            },
        };
        mixed |= row_winner.is_some_and(|row| row != side);
        if side == Side::Incoming {
            take_incoming.push(col.name.clone());
        }
    }
    match row_winner {
        Some(row) if !mixed => whole_row(row),
        _ => {
            let current = current_stamp(c, rules);
            let origin = match lww(c, rules) {
                Side::Incoming => c.incoming.node.clone(),
                Side::Current => current.node.clone(),
            };
            let local = (rules.local_priority, rules.local_node.as_str());
            let remote = (c.incoming.priority, c.incoming.node.as_str());
            Decision::Merge {
                take_incoming,
                version_from_incoming: c.incoming.version >= current.version,
                origin,
                announce: local > remote,
            }
        }
    }
}

fn whole_row(side: Side) -> Decision {
    match side {
        Side::Incoming => Decision::ApplyIncoming,
        Side::Current => Decision::KeepCurrent,
    }
}

/// A column under merge: changed on one side only keeps that side; changed on both falls back.
fn merge_column(c: &Conflict, rules: &Rules, col: &super::ColumnState) -> Option<Side> {
    match (col.changed_incoming, col.changed_current) {
        (true, false) => Some(Side::Incoming),
        (false, true) => Some(Side::Current),
        _ => {
            let own = rules.columns.get(&col.name);
            let rule = own.and_then(|o| o.rule).unwrap_or(rules.merge_fallback);
            let prefer = own
                .and_then(|o| o.prefer.as_deref())
                .or(rules.prefer.as_deref());
            column_rule(c, rules, Some(rule), prefer)
        }
    }
}

/// One column's own rule; `None` means a person must decide.
fn column_rule(
    c: &Conflict,
    rules: &Rules,
    rule: Option<ConflictRule>,
    prefer: Option<&str>,
) -> Option<Side> {
    match rule {
        Some(ConflictRule::Manual) => None,
        Some(ConflictRule::Prefer) => Some(preferred(c, rules, prefer.or(rules.prefer.as_deref()))),
        None if prefer.is_some() => Some(preferred(c, rules, prefer)),
        Some(ConflictRule::LastWriteWins | ConflictRule::Merge) | None => Some(lww(c, rules)),
    }
}
