//! Helpers the benchmarks share: running the `tandem` binary (`setup`, then `run` until both links
//! have started), connecting to the harness servers, reading CPU time and resident memory from
//! `/proc`, the replicate/chameleon workload sizes and figures, and the runtime around `run()`.
//!
//! A bench includes it with `mod support;` (a module in a subdirectory of `benches/` is not a bench
//! target of its own).

// Each bench uses a subset of these helpers; the rest would be dead code in that bench's crate.
#![allow(dead_code)]

use std::fmt::Display;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tandem::harness::{MariaDb, PgServer};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio_postgres::{Client, NoTls};

pub mod pg_source;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs `run` on a multi-threaded tokio runtime; on an error prints `{runtime_error}: {e}` (the
/// runtime did not start) or `{failed}: {e}` and exits with status 1.
pub fn main<E: Display>(
    runtime_error: &str,
    failed: &str,
    run: impl Future<Output = Result<(), E>>,
) {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{runtime_error}: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run) {
        eprintln!("{failed}: {e}");
        std::process::exit(1);
    }
}

/// "debug" or "release": how this bench, and so the `tandem` binary with it, was built.
pub fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

// ---------------------------------------------------------------------------------------------
// Connections

/// A PostgreSQL client over `url`, its connection driven by a spawned task.
pub async fn connect(url: &str) -> Result<Client, Error> {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// A MariaDB connection over `url`.
pub async fn my_connect(url: &str) -> Result<mysql_async::Conn, Error> {
    Ok(mysql_async::Conn::from_url(url).await?)
}

// ---------------------------------------------------------------------------------------------
// The tandem binary

/// Runs `tandem <args> --config <config>` to completion; a failure carries its stderr.
pub async fn tandem_cmd(args: &[&str], config: &Path) -> Result<(), Error> {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!(
            "tandem {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// Starts `tandem run` and waits (up to 60 s) until both links have started.
pub async fn start_run(config: &Path) -> Result<tokio::process::Child, Error> {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["run", "--config"])
        .arg(config)
        .env(
            "TANDEM_LOG",
            std::env::var("TANDEM_BENCH_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let mut started = 0;
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("link started") {
                started += 1;
                if started == 2 {
                    return true;
                }
            }
        }
        false
    })
    .await;
    if ready != Ok(true) {
        return Err("tandem run did not start its links".into());
    }
    // Keep reading so the child never blocks on a full pipe; with `TANDEM_BENCH_LOG` (a log
    // filter, e.g. `debug`) the lines go to `tandem-bench.log` in the temporary directory.
    let mut log = match std::env::var_os("TANDEM_BENCH_LOG") {
        Some(_) => Some(std::fs::File::create(
            std::env::temp_dir().join("tandem-bench.log"),
        )?),
        None => None,
    };
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(f) = log.as_mut() {
                use std::io::Write;
                let _ = writeln!(f, "{line}");
            }
        }
    });
    Ok(child)
}

/// A running `tandem run` with its configuration file.
pub struct TandemRun {
    pub child: tokio::process::Child,
    pub pid: u32,
    config: PathBuf,
}

impl TandemRun {
    /// Writes `config` to `tandem-bench-<bench>-<our pid>.toml` in the temporary directory, runs
    /// `tandem setup` with it, then starts `tandem run` (see [`start_run`]).
    pub async fn start(bench: &str, config: &str) -> Result<TandemRun, Error> {
        let path =
            std::env::temp_dir().join(format!("tandem-bench-{bench}-{}.toml", std::process::id()));
        std::fs::write(&path, config)?;
        tandem_cmd(&["setup"], &path).await?;
        let child = start_run(&path).await?;
        let pid = child.id().ok_or("tandem run has no pid")?;
        Ok(TandemRun {
            child,
            pid,
            config: path,
        })
    }

    /// Kills `tandem run` and removes the configuration file.
    pub async fn stop(mut self) -> Result<(), Error> {
        self.child.kill().await?;
        let _ = std::fs::remove_file(&self.config);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// The first number (KiB) of field `key` (e.g. `"VmRSS:"`) in a `/proc/<pid>/status` text.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Field `key` (e.g. `"VmHWM:"`) of `/proc/<pid>/status`, in KiB.
pub fn proc_kib(pid: u32, key: &str) -> Option<u64> {
    status_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        key,
    )
}

/// The peak `VmRSS` of a process, sampled every 20 ms by a spawned task until [`PeakRss::stop`].
pub struct PeakRss {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
}

impl PeakRss {
    pub fn start(pid: u32) -> PeakRss {
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (stopped, max) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stopped.load(Ordering::Relaxed) {
                if let Some(kib) = proc_kib(pid, "VmRSS:") {
                    max.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        PeakRss { stop, peak }
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// The peak so far, in KiB.
    pub fn kib(&self) -> u64 {
        self.peak.load(Ordering::Relaxed)
    }
}

/// `(pid, parent pid, utime + stime in clock ticks)` of every process.
pub fn processes() -> Vec<(u32, u32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| {
        let pid: u32 = e.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name is in parentheses and may hold spaces: fields count from its end.
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ppid = f.get(1)?.parse().ok()?;
        let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
        Some((pid, ppid, ticks))
    })
    .collect()
}

/// Whether `pid`'s command line mentions `needle`.
pub fn cmdline_has(pid: u32, needle: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains(needle))
        .unwrap_or(false)
}

/// Whether `pid` has exited (gone, or a zombie not yet reaped).
pub fn exited(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 2..i + 3))
            .is_none_or(|state| state == "Z" || state == "X"),
        Err(_) => true,
    }
}

