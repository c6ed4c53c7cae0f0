//! The command line. Each subcommand lives in its own file; this one parses arguments, sets up
//! logging and maps outcomes to exit codes: 0 ok, 1 problems found, 2 usage error.

mod check;
mod conflicts;
mod cutover;
mod demo;
mod rules;
mod run;
mod schema;
mod setup;
mod status;
mod tail;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tandem",
    version,
    about = "Two-way change-data-capture replication between PostgreSQL and MySQL/MariaDB"
)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// The configuration file option shared by every command that needs one.
#[derive(Debug, Args)]
pub struct ConfigArg {
    /// The pairing's configuration file.
    #[arg(
        long = "config",
        short = 'c',
        env = "TANDEM_CONFIG",
        value_name = "FILE"
    )]
    pub path: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the configuration file and hold it against the live databases.
    Check(check::CheckArgs),
    /// List, show and resolve conflicts (the audit log and the manual review queue) on every node.
    Conflicts(conflicts::ConflictsArgs),
    /// List and replay transactions that could not be applied.
    #[command(name = "dead-letter")]
    DeadLetter(conflicts::DeadLetterArgs),
    /// Say whether switching the applications to a node loses nothing (caught up, no open conflict
    /// or dead letter, verify clean, generators apart, rollback link streaming); exit 0 ready.
    Cutover(cutover::CutoverArgs),
    /// Run a two-way sync between a throwaway PostgreSQL and MariaDB, with scripted edits.
    Demo(demo::DemoArgs),
    /// Print (or --apply) the DDL that creates a node's mapped tables from another node's, through
    /// the type rules `check` uses (exit 0 ok, 1 a column without a lossless type or a table exists).
    Schema(schema::SchemaArgs),
    /// Create on every node what the links need (bookkeeping schema, origin and version columns,
    /// publication and slots), idempotently.
    Setup(setup::SetupArgs),
    /// Print the rule set (tables, names per node, mappings, owners, conflict and delete rules) as
    /// Markdown or HTML, for a wiki.
    Rules(rules::RulesArgs),
    /// Run the links of one node (--node, the sidecar beside it) or of every node, until SIGTERM.
    Run(run::RunArgs),
    /// Show every link's state, position, lag, review queue, dead letters and log retention, read
    /// from the databases (no tandem process needed).
    Status(status::StatusArgs),
    /// Print a node's committed transactions as JSON lines, from now on, without applying them.
    Tail(tail::TailArgs),
    /// Compare every mapped row across the nodes through the mapping; report the differences that
    /// persist after the links applied what was in flight (exit 0 equal, 1 different, 2 error).
    Verify(verify::VerifyArgs),
}

/// Runs the command line; returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Check(args) => check::run(args).await,
            Command::Conflicts(args) => conflicts::run(args).await,
            Command::DeadLetter(args) => conflicts::run_dead_letter(args).await,
            Command::Cutover(args) => cutover::run(args).await,
            Command::Demo(args) => demo::run(args).await,
            Command::Schema(args) => schema::run(args).await,
            Command::Setup(args) => setup::run(args).await,
            Command::Rules(args) => rules::run(args),
            Command::Run(args) => run::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Tail(args) => tail::run(args).await,
            Command::Verify(args) => verify::run(args).await,
        }
    })
}

/// Loads the file for a command that needs a valid one; prints the problems and gives exit code 1
/// when it is not.
fn load_config(arg: &ConfigArg) -> Result<crate::config::Config, ExitCode> {
    match crate::config::Config::load(&arg.path) {
        Ok((config, warnings)) => {
            for w in warnings {
                tracing::warn!(problem = %w, "configuration");
            }
            Ok(config)
        }
        Err(e) => {
            for p in &e.problems {
                eprintln!("{p}");
            }
            eprintln!(
                "{}: run `tandem check --config {}` for the full report",
                e,
                arg.path.display()
            );
            Err(ExitCode::from(1))
        }
    }
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("TANDEM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);

    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
