//! Type fidelity on same-engine pairs: values whose text or binary form is easy to get wrong arrive
//! exactly, through the initial copy and through the stream. Each node is read back in its own
//! text form (PostgreSQL's simple query protocol, MariaDB's text protocol) and compared column by
//! column, so any rewrite, truncation or padding shows.
//!
//! Rows with ids below 100 exist on `a` before `tandem run` (the copy, `from = "a"`, carries them);
//! the same values with ids from 100 are written on `a` after the links started (the stream a -> b
//! carries them), then with ids from 200 on `b` (the stream b -> a). The two nodes' tables are
//! compared whole after each step.

use std::path::PathBuf;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use crate::support::{start_tandem_run, stop_tandem_run, unique_name, wait_for};

/// One row: each column's text, `None` for NULL.
type Row = Vec<Option<String>>;

/// A table of the test: its DDL (the same on both nodes), the columns compared, and the rows written
/// as `VALUES` tuples whose first item is the id.
pub struct Case {
    pub table: &'static str,
    pub ddl: &'static str,
    pub columns: &'static str,
    pub rows: &'static [&'static str],
    /// An insert that gives no id (the table generates it), written on the source after the start.
    pub generated_insert: Option<&'static str>,
}

impl Case {
    /// `INSERT INTO t VALUES …` with each row's id raised by `offset`.
    fn insert(&self, offset: i32) -> String {
        let rows: Vec<String> = self
            .rows
            .iter()
            .map(|r| {
                let (id, rest) = r.split_once(',').expect("a row starts with its id");
                let id: i32 = id.trim().parse().expect("a numeric id");
                format!("({},{rest})", id + offset)
            })
            .collect();
        format!("INSERT INTO {} VALUES {};", self.table, rows.join(", "))
    }

    fn select(&self) -> String {
        format!("SELECT {} FROM {} ORDER BY 1", self.columns, self.table)
    }
}

fn config(a: &str, b: &str, cases: &[Case]) -> PathBuf {
    let mut text = format!(
        "[nodes.a]\nurl = \"{a}\"\n[nodes.b]\nurl = \"{b}\"\n[copy]\nfrom = \"a\"\n[tandem]\non_error = \"halt\"\n"
    );
    for (i, c) in cases.iter().enumerate() {
        if c.table.contains('.') {
            // A schema-qualified (perhaps quoted) name: named on both nodes under `on`.
            text += &format!(
                "[[tables]]\nname = \"t{i}\"\nkey = [\"id\"]\non = {{ a = '{0}', b = '{0}' }}\n",
                c.table
            );
        } else {
            text += &format!("[[tables]]\nname = \"{}\"\nkey = [\"id\"]\n", c.table);
        }
    }
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_types")));
    std::fs::write(&path, text).expect("write the configuration");
    path
}

