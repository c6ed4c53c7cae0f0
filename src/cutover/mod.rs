//! `tandem cutover --to NODE`: whether the applications can switch to NODE without losing anything,
//! and if not, what stands in the way and what to do about each.
//!
//! ```text
//!  verify::wait_links   every link into NODE: mark = its source's log end now, a heartbeat on each
//!                       source, then wait (bounded) until the link's checkpoint covers the mark
//!  probe::status        every link into or out of NODE: state, lag, open conflicts, review queue,
//!                       dead letters, retention, node errors
//!  verify::verify       every table on every node, differences that persist
//!  keys::collisions     every node's key generators
//!  judge                the conditions above -> the unmet ones, each with its fix; none -> ready
//! ```
//!
//! Ready means: every link into NODE is streaming and has applied everything its source had committed
//! when the check began (a MariaDB GTID position is covered domain by domain, see
//! `Position::is_within`); no conflict is open on a link into or out of NODE (a parked one waits for
//! a person; waiting and deferred ones hold changes back); no dead letter is open on them; verify
//! finds no difference in any table; no two generators can hand out the same key; and every link
//! out of NODE streams, since it is the rollback that keeps the old side current after the switch.
//!
//! Error handling: nothing here fails the command. A node that cannot be asked, a verify that cannot
//! run or generators that cannot be read are unmet conditions like the others, named with the error.

use std::time::Duration;

use serde::Serialize;

use crate::config::{Config, Problem};
use crate::observe::probe::{status, LinkStatus};
use crate::verify::{self, Settled};

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long to wait for the links into the node to apply what their sources held.
    pub settle_timeout: Duration,
    /// Keys per hashed chunk in verify.
    pub batch_rows: u32,
}

/// One condition that is not met, with what to do.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Unmet {
    /// `caught_up`, `streaming`, `rollback`, `node`, `review_queue`, `conflicts`, `schema_pause`,
    /// `dead_letters`, `verify`, `generators`.
    pub condition: &'static str,
    /// What it is about: a link, a table, a node, a key column.
    pub subject: String,
    pub detail: String,
    pub fix: String,
}

/// One table as verify found it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TableCheck {
    pub table: String,
    pub rows: u64,
    /// Differences that persisted, listed or not.
    pub differences: u64,
}

/// Everything one check found.
#[derive(Debug, Clone, Serialize)]
pub struct Assessment {
    pub to: String,
    pub ready: bool,
    pub unmet: Vec<Unmet>,
    /// Every link into or out of the node, as `tandem status` shows it.
    pub links: Vec<LinkStatus>,
    /// The wait for the links into the node.
    pub caught_up: Settled,
    /// Each table's verify; empty when verify could not run (see `unmet`).
    pub verify: Vec<TableCheck>,
    /// Generators that can collide.
    pub generators: Vec<Problem>,
}

/// Checks once (see the module doc).
pub async fn assess(config: &Config, to: &str, opts: &Options) -> Assessment {
    let caught_up = verify::wait_links(config, |l| l.target == to, opts.settle_timeout).await;
    let links: Vec<LinkStatus> = status(config, None)
        .await
        .into_iter()
        .filter(|l| l.source == to || l.target == to)
        .collect();
    let verified = verify::verify(
        config,
        &verify::Options {
            table: None,
            nodes: Vec::new(),
            batch_rows: opts.batch_rows,
            show_values: false,
            settle_timeout: opts.settle_timeout,
            max_listed: verify::DEFAULT_MAX_LISTED,
            repair: false,
            since: None,
        },
    )
    .await
    .map(|r| {
        r.tables
            .iter()
            .map(|t| TableCheck {
                table: t.table.clone(),
                rows: t.rows,
                differences: t.differences + t.unlisted,
            })
            .collect::<Vec<_>>()
    })
    .map_err(|e| {
        config
            .nodes
            .values()
            .fold(e.to_string(), |t, n| crate::config::scrub(&t, &n.url))
    });
    let (generators, unread) = crate::keys::collisions(config).await;
    let facts = Facts {
        to,
        links: &links,
        caught_up: &caught_up,
        verify: verified.as_ref().map(Vec::as_slice),
        generators: &generators,
        unread: &unread,
    };
    let unmet = judge(&facts);
    Assessment {
        to: to.to_string(),
        ready: unmet.is_empty(),
        unmet,
        links,
        caught_up,
        verify: verified.unwrap_or_default(),
        generators,
    }
}

/// What a check learned, for [`judge`].
pub struct Facts<'a> {
    pub to: &'a str,
    pub links: &'a [LinkStatus],
    pub caught_up: &'a Settled,
    pub verify: Result<&'a [TableCheck], &'a String>,
    pub generators: &'a [Problem],
    /// Nodes whose generators could not be read, with the error.
    pub unread: &'a [(String, String)],
}

fn unmet(condition: &'static str, subject: &str, detail: String, fix: String) -> Unmet {
    Unmet {
        condition,
        subject: subject.to_string(),
        detail,
        fix,
    }
}

