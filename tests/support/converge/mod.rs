//! The convergence workload and its checks, shared by `convergence` (writers alone) and
//! `convergence_fire` (writers while tandem is killed and the databases restart).
//!
//! The pair is PostgreSQL `crm` and MariaDB `helpdesk`, each with two mapped tables:
//! - `items(id, n, label)`: the contested table; every writer transaction inserts, updates or deletes
//!   one of a few keys, so both nodes write the same rows at the same time. Every insert and update
//!   writes a label no other write uses, so a row state names the write that produced it.
//! - `events(id, label)`: insert-only, ids unique per writer; every writer transaction also inserts one
//!   event, so each committed transaction must arrive exactly once on the other node.
//!
//! Rows are compared with tandem's version and origin columns, which must end equal too.
//!
//! ```text
//!  writers (per node) ──BEGIN; SELECT label … FOR UPDATE; UPDATE/DELETE/INSERT items; INSERT events; COMMIT
//!        │ record: event id, and for an update/delete the row state it replaced (its "parent" label)
//!        v
//!  checks: converged · events exactly once · every forced conflict audited · logs quiet
//! ```

mod audit;
mod quiet;
mod writer;

pub use audit::{assert_conflicts_audited, assert_exactly_once, read_audit};
pub use quiet::assert_quiet;
pub use writer::{join_writers, spawn_writers, Load, WriterReport};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use super::{start_tandem_run, Pair};

/// The same DDL serves both engines; `tandem setup` adds the version and origin columns.
pub const SCHEMA: &str =
    "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL, label varchar(50) NOT NULL); \
     CREATE TABLE events (id bigint PRIMARY KEY, label varchar(50) NOT NULL)";
/// Keys of the contested table; few, so that both nodes write the same rows.
pub const KEYS: u64 = 12;

/// A pair with `items` under `rule` (TOML lines of the table) and `events` under the default rule.
pub async fn pair(rule: &str) -> Pair {
    Pair::start(
        SCHEMA,
        SCHEMA,
        &format!(
            "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n{rule}\n\
             [[tables]]\nname = \"events\"\nkey = [\"id\"]\n"
        ),
    )
    .await
}

/// A small deterministic generator (xorshift64*), so a failing run can be repeated from its seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Which node a writer writes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Node {
    Crm,
    Helpdesk,
}

impl Node {
    pub fn name(self) -> &'static str {
        match self {
            Node::Crm => "crm",
            Node::Helpdesk => "helpdesk",
        }
    }

    pub fn other(self) -> Node {
        match self {
            Node::Crm => Node::Helpdesk,
            Node::Helpdesk => Node::Crm,
        }
    }
}

/// The compared columns of `items` after its key `id`: the mapped ones, then tandem's version and
/// origin marker, which must end equal too (a later conflict is decided by them).
pub const ITEM_COLUMNS: [&str; 4] = ["n", "label", "_tandem_version", "_tandem_origin"];
/// The compared columns of `events` after its key `id`.
pub const EVENT_COLUMNS: [&str; 3] = ["label", "_tandem_version", "_tandem_origin"];

/// One row's compared values, as text (`None` for NULL).
pub type Row = Vec<Option<String>>;

/// The synced rows of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub items: BTreeMap<i32, Row>,
    pub events: BTreeMap<i64, Row>,
}

impl Snapshot {
    /// The label of an `items` row.
    pub fn item_label(row: &Row) -> Option<&str> {
        row[1].as_deref()
    }

    /// The label of an `events` row.
    pub fn event_label(row: &Row) -> Option<&str> {
        row[0].as_deref()
    }
}

/// `SELECT id, <columns> FROM table`, every column as text, with `cast` making a column text in the engine's SQL.
fn select(table: &str, columns: &[&str], cast: fn(&str) -> String) -> String {
    let cols: Vec<String> = std::iter::once(&"id")
        .chain(columns)
        .map(|c| cast(c))
        .collect();
    format!("SELECT {} FROM {table}", cols.join(", "))
}

