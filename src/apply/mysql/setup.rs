//! `tandem setup` statements for a MySQL/MariaDB node: the bookkeeping database, and on each mapped
//! table INVISIBLE origin and version columns (so `SELECT *` and `INSERT … VALUES` without a column
//! list keep working) and the triggers that stamp local writes and keep tombstones. The apply
//! session sets `@tandem_applying = 1`, which the triggers leave alone.
//!
//! What a local write pays (measured by `benches/footprint.rs`):
//!
//! ```text
//!  insert  column defaults stamp origin and version (the columns are INVISIBLE, so only a write
//!          that names them sets them otherwise); no trigger until the table holds a tombstone of
//!          another node's delete, then an AFTER INSERT trigger bumps the key's tombstones (one
//!          indexed UPDATE per row: MariaDB has no statement-level triggers; see `revive_trigger`)
//!  update  a BEFORE UPDATE trigger: origin and the version bump, no SQL statement
//!  delete  an AFTER DELETE trigger: one tombstone upsert per row
//! ```

use super::sql::{ident, literal as lit, qname};
use crate::apply::setup::{bookkeeping_statements, migrations, SetupTable};
use crate::model::TableRef;
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
    for t in tables {
        let q = qname(&t.table);
        let trigger = |event: &str| qualified_trigger(event, &t.table);
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
            let key = key_text(&t.key, "OLD");
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
        // Made here on every managed table, so that an earlier install's revive trigger (which read
        // the flag dropped below) is replaced before anything it reads goes; `apply::setup` then
        // drops it again where the table holds no tombstone of another node's delete.
        if t.managed_version.is_some() {
            out.push(revive_trigger(schema, &t.table, &t.key));
        }
        // Earlier versions stamped inserts (and bumped tombstones before the row was in) in a
        // BEFORE INSERT trigger; the column defaults and the revive trigger do it now.
        out.push(format!("DROP TRIGGER IF EXISTS {}", trigger("insert")));
        out.extend(drop_legacy_triggers(t));
    }
    // Earlier versions kept a flag per table (a sequence, raised by a trigger on the tombstone
    // table) that the revive trigger read: the revive trigger now exists only where it is needed.
    out.push(format!(
        "DROP TRIGGER IF EXISTS {}.tandem_mark",
        ident(schema)
    ));
    for t in tables.iter().filter(|t| t.managed_version.is_some()) {
        out.push(format!("DROP SEQUENCE IF EXISTS {}", flag(schema, t)));
    }
    out
}

/// What `apply::setup` runs on a managed table after [`statements`]: the revive trigger stays only
/// where the table holds a tombstone of another node's delete. Under `lock` (the table locked for
/// writing, the tombstones for reading, waiting at most 10 s), so that no applier writes such a
/// tombstone between the read and the drop.
pub struct ReviveCheck {
    pub lock: String,
    pub holds_other_nodes_tombstone: String,
    pub drop: String,
}

/// The statements of [`ReviveCheck`] for `t` (managed version only).
pub fn revive_check(node: &str, schema: &str, t: &SetupTable) -> Option<ReviveCheck> {
    t.managed_version.as_ref()?;
    Some(ReviveCheck {
        lock: format!(
            "SET STATEMENT lock_wait_timeout = 10 FOR LOCK TABLES {} WRITE, {}.tombstone READ",
            qname(&t.table),
            ident(schema)
        ),
        holds_other_nodes_tombstone: format!(
            "SELECT 1 FROM {}.tombstone WHERE target_table = {} AND node <> {} LIMIT 1",
            ident(schema),
            lit(&t.table.to_string()),
            lit(node)
        ),
        drop: format!(
            "DROP TRIGGER IF EXISTS {}",
            qualified_trigger("revive", &t.table)
        ),
    })
}

/// The sequence that earlier versions kept as the table's tombstone flag, qualified.
fn flag(schema: &str, t: &SetupTable) -> String {
    format!(
        "{}.{}",
        ident(schema),
        ident(&names::tombstone_flag(&t.table))
    )
}

/// The trigger of `table` for `event`, qualified.
fn qualified_trigger(event: &str, table: &TableRef) -> String {
    format!(
        "{}.{}",
        ident(&table.schema),
        ident(&names::mysql_trigger(event, table))
    )
}

