//! PostgreSQL capture against a real server: value round trips, TOAST, transaction boundaries,
//! rollbacks, spilling, acknowledgement, and resuming after lost connections and restarts.

use std::time::Duration;

use tandem::capture::postgres::{check_prerequisites, setup, slot_name, PgSource, PgSourceOptions};
use tandem::capture::CaptureEvent;
use tandem::harness::{PgOptions, PgServer};
use tandem::model::{
    Change, ChangeSet, Lsn, Op, PgPosition, Position, TableRef, Transaction, Value,
};

use crate::support::{unique_name, wait_for};

const DEADLINE: Duration = Duration::from_secs(60);

struct Fixture {
    pg: PgServer,
    db: String,
    client: tokio_postgres::Client,
}

impl Fixture {
    async fn start() -> Fixture {
        Self::start_with(PgOptions::default()).await
    }

    async fn start_with(options: PgOptions) -> Fixture {
        let pg = PgServer::start_with(options)
            .await
            .expect("PostgreSQL starts");
        let db = unique_name("cap");
        pg.create_database(&db).await.expect("create database");
        let client = pg.connect(&db).await.expect("connect");
        Fixture { pg, db, client }
    }

    fn url(&self) -> String {
        self.pg.url(&self.db)
    }

    async fn sql(&self, sql: &str) {
        self.client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Publishes `tables` and opens a source on a fresh slot.
    async fn source(&self, tables: &[&str], budget: usize) -> PgSource {
        let tables: Vec<TableRef> = tables.iter().map(|t| TableRef::new("public", t)).collect();
        let slot = slot_name(&unique_name("link"));
        setup(&self.url(), "tandem_pub", &tables, &[slot.clone()], false)
            .await
            .expect("setup");
        PgSource::connect(options(&self.url(), &slot, tables, budget, None))
            .await
            .expect("source connects")
    }

    async fn walsender_pids(&self) -> Vec<i32> {
        self.client
            .query(
                "SELECT pid FROM pg_stat_replication WHERE application_name = 'tandem'",
                &[],
            )
            .await
            .expect("pg_stat_replication")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn confirmed_flush(&self, slot: &str) -> Lsn {
        let row = self
            .client
            .query_one(
                "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
                &[&slot],
            )
            .await
            .expect("slot row");
        row.get::<_, String>(0).parse().expect("an LSN")
    }
}

fn options(
    url: &str,
    slot: &str,
    tables: Vec<TableRef>,
    budget: usize,
    start: Option<Position>,
) -> PgSourceOptions {
    PgSourceOptions {
        node: "crm".into(),
        url: url.to_owned(),
        slot: slot.to_owned(),
        publication: "tandem_pub".into(),
        temporary_slot: false,
        tables,
        memory_budget_bytes: budget,
        spill_dir: std::env::temp_dir().join("tandem-capture-tests"),
        start,
    }
}

/// The next transaction, skipping heartbeats.
async fn next_txn(src: &mut PgSource) -> Transaction {
    tokio::time::timeout(DEADLINE, async {
        loop {
            match src.next().await.expect("stream") {
                CaptureEvent::Transaction(t) => return t,
                CaptureEvent::Heartbeat(_) => {}
            }
        }
    })
    .await
    .expect("a transaction within the deadline")
}

fn changes(t: &Transaction) -> Vec<Change> {
    t.changes.to_vec().expect("read changes")
}

fn field(c: &Change, col: &str) -> Value {
    c.after
        .as_ref()
        .or(c.before.as_ref())
        .and_then(|r| r.get(col).cloned())
        .unwrap_or_else(|| panic!("{} {:?} has no column {col}", c.table, c.op))
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an int, got {other:?}"),
    }
}

#[tokio::test]
async fn pg_every_type_round_trips_exactly() {
    let f = Fixture::start().await;
    f.sql(
        "CREATE TYPE mood AS ENUM ('happy', 'sad one');
         CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
         CREATE TABLE t (
           id int PRIMARY KEY, b bool, i2 int2, i8 int8, f4 float4, f8 float8, f8nan float8, f8inf float8,
           n numeric, nbig numeric(60,20), nnan numeric, ts timestamp, tsinf timestamp, tz timestamptz,
           tzneg timestamptz, d date, dinf date, tm time, ttz timetz, iv interval, j json, jb jsonb,
           by bytea, u uuid, tx text, vc varchar(10), ch char(4), m mood, dom posint, arr int4[],
           tarr text[], marr mood[], nested int8[], vb varbit, ip inet, nul text)",
    )
    .await;
    let mut src = f.source(&["t"], 1 << 20).await;
    f.sql(
        r#"INSERT INTO t VALUES (1, true, -32768, 9223372036854775807, 0.1, 0.1, 'NaN', '-Infinity',
           '-123.4500', '12345678901234567890123456789012345678.12345678901234567890', 'NaN',
           '2024-02-29 23:59:59.999999', 'infinity', '2024-02-29 23:59:59.999999+02',
           '0044-03-15 12:00:00+00 BC', '2024-02-29', '-infinity', '24:00:00', '12:00:00.5+05:30',
           '1 year 2 mons -3 days 04:05:06.789', '{"b": 1,  "a": [1, 2]}', '{"b": 1, "a": [1, 2]}',
           '\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'héllo "q" \n', 'abc', 'ab', 'sad one', 42,
           '{1,NULL,3}', '{"a,b","NULL",NULL,"\"q\""}', '{happy,"sad one"}', '{{1,2},{3,4}}', B'10100',
           '10.0.0.1/8', NULL)"#,
    )
    .await;
    let t = next_txn(&mut src).await;
    let c = &changes(&t)[0];
    assert_eq!(c.op, Op::Insert);
    let micros = |s: &str| tandem::model::time::parse_timestamp(s).unwrap();
    let day = |s: &str| tandem::model::time::parse_date(s).unwrap() as i32;
    let dec = |s: &str| Value::Decimal(s.parse().unwrap());
    let text = |s: &str| Value::Text(s.into());
    let expected: Vec<(&str, Value)> = vec![
        ("id", Value::Int(1)),
        ("b", Value::Bool(true)),
        ("i2", Value::Int(-32768)),
        ("i8", Value::Int(i64::MAX)),
        ("f4", Value::Float32(0.1)),
        ("f8", Value::Float64(0.1)),
        ("f8nan", Value::Float64(f64::NAN)),
        ("f8inf", Value::Float64(f64::NEG_INFINITY)),
        ("n", dec("-123.4500")),
        (
            "nbig",
            dec("12345678901234567890123456789012345678.12345678901234567890"),
        ),
        ("nnan", dec("NaN")),
        ("ts", Value::Timestamp(micros("2024-02-29 23:59:59.999999"))),
        ("tsinf", Value::Timestamp(i64::MAX)),
        (
            "tz",
            Value::TimestampTz(micros("2024-02-29 21:59:59.999999")),
        ),
        ("tzneg", Value::TimestampTz(micros("-0043-03-15 12:00:00"))),
        ("d", Value::Date(day("2024-02-29"))),
        ("dinf", Value::Date(i32::MIN)),
        ("tm", Value::Time(86_400_000_000)),
        (
            "ttz",
            Value::TimeTz {
                micros: 43_200_500_000,
                offset_secs: 19_800,
            },
        ),
        (
            "iv",
            Value::Interval {
                months: 14,
                days: -3,
                micros: 14_706_789_000,
            },
        ),
        ("j", Value::Json(r#"{"b": 1,  "a": [1, 2]}"#.into())),
        ("jb", Value::Json(r#"{"a": [1, 2], "b": 1}"#.into())),
        ("by", Value::Bytes(vec![0, 255, 16])),
        (
            "u",
            Value::Uuid([
                0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8, 0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38,
                0x0a, 0x11,
            ]),
        ),
        ("tx", text("héllo \"q\" \\n")),
        ("vc", text("abc")),
        ("ch", text("ab  ")),
        ("m", Value::Enum("sad one".into())),
        ("dom", Value::Int(42)),
        (
            "arr",
            Value::Array(vec![Value::Int(1), Value::Null, Value::Int(3)]),
        ),
        (
            "tarr",
            Value::Array(vec![text("a,b"), text("NULL"), Value::Null, text("\"q\"")]),
        ),
        (
            "marr",
            Value::Array(vec![
                Value::Enum("happy".into()),
                Value::Enum("sad one".into()),
            ]),
        ),
        (
            "nested",
            Value::Array(vec![
                Value::Array(vec![Value::Int(1), Value::Int(2)]),
                Value::Array(vec![Value::Int(3), Value::Int(4)]),
            ]),
        ),
        (
            "vb",
            Value::Bits {
                len: 5,
                bytes: vec![0b1010_0000],
            },
        ),
        (
            "ip",
            Value::Other {
                type_name: "inet".into(),
                text: "10.0.0.1/8".into(),
            },
        ),
        ("nul", Value::Null),
    ];
    for (col, want) in expected {
        let got = field(c, col);
        assert_eq!(got, want, "column {col}: got {got:?}, want {want:?}");
    }
    assert_eq!(t.origin.as_ref(), "crm");
    assert!(t.marks.pg_origin.is_none());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    assert!(
        (now - t.commit_time).abs() < 600_000_000,
        "commit time {} is not near now {now}",
        t.commit_time
    );
}

#[tokio::test]
async fn pg_unchanged_toast_is_unchanged_not_null() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE doc (id int PRIMARY KEY, n int, body text)")
        .await;
    let mut src = f.source(&["doc"], 1 << 20).await;
    // Random text does not compress, so 100 kB goes out of line into TOAST.
    f.sql(
        "INSERT INTO doc SELECT 1, 0, string_agg(md5(g::text), '') FROM generate_series(1, 4000) g",
    )
    .await;
    f.sql("UPDATE doc SET n = 1 WHERE id = 1").await;
    let ins = next_txn(&mut src).await;
    match field(&changes(&ins)[0], "body") {
        Value::Text(s) => assert_eq!(s.len(), 128_000),
        other => panic!("inserted body arrived as {other:?}"),
    }
    let upd = next_txn(&mut src).await;
    let c = &changes(&upd)[0];
    assert_eq!(c.op, Op::Update);
    assert_eq!(field(c, "n"), Value::Int(1));
    assert_eq!(field(c, "body"), Value::Unchanged);
}

#[tokio::test]
async fn pg_transactions_arrive_whole_and_rollbacks_never_arrive() {
    let f = Fixture::start().await;
    f.sql(
        "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY, v text);
           CREATE TABLE nokey (v text); ALTER TABLE nokey REPLICA IDENTITY FULL;",
    )
    .await;
    let mut src = f.source(&["a", "b", "nokey"], 1 << 20).await;
    f.sql("BEGIN; INSERT INTO a VALUES (1); INSERT INTO b VALUES (1, 'x'); UPDATE b SET v = 'y'; DELETE FROM a; COMMIT").await;
    f.sql("BEGIN; INSERT INTO a VALUES (100); ROLLBACK").await;
    f.sql("BEGIN; INSERT INTO a VALUES (2); SAVEPOINT s1; INSERT INTO a VALUES (200);
           SAVEPOINT s2; INSERT INTO a VALUES (201); ROLLBACK TO s1; INSERT INTO a VALUES (3); COMMIT")
        .await;
    f.sql("INSERT INTO nokey VALUES ('k'); DELETE FROM nokey; TRUNCATE b")
        .await;
    let t1 = next_txn(&mut src).await;
    let ops: Vec<(String, Op)> = changes(&t1)
        .iter()
        .map(|c| (c.table.name.to_string(), c.op))
        .collect();
    assert_eq!(
        ops,
        vec![
            ("a".into(), Op::Insert),
            ("b".into(), Op::Insert),
            ("b".into(), Op::Update),
            ("a".into(), Op::Delete)
        ]
    );
    let t2 = next_txn(&mut src).await;
    let ids: Vec<i64> = changes(&t2).iter().map(|c| int(&field(c, "id"))).collect();
    assert_eq!(ids, vec![2, 3], "rolled-back work leaked into the stream");
    // One simple-query string is one implicit transaction.
    let trunc = next_txn(&mut src).await;
    let cs = changes(&trunc);
    let ops: Vec<Op> = cs.iter().map(|c| c.op).collect();
    assert_eq!(ops, vec![Op::Insert, Op::Delete, Op::Truncate]);
    let before = cs[1].before.clone().expect("a delete carries its old row");
    assert_eq!(before.get("v"), Some(&Value::Text("k".into())));
    assert!(t1.position < t2.position && t2.position < trunc.position);
}

#[tokio::test]
async fn pg_large_transaction_spills_and_reads_back_complete() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE big (id int PRIMARY KEY, pad text)")
        .await;
    let mut src = f.source(&["big"], 256 * 1024).await;
    f.sql("INSERT INTO big SELECT g, 'row ' || g FROM generate_series(1, 100000) g")
        .await;
    let t = next_txn(&mut src).await;
    assert!(
        matches!(t.changes, ChangeSet::Spilled(_)),
        "100,000 rows over a 256 kB budget stayed in memory"
    );
    assert_eq!(t.changes.len(), 100_000);
    let mut expect = 1;
    for c in t.changes.iter() {
        let c = c.expect("read spilled change");
        assert_eq!(field(&c, "id"), Value::Int(expect));
        expect += 1;
    }
    assert_eq!(expect, 100_001);
    assert_eq!(src.spilled_transactions(), 1);
}

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
async fn pg_flush_advances_only_on_confirm_and_heartbeats_move_a_quiet_slot() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE q (id int PRIMARY KEY); CREATE TABLE unpublished (id int)")
        .await;
    let tables = vec![TableRef::new("public", "q")];
    let slot = slot_name(&unique_name("ack"));
    setup(&f.url(), "tandem_pub", &tables, &[slot.clone()], false)
        .await
        .expect("setup");
    let created_at = f.confirmed_flush(&slot).await;
    let mut src = PgSource::connect(options(&f.url(), &slot, tables, 1 << 20, None))
        .await
        .expect("connect");
    f.sql("INSERT INTO q VALUES (1)").await;
    let t = next_txn(&mut src).await;
    let Position::Postgres(pos) = t.position.clone() else {
        panic!("not a PostgreSQL position")
    };
    // Unconfirmed: keep the stream busy for a while and check the slot did not move.
    f.sql("INSERT INTO unpublished VALUES (1)").await;
    for _ in 0..3 {
        let _ = tokio::time::timeout(Duration::from_millis(300), src.next()).await;
    }
    assert_eq!(
        f.confirmed_flush(&slot).await,
        created_at,
        "flushed without a confirm"
    );
    src.confirm(&t.position);
    drive_until(
        &mut src,
        "the slot to reach the confirmed position",
        |_| async { (f.confirmed_flush(&slot).await >= pos.lsn).then_some(()) },
    )
    .await;
    // Quiet as far as this slot goes: WAL moves on (an unpublished table), and heartbeats let the
    // consumer confirm past it.
    f.sql("INSERT INTO unpublished SELECT generate_series(1, 100)")
        .await;
    let wal_now: Lsn = f
        .client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .expect("current lsn")
        .get::<_, String>(0)
        .parse()
        .expect("an LSN");
    let beat = drive_until(&mut src, "a heartbeat past the unpublished writes", |ev| {
        let found = match ev {
            Some(CaptureEvent::Heartbeat(Position::Postgres(p))) if p.lsn >= wal_now => Some(p),
            Some(CaptureEvent::Transaction(t)) => {
                panic!("unexpected transaction at {}", t.position)
            }
            _ => None,
        };
        async move { found }
    })
    .await;
    assert_eq!(
        f.confirmed_flush(&slot).await,
        pos.lsn,
        "a heartbeat was acknowledged unconfirmed"
    );
    src.confirm(&Position::Postgres(beat));
    drive_until(&mut src, "the slot to pass the quiet WAL", |_| async {
        (f.confirmed_flush(&slot).await >= beat.lsn).then_some(())
    })
    .await;
}

/// Keeps reading the stream (status updates ride on `next()`) until `check` says done, with a deadline.
async fn drive_until<T, Fut>(
    src: &mut PgSource,
    what: &str,
    mut check: impl FnMut(Option<CaptureEvent>) -> Fut,
) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    loop {
        let ev = match tokio::time::timeout(Duration::from_millis(200), src.next()).await {
            Ok(ev) => Some(ev.expect("stream")),
            Err(_) => None,
        };
        if let Some(v) = check(ev).await {
            return v;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "timed out after {DEADLINE:?} waiting for {what}"
        );
    }
}

/// Reads until every id in `1..=n` arrived; panics on a duplicate. Confirms every 7th transaction so
/// that a reconnect has unconfirmed, already delivered transactions to filter.
async fn collect_ids(src: &mut PgSource, n: i64, seen: &mut Vec<i64>) {
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
    let slot = slot_name(&unique_name("resume"));
    setup(&f.url(), "tandem_pub", &tables, &[slot.clone()], false)
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
async fn pg_prerequisite_checks_name_the_fix() {
    let f = Fixture::start_with(PgOptions {
        settings: vec![("wal_level".into(), "replica".into())],
        ..PgOptions::default()
    })
    .await;
    f.sql(
        "CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE nokey (v text);
           CREATE ROLE bob LOGIN",
    )
    .await;
    let tables = [
        TableRef::new("public", "keyed"),
        TableRef::new("public", "nokey"),
        TableRef::new("public", "missing"),
    ];
    let problems = check_prerequisites(&f.url(), &tables).await;
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    let has = |needle: &str| text.iter().any(|p| p.contains(needle));
    assert!(has("ALTER SYSTEM SET wal_level = logical"), "{text:#?}");
    assert!(
        has("ALTER TABLE \"public\".\"nokey\" REPLICA IDENTITY FULL"),
        "{text:#?}"
    );
    assert!(has("public.missing does not exist"), "{text:#?}");
    assert!(
        !has("keyed"),
        "a table with a primary key was refused: {text:#?}"
    );
    assert_eq!(problems.len(), 3, "{text:#?}");
    let bob_url = f.url().replace("postgres@", "bob@");
    let problems = check_prerequisites(&bob_url, &tables[..1]).await;
    assert!(
        problems
            .iter()
            .any(|p| p.fix.contains("ALTER ROLE \"bob\" WITH REPLICATION")),
        "{problems:#?}"
    );
}

#[tokio::test]
async fn pg_setup_is_idempotent_and_dry_run_runs_nothing() {
    let f = Fixture::start().await;
    f.sql("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
        .await;
    let a = vec![TableRef::new("public", "a")];
    let slots = vec![slot_name("crm->helpdesk")];
    let planned = setup(&f.url(), "tandem_pub", &a, &slots, true)
        .await
        .expect("dry run");
    assert_eq!(
        planned,
        vec![
            "CREATE PUBLICATION \"tandem_pub\" FOR TABLE \"public\".\"a\"".to_string(),
            "SELECT pg_create_logical_replication_slot('tandem_crm__helpdesk', 'pgoutput')"
                .to_string(),
        ]
    );
    let pubs: i64 = f
        .client
        .query_one("SELECT count(*) FROM pg_publication", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(pubs, 0, "the dry run created something");
    assert_eq!(
        setup(&f.url(), "tandem_pub", &a, &slots, false)
            .await
            .expect("setup"),
        planned
    );
    assert!(setup(&f.url(), "tandem_pub", &a, &slots, false)
        .await
        .expect("again")
        .is_empty());
    let both = vec![TableRef::new("public", "a"), TableRef::new("public", "b")];
    assert_eq!(
        setup(&f.url(), "tandem_pub", &both, &slots, false)
            .await
            .expect("add b"),
        vec!["ALTER PUBLICATION \"tandem_pub\" ADD TABLE \"public\".\"b\"".to_string()]
    );
}

#[tokio::test]
async fn pg_password_authentication_scram_and_md5() {
    let f = Fixture::start_with(PgOptions {
        hba_lines: vec![
            "host all alice 127.0.0.1/32 scram-sha-256".into(),
            "host all bob 127.0.0.1/32 md5".into(),
        ],
        ..PgOptions::default()
    })
    .await;
    f.sql(
        "CREATE TABLE t (id int PRIMARY KEY);
         CREATE ROLE alice LOGIN REPLICATION PASSWORD 's3cret:alice';
         SET password_encryption = 'md5';
         CREATE ROLE bob LOGIN REPLICATION PASSWORD 'bob-pw';
         GRANT SELECT ON t TO alice, bob;",
    )
    .await;
    let tables = vec![TableRef::new("public", "t")];
    setup(&f.url(), "tandem_pub", &tables, &[], false)
        .await
        .expect("setup");
    let port = f.pg.port();
    for (user, password) in [("alice", "s3cret%3Aalice"), ("bob", "bob-pw")] {
        let url = format!("postgres://{user}:{password}@127.0.0.1:{port}/{}", f.db);
        let slot = slot_name(&unique_name(user));
        let mut opts = options(&url, &slot, tables.clone(), 1 << 20, None);
        opts.temporary_slot = true;
        let mut src = PgSource::connect(opts)
            .await
            .unwrap_or_else(|e| panic!("{user} connects: {e}"));
        f.sql("INSERT INTO t SELECT coalesce(max(id), 0) + 1 FROM t")
            .await;
        let t = next_txn(&mut src).await;
        assert_eq!(changes(&t).len(), 1, "{user}");
        let dbg = format!("{src:?}");
        assert!(
            !dbg.contains("s3cret") && !dbg.contains("bob-pw"),
            "password in Debug: {dbg}"
        );
    }
    let url = format!("postgres://alice:wrong-pw@127.0.0.1:{port}/{}", f.db);
    let err = PgSource::connect(options(&url, "tandem_x", tables, 1 << 20, None))
        .await
        .expect_err("a wrong password is refused");
    assert!(
        !err.is_transient(),
        "a wrong password is not worth retrying: {err}"
    );
    assert!(
        !format!("{err} {err:?}").contains("wrong-pw"),
        "password in the error: {err:?}"
    );
}

/// A throwaway CA and a `localhost` server certificate signed by it, made with the openssl tool; the
/// key is handed to the `postgres` user when running as root, since the server refuses a key others
/// can read.
fn make_certificates() -> std::path::PathBuf {
    use std::process::Command;
    let dir = std::env::temp_dir().join(unique_name("tandem-tls"));
    std::fs::create_dir_all(&dir).expect("cert dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("the openssl tool is needed for the TLS test (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tandem test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod key");
    std::fs::set_permissions(
        dir.join("server.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod cert");
    let uid = Command::new("id").args(["-u"]).output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        let out = Command::new("chown")
            .args(["postgres", "server.key"])
            .current_dir(&dir)
            .output()
            .expect("chown");
        assert!(out.status.success(), "chown postgres server.key failed");
    }
    dir
}

#[tokio::test]
async fn pg_tls_require_and_verify_full() {
    let certs = make_certificates();
    let f = Fixture::start_with(PgOptions {
        settings: vec![
            ("ssl".into(), "on".into()),
            (
                "ssl_cert_file".into(),
                certs.join("server.pem").display().to_string(),
            ),
            (
                "ssl_key_file".into(),
                certs.join("server.key").display().to_string(),
            ),
        ],
        ..PgOptions::default()
    })
    .await;
    f.sql("CREATE TABLE t (id int PRIMARY KEY)").await;
    let tables = vec![TableRef::new("public", "t")];
    setup(&f.url(), "tandem_pub", &tables, &[], false)
        .await
        .expect("setup");
    let port = f.pg.port();
    let ca = certs.join("ca.pem").display().to_string();
    let urls = [
        format!(
            "postgres://postgres@127.0.0.1:{port}/{}?sslmode=require",
            f.db
        ),
        format!(
            "postgres://postgres@localhost:{port}/{}?sslmode=verify-full&sslrootcert={ca}",
            f.db
        ),
    ];
    for url in urls {
        let mut opts = options(
            &url,
            &slot_name(&unique_name("tls")),
            tables.clone(),
            1 << 20,
            None,
        );
        opts.temporary_slot = true;
        let mut src = PgSource::connect(opts)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        f.sql("INSERT INTO t SELECT coalesce(max(id), 0) + 1 FROM t")
            .await;
        next_txn(&mut src).await;
        let rows = f
            .client
            .query(
                "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'tandem'",
                &[],
            )
            .await
            .expect("pg_stat_ssl");
        assert!(!rows.is_empty(), "no tandem connection found");
        assert!(
            rows.iter().all(|r| r.get::<_, bool>(0)),
            "a tandem connection is not encrypted ({url})"
        );
    }
    // verify-full against the public roots must refuse a private CA, definitively.
    let url = format!(
        "postgres://postgres@localhost:{port}/{}?sslmode=verify-full",
        f.db
    );
    let err = PgSource::connect(options(&url, "tandem_tls_bad", tables, 1 << 20, None))
        .await
        .expect_err("an unknown CA is refused under verify-full");
    assert!(!err.is_transient(), "{err}");
    let _ = std::fs::remove_dir_all(&certs);
}

#[tokio::test]
async fn pg_idle_stream_answers_keepalives_and_survives_a_short_sender_timeout() {
    let f = Fixture::start_with(PgOptions {
        settings: vec![("wal_sender_timeout".into(), "2s".into())],
        ..PgOptions::default()
    })
    .await;
    f.sql("CREATE TABLE k (id int PRIMARY KEY)").await;
    let mut src = f.source(&["k"], 1 << 20).await;
    f.sql("INSERT INTO k VALUES (1)").await;
    next_txn(&mut src).await;
    // Several sender timeouts of silence, read through repeatedly cancelled next() calls.
    let quiet = std::time::Instant::now();
    drive_until(&mut src, "8 s of an idle stream", |ev| {
        if let Some(CaptureEvent::Transaction(t)) = ev {
            panic!("unexpected transaction at {}", t.position);
        }
        async move { (quiet.elapsed() > Duration::from_secs(8)).then_some(()) }
    })
    .await;
    assert_eq!(
        src.reconnects(),
        0,
        "the server dropped an idle but live stream"
    );
    f.sql("INSERT INTO k VALUES (2)").await;
    assert_eq!(
        field(&changes(&next_txn(&mut src).await)[0], "id"),
        Value::Int(2)
    );
}