/// The conditions of the module doc that `facts` do not meet, each with its fix.
pub fn judge(facts: &Facts) -> Vec<Unmet> {
    let to = facts.to;
    let mut out: Vec<Unmet> = Vec::new();
    for l in facts.links {
        // A node that cannot be asked shows on each of its links: once is enough.
        for p in &l.problems {
            if !out.iter().any(|u| u.condition == "node" && u.detail == *p) {
                out.push(unmet(
                    "node",
                    &l.link,
                    p.clone(),
                    "make sure the node is running and reachable, then check again".into(),
                ));
            }
        }
        out.extend(link_conditions(l, to, facts.caught_up));
    }
    match facts.verify {
        Ok(tables) => {
            for t in tables.iter().filter(|t| t.differences > 0) {
                out.push(unmet(
                    "verify",
                    &t.table,
                    format!("verify found {} row(s) of {} that differ between the nodes and stayed different after the links applied what was in flight", t.differences, t.rows),
                    format!("see them with `tandem verify --config F --table {} --show-values`; settle them by the table's rule with `tandem verify --config F --table {} --repair`, or fix them by hand", t.table, t.table),
                ));
            }
        }
        Err(e) => out.push(unmet(
            "verify",
            "all tables",
            format!("verify could not run: {e}"),
            "fix what the error names, then check again".into(),
        )),
    }
    for p in facts.generators {
        out.push(unmet(
            "generators",
            &p.path,
            p.message.clone(),
            p.fix.clone(),
        ));
    }
    for (node, error) in facts.unread {
        out.push(unmet(
            "generators",
            node,
            format!("the key generators of node {node} could not be read: {error}"),
            "make sure the node is reachable and the account may read its tables and sequences"
                .into(),
        ));
    }
    out
}

/// The conditions one link into or out of `to` does not meet.
fn link_conditions(l: &LinkStatus, to: &str, caught_up: &Settled) -> Vec<Unmet> {
    let mut out = Vec::new();
    let link = l.link.as_str();
    let into = l.target == to;
    let condition = if into { "streaming" } else { "rollback" };
    if l.state == "unknown" {
        out.push(unmet(
            condition,
            link,
            format!("whether link {link} streams cannot be told: a node could not be asked"),
            "make the nodes reachable, then check again".into(),
        ));
    } else if l.state != "streaming" {
        let why = if into {
            format!(
                "changes committed on {} from now on would not reach {to}",
                l.source
            )
        } else {
            format!("it is the rollback: without it {} falls behind {to} once the applications write only to {to}", l.target)
        };
        let fix = if l.state == "lost" {
            format!(
                "{}; then run `tandem setup --config F` and start the link again",
                l.retention
            )
        } else {
            format!("start `tandem run --config F --node {}` (or `tandem run` for every link) and look at its log", l.source)
        };
        out.push(unmet(
            condition,
            link,
            format!("link {link} is {} ({why})", l.state),
            fix,
        ));
    } else if into && caught_up.lagging.contains(&l.link) {
        out.push(unmet(
            "caught_up",
            link,
            format!(
                "link {link} has not applied everything {} had committed when the check began (checkpoint {}, {}'s log at {}; waited {:.0} s)",
                l.source,
                l.confirmed_position.as_deref().unwrap_or("none"),
                l.source,
                l.source_position.as_deref().unwrap_or("unknown"),
                caught_up.waited_seconds
            ),
            "wait for it (`--wait`), or stop the writes on the old side first; `tandem status --config F` shows its lag".into(),
        ));
    }
    if l.review_queue > 0 {
        out.push(unmet(
            "review_queue",
            link,
            format!("{} conflict(s) of link {link} wait in the review queue on {} for a person to decide", l.review_queue, l.target),
            format!("`tandem conflicts list --config F --node {} --state parked`, then `tandem conflicts resolve --config F --node {} ID --take incoming|current --note …` for each", l.target, l.target),
        ));
    }
    let held = l.conflicts_open - l.review_queue;
    if held > 0 {
        out.push(unmet(
            "conflicts",
            link,
            format!("{held} change(s) of link {link} are held on {} (waiting behind a parked conflict, or deferred)", l.target),
            format!("resolve the parked conflicts first; `tandem conflicts list --config F --node {} --open` lists them all", l.target),
        ));
    }
    for p in &l.paused {
        out.push(unmet(
            "schema_pause",
            link,
            format!(
                "table {} of link {link} is paused by a schema change on {}, with {} change(s) held: {}",
                p.table, l.target, p.held, p.reason
            ),
            format!("fix the schema on {} as the reason says (the held changes then apply by themselves); `tandem status --config F` shows the pause", l.target),
        ));
    }
    if l.dead_letters_open > 0 {
        out.push(unmet(
            "dead_letters",
            link,
            format!("{} transaction(s) of link {link} could not be applied on {} and wait as dead letters", l.dead_letters_open, l.target),
            format!("`tandem dead-letter list --config F --node {}` names each error; fix its cause, then `tandem dead-letter replay --config F --node {} ID`", l.target, l.target),
        ));
    }
    out
}

#[cfg(test)]
mod tests;
