//! Resuming: after a killed dump thread or a server restart, by GTID and by file offset, and from
//! a purged position.

use super::*;

/// Inserts rows `ids` into `t`, one transaction each.
async fn insert_each(
    conn: &mut mysql_async::Conn,
    table: &str,
    ids: std::ops::RangeInclusive<i64>,
) {
    for id in ids {
        exec(conn, &format!("INSERT INTO {table} (id) VALUES ({id})")).await;
    }
}

/// Reads transactions until row `last` arrived; returns every id seen, in order.
async fn read_ids_until(src: &mut MysqlSource, last: i64) -> Vec<i64> {
    let mut ids = Vec::new();
    while ids.last() != Some(&last) {
        let t = next_txn(src).await;
        for c in changes(&t) {
            ids.push(int_id(&c));
        }
        src.confirm(&t.position);
    }
    ids
}

#[tokio::test]
async fn mysql_resumes_after_dump_thread_is_killed() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE k (id INT PRIMARY KEY)").await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["k"], None))
        .await
        .expect("source connects");
    insert_each(&mut conn, "k", 1..=3).await;
    assert_eq!(read_ids_until(&mut src, 3).await, vec![1, 2, 3]);
    // Rows 4-5 are read but deliberately left unconfirmed: after the reconnect (which resumes from
    // the confirmed position) they must not come again.
    insert_each(&mut conn, "k", 4..=5).await;
    let mut seen = Vec::new();
    while seen.last() != Some(&5) {
        seen.extend(changes(&next_txn(&mut src).await).iter().map(int_id));
    }
    let killed: Vec<u64> = conn
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
        .await
        .expect("processlist readable");
    assert!(!killed.is_empty(), "a binlog dump thread exists");
    for id in &killed {
        exec(&mut conn, &format!("KILL {id}")).await;
    }
    insert_each(&mut conn, "k", 6..=8).await;
    seen.extend(read_ids_until(&mut src, 8).await);
    assert_eq!(seen, vec![4, 5, 6, 7, 8], "nothing lost, nothing twice");
}

#[tokio::test]
async fn mysql_resumes_after_server_restart() {
    let (mut maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE r (id INT PRIMARY KEY)").await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["r"], None))
        .await
        .expect("source connects");
    insert_each(&mut conn, "r", 1..=2).await;
    assert_eq!(read_ids_until(&mut src, 2).await, vec![1, 2]);
    insert_each(&mut conn, "r", 3..=4).await;
    drop(conn);
    maria.restart().await.expect("server restarts");
    let mut conn = maria.connect(&db).await.expect("client reconnects");
    insert_each(&mut conn, "r", 5..=6).await;
    assert_eq!(
        read_ids_until(&mut src, 6).await,
        vec![3, 4, 5, 6],
        "nothing lost, nothing twice"
    );
}

#[tokio::test]
async fn mysql_resume_by_gtid_and_by_file_offset() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE g (id INT PRIMARY KEY)").await;
    let start = tandem::capture::mysql::current_position(&maria.url(&db))
        .await
        .expect("current position");
    assert!(matches!(start, Position::MariaGtid(_)));
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("master status")
        .expect("binlog on");
    let file_start = Position::Binlog(tandem::model::BinlogPosition {
        file: row.get(0).expect("file"),
        offset: row.get(1).expect("offset"),
    });
    insert_each(&mut conn, "g", 1..=3).await;

    // By GTID: read two, then a new source from the second's position gets the third.
    let mut src = MysqlSource::connect(options(&maria, &db, &["g"], Some(start)))
        .await
        .expect("source connects");
    let t1 = next_txn(&mut src).await;
    let t2 = next_txn(&mut src).await;
    assert_eq!((int_id(&changes(&t1)[0]), int_id(&changes(&t2)[0])), (1, 2));
    drop(src);
    let mut src = MysqlSource::connect(options(&maria, &db, &["g"], Some(t2.position.clone())))
        .await
        .expect("source resumes by GTID");
    let t3 = next_txn(&mut src).await;
    assert_eq!(int_id(&changes(&t3)[0]), 3);
    assert!(matches!(t3.position, Position::MariaGtid(_)));
    drop(src);

    // By file and offset: positions stay binlog positions and resume right after.
    let mut src = MysqlSource::connect(options(&maria, &db, &["g"], Some(file_start)))
        .await
        .expect("source connects by file");
    let b1 = next_txn(&mut src).await;
    assert!(
        matches!(b1.position, Position::Binlog(_)),
        "got {}",
        b1.position
    );
    assert_eq!(int_id(&changes(&b1)[0]), 1);
    drop(src);
    let mut src = MysqlSource::connect(options(&maria, &db, &["g"], Some(b1.position.clone())))
        .await
        .expect("source resumes by file");
    let b2 = next_txn(&mut src).await;
    assert_eq!(int_id(&changes(&b2)[0]), 2);
    assert!(b1.position.is_within(&b2.position) && b2.position != b1.position);
}

