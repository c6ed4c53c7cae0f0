//! pg_chameleon 2.0.21 as the peer of `chameleon.rs`: installed into a virtualenv, configured,
//! run as a non-root OS user, timed on the same workloads, stopped.

use std::path::PathBuf;
use std::process::Stdio;

use super::support::processes;
use super::*;

/// `(uid, gid)` of OS user `name`, from /etc/passwd.
fn os_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        if f.first() == Some(&name) {
            Some((f.get(2)?.parse().ok()?, f.get(3)?.parse().ok()?))
        } else {
            None
        }
    })
}

/// Runs programs as the non-root user pg_chameleon needs, with `HOME` set.
struct AsUser {
    /// `(uid, gid)` when running as root; `None` runs as the current user.
    owner: Option<(u32, u32)>,
    home: PathBuf,
}

impl AsUser {
    fn command(&self, program: &Path, args: &[&str]) -> tokio::process::Command {
        let mut cmd = if self.owner.is_some() {
            let mut c = tokio::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", "env"])
                .arg(format!("HOME={}", self.home.display()))
                .arg(program);
            c
        } else {
            let mut c = tokio::process::Command::new(program);
            c.env("HOME", &self.home);
            c
        };
        cmd.args(args).stdin(Stdio::null());
        cmd
    }

    /// Hands `path` (and everything under it) to the user.
    fn own(&self, path: &Path) -> Result<(), Error> {
        let Some((uid, gid)) = self.owner else {
            return Ok(());
        };
        std::os::unix::fs::chown(path, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", path.display()))?;
        if path.is_dir() {
            for entry in std::fs::read_dir(path)? {
                self.own(&entry?.path())?;
            }
        }
        Ok(())
    }

    /// Runs `program args`, failing with its output when it fails.
    async fn run(&self, program: &Path, args: &[&str]) -> Result<String, Error> {
        let out = self.command(program, args).output().await?;
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if !out.status.success() {
            return Err(format!("{} {args:?} failed: {text}", program.display()).into());
        }
        Ok(text)
    }
}

/// The virtualenv holding pg_chameleon, installed on first use.
async fn chameleon_venv(user: &AsUser) -> Result<PathBuf, Error> {
    let cache = PathBuf::from(VENV_CACHE);
    let venv = cache.join("venv");
    let chameleon = venv.join("bin/chameleon");
    let done = cache.join("installed");
    if done.exists() && chameleon.exists() {
        return Ok(venv);
    }
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::create_dir_all(&cache)?;
    user.own(&cache)?;
    let python = std::env::var("TANDEM_BENCH_PYTHON").unwrap_or_else(|_| {
        if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3".into()
        } else {
            "python3".into()
        }
    });
    println!("  installing {CHAMELEON} into {} ...", venv.display());
    let venv_text = venv.display().to_string();
    user.run(Path::new(&python), &["-m", "venv", &venv_text])
        .await
        .map_err(|e| {
            format!("{e}\n(python3 -m venv needs the python3-venv package on Debian/Ubuntu)")
        })?;
    user.run(
        &venv.join("bin/pip"),
        &[
            "install",
            "--quiet",
            "--no-cache-dir",
            "--disable-pip-version-check",
            CHAMELEON,
        ],
    )
    .await?;
    if !chameleon.exists() {
        return Err(format!("{} is missing after pip install", chameleon.display()).into());
    }
    std::fs::write(&done, CHAMELEON)?;
    Ok(venv)
}

/// pg_chameleon's configuration: the shipped example's values, with the connections filled in.
fn chameleon_config(home: &Path, maria: &MariaDb, pg: &PgServer) -> String {
    let dir = home.join(".pg_chameleon");
    format!(
        "---
pid_dir: '{pid}'
log_dir: '{log}'
log_dest: stdout
log_level: info
log_days_keep: 10
rollbar_key: ''
rollbar_env: ''
type_override:
  \"tinyint(1)\":
    override_to: boolean
    override_tables:
      - \"*\"
pg_conn:
  host: \"127.0.0.1\"
  port: \"{pg_port}\"
  user: \"postgres\"
  password: \"unused\"
  database: \"chameleon\"
  charset: \"utf8\"
sources:
  mysql:
    db_conn:
      host: \"127.0.0.1\"
      port: \"{my_port}\"
      user: \"chameleon\"
      password: \"bench\"
      charset: 'utf8'
      connect_timeout: 10
    schema_mappings:
      bench: bench
    limit_tables:
    skip_tables:
    grant_select_to:
    lock_timeout: \"120s\"
    my_server_id: 100
    replica_batch_size: 10000
    replay_max_rows: 10000
    batch_retention: '1 day'
    copy_max_memory: \"300M\"
    copy_mode: 'file'
    out_dir: '{out}'
    sleep_loop: 1
    on_error_replay: continue
    on_error_read: continue
    auto_maintenance: \"disabled\"
    gtid_enable: false
    type: mysql
    skip_events:
      insert:
      delete:
      update:
    keep_existing_schema: No
    net_read_timeout: 600
",
        pid = dir.join("pid").display(),
        log = dir.join("logs").display(),
        out = home.join("out").display(),
        pg_port = pg.port(),
        my_port = maria.port(),
    )
}

