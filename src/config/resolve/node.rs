//! Node resolution: the URL and its engine, database, TLS mode, time zone, `server_id` and priority.

use std::path::PathBuf;

use crate::config::file::NodeFile;
use crate::config::{ConnUrl, Problem};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Postgres => "PostgreSQL",
            Engine::Mysql => "MySQL/MariaDB",
        }
    }
}

/// The TLS mode in effect for a node (from its `tls` key or its URL).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    Disable,
    Prefer,
    Require,
    VerifyFull,
}

/// A node, resolved.
#[derive(Debug, Clone)]
pub struct Node {
    pub id: String,
    pub engine: Engine,
    /// The connection URL, with the node keys `tls` and `tls_ca_file` folded in; prints redacted.
    pub url: ConnUrl,
    /// The database the URL names (PostgreSQL database; MySQL/MariaDB default schema).
    pub database: String,
    /// The TLS mode in effect (the `tls` key, else the URL's parameters).
    pub tls: TlsMode,
    /// The `tls_ca_file` key (already folded into `url`).
    pub tls_ca_file: Option<PathBuf>,
    /// Offset of the node's zone-less date-times from UTC, in seconds.
    pub utc_offset_secs: i32,
    /// MySQL/MariaDB: base replica `server_id` for this node's binlog readers.
    pub server_id: u32,
    pub priority: i32,
    /// PostgreSQL: rows another replication tool wrote into the node are forwarded (the
    /// `forward_replicated` key; when false a 16+ server filters by origin, see `NodeFile`).
    pub forward_replicated: bool,
}

pub(super) fn resolve_node(
    id: &str,
    n: NodeFile,
    index: u32,
    problems: &mut Vec<Problem>,
) -> Option<Node> {
    let path = format!("nodes.{id}");
    if !id
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        || id.is_empty()
        || id.len() > 32
    {
        problems.push(Problem::error(
            path.clone(),
            format!("node id {id:?} must be 1 to 32 characters of a-z, 0-9 and _"),
            "rename the node: its id names replication slots and is written on every row",
        ));
    }
    let url = match ConnUrl::parse(&n.url) {
        Ok(u) => u,
        Err(e) => {
            // Never echo the text: it may hold a password.
            problems.push(Problem::error(
                format!("{path}.url"),
                format!("not a valid URL ({e})"),
                "write postgres://user@host:port/database or mysql://user@host:port/database",
            ));
            return None;
        }
    };
    let engine = match url.scheme() {
        "postgres" | "postgresql" => Engine::Postgres,
        "mysql" | "mariadb" => Engine::Mysql,
        other => {
            problems.push(Problem::error(
                format!("{path}.url"),
                format!("unsupported scheme {other:?}"),
                "use postgres:// for PostgreSQL or mysql:// for MySQL/MariaDB",
            ));
            return None;
        }
    };
    if url.host().is_none_or(|h| h.is_empty()) {
        problems.push(Problem::error(
            format!("{path}.url"),
            "the URL names no host",
            "write the server's host, e.g. postgres://user@127.0.0.1:5432/app",
        ));
    }
    let database = url.database().unwrap_or_default();
    if database.is_empty() {
        problems.push(Problem::error(
            format!("{path}.url"),
            "the URL names no database",
            format!(
                "end the URL with /<database>, e.g. {}://user@host/app",
                url.scheme()
            ),
        ));
    }
    let (url, tls) = crate::config::tls::fold(
        engine,
        url,
        n.tls.as_deref(),
        n.tls_ca_file.as_deref(),
        &path,
        problems,
    );
    if engine == Engine::Mysql && n.forward_replicated == Some(false) {
        problems.push(Problem::error(
            format!("{path}.forward_replicated"),
            "only a PostgreSQL node can leave out what another replication tool wrote",
            "remove the key: a MySQL/MariaDB node forwards what its replicas' threads write",
        ));
    }
    let utc_offset_secs = match n.timezone.as_deref() {
        None => 0,
        Some(tz) => parse_offset(tz).unwrap_or_else(|| {
            problems.push(Problem::error(
                format!("{path}.timezone"),
                format!("{tz:?} is not a UTC offset"),
                "write UTC or an offset like +02:00 or -05:30",
            ));
            0
        }),
    };
    Some(Node {
        id: id.to_string(),
        engine,
        url,
        database,
        tls,
        tls_ca_file: n.tls_ca_file.map(PathBuf::from),
        utc_offset_secs,
        server_id: n.server_id.unwrap_or(4_000_000 + index * 100),
        priority: n.priority.unwrap_or(0),
        forward_replicated: n.forward_replicated.unwrap_or(true),
    })
}

fn parse_offset(tz: &str) -> Option<i32> {
    if matches!(tz, "UTC" | "utc" | "Z" | "GMT") {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    ((0..=15).contains(&h) && (0..60).contains(&m)).then_some(sign * (h * 3600 + m * 60))
}
