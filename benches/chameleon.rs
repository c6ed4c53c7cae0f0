//! End to end against the tool a user would otherwise pick for MariaDB -> PostgreSQL: pg_chameleon
//! 2.0.21, then tandem, on the same two throwaway servers (the harness's: MariaDB with row binlogs,
//! full images and full metadata; PostgreSQL; fsync off), one after the other in one run, each in
//! fresh databases.
//!
//! Workloads (issue #15), each timed from the first source statement until the target holds the
//! result:
//! 1. bulk: one transaction of `TANDEM_BENCH_ROWS` rows (default 200,000), `INSERT … SELECT … FROM
//!    seq_1_to_N`;
//! 2. singles: 20,000 one-row insert transactions from one client;
//! 3. updates: 8 clients x 2,500 one-row updates (autocommit) on the first 100,000 rows.
//!
//! "The target holds the result" is observed as in `replicate.rs`: after each workload the client
//! commits one row into a small `mark` table that both tools replicate in commit order, and the clock
//! stops when that row is on the target. At the end every row is compared: a count and a sum of
//! 60-bit md5 prefixes of `id|name|qty|price` as text, which both engines print identically; a
//! difference fails the run. CPU seconds are read from `/proc`: the MariaDB server, the PostgreSQL
//! server (postmaster and its children), and the tool (`tandem run`, or every process running the
//! pg_chameleon virtualenv's Python). Peak RSS of `tandem run` is sampled every 20 ms.
//!
//! pg_chameleon is installed by the benchmark: `python3 -m venv` (Debian: package `python3-venv`),
//! then `pip install pg_chameleon==2.0.21`, into `/var/tmp/tandem-bench-pg_chameleon-2.0.21/venv`,
//! kept for the next run (delete the directory to install afresh; `TANDEM_BENCH_PYTHON` names the
//! interpreter, default `/usr/bin/python3`, which the `postgres` user can execute, unlike a pyenv
//! under /root). It refuses to run as root, so a root run starts it as the `postgres` OS user through
//! `runuser`, with `HOME` in a temporary directory holding its `~/.pg_chameleon`. Its configuration is
//! the shipped `config-example.yml` with the connections filled in, `schema_mappings` `bench: bench`,
//! no table filters, `gtid_enable: false`, and `log_dest: stdout` (so that `init_replica` and
//! `start_replica` run in the foreground as this benchmark's children instead of daemonising; the
//! log level stays `info`); batch sizes and `sleep_loop` keep their example values (10,000 rows,
//! 1 s). It connects to MariaDB as a user with a password (`charset: utf8`) and to PostgreSQL as
//! `postgres` with a dummy password (the harness trusts local connections; an empty password would
//! break its libpq connection string). The sequence is `set_configuration_files`,
//! `create_replica_schema`, `add_source`, `init_replica` (copies the empty tables), `start_replica`,
//! then after the workloads `stop_replica`.
//!
//! Then the same three workloads the other way, PostgreSQL -> MariaDB, through tandem alone (issue
//! #15 asks for them reported; pg_chameleon reads only MySQL/MariaDB), from the PostgreSQL source
//! workloads `replicate.rs` runs (`support::pg_source`), in fresh databases on the same servers.
//! Every figure line also gives the source's own time (until its last commit returned) and the
//! whole run's, and for the MariaDB -> PostgreSQL pair the ceiling that puts on the ratio.
//!
//! Run: `cargo bench --bench chameleon` (release build); `TANDEM_BENCH_TANDEM_ONLY=1` runs tandem's
//! workloads alone, both directions (to compare two builds). `TANDEM_BENCH_SCALE` divides the three
//! workloads (a smoke test: `TANDEM_BENCH_SCALE=100 cargo bench --profile dev --bench chameleon`).
//! The machine's load moves absolute numbers; the ratios of one run are what to compare.

#[path = "chameleon/peer.rs"]
mod peer;
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use peer::chameleon;
use support::pg_source;
use support::{
    connect, exited, mariadb_pid, my_connect, postmaster, Error, Figures, Meters, Sizes, TandemRun,
    Tool,
};
use tandem::harness::{MariaDb, PgOptions, PgServer};
use tokio_postgres::Client;

const CHAMELEON: &str = "pg_chameleon==2.0.21";
const VENV_CACHE: &str = "/var/tmp/tandem-bench-pg_chameleon-2.0.21";

const MY_DDL: &str =
    "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(64), qty INT, price DECIMAL(12,2));
    CREATE TABLE mark (id INT PRIMARY KEY)";
const PG_DDL: &str =
    "CREATE TABLE items (id bigint PRIMARY KEY, name varchar(64), qty int, price numeric(12,2));
    CREATE TABLE mark (id int PRIMARY KEY)";

