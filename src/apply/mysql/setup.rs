//! `tandem setup` statements for a MySQL/MariaDB node: the bookkeeping database, and on each mapped
//! table INVISIBLE origin and version columns (so `SELECT *` and `INSERT … VALUES` without a column
//! list keep working) and the triggers that stamp local writes and keep tombstones. The apply
//! session sets `@tandem_applying = 1`, which the triggers leave alone.
//!
//! What a local write pays (measured by `benches/footprint.rs`):
//!
//! ```text
//!  insert  column defaults stamp origin and version (the columns are INVISIBLE, so only a write
//!          that names them sets them otherwise); an AFTER INSERT trigger draws from the table's
//!          tombstone flag (a sequence) and, once the table has tombstones of other nodes' deletes,
//!          bumps the key's (one indexed UPDATE per row: MariaDB has no statement-level triggers)
//!  update  a BEFORE UPDATE trigger: origin and the version bump, no SQL statement
//!  delete  an AFTER DELETE trigger: one tombstone upsert per row
//! ```

use super::sql::{ident, literal as lit, qname};
use crate::apply::setup::{bookkeeping_statements, migrations, SetupTable};
use crate::names;

/// Every statement, in order. Each is idempotent.
pub fn statements(
    node: &str,
    schema: &str,
    origin: &str,
    tables: &[SetupTable],
    manage: bool,
) -> Vec<String> {
    let mut out = bookkeeping_statements(&migrations!("mysql"), "`__SCHEMA__`", &ident(schema));
    if !manage {
        return out;
    }
    let now = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)";
    // The flags exist, and are raised by every tombstone written from now on (the trigger waits
    // for every open writer of the tombstone table), before a table's revive trigger reads its
    // flag; the tombstones already there raise theirs.
    let managed: Vec<&SetupTable> = tables
        .iter()
        .filter(|t| t.managed_version.is_some())
        .collect();
    for t in &managed {
        out.push(format!(
            "CREATE SEQUENCE IF NOT EXISTS {} CACHE 1000000",
            flag(schema, t)
        ));
    }
    if !managed.is_empty() {
        out.push(flag_trigger(node, schema, &managed));
    }
    for t in &managed {
        out.push(format!(
            "SELECT SETVAL({}, {RAISED}) FROM DUAL WHERE EXISTS (SELECT 1 FROM {}.tombstone WHERE target_table = {} AND node <> {})",
            flag(schema, t),
            ident(schema),
            lit(&t.table.to_string()),
            lit(node)
        ));
    }
    for t in tables {
        let q = qname(&t.table);
        let trigger = |event: &str| {
            format!(
                "{}.{}",
                ident(&t.table.schema),
                ident(&names::mysql_trigger(event, &t.table))
            )
        };
        // The version is added with a constant default (existing rows get 0, as before, without
        // evaluating the clock for each), then given the clock for the rows to come.
        out.push(format!(
            "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} VARCHAR(64) NULL INVISIBLE",
            ident(origin)
        ));
        out.push(format!(
            "ALTER TABLE {q} ALTER COLUMN {} SET DEFAULT {}",
            ident(origin),
            lit(node)
        ));
        if let Some(v) = &t.managed_version {
            out.push(format!(
                "ALTER TABLE {q} ADD COLUMN IF NOT EXISTS {} BIGINT NOT NULL DEFAULT 0 INVISIBLE",
                ident(v)
            ));
            out.push(format!(
                "ALTER TABLE {q} ALTER COLUMN {} SET DEFAULT ({now})",
                ident(v)
            ));
        }
        let version = match &t.managed_version {
            Some(v) => format!(" SET NEW.{v} = GREATEST(OLD.{v} + 1, {now});", v = ident(v)),
            None => String::new(),
        };
        out.push(format!(
            "CREATE OR REPLACE TRIGGER {} BEFORE UPDATE ON {q} FOR EACH ROW BEGIN \
             IF COALESCE(@tandem_applying, 0) = 0 THEN SET NEW.{} = {};{version} END IF; END",
            trigger("update"),
            ident(origin),
            lit(node),
        ));
        if let Some(v) = &t.managed_version {
            // The key lives again: the insert shows, in its own transaction, which deletes of the
            // key this node had seen (see 005). After the row is in, so that a delete of the key
            // still open when the insert began has committed (the insert waited for it) and is
            // bumped too, and a REPLACE bumps the tombstone of the row it replaced.
            out.push(format!(
                "CREATE OR REPLACE TRIGGER {} AFTER INSERT ON {q} FOR EACH ROW BEGIN \
                 IF COALESCE(@tandem_applying, 0) = 0 AND NEXTVAL({flag}) > {RAISED} THEN \
                 UPDATE {s}.tombstone SET revived = revived + 1 WHERE target_table = {table} AND row_key = CONCAT('{{', {key}, '}}'); \
                 END IF; END",
                trigger("revive"),
                flag = flag(schema, t),
                s = ident(schema),
                table = lit(&t.table.to_string()),
                key = key_text(t, "NEW"),
            ));
            let key = key_text(t, "OLD");
            out.push(format!(
                "CREATE OR REPLACE TRIGGER {} AFTER DELETE ON {q} FOR EACH ROW BEGIN \
                 IF COALESCE(@tandem_applying, 0) = 0 THEN \
                 INSERT INTO {s}.tombstone (target_table, row_key, version, node) VALUES ({table}, CONCAT('{{', {key}, '}}'), OLD.{v} + 1, {n}) \
                 ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version)), deleted_at = NOW(6); END IF; END",
                trigger("delete"),
                s = ident(schema),
                table = lit(&t.table.to_string()),
                v = ident(v),
                n = lit(node),
            ));
        }
        // Earlier versions stamped inserts (and bumped tombstones before the row was in) in a
        // BEFORE INSERT trigger; the column defaults and the revive trigger do it now.
        out.push(format!("DROP TRIGGER IF EXISTS {}", trigger("insert")));
        out.extend(drop_legacy_triggers(t));
    }
    out
}

