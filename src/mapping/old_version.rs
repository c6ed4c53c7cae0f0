//! The before-image version of an update or delete that a PostgreSQL node logged without its old
//! row (`REPLICA IDENTITY DEFAULT`, set by `tandem setup` on a table whose rules need only the key
//! and tandem's version; see `apply/postgres/setup.rs`):
//!
//! ```text
//!  update  new row: …, _tandem_version = 7, _tandem_version_prev = 5   (the update trigger)
//!          -> before-image { _tandem_version = 5 } (the key too, when the update changed it)
//!  delete  tombstone upsert { target_table, row_key, last_version = 5 } (the BEFORE DELETE trigger)
//!          delete { key }                                  (the row, just after, same transaction)
//!          -> before-image { key, _tandem_version = 5 }
//! ```
//!
//! A delete takes the latest tombstone of its table and key still waiting in the transaction (an
//! application trigger between the two may write other rows, or delete more rows of the table,
//! whose pairs then nest), or, when the key's text does not read the same on both (a key type
//! whose text the decoded value does not give back), the tombstone written just before it. A
//! change that already carries its old version (a table logged whole, a MySQL/MariaDB binlog) is
//! left as it is. What stays unpaired is applied without a version check, as a change without a
//! before-image always was, and counted in the debug log.

use std::collections::VecDeque;

use crate::mapping::TablePlan;
use crate::model::{Change, ChangeKind, Field, ImageKind, Op, RowImage, Value};

/// Tombstones waiting for their delete, at most this many (a cascade of application triggers
/// nests deeper only in pathological schemas; the oldest is dropped first).
const MAX_WAITING: usize = 64;

/// A tombstone written by a local delete in the transaction being read, waiting for its delete.
#[derive(Debug, Clone, PartialEq)]
struct Stone {
    /// The deleted row's table, as the trigger names it (`schema.table`).
    table: String,
    /// The key's columns and values as text, sorted.
    key: Vec<(String, String)>,
    /// The deleted row's version.
    version: i64,
}

/// What [`OldVersions::complete`] did with a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Completed {
    /// Nothing was missing, or the change is not a synced table's.
    Untouched,
    /// The old version was put into the before-image.
    Filled,
    /// A synced table's key-only delete whose tombstone the transaction does not carry: it goes
    /// on without a version check.
    Unpaired,
}

/// The state of one transaction's read: feed it every change, in order ([`OldVersions::complete`]).
#[derive(Debug)]
pub struct OldVersions {
    /// The bookkeeping schema, whose `tombstone` table the delete triggers write.
    schema: String,
    /// tandem's managed version column (`[tandem] version_column`), the one such tables have.
    version_column: String,
    /// The old version beside it ([`crate::names::prev_version_column`]).
    prev_column: String,
    waiting: VecDeque<Stone>,
    /// The change just before was a tombstone write (it is the last of `waiting`).
    after_stone: bool,
}

impl OldVersions {
    pub fn new(schema: &str, version_column: &str) -> OldVersions {
        OldVersions {
            schema: schema.to_string(),
            version_column: version_column.to_string(),
            prev_column: crate::names::prev_version_column(version_column),
            waiting: VecDeque::new(),
            after_stone: false,
        }
    }

    /// Gives `change` the old version its log record left out, where the transaction carries it;
    /// `plan` is the plan of the change's table (`None`: not synced on this link). A key-only
    /// delete of any table takes its tombstone off the waiting list, synced here or not.
    pub fn complete(&mut self, change: &mut Change, plan: Option<&TablePlan>) -> Completed {
        let after_stone = std::mem::take(&mut self.after_stone);
        if change.kind(&self.schema) == ChangeKind::Tombstone {
            if let Some(stone) = change
                .after
                .as_ref()
                .filter(|_| matches!(change.op, Op::Insert | Op::Update))
                .and_then(stone)
            {
                if self.waiting.len() == MAX_WAITING {
                    self.waiting.pop_front();
                }
                self.waiting.push_back(stone);
                self.after_stone = true;
            }
            return Completed::Untouched;
        }
        // A managed version column is always named `version_column`.
        let synced = plan.is_some_and(|p| p.managed_version);
        let version = self.version_column.as_str();
        if change
            .before
            .as_ref()
            .is_some_and(|b| b.get(version).is_some())
        {
            return Completed::Untouched;
        }
        let old = match change.op {
            Op::Update if synced => change
                .after
                .as_ref()
                .and_then(|a| a.get(&self.prev_column))
                .filter(|v| !matches!(v, Value::Null | Value::Unchanged))
                .cloned(),
            Op::Delete => {
                let Some(before) = &change.before else {
                    return Completed::Untouched;
                };
                let table = change.table.to_string();
                let key = key_texts(&before.fields);
                let found = self
                    .waiting
                    .iter()
                    .rposition(|s| s.table == table && s.key == key)
                    .or_else(|| {
                        let last = self.waiting.len().checked_sub(1)?;
                        (after_stone && self.waiting[last].table == table).then_some(last)
                    });
                let stone = found.and_then(|i| self.waiting.remove(i));
                if !synced {
                    return Completed::Untouched;
                }
                match stone {
                    Some(s) => Some(Value::Int(s.version)),
                    None => return Completed::Unpaired,
                }
            }
            _ => None,
        };
        let Some(old) = old else {
            return Completed::Untouched;
        };
        let field = Field {
            name: version.into(),
            value: old,
        };
        match &mut change.before {
            Some(b) => b.fields.push(field),
            None => change.before = Some(RowImage::new(ImageKind::Key, vec![field])),
        }
        Completed::Filled
    }
}