/// Count and sum of the first 60 bits of each row's md5, as text; order-free, so no large string.
const MY_CHECKSUM: &str = "SELECT CONCAT(COUNT(*), ' ', COALESCE(SUM(CAST(CONV(SUBSTRING(MD5(CONCAT_WS('|', id, name, qty, price)), 1, 15), 16, 10) AS UNSIGNED)), 0)) FROM items";
fn pg_checksum(table: &str) -> String {
    format!(
        "SELECT count(*)::text || ' ' || coalesce(sum(('x' || substr(md5(concat_ws('|', id, name, qty, price)), 1, 15))::bit(60)::bigint), 0)::text FROM {table}"
    )
}

/// How long a tool may take to deliver one workload before the run fails.
const CATCH_UP: Duration = Duration::from_secs(900);

/// Runs `;`-separated statements one by one.
async fn my_batch(conn: &mut mysql_async::Conn, sql: &str) -> Result<(), Error> {
    for statement in sql.split(';').filter(|s| !s.trim().is_empty()) {
        conn.query_drop(statement).await?;
    }
    Ok(())
}

/// What to wait on: the target's mark table, and the tool's process, which must stay up.
struct Target<'a> {
    client: &'a Client,
    mark: &'a str,
    tool_pid: u32,
    tool_log: Option<&'a Path>,
}

impl Target<'_> {
    fn tool_died(&self, what: &str) -> Error {
        let tail = self
            .tool_log
            .and_then(|p| std::fs::read_to_string(p).ok())
            .map(|t| {
                let lines: Vec<&str> = t.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            })
            .unwrap_or_default();
        format!("{what}: the replication process exited; its output ends:\n{tail}").into()
    }
}

