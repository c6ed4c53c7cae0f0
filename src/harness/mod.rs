//! Throwaway database servers for tests and `tandem demo`.
//!
//! [`PgServer`] starts a PostgreSQL with `wal_level=logical`, [`MariaDb`] a MariaDB with row binlogs,
//! each from the installed binaries, in its own temporary directory on a free port. They are stopped and
//! their directories removed when dropped, also when a test panics, and also when the whole test
//! process dies: each server runs under a small supervisor shell that stops it and removes its
//! directory as soon as its standard input (a pipe from this process) closes.
//!
//! ```text
//!  this process ──stdin pipe──> sh supervisor ──> postgres / mariadbd
//!        ^ "started"/"stopped" <── stdout           (on EOF: stop server, rm -rf dir)
//! ```
//!
//! Works as root (PostgreSQL then runs as the `postgres` user, `mariadbd` with `--user=root`) and as a
//! normal user. Binaries come from `PG_BIN` / `MARIADB_BIN` (a directory), the newest
//! `/usr/lib/postgresql/*/bin`, `/usr/sbin`, or `PATH`.

mod mariadb;
mod postgres;
mod process;

pub use mariadb::{MariaDb, MariaDbOptions};
pub use postgres::{PgOptions, PgServer};
pub use process::running_as_root;

use std::path::PathBuf;

/// Why a throwaway server could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("{program} not found (looked in {looked}); install it with `{install}`, or set {env} to the directory that holds it")]
    MissingBinary {
        program: &'static str,
        looked: String,
        install: &'static str,
        env: &'static str,
    },
    #[error("{what} failed: {detail}")]
    Command { what: String, detail: String },
    #[error("{server} did not become ready within {seconds} s; last lines of its log:\n{log}")]
    NotReady {
        server: &'static str,
        seconds: u64,
        log: String,
    },
    #[error("harness i/o on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
}

impl HarnessError {
    fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> HarnessError {
        let path = path.into();
        move |source| HarnessError::Io { path, source }
    }
}
