//! Protocol v2 streaming of large in-progress transactions, and origins.

use super::*;

#[tokio::test]
async fn pg_streamed_transaction_drops_rolled_back_savepoints() {
    // The smallest logical_decoding_work_mem makes the server stream the transaction (protocol v2).
    let f = Fixture::start_with(PgOptions {
        settings: vec![("logical_decoding_work_mem".into(), "64kB".into())],
        ..PgOptions::default()
    })
    .await;
    f.sql("CREATE TABLE s (id int PRIMARY KEY, pad text)").await;
    let mut src = f.source(&["s"], 64 * 1024).await;
    f.sql(
        "BEGIN;
         INSERT INTO s SELECT g, repeat('x', 50) FROM generate_series(1, 5000) g;
         SAVEPOINT sp;
         INSERT INTO s SELECT g, repeat('y', 50) FROM generate_series(5001, 10000) g;
         ROLLBACK TO sp;
         INSERT INTO s SELECT g, repeat('z', 50) FROM generate_series(10001, 12000) g;
         COMMIT;
         BEGIN; INSERT INTO s SELECT g, 'a' FROM generate_series(20001, 30000) g; ROLLBACK;",
    )
    .await;
    f.sql("INSERT INTO s VALUES (-1, 'after')").await;
    let t = next_txn(&mut src).await;
    let ids: Vec<i64> = t
        .changes
        .iter()
        .map(|c| int(&field(&c.expect("read change"), "id")))
        .collect();
    let want: Vec<i64> = (1..=5000).chain(10001..=12000).collect();
    assert_eq!(
        ids.len(),
        want.len(),
        "rolled-back savepoint rows leaked or rows were lost"
    );
    assert_eq!(ids, want);
    let next = next_txn(&mut src).await;
    assert_eq!(
        field(&changes(&next)[0], "id"),
        Value::Int(-1),
        "the rolled-back transaction arrived"
    );
    let streamed: i64 = f
        .client
        .query_one(
            "SELECT coalesce(sum(stream_txns), 0)::int8 FROM pg_stat_replication_slots",
            &[],
        )
        .await
        .expect("slot statistics")
        .get(0);
    assert!(
        streamed > 0,
        "the server did not stream, so this test proved nothing about protocol v2"
    );
}

#[tokio::test]
async fn pg_origin_name_reaches_loop_marks() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE o (id int PRIMARY KEY); SELECT pg_replication_origin_create('tandem_helpdesk')").await;
    let mut src = f.source(&["o"], 1 << 20).await;
    // The commit record takes the session's origin at commit time, so each step is its own statement.
    f.sql("SELECT pg_replication_origin_session_setup('tandem_helpdesk')")
        .await;
    f.sql("INSERT INTO o VALUES (1)").await;
    f.sql("SELECT pg_replication_origin_session_reset()").await;
    f.sql("INSERT INTO o VALUES (2)").await;
    let t = next_txn(&mut src).await;
    assert_eq!(t.marks.pg_origin.as_deref(), Some("tandem_helpdesk"));
    let t = next_txn(&mut src).await;
    assert_eq!(t.marks.pg_origin, None);
}