pub async fn pg_snapshot(pg: &PgServer) -> Snapshot {
    let c = pg.connect("crm").await.expect("connect to crm");
    let cast = |c: &str| format!("{c}::text");
    let rows = |table: &'static str, columns: &'static [&'static str]| {
        let sql = select(table, columns, cast);
        let c = &c;
        async move {
            c.query(&sql, &[])
                .await
                .unwrap_or_else(|e| panic!("read crm {table}: {e}"))
                .iter()
                .map(|r| {
                    let id: i64 = r.get::<_, String>(0).parse().expect("integer id");
                    (id, (1..=columns.len()).map(|i| r.get(i)).collect::<Row>())
                })
                .collect::<Vec<_>>()
        }
    };
    let items = rows("items", &ITEM_COLUMNS).await;
    let events = rows("events", &EVENT_COLUMNS).await;
    Snapshot {
        items: items.into_iter().map(|(k, r)| (k as i32, r)).collect(),
        events: events.into_iter().collect(),
    }
}

pub async fn maria_snapshot(maria: &MariaDb) -> Snapshot {
    let mut c = maria.connect("desk").await.expect("connect to helpdesk");
    let cast = |c: &str| format!("CAST({c} AS CHAR)");
    let mut rows = Vec::new();
    for (table, columns) in [("items", &ITEM_COLUMNS[..]), ("events", &EVENT_COLUMNS[..])] {
        let found: Vec<mysql_async::Row> = c
            .query(select(table, columns, cast))
            .await
            .unwrap_or_else(|e| panic!("read helpdesk {table}: {e}"));
        rows.push(
            found
                .into_iter()
                .map(|mut r| {
                    let mut text = |i: usize| r.take::<Option<String>, _>(i).flatten();
                    let id: i64 = text(0).and_then(|t| t.parse().ok()).expect("integer id");
                    (id, (1..=columns.len()).map(text).collect::<Row>())
                })
                .collect::<Vec<_>>(),
        );
    }
    c.disconnect().await.ok();
    let events = rows.pop().unwrap_or_default();
    let items = rows.pop().unwrap_or_default();
    Snapshot {
        items: items.into_iter().map(|(k, r)| (k as i32, r)).collect(),
        events: events.into_iter().collect(),
    }
}

/// The first difference between the two nodes, as a sentence naming table, key, column and values.
pub fn first_difference(crm: &Snapshot, desk: &Snapshot) -> Option<String> {
    fn first<K: Ord + std::fmt::Display>(
        table: &str,
        columns: &[&str],
        a: &BTreeMap<K, Row>,
        b: &BTreeMap<K, Row>,
    ) -> Option<String> {
        let keys: BTreeSet<&K> = a.keys().chain(b.keys()).collect();
        keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) => {
                let i = (0..columns.len()).find(|&i| x[i] != y[i])?;
                Some(format!(
                    "table {table}, key id={k}, column {}: crm has {:?}, helpdesk has {:?}",
                    columns[i], x[i], y[i]
                ))
            }
            (x, y) => Some(format!(
                "table {table}, key id={k}: crm has {x:?}, helpdesk has {y:?}"
            )),
        })
    }
    first("items", &ITEM_COLUMNS, &crm.items, &desk.items)
        .or_else(|| first("events", &EVENT_COLUMNS, &crm.events, &desk.events))
}

