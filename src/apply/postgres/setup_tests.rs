//! Unit tests of `setup.rs`: the statements setup makes for a PostgreSQL node.

use super::*;
use crate::model::TableRef;

fn managed() -> SetupTable {
    SetupTable {
        table: TableRef::new("public", "item"),
        managed_version: Some("_tandem_version".into()),
        key: vec!["id".into(), "Code".into()],
        old_row: None,
    }
}

fn per_table(all: &[String]) -> Vec<&String> {
    let first = all
        .iter()
        .position(|s| s.starts_with("ALTER TABLE \"public\".\"item\""))
        .unwrap_or(0);
    all[first..].iter().collect()
}

/// A table whose rules need only the key and the version is logged without its old rows: the
/// update trigger keeps the old version in the new row, the delete trigger writes it into the
/// tombstone just before the row goes (and lets the row go, applying or not), and the identity
/// changes after both, in their transaction, to DEFAULT only when the primary key is the key.
#[test]
fn a_table_that_needs_only_key_and_version_logs_no_old_row() {
    let all = statements("crm", "tandem", "_tandem_origin", &[managed()], true);
    assert!(
        !all.iter()
            .any(|s| s == "ALTER TABLE \"public\".\"item\" REPLICA IDENTITY FULL"),
        "{all:#?}"
    );
    let at = |what: &str| {
        all.iter()
            .rposition(|s| s.contains(what))
            .unwrap_or_else(|| panic!("{what} missing in {all:#?}"))
    };
    assert!(
        all[at("ADD COLUMN IF NOT EXISTS \"_tandem_version_prev\" bigint")]
            .starts_with("ALTER TABLE \"public\".\"item\"")
    );
    let stamp = &all[at("CREATE OR REPLACE FUNCTION \"tandem\".\"stamp_public_item\"()")];
    assert!(
        stamp.contains("NEW.\"_tandem_version_prev\" := OLD.\"_tandem_version\";"),
        "{stamp}"
    );
    let tomb = &all[at("CREATE OR REPLACE FUNCTION \"tandem\".\"tombstone_public_item\"()")];
    assert!(tomb.contains("last_version) VALUES"), "{tomb}");
    assert!(tomb.contains("OLD.\"_tandem_version\")"), "{tomb}");
    assert!(
        !tomb.contains("RETURN NULL"),
        "a NULL would cancel the delete: {tomb}"
    );
    assert_eq!(tomb.matches("RETURN OLD").count(), 2, "{tomb}");
    let trigger = at("TRIGGER tandem_tombstone BEFORE DELETE");
    let identity = at("REPLICA IDENTITY DEFAULT");
    assert!(
        all[identity].contains("pk @> k AND pk <@ k"),
        "{}",
        all[identity]
    );
    assert!(
        all[identity].contains("ARRAY['id', 'Code']"),
        "{}",
        all[identity]
    );
    assert!(
        all[identity].contains("REPLICA IDENTITY FULL"),
        "{}",
        all[identity]
    );
    let stamp_trigger = at("TRIGGER tandem_stamp_update");
    let commit = all.iter().rposition(|s| s == "COMMIT").unwrap_or(0);
    let begin = all.iter().rposition(|s| s == "BEGIN").unwrap_or(usize::MAX);
    assert!(begin < trigger && trigger < identity && stamp_trigger < identity && identity < commit);
    let revive = &all[at("CREATE OR REPLACE FUNCTION \"tandem\".\"revive_public_item\"()")];
    assert!(revive.contains("last_version = NULL"), "{revive}");
}

/// A table whose rules read the old row keeps it in the log, and its delete trigger stays
/// after the delete.
#[test]
fn a_table_whose_rules_read_the_old_row_keeps_it_logged() {
    let t = SetupTable {
        old_row: Some("a field merge reads the old values"),
        ..managed()
    };
    let all = statements("crm", "tandem", "_tandem_origin", &[t], true);
    assert!(all
        .iter()
        .any(|s| s == "ALTER TABLE \"public\".\"item\" REPLICA IDENTITY FULL"));
    assert!(!all
        .iter()
        .any(|s| s.contains("REPLICA IDENTITY DEFAULT") || s.contains("_tandem_version_prev")));
    let tomb = all
        .iter()
        .find(|s| s.contains("TRIGGER tandem_tombstone"))
        .expect("the delete trigger");
    assert!(tomb.contains("AFTER DELETE"), "{tomb}");
}

