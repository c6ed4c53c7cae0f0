//! The configuration file: reading, `${VAR}` substitution, validation, and the resolved view the rest
//! of tandem uses.
//!
//! ```text
//!  file text ──toml──> toml::Table ──${VAR}──> per-section serde (unknown keys collected)
//!            ──resolve + validate──> Config, or every Problem at once, each with its path
//! ```
//!
//! Error handling: nothing here stops at the first problem. Every problem is collected with its path
//! in the file (`nodes.a.url`, `tables[0].key`) and what to do about it; a file is usable only when
//! there is no problem of severity `Error`.

mod env;
mod file;
mod resolve;
mod secret;
mod tls;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

pub use file::{
    ColumnFile, ConflictRule, ConsoleFile, CopyFile, FileConfig, HeartbeatFile, MetricsFile,
    NodeFile, OnError, Scalar, Settings, TableFile,
};
pub use resolve::{
    Column, Config, ConsoleSettings, CopySettings, DdlPolicy, DeletePolicy, Engine, Node, Table,
    TlsMode, TruncatePolicy,
};
pub use secret::{scrub, ConnUrl};

/// How bad a problem is: an `Error` makes the file (or pairing) unsafe to run; a `Warning` does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Warning,
    Error,
}

/// One problem found in the file or, later, against the live databases.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    pub severity: Severity,
    /// Where in the file: `nodes.a.url`, `tables[0].columns[1].on.crm`; `(file)` for the file as a whole.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl Problem {
    pub fn error(
        path: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }

    pub fn warning(
        path: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Problem {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
            fix: fix.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{level}: {}: {}", self.path, self.message)?;
        if !self.fix.is_empty() {
            write!(f, "\n  fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// A file that could not be loaded: every problem found, errors first.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} problem(s) in {file}", problems.len())]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<Problem>,
}

impl Config {
    /// Reads and validates the file at `path`, taking `${VAR}` values from the process environment.
    pub fn load(path: &Path) -> Result<(Config, Vec<Problem>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            problems: vec![Problem::error(
                "(file)",
                format!("cannot read {}: {e}", path.display()),
                "pass an existing, readable file with --config or TANDEM_CONFIG",
            )],
        })?;
        Self::from_str_with_env(&text, &path.display().to_string(), &|name| {
            std::env::var(name).ok()
        })
    }

    /// Parses and validates file text. On success returns the config and its warnings.
    pub fn from_str_with_env(
        text: &str,
        file_name: &str,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(Config, Vec<Problem>), ConfigError> {
        let mut problems = Vec::new();
        let config =
            read(text, lookup, &mut problems).and_then(|f| resolve::resolve(f, &mut problems));
        problems.sort_by_key(|p| std::cmp::Reverse(p.severity));
        match config {
            Some(c) if !problems.iter().any(|p| p.severity == Severity::Error) => Ok((c, problems)),
            _ => Err(ConfigError {
                file: file_name.to_string(),
                problems,
            }),
        }
    }
}

const TOP_LEVEL: [&str; 7] = [
    "tandem",
    "nodes",
    "tables",
    "metrics",
    "heartbeat",
    "copy",
    "console",
];

