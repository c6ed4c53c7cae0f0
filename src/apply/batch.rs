//! Batched inserts: consecutive inserts into one table in one source transaction become one locking
//! existence check and one multi-row insert, instead of a statement per row. Rows whose key exists
//! take the ordinary conflict path, one by one; anything unusual (a queued key, differing column
//! sets, a key twice in the run, a race with a local insert) falls back to the row-by-row path, which
//! gives the same result.

use std::collections::HashSet;

use super::error::ApplyError;
use super::link::{with_row_context, Link, TxMeta};
use super::row::RowChange;
use super::target::{Target, Write};
use crate::model::Change;

/// Rows per batch (keeps statements well under the engines' parameter limits).
pub const MAX_ROWS: usize = 500;

impl<T: Target> Link<T> {
    pub(super) async fn apply_inserts(
        &mut self,
        changes: &[Change],
        meta: &TxMeta,
    ) -> Result<(), ApplyError> {
        let mapper = self.mapper.clone();
        let plan = match changes
            .first()
            .and_then(|c| mapper.plan_for_source(&c.table))
        {
            Some(p) if p.owner.as_deref().is_none_or(|o| o == self.ctx.source) => p,
            _ => return self.one_by_one(changes, meta).await,
        };
        self.last_plan = Some(plan.clone());
        let info = self.t.table(&plan.target).await?;
        let mut rows = Vec::with_capacity(changes.len());
        for c in changes {
            let Some(mapped) = mapper.map(c) else {
                continue;
            };
            let mapped = mapped?;
            rows.push(RowChange::new(
                plan,
                &info,
                &self.ctx.names,
                c,
                &mapped,
                &meta.origin,
                meta.commit_time,
            ));
        }
        let table = info.table.to_string();
        let keys: HashSet<String> = rows.iter().map(RowChange::key_text).collect();
        let shape = |r: &RowChange| {
            r.full_write()
                .set
                .iter()
                .map(|f| f.name.clone())
                .collect::<Vec<_>>()
        };
        let uniform = rows.windows(2).all(|w| shape(&w[0]) == shape(&w[1]));
        let queued = keys
            .iter()
            .any(|k| self.open_keys.contains(&(table.clone(), k.clone())));
        let tombstones = plan.managed_version && self.t.any_tombstone(&table).await?;
        if keys.len() != rows.len()
            || !uniform
            || queued
            || tombstones
            || rows.iter().any(|r| r.key.is_empty())
        {
            return self.one_by_one(changes, meta).await;
        }
        let key_lists: Vec<_> = rows.iter().map(|r| r.key.clone()).collect();
        let exists = self
            .t
            .existing(&info, &key_lists)
            .await
            .map_err(|e| with_row_context(e, plan, &info))?;
        let writes: Vec<Write> = rows
            .iter()
            .zip(&exists)
            .filter(|(_, e)| !**e)
            .map(|(r, _)| r.full_write())
            .collect();
        let inserted = writes.is_empty()
            || self
                .t
                .insert_many(&info, &writes)
                .await
                .map_err(|e| with_row_context(e, plan, &info))?;
        if !inserted {
            // A local insert raced in between the check and the insert: decide row by row.
            return self.one_by_one(changes, meta).await;
        }
        for (row, _) in rows.into_iter().zip(exists).filter(|(_, e)| *e) {
            self.conflict(plan, &info, row, meta.position.as_deref())
                .await
                .map_err(|e| with_row_context(e, plan, &info))?;
        }
        Ok(())
    }

    async fn one_by_one(&mut self, changes: &[Change], meta: &TxMeta) -> Result<(), ApplyError> {
        for c in changes {
            self.apply_change(c, meta).await?;
        }
        Ok(())
    }
}
