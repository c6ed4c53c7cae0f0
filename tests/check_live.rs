//! `tandem check` against live databases: a sound pairing passes, a broken one lists every problem.

use std::process::Command;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use crate::support::unique_name;

fn check(config: &str) -> (i32, String) {
    let out = tandem(&["check"], config);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Runs `tandem <args…> --config FILE` with `config` written to a temporary file.
fn tandem(args: &[&str], config: &str) -> std::process::Output {
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_live")));
    std::fs::write(&path, config).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .arg("--config")
        .arg(&path)
        .output()
        .expect("run tandem");
    std::fs::remove_file(&path).ok();
    out
}

async fn servers(pg_sql: &str, maria_sql: &str) -> (PgServer, MariaDb) {
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg.create_database("crm").await.unwrap();
    pg.connect("crm")
        .await
        .unwrap()
        .batch_execute(pg_sql)
        .await
        .expect("PostgreSQL schema");
    maria.create_database("desk").await.unwrap();
    let mut conn = maria.connect("desk").await.unwrap();
    conn.query_drop(maria_sql).await.expect("MariaDB schema");
    conn.disconnect().await.unwrap();
    (pg, maria)
}

fn pairing(pg: &PgServer, maria: &MariaDb, tables: &str) -> String {
    format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n{tables}",
        pg.url("crm"),
        maria.url("desk")
    )
}

const MAPPING: &str = r#"
[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }

[[tables.columns]]
name = "id"
on = { helpdesk = "client_id" }

[[tables.columns]]
name = "status"
on = { helpdesk = "status_code" }
values = { helpdesk = { "Approved" = 1, "Pending review" = 2 } }
"#;

#[tokio::test]
async fn check_live_accepts_a_sound_pairing() {
    let (pg, maria) = servers(
        "CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL, status text, \
         amount numeric(12,2), born date, seen timestamp(6), notes text, crm_only int)",
        "CREATE TABLE clients (client_id int PRIMARY KEY, name varchar(100) NOT NULL, status_code tinyint, \
         amount decimal(12,2), born date, seen datetime(6), notes longtext)",
    )
    .await;
    let (code, out) = check(&pairing(&pg, &maria, MAPPING));
    assert_eq!(code, 0, "a sound pairing must pass:\n{out}");
    assert!(out.contains("column crm_only exists on crm only"), "{out}");
    assert!(
        out.contains("run `tandem setup`"),
        "the missing managed version column is a warning:\n{out}"
    );
}

/// `forward_replicated = false` is a warning that says what it would do on this server: nothing
/// before PostgreSQL 16; from 16 on, name the other replication it would leave out.
#[tokio::test]
async fn check_live_says_what_forward_replicated_false_leaves_out() {
    let origin = unique_name("other_tool");
    let (pg, maria) = servers(
        &format!(
            "CREATE TABLE customers (id int PRIMARY KEY, name varchar(100) NOT NULL, status text); \
             SELECT pg_replication_origin_create('{origin}')"
        ),
        "CREATE TABLE clients (client_id int PRIMARY KEY, name varchar(100) NOT NULL, status_code tinyint)",
    )
    .await;
    let version: i32 = pg
        .connect("crm")
        .await
        .expect("connect")
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .expect("version")
        .get(0);
    let config = pairing(&pg, &maria, MAPPING).replacen(
        "[nodes.helpdesk]",
        "forward_replicated = false\n[nodes.helpdesk]",
        1,
    );
    let (code, out) = check(&config);
    assert_eq!(code, 0, "a warning, not an error:\n{out}");
    assert!(out.contains("nodes.crm.forward_replicated"), "{out}");
    if version < 160000 {
        assert!(
            out.contains("changes nothing before PostgreSQL 16"),
            "{out}"
        );
    } else {
        assert!(out.contains(&origin), "the other origin is named:\n{out}");
    }
    let (_, out) = check(&pairing(&pg, &maria, MAPPING));
    assert!(
        !out.contains("forward_replicated"),
        "only when the key says false:\n{out}"
    );
}