/// TOML text to the file types, collecting syntax errors, unset variables, unknown keys and type
/// errors section by section, so that one bad section does not hide the problems of the others.
fn read(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) -> Option<FileConfig> {
    let mut root: toml::Table = match text.parse() {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::error(
                "(file)",
                format!("not valid TOML: {}", e.to_string().trim()),
                "fix the syntax at the line shown",
            ));
            return None;
        }
    };
    for (key, value) in root.iter_mut() {
        expand_env(value, key.clone(), lookup, problems);
    }
    for key in root.keys().filter(|k| !TOP_LEVEL.contains(&k.as_str())) {
        problems.push(Problem::error(
            key.clone(),
            "unknown key",
            format!("remove it; top-level keys are {}", TOP_LEVEL.join(", ")),
        ));
    }
    let mut ok = true;
    let settings = match root.remove("tandem") {
        Some(v) => section::<Settings>(v, "tandem", problems),
        None => Some(Settings::default()),
    };
    ok &= settings.is_some();
    let mut nodes = BTreeMap::new();
    match root.remove("nodes") {
        Some(toml::Value::Table(t)) => {
            for (id, v) in t {
                match section::<NodeFile>(v, &format!("nodes.{id}"), problems) {
                    Some(n) => {
                        nodes.insert(id, n);
                    }
                    None => ok = false,
                }
            }
        }
        Some(_) => {
            problems.push(Problem::error(
                "nodes",
                "must be a table of nodes",
                "write each node as [nodes.<id>] with a url",
            ));
            ok = false;
        }
        None => {}
    }
    let mut tables = Vec::new();
    match root.remove("tables") {
        Some(toml::Value::Array(items)) => {
            for (i, v) in items.into_iter().enumerate() {
                match section::<TableFile>(v, &format!("tables[{i}]"), problems) {
                    Some(t) => tables.push(t),
                    None => ok = false,
                }
            }
        }
        Some(_) => {
            problems.push(Problem::error(
                "tables",
                "must be an array of tables",
                "write each table as a [[tables]] section",
            ));
            ok = false;
        }
        None => {}
    }
    let metrics = match root.remove("metrics") {
        Some(v) => {
            let m = section::<MetricsFile>(v, "metrics", problems);
            ok &= m.is_some();
            m
        }
        None => None,
    };
    let heartbeat = match root.remove("heartbeat") {
        Some(v) => {
            let h = section::<HeartbeatFile>(v, "heartbeat", problems);
            ok &= h.is_some();
            h
        }
        None => None,
    };
    let copy = match root.remove("copy") {
        Some(v) => {
            let c = section::<CopyFile>(v, "copy", problems);
            ok &= c.is_some();
            c
        }
        None => None,
    };
    let console = match root.remove("console") {
        Some(v) => {
            let c = section::<ConsoleFile>(v, "console", problems);
            ok &= c.is_some();
            c
        }
        None => None,
    };
    let settings = settings?;
    Some(FileConfig {
        tandem: settings,
        nodes,
        tables,
        metrics,
        heartbeat,
        copy,
        console,
        complete: ok,
    })
}

/// Deserializes one section, reporting each unknown key and the first type error with its path.
fn section<T: serde::de::DeserializeOwned>(
    value: toml::Value,
    path: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    let mut unknown = Vec::new();
    let result: Result<T, _> =
        serde_ignored::deserialize(value, |p| unknown.push(join_path(path, &p)));
    for p in unknown {
        problems.push(Problem::error(
            p,
            "unknown key",
            "remove it or correct its spelling (see the configuration reference in README.md)",
        ));
    }
    // A section with unknown keys is still read, so that the rest of it gets checked too; the unknown
    // keys alone make the file invalid.
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(Problem::error(
                path,
                e.to_string().trim().to_string(),
                "give every key the type the configuration reference shows",
            ));
            None
        }
    }
}

fn join_path(prefix: &str, p: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match p {
        Path::Root => prefix.to_string(),
        Path::Seq { parent, index } => format!("{}[{index}]", join_path(prefix, parent)),
        Path::Map { parent, key } => format!("{}.{key}", join_path(prefix, parent)),
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => join_path(prefix, parent),
    }
}

fn expand_env(
    value: &mut toml::Value,
    path: String,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<Problem>,
) {
    match value {
        toml::Value::String(s) => {
            let is_url = path.starts_with("nodes.")
                && path.ends_with(".url")
                && path.matches('.').count() == 2;
            let expanded = if is_url {
                env::expand_url(s, lookup)
            } else {
                env::expand(s, lookup)
            };
            match expanded {
                Ok(v) => *s = v,
                Err(missing) => {
                    for name in missing {
                        problems.push(Problem::error(
                        path.clone(),
                        format!("environment variable {name} is not set"),
                        format!("export {name} before starting tandem, or write the value in the file"),
                    ));
                    }
                }
            }
        }
        toml::Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                expand_env(v, format!("{path}[{i}]"), lookup, problems);
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                expand_env(v, format!("{path}.{k}"), lookup, problems);
            }
        }
        _ => {}
    }
}
