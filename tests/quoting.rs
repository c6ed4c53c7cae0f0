//! Column names that quoting gets wrong: a backslash, both quote characters, a backtick, tandem's
//! dollar-quote tag, a space and non-ASCII, as key columns, through setup's triggers, the applier's
//! conflict path and `check --sample`, against both engines.

use tandem::apply::{self, Applier};
use tandem::config::Config;
use tandem::model::{Op, Value};

use crate::apply_support::*;
use crate::support::unique_name;

/// The odd names, as SQL identifiers need them written unquoted (the tests quote them).
const NAMES: [&str; 7] = ["k\\", "k'q", "k\"q", "k`q", "$tandem$", "k q", "clé"];

fn quoted(kind: Kind, name: &str) -> String {
    match kind {
        Kind::Pg => format!("\"{}\"", name.replace('"', "\"\"")),
        Kind::My => format!("`{}`", name.replace('`', "``")),
    }
}

fn ddl(kind: Kind) -> String {
    let cols: Vec<String> = NAMES
        .iter()
        .map(|n| format!("{} INT NOT NULL", quoted(kind, n)))
        .collect();
    let key: Vec<String> = NAMES.iter().map(|n| quoted(kind, n)).collect();
    format!(
        "CREATE TABLE odd ({}, {} VARCHAR(20), PRIMARY KEY ({}))",
        cols.join(", "),
        quoted(kind, "v'\\"),
        key.join(", ")
    )
}

