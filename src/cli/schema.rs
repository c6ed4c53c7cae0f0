//! `tandem schema`: print (or, with `--apply`, run) the DDL that creates a node's tables from
//! another node's.

use std::process::ExitCode;

use clap::Args;

use super::{load_config, ConfigArg};
use crate::config::Engine;
use crate::schema::{self, run};

#[derive(Debug, Args)]
pub struct SchemaArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The node whose tables are read.
    #[arg(long, value_name = "NODE")]
    pub from: String,
    /// The node the tables are made for.
    #[arg(long, value_name = "NODE")]
    pub to: String,
    /// Only this business table (default: every table of the file).
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
    /// Create the tables on the target (refused when any of them exists there).
    #[arg(long)]
    pub apply: bool,
}

pub async fn run(args: SchemaArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let file = args.config.path.display();
    let (Some(from), Some(to)) = (config.node(&args.from), config.node(&args.to)) else {
        let ids: Vec<&String> = config.nodes.keys().collect();
        eprintln!("error: --from and --to must name nodes of {file}: {ids:?}");
        return ExitCode::from(2);
    };
    if from.id == to.id {
        eprintln!("error: --from and --to name the same node {}", from.id);
        return ExitCode::from(2);
    }
    if let Some(t) = &args.table {
        if !config.tables.iter().any(|x| &x.name == t) {
            eprintln!("error: no table {t:?} in {file} (name a business table of [[tables]])");
            return ExitCode::from(2);
        }
    }
    let only = args.table.as_deref();
    let sources = match run::read_sources(&config, from, only).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let plan = match schema::plan(&config, &from.id, &to.id, only, &sources) {
        Ok(p) => p,
        Err(problems) => {
            for p in &problems {
                eprintln!("{p}");
            }
            eprintln!("error: nothing was created or printed: fix the problem(s) above");
            return ExitCode::from(1);
        }
    };
    for w in &plan.warnings {
        eprintln!("{w}");
    }
    let statements = schema::statements(&plan.tables, to.engine);
    println!(
        "-- tandem schema: {} table(s) of node {} ({}) for node {} ({})",
        plan.tables.len(),
        from.id,
        from.engine.name(),
        to.id,
        to.engine.name()
    );
    if to.engine == Engine::Mysql {
        println!(
            "-- string literals are written for sql_mode NO_BACKSLASH_ESCAPES\n{};",
            crate::connect::quote::mysql::NO_BACKSLASH_ESCAPES
        );
    }
    for s in &statements {
        println!("{s};");
    }
    if !args.apply {
        return ExitCode::SUCCESS;
    }
    let targets: Vec<_> = plan.tables.iter().map(|t| t.table.clone()).collect();
    match run::existing(to, &targets).await {
        Ok(found) if found.is_empty() => {}
        Ok(found) => {
            let names: Vec<String> = found.iter().map(ToString::to_string).collect();
            eprintln!(
                "error: node {}: table(s) {} exist already; schema --apply never touches an existing table, so nothing was created: drop them, or run schema without --apply (or with --table) for the others",
                to.id,
                names.join(", ")
            );
            return ExitCode::from(1);
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    }
    match run::apply(to, &statements).await {
        Ok(()) => {
            eprintln!("created {} table(s) on node {}", plan.tables.len(), to.id);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
