//! Apply throughput per target engine: rows per second for one-row transactions and for 1,000-row
//! transactions of inserts, updates and deletes, against throwaway servers started by the harness.
//!
//! Run: `cargo bench --bench apply` (optionally `TANDEM_BENCH_ROWS=20000`). Numbers depend on the
//! machine and on the harness servers' settings (fsync off); compare runs on the same machine only.

mod support;

use std::time::Instant;

use tandem::apply::{self, Applier};
use tandem::config::Config;
use tandem::harness::{MariaDb, PgServer};
use tandem::model::{
    BinlogPosition, Change, ChangeSet, Field, ImageKind, LoopMarks, Lsn, Op, PgPosition, Position,
    RowImage, TableRef, Transaction, Value,
};

const TABLE: &str =
    "CREATE TABLE item (id BIGINT PRIMARY KEY, name VARCHAR(64), qty INT, price NUMERIC(12,2))";

#[derive(Clone, Copy, PartialEq)]
enum Target {
    Postgres,
    MariaDb,
}

fn config(target: Target, url: &str, schema: &str) -> Result<Config, String> {
    let (other, target_table, source_table) = match target {
        Target::Postgres => ("mysql://root@127.0.0.1:9/src", "public.item", "src.item"),
        Target::MariaDb => (
            "postgres://postgres@127.0.0.1:9/src",
            "bench.item",
            "public.item",
        ),
    };
    let text = format!(
        "[tandem]\nschema = \"{schema}\"\n[nodes.t]\nurl = \"{url}\"\n[nodes.s]\nurl = \"{other}\"\n\
         [[tables]]\nname = \"item\"\nkey = [\"id\"]\non = {{ t = \"{target_table}\", s = \"{source_table}\" }}\n"
    );
    Config::from_str_with_env(&text, "bench.toml", &|_| None)
        .map(|(c, _)| c)
        .map_err(|e| format!("{:?}", e.problems))
}

fn row(id: i64) -> RowImage {
    row_at(id, 1)
}

/// The row as it stands at `version` (names differ per version, so an update changes a value).
fn row_at(id: i64, version: i64) -> RowImage {
    let f = |n: &str, v: Value| Field {
        name: n.into(),
        value: v,
    };
    RowImage::new(
        ImageKind::Full,
        vec![
            f("id", Value::Int(id)),
            f(
                "name",
                Value::Text(if version == 1 {
                    format!("item {id}")
                } else {
                    format!("item {id} v{version}")
                }),
            ),
            f("qty", Value::Int(id % 100)),
            f("price", Value::Decimal("19.99".parse().expect("decimal"))),
            f("_tandem_version", Value::Int(version)),
            f("_tandem_origin", Value::Text("s".into())),
        ],
    )
}

fn position(target: Target, n: u64) -> Position {
    match target {
        Target::Postgres => Position::Binlog(BinlogPosition {
            file: "bin.000001".into(),
            offset: n,
        }),
        Target::MariaDb => Position::Postgres(PgPosition {
            commit_lsn: Lsn(n),
            lsn: Lsn(n),
        }),
    }
}

/// `rows` row changes of `op`, `per_tx` to a transaction: inserts at version 1, updates from
/// version 1 to 2, deletes of version 2.
fn transactions(
    target: Target,
    op: Op,
    rows: i64,
    per_tx: i64,
    first_id: i64,
    first_pos: u64,
) -> Vec<Transaction> {
    let table = match target {
        Target::Postgres => TableRef::new("src", "item"),
        Target::MariaDb => TableRef::new("public", "item"),
    };
    (0..rows / per_tx)
        .map(|t| Transaction {
            origin: "s".into(),
            position: position(target, first_pos + t as u64),
            commit_time: 0,
            xid: None,
            marks: LoopMarks::default(),
            changes: ChangeSet::Memory(
                (0..per_tx)
                    .map(|i| {
                        let id = first_id + t * per_tx + i;
                        let (before, after) = match op {
                            Op::Update => (Some(row_at(id, 1)), Some(row_at(id, 2))),
                            Op::Delete => (Some(row_at(id, 2)), None),
                            _ => (None, Some(row(id))),
                        };
                        Change {
                            table: table.clone(),
                            op,
                            before,
                            after,
                        }
                    })
                    .collect(),
            ),
        })
        .collect()
}

