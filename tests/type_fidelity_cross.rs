//! Type fidelity across engines: each value written on one engine arrives on the other as the table
//! of expected mapped values says, through the initial copy and through the stream, or is refused
//! with a dead letter naming the column. Values are read back in the target's own text form
//! (PostgreSQL's simple query protocol, MariaDB's text protocol; bytes that are not UTF-8 as `0x…`).
//!
//! Rows with ids below 100 exist before `tandem run` (the copy carries them); the same values with
//! ids from 100 are written after the links started, one transaction per row (the stream carries
//! them), so that a refused row dead-letters alone.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{start_tandem_run, stop_tandem_run, unique_name, wait_for, Pair};

/// Which engine the rows are written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Postgres,
    MariaDb,
}

/// What the target holds for one source row.
pub enum Expect {
    /// The target's columns as text (`NULL` for NULL), id first, joined with `|`.
    Row(&'static str),
    /// The row is refused: a dead letter whose error names this column (`None`: names none).
    Refused(Option<&'static str>),
}

pub struct CrossCase {
    pub table: &'static str,
    pub pg_ddl: &'static str,
    pub maria_ddl: &'static str,
    /// The columns read on the target, id first (expressions allowed).
    pub columns: &'static str,
    /// Rows as `VALUES` tuples in the source's SQL, id first; `expect` has one entry per row.
    pub rows: &'static [&'static str],
    pub expect: &'static [Expect],
}

impl CrossCase {
    fn insert(&self, row: &str, offset: i32) -> String {
        let (id, rest) = row.split_once(',').expect("a row starts with its id");
        let id: i32 = id.trim().parse().expect("a numeric id");
        format!("INSERT INTO {} VALUES ({},{rest})", self.table, id + offset)
    }

    /// The rows the target must hold, for the copy (ids as given) and the stream (ids from 100).
    fn wanted(&self) -> Vec<String> {
        let mut out = Vec::new();
        for offset in [0, 100] {
            for e in self.expect {
                if let Expect::Row(text) = e {
                    let (id, rest) = text.split_once('|').unwrap_or((text, ""));
                    let id: i32 = id.parse().expect("an expected row starts with its id");
                    let id = id + offset;
                    out.push(if rest.is_empty() && !text.contains('|') {
                        id.to_string()
                    } else {
                        format!("{id}|{rest}")
                    });
                }
            }
        }
        out.sort();
        out
    }

    fn refused(&self) -> Vec<Option<&'static str>> {
        self.expect
            .iter()
            .filter_map(|e| match e {
                Expect::Refused(c) => Some(*c),
                Expect::Row(_) => None,
            })
            .collect()
    }
}

fn join(cells: impl Iterator<Item = Option<String>>) -> String {
    cells
        .map(|c| c.unwrap_or_else(|| "NULL".into()))
        .collect::<Vec<_>>()
        .join("|")
}

async fn pg_rows(c: &tokio_postgres::Client, sql: &str) -> Option<Vec<String>> {
    let msgs = c.simple_query(sql).await.ok()?;
    let mut rows: Vec<String> = msgs
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => {
                Some(join((0..r.len()).map(|i| r.get(i).map(str::to_string))))
            }
            _ => None,
        })
        .collect();
    rows.sort();
    Some(rows)
}

async fn maria_rows(url: &str, sql: &str) -> Option<Vec<String>> {
    let mut c = mysql_async::Conn::from_url(url).await.ok()?;
    let rows: Vec<mysql_async::Row> = c.query(sql).await.ok()?;
    let _ = c.disconnect().await;
    let mut rows: Vec<String> = rows
        .into_iter()
        .map(|r| {
            join(r.unwrap().into_iter().map(|v| match v {
                mysql_async::Value::NULL => None,
                mysql_async::Value::Bytes(b) => Some(match String::from_utf8(b) {
                    Ok(text) => text,
                    Err(e) => {
                        let hex: String = e.as_bytes().iter().map(|x| format!("{x:02x}")).collect();
                        format!("0x{hex}")
                    }
                }),
                other => Some(format!("{other:?}")),
            }))
        })
        .collect();
    rows.sort();
    Some(rows)
}

