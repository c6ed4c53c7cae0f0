//! Schema changes while `tandem run` runs, PostgreSQL `crm` <-> MariaDB `helpdesk` (issue #17):
//! a column added on one node stays home; once on both it is synced both ways without a restart; a
//! synced column dropped on a node pauses that table toward it (held in order, no dead letter, other
//! tables flowing, the reason in `tandem status`), and the held changes apply once it is back,
//! also across a restart of tandem.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::support::{output_text, start_tandem_run, stop_tandem_run, tandem_cli, wait_for, Pair};

const DEADLINE: Duration = Duration::from_secs(30);

const PG_SQL: &str = "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, qty int);
    CREATE TABLE others (id int PRIMARY KEY, v text)";
const MARIA_SQL: &str =
    "CREATE TABLE items (id int PRIMARY KEY, name varchar(100) NOT NULL, qty int);
    CREATE TABLE others (id int PRIMARY KEY, v varchar(100))";
const TABLES: &str = "[[tables]]\nname = \"items\"\nkey = [\"id\"]\n\n[[tables]]\nname = \"others\"\nkey = [\"id\"]\n";

async fn pg(p: &Pair, sql: &str) {
    let c = p.pg.connect("crm").await.unwrap();
    c.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn maria(p: &Pair, sql: &str) {
    let mut c = p.maria.connect("desk").await.unwrap();
    c.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    c.disconnect().await.unwrap();
}

/// `SELECT <expr> FROM <table> WHERE id = <id>` on PostgreSQL, as text; `None` for no row (or no
/// such column yet).
async fn pg_value(p: &Pair, table: &str, expr: &str, id: i32) -> Option<Option<String>> {
    let c = p.pg.connect("crm").await.unwrap();
    let sql = format!("SELECT ({expr})::text FROM {table} WHERE id = $1");
    c.query_opt(&sql, &[&id])
        .await
        .ok()
        .flatten()
        .map(|r| r.get(0))
}

/// The same on MariaDB.
async fn maria_value(p: &Pair, table: &str, expr: &str, id: i32) -> Option<Option<String>> {
    let mut c = p.maria.connect("desk").await.unwrap();
    let sql = format!("SELECT CAST({expr} AS CHAR) FROM {table} WHERE id = {id}");
    // A column not there (yet) reads as no row: the waits below poll until it is.
    let row: Option<Option<String>> = c.query_first(&sql).await.ok().flatten();
    c.disconnect().await.unwrap();
    row
}

async fn wait_pg(p: &Pair, table: &str, expr: &str, id: i32, want: Option<&str>) {
    let what = format!("{table}.{expr} of id {id} on PostgreSQL to be {want:?}");
    wait_for(&what, DEADLINE, || async {
        let v = pg_value(p, table, expr, id).await?;
        (v.as_deref() == want).then_some(())
    })
    .await;
}

async fn wait_maria(p: &Pair, table: &str, expr: &str, id: i32, want: Option<&str>) {
    let what = format!("{table}.{expr} of id {id} on MariaDB to be {want:?}");
    wait_for(&what, DEADLINE, || async {
        let v = maria_value(p, table, expr, id).await?;
        (v.as_deref() == want).then_some(())
    })
    .await;
}

async fn status(p: &Pair) -> serde_json::Value {
    let out = tandem_cli(&["status", "--format", "json"], &p.config).await;
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status printed no JSON ({e}): {}", output_text(&out)))
}

/// The paused tables `tandem status` lists on the link into `target`.
async fn paused_into(p: &Pair, target: &str) -> Vec<serde_json::Value> {
    let s = status(p).await;
    s["links"]
        .as_array()
        .and_then(|l| l.iter().find(|l| l["target"] == target))
        .and_then(|l| l["paused"].as_array().cloned())
        .unwrap_or_else(|| panic!("no link into {target} with `paused` in {s}"))
}

/// Waits until `tandem status` lists `table` paused toward `target` with `held` changes; its entry.
async fn wait_paused(p: &Pair, target: &str, table: &str, held: i64) -> serde_json::Value {
    let what = format!("{table} paused toward {target} with {held} changes held");
    wait_for(&what, DEADLINE, || async {
        let paused = paused_into(p, target).await;
        paused
            .into_iter()
            .find(|t| t["table"] == table && t["held"] == held)
    })
    .await
}

async fn wait_unpaused(p: &Pair, target: &str) {
    wait_for("the pause to end in status", DEADLINE, || async {
        paused_into(p, target).await.is_empty().then_some(())
    })
    .await;
}

/// Nothing held and nothing dead-lettered on MariaDB (`helpdesk`).
async fn maria_nothing_held_or_dead(p: &Pair) {
    assert_eq!(maria_count(p, "SELECT COUNT(*) FROM tandem.held").await, 0);
    assert_eq!(
        maria_count(p, "SELECT COUNT(*) FROM tandem.dead_letter").await,
        0,
        "a schema change must not dead-letter"
    );
}

async fn pg_count(p: &Pair, sql: &str) -> i64 {
    let c = p.pg.connect("crm").await.unwrap();
    c.query_one(sql, &[]).await.unwrap().get(0)
}

async fn maria_count(p: &Pair, sql: &str) -> i64 {
    let mut c = p.maria.connect("desk").await.unwrap();
    let n: Option<i64> = c.query_first(sql).await.unwrap();
    c.disconnect().await.unwrap();
    n.unwrap_or(0)
}

#[tokio::test]
async fn schema_change_added_column_stays_home_then_syncs_both_ways_without_restart() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    pg(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_maria(&p, "items", "name", 1, Some("a")).await;

    // On PostgreSQL only: rows reach MariaDB without it, and `check` names the column.
    pg(
        &p,
        "ALTER TABLE items ADD COLUMN note text; INSERT INTO items (id, name, qty, note) VALUES (2, 'b', 2, 'n2')",
    )
    .await;
    wait_maria(&p, "items", "name", 2, Some("b")).await;
    let text = output_text(&tandem_cli(&["check"], &p.config).await);
    assert!(
        text.contains("column note exists on crm only"),
        "check does not name the column on one node:\n{text}"
    );
    let unsynced = status(&p).await["columns_not_synced"].clone();
    assert_eq!(
        unsynced,
        serde_json::json!([{ "table": "items", "column": "note", "on": ["crm"] }]),
        "status does not list the column on one node"
    );

    // Now on MariaDB too: synced both ways from the next change on, no restart.
    maria(&p, "ALTER TABLE items ADD COLUMN note varchar(100)").await;
    pg(
        &p,
        "INSERT INTO items (id, name, qty, note) VALUES (3, 'c', 3, 'n3')",
    )
    .await;
    wait_maria(&p, "items", "name", 3, Some("c")).await;
    wait_maria(&p, "items", "note", 3, Some("n3")).await;
    maria(
        &p,
        "INSERT INTO items (id, name, qty, note) VALUES (4, 'd', 4, 'n4')",
    )
    .await;
    wait_pg(&p, "items", "note", 4, Some("n4")).await;
    maria(&p, "UPDATE items SET note = 'n3b' WHERE id = 3").await;
    wait_pg(&p, "items", "note", 3, Some("n3b")).await;
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_dropped_column_pauses_the_table_then_applies_what_was_held() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    maria(
        &p,
        "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1), (2, 'b', 2)",
    )
    .await;
    wait_pg(&p, "items", "name", 2, Some("b")).await;

    pg(&p, "ALTER TABLE items DROP COLUMN qty").await;
    // Rows from MariaDB still carry qty: the table pauses toward crm, in order.
    maria(&p, "UPDATE items SET name = 'a2', qty = 10 WHERE id = 1").await;
    maria(&p, "INSERT INTO items (id, name, qty) VALUES (3, 'c', 3)").await;
    maria(&p, "UPDATE items SET name = 'a3' WHERE id = 1").await;
    // Another table goes on meanwhile.
    maria(&p, "INSERT INTO others (id, v) VALUES (1, 'x')").await;
    wait_pg(&p, "others", "v", 1, Some("x")).await;
    let paused = wait_paused(&p, "crm", "items", 3).await;
    let reason = paused["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("qty") && reason.contains("crm"),
        "the reason names neither the column nor the node: {reason}"
    );
    assert_eq!(
        pg_value(&p, "items", "name", 1).await,
        Some(Some("a".into()))
    );
    assert_eq!(pg_value(&p, "items", "name", 3).await, None);
    assert_eq!(
        pg_count(&p, "SELECT count(*) FROM tandem.dead_letter").await,
        0,
        "a schema pause must not dead-letter"
    );

    // The column comes back: the held changes apply in order, the pause ends.
    pg(&p, "ALTER TABLE items ADD COLUMN qty int").await;
    wait_pg(&p, "items", "name", 1, Some("a3")).await;
    wait_pg(&p, "items", "qty", 1, Some("10")).await;
    wait_pg(&p, "items", "qty", 3, Some("3")).await;
    wait_unpaused(&p, "crm").await;
    assert_eq!(pg_count(&p, "SELECT count(*) FROM tandem.held").await, 0);
    // Nothing echoed back: a later PostgreSQL write reaches MariaDB after anything the release
    // could have sent, and MariaDB's audit log has no conflict (an echo would meet its newer rows).
    pg(&p, "INSERT INTO others (id, v) VALUES (2, 'y')").await;
    wait_maria(&p, "others", "v", 2, Some("y")).await;
    assert_eq!(
        maria_count(&p, "SELECT COUNT(*) FROM tandem.conflict").await,
        0,
        "the released changes travelled back to MariaDB"
    );
    assert_eq!(
        maria_value(&p, "items", "name", 1).await,
        Some(Some("a3".into()))
    );
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_pause_toward_mariadb_survives_a_restart_of_tandem() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    pg(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_maria(&p, "items", "name", 1, Some("a")).await;

    maria(&p, "ALTER TABLE items DROP COLUMN qty").await;
    pg(
        &p,
        "UPDATE items SET name = 'a2', qty = 7 WHERE id = 1; INSERT INTO items (id, name, qty) VALUES (2, 'b', 2)",
    )
    .await;
    wait_paused(&p, "helpdesk", "items", 2).await;
    stop_tandem_run(tandem).await;

    // Restarted, the table is still paused: later changes wait behind the held ones.
    let tandem = start_tandem_run(&p.config, 2).await;
    pg(
        &p,
        "UPDATE items SET name = 'a3' WHERE id = 1; INSERT INTO others (id, v) VALUES (1, 'x')",
    )
    .await;
    wait_maria(&p, "others", "v", 1, Some("x")).await;
    wait_paused(&p, "helpdesk", "items", 3).await;
    assert_eq!(
        maria_value(&p, "items", "name", 1).await,
        Some(Some("a".into()))
    );

    maria(&p, "ALTER TABLE items ADD COLUMN qty int").await;
    wait_maria(&p, "items", "name", 1, Some("a3")).await;
    wait_maria(&p, "items", "qty", 1, Some("7")).await;
    wait_maria(&p, "items", "name", 2, Some("b")).await;
    maria_nothing_held_or_dead(&p).await;
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_pause_ends_when_the_reloaded_file_excludes_the_column() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    maria(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_pg(&p, "items", "name", 1, Some("a")).await;
    pg(&p, "ALTER TABLE items DROP COLUMN qty").await;
    maria(&p, "UPDATE items SET name = 'a2', qty = 9 WHERE id = 1").await;
    wait_paused(&p, "crm", "items", 1).await;

    // A file that leaves qty out of the sync, then SIGHUP: the held update applies without it.
    let text = std::fs::read_to_string(&p.config).unwrap();
    let excluded = text.replacen(
        "name = \"items\"\nkey = [\"id\"]\n",
        "name = \"items\"\nkey = [\"id\"]\nexclude = [\"qty\"]\n",
        1,
    );
    assert_ne!(text, excluded, "the test's file did not change");
    std::fs::write(&p.config, excluded).unwrap();
    let pid = tandem.id().expect("pid").to_string();
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap();
    assert!(hup.success());
    wait_pg(&p, "items", "name", 1, Some("a2")).await;
    wait_unpaused(&p, "crm").await;
    maria(&p, "INSERT INTO items (id, name, qty) VALUES (2, 'b', 2)").await;
    wait_pg(&p, "items", "name", 2, Some("b")).await;
    assert_eq!(
        pg_count(&p, "SELECT count(*) FROM tandem.dead_letter").await,
        0
    );
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_during_a_streaming_transaction_holds_all_of_it_in_order() {
    // A budget of 1 MiB: the 5,000-row transaction streams from PostgreSQL (protocol v2) and spills.
    let tables = format!("[tandem]\nmemory_budget_mib = 1\n\n{TABLES}");
    let p = Pair::start(PG_SQL, MARIA_SQL, &tables).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    pg(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_maria(&p, "items", "name", 1, Some("a")).await;

    let writer = p.pg.connect("crm").await.unwrap();
    writer
        .batch_execute(
            "BEGIN; INSERT INTO items (id, name, qty) SELECT g, 'r' || g, g FROM generate_series(10, 5009) g",
        )
        .await
        .unwrap();
    maria(&p, "ALTER TABLE items DROP COLUMN qty").await;
    writer.batch_execute("COMMIT").await.unwrap();
    pg(&p, "INSERT INTO others (id, v) VALUES (1, 'x')").await;
    wait_maria(&p, "others", "v", 1, Some("x")).await;
    wait_paused(&p, "helpdesk", "items", 5000).await;
    assert_eq!(
        maria_count(&p, "SELECT COUNT(*) FROM items").await,
        1,
        "part of the paused transaction was applied"
    );

    maria(&p, "ALTER TABLE items ADD COLUMN qty int").await;
    wait_for(
        "the held rows on MariaDB",
        Duration::from_secs(120),
        || async {
            (maria_count(&p, "SELECT COUNT(*) FROM items WHERE qty = id").await == 5000)
                .then_some(())
        },
    )
    .await;
    maria_nothing_held_or_dead(&p).await;
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_narrowed_type_pauses_until_widened_again() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    pg(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_maria(&p, "items", "name", 1, Some("a")).await;

    maria(&p, "ALTER TABLE items MODIFY name varchar(3) NOT NULL").await;
    pg(&p, "UPDATE items SET name = 'a long name' WHERE id = 1").await;
    pg(&p, "INSERT INTO others (id, v) VALUES (1, 'x')").await;
    wait_maria(&p, "others", "v", 1, Some("x")).await;
    let paused = wait_paused(&p, "helpdesk", "items", 1).await;
    let reason = paused["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("name was varchar(100), now varchar(3)"),
        "the reason does not say which column changed type: {reason}"
    );
    assert_eq!(
        maria_count(&p, "SELECT COUNT(*) FROM tandem.dead_letter").await,
        0,
        "a narrowed column must pause, not dead-letter"
    );

    maria(&p, "ALTER TABLE items MODIFY name varchar(100) NOT NULL").await;
    wait_maria(&p, "items", "name", 1, Some("a long name")).await;
    wait_unpaused(&p, "helpdesk").await;
    stop_tandem_run(tandem).await;
}

/// The column names of `table` on MariaDB (database `desk`).
async fn maria_columns(p: &Pair, table: &str) -> Vec<String> {
    let mut c = p.maria.connect("desk").await.unwrap();
    let cols: Vec<String> = c
        .exec(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'desk' AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    cols
}

async fn pg_columns(p: &Pair, table: &str) -> Vec<String> {
    let c = p.pg.connect("crm").await.unwrap();
    c.query(
        "SELECT column_name::text FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position",
        &[&table],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test]
async fn schema_change_propagated_adds_and_drops_columns_and_audits_them() {
    let tables = TABLES.replacen(
        "name = \"items\"\nkey = [\"id\"]\n",
        "name = \"items\"\nkey = [\"id\"]\nddl = \"propagate\"\n",
        1,
    );
    let p = Pair::start(PG_SQL, MARIA_SQL, &tables).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    maria(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_pg(&p, "items", "name", 1, Some("a")).await;

    // Added on PostgreSQL: added on MariaDB with the type the rules choose, value and all.
    pg(&p, "ALTER TABLE items ADD COLUMN note varchar(40); INSERT INTO items (id, name, qty, note) VALUES (2, 'b', 2, 'n2')").await;
    wait_maria(&p, "items", "note", 2, Some("n2")).await;
    assert!(maria_columns(&p, "items")
        .await
        .contains(&"note".to_string()));
    maria(
        &p,
        "INSERT INTO items (id, name, qty, note) VALUES (3, 'c', 3, 'n3')",
    )
    .await;
    wait_pg(&p, "items", "note", 3, Some("n3")).await;
    let added = maria_count(
        &p,
        "SELECT COUNT(*) FROM tandem.conflict WHERE kind = 'ddl' AND decision = 'added' AND table_name = 'items'",
    )
    .await;
    assert_eq!(
        added, 1,
        "the propagated ADD COLUMN is not in MariaDB's audit log"
    );

    // Dropped on MariaDB: dropped on PostgreSQL once a MariaDB change shows it gone.
    maria(&p, "ALTER TABLE items DROP COLUMN qty").await;
    maria(
        &p,
        "INSERT INTO items (id, name, note) VALUES (4, 'd', 'n4')",
    )
    .await;
    wait_pg(&p, "items", "name", 4, Some("d")).await;
    let cols = pg_columns(&p, "items").await;
    assert!(
        !cols.contains(&"qty".to_string()),
        "qty is still on PostgreSQL: {cols:?}"
    );
    let dropped = pg_count(
        &p,
        "SELECT count(*) FROM tandem.conflict WHERE kind = 'ddl' AND decision = 'dropped'",
    )
    .await;
    assert_eq!(
        dropped, 1,
        "the propagated DROP COLUMN is not in PostgreSQL's audit log"
    );

    // A type with no lossless counterpart on MariaDB: refused, recorded, the row still arrives.
    pg(&p, "ALTER TABLE items ADD COLUMN span interval; INSERT INTO items (id, name, span) VALUES (5, 'e', '1 day')").await;
    wait_maria(&p, "items", "name", 5, Some("e")).await;
    assert!(!maria_columns(&p, "items")
        .await
        .contains(&"span".to_string()));
    let refused = maria_count(
        &p,
        "SELECT COUNT(*) FROM tandem.conflict WHERE kind = 'ddl' AND decision = 'refused'",
    )
    .await;
    assert_eq!(refused, 1, "the refused ADD COLUMN is not in the audit log");
    assert_eq!(pg_count(&p, "SELECT count(*) FROM tandem.held").await, 0);
    maria_nothing_held_or_dead(&p).await;
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_dropped_table_pauses_until_created_again_and_set_up() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    pg(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_maria(&p, "items", "name", 1, Some("a")).await;

    maria(&p, "DROP TABLE items").await;
    pg(&p, "INSERT INTO items (id, name, qty) VALUES (2, 'b', 2); UPDATE items SET qty = 5 WHERE id = 1").await;
    pg(&p, "INSERT INTO others (id, v) VALUES (1, 'x')").await;
    wait_maria(&p, "others", "v", 1, Some("x")).await;
    let paused = wait_paused(&p, "helpdesk", "items", 2).await;
    let reason = paused["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no longer exists on node helpdesk"),
        "the reason does not say the table is gone: {reason}"
    );

    // Created again (empty) and set up: the held insert arrives; the held update of a row the new
    // table lacks is a conflict decided by the table's rule, as any update of a missing row.
    maria(
        &p,
        "CREATE TABLE items (id int PRIMARY KEY, name varchar(100) NOT NULL, qty int)",
    )
    .await;
    let setup = tandem_cli(&["setup"], &p.config).await;
    assert!(setup.status.success(), "setup: {}", output_text(&setup));
    wait_maria(&p, "items", "name", 2, Some("b")).await;
    wait_unpaused(&p, "helpdesk").await;
    maria_nothing_held_or_dead(&p).await;
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_widened_column_leaves_other_errors_to_the_dead_letters() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    pg(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_maria(&p, "items", "name", 1, Some("a")).await;

    // A widened column explains no error; a NULL for a NOT NULL column is a dead letter as before.
    maria(
        &p,
        "ALTER TABLE items MODIFY name varchar(200) NOT NULL, MODIFY qty int NOT NULL",
    )
    .await;
    pg(
        &p,
        "INSERT INTO items (id, name, qty) VALUES (2, 'b', NULL)",
    )
    .await;
    pg(&p, "INSERT INTO items (id, name, qty) VALUES (3, 'c', 3)").await;
    wait_maria(&p, "items", "name", 3, Some("c")).await;
    assert_eq!(
        maria_count(&p, "SELECT COUNT(*) FROM tandem.dead_letter").await,
        1,
        "the NOT NULL refusal is not a dead letter"
    );
    assert!(paused_into(&p, "helpdesk").await.is_empty());
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_on_postgresql_narrowed_column_and_dropped_table_pause_toward_it() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    maria(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    maria(&p, "INSERT INTO others (id, v) VALUES (1, 'x')").await;
    wait_pg(&p, "others", "v", 1, Some("x")).await;

    pg(&p, "ALTER TABLE items ALTER COLUMN name TYPE varchar(3)").await;
    maria(&p, "UPDATE items SET name = 'a long name' WHERE id = 1").await;
    let paused = wait_paused(&p, "crm", "items", 1).await;
    let reason = paused["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("name was text, now character varying(3)"),
        "the reason does not name the column's types: {reason}"
    );
    pg(&p, "ALTER TABLE items ALTER COLUMN name TYPE text").await;
    wait_pg(&p, "items", "name", 1, Some("a long name")).await;
    wait_unpaused(&p, "crm").await;

    pg(&p, "DROP TABLE others").await;
    maria(&p, "UPDATE others SET v = 'y' WHERE id = 1").await;
    let paused = wait_for("others paused toward crm", DEADLINE, || async {
        paused_into(&p, "crm")
            .await
            .into_iter()
            .find(|t| t["table"] == "others")
    })
    .await;
    let reason = paused["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("no longer exists on node crm"),
        "the reason does not say the table is gone: {reason}"
    );
    assert_eq!(
        pg_count(&p, "SELECT count(*) FROM tandem.dead_letter").await,
        0,
        "a schema change must not dead-letter"
    );
    stop_tandem_run(tandem).await;
}

#[tokio::test]
async fn schema_change_while_tandem_was_stopped_is_still_a_pause() {
    let p = Pair::start(PG_SQL, MARIA_SQL, TABLES).await;
    let tandem = start_tandem_run(&p.config, 2).await;
    maria(&p, "INSERT INTO items (id, name, qty) VALUES (1, 'a', 1)").await;
    wait_pg(&p, "items", "qty", 1, Some("1")).await;
    stop_tandem_run(tandem).await;

    // Dropped while no tandem runs: the column is known from the last start, not taken for one
    // PostgreSQL never had.
    pg(&p, "ALTER TABLE items DROP COLUMN qty").await;
    let tandem = start_tandem_run(&p.config, 2).await;
    maria(&p, "UPDATE items SET name = 'a2', qty = 2 WHERE id = 1").await;
    let paused = wait_paused(&p, "crm", "items", 1).await;
    let reason = paused["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("qty"),
        "the reason does not name qty: {reason}"
    );
    pg(&p, "ALTER TABLE items ADD COLUMN qty int").await;
    wait_pg(&p, "items", "qty", 1, Some("2")).await;
    wait_unpaused(&p, "crm").await;
    stop_tandem_run(tandem).await;
}
