//! `tandem check`: is this pairing safe to run?

use std::process::ExitCode;

use clap::Args;

use super::{ConfigArg, OutputFormat};
use crate::apply::setup::Footprint;
use crate::capture;
use crate::catalog;
use crate::config::{scrub, Config, Engine, Node, Problem, Severity};
use crate::mapping::check::{self, NodeSchemas};
use crate::mapping::{sample, Mapper};
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
    /// Also read N rows of each mapped table on each node, map them to every other node, and report
    /// what the target would reject. Writes nothing.
    #[arg(long, value_name = "N", conflicts_with = "offline")]
    pub sample: Option<u32>,
}

pub async fn run(args: CheckArgs) -> ExitCode {
    let (problems, summary, footprint) = match Config::load(&args.config.path) {
        Ok((config, mut warnings)) => {
            if !args.offline {
                warnings.extend(live_problems(&config, args.sample.unwrap_or(0)).await);
            }
            let summary = format!(
                "{}: {} node(s), {} table(s), {} link(s)",
                args.config.path.display(),
                config.nodes.len(),
                config.tables.len(),
                config.links().len()
            );
            (
                warnings,
                Some(summary),
                crate::apply::setup::footprint(&config),
            )
        }
        Err(e) => (e.problems, None, Vec::new()),
    };
    report(&problems, &footprint, summary.as_deref(), args.format);
    if problems.iter().any(|p| p.severity == Severity::Error) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Holds the file against every node's live schema.
async fn live_problems(config: &Config, sample: u32) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut schemas = NodeSchemas::new();
    let mut generators = crate::keys::NodeGenerators::new();
    for node in config.nodes.values() {
        let tables: Vec<_> = config.tables_on(&node.id);
        match catalog::read_tables(node, &tables).await {
            Ok(s) => {
                schemas.insert(node.id.clone(), s);
                problems.extend(prerequisites(node, &tables).await);
                match catalog::read_generators(node, &tables).await {
                    Ok(g) => {
                        generators.insert(node.id.clone(), g);
                    }
                    Err(e) => problems.push(Problem::warning(
                        format!("nodes.{}", node.id),
                        format!("could not read the key generators: {e}"),
                        "grant the account SELECT on the tables and their sequences",
                    )),
                }
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
    problems.extend(crate::keys::analyze(config, &generators));
    if sample > 0 {
        problems.extend(sample_problems(config, &schemas, sample).await);
    }
    problems
}

/// The sample dry run: each node's rows mapped onto every other node's schema.
async fn sample_problems(config: &Config, schemas: &NodeSchemas, limit: u32) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (i, table) in config.tables.iter().enumerate() {
        let path = format!("tables[{i}]");
        let schema_of = |node: &str| {
            schemas
                .get(node)
                .and_then(|s| s.get(table.physical.get(node)?))
                .and_then(Option::as_ref)
        };
        for source in config.nodes.values() {
            let Some(source_schema) = schema_of(&source.id) else {
                continue;
            };
            let rows = match catalog::sample_rows(source, source_schema, limit).await {
                Ok(r) => r,
                Err(e) => {
                    problems.push(Problem::warning(
                        &path,
                        format!("could not sample {}: {e}", source_schema.table),
                        "",
                    ));
                    continue;
                }
            };
            for target in config.nodes.values().filter(|t| t.id != source.id) {
                let Some(target_schema) = schema_of(&target.id) else {
                    continue;
                };
                let mapper = Mapper::new(config, &source.id, &target.id);
                problems.extend(sample::analyze(
                    &path,
                    &mapper,
                    &source_schema.table,
                    &rows,
                    target_schema,
                    target.engine,
                ));
            }
        }
    }
    problems
}

/// The server settings and privileges capture needs, from each engine's own check.
async fn prerequisites(node: &Node, tables: &[TableRef]) -> Vec<Problem> {
    let path = format!("nodes.{}", node.id);
    match node.engine {
        Engine::Postgres => {
            let mut found: Vec<Problem> =
                capture::postgres::check_prerequisites(node.url.expose(), tables)
                    .await
                    .into_iter()
                    .map(|p| Problem::error(&path, scrub(&p.message, &node.url), p.fix))
                    .collect();
            if !node.forward_replicated {
                found.extend(
                    capture::postgres::check_origin_filter(node.url.expose())
                        .await
                        .into_iter()
                        .map(|p| {
                            Problem::warning(
                                format!("{path}.forward_replicated"),
                                scrub(&p.message, &node.url),
                                p.fix,
                            )
                        }),
                );
            }
            found
        }
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

fn report(
    problems: &[Problem],
    footprint: &[Footprint],
    summary: Option<&str>,
    format: OutputFormat,
) {
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
                "footprint": footprint,
            });
            println!("{doc}");
        }
        OutputFormat::Text => {
            for p in problems {
                println!("{p}");
            }
            // What setup will install, and what the application's writes pay for it.
            for f in footprint {
                println!("setup on {} {}: {}", f.node, f.table, f.installs.join("; "));
                for c in &f.costs {
                    println!("  {c}");
                }
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
