//! Shared test helpers.
#![allow(dead_code)]

use std::future::Future;

use std::time::{Duration, Instant};
use tokio::io::AsyncBufReadExt;

/// Polls `check` until it returns `Some`, or panics with `what` after `deadline`.
pub async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if start.elapsed() > deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A name unique within this test run, for databases and schemas.
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Starts `tandem run` and waits until every link has started.
pub async fn start_tandem_run(config: &std::path::Path, links: usize) -> tokio::process::Child {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["run", "--config"])
        .arg(config)
        .env("TANDEM_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start tandem run");
    let mut stderr = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let started = tokio::time::timeout(Duration::from_secs(30), async {
        let mut started = 0;
        let mut log = String::new();
        while let Ok(Some(line)) = stderr.next_line().await {
            log.push_str(&line);
            log.push('\n');
            if line.contains("link started") {
                started += 1;
                if started == links {
                    return Ok(());
                }
            }
            if line.contains("halted") || line.contains("ERROR") {
                return Err(log);
            }
        }
        Err(log)
    })
    .await;
    match started {
        Ok(Ok(())) => {}
        Ok(Err(log)) => panic!("tandem run failed to start its links:\n{log}"),
        Err(_) => panic!("links did not start within 30 s"),
    }
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            eprintln!("[tandem run] {line}");
        }
    });
    child
}

/// A PostgreSQL node `crm` (database `crm`) and a MariaDB node `helpdesk` (database `desk`) with their
/// tables created, a configuration file naming both plus `tables_toml`, and `tandem setup` run.
pub struct Pair {
    pub pg: tandem::harness::PgServer,
    pub maria: tandem::harness::MariaDb,
    pub config: std::path::PathBuf,
}

impl Pair {
    pub async fn start(pg_sql: &str, maria_sql: &str, tables_toml: &str) -> Pair {
        use mysql_async::prelude::Queryable;
        let (pg, maria) = tokio::join!(
            tandem::harness::PgServer::start(),
            tandem::harness::MariaDb::start()
        );
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
        let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_pair")));
        let text = format!(
            "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n{tables_toml}\n",
            pg.url("crm"),
            maria.url("desk")
        );
        std::fs::write(&config, text).unwrap();
        let setup = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
            .args(["setup", "--config"])
            .arg(&config)
            .output()
            .await
            .unwrap();
        assert!(
            setup.status.success(),
            "setup failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        Pair { pg, maria, config }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}
