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
//! ```text
//!  writers (per node) ──BEGIN; SELECT label … FOR UPDATE; UPDATE/DELETE/INSERT items; INSERT events; COMMIT
//!        │ record: event id, and for an update/delete the row state it replaced (its "parent" label)
//!        v
//!  checks: converged · events exactly once · every forced conflict audited · logs quiet
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use super::{start_tandem_run, unique_name, wait_for, Pair};

pub const PG_SCHEMA: &str =
    "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL, label varchar(50) NOT NULL); \
     CREATE TABLE events (id bigint PRIMARY KEY, label varchar(50) NOT NULL)";
pub const MARIA_SCHEMA: &str =
    "CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL, label varchar(50) NOT NULL); \
     CREATE TABLE events (id bigint PRIMARY KEY, label varchar(50) NOT NULL)";
/// Keys of the contested table; few, so that both nodes write the same rows.
pub const KEYS: u64 = 12;
/// Marker keys, above every contested key (see [`assert_quiet`]).
const MARKERS: [i32; 2] = [1001, 1002];

/// A pair with `items` under `rule` (TOML lines of the table) and `events` under the default rule.
pub async fn pair(rule: &str) -> Pair {
    Pair::start(
        PG_SCHEMA,
        MARIA_SCHEMA,
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

    fn other(self) -> Node {
        match self {
            Node::Crm => Node::Helpdesk,
            Node::Helpdesk => Node::Crm,
        }
    }
}

/// An update or delete of an existing row, as its writer's transaction saw it (row locked).
#[derive(Debug, Clone)]
pub struct ItemWrite {
    pub node: Node,
    pub key: i32,
    /// The label of the row state this write replaced.
    pub parent: String,
    /// The label written; `None` for a delete.
    pub label: Option<String>,
}

/// What one writer committed.
#[derive(Debug, Default)]
pub struct WriterReport {
    pub events: Vec<i64>,
    pub item_writes: Vec<ItemWrite>,
    /// Transactions that failed (rolled back, or lost with their connection before the commit).
    pub failed: u32,
    /// Commits whose outcome was unknown (the connection dropped) and was read back from `events`.
    pub in_doubt: u32,
}

/// How a writer is run.
#[derive(Clone)]
pub struct Workload {
    pub node: Node,
    pub url: String,
    pub seed: u64,
    /// Writer number on its node; event ids are `node * 10^9 + writer * 10^6 + i`.
    pub writer: i64,
    pub deletes: bool,
    /// Stop after this many transactions, or earlier when `stop` is set.
    pub ops: usize,
    pub stop: Arc<AtomicBool>,
    /// Pause up to this many milliseconds between transactions (a sustained, not a burst, load).
    pub pace_ms: u64,
}

enum Op {
    Insert,
    Update,
    Delete,
}

enum Conn {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
}

/// Why a transaction did not commit for sure.
enum Failure {
    /// Failed before the commit was sent: rolled back.
    Before,
    /// The commit itself failed: it may have committed (the item write is known either way).
    AtCommit(Option<ItemWrite>),
}

impl Conn {
    async fn open(node: Node, url: &str) -> Option<Conn> {
        match node {
            Node::Crm => {
                let (c, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                    .await
                    .ok()?;
                tokio::spawn(conn);
                Some(Conn::Pg(c))
            }
            Node::Helpdesk => mysql_async::Conn::from_url(url).await.ok().map(Conn::My),
        }
    }

    /// Opens a connection, waiting while the server restarts.
    async fn reopen(node: Node, url: &str) -> Conn {
        wait_for(
            &format!("a writer reconnecting to {}", node.name()),
            Duration::from_secs(120),
            || Conn::open(node, url),
        )
        .await
    }

    /// Whether event `id` is committed; `None` when the server cannot say now.
    async fn has_event(&mut self, id: i64) -> Option<bool> {
        match self {
            Conn::Pg(c) => c
                .query_opt("SELECT 1 FROM events WHERE id = $1", &[&id])
                .await
                .ok()
                .map(|r| r.is_some()),
            Conn::My(c) => c
                .exec_first::<i64, _, _>("SELECT 1 FROM events WHERE id = ?", (id,))
                .await
                .ok()
                .map(|r| r.is_some()),
        }
    }

    async fn write(
        &mut self,
        node: Node,
        op: &Op,
        key: i32,
        label: &str,
        event: i64,
    ) -> Result<Option<ItemWrite>, Failure> {
        let write = |parent: String| ItemWrite {
            node,
            key,
            parent,
            label: matches!(op, Op::Update).then(|| label.to_string()),
        };
        match self {
            Conn::Pg(c) => {
                let tx = c.transaction().await.map_err(|_| Failure::Before)?;
                let mut item = None;
                if let Op::Insert = op {
                    tx.execute(
                        "INSERT INTO items (id, n, label) VALUES ($1, 0, $2) ON CONFLICT (id) DO NOTHING",
                        &[&key, &label],
                    )
                    .await
                    .map_err(|_| Failure::Before)?;
                } else if let Some(row) = tx
                    .query_opt("SELECT label FROM items WHERE id = $1 FOR UPDATE", &[&key])
                    .await
                    .map_err(|_| Failure::Before)?
                {
                    let sql = match op {
                        Op::Update => "UPDATE items SET n = n + 1, label = $2 WHERE id = $1",
                        _ => "DELETE FROM items WHERE id = $1 AND $2 <> ''",
                    };
                    tx.execute(sql, &[&key, &label])
                        .await
                        .map_err(|_| Failure::Before)?;
                    item = Some(write(row.get(0)));
                }
                tx.execute(
                    "INSERT INTO events (id, label) VALUES ($1, $2)",
                    &[&event, &label],
                )
                .await
                .map_err(|_| Failure::Before)?;
                tx.commit()
                    .await
                    .map_err(|_| Failure::AtCommit(item.clone()))?;
                Ok(item)
            }
            Conn::My(c) => {
                let mut tx = c
                    .start_transaction(mysql_async::TxOpts::default())
                    .await
                    .map_err(|_| Failure::Before)?;
                let mut item = None;
                if let Op::Insert = op {
                    tx.exec_drop(
                        "INSERT IGNORE INTO items (id, n, label) VALUES (?, 0, ?)",
                        (key, label),
                    )
                    .await
                    .map_err(|_| Failure::Before)?;
                } else if let Some(parent) = tx
                    .exec_first::<String, _, _>(
                        "SELECT label FROM items WHERE id = ? FOR UPDATE",
                        (key,),
                    )
                    .await
                    .map_err(|_| Failure::Before)?
                {
                    let sql = match op {
                        Op::Update => "UPDATE items SET n = n + 1, label = ? WHERE id = ?",
                        _ => "DELETE FROM items WHERE ? <> '' AND id = ?",
                    };
                    tx.exec_drop(sql, (label, key))
                        .await
                        .map_err(|_| Failure::Before)?;
                    item = Some(write(parent));
                }
                tx.exec_drop(
                    "INSERT INTO events (id, label) VALUES (?, ?)",
                    (event, label),
                )
                .await
                .map_err(|_| Failure::Before)?;
                tx.commit()
                    .await
                    .map_err(|_| Failure::AtCommit(item.clone()))?;
                Ok(item)
            }
        }
    }
}

/// Runs one writer: random inserts, updates and deletes of the contested keys, each with an event,
/// one transaction each. A failed transaction (deadlock, server restarting) is counted and the
/// writer goes on with a new connection; a commit whose reply was lost is settled by looking its
/// event up once the server answers again.
pub async fn run_writer(w: Workload) -> WriterReport {
    let mut report = WriterReport::default();
    let mut rng = Rng(w.seed);
    let mut conn = Conn::reopen(w.node, &w.url).await;
    let base = match w.node {
        Node::Crm => 1_000_000_000,
        Node::Helpdesk => 2_000_000_000,
    } + w.writer * 1_000_000;
    for i in 0..w.ops {
        if w.stop.load(Ordering::Relaxed) {
            break;
        }
        let key = (rng.below(KEYS) + 1) as i32;
        let label = format!("{}-{}-{i}", w.node.name(), w.writer);
        let op = match rng.below(if w.deletes { 10 } else { 9 }) {
            0..=3 => Op::Insert,
            4..=8 => Op::Update,
            _ => Op::Delete,
        };
        let event = base + i as i64;
        let committed = match conn.write(w.node, &op, key, &label, event).await {
            Ok(item) => Some(item),
            Err(Failure::Before) => {
                conn = Conn::reopen(w.node, &w.url).await;
                None
            }
            Err(Failure::AtCommit(item)) => {
                report.in_doubt += 1;
                let found = loop {
                    conn = Conn::reopen(w.node, &w.url).await;
                    if let Some(found) = conn.has_event(event).await {
                        break found;
                    }
                };
                found.then_some(item)
            }
        };
        match committed {
            Some(item) => {
                report.events.push(event);
                report.item_writes.extend(item);
            }
            None => report.failed += 1,
        }
        if w.pace_ms > 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(w.pace_ms + 1))).await;
        }
    }
    report
}