async fn setup(config: &PathBuf) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["setup", "--config"])
        .arg(config)
        .output()
        .await
        .expect("run tandem setup");
    assert!(
        out.status.success(),
        "setup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The first difference between the source's and the target's rows of `table`, naming the key and
/// column and both values.
fn diff(table: &str, columns: &str, a: &[Row], b: &[Row]) -> Option<String> {
    let names: Vec<&str> = columns.split(',').map(str::trim).collect();
    for (i, ra) in a.iter().enumerate() {
        let key = ra.first().cloned().flatten().unwrap_or_default();
        let Some(rb) = b.iter().find(|r| r.first() == ra.first()) else {
            return Some(format!("{table} id {key}: missing on the target"));
        };
        for (j, (va, vb)) in ra.iter().zip(rb).enumerate() {
            if va != vb {
                let col = names.get(j).copied().unwrap_or("?");
                return Some(format!(
                    "{table} id {key} column {col}: source {va:?}, target {vb:?} (row {i})"
                ));
            }
        }
    }
    (a.len() != b.len()).then(|| format!("{table}: {} rows vs {}", a.len(), b.len()))
}

async fn pg_rows(pg: &PgServer, sql: &str) -> Option<Vec<Row>> {
    let c = pg.connect("app").await.ok()?;
    let msgs = c.simple_query(sql).await.ok()?;
    Some(
        msgs.iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect(),
    )
}

/// MariaDB values through the text protocol: UTF-8 as quoted text, other bytes as hex, so binary
/// values compare exactly and a difference reads plainly.
async fn maria_rows(m: &MariaDb, sql: &str) -> Option<Vec<Row>> {
    let mut c = m.connect("app").await.ok()?;
    let rows: Vec<mysql_async::Row> = c.query(sql).await.ok()?;
    let _ = c.disconnect().await;
    Some(
        rows.into_iter()
            .map(|r| {
                r.unwrap()
                    .into_iter()
                    .map(|v| match v {
                        mysql_async::Value::NULL => None,
                        mysql_async::Value::Bytes(b) => Some(match String::from_utf8(b) {
                            Ok(text) => format!("{text:?}"),
                            Err(e) => {
                                let hex: String =
                                    e.as_bytes().iter().map(|x| format!("{x:02x}")).collect();
                                format!("0x{hex}")
                            }
                        }),
                        other => Some(format!("{other:?}")),
                    })
                    .collect()
            })
            .collect(),
    )
}

/// Waits until every case's rows on `target` equal those on `source`, or panics with the first
/// difference.
async fn wait_same<F, Fut>(cases: &[Case], read: F)
where
    F: Fn(bool, String) -> Fut,
    Fut: std::future::Future<Output = Option<Vec<Row>>>,
{
    for c in cases {
        let last = std::sync::Mutex::new(String::from("never read"));
        let done = tokio::time::timeout(
            Duration::from_secs(60),
            wait_for(c.table, Duration::from_secs(3600), || async {
                let a = read(true, c.select()).await?;
                let b = read(false, c.select()).await?;
                match diff(c.table, c.columns, &a, &b) {
                    None => Some(()),
                    Some(d) => {
                        *last.lock().unwrap_or_else(|e| e.into_inner()) = d;
                        None
                    }
                }
            }),
        )
        .await;
        if done.is_err() {
            panic!(
                "the target did not hold the source's values within 60 s: {}",
                last.lock().unwrap_or_else(|e| e.into_inner())
            );
        }
    }
}

/// Starts two PostgreSQL nodes with `cases`' tables, writes their rows on `a` before the links
/// start (the copy) and again with ids from 100 on `a` after (the stream), waits for `b` to hold
/// every value as `a` does, then writes them on `b` with ids from 200 and waits for `a` to hold
/// every value as `b` does.
pub async fn postgres_pair(cases: &[Case]) {
    let (a, b) = tokio::join!(PgServer::start(), PgServer::start());
    let (a, b) = (a.expect("PostgreSQL a"), b.expect("PostgreSQL b"));
    for s in [&a, &b] {
        s.create_database("app").await.expect("create app");
        let c = s.connect("app").await.expect("connect");
        for case in cases {
            c.batch_execute(case.ddl).await.expect("create the table");
        }
    }
    let src = a.connect("app").await.expect("connect a");
    let back = b.connect("app").await.expect("connect b");
    for case in cases {
        if !case.rows.is_empty() {
            src.batch_execute(&case.insert(0)).await.expect("copy rows");
        }
        if let Some(sql) = case.generated_insert {
            src.batch_execute(sql).await.expect("copy generated rows");
        }
    }
    let config = config(&a.url("app"), &b.url("app"), cases);
    setup(&config).await;
    let run = start_tandem_run(&config, 2).await;
    for case in cases {
        if !case.rows.is_empty() {
            src.batch_execute(&case.insert(100))
                .await
                .expect("stream rows");
        }
        if let Some(sql) = case.generated_insert {
            src.batch_execute(sql).await.expect("stream generated rows");
        }
    }
    wait_same(cases, |source, sql| {
        let s = if source { &a } else { &b };
        async move { pg_rows(s, &sql).await }
    })
    .await;
    for case in cases.iter().filter(|c| !c.rows.is_empty()) {
        back.batch_execute(&case.insert(200))
            .await
            .expect("stream rows the other way");
    }
    wait_same(cases, |source, sql| {
        let s = if source { &b } else { &a };
        async move { pg_rows(s, &sql).await }
    })
    .await;
    stop_tandem_run(run).await;
    std::fs::remove_file(&config).ok();
}

/// As [`postgres_pair`], on two MariaDB nodes.
pub async fn mariadb_pair(cases: &[Case]) {
    let (a, b) = tokio::join!(MariaDb::start(), MariaDb::start());
    let (a, b) = (a.expect("MariaDB a"), b.expect("MariaDB b"));
    for s in [&a, &b] {
        s.create_database("app").await.expect("create app");
        let mut c = s.connect("app").await.expect("connect");
        for case in cases {
            c.query_drop(case.ddl).await.expect("create the table");
        }
        c.disconnect().await.ok();
    }
    let mut src = a.connect("app").await.expect("connect a");
    // The source admits what a permissive application session would write (zero dates).
    src.query_drop("SET SESSION sql_mode = ''")
        .await
        .expect("permissive source session");
    let mut back = b.connect("app").await.expect("connect b");
    back.query_drop("SET SESSION sql_mode = ''")
        .await
        .expect("permissive session on b");
    for case in cases {
        src.query_drop(case.insert(0)).await.expect("copy rows");
    }
    let config = config(&a.url("app"), &b.url("app"), cases);
    setup(&config).await;
    let run = start_tandem_run(&config, 2).await;
    for case in cases {
        src.query_drop(case.insert(100)).await.expect("stream rows");
    }
    src.disconnect().await.ok();
    wait_same(cases, |source, sql| {
        let s = if source { &a } else { &b };
        async move { maria_rows(s, &sql).await }
    })
    .await;
    for case in cases {
        back.query_drop(case.insert(200))
            .await
            .expect("stream rows the other way");
    }
    back.disconnect().await.ok();
    wait_same(cases, |source, sql| {
        let s = if source { &b } else { &a };
        async move { maria_rows(s, &sql).await }
    })
    .await;
    stop_tandem_run(run).await;
    std::fs::remove_file(&config).ok();
}

/// PostgreSQL `character(n)` and `bit(n)`, and arrays of them, keep their length (a cast to the bare
/// name meant length 1: `'cdef'` arrived as `'c   '`, `bit(2) '11'` failed).
#[tokio::test(flavor = "multi_thread")]
async fn postgres_fixed_length_types_keep_their_length() {
    postgres_pair(&[Case {
        table: "fixed",
        ddl: "CREATE TABLE fixed (id int PRIMARY KEY, c4 character(4), c3 char(3), c1 char, \
              ca character(10)[], b2 bit(2), b7 bit(7), ba bit(3)[], vb varbit(5), n numeric(7,3))",
        columns: "id, c4, c3, c1, ca, b2, b7, ba, vb, n",
        rows: &[
            "1, 'cdef', 'abc', 'z', '{cone,ctwo}', B'11', B'1010101', '{101,011}', B'10', 1234.5",
            "2, 'a', '', ' ', '{\"a b\",NULL}', B'00', B'0000001', '{}', B'', -0.001",
            "3, 'ü€', 'x y', NULL, NULL, NULL, NULL, NULL, NULL, NULL",
        ],
        generated_insert: None,
    }])
    .await;
}

/// PostgreSQL dates and date-times beyond year 9999 and before year 1 (BC), alone and in arrays,
/// arrive as they are (they failed with 22009 "time zone displacement out of range").
#[tokio::test(flavor = "multi_thread")]
async fn postgres_dates_beyond_9999_and_before_christ() {
    postgres_pair(&[Case {
        table: "moments",
        ddl: "CREATE TABLE moments (id int PRIMARY KEY, ts timestamp, tz timestamptz, \
              ts3 timestamp(3), d date, tsa timestamp[])",
        columns: "id, ts, tz, ts3, d, tsa",
        rows: &[
            "1, '21016-11-04 13:51:30.123456', '294247-01-01 23:59:59.999999+00', \
             '2020-01-01 00:00:00.123', '21016-11-04', '{\"21016-11-04 13:51:30\"}'",
            "2, '4713-12-31 23:59:59.999999 BC', '4713-12-31 23:59:59.999999+00 BC', \
             '0001-01-01 00:00:00 BC', '4713-01-01 BC', '{\"0044-03-15 12:00:00 BC\"}'",
            "3, 'infinity', '-infinity', '1999-12-31 23:59:59.999', 'infinity', NULL",
        ],
        generated_insert: None,
    }])
    .await;
}

/// Other PostgreSQL built-in types at their edges, as a guard: extremes, NaN and infinities,
/// precision limits, non-ASCII text, bytes with NULs, JSON kept verbatim, ranges, network and
/// geometric types, enums and multi-dimensional arrays.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_assorted_types_arrive_exactly() {
    postgres_pair(&[Case {
        table: "assorted",
        ddl: "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
              CREATE TABLE assorted (id int PRIMARY KEY, i2 smallint, i8 bigint, r real, \
              f double precision, n numeric, m money, v varchar(5), by bytea, b boolean, u uuid, \
              j json, jb jsonb, t time(2), tt timetz, iv interval, ip inet, cn cidr, mac macaddr, \
              pt point, ir int4range, tr tstzrange, md mood, mda mood[], ia int[], ta text[], \
              ch \"char\", x xml, tv tsvector)",
        columns: "id, i2, i8, r, f, n, m, v, by, b, u, j, jb, t, tt, iv, ip, cn, mac, pt, ir, tr, \
                  md, mda, ia, ta, ch, x, tv",
        rows: &[
            "1, -32768, 9223372036854775807, 'NaN', '-Infinity', 'NaN', '-92233720368547758.08', \
             'äöü€x', '\\x00ff00', true, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', \
             '{ \"a\" : [1, 2.50] }', '{\"b\": {\"c\": null}}', '23:59:59.99', '24:00:00+14:59', \
             '-178000000 years 3 mons -4 days 05:06:07.000008', '2001:db8::1/64', '10.0.0.0/8', \
             '08:00:2b:01:02:03', '(1.5,-2.25)', '[1,5)', '[2020-01-01 00:00:00+00,infinity)', \
             'happy', '{sad,ok}', '{{1,2},{3,NULL}}', '{\"a,b\",\"q\\\"q\",NULL,\"\"}', 'Z', \
             '<a b=\"1\">x</a>', 'a:1 fat:2 rats'",
            "2, 32767, -9223372036854775808, '-0', 'Infinity', \
             '12345678901234567890.12345678901234567890', '0', '', '\\x', false, NULL, \
             '[]', '[]', '00:00', '00:00:00-15:59', '0', '0.0.0.0', '::/0', 'ff:ff:ff:ff:ff:ff', \
             '(0,0)', 'empty', '(,)', 'sad', '{}', '{}', '{}', NULL, NULL, ''",
            "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
             NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
        ],
        generated_insert: None,
    }])
    .await;
}

/// A table whose schema and table names hold a quote, dots and spaces can be named in the file
/// (`on` splits at dots outside quotes) and is carried by copy and stream.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_quoted_names_can_be_named_and_are_carried() {
    postgres_pair(&[Case {
        table: r#""Quoted_"" . Schema"."Quoted_"" . Table""#,
        ddl: r#"CREATE SCHEMA "Quoted_"" . Schema"; CREATE TABLE "Quoted_"" . Schema"."Quoted_"" . Table" (id int PRIMARY KEY, "Col "" . x" text)"#,
        columns: r#"id, "Col "" . x""#,
        rows: &["1, 'one'", "2, NULL"],
        generated_insert: None,
    }])
    .await;
}

