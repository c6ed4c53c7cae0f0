//! Values, TOAST, transaction boundaries, rollbacks and spilling.

use super::*;

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
    assert!(
        t1.position.is_within(&t2.position)
            && t1.position != t2.position
            && t2.position.is_within(&trunc.position)
            && t2.position != trunc.position
    );
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