/// Starts `per_node` writers on each node, with seeds derived from `seed`.
pub fn spawn_writers(
    p: &Pair,
    seed: u64,
    per_node: i64,
    template: &Workload,
) -> Vec<tokio::task::JoinHandle<WriterReport>> {
    let mut handles = Vec::new();
    for writer in 0..per_node {
        for node in [Node::Crm, Node::Helpdesk] {
            let url = match node {
                Node::Crm => p.pg.url("crm"),
                Node::Helpdesk => p.maria.url("desk"),
            };
            let w = Workload {
                node,
                url,
                seed: seed
                    ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(writer as u64 * 2 + node as u64 + 1)),
                writer,
                ..template.clone()
            };
            handles.push(tokio::spawn(run_writer(w)));
        }
    }
    handles
}

pub async fn join_writers(
    handles: Vec<tokio::task::JoinHandle<WriterReport>>,
) -> Vec<WriterReport> {
    let mut reports = Vec::new();
    for h in handles {
        reports.push(h.await.expect("a writer panicked"));
    }
    reports
}

/// The mapped rows of one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub items: BTreeMap<i32, (i32, String)>,
    pub events: BTreeMap<i64, String>,
}

pub async fn pg_snapshot(pg: &PgServer) -> Snapshot {
    let c = pg.connect("crm").await.expect("connect to crm");
    let items = c
        .query("SELECT id, n, label FROM items", &[])
        .await
        .expect("read crm items")
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let events = c
        .query("SELECT id, label FROM events", &[])
        .await
        .expect("read crm events")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Snapshot { items, events }
}

