//! `tandem setup` on one node: the bookkeeping schema, the managed columns and triggers (apply), then
//! what capture needs (PostgreSQL publication and slots). Before any node is changed,
//! [`unmet_prerequisites`] checks every node's server settings and privileges, so that a setup that
//! cannot finish changes nothing anywhere.

use crate::capture;
use crate::config::{Config, Engine, Node};

/// Every unmet server prerequisite of `nodes`, each naming the node, the setting and the fix (the
/// same checks `tandem check` makes). Empty: setup can run.
pub async fn unmet_prerequisites(config: &Config, nodes: &[&Node]) -> Vec<String> {
    let checks = nodes.iter().map(|node| async move {
        let scrub = |m: &str| crate::config::scrub(m, &node.url);
        match node.engine {
            // Server settings only: the per-table replica identity is what setup itself installs.
            Engine::Postgres => capture::postgres::check_prerequisites(node.url.expose(), &[])
                .await
                .into_iter()
                .map(|p| format!("node {}: {}", node.id, scrub(&p.to_string())))
                .collect::<Vec<_>>(),
            Engine::Mysql => {
                let mapped: Vec<_> = config.tables_on(&node.id);
                capture::mysql::check_prerequisites(node.url.expose(), &mapped)
                    .await
                    .into_iter()
                    .filter(|p| p.severity == capture::mysql::Severity::Error)
                    .map(|p| format!("node {}: {}", node.id, scrub(&p.to_string())))
                    .collect()
            }
        }
    });
    futures_util::future::join_all(checks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// The statements run (or, dry, to run) on one node.
pub async fn setup_node(
    config: &Config,
    node: &Node,
    dry_run: bool,
) -> Result<Vec<String>, String> {
    let scrub = |e: &dyn std::fmt::Display| crate::config::scrub(&e.to_string(), &node.url);
    // Bookkeeping first: the publication includes its checkpoint table.
    let mut statements = crate::apply::setup(config, &node.id, dry_run)
        .await
        .map_err(|e| scrub(&e))?;
    statements.extend(setup_capture(config, node, dry_run).await?);
    Ok(statements)
}

async fn setup_capture(config: &Config, node: &Node, dry_run: bool) -> Result<Vec<String>, String> {
    let mapped = capture::capture_tables(config, node);
    match node.engine {
        Engine::Postgres => {
            let slots: Vec<capture::postgres::Slot> = config
                .nodes
                .keys()
                .filter(|t| **t != node.id)
                .map(|t| capture::postgres::Slot::for_link(&node.id, t))
                .collect();
            capture::postgres::setup(
                node.url.expose(),
                &capture::publication_name(config),
                &mapped,
                &slots,
                dry_run,
            )
            .await
            .map_err(|e| crate::config::scrub(&e.to_string(), &node.url))
        }
        // A binlog reader needs no objects on the server; its prerequisites were checked up front.
        Engine::Mysql => Ok(Vec::new()),
    }
}

/// Seeds, on every node, the checkpoint of each incoming link whose source is MySQL/MariaDB with the
/// source's current binlog position (see `apply::seed`). Returns `(node, statement)` pairs.
pub async fn seed_checkpoints(
    config: &Config,
    only: Option<&str>,
    dry_run: bool,
) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    // A link out of the `[copy] from` node starts where its copy's snapshot is taken instead.
    let copies = |n: &Node| config.copy.as_ref().is_some_and(|c| c.from == n.id);
    for source in config
        .nodes
        .values()
        .filter(|n| n.engine == Engine::Mysql && !copies(n))
    {
        let position = capture::mysql::current_position(source.url.expose())
            .await
            .map_err(|e| {
                format!(
                    "node {}: reading the binlog position: {}",
                    source.id,
                    crate::config::scrub(&e.to_string(), &source.url)
                )
            })?;
        for target in config
            .nodes
            .values()
            .filter(|t| t.id != source.id && only.is_none_or(|o| o == t.id))
        {
            let sql = crate::apply::seed::statement(config, target, &source.id, &position);
            if !dry_run {
                crate::apply::seed::run(target, &sql)
                    .await
                    .map_err(|e| format!("node {}: {e}", target.id))?;
            }
            out.push((target.id.clone(), sql));
        }
    }
    Ok(out)
}