/// The revive trigger of `table` (whose key columns on this node are `key`, in key order): a local
/// insert bumps, in its own transaction, the tombstones of its key (see 005), so the insert
/// carries every delete of the key this node had seen. After the row is in, so that a delete of the
/// key still open when the insert began has committed (the insert waited for it) and is bumped
/// too, and a REPLACE bumps the tombstone of the row it replaced.
///
/// A table needs it only once it holds a tombstone of another node's delete: the tombstones of this
/// node's own deletes reach a peer by the link that carries the insert, before it, and the peer
/// counts them as seen (`Link::unseen`). MariaDB has no statement-level triggers, and a row
/// trigger, even an empty one, costs a bulk insert more than half again its time; so `tandem
/// setup` creates it only on a table that holds such a tombstone, and the applier creates it
/// before it writes a table's first one (`MyTarget::check_revive`), outside its transaction, so
/// that every local insert that could see that tombstone runs it.
pub fn revive_trigger(schema: &str, table: &TableRef, key: &[String]) -> String {
    format!(
        "CREATE OR REPLACE TRIGGER {} AFTER INSERT ON {} FOR EACH ROW BEGIN \
         IF COALESCE(@tandem_applying, 0) = 0 THEN \
         UPDATE {s}.tombstone SET revived = revived + 1 WHERE target_table = {t} AND row_key = CONCAT('{{', {k}, '}}'); \
         END IF; END",
        qualified_trigger("revive", table),
        qname(table),
        s = ident(schema),
        t = lit(&table.to_string()),
        k = key_text(key, "NEW"),
    )
}

/// What [`statements`] installs on `t`, and what each kind of local write then pays (see
/// [`crate::apply::setup::Footprint`]).
pub fn footprint(
    node: &str,
    _schema: &str,
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
                "triggers {} (BEFORE UPDATE), {} (AFTER DELETE); {} (AFTER INSERT) only once the \
                 table holds a tombstone of another node's delete (setup makes it where one is \
                 there, the applier before it writes the table's first)",
                trigger("update"),
                trigger("delete"),
                trigger("revive"),
            ));
            vec![
                "insert: the column defaults, no trigger; once the table holds a tombstone of \
                 another node's delete, a row trigger running one indexed UPDATE of the tombstone \
                 table per inserted row (MariaDB has no statement-level triggers: a bulk load pays \
                 it per row, and the trigger alone costs a bulk insert more than half again)"
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
fn key_text(key: &[String], rec: &str) -> String {
    key.iter()
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
        assert!(all.iter().any(|s| s
            == "ALTER TABLE `desk`.`item` ALTER COLUMN `_tandem_origin` SET DEFAULT 'helpdesk'"));
        assert!(all.iter().any(|s| s.contains(
            "ALTER COLUMN `_tandem_version` SET DEFAULT (CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED))"
        )));
        assert!(!all.iter().any(|s| s.contains("BEFORE INSERT")), "{all:#?}");
        let position = |what: &str| {
            all.iter()
                .position(|s| s.starts_with(what))
                .unwrap_or_else(|| panic!("{what}: {all:#?}"))
        };
        let revive = position("CREATE OR REPLACE TRIGGER `desk`.`tandem_revive_item` AFTER INSERT");
        assert!(
            !all[revive].contains("NEXTVAL"),
            "the revive trigger reads no flag: {}",
            all[revive]
        );
        let dropped = position("DROP TRIGGER IF EXISTS `desk`.`tandem_insert_item`");
        let mark = position("DROP TRIGGER IF EXISTS `tandem`.tandem_mark");
        let flag = position("DROP SEQUENCE IF EXISTS `tandem`.`tombstoned_desk_item`");
        assert!(
            revive < dropped && revive < mark && revive < flag,
            "an earlier install's revive trigger is replaced before what it read goes"
        );
        let t = SetupTable {
            table: TableRef::new("desk", "item"),
            managed_version: Some("_tandem_version".into()),
            key: vec!["id".into(), "site".into()],
            old_row: None,
        };
        let check = revive_check("helpdesk", "tandem", &t).expect("a managed table");
        assert_eq!(
            check.holds_other_nodes_tombstone,
            "SELECT 1 FROM `tandem`.tombstone WHERE target_table = 'desk.item' AND node <> 'helpdesk' LIMIT 1"
        );
        assert_eq!(
            check.drop,
            "DROP TRIGGER IF EXISTS `desk`.`tandem_revive_item`"
        );
        assert_eq!(
            check.lock,
            "SET STATEMENT lock_wait_timeout = 10 FOR LOCK TABLES `desk`.`item` WRITE, `tandem`.tombstone READ"
        );
        let create = revive_trigger("tandem", &t.table, &t.key);
        assert!(
            create.contains(
                "row_key = CONCAT('{', JSON_QUOTE('id'), ':', JSON_QUOTE(CAST(NEW.`id` AS CHAR)), ',', \
                 JSON_QUOTE('site'), ':', JSON_QUOTE(CAST(NEW.`site` AS CHAR)), '}')"
            ),
            "{}",
            create
        );
    }

    #[test]
    fn a_table_with_its_own_version_gets_no_tombstone_triggers() {
        let all = statements_for(false);
        assert!(!all.iter().any(|s| s.contains("tombstone SET revived")));
        assert!(all.iter().any(|s| s.contains("BEFORE UPDATE")));
    }
}