/// A `GENERATED ALWAYS AS IDENTITY` key takes the source's values (SQLSTATE 428C9 before).
#[tokio::test(flavor = "multi_thread")]
async fn postgres_identity_always_key_takes_the_source_values() {
    postgres_pair(&[Case {
        table: "generated",
        ddl: "CREATE TABLE generated (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)",
        columns: "id, v",
        rows: &[],
        generated_insert: Some(
            "INSERT INTO generated (v) VALUES ('one'), ('two'); \
             UPDATE generated SET v = v || '+' WHERE v LIKE 'one%'",
        ),
    }])
    .await;
}

/// MariaDB GEOMETRY and POINT columns, several in one table among character columns of other
/// charsets, arrive byte for byte with their SRID (they arrived as hex text the target refused, and
/// such a table stopped the link at its TABLE_MAP).
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_geometry_arrives_byte_for_byte() {
    mariadb_pair(&[Case {
        table: "geo",
        ddl: "CREATE TABLE geo (id INT PRIMARY KEY, g GEOMETRY, name VARCHAR(20) CHARACTER SET utf8mb4, \
              p POINT, note TEXT CHARACTER SET latin1, g2 GEOMETRY NULL)",
        columns: "id, g, name, p, note, g2",
        rows: &[
            "1, ST_GeomFromText('POINT(1 2)'), 'ü', ST_PointFromText('POINT(-1.5 3.25)'), 'é', \
             ST_GeomFromText('LINESTRING(0 0,1 1,2 2)')",
            "2, ST_GeomFromText('POLYGON((0 0,4 0,4 4,0 0))', 4326), NULL, \
             ST_PointFromText('POINT(0 0)', 3857), NULL, NULL",
            "3, NULL, 'x', NULL, 'y', \
             ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))')",
        ],
        generated_insert: None,
    }])
    .await;
}

