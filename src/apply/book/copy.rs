//! The initial copy's progress statements (see the parent module).

use super::{col, execute, query, BookSession};
use crate::apply::copy::CopyProgress;
use crate::apply::dialect::Set;
use crate::apply::error::ApplyError;

/// The initial copy's progress on this node: one row per incoming link and business table.
#[allow(async_fn_in_trait)]
pub(crate) trait CopyBook: BookSession {
    /// The progress rows of the copy from `source`, by table.
    async fn read_copy_progress(&mut self, source: &str) -> Result<Vec<CopyProgress>, ApplyError> {
        let rows = query(
            self,
            "SELECT table_name, last_key, {text:rows_copied}, {text:done}, stream_start \
             FROM __S__.copy_progress WHERE source_node = ? ORDER BY table_name",
            vec![Some(source.into())],
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(CopyProgress {
                    table: col(r, 0)?,
                    last_key: col(r, 1),
                    rows: col(r, 2)?.parse().ok()?,
                    // PostgreSQL's boolean reads `true`, MySQL/MariaDB's TINYINT `1`.
                    done: matches!(col(r, 3)?.as_str(), "true" | "1"),
                    stream_start: col(r, 4)?,
                })
            })
            .collect())
    }

    /// Writes a table's progress: in the transaction of the rows it covers.
    async fn write_copy_progress(
        &mut self,
        source: &str,
        p: &CopyProgress,
    ) -> Result<(), ApplyError> {
        let template = format!(
            "INSERT INTO __S__.copy_progress (source_node, table_name, last_key, rows_copied, done, stream_start) \
             VALUES (?, ?, ?, ?::bigint, ?::boolean, ?) {}",
            self.dialect().upsert(
                "copy_progress",
                &["source_node", "table_name"],
                &[
                    ("last_key", Set::New),
                    ("rows_copied", Set::New),
                    ("done", Set::New),
                    ("updated_at", Set::Now)
                ]
            )
        );
        let params = vec![
            Some(source.into()),
            Some(p.table.clone()),
            p.last_key.clone(),
            Some(p.rows.to_string()),
            // `1`/`0`: PostgreSQL's boolean input and MySQL/MariaDB's TINYINT both read them.
            Some(if p.done { "1" } else { "0" }.into()),
            Some(p.stream_start.clone()),
        ];
        execute(self, &template, params).await.map(drop)
    }
}

impl<S: BookSession> CopyBook for S {}
