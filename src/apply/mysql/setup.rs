//! `tandem setup` statements for a MySQL/MariaDB node: the bookkeeping database, and on each mapped
//! table INVISIBLE origin and version columns (so `SELECT *` and `INSERT … VALUES` without a column
//! list keep working) and the triggers that stamp local writes. The apply session sets
//! `@tandem_applying = 1`, which the triggers leave alone.

use super::sql::{ident, literal as lit, qname};
use crate::apply::setup::{split_statements, SetupTable};
use crate::names;

const BOOKKEEPING: &str = include_str!("../../../sql/mysql/001_bookkeeping.sql");
const TOMBSTONE: &str = include_str!("../../../sql/mysql/002_tombstone.sql");
const TOMBSTONE_ORIGIN: &str = include_str!("../../../sql/mysql/005_tombstone_origin.sql");
const HEARTBEAT: &str = include_str!("../../../sql/mysql/003_heartbeat.sql");
const COPY: &str = include_str!("../../../sql/mysql/004_copy.sql");
const TABLE_WIDE_CONFLICT: &str = include_str!("../../../sql/mysql/006_conflict_table_wide.sql");
const DEAD_LETTER_PARTS: &str = include_str!("../../../sql/mysql/007_dead_letter_parts.sql");
const TEXT_PAYLOADS: &str = include_str!("../../../sql/mysql/008_text_payloads.sql");
const VERIFY_RESULT: &str = include_str!("../../../sql/mysql/009_verify_result.sql");

/// Every statement, in order. Each is idempotent.
pub fn statements(
    node: &str,
    schema: &str,
    origin: &str,
    tables: &[SetupTable],
    manage: bool,
) -> Vec<String> {
    let mut out = split_statements(&BOOKKEEPING.replace("`__SCHEMA__`", &ident(schema)));
    for file in [
        TOMBSTONE,
        HEARTBEAT,
        COPY,
        TOMBSTONE_ORIGIN,
        TABLE_WIDE_CONFLICT,
        DEAD_LETTER_PARTS,
        TEXT_PAYLOADS,
        VERIFY_RESULT,
    ] {
        out.extend(split_statements(
            &file.replace("`__SCHEMA__`", &ident(schema)),
        ));
    }
    if !manage {
        return out;
    }
    let now = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)";
    for t in tables {
        let q = qname(&t.table);
        out.push(format!(
            "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} VARCHAR(64) NULL INVISIBLE",
            ident(origin)
        ));
        if let Some(v) = &t.managed_version {
            out.push(format!(
                "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} BIGINT NOT NULL DEFAULT 0 INVISIBLE",
                ident(v)
            ));
        }
        for (event, prior) in [("INSERT", "COALESCE(NEW.{v}, 0)"), ("UPDATE", "OLD.{v}")] {
            let mut version = match &t.managed_version {
                Some(v) => format!(
                    " SET NEW.{v} = GREATEST({} + 1, {now});",
                    prior.replace("{v}", &ident(v)),
                    v = ident(v)
                ),
                None => String::new(),
            };
            if event == "INSERT" && t.managed_version.is_some() {
                // The key lives again: the insert shows, in its own transaction, which deletes of
                // the key this node had seen (see 005).
                version.push_str(&format!(
                    " UPDATE {s}.tombstone SET revived = revived + 1 WHERE target_table = {table} AND row_key = CONCAT('{{', {key}, '}}');",
                    s = ident(schema),
                    table = lit(&t.table.to_string()),
                    key = key_text(t, "NEW"),
                ));
            }
            let name = names::mysql_trigger(&event.to_lowercase(), &t.table);
            out.push(format!(
                "CREATE OR REPLACE TRIGGER {}.{} BEFORE {event} ON {q} FOR EACH ROW BEGIN \
                 IF COALESCE(@tandem_applying, 0) = 0 THEN SET NEW.{} = {};{version} END IF; END",
                ident(&t.table.schema),
                ident(&name),
                ident(origin),
                lit(node),
            ));
        }
        if let Some(v) = &t.managed_version {
            let key = key_text(t, "OLD");
            out.push(format!(
                "CREATE OR REPLACE TRIGGER {}.{} AFTER DELETE ON {q} FOR EACH ROW BEGIN \
                 IF COALESCE(@tandem_applying, 0) = 0 THEN \
                 INSERT INTO {s}.tombstone (target_table, row_key, version, node) VALUES ({table}, CONCAT('{{', {key}, '}}'), OLD.{v} + 1, {n}) \
                 ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version)), deleted_at = NOW(6); END IF; END",
                ident(&t.table.schema),
                ident(&names::mysql_trigger("delete", &t.table)),
                s = ident(schema),
                table = lit(&t.table.to_string()),
                v = ident(v),
                n = lit(node),
            ));
        }
        out.extend(drop_legacy_triggers(t));
    }
    out
}

/// Earlier versions named the triggers `tandem_<event>_<table>` whatever the length; the ones that
/// fitted MySQL's 64 characters but not tandem's 63 bytes exist under that name, beside the new ones.
fn drop_legacy_triggers(t: &SetupTable) -> Vec<String> {
    ["insert", "update", "delete"]
        .into_iter()
        .filter_map(|event| {
            let legacy = names::legacy_mysql_trigger(event, &t.table);
            (legacy != names::mysql_trigger(event, &t.table) && legacy.chars().count() <= 64).then(
                || {
                    format!(
                        "DROP TRIGGER IF EXISTS {}.{}",
                        ident(&t.table.schema),
                        ident(&legacy)
                    )
                },
            )
        })
        .collect()
}

/// The key text of the row `rec` (`OLD` or `NEW`) as CONCAT arguments, without its braces, built
/// exactly as the applier builds it (`"col":"text",…`).
fn key_text(t: &SetupTable, rec: &str) -> String {
    t.key
        .iter()
        .map(|k| {
            format!(
                "JSON_QUOTE({}), ':', JSON_QUOTE(CAST({rec}.{} AS CHAR))",
                lit(k),
                ident(k)
            )
        })
        .collect::<Vec<_>>()
        .join(", ',', ")
}
