//! `tandem demo`: a two-way sync between throwaway local databases, started by tandem itself.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Stop this many seconds after the scripted edits (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
}

pub async fn run(args: DemoArgs) -> ExitCode {
    match crate::demo::run(args.duration.map(Duration::from_secs)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: the demo failed: {e}");
            ExitCode::from(1)
        }
    }
}
