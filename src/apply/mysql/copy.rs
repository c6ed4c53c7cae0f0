//! The initial copy's bookkeeping on a MySQL/MariaDB target (`<schema>.copy_progress`).

use super::{opt, s, text, MyTarget};
use crate::apply::copy::{CopyBook, CopyProgress};
use crate::apply::error::ApplyError;

impl CopyBook for MyTarget {
    async fn read_copy_progress(&mut self, source: &str) -> Result<Vec<CopyProgress>, ApplyError> {
        let rows = self
            .book_rows(
                "SELECT table_name, last_key, CAST(rows_copied AS CHAR), CAST(done AS CHAR), stream_start \
                 FROM __S__.copy_progress WHERE source_node = ? ORDER BY table_name",
                vec![s(source)],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(CopyProgress {
                    table: text(r, 0)?,
                    last_key: text(r, 1),
                    rows: text(r, 2)?.parse().ok()?,
                    done: text(r, 3)? == "1",
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
             VALUES (?, ?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE last_key = VALUES(last_key), \
             rows_copied = VALUES(rows_copied), done = VALUES(done), updated_at = NOW(6)",
            vec![
                s(source),
                s(p.table.clone()),
                opt(p.last_key.clone()),
                s(p.rows.to_string()),
                s(if p.done { "1" } else { "0" }),
                s(p.stream_start.clone()),
            ],
        )
        .await
        .map(drop)
    }
}