/// Other MariaDB types at their edges, as a guard: integer extremes signed and unsigned, DECIMAL(65),
/// float specials, every temporal precision, BIT(64), ENUM/SET, JSON, binary with NULs, text in
/// several charsets, YEAR, TIME beyond a day, INET4, INET6 and UUID.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_assorted_types_arrive_exactly() {
    mariadb_pair(&[Case {
        table: "assorted",
        ddl: "CREATE TABLE assorted (id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, \
              mi MEDIUMINT, bu BIGINT UNSIGNED, bi BIGINT, de DECIMAL(65,30), fl FLOAT, \
              db DOUBLE, y YEAR, t TIME(6), dt DATETIME(3), ts TIMESTAMP(6) NULL, b64 BIT(64), \
              b1 BIT(1), e ENUM('x','y'), st SET('a','b','c'), j JSON, vb VARBINARY(10), \
              bn BINARY(4), c CHAR(5), l1 VARCHAR(10) CHARACTER SET latin1, \
              u8 TEXT CHARACTER SET utf8mb4, ip INET6, uu UUID, i4 INET4)",
        columns: "id, ti, tu, mi, bu, bi, de, fl, db, y, t, dt, ts, b64, b1, e, st, j, vb, bn, c, \
                  l1, u8, ip, uu, i4",
        rows: &[
            "1, -128, 255, -8388608, 18446744073709551615, -9223372036854775808, \
             '-99999999999999999999999999999999999.999999999999999999999999999999', \
             -3.40282e38, 1.7976931348623157e308, 2155, '838:59:59.000000', \
             '9999-12-31 23:59:59.999', '2038-01-19 03:14:07.999999', \
             b'1111111111111111111111111111111111111111111111111111111111111111', b'1', 'y', \
             'a,c', '{\"k\": [1, \"\\u00e9\", null]}', x'00ff00', x'0001', 'ab', 'café', \
             '😀 ü', '2001:db8:a:b::cd', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', \
             '255.255.255.255'",
            "2, 127, 0, 8388607, 0, 9223372036854775807, 0.000000000000000000000000000001, \
             1.17549e-38, -2.2250738585072014e-308, 1901, '-838:59:59.000000', \
             '1000-01-01 00:00:00.000', '1970-01-01 00:00:01.000000', b'0', b'0', 'x', '', \
             '[]', x'', x'00000000', '', '', '', '::', '00000000-0000-0000-0000-000000000000', \
             '0.0.0.0'",
            "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
             NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
        ],
        generated_insert: None,
    }])
    .await;
}

