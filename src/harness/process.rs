//! Finding binaries, users and ports, and supervising one server process.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use super::HarnessError;

/// The supervisor: runs the server command given as arguments, obeys `stop` / `crash` / `start` lines on
/// stdin, and on EOF stops the server and removes the directory `$1`.
const SUPERVISOR: &str = r#"
root=$1; stop_sig=$2; crash_sig=$3; shift 3
pid=
start() { "$@" >>"$root/server.log" 2>&1 & pid=$!; }
halt() { if [ -n "$pid" ]; then kill -"$1" "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; pid=; fi; }
trap '' INT
start "$@"
echo started
while read -r cmd; do
  case "$cmd" in
    start) [ -z "$pid" ] && start "$@"; echo started ;;
    stop) halt "$stop_sig"; echo stopped ;;
    crash) halt "$crash_sig"; echo stopped ;;
  esac
done
halt "$stop_sig"
rm -rf "$root"
"#;

/// A server process under the supervisor shell.
#[derive(Debug)]
pub(crate) struct Supervised {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Supervised {
    /// Starts `argv` under the supervisor. `root` is removed when the supervisor ends. `as_user` runs
    /// the supervisor (and so the server) under that uid/gid.
    pub(crate) fn spawn(
        root: &Path,
        stop_signal: &str,
        crash_signal: &str,
        argv: &[String],
        as_user: Option<(u32, u32)>,
    ) -> Result<Self, HarnessError> {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(SUPERVISOR)
            .arg("tandem-supervisor")
            .arg(root)
            .arg(stop_signal)
            .arg(crash_signal)
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .current_dir(root);
        if let Some((uid, gid)) = as_user {
            cmd.uid(uid).gid(gid);
        }
        // The server must not see the test's terminal signals (Ctrl-C in `tandem demo` is ours to handle);
        // its own process group keeps a SIGINT to the foreground group away from it.
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|e| HarnessError::Command {
            what: format!("starting {}", argv.first().map_or("server", String::as_str)),
            detail: e.to_string(),
        })?;
        let stdin = child.stdin.take();
        let stdout =
            child
                .stdout
                .take()
                .map(BufReader::new)
                .ok_or_else(|| HarnessError::Command {
                    what: "supervisor".into(),
                    detail: "no stdout pipe".into(),
                })?;
        let mut s = Supervised {
            child,
            stdin,
            stdout,
        };
        s.expect_line("started")?;
        Ok(s)
    }

    fn expect_line(&mut self, want: &str) -> Result<(), HarnessError> {
        let mut line = String::new();
        self.stdout
            .read_line(&mut line)
            .map_err(|e| HarnessError::Command {
                what: "supervisor".into(),
                detail: e.to_string(),
            })?;
        if line.trim() == want {
            Ok(())
        } else {
            Err(HarnessError::Command {
                what: "supervisor".into(),
                detail: format!("expected {want:?}, got {:?}", line.trim()),
            })
        }
    }

    /// Sends `stop`, `crash` or `start` and waits for the acknowledgement.
    fn command(&mut self, cmd: &str) -> Result<(), HarnessError> {
        let ack = if cmd == "start" { "started" } else { "stopped" };
        let stdin = self.stdin.as_mut().ok_or_else(|| HarnessError::Command {
            what: "supervisor".into(),
            detail: "already shut down".into(),
        })?;
        writeln!(stdin, "{cmd}")
            .and_then(|()| stdin.flush())
            .map_err(|e| HarnessError::Command {
                what: format!("supervisor {cmd}"),
                detail: e.to_string(),
            })?;
        self.expect_line(ack)
    }

