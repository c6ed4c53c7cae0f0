//! `tandem conflicts` and `tandem dead-letter`: what tandem did not apply as-is, across every node, and
//! the operator's answers to it.

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

use super::{load_config, ConfigArg, OutputFormat};
use crate::apply::{self, Resolution, Signature};
use crate::config::Config;

#[derive(Debug, Args)]
pub struct ConflictsArgs {
    #[command(subcommand)]
    pub command: ConflictsCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConflictsCommand {
    /// List conflict records, newest first, on every node (or one).
    List(ListArgs),
    /// Show one conflict record in full: before, current and incoming images, decision and rule.
    Show(ShowArgs),
    /// Resolve a parked conflict: take the incoming change, keep the current row, or write values.
    Resolve(ResolveArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this node.
    #[arg(long)]
    pub node: Option<String>,
    /// Only this business table.
    #[arg(long)]
    pub table: Option<String>,
    /// Only this kind (insert_exists, update_missing, update_differs, delete_missing, delete_differs,
    /// not_owner, queued, truncate).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only this state (resolved, parked, waiting, deferred).
    #[arg(long)]
    pub state: Option<String>,
    /// Only open entries (parked, waiting, deferred).
    #[arg(long)]
    pub open: bool,
    /// At most this many per node.
    #[arg(long, default_value_t = 100)]
    pub limit: i64,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The node that holds the record.
    #[arg(long)]
    pub node: String,
    pub id: i64,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Take {
    Incoming,
    Current,
}

#[derive(Debug, Args)]
pub struct ResolveArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The node that holds the parked conflict.
    #[arg(long)]
    pub node: String,
    pub id: i64,
    /// Take the incoming change or keep the current row.
    #[arg(long, value_enum, conflicts_with_all = ["set", "set_null"])]
    pub take: Option<Take>,
    /// Write this value (target column name = text value); repeatable.
    #[arg(long, value_name = "COLUMN=VALUE")]
    pub set: Vec<String>,
    /// Write NULL into this column; repeatable.
    #[arg(long, value_name = "COLUMN")]
    pub set_null: Vec<String>,
    /// Why: written into the conflict's audit record.
    #[arg(long, default_value = "")]
    pub note: String,
    /// Who resolves it (written into the audit record); default: $USER.
    #[arg(long, env = "USER", default_value = "")]
    pub by: String,
}

pub async fn run(args: ConflictsArgs) -> ExitCode {
    match args.command {
        ConflictsCommand::List(a) => list(a).await,
        ConflictsCommand::Show(a) => show(a).await,
        ConflictsCommand::Resolve(a) => resolve(a).await,
    }
}

fn nodes<'a>(config: &'a Config, only: &'a Option<String>) -> Result<Vec<&'a str>, ExitCode> {
    match only {
        Some(n) if config.node(n).is_none() => {
            eprintln!("error: no node {n:?} in the file");
            Err(ExitCode::from(2))
        }
        Some(n) => Ok(vec![n.as_str()]),
        None => Ok(config.nodes.keys().map(String::as_str).collect()),
    }
}

async fn list(a: ListArgs) -> ExitCode {
    let config = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let nodes = match nodes(&config, &a.node) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let mut failed = false;
    let mut all = Vec::new();
    for node in nodes {
        match apply::list_conflicts(&config, node, a.open, a.limit).await {
            Ok(entries) => all.extend(entries.into_iter().map(|e| (node.to_string(), e))),
            Err(e) => {
                eprintln!("error: node {node}: {e}");
                failed = true;
            }
        }
    }
    all.retain(|(_, e)| {
        a.table.as_ref().is_none_or(|t| *t == e.record.table)
            && a.kind.as_ref().is_none_or(|k| *k == e.record.kind)
            && a.state
                .as_ref()
                .is_none_or(|s| *s == e.record.state.as_str())
    });
    match a.format {
        OutputFormat::Json => {
            for (node, e) in &all {
                let mut doc = serde_json::to_value(e).unwrap_or_default();
                if let Some(m) = doc.as_object_mut() {
                    m.insert("node".into(), serde_json::Value::String(node.clone()));
                }
                println!("{doc}");
            }
        }
        OutputFormat::Text => {
            println!(
                "{:<10} {:>6}  {:<16} {:<18} {:<15} {:<9} {:<20} KEY",
                "NODE", "ID", "TABLE", "KIND", "DECISION", "STATE", "DETECTED"
            );
            for (node, e) in &all {
                let r = &e.record;
                println!(
                    "{node:<10} {:>6}  {:<16} {:<18} {:<15} {:<9} {:<20} {}",
                    e.id,
                    r.table,
                    r.kind,
                    r.decision,
                    r.state.as_str(),
                    e.detected_at.chars().take(19).collect::<String>(),
                    r.key
                );
            }
            println!("{} conflict record(s)", all.len());
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn show(a: ShowArgs) -> ExitCode {
    let config = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match apply::show_conflict(&config, &a.node, a.id).await {
        Ok(Some(e)) => {
            println!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
            ExitCode::SUCCESS
        }
        Ok(None) => {
            eprintln!("error: no conflict with id {} on node {}", a.id, a.node);
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("error: node {}: {e}", a.node);
            ExitCode::from(1)
        }
    }
}

async fn resolve(a: ResolveArgs) -> ExitCode {
    let resolution = match (a.take, a.set.is_empty() && a.set_null.is_empty()) {
        (Some(Take::Incoming), _) => Resolution::TakeIncoming,
        (Some(Take::Current), _) => Resolution::KeepCurrent,
        (None, false) => {
            let mut values = BTreeMap::new();
            for s in &a.set {
                let Some((column, value)) = s.split_once('=') else {
                    eprintln!("error: --set takes COLUMN=VALUE, got {s:?}");
                    return ExitCode::from(2);
                };
                values.insert(column.to_string(), Some(value.to_string()));
            }
            for column in &a.set_null {
                values.insert(column.clone(), None);
            }
            Resolution::Values(values)
        }
        (None, true) => {
            eprintln!(
                "error: say how to resolve: --take incoming, --take current, or --set COLUMN=VALUE"
            );
            return ExitCode::from(2);
        }
    };
    let config = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let signature = Signature {
        by: a.by.clone(),
        note: a.note.clone(),
    };
    match apply::resolve_conflict(&config, &a.node, a.id, &resolution, &signature).await {
        Ok(()) => {
            println!(
                "resolved conflict {} on node {}; the result replicates like any other change",
                a.id, a.node
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: node {}: {e}", a.node);
            ExitCode::from(1)
        }
    }
}

#[derive(Debug, Args)]
pub struct DeadLetterArgs {
    #[command(subcommand)]
    pub command: DeadLetterCommand,
}

#[derive(Debug, Subcommand)]
pub enum DeadLetterCommand {
    /// List dead-lettered transactions on every node (or one).
    List(DeadListArgs),
    /// Apply a dead-lettered transaction again (after fixing its cause).
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct DeadListArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long)]
    pub node: Option<String>,
    /// Include replayed entries.
    #[arg(long)]
    pub all: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    #[arg(long)]
    pub node: String,
    pub id: i64,
}

pub async fn run_dead_letter(args: DeadLetterArgs) -> ExitCode {
    match args.command {
        DeadLetterCommand::List(a) => dead_list(a).await,
        DeadLetterCommand::Replay(a) => replay(a).await,
    }
}

async fn dead_list(a: DeadListArgs) -> ExitCode {
    let config = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let nodes = match nodes(&config, &a.node) {
        Ok(n) => n,
        Err(code) => return code,
    };
    let mut failed = false;
    let mut count = 0;
    if a.format == OutputFormat::Text {
        println!(
            "{:<10} {:>6}  {:<22} {:<9} {:>8}  ERROR",
            "NODE", "ID", "LINK", "STATE", "ATTEMPTS"
        );
    }
    for node in nodes {
        match apply::list_dead_letters(&config, node, !a.all).await {
            Ok(letters) => {
                for d in letters {
                    count += 1;
                    match a.format {
                        OutputFormat::Json => println!(
                            "{}",
                            serde_json::json!({"node": node, "id": d.id, "link": d.link, "source_position": d.source_position,
                                               "error": d.error, "attempts": d.attempts, "state": d.state})
                        ),
                        OutputFormat::Text => {
                            println!(
                                "{node:<10} {:>6}  {:<22} {:<9} {:>8}  {}",
                                d.id, d.link, d.state, d.attempts, d.error
                            )
                        }
                    }
                }
            }
            Err(e) => {
                eprintln!("error: node {node}: {e}");
                failed = true;
            }
        }
    }
    if a.format == OutputFormat::Text {
        println!("{count} dead letter(s)");
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

async fn replay(a: ReplayArgs) -> ExitCode {
    let config = match load_config(&a.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match apply::replay_dead_letter(&config, &a.node, a.id).await {
        Ok(()) => {
            println!("replayed dead letter {} on node {}", a.id, a.node);
            ExitCode::SUCCESS
        }
        Err(e) => {
            match e.left() {
                Some(left) => eprintln!("error: node {}: {e}; {left}", a.node),
                None => eprintln!("error: node {}: {e}", a.node),
            }
            ExitCode::from(1)
        }
    }
}