#[tokio::test]
async fn pg_a_transaction_larger_than_the_budget_streams_under_a_larger_server_setting() {
    // The server's own setting (64MB, its default) would decode this transaction only at its
    // commit; the reader lowers its walsender's setting to its 1 MiB budget, so it streams.
    let f = Fixture::start_with(PgOptions {
        settings: vec![("logical_decoding_work_mem".into(), "64MB".into())],
        ..PgOptions::default()
    })
    .await;
    f.sql("CREATE TABLE big (id int PRIMARY KEY, pad text)")
        .await;
    let mut src = f.source(&["big"], 1 << 20).await;
    f.sql("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
        .await;
    let t = next_txn(&mut src).await;
    assert_eq!(t.changes.len(), 20000);
    let (pg, db) = (&f.pg, f.db.clone());
    crate::support::wait_for(
        "a 20,000-row transaction streamed with a 1 MiB budget",
        DEADLINE,
        || async { streamed(pg, &db).await.filter(|n| *n > 0) },
    )
    .await;
    let setting: String = f
        .client
        .query_one("SHOW logical_decoding_work_mem", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(setting, "64MB", "only the walsender's own setting changed");
}

#[tokio::test]
async fn pg_a_large_transaction_is_read_a_socketful_at_a_time_and_the_next_one_at_once() {
    // In the middle of a large transaction the reader lets the socket fill before it reads (see
    // `ReplConn::recv`); the rows must all arrive, in order, and so must the small transaction
    // right after, read outside gulp mode.
    let f = Fixture::start().await;
    f.sql("CREATE TABLE big (id int PRIMARY KEY, pad text)")
        .await;
    let mut src = f.source(&["big"], 1 << 20).await;
    // Read while the server writes and decodes (a reader that starts after finds the socket full).
    let write = async {
        f.sql("INSERT INTO big SELECT g, repeat('x', 100) FROM generate_series(1, 20000) g")
            .await;
        f.sql("INSERT INTO big VALUES (0, 'after')").await;
    };
    let ((), t) = tokio::join!(write, next_txn(&mut src));
    let stats = src.socket_reads();
    let ids: Vec<i64> = changes(&t)
        .iter()
        .map(|c| match c.after.as_ref().and_then(|a| a.get("id")) {
            Some(Value::Int(i)) => *i,
            other => panic!("no id in {other:?}"),
        })
        .collect();
    assert_eq!(ids, (1..=20000).collect::<Vec<i64>>());
    assert_eq!(src.reconnects(), 0);
    let (pg, db) = (&f.pg, f.db.clone());
    crate::support::wait_for("the transaction streamed", DEADLINE, || async {
        streamed(pg, &db).await.filter(|n| *n > 0)
    })
    .await;
    // About 2.6 MB of messages: reads in gulp mode took socketfuls (a read per message or two
    // is what a reader gets that takes each as it comes).
    assert!(
        stats.gulped_reads > 0,
        "no read waited for a socketful: {stats:?}"
    );
    assert!(
        stats.gulped_bytes / stats.gulped_reads >= 16 * 1024,
        "reads in gulp mode took little each: {stats:?}"
    );
    let t = next_txn(&mut src).await;
    let after = changes(&t);
    assert_eq!(after.len(), 1);
    assert_eq!(
        after[0].after.as_ref().and_then(|a| a.get("pad")),
        Some(&Value::Text("after".into()))
    );
}

/// Table `e` and two replication origins: one named as tandem names its own (`tandem_…`), one as
/// another tool would. Origins are the cluster's: the names are this test's own.
async fn origins_and_table(f: &Fixture) -> (String, String) {
    let (ours, native) = (unique_name("tandem_n"), unique_name("other_tool"));
    f.sql(&format!(
        "CREATE TABLE e (id int PRIMARY KEY); SELECT pg_replication_origin_create('{ours}'); \
         SELECT pg_replication_origin_create('{native}')"
    ))
    .await;
    (ours, native)
}

/// Ten rows under origin `ours`, ten under `native`, then one row without an origin (id 3).
async fn write_with_origins(f: &Fixture, ours: &str, native: &str) {
    for (origin, id) in [(ours, 1), (native, 2)] {
        f.sql(&format!(
            "SELECT pg_replication_origin_session_setup('{origin}')"
        ))
        .await;
        f.sql(&format!(
            "INSERT INTO e SELECT g FROM generate_series({id}0, {id}9) g"
        ))
        .await;
        f.sql("SELECT pg_replication_origin_session_reset()").await;
    }
    f.sql("INSERT INTO e VALUES (3)").await;
}

#[tokio::test]
async fn pg_a_links_reader_leaves_out_the_changes_of_tandems_own_transactions() {
    let f = Fixture::start().await;
    let (ours, native) = origins_and_table(&f).await;
    let mut src = f
        .source_with(&["e"], 1 << 20, |o| o.drop_applied = true)
        .await;
    write_with_origins(&f, &ours, &native).await;
    let t = next_txn(&mut src).await;
    assert_eq!(t.marks.pg_origin.as_deref(), Some(ours.as_str()));
    assert!(t.changes.is_empty(), "tandem's own rows were decoded");
    let t = next_txn(&mut src).await;
    assert_eq!(t.marks.pg_origin.as_deref(), Some(native.as_str()));
    assert_eq!(
        t.changes.len(),
        10,
        "another origin's rows are the node's to forward"
    );
    let t = next_txn(&mut src).await;
    assert_eq!(changes(&t).len(), 1);
}

/// A node with `forward_replicated = false`: a PostgreSQL 16+ server sends no transaction that has
/// a replication origin (`origin = none`), neither tandem's own nor another tool's; before 16 the
/// option is not there, and the reader leaves out tandem's own as without it.
#[tokio::test]
async fn pg_origin_none_leaves_every_replicated_transaction_in_the_server_from_16() {
    let f = Fixture::start().await;
    let (ours, native) = origins_and_table(&f).await;
    let version: i32 = f
        .client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .expect("server version")
        .get(0);
    let mut src = f
        .source_with(&["e"], 1 << 20, |o| {
            o.drop_applied = true;
            o.origin_none = true;
        })
        .await;
    write_with_origins(&f, &ours, &native).await;
    if version < 160000 {
        let t = next_txn(&mut src).await;
        assert_eq!(t.marks.pg_origin.as_deref(), Some(ours.as_str()));
        assert!(t.changes.is_empty());
        let t = next_txn(&mut src).await;
        assert_eq!(t.changes.len(), 10, "another origin's rows still come");
    }
    let t = next_txn(&mut src).await;
    assert_eq!(
        t.marks.pg_origin, None,
        "a transaction with an origin was sent"
    );
    let c = changes(&t);
    assert_eq!(c.len(), 1);
    assert_eq!(
        c[0].after.as_ref().and_then(|a| a.get("id")),
        Some(&Value::Int(3))
    );
}

/// The slot's `stream_txns` (zero again after a crash: the server discards its statistics).
async fn streamed(pg: &PgServer, db: &str) -> Option<i64> {
    let c = pg.connect(db).await.ok()?;
    c.query_one(
        "SELECT coalesce(sum(stream_txns), 0)::int8 FROM pg_stat_replication_slots",
        &[],
    )
    .await
    .ok()
    .map(|r| r.get(0))
}

/// A transaction the server streamed, left open by a crash, is streamed again after recovery and
/// never ends until a later running-transactions record (up to 15 s) tells the server it died. A
/// fast shutdown in that window must still finish: it waits until the reader confirmed the end of
/// the WAL, which a reader that holds back while any transaction is partly read never does.
#[tokio::test]
async fn pg_fast_shutdown_finishes_while_a_crashed_streamed_transaction_is_open() {
    let mut f = Fixture::start_with(PgOptions {
        settings: vec![("logical_decoding_work_mem".into(), "64kB".into())],
        ..PgOptions::default()
    })
    .await;
    f.sql("CREATE TABLE s (id int PRIMARY KEY, pad text)").await;
    let mut src = f.source(&["s"], 1 << 20).await;
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    let read = std::sync::Arc::new(AtomicI64::new(0));
    // Until the crash, heartbeats go unconfirmed, as behind a busy target: the slot's confirmed
    // position stays before the open transaction, so recovery decodes and streams it again.
    let beats = std::sync::Arc::new(AtomicBool::new(false));
    let (counter, confirm_beats) = (read.clone(), beats.clone());
    let reader = tokio::spawn(async move {
        loop {
            let position = match src.next().await {
                Ok(CaptureEvent::Transaction(t)) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                    t.position
                }
                Ok(CaptureEvent::Heartbeat(p)) if confirm_beats.load(Ordering::Relaxed) => p,
                Ok(CaptureEvent::Heartbeat(_)) => continue,
                Err(e) => panic!("stream: {e}"),
            };
            src.confirm(&position);
        }
    });
    let open = f.pg.connect(&f.db).await.expect("connect");
    open.batch_execute(
        "BEGIN; INSERT INTO s SELECT g, repeat('x', 100) FROM generate_series(1, 3000) g",
    )
    .await
    .expect("open transaction");
    let (pg, db) = (&f.pg, f.db.clone());
    crate::support::wait_for("the open transaction streamed", DEADLINE, || async {
        streamed(pg, &db).await.filter(|n| *n > 0)
    })
    .await;
    f.pg.crash().await.expect("crash");
    beats.store(true, Ordering::Relaxed);
    f.pg.start_again().await.expect("recover");
    let c = f.pg.connect(&f.db).await.expect("connect after recovery");
    c.batch_execute("INSERT INTO s VALUES (-1, 'after')")
        .await
        .expect("insert after recovery");
    // PostgreSQL 18 no longer streams a transaction it can tell has aborted (a crash aborts it),
    // so there the window is shorter; before 18 the crashed transaction must be streamed again.
    let version: i32 = c
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .expect("server version")
        .get(0);
    let (pg, db) = (&f.pg, f.db.clone());
    crate::support::wait_for(
        "the crashed transaction streamed again (before PostgreSQL 18), and the new row read",
        DEADLINE,
        || async {
            let again = version >= 180000 || streamed(pg, &db).await.is_some_and(|n| n > 0);
            (again && read.load(Ordering::Relaxed) > 0).then_some(())
        },
    )
    .await;
    if version >= 180000 {
        // The new row is read, so the server decoded past the crashed transaction.
        assert_eq!(
            streamed(&f.pg, &f.db).await,
            Some(0),
            "PostgreSQL 18 streamed the transaction a crash aborted"
        );
    }
    // A session in a transaction: the shutdown ends it with an abort record, WAL to confirm.
    c.batch_execute("BEGIN; INSERT INTO s VALUES (-2, 'aborted')")
        .await
        .expect("open a second transaction");
    let stopped = tokio::time::timeout(Duration::from_secs(15), f.pg.stop()).await;
    reader.abort();
    let _ = reader.await;
    drop((open, c));
    assert!(
        matches!(stopped, Ok(Ok(()))),
        "the fast shutdown did not finish within 15 s: the reader never confirmed the end of the WAL"
    );
}
