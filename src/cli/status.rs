//! `tandem status`: every link's state, positions, lag, review queue, dead letters and log retention,
//! read from the databases themselves (see `observe::probe`), so it works with no tandem running.
//! Exit 0 when every link is streaming with nothing waiting for a person; 1 otherwise.

use std::process::ExitCode;

use clap::Args;

use super::{load_config, ConfigArg, OutputFormat};
use crate::mapping::check::{self, NodeSchemas, Unsynced};
use crate::observe::probe::{survey, LinkStatus};

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Only the links whose source is this node.
    #[arg(long)]
    pub node: Option<String>,
    /// `text` for people, `json` (`{ "links": [...], "verify": [...], "columns_not_synced": [...] }`:
    /// every link, each table's last verify, and the columns only some nodes have) for machines.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

pub async fn run(args: StatusArgs) -> ExitCode {
    let config = match load_config(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(n) = &args.node {
        if config.node(n).is_none() {
            eprintln!("error: no node {n:?} in {}", args.config.path.display());
            return ExitCode::from(2);
        }
    }
    let (links, verified) = survey(&config, args.node.as_deref()).await;
    let unsynced = unsynced_columns(&config).await;
    match args.format {
        OutputFormat::Json => match serde_json::to_string_pretty(&serde_json::json!({
            "links": links,
            "verify": verified,
            "columns_not_synced": unsynced,
        })) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        OutputFormat::Text => {
            for l in &links {
                print!("{}", render(l));
            }
            for v in &verified {
                println!(
                    "verify {}: {} differences in {} rows{}, {} ago{}",
                    v.table,
                    v.differences,
                    v.rows,
                    if v.repaired > 0 {
                        format!(" ({} repaired)", v.repaired)
                    } else {
                        String::new()
                    },
                    humantime::format_duration(std::time::Duration::from_secs(
                        v.age_seconds as u64
                    )),
                    if v.differences > 0 && v.repaired < v.differences {
                        "  <- look here"
                    } else {
                        ""
                    }
                );
            }
            for u in &unsynced {
                println!(
                    "column {}.{} exists on {} only: its values are not synced (add it on the other nodes, or exclude it in the file)",
                    u.table,
                    u.column,
                    u.on.join(", ")
                );
            }
        }
    }
    if links.iter().any(LinkStatus::needs_attention) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn or_dash<T: ToString>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "-".to_string(), ToString::to_string)
}

/// The columns some nodes of a table have and others lack, from every node's live catalog (a node
/// that cannot be read is left out: the links' problems already say so).
async fn unsynced_columns(config: &crate::config::Config) -> Vec<Unsynced> {
    let mut schemas = NodeSchemas::new();
    for node in config.nodes.values() {
        let tables: Vec<_> = config.tables_on(&node.id);
        if let Ok(s) = crate::catalog::read_tables(node, &tables).await {
            schemas.insert(node.id.clone(), s);
        }
    }
    check::unsynced(config, &schemas)
}

/// One link as a small table.
pub(super) fn render(l: &LinkStatus) -> String {
    let mark = if l.needs_attention() {
        "  <- look here"
    } else {
        ""
    };
    let mut lag = match l.lag_seconds {
        Some(s) => format!("{s:.1} s since the last applied source commit"),
        None => "- (nothing applied yet)".to_string(),
    };
    if let Some(b) = l.lag_bytes {
        lag.push_str(&format!(", {b} bytes of log behind"));
    }
    if let Some(t) = l.lag_transactions {
        lag.push_str(&format!(", {t} transactions behind"));
    }
    let parked = match l.oldest_parked_seconds {
        Some(s) => format!(", oldest parked {s:.0} s ago"),
        None => String::new(),
    };
    let mut out = format!(
        "link {} ({} -> {}): {}{mark}\n",
        l.link, l.source, l.target, l.state
    );
    let rows = [
        ("source position", or_dash(&l.source_position)),
        ("confirmed position", or_dash(&l.confirmed_position)),
        ("lag", lag),
        ("last applied", or_dash(&l.last_applied)),
        (
            "conflicts open",
            format!(
                "{} (review queue {}{parked})",
                l.conflicts_open, l.review_queue
            ),
        ),
        ("dead letters open", l.dead_letters_open.to_string()),
        (
            "log retention",
            format!(
                "{} ({} bytes held)",
                l.retention,
                or_dash(&l.retained_bytes)
            ),
        ),
    ];
    for (k, v) in rows {
        out.push_str(&format!("  {k:<19} {v}\n"));
    }
    for p in &l.paused {
        out.push_str(&format!(
            "  paused table        {} ({} changes held): {}\n",
            p.table, p.held, p.reason
        ));
    }
    for p in &l.problems {
        out.push_str(&format!("  problem             {p}\n"));
    }
    out
}