/// Commits mark `n` on the source and waits until the target has it.
async fn mark_and_wait(
    src: &mut mysql_async::Conn,
    dst: &Target<'_>,
    n: i32,
    what: &str,
) -> Result<(), Error> {
    src.exec_drop("INSERT INTO mark VALUES (?)", (n,)).await?;
    let query = format!("SELECT 1 FROM {} WHERE id = $1", dst.mark);
    let start = Instant::now();
    loop {
        if dst.client.query_opt(&query, &[&n]).await?.is_some() {
            return Ok(());
        }
        if exited(dst.tool_pid) {
            return Err(dst.tool_died(what));
        }
        if start.elapsed() > CATCH_UP {
            return Err(format!(
                "{what}: the target did not catch up in {} s (mark {n})",
                CATCH_UP.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs the three workloads against `src_url` (MariaDB), waiting on `dst` after each, then compares
/// every row of `dst_items` with the source.
async fn workloads(
    src_url: &str,
    dst: &Target<'_>,
    dst_items: &str,
    sizes: &Sizes,
    what: &str,
    meters: &Meters,
) -> Result<Figures, Error> {
    let mut src = my_connect(src_url).await?;
    let mut f = Figures::default();
    // Not timed: the tool is up and delivering.
    mark_and_wait(&mut src, dst, 0, what).await?;

    let cpu = meters.read();
    let start = Instant::now();
    src.query_drop(format!(
        "INSERT INTO items SELECT seq, CONCAT('name ', seq), seq % 100, seq * 1.5 FROM seq_1_to_{}",
        sizes.bulk
    ))
    .await?;
    f.source_done(0, start);
    mark_and_wait(&mut src, dst, 1, what).await?;
    f.bulk = sizes.bulk as f64 / f.delivered(0, start);
    f.cpu[0] = meters.since(cpu);

    let insert = src
        .prep("INSERT INTO items VALUES (?, CONCAT('single ', ?), 1, 2.5)")
        .await?;
    let cpu = meters.read();
    let start = Instant::now();
    for i in 0..sizes.singles {
        let id = 10_000_000 + i;
        src.exec_drop(&insert, (id, id)).await?;
    }
    f.source_done(1, start);
    mark_and_wait(&mut src, dst, 2, what).await?;
    f.singles = sizes.singles as f64 / f.delivered(1, start);
    f.cpu[1] = meters.since(cpu);

    // The clients connect before the clock starts, as the single client did.
    let mut clients = Vec::new();
    for _ in 0..sizes.clients {
        clients.push(my_connect(src_url).await?);
    }
    let cpu = meters.read();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut client) in clients.into_iter().enumerate() {
        let (each, rows) = (sizes.updates_each, sizes.updated_rows);
        tasks.push(tokio::spawn(async move {
            let update = client
                .prep("UPDATE items SET qty = qty + 1 WHERE id = ?")
                .await?;
            for id in support::update_keys(c as u64, each, rows) {
                client.exec_drop(&update, (id,)).await?;
            }
            client.disconnect().await?;
            Ok::<(), Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    f.source_done(2, start);
    mark_and_wait(&mut src, dst, 3, what).await?;
    f.updates = (sizes.clients * sizes.updates_each) as f64 / f.delivered(2, start);
    f.cpu[2] = meters.since(cpu);

    let a: String = src
        .query_first(MY_CHECKSUM)
        .await?
        .ok_or("the source checksum returned no row")?;
    let b: String = dst
        .client
        .query_one(&pg_checksum(dst_items), &[])
        .await?
        .get(0);
    src.disconnect().await?;
    if a != b {
        return Err(format!(
            "{what}: the target differs from the source (count, checksum): {a} against {b}"
        )
        .into());
    }
    Ok(f)
}

// ---------------------------------------------------------------------------------------------
// tandem

async fn tandem(maria: &MariaDb, pg: &PgServer, sizes: &Sizes) -> Result<(Figures, u64), Error> {
    maria.create_database("tandem_src").await?;
    let mut my = maria.connect("tandem_src").await?;
    my_batch(&mut my, MY_DDL).await?;
    my.disconnect().await?;
    pg.create_database("tandem_dst").await?;
    let dst = connect(&pg.url("tandem_dst")).await?;
    dst.batch_execute(PG_DDL).await?;
    let run = TandemRun::start(
        "chameleon",
        &format!(
            "[nodes.desk]\nurl = \"{}\"\n[nodes.crm]\nurl = \"{}\"\n\
             [[tables]]\nname = \"items\"\nkey = [\"id\"]\n[[tables]]\nname = \"mark\"\nkey = [\"id\"]\n",
            maria.url("tandem_src"),
            pg.url("tandem_dst")
        ),
    )
    .await?;
    let pid = run.pid;
    let rss = support::PeakRss::start(pid);
    let meters = Meters {
        source: mariadb_pid(maria)?,
        target: postmaster(pg)?,
        tool: Some(Tool::Pid(pid)),
    };
    let target = Target {
        client: &dst,
        mark: "mark",
        tool_pid: pid,
        tool_log: None,
    };
    let figures = workloads(
        &maria.url("tandem_src"),
        &target,
        "items",
        sizes,
        "tandem",
        &meters,
    )
    .await;
    rss.stop();
    run.stop().await?;
    Ok((figures?, rss.kib()))
}

/// A MariaDB target's marks, while `tandem run` (process `tool_pid`) delivers them.
struct MyMarks {
    conn: mysql_async::Conn,
    tool_pid: u32,
}

impl pg_source::Marks for MyMarks {
    async fn holds(&mut self, n: i32) -> Result<bool, Error> {
        let row: Option<i32> = self
            .conn
            .exec_first("SELECT 1 FROM mark WHERE id = ?", (n,))
            .await?;
        if row.is_none() && exited(self.tool_pid) {
            return Err("tandem PostgreSQL -> MariaDB: tandem run exited".into());
        }
        Ok(row.is_some())
    }
}

/// The same workloads the other way, PostgreSQL -> MariaDB, through tandem alone (pg_chameleon
/// replicates only from MySQL/MariaDB), in fresh databases on the same servers.
async fn tandem_to_maria(
    maria: &MariaDb,
    pg: &PgServer,
    sizes: &Sizes,
) -> Result<(Figures, u64), Error> {
    pg.create_database("back_src").await?;
    let src = connect(&pg.url("back_src")).await?;
    src.batch_execute(PG_DDL).await?;
    maria.create_database("back_dst").await?;
    let mut my = maria.connect("back_dst").await?;
    my_batch(&mut my, MY_DDL).await?;
    let run = TandemRun::start(
        "chameleon-back",
        &format!(
            "[nodes.pgsrc]\nurl = \"{}\"\n[nodes.mydst]\nurl = \"{}\"\n\
             [[tables]]\nname = \"items\"\nkey = [\"id\"]\n[[tables]]\nname = \"mark\"\nkey = [\"id\"]\n",
            pg.url("back_src"),
            maria.url("back_dst")
        ),
    )
    .await?;
    let pid = run.pid;
    let rss = support::PeakRss::start(pid);
    let meters = Meters {
        source: postmaster(pg)?,
        target: mariadb_pid(maria)?,
        tool: Some(Tool::Pid(pid)),
    };
    let mut marks = MyMarks {
        conn: maria.connect("back_dst").await?,
        tool_pid: pid,
    };
    let what = "tandem PostgreSQL -> MariaDB";
    let figures = pg_source::workloads(&pg.url("back_src"), &mut marks, sizes, what, &meters).await;
    rss.stop();
    run.stop().await?;
    let figures = figures?;
    let a: String = src.query_one(&pg_checksum("items"), &[]).await?.get(0);
    let b: String = my
        .query_first(MY_CHECKSUM)
        .await?
        .ok_or("the target checksum returned no row")?;
    if a != b {
        return Err(format!(
            "{what}: the target differs from the source (count, checksum): {a} against {b}"
        )
        .into());
    }
    Ok((figures, rss.kib()))
}

async fn run() -> Result<(), Error> {
    let sizes = Sizes::from_env();
    // The server default for logical_decoding_work_mem (the harness lowers it to exercise spilling):
    // tandem also reads the target's WAL, for the other direction.
    let options = PgOptions {
        settings: vec![("logical_decoding_work_mem".into(), "64MB".into())],
        ..PgOptions::default()
    };
    let (maria, pg) = tokio::join!(MariaDb::start(), PgServer::start_with(options));
    let (maria, pg) = (maria?, pg?);
    let version: String = maria
        .connect("")
        .await?
        .query_first("SELECT VERSION()")
        .await?
        .unwrap_or_default();
    println!(
        "chameleon: MariaDB {version} -> PostgreSQL {} (harness servers, fsync off), {} build of tandem; \
         bulk {} rows in one transaction, {} one-row insert transactions, {} clients x {} one-row updates on {} rows",
        pg.version(),
        support::build(),
        sizes.bulk,
        sizes.singles,
        sizes.clients,
        sizes.updates_each,
        sizes.updated_rows
    );
    // `TANDEM_BENCH_TANDEM_ONLY=1`: tandem's runs alone (to compare two builds of tandem).
    if std::env::var("TANDEM_BENCH_TANDEM_ONLY").is_ok_and(|v| v == "1") {
        let (t, peak_kib) = tandem(&maria, &pg, &sizes).await?;
        println!("  MariaDB -> PostgreSQL, tandem alone (TANDEM_BENCH_TANDEM_ONLY=1):");
        alone(&t, peak_kib);
        let (b, back_kib) = tandem_to_maria(&maria, &pg, &sizes).await?;
        println!("  PostgreSQL -> MariaDB, tandem alone:");
        alone(&b, back_kib);
        return Ok(());
    }
    let c = chameleon(&maria, &pg, &sizes).await?;
    let (t, peak_kib) = tandem(&maria, &pg, &sizes).await?;
    let line = |i: usize, what: &str, unit: &str, peer: f64, tandem: f64| {
        let (cc, tc) = (c.cpu[i], t.cpu[i]);
        println!(
            "  {what:<28} pg_chameleon {peer:>8.0} {unit}   tandem {tandem:>8.0} {unit}   ratio {:.2}x   \
             CPU s source/target + tool: pg_chameleon {:.1}/{:.1} + {:.1}, tandem {:.1}/{:.1} + {:.1}",
            tandem / peer,
            cc[0],
            cc[1],
            cc[2],
            tc[0],
            tc[1],
            tc[2]
        );
        println!(
            "  {:<28} {} (pg_chameleon / tandem)",
            "",
            support::bound(i, &c, &t)
        );
    };
    line(0, "bulk, one transaction", "rows/s", c.bulk, t.bulk);
    line(
        1,
        "one-row insert transactions",
        "txn/s",
        c.singles,
        t.singles,
    );
    line(
        2,
        "one-row updates, 8 clients",
        "txn/s",
        c.updates,
        t.updates,
    );
    println!(
        "  tandem run peak RSS {:.1} MiB; every row equal on both sides for both tools",
        peak_kib as f64 / 1024.0
    );
    // Issue #15: "PG->MariaDB reported". No peer to hold it against.
    let (b, back_kib) = tandem_to_maria(&maria, &pg, &sizes).await?;
    println!("  PostgreSQL -> MariaDB, tandem alone (pg_chameleon reads only MySQL/MariaDB):");
    alone(&b, back_kib);
    Ok(())
}

/// Tandem's figures of one direction, with no peer to hold them against.
fn alone(b: &Figures, peak_kib: u64) {
    let back = |i: usize, what: &str, unit: &str, figure: f64| {
        println!(
            "  {what:<28} tandem {figure:>8.0} {unit}   CPU s source/target + tool {:.1}/{:.1} + {:.1}   \
             source alone {:.2} s, whole run {:.2} s",
            b.cpu[i][0], b.cpu[i][1], b.cpu[i][2], b.source_s[i], b.total_s[i]
        )
    };
    back(0, "bulk, one transaction", "rows/s", b.bulk);
    back(1, "one-row insert transactions", "txn/s", b.singles);
    back(2, "one-row updates, 8 clients", "txn/s", b.updates);
    println!(
        "  tandem run peak RSS {:.1} MiB; every row equal on both sides",
        peak_kib as f64 / 1024.0
    );
}

fn main() {
    support::main("chameleon bench", "chameleon bench failed", run());
}
