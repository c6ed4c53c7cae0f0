//! `tandem tail`: print a node's committed transactions as JSON lines, from now on, without applying
//! them and without moving any link's position.

use std::io::Write;
use std::process::ExitCode;

use clap::Args;

use super::{load_config, ConfigArg};
use crate::capture::{CaptureEvent, Reader, Source};
use crate::model::json;

#[derive(Debug, Args)]
pub struct TailArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The node whose log to read.
    #[arg(long)]
    pub node: String,
}

pub async fn run(args: TailArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(node) = config.node(&args.node) else {
        eprintln!(
            "error: no node {:?} in {}; nodes are: {}",
            args.node,
            args.config.path.display(),
            config.nodes.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        return ExitCode::from(2);
    };
    let mut source = match Source::open(&config, node, Reader::Tail, None).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot read the log of node {}: {e}", node.id);
            return ExitCode::from(1);
        }
    };
    tracing::info!(node = %node.id, "tail started");
    let stdout = std::io::stdout();
    loop {
        let event = tokio::select! {
            e = source.next() => e,
            _ = tokio::signal::ctrl_c() => return ExitCode::SUCCESS,
        };
        match event {
            Ok(CaptureEvent::Transaction(t)) => {
                let line = match json::transaction(&t) {
                    Ok(j) => j.to_string(),
                    Err(e) => {
                        eprintln!("error: reading a spilled transaction back failed: {e}");
                        return ExitCode::from(1);
                    }
                };
                let mut out = stdout.lock();
                if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                    return ExitCode::SUCCESS; // the reader went away (a closed pipe)
                }
            }
            Ok(CaptureEvent::Heartbeat(_)) => {}
            Err(e) => {
                eprintln!("error: node {}: {e}", node.id);
                return ExitCode::from(1);
            }
        }
    }
}
