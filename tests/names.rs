//! The names `tandem setup` gives what it creates: every link its own slot, every table its own
//! trigger functions, and an install made by an earlier version moved onto the new names.

use std::collections::BTreeSet;

use tandem::harness::PgServer;

use crate::support::unique_name;

async fn setup(config: &str) -> String {
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_names")));
    std::fs::write(&path, config).expect("write config");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["setup", "--config"])
        .arg(&path)
        .output()
        .await
        .expect("run tandem setup");
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success(),
        "setup failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn slots(pg: &PgServer) -> Vec<(String, String)> {
    let c = pg.connect("postgres").await.expect("connect");
    c.query(
        "SELECT slot_name::text, confirmed_flush_lsn::text FROM pg_replication_slots \
         WHERE slot_name LIKE 'tandem%' ORDER BY 1",
        &[],
    )
    .await
    .expect("slots")
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// `a_to_b -> c` and `a -> b_to_c` were both `tandem_a_to_b_to_c`: before the fix setup made 11
/// slots for 12 links, and two links read (and confirmed) one slot.
#[tokio::test]
async fn every_link_gets_its_own_slot_when_node_ids_read_two_ways() {
    let pg = PgServer::start().await.expect("PostgreSQL starts");
    let ids = ["a", "b_to_c", "a_to_b", "c"];
    let mut config = String::new();
    for id in ids {
        pg.create_database(id).await.expect("database");
        pg.connect(id)
            .await
            .expect("connect")
            .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            .await
            .expect("table");
        config.push_str(&format!("[nodes.{id}]\nurl = \"{}\"\n", pg.url(id)));
    }
    config.push_str("[[tables]]\nname = \"t\"\nkey = [\"id\"]\n");
    setup(&config).await;
    let names: BTreeSet<String> = slots(&pg).await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(names.len(), 12, "one slot per link, got {names:?}");
    assert!(names.iter().all(|n| n.len() <= 63), "{names:?}");
    for (s, t) in [("a_to_b", "c"), ("a", "b_to_c")] {
        let name = tandem::names::slot(s, t);
        assert!(
            names.contains(&name),
            "no slot {name} for {s} -> {t}: {names:?}"
        );
    }
}

/// Long node ids: earlier versions cut the slot name at 63 bytes; setup copies that slot (with
/// its position) to the new name and drops it, so the link loses nothing across the upgrade.
#[tokio::test]
async fn setup_moves_a_slot_an_earlier_version_cut_to_its_new_name() {
    let pg = PgServer::start().await.expect("PostgreSQL starts");
    let ids = ["crm_".repeat(8), "desk".repeat(8)];
    let mut config = String::new();
    for id in &ids {
        pg.create_database(id).await.expect("database");
        pg.connect(id)
            .await
            .expect("connect")
            .batch_execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            .await
            .expect("table");
        config.push_str(&format!("[nodes.{id}]\nurl = \"{}\"\n", pg.url(id)));
    }
    config.push_str("[[tables]]\nname = \"t\"\nkey = [\"id\"]\n");
    let (source, target) = (&ids[0], &ids[1]);
    let legacy = tandem::names::legacy_slot(source, target);
    let name = tandem::names::slot(source, target);
    assert_ne!(legacy, name);
    let c = pg.connect(source).await.expect("connect");
    c.execute(
        "SELECT pg_create_logical_replication_slot($1, 'pgoutput')",
        &[&legacy],
    )
    .await
    .expect("the slot an earlier setup made");
    let before: String = c
        .query_one(
            "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
            &[&legacy],
        )
        .await
        .expect("legacy slot")
        .get(0);
    c.batch_execute("INSERT INTO t VALUES (1, 'written while tandem was being upgraded')")
        .await
        .expect("insert");
    // Run before setup would make the new slot at the end of the WAL and skip that insert.
    let (parsed, _) = tandem::config::Config::from_str_with_env(&config, "test.toml", &|_| None)
        .unwrap_or_else(|e| panic!("config: {:?}", e.problems));
    let node = parsed.node(source).expect("node");
    let reader = tandem::capture::Reader::Link {
        target: target.clone(),
    };
    match tandem::capture::Source::open(&parsed, node, reader, None).await {
        Ok(_) => panic!("the link streamed from a new slot while {legacy} holds its position"),
        Err(e) => {
            assert!(
                e.to_string().contains("run `tandem setup`") && !e.is_transient(),
                "{e}"
            );
        }
    }
    let out = setup(&config).await;
    assert!(out.contains("pg_copy_logical_replication_slot"), "{out}");
    let now = slots(&pg).await;
    assert!(
        !now.iter().any(|(n, _)| *n == legacy),
        "the earlier slot {legacy} is still there: {now:?}"
    );
    let moved = now.iter().find(|(n, _)| *n == name);
    assert_eq!(
        moved.map(|(_, lsn)| lsn.as_str()),
        Some(before.as_str()),
        "the new slot {name} must start where {legacy} stood: {now:?}"
    );
    assert!(now.iter().all(|(n, _)| n.len() <= 63), "{now:?}");
}

