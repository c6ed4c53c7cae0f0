//! The names tandem gives the objects it creates on a node: PostgreSQL replication slots (one per
//! outgoing link), the PostgreSQL trigger functions in the bookkeeping schema (a stamp, a tombstone
//! and a revive function per table) and the table's tombstone flag (a sequence), and the
//! MySQL/MariaDB triggers (in each table's own database).
//!
//! Every name is at most [`MAX_NAME_BYTES`] bytes and distinct from every other name tandem
//! generates in the same namespace. The readable form (`tandem_<source>_to_<target>`,
//! `stamp_<schema>_<table>`, `tandem_insert_<table>`) is kept when it fits and can be read only one
//! way, so installs made by earlier versions keep their names. Otherwise the name is a readable
//! prefix, `_`, and [`HASH_HEX`] hex digits of a stable hash of the exact parts:
//!
//! ```text
//!   a.b_c   -> stamp_a_b_c                   (schema without `_`: only one reading)
//!   a_b.c   -> stamp_a_b_c_1f0c9d2e7a        (`a_b` + `c` also reads as `a` + `b_c`)
//! ```
//!
//! Earlier versions used the readable form everywhere (cut to 63 bytes by PostgreSQL), so two
//! tables or links could share one name; [`legacy_slot`] and the `legacy_*` functions give those
//! names back so that `tandem setup` can move an install onto the new ones. What can still collide
//! (a hash collision, or a readable name equal to another's hashed one) is found by [`collisions`],
//! which the configuration check refuses.

use std::collections::BTreeMap;

use crate::config::{Config, Engine};
use crate::model::TableRef;

/// PostgreSQL's identifier limit (NAMEDATALEN - 1); MySQL/MariaDB allow 64 characters.
pub const MAX_NAME_BYTES: usize = 63;
/// Hex digits of the hash suffix (40 bits).
pub const HASH_HEX: usize = 10;

/// The replication slot of the link `source` -> `target` on a PostgreSQL source.
pub fn slot(source: &str, target: &str) -> String {
    let (s, t) = (sanitize(source), sanitize(target));
    let link = format!("{s}_to_{t}");
    let plain = format!("tandem_{link}");
    let readable = s == source && t == target && occurrences(&link, "_to_") == 1;
    if readable && plain.len() <= MAX_NAME_BYTES {
        plain
    } else {
        hashed(&plain, &[source, target])
    }
}

/// The slot name earlier versions gave the link (`tandem_<source>_to_<target>` cut to 63 bytes).
pub fn legacy_slot(source: &str, target: &str) -> String {
    let mut s = format!("tandem_{}_to_{}", sanitize(source), sanitize(target));
    s.truncate(MAX_NAME_BYTES);
    s
}

/// The column beside a managed version column that a PostgreSQL update trigger fills with the
/// version the row had before the update, so that an update's new row carries its before-image's
/// version without `REPLICA IDENTITY FULL` (see `apply/postgres/setup.rs`).
pub fn prev_version_column(version_column: &str) -> String {
    format!("{version_column}_prev")
}

/// The PostgreSQL function (in the bookkeeping schema) of the trigger that stamps local writes.
pub fn pg_stamp_function(table: &TableRef) -> String {
    pg_function("stamp", table)
}

/// The PostgreSQL function (in the bookkeeping schema) of the trigger that records local deletes.
pub fn pg_tombstone_function(table: &TableRef) -> String {
    pg_function("tombstone", table)
}

/// The PostgreSQL function (in the bookkeeping schema) of the trigger that bumps the tombstones of
/// a key a local insert brings back.
pub fn pg_revive_function(table: &TableRef) -> String {
    pg_function("revive", table)
}

/// The sequence (in the bookkeeping schema or database) that flags a table some tombstone was
/// written for: until then a local insert has no tombstone to bump and skips the lookup.
pub fn tombstone_flag(table: &TableRef) -> String {
    pg_function("tombstoned", table)
}

