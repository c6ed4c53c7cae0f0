//! The last `tandem verify` of each business table, as a node took part in it
//! (`<schema>.verify_result`, bookkeeping version 9).

use super::{execute, BookSession};
use crate::apply::dialect::Set;
use crate::apply::error::ApplyError;

/// One table's result of a verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyResult {
    pub table: String,
    pub rows: u64,
    pub differences: u64,
    pub repaired: u64,
    /// The nodes compared, comma-separated.
    pub nodes: String,
}

#[allow(async_fn_in_trait)]
pub(crate) trait VerifyResults: BookSession {
    /// Replaces the table's last result with `r`, stamped now.
    async fn record_verify(&mut self, r: &VerifyResult) -> Result<(), ApplyError> {
        let d = self.dialect();
        let template = format!(
            "INSERT INTO __S__.verify_result (table_name, finished_at, rows_compared, differences, repaired, nodes) \
             VALUES (?, {{now}}, ?::bigint, ?::bigint, ?::bigint, ?) {}",
            d.upsert(
                "verify_result",
                &["table_name"],
                &[
                    ("finished_at", Set::Now),
                    ("rows_compared", Set::New),
                    ("differences", Set::New),
                    ("repaired", Set::New),
                    ("nodes", Set::New),
                ]
            )
        );
        let params = vec![
            Some(r.table.clone()),
            Some(r.rows.to_string()),
            Some(r.differences.to_string()),
            Some(r.repaired.to_string()),
            Some(r.nodes.clone()),
        ];
        execute(self, &template, params).await.map(drop)
    }
}

impl<S: BookSession> VerifyResults for S {}
