//! Generated keys in two-way tables (#19): a PostgreSQL serial key and a MariaDB AUTO_INCREMENT key
//! on the same business table. `check` refuses them while both count from 1, `setup` gives each node
//! its own residue class above every existing key, `run` refuses to start when a MariaDB restart has
//! lost the globals, and with disjoint generators both sides insert with default keys while tandem
//! runs both ways: every insert succeeds and both nodes end equal.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};

use crate::support::{
    output_text as text, start_tandem_run, stop_tandem_run, tandem_cli as tandem, unique_name,
    wait_for,
};

const DEADLINE: Duration = Duration::from_secs(60);

const MAPPING: &str = r#"
[[tables]]
name = "customer"
key = ["id"]
on = { crm = "public.customers", helpdesk = "clients" }

[[tables.columns]]
name = "id"
on = { helpdesk = "client_id" }
"#;

struct Pair {
    pg: PgServer,
    maria: MariaDb,
    config: std::path::PathBuf,
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// Both tables with generated keys, and `pg_rows` / `maria_rows` rows inserted with default keys
/// before anything of tandem's exists. No setup yet.
async fn pair(pg_rows: usize, maria_rows: usize) -> Pair {
    pair_with(
        "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE clients (client_id int AUTO_INCREMENT PRIMARY KEY, name varchar(200) NOT NULL)",
        MAPPING,
        pg_rows,
        maria_rows,
    )
    .await
}

async fn pair_with(
    pg_ddl: &str,
    maria_ddl: &str,
    mapping: &str,
    pg_rows: usize,
    maria_rows: usize,
) -> Pair {
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg.create_database("crm").await.unwrap();
    let c = pg.connect("crm").await.unwrap();
    c.batch_execute(pg_ddl).await.unwrap();
    for i in 0..pg_rows {
        c.execute(
            "INSERT INTO customers (name) VALUES ($1)",
            &[&format!("pg {i}")],
        )
        .await
        .unwrap();
    }
    maria.create_database("desk").await.unwrap();
    let mut m = maria.connect("desk").await.unwrap();
    m.query_drop(maria_ddl).await.unwrap();
    for i in 0..maria_rows {
        m.exec_drop(
            "INSERT INTO clients (name) VALUES (?)",
            (format!("maria {i}"),),
        )
        .await
        .unwrap();
    }
    m.disconnect().await.unwrap();
    let text = format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n{mapping}",
        pg.url("crm"),
        maria.url("desk")
    );
    let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_keys")));
    std::fs::write(&config, text).unwrap();
    Pair { pg, maria, config }
}