/// Waits until every mapped row is equal on both nodes; panics with the first difference.
pub async fn wait_converged(p: &Pair, what: &str) -> Snapshot {
    let deadline = Duration::from_secs(120);
    let start = Instant::now();
    loop {
        let (a, b) = (pg_snapshot(&p.pg).await, maria_snapshot(&p.maria).await);
        match first_difference(&a, &b) {
            None => return a,
            Some(d) if start.elapsed() > deadline => panic!(
                "{what}: the nodes did not converge within {deadline:?}; first difference: {d}\n{}\n{}",
                one_sided_events(&a, &b),
                bookkeeping(p).await
            ),
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Every check of the suite, once the writers have stopped: the nodes converge, every transaction
/// arrived exactly once, every forced conflict was audited, and nothing echoes.
pub async fn assert_all(p: &Pair, what: &str, rule: &str, reports: &[WriterReport]) {
    let converged = wait_converged(p, what).await;
    let audit = read_audit(p).await;
    assert_exactly_once(what, reports, &converged, &audit);
    let forced = assert_conflicts_audited(what, rule, reports, &audit)
        .map_or("(under merge, not known)".to_string(), |n| n.to_string());
    eprintln!(
        "{what}: {} transactions committed ({} settled after a lost commit reply), {} failed, \
         writes that had to conflict: {forced}, {} audit rows",
        reports.iter().map(|r| r.events.len()).sum::<usize>(),
        reports.iter().map(|r| r.in_doubt).sum::<u32>(),
        reports.iter().map(|r| r.failed).sum::<u32>(),
        audit.conflicts.len()
    );
    assert_quiet(p, what).await;
}

/// The events on one node only, for a failure message.
fn one_sided_events(crm: &Snapshot, desk: &Snapshot) -> String {
    let only = |a: &Snapshot, b: &Snapshot| -> Vec<i64> {
        a.events
            .keys()
            .filter(|k| !b.events.contains_key(k))
            .copied()
            .collect()
    };
    let (c, d) = (only(crm, desk), only(desk, crm));
    format!(
        "{} events only on crm {:?}, {} only on helpdesk {:?}",
        c.len(),
        &c[..c.len().min(20)],
        d.len(),
        &d[..d.len().min(20)]
    )
}

/// Starts `tandem run`, and with `TANDEM_CONVERGE_TRACE=DIR` a `tandem tail` of each node writing
/// `DIR/<pair>/<node>.jsonl`, to replay a divergence.
pub async fn start_run(p: &Pair) -> (tokio::process::Child, Vec<tokio::process::Child>) {
    let mut traces = Vec::new();
    if let Some(dir) = std::env::var_os("TANDEM_CONVERGE_TRACE") {
        // One folder per pair, named after its configuration file: tests run side by side.
        let dir = std::path::Path::new(&dir).join(p.config.file_stem().expect("config file name"));
        std::fs::create_dir_all(&dir).expect("trace folder");
        for node in ["crm", "helpdesk"] {
            traces.push(start_trace(&p.config, node, &dir).await);
        }
    }
    (start_tandem_run(&p.config, 2).await, traces)
}

/// Starts `tandem tail` for `node` writing to `DIR/<node>.jsonl`, and waits until it reads the log.
async fn start_trace(
    config: &std::path::Path,
    node: &str,
    dir: &std::path::Path,
) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt;
    let out = std::fs::File::create(dir.join(format!("{node}.jsonl"))).expect("trace file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["tail", "--node", node, "--config"])
        .arg(config)
        .env("TANDEM_LOG", "info")
        .stdout(out)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem tail");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().expect("stderr")).lines();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(line)) = stderr.next_line().await {
            if line.contains("tail started") {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(started, Ok(true), "the trace tail of {node} did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = stderr.next_line().await {} });
    child
}

/// The dead letters and conflicts of both nodes, for a failure message.
pub async fn bookkeeping(p: &Pair) -> String {
    let audit = read_audit(p).await;
    let mut out = String::new();
    for d in &audit.dead_letters {
        out += &format!("dead letter on {d}\n");
    }
    for c in &audit.conflicts {
        out += &format!(
            "{} conflict from {}: {} {} {} {} {}\n",
            c.on.name(),
            c.source_node,
            c.table,
            c.key,
            c.kind,
            c.decision,
            c.state
        );
    }
    out
}
