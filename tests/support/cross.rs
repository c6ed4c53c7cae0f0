//! The cross-engine type-fidelity harness: each value written on one engine arrives on the other as
//! a table of expected mapped values says, through the initial copy and through the stream, or is
//! refused with a dead letter naming the column. Values are read back in the target's own text form
//! (PostgreSQL's simple query protocol, MariaDB's text protocol; bytes that are not UTF-8 as `0x…`).
//!
//! Rows with ids below 100 exist before `tandem run` (the copy carries them); the same values with
//! ids from 100 are written after the links started, one transaction per row (the stream carries
//! them), so that a refused row dead-letters alone.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::{start_tandem_run, stop_tandem_run, unique_name, wait_for};

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

const DEAD_SQL: &str = "SELECT error FROM tandem.dead_letter ORDER BY id";

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
            let dead = match from {
                Source::Postgres => maria_rows(&maria_url, DEAD_SQL).await,
                Source::MariaDb => pg_rows(&pgc, DEAD_SQL).await,
            };
            panic!(
                "the target did not hold the expected values within 60 s: {}\ndead letters: {dead:#?}",
                last.lock().unwrap_or_else(|e| e.into_inner())
            );
        }
    }
    // One dead letter per refused row (copy and stream), each naming its column.
    let refused: Vec<Option<&str>> = cases.iter().flat_map(CrossCase::refused).collect();
    let dead_sql = DEAD_SQL;
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
    assert!(
        errors.iter().all(|e| !e.contains("(no error code)")),
        "every refusal says whose rule refused it: {errors:#?}"
    );
    stop_tandem_run(run).await;
    my.disconnect().await.ok();
    std::fs::remove_file(&config).ok();
}
