//! `tandem check`: is this pairing safe to run?

use std::process::ExitCode;

use clap::Args;

use super::{ConfigArg, OutputFormat};
use crate::capture;
use crate::catalog;
use crate::config::{scrub, Config, Engine, Node, Problem, Severity};
use crate::mapping::check::{self, NodeSchemas};
use crate::model::TableRef;

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Report format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Check the file alone, without connecting to any node.
    #[arg(long)]
    pub offline: bool,
}

pub async fn run(args: CheckArgs) -> ExitCode {
    let (problems, summary) = match Config::load(&args.config.path) {
        Ok((config, mut warnings)) => {
            if !args.offline {
                warnings.extend(live_problems(&config).await);
            }
            let summary = format!(
                "{}: {} node(s), {} table(s), {} link(s)",
                args.config.path.display(),
                config.nodes.len(),
                config.tables.len(),
                config.links().len()
            );
            (warnings, Some(summary))
        }
        Err(e) => (e.problems, None),
    };
    report(&problems, summary.as_deref(), args.format);
    if problems.iter().any(|p| p.severity == Severity::Error) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Holds the file against every node's live schema.
async fn live_problems(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut schemas = NodeSchemas::new();
    for node in config.nodes.values() {
        let tables: Vec<_> = config
            .tables
            .iter()
            .filter_map(|t| t.physical.get(&node.id).cloned())
            .collect();
        match catalog::read_tables(node, &tables).await {
            Ok(s) => {
                schemas.insert(node.id.clone(), s);
                problems.extend(prerequisites(node, &tables).await);
            }
            Err(e) => problems.push(Problem::error(
                format!("nodes.{}.url", node.id),
                e.to_string(),
                format!(
                    "make sure {} is running and reachable at {}, and the credentials are right",
                    node.engine.name(),
                    node.url
                ),
            )),
        }
    }
    problems.extend(check::analyze(config, &schemas));
    problems
}

/// The server settings and privileges capture needs, from each engine's own check.
async fn prerequisites(node: &Node, tables: &[TableRef]) -> Vec<Problem> {
    let path = format!("nodes.{}", node.id);
    match node.engine {
        Engine::Postgres => capture::postgres::check_prerequisites(node.url.expose(), tables)
            .await
            .into_iter()
            .map(|p| Problem::error(&path, scrub(&p.message, &node.url), p.fix))
            .collect(),
        Engine::Mysql => capture::mysql::check_prerequisites(node.url.expose(), tables)
            .await
            .into_iter()
            .map(|p| {
                let message = scrub(&p.message, &node.url);
                match p.severity {
                    capture::mysql::Severity::Error => Problem::error(&path, message, p.fix),
                    capture::mysql::Severity::Warning => Problem::warning(&path, message, p.fix),
                }
            })
            .collect(),
    }
}

fn report(problems: &[Problem], summary: Option<&str>, format: OutputFormat) {
    let errors = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .count();
    let warnings = problems.len() - errors;
    match format {
        OutputFormat::Json => {
            let doc = serde_json::json!({
                "ok": errors == 0,
                "errors": errors,
                "warnings": warnings,
                "problems": problems,
            });
            println!("{doc}");
        }
        OutputFormat::Text => {
            for p in problems {
                println!("{p}");
            }
            match summary {
                Some(s) if errors == 0 => println!("ok: {s} ({warnings} warning(s))"),
                _ => println!(
                    "{errors} error(s), {warnings} warning(s): the file is not safe to run"
                ),
            }
        }
    }
}
