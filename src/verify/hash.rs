//! A table compared chunk by chunk inside the databases: each node counts and hashes its rows'
//! business form (see `canon`) over the same key ranges, and only the ranges whose counts or hashes
//! differ are read row by row through the judge (`scan::pass`), so the differences reported and
//! their kinds are exactly the row path's.
//!
//! ```text
//!  catalog: every node's column types -> canon::plan (or the reason the table is read row by row)
//!  loop:    the first node's key `--batch-rows` keys on ──> bound
//!           every node, at once: count(*), count(text), sum(60-bit prefix of md5(text)) in (lo, bound]
//!             all equal, no NULL text ──> hashed (rows counted, nothing read)
//!             otherwise               ──> the range joins the ranges to read (adjacent ones merge)
//!  then:    scan::pass over each range to read -> candidates, as for a whole table
//! ```
//!
//! Chunk bounds come from the first node's keys (keyset: `ORDER BY key OFFSET n LIMIT 1`); keys the
//! other nodes hold between them fall in the same ranges, keys above the last bound in the last,
//! open range. The sum of 60-bit hashes is order-independent, so each node reads its rows in any
//! order; with the key in each row's text, equal counts and sums mean equal rows (two different
//! chunks sum alike with a chance of about 2^-60).
//!
//! Error handling: a table `canon` cannot render, or a catalog or hash query that fails (an older
//! server without `trim_scale`, a permission), sends that table to the row path, logged with the
//! reason and reported as `row_by_row`; a failure there is the verify's error, as before.

use futures_util::future::join_all;
use mysql_async::prelude::Queryable;
use tracing::{info, warn};

use super::canon::{self, Columns, SideSql};
use super::form::Form;
use super::scan::{self, Pass, Range};
use super::VerifyError;
use crate::config::{Config, Engine, Node};
use crate::copy::progress::Meter;
use crate::model::{TableRef, Value};

enum Conn {
    Postgres(tokio_postgres::Client),
    Mysql(mysql_async::Conn),
}

/// One chunk on one node: rows, rows with a text (not NULL), the hash sum.
#[derive(Debug, PartialEq, Eq)]
struct Sum {
    rows: i64,
    texts: i64,
    hash: String,
}

