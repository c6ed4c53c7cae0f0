//! Changes held by a schema pause (`<schema>.held`, bookkeeping version 11; the pause itself is in
//! `apply/pause.rs`).

use super::{col, execute, id_text, query, BookSession, TextRow};
use crate::apply::error::ApplyError;

/// One held change of a link: the source change as captured (JSON) with its transaction's origin,
/// position and commit time, and why it is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeldChange {
    pub id: i64,
    /// Business table.
    pub table: String,
    /// The physical table on this node, as `schema.table`.
    pub target_table: String,
    pub reason: String,
    /// The columns whose loss paused the table, comma-separated (empty: the table itself).
    pub gone: String,
    pub position: Option<String>,
    pub origin: String,
    pub commit_time: i64,
    pub change: String,
}

const HELD_COLUMNS: &str = "{text:id}, table_name, target_table, reason, gone_columns, \
    source_position, origin, {text:commit_time}, {text:payload}";

fn held(r: &TextRow) -> Option<HeldChange> {
    Some(HeldChange {
        id: col(r, 0)?.parse().ok()?,
        table: col(r, 1)?,
        target_table: col(r, 2)?,
        reason: col(r, 3)?,
        gone: col(r, 4)?,
        position: col(r, 5),
        origin: col(r, 6)?,
        commit_time: col(r, 7)?.parse().ok()?,
        change: col(r, 8)?,
    })
}

#[allow(async_fn_in_trait)]
pub(crate) trait Holds: BookSession {
    /// Holds one change of `source`'s link, after every change held before it.
    async fn hold(&mut self, source: &str, h: &HeldChange) -> Result<(), ApplyError> {
        execute(
            self,
            "INSERT INTO __S__.held (source_node, table_name, target_table, reason, gone_columns, source_position, origin, commit_time, payload) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?::bigint, ?)",
            vec![
                Some(source.to_string()),
                Some(h.table.clone()),
                Some(h.target_table.clone()),
                Some(h.reason.clone()),
                Some(h.gone.clone()),
                h.position.clone(),
                Some(h.origin.clone()),
                Some(h.commit_time.to_string()),
                Some(h.change.clone()),
            ],
        )
        .await
        .map(drop)
    }

    /// The tables `source`'s link holds changes of, each with the reason and the gone columns of
    /// its oldest held change.
    async fn held_tables(
        &mut self,
        source: &str,
    ) -> Result<Vec<(String, String, String)>, ApplyError> {
        let rows = query(
            self,
            "SELECT h.table_name, h.reason, h.gone_columns FROM __S__.held h WHERE h.source_node = ? AND h.id = \
             (SELECT MIN(f.id) FROM __S__.held f WHERE f.source_node = h.source_node AND f.table_name = h.table_name)",
            vec![Some(source.to_string())],
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((col(r, 0)?, col(r, 1)?, col(r, 2)?)))
            .collect())
    }

    /// Up to `limit` changes of `table` held for `source`'s link, oldest first, after id `after`.
    async fn held_changes(
        &mut self,
        source: &str,
        table: &str,
        after: i64,
        limit: u32,
    ) -> Result<Vec<HeldChange>, ApplyError> {
        let template = format!(
            "SELECT {HELD_COLUMNS} FROM __S__.held \
             WHERE source_node = ? AND table_name = ? AND id > ?::bigint ORDER BY id LIMIT {limit}"
        );
        let rows = query(
            self,
            &template,
            vec![Some(source.into()), Some(table.into()), id_text(after)],
        )
        .await?;
        Ok(rows.iter().filter_map(held).collect())
    }

    /// Removes `source`'s held changes of `table` up to id `upto`, once they were applied.
    async fn release_held(
        &mut self,
        source: &str,
        table: &str,
        upto: i64,
    ) -> Result<u64, ApplyError> {
        execute(
            self,
            "DELETE FROM __S__.held WHERE source_node = ? AND table_name = ? AND id <= ?::bigint",
            vec![Some(source.into()), Some(table.into()), id_text(upto)],
        )
        .await
    }
    /// The columns this node's tables had when links started (`table`, `column`, first type).
    async fn known_columns(&mut self) -> Result<Vec<(String, String, String)>, ApplyError> {
        let rows = query(
            self,
            "SELECT table_name, column_name, type_name FROM __S__.target_column",
            vec![],
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((col(r, 0)?, col(r, 1)?, col(r, 2)?)))
            .collect())
    }

    /// Records that `table` has `column` (of `type_name`, kept as first recorded).
    async fn record_column(
        &mut self,
        table: &str,
        column: &str,
        type_name: &str,
    ) -> Result<(), ApplyError> {
        let d = self.dialect();
        let template = format!(
            "INSERT INTO __S__.target_column (table_name, column_name, type_name) VALUES (?, ?, ?) {}",
            d.upsert(
                "target_column",
                &["table_name", "column_name"],
                &[("seen_at", super::Set::Now)]
            )
        );
        execute(
            self,
            &template,
            vec![
                Some(table.to_string()),
                Some(column.to_string()),
                Some(type_name.to_string()),
            ],
        )
        .await
        .map(drop)
    }
}

impl<S: BookSession> Holds for S {}
