//! `tandem verify`'s chunk hashes on real servers: the canonical text of each rendered type is the
//! same on PostgreSQL and MariaDB for the same business value; drift is found through the hash path
//! (only its chunk read row by row) across a renamed, value-mapped and row-filtered table with
//! either engine giving the chunk bounds; a value whose form differs where the mapping equates it
//! is not reported; a table with a transform falls back to the row path and still finds its drift;
//! `tandem status --format json` shows the last verify of each table.

use std::collections::BTreeSet;

use mysql_async::prelude::Queryable;
use tandem::config::Engine;
use tandem::verify::canon::{kind, value_sql, Kind};

use crate::support::{unique_name, Pair};
use crate::verify::{
    differences, verify_cmd, CUSTOMER, MARIA_CLIENTS, MISSING_ON_HELPDESK, PG_CUSTOMERS,
};

/// Runs verify with `extra` and returns its exit code and JSON report.
async fn verify_json(config: &std::path::Path, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let out = verify_cmd(config, &[&["--format", "json"], extra].concat())
        .output()
        .await
        .expect("verify runs");
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify prints JSON ({e}):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// The issue's 16 drifted keys.
fn the_16() -> BTreeSet<(String, i64, String, Vec<String>)> {
    let mut expected = BTreeSet::new();
    let c = |id: i64, kind: &str, cols: &[&str]| {
        (
            "customer".to_string(),
            id,
            kind.to_string(),
            cols.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        )
    };
    for id in MISSING_ON_HELPDESK {
        expected.insert(c(id, "missing_on helpdesk", &[]));
    }
    for id in [3001, 3002] {
        expected.insert(c(id, "differs", &["full_name"]));
    }
    for id in [3003, 3005, 3007] {
        expected.insert(c(id, "differs", &["status"]));
    }
    expected.insert(c(30000, "missing_on crm", &[]));
    expected
}

/// Renamed key and columns, a value map ('Approved' = 1) and a row filter (50 US rows stay on
/// PostgreSQL): the 16 drifted keys are found, every other chunk is equal by its hash alone, with
/// the chunk bounds taken from PostgreSQL and then from MariaDB.
#[tokio::test(flavor = "multi_thread")]
async fn drift_is_found_through_the_hashes_with_either_engine_first() {
    let pair = Pair::start(PG_CUSTOMERS, MARIA_CLIENTS, CUSTOMER).await;
    let (code, report) = verify_json(&pair.config, &["--batch-rows", "1000"]).await;
    assert_eq!(code, Some(1), "{report}");
    let found = differences(&report);
    let expected = the_16();
    assert_eq!(
        found,
        expected,
        "extra: {:?}; missed: {:?}",
        found.difference(&expected).collect::<Vec<_>>(),
        expected.difference(&found).collect::<Vec<_>>()
    );
    let t = &report["tables"][0];
    assert_eq!(t["row_by_row"], serde_json::Value::Null, "hashed: {t}");
    // Keys 1..=20050 and 30000 in chunks of 1,000: 21 chunks. The drift sits in the chunks of
    // 11, 222, 1333, 3001-3007, 4444, 5555, 9999, 12345, 15000, 17777, 20000 and 30000: 11 chunks.
    assert_eq!(t["chunks"], 21, "{t}");
    assert_eq!(
        t["chunks_read"], 11,
        "only the drifted chunks are read: {t}"
    );
    assert_eq!(t["chunks_hashed"], 10, "{t}");
    assert_eq!(
        t["rows"], 20051,
        "every key once (filtered rows included): {t}"
    );

    // The same nodes named so that MariaDB sorts first and gives the bounds.
    let text = std::fs::read_to_string(&pair.config).expect("config");
    let swapped = text
        .replace("[nodes.crm]", "[nodes.z_crm]")
        .replace("crm = \"public.customers\"", "z_crm = \"public.customers\"");
    let config = std::env::temp_dir().join(format!("{}.toml", unique_name("verify_hash")));
    std::fs::write(&config, swapped).expect("write config");
    let (code, report) = verify_json(&config, &["--batch-rows", "1000"]).await;
    let _ = std::fs::remove_file(&config);
    assert_eq!(code, Some(1), "{report}");
    let found: BTreeSet<_> = differences(&report)
        .into_iter()
        .map(|(t, id, kind, cols)| (t, id, kind.replace("z_crm", "crm"), cols))
        .collect();
    assert_eq!(found, expected, "{report}");
    let t = &report["tables"][0];
    assert_eq!(t["row_by_row"], serde_json::Value::Null, "hashed: {t}");
    assert!(
        t["chunks_hashed"].as_u64().is_some_and(|h| h >= 8),
        "MariaDB's bounds hash most chunks: {t}"
    );
}

const EQUATED: &str = r#"
[[tables]]
name = "orders"
key = ["id"]
on = { crm = "public.orders", helpdesk = "orders" }

[[tables.columns]]
name = "status"
on = { helpdesk = "status_code" }
values = { helpdesk = { "Approved" = 1, "Pending" = 2 } }

[[tables.columns]]
name = "note"
null_as = { helpdesk = "" }
"#;

/// Every value in another form than its peer's where the mapping equates them: 'Approved' and 1,
/// 12.50 and 12.500, true and 1, a `timestamptz` and a `DATETIME` two hours ahead at +02:00, a NULL
/// and its stand-in ''. Nothing is reported and no chunk is read row by row; then each real
/// difference is found by its chunk, and `tandem status --format json` shows the result.
#[tokio::test(flavor = "multi_thread")]
async fn values_the_mapping_equates_hash_alike() {
    let pg_sql = "CREATE TABLE orders (id bigint PRIMARY KEY, status text NOT NULL, amount numeric(10,2), \
         paid boolean NOT NULL, at timestamptz NOT NULL, day date, note text, label varchar(40) NOT NULL);
         INSERT INTO orders SELECT g, CASE WHEN g % 3 = 0 THEN 'Pending' ELSE 'Approved' END, 12.50, g % 2 = 0, \
         '2024-03-01 10:00:00.25+00'::timestamptz + g * interval '1 minute', date '2024-02-29', \
         CASE WHEN g % 5 = 0 THEN NULL ELSE 'n' || g END, 'étiquette ' || g FROM generate_series(1, 3000) g;";
    let maria_sql = "CREATE TABLE orders (id INT PRIMARY KEY, status_code TINYINT NOT NULL, amount DECIMAL(12,3), \
         paid TINYINT NOT NULL, at DATETIME(6) NOT NULL, day DATE, note VARCHAR(20) NOT NULL, label TEXT NOT NULL);
         INSERT INTO orders SELECT seq, IF(seq % 3 = 0, 2, 1), 12.5, seq % 2 = 0, \
         TIMESTAMP'2024-03-01 12:00:00.25' + INTERVAL seq MINUTE, '2024-02-29', \
         IF(seq % 5 = 0, '', CONCAT('n', seq)), CONCAT('étiquette ', seq) FROM seq_1_to_3000;";
    let pair = Pair::start(pg_sql, maria_sql, EQUATED).await;
    let text = std::fs::read_to_string(&pair.config).expect("config");
    std::fs::write(
        &pair.config,
        text.replace(
            "[nodes.helpdesk]\n",
            "[nodes.helpdesk]\ntimezone = \"+02:00\"\n",
        ),
    )
    .expect("config");
    let (code, report) = verify_json(&pair.config, &["--batch-rows", "500"]).await;
    assert_eq!(code, Some(0), "equal in business form: {report}");
    let t = &report["tables"][0];
    assert_eq!(t["row_by_row"], serde_json::Value::Null, "hashed: {t}");
    assert_eq!(
        t["chunks"], 7,
        "3,000 keys in chunks of 500, and the open end: {t}"
    );
    assert_eq!(t["chunks_hashed"], 7, "{t}");
    assert_eq!(t["chunks_read"], 0, "{t}");
    assert_eq!(t["rows"], 3000, "{t}");

    let mut c = pair.maria.connect("desk").await.expect("connect");
    // Differences a collation would call equal (a trailing space, a letter's case), and a value
    // outside the value map (its row renders no text: the chunk is read row by row).
    c.query_drop(
        "UPDATE orders SET amount = 12.501 WHERE id = 1234; \
         UPDATE orders SET label = CONCAT(label, ' ') WHERE id = 10; \
         UPDATE orders SET label = 'Étiquette 2999' WHERE id = 2999; \
         UPDATE orders SET status_code = 3 WHERE id = 2500",
    )
    .await
    .expect("drift");
    c.disconnect().await.expect("disconnect");
    let (code, report) = verify_json(&pair.config, &["--batch-rows", "500"]).await;
    assert_eq!(code, Some(1), "{report}");
    let found: Vec<_> = report["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            (
                d["key"]["id"].clone(),
                d["kind"].clone(),
                d["columns"].clone(),
            )
        })
        .collect();
    let differs = |id: &str, column: &str| {
        (
            serde_json::json!(id),
            serde_json::json!("differs"),
            serde_json::json!([column]),
        )
    };
    assert_eq!(
        found,
        vec![
            differs("10", "label"),
            differs("1234", "amount"),
            differs("2500", "status"),
            differs("2999", "label")
        ],
        "{report}"
    );
    let t = &report["tables"][0];
    assert_eq!(t["chunks_read"], 4, "only the drifted chunks are read: {t}");
    assert_eq!(t["chunks_hashed"], 3, "{t}");

    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["status", "--format", "json", "--config"])
        .arg(&pair.config)
        .output()
        .await
        .expect("status runs");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status prints JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let last = status["verify"]
        .as_array()
        .and_then(|v| v.iter().find(|x| x["table"] == "orders"))
        .unwrap_or_else(|| panic!("status shows the last verify of orders: {status}"));
    assert_eq!(last["differences"], 4, "{last}");
    assert_eq!(last["rows"], 3000, "{last}");
    assert!(status["links"].is_array(), "{status}");
}

