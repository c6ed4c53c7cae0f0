//! MySQL/MariaDB capture against a real MariaDB 10.11 with row binlogs (one server per test; the
//! binlog is server-wide, so each test also captures only its own database).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::capture::mysql::{MysqlSource, MysqlSourceOptions};
use tandem::capture::CaptureEvent;
use tandem::harness::MariaDb;
use tandem::model::{Change, ChangeSet, Op, Position, TableRef, Transaction, Value};

use crate::support::unique_name;

const WAIT: Duration = Duration::from_secs(30);

fn replica_id() -> u32 {
    static N: AtomicU32 = AtomicU32::new(0);
    50_000 + (std::process::id() % 1000) * 100 + N.fetch_add(1, Ordering::Relaxed)
}

async fn server_with_db() -> (MariaDb, String, mysql_async::Conn) {
    let maria = MariaDb::start().await.expect("MariaDB starts");
    let db = unique_name("cap");
    maria.create_database(&db).await.expect("database created");
    let conn = maria.connect(&db).await.expect("client connects");
    (maria, db, conn)
}

fn options(maria: &MariaDb, db: &str, tables: &[&str], start: Option<Position>) -> MysqlSourceOptions {
    MysqlSourceOptions {
        node: "maria".into(),
        url: maria.url(db),
        server_id: replica_id(),
        tables: tables.iter().map(|t| TableRef::new(db, t)).collect(),
        memory_budget_bytes: 1 << 20,
        spill_dir: std::env::temp_dir().join("tandem-capture-mysql-tests"),
        start,
    }
}

/// The next transaction, skipping heartbeats; panics after the deadline.
async fn next_txn(src: &mut MysqlSource) -> Transaction {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, src.next())
            .await
            .expect("a transaction within the deadline")
            .expect("the stream keeps going");
        if let CaptureEvent::Transaction(t) = ev {
            return t;
        }
    }
}

fn changes(t: &Transaction) -> Vec<Change> {
    t.changes.to_vec().expect("changes readable")
}

fn after_value(c: &Change, col: &str) -> Value {
    c.after
        .as_ref()
        .and_then(|a| a.get(col).cloned())
        .unwrap_or_else(|| panic!("column {col} missing from after image of {:?}", c.op))
}

fn int_id(c: &Change) -> i64 {
    let img = c.after.as_ref().or(c.before.as_ref()).expect("an image");
    match img.get("id") {
        Some(Value::Int(i)) => *i,
        other => panic!("id is {other:?}"),
    }
}

async fn exec(conn: &mut mysql_async::Conn, sql: &str) {
    conn.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

#[tokio::test]
async fn mysql_multi_table_transaction_arrives_whole_and_rollbacks_never() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10))").await;
    exec(&mut conn, "CREATE TABLE b (id INT PRIMARY KEY, v VARCHAR(10))").await;
    exec(&mut conn, "CREATE TABLE untracked (id INT PRIMARY KEY)").await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["a", "b"], None))
        .await
        .expect("source connects");

    exec(&mut conn, "BEGIN").await;
    exec(&mut conn, "INSERT INTO a VALUES (1, 'x')").await;
    exec(&mut conn, "INSERT INTO b VALUES (2, 'y')").await;
    exec(&mut conn, "UPDATE a SET v = 'z' WHERE id = 1").await;
    exec(&mut conn, "DELETE FROM b WHERE id = 2").await;
    exec(&mut conn, "COMMIT").await;
    exec(&mut conn, "BEGIN").await;
    exec(&mut conn, "INSERT INTO a VALUES (99, 'rolled')").await;
    exec(&mut conn, "ROLLBACK").await;
    exec(&mut conn, "INSERT INTO untracked VALUES (1)").await;
    exec(&mut conn, "INSERT INTO a VALUES (3, 'last')").await;

    let t = next_txn(&mut src).await;
    let c = changes(&t);
    let summary: Vec<(String, Op, i64)> = c
        .iter()
        .map(|c| (c.table.name.to_string(), c.op, int_id(c)))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a".into(), Op::Insert, 1),
            ("b".into(), Op::Insert, 2),
            ("a".into(), Op::Update, 1),
            ("b".into(), Op::Delete, 2),
        ]
    );
    assert_eq!(c[2].before.as_ref().and_then(|b| b.get("v")), Some(&Value::Text("x".into())));
    assert_eq!(after_value(&c[2], "v"), Value::Text("z".into()));
    assert!(t.xid.is_some(), "InnoDB transactions end with an XID");
    assert!(matches!(t.position, Position::MariaGtid(_)), "MariaDB reports GTID positions, got {}", t.position);
    assert_eq!(t.marks.server_id, Some(maria.server_id()));
    assert!(!t.marks.skip_replication);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    assert!((now - t.commit_time).abs() < 120_000_000, "commit time {} is not now", t.commit_time);

    let t2 = next_txn(&mut src).await;
    let c2 = changes(&t2);
    assert_eq!(c2.len(), 1, "only the last insert follows: nothing rolled back or untracked");
    assert_eq!(int_id(&c2[0]), 3);
    assert!(t2.position > t.position);
}

#[tokio::test]
async fn mysql_large_transaction_spills_and_arrives_complete() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(200))").await;
    let mut opts = options(&maria, &db, &["big"], None);
    opts.memory_budget_bytes = 64 * 1024;
    let mut src = MysqlSource::connect(opts).await.expect("source connects");
    exec(&mut conn, "BEGIN").await;
    exec(
        &mut conn,
        "INSERT INTO big SELECT seq, REPEAT('p', 150) FROM seq_1_to_5000",
    )
    .await;
    exec(&mut conn, "COMMIT").await;
    let t = next_txn(&mut src).await;
    assert!(
        matches!(t.changes, ChangeSet::Spilled(_)),
        "5000 rows over a 64 KiB budget must spill"
    );
    assert_eq!(t.changes.len(), 5000);
    for (i, c) in t.changes.iter().enumerate() {
        let c = c.expect("spilled change reads back");
        assert_eq!(int_id(&c), i as i64 + 1, "row order in the spilled transaction");
    }
}

#[tokio::test]
async fn mysql_skip_replication_and_non_transactional_tables() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE m (id INT PRIMARY KEY) ENGINE=MyISAM").await;
    exec(&mut conn, "CREATE TABLE i (id INT PRIMARY KEY)").await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["m", "i"], None))
        .await
        .expect("source connects");
    exec(&mut conn, "INSERT INTO m VALUES (1)").await;
    exec(&mut conn, "SET SESSION skip_replication = 1").await;
    exec(&mut conn, "INSERT INTO i VALUES (2)").await;
    exec(&mut conn, "SET SESSION skip_replication = 0").await;
    exec(&mut conn, "TRUNCATE TABLE i").await;

    let t = next_txn(&mut src).await;
    assert_eq!(changes(&t).len(), 1);
    assert_eq!(t.xid, None, "MyISAM groups end with COMMIT, not XID");
    assert!(!t.marks.skip_replication);
    let t = next_txn(&mut src).await;
    assert_eq!(int_id(&changes(&t)[0]), 2);
    assert!(t.marks.skip_replication, "@@skip_replication marks the transaction");
    let t = next_txn(&mut src).await;
    let c = changes(&t);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].op, Op::Truncate);
    assert_eq!(c[0].table, TableRef::new(&db, "i"));
}
