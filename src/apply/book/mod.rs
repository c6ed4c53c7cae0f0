//! The bookkeeping on a target, written once for both engines: the checkpoint, the installed
//! schema versions, tombstones, the conflict audit log and review queue, dead letters
//! (`<schema>.*`, DDL in `sql/<engine>/`) and the initial copy's progress.
//!
//! ```text
//!  Checkpoints / Tombstones / ReviewQueue / DeadLetters / CopyBook   (what the applier calls)
//!        └─ statement templates ─> Dialect::render ─> BookSession (the engine's session: text in, text out)
//! ```
//!
//! Each concern is a trait with its behaviour in default methods and a blanket impl for every
//! [`BookSession`], so an engine supplies only how to run a statement. Unless a method says
//! otherwise it runs inside the transaction the caller opened: a checkpoint written with the changes
//! it covers commits or rolls back with them.
//!
//! Error handling: every error is the session's classified [`ApplyError`]; a row that does not parse
//! (a column edited by hand into something else) is skipped, never a panic.

use super::dialect::{Dialect, Set};
use super::error::ApplyError;
use super::target::Tombstone;
use crate::model::TableRef;

mod copy;
mod dead;
mod held;
mod queue;
mod verify;

pub(crate) use copy::CopyBook;
pub(crate) use dead::DeadLetters;
pub(crate) use held::{HeldChange, Holds};
pub(crate) use queue::ReviewQueue;
pub use verify::VerifyResult;
pub(crate) use verify::VerifyResults;

/// One row of a bookkeeping query, every column as text (`None` for NULL).
pub(crate) type TextRow = Vec<Option<String>>;

/// What the bookkeeping needs of an engine session: its dialect and schema, and running a rendered
/// statement whose parameters are all text.
#[allow(async_fn_in_trait)]
pub(crate) trait BookSession {
    fn dialect(&self) -> Dialect;
    /// The bookkeeping schema (`[tandem] schema`).
    fn book_schema(&self) -> &str;
    /// Runs a rendered statement; every column of the result read as text. `varying`: the text
    /// depends on the input's size (a multi-row `VALUES`), so it is not worth preparing once.
    async fn book_query(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
        varying: bool,
    ) -> Result<Vec<TextRow>, ApplyError>;
    /// Runs a rendered statement; rows affected.
    async fn book_execute(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
        varying: bool,
    ) -> Result<u64, ApplyError>;
    /// Runs a rendered statement, then commits the transaction it ran in: in one round trip
    /// where the engine allows. A server error from the statement means no commit; an error of
    /// the commit, or a session lost meanwhile, leaves the outcome unknown, as with
    /// `Target::commit` (the caller reconnects and reads the checkpoint back).
    async fn book_execute_and_commit(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
    ) -> Result<u64, ApplyError>;
    /// Runs a rendered `INSERT` into a table with an `id` column the server assigns; that id.
    async fn book_insert(
        &mut self,
        sql: &str,
        params: Vec<Option<String>>,
    ) -> Result<i64, ApplyError>;
}

async fn query<S: BookSession + ?Sized>(
    s: &mut S,
    template: &str,
    params: Vec<Option<String>>,
) -> Result<Vec<TextRow>, ApplyError> {
    let sql = s.dialect().render(template, s.book_schema());
    s.book_query(&sql, params, false).await
}

async fn execute<S: BookSession + ?Sized>(
    s: &mut S,
    template: &str,
    params: Vec<Option<String>>,
) -> Result<u64, ApplyError> {
    let sql = s.dialect().render(template, s.book_schema());
    s.book_execute(&sql, params, false).await
}

fn col(r: &TextRow, i: usize) -> Option<String> {
    r.get(i).cloned().flatten()
}

fn id_text(id: i64) -> Option<String> {
    Some(id.to_string())
}

/// The statement (rendered for `s`) and parameters that move `source`'s checkpoint to `position`.
fn checkpoint_write<S: BookSession + ?Sized>(
    s: &S,
    source: &str,
    position: &str,
    commit_time: i64,
) -> (String, Vec<Option<String>>) {
    let d = s.dialect();
    let template = format!(
        "INSERT INTO __S__.checkpoint (source_node, position, commit_time, applied_at) \
         VALUES (?, ?, ?::timestamptz, {{now}}) {}",
        d.upsert(
            "checkpoint",
            &["source_node"],
            &[
                ("position", Set::New),
                ("commit_time", Set::New),
                ("applied_at", Set::Now)
            ]
        )
    );
    let params = vec![
        Some(source.into()),
        Some(position.into()),
        Some(d.timestamp(commit_time)),
    ];
    (d.render(&template, s.book_schema()), params)
}

