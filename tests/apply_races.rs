//! Races between the applier and the application's own writes under READ COMMITTED. Each test holds
//! a local transaction open at the moment that matters, waits until the applier is blocked on it
//! (seen in the server's lock waits, not guessed with a sleep), then commits it.

use std::time::Duration;

use tandem::apply::Applier;
use tandem::model::{Op, Transaction};

use crate::apply_support::*;

const DEADLINE: Duration = Duration::from_secs(30);

/// The server's id for the session of `local` (to find who waits for it).
async fn session_id(kind: Kind, local: &mut Db) -> String {
    let sql = match kind {
        Kind::Pg => "SELECT pg_backend_pid()::text",
        Kind::My => "SELECT CAST(CONNECTION_ID() AS CHAR)",
    };
    local.one(sql).await.expect("session id")
}

/// Waits until another session waits for a lock the session `blocker` holds; fails with the
/// applier's own result if it finished without waiting.
async fn applier_blocked(
    kind: Kind,
    db_name: &str,
    blocker: &str,
    task: &tokio::task::JoinHandle<(Applier, Result<(), String>)>,
) {
    let mut probe = Db::open(kind, db_name).await;
    let sql = match kind {
        Kind::Pg => format!(
            "SELECT count(*) FROM pg_stat_activity WHERE {blocker} = ANY(pg_blocking_pids(pid))"
        ),
        // MariaDB's lock-wait tables do not always show a wait on a record another transaction
        // inserted or deleted; a statement of this database that runs for 200 ms (the applier's
        // writes take a few) while the local transaction is open is waiting for it.
        Kind::My => format!(
            "SELECT count(*) FROM information_schema.PROCESSLIST WHERE db = '{db_name}' \
             AND id NOT IN (CONNECTION_ID(), {blocker}) AND info IS NOT NULL AND time_ms >= 200"
        ),
    };
    let start = std::time::Instant::now();
    loop {
        let n: i64 = probe
            .one(&sql)
            .await
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        if n > 0 {
            return;
        }
        assert!(
            !task.is_finished(),
            "the applier finished without waiting for the local transaction"
        );
        if start.elapsed() > DEADLINE {
            let sessions = match kind {
                Kind::Pg => "SELECT string_agg(pid || ' ' || coalesce(wait_event_type, '-') || ' ' || left(query, 80), ' | ') FROM pg_stat_activity WHERE datname = current_database()".to_string(),
                Kind::My => format!("SELECT GROUP_CONCAT(CONCAT(id, ' ', COALESCE(state, '-'), ' ', LEFT(COALESCE(info, '-'), 80)) SEPARATOR ' | ') FROM information_schema.PROCESSLIST WHERE db = '{db_name}'"),
            };
            panic!(
                "the applier never waited for the local transaction (session {blocker}); sessions: {:?}",
                probe.one(&sessions).await
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A fixture whose customer 1 the source inserted (version 10), and the applier that applied it.
async fn seeded(kind: Kind) -> (Fixture, Applier) {
    let f = Fixture::new(kind, "", 0).await;
    let mut a = f.applier().await;
    let seed = f.tx(
        1,
        vec![f.change(
            Op::Insert,
            None,
            Some(customer(1, "ann", "a@x", 10, SOURCE)),
        )],
    );
    a.apply(&[seed]).await.expect("seed");
    (f, a)
}

/// Applies `tx` in a task of its own (it blocks on the local transaction); the handle gives the
/// applier back.
fn apply_in_background(
    mut a: Applier,
    tx: Transaction,
) -> tokio::task::JoinHandle<(Applier, Result<(), String>)> {
    tokio::spawn(async move {
        let r = a.apply(&[tx]).await.map(|_| ()).map_err(|e| e.to_string());
        (a, r)
    })
}

/// Customer 1 replicated from the source; then a local transaction deletes it and stays open while
/// the source's insert of the same key (made without seeing that delete) arrives. The insert waits
/// for the delete; once the delete commits, the insert must still be weighed against it by the
/// rule (`insert_deleted`), as the source node weighs the delete against its insert. Read before
/// the insert, the delete's tombstone was not yet visible and the insert applied plainly.
async fn insert_meets_a_delete_committing_meanwhile(kind: Kind, rows: &[i32]) {
    let (mut f, a) = seeded(kind).await;
    let mut local = Db::open(kind, &f.db_name).await;
    let blocker = session_id(kind, &mut local).await;
    local.exec("BEGIN").await;
    local.exec("DELETE FROM customer WHERE id = 1").await;
    let inserts = rows
        .iter()
        .map(|id| {
            f.change(
                Op::Insert,
                None,
                Some(customer(*id, "again", "b@x", 20, SOURCE)),
            )
        })
        .collect();
    let task = apply_in_background(a, f.tx(2, inserts));
    applier_blocked(kind, &f.db_name, &blocker, &task).await;
    local.exec("COMMIT").await;
    let (_a, result) = task.await.expect("apply task");
    result.expect("apply");
    let conflicts = f.conflicts().await;
    assert!(
        conflicts.iter().any(|c| c.0 == "insert_deleted"),
        "the insert was not weighed against the delete that committed while it waited: {conflicts:?}"
    );
    for id in rows.iter().filter(|id| **id != 1) {
        assert!(f.row(*id).await.is_some(), "row {id} of the batch applied");
    }
}

#[tokio::test]
async fn apply_race_pg_row_insert_meets_a_delete_committing_meanwhile() {
    insert_meets_a_delete_committing_meanwhile(Kind::Pg, &[1]).await;
}

#[tokio::test]
async fn apply_race_mariadb_row_insert_meets_a_delete_committing_meanwhile() {
    insert_meets_a_delete_committing_meanwhile(Kind::My, &[1]).await;
}

#[tokio::test]
async fn apply_race_pg_batch_insert_meets_a_delete_committing_meanwhile() {
    insert_meets_a_delete_committing_meanwhile(Kind::Pg, &[1, 2, 3]).await;
}

#[tokio::test]
async fn apply_race_mariadb_batch_insert_meets_a_delete_committing_meanwhile() {
    insert_meets_a_delete_committing_meanwhile(Kind::My, &[1, 2, 3]).await;
}

/// Customer 1 was deleted here; the source re-inserts it (not having seen the delete) with a later
/// version, so the rule takes the incoming row. Meanwhile a local insert of the key is open. The
/// audit and the row must agree: if the last record says the incoming row was applied, the row is
/// the incoming one. (The insert carrying out the decision used to meet the committed local row,
/// insert nothing, and the audit still said "apply_incoming".)
async fn decided_insert_meets_a_local_insert(kind: Kind) {
    let (mut f, a) = seeded(kind).await;
    f.db.exec("DELETE FROM customer WHERE id = 1").await;
    let mut local = Db::open(kind, &f.db_name).await;
    let blocker = session_id(kind, &mut local).await;
    local.exec("BEGIN").await;
    local
        .exec("INSERT INTO customer (id, name, email) VALUES (1, 'local', 'l@x')")
        .await;
    let later = 4_000_000_000_000_000;
    let reinsert = || {
        f.tx(
            2,
            vec![f.change(
                Op::Insert,
                None,
                Some(customer(1, "incoming", "i@x", later, SOURCE)),
            )],
        )
    };
    let task = apply_in_background(a, reinsert());
    applier_blocked(kind, &f.db_name, &blocker, &task).await;
    local.exec("COMMIT").await;
    let (mut a, result) = task.await.expect("apply task");
    if result.is_err() {
        // A raced decision is retried as a whole transaction.
        a.apply(&[reinsert()]).await.expect("retried apply");
    }
    let conflicts = f.conflicts().await;
    let last = conflicts.last().expect("a conflict record");
    let name = f.row(1).await.expect("row 1")[0].clone();
    assert_eq!(
        last.1 == "apply_incoming",
        name.as_deref() == Some("incoming"),
        "the audit ({conflicts:?}) and the row (name {name:?}) disagree"
    );
}

#[tokio::test]
async fn apply_race_pg_decided_insert_meets_a_local_insert() {
    decided_insert_meets_a_local_insert(Kind::Pg).await;
}

#[tokio::test]
async fn apply_race_mariadb_decided_insert_meets_a_local_insert() {
    decided_insert_meets_a_local_insert(Kind::My).await;
}
