//! Generated keys in two-way tables: a key column that more than one node fills from its own
//! generator (a PostgreSQL sequence behind serial, identity or a `nextval` default; MySQL/MariaDB
//! AUTO_INCREMENT) must never hand out a value another node's generator hands out, or the second
//! insert of that value fails (or, under a conflict rule, overwrites another row).
//!
//! ```text
//!  catalog::read_generators(node, tables), every node ─> NodeGenerators
//!    ├─> analyze(config, &generators) -> Vec<Problem>   `tandem check`, and `tandem run` at start (`refusals_at_start`)
//!    └─> plan(config, &generators)    -> Vec<Fix>       `tandem setup` (see `setup.rs`)
//! ```
//!
//! Two generators collide when some value is in both progressions: for `a (mod m)` and `b (mod n)`,
//! when `a ≡ b (mod gcd(m, n))`. Setup's cure makes them disjoint by construction: with N nodes, the
//! node at position i (0-based) of the config's sorted node ids takes the values `i + 1 (mod N)`,
//! starting above the largest key any node holds. Applying a row generated elsewhere never makes a
//! node's next local insert fail then: that key is in another residue class, so the node's own
//! generator never returns it (PostgreSQL does not move its sequence; InnoDB moves its counter up to
//! the next value of its own class).
//!
//! A table with an `owner` is one-way, so only the owner inserts and nothing is checked.

mod setup;

pub use setup::{collisions, refusals_at_start, setup, Applied};

use std::collections::BTreeMap;

use crate::catalog::{Generator, GeneratorKind, TableGenerators};
use crate::config::{Config, Engine, Problem, Table};
use crate::model::TableRef;

/// Node id -> its tables' generators.
pub type NodeGenerators = BTreeMap<String, TableGenerators>;

/// A node's own share of the keys: values `offset (mod increment)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub increment: i64,
    pub offset: i64,
}

/// The share of `node`: its position in the sorted node ids, out of all nodes.
pub fn slot(config: &Config, node: &str) -> Option<Slot> {
    let position = config.nodes.keys().position(|n| n == node)?;
    Some(Slot {
        increment: config.nodes.len() as i64,
        offset: position as i64 + 1,
    })
}

/// The first value of `slot` above `max` (and at least its offset).
pub fn first_above(slot: Slot, max: Option<i64>) -> i64 {
    let from = max.map_or(slot.offset, |m| m.saturating_add(1).max(slot.offset));
    from.saturating_add((slot.offset - from).rem_euclid(slot.increment))
}

/// One node's generator of a shared key column.
#[derive(Debug, Clone)]
struct Member<'a> {
    node: &'a str,
    table: &'a TableRef,
    generator: &'a Generator,
}

/// A key column of a two-way table generated on more than one node.
#[derive(Debug)]
struct Shared<'a> {
    path: String,
    table: &'a Table,
    column: &'a str,
    members: Vec<Member<'a>>,
    /// The largest value any node holds.
    max: Option<i64>,
}

impl Shared<'_> {
    /// The pairs of member nodes whose generators can hand out the same value.
    fn collisions(&self) -> Vec<(&str, &str)> {
        let mut out = Vec::new();
        for (i, a) in self.members.iter().enumerate() {
            for b in &self.members[i + 1..] {
                if collide(&a.generator.kind, &b.generator.kind) {
                    out.push((a.node, b.node));
                }
            }
        }
        out
    }
}

/// Whether two generators can hand out the same value.
pub fn collide(a: &GeneratorKind, b: &GeneratorKind) -> bool {
    let ((m, r), (n, s)) = (a.progression(), b.progression());
    (r - s).rem_euclid(gcd(m, n)) == 0
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 {
        a.max(1)
    } else {
        gcd(b, a % b)
    }
}

fn shared<'a>(config: &'a Config, generators: &'a NodeGenerators) -> Vec<Shared<'a>> {
    let mut out = Vec::new();
    for (i, table) in config.tables.iter().enumerate() {
        if table.owner.is_some() {
            continue;
        }
        for column in &table.key {
            let members: Vec<Member> = table
                .physical
                .iter()
                .filter_map(|(node, physical)| {
                    let physical_column = table.column_on(column, node);
                    let generator = generators
                        .get(node)?
                        .get(physical)?
                        .iter()
                        .find(|g| g.column == physical_column)?;
                    Some(Member {
                        node,
                        table: physical,
                        generator,
                    })
                })
                .collect();
            if members.len() < 2 {
                continue;
            }
            let max = members.iter().filter_map(|m| m.generator.max).max();
            out.push(Shared {
                path: format!("tables[{i}].key"),
                table,
                column,
                members,
                max,
            });
        }
    }
    out
}