async fn source_status(pg: &Client) -> Result<String, Error> {
    Ok(pg
        .query_opt(
            "SELECT enm_status::text FROM sch_chameleon.t_sources WHERE t_source = 'mysql'",
            &[],
        )
        .await?
        .map(|r| r.get(0))
        .unwrap_or_default())
}

/// Sends `signal` to every process of the tree under `root` (processes this benchmark started).
fn signal_tree(root: u32, signal: &str) {
    let all = processes();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            all.iter()
                .filter(|(_, ppid, _)| *ppid == parent)
                .map(|(pid, _, _)| *pid),
        );
        i += 1;
    }
    for pid in tree.into_iter().rev() {
        let _ = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(pid.to_string())
            .status();
    }
}

pub(super) async fn chameleon(
    maria: &MariaDb,
    pg: &PgServer,
    sizes: &Sizes,
) -> Result<Figures, Error> {
    let owner = if tandem::harness::running_as_root() {
        Some(os_user("postgres").ok_or(
            "running as root, pg_chameleon must run as another user and `postgres` does not exist",
        )?)
    } else {
        None
    };
    let root = std::env::temp_dir().join(format!("tandem-bench-chameleon-{}", std::process::id()));
    let home = root.join("home");
    std::fs::create_dir_all(home.join("out"))?;
    let user = AsUser {
        owner,
        home: home.clone(),
    };
    user.own(&root)?;
    let result = chameleon_in(maria, pg, sizes, &user, &root).await;
    let _ = std::fs::remove_dir_all(&root);
    result
}

async fn chameleon_in(
    maria: &MariaDb,
    pg: &PgServer,
    sizes: &Sizes,
    user: &AsUser,
    root: &Path,
) -> Result<Figures, Error> {
    let venv = chameleon_venv(user).await?;
    let bin = venv.join("bin/chameleon");
    // pip resolves the dependencies afresh on install: say which ones this run used.
    let freeze = user
        .run(
            &venv.join("bin/pip"),
            &["freeze", "--disable-pip-version-check"],
        )
        .await?;
    let versions: Vec<&str> = freeze
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "pg_chameleon",
                "pg-chameleon",
                "mysql-replication",
                "pymysql",
                "psycopg2",
            ]
            .iter()
            .any(|p| l.starts_with(p))
        })
        .collect();
    println!(
        "  pg_chameleon from {}: {}",
        venv.display(),
        versions.join(", ")
    );

    maria.create_database("bench").await?;
    let mut my = maria.connect("bench").await?;
    my_batch(&mut my, MY_DDL).await?;
    my_batch(
        &mut my,
        "CREATE USER chameleon@'%' IDENTIFIED BY 'bench'; GRANT ALL ON *.* TO chameleon@'%'",
    )
    .await?;
    my.disconnect().await?;
    pg.create_database("chameleon").await?;
    let dst = connect(&pg.url("chameleon")).await?;

    user.run(&bin, &["set_configuration_files"]).await?;
    let config = user.home.join(".pg_chameleon/configuration/bench.yml");
    std::fs::write(&config, chameleon_config(&user.home, maria, pg))?;
    user.own(&user.home)?;
    let source = ["--config", "bench", "--source", "mysql"];
    user.run(&bin, &["create_replica_schema", "--config", "bench"])
        .await?;
    user.run(&bin, &[&["add_source"], &source[..]].concat())
        .await?;
    // In the foreground (log_dest: stdout); it exits 0 even when it failed, so its status is checked.
    let out = user
        .run(&bin, &[&["init_replica"], &source[..]].concat())
        .await?;
    let status = source_status(&dst).await?;
    if status != "initialised" {
        return Err(format!(
            "pg_chameleon init_replica left the source {status:?}; output:\n{out}"
        )
        .into());
    }

    let log = root.join("start_replica.log");
    let log_file = std::fs::File::create(&log)?;
    let mut child = user
        .command(&bin, &[&["start_replica"], &source[..]].concat())
        .stdout(log_file.try_clone()?)
        .stderr(log_file)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("start_replica has no pid")?;
    let target = Target {
        client: &dst,
        mark: "bench.mark",
        tool_pid: pid,
        tool_log: Some(&log),
    };
    let start = Instant::now();
    while source_status(&dst).await? != "running" {
        if exited(pid) {
            return Err(target.tool_died("start_replica"));
        }
        if start.elapsed() > Duration::from_secs(60) {
            return Err("pg_chameleon's source did not reach status running in 60 s".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let meters = Meters {
        source: mariadb_pid(maria)?,
        target: postmaster(pg)?,
        tool: Some(Tool::Cmdline(venv.display().to_string())),
    };
    let figures = workloads(
        &maria.url("bench"),
        &target,
        "bench.items",
        sizes,
        "pg_chameleon",
        &meters,
    )
    .await;

    // Stop it cleanly; whatever of it is still running after 30 s is killed.
    let stopped = user
        .run(&bin, &[&["stop_replica"], &source[..]].concat())
        .await;
    let start = Instant::now();
    while !exited(pid) && start.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if !exited(pid) {
        signal_tree(pid, "TERM");
        let start = Instant::now();
        while !exited(pid) && start.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        signal_tree(pid, "KILL");
    }
    let _ = child.wait().await;
    let figures = figures?;
    stopped.map_err(|e| format!("pg_chameleon stop_replica: {e}"))?;
    Ok(figures)
}
