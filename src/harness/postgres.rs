//! A throwaway PostgreSQL server.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::process::{self, Supervised, Supervisor};
use super::HarnessError;

const INSTALL: &str = "apt-get install postgresql";
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a [`PgServer`]. The defaults are what tandem needs: `wal_level=logical`, slots and
/// senders to spare, and settings that trade durability against an OS crash for speed (a throwaway
/// server still survives a crash of its own processes).
#[derive(Debug, Clone, Default)]
pub struct PgOptions {
    /// Extra `-c name=value` settings; they override the defaults (`("wal_level", "replica")` starts a
    /// server tandem must refuse).
    pub settings: Vec<(String, String)>,
    /// Lines put at the top of `pg_hba.conf` (for password-authentication tests).
    pub hba_lines: Vec<String>,
}

/// A PostgreSQL server in a temporary directory; stopped and removed on drop.
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    root: PathBuf,
    version: u32,
    supervisor: Supervisor,
}

impl PgServer {
    /// Starts a server with the default options.
    pub async fn start() -> Result<PgServer, HarnessError> {
        Self::start_with(PgOptions::default()).await
    }

    pub async fn start_with(options: PgOptions) -> Result<PgServer, HarnessError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_start(&options).await {
                Err(HarnessError::NotReady { log, .. })
                    if attempt < 3 && log.contains("could not bind") =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }

    async fn try_start(options: &PgOptions) -> Result<PgServer, HarnessError> {
        let bin = pg_bin_dir()?;
        let owner = if process::running_as_root() {
            Some(process::lookup_user("postgres").ok_or_else(|| {
                HarnessError::Setup(
                    "running as root, PostgreSQL must run as the `postgres` user, which does not exist: \
                     install the postgresql package (it creates the user) or run as a normal user"
                        .into(),
                )
            })?)
        } else {
            None
        };
        let root = process::temp_root("pg", owner)?;
        let data = root.join("data");
        let prepared = process::run(
            "initdb",
            Command::new(bin.join("initdb"))
                .arg("-D")
                .arg(&data)
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "--no-sync",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ])
                .current_dir(&root),
            owner,
        )
        .and_then(|()| prepend_hba(&data, &options.hba_lines));
        if let Err(e) = prepared {
            let _ = std::fs::remove_dir_all(&root);
            return Err(e);
        }
        let port = process::free_port()?;
        let argv = server_argv(&bin, &data, &root, port, &options.settings);
        // From here on the supervisor owns the directory and removes it when dropped.
        let supervisor = Supervisor::new(Supervised::spawn(&root, "INT", "QUIT", &argv, owner)?);
        let server = PgServer {
            port,
            root,
            version: server_version(&bin),
            supervisor,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's major version (15, 16, …).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// Connection URL of database `db` as the `postgres` superuser (trust authentication).
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The temporary directory holding everything of this server; removed when it stops.
    pub fn root_dir(&self) -> &Path {
        &self.root
    }

    pub fn log_path(&self) -> PathBuf {
        self.root.join("server.log")
    }

    /// Opens a (non-replication) client connection to `db`: TLS, unverified, when the server has
    /// `ssl=on` (so a `hostssl`-only server works too), plain otherwise.
    pub async fn connect(&self, db: &str) -> Result<tokio_postgres::Client, HarnessError> {
        let (client, conn) =
            crate::connect::postgres(&self.url(db))
                .await
                .map_err(|e| HarnessError::Command {
                    what: format!("connecting to {}", self.url(db)),
                    detail: e.to_string(),
                })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Creates database `name`.
    pub async fn create_database(&self, name: &str) -> Result<(), HarnessError> {
        let client = self.connect("postgres").await?;
        client
            .batch_execute(&format!(
                "CREATE DATABASE \"{}\"",
                name.replace('"', "\"\"")
            ))
            .await
            .map_err(|e| HarnessError::Command {
                what: format!("CREATE DATABASE {name}"),
                detail: e.to_string(),
            })
    }

    /// Stops the server (fast shutdown), keeping its data.
    pub async fn stop(&mut self) -> Result<(), HarnessError> {
        self.supervisor.command("stop").await
    }

    /// Kills the server as a crash would (immediate shutdown: recovery runs on the next start).
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
        let url = self.url("postgres");
        loop {
            if let Ok((client, conn)) = crate::connect::postgres(&url).await {
                let task = tokio::spawn(conn);
                let ok = client.simple_query("SELECT 1").await.is_ok();
                drop(client);
                let _ = task.await;
                if ok {
                    return Ok(());
                }
            }
            let log = process::log_tail(&self.log_path());
            let failed = [
                "could not bind",
                "could not create",
                "invalid value for parameter",
                "unrecognized configuration",
                "not supported by this build",
            ]
            .iter()
            .any(|m| log.contains(m));
            if start.elapsed() > READY_TIMEOUT || failed {
                return Err(HarnessError::NotReady {
                    server: "PostgreSQL",
                    seconds: start.elapsed().as_secs(),
                    log,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

fn prepend_hba(data: &Path, lines: &[String]) -> Result<(), HarnessError> {
    if lines.is_empty() {
        return Ok(());
    }
    let hba = data.join("pg_hba.conf");
    let old = std::fs::read_to_string(&hba).map_err(HarnessError::io(&hba))?;
    std::fs::write(&hba, format!("{}\n{old}", lines.join("\n"))).map_err(HarnessError::io(&hba))
}

fn server_argv(
    bin: &Path,
    data: &Path,
    root: &Path,
    port: u16,
    overrides: &[(String, String)],
) -> Vec<String> {
    let mut settings: Vec<(String, String)> = [
        ("listen_addresses", "127.0.0.1"),
        ("wal_level", "logical"),
        ("max_replication_slots", "32"),
        ("max_wal_senders", "32"),
        ("max_connections", "200"),
        ("fsync", "off"),
        ("full_page_writes", "off"),
        ("shared_buffers", "32MB"),
        ("wal_sender_timeout", "60s"),
        ("log_min_messages", "warning"),
        ("logical_decoding_work_mem", "64kB"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect();
    settings.push(("unix_socket_directories".into(), root.display().to_string()));
    for (k, v) in overrides {
        settings.retain(|(name, _)| name != k);
        settings.push((k.clone(), v.clone()));
    }
    let mut argv = vec![
        bin.join("postgres").display().to_string(),
        "-D".into(),
        data.display().to_string(),
        "-p".into(),
        port.to_string(),
    ];
    for (k, v) in settings {
        argv.push("-c".into());
        argv.push(format!("{k}={v}"));
    }
    argv
}

/// The directory holding `initdb` and `postgres`: `$PG_BIN`, the newest `/usr/lib/postgresql/*/bin`
/// (15 or newer), or `PATH`.
fn pg_bin_dir() -> Result<PathBuf, HarnessError> {
    let mut versioned: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            (v >= 15).then(|| (v, e.path().join("bin")))
        })
        .collect();
    versioned.sort();
    let dirs: Vec<PathBuf> = versioned.into_iter().rev().map(|(_, p)| p).collect();
    let initdb = process::find_binary("initdb", "PG_BIN", &dirs, INSTALL)?;
    let dir = initdb.parent().map(Path::to_path_buf).unwrap_or_default();
    process::find_binary("postgres", "PG_BIN", std::slice::from_ref(&dir), INSTALL)?;
    Ok(dir)
}

fn server_version(bin: &Path) -> u32 {
    Command::new(bin.join("postgres"))
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let text = String::from_utf8_lossy(&o.stdout).to_string();
            let v = text
                .split_whitespace()
                .last()?
                .split('.')
                .next()?
                .parse()
                .ok()?;
            Some(v)
        })
        .unwrap_or(0)
}