const TRANSFORMED: &str = r#"
[[tables]]
name = "contacts"
key = ["id"]
owner = "crm"

[[tables.columns]]
name = "email"
transform = { helpdesk = ["lowercase"] }
"#;

/// A transform (here `lowercase`, one-way) cannot be rendered in SQL: the table is read row by row,
/// equal rows through the transform are not reported, and the drift is.
#[tokio::test(flavor = "multi_thread")]
async fn a_table_with_a_transform_is_read_row_by_row_and_its_drift_found() {
    let pg_sql = "CREATE TABLE contacts (id int PRIMARY KEY, email text NOT NULL);
        INSERT INTO contacts SELECT g, 'Ann' || g || '@X.org' FROM generate_series(1, 2000) g;";
    let maria_sql = "CREATE TABLE contacts (id INT PRIMARY KEY, email VARCHAR(60) NOT NULL);
        INSERT INTO contacts SELECT seq, CONCAT('ann', seq, '@x.org') FROM seq_1_to_2000;
        UPDATE contacts SET email = 'someone@else.org' WHERE id = 777;";
    let pair = Pair::start(pg_sql, maria_sql, TRANSFORMED).await;
    let (code, report) = verify_json(&pair.config, &["--batch-rows", "500"]).await;
    assert_eq!(code, Some(1), "{report}");
    let found = differences(&report);
    let expected: BTreeSet<_> = [(
        "contacts".to_string(),
        777,
        "differs".to_string(),
        vec!["email".to_string()],
    )]
    .into();
    assert_eq!(found, expected, "{report}");
    let t = &report["tables"][0];
    assert!(
        t["row_by_row"]
            .as_str()
            .is_some_and(|r| r.contains("transform")),
        "the reason names the transform: {t}"
    );
    assert_eq!(t["chunks_hashed"], 0, "{t}");
    assert_eq!(t["chunks_read"], t["chunks"], "{t}");
}