#[tokio::test]
async fn check_live_lists_every_problem_of_a_broken_pairing() {
    let (pg, maria) = servers(
        "CREATE TABLE customers (id int, name varchar(100), status text, amount numeric(12,4), \
         seen timestamp(6), required_here int NOT NULL)",
        "CREATE TABLE clients (client_id int PRIMARY KEY, name varchar(40), status_code tinyint, \
         amount decimal(12,2), seen datetime)",
    )
    .await;
    let broken = format!("{MAPPING}\n[[tables.columns]]\nname = \"email\"\n\n[[tables]]\nname = \"orders\"\nkey = [\"id\"]\n");
    let (code, out) = check(&pairing(&pg, &maria, &broken));
    assert_eq!(code, 1, "{out}");
    for expected in [
        "(id) is not a primary key or NOT NULL unique key of public.customers on node crm",
        "column amount: numeric(12,4) on crm and decimal(12,2) on helpdesk",
        "column seen: timestamp(6) without time zone on crm and datetime on helpdesk",
        "column name: character varying(100) on crm and varchar(40) on helpdesk",
        "required_here on node crm is NOT NULL without a default",
        "column email does not exist in public.customers on node crm",
        "table public.orders does not exist on node crm",
        "table desk.orders does not exist on node helpdesk",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[tokio::test]
async fn check_live_reports_an_unreachable_node() {
    let pg = PgServer::start().await.expect("PostgreSQL starts");
    pg.create_database("crm").await.unwrap();
    let config = format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"mysql://root:hunter2@127.0.0.1:1/desk\"\n[[tables]]\nname = \"t\"\nkey = [\"id\"]\n",
        pg.url("crm")
    );
    let (code, out) = check(&config);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("nodes.helpdesk.url: cannot connect to node helpdesk"),
        "{out}"
    );
    assert!(!out.contains("hunter2"), "password leaked:\n{out}");
}

#[tokio::test]
async fn check_live_refuses_servers_without_logical_decoding_or_row_binlogs() {
    use tandem::harness::{MariaDbOptions, PgOptions};
    let pg = PgServer::start_with(PgOptions {
        settings: vec![("wal_level".into(), "replica".into())],
        ..Default::default()
    });
    let maria = MariaDb::start_with(MariaDbOptions {
        settings: vec![("binlog-format".into(), "STATEMENT".into())],
    });
    let (pg, maria) = tokio::join!(pg, maria);
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg.create_database("crm").await.unwrap();
    pg.connect("crm")
        .await
        .unwrap()
        .batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    maria.create_database("desk").await.unwrap();
    let mut conn = maria.connect("desk").await.unwrap();
    conn.query_drop("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let (code, out) = check(&pairing(
        &pg,
        &maria,
        "[[tables]]\nname = \"t\"\nkey = [\"id\"]\n",
    ));
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("error: nodes.crm: ") && out.contains("wal_level"),
        "{out}"
    );
    assert!(
        out.contains("error: nodes.helpdesk: ") && out.contains("binlog_format"),
        "{out}"
    );
}

#[tokio::test]
async fn check_live_sample_dry_run_finds_what_the_target_would_reject() {
    let (pg, maria) = servers(
        "CREATE TABLE customers (id int PRIMARY KEY, name varchar(100), status text); \
         INSERT INTO customers VALUES (1, 'A name far too long for the help desk', 'Approved'), \
         (2, NULL, 'Pending review'), (3, 'Ok', 'Escalated'), (4, 'Fine', 'Approved')",
        "CREATE TABLE clients (client_id int PRIMARY KEY, name varchar(10) NOT NULL, status_code tinyint)",
    )
    .await;
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_sample")));
    std::fs::write(&path, pairing(&pg, &maria, MAPPING)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["check", "--sample", "10", "--config"])
        .arg(&path)
        .output()
        .expect("run tandem check");
    std::fs::remove_file(&path).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for expected in [
        "desk.clients would reject 1 of 4 sampled row(s) from crm in column name: longer than varchar(10) allows (first: client_id=1)",
        "desk.clients would reject 1 of 4 sampled row(s) from crm in column name: NULL for a NOT NULL column (first: client_id=2)",
        "would reject 1 of 4 sampled row(s) from crm in column status: the value is not in the value map",
    ] {
        assert!(stdout.contains(expected), "missing {expected:?} in:\n{stdout}");
    }
    let mut conn = maria.connect("desk").await.unwrap();
    let written: Option<i64> = conn
        .query_first("SELECT COUNT(*) FROM clients")
        .await
        .unwrap();
    assert_eq!(written, Some(0), "a dry run wrote rows");
}