/// `a_b.c` and `a.b_c` both had the function `tandem.stamp_a_b_c`; the table set up last gave its
/// body (with its key column) to the other, whose inserts then failed. Before the fix the insert
/// into `a_b.c` failed with `record "new" has no field "code"`.
#[tokio::test]
async fn tables_whose_names_read_two_ways_get_their_own_trigger_functions() {
    let pg = PgServer::start().await.expect("PostgreSQL starts");
    for db in ["crm", "desk"] {
        pg.create_database(db).await.expect("database");
    }
    let crm = pg.connect("crm").await.expect("connect");
    crm.batch_execute(
        "CREATE SCHEMA a_b; CREATE SCHEMA a; \
         CREATE TABLE a_b.c (id int PRIMARY KEY, v text); \
         CREATE TABLE a.b_c (code text PRIMARY KEY, v text);",
    )
    .await
    .expect("crm schema");
    pg.connect("desk")
        .await
        .expect("connect")
        .batch_execute(
            "CREATE TABLE one (id int PRIMARY KEY, v text); CREATE TABLE two (code text PRIMARY KEY, v text)",
        )
        .await
        .expect("desk schema");
    let config = format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.desk]\nurl = \"{}\"\n\
         [[tables]]\nname = \"one\"\nkey = [\"id\"]\non = {{ crm = \"a_b.c\" }}\n\
         [[tables]]\nname = \"two\"\nkey = [\"code\"]\non = {{ crm = \"a.b_c\" }}\n",
        pg.url("crm"),
        pg.url("desk")
    );
    setup(&config).await;
    crm.batch_execute(
        "INSERT INTO a_b.c (id, v) VALUES (1, 'x'); INSERT INTO a.b_c (code, v) VALUES ('k', 'y'); \
         DELETE FROM a_b.c; DELETE FROM a.b_c",
    )
    .await
    .expect("local writes to both tables");
    let tombstones: Vec<(String, String)> = crm
        .query(
            "SELECT target_table, row_key FROM tandem.tombstone ORDER BY 1",
            &[],
        )
        .await
        .expect("tombstones")
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        tombstones,
        vec![
            ("a.b_c".to_string(), r#"{"code":"k"}"#.to_string()),
            ("a_b.c".to_string(), r#"{"id":"1"}"#.to_string()),
        ],
        "each table's delete trigger records its own key"
    );
    // A second setup (an upgrade run) changes nothing that works.
    setup(&config).await;
    crm.batch_execute("INSERT INTO a_b.c (id) VALUES (2); INSERT INTO a.b_c (code) VALUES ('m')")
        .await
        .expect("local writes after a second setup");
}

/// A MySQL/MariaDB table name longer than 50 characters made `tandem_insert_<table>` longer than
/// the server's 64: before the fix setup failed with "Identifier name … is too long".
#[tokio::test]
async fn setup_names_the_triggers_of_a_long_mysql_table_within_the_limit() {
    let long = "accounts_receivable_".repeat(3);
    let ddl = format!("CREATE TABLE {long} (id int PRIMARY KEY, v text)");
    let pair = crate::support::Pair::start(
        &ddl,
        &ddl,
        &format!("[[tables]]\nname = \"{long}\"\nkey = [\"id\"]\n"),
    )
    .await;
    use mysql_async::prelude::Queryable;
    let mut conn = pair.maria.connect("desk").await.expect("connect");
    // The revive trigger exists once the table holds another node's tombstone.
    conn.query_drop(format!(
        "INSERT INTO tandem.tombstone (target_table, row_key, version, node) \
         VALUES ('desk.{long}', '{{\"id\":\"9\"}}', 42, 'crm')"
    ))
    .await
    .expect("an applied delete's tombstone");
    let setup = crate::support::tandem_cli(&["setup"], &pair.config).await;
    assert!(
        setup.status.success(),
        "{}",
        crate::support::output_text(&setup)
    );
    let triggers: Vec<String> = conn
        .query("SELECT trigger_name FROM information_schema.triggers WHERE event_object_schema = 'desk'")
        .await
        .expect("triggers");
    assert_eq!(triggers.len(), 3, "{triggers:?}");
    assert!(triggers.iter().all(|t| t.len() <= 63), "{triggers:?}");
    conn.query_drop(format!("INSERT INTO {long} (id, v) VALUES (1, 'x')"))
        .await
        .expect("a local insert");
    let origin: Option<String> = conn
        .query_first(format!("SELECT _tandem_origin FROM {long}"))
        .await
        .expect("origin");
    assert_eq!(
        origin.as_deref(),
        Some("helpdesk"),
        "the column default stamps it"
    );
}

/// What the names cannot separate, `check` refuses before setup creates anything, naming both.
#[test]
fn check_refuses_a_name_two_tables_would_share() {
    let hashed = tandem::names::pg_stamp_function(&tandem::model::TableRef::new("a_b", "c"));
    let table = hashed.trim_start_matches("stamp_a_");
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_names")));
    std::fs::write(
        &path,
        format!(
            "[nodes.crm]\nurl = \"postgres://postgres@127.0.0.1:9/crm\"\n\
             [nodes.desk]\nurl = \"mysql://root@127.0.0.1:9/desk\"\n\
             [[tables]]\nname = \"one\"\nkey = [\"id\"]\non = {{ crm = \"a_b.c\" }}\n\
             [[tables]]\nname = \"two\"\nkey = [\"id\"]\non = {{ crm = \"a.{table}\" }}\n"
        ),
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["check", "--offline", "--config"])
        .arg(&path)
        .output()
        .expect("run tandem check");
    std::fs::remove_file(&path).ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("table a_b.c") && text.contains(&format!("table a.{table}")),
        "{text}"
    );
}
