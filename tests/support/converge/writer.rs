//! The writers: random inserts, updates and deletes of a few contested keys, each transaction with
//! one insert-only event, on both nodes at once, surviving their server's restarts.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mysql_async::prelude::Queryable;

use super::{Node, Rng, KEYS};
use crate::support::{wait_for, Pair};

/// How the writers run.
#[derive(Clone)]
pub struct Load {
    /// Writers per node; their seeds derive from `seed`.
    pub per_node: i64,
    pub seed: u64,
    pub deletes: bool,
    /// Each writer stops after this many transactions, or earlier when `stop` is set.
    pub ops: usize,
    pub stop: Arc<AtomicBool>,
    /// Pause up to this many milliseconds between transactions, so that writes keep crossing while
    /// the links apply (a sustained load rather than one burst).
    pub pace_ms: u64,
}

/// An update or delete of an existing row, as its writer's transaction saw it (row locked).
#[derive(Debug, Clone)]
pub struct ItemWrite {
    pub node: Node,
    pub key: i32,
    /// The label of the row state this write replaced.
    pub parent: String,
    /// That state's version (`_tandem_version`), as text.
    pub parent_version: String,
    /// The label written; `None` for a delete.
    pub label: Option<String>,
}

/// What one writer committed.
#[derive(Debug, Default)]
pub struct WriterReport {
    pub events: Vec<i64>,
    pub item_writes: Vec<ItemWrite>,
    /// Transactions that did not commit (rolled back, or lost with their connection).
    pub failed: u32,
    /// Commits whose reply was lost, settled by reading the event back.
    pub in_doubt: u32,
}

/// Starts `load.per_node` writers on each node.
pub fn spawn_writers(p: &Pair, load: &Load) -> Vec<tokio::task::JoinHandle<WriterReport>> {
    let mut handles = Vec::new();
    for writer in 0..load.per_node {
        for node in [Node::Crm, Node::Helpdesk] {
            let url = match node {
                Node::Crm => p.pg.url("crm"),
                Node::Helpdesk => p.maria.url("desk"),
            };
            let seed = Rng(load.seed ^ (writer as u64 * 2 + node as u64 + 1)).next();
            handles.push(tokio::spawn(run_writer(
                node,
                url,
                writer,
                seed,
                load.clone(),
            )));
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

/// One writer. Event ids are `node * 10^9 + writer * 10^6 + i`, labels `<node>-<writer>-<i>`: both
/// unique in the run. A failed transaction (deadlock, server restarting) is counted and the writer
/// goes on with a new connection; a commit whose reply was lost is settled by looking its event up
/// once the server answers again.
async fn run_writer(node: Node, url: String, writer: i64, seed: u64, load: Load) -> WriterReport {
    let mut report = WriterReport::default();
    let mut rng = Rng(seed);
    let mut conn = Conn::reopen(node, &url).await;
    let base = match node {
        Node::Crm => 1_000_000_000,
        Node::Helpdesk => 2_000_000_000,
    } + writer * 1_000_000;
    for i in 0..load.ops {
        if load.stop.load(Ordering::Relaxed) {
            break;
        }
        let key = (rng.below(KEYS) + 1) as i32;
        let label = format!("{}-{writer}-{i}", node.name());
        let op = match rng.below(if load.deletes { 10 } else { 9 }) {
            0..=3 => Op::Insert,
            4..=8 => Op::Update,
            _ => Op::Delete,
        };
        let event = base + i as i64;
        let committed = match conn.write(node, op, key, &label, event).await {
            Ok(item) => Some(item),
            Err(Failure::Before) => {
                conn = Conn::reopen(node, &url).await;
                None
            }
            Err(Failure::AtCommit(item)) => {
                report.in_doubt += 1;
                let found = loop {
                    conn = Conn::reopen(node, &url).await;
                    if let Ok(found) = conn
                        .label(&format!("SELECT label FROM events WHERE id = {event}"))
                        .await
                    {
                        break found.is_some();
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
        if load.pace_ms > 0 {
            tokio::time::sleep(Duration::from_millis(rng.below(load.pace_ms + 1))).await;
        }
    }
    report
}

#[derive(Clone, Copy)]
enum Op {
    Insert,
    Update,
    Delete,
}

/// Why a transaction did not commit for sure.
enum Failure {
    /// Failed before the commit was sent: rolled back.
    Before,
    /// The commit itself failed: it may have committed (the item write is known either way).
    AtCommit(Option<ItemWrite>),
}

/// A writer's connection. Statements carry their values as literals (all generated here: integers
/// and labels of `[a-z0-9-]`), so one text serves both engines.
enum Conn {
    Pg(tokio_postgres::Client),
    My(mysql_async::Conn),
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

    async fn exec(&mut self, sql: &str) -> Result<(), ()> {
        match self {
            Conn::Pg(c) => c.batch_execute(sql).await.map_err(drop),
            Conn::My(c) => c.query_drop(sql).await.map_err(drop),
        }
    }

    /// The first column of the first row `sql` returns, as text.
    async fn label(&mut self, sql: &str) -> Result<Option<String>, ()> {
        match self {
            Conn::Pg(c) => {
                Ok(c.simple_query(sql)
                    .await
                    .map_err(drop)?
                    .iter()
                    .find_map(|m| match m {
                        tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                        _ => None,
                    }))
            }
            Conn::My(c) => c.query_first(sql).await.map_err(drop),
        }
    }

    /// One writer transaction: the item change (for an update or delete, of the row as locked) and
    /// the event. Returns the update or delete it made, if any.
    async fn write(
        &mut self,
        node: Node,
        op: Op,
        key: i32,
        label: &str,
        event: i64,
    ) -> Result<Option<ItemWrite>, Failure> {
        let before = |_| Failure::Before;
        self.exec("BEGIN").await.map_err(before)?;
        let mut item = None;
        if let Op::Insert = op {
            let sql = match node {
                Node::Crm => format!(
                    "INSERT INTO items (id, n, label) VALUES ({key}, 0, '{label}') ON CONFLICT (id) DO NOTHING"
                ),
                Node::Helpdesk => {
                    format!("INSERT IGNORE INTO items (id, n, label) VALUES ({key}, 0, '{label}')")
                }
            };
            self.exec(&sql).await.map_err(before)?;
        } else if let Some((parent, parent_version)) = self
            .label(&format!(
                "SELECT CONCAT(label, '@', _tandem_version) FROM items WHERE id = {key} FOR UPDATE"
            ))
            .await
            .map_err(before)?
            .and_then(|s| {
                let (l, v) = s.rsplit_once('@')?;
                Some((l.to_string(), v.to_string()))
            })
        {
            let sql = match op {
                Op::Update => {
                    format!("UPDATE items SET n = n + 1, label = '{label}' WHERE id = {key}")
                }
                _ => format!("DELETE FROM items WHERE id = {key}"),
            };
            self.exec(&sql).await.map_err(before)?;
            item = Some(ItemWrite {
                node,
                key,
                parent,
                parent_version,
                label: matches!(op, Op::Update).then(|| label.to_string()),
            });
        }
        self.exec(&format!(
            "INSERT INTO events (id, label) VALUES ({event}, '{label}')"
        ))
        .await
        .map_err(before)?;
        match self.exec("COMMIT").await {
            Ok(()) => Ok(item),
            Err(()) => Err(Failure::AtCommit(item)),
        }
    }
}