/// The key problems `tandem check` reports, as (path, message, fix).
async fn key_problems(config: &std::path::Path) -> (bool, Vec<(String, String)>) {
    let out = tandem(&["check", "--format", "json"], config).await;
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("check printed no JSON ({e}):\n{}", text(&out)));
    let problems = doc["problems"]
        .as_array()
        .expect("a problems array")
        .iter()
        .filter(|p| {
            p["message"]
                .as_str()
                .is_some_and(|m| m.contains("key column"))
        })
        .map(|p| {
            (
                p["message"].as_str().unwrap_or_default().to_string(),
                p["fix"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    (out.status.success(), problems)
}

async fn pg_insert(pg: &PgServer, name: &str) -> Result<i32, String> {
    let c = pg.connect("crm").await.map_err(|e| e.to_string())?;
    c.query_one(
        "INSERT INTO customers (name) VALUES ($1) RETURNING id",
        &[&name],
    )
    .await
    .map(|r| r.get(0))
    .map_err(|e| format!("{e:?}"))
}

async fn maria_insert(maria: &MariaDb, name: &str) -> Result<i64, String> {
    // A new session each time, as an application's pool would open after setup.
    let mut m = maria.connect("desk").await.map_err(|e| e.to_string())?;
    m.exec_drop("INSERT INTO clients (name) VALUES (?)", (name,))
        .await
        .map_err(|e| e.to_string())?;
    let id = m.last_insert_id().map(|i| i as i64).ok_or("no insert id")?;
    m.disconnect().await.map_err(|e| e.to_string())?;
    Ok(id)
}

#[tokio::test]
async fn check_refuses_colliding_generators_and_setup_makes_them_disjoint() {
    let p = pair(3, 5).await;
    let (ok, problems) = key_problems(&p.config).await;
    assert!(
        !ok,
        "check passed two generators counting from 1: {problems:?}"
    );
    assert_eq!(problems.len(), 2, "one refusal per node: {problems:?}");
    let (crm, helpdesk) = (&problems[0], &problems[1]);
    assert!(
        crm.0.contains("on node crm") && crm.0.contains("public.customers_id_seq"),
        "{crm:?}"
    );
    // Above the largest key of either node (5), in crm's class (odd values).
    assert!(
        crm.1
            .contains("ALTER SEQUENCE public.customers_id_seq INCREMENT BY 2 RESTART WITH 7"),
        "{crm:?}"
    );
    assert!(helpdesk.0.contains("on node helpdesk"), "{helpdesk:?}");
    assert!(
        helpdesk
            .1
            .contains("SET GLOBAL auto_increment_increment = 2, auto_increment_offset = 2")
            && helpdesk.1.contains("auto_increment_offset = 2")
            && helpdesk.1.contains("my.cnf"),
        "{helpdesk:?}"
    );

    let out = tandem(&["setup"], &p.config).await;
    assert!(out.status.success(), "setup failed:\n{}", text(&out));
    let printed = text(&out);
    assert!(
        printed.contains("-- auto_increment_increment = 2")
            && printed.contains("-- auto_increment_offset = 2"),
        "setup did not print the my.cnf lines:\n{printed}"
    );
    let (ok, problems) = key_problems(&p.config).await;
    assert!(
        problems.is_empty(),
        "still refused after setup: {problems:?}"
    );
    assert!(ok, "check fails after setup");
    // Each node's next default key: above 5, crm odd, helpdesk even.
    assert_eq!(pg_insert(&p.pg, "next").await, Ok(7));
    assert_eq!(pg_insert(&p.pg, "next").await, Ok(9));
    assert_eq!(maria_insert(&p.maria, "next").await, Ok(6));
    assert_eq!(maria_insert(&p.maria, "next").await, Ok(8));
    // Setup again changes nothing: the generators already are disjoint.
    let out = tandem(&["setup"], &p.config).await;
    assert!(
        out.status.success() && !text(&out).contains("made disjoint"),
        "a second setup changed the generators:\n{}",
        text(&out)
    );
}

#[tokio::test]
async fn check_finds_identity_columns_and_nextval_defaults_and_leaves_owned_tables_alone() {
    let pg_ddl = "CREATE TABLE customers (id int GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL);
        CREATE SEQUENCE \"Order Numbers\";
        CREATE TABLE orders (no bigint DEFAULT nextval('\"Order Numbers\"') PRIMARY KEY);
        CREATE TABLE rates (id serial PRIMARY KEY)";
    let maria_ddl = "CREATE TABLE clients (client_id int AUTO_INCREMENT PRIMARY KEY, name varchar(200) NOT NULL);
        CREATE TABLE orders (no bigint AUTO_INCREMENT PRIMARY KEY);
        CREATE TABLE rates (id int AUTO_INCREMENT PRIMARY KEY)";
    let mapping = format!(
        "{MAPPING}\n[[tables]]\nname = \"order\"\nkey = [\"no\"]\non = {{ crm = \"public.orders\", helpdesk = \"orders\" }}\n\
         [[tables]]\nname = \"rate\"\nkey = [\"id\"]\nowner = \"crm\"\non = {{ crm = \"public.rates\", helpdesk = \"rates\" }}\n"
    );
    let p = pair_with(pg_ddl, maria_ddl, &mapping, 0, 0).await;
    let (ok, problems) = key_problems(&p.config).await;
    assert!(!ok, "check passed colliding generators: {problems:?}");
    let on = |table: &str, node: &str| {
        problems
            .iter()
            .filter(|(m, _)| {
                m.contains(&format!("of table {table} ")) && m.contains(&format!("on node {node})"))
            })
            .count()
    };
    // Identity and a hand-written nextval default are found; the owned table is one-way.
    assert_eq!(
        (
            on("customer", "crm"),
            on("customer", "helpdesk"),
            on("order", "crm"),
            on("order", "helpdesk"),
            problems.len()
        ),
        (1, 1, 1, 1, 4),
        "{problems:#?}"
    );
    assert!(
        problems.iter().any(|(_, fix)| fix
            .contains("ALTER SEQUENCE public.\"Order Numbers\" INCREMENT BY 2 RESTART WITH 1")),
        "{problems:#?}"
    );
    let out = tandem(&["setup"], &p.config).await;
    assert!(out.status.success(), "setup failed:\n{}", text(&out));
    let (ok, problems) = key_problems(&p.config).await;
    assert!(
        ok && problems.is_empty(),
        "still refused after setup: {problems:?}"
    );
}

#[tokio::test]
async fn check_refuses_again_when_a_mariadb_restart_lost_the_globals() {
    let mut p = pair(0, 0).await;
    let out = tandem(&["setup"], &p.config).await;
    assert!(out.status.success(), "setup failed:\n{}", text(&out));
    let (ok, problems) = key_problems(&p.config).await;
    assert!(
        ok && problems.is_empty(),
        "refused after setup: {problems:?}"
    );
    // Without the my.cnf lines, a restart brings back auto_increment_increment = 1.
    p.maria.restart().await.unwrap();
    let (ok, problems) = key_problems(&p.config).await;
    assert!(!ok, "check passed after the restart");
    assert!(
        problems
            .iter()
            .any(|(m, fix)| m.contains("on node helpdesk")
                && fix.contains("SET GLOBAL auto_increment_increment = 2")
                && fix.contains("my.cnf")),
        "check's refusal does not name the node and the fix: {problems:#?}"
    );
}

#[tokio::test]
async fn run_refuses_to_start_when_a_mariadb_restart_lost_the_globals() {
    let mut p = pair(0, 0).await;
    let out = tandem(&["setup"], &p.config).await;
    assert!(out.status.success(), "setup failed:\n{}", text(&out));
    let tandem_run = start_tandem_run(&p.config, 2).await;
    stop_tandem_run(tandem_run).await;
    p.maria.restart().await.unwrap();
    let out = tokio::time::timeout(DEADLINE, tandem(&["run"], &p.config))
        .await
        .expect("tandem run refused at once instead of running");
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "tandem run started:\n{said}");
    assert!(
        said.contains("on node helpdesk")
            && said.contains("SET GLOBAL auto_increment_increment = 2")
            && said.contains("my.cnf")
            && said.contains("not starting"),
        "the refusal does not name the node and the exact fix:\n{said}"
    );
    assert!(!said.contains("link started"), "a link started:\n{said}");
}

#[tokio::test]
async fn both_sides_insert_with_default_keys_while_tandem_runs_both_ways() {
    let p = pair(0, 0).await;
    let out = tandem(&["setup"], &p.config).await;
    assert!(out.status.success(), "setup failed:\n{}", text(&out));
    let tandem_run = start_tandem_run(&p.config, 2).await;

    // Rows generated on one side arrive ahead of the other side's generator first.
    for i in 0..4 {
        maria_insert(&p.maria, &format!("desk early {i}"))
            .await
            .expect("MariaDB insert");
    }
    wait_for("MariaDB's first rows on PostgreSQL", DEADLINE, || async {
        let c = p.pg.connect("crm").await.ok()?;
        let n: i64 = c
            .query_one("SELECT count(*) FROM customers", &[])
            .await
            .ok()?
            .get(0);
        (n == 4).then_some(())
    })
    .await;
    // Then 10 rounds of simultaneous inserts with default keys on both sides.
    for round in 0..10 {
        let (crm, desk) = (format!("crm {round}"), format!("desk {round}"));
        let (a, b) = tokio::join!(pg_insert(&p.pg, &crm), maria_insert(&p.maria, &desk));
        a.unwrap_or_else(|e| panic!("round {round}: the PostgreSQL insert failed: {e}"));
        b.unwrap_or_else(|e| panic!("round {round}: the MariaDB insert failed: {e}"));
    }
    let pg_rows = || async {
        let c = p.pg.connect("crm").await.unwrap();
        c.query("SELECT id::bigint, name FROM customers ORDER BY id", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1)))
            .collect::<Vec<_>>()
    };
    let maria_rows = || async {
        let mut m = p.maria.connect("desk").await.unwrap();
        let rows: Vec<(i64, String)> = m
            .query("SELECT client_id, name FROM clients ORDER BY client_id")
            .await
            .unwrap();
        m.disconnect().await.unwrap();
        rows
    };
    let rows = wait_for("24 rows, equal on both nodes", DEADLINE, || async {
        let (a, b) = (pg_rows().await, maria_rows().await);
        (a.len() == 24 && a == b).then_some(a)
    })
    .await;
    let odd = rows.iter().filter(|(id, _)| id % 2 == 1).count();
    assert_eq!(odd, 10, "crm's keys are the odd ones: {rows:?}");
    stop_tandem_run(tandem_run).await;
}