#[test]
fn no_statement_runs_per_inserted_row_until_the_table_has_tombstones() {
    let all = statements("crm", "tandem", "_tandem_origin", &[managed()], true);
    let sql = per_table(&all);
    let stamp = sql
        .iter()
        .find(|s| s.contains("FUNCTION \"tandem\".\"stamp_public_item\"()"))
        .expect("the stamp function");
    assert!(!stamp.contains("UPDATE \"tandem\""), "{stamp}");
    let insert = sql
        .iter()
        .find(|s| s.contains("TRIGGER tandem_stamp BEFORE INSERT"))
        .expect("the insert trigger");
    assert!(insert.contains("WHEN (NEW.\"_tandem_origin\" IS DISTINCT FROM 'crm' OR NEW.\"_tandem_version\" IS NULL)"), "{insert}");
    let revive = sql
        .iter()
        .find(|s| s.starts_with("DO") && s.contains("TRIGGER tandem_revive AFTER INSERT"))
        .expect("the revive trigger");
    assert!(
        revive.contains(
            "pg_sequence_last_value('\"tandem\".\"peer_tombstoned_public_item\"'::regclass) IS NOT NULL"
        ),
        "the revive trigger waits for another node's tombstone: {revive}"
    );
    assert!(
        revive.contains("REFERENCING NEW TABLE AS tandem_inserted FOR EACH STATEMENT"),
        "one UPDATE per statement: {revive}"
    );
    assert!(
        revive.contains("LOCK TABLE ONLY \"public\".\"item\" IN SHARE ROW EXCLUSIVE MODE")
            && revive.contains("DROP TRIGGER IF EXISTS tandem_revive")
            && revive.contains(
                "IF EXISTS (SELECT 1 FROM \"tandem\".tombstone WHERE target_table = 'public.item' AND node <> 'crm')"
            ),
        "setup keeps the revive trigger only where another node's tombstone is: {revive}"
    );
    let delete = sql
        .iter()
        .find(|s| s.contains("TRIGGER tandem_tombstone BEFORE DELETE"))
        .expect("the delete trigger");
    assert!(delete.contains("FOR EACH ROW"), "{delete}");
    let flag = sql
        .iter()
        .position(|s| s.contains("TRIGGER tandem_mark AFTER INSERT ON \"tandem\".tombstone"))
        .expect("the flag trigger");
    let first_revive = sql
        .iter()
        .position(|s| s.starts_with("DO") && s.contains("TRIGGER tandem_revive"))
        .unwrap_or(0);
    assert!(
        flag < first_revive,
        "flags are kept before any insert reads one"
    );
    let function = all
        .iter()
        .position(|s| s.contains("FUNCTION \"tandem\".\"revive_public_item\"()"))
        .expect("the revive function");
    let mark = all
        .iter()
        .position(|s| s.contains("FUNCTION \"tandem\".\"mark_tombstoned\"()"))
        .expect("the flag function");
    assert!(
        function < mark,
        "the revive function exists before the flag trigger can make a trigger calling it"
    );
    if std::env::var_os("TANDEM_PRINT_SETUP").is_some() {
        for s in &all {
            println!("{s};");
        }
    }
}

#[test]
fn each_table_moves_onto_the_new_triggers_in_one_transaction() {
    let all = statements("crm", "tandem", "_tandem_origin", &[managed()], true);
    // The flags' transaction comes first; the table's is the last.
    let begin = all.iter().rposition(|s| s == "BEGIN").expect("BEGIN");
    let commit = all.iter().rposition(|s| s == "COMMIT").expect("COMMIT");
    for name in [
        "tandem_tombstone",
        "tandem_revive",
        "tandem_stamp_update",
        "tandem_stamp ",
    ] {
        // The last mention: the flag trigger's function (earlier) makes revive triggers too.
        let at = all
            .iter()
            .rposition(|s| s.contains(&format!("TRIGGER {name}")))
            .unwrap_or(usize::MAX);
        assert!(
            begin < at && at < commit,
            "{name} outside the table's transaction"
        );
    }
}