/// The sequence (in the bookkeeping schema) that flags a PostgreSQL table some tombstone of another
/// node's delete was written for: until then a local insert has no tombstone to bump (a peer
/// counts this node's own deletes as seen), and the revive trigger does not fire.
pub fn peer_tombstone_flag(table: &TableRef) -> String {
    pg_function("peer_tombstoned", table)
}

/// The names earlier versions gave the stamp and tombstone functions (PostgreSQL cuts them to 63 bytes itself).
pub fn legacy_pg_functions(table: &TableRef) -> [String; 2] {
    ["stamp", "tombstone"].map(|kind| format!("{kind}_{}_{}", table.schema, table.name))
}

fn pg_function(kind: &str, table: &TableRef) -> String {
    let plain = format!("{kind}_{}_{}", table.schema, table.name);
    if !table.schema.contains('_') && plain.len() <= MAX_NAME_BYTES {
        plain
    } else {
        hashed(&plain, &[kind, &table.schema, &table.name])
    }
}

/// The MySQL/MariaDB trigger (in the table's own database) for `event`: `insert`, `update` or
/// `delete`. Table names are unique within a database, so only length forces the hashed form.
pub fn mysql_trigger(event: &str, table: &TableRef) -> String {
    let plain = legacy_mysql_trigger(event, table);
    if plain.len() <= MAX_NAME_BYTES {
        plain
    } else {
        hashed(&plain, &[event, &table.schema, &table.name])
    }
}

/// The trigger name earlier versions used; it exists only where it fitted MySQL's 64 characters.
pub fn legacy_mysql_trigger(event: &str, table: &TableRef) -> String {
    format!("tandem_{event}_{}", table.name)
}

/// A generated name shared by two objects that need their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collision {
    /// Where the name lives: `node crm, schema tandem, functions`, `node desk, database app, triggers`.
    pub namespace: String,
    pub name: String,
    /// What the name is for, twice: `the stamp function of table a_b.c`, `link a -> b`.
    pub first: String,
    pub second: String,
    /// Where in the file the second one comes from (`nodes.a`, `tables[3]`).
    pub path: String,
}

/// Every generated name that two objects of `config` would share.
pub fn collisions(config: &Config) -> Vec<Collision> {
    let mut seen: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut out = Vec::new();
    let mut claim = |namespace: String, name: String, owner: String, path: &str| match seen
        .get(&(namespace.clone(), name.clone()))
    {
        Some(first) if *first != owner => out.push(Collision {
            namespace,
            name,
            first: first.clone(),
            second: owner,
            path: path.to_string(),
        }),
        Some(_) => {}
        None => {
            seen.insert((namespace, name), owner);
        }
    };
    for (source, target) in config.links() {
        if config
            .node(&source)
            .is_some_and(|n| n.engine == Engine::Postgres)
        {
            claim(
                "replication slots (one namespace per PostgreSQL server)".to_string(),
                slot(&source, &target),
                format!("link {source} -> {target}"),
                &format!("nodes.{target}"),
            );
        }
    }
    for node in config.nodes.values() {
        for (i, t) in config.tables.iter().enumerate() {
            let path = format!("tables[{i}].on.{}", node.id);
            let Some(table) = t.physical.get(&node.id) else {
                continue;
            };
            match node.engine {
                Engine::Postgres => {
                    let ns = format!(
                        "node {}, schema {}, functions",
                        node.id, config.settings.schema
                    );
                    for (kind, name) in [
                        ("stamp", pg_stamp_function(table)),
                        ("tombstone", pg_tombstone_function(table)),
                        ("revive", pg_revive_function(table)),
                    ] {
                        claim(
                            ns.clone(),
                            name,
                            format!("the {kind} function of table {table}"),
                            &path,
                        );
                    }
                    let ns = format!(
                        "node {}, schema {}, sequences",
                        node.id, config.settings.schema
                    );
                    for (kind, name) in [
                        ("tombstone", tombstone_flag(table)),
                        ("peer", peer_tombstone_flag(table)),
                    ] {
                        claim(
                            ns.clone(),
                            name,
                            format!("the {kind} flag of table {table}"),
                            &path,
                        );
                    }
                }
                Engine::Mysql => {
                    let ns = format!("node {}, database {}, triggers", node.id, table.schema);
                    for event in ["insert", "revive", "update", "delete"] {
                        claim(
                            ns.clone(),
                            mysql_trigger(event, table),
                            format!("the {event} trigger of table {table}"),
                            &path,
                        );
                    }
                }
            }
        }
    }
    out
}