async fn open(node: &Node) -> Result<Conn, String> {
    let fail = |e: String| format!("node {}: {e}", node.id);
    match node.engine {
        Engine::Postgres => {
            let params = crate::capture::postgres::ConnParams::parse(node.url.expose())
                .map_err(|e| fail(e.to_string()))?;
            let c = crate::capture::postgres::catalog_client(&params)
                .await
                .map_err(|e| fail(e.to_string()))?;
            c.batch_execute(
                "SET TimeZone = 'UTC'; SET client_encoding = UTF8; SET DateStyle = ISO",
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
            Ok(Conn::Postgres(c))
        }
        Engine::Mysql => {
            let opts =
                crate::connect::mysql_opts(node.url.expose()).map_err(|e| fail(e.to_string()))?;
            let mut c = crate::connect::mysql(opts)
                .await
                .map_err(|e| fail(e.to_string()))?;
            c.query_drop("SET time_zone = '+00:00', NAMES utf8mb4")
                .await
                .map_err(|e| fail(e.to_string()))?;
            Ok(Conn::Mysql(c))
        }
    }
}

impl Conn {
    /// The table's columns and their catalog types (see `canon::kind`).
    async fn columns(&mut self, t: &TableRef) -> Result<Columns, String> {
        match self {
            Conn::Postgres(c) => {
                let q = "SELECT a.attname::text, t.typname::text FROM pg_attribute a \
                         JOIN pg_type t ON t.oid = a.atttypid WHERE a.attrelid = $1::text::regclass \
                         AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''";
                let name = format!(
                    "{}.{}",
                    crate::connect::quote::postgres::ident(&t.schema),
                    crate::connect::quote::postgres::ident(&t.name)
                );
                let rows = c.query(q, &[&name]).await.map_err(|e| e.to_string())?;
                rows.iter()
                    .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                    .collect::<Result<_, tokio_postgres::Error>>()
                    .map_err(|e| e.to_string())
            }
            Conn::Mysql(c) => {
                let rows: Vec<(String, String, Option<String>)> = c
                    .exec(
                        "SELECT COLUMN_NAME, DATA_TYPE, CHARACTER_SET_NAME FROM information_schema.COLUMNS \
                         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                        (&*t.schema, &*t.name),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(rows
                    .into_iter()
                    .map(|(name, data_type, charset)| {
                        let binary = charset.as_deref().is_some_and(|c| c == "binary");
                        (name, if binary { "binary".into() } else { data_type })
                    })
                    .collect())
            }
        }
    }

    /// The planner's row count estimate, for the time left (`None`: none, or it failed).
    async fn estimate(&mut self, t: &TableRef) -> Option<u64> {
        match self {
            Conn::Postgres(c) => {
                let name = format!(
                    "{}.{}",
                    crate::connect::quote::postgres::ident(&t.schema),
                    crate::connect::quote::postgres::ident(&t.name)
                );
                let r = c
                    .query_one(
                        "SELECT reltuples::float8 FROM pg_class WHERE oid = $1::text::regclass",
                        &[&name],
                    )
                    .await
                    .ok()?;
                let n: f64 = r.try_get(0).ok()?;
                (n >= 0.0).then_some(n as u64)
            }
            Conn::Mysql(c) => c
                .exec_first::<Option<u64>, _, _>(
                    "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
                    (&*t.schema, &*t.name),
                )
                .await
                .ok()
                .flatten()
                .flatten(),
        }
    }

    /// The `n`th key above `after` (`None`: fewer keys are left).
    async fn bound(
        &mut self,
        s: &SideSql,
        after: Option<i128>,
        n: u32,
    ) -> Result<Option<i128>, String> {
        let above = after.map_or(String::new(), |a| format!(" WHERE {} > {a}", s.key));
        let skip = n.saturating_sub(1);
        let text: Option<String> = match self {
            Conn::Postgres(c) => {
                let q = format!(
                    // The column qualified: ORDER BY a select-list name would order by the text.
                    "SELECT ({k})::text FROM {t}{above} ORDER BY {t}.{k} OFFSET {skip} LIMIT 1",
                    k = s.key,
                    t = s.table
                );
                let rows = c.query(&q, &[]).await.map_err(|e| e.to_string())?;
                match rows.first() {
                    Some(r) => Some(r.try_get(0).map_err(|e| e.to_string())?),
                    None => None,
                }
            }
            Conn::Mysql(c) => {
                let q = format!(
                    "SELECT CAST({k} AS CHAR) FROM {t}{above} ORDER BY {t}.{k} LIMIT {skip}, 1",
                    k = s.key,
                    t = s.table
                );
                c.query_first(q).await.map_err(|e| e.to_string())?
            }
        };
        text.map(|t| {
            t.parse()
                .map_err(|_| format!("key {t:?} is not an integer"))
        })
        .transpose()
    }

    /// Counts and hashes the rows in `(after, until]`.
    async fn sum(
        &mut self,
        s: &SideSql,
        after: Option<i128>,
        until: Option<i128>,
    ) -> Result<Sum, String> {
        let mut conds: Vec<String> = Vec::new();
        if let Some(a) = after {
            conds.push(format!("{} > {a}", s.key));
        }
        if let Some(u) = until {
            conds.push(format!("{} <= {u}", s.key));
        }
        conds.extend(s.filter.clone());
        let filter = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        };
        match self {
            Conn::Postgres(c) => {
                let q = format!(
                    "SELECT count(*)::int8, count(h)::int8, coalesce(sum(h), 0)::text FROM \
                     (SELECT ('x' || substr(md5({text}), 1, 15))::bit(60)::int8 AS h FROM {t}{filter}) s",
                    text = s.text,
                    t = s.table
                );
                let r = c.query_one(&q, &[]).await.map_err(|e| e.to_string())?;
                Ok(Sum {
                    rows: r.try_get(0).map_err(|e| e.to_string())?,
                    texts: r.try_get(1).map_err(|e| e.to_string())?,
                    hash: r.try_get(2).map_err(|e| e.to_string())?,
                })
            }
            Conn::Mysql(c) => {
                let q = format!(
                    "SELECT COUNT(*), COUNT(h), CAST(COALESCE(SUM(h), 0) AS CHAR) FROM \
                     (SELECT CAST(CONV(SUBSTRING(MD5(CONVERT({text} USING utf8mb4)), 1, 15), 16, 10) AS UNSIGNED) AS h \
                     FROM {t}{filter}) s",
                    text = s.text,
                    t = s.table
                );
                let r: Option<(i64, i64, String)> =
                    c.query_first(q).await.map_err(|e| e.to_string())?;
                let (rows, texts, hash) = r.ok_or("the hash query returned no row")?;
                Ok(Sum { rows, texts, hash })
            }
        }
    }
}

/// A key bound as the model value the readers compare.
fn key_value(k: i128) -> Vec<Value> {
    vec![match i64::try_from(k) {
        Ok(i) => Value::Int(i),
        Err(_) => Value::UInt(u64::try_from(k).unwrap_or(u64::MAX)),
    }]
}