/// A TOML basic string.
fn toml(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn key_toml() -> String {
    let names: Vec<String> = NAMES.iter().map(|n| toml(n)).collect();
    format!("[{}]", names.join(", "))
}

fn row(v: &str, version: i64) -> tandem::model::RowImage {
    let mut fields: Vec<(&str, Value)> = NAMES
        .iter()
        .enumerate()
        .map(|(i, n)| (*n, Value::Int(i as i64)))
        .collect();
    fields.push(("v'\\", Value::Text(v.into())));
    fields.push(("_tandem_version", Value::Int(version)));
    fields.push(("_tandem_origin", Value::Text(SOURCE.into())));
    image(&fields)
}

fn tx(kind: Kind, n: u64, changes: Vec<tandem::model::Change>) -> tandem::model::Transaction {
    use tandem::model::{BinlogPosition, ChangeSet, LoopMarks, Lsn, PgPosition, Position};
    tandem::model::Transaction {
        origin: SOURCE.into(),
        position: match kind {
            Kind::Pg => Position::Binlog(BinlogPosition {
                file: "bin.000001".into(),
                offset: n,
            }),
            Kind::My => Position::Postgres(PgPosition {
                commit_lsn: Lsn(n),
                lsn: Lsn(n),
            }),
        },
        commit_time: 1_700_000_000_000_000 + n as i64,
        xid: None,
        marks: LoopMarks::default(),
        changes: ChangeSet::Memory(changes),
    }
}

/// Before the fix (MariaDB): the conflict probe's `JSON_OBJECT('k\', …)` let the backslash escape
/// the closing quote, so the insert that found its key taken failed with a syntax error.
async fn odd_key_columns_go_through_setup_and_the_conflict_path(kind: Kind) {
    let db_name = unique_name("odd");
    let schema = unique_name("tk");
    let (url, other, target_schema) = match kind {
        Kind::Pg => {
            pg().await.create_database(&db_name).await.expect("db");
            (
                pg().await.url(&db_name),
                "mysql://root@127.0.0.1:9/src".to_string(),
                "public".to_string(),
            )
        }
        Kind::My => {
            maria().await.create_database(&db_name).await.expect("db");
            (
                maria().await.url(&db_name),
                "postgres://postgres@127.0.0.1:9/src".to_string(),
                db_name.clone(),
            )
        }
    };
    let text = format!(
        "[tandem]\nschema = \"{schema}\"\n[nodes.{TARGET}]\nurl = \"{url}\"\n[nodes.{SOURCE}]\nurl = \"{other}\"\n\
         [[tables]]\nname = \"odd\"\nkey = {}\non = {{ {TARGET} = \"{target_schema}.odd\", {SOURCE} = \"src.odd\" }}\n",
        key_toml()
    );
    let (config, _) = Config::from_str_with_env(&text, "test.toml", &|_| None)
        .unwrap_or_else(|e| panic!("test config: {:?}", e.problems));
    let mut db = Db::open(kind, &db_name).await;
    db.exec(&ddl(kind)).await;
    apply::setup(&config, TARGET, false)
        .await
        .expect("setup with odd key column names");
    let mut a = Applier::connect(&config, SOURCE, TARGET)
        .await
        .expect("applier");
    let change = |op, after| tandem::model::Change {
        table: tandem::model::TableRef::new("src", "odd"),
        op,
        before: None,
        after: Some(after),
    };
    a.apply(&[tx(kind, 1, vec![change(Op::Insert, row("first", 10))])])
        .await
        .expect("a plain insert");
    // The same key again: a conflict, which reads the target's current row by its key.
    a.apply(&[tx(
        kind,
        2,
        vec![change(Op::Insert, row("second", i64::MAX / 2))],
    )])
    .await
    .expect("an insert whose key exists is a conflict, decided and recorded");
    let v = quoted(kind, "v'\\");
    assert_eq!(
        db.one(&format!("SELECT {v} FROM odd")).await.as_deref(),
        Some("second"),
        "the newer insert wins under last_write_wins"
    );
    let book = match kind {
        Kind::Pg => format!("\"{schema}\""),
        Kind::My => format!("`{schema}`"),
    };
    assert_eq!(
        db.one(&format!("SELECT count(*) FROM {book}.conflict"))
            .await
            .as_deref(),
        Some("1"),
        "the conflict is recorded"
    );
    // Local writes go through setup's triggers, which build the key text from the names.
    db.exec(&format!("UPDATE odd SET {v} = 'local'")).await;
    db.exec("DELETE FROM odd").await;
    let stone = db
        .one(&format!("SELECT row_key FROM {book}.tombstone"))
        .await
        .expect("the local delete left a tombstone");
    let parsed: serde_json::Value = serde_json::from_str(&stone).expect("tombstone key is JSON");
    for (i, n) in NAMES.iter().enumerate() {
        assert_eq!(
            parsed.get(*n).and_then(|x| x.as_str()),
            Some(i.to_string().as_str()),
            "tombstone key {stone} lacks column {n:?}"
        );
    }
}

#[tokio::test]
async fn odd_key_columns_on_mariadb() {
    odd_key_columns_go_through_setup_and_the_conflict_path(Kind::My).await;
}

#[tokio::test]
async fn odd_key_columns_on_postgres() {
    odd_key_columns_go_through_setup_and_the_conflict_path(Kind::Pg).await;
}

/// Before the fix: `check --sample` sent `JSON_OBJECT('k\', …)` to MariaDB, a syntax error, so the
/// sample of that table was skipped with "could not sample".
#[tokio::test]
async fn check_sample_reads_tables_with_odd_column_names() {
    let db_name = unique_name("oddsample");
    pg().await.create_database(&db_name).await.expect("db");
    maria().await.create_database(&db_name).await.expect("db");
    for kind in [Kind::Pg, Kind::My] {
        let mut db = Db::open(kind, &db_name).await;
        db.exec(&ddl(kind)).await;
        let cols: Vec<String> = NAMES.iter().map(|n| quoted(kind, n)).collect();
        db.exec(&format!(
            "INSERT INTO odd ({}, {}) VALUES (0, 1, 2, 3, 4, 5, 6, 'x')",
            cols.join(", "),
            quoted(kind, "v'\\")
        ))
        .await;
    }
    let text = format!(
        "[nodes.crm]\nurl = \"{}\"\n[nodes.desk]\nurl = \"{}\"\n\
         [[tables]]\nname = \"odd\"\nkey = {}\non = {{ desk = \"{db_name}.odd\" }}\n",
        pg().await.url(&db_name),
        maria().await.url(&db_name),
        key_toml()
    );
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_oddsample")));
    std::fs::write(&path, text).expect("write config");
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["check", "--sample", "5", "--config"])
        .arg(&path)
        .output()
        .await
        .expect("run tandem check");
    std::fs::remove_file(&path).ok();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        !stdout.contains("could not sample") && !stdout.contains("syntax"),
        "check --sample failed on the odd names:\n{stdout}"
    );
    assert!(
        !stdout.contains("would reject"),
        "a row that fits was reported as rejected:\n{stdout}"
    );
}