/// An error for every node whose generator of a two-way key column can collide with another
/// node's, naming the table, the column, the node and the statements that fix it.
pub fn analyze(config: &Config, generators: &NodeGenerators) -> Vec<Problem> {
    let mut problems = Vec::new();
    for s in shared(config, generators) {
        let collisions = s.collisions();
        for m in &s.members {
            let with: Vec<&str> = collisions
                .iter()
                .filter_map(|&(a, b)| {
                    if a == m.node {
                        Some(b)
                    } else if b == m.node {
                        Some(a)
                    } else {
                        None
                    }
                })
                .collect();
            if with.is_empty() {
                continue;
            }
            let fix = fix_for(config, &s, m);
            problems.push(Problem::error(
                &s.path,
                format!(
                    "key column {} of table {} ({} on node {}) is generated by {}, and node(s) {} generate it too: both hand out the same values, so the second insert of one fails",
                    s.column,
                    s.table.name,
                    m.table,
                    m.node,
                    describe(&m.generator.kind),
                    with.join(", ")
                ),
                fix.map_or_else(
                    || "give each node a distinct key range".to_string(),
                    |f| format!("run `tandem setup`, which does this: {}", f.advice()),
                ),
            ));
        }
    }
    problems
}

fn describe(kind: &GeneratorKind) -> String {
    match kind {
        GeneratorKind::Sequence {
            name,
            increment,
            next,
        } => format!("sequence {name} (INCREMENT BY {increment}, next value {next})"),
        GeneratorKind::AutoIncrement { increment, offset } => format!(
            "AUTO_INCREMENT (auto_increment_increment = {increment}, auto_increment_offset = {offset})"
        ),
    }
}

/// What makes one node's generator take only its own share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub node: String,
    pub table: TableRef,
    pub column: String,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `ALTER SEQUENCE name INCREMENT BY increment RESTART WITH restart`.
    Sequence {
        name: String,
        slot: Slot,
        restart: i64,
    },
    /// The server's globals, and the table's counter moved up to `restart`.
    AutoIncrement { slot: Slot, restart: i64 },
}

impl Fix {
    /// The statements, in order.
    pub fn statements(&self) -> Vec<String> {
        use crate::connect::quote::mysql::ident;
        match &self.action {
            Action::Sequence {
                name,
                slot,
                restart,
            } => vec![format!(
                "ALTER SEQUENCE {name} INCREMENT BY {} RESTART WITH {restart}",
                slot.increment
            )],
            Action::AutoIncrement { slot, restart } => vec![
                format!(
                    "SET GLOBAL auto_increment_increment = {}, auto_increment_offset = {}",
                    slot.increment, slot.offset
                ),
                format!(
                    "ALTER TABLE {}.{} AUTO_INCREMENT = {restart}",
                    ident(&self.table.schema),
                    ident(&self.table.name)
                ),
            ],
        }
    }

    /// The statements, and for MySQL/MariaDB the configuration-file lines that keep the globals
    /// across a server restart.
    pub fn advice(&self) -> String {
        let sql = self.statements().join("; ");
        match &self.action {
            Action::Sequence { .. } => format!("on node {}: {sql}", self.node),
            Action::AutoIncrement { slot, .. } => format!(
                "on node {} (an account with SUPER or SYSTEM_VARIABLES_ADMIN): {sql}; and, since SET GLOBAL does not survive a restart, in the server's my.cnf: {}",
                self.node,
                mycnf(*slot).replace('\n', " ")
            ),
        }
    }
}

/// The my.cnf lines that keep a MySQL/MariaDB server's share across restarts.
pub fn mycnf(slot: Slot) -> String {
    format!(
        "[mysqld]\nauto_increment_increment = {}\nauto_increment_offset = {}",
        slot.increment, slot.offset
    )
}

fn fix_for(config: &Config, s: &Shared, m: &Member) -> Option<Fix> {
    let slot = slot(config, m.node)?;
    let restart = first_above(slot, s.max);
    let action = match (&m.generator.kind, config.node(m.node)?.engine) {
        (GeneratorKind::Sequence { name, .. }, Engine::Postgres) => Action::Sequence {
            name: name.clone(),
            slot,
            restart,
        },
        (GeneratorKind::AutoIncrement { .. }, Engine::Mysql) => {
            Action::AutoIncrement { slot, restart }
        }
        _ => return None,
    };
    Some(Fix {
        node: m.node.to_string(),
        table: m.table.clone(),
        column: m.generator.column.clone(),
        action,
    })
}

/// What setup changes: every generating node of every shared key column where any two collide
/// (all of them, so that the result is disjoint by construction).
pub fn plan(config: &Config, generators: &NodeGenerators) -> Vec<Fix> {
    shared(config, generators)
        .iter()
        .filter(|s| !s.collisions().is_empty())
        .flat_map(|s| s.members.iter().filter_map(|m| fix_for(config, s, m)))
        .collect()
}

#[cfg(test)]
mod tests;