/// Starts a PostgreSQL node `crm` and a MariaDB node `helpdesk` with `cases`' tables, writes the
/// rows on `from` before the links start and again (ids from 100, one transaction each) after, and
/// waits until the other node holds the expected rows and one dead letter per refused row and
/// pass; panics with the first difference.
pub async fn cross_pair(from: Source, cases: &[CrossCase]) {
    let (pg, maria) = tokio::join!(
        tandem::harness::PgServer::start(),
        tandem::harness::MariaDb::start()
    );
    let (pg, maria) = (pg.expect("PostgreSQL"), maria.expect("MariaDB"));
    pg.create_database("crm").await.expect("create crm");
    maria.create_database("desk").await.expect("create desk");
    let pgc = pg.connect("crm").await.expect("connect PostgreSQL");
    let mut my = maria.connect("desk").await.expect("connect MariaDB");
    for c in cases {
        pgc.batch_execute(c.pg_ddl).await.expect("PostgreSQL table");
        my.query_drop(c.maria_ddl).await.expect("MariaDB table");
    }
    let write = |sql: String| {
        let (pgc, url) = (&pgc, maria.url("desk"));
        async move {
            match from {
                Source::Postgres => pgc.batch_execute(&sql).await.map_err(|e| e.to_string()),
                Source::MariaDb => {
                    let mut c = mysql_async::Conn::from_url(url)
                        .await
                        .map_err(|e| e.to_string())?;
                    c.query_drop("SET SESSION sql_mode = ''")
                        .await
                        .map_err(|e| e.to_string())?;
                    let r = c.query_drop(&sql).await.map_err(|e| e.to_string());
                    let _ = c.disconnect().await;
                    r
                }
            }
        }
    };
    for c in cases {
        for row in c.rows {
            let sql = c.insert(row, 0);
            write(sql.clone())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    let source = if from == Source::Postgres {
        "crm"
    } else {
        "helpdesk"
    };
    let mut text = format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n[copy]\nfrom = \"{source}\"\n\
         [tandem]\non_error = \"dead_letter\"\n",
        pg.url("crm"),
        maria.url("desk")
    );
    for c in cases {
        text += &format!("[[tables]]\nname = \"{}\"\nkey = [\"id\"]\n", c.table);
    }
    let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_cross")));
    std::fs::write(&config, text).expect("write the configuration");
    let setup = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["setup", "--config"])
        .arg(&config)
        .output()
        .await
        .expect("run tandem setup");
    assert!(
        setup.status.success(),
        "setup failed: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let run = start_tandem_run(&config, 2).await;
    for c in cases {
        for row in c.rows {
            let sql = c.insert(row, 100);
            write(sql.clone())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
    let maria_url = maria.url("desk");
    for c in cases {
        let select = format!("SELECT {} FROM {}", c.columns, c.table);
        let want = c.wanted();
        let last = std::sync::Mutex::new(String::from("never read"));
        let done = tokio::time::timeout(
            Duration::from_secs(60),
            wait_for(c.table, Duration::from_secs(3600), || async {
                let got = match from {
                    Source::Postgres => maria_rows(&maria_url, &select).await?,
                    Source::MariaDb => pg_rows(&pgc, &select).await?,
                };
                if got != want {
                    let missing: Vec<&String> = want.iter().filter(|w| !got.contains(w)).collect();
                    let extra: Vec<&String> = got.iter().filter(|g| !want.contains(g)).collect();
                    *last.lock().unwrap_or_else(|e| e.into_inner()) = format!(
                        "{}: expected but not held {missing:?}; held but not expected {extra:?}",
                        c.table
                    );
                    return None;
                }
                Some(())
            }),
        )
        .await;
        if done.is_err() {
            panic!(
                "the target did not hold the expected values within 60 s: {}",
                last.lock().unwrap_or_else(|e| e.into_inner())
            );
        }
    }
    // One dead letter per refused row (copy and stream), each naming its column.
    let refused: Vec<Option<&str>> = cases.iter().flat_map(CrossCase::refused).collect();
    let dead_sql = "SELECT error FROM tandem.dead_letter ORDER BY id";
    let errors = wait_for("the dead letters", Duration::from_secs(60), || async {
        let errors = match from {
            Source::Postgres => maria_rows(&maria_url, dead_sql).await?,
            Source::MariaDb => pg_rows(&pgc, dead_sql).await?,
        };
        (errors.len() >= refused.len() * 2).then_some(errors)
    })
    .await;
    assert_eq!(
        errors.len(),
        refused.len() * 2,
        "one dead letter per refused row: {errors:#?}"
    );
    let mut named: Vec<(&str, &str)> = Vec::new();
    for c in cases {
        named.extend(c.refused().into_iter().flatten().map(|col| (c.table, col)));
    }
    for (table, column) in &named {
        let want = 2 * named.iter().filter(|n| n == &&(*table, *column)).count();
        let naming = errors
            .iter()
            .filter(|e| {
                e.starts_with(&format!("table {table}, "))
                    && e.contains(&format!(", column {column}: "))
            })
            .count();
        assert_eq!(
            naming, want,
            "{want} dead letters name table {table} column {column}: {errors:#?}"
        );
    }
    stop_tandem_run(run).await;
    my.disconnect().await.ok();
    std::fs::remove_file(&config).ok();
}

/// MariaDB spatial values reach a PostgreSQL `bytea` as plain OGC WKB (not the server's SRID-prefixed
/// form), any number of spatial columns per table; a value with a non-zero SRID, which plain WKB
/// cannot hold, is refused with a dead letter naming its column.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_geometry_to_postgres_bytea_is_wkb() {
    cross_pair(
        Source::MariaDb,
        &[CrossCase {
            table: "shapes",
            pg_ddl: "CREATE TABLE shapes (id int PRIMARY KEY, g bytea, p bytea, note text)",
            maria_ddl: "CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY, p POINT, \
                        note VARCHAR(20) CHARACTER SET utf8mb4)",
            columns: "id, encode(g, 'hex'), encode(p, 'hex'), note",
            rows: &[
                "1, ST_GeomFromText('POINT(1 2)'), ST_PointFromText('POINT(-1.5 3.25)'), 'ü'",
                "2, ST_GeomFromText('LINESTRING(0 0,1 1)'), NULL, NULL",
                "3, ST_GeomFromText('POLYGON((0 0,4 0,4 4,0 0))', 4326), NULL, 'srid'",
                "4, NULL, ST_PointFromText('POINT(0 0)', 3857), 'srid'",
                "5, ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1))'), \
                 NULL, ''",
            ],
            expect: &[
                Expect::Row(
                    "1|0101000000000000000000f03f0000000000000040|\
                     0101000000000000000000f8bf0000000000000a40|ü",
                ),
                Expect::Row(
                    "2|01020000000200000000000000000000000000000000000000000000000000f03f\
                     000000000000f03f|NULL|NULL",
                ),
                Expect::Refused(Some("g")),
                Expect::Refused(Some("p")),
                Expect::Row(
                    "5|0107000000020000000101000000000000000000f03f000000000000f03f\
                     01020000000200000000000000000000000000000000000000000000000000f03f\
                     000000000000f03f|NULL|",
                ),
            ],
        }],
    )
    .await;
}

/// Plain WKB in a PostgreSQL `bytea` reaches a MariaDB spatial column as that geometry with SRID 0;
/// bytes that are no geometry are refused by MariaDB (error 1416) and dead-lettered.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_wkb_bytea_to_mariadb_geometry() {
    cross_pair(
        Source::Postgres,
        &[CrossCase {
            table: "shapes",
            pg_ddl: "CREATE TABLE shapes (id int PRIMARY KEY, g bytea, p bytea)",
            maria_ddl: "CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY, p POINT)",
            columns: "id, ST_AsText(g), ST_SRID(g), ST_AsText(p)",
            rows: &[
                "1, '\\x0101000000000000000000f03f0000000000000040', \
                 '\\x0101000000000000000000f8bf0000000000000a40'",
                "2, '\\x01020000000200000000000000000000000000000000000000000000000000f03f\
                 000000000000f03f', NULL",
                "3, '\\x0102', NULL",
                "4, NULL, NULL",
            ],
            expect: &[
                Expect::Row("1|POINT(1 2)|0|POINT(-1.5 3.25)"),
                Expect::Row("2|LINESTRING(0 0,1 1)|0|NULL"),
                Expect::Refused(None),
                Expect::Row("4|NULL|NULL|NULL"),
            ],
        }],
    )
    .await;
}

/// MariaDB geometry reaches a PostgreSQL `bytea` as WKB and comes back unchanged (SRID 0 and
/// all) after an edit there; bytes that are no geometry, refused by MariaDB (error 1416),
/// go to the dead-letter table at once instead of being retried forever, and the rows after them
/// apply.
#[tokio::test(flavor = "multi_thread")]
async fn geometry_to_postgres_bytea_and_back_and_refused_bytes_dead_lettered() {
    let pair = Pair::start(
        "CREATE TABLE shapes (id int PRIMARY KEY, g bytea, note text)",
        "CREATE TABLE shapes (id INT PRIMARY KEY, g GEOMETRY, note VARCHAR(20))",
        "[[tables]]\nname = \"shapes\"\nkey = [\"id\"]\n",
    )
    .await;
    let run = start_tandem_run(&pair.config, 2).await;
    let mut maria = pair.maria.connect("desk").await.expect("connect MariaDB");
    maria
        .query_drop("INSERT INTO shapes VALUES (1, ST_GeomFromText('POINT(1 2)'), 'm')")
        .await
        .expect("insert a point");
    let pg = pair.pg.connect("crm").await.expect("connect PostgreSQL");
    let hex = |sql: &'static str| {
        let url = pair.maria.url("desk");
        async move {
            let mut c = mysql_async::Conn::from_url(url).await.ok()?;
            let v: Option<Option<String>> = c.query_first(sql).await.ok()?;
            let _ = c.disconnect().await;
            v.flatten()
        }
    };
    let want = hex("SELECT LOWER(HEX(g)) FROM shapes WHERE id = 1")
        .await
        .expect("the point's bytes");
    let wkb = hex("SELECT LOWER(HEX(ST_AsBinary(g))) FROM shapes WHERE id = 1")
        .await
        .expect("the point's WKB");
    wait_for(
        "the point on PostgreSQL",
        Duration::from_secs(30),
        || async {
            let row = pg
                .query_opt("SELECT encode(g, 'hex') FROM shapes WHERE id = 1", &[])
                .await
                .ok()??;
            (row.get::<_, Option<String>>(0).as_deref() == Some(wkb.as_str())).then_some(())
        },
    )
    .await;
    // Three source transactions: a refused one dead-letters itself alone.
    for sql in [
        "UPDATE shapes SET note = 'edited' WHERE id = 1",
        "INSERT INTO shapes VALUES (2, '\\x0102', 'not a geometry')",
        "INSERT INTO shapes VALUES (3, NULL, 'after')",
    ] {
        pg.execute(sql, &[]).await.expect("write on PostgreSQL");
    }
    wait_for(
        "the edit back on MariaDB and the row after the refused one",
        Duration::from_secs(30),
        || async {
            let back = hex("SELECT CONCAT(LOWER(HEX(g)), note) FROM shapes WHERE id = 1").await?;
            let after = hex("SELECT note FROM shapes WHERE id = 3").await?;
            (back == format!("{want}edited") && after == "after").then_some(())
        },
    )
    .await;
    let dead = hex("SELECT CAST(COUNT(*) AS CHAR) FROM tandem.dead_letter").await;
    assert_eq!(
        dead.as_deref(),
        Some("1"),
        "the refused row is dead-lettered"
    );
    maria.disconnect().await.ok();
    stop_tandem_run(run).await;
}

