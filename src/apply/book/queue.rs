//! The conflict audit log and the review queue's statements (see the parent module).

use super::{col, execute, id_text, query, BookSession, TextRow};
use crate::apply::dialect::Dialect;
use crate::apply::error::ApplyError;
use crate::apply::target::OpenEntry;
use crate::conflict::audit::{ConflictRecord, ConflictState, StoredConflict};

const CONFLICT_COLUMNS: &str =
    "{text:id}, link, source_node, table_name, target_table, COALESCE(row_key, ''), kind, \
    {text:before_image}, {text:current_image}, {text:incoming_image}, decision, rule, state, \
    source_position, {text:payload}, {text:detected_at}, {text:resolved_at}, resolution, resolved_by, \
    note, {age:detected_at}";

fn stored_conflict(r: &TextRow) -> Option<StoredConflict> {
    let json = |i| col(r, i).and_then(|t| serde_json::from_str(&t).ok());
    Some(StoredConflict {
        id: col(r, 0)?.parse().ok()?,
        record: ConflictRecord {
            link: col(r, 1)?,
            source_node: col(r, 2)?,
            table: col(r, 3)?,
            target_table: col(r, 4)?,
            key: col(r, 5)?,
            kind: col(r, 6)?,
            before: json(7),
            current: json(8),
            incoming: json(9),
            decision: col(r, 10)?,
            rule: col(r, 11)?,
            state: ConflictState::parse(&col(r, 12)?)?,
            source_position: col(r, 13),
            payload: col(r, 14),
        },
        detected_at: col(r, 15)?,
        resolved_at: col(r, 16),
        resolution: col(r, 17),
        resolved_by: col(r, 18),
        note: col(r, 19),
        age_seconds: col(r, 20).and_then(|t| t.parse().ok()),
    })
}