/// Where each incoming link stands on this node.
#[allow(async_fn_in_trait)]
pub(crate) trait Checkpoints: BookSession {
    /// The bookkeeping schema versions installed (`<schema>.schema_version`); outside any
    /// transaction is fine.
    async fn schema_versions(&mut self) -> Result<Vec<i32>, ApplyError> {
        let rows = query(
            self,
            "SELECT {text:version} FROM __S__.schema_version",
            vec![],
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| col(r, 0)?.parse().ok())
            .collect())
    }

    /// The position of the last transaction from `source` applied here, as written.
    async fn read_checkpoint(&mut self, source: &str) -> Result<Option<String>, ApplyError> {
        let rows = query(
            self,
            "SELECT position FROM __S__.checkpoint WHERE source_node = ?",
            vec![Some(source.into())],
        )
        .await?;
        Ok(rows.first().and_then(|r| col(r, 0)))
    }

    /// Moves `source`'s checkpoint to `position`: in the transaction that applied everything up to
    /// it, so the two commit together (exactly once).
    async fn write_checkpoint(
        &mut self,
        source: &str,
        position: &str,
        commit_time: i64,
    ) -> Result<(), ApplyError> {
        let (sql, params) = checkpoint_write(self, source, position, commit_time);
        self.book_execute(&sql, params, false).await.map(drop)
    }

    /// [`Checkpoints::write_checkpoint`], then the commit of the transaction, sent together where
    /// the engine allows (one round trip less for every target transaction). Errors as for
    /// [`BookSession::book_execute_and_commit`].
    async fn commit_with_checkpoint(
        &mut self,
        source: &str,
        position: &str,
        commit_time: i64,
    ) -> Result<(), ApplyError> {
        let (sql, params) = checkpoint_write(self, source, position, commit_time);
        self.book_execute_and_commit(&sql, params).await.map(drop)
    }

    /// Rewrites the checkpoint row's applied time (position unchanged): marks a transaction that
    /// applies no new position (a replay) as tandem's.
    async fn touch_checkpoint(&mut self, source: &str) -> Result<(), ApplyError> {
        execute(
            self,
            "UPDATE __S__.checkpoint SET applied_at = {clock} WHERE source_node = ?",
            vec![Some(source.into())],
        )
        .await
        .map(drop)
    }
}

impl<S: BookSession> Checkpoints for S {}

/// What each node's deletes of a key left behind, so that a later insert of the key can be placed
/// before or after them.
#[allow(async_fn_in_trait)]
pub(crate) trait Tombstones: BookSession {
    /// The tombstones of a key: one per node whose deletes of it this node has seen. With
    /// `dead_letter`, each says whether it was last written before that dead letter was recorded.
    async fn tombstones(
        &mut self,
        target_table: &str,
        key: &str,
        dead_letter: Option<i64>,
    ) -> Result<Vec<Tombstone>, ApplyError> {
        let mut params = vec![Some(dead_letter.unwrap_or(0).to_string())];
        params.extend([Some(target_table.into()), Some(key.into())]);
        let rows = query(
            self,
            "SELECT {text:version}, node, CASE WHEN deleted_at < (SELECT created_at FROM \
             __S__.dead_letter WHERE id = ?::bigint) THEN 'y' ELSE 'n' END \
             FROM __S__.tombstone WHERE target_table = ? AND row_key = ?",
            params,
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Tombstone {
                    version: col(r, 0)?.parse().ok()?,
                    node: col(r, 1).unwrap_or_default(),
                    before_dead_letter: col(r, 2).as_deref() == Some("y"),
                })
            })
            .collect())
    }

    /// Deletes the tombstones recorded more than `older_than_secs` ago (autocommit); rows deleted.
    async fn prune_tombstones(&mut self, older_than_secs: u64) -> Result<u64, ApplyError> {
        let template = format!(
            "DELETE FROM __S__.tombstone WHERE {}",
            self.dialect().older_than("deleted_at")
        );
        execute(self, &template, vec![Some(older_than_secs.to_string())]).await
    }

    /// Records a delete of `key` by `stone.node` (the node's later stamp wins).
    async fn put_tombstone(
        &mut self,
        target_table: &str,
        key: &str,
        stone: &Tombstone,
    ) -> Result<(), ApplyError> {
        self.put_tombstones(target_table, &[(key.to_string(), stone.clone())])
            .await
    }

    /// [`Tombstones::put_tombstone`] for many keys (distinct) in one statement.
    async fn put_tombstones(
        &mut self,
        target_table: &str,
        stones: &[(String, Tombstone)],
    ) -> Result<(), ApplyError> {
        if stones.is_empty() {
            return Ok(());
        }
        let d = self.dialect();
        let mut params = Vec::with_capacity(stones.len() * 4);
        for (key, stone) in stones {
            params.extend([
                Some(target_table.to_string()),
                Some(key.clone()),
                Some(stone.version.to_string()),
                Some(stone.node.clone()),
            ]);
        }
        let template = format!(
            "INSERT INTO __S__.tombstone (target_table, row_key, version, node) VALUES {} {}",
            vec!["(?, ?, ?::bigint, ?)"; stones.len()].join(", "),
            d.upsert(
                "tombstone",
                &["target_table", "row_key", "node"],
                &[("version", Set::Greatest), ("deleted_at", Set::Now)]
            )
        );
        let sql = d.render(&template, self.book_schema());
        self.book_execute(&sql, params, stones.len() > 1)
            .await
            .map(drop)
    }

    /// Whether any of `keys` of the table has a tombstone. Where the engine can, the table's
    /// tombstone flag is read first, in the same statement: a table that has never had a
    /// tombstone costs no lookup of its keys (500 index probes a batch otherwise).
    async fn any_tombstone(
        &mut self,
        table: &TableRef,
        keys: &[String],
    ) -> Result<bool, ApplyError> {
        if keys.is_empty() {
            return Ok(false);
        }
        let d = self.dialect();
        let (cond, list) = d.one_of("row_key", keys);
        let mut params = vec![Some(table.to_string())];
        params.extend(list);
        let gate = match d.may_have_tombstones() {
            Some(gate) => {
                let flag = crate::names::tombstone_flag(table);
                params.push(Some(format!(
                    "{}.{}",
                    d.ident(self.book_schema()),
                    d.ident(&flag)
                )));
                format!(" AND {gate}")
            }
            None => String::new(),
        };
        let template = format!(
            "SELECT 1 FROM __S__.tombstone WHERE target_table = ? AND {cond}{gate} LIMIT 1"
        );
        let sql = self.dialect().render(&template, self.book_schema());
        let varying = self.dialect() == Dialect::Mysql;
        Ok(!self.book_query(&sql, params, varying).await?.is_empty())
    }
}

impl<S: BookSession> Tombstones for S {}