/// PostgreSQL built-in types into their MariaDB counterparts, against the table of expected mapped
/// values: integer and decimal extremes, floats, booleans, text and bytes, temporal types at the
/// edges MariaDB holds, UUID, JSON, enums and bit strings; values MariaDB has no form for
/// (infinity, years past 9999, NaN) are refused with a dead letter naming the column.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_types_to_mariadb_as_mapped() {
    cross_pair(
        Source::Postgres,
        &[
            CrossCase {
                table: "nums",
                pg_ddl: "CREATE TABLE nums (id int PRIMARY KEY, i2 smallint, i4 integer, \
                         i8 bigint, n numeric(12,4), n30 numeric(65,30), r real, d double precision, \
                         b boolean)",
                maria_ddl: "CREATE TABLE nums (id INT PRIMARY KEY, i2 SMALLINT, i4 INT, \
                            i8 BIGINT, n DECIMAL(12,4), n30 DECIMAL(65,30), r FLOAT, d DOUBLE, \
                            b BOOLEAN)",
                columns: "id, i2, i4, i8, n, n30, r, d, b",
                rows: &[
                    "1, -32768, -2147483648, -9223372036854775808, -99999999.9999, \
                     '-99999999999999999999999999999999999.999999999999999999999999999999', \
                     -3.40282e38, -1.7976931348623157e308, false",
                    "2, 32767, 2147483647, 9223372036854775807, 99999999.9999, \
                     0.000000000000000000000000000001, 1.17549e-38, 2.2250738585072014e-308, true",
                    "3, 0, 0, 0, 0, 0, '-0', 0.1, NULL",
                    "4, NULL, NULL, NULL, 'NaN', NULL, NULL, NULL, NULL",
                    "5, NULL, NULL, NULL, NULL, NULL, 'Infinity', NULL, NULL",
                    "6, NULL, NULL, NULL, NULL, NULL, NULL, 'NaN', NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|-32768|-2147483648|-9223372036854775808|-99999999.9999|\
                         -99999999999999999999999999999999999.999999999999999999999999999999|\
                         -3.40282e38|-1.7976931348623157e308|0",
                    ),
                    Expect::Row(
                        "2|32767|2147483647|9223372036854775807|99999999.9999|\
                         0.000000000000000000000000000001|1.17549e-38|2.2250738585072014e-308|1",
                    ),
                    // MariaDB stores a float's -0 as 0 (as it does for its own clients).
                    Expect::Row("3|0|0|0|0.0000|0.000000000000000000000000000000|0|0.1|NULL"),
                    Expect::Refused(Some("n")),
                    Expect::Refused(Some("r")),
                    Expect::Refused(Some("d")),
                ],
            },
            CrossCase {
                table: "texts",
                pg_ddl: "CREATE TABLE texts (id int PRIMARY KEY, t text, v varchar(5), \
                         c char(3), bt bytea, u uuid, j json, jb jsonb, bits bit(8), vb varbit(8))",
                maria_ddl: "CREATE TABLE texts (id INT PRIMARY KEY, \
                            t LONGTEXT CHARACTER SET utf8mb4, v VARCHAR(5) CHARACTER SET utf8mb4, \
                            c CHAR(3), bt LONGBLOB, u UUID, j JSON, jb JSON, bits BIT(8), \
                            vb BIT(8))",
                columns: "id, t, v, c, HEX(bt), u, j, jb, bits + 0, vb + 0",
                rows: &[
                    "1, 'äöü€😀 \"q\" \\\\ x', 'ü😀xyz', 'abc', '\\x00ff00', \
                     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{\"a\": [1, 2.50]}', \
                     '{\"b\": {\"c\": null}}', B'10000001', B'101'",
                    "2, '', '', '', '\\x', '00000000-0000-0000-0000-000000000000', '[]', '{}', \
                     B'00000000', B''",
                    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|äöü€😀 \"q\" \\\\ x|ü😀xyz|abc|00FF00|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|\
                         {\"a\": [1, 2.50]}|{\"b\": {\"c\": null}}|129|5",
                    ),
                    Expect::Row("2|||||00000000-0000-0000-0000-000000000000|[]|{}|0|0"),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
                ],
            },
            CrossCase {
                table: "times",
                pg_ddl: "CREATE TABLE times (id int PRIMARY KEY, d date, ts timestamp(6), \
                         tz timestamptz(6), t time(6))",
                maria_ddl: "CREATE TABLE times (id INT PRIMARY KEY, d DATE, ts DATETIME(6), \
                            tz TIMESTAMP(6) NULL, t TIME(6))",
                columns: "id, d, ts, tz, t",
                rows: &[
                    "1, '1000-01-01', '1000-01-01 00:00:00', '1970-01-01 00:00:01+00', '00:00:00'",
                    "2, '9999-12-31', '9999-12-31 23:59:59.999999', \
                     '2038-01-19 03:14:07.999999+00', '23:59:59.999999'",
                    "3, '2024-02-29', '2024-02-29 12:34:56.5', '2024-02-29 12:34:56.5+02', \
                     '24:00:00'",
                    "4, 'infinity', NULL, NULL, NULL",
                    "5, NULL, '-infinity', NULL, NULL",
                    "6, '21016-11-04', NULL, NULL, NULL",
                    "7, NULL, '0044-03-15 12:00:00 BC', NULL, NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|1000-01-01|1000-01-01 00:00:00.000000|1970-01-01 00:00:01.000000|\
                         00:00:00.000000",
                    ),
                    Expect::Row(
                        "2|9999-12-31|9999-12-31 23:59:59.999999|2038-01-19 03:14:07.999999|\
                         23:59:59.999999",
                    ),
                    Expect::Row(
                        "3|2024-02-29|2024-02-29 12:34:56.500000|2024-02-29 10:34:56.500000|\
                         24:00:00.000000",
                    ),
                    Expect::Refused(Some("d")),
                    Expect::Refused(Some("ts")),
                    Expect::Refused(Some("d")),
                    Expect::Refused(Some("ts")),
                ],
            },
        ],
    )
    .await;
}

