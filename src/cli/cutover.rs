//! `tandem cutover --to NODE`: says whether switching the applications to NODE loses nothing (see
//! `crate::cutover`), listing each unmet condition with what to do; `--wait` checks again until it
//! does or the timeout passes. Exit 0 ready, 1 not ready, 2 on a usage error.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;

use super::{load_config, ConfigArg, OutputFormat};
use crate::cutover::{assess, Assessment, Options};
use crate::verify::DEFAULT_BATCH_ROWS;

#[derive(Debug, Args)]
pub struct CutoverArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// The node the applications are to switch to.
    #[arg(long)]
    pub to: String,
    /// Check again every `--interval` until ready or `--timeout`.
    #[arg(long)]
    pub wait: bool,
    /// With `--wait`: give up after this long (`30m`, `2h`); exit 1 with the last report.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1h")]
    pub timeout: Duration,
    /// With `--wait`: pause between checks.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    pub interval: Duration,
    /// Seconds each check waits for the links into the node to apply what their sources held.
    #[arg(long, default_value_t = 30)]
    pub settle_timeout: u64,
    /// Keys per hashed chunk in the verify of every table.
    #[arg(long, default_value_t = DEFAULT_BATCH_ROWS)]
    pub batch_rows: u32,
    /// `text` for people, `json` for machines (`{ "to", "ready", "unmet": [...], "links": [...],
    /// "caught_up", "verify": [...], "generators": [...] }`).
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub async fn run(args: CutoverArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if config.node(&args.to).is_none() {
        eprintln!(
            "error: no node {:?} in {}",
            args.to,
            args.config.path.display()
        );
        return ExitCode::from(2);
    }
    let opts = Options {
        settle_timeout: Duration::from_secs(args.settle_timeout),
        batch_rows: args.batch_rows.max(1),
    };
    let deadline = Instant::now() + args.timeout;
    let report = loop {
        let a = assess(&config, &args.to, &opts).await;
        if a.ready || !args.wait || Instant::now() + args.interval >= deadline {
            break a;
        }
        let names: Vec<String> = a
            .unmet
            .iter()
            .map(|u| format!("{} ({})", u.condition, u.subject))
            .collect();
        eprintln!(
            "cutover to {}: not ready: {}; checking again in {}",
            a.to,
            names.join(", "),
            humantime::format_duration(args.interval)
        );
        tokio::time::sleep(args.interval).await;
    };
    match args.format {
        OutputFormat::Json => match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        OutputFormat::Text => print!("{}", render(&report)),
    }
    if report.ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// The report for a person: the verdict, each link as `tandem status` shows it, the tables, the
/// generators, and what to do.
fn render(a: &Assessment) -> String {
    let mut out = if a.ready {
        format!(
            "cutover to {}: ready: switching the applications to {} loses nothing\n",
            a.to, a.to
        )
    } else {
        format!(
            "cutover to {}: NOT READY: {} condition(s) unmet\n",
            a.to,
            a.unmet.len()
        )
    };
    for l in &a.links {
        let role = if l.target == a.to {
            "into the new side"
        } else {
            "the rollback"
        };
        out.push_str(&format!("({role}) {}", super::status::render(l)));
    }
    for t in &a.verify {
        out.push_str(&format!(
            "verify {}: {} differences in {} rows\n",
            t.table, t.differences, t.rows
        ));
    }
    if a.generators.is_empty() {
        out.push_str("key generators: none can hand out another node's keys\n");
    }
    for u in &a.unmet {
        out.push_str(&format!(
            "unmet {} ({}): {}\n  fix: {}\n",
            u.condition, u.subject, u.detail, u.fix
        ));
    }
    out
}
