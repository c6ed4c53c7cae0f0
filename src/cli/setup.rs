//! `tandem setup`: create on every node what the links need, idempotently; `--dry-run` prints the SQL
//! instead of running it.

use std::process::ExitCode;

use clap::Args;

use super::{load_config, ConfigArg};
use crate::config::Node;

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
    let unmet = crate::setup::unmet_prerequisites(&config, &nodes).await;
    if !unmet.is_empty() {
        for problem in &unmet {
            eprintln!("error: {problem}");
        }
        eprintln!(
            "error: setup changed nothing: fix the {} problem(s) above and run it again",
            unmet.len()
        );
        return ExitCode::from(1);
    }
    let mut failed = false;
    for node in nodes {
        println!("-- node {} ({}, {})", node.id, node.engine.name(), node.url);
        match crate::setup::setup_node(&config, node, args.dry_run).await {
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
    if !failed {
        match crate::keys::setup(&config, args.node.as_deref(), args.dry_run).await {
            Ok(applied) => {
                for a in applied {
                    println!(
                        "-- node {}: key generators of two-way tables made disjoint",
                        a.node
                    );
                    println!("{};", a.sql);
                    if let Some(note) = a.note {
                        for line in note.lines() {
                            println!("-- {line}");
                        }
                    }
                }
            }
            Err(message) => {
                eprintln!("error: {message}");
                failed = true;
            }
        }
    }
    if !failed {
        match crate::setup::seed_checkpoints(&config, args.node.as_deref(), args.dry_run).await {
            Ok(seeds) => {
                for (node, sql) in seeds {
                    println!(
                        "-- node {node}: where the link from a MySQL/MariaDB source starts\n{sql};"
                    );
                }
            }
            Err(message) => {
                eprintln!("error: {message}");
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