/// Why a table is read row by row.
enum Unhashed {
    /// `canon` cannot render it.
    Plan(String),
    /// A query failed.
    Failed(String),
}

/// The chunks of `form`'s table: the key ranges whose sums differ, and what the equal ones held.
struct Chunks {
    differing: Vec<(Option<i128>, Option<i128>)>,
    hashed: u64,
    read: u64,
    rows: u64,
}

async fn chunks(config: &Config, form: &Form<'_>, keys: u32) -> Result<Chunks, Unhashed> {
    let fail = Unhashed::Failed;
    let mut conns = Vec::new();
    let mut columns = Vec::new();
    for side in &form.sides {
        let node = config
            .node(&side.node)
            .ok_or_else(|| fail(format!("no node {:?}", side.node)))?;
        let mut c = open(node).await.map_err(fail)?;
        columns.push(
            c.columns(&side.table)
                .await
                .map_err(|e| fail(format!("node {}: {e}", side.node)))?,
        );
        conns.push(c);
    }
    let plan = canon::plan(form, &columns).map_err(Unhashed::Plan)?;
    let estimate = conns[0].estimate(&form.sides[0].table).await;
    let mut out = Chunks {
        differing: Vec::new(),
        hashed: 0,
        read: 0,
        rows: 0,
    };
    let mut meter = Meter::new(0, estimate);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut after: Option<i128> = None;
    loop {
        let until = conns[0]
            .bound(&plan[0], after, keys)
            .await
            .map_err(|e| fail(format!("node {}: {e}", form.sides[0].node)))?;
        let sums = join_all(
            conns
                .iter_mut()
                .zip(&plan)
                .map(|(c, s)| c.sum(s, after, until)),
        )
        .await;
        let mut got = Vec::with_capacity(sums.len());
        for (s, side) in sums.into_iter().zip(&form.sides) {
            got.push(s.map_err(|e| fail(format!("node {}: {e}", side.node)))?);
        }
        let equal = got.iter().all(|s| s.texts == s.rows && *s == got[0]);
        let rows = got.iter().map(|s| s.rows).max().unwrap_or(0).max(0) as u64;
        if equal {
            out.hashed += 1;
            out.rows += rows;
        } else {
            out.read += 1;
            match out.differing.last_mut() {
                Some(last) if last.1 == after => last.1 = until,
                _ => out.differing.push((after, until)),
            }
        }
        if let Some(r) = meter.record(rows, false) {
            info!(table = %form.table.name, rows_done = r.done, rows_estimate = ?r.estimate, rows_per_sec = r.rate as u64, eta_secs = ?r.eta_secs, "verify progress (hashed)");
            if terminal {
                scan::progress_line(&form.table.name, &r);
            }
        }
        match until {
            Some(u) => after = Some(u),
            None => break,
        }
    }
    if terminal {
        eprintln!();
    }
    Ok(out)
}

/// Compares `form`'s table by chunk hashes where `canon` can render it, else row by row; see the
/// module doc. The arguments are `scan::pass`'s.
pub async fn compare(
    config: &Config,
    form: &Form<'_>,
    batch_rows: u32,
    keep_rows: bool,
    room: usize,
) -> Result<Pass, VerifyError> {
    let whole = Range::default();
    let c = match chunks(config, form, batch_rows).await {
        Ok(c) => c,
        Err(why) => {
            let reason = match why {
                Unhashed::Plan(r) => {
                    info!(table = %form.table.name, reason = %r, "verify reads the table row by row");
                    r
                }
                Unhashed::Failed(r) => {
                    let r = config
                        .nodes
                        .values()
                        .fold(r, |t, n| crate::config::scrub(&t, &n.url));
                    warn!(table = %form.table.name, error = %r, "verify could not hash the table, it reads it row by row");
                    format!("hashing failed: {r}")
                }
            };
            let mut p = scan::pass(config, form, batch_rows, keep_rows, room, &whole, true).await?;
            p.row_by_row = Some(reason);
            return Ok(p);
        }
    };
    let mut out = Pass {
        rows: c.rows,
        chunks_hashed: c.hashed,
        ..Pass::default()
    };
    for (after, until) in c.differing {
        let range = Range {
            after: after.map(key_value),
            until: until.map(key_value),
        };
        let left = room.saturating_sub(out.candidates.len());
        let p = scan::pass(config, form, batch_rows, keep_rows, left, &range, false).await?;
        out.rows += p.rows;
        out.unlisted += p.unlisted;
        out.candidates.extend(p.candidates);
    }
    out.chunks = c.hashed + c.read;
    if c.read > 0 {
        info!(table = %form.table.name, chunks_hashed = c.hashed, chunks_read = c.read, "verify read the differing chunks row by row");
    }
    Ok(out)
}
