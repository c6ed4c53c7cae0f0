//! A throwaway MariaDB server with row binlogs.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use super::process::{self, Supervised, Supervisor};
use super::HarnessError;

const INSTALL: &str = "apt-get install mariadb-server mariadb-client";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a [`MariaDb`]. The defaults are what tandem needs: binary log in ROW format with full
/// images and full metadata, GTIDs, utf8mb4, and a `server_id` unique on this machine.
#[derive(Debug, Clone, Default)]
pub struct MariaDbOptions {
    /// Extra `--name=value` server options; they override the defaults (`("binlog-format", "STATEMENT")`
    /// starts a server tandem must refuse).
    pub settings: Vec<(String, String)>,
}

/// A MariaDB server in a temporary directory; stopped and removed on drop.
#[derive(Debug)]
pub struct MariaDb {
    port: u16,
    server_id: u32,
    root: PathBuf,
    supervisor: Supervisor,
}

impl MariaDb {
    /// Starts a server with the default options.
    pub async fn start() -> Result<MariaDb, HarnessError> {
        Self::start_with(MariaDbOptions::default()).await
    }

    pub async fn start_with(options: MariaDbOptions) -> Result<MariaDb, HarnessError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_start(&options).await {
                Err(HarnessError::NotReady { log, .. })
                    if attempt < 3
                        && (log.contains("Address already in use")
                            || log.contains("Can't start server")) =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn try_start(options: &MariaDbOptions) -> Result<MariaDb, HarnessError> {
        let install_db = process::find_binary(
            "mariadb-install-db",
            "MARIADB_BIN",
            &[
                PathBuf::from("/usr/bin"),
                PathBuf::from("/usr/local/mysql/scripts"),
            ],
            INSTALL,
        )?;
        let mariadbd = process::find_binary(
            "mariadbd",
            "MARIADB_BIN",
            &[
                PathBuf::from("/usr/sbin"),
                PathBuf::from("/usr/local/mysql/bin"),
            ],
            INSTALL,
        )?;
        let as_root = process::running_as_root();
        let root = process::temp_root("mariadb", None)?;
        let data = root.join("data");
        // A private tmpdir: concurrent bootstraps sharing /tmp collide on their temporary table names.
        let tmp = root.join("tmp");
        std::fs::create_dir(&tmp).map_err(HarnessError::io(&tmp))?;
        let mut install = Command::new(&install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
                "--innodb-log-file-size=8M",
            ])
            .current_dir(&root);
        if as_root {
            install.arg("--user=root");
        }
        if let Err(e) = process::run("mariadb-install-db", &mut install, None) {
            let _ = std::fs::remove_dir_all(&root);
            return Err(e);
        }
        let port = process::free_port()?;
        // Unique among the servers running on this machine at the same time, which is what replication
        // needs; kept clear of 1, the usual id of a production primary.
        let server_id = 10_000 + u32::from(port);
        let argv = server_argv(
            &mariadbd,
            &data,
            &root,
            port,
            server_id,
            as_root,
            &options.settings,
        );
        let supervisor = Supervisor::new(Supervised::spawn(&root, "TERM", "KILL", &argv, None)?);
        let server = MariaDb {
            port,
            server_id,
            root,
            supervisor,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's `server_id`.
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// Connection URL of database `db` as `root` (no password).
    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    /// The temporary directory holding everything of this server; removed when it stops.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// Opens a client connection to `db`.
    pub async fn connect(&self, db: &str) -> Result<mysql_async::Conn, HarnessError> {
        let opts = mysql_async::Opts::from_url(&self.url(db))
            .map_err(|e| HarnessError::Setup(e.to_string()))?;
        mysql_async::Conn::new(opts)
            .await
            .map_err(|e| HarnessError::Command {
                what: format!("connecting to {}", self.url(db)),
                detail: e.to_string(),
            })
    }

    /// Creates database `name` (utf8mb4).
    pub async fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        let mut conn = self.connect("").await?;
        let sql = format!(
            "CREATE DATABASE `{}` CHARACTER SET utf8mb4",
            name.replace('`', "``")
        );
        let result = conn.query_drop(sql).await;
        let _ = conn.disconnect().await;
        result.map_err(|e| HarnessError::Command {
            what: format!("CREATE DATABASE {name}"),
            detail: e.to_string(),
        })
    }

    /// Stops the server cleanly, keeping its data.
    pub async fn stop(&mut self) -> Result<(), HarnessError> {
        self.supervisor.command("stop").await
    }

    /// Kills the server (SIGKILL): crash recovery runs on the next start.
    pub async fn crash(&mut self) -> Result<(), HarnessError> {
        self.supervisor.command("crash").await
    }

    /// Starts a stopped server again on the same port and data.
    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        self.supervisor.command("start").await?;
        self.wait_ready().await
    }

    /// Stops and starts the server.
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop().await?;
        self.start_again().await
    }

    async fn wait_ready(&self) -> Result<(), HarnessError> {
        let start = Instant::now();
        let opts = mysql_async::OptsBuilder::default()
            .ip_or_hostname("127.0.0.1")
            .tcp_port(self.port)
            .user(Some("root"));
        loop {
            if let Ok(mut conn) = mysql_async::Conn::new(opts.clone()).await {
                let ok = conn.query_drop("SELECT 1").await.is_ok();
                let _ = conn.disconnect().await;
                if ok {
                    return Ok(());
                }
            }
            let log = process::log_tail(&self.log_path());
            if start.elapsed() > READY_TIMEOUT || log.contains("[ERROR] Aborting") {
                return Err(HarnessError::NotReady {
                    server: "MariaDB",
                    seconds: start.elapsed().as_secs(),
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn server_argv(
    mariadbd: &Path,
    data: &Path,
    root: &Path,
    port: u16,
    server_id: u32,
    as_root: bool,
    overrides: &[(String, String)],
) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    let mut settings: Vec<(String, String)> = vec![
        ("datadir".into(), path(data)),
        ("port".into(), port.to_string()),
        ("bind-address".into(), "127.0.0.1".into()),
        ("socket".into(), path(&root.join("mariadb.sock"))),
        ("tmpdir".into(), path(&root.join("tmp"))),
        ("pid-file".into(), path(&root.join("mariadb.pid"))),
        ("log-bin".into(), path(&root.join("binlog"))),
        ("binlog-format".into(), "ROW".into()),
        ("binlog-row-image".into(), "FULL".into()),
        ("binlog-row-metadata".into(), "FULL".into()),
        ("server-id".into(), server_id.to_string()),
        ("character-set-server".into(), "utf8mb4".into()),
        ("collation-server".into(), "utf8mb4_unicode_ci".into()),
        ("innodb-buffer-pool-size".into(), "32M".into()),
        ("innodb-log-file-size".into(), "8M".into()),
        ("innodb-flush-log-at-trx-commit".into(), "2".into()),
        ("sync-binlog".into(), "0".into()),
        ("max-connections".into(), "300".into()),
        ("skip-name-resolve".into(), "ON".into()),
        ("performance-schema".into(), "OFF".into()),
    ];
    for (k, v) in overrides {
        settings.retain(|(name, _)| name != k);
        settings.push((k.clone(), v.clone()));
    }
    let mut argv = vec![path(mariadbd), "--no-defaults".into()];
    if as_root {
        argv.push("--user=root".into());
    }
    argv.extend(settings.into_iter().map(|(k, v)| format!("--{k}={v}")));
    argv
}
