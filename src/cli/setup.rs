//! `tandem setup`: create on every node what the links need, idempotently; `--dry-run` prints the SQL
//! instead of running it.

use std::process::ExitCode;

use clap::Args;

use super::{load_config, ConfigArg};
use crate::capture::{self, link_name};
use crate::config::{Config, Engine, Node};

#[derive(Debug, Args)]
pub struct SetupArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this node (default: every node).
    #[arg(long)]
    pub node: Option<String>,
    /// Print every statement instead of running it.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: SetupArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let nodes: Vec<&Node> = match &args.node {
        Some(id) => match config.node(id) {
            Some(n) => vec![n],
            None => {
                eprintln!("error: no node {id:?} in {}", args.config.path.display());
                return ExitCode::from(2);
            }
        },
        None => config.nodes.values().collect(),
    };
    let mut failed = false;
    for node in nodes {
        println!("-- node {} ({}, {})", node.id, node.engine.name(), node.url);
        match setup_node(&config, node, args.dry_run).await {
            Ok(statements) if statements.is_empty() => println!("-- nothing to do"),
            Ok(statements) => {
                for s in statements {
                    println!("{s};");
                }
            }
            Err(message) => {
                eprintln!("error: node {}: {message}", node.id);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The statements run (or, dry, to run) on one node.
async fn setup_node(config: &Config, node: &Node, dry_run: bool) -> Result<Vec<String>, String> {
    let mapped: Vec<_> = config
        .tables
        .iter()
        .filter_map(|t| t.physical.get(&node.id).cloned())
        .collect();
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
