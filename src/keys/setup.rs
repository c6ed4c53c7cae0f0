//! Reading every node's generators, and making them disjoint (`tandem setup`) or refusing to start
//! while they are not (`tandem run`).
//!
//! ```text
//!  read_all(config) ─> NodeGenerators ─> plan ─> apply per node ─> read_all again ─> analyze
//! ```
//!
//! Error handling: setup stops at the first statement that fails and names the node, the statement
//! and the fix; a MySQL/MariaDB account without the privilege to `SET GLOBAL` gets the statements to
//! hand to an administrator and the my.cnf lines. At `run` start, a node that cannot be read is
//! logged and skipped (its links retry their connections as always); a collision refuses the start.

use super::{analyze, mycnf, plan, Action, NodeGenerators};
use crate::catalog;
use crate::config::{scrub, Config, Node, Problem, Severity};

/// One statement setup ran (or, dry, would run) on a node, with a note for the person reading.
#[derive(Debug, Clone)]
pub struct Applied {
    pub node: String,
    pub sql: String,
    pub note: Option<String>,
}

async fn read_node(config: &Config, node: &Node) -> Result<catalog::TableGenerators, String> {
    let tables: Vec<_> = config.tables_on(&node.id);
    catalog::read_generators(node, &tables)
        .await
        .map_err(|e| e.to_string())
}

/// Makes the generators of every two-way key column disjoint on `only` (default: every node, and
/// then it checks that they are).
pub async fn setup(
    config: &Config,
    only: Option<&str>,
    dry_run: bool,
) -> Result<Vec<Applied>, String> {
    let mut generators = NodeGenerators::new();
    for node in config.nodes.values() {
        generators.insert(node.id.clone(), read_node(config, node).await?);
    }
    let fixes: Vec<_> = plan(config, &generators)
        .into_iter()
        .filter(|f| only.is_none_or(|o| o == f.node))
        .collect();
    let mut applied: Vec<Applied> = Vec::new();
    for fix in &fixes {
        let Some(node) = config.node(&fix.node) else {
            continue;
        };
        for sql in fix.statements() {
            // One SET GLOBAL per server is enough when several tables share it.
            if applied.iter().any(|a| a.node == fix.node && a.sql == sql) {
                continue;
            }
            let note = match &fix.action {
                Action::AutoIncrement { slot, .. } if sql.starts_with("SET GLOBAL") => {
                    Some(format!(
                    "SET GLOBAL does not survive a restart of the server: add to its my.cnf\n{}",
                    mycnf(*slot)
                ))
                }
                _ => None,
            };
            if !dry_run {
                crate::connect::execute(node, &sql).await.map_err(|e| {
                    let remedy = match &fix.action {
                        Action::AutoIncrement { .. } => format!(
                            "; have an administrator run {}, or give the account SYSTEM_VARIABLES_ADMIN (MySQL) / SUPER (MariaDB), and run setup again",
                            fix.advice()
                        ),
                        Action::Sequence { .. } => format!(
                            "; the account must own the sequence: have its owner run {}",
                            fix.advice()
                        ),
                    };
                    format!(
                        "node {}: making the keys of {} disjoint ({sql}) failed: {}{remedy}",
                        node.id,
                        fix.table,
                        scrub(&e, &node.url)
                    )
                })?;
            }
            applied.push(Applied {
                node: fix.node.clone(),
                sql,
                note,
            });
        }
    }
    // With `--node`, the other nodes' shares are still to come (`tandem check` reports them until then).
    if !dry_run && !fixes.is_empty() && only.is_none() {
        // What the servers now say: two MySQL/MariaDB nodes on one server share the globals.
        let mut after = NodeGenerators::new();
        for node in config.nodes.values() {
            after.insert(node.id.clone(), read_node(config, node).await?);
        }
        let left: Vec<String> = analyze(config, &after)
            .into_iter()
            .map(|p| format!("{}: {}; {}", p.path, p.message, p.fix))
            .collect();
        if !left.is_empty() {
            return Err(format!(
                "the key generators still collide after setup (nodes on the same MySQL/MariaDB server share its globals: give each its own server): {}",
                left.join(" | ")
            ));
        }
    }
    Ok(applied)
}

/// The collisions that should refuse `tandem run`'s start (a MySQL/MariaDB server restarted without
/// the my.cnf lines has lost its share). Nodes that cannot be read now are skipped with a warning.
pub async fn refusals_at_start(config: &Config) -> Vec<Problem> {
    let (collisions, unread) = collisions(config).await;
    for (node, error) in unread {
        tracing::warn!(
            node = %node,
            %error,
            "could not read the key generators; not checked at start"
        );
    }
    collisions
}

/// The generators of every node that can be read now that can hand out another node's keys, and
/// the nodes that could not be read, with the error (`run` warns of them, `cutover` refuses).
pub async fn collisions(config: &Config) -> (Vec<Problem>, Vec<(String, String)>) {
    let mut generators = NodeGenerators::new();
    let mut unread = Vec::new();
    for node in config.nodes.values() {
        match read_node(config, node).await {
            Ok(g) => {
                generators.insert(node.id.clone(), g);
            }
            Err(error) => unread.push((node.id.clone(), scrub(&error, &node.url))),
        }
    }
    let collisions = analyze(config, &generators)
        .into_iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    (collisions, unread)
}
