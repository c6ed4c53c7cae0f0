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
