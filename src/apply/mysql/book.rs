//! The bookkeeping queries on a MySQL/MariaDB target: the checkpoint, the installed schema versions,
//! tombstones, the conflict review queue and dead letters (`<schema>.*`; the initial copy's
//! progress is in `copy.rs`). The [`Target`](crate::apply::target::Target) impl in `mod.rs`
//! delegates to these methods, which inherent method resolution picks over the trait's.

use mysql_async::Value as My;

use super::{
    dead_letter, micros_text, opt, s, stored_conflict, text, MyTarget, CONFLICT_COLUMNS,
    DEAD_COLUMNS,
};
use crate::apply::error::ApplyError;
use crate::apply::target::{DeadLetter, OpenEntry, Tombstone};
use crate::conflict::audit::{ConflictRecord, ConflictState, StoredConflict};

impl MyTarget {
    pub(super) async fn schema_versions(&mut self) -> Result<Vec<i32>, ApplyError> {
        let rows = self
            .book_rows(
                "SELECT CAST(version AS CHAR) FROM __S__.schema_version",
                vec![],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| text(r, 0)?.parse().ok())
            .collect())
    }

    pub(super) async fn read_checkpoint(
        &mut self,
        source: &str,
    ) -> Result<Option<String>, ApplyError> {
        let rows = self
            .book_rows(
                "SELECT position FROM __S__.checkpoint WHERE source_node = ?",
                vec![s(source)],
            )
            .await?;
        Ok(rows.first().and_then(|r| text(r, 0)))
    }

    pub(super) async fn write_checkpoint(
        &mut self,
        source: &str,
        position: &str,
        commit_time: i64,
    ) -> Result<(), ApplyError> {
        self.book(
            "INSERT INTO __S__.checkpoint (source_node, position, commit_time, applied_at) VALUES (?, ?, ?, NOW(6)) \
             ON DUPLICATE KEY UPDATE position = VALUES(position), commit_time = VALUES(commit_time), applied_at = NOW(6)",
            vec![s(source), s(position), micros_text(commit_time)],
        )
        .await
        .map(drop)
    }

    pub(super) async fn touch_checkpoint(&mut self, source: &str) -> Result<(), ApplyError> {
        self.book(
            "UPDATE __S__.checkpoint SET applied_at = SYSDATE(6) WHERE source_node = ?",
            vec![s(source)],
        )
        .await
        .map(drop)
    }

    pub(super) async fn tombstones(
        &mut self,
        target_table: &str,
        key: &str,
    ) -> Result<Vec<Tombstone>, ApplyError> {
        let rows = self
            .book_rows(
                "SELECT CAST(version AS CHAR), node FROM __S__.tombstone WHERE target_table = ? AND row_key = ?",
                vec![s(target_table), s(key)],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Tombstone {
                    version: text(r, 0)?.parse().ok()?,
                    node: text(r, 1).unwrap_or_default(),
                })
            })
            .collect())
    }

    pub(super) async fn prune_tombstones(
        &mut self,
        older_than_secs: u64,
    ) -> Result<u64, ApplyError> {
        self.book(
            "DELETE FROM __S__.tombstone WHERE deleted_at < NOW(6) - INTERVAL ? SECOND",
            vec![s(older_than_secs.to_string())],
        )
        .await
    }

    pub(super) async fn put_tombstone(
        &mut self,
        target_table: &str,
        key: &str,
        stone: &Tombstone,
    ) -> Result<(), ApplyError> {
        self.book(
            "INSERT INTO __S__.tombstone (target_table, row_key, version, node) VALUES (?, ?, ?, ?) \
             ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version)), deleted_at = NOW(6)",
            vec![
                s(target_table),
                s(key),
                s(stone.version.to_string()),
                s(&stone.node),
            ],
        )
        .await?;
        Ok(())
    }

    pub(super) async fn put_tombstones(
        &mut self,
        target_table: &str,
        stones: &[(String, Tombstone)],
    ) -> Result<(), ApplyError> {
        if stones.is_empty() {
            return Ok(());
        }
        let mut params = Vec::with_capacity(stones.len() * 4);
        for (key, stone) in stones {
            params.extend([
                s(target_table),
                s(key.as_str()),
                s(stone.version.to_string()),
                s(&stone.node),
            ]);
        }
        let rows = vec!["(?, ?, ?, ?)"; stones.len()].join(", ");
        self.book(
            &format!(
                "INSERT INTO __S__.tombstone (target_table, row_key, version, node) VALUES {rows} \
                 ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version)), deleted_at = NOW(6)"
            ),
            params,
        )
        .await?;
        Ok(())
    }

    pub(super) async fn any_tombstone(
        &mut self,
        target_table: &str,
        keys: &[String],
    ) -> Result<bool, ApplyError> {
        if keys.is_empty() {
            return Ok(false);
        }
        let marks = vec!["?"; keys.len()].join(", ");
        let mut params = vec![s(target_table)];
        params.extend(keys.iter().map(|k| s(k.as_str())));
        let rows = self
            .book_rows(
                &format!(
                    "SELECT 1 FROM __S__.tombstone WHERE target_table = ? AND row_key IN ({marks}) LIMIT 1"
                ),
                params,
            )
            .await?;
        Ok(!rows.is_empty())
    }

    pub(super) async fn insert_conflict(&mut self, r: &ConflictRecord) -> Result<i64, ApplyError> {
        let json = |v: &Option<serde_json::Value>| opt(v.as_ref().map(|j| j.to_string()));
        self.book(
            "INSERT INTO __S__.conflict (link, source_node, table_name, target_table, row_key, kind, \
             before_image, current_image, incoming_image, decision, rule, state, source_position, payload) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                s(&*r.link),
                s(&*r.source_node),
                s(&*r.table),
                s(&*r.target_table),
                // A table-wide record (a truncate) has no key (bookkeeping version 6).
                opt((!r.key.is_empty()).then(|| r.key.clone())),
                s(&*r.kind),
                json(&r.before),
                json(&r.current),
                json(&r.incoming),
                s(&*r.decision),
                s(&*r.rule),
                s(r.state.as_str()),
                opt(r.source_position.clone()),
                opt(r.payload.clone()),
            ],
        )
        .await?;
        Ok(self.last_id().await)
    }

    pub(super) async fn open_entries(
        &mut self,
        target_table: &str,
        key: &str,
    ) -> Result<Vec<OpenEntry>, ApplyError> {
        let rows = self
            .book_rows(
                "SELECT CAST(id AS CHAR), state, source_node, payload FROM __S__.conflict \
                 WHERE target_table = ? AND row_key = ? AND state <> 'resolved' ORDER BY id FOR UPDATE",
                vec![s(target_table), s(key)],
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(OpenEntry {
                    id: text(r, 0)?.parse().ok()?,
                    state: ConflictState::parse(&text(r, 1)?)?,
                    source_node: text(r, 2)?,
                    payload: text(r, 3),
                })
            })
            .collect())
    }

    pub(super) async fn open_keys(
        &mut self,
        target_table: &str,
        keys: &[String],
    ) -> Result<Vec<String>, ApplyError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let marks = vec!["?"; keys.len()].join(", ");
        let mut params = vec![s(target_table)];
        params.extend(keys.iter().map(|k| s(k.as_str())));
        let rows = self
            .book_rows(
                &format!(
                    "SELECT DISTINCT row_key FROM __S__.conflict \
                     WHERE target_table = ? AND row_key IN ({marks}) AND state <> 'resolved'"
                ),
                params,
            )
            .await?;
        Ok(rows.iter().filter_map(|r| text(r, 0)).collect())
    }

    pub(super) async fn set_conflict_state(
        &mut self,
        id: i64,
        state: ConflictState,
        resolution: Option<&str>,
    ) -> Result<(), ApplyError> {
        self.book(
            "UPDATE __S__.conflict SET state = ?, resolution = COALESCE(?, resolution), \
             resolved_at = IF(state = 'resolved', NOW(6), resolved_at) WHERE id = ?",
            vec![s(state.as_str()), opt(resolution), My::Int(id)],
        )
        .await
        .map(drop)
    }

    pub(super) async fn list_conflicts(
        &mut self,
        open_only: bool,
        limit: i64,
    ) -> Result<Vec<StoredConflict>, ApplyError> {
        let filter = if open_only {
            "WHERE state <> 'resolved'"
        } else {
            ""
        };
        let rows = self
            .book_rows(
                &format!("SELECT {CONFLICT_COLUMNS} FROM __S__.conflict {filter} ORDER BY id DESC LIMIT ?"),
                vec![My::Int(limit)],
            )
            .await?;
        Ok(rows.iter().filter_map(stored_conflict).collect())
    }

    pub(super) async fn get_conflict(
        &mut self,
        id: i64,
    ) -> Result<Option<StoredConflict>, ApplyError> {
        let rows = self
            .book_rows(
                &format!("SELECT {CONFLICT_COLUMNS} FROM __S__.conflict WHERE id = ? FOR UPDATE"),
                vec![My::Int(id)],
            )
            .await?;
        Ok(rows.first().and_then(stored_conflict))
    }

    pub(super) async fn insert_dead_letter(&mut self, d: &DeadLetter) -> Result<i64, ApplyError> {
        self.book(
            "INSERT INTO __S__.dead_letter (link, source_node, source_position, commit_time, payload, error, attempts, state) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            vec![
                s(&*d.link),
                s(&*d.source_node),
                s(&*d.source_position),
                d.commit_time.map_or(My::NULL, micros_text),
                s(&*d.payload),
                s(&*d.error),
                My::Int(i64::from(d.attempts)),
                s(&*d.state),
            ],
        )
        .await?;
        Ok(self.last_id().await)
    }

    pub(super) async fn insert_dead_letter_part(
        &mut self,
        id: i64,
        part: i32,
        payload: &str,
    ) -> Result<(), ApplyError> {
        self.book(
            "INSERT INTO __S__.dead_letter_part (dead_letter_id, part, payload) VALUES (?, ?, ?)",
            vec![My::Int(id), My::Int(i64::from(part)), s(payload)],
        )
        .await
        .map(drop)
    }

    pub(super) async fn dead_letter_part(
        &mut self,
        id: i64,
        part: i32,
    ) -> Result<Option<String>, ApplyError> {
        let rows = self
            .book_rows(
                "SELECT payload FROM __S__.dead_letter_part WHERE dead_letter_id = ? AND part = ?",
                vec![My::Int(id), My::Int(i64::from(part))],
            )
            .await?;
        Ok(rows.first().and_then(|r| text(r, 0)))
    }

    pub(super) async fn list_dead_letters(
        &mut self,
        open_only: bool,
    ) -> Result<Vec<DeadLetter>, ApplyError> {
        let filter = if open_only {
            "WHERE state = 'open'"
        } else {
            ""
        };
        let rows = self
            .book_rows(
                &format!("SELECT {DEAD_COLUMNS} FROM __S__.dead_letter {filter} ORDER BY id"),
                vec![],
            )
            .await?;
        Ok(rows.iter().filter_map(dead_letter).collect())
    }

    pub(super) async fn get_dead_letter(
        &mut self,
        id: i64,
    ) -> Result<Option<DeadLetter>, ApplyError> {
        let rows = self
            .book_rows(
                &format!("SELECT {DEAD_COLUMNS} FROM __S__.dead_letter WHERE id = ? FOR UPDATE"),
                vec![My::Int(id)],
            )
            .await?;
        Ok(rows.first().and_then(dead_letter))
    }

    pub(super) async fn set_dead_letter(
        &mut self,
        id: i64,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), ApplyError> {
        self.book(
            "UPDATE __S__.dead_letter SET attempts = attempts + IF(? IS NULL, 0, 1), state = ?, \
             error = COALESCE(?, error), last_attempt_at = NOW(6) WHERE id = ?",
            vec![opt(error), s(state), opt(error), My::Int(id)],
        )
        .await
        .map(drop)
    }
}
