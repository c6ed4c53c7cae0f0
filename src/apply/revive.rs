//! The applier's side of a table's revive trigger, which exists only on a table that holds a
//! tombstone of another node's delete (a local insert bumps the tombstones of its key through it;
//! until then it has none to bump, see `Link::unseen`). Before a transaction writes a table's
//! first tombstone it checks that the trigger is there (`Target::check_revive`, once per table and
//! transaction); when it is not, the transaction is rolled back, the trigger is made between
//! transactions, and the same work is tried again. Making it takes a lock that waits for the
//! transactions open on the table, briefly: the engine's target runs the statement, this keeps
//! what the attempts say.
//!
//! ```text
//!  check: trigger there? ──yes──> seen (until the next begin)
//!              │ no
//!              v
//!   refused within REFUSED_FOR? ──yes──> ApplyError::Invalid naming the grant (dead letter / halt)
//!              │ no
//!              v
//!   due = table; ApplyError::ReviveDue ──> rollback ──> make (at most every RETRY after a failure)
//! ```

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::error::ApplyError;
use crate::model::TableRef;

/// How long the applier waits before it tries again to make a revive trigger that it could not.
const RETRY: Duration = Duration::from_secs(5);
/// How long a refusal that retrying cannot fix (a missing privilege) is returned as such before the
/// applier tries again (the operator may have fixed it meanwhile).
const REFUSED_FOR: Duration = Duration::from_secs(60);

/// A failed attempt to make a revive trigger.
struct Failed {
    why: String,
    /// Retrying cannot fix it (the server refused the statement, e.g. a missing privilege).
    definite: bool,
    at: Instant,
}

/// One target session's revive triggers: seen in this transaction, due after the rollback, and
/// the last failed attempt per table.
#[derive(Default)]
pub(crate) struct Revives {
    seen: HashSet<TableRef>,
    due: Option<(TableRef, Vec<String>)>,
    failed: HashMap<TableRef, Failed>,
    /// The last rollback made a trigger (asked once, [`Revives::take_made`]).
    made_now: bool,
}

impl Revives {
    /// A transaction begins: every table is checked again.
    pub fn begin(&mut self) {
        self.seen.clear();
    }

    /// Whether this transaction saw the table's trigger already.
    pub fn seen(&self, table: &TableRef) -> bool {
        self.seen.contains(table)
    }

    /// The check found the table's trigger.
    pub fn found(&mut self, table: &TableRef) {
        self.seen.insert(table.clone());
    }

    /// The check found no trigger `name` on `table` (key columns `key`): the error to return. A
    /// refusal of the last minute comes back as a definite error naming `grant` (what the node's
    /// account needs); otherwise the trigger is due after the rollback.
    pub fn missing(
        &mut self,
        node: &str,
        table: &TableRef,
        name: &str,
        key: &[String],
        grant: &str,
    ) -> ApplyError {
        let what = format!(
            "table {table} needs its revive trigger {name} before its first tombstone of another \
             node's delete"
        );
        if let Some(f) = self
            .failed
            .get(table)
            .filter(|f| f.definite && f.at.elapsed() < REFUSED_FOR)
        {
            return ApplyError::Invalid(format!(
                "{what}, and making it failed: {}; fix: grant the account of node {node} {grant}, \
                 then replay the dead letters (tandem tries again every minute)",
                f.why
            ));
        }
        self.due = Some((table.clone(), key.to_vec()));
        let last = self
            .failed
            .get(table)
            .map(|f| format!(" (the last attempt failed: {})", f.why))
            .unwrap_or_default();
        ApplyError::ReviveDue(format!(
            "{what}: it is made after this rollback, and the same work goes through when tried \
             again{last}"
        ))
    }

    /// The table whose trigger the rollback should make, unless an attempt failed too recently.
    pub fn take_due(&mut self) -> Option<(TableRef, Vec<String>)> {
        let (table, key) = self.due.take()?;
        let recent = self
            .failed
            .get(&table)
            .is_some_and(|f| f.at.elapsed() < RETRY);
        (!recent).then_some((table, key))
    }

    /// Whether a trigger was made since the last ask.
    pub fn take_made(&mut self) -> bool {
        std::mem::take(&mut self.made_now)
    }

    /// The outcome of making `table`'s trigger; `definite`: retrying cannot fix the error.
    #[allow(clippy::result_large_err)] // the caller's error, passed on
    pub fn made(
        &mut self,
        node: &str,
        table: &TableRef,
        outcome: Result<(), (ApplyError, bool)>,
    ) -> Result<(), ApplyError> {
        match outcome {
            Ok(()) => {
                self.failed.remove(table);
                self.made_now = true;
                tracing::info!(%node, %table, "revive trigger made: the table holds its first tombstone of another node's delete");
                Ok(())
            }
            Err((e, definite)) => {
                let why = match &e {
                    ApplyError::Database { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                tracing::warn!(%node, %table, error = %why, "the table's revive trigger could not be made (its first tombstone of another node's delete waits; a lock wait held the table's new statements back briefly)");
                self.failed.insert(
                    table.clone(),
                    Failed {
                        why,
                        definite,
                        at: Instant::now(),
                    },
                );
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> (ApplyError, bool) {
        (ApplyError::Invalid("permission denied".into()), true)
    }

    #[test]
    fn a_missing_trigger_is_due_once_and_seen_until_the_next_transaction() {
        let mut r = Revives::default();
        let t = TableRef::new("app", "items");
        let e = r.missing("crm", &t, "tandem_revive", &["id".into()], "TRIGGER");
        assert!(matches!(e, ApplyError::ReviveDue(_)), "{e}");
        assert_eq!(r.take_due(), Some((t.clone(), vec!["id".to_string()])));
        assert_eq!(r.take_due(), None, "due once");
        assert!(r.made("crm", &t, Ok(())).is_ok());
        assert!(r.take_made(), "made");
        assert!(!r.take_made(), "asked once");
        r.found(&t);
        assert!(r.seen(&t));
        r.begin();
        assert!(!r.seen(&t), "checked again in the next transaction");
    }

    #[test]
    fn a_refusal_names_the_grant_and_holds_off_new_attempts() {
        let mut r = Revives::default();
        let t = TableRef::new("app", "items");
        r.missing("crm", &t, "tandem_revive", &["id".into()], "TRIGGER");
        assert!(r.take_due().is_some());
        assert!(r.made("crm", &t, Err(refused())).is_err());
        assert!(!r.take_made());
        let e = r.missing("crm", &t, "tandem_revive", &["id".into()], "TRIGGER on it");
        let text = e.to_string();
        assert!(matches!(e, ApplyError::Invalid(_)), "{text}");
        assert!(
            text.contains("grant the account of node crm TRIGGER on it")
                && text.contains("permission denied"),
            "{text}"
        );
        // A transient failure is due again, but not before the retry interval.
        let mut r = Revives::default();
        r.missing("crm", &t, "tandem_revive", &["id".into()], "TRIGGER");
        r.take_due();
        let timeout = (ApplyError::Invalid("lock timeout".into()), false);
        assert!(r.made("crm", &t, Err(timeout)).is_err());
        let e = r.missing("crm", &t, "tandem_revive", &["id".into()], "TRIGGER");
        assert!(
            e.to_string()
                .contains("the last attempt failed: lock timeout"),
            "{e}"
        );
        assert_eq!(r.take_due(), None, "not again within {RETRY:?}");
    }
}
