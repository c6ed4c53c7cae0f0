//! The type matrix on real servers: for each PostgreSQL/MariaDB column pair that `tandem check`
//! accepts, a value goes A -> B -> A and comes back unchanged, in both directions.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{MariaDb, PgServer};
use tokio::process::Command;

use crate::support::{start_tandem_run, unique_name, wait_for};

/// (column, PostgreSQL type, MariaDB type, a PostgreSQL literal, a MariaDB literal).
const PAIRS: &[(&str, &str, &str, &str, &str)] = &[
    ("c_int", "integer", "int", "-2147483648", "2147483647"),
    (
        "c_big",
        "bigint",
        "bigint",
        "9223372036854775807",
        "-9223372036854775808",
    ),
    ("c_small", "smallint", "smallint", "-32768", "32767"),
    (
        "c_dec",
        "numeric(30,6)",
        "decimal(30,6)",
        "'-123456789012345678901234.123456'",
        "'999999999999999999999999.000001'",
    ),
    (
        "c_double",
        "double precision",
        "double",
        "1.0000000000000002",
        "-2.2250738585072014e-308",
    ),
    ("c_real", "real", "float", "3.14159", "-0.5"),
    ("c_bool", "boolean", "tinyint(1)", "true", "0"),
    (
        "c_text",
        "text",
        "longtext",
        "'héllo ✓ 😀 ''quoted'' \\ back'",
        "'emoji 😀 and tab\\tend'",
    ),
    ("c_varchar", "varchar(50)", "varchar(50)", "'fifty'", "'x'"),
    (
        "c_bytes",
        "bytea",
        "longblob",
        "'\\x00ff10'::bytea",
        "x'00ff10'",
    ),
    ("c_date", "date", "date", "'2024-02-29'", "'1000-01-01'"),
    (
        "c_time",
        "time(6)",
        "time(6)",
        "'23:59:59.999999'",
        "'00:00:00.000001'",
    ),
    (
        "c_ts",
        "timestamp(6)",
        "datetime(6)",
        "'2024-02-29 23:59:59.999999'",
        "'1999-12-31 00:00:00.5'",
    ),
    (
        "c_json",
        "jsonb",
        "json",
        "'{\"a\": [1, 2.5, \"x\"], \"b\": null}'",
        "'{\"k\": {\"n\": 1}}'",
    ),
    (
        "c_uuid",
        "uuid",
        "char(36)",
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        "'00000000-0000-0000-0000-000000000001'",
    ),
];

async fn pg_row(pg: &PgServer, id: i32) -> Option<String> {
    let cols: Vec<&str> = PAIRS.iter().map(|p| p.0).collect();
    let sql = format!(
        "SELECT json_build_array({})::text FROM items WHERE id = $1",
        cols.join(", ")
    );
    let c = pg.connect("crm").await.unwrap();
    c.query_opt(&sql, &[&id]).await.unwrap().map(|r| r.get(0))
}

async fn maria_row(maria: &MariaDb, id: i32) -> Option<Vec<mysql_async::Value>> {
    let cols: Vec<&str> = PAIRS.iter().map(|p| p.0).collect();
    let sql = format!("SELECT {} FROM items WHERE id = {id}", cols.join(", "));
    let mut c = maria.connect("desk").await.unwrap();
    let row: Option<mysql_async::Row> = c.query_first(sql).await.unwrap();
    c.disconnect().await.unwrap();
    row.map(|r| r.unwrap())
}

async fn touch_count(pg: &PgServer, maria: &MariaDb, id: i32) -> (Option<i32>, Option<i32>) {
    let c = pg.connect("crm").await.unwrap();
    let a = c
        .query_opt("SELECT touch FROM items WHERE id = $1", &[&id])
        .await
        .unwrap()
        .map(|r| r.get(0));
    let mut m = maria.connect("desk").await.unwrap();
    let b: Option<i32> = m
        .query_first(format!("SELECT touch FROM items WHERE id = {id}"))
        .await
        .unwrap();
    m.disconnect().await.unwrap();
    (a, b)
}