/// The conflict audit log and the review queue (entries not yet `resolved`).
#[allow(async_fn_in_trait)]
pub(crate) trait ReviewQueue: BookSession {
    /// Records a conflict decision (or a parked change); its id.
    async fn insert_conflict(&mut self, r: &ConflictRecord) -> Result<i64, ApplyError> {
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|j| j.to_string());
        let sql = self.dialect().render(
            "INSERT INTO __S__.conflict (link, source_node, table_name, target_table, row_key, kind, \
             before_image, current_image, incoming_image, decision, rule, state, source_position, payload) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            self.book_schema(),
        );
        let params = vec![
            Some(r.link.clone()),
            Some(r.source_node.clone()),
            Some(r.table.clone()),
            Some(r.target_table.clone()),
            // A table-wide record (a truncate) has no key (bookkeeping version 6).
            (!r.key.is_empty()).then(|| r.key.clone()),
            Some(r.kind.clone()),
            json(&r.before),
            json(&r.current),
            json(&r.incoming),
            Some(r.decision.clone()),
            Some(r.rule.clone()),
            Some(r.state.as_str().into()),
            r.source_position.clone(),
            r.payload.clone(),
        ];
        self.book_insert(&sql, params).await
    }

    /// The current-row images (`{column: text}`) recorded by the latest merges (at most 100) of
    /// a key's changes from `source`, newest first.
    async fn recent_merge_bases(
        &mut self,
        target_table: &str,
        key: &str,
        source: &str,
    ) -> Result<Vec<String>, ApplyError> {
        let rows = query(
            self,
            "SELECT {text:current_image} FROM __S__.conflict WHERE target_table = ? AND row_key = ? \
             AND source_node = ? AND decision = 'merge' ORDER BY id DESC LIMIT 100",
            vec![
                Some(target_table.into()),
                Some(key.into()),
                Some(source.into()),
            ],
        )
        .await?;
        Ok(rows.iter().filter_map(|r| col(r, 0)).collect())
    }

    /// The kind and stored change of the latest conflict record of a key's change from `source`.
    async fn last_conflict_change(
        &mut self,
        target_table: &str,
        key: &str,
        source: &str,
    ) -> Result<Option<(String, Option<String>)>, ApplyError> {
        let rows = query(
            self,
            "SELECT kind, {text:payload} FROM __S__.conflict WHERE target_table = ? AND row_key = ? \
             AND source_node = ? ORDER BY id DESC LIMIT 1",
            vec![
                Some(target_table.into()),
                Some(key.into()),
                Some(source.into()),
            ],
        )
        .await?;
        Ok(rows.first().and_then(|r| Some((col(r, 0)?, col(r, 1)))))
    }

    /// Open queue entries for a key, oldest first, locked.
    async fn open_entries(
        &mut self,
        target_table: &str,
        key: &str,
    ) -> Result<Vec<OpenEntry>, ApplyError> {
        let rows = query(
            self,
            "SELECT {text:id}, state, source_node, {text:payload} FROM __S__.conflict \
             WHERE target_table = ? AND row_key = ? AND state <> 'resolved' ORDER BY id FOR UPDATE",
            vec![Some(target_table.into()), Some(key.into())],
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(OpenEntry {
                    id: col(r, 0)?.parse().ok()?,
                    state: ConflictState::parse(&col(r, 1)?)?,
                    source_node: col(r, 2)?,
                    payload: col(r, 3),
                })
            })
            .collect())
    }

    /// Those of `keys` of `target_table` with an open queue entry, read now (inside the caller's
    /// transaction): whichever link into this node parked a key, every link holds it.
    async fn open_keys(
        &mut self,
        target_table: &str,
        keys: &[String],
    ) -> Result<Vec<String>, ApplyError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (cond, list) = self.dialect().one_of("row_key", keys);
        let mut params = vec![Some(target_table.to_string())];
        params.extend(list);
        let template = format!(
            "SELECT DISTINCT row_key FROM __S__.conflict \
             WHERE target_table = ? AND {cond} AND state <> 'resolved'"
        );
        let sql = self.dialect().render(&template, self.book_schema());
        let varying = self.dialect() == Dialect::Mysql;
        let rows = self.book_query(&sql, params, varying).await?;
        Ok(rows.iter().filter_map(|r| col(r, 0)).collect())
    }

    /// Moves entry `id` to `state`; `resolved` stamps the time, `resolution` says how.
    async fn set_conflict_state(
        &mut self,
        id: i64,
        state: ConflictState,
        resolution: Option<&str>,
    ) -> Result<(), ApplyError> {
        execute(
            self,
            "UPDATE __S__.conflict SET state = ?, resolution = COALESCE(?, resolution), \
             resolved_at = CASE WHEN ? = 'resolved' THEN {now} ELSE resolved_at END WHERE id = ?::bigint",
            vec![
                Some(state.as_str().into()),
                resolution.map(str::to_string),
                Some(state.as_str().into()),
                id_text(id),
            ],
        )
        .await
        .map(drop)
    }

    /// Records who resolved entry `id` and why (bookkeeping version 10).
    async fn annotate_conflict(&mut self, id: i64, by: &str, note: &str) -> Result<(), ApplyError> {
        execute(
            self,
            "UPDATE __S__.conflict SET resolved_by = ?, note = ? WHERE id = ?::bigint",
            vec![
                (!by.is_empty()).then(|| by.into()),
                (!note.is_empty()).then(|| note.into()),
                id_text(id),
            ],
        )
        .await
        .map(drop)
    }

    /// The newest `limit` records (`open_only`: the queue's entries only), newest first.
    async fn list_conflicts(
        &mut self,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<StoredConflict>, ApplyError> {
        let filter = if open_only {
            "WHERE state <> 'resolved'"
        } else {
            ""
        };
        let rows = query(
            self,
            &format!(
                "SELECT {CONFLICT_COLUMNS} FROM __S__.conflict {filter} ORDER BY id DESC LIMIT {}",
                limit.max(0)
            ),
            vec![],
        )
        .await?;
        Ok(rows.iter().filter_map(stored_conflict).collect())
    }

    /// Record `id`, locked.
    async fn get_conflict(&mut self, id: i64) -> Result<Option<StoredConflict>, ApplyError> {
        let rows = query(
            self,
            &format!(
                "SELECT {CONFLICT_COLUMNS} FROM __S__.conflict WHERE id = ?::bigint FOR UPDATE"
            ),
            vec![id_text(id)],
        )
        .await?;
        Ok(rows.first().and_then(stored_conflict))
    }
}

impl<S: BookSession> ReviewQueue for S {}