/// A raised tombstone flag: the flag is a sequence that every local insert of the table draws from
/// (served from its cache, no SQL statement); the first tombstone of the table sets it to this, and
/// an insert that draws a value above it looks for tombstones of its key. `SETVAL` is not
/// transactional: the flag is up before the tombstone is visible.
const RAISED: u64 = 1 << 62;

/// The table's tombstone flag, qualified.
fn flag(schema: &str, t: &SetupTable) -> String {
    format!(
        "{}.{}",
        ident(schema),
        ident(&names::tombstone_flag(&t.table))
    )
}

/// The trigger on the tombstone table that raises a table's flag when its first tombstone of
/// another node's delete is written (by the applier, whose session fires it too). A local insert
/// need not revive the tombstones of this node's own deletes: the link that carries it to a peer
/// carried those deletes first, in this node's commit order, and the peer counts them as seen
/// (see `Link::unseen`). So a table whose deletes all happened here keeps its flag down, and its
/// inserts run no SQL statement.
fn flag_trigger(node: &str, schema: &str, tables: &[&SetupTable]) -> String {
    let branches: Vec<String> = tables
        .iter()
        .map(|t| {
            format!(
                "IF NEW.target_table = {} THEN IF NEXTVAL({f}) < {RAISED} THEN DO SETVAL({f}, {RAISED}); END IF; ",
                lit(&t.table.to_string()),
                f = flag(schema, t),
            )
        })
        .collect();
    format!(
        "CREATE OR REPLACE TRIGGER {s}.tandem_mark AFTER INSERT ON {s}.tombstone FOR EACH ROW BEGIN \
         IF NEW.node <> {n} THEN {}END IF; END IF; END",
        branches.join("ELSE"),
        s = ident(schema),
        n = lit(node),
    )
}