/// `tandem setup` checks every node's prerequisites before it changes anything: against a PostgreSQL
/// with `wal_level = replica` it names the node, the setting and the fix, and leaves both nodes as
/// they were (before, it created the bookkeeping schema, columns and triggers, then failed at the slot
/// with a message that hid the cause).
#[tokio::test]
async fn setup_changes_nothing_when_a_prerequisite_is_unmet() {
    use tandem::harness::PgOptions;
    let pg = PgServer::start_with(PgOptions {
        settings: vec![("wal_level".into(), "replica".into())],
        ..Default::default()
    });
    let (pg, maria) = tokio::join!(pg, MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg.create_database("crm").await.unwrap();
    let crm = pg.connect("crm").await.unwrap();
    crm.batch_execute("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    maria.create_database("desk").await.unwrap();
    let mut conn = maria.connect("desk").await.unwrap();
    conn.query_drop("CREATE TABLE t (id int PRIMARY KEY)")
        .await
        .unwrap();
    let config = pairing(&pg, &maria, "[[tables]]\nname = \"t\"\nkey = [\"id\"]\n");
    for args in [&["setup", "--dry-run"][..], &["setup"][..]] {
        let out = tandem(args, &config);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("node crm")
                && stderr.contains("wal_level is replica")
                && stderr.contains("ALTER SYSTEM SET wal_level = logical"),
            "{args:?}: the error names the node, the setting and the fix:\n{stderr}"
        );
    }
    let pg_changed: i64 = crm
        .query_one(
            "SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'tandem') \
             + (SELECT count(*) FROM information_schema.columns WHERE column_name LIKE '\\_tandem%') \
             + (SELECT count(*) FROM pg_trigger WHERE NOT tgisinternal)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pg_changed, 0, "setup changed the PostgreSQL node");
    let maria_changed: Option<i64> = conn
        .query_first(
            "SELECT (SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'tandem') \
             + (SELECT count(*) FROM information_schema.columns WHERE column_name LIKE '\\_tandem%') \
             + (SELECT count(*) FROM information_schema.triggers WHERE trigger_schema = 'desk')",
        )
        .await
        .unwrap();
    assert_eq!(maria_changed, Some(0), "setup changed the MariaDB node");
    conn.disconnect().await.unwrap();
}

/// `tandem setup --dry-run` on fresh nodes prints what setup would run and changes nothing (it used
/// to fail on MariaDB looking for the bookkeeping tables that setup had not made yet).
#[tokio::test]
async fn setup_dry_run_on_fresh_nodes_lists_the_sql_and_changes_nothing() {
    let (pg, maria) = servers(
        "CREATE TABLE t (id int PRIMARY KEY)",
        "CREATE TABLE t (id int PRIMARY KEY)",
    )
    .await;
    let out = tandem(
        &["setup", "--dry-run"],
        &pairing(&pg, &maria, "[[tables]]\nname = \"t\"\nkey = [\"id\"]\n"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("-- node helpdesk") && stdout.contains("TRIGGER `desk`.`tandem_revive_t`"),
        "{stdout}"
    );
    let mut conn = maria.connect("desk").await.unwrap();
    let schemas: Option<i64> = conn
        .query_first(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = 'tandem'",
        )
        .await
        .unwrap();
    assert_eq!(schemas, Some(0), "a dry run created the bookkeeping schema");
    conn.disconnect().await.unwrap();
}

/// `tandem setup` alters a MariaDB table declared under a permissive mode (`DATETIME NOT NULL
/// DEFAULT 0`): the applier session's NO_ZERO_DATE made the ALTER fail with error 1067, naming no
/// table, after the tables before it had been changed.
#[tokio::test]
async fn setup_alters_a_mariadb_table_with_a_zero_date_default() {
    let (pg, maria) = servers(
        "CREATE TABLE ev (id int PRIMARY KEY, at timestamp NOT NULL DEFAULT now())",
        "SET SESSION sql_mode = ''; \
         CREATE TABLE ev (id int PRIMARY KEY, at DATETIME NOT NULL DEFAULT 0)",
    )
    .await;
    let out = tandem(
        &["setup"],
        &pairing(&pg, &maria, "[[tables]]\nname = \"ev\"\nkey = [\"id\"]\n"),
    );
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut conn = maria.connect("desk").await.unwrap();
    let cols: Option<i64> = conn
        .query_first(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'desk' \
             AND table_name = 'ev' AND column_name LIKE '\\_tandem%'",
        )
        .await
        .unwrap();
    assert_eq!(cols, Some(2), "setup added the origin and version columns");
    conn.disconnect().await.unwrap();
}

/// `check --sample` reads a MariaDB table with BIT and GEOMETRY columns without panicking (it
/// exited 101 inside the driver: the document held bytes that are not UTF-8).
#[tokio::test]
async fn check_live_sample_reads_bit_and_geometry_columns() {
    let (pg, maria) = servers(
        "CREATE TABLE flags (id int PRIMARY KEY, b bit(8), g bytea, note varchar(10))",
        "CREATE TABLE flags (id INT PRIMARY KEY, b BIT(8), g GEOMETRY, note VARCHAR(10)); \
         INSERT INTO flags VALUES (1, b'11111111', ST_GeomFromText('POINT(1 2)'), 'ok'), \
         (2, b'0', NULL, 'second')",
    )
    .await;
    let out = tandem(
        &["check", "--sample", "10"],
        &pairing(
            &pg,
            &maria,
            "[[tables]]\nname = \"flags\"\nkey = [\"id\"]\n",
        ),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}\n{stdout}\n{stderr}",
        out.status.code()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!stdout.contains("could not sample"), "{stdout}");
}

/// The catalog tells a MariaDB JSON column (LONGTEXT with a `json_valid` check) by its own check
/// only: a plain LONGTEXT column `a_b` is not taken for JSON because column `axb` has one (`_` was a
/// LIKE wildcard in the match).
#[tokio::test]
async fn catalog_tells_mariadb_json_columns_by_their_own_check() {
    use tandem::model::schema::ColumnType;
    let maria = MariaDb::start().await.expect("MariaDB starts");
    maria.create_database("desk").await.unwrap();
    let mut conn = maria.connect("desk").await.unwrap();
    conn.query_drop("CREATE TABLE j (id INT PRIMARY KEY, axb JSON, a_b LONGTEXT)")
        .await
        .unwrap();
    conn.disconnect().await.unwrap();
    let text = format!(
        "[nodes.helpdesk]\nurl = \"{}\"\n[nodes.other]\nurl = \"{}\"\n[[tables]]\nname = \"j\"\nkey = [\"id\"]\n",
        maria.url("desk"),
        maria.url("other")
    );
    let (config, _) = tandem::config::Config::from_str_with_env(&text, "j.toml", &|_| None)
        .unwrap_or_else(|e| panic!("{:?}", e.problems));
    let node = config.node("helpdesk").expect("node");
    let table = tandem::model::TableRef::new("desk", "j");
    let schemas = tandem::catalog::read_tables(node, std::slice::from_ref(&table))
        .await
        .expect("catalog");
    let schema = schemas.get(&table).cloned().flatten().expect("table j");
    let ty = |name: &str| {
        schema
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.ty.clone())
            .expect("column")
    };
    assert_eq!(ty("axb"), ColumnType::Json);
    assert_ne!(ty("a_b"), ColumnType::Json, "a_b is plain LONGTEXT");
}

/// `check` warns, per column and direction, about each value class the other engine refuses
/// (infinity, dates past 9999, NaN into DECIMAL and FLOAT, 4-byte UTF-8 into utf8mb3, zero dates and
/// NUL characters into PostgreSQL, a geometry's SRID in a bytea), and `check --sample` finds the
/// sampled rows that hold such values, column by column.
#[tokio::test]
async fn check_live_warns_about_values_the_other_engine_refuses() {
    let (pg, maria) = servers(
        "CREATE TABLE odd (id int PRIMARY KEY, ts timestamp(6), d date, n numeric, r real, \
         t text, g bytea); \
         INSERT INTO odd VALUES (1, 'infinity', '21016-01-01', 'NaN', 'NaN', 'x😀', NULL), \
         (2, '2020-01-01 00:00:00', '2020-01-01', 1.5, 1.5, 'plain', NULL)",
        "CREATE TABLE odd (id INT PRIMARY KEY, ts DATETIME(6), d DATE, n DECIMAL(65,30), \
         r FLOAT, t VARCHAR(20) CHARACTER SET utf8mb3, g GEOMETRY); \
         SET SESSION sql_mode = ''; \
         INSERT INTO odd VALUES (11, '0000-00-00 00:00:00', '2015-05-00', 1, 1, 'a\\0b', \
         ST_GeomFromText('POINT(1 2)', 4326)), \
         (12, '2020-01-01 00:00:00', '2020-01-01', 1, 1, 'ok', ST_GeomFromText('POINT(1 2)'))",
    )
    .await;
    let out = tandem(
        &["check", "--sample", "10"],
        &pairing(&pg, &maria, "[[tables]]\nname = \"odd\"\nkey = [\"id\"]\n"),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let has = |start: &str, word: &str| {
        assert!(
            lines.iter().any(|l| l.contains(start) && l.contains(word)),
            "no line with {start:?} and {word:?} in:\n{stdout}"
        );
    };
    // Before the sync: from the declared types.
    has("column ts from crm", "infinity");
    has("column d from crm", "after year 9999");
    has("column n from crm", "NaN, Infinity");
    has("column r from crm", "NaN, Infinity");
    has("column t from crm", "utf8mb3");
    has("column ts from helpdesk", "zero");
    has("column d from helpdesk", "zero");
    has("column t from helpdesk", "NUL");
    has("column g", "SRID");
    // The sampled rows that hold such values.
    for (column, word) in [
        ("ts", "infinity"),
        ("d", "outside years"),
        ("n", "NaN"),
        ("r", "NaN"),
        ("t", "utf8mb3"),
    ] {
        has(&format!("from crm in column {column}:"), word);
    }
    for (column, word) in [("ts", "zero"), ("d", "zero"), ("t", "NUL"), ("g", "SRID")] {
        has(&format!("from helpdesk in column {column}:"), word);
    }
    assert!(
        !stdout.contains("from crm in column g")
            && !stdout.contains("id=2,")
            && !stdout.contains("id=12"),
        "only the odd rows are reported:\n{stdout}"
    );
}
