//! Resuming after a terminated walsender, a server restart, or from a stored checkpoint.

use super::*;

/// Reads until every id in `1..=n` arrived; panics on a duplicate. Confirms every 7th transaction so
/// that a reconnect has unconfirmed, already delivered transactions to filter.
pub async fn collect_ids(src: &mut PgSource, n: i64, seen: &mut Vec<i64>) {
    tokio::time::timeout(DEADLINE, async {
        let mut count = 0;
        while (seen.len() as i64) < n {
            let t = next_txn(src).await;
            for c in changes(&t) {
                let id = int(&field(&c, "id"));
                assert!(
                    !seen.contains(&id),
                    "id {id} delivered twice (at {})",
                    t.position
                );
                seen.push(id);
            }
            count += 1;
            if count % 7 == 0 {
                src.confirm(&t.position);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("only {} of {n} rows arrived", seen.len()));
}

#[tokio::test]
async fn pg_resumes_after_walsender_is_terminated_without_loss_or_duplicates() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE r (id int PRIMARY KEY)").await;
    let mut src = f.source(&["r"], 1 << 20).await;
    let writer = f.pg.connect(&f.db).await.expect("writer connects");
    let write = tokio::spawn(async move {
        for i in 1..=300 {
            writer
                .execute("INSERT INTO r VALUES ($1)", &[&i])
                .await
                .expect("insert");
        }
    });
    let mut seen = Vec::new();
    collect_ids(&mut src, 50, &mut seen).await;
    let pids = f.walsender_pids().await;
    assert!(!pids.is_empty(), "no walsender to terminate");
    for pid in pids {
        f.sql(&format!("SELECT pg_terminate_backend({pid})")).await;
    }
    collect_ids(&mut src, 300, &mut seen).await;
    write.await.expect("writer finished");
    seen.sort_unstable();
    assert_eq!(seen, (1..=300).collect::<Vec<i64>>());
    assert!(
        src.reconnects() >= 1,
        "the stream never noticed its walsender died"
    );
}

#[tokio::test]
async fn pg_resumes_after_server_restart_without_loss_or_duplicates() {
    // A shutting-down walsender waits until its receiver flushed everything it sent, and tandem flushes
    // only what its consumer confirmed, so shutdown waits for wal_sender_timeout: keep it short here.
    let mut f = Fixture::start_with(PgOptions {
        settings: vec![("wal_sender_timeout".into(), "3s".into())],
        ..PgOptions::default()
    })
    .await;
    f.sql("CREATE TABLE r (id int PRIMARY KEY)").await;
    let mut src = f.source(&["r"], 1 << 20).await;
    for i in 1..=60 {
        f.sql(&format!("INSERT INTO r VALUES ({i})")).await;
    }
    let mut seen = Vec::new();
    collect_ids(&mut src, 30, &mut seen).await;
    f.pg.restart().await.expect("restart");
    f.client = f.pg.connect(&f.db).await.expect("reconnect after restart");
    for i in 61..=120 {
        f.sql(&format!("INSERT INTO r VALUES ({i})")).await;
    }
    collect_ids(&mut src, 120, &mut seen).await;
    seen.sort_unstable();
    assert_eq!(seen, (1..=120).collect::<Vec<i64>>());
    assert!(src.reconnects() >= 1);
}

#[tokio::test]
async fn pg_new_source_resumes_after_the_checkpoint_position() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE r (id int PRIMARY KEY)").await;
    let tables = vec![TableRef::new("public", "r")];
    let slot = unique_name("tandem_resume");
    setup(
        &f.url(),
        "tandem_pub",
        &tables,
        &[Slot::named(&slot)],
        false,
    )
    .await
    .expect("setup");
    let mut src = PgSource::connect(options(&f.url(), &slot, tables.clone(), 1 << 20, None))
        .await
        .expect("connect");
    for i in 1..=10 {
        f.sql(&format!("INSERT INTO r VALUES ({i})")).await;
    }
    let mut checkpoint = None;
    for i in 1..=10 {
        let t = next_txn(&mut src).await;
        assert_eq!(field(&changes(&t)[0], "id"), Value::Int(i));
        if i == 4 {
            checkpoint = Some(t.position.clone());
        }
    }
    // The applier stored position 4 in its target but crashed before confirming anything.
    drop(src);
    let mut src = PgSource::connect(options(&f.url(), &slot, tables, 1 << 20, checkpoint))
        .await
        .expect("reconnect");
    for i in 5..=10 {
        let t = next_txn(&mut src).await;
        assert_eq!(
            field(&changes(&t)[0], "id"),
            Value::Int(i),
            "resumed at the wrong transaction"
        );
    }
}

#[tokio::test]
async fn pg_exported_snapshot_and_stream_meet_without_gap_or_overlap() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE r (id int PRIMARY KEY); INSERT INTO r SELECT generate_series(1, 10)")
        .await;
    let tables = vec![TableRef::new("public", "r")];
    setup(&f.url(), "tandem_pub", &tables, &[], false)
        .await
        .expect("publication");
    let slot = unique_name("tandem_snap");
    let mut src = PgSource::connect(options(&f.url(), &slot, tables, 1 << 20, None))
        .await
        .expect("connect creates the slot");
    let snapshot = src
        .snapshot_name()
        .expect("a new slot exports its snapshot")
        .to_owned();
    f.sql("INSERT INTO r SELECT generate_series(11, 15)").await;
    // An initial copy in the exported snapshot sees exactly the rows from before the slot.
    let copier = f.pg.connect(&f.db).await.expect("copier connects");
    copier
        .batch_execute(&format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ; SET TRANSACTION SNAPSHOT '{snapshot}'"
        ))
        .await
        .expect("import the snapshot");
    let copied: i64 = copier
        .query_one("SELECT count(*) FROM r", &[])
        .await
        .expect("count")
        .get(0);
    copier.batch_execute("COMMIT").await.expect("commit");
    assert_eq!(copied, 10, "the snapshot does not match the slot's start");
    let t = next_txn(&mut src).await;
    let ids: Vec<i64> = changes(&t).iter().map(|c| int(&field(c, "id"))).collect();
    assert_eq!(ids, (11..=15).collect::<Vec<i64>>());
    assert!(
        src.snapshot_name().is_none(),
        "the snapshot is gone once streaming started"
    );
}