pub async fn maria_snapshot(maria: &MariaDb) -> Snapshot {
    let mut c = maria.connect("desk").await.expect("connect to helpdesk");
    let items: Vec<(i32, i32, String)> = c
        .query("SELECT id, n, label FROM items")
        .await
        .expect("read helpdesk items");
    let events: Vec<(i64, String)> = c
        .query("SELECT id, label FROM events")
        .await
        .expect("read helpdesk events");
    c.disconnect().await.ok();
    Snapshot {
        items: items.into_iter().map(|(id, n, l)| (id, (n, l))).collect(),
        events: events.into_iter().collect(),
    }
}

/// The first difference between the two nodes, as a sentence naming table, key, column and values.
pub fn first_difference(crm: &Snapshot, desk: &Snapshot) -> Option<String> {
    fn first<K: Ord + std::fmt::Display, V: PartialEq + std::fmt::Debug>(
        table: &str,
        columns: &dyn Fn(&V, &V) -> String,
        a: &BTreeMap<K, V>,
        b: &BTreeMap<K, V>,
    ) -> Option<String> {
        let keys: BTreeSet<&K> = a.keys().chain(b.keys()).collect();
        keys.into_iter().find_map(|k| match (a.get(k), b.get(k)) {
            (Some(x), Some(y)) if x == y => None,
            (Some(x), Some(y)) => Some(format!("table {table}, key id={k}: {}", columns(x, y))),
            (x, y) => Some(format!(
                "table {table}, key id={k}: crm has {x:?}, helpdesk has {y:?}"
            )),
        })
    }
    let item_columns = |x: &(i32, String), y: &(i32, String)| {
        if x.0 != y.0 {
            format!("column n: crm has {}, helpdesk has {}", x.0, y.0)
        } else {
            format!("column label: crm has {:?}, helpdesk has {:?}", x.1, y.1)
        }
    };
    let event_columns =
        |x: &String, y: &String| format!("column label: crm has {x:?}, helpdesk has {y:?}");
    first("items", &item_columns, &crm.items, &desk.items)
        .or_else(|| first("events", &event_columns, &crm.events, &desk.events))
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
                "{what}: the nodes did not converge within {deadline:?}; first difference: {d}\n{}",
                bookkeeping(p).await
            ),
            Some(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Every committed writer transaction's event is on both nodes, nothing else is, no event conflicted
/// (a transaction applied twice would meet its own event's key: `insert_exists`), and no transaction
/// went to the dead letters.
pub fn assert_exactly_once(
    what: &str,
    reports: &[WriterReport],
    converged: &Snapshot,
    audit: &Audit,
) {
    let committed: BTreeSet<i64> = reports
        .iter()
        .flat_map(|r| r.events.iter().copied())
        .collect();
    let arrived: BTreeSet<i64> = converged.events.keys().copied().collect();
    let lost: Vec<_> = committed.difference(&arrived).take(5).collect();
    let extra: Vec<_> = arrived.difference(&committed).take(5).collect();
    assert!(
        lost.is_empty() && extra.is_empty(),
        "{what}: {} committed transactions, {} events on both nodes; lost events {lost:?}, events no writer committed {extra:?}",
        committed.len(),
        arrived.len()
    );
    if let Some(c) = audit.conflicts.iter().find(|c| c.table != "items") {
        panic!("{what}: a conflict on an insert-only table (a change applied twice?): {c:?}");
    }
    assert!(
        audit.dead_letters.is_empty(),
        "{what}: dead letters: {:?}",
        audit.dead_letters
    );
}

/// One row of `tandem.conflict`, on the node named by `on`.
#[derive(Debug, Clone)]
pub struct AuditRow {
    pub on: Node,
    pub source_node: String,
    pub table: String,
    pub key: String,
    pub kind: String,
    pub decision: String,
    pub rule: String,
    pub state: String,
    pub before: Option<serde_json::Value>,
    pub current: Option<serde_json::Value>,
    pub incoming: Option<serde_json::Value>,
}

impl AuditRow {
    fn label(image: &Option<serde_json::Value>) -> Option<&str> {
        image.as_ref()?.get("label")?.as_str()
    }
}

/// The conflict logs and dead letters of both nodes.
#[derive(Debug, Default)]
pub struct Audit {
    pub conflicts: Vec<AuditRow>,
    pub dead_letters: Vec<String>,
}

type ConflictCols = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn audit_row(on: Node, c: ConflictCols) -> AuditRow {
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    AuditRow {
        on,
        source_node: c.0,
        table: c.1,
        key: c.2,
        kind: c.3,
        decision: c.4,
        rule: c.5,
        state: c.6,
        before: json(c.7),
        current: json(c.8),
        incoming: json(c.9),
    }
}

pub async fn read_audit(p: &Pair) -> Audit {
    const CONFLICTS: &str = "SELECT source_node, table_name, row_key, kind, decision, rule, state";
    let mut audit = Audit::default();
    let c = p.pg.connect("crm").await.expect("connect to crm");
    for r in c
        .query(
            &format!("{CONFLICTS}, before_image::text, current_image::text, incoming_image::text FROM tandem.conflict ORDER BY id"),
            &[],
        )
        .await
        .expect("read crm conflicts")
    {
        let cols: ConflictCols = (
            r.get(0),
            r.get(1),
            r.get(2),
            r.get(3),
            r.get(4),
            r.get(5),
            r.get(6),
            r.get(7),
            r.get(8),
            r.get(9),
        );
        audit.conflicts.push(audit_row(Node::Crm, cols));
    }
    for r in c
        .query("SELECT link, error FROM tandem.dead_letter", &[])
        .await
        .expect("read crm dead letters")
    {
        audit.dead_letters.push(format!(
            "crm: {} {}",
            r.get::<_, String>(0),
            r.get::<_, String>(1)
        ));
    }
    let mut m = p.maria.connect("desk").await.expect("connect to helpdesk");
    let rows: Vec<mysql_async::Row> = m
        .query(format!(
            "{CONFLICTS}, before_image, current_image, incoming_image FROM tandem.conflict ORDER BY id"
        ))
        .await
        .expect("read helpdesk conflicts");
    for mut r in rows {
        let mut s = |i: usize| r.take::<Option<String>, _>(i).flatten();
        let cols: ConflictCols = (
            s(0).unwrap_or_default(),
            s(1).unwrap_or_default(),
            s(2).unwrap_or_default(),
            s(3).unwrap_or_default(),
            s(4).unwrap_or_default(),
            s(5).unwrap_or_default(),
            s(6).unwrap_or_default(),
            s(7),
            s(8),
            s(9),
        );
        audit.conflicts.push(audit_row(Node::Helpdesk, cols));
    }
    let dead: Vec<(String, String)> = m
        .query("SELECT link, error FROM tandem.dead_letter")
        .await
        .expect("read helpdesk dead letters");
    audit
        .dead_letters
        .extend(dead.into_iter().map(|(l, e)| format!("helpdesk: {l} {e}")));
    m.disconnect().await.ok();
    audit
}

/// Every conflict left an audit row, checked where the test knows for sure that a conflict happened.
///
/// Every label is written once, so a row state on either node is named by its label, and each writer
/// records the state its update or delete replaced (read under `FOR UPDATE`, so it is exactly the
/// state overwritten). A state is replaced at most once per node (states never come back: tandem
/// writes only other nodes' states, each once). Now take a state P replaced on crm by write W1 and on
/// helpdesk by write W2. When W1 reached helpdesk, helpdesk no longer held P: had W1 arrived while it
/// did, W1 would have been applied over P and W2 would have replaced W1, not P. So W1's version check
/// on helpdesk must have failed (a differing version, or a missing row), and likewise W2's on crm.
/// Each such write must have an audit row on the other node: from its node, for its key, showing it
/// (its label as the incoming image; for a delete, P as the before-image).
///
/// Writes outside such pairs may conflict too (an insert racing an insert); they are not required to
/// here, but every audit row, whatever its cause, must be complete: a known kind, a decision, the
/// table's rule, resolved, and the images the kind implies.
pub fn assert_conflicts_audited(
    what: &str,
    rule: &str,
    reports: &[WriterReport],
    audit: &Audit,
) -> usize {
    for c in audit.conflicts.iter().filter(|c| c.table == "items") {
        let kinds = [
            "insert_exists",
            "insert_deleted",
            "update_missing",
            "update_differs",
            "delete_missing",
            "delete_differs",
        ];
        let has_before = c.kind.starts_with("update") || c.kind.starts_with("delete");
        let has_current = matches!(
            c.kind.as_str(),
            "insert_exists" | "update_differs" | "delete_differs"
        );
        let has_incoming = !c.kind.starts_with("delete");
        let complete = kinds.contains(&c.kind.as_str())
            && ["apply_incoming", "keep_current", "merge"].contains(&c.decision.as_str())
            && c.rule == rule
            && c.state == "resolved"
            && (!has_before || AuditRow::label(&c.before).is_some())
            && (!has_current || AuditRow::label(&c.current).is_some())
            && (!has_incoming || AuditRow::label(&c.incoming).is_some());
        assert!(
            complete,
            "{what}: an incomplete audit row (rule {rule}): {c:?}"
        );
    }
    let mut by_parent: BTreeMap<(i32, &str), Vec<&ItemWrite>> = BTreeMap::new();
    for w in reports.iter().flat_map(|r| &r.item_writes) {
        by_parent
            .entry((w.key, w.parent.as_str()))
            .or_default()
            .push(w);
    }
    let mut forced = 0;
    for ((key, parent), writes) in &by_parent {
        let nodes: BTreeSet<Node> = writes.iter().map(|w| w.node).collect();
        assert_eq!(
            nodes.len(),
            writes.len(),
            "{what}: state {parent:?} of key {key} was replaced twice on one node: {writes:?}"
        );
        if nodes.len() < 2 {
            continue;
        }
        for w in writes {
            forced += 1;
            let row_key = format!("{{\"id\":\"{key}\"}}");
            let found = audit.conflicts.iter().any(|c| {
                c.on == w.node.other()
                    && c.source_node == w.node.name()
                    && c.table == "items"
                    && c.key == row_key
                    && match &w.label {
                        Some(l) => AuditRow::label(&c.incoming) == Some(l),
                        None => {
                            c.kind.starts_with("delete")
                                && AuditRow::label(&c.before) == Some(parent)
                        }
                    }
            });
            assert!(
                found,
                "{what}: no audit row on {} for {w:?}, although the other node also replaced {parent:?}; audit rows for the key: {:#?}",
                w.node.other().name(),
                audit
                    .conflicts
                    .iter()
                    .filter(|c| c.key == row_key)
                    .collect::<Vec<_>>()
            );
        }
    }
    assert!(
        forced > 0,
        "{what}: the writers never replaced the same row state on both nodes, so this run checked no conflict"
    );
    forced
}

/// Nothing echoes: once the links drain, neither node's log grows.
///
/// A probe slot (`test_decoding`) on crm counts every transaction that changes a row; MariaDB's
/// `@@gtid_binlog_pos` counts every binlog transaction (heartbeats are off). One marker row written on
/// each node drains the links: each log is ordered, so anything in flight before a marker has been
/// applied once the marker is on both nodes. The markers must add exactly two transactions to each
/// log (the local insert and the applied one), and after that the logs must stand still for several
/// polls over some seconds. An echo (tandem sending back what it applied) would be a new transaction.
pub async fn assert_quiet(p: &Pair, what: &str) {
    let slot = unique_name("probe");
    let c = p.pg.connect("crm").await.expect("connect to crm");
    c.query_one(
        "SELECT 1 FROM pg_create_logical_replication_slot($1, 'test_decoding')",
        &[&slot],
    )
    .await
    .expect("create the probe slot");
    let gtid_before = gtid_count(&p.maria).await;
    c.batch_execute(&format!(
        "INSERT INTO items VALUES ({}, 0, 'marker')",
        MARKERS[0]
    ))
    .await
    .expect("crm marker");
    let mut m = p.maria.connect("desk").await.expect("connect to helpdesk");
    m.query_drop(format!(
        "INSERT INTO items VALUES ({}, 0, 'marker')",
        MARKERS[1]
    ))
    .await
    .expect("helpdesk marker");
    m.disconnect().await.ok();
    wait_for(
        "both markers on both nodes",
        Duration::from_secs(60),
        || async {
            let (a, b) = (pg_snapshot(&p.pg).await, maria_snapshot(&p.maria).await);
            MARKERS
                .iter()
                .all(|k| a.items.contains_key(k) && b.items.contains_key(k))
                .then_some(())
        },
    )
    .await;
    let changes = probe_changes(&c, &slot).await;
    let begins = changes.iter().filter(|l| l.starts_with("BEGIN")).count();
    let gtid_after = gtid_count(&p.maria).await;
    assert!(
        begins == 2 && gtid_after.0 == gtid_before.0 + 2,
        "{what}: two markers should add two transactions to each log; crm got {begins}: {changes:#?}; \
         helpdesk's binlog went from {} to {}",
        gtid_before.1,
        gtid_after.1
    );
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = probe_changes(&c, &slot).await;
        assert_eq!(
            now, changes,
            "{what}: crm's log grew after the links drained (an echo)"
        );
        let gtid = gtid_count(&p.maria).await;
        assert_eq!(
            gtid.1, gtid_after.1,
            "{what}: helpdesk's binlog grew after the links drained (an echo)"
        );
    }
    c.query_one("SELECT pg_drop_replication_slot($1)", &[&slot])
        .await
        .expect("drop the probe slot");
}

