//! The dead letters' statements (see the parent module; recording and replay are in
//! `apply/dead_letter.rs`).

use super::{col, execute, id_text, query, BookSession, TextRow};
use crate::apply::error::ApplyError;
use crate::apply::target::DeadLetter;

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
