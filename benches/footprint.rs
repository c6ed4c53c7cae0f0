//! What `tandem setup` costs the application's own writes: the same writes on a plain table and on a
//! table setup prepared (origin and version columns, stamping and tombstone triggers, on
//! PostgreSQL the old version column and `REPLICA IDENTITY DEFAULT`, publication and slots), and on
//! PostgreSQL also on one set up with `replica_identity = "full"` (whole old rows in the WAL, as
//! a table whose rules read them gets), in one run, against throwaway servers the
//! harness starts (fsync off). tandem itself is not running: only what setup installed is measured.
//!
//! Workloads, each on the plain table and on the set-up one: one `INSERT … SELECT` of
//! `TANDEM_BENCH_BULK` rows (default 200,000); `TANDEM_BENCH_ROWS` (default 20,000) one-row inserts,
//! updates and deletes from one client, each its own transaction, and as many updates of a wider
//! row (512 bytes of text beside the same columns, and 8 KB, which PostgreSQL keeps out of line);
//! then, the set-up table having tombstones now, one-row inserts of the deleted keys and a second
//! bulk insert of new keys; then the same two again after the one-row keys were deleted as the
//! applier deletes another node's rows (its tombstones written beside, setup run again): what a
//! table that holds other nodes' tombstones pays (each insert bumps its key's tombstones). PostgreSQL also reports WAL bytes per row (`pg_current_wal_lsn()` before and
//! after).
//!
//! Each workload runs in `TANDEM_BENCH_ROUNDS` (default 10) slices that alternate between the two
//! tables (which one goes first alternates too), so that load from elsewhere on a shared machine
//! falls on both alike. Beside the wall time (the application's), it reports the CPU time of the
//! server process or thread serving the connection (`/proc/<task>/schedstat`), which other load
//! disturbs much less: what setup adds on the server, without the client's share. Run: `cargo bench --bench footprint` (or `cargo test --bench footprint`, a
//! debug build: it times the servers). Compare the ratios, not the absolute times.

mod support;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use tandem::config::Config;
use tandem::harness::{MariaDb, PgServer};

const DDL: &str =
    "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(64), qty INT, price NUMERIC(12,2))";
/// The same row with text beside it, for updates of wider rows: `(table suffix, 32-character
/// pieces of text per row)`; the 8 KB text is stored out of line (TOAST) on PostgreSQL.
const WIDE: [(&str, u64); 2] = [("_w512", 16), ("_w8k", 256)];
const WIDE_DDL: &str = "CREATE TABLE {t} (id BIGINT PRIMARY KEY, name VARCHAR(64), qty INT, \
     price NUMERIC(12,2), note TEXT)";
/// Fills a wide table with keys 1..={rows}, `{n}` distinct md5 texts each (little to compress).
const FILL_PG: &str = "INSERT INTO {t} SELECT g, 'item ' || g, 1, 2.50, \
     (SELECT string_agg(md5(g || '-' || x), '') FROM generate_series(1, {n}) x) \
     FROM generate_series(1, {rows}) g";
const FILL_MY: &str = "INSERT INTO {t} SELECT s.seq, CONCAT('item ', s.seq), 1, 2.50, \
     (SELECT GROUP_CONCAT(MD5(CONCAT(s.seq, '-', x.seq)) SEPARATOR '') FROM seq_1_to_{n} x) \
     FROM seq_1_to_{rows} s";

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One workload: a bulk `INSERT … SELECT` of a key range, or one statement per key.
#[derive(Clone, Copy)]
enum Work {
    Bulk,
    PerRow(&'static str),
}

const BULK_PG: &str =
    "INSERT INTO {t} SELECT g, 'item ' || g, g % 100, 19.99 FROM generate_series({from}, {to}) g";
const BULK_MY: &str = "INSERT INTO {t} (id, name, qty, price) SELECT seq, CONCAT('item ', seq), seq % 100, 19.99 FROM seq_{from}_to_{to}";
/// The tombstones the applier leaves for deletes of node b (`{t}`'s keys `{from}..={to}`).
const STONES_PG: &str = "INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
     SELECT 'public.{t}', '{\"id\":\"' || g || '\"}', 1, 'b' FROM generate_series({from}, {to}) g \
     ON CONFLICT DO NOTHING";
const STONES_MY: &str =
    "INSERT IGNORE INTO tandem.tombstone (target_table, row_key, version, node) \
     SELECT 'bench.{t}', CONCAT('{\"id\":\"', seq, '\"}'), 1, 'b' FROM seq_{from}_to_{to}";
const INSERT: &str = "INSERT INTO {t} (id, name, qty, price) VALUES ({i}, 'row {i}', 1, 2.50)";
const UPDATE: &str = "UPDATE {t} SET qty = qty + 1 WHERE id = {i}";
const DELETE: &str = "DELETE FROM {t} WHERE id = {i}";

/// A connection to one engine, running text statements.
enum Client {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

impl Client {
    async fn exec(&mut self, sql: &str) -> Result<(), String> {
        match self {
            Client::Pg(c) => c
                .batch_execute(sql)
                .await
                .map_err(|e| format!("{sql}: {e}")),
            Client::My(c) => c.query_drop(sql).await.map_err(|e| format!("{sql}: {e}")),
        }
    }

