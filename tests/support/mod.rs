//! Shared test helpers.
#![allow(dead_code)]

pub mod converge;
pub mod cross;

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

/// Runs `tandem <args> --config <config>` to the end.
pub async fn tandem_cli(args: &[&str], config: &std::path::Path) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await
        .expect("run the tandem binary")
}

/// A finished command's stdout and stderr, for assertion messages.
pub fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
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

/// Kills `child` with SIGKILL, as a crash would.
pub fn sigkill(child: &tokio::process::Child) {
    let pid = child.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status();
}

/// Stops `tandem run` with SIGTERM and checks it exits cleanly.
pub async fn stop_tandem_run(mut tandem: tokio::process::Child) {
    let pid = tandem.id().expect("pid");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(30), tandem.wait())
        .await
        .expect("tandem run stops on SIGTERM")
        .expect("wait for tandem run");
    assert!(status.success(), "tandem run exited with {status}");
}

/// A PostgreSQL node `crm` (database `crm`) and a MariaDB node `helpdesk` (database `desk`) with their
/// tables created, a configuration file naming both plus `tables_toml`, and `tandem setup` run.
pub struct Pair {
    pub pg: tandem::harness::PgServer,
    pub maria: tandem::harness::MariaDb,
    pub config: std::path::PathBuf,
}

impl Pair {
    /// The rows of each node's conflict log: (crm on PostgreSQL, helpdesk on MariaDB).
    pub async fn conflicts(&self) -> (i64, i64) {
        use mysql_async::prelude::Queryable;
        let c = self.pg.connect("crm").await.expect("connect");
        let on_pg: i64 = c
            .query_one("SELECT count(*) FROM tandem.conflict", &[])
            .await
            .expect("conflicts on PostgreSQL")
            .get(0);
        let mut m = self.maria.connect("desk").await.expect("connect");
        let on_maria: Option<i64> = m
            .query_first("SELECT count(*) FROM tandem.conflict")
            .await
            .expect("conflicts on MariaDB");
        m.disconnect().await.ok();
        (on_pg, on_maria.unwrap_or(-1))
    }

    pub async fn start(pg_sql: &str, maria_sql: &str, tables_toml: &str) -> Pair {
        let pair = Pair::create(pg_sql, maria_sql, tables_toml).await;
        let setup = tandem_cli(&["setup"], &pair.config).await;
        assert!(
            setup.status.success(),
            "setup failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        );
        pair
    }

    /// The same without `tandem setup`; an empty `pg_sql` or `maria_sql` creates no table there.
    pub async fn create(pg_sql: &str, maria_sql: &str, tables_toml: &str) -> Pair {
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
        if !maria_sql.is_empty() {
            conn.query_drop(maria_sql).await.expect("MariaDB schema");
        }
        conn.disconnect().await.unwrap();
        let config = std::env::temp_dir().join(format!("{}.toml", unique_name("tandem_pair")));
        let text = format!(
            "[nodes.crm]\nurl = \"{}\"\n[nodes.helpdesk]\nurl = \"{}\"\n{tables_toml}\n",
            pg.url("crm"),
            maria.url("desk")
        );
        std::fs::write(&config, text).unwrap();
        Pair { pg, maria, config }
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.config);
    }
}

/// A throwaway CA and a `localhost` server certificate signed by it, made with the openssl tool; the
/// key is handed to the `postgres` user when running as root, since the server refuses a key others
/// can read.
pub fn make_certificates() -> std::path::PathBuf {
    use std::process::Command;
    let dir = std::env::temp_dir().join(unique_name("tandem-tls"));
    std::fs::create_dir_all(&dir).expect("cert dir");
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("the openssl tool is needed for the TLS test (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .expect("ext file");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=tandem test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "ext.cnf",
    ]);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(
        dir.join("server.key"),
        std::fs::Permissions::from_mode(0o600),
    )
    .expect("chmod key");
    std::fs::set_permissions(
        dir.join("server.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .expect("chmod cert");
    let uid = Command::new("id").args(["-u"]).output().expect("id -u");
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        let out = Command::new("chown")
            .args(["postgres", "server.key"])
            .current_dir(&dir)
            .output()
            .expect("chown");
        assert!(out.status.success(), "chown postgres server.key failed");
    }
    dir
}

/// A TCP port free on loopback now, below Linux's ephemeral range (32768 and up): a port the kernel
/// handed out for `:0` can be taken again at once by any outgoing connection of the tests running
/// beside this one, before the server that was to listen on it starts.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
        ^ u64::from(std::process::id()).rotate_left(32);
    for _ in 0..1000 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = 20000 + ((seed.wrapping_add(n.wrapping_mul(7919))) % 12000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

/// `GET path` on a local HTTP address: (status code, body).
pub async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_string()))
}