/// The transactions with row changes that the probe slot has seen (`BEGIN` and `table` lines).
async fn probe_changes(c: &tokio_postgres::Client, slot: &str) -> Vec<String> {
    c.query(
        "SELECT data FROM pg_logical_slot_peek_changes($1, NULL, NULL, 'skip-empty-xacts', '1') \
         WHERE data LIKE 'BEGIN%' OR data LIKE 'table%'",
        &[&slot],
    )
    .await
    .expect("peek the probe slot")
    .iter()
    .map(|r| r.get::<_, String>(0))
    .collect()
}

/// `@@gtid_binlog_pos` as the sum of its sequence numbers, and as text.
async fn gtid_count(maria: &MariaDb) -> (u64, String) {
    let mut m = maria.connect("desk").await.expect("connect to helpdesk");
    let pos: Option<String> = m
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .expect("read gtid_binlog_pos");
    m.disconnect().await.ok();
    let pos = pos.unwrap_or_default();
    let sum = pos
        .split(',')
        .filter_map(|g| g.trim().rsplit('-').next()?.parse::<u64>().ok())
        .sum();
    (sum, pos)
}

/// Starts `tandem run`, and with `TANDEM_CONVERGE_TRACE=DIR` a `tandem tail` of each node writing
/// `DIR/<node>.jsonl`, to replay a divergence.
pub async fn start_run(p: &Pair) -> (tokio::process::Child, Vec<tokio::process::Child>) {
    let mut traces = Vec::new();
    if let Some(dir) = std::env::var_os("TANDEM_CONVERGE_TRACE") {
        for node in ["crm", "helpdesk"] {
            traces.push(start_trace(&p.config, node, std::path::Path::new(&dir)).await);
        }
    }
    (start_tandem_run(&p.config, 2).await, traces)
}

/// Stops `tandem run` with SIGTERM and checks it exits cleanly.
pub async fn stop_run(mut tandem: tokio::process::Child) {
    let pid = tandem.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), tandem.wait())
        .await
        .expect("tandem run stops on SIGTERM")
        .expect("wait for tandem run");
    assert!(status.success(), "tandem run exited with {status}");
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