/// MariaDB zero and partly-zero dates and the ENUM error value `''` that the source's sql_mode
/// admitted arrive as they are, by copy and by stream (the copy rewrote '2013-00-00 00:00:00' as
/// '2012-11-30 00:00:00' and halted on '0000-00-00' and on `''`; the stream dead-lettered them); a
/// table with a zero-date default passes `tandem setup`.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_zero_dates_and_empty_enums_arrive_as_they_are() {
    mariadb_pair(&[Case {
        table: "zero",
        ddl: "CREATE TABLE zero (id INT PRIMARY KEY, d DATE, dt DATETIME, dt6 DATETIME(6), \
              ts TIMESTAMP NULL, k ENUM('a','b'))",
        columns: "id, d, dt, dt6, ts, k, k + 0",
        rows: &[
            "1, '0000-00-00', '2013-00-00 00:00:00', '2015-05-00 12:34:56.123456', \
             '0000-00-00 00:00:00', ''",
            "2, '2015-00-21', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '2020-01-01 00:00:00', \
             'b'",
            "3, '2015-05-00', NULL, '1000-01-01 00:00:00.000001', NULL, 'no such label'",
        ],
        generated_insert: None,
    }, Case {
        // `tandem setup` alters this table: its zero default must not fail the ALTER (1067).
        table: "zero_default",
        ddl: "CREATE TABLE zero_default (id INT PRIMARY KEY, dz DATETIME NOT NULL DEFAULT 0)",
        columns: "id, dz",
        rows: &["1, DEFAULT", "2, '2020-02-29 23:59:59'"],
        generated_insert: None,
    }])
    .await;
}
