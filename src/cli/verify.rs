//! `tandem verify`: compares every mapped row across the nodes through the mapping and reports the
//! differences that persist after the links applied what was in flight (see `crate::verify`).
//! Exit 0 when the nodes are equal, 1 when they differ, 2 on an error (the file, a node, usage).

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

use super::{load_config, ConfigArg, OutputFormat};
use crate::verify::{verify, Options, VerifyError, DEFAULT_BATCH_ROWS, DEFAULT_MAX_LISTED};

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only this business table (its `name` in the file).
    #[arg(long)]
    pub table: Option<String>,
    /// Only these nodes (at least two; repeat the flag). Default: every node.
    #[arg(long = "node", value_name = "NODE")]
    pub nodes: Vec<String>,
    /// `text` for people, `json` for machines.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
    /// Show the differing values (row values: only for a person allowed to see them).
    #[arg(long)]
    pub show_values: bool,
    /// Keys per hashed chunk (of the first node), and rows read per node and round trip row by row.
    #[arg(long, default_value_t = DEFAULT_BATCH_ROWS)]
    pub batch_rows: u32,
    /// Seconds to wait for the links to apply what was in flight before differing keys are read again.
    #[arg(long, default_value_t = 60)]
    pub settle_timeout: u64,
    /// Differences listed and re-read at most (memory stays bounded when a whole table differs);
    /// beyond it they are counted per table as `unlisted`.
    #[arg(long, default_value_t = DEFAULT_MAX_LISTED)]
    pub max_differences: usize,
    /// Make the nodes equal: each difference that persisted is settled by the table's conflict rule
    /// (the winning row is written on the other nodes as a local write, which replicates and leaves
    /// an audit record; a later delete deletes; `manual` tables get review-queue entries). The exit
    /// code still says whether differences were found.
    #[arg(long)]
    pub repair: bool,
    /// Only the rows inserted or updated this long ago or later (`10m`, `2h`, `1day`), on any
    /// node; needs tandem's managed version column. Deletes in the window are not looked for: run a
    /// whole verify now and then.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub since: Option<Duration>,
}

pub async fn run(args: VerifyArgs) -> ExitCode {
    let Ok(config) = load_config(&args.config) else {
        return ExitCode::from(2);
    };
    let opts = Options {
        table: args.table,
        nodes: args.nodes,
        batch_rows: args.batch_rows,
        show_values: args.show_values,
        settle_timeout: Duration::from_secs(args.settle_timeout),
        max_listed: args.max_differences,
        repair: args.repair,
        since: args.since,
    };
    let report = match verify(&config, &opts).await {
        Ok(r) => r,
        Err(e) => {
            let e = match &e {
                VerifyError::Read(_) => config
                    .nodes
                    .values()
                    .fold(e.to_string(), |t, n| crate::config::scrub(&t, &n.url)),
                _ => e.to_string(),
            };
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match args.format {
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        OutputFormat::Text => print!("{}", report.render()),
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
