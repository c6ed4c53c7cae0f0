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

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse().expect("test decimal"))
}

fn days(y: i64, m: u32, d: u32) -> i64 {
    tandem::model::time::days_from_civil(y, m, d)
}

fn ts(y: i64, mo: u32, d: u32, h: i64, mi: i64, s: i64, micros: i64) -> i64 {
    days(y, mo, d) * 86_400_000_000 + ((h * 60 + mi) * 60 + s) * 1_000_000 + micros
}

fn time_us(neg: bool, h: i64, m: i64, s: i64, micros: i64) -> Value {
    let v = ((h * 60 + m) * 60 + s) * 1_000_000 + micros;
    Value::Time(if neg { -v } else { v })
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

const ALL_TYPES: &str = "CREATE TABLE types (
    id INT PRIMARY KEY,
    ti TINYINT, tu TINYINT UNSIGNED, si SMALLINT, su SMALLINT UNSIGNED,
    mi MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, bu BIGINT UNSIGNED,
    d1 DECIMAL(65,30), d2 DECIMAL(10,2), d3 DECIMAL(5,0),
    f FLOAT, db DOUBLE,
    dt DATE, dtt DATETIME, dt6 DATETIME(6), dt3 DATETIME(3),
    ts6 TIMESTAMP(6) NULL, ts0 TIMESTAMP NULL,
    tm TIME, tm6 TIME(6), tm2 TIME(2),
    y YEAR,
    c CHAR(10), vc VARCHAR(300), tx TEXT, l1 VARCHAR(20) CHARACTER SET latin1,
    bn BINARY(4), vb VARBINARY(10), bl BLOB,
    e ENUM('a','b','c'), st SET('x','y','z'),
    bt BIT(10), b1 BIT(1),
    j JSON,
    zd DATE, zdt DATETIME
)";