#[tokio::test]
async fn mapping_matrix_values_survive_the_round_trip_both_ways() {
    let (pg, maria) = tokio::join!(PgServer::start(), MariaDb::start());
    let (pg, maria) = (
        pg.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    let pg_cols: Vec<String> = PAIRS.iter().map(|p| format!("{} {}", p.0, p.1)).collect();
    let maria_cols: Vec<String> = PAIRS.iter().map(|p| format!("{} {}", p.0, p.2)).collect();
    pg.create_database("crm").await.unwrap();
    pg.connect("crm")
        .await
        .unwrap()
        .batch_execute(&format!(
            "CREATE TABLE items (id int PRIMARY KEY, touch int NOT NULL, {})",
            pg_cols.join(", ")
        ))
        .await
        .unwrap();
    maria.create_database("desk").await.unwrap();
    let mut m = maria.connect("desk").await.unwrap();
    m.query_drop(format!(
        "CREATE TABLE items (id int PRIMARY KEY, touch int NOT NULL, {})",
        maria_cols.join(", ")
    ))
    .await
    .unwrap();
    let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_matrix")));
    std::fs::write(
        &config,
        format!(
            "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n[[tables]]\nname = \"items\"\nkey = [\"id\"]\n",
            pg.url("crm"),
            maria.url("desk")
        ),
    )
    .unwrap();
    // check accepts every pair (warnings for the conventional ones, no error).
    let check = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "check refused a pair this test expects to be safe:\n{report}"
    );

    let setup = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["setup", "--config"])
        .arg(&config)
        .output()
        .await
        .unwrap();
    assert!(
        setup.status.success(),
        "setup: {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let mut tandem = start_tandem_run(&config, 2).await;

    // PostgreSQL -> MariaDB -> PostgreSQL.
    let pg_values: Vec<&str> = PAIRS.iter().map(|p| p.3).collect();
    let c = pg.connect("crm").await.unwrap();
    c.batch_execute(&format!(
        "INSERT INTO items (id, touch, {}) VALUES (1, 0, {})",
        PAIRS.iter().map(|p| p.0).collect::<Vec<_>>().join(", "),
        pg_values.join(", ")
    ))
    .await
    .unwrap();
    let original = pg_row(&pg, 1).await.expect("row 1");
    wait_for("row 1 on MariaDB", Duration::from_secs(30), || async {
        maria_row(&maria, 1).await.map(|_| ())
    })
    .await;
    m.query_drop("UPDATE items SET touch = 1 WHERE id = 1")
        .await
        .unwrap();
    wait_for(
        "the touch back on PostgreSQL",
        Duration::from_secs(30),
        || async { (touch_count(&pg, &maria, 1).await.0 == Some(1)).then_some(()) },
    )
    .await;
    let back = pg_row(&pg, 1).await.expect("row 1");
    assert_eq!(
        back, original,
        "values changed on the way PostgreSQL -> MariaDB -> PostgreSQL\n(check said:\n{report})"
    );

    // MariaDB -> PostgreSQL -> MariaDB.
    let maria_values: Vec<&str> = PAIRS.iter().map(|p| p.4).collect();
    m.query_drop(format!(
        "INSERT INTO items (id, touch, {}) VALUES (2, 0, {})",
        PAIRS.iter().map(|p| p.0).collect::<Vec<_>>().join(", "),
        maria_values.join(", ")
    ))
    .await
    .unwrap();
    let original = maria_row(&maria, 2).await.expect("row 2");
    wait_for("row 2 on PostgreSQL", Duration::from_secs(30), || async {
        pg_row(&pg, 2).await.map(|_| ())
    })
    .await;
    c.batch_execute("UPDATE items SET touch = 1 WHERE id = 2")
        .await
        .unwrap();
    wait_for(
        "the touch back on MariaDB",
        Duration::from_secs(30),
        || async { (touch_count(&pg, &maria, 2).await.1 == Some(1)).then_some(()) },
    )
    .await;
    let back = maria_row(&maria, 2).await.expect("row 2");
    for (i, p) in PAIRS.iter().enumerate() {
        assert_eq!(
            back[i], original[i],
            "column {} ({} / {}) changed on the way MariaDB -> PostgreSQL -> MariaDB",
            p.0, p.1, p.2
        );
    }
    m.disconnect().await.unwrap();
    tandem.kill().await.ok();
    std::fs::remove_file(&config).ok();
}
