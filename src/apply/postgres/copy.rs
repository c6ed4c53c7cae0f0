//! The initial copy's bookkeeping on a PostgreSQL target (`<schema>.copy_progress`).

use super::{text, PgTarget};
use crate::apply::copy::{CopyBook, CopyProgress};
use crate::apply::error::ApplyError;

impl CopyBook for PgTarget {
    async fn read_copy_progress(&mut self, source: &str) -> Result<Vec<CopyProgress>, ApplyError> {
        let rows = self
            .book_rows(
                "SELECT table_name, last_key, rows_copied::text, done::text, stream_start \
                 FROM __S__.copy_progress WHERE source_node = $1::text ORDER BY table_name",
                &[Some(source.into())],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(CopyProgress {
                    table: text(r, 0)?,
                    last_key: text(r, 1),
                    rows: text(r, 2)?.parse().ok()?,
                    done: text(r, 3)? == "true",
                    stream_start: text(r, 4)?,
                })
            })
            .collect())
    }

    async fn write_copy_progress(
        &mut self,
        source: &str,
        p: &CopyProgress,
    ) -> Result<(), ApplyError> {
        self.book(
            "INSERT INTO __S__.copy_progress (source_node, table_name, last_key, rows_copied, done, stream_start) \
             VALUES ($1::text, $2::text, $3::text, $4::text::bigint, $5::text::boolean, $6::text) \
             ON CONFLICT (source_node, table_name) DO UPDATE SET last_key = EXCLUDED.last_key, \
             rows_copied = EXCLUDED.rows_copied, done = EXCLUDED.done, updated_at = now()",
            &[
                Some(source.into()),
                Some(p.table.clone()),
                p.last_key.clone(),
                Some(p.rows.to_string()),
                Some(p.done.to_string()),
                Some(p.stream_start.clone()),
            ],
        )
        .await
        .map(drop)
    }
}