/// What [`statements`] installs on `t`, and what each kind of local write then pays (see
/// [`crate::apply::setup::Footprint`]).
pub fn footprint(
    node: &str,
    schema: &str,
    origin: &str,
    t: &SetupTable,
    manage: bool,
) -> (Vec<String>, Vec<String>) {
    if !manage {
        return (Vec::new(), vec!["nothing (manage_columns is off)".into()]);
    }
    let trigger = |event: &str| names::mysql_trigger(event, &t.table);
    let mut installs = vec![format!(
        "column {origin} VARCHAR(64) INVISIBLE DEFAULT '{node}'"
    )];
    let costs = match &t.managed_version {
        Some(v) => {
            installs.push(format!(
                "column {v} BIGINT NOT NULL INVISIBLE DEFAULT the clock in microseconds"
            ));
            installs.push(format!(
                "triggers {} (AFTER INSERT), {} (BEFORE UPDATE), {} (AFTER DELETE); the sequence \
                 {schema}.{} (raised by the trigger tandem_mark on {schema}.tombstone)",
                trigger("revive"),
                trigger("update"),
                trigger("delete"),
                names::tombstone_flag(&t.table)
            ));
            vec![
                "insert: the column defaults and a row trigger that draws from the table's tombstone \
                 flag (a sequence, no SQL statement); once the table has a tombstone of another \
                 node's delete (applied here), one indexed UPDATE of the tombstone table \
                 per inserted row (MariaDB has no statement-level triggers: a bulk load pays it per \
                 row)"
                    .to_string(),
                "update: a row trigger that runs no SQL".to_string(),
                "delete: a row trigger inserting one tombstone per deleted row".to_string(),
            ]
        }
        None => {
            installs.push(format!("trigger {} (BEFORE UPDATE)", trigger("update")));
            vec![
                "insert: the column default, no trigger".to_string(),
                "update: a row trigger that runs no SQL".to_string(),
                "delete: nothing".to_string(),
            ]
        }
    };
    (installs, costs)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TableRef;

    fn statements_for(managed: bool) -> Vec<String> {
        let t = SetupTable {
            table: TableRef::new("desk", "item"),
            managed_version: managed.then(|| "_tandem_version".to_string()),
            key: vec!["id".into()],
            old_row: None,
        };
        statements("helpdesk", "tandem", "_tandem_origin", &[t], true)
    }

    #[test]
    fn inserts_are_stamped_by_defaults_and_revive_after_the_row_is_in() {
        let all = statements_for(true);
        let mark = all
            .iter()
            .position(|s| {
                s.contains("TRIGGER `tandem`.tandem_mark AFTER INSERT ON `tandem`.tombstone")
            })
            .expect("the flag trigger");
        assert!(
            all[mark].contains("IF NEW.target_table = 'desk.item' THEN"),
            "{}",
            all[mark]
        );
        assert!(all.iter().any(|s| s
            == "ALTER TABLE `desk`.`item` ALTER COLUMN `_tandem_origin` SET DEFAULT 'helpdesk'"));
        assert!(all.iter().any(|s| s.contains(
            "ALTER COLUMN `_tandem_version` SET DEFAULT (CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED))"
        )));
        assert!(!all.iter().any(|s| s.contains("BEFORE INSERT")), "{all:#?}");
        let revive = all
            .iter()
            .position(|s| s.contains("`tandem_revive_item` AFTER INSERT"))
            .expect("the revive trigger");
        let dropped = all
            .iter()
            .position(|s| s == "DROP TRIGGER IF EXISTS `desk`.`tandem_insert_item`")
            .expect("the earlier insert trigger dropped");
        assert!(
            revive < dropped,
            "the revive trigger exists before the old one goes"
        );
    }

    #[test]
    fn a_table_with_its_own_version_gets_no_tombstone_triggers() {
        let all = statements_for(false);
        assert!(!all.iter().any(|s| s.contains("tombstone SET revived")));
        assert!(all.iter().any(|s| s.contains("BEFORE UPDATE")));
    }
}