/// A catalog type's name without its modifiers, as the catalogs give it.
fn base(t: &str) -> &str {
    t.split(['(', ' ']).next().unwrap_or_default()
}

/// One value per rendered kind, on each engine, in a column of the type the kind stands for.
struct Case {
    kind: Kind,
    pg_type: &'static str,
    pg_value: &'static str,
    maria_type: &'static str,
    maria_value: &'static str,
    text: &'static str,
}

const CASES: &[Case] = &[
    Case {
        kind: Kind::Int,
        pg_type: "int8",
        pg_value: "-9000000000",
        maria_type: "BIGINT",
        maria_value: "-9000000000",
        text: "-9000000000",
    },
    Case {
        kind: Kind::Int,
        pg_type: "int4",
        pg_value: "7",
        maria_type: "BIGINT UNSIGNED",
        maria_value: "7",
        text: "7",
    },
    Case {
        kind: Kind::Bool,
        pg_type: "bool",
        pg_value: "true",
        maria_type: "TINYINT",
        maria_value: "1",
        text: "1",
    },
    Case {
        kind: Kind::Bool,
        pg_type: "bool",
        pg_value: "false",
        maria_type: "TINYINT",
        maria_value: "0",
        text: "0",
    },
    Case {
        kind: Kind::Decimal,
        pg_type: "numeric(12,4)",
        pg_value: "12.5000",
        maria_type: "DECIMAL(12,2)",
        maria_value: "12.50",
        text: "12.5",
    },
    Case {
        kind: Kind::Decimal,
        pg_type: "numeric(12,4)",
        pg_value: "-0.0500",
        maria_type: "DECIMAL(12,2)",
        maria_value: "-0.05",
        text: "-0.05",
    },
    Case {
        kind: Kind::Decimal,
        pg_type: "numeric(12,2)",
        pg_value: "100.00",
        maria_type: "DECIMAL(12,0)",
        maria_value: "100",
        text: "100",
    },
    Case {
        kind: Kind::Decimal,
        pg_type: "numeric",
        pg_value: "0.00",
        maria_type: "DECIMAL(5,2)",
        maria_value: "0.00",
        text: "0",
    },
    Case {
        kind: Kind::Text,
        pg_type: "text",
        pg_value: "'Zoë ☃ x'",
        maria_type: "TEXT",
        maria_value: "'Zoë ☃ x'",
        text: "Zoë ☃ x",
    },
    Case {
        kind: Kind::Text,
        pg_type: "varchar(10)",
        pg_value: "'a  '",
        maria_type: "VARCHAR(10)",
        maria_value: "'a  '",
        text: "a  ",
    },
    Case {
        kind: Kind::Text,
        pg_type: "text",
        pg_value: "'open'",
        maria_type: "ENUM('open','closed')",
        maria_value: "'open'",
        text: "open",
    },
    Case {
        kind: Kind::Date,
        pg_type: "date",
        pg_value: "'2024-02-29'",
        maria_type: "DATE",
        maria_value: "'2024-02-29'",
        text: "2024-02-29 AD",
    },
    Case {
        kind: Kind::Date,
        pg_type: "date",
        pg_value: "'0044-03-15'",
        maria_type: "DATE",
        maria_value: "'0044-03-15'",
        text: "0044-03-15 AD",
    },
    Case {
        kind: Kind::Naive,
        pg_type: "timestamp(6)",
        pg_value: "'2024-01-01 10:00:00.000001'",
        maria_type: "DATETIME(6)",
        maria_value: "'2024-01-01 10:00:00.000001'",
        text: "2024-01-01 10:00:00.000001 AD",
    },
    Case {
        kind: Kind::Instant,
        pg_type: "timestamptz",
        pg_value: "'2024-06-30 23:59:59.5+00'",
        maria_type: "TIMESTAMP(6)",
        maria_value: "'2024-06-30 23:59:59.5'",
        text: "2024-06-30 23:59:59.500000 AD",
    },
];