/// `plain` cut to leave room for `_` and the hash of `parts`, at a character boundary.
fn hashed(plain: &str, parts: &[&str]) -> String {
    let mut cut = MAX_NAME_BYTES - 1 - HASH_HEX;
    while !plain.is_char_boundary(cut.min(plain.len())) {
        cut -= 1;
    }
    let prefix = &plain[..cut.min(plain.len())];
    format!("{prefix}_{:0width$x}", hash(parts), width = HASH_HEX)
}

/// [`crate::model::digest::fnv1a`] cut to [`HASH_HEX`] hex digits (fixed, so that names stay the
/// same across tandem and Rust versions).
fn hash(parts: &[&str]) -> u64 {
    crate::model::digest::fnv1a(parts) >> (64 - 4 * HASH_HEX)
}

/// Lowercased, every character outside `[a-z0-9_]` replaced by `_` (what a slot name may hold).
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// How many times `needle` starts in `s`, overlaps included (`_to_to_` holds `_to_` twice).
fn occurrences(s: &str, needle: &str) -> usize {
    (0..s.len())
        .filter(|&i| s.is_char_boundary(i) && s[i..].starts_with(needle))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readable_names_stay_as_earlier_versions_made_them() {
        assert_eq!(slot("crm", "helpdesk"), "tandem_crm_to_helpdesk");
        assert_eq!(slot("crm", "helpdesk"), legacy_slot("crm", "helpdesk"));
        let t = TableRef::new("public", "order_items");
        assert_eq!(pg_stamp_function(&t), "stamp_public_order_items");
        assert_eq!(pg_tombstone_function(&t), "tombstone_public_order_items");
        assert_eq!(mysql_trigger("insert", &t), "tandem_insert_order_items");
    }

    #[test]
    fn names_that_read_two_ways_get_distinct_hashed_names() {
        assert_ne!(slot("a_to_b", "c"), slot("a", "b_to_c"));
        assert_ne!(slot("a_to", "b"), slot("a", "to_b"));
        let (x, y) = (TableRef::new("a_b", "c"), TableRef::new("a", "b_c"));
        assert_ne!(pg_stamp_function(&x), pg_stamp_function(&y));
        assert_ne!(pg_tombstone_function(&x), pg_tombstone_function(&y));
    }

    #[test]
    fn long_names_are_cut_with_a_hash_and_stay_distinct() {
        let long = "x".repeat(32);
        let (a, b) = (format!("{long}1"), format!("{long}2"));
        assert_ne!(slot(&long, &a), slot(&long, &b));
        let mut names = vec![slot(&long, &a), slot(&long, &b)];
        for name in ["é".repeat(40), "y".repeat(63)] {
            let t = TableRef::new("s", &name);
            names.push(pg_stamp_function(&t));
            names.push(mysql_trigger("delete", &t));
        }
        for n in &names {
            assert!(n.len() <= MAX_NAME_BYTES, "{n} is {} bytes", n.len());
        }
    }

    #[test]
    fn the_hash_is_stable() {
        // Changing it renames every hashed object of every install.
        assert_eq!(slot("a_to_b", "c"), "tandem_a_to_b_to_c_e7cd387ef8");
    }
}