/// The applier skips the tombstone lookup of a batch while the table's flag is down: no
/// flag may be seen down while its table has tombstones, so the flags are made, raised for
/// the tombstones already there and armed by the trigger in one transaction that holds
/// tombstone writers off.
#[test]
fn the_flags_are_made_raised_and_armed_in_one_transaction() {
    let all = statements("crm", "tandem", "_tandem_origin", &[managed()], true);
    let at = |what: &str| {
        all.iter()
            .position(|s| s.contains(what))
            .unwrap_or_else(|| panic!("{what} missing"))
    };
    let begin = all.iter().position(|s| s == "BEGIN").expect("BEGIN");
    let commit = all.iter().position(|s| s == "COMMIT").expect("COMMIT");
    let lock = at("LOCK TABLE \"tandem\".tombstone IN SHARE ROW EXCLUSIVE MODE");
    let create = at("CREATE SEQUENCE IF NOT EXISTS \"tandem\".\"tombstoned_public_item\"");
    let arm = at("CREATE OR REPLACE TRIGGER tandem_mark");
    let raise = at("SELECT setval('\"tandem\".\"tombstoned_public_item\"'::regclass, 1)");
    let create_peer =
        at("CREATE SEQUENCE IF NOT EXISTS \"tandem\".\"peer_tombstoned_public_item\"");
    let raise_peer = at("SELECT setval('\"tandem\".\"peer_tombstoned_public_item\"'::regclass, 1)");
    assert!(
        begin < lock && lock < create && create < arm && arm < raise && raise < commit,
        "{all:#?}"
    );
    assert!(
        lock < create_peer && create_peer < arm && arm < raise_peer && raise_peer < commit,
        "{all:#?}"
    );
    assert!(
        all[raise_peer].ends_with("AND node <> 'crm')"),
        "the peer flag goes up for other nodes' tombstones only: {}",
        all[raise_peer]
    );
}

#[test]
fn the_flag_trigger_names_every_managed_table() {
    let other = SetupTable {
        table: TableRef::new("sales", "order"),
        managed_version: Some("_tandem_version".into()),
        key: vec!["id".into()],
        old_row: None,
    };
    let all = statements("crm", "tandem", "_tandem_origin", &[managed(), other], true);
    let f = all
        .iter()
        .find(|s| s.contains("FUNCTION \"tandem\".\"mark_tombstoned\"()"))
        .expect("the flag function");
    assert!(
        f.contains("IF NEW.target_table = 'public.item' THEN"),
        "{f}"
    );
    assert!(
        f.contains("ELSIF NEW.target_table = 'sales.order' THEN"),
        "{f}"
    );
    assert!(
        f.contains("IF NEW.node <> 'crm' THEN")
            && f.contains(
                "PERFORM setval('\"tandem\".\"peer_tombstoned_sales_order\"'::regclass, 1)"
            ),
        "{f}"
    );
    // Another node's tombstone makes the table's revive trigger where it is missing, waiting at
    // most a second for the table, the setting put back afterwards.
    for (table, q) in [
        ("public.item", "\"public\".\"item\""),
        ("sales.order", "\"sales\".\"order\""),
    ] {
        assert!(
            f.contains(&format!("LOCK TABLE ONLY {q} IN ROW EXCLUSIVE MODE"))
                && f.contains(&format!(
                    "IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgrelid = '{q}'::regclass AND tgname = 'tandem_revive')"
                ))
                && f.contains(&format!("CREATE TRIGGER tandem_revive AFTER INSERT ON {q} REFERENCING NEW TABLE")),
            "{table}: {f}"
        );
    }
    assert!(
        f.contains("PERFORM set_config('lock_timeout', (extract(epoch from current_setting('deadlock_timeout')::interval) * 1000 + 1000)::bigint::text, true)")
            && f.contains("PERFORM set_config('lock_timeout', waited, true)"),
        "{f}"
    );
}

/// The applier's own transaction that makes a revive trigger: READ COMMITTED, the table locked
/// before the look (two links making it at once wait for each other), a lock wait past
/// `deadlock_timeout`.
#[test]
fn the_applier_makes_a_revive_trigger_in_a_transaction_of_its_own() {
    let sql = make_revive("tandem", &TableRef::new("public", "item"));
    assert!(
        sql.starts_with("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT set_config('lock_timeout', (extract(epoch from current_setting('deadlock_timeout')::interval) * 1000 + 1000)::bigint::text, true); DO ")
            && sql.ends_with("; COMMIT"),
        "{sql}"
    );
    let lock = sql
        .find("LOCK TABLE ONLY \"public\".\"item\" IN SHARE ROW EXCLUSIVE MODE")
        .expect("the lock");
    let look = sql
        .find("IF NOT EXISTS (SELECT 1 FROM pg_trigger")
        .expect("the look");
    let create = sql
        .find("CREATE TRIGGER tandem_revive AFTER INSERT ON \"public\".\"item\"")
        .expect("the trigger");
    assert!(lock < look && look < create, "{sql}");
}