    /// Stops the server and waits until its directory is gone.
    pub(crate) fn shutdown(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A [`Supervised`] server whose commands wait on the blocking pool. A stop can take as long as the
/// server waits for its clients (a PostgreSQL fast shutdown waits until every logical reader
/// confirmed the WAL it was sent): waiting on the caller's thread would freeze the other tasks of a
/// single-threaded runtime, such as a reader or a writer whose lock that reader waits for.
#[derive(Debug)]
pub(crate) struct Supervisor(std::sync::Arc<std::sync::Mutex<Supervised>>);

impl Supervisor {
    pub(crate) fn new(supervised: Supervised) -> Self {
        Supervisor(std::sync::Arc::new(std::sync::Mutex::new(supervised)))
    }

    /// [`Supervised::command`], off the caller's thread.
    pub(crate) async fn command(&self, cmd: &'static str) -> Result<(), HarnessError> {
        let supervised = self.0.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock leaves the pipes as they were; keep using them.
            let mut s = supervised.lock().unwrap_or_else(|e| e.into_inner());
            s.command(cmd)
        })
        .await
        .map_err(|e| HarnessError::Command {
            what: format!("supervisor {cmd}"),
            detail: e.to_string(),
        })?
    }
}

/// Whether this process runs as root (real uid 0), read from `/proc/self/status`.
pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// uid and gid of a local user, from `/etc/passwd`.
pub(crate) fn lookup_user(name: &str) -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut f = line.split(':');
        (f.next()? == name).then_some(())?;
        let _password = f.next()?;
        let uid = f.next()?.parse().ok()?;
        let gid = f.next()?.parse().ok()?;
        Some((uid, gid))
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub(crate) fn free_port() -> Result<u16, HarnessError> {
    let l = TcpListener::bind("127.0.0.1:0").map_err(HarnessError::io("127.0.0.1:0"))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(HarnessError::io("127.0.0.1:0"))
}

/// Finds `program` in `$env_var`, then the given directories, then `PATH`.
pub(crate) fn find_binary(
    program: &'static str,
    env_var: &'static str,
    dirs: &[PathBuf],
    install: &'static str,
) -> Result<PathBuf, HarnessError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os(env_var) {
        candidates.push(PathBuf::from(dir));
    }
    candidates.extend(dirs.iter().cloned());
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .iter()
        .map(|d| d.join(program))
        .find(|p| p.is_file())
        .ok_or_else(|| HarnessError::MissingBinary {
            program,
            looked: format!(
                "${env_var}, {}, PATH",
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            install,
            env: env_var,
        })
}

/// A new empty directory under the system temp dir, owned by `owner` when given.
pub(crate) fn temp_root(prefix: &str, owner: Option<(u32, u32)>) -> Result<PathBuf, HarnessError> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let base = std::env::temp_dir();
    let dir = base.join(format!(
        "tandem-{prefix}-{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir(&dir).map_err(HarnessError::io(&dir))?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(HarnessError::io(&dir))?;
    }
    Ok(dir)
}

/// Runs a setup command to completion, as `as_user` when given.
pub(crate) fn run(
    what: &str,
    cmd: &mut Command,
    as_user: Option<(u32, u32)>,
) -> Result<(), HarnessError> {
    if let Some((uid, gid)) = as_user {
        cmd.uid(uid).gid(gid);
    }
    let out = cmd.output().map_err(|e| HarnessError::Command {
        what: what.to_string(),
        detail: e.to_string(),
    })?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr).to_string()
            + &String::from_utf8_lossy(&out.stdout);
        // The error lines tell the cause; the tail of a long output is mostly advice.
        let errors: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("ERROR") || l.contains("FATAL"))
            .take(10)
            .collect();
        let detail = if errors.is_empty() {
            last_lines(&text, 15)
        } else {
            errors.join("\n")
        };
        Err(HarnessError::Command {
            what: what.to_string(),
            detail,
        })
    }
}

pub(crate) fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last lines of a log file, for errors.
pub(crate) fn log_tail(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|t| last_lines(&t, 20))
        .unwrap_or_else(|e| format!("(no log at {}: {e})", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_names_the_package_and_the_variable() {
        let err = find_binary(
            "tandem-no-such-server",
            "TANDEM_TEST_NO_DIR",
            &[],
            "apt-get install postgresql",
        )
        .expect_err("no such binary");
        let text = err.to_string();
        assert!(text.contains("tandem-no-such-server"), "{text}");
        assert!(text.contains("apt-get install postgresql"), "{text}");
        assert!(text.contains("TANDEM_TEST_NO_DIR"), "{text}");
    }

    #[test]
    fn users_are_read_from_passwd() {
        assert_eq!(lookup_user("root"), Some((0, 0)));
        assert_eq!(lookup_user("tandem-no-such-user"), None);
    }
}
