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

mod resume;
mod values;

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

fn options(
    maria: &MariaDb,
    db: &str,
    tables: &[&str],
    start: Option<Position>,
) -> MysqlSourceOptions {
    MysqlSourceOptions {
        node: "maria".into(),
        url: maria.url(db),
        server_id: replica_id(),
        tables: tables.iter().map(|t| TableRef::new(db, t)).collect(),
        memory_budget_bytes: 1 << 20,
        spill_dir: std::env::temp_dir().join("tandem-capture-mysql-tests"),
        drop_applied: false,
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

fn assert_row(c: &Change, expected: &[(&str, Value)]) {
    for (col, want) in expected {
        let got = after_value(c, col);
        assert_eq!(
            &got, want,
            "column {col}: captured {got:?}, expected {want:?}"
        );
    }
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
    exec(
        &mut conn,
        "CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(10))",
    )
    .await;
    exec(
        &mut conn,
        "CREATE TABLE b (id INT PRIMARY KEY, v VARCHAR(10))",
    )
    .await;
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
    assert_eq!(
        c[2].before.as_ref().and_then(|b| b.get("v")),
        Some(&Value::Text("x".into()))
    );
    assert_eq!(after_value(&c[2], "v"), Value::Text("z".into()));
    assert!(t.xid.is_some(), "InnoDB transactions end with an XID");
    assert!(
        matches!(t.position, Position::MariaGtid(_)),
        "MariaDB reports GTID positions, got {}",
        t.position
    );
    assert_eq!(t.marks.server_id, Some(maria.server_id()));
    assert!(!t.marks.skip_replication);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    assert!(
        (now - t.commit_time).abs() < 120_000_000,
        "commit time {} is not now",
        t.commit_time
    );

    let t2 = next_txn(&mut src).await;
    let c2 = changes(&t2);
    assert_eq!(
        c2.len(),
        1,
        "only the last insert follows: nothing rolled back or untracked"
    );
    assert_eq!(int_id(&c2[0]), 3);
    assert!(t.position.is_within(&t2.position) && t2.position != t.position);
}

#[tokio::test]
async fn mysql_large_transaction_spills_and_arrives_complete() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(
        &mut conn,
        "CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(200))",
    )
    .await;
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
        assert_eq!(
            int_id(&c),
            i as i64 + 1,
            "row order in the spilled transaction"
        );
    }
}

#[tokio::test]
async fn mysql_skip_replication_and_non_transactional_tables() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(
        &mut conn,
        "CREATE TABLE m (id INT PRIMARY KEY) ENGINE=MyISAM",
    )
    .await;
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
    assert!(
        t.marks.skip_replication,
        "@@skip_replication marks the transaction"
    );
    let t = next_txn(&mut src).await;
    let c = changes(&t);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].op, Op::Truncate);
    assert_eq!(c[0].table, TableRef::new(&db, "i"));
}

/// A link's reader asks the server to leave tandem's own transactions out (`skip_replication` on
/// the dump session): they never arrive, not even empty, and the stream goes on after them, also
/// when the reader resumes just before one.
#[tokio::test]
async fn mysql_a_links_reader_is_not_sent_tandems_own_transactions() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE i (id INT PRIMARY KEY)").await;
    let mut opts = options(&maria, &db, &["i"], None);
    opts.drop_applied = true;
    let mut src = MysqlSource::connect(opts.clone())
        .await
        .expect("source connects");
    exec(&mut conn, "INSERT INTO i VALUES (1)").await;
    exec(&mut conn, "SET SESSION skip_replication = 1").await;
    exec(&mut conn, "INSERT INTO i VALUES (2)").await;
    exec(&mut conn, "SET SESSION skip_replication = 0").await;
    exec(&mut conn, "INSERT INTO i VALUES (3)").await;

    let first = next_txn(&mut src).await;
    assert_eq!(int_id(&changes(&first)[0]), 1);
    let next = next_txn(&mut src).await;
    assert!(
        !next.marks.skip_replication,
        "the marked transaction is not sent"
    );
    assert_eq!(int_id(&changes(&next)[0]), 3);

    // A marked transaction last: the reader's position still comes to cover it (heartbeats),
    // so the link is not shown behind by it.
    exec(&mut conn, "SET SESSION skip_replication = 1").await;
    exec(&mut conn, "INSERT INTO i VALUES (4)").await;
    exec(&mut conn, "SET SESSION skip_replication = 0").await;
    let end: Position = {
        let g: String = conn
            .query_first("SELECT @@gtid_binlog_pos")
            .await
            .expect("gtid_binlog_pos")
            .expect("a row");
        format!("mariadb-gtid:{g}")
            .parse()
            .expect("a GTID position")
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ev = tokio::time::timeout_at(deadline, src.next())
            .await
            .unwrap_or_else(|_| panic!("no heartbeat covered {end} within the deadline"))
            .expect("the stream keeps going");
        match ev {
            CaptureEvent::Heartbeat(p) if end.is_within(&p) => break,
            CaptureEvent::Heartbeat(_) => {}
            CaptureEvent::Transaction(t) => panic!("a transaction arrived: {:?}", t.marks),
        }
    }

    // Resumed after the first: the marked one is left out again.
    opts.start = Some(first.position.clone());
    let mut src = MysqlSource::connect(opts).await.expect("source connects");
    let next = next_txn(&mut src).await;
    assert!(!next.marks.skip_replication);
    assert_eq!(int_id(&changes(&next)[0]), 3);
}