#[tokio::test]
async fn mysql_purged_resume_point_is_a_definite_error() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE p (id INT PRIMARY KEY)").await;
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .expect("binlog on");
    let old = Position::Binlog(tandem::model::BinlogPosition {
        file: row.get(0).expect("file"),
        offset: row.get(1).expect("offset"),
    });
    exec(&mut conn, "FLUSH BINARY LOGS").await;
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .expect("binlog on");
    let current: String = row.get(0).expect("file");
    let Position::Binlog(old_at) = &old else {
        unreachable!("built above")
    };
    let old_file = old_at.file.clone();
    // MariaDB keeps a file until InnoDB's binlog checkpoint has passed it (slow on a loaded
    // machine), and PURGE then leaves it without an error: purge until the file is gone.
    let conn = tokio::sync::Mutex::new(conn);
    crate::support::wait_for(
        &format!("{old_file} purged"),
        Duration::from_secs(60),
        || async {
            let mut conn = conn.lock().await;
            exec(&mut conn, &format!("PURGE BINARY LOGS TO '{current}'")).await;
            let logs: Vec<(String, u64)> = conn.query("SHOW BINARY LOGS").await.expect("logs");
            (!logs.iter().any(|(name, _)| *name == old_file)).then_some(())
        },
    )
    .await;

    let result = match MysqlSource::connect(options(&maria, &db, &["p"], Some(old))).await {
        Err(e) => Err(e),
        Ok(mut src) => tokio::time::timeout(WAIT, src.next())
            .await
            .expect("an answer in time"),
    };
    let err = result.expect_err("a purged position cannot be resumed");
    assert!(!err.is_transient(), "purged binlog is definite: {err}");
    assert!(
        err.to_string().contains("re-sync"),
        "the message says how to recover: {err}"
    );
}

#[tokio::test]
async fn mysql_file_offset_stream_survives_kill_and_tandem_checkpoint_passes() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE f (id INT PRIMARY KEY)").await;
    exec(&mut conn, "CREATE DATABASE tandem").await;
    exec(
        &mut conn,
        "CREATE TABLE tandem.checkpoint (id INT PRIMARY KEY)",
    )
    .await;
    let row: mysql_async::Row = conn
        .query_first("SHOW MASTER STATUS")
        .await
        .expect("status")
        .expect("binlog on");
    let start = Position::Binlog(tandem::model::BinlogPosition {
        file: row.get(0).expect("file"),
        offset: row.get(1).expect("offset"),
    });
    let mut opts = options(&maria, &db, &["f"], Some(start));
    opts.tables.push(TableRef::new("tandem", "checkpoint"));
    let mut src = MysqlSource::connect(opts).await.expect("source connects");

    exec(&mut conn, "BEGIN").await;
    exec(&mut conn, "INSERT INTO f VALUES (1)").await;
    exec(&mut conn, "INSERT INTO tandem.checkpoint VALUES (1)").await;
    exec(&mut conn, "COMMIT").await;
    let t = next_txn(&mut src).await;
    let tables: Vec<String> = changes(&t).iter().map(|c| c.table.to_string()).collect();
    assert_eq!(tables, [format!("{db}.f"), "tandem.checkpoint".to_string()]);
    assert!(matches!(t.position, Position::Binlog(_)));
    src.confirm(&t.position);

    insert_each(&mut conn, "f", 2..=3).await;
    let mut seen = Vec::new();
    while seen.last() != Some(&3) {
        seen.extend(changes(&next_txn(&mut src).await).iter().map(int_id));
    }
    let dumps: Vec<u64> = conn
        .query("SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'")
        .await
        .expect("processlist readable");
    assert!(!dumps.is_empty(), "a binlog dump thread exists");
    for id in &dumps {
        exec(&mut conn, &format!("KILL {id}")).await;
    }
    insert_each(&mut conn, "f", 4..=5).await;
    seen.extend(read_ids_until(&mut src, 5).await);
    assert_eq!(
        seen,
        vec![2, 3, 4, 5],
        "binlog-position resume: nothing lost, nothing twice"
    );
}