/// MariaDB built-in types into their PostgreSQL counterparts, against the table of expected mapped
/// values: signed and unsigned integer extremes, DECIMAL(65,30), floats, TINYINT(1) as boolean, text
/// in several character sets, every blob size, temporal types at their edges, YEAR, ENUM, SET, JSON,
/// BIT, UUID and INET6; values PostgreSQL has no form for (zero dates, a NUL character in text, a
/// TIME beyond a day) are refused with a dead letter naming the column.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_types_to_postgres_as_mapped() {
    cross_pair(
        Source::MariaDb,
        &[
            CrossCase {
                table: "nums",
                pg_ddl: "CREATE TABLE nums (id int PRIMARY KEY, ti smallint, tu smallint, \
                         mi integer, mu integer, iu bigint, bu numeric(20), bi bigint, \
                         de numeric(65,30), fl real, db double precision, b boolean, y smallint)",
                maria_ddl: "CREATE TABLE nums (id INT PRIMARY KEY, ti TINYINT, tu TINYINT UNSIGNED, \
                            mi MEDIUMINT, mu MEDIUMINT UNSIGNED, iu INT UNSIGNED, \
                            bu BIGINT UNSIGNED, bi BIGINT, de DECIMAL(65,30), fl FLOAT, db DOUBLE, \
                            b TINYINT(1), y YEAR)",
                columns: "id, ti, tu, mi, mu, iu, bu, bi, de, fl, db, b, y",
                rows: &[
                    "1, -128, 0, -8388608, 0, 0, 0, -9223372036854775808, \
                     '-99999999999999999999999999999999999.999999999999999999999999999999', \
                     -3.40282e38, -1.7976931348623157e308, 0, 1901",
                    "2, 127, 255, 8388607, 16777215, 4294967295, 18446744073709551615, \
                     9223372036854775807, 0.000000000000000000000000000001, 1.17549e-38, \
                     2.2250738585072014e-308, 1, 2155",
                    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0",
                ],
                expect: &[
                    Expect::Row(
                        "1|-128|0|-8388608|0|0|0|-9223372036854775808|\
                         -99999999999999999999999999999999999.999999999999999999999999999999|\
                         -3.40282e+38|-1.7976931348623157e+308|f|1901",
                    ),
                    Expect::Row(
                        "2|127|255|8388607|16777215|4294967295|18446744073709551615|\
                         9223372036854775807|0.000000000000000000000000000001|1.17549e-38|\
                         2.2250738585072014e-308|t|2155",
                    ),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|0"),
                ],
            },
            CrossCase {
                table: "texts",
                pg_ddl: "CREATE TABLE texts (id int PRIMARY KEY, u8 text, l1 text, c char(5), \
                         vc varchar(10), tt text, mt text, tb bytea, bl bytea, mb bytea, lb bytea, \
                         bn bytea, vb bytea)",
                maria_ddl: "CREATE TABLE texts (id INT PRIMARY KEY, \
                            u8 LONGTEXT CHARACTER SET utf8mb4, l1 VARCHAR(20) CHARACTER SET latin1, \
                            c CHAR(5), vc VARCHAR(10) CHARACTER SET utf8mb3, tt TINYTEXT, \
                            mt MEDIUMTEXT, tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB, \
                            bn BINARY(3), vb VARBINARY(5))",
                columns: "id, u8, l1, c, vc, tt, mt, encode(tb, 'hex'), encode(bl, 'hex'), \
                          encode(mb, 'hex'), encode(lb, 'hex'), encode(bn, 'hex'), encode(vb, 'hex')",
                rows: &[
                    "1, 'äöü€😀 \"q\" \\\\ x', 'café', 'ab', 'ĳ€', 'tiny', 'medium', x'00ff', \
                     x'0001', x'ff', x'00', x'0102', x'00ff00'",
                    "2, '', '', '', '', '', '', x'', x'', x'', x'', x'', x''",
                    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|äöü€😀 \"q\" \\ x|café|ab   |ĳ€|tiny|medium|00ff|0001|ff|00|010200|00ff00",
                    ),
                    Expect::Row("2|||     ||||||||000000|"),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
                ],
            },
            CrossCase {
                table: "times",
                pg_ddl: "CREATE TABLE times (id int PRIMARY KEY, d date, dt timestamp(6), \
                         dt0 timestamp(0), ts timestamptz(6), t time(6))",
                maria_ddl: "CREATE TABLE times (id INT PRIMARY KEY, d DATE, dt DATETIME(6), \
                            dt0 DATETIME, ts TIMESTAMP(6) NULL, t TIME(6))",
                columns: "id, d, dt, dt0, ts, t",
                rows: &[
                    "1, '1000-01-01', '1000-01-01 00:00:00.000000', '1000-01-01 00:00:00', \
                     '1970-01-01 00:00:01.000000', '00:00:00'",
                    "2, '9999-12-31', '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59', \
                     '2038-01-19 03:14:07.999999', '23:59:59.999999'",
                    "3, '0000-00-00', NULL, NULL, NULL, NULL",
                    "4, NULL, '2015-05-00 12:00:00', NULL, NULL, NULL",
                    "5, NULL, NULL, NULL, NULL, '-00:00:01'",
                    "6, NULL, NULL, NULL, NULL, '838:59:59'",
                ],
                expect: &[
                    Expect::Row(
                        "1|1000-01-01|1000-01-01 00:00:00|1000-01-01 00:00:00|\
                         1970-01-01 00:00:01+00|00:00:00",
                    ),
                    Expect::Row(
                        "2|9999-12-31|9999-12-31 23:59:59.999999|9999-12-31 23:59:59|\
                         2038-01-19 03:14:07.999999+00|23:59:59.999999",
                    ),
                    Expect::Refused(Some("d")),
                    Expect::Refused(Some("dt")),
                    Expect::Refused(Some("t")),
                    Expect::Refused(Some("t")),
                ],
            },
            CrossCase {
                table: "others",
                pg_ddl: "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy'); \
                         CREATE TABLE others (id int PRIMARY KEY, e mood, et text, st text, \
                         j jsonb, b8 bit(8), b1 bit(1), u uuid, ip inet)",
                maria_ddl: "CREATE TABLE others (id INT PRIMARY KEY, e ENUM('sad','ok','happy'), \
                            et ENUM('x','y'), st SET('a','b','c'), j JSON, b8 BIT(8), b1 BIT(1), \
                            u UUID, ip INET6)",
                columns: "id, e, et, st, j, b8, b1, u, ip",
                rows: &[
                    "1, 'happy', 'y', 'a,c', '{\"k\": [1, \"\\\\u00e9\", null]}', b'10000001', b'1', \
                     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2001:db8::1'",
                    "2, 'sad', 'x', '', '[]', b'0', b'0', \
                     '00000000-0000-0000-0000-000000000000', '::ffff:1.2.3.4'",
                    "3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL",
                ],
                expect: &[
                    Expect::Row(
                        "1|happy|y|a,c|{\"k\": [1, \"é\", null]}|10000001|1|\
                         a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|2001:db8::1",
                    ),
                    Expect::Row(
                        "2|sad|x||[]|00000000|0|00000000-0000-0000-0000-000000000000|::ffff:1.2.3.4",
                    ),
                    Expect::Row("3|NULL|NULL|NULL|NULL|NULL|NULL|NULL|NULL"),
                ],
            },
        ],
    )
    .await;
}

/// A MariaDB text holding the NUL character, which PostgreSQL text cannot store, is refused with a
/// dead letter naming the column, and the link goes on.
///
/// Fails today: the dead letter cannot be written on PostgreSQL either (its payload column is
/// `jsonb`, which refuses the `\u0000` escape, SQLSTATE 22P05), so the link halts. The fix needs a
/// bookkeeping change (payload stored as text, or the payload's NUL escaped by both its writer and
/// `dead-letter replay`), which is reserved for the bookkeeping owner.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "the dead-letter payload (jsonb) cannot hold \\u0000: the link halts with SQLSTATE 22P05"]
async fn mariadb_text_with_nul_to_postgres_is_dead_lettered() {
    cross_pair(
        Source::MariaDb,
        &[CrossCase {
            table: "texts",
            pg_ddl: "CREATE TABLE texts (id int PRIMARY KEY, t text)",
            maria_ddl: "CREATE TABLE texts (id INT PRIMARY KEY, t TEXT)",
            columns: "id, t",
            rows: &["1, 'a\\0b'", "2, 'after'"],
            expect: &[Expect::Refused(Some("t")), Expect::Row("2|after")],
        }],
    )
    .await;
}