#[tokio::test]
async fn mysql_every_type_round_trips_exactly() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(&mut conn, ALL_TYPES).await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["types"], None))
        .await
        .expect("source connects");
    exec(&mut conn, "SET SESSION sql_mode = '', time_zone = '+00:00'").await;
    let long = format!("héllo 😀{}", "x".repeat(250));
    let d1_min = format!("-{}.{}", "9".repeat(35), "9".repeat(30));
    exec(
        &mut conn,
        &format!(
            "INSERT INTO types VALUES (1,
            -128, 255, -32768, 65535, -8388608, 16777215, -2147483648, 4294967295,
            -9223372036854775808, 18446744073709551615,
            {d1_min}, -12345678.90, 99999,
            1.5, 0.1,
            '2024-02-29', '9999-12-31 23:59:59', '2024-02-29 12:34:56.123456', '1000-01-01 00:00:00.5',
            '2038-01-19 03:14:07.999999', '1970-01-01 00:00:01',
            '-838:59:59', '-12:34:56.789012', '100:00:00.5',
            2155,
            'abc', '{long}', 'emoji 😀🎉', 'café €',
            X'0102', X'00FF', UNHEX(REPEAT('00FF7F80', 4)),
            'b', 'x,z',
            b'1010000011', b'1',
            '{{\"a\": [1, 2.5, \"x\"], \"b\": null}}',
            '0000-00-00', '0000-00-00 00:00:00')"
        ),
    )
    .await;
    exec(
        &mut conn,
        "INSERT INTO types (id, ti, tu, bi, bu, d1, d2, d3, f, db, tm, tm6, y, e, st, bt, b1, c, bn)
         VALUES (2, 127, 0, 9223372036854775807, 0, 0.000000000000000000000000000001, 0.05, -1,
                 -1.25, -2.5e300, '00:00:00', '-00:00:00.000001', 1901, '', '', b'0', b'0', '', '')",
    )
    .await;
    exec(&mut conn, "INSERT INTO types (id) VALUES (3)").await;

    let r1 = changes(&next_txn(&mut src).await).remove(0);
    assert_row(
        &r1,
        &[
            ("ti", Value::Int(-128)),
            ("tu", Value::UInt(255)),
            ("si", Value::Int(-32768)),
            ("su", Value::UInt(65535)),
            ("mi", Value::Int(-8388608)),
            ("mu", Value::UInt(16777215)),
            ("i", Value::Int(-2147483648)),
            ("iu", Value::UInt(4294967295)),
            ("bi", Value::Int(i64::MIN)),
            ("bu", Value::UInt(u64::MAX)),
            ("d1", dec(&d1_min)),
            ("d2", dec("-12345678.90")),
            ("d3", dec("99999")),
            ("f", Value::Float32(1.5)),
            ("db", Value::Float64(0.1)),
            ("dt", Value::Date(days(2024, 2, 29) as i32)),
            ("dtt", Value::Timestamp(ts(9999, 12, 31, 23, 59, 59, 0))),
            (
                "dt6",
                Value::Timestamp(ts(2024, 2, 29, 12, 34, 56, 123_456)),
            ),
            ("dt3", Value::Timestamp(ts(1000, 1, 1, 0, 0, 0, 500_000))),
            ("ts6", Value::TimestampTz(2_147_483_647_999_999)),
            ("ts0", Value::TimestampTz(1_000_000)),
            ("tm", time_us(true, 838, 59, 59, 0)),
            ("tm6", time_us(true, 12, 34, 56, 789_012)),
            ("tm2", time_us(false, 100, 0, 0, 500_000)),
            ("y", Value::Int(2155)),
            ("c", Value::Text("abc".into())),
            ("vc", Value::Text(long.clone())),
            ("tx", Value::Text("emoji 😀🎉".into())),
            ("l1", Value::Text("café €".into())),
            ("bn", Value::Bytes(vec![1, 2, 0, 0])),
            ("vb", Value::Bytes(vec![0, 0xFF])),
            ("bl", Value::Bytes([0u8, 0xFF, 0x7F, 0x80].repeat(4))),
            ("e", Value::Enum("b".into())),
            ("st", Value::Set(vec!["x".into(), "z".into()])),
            (
                "bt",
                Value::Bits {
                    len: 10,
                    bytes: vec![0b1010_0000, 0b1100_0000],
                },
            ),
            (
                "b1",
                Value::Bits {
                    len: 1,
                    bytes: vec![0b1000_0000],
                },
            ),
            (
                "j",
                Value::Json(r#"{"a": [1, 2.5, "x"], "b": null}"#.into()),
            ),
            (
                "zd",
                Value::Other {
                    type_name: "zero_date".into(),
                    text: "0000-00-00".into(),
                },
            ),
            (
                "zdt",
                Value::Other {
                    type_name: "zero_date".into(),
                    text: "0000-00-00 00:00:00".into(),
                },
            ),
        ],
    );
    let r2 = changes(&next_txn(&mut src).await).remove(0);
    assert_row(
        &r2,
        &[
            ("ti", Value::Int(127)),
            ("tu", Value::UInt(0)),
            ("bi", Value::Int(i64::MAX)),
            ("bu", Value::UInt(0)),
            ("d1", dec("0.000000000000000000000000000001")),
            ("d2", dec("0.05")),
            ("d3", dec("-1")),
            ("f", Value::Float32(-1.25)),
            ("db", Value::Float64(-2.5e300)),
            ("tm", Value::Time(0)),
            ("tm6", Value::Time(-1)),
            ("y", Value::Int(1901)),
            ("e", Value::Enum("".into())),
            ("st", Value::Set(vec![])),
            (
                "bt",
                Value::Bits {
                    len: 10,
                    bytes: vec![0, 0],
                },
            ),
            ("c", Value::Text("".into())),
            ("bn", Value::Bytes(vec![0, 0, 0, 0])),
        ],
    );
    let r3 = changes(&next_txn(&mut src).await).remove(0);
    let after = r3.after.as_ref().expect("insert has an after image");
    assert_eq!(after.fields.len(), 40, "every column present");
    for f in after.fields.iter().filter(|f| &*f.name != "id") {
        assert_eq!(
            f.value,
            Value::Null,
            "column {} of the all-NULL row",
            f.name
        );
    }
}

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
async fn mysql_alter_table_mid_stream_keeps_values_in_their_columns() {
    let (maria, db, mut conn) = server_with_db().await;
    exec(
        &mut conn,
        "CREATE TABLE d (id INT PRIMARY KEY, a VARCHAR(10))",
    )
    .await;
    let mut src = MysqlSource::connect(options(&maria, &db, &["d"], None))
        .await
        .expect("source connects");
    exec(&mut conn, "INSERT INTO d VALUES (1, 'a1')").await;
    exec(&mut conn, "ALTER TABLE d ADD COLUMN b INT AFTER id").await;
    exec(&mut conn, "INSERT INTO d VALUES (2, 22, 'a2')").await;
    exec(&mut conn, "ALTER TABLE d DROP COLUMN a").await;
    exec(&mut conn, "INSERT INTO d VALUES (3, 33)").await;
    exec(&mut conn, "UPDATE d SET b = 34 WHERE id = 3").await;

    let names = |c: &Change| -> Vec<String> {
        c.after
            .as_ref()
            .expect("after image")
            .fields
            .iter()
            .map(|f| f.name.to_string())
            .collect()
    };
    let c1 = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(names(&c1), ["id", "a"]);
    assert_row(&c1, &[("a", Value::Text("a1".into()))]);
    let c2 = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(names(&c2), ["id", "b", "a"]);
    assert_row(
        &c2,
        &[("b", Value::Int(22)), ("a", Value::Text("a2".into()))],
    );
    let c3 = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(names(&c3), ["id", "b"]);
    assert_row(&c3, &[("b", Value::Int(33))]);
    let c4 = changes(&next_txn(&mut src).await).remove(0);
    assert_eq!(
        c4.before.as_ref().and_then(|b| b.get("b")),
        Some(&Value::Int(33))
    );
    assert_row(&c4, &[("b", Value::Int(34))]);
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