/// The pid on the first line of a pid file.
pub fn pid_file(path: &Path) -> Result<u32, Error> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    Ok(text
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("{} holds no pid", path.display()))?)
}

/// The pid of a harness PostgreSQL server's postmaster.
pub fn postmaster(server: &PgServer) -> Result<u32, Error> {
    pid_file(&server.data_dir().join("postmaster.pid"))
}

/// The pid of a harness MariaDB server.
pub fn mariadb_pid(server: &MariaDb) -> Result<u32, Error> {
    pid_file(&server.root_dir().join("mariadb.pid"))
}

/// Whose CPU time is counted as the replication tool's.
#[derive(Clone)]
pub enum Tool {
    /// One process (`tandem run`).
    Pid(u32),
    /// Every process whose command line mentions this path (pg_chameleon's virtualenv).
    Cmdline(String),
}

/// Whose CPU time is counted: the two servers (each server process and its children) and the
/// tool, if any.
#[derive(Clone)]
pub struct Meters {
    pub source: u32,
    pub target: u32,
    pub tool: Option<Tool>,
}

impl Meters {
    /// CPU seconds so far: source server, target server, tool. (Exited processes are not counted;
    /// the workloads' connections and the tools' processes stay while measured.)
    pub fn read(&self) -> [f64; 3] {
        let all = processes();
        let tree = |root: u32| {
            all.iter()
                .filter(|(pid, ppid, _)| *pid == root || *ppid == root)
                .map(|(_, _, t)| *t)
                .sum::<u64>()
        };
        let tool = all
            .iter()
            .filter(|(pid, _, _)| match &self.tool {
                None => false,
                Some(Tool::Pid(p)) => pid == p,
                Some(Tool::Cmdline(needle)) => cmdline_has(*pid, needle),
            })
            .map(|(_, _, t)| *t)
            .sum::<u64>();
        // Linux reports these in USER_HZ, 100 per second.
        let s = |t: u64| t as f64 / 100.0;
        [s(tree(self.source)), s(tree(self.target)), s(tool)]
    }

    /// CPU seconds since `start` (an earlier [`Meters::read`]).
    pub fn since(&self, start: [f64; 3]) -> [f64; 3] {
        let now = self.read();
        [now[0] - start[0], now[1] - start[1], now[2] - start[2]]
    }
}

// ---------------------------------------------------------------------------------------------
// The three workloads of replicate.rs and chameleon.rs

/// Sizes of the three workloads: bulk rows, one-row insert transactions, and clients x one-row
/// updates on the first `updated_rows` rows.
pub struct Sizes {
    pub bulk: i64,
    pub singles: i64,
    pub clients: i64,
    pub updates_each: i64,
    pub updated_rows: i64,
}

impl Sizes {
    /// `TANDEM_BENCH_ROWS` (default 200,000) bulk rows, 20,000 singles, 8 clients x 2,500 updates on
    /// at most 100,000 rows, all divided by `TANDEM_BENCH_SCALE`.
    pub fn from_env() -> Sizes {
        let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<i64>().ok());
        let scale = env("TANDEM_BENCH_SCALE").unwrap_or(1).max(1);
        let bulk = env("TANDEM_BENCH_ROWS").unwrap_or(200_000) / scale;
        Sizes {
            bulk: bulk.max(1),
            singles: (20_000 / scale).max(1),
            clients: 8,
            updates_each: (2_500 / scale).max(1),
            updated_rows: bulk.clamp(1, 100_000),
        }
    }
}

/// Each workload's figure: work units (rows or transactions) per second, the CPU seconds the
/// source server, the target server and the tool spent on it, and how long the source's own writes
/// took (from the first statement until the last commit returned) against the whole run (until the
/// target held the result).
#[derive(Default, Clone, Copy)]
pub struct Figures {
    pub bulk: f64,
    pub singles: f64,
    pub updates: f64,
    pub cpu: [[f64; 3]; 3],
    pub source_s: [f64; 3],
    pub total_s: [f64; 3],
}

impl Figures {
    /// Records workload `i`'s source time (the clock at the source's last commit).
    pub fn source_done(&mut self, i: usize, start: std::time::Instant) {
        self.source_s[i] = start.elapsed().as_secs_f64();
    }

    /// Records workload `i`'s end (the target holds the result) and returns its seconds.
    pub fn delivered(&mut self, i: usize, start: std::time::Instant) -> f64 {
        self.total_s[i] = start.elapsed().as_secs_f64();
        self.total_s[i]
    }
}

/// What bounds a ratio against `peer` on workload `i`: no replicator delivers before the source's
/// own last commit, so `peer`'s whole run over the source time of `ours` is the highest ratio `ours`
/// could reach in this run. Printed as "source s / whole s" for both, and that ceiling.
pub fn bound(i: usize, peer: &Figures, ours: &Figures) -> String {
    format!(
        "source alone {:.2} / {:.2} s, whole run {:.2} / {:.2} s, ceiling {:.2}x",
        peer.source_s[i],
        ours.source_s[i],
        peer.total_s[i],
        ours.total_s[i],
        peer.total_s[i] / ours.source_s[i].max(1e-9)
    )
}

/// The keys update client `client` touches: `count` keys in `1..=rows`, a fixed pseudo-random
/// sequence per client (an LCG), so runs are alike.
pub fn update_keys(client: u64, count: i64, rows: i64) -> impl Iterator<Item = i64> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15 ^ (client + 1);
    (0..count).map(move |_| {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (x >> 33) as i64 % rows + 1
    })
}