/// The canonical text of each rendered kind, read from real servers: the same business value gives
/// the same text on PostgreSQL and MariaDB; a BC date differs from its AD twin; what cannot be
/// rendered alike comes back NULL (on MariaDB a zero date-time shifted to UTC).
#[tokio::test(flavor = "multi_thread")]
async fn canonical_texts_agree_on_both_engines() {
    let (pg_server, maria) = tokio::join!(
        tandem::harness::PgServer::start(),
        tandem::harness::MariaDb::start()
    );
    let (pg_server, maria) = (
        pg_server.expect("PostgreSQL starts"),
        maria.expect("MariaDB starts"),
    );
    pg_server.create_database("canon").await.expect("database");
    maria.create_database("canon").await.expect("database");
    let pg = pg_server.connect("canon").await.expect("connect");
    pg.batch_execute("SET TimeZone = 'UTC'").await.expect("set");
    let mut my = maria.connect("canon").await.expect("connect");
    my.query_drop("SET time_zone = '+00:00', NAMES utf8mb4, sql_mode = ''")
        .await
        .expect("set");
    for (i, c) in CASES.iter().enumerate() {
        let my_kind = if c.kind == Kind::Bool {
            Kind::Int
        } else {
            c.kind
        };
        assert_eq!(
            kind(Engine::Postgres, base(c.pg_type)),
            Some(c.kind),
            "case {i}"
        );
        assert_eq!(
            kind(Engine::Mysql, base(c.maria_type)),
            Some(my_kind),
            "case {i}"
        );
        pg.batch_execute(&format!(
            "CREATE TABLE c{i} (v {}); INSERT INTO c{i} VALUES ({})",
            c.pg_type, c.pg_value
        ))
        .await
        .unwrap_or_else(|e| panic!("case {i} on PostgreSQL: {e}"));
        let pg_text: Option<String> = pg
            .query_one(
                &format!(
                    "SELECT {} FROM c{i}",
                    value_sql(Engine::Postgres, c.kind, "v", 0)
                ),
                &[],
            )
            .await
            .unwrap_or_else(|e| panic!("case {i} on PostgreSQL: {e}"))
            .get(0);
        my.query_drop(format!(
            "CREATE TABLE c{i} (v {}) CHARACTER SET utf8mb4; INSERT INTO c{i} VALUES ({})",
            c.maria_type, c.maria_value
        ))
        .await
        .unwrap_or_else(|e| panic!("case {i} on MariaDB: {e}"));
        let my_text: Option<Option<String>> = my
            .query_first(format!(
                "SELECT {} FROM c{i}",
                value_sql(Engine::Mysql, my_kind, "v", 0)
            ))
            .await
            .unwrap_or_else(|e| panic!("case {i} on MariaDB: {e}"));
        assert_eq!(pg_text.as_deref(), Some(c.text), "case {i} on PostgreSQL");
        assert_eq!(
            my_text.flatten().as_deref(),
            Some(c.text),
            "case {i} on MariaDB"
        );
    }
    // What no value of the other engine renders alike: NULL (the chunk is read row by row), or a
    // text no PostgreSQL date gives (year 0).
    for (k, v) in [
        (Kind::Date, "date 'infinity'"),
        (Kind::Naive, "timestamp '-infinity'"),
        (Kind::Instant, "timestamptz 'infinity'"),
    ] {
        let t: Option<String> = pg
            .query_one(
                &format!("SELECT {}", value_sql(Engine::Postgres, k, v, 3600)),
                &[],
            )
            .await
            .expect("infinite value")
            .get(0);
        assert_eq!(t, None, "{v} renders NULL");
    }
    my.query_drop(
        "CREATE TABLE zero (d DATE, t DATETIME); INSERT INTO zero VALUES ('0000-00-00', '0000-00-00 00:00:00')",
    )
    .await
    .expect("zero dates");
    let zero: Option<(Option<String>, Option<String>)> = my
        .query_first(format!(
            "SELECT {}, {} FROM zero",
            value_sql(Engine::Mysql, Kind::Date, "d", 0),
            value_sql(Engine::Mysql, Kind::Naive, "t", 3600)
        ))
        .await
        .expect("zero dates");
    assert_eq!(
        zero,
        Some((Some("0000-00-00 AD".into()), None)),
        "zero dates"
    );
    let bc: String = pg
        .query_one(
            &format!(
                "SELECT {}",
                value_sql(Engine::Postgres, Kind::Date, "date '0044-03-15 BC'", 0)
            ),
            &[],
        )
        .await
        .expect("BC date")
        .get(0);
    assert_eq!(bc, "0044-03-15 BC", "a BC date is not its AD twin");
    let shifted: String = pg
        .query_one(
            &format!(
                "SELECT {}",
                value_sql(
                    Engine::Postgres,
                    Kind::Naive,
                    "timestamp '2024-01-01 01:00:00'",
                    7200
                )
            ),
            &[],
        )
        .await
        .expect("shifted")
        .get(0);
    assert_eq!(
        shifted, "2023-12-31 23:00:00.000000 AD",
        "a wall clock at +02:00 in UTC"
    );
    let shifted: Option<String> = my
        .query_first(format!(
            "SELECT {}",
            value_sql(
                Engine::Mysql,
                Kind::Naive,
                "TIMESTAMP'2024-01-01 01:00:00'",
                7200
            )
        ))
        .await
        .expect("shifted");
    assert_eq!(shifted.as_deref(), Some("2023-12-31 23:00:00.000000 AD"));
    for (engine, t) in [
        (Engine::Postgres, "float8"),
        (Engine::Postgres, "bpchar"),
        (Engine::Postgres, "jsonb"),
        (Engine::Mysql, "double"),
        (Engine::Mysql, "binary"),
        (Engine::Mysql, "json"),
        (Engine::Mysql, "time"),
    ] {
        assert_eq!(kind(engine, t), None, "{t} on {engine:?} is not rendered");
    }
    my.disconnect().await.expect("disconnect");
}
