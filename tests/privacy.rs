//! Secrets and row values stay out of what tandem prints: a password in a URL's query, a password
//! from the environment that holds URL delimiters, and row keys in logs above debug and on the
//! unauthenticated `/health`.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tandem::harness::{PgOptions, PgServer};

use crate::apply_support::{maria, pg};
use crate::support::{free_port, http_get as get, unique_name, wait_for, Pair};

fn write_config(text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_privacy")));
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs `tandem args… --config path` with `env`; returns stdout and stderr together.
async fn tandem(args: &[&str], path: &std::path::Path, env: &[(&str, &str)]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .arg("--config")
        .arg(path)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("run tandem");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Before the fix `setup` printed `-- node crm (PostgreSQL, postgres://…?password=…)` and `check`
/// quoted the URL, password included, in the fix of an unreachable node.
#[tokio::test]
async fn setup_and_check_never_print_a_password_given_in_the_query() {
    let db = unique_name("privq");
    pg().await.create_database(&db).await.expect("db");
    maria().await.create_database(&db).await.expect("db");
    let table = "CREATE TABLE customers (id int PRIMARY KEY, name text)";
    pg().await
        .connect(&db)
        .await
        .expect("connect")
        .batch_execute(table)
        .await
        .expect("table");
    maria()
        .await
        .connect(&db)
        .await
        .expect("connect")
        .query_drop(table)
        .await
        .expect("table");
    let tables = format!(
        "[[tables]]\nname = \"customers\"\nkey = [\"id\"]\non = {{ desk = \"{db}.customers\" }}\n"
    );
    let pg_url = format!("{}?password=hunter2query", pg().await.url(&db));
    let path = write_config(&format!(
        "[nodes.crm]\nurl = \"{pg_url}\"\n[nodes.desk]\nurl = \"{}\"\n{tables}",
        maria().await.url(&db)
    ));
    let out = tandem(&["setup"], &path, &[]).await;
    assert!(out.contains("-- node crm"), "setup ran:\n{out}");
    assert!(
        !out.contains("hunter2query"),
        "setup printed the password:\n{out}"
    );
    let out = tandem(&["check"], &path, &[]).await;
    assert!(
        !out.contains("hunter2query"),
        "check printed the password:\n{out}"
    );
    std::fs::remove_file(&path).ok();
    // An unreachable node: check's fix names the URL.
    let path = write_config(&format!(
        "[nodes.crm]\nurl = \"postgres://app@127.0.0.1:9/crm?sslmode=disable&password=hunter2query\"\n\
         [nodes.desk]\nurl = \"{}\"\n{tables}",
        maria().await.url(&db)
    ));
    let out = tandem(&["check"], &path, &[]).await;
    assert!(
        out.contains("nodes.crm.url"),
        "check reports the node:\n{out}"
    );
    assert!(
        !out.contains("hunter2query"),
        "check printed the password:\n{out}"
    );
    std::fs::remove_file(&path).ok();
}

/// Before the fix `${PW}` was spliced in as is: `@` ended the user info early, so tandem connected
/// to host `ss` (or failed to parse the URL) instead of logging in with the password.
#[tokio::test]
async fn a_password_from_the_environment_with_url_delimiters_connects() {
    let pg = PgServer::start_with(PgOptions {
        hba_lines: vec!["host all carol 127.0.0.1/32 scram-sha-256".into()],
        ..PgOptions::default()
    })
    .await
    .expect("PostgreSQL starts");
    pg.create_database("crm").await.expect("db");
    let password = "p@ss/w#rd?:%41 é";
    let c = pg.connect("crm").await.expect("connect");
    c.batch_execute(&format!(
        "CREATE TABLE customers (id int PRIMARY KEY, name text); \
         CREATE ROLE carol LOGIN REPLICATION PASSWORD '{password}'; \
         GRANT SELECT ON customers TO carol"
    ))
    .await
    .expect("role");
    let db = unique_name("privenv");
    let user = unique_name("dave");
    maria().await.create_database(&db).await.expect("db");
    let mut root = maria().await.connect(&db).await.expect("connect");
    root.query_drop(format!(
        "CREATE TABLE customers (id int PRIMARY KEY, name text); \
         CREATE USER '{user}'@'%' IDENTIFIED BY '{}'; \
         GRANT ALL ON `{db}`.* TO '{user}'@'%'",
        password.replace('\\', "\\\\")
    ))
    .await
    .expect("table and user");
    let path = write_config(&format!(
        "[nodes.crm]\nurl = \"postgres://carol:${{TANDEM_TEST_PW}}@127.0.0.1:{}/crm\"\n\
         [nodes.desk]\nurl = \"mysql://{user}:${{TANDEM_TEST_PW}}@127.0.0.1:{}/{db}\"\n\
         [[tables]]\nname = \"customers\"\nkey = [\"id\"]\non = {{ desk = \"{db}.customers\" }}\n",
        pg.port(),
        maria().await.port()
    ));
    let out = tandem(&["check"], &path, &[("TANDEM_TEST_PW", password)]).await;
    std::fs::remove_file(&path).ok();
    assert!(
        !out.contains("nodes.crm.url") && !out.contains("nodes.desk.url"),
        "tandem could not connect with the password from the environment:\n{out}"
    );
    assert!(out.contains("customers"), "check read crm's schema:\n{out}");
    assert!(!out.contains("p@ss"), "check printed the password:\n{out}");
}

/// Before the fix the info log said `conflict decided … key={"id":"918273"}` and `/health` served
/// the halt reason `table customers, key {"id":"771234"}: …` to anyone.
#[tokio::test]
async fn row_keys_stay_out_of_info_logs_and_health() {
    let port = free_port();
    let p = Pair::start(
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL)",
        "CREATE TABLE customers (id int PRIMARY KEY, name varchar(8) NOT NULL)",
        &format!(
            "[[tables]]\nname = \"customers\"\nkey = [\"id\"]\nowner = \"crm\"\non_error = \"halt\"\n\n\
             [metrics]\nlisten = \"127.0.0.1:{port}\"\n"
        ),
    )
    .await;
    let log_path = std::env::temp_dir().join(format!("{}.log", unique_name("tandem_privacy")));
    let log = std::fs::File::create(&log_path).expect("log file");
    let mut run = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["run", "--config"])
        .arg(&p.config)
        .env("TANDEM_LOG", "info")
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem run");
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_for("both links started", Duration::from_secs(30), || async {
        (read_log().matches("link started").count() == 2).then_some(())
    })
    .await;
    let crm = p.pg.connect("crm").await.expect("connect");
    crm.batch_execute("INSERT INTO customers VALUES (918273, 'ok')")
        .await
        .expect("insert");
    wait_for("the row on MariaDB", Duration::from_secs(30), || async {
        let mut c = p.maria.connect("desk").await.ok()?;
        let n: Option<i64> = c.query_first("SELECT COUNT(*) FROM customers").await.ok()?;
        let _ = c.disconnect().await;
        (n == Some(1)).then_some(())
    })
    .await;
    let mut desk = p.maria.connect("desk").await.expect("connect");
    // A change from the non-owner: a conflict, decided and logged.
    desk.query_drop("UPDATE customers SET name = 'desk' WHERE id = 918273")
        .await
        .expect("update");
    wait_for("the conflict logged", Duration::from_secs(30), || async {
        read_log().contains("conflict decided").then_some(())
    })
    .await;
    // A name MariaDB cannot hold halts crm -> helpdesk.
    crm.batch_execute("INSERT INTO customers VALUES (771234, 'far too long for eight')")
        .await
        .expect("insert");
    let (_, body) = wait_for("/health to turn 503", Duration::from_secs(30), || async {
        get(port, "/health").await.filter(|r| r.0 == 503)
    })
    .await;
    assert!(body.contains("crm_to_helpdesk: halted"), "{body}");
    assert!(
        body.contains("customers"),
        "the reason names the table: {body}"
    );
    assert!(!body.contains("771234"), "/health shows a row key: {body}");
    run.kill().await.expect("kill tandem run");
    let text = read_log();
    std::fs::remove_file(&log_path).ok();
    for key in ["918273", "771234"] {
        assert!(!text.contains(key), "the info log shows key {key}:\n{text}");
    }
    assert!(
        text.contains("key_ref"),
        "the log refers to the key:\n{text}"
    );
}
