//! The bookkeeping queries on a PostgreSQL target: the checkpoint, the installed schema versions,
//! tombstones, the conflict review queue and dead letters (`<schema>.*`; the initial copy's
//! progress is in `copy.rs`). The [`Target`](crate::apply::target::Target) impl in `mod.rs`
//! delegates to these methods, which inherent method resolution picks over the trait's.

use super::sql::{ident, Sql};
use super::{
    dead_letter, micros_text, stored_conflict, text, PgTarget, CONFLICT_COLUMNS, DEAD_COLUMNS,
};
use crate::apply::error::ApplyError;
use crate::apply::target::{DeadLetter, OpenEntry, Tombstone};
use crate::conflict::audit::{ConflictRecord, ConflictState, StoredConflict};

impl PgTarget {
    pub(super) async fn schema_versions(&mut self) -> Result<Vec<i32>, ApplyError> {
        let rows = self
            .book_rows("SELECT version::text FROM __S__.schema_version", &[])
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
                "SELECT position FROM __S__.checkpoint WHERE source_node = $1::text",
                &[Some(source.to_string())],
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
            "INSERT INTO __S__.checkpoint (source_node, position, commit_time, applied_at) \
             VALUES ($1::text, $2::text, $3::text::timestamptz, now()) ON CONFLICT (source_node) DO UPDATE \
             SET position = EXCLUDED.position, commit_time = EXCLUDED.commit_time, applied_at = now()",
            &[Some(source.into()), Some(position.into()), micros_text(commit_time)],
        )
        .await
        .map(drop)
    }

    pub(super) async fn touch_checkpoint(&mut self, source: &str) -> Result<(), ApplyError> {
        self.book(
            "UPDATE __S__.checkpoint SET applied_at = clock_timestamp() WHERE source_node = $1::text",
            &[Some(source.into())],
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
                "SELECT version::text, node FROM __S__.tombstone WHERE target_table = $1::text AND row_key = $2::text",
                &[Some(target_table.into()), Some(key.into())],
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
            "DELETE FROM __S__.tombstone WHERE deleted_at < now() - make_interval(secs => $1::text::double precision)",
            &[Some(older_than_secs.to_string())],
        )
        .await
    }

    pub(super) async fn put_tombstone(
        &mut self,
        target_table: &str,
        key: &str,
        stone: &Tombstone,
    ) -> Result<(), ApplyError> {
        self.book_rows(
            "INSERT INTO __S__.tombstone AS t (target_table, row_key, version, node) \
             VALUES ($1::text, $2::text, $3::text::bigint, $4::text) \
             ON CONFLICT (target_table, row_key, node) DO UPDATE SET \
             version = greatest(t.version, EXCLUDED.version), deleted_at = now()",
            &[
                Some(target_table.into()),
                Some(key.into()),
                Some(stone.version.to_string()),
                Some(stone.node.clone()),
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
        let mut params = vec![Some(target_table.to_string())];
        let mut rows = Vec::with_capacity(stones.len());
        for (key, stone) in stones {
            let n = params.len();
            rows.push(format!(
                "($1::text, ${}::text, ${}::text::bigint, ${}::text)",
                n + 1,
                n + 2,
                n + 3
            ));
            params.extend([
                Some(key.clone()),
                Some(stone.version.to_string()),
                Some(stone.node.clone()),
            ]);
        }
        let sql = Sql {
            text: format!(
                "INSERT INTO {}.tombstone AS t (target_table, row_key, version, node) VALUES {} \
                 ON CONFLICT (target_table, row_key, node) DO UPDATE SET \
                 version = greatest(t.version, EXCLUDED.version), deleted_at = now()",
                ident(&self.schema),
                rows.join(", ")
            ),
            params,
        };
        let r = self.run_unprepared(&sql).await;
        r.map(drop)
            .map_err(|e| self.db_err("a bookkeeping statement", e))
    }

    pub(super) async fn any_tombstone(
        &mut self,
        target_table: &str,
        keys: &[String],
    ) -> Result<bool, ApplyError> {
        let text = format!(
            "SELECT 1 FROM {}.tombstone WHERE target_table = $1::text AND row_key = ANY($2::text[]) LIMIT 1",
            ident(&self.schema)
        );
        let r = async {
            let stmt = self.prepared(&text).await?;
            self.client.query(&stmt, &[&target_table, &keys]).await
        }
        .await;
        r.map(|rows| !rows.is_empty())
            .map_err(|e| self.db_err("a bookkeeping statement", e))
    }

    pub(super) async fn insert_conflict(&mut self, r: &ConflictRecord) -> Result<i64, ApplyError> {
        let json = |v: &Option<serde_json::Value>| v.as_ref().map(|j| j.to_string());
        let rows = self
            .book_rows(
                "INSERT INTO __S__.conflict (link, source_node, table_name, target_table, row_key, kind, \
                 before_image, current_image, incoming_image, decision, rule, state, source_position, payload) \
                 VALUES ($1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text::jsonb, $8::text::jsonb, \
                 $9::text::jsonb, $10::text, $11::text, $12::text, $13::text, $14::text::jsonb) RETURNING id::text",
                &[
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
                ],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| text(r, 0))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0))
    }

    pub(super) async fn open_entries(
        &mut self,
        target_table: &str,
        key: &str,
    ) -> Result<Vec<OpenEntry>, ApplyError> {
        let rows = self
            .book_rows(
                "SELECT id::text, state, source_node, payload::text FROM __S__.conflict \
                 WHERE target_table = $1::text AND row_key = $2::text AND state <> 'resolved' ORDER BY id FOR UPDATE",
                &[Some(target_table.into()), Some(key.into())],
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
        let sql = format!(
            "SELECT DISTINCT row_key FROM {}.conflict \
             WHERE target_table = $1::text AND row_key = ANY($2::text[]) AND state <> 'resolved'",
            ident(&self.schema)
        );
        let r = async {
            let stmt = self.prepared(&sql).await?;
            self.client.query(&stmt, &[&target_table, &keys]).await
        }
        .await;
        r.map(|rows| rows.iter().filter_map(|r| text(r, 0)).collect())
            .map_err(|e| self.db_err("a bookkeeping statement", e))
    }

    pub(super) async fn set_conflict_state(
        &mut self,
        id: i64,
        state: ConflictState,
        resolution: Option<&str>,
    ) -> Result<(), ApplyError> {
        self.book(
            "UPDATE __S__.conflict SET state = $2::text, resolution = coalesce($3::text, resolution), \
             resolved_at = CASE WHEN $2::text = 'resolved' THEN now() ELSE resolved_at END WHERE id = $1::text::bigint",
            &[Some(id.to_string()), Some(state.as_str().into()), resolution.map(str::to_string)],
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
                &format!("SELECT {CONFLICT_COLUMNS} FROM __S__.conflict {filter} ORDER BY id DESC LIMIT $1::text::bigint"),
                &[Some(limit.to_string())],
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
                &format!("SELECT {CONFLICT_COLUMNS} FROM __S__.conflict WHERE id = $1::text::bigint FOR UPDATE"),
                &[Some(id.to_string())],
            )
            .await?;
        Ok(rows.first().and_then(stored_conflict))
    }

    pub(super) async fn insert_dead_letter(&mut self, d: &DeadLetter) -> Result<i64, ApplyError> {
        let rows = self
            .book_rows(
                "INSERT INTO __S__.dead_letter (link, source_node, source_position, commit_time, payload, error, attempts, state) \
                 VALUES ($1::text, $2::text, $3::text, $4::text::timestamptz, $5::text::jsonb, $6::text, $7::text::int, $8::text) RETURNING id::text",
                &[
                    Some(d.link.clone()),
                    Some(d.source_node.clone()),
                    Some(d.source_position.clone()),
                    d.commit_time.and_then(micros_text),
                    Some(d.payload.clone()),
                    Some(d.error.clone()),
                    Some(d.attempts.to_string()),
                    Some(d.state.clone()),
                ],
            )
            .await?;
        Ok(rows
            .first()
            .and_then(|r| text(r, 0))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0))
    }

    pub(super) async fn insert_dead_letter_part(
        &mut self,
        id: i64,
        part: i32,
        payload: &str,
    ) -> Result<(), ApplyError> {
        self.book(
            "INSERT INTO __S__.dead_letter_part (dead_letter_id, part, payload) \
             VALUES ($1::text::bigint, $2::text::int, $3::text)",
            &[
                Some(id.to_string()),
                Some(part.to_string()),
                Some(payload.to_string()),
            ],
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
                "SELECT payload FROM __S__.dead_letter_part \
                 WHERE dead_letter_id = $1::text::bigint AND part = $2::text::int",
                &[Some(id.to_string()), Some(part.to_string())],
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
                &[],
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
                &format!("SELECT {DEAD_COLUMNS} FROM __S__.dead_letter WHERE id = $1::text::bigint FOR UPDATE"),
                &[Some(id.to_string())],
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
            "UPDATE __S__.dead_letter SET state = $2::text, error = coalesce($3::text, error), \
             attempts = attempts + CASE WHEN $3::text IS NULL THEN 0 ELSE 1 END, last_attempt_at = now() \
             WHERE id = $1::text::bigint",
            &[Some(id.to_string()), Some(state.into()), error.map(str::to_string)],
        )
        .await
        .map(drop)
    }
}