    async fn wal_lsn(&mut self) -> Result<Option<i64>, String> {
        match self {
            Client::Pg(c) => c
                .query_one("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint", &[])
                .await
                .map(|r| Some(r.get(0)))
                .map_err(|e| e.to_string()),
            Client::My(_) => Ok(None),
        }
    }

    /// The server process (PostgreSQL backend) or thread (MariaDB) serving this connection.
    async fn server_task(&mut self) -> Result<Option<u64>, String> {
        match self {
            Client::Pg(c) => c
                .query_one("SELECT pg_backend_pid()::bigint", &[])
                .await
                .map(|r| u64::try_from(r.get::<_, i64>(0)).ok())
                .map_err(|e| e.to_string()),
            Client::My(c) => c
                .query_first::<u64, _>(
                    "SELECT TID FROM information_schema.processlist WHERE ID = CONNECTION_ID()",
                )
                .await
                .map_err(|e| e.to_string()),
        }
    }
}

/// CPU time a server task has run, from `/proc/<task>/schedstat` (nanoseconds; the harness runs
/// the servers on this machine). `None` where it cannot be read.
fn cpu_time(task: Option<u64>) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{}/schedstat", task?)).ok()?;
    text.split_whitespace()
        .next()?
        .parse()
        .ok()
        .map(Duration::from_nanos)
}

/// Time, server CPU time and WAL of one table's share of a workload, summed over its slices.
#[derive(Default)]
struct Timing {
    elapsed: Duration,
    cpu: Option<Duration>,
    wal: Option<i64>,
}

/// Runs the keys `from..=to` of `work` on `table`, adding to `into`.
async fn run_slice(
    c: &mut Client,
    task: Option<u64>,
    table: &str,
    bulk: &str,
    work: Work,
    (from, to): (u64, u64),
    into: &mut Timing,
) -> Result<(), String> {
    let start_lsn = c.wal_lsn().await?;
    let start_cpu = cpu_time(task);
    let began = Instant::now();
    match work {
        Work::Bulk => {
            let sql = bulk
                .replace("{t}", table)
                .replace("{from}", &from.to_string())
                .replace("{to}", &to.to_string());
            c.exec(&sql).await?;
        }
        Work::PerRow(stmt) => {
            for id in from..=to {
                c.exec(&stmt.replace("{t}", table).replace("{i}", &id.to_string()))
                    .await?;
            }
        }
    }
    into.elapsed += began.elapsed();
    if let (Some(a), Some(b)) = (start_cpu, cpu_time(task)) {
        *into.cpu.get_or_insert(Duration::ZERO) += b.saturating_sub(a);
    }
    if let (Some(a), Some(b)) = (start_lsn, c.wal_lsn().await?) {
        *into.wal.get_or_insert(0) += b - a;
    }
    Ok(())
}

/// A config naming `node` (the real server, with the set-up tables `setup_tables`, each as
/// `(physical name, extra table settings)`, and their wide twins) and a peer that is never
/// contacted.
fn config(node_url: &str, peer_url: &str, setup_tables: &[(&str, &str)]) -> Result<Config, String> {
    let mut text = format!("[nodes.a]\nurl = \"{node_url}\"\n[nodes.b]\nurl = \"{peer_url}\"\n");
    let all = setup_tables.iter().flat_map(|(table, extra)| {
        std::iter::once("")
            .chain(WIDE.iter().map(|(suffix, _)| *suffix))
            .map(move |suffix| (format!("{table}{suffix}"), *extra))
    });
    for (i, (table, extra)) in all.enumerate() {
        text.push_str(&format!(
            "[[tables]]\nname = \"item{i}\"\nkey = [\"id\"]\non = {{ a = \"{table}\", b = \"x.item{i}\" }}\n{extra}\n"
        ));
    }
    Config::from_str_with_env(&text, "footprint.toml", &|_| None)
        .map(|(c, _)| c)
        .map_err(|e| format!("{:?}", e.problems))
}

/// A ratio of two amounts, as `a -> b (b/a x)`.
fn ratio(a: f64, b: f64, unit: &str, decimals: usize) -> String {
    format!(
        "{a:.decimals$}{unit} -> {b:.decimals$}{unit} ({:.2}x)",
        b / a
    )
}

/// Runs every workload on the plain table and on each set-up one (`(label, table)`; the plain one
/// first), and prints, per set-up table, each workload's ratios against the plain one.
async fn engine(
    name: &str,
    mut c: Client,
    config: Config,
    (bulk, fill, stones): (&str, &str, &str),
    tables: &[(&str, &str)],
) -> Result<(), String> {
    let (bulk_rows, rows, rounds) = (
        env_count("TANDEM_BENCH_BULK", 200_000),
        env_count("TANDEM_BENCH_ROWS", 20_000),
        env_count("TANDEM_BENCH_ROUNDS", 10).max(1),
    );
    for (_, t) in tables {
        c.exec(&DDL.replace("{t}", t)).await?;
        for (suffix, _) in WIDE {
            c.exec(&WIDE_DDL.replace("{t}", &format!("{t}{suffix}")))
                .await?;
        }
    }
    let node = config.node("a").ok_or("no node a")?.clone();
    tandem::setup::setup_node(&config, &node, false).await?;
    // The wide tables' rows, untimed (after setup, so that they hold tandem's columns as an
    // application's rows would).
    for (_, t) in tables {
        for (suffix, pieces) in WIDE {
            c.exec(
                &fill
                    .replace("{t}", &format!("{t}{suffix}"))
                    .replace("{n}", &pieces.to_string())
                    .replace("{rows}", &rows.to_string()),
            )
            .await?;
        }
    }
    println!(
        "{name}: {bulk_rows}-row INSERT … SELECT; {rows} one-row statements each; {rounds} alternating slices"
    );
    let task = c.server_task().await?;
    println!(
        "  {:<28} {:<24} {:>22} {:>7} {:>24} {:>22}",
        "workload", "table", "wall", "ratio", "server CPU", "WAL B/row"
    );
    // Keys: the first bulk load, then the one-row keys above it, then the second bulk load.
    let one_row = (bulk_rows + 1, bulk_rows + rows);
    // Keys brought back by the second phase, after the other node's deletes.
    let applied = (2 * bulk_rows + rows + 1, 3 * bulk_rows + rows);
    let workloads: [(&str, &str, Work, (u64, u64)); 10] = [
        ("bulk insert", "", Work::Bulk, (1, bulk_rows)),
        ("one-row inserts", "", Work::PerRow(INSERT), one_row),
        ("one-row updates", "", Work::PerRow(UPDATE), one_row),
        (
            "one-row updates, 512 B text",
            WIDE[0].0,
            Work::PerRow(UPDATE),
            (1, rows),
        ),
        (
            "one-row updates, 8 KB text",
            WIDE[1].0,
            Work::PerRow(UPDATE),
            (1, rows),
        ),
        ("one-row deletes", "", Work::PerRow(DELETE), one_row),
        (
            "re-inserts of deleted keys",
            "",
            Work::PerRow(INSERT),
            one_row,
        ),
        (
            "bulk insert, after deletes",
            "",
            Work::Bulk,
            (bulk_rows + rows + 1, 2 * bulk_rows + rows),
        ),
        (
            "re-inserts, other node's deletes",
            "",
            Work::PerRow(INSERT),
            one_row,
        ),
        ("bulk insert, other node's", "", Work::Bulk, applied),
    ];
    for (label, suffix, work, (from, to)) in workloads {
        if label == "re-inserts, other node's deletes" {
            // The one-row keys deleted again, untimed, as deletes of the other node that tandem
            // applied here: the row goes without a local tombstone, and the applier's tombstone
            // (node b) is written beside it. Setup, run again, then finds the table holding
            // another node's tombstones (on MariaDB it makes the revive trigger there, as the
            // applier does before it writes a table's first one).
            for (_, t) in tables {
                c.exec(&format!(
                    "DELETE FROM {t} WHERE id BETWEEN {} AND {}",
                    one_row.0, one_row.1
                ))
                .await?;
            }
            for (_, t) in &tables[1..] {
                c.exec(
                    &stones
                        .replace("{t}", t)
                        .replace("{from}", &one_row.0.to_string())
                        .replace("{to}", &one_row.1.to_string()),
                )
                .await?;
            }
            tandem::setup::setup_node(&config, &node, false).await?;
        }
        let mut timings: Vec<Timing> = tables.iter().map(|_| Timing::default()).collect();
        let count = to + 1 - from;
        let size = count.div_ceil(rounds);
        for r in 0..rounds {
            let lo = from + r * size;
            if lo > to {
                break;
            }
            let slice = (lo, (lo + size - 1).min(to));
            // Which table goes first turns with each slice.
            let mut order: Vec<usize> = (0..tables.len()).collect();
            order.rotate_left(r as usize % tables.len());
            for i in order {
                let table = format!("{}{suffix}", tables[i].1);
                run_slice(&mut c, task, &table, bulk, work, slice, &mut timings[i]).await?;
            }
        }
        let plain = &timings[0];
        for (i, set_up) in timings.iter().enumerate().skip(1) {
            let wal = match (plain.wal, set_up.wal) {
                (Some(a), Some(b)) => {
                    ratio(a as f64 / count as f64, b as f64 / count as f64, "", 0)
                }
                _ => "-".into(),
            };
            let cpu = match (plain.cpu, set_up.cpu) {
                (Some(a), Some(b)) if !a.is_zero() => {
                    ratio(a.as_secs_f64(), b.as_secs_f64(), "s", 2)
                }
                _ => "-".into(),
            };
            println!(
                "  {:<28} {:<24} {:>22} {:>6.2}x {cpu:>24} {wal:>22}",
                if i == 1 { label } else { "" },
                tables[i].0,
                ratio(
                    plain.elapsed.as_secs_f64(),
                    set_up.elapsed.as_secs_f64(),
                    "s",
                    2
                ),
                set_up.elapsed.as_secs_f64() / plain.elapsed.as_secs_f64()
            );
        }
    }
    Ok(())
}

async fn bench() -> Result<(), String> {
    let pg = PgServer::start().await.map_err(|e| e.to_string())?;
    pg.create_database("bench")
        .await
        .map_err(|e| e.to_string())?;
    let client = pg.connect("bench").await.map_err(|e| e.to_string())?;
    let cfg = config(
        &pg.url("bench"),
        "mysql://root@127.0.0.1:9/x",
        &[
            ("public.item_setup", ""),
            ("public.item_full", "replica_identity = \"full\""),
        ],
    )?;
    engine(
        "PostgreSQL",
        Client::Pg(client),
        cfg,
        (BULK_PG, FILL_PG, STONES_PG),
        &[
            ("plain", "item_plain"),
            ("set up", "item_setup"),
            ("set up, identity FULL", "item_full"),
        ],
    )
    .await?;
    drop(pg);

    let maria = MariaDb::start().await.map_err(|e| e.to_string())?;
    maria
        .create_database("bench")
        .await
        .map_err(|e| e.to_string())?;
    let conn = maria.connect("bench").await.map_err(|e| e.to_string())?;
    let cfg = config(
        &maria.url("bench"),
        "postgres://postgres@127.0.0.1:9/x",
        &[("bench.item_setup", "")],
    )?;
    engine(
        "MariaDB",
        Client::My(conn),
        cfg,
        (BULK_MY, FILL_MY, STONES_MY),
        &[("plain", "item_plain"), ("set up", "item_setup")],
    )
    .await
}

fn main() {
    support::main("cannot start the runtime", "benchmark failed", bench());
}