/// Rows per second for: one-row insert transactions applied one per target transaction; one-row
/// insert transactions grouped 100 per target transaction; 1,000-row transactions of inserts, then
/// of updates of those rows, then of deletes of them.
async fn measure(target: Target, url: &str, rows: i64) -> Result<[f64; 5], String> {
    let cfg = config(target, url, "tandem_bench")?;
    apply::setup(&cfg, "t", false)
        .await
        .map_err(|e| e.to_string())?;
    let mut a = Applier::connect(&cfg, "s", "t")
        .await
        .map_err(|e| e.to_string())?;
    let mut rates = [0.0; 5];
    let cases = [
        (Op::Insert, 1, 1, 0, 1),
        (Op::Insert, 1, 100, 10_000_000, 10_000_000),
        (Op::Insert, 1000, 1, 20_000_000, 20_000_000),
        (Op::Update, 1000, 1, 20_000_000, 30_000_000),
        (Op::Delete, 1000, 1, 20_000_000, 40_000_000),
    ];
    for (slot, (op, per_tx, group, first_id, first_pos)) in cases.into_iter().enumerate() {
        let txs = transactions(target, op, rows, per_tx, first_id, first_pos);
        let start = Instant::now();
        for chunk in txs.chunks(group) {
            a.apply(chunk).await.map_err(|e| e.to_string())?;
        }
        rates[slot] = rows as f64 / start.elapsed().as_secs_f64();
    }
    // Every update and delete found its row at the before-image's version: none took the conflict path.
    let conflicts = a
        .list_conflicts(false, 1)
        .await
        .map_err(|e| e.to_string())?;
    if !conflicts.is_empty() {
        return Err(format!("unexpected conflicts: {conflicts:?}"));
    }
    Ok(rates)
}

async fn run() -> Result<(), String> {
    let rows: i64 = std::env::var("TANDEM_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let rows = (rows / 1000).max(1) * 1000;
    let pg = PgServer::start().await.map_err(|e| e.to_string())?;
    pg.create_database("bench")
        .await
        .map_err(|e| e.to_string())?;
    pg.connect("bench")
        .await
        .map_err(|e| e.to_string())?
        .batch_execute(TABLE)
        .await
        .map_err(|e| e.to_string())?;
    let maria = MariaDb::start().await.map_err(|e| e.to_string())?;
    maria
        .create_database("bench")
        .await
        .map_err(|e| e.to_string())?;
    {
        use mysql_async::prelude::Queryable;
        let mut c = maria.connect("bench").await.map_err(|e| e.to_string())?;
        c.query_drop(TABLE).await.map_err(|e| e.to_string())?;
        c.disconnect().await.map_err(|e| e.to_string())?;
    }
    println!(
        "apply benchmark: {rows} rows per case, build profile {}, PostgreSQL {} and MariaDB from the \
         harness (fsync off), one applier session per target, version checks and checkpoint on",
        if cfg!(debug_assertions) { "debug" } else { "release" },
        pg.version()
    );
    for (name, target, url) in [
        ("PostgreSQL", Target::Postgres, pg.url("bench")),
        ("MariaDB", Target::MariaDb, maria.url("bench")),
    ] {
        let [one, grouped, batch, updates, deletes] = measure(target, &url, rows).await?;
        println!(
            "{name:<10}  inserts: 1-row transactions: {one:>8.0} rows/s   1-row, 100 per commit: {grouped:>8.0} rows/s   \
             1000-row transactions: {batch:>8.0} rows/s\n{:<10}  1000-row transactions of updates: {updates:>8.0} rows/s   \
             of deletes: {deletes:>8.0} rows/s",
            ""
        );
    }
    Ok(())
}

fn main() {
    support::main("cannot start the runtime", "benchmark failed", run());
}