/// A written tombstone's table, key and deleted version (`last_version`; a tombstone written
/// without it, by a table logged whole, an earlier trigger or a MySQL/MariaDB node, pairs with
/// nothing).
fn stone(image: &RowImage) -> Option<Stone> {
    let text = |name: &str| match image.get(name) {
        Some(Value::Text(t)) => Some(t.clone()),
        Some(Value::Bytes(b)) => String::from_utf8(b.clone()).ok(),
        Some(Value::Int(i)) => Some(i.to_string()),
        _ => None,
    };
    let serde_json::Value::Object(map) = serde_json::from_str(&text("row_key")?).ok()? else {
        return None;
    };
    let mut key: Vec<(String, String)> = map
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            (k, v)
        })
        .collect();
    key.sort();
    Some(Stone {
        table: text("target_table")?,
        key,
        version: text("last_version")?.parse().ok()?,
    })
}

/// A key image's columns and values as text, sorted, as the triggers write them into the
/// tombstone (`{"col":"text",…}`).
fn key_texts(fields: &[Field]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = fields
        .iter()
        .map(|f| {
            let v = match &f.value {
                Value::Text(t) => t.clone(),
                Value::Null => "null".into(),
                other => other.to_string(),
            };
            (f.name.to_string(), v)
        })
        .collect();
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TableRef;

    fn plan() -> TablePlan {
        TablePlan {
            business: "item".into(),
            target: TableRef::new("public", "item"),
            key: vec!["id".into()],
            version: "_tandem_version".into(),
            managed_version: true,
            origin_column: "_tandem_origin".into(),
            conflict: crate::config::ConflictRule::LastWriteWins,
            prefer: None,
            owner: None,
            merge_fallback: crate::config::ConflictRule::LastWriteWins,
            columns: Default::default(),
            deletes: crate::config::DeletePolicy::Propagate,
            on_error: crate::config::OnError::DeadLetter,
            truncate: Default::default(),
            ddl: Default::default(),
        }
    }

    fn f(name: &str, value: Value) -> Field {
        Field {
            name: name.into(),
            value,
        }
    }

    fn tombstone(op: Op, key: &str, last: Option<i64>) -> Change {
        let mut fields = vec![
            f("target_table", Value::Text("public.item".into())),
            f("row_key", Value::Text(key.into())),
            f("version", Value::Int(99)),
        ];
        if let Some(v) = last {
            fields.push(f("last_version", Value::Int(v)));
        }
        Change {
            table: TableRef::new("tandem", "tombstone"),
            op,
            before: None,
            after: Some(RowImage::new(ImageKind::Full, fields)),
        }
    }

    fn delete(id: i64) -> Change {
        Change {
            table: TableRef::new("public", "item"),
            op: Op::Delete,
            before: Some(RowImage::new(ImageKind::Key, vec![f("id", Value::Int(id))])),
            after: None,
        }
    }

    fn other(table: &str) -> Change {
        Change {
            table: TableRef::new("public", table),
            op: Op::Insert,
            before: None,
            after: Some(RowImage::new(ImageKind::Full, vec![f("id", Value::Int(1))])),
        }
    }

    fn old(c: &Change) -> Option<&Value> {
        c.before.as_ref().and_then(|b| b.get("_tandem_version"))
    }

    fn run(changes: &mut [Change]) -> Vec<Completed> {
        let p = plan();
        let mut o = OldVersions::new("tandem", "_tandem_version");
        changes
            .iter_mut()
            .map(|c| {
                let synced = c.table.schema.as_ref() == "public" && c.table.name.as_ref() == "item";
                o.complete(c, synced.then_some(&p))
            })
            .collect()
    }

    #[test]
    fn an_update_takes_its_old_version_from_the_new_row() {
        let mut c = Change {
            table: TableRef::new("public", "item"),
            op: Op::Update,
            before: None,
            after: Some(RowImage::new(
                ImageKind::Full,
                vec![
                    f("id", Value::Int(1)),
                    f("_tandem_version", Value::Int(7)),
                    f("_tandem_version_prev", Value::Int(5)),
                ],
            )),
        };
        run(std::slice::from_mut(&mut c));
        assert_eq!(old(&c), Some(&Value::Int(5)));
        assert_eq!(c.before.as_ref().map(|b| b.kind), Some(ImageKind::Key));
    }

    #[test]
    fn a_change_that_carries_its_old_version_keeps_it() {
        let mut c = Change {
            table: TableRef::new("public", "item"),
            op: Op::Update,
            before: Some(RowImage::new(
                ImageKind::Full,
                vec![f("id", Value::Int(1)), f("_tandem_version", Value::Int(4))],
            )),
            after: Some(RowImage::new(
                ImageKind::Full,
                vec![f("_tandem_version_prev", Value::Int(5))],
            )),
        };
        run(std::slice::from_mut(&mut c));
        assert_eq!(old(&c), Some(&Value::Int(4)));
        assert_eq!(c.before.as_ref().map(|b| b.fields.len()), Some(2));
    }

    #[test]
    fn each_delete_takes_its_own_tombstone_nested_ones_too() {
        // An application trigger deleting row 2 while row 1 is deleted: T1, T2, D2, D1.
        let mut tx = vec![
            tombstone(Op::Insert, r#"{"id":"1"}"#, Some(10)),
            other("audit"),
            tombstone(Op::Update, r#"{"id":"2"}"#, Some(20)),
            delete(2),
            delete(1),
            delete(3),
        ];
        let done = run(&mut tx);
        assert_eq!(old(&tx[3]), Some(&Value::Int(20)));
        assert_eq!(old(&tx[4]), Some(&Value::Int(10)));
        assert_eq!(old(&tx[5]), None, "no tombstone of key 3");
        assert_eq!(
            done[3..],
            [Completed::Filled, Completed::Filled, Completed::Unpaired]
        );
    }

    /// A key-only delete of a table this link does not sync still takes its tombstone off the
    /// list, and a key is matched column by column.
    #[test]
    fn every_delete_takes_its_tombstone_and_keys_match_by_column() {
        let mut o = OldVersions::new("tandem", "_tandem_version");
        let p = plan();
        let mut stone = tombstone(Op::Insert, r#"{"id":"1"}"#, Some(10));
        stone.after = stone.after.map(|mut a| {
            a.fields[0].value = Value::Text("public.other".into());
            a
        });
        let mut gone = delete(1);
        gone.table = TableRef::new("public", "other");
        o.complete(&mut stone, None);
        assert_eq!(o.complete(&mut gone, None), Completed::Untouched);
        assert!(o.waiting.is_empty(), "{:?}", o.waiting);

        let mut swapped = tombstone(Op::Insert, r#"{"a":"1","b":"2"}"#, Some(10));
        o.complete(&mut swapped, Some(&p));
        o.complete(&mut other("audit"), None);
        let mut d = delete(0);
        d.before = Some(RowImage::new(
            ImageKind::Key,
            vec![f("a", Value::Int(2)), f("b", Value::Int(1))],
        ));
        assert_eq!(o.complete(&mut d, Some(&p)), Completed::Unpaired);
        let mut d = delete(0);
        d.before = Some(RowImage::new(
            ImageKind::Key,
            vec![f("b", Value::Int(2)), f("a", Value::Int(1))],
        ));
        assert_eq!(o.complete(&mut d, Some(&p)), Completed::Filled);
    }

    #[test]
    fn a_key_whose_text_differs_takes_the_tombstone_just_before_it() {
        let mut tx = vec![
            tombstone(Op::Insert, r#"{"id":"0001"}"#, Some(10)),
            delete(1),
            tombstone(Op::Insert, r#"{"id":"0002"}"#, Some(11)),
            other("audit"),
            delete(2),
        ];
        run(&mut tx);
        assert_eq!(old(&tx[1]), Some(&Value::Int(10)));
        assert_eq!(old(&tx[4]), None, "not adjacent, key unread: no guess");
    }

    #[test]
    fn a_tombstone_without_the_deleted_version_pairs_with_nothing() {
        let mut tx = vec![tombstone(Op::Insert, r#"{"id":"1"}"#, None), delete(1)];
        run(&mut tx);
        assert_eq!(old(&tx[1]), None);
    }
}
