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

use super::copy::CopyProgress;
use super::dialect::{Dialect, Set};
use super::error::ApplyError;
use super::target::{DeadLetter, OpenEntry, Tombstone};
use crate::conflict::audit::{ConflictRecord, ConflictState, StoredConflict};

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
        let d = self.dialect();
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
        execute(self, &template, params).await.map(drop)
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
    /// The tombstones of a key: one per node whose deletes of it this node has seen.
    async fn tombstones(
        &mut self,
        target_table: &str,
        key: &str,
    ) -> Result<Vec<Tombstone>, ApplyError> {
        let rows = query(
            self,
            "SELECT {text:version}, node FROM __S__.tombstone WHERE target_table = ? AND row_key = ?",
            vec![Some(target_table.into()), Some(key.into())],
        )
        .await?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                Some(Tombstone {
                    version: col(r, 0)?.parse().ok()?,
                    node: col(r, 1).unwrap_or_default(),
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

    /// Whether any of `keys` of the table has a tombstone.
    async fn any_tombstone(
        &mut self,
        target_table: &str,
        keys: &[String],
    ) -> Result<bool, ApplyError> {
        if keys.is_empty() {
            return Ok(false);
        }
        let (cond, list) = self.dialect().one_of("row_key", keys);
        let mut params = vec![Some(target_table.to_string())];
        params.extend(list);
        let template =
            format!("SELECT 1 FROM __S__.tombstone WHERE target_table = ? AND {cond} LIMIT 1");
        let sql = self.dialect().render(&template, self.book_schema());
        let varying = self.dialect() == Dialect::Mysql;
        Ok(!self.book_query(&sql, params, varying).await?.is_empty())
    }
}

impl<S: BookSession> Tombstones for S {}

const CONFLICT_COLUMNS: &str =
    "{text:id}, link, source_node, table_name, target_table, COALESCE(row_key, ''), kind, \
    {text:before_image}, {text:current_image}, {text:incoming_image}, decision, rule, state, \
    source_position, {text:payload}, {text:detected_at}, {text:resolved_at}, resolution";

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

const DEAD_COLUMNS: &str = "{text:id}, link, source_node, source_position, \
    {micros:commit_time}, {text:payload}, error, {text:attempts}, state";

fn dead_letter(r: &TextRow) -> Option<DeadLetter> {
    Some(DeadLetter {
        id: col(r, 0)?.parse().ok()?,
        link: col(r, 1)?,
        source_node: col(r, 2)?,
        source_position: col(r, 3)?,
        commit_time: col(r, 4).and_then(|t| t.parse().ok()),
        payload: col(r, 5)?,
        error: col(r, 6)?,
        attempts: col(r, 7)?.parse().ok()?,
        state: col(r, 8)?,
    })
}

/// Transactions that failed with a definite error (see `dead_letter.rs` for recording and replay).
#[allow(async_fn_in_trait)]
pub(crate) trait DeadLetters: BookSession {
    /// Records a dead letter whose `payload` is its part 0; its id.
    async fn insert_dead_letter(&mut self, d: &DeadLetter) -> Result<i64, ApplyError> {
        let sql = self.dialect().render(
            "INSERT INTO __S__.dead_letter (link, source_node, source_position, commit_time, payload, error, attempts, state) \
             VALUES (?, ?, ?, ?::timestamptz, ?, ?, ?::int, ?)",
            self.book_schema(),
        );
        let params = vec![
            Some(d.link.clone()),
            Some(d.source_node.clone()),
            Some(d.source_position.clone()),
            d.commit_time.map(|t| self.dialect().timestamp(t)),
            Some(d.payload.clone()),
            Some(d.error.clone()),
            Some(d.attempts.to_string()),
            Some(d.state.clone()),
        ];
        self.book_insert(&sql, params).await
    }

    /// Stores part `part` (1, 2, …) of dead letter `id`'s changes, a JSON array; part 0 is the dead
    /// letter's own `payload`. In the transaction that inserted the dead letter.
    async fn insert_dead_letter_part(
        &mut self,
        id: i64,
        part: i32,
        payload: &str,
    ) -> Result<(), ApplyError> {
        execute(
            self,
            "INSERT INTO __S__.dead_letter_part (dead_letter_id, part, payload) VALUES (?::bigint, ?::int, ?)",
            vec![id_text(id), Some(part.to_string()), Some(payload.to_string())],
        )
        .await
        .map(drop)
    }

    /// Part `part` (1, 2, …) of dead letter `id`'s changes; `None` past its last part.
    async fn dead_letter_part(&mut self, id: i64, part: i32) -> Result<Option<String>, ApplyError> {
        let rows = query(
            self,
            "SELECT payload FROM __S__.dead_letter_part WHERE dead_letter_id = ?::bigint AND part = ?::int",
            vec![id_text(id), Some(part.to_string())],
        )
        .await?;
        Ok(rows.first().and_then(|r| col(r, 0)))
    }

    /// Every dead letter (`open_only`: those not replayed), oldest first, with part 0 only.
    async fn list_dead_letters(&mut self, open_only: bool) -> Result<Vec<DeadLetter>, ApplyError> {
        let filter = if open_only {
            "WHERE state = 'open'"
        } else {
            ""
        };
        let rows = query(
            self,
            &format!("SELECT {DEAD_COLUMNS} FROM __S__.dead_letter {filter} ORDER BY id"),
            vec![],
        )
        .await?;
        Ok(rows.iter().filter_map(dead_letter).collect())
    }

    /// Dead letter `id` with part 0, locked.
    async fn get_dead_letter(&mut self, id: i64) -> Result<Option<DeadLetter>, ApplyError> {
        let rows = query(
            self,
            &format!(
                "SELECT {DEAD_COLUMNS} FROM __S__.dead_letter WHERE id = ?::bigint FOR UPDATE"
            ),
            vec![id_text(id)],
        )
        .await?;
        Ok(rows.first().and_then(dead_letter))
    }

    /// Sets the state; with an `error` (a failed replay) it also counts the attempt.
    async fn set_dead_letter(
        &mut self,
        id: i64,
        state: &str,
        error: Option<&str>,
    ) -> Result<(), ApplyError> {
        execute(
            self,
            "UPDATE __S__.dead_letter SET state = ?, error = COALESCE(?, error), \
             attempts = attempts + CASE WHEN ? IS NULL THEN 0 ELSE 1 END, last_attempt_at = {now} \
             WHERE id = ?::bigint",
            vec![
                Some(state.into()),
                error.map(str::to_string),
                error.map(str::to_string),
                id_text(id),
            ],
        )
        .await
        .map(drop)
    }
}

impl<S: BookSession> DeadLetters for S {}

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