#[tokio::test]
async fn mysql_prerequisites_pass_on_a_row_binlog_server_and_name_fixes() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE ok (id INT PRIMARY KEY)").await;
    let url = maria.url(&db);
    let problems =
        tandem::capture::mysql::check_prerequisites(&url, &[TableRef::new(&db, "ok")]).await;
    assert!(
        problems
            .iter()
            .all(|p| p.severity != tandem::capture::mysql::Severity::Error),
        "unexpected problems: {problems:?}"
    );
    let problems =
        tandem::capture::mysql::check_prerequisites(&url, &[TableRef::new(&db, "missing")]).await;
    assert!(
        problems.iter().any(|p| p.message.contains("missing")),
        "{problems:?}"
    );

    exec(&mut conn, "SET GLOBAL binlog_format = 'STATEMENT'").await;
    exec(&mut conn, "SET GLOBAL binlog_row_image = 'MINIMAL'").await;
    exec(&mut conn, "CREATE USER weak@'%'").await;
    exec(&mut conn, &format!("GRANT SELECT ON `{db}`.* TO weak@'%'")).await;
    let weak = url.replace("root@", "weak@");
    let problems = tandem::capture::mysql::check_prerequisites(&weak, &[]).await;
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    for needle in [
        "binlog_format",
        "binlog_row_image",
        "REPLICATION SLAVE",
        "BINLOG MONITOR",
    ] {
        assert!(
            text.iter().any(|t| t.contains(needle)),
            "no problem about {needle}: {text:?}"
        );
    }
}

#[tokio::test]
async fn mysql_minimal_row_metadata_falls_back_to_information_schema() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(
        &mut conn,
        "CREATE TABLE mm (id INT PRIMARY KEY, y YEAR, u INT UNSIGNED, e ENUM('p','q'), j JSON, l VARCHAR(5) CHARACTER SET latin1)",
    )
    .await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["mm"], None))
        .await
        .expect("source connects");
    let expected = [
        ("y", Value::Int(2001)),
        ("u", Value::UInt(4294967295)),
        ("e", Value::Enum("q".into())),
        ("j", Value::Json(r#"{"k": [1]}"#.into())),
        ("l", Value::Text("é".into())),
    ];
    let insert = |id: i64| {
        format!(r#"INSERT INTO mm VALUES ({id}, 2001, 4294967295, 'q', '{{"k": [1]}}', 'é')"#)
    };
    exec(&mut conn, &insert(1)).await;
    let c = changes(&next_txn(&mut src).await).remove(0);
    assert_row(&c, &expected);

    exec(&mut conn, "SET GLOBAL binlog_row_metadata = 'MINIMAL'").await;
    let mut conn = maria
        .connect(&db)
        .await
        .expect("new session sees the new setting");
    exec(&mut conn, &insert(2)).await;
    let c = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(after_value(&c, "id"), Value::Int(2));
    assert_row(&c, &expected);
}

#[tokio::test]
async fn mysql_next_is_cancel_safe_and_quiet_sources_send_heartbeats() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, "CREATE TABLE cs (id INT PRIMARY KEY, pad TEXT)").await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["cs"], None))
        .await
        .expect("source connects");
    let writer = {
        let mut conn = maria.connect(&db).await.expect("writer connects");
        tokio::spawn(async move {
            for id in 1..=200 {
                let sql = format!("INSERT INTO cs VALUES ({id}, REPEAT('x', {}))", id * 50);
                conn.query_drop(sql).await.expect("insert");
            }
        })
    };
    // Poll with tiny timeouts so that many calls are dropped mid-read: nothing may be lost or doubled.
    let mut ids = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while ids.last() != Some(&200) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only got {} rows",
            ids.len()
        );
        if let Ok(ev) = tokio::time::timeout(Duration::from_micros(200), src.next()).await {
            if let CaptureEvent::Transaction(t) = ev.expect("stream keeps going") {
                ids.extend(changes(&t).iter().map(int_id));
            }
        }
    }
    writer.await.expect("writer finished");
    assert_eq!(
        ids,
        (1..=200).collect::<Vec<_>>(),
        "every row once, in order"
    );

    let last = src.current_position();
    let heartbeat = loop {
        let ev = tokio::time::timeout(WAIT, src.next())
            .await
            .expect("a heartbeat on a quiet source")
            .expect("stream keeps going");
        if let CaptureEvent::Heartbeat(p) = ev {
            break p;
        }
    };
    assert!(
        last.is_within(&heartbeat),
        "heartbeat {heartbeat} is behind {last}"
    );
}
