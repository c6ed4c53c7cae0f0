//! `tandem setup` on one node: the bookkeeping schema, the managed columns and triggers (apply), then
//! what capture needs (PostgreSQL publication and slots; MySQL/MariaDB prerequisites).

use crate::capture::{self, link_name};
use crate::config::{Config, Engine, Node};

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
            let slots: Vec<String> = config
                .nodes
                .keys()
                .filter(|t| **t != node.id)
                .map(|t| capture::postgres::slot_name(&link_name(&node.id, t)))
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
        Engine::Mysql => {
            // A binlog reader needs no objects on the server; its prerequisites are checked instead.
            // A dry run has not created the bookkeeping tables its reader will capture: those are
            // left out rather than reported missing.
            let mapped: Vec<_> = mapped
                .into_iter()
                .filter(|t| !dry_run || *t.schema != *config.settings.schema)
                .collect();
            let problems = capture::mysql::check_prerequisites(node.url.expose(), &mapped).await;
            let errors: Vec<String> = problems
                .iter()
                .filter(|p| p.severity == capture::mysql::Severity::Error)
                .map(|p| format!("{p}"))
                .collect();
            if errors.is_empty() {
                Ok(Vec::new())
            } else {
                Err(errors.join("; "))
            }
        }
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
