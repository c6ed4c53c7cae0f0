//! Apply errors, and the one place that decides whether an error is transient or definite.

use std::fmt;

use crate::mapping::MappingError;

pub use crate::classify::ErrorClass;

/// A database's own error identity: PostgreSQL SQLSTATE, MySQL/MariaDB error number, or none (I/O,
/// protocol, a closed connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbCode {
    SqlState(String),
    Mysql(u16),
    /// tandem itself refused the value before any server saw it (a mapping no server form has);
    /// the text says which rule.
    Refused(&'static str),
    None,
}

impl fmt::Display for DbCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbCode::SqlState(s) => write!(f, "SQLSTATE {s}"),
            DbCode::Mysql(n) => write!(f, "error {n}"),
            DbCode::Refused(rule) => write!(f, "refused by tandem: {rule}"),
            DbCode::None => f.write_str("no error code"),
        }
    }
}

/// The classification of a database error (see [`crate::classify`]): an unknown code, or none (I/O,
/// protocol, a closed connection), is transient.
pub fn classify(code: &DbCode) -> ErrorClass {
    known_class(code).unwrap_or(ErrorClass::Transient)
}

/// The class the engine's code is known to have; `None` for an unknown code or no code.
pub fn known_class(code: &DbCode) -> Option<ErrorClass> {
    match code {
        DbCode::SqlState(s) => crate::classify::sqlstate(s),
        // A statement over the target's max_allowed_packet: sent again it is refused again (a
        // reader's connection, where the server sends it for a packet it could not read, retries).
        DbCode::Mysql(super::mysql::PACKET_TOO_LARGE) => Some(ErrorClass::Definite),
        DbCode::Mysql(n) => crate::classify::mysql(*n),
        DbCode::Refused(_) => Some(ErrorClass::Definite),
        DbCode::None => None,
    }
}

/// A driver error, kept as the cause.
#[derive(Debug)]
pub enum DriverError {
    Postgres(tokio_postgres::Error),
    Mysql(mysql_async::Error),
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{}", db.message()),
                None => write!(f, "{e}"),
            },
            // The server's own message: the driver's form ends in an unmatched quote, which value
            // scrubbing took for the start of a value.
            DriverError::Mysql(mysql_async::Error::Server(s)) => f.write_str(&s.message),
            DriverError::Mysql(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DriverError {}

impl DriverError {
    pub fn code(&self) -> DbCode {
        match self {
            DriverError::Postgres(e) => e
                .code()
                .map_or(DbCode::None, |c| DbCode::SqlState(c.code().to_string())),
            DriverError::Mysql(mysql_async::Error::Server(s)) => DbCode::Mysql(s.code),
            DriverError::Mysql(_) => DbCode::None,
        }
    }

    /// The column the server named, where it names one (PostgreSQL error fields).
    pub fn column(&self) -> Option<String> {
        match self {
            DriverError::Postgres(e) => {
                e.as_db_error().and_then(|d| d.column()).map(str::to_string)
            }
            DriverError::Mysql(mysql_async::Error::Server(s)) => mysql_column(&s.message),
            DriverError::Mysql(_) => None,
        }
    }
}

/// The column a MySQL/MariaDB message names: `… for column 'c' at row 1` or, in MariaDB's newer
/// messages, `… for column `db`.`t`.`c` at row 1`.
fn mysql_column(message: &str) -> Option<String> {
    let (_, rest) = message.split_once("column ")?;
    if let Some(quoted) = rest.strip_prefix('\'') {
        return quoted.split_once('\'').map(|(c, _)| c.to_string());
    }
    let mut name = None;
    let mut rest = rest;
    while let Some(inner) = rest.strip_prefix('`') {
        let (part, after) = inner.split_once('`')?;
        name = Some(part.to_string());
        rest = after.strip_prefix('.').unwrap_or(after);
        if !after.starts_with('.') {
            break;
        }
    }
    name
}

/// An error of the apply layer. `Display` names what failed, where (link, table, key, column) and
/// what to do; the driver error is the `source`.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The cause is part of the message: a TLS or URL problem says what to change.
    #[error("cannot connect to node {node}: {cause}")]
    Connect {
        node: String,
        cause: crate::connect::ConnectError,
    },
    #[error("{what} on node {node} failed ({code})")]
    Database {
        node: String,
        what: String,
        code: DbCode,
        #[source]
        source: DriverError,
    },
    #[error("table {table}{}{}: {message} ({code}); fix: {fix}", key_part(key), column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
    Row {
        table: String,
        key: String,
        column: Option<String>,
        message: String,
        code: DbCode,
        fix: String,
        class: ErrorClass,
    },
    #[error("mapping a change failed")]
    Mapping(#[from] MappingError),
    #[error("reading a spilled transaction back from disk failed")]
    Spill(#[source] std::io::Error),
    #[error("link {link}: stored checkpoint {text:?} is not a position; fix: correct or delete the row in the checkpoint table")]
    Checkpoint { link: String, text: String },
    #[error("{0}")]
    Invalid(String),
    /// A local write raced the applier in a way only a retry of the whole target transaction can
    /// settle (transient).
    #[error("{0}; retrying the transaction")]
    Raced(String),
    /// A schema change is due on the target before the group can apply (`ddl = "propagate"`): the
    /// driver rolls back, carries it out between transactions and tries the group again.
    #[error("a schema change of table {0} is due on the target")]
    SchemaDue(String),
    /// A table's revive trigger must be made before the transaction can write the table's first
    /// tombstone of another node's delete: made after the rollback, then tried again.
    #[error("{0}")]
    ReviveDue(String),
    /// The source's catalog could not be read for a schema change (retried).
    #[error("{0}")]
    SourceCatalog(String),
    /// An error of unknown class that failed the same transaction the same way again and again, and
    /// is therefore treated as definite.
    #[error("{source} (failed the same way {attempts} times at this position, so it is treated as definite)")]
    Repeated {
        attempts: u32,
        source: Box<ApplyError>,
    },
}

/// The key as a row error shows it: none for an error about no row (a missing table), and "a batch
/// of rows" for a statement that wrote several, none of which the server named.
fn key_part(key: &str) -> String {
    match key {
        "" => String::new(),
        "{}" | "[]" => ", a batch of rows (no single key)".into(),
        key => format!(", key {key}"),
    }
}

/// What the applier does with a server error whose code is neither known transient nor known
/// definite (see [`crate::classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownErrors {
    /// Return it to be retried, like a transient error.
    #[default]
    Retry,
    /// It already failed this many times at this position: treat it as definite.
    Refuse { attempts: u32 },
}

impl UnknownErrors {
    /// Whether `e` is to be retried; errors refused here go to the dead letters or halt the link.
    pub fn retries(&self, e: &ApplyError) -> bool {
        match self {
            UnknownErrors::Retry => e.is_transient(),
            UnknownErrors::Refuse { .. } => e.is_transient() && !e.is_unknown_server_error(),
        }
    }

    /// `e` as it is reported once refused.
    pub fn refused(&self, e: ApplyError) -> ApplyError {
        match self {
            UnknownErrors::Refuse { attempts } if e.is_unknown_server_error() => {
                ApplyError::Repeated {
                    attempts: *attempts,
                    source: Box::new(e),
                }
            }
            _ => e,
        }
    }
}

impl ApplyError {
    pub fn class(&self) -> ErrorClass {
        match self {
            // Retrying cannot fix a URL, a certificate or a refused password; anything else may be
            // the network.
            ApplyError::Connect { cause, .. } if cause.is_tls_or_config() => ErrorClass::Definite,
            ApplyError::Connect { .. } => classify(&self.code()),
            ApplyError::Spill(_)
            | ApplyError::Raced(_)
            | ApplyError::SchemaDue(_)
            | ApplyError::ReviveDue(_)
            | ApplyError::SourceCatalog(_) => ErrorClass::Transient,
            ApplyError::Database { code, .. } => classify(code),
            ApplyError::Row { class, .. } => *class,
            ApplyError::Mapping(_)
            | ApplyError::Checkpoint { .. }
            | ApplyError::Invalid(_)
            | ApplyError::Repeated { .. } => ErrorClass::Definite,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// A server refused the statement with a code not known to be transient or definite: retried, and
    /// treated as definite once it repeats at the same position (see [`crate::classify`]).
    pub fn is_unknown_server_error(&self) -> bool {
        matches!(self, ApplyError::Database { .. } | ApplyError::Row { .. })
            && self.code() != DbCode::None
            && known_class(&self.code()).is_none()
    }

    /// The target lacks a table or column the statement named: its schema changed (or the file names
    /// something it never had). The applier reads the catalog again before it decides.
    pub fn is_schema_drift(&self) -> bool {
        match self.code() {
            DbCode::SqlState(s) => s == "42703" || s == "42P01",
            DbCode::Mysql(n) => n == 1054 || n == 1146,
            _ => false,
        }
    }

    /// A value that does not fit its target column (too long, out of range, refused by tandem's own
    /// check before any server saw it): what a narrowed column type makes of a change that fitted.
    pub fn is_value_misfit(&self) -> bool {
        match self.code() {
            DbCode::SqlState(s) => matches!(s.as_str(), "22001" | "22003" | "22008"),
            DbCode::Mysql(n) => matches!(n, 1406 | 1264 | 1690 | 1292 | 1366),
            DbCode::Refused(_) => true,
            DbCode::None => false,
        }
    }

    /// The column a row error names, where it names one.
    pub fn column(&self) -> Option<&str> {
        match self {
            ApplyError::Row { column, .. } => column.as_deref(),
            ApplyError::Repeated { source, .. } => source.column(),
            _ => None,
        }
    }

    /// The database error code, where there is one.
    pub fn code(&self) -> DbCode {
        match self {
            ApplyError::Database { code, .. } | ApplyError::Row { code, .. } => code.clone(),
            ApplyError::Repeated { source, .. } => source.code(),
            ApplyError::Connect { cause, .. } => match cause {
                crate::connect::ConnectError::Postgres(e) => e
                    .code()
                    .map_or(DbCode::None, |c| DbCode::SqlState(c.code().to_string())),
                crate::connect::ConnectError::Mysql(mysql_async::Error::Server(s)) => {
                    DbCode::Mysql(s.code)
                }
                _ => DbCode::None,
            },
            _ => DbCode::None,
        }
    }
}

/// A server message with every quoted part replaced by `…`: servers quote the offending value
/// (`invalid input syntax for type integer: "abc"`, `Duplicate entry 'x'`), and row values must not
/// reach logs. The table, key and column are reported separately.
pub fn scrub_values(message: &str) -> String {
    scrub_values_keeping(message, &[])
}

/// [`scrub_values`], keeping the quoted parts that are exactly one of `names` (the table's and its
/// columns' names, which servers quote too: `column "note" of relation "items" does not exist`).
pub fn scrub_values_keeping(message: &str, names: &[&str]) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<(char, String)> = None;
    for c in message.chars() {
        match &mut quote {
            Some((q, inner)) if c == *q => {
                if names.contains(&inner.as_str()) {
                    out.push_str(inner);
                } else {
                    out.push('…');
                }
                out.push(c);
                quote = None;
            }
            Some((_, inner)) => inner.push(c),
            None if c == '\'' || c == '"' => {
                out.push(c);
                quote = Some((c, String::new()));
            }
            None => out.push(c),
        }
    }
    if quote.is_some() {
        out.push('…');
    }
    out
}

/// `e` with the server's own message where `e` keeps it only as its cause (a bookkeeping
/// statement's error).
pub fn with_cause(e: &ApplyError) -> String {
    match e {
        ApplyError::Database { source, .. } => {
            format!("{e}: {}", scrub_values(&source.to_string()))
        }
        _ => super::shown(e),
    }
}

/// What to suggest for a definite error, by code: what to change. Whether the change then waits in
/// the dead-letter table (replay it) or halted the link (restart) is said where that happens.
pub fn fix_for(code: &DbCode) -> &'static str {
    match code {
        DbCode::SqlState(s) if s == "22001" => "widen the target column or map the value to a shorter one",
        DbCode::Mysql(1406) => "widen the target column or map the value to a shorter one",
        DbCode::SqlState(s) if s == "22003" => "widen the target column's type",
        DbCode::Mysql(1264 | 1690) => "widen the target column's type; NaN and infinities fit no MySQL/MariaDB number: replace them at the source",
        DbCode::Mysql(1366) => "the value has no form in the target column's type (NaN or an infinity into DECIMAL, a character the column's character set lacks): change it at the source or convert the column (utf8mb4)",
        DbCode::Mysql(1416) => "the value is no 2-D geometry MySQL/MariaDB can hold (bytes that are not WKB, a PostGIS geometry with Z or M coordinates): change it at the source, or map the column to a bytes column",
        DbCode::Mysql(1292) => "the date or time is outside what the target column holds (infinity, a year past 9999 or before 1): change it at the source or keep the column one-way",
        DbCode::Mysql(super::mysql::PACKET_TOO_LARGE) => "raise max_allowed_packet on the target above the row's size (SET GLOBAL max_allowed_packet = …, and in the server's option file; sessions opened after it take it)",
        DbCode::SqlState(s) if s == "23502" => "give the target column a default or map a value for it",
        DbCode::Mysql(1048 | 1364) => "give the target column a default or map a value for it",
        DbCode::SqlState(s) if s == "42P01" || s == "3F000" => "create the table on the target or correct its name under tables.on in the file",
        DbCode::Mysql(1146 | 1049) => "create the table on the target or correct its name under tables.on in the file",
        DbCode::SqlState(s) if s == "42703" => "add the column on the target or map it under tables.columns in the file",
        DbCode::Mysql(1054) => "add the column on the target or map it under tables.columns in the file",
        DbCode::SqlState(s) if s == "22021" => "PostgreSQL text cannot hold the NUL character (or these bytes in the database's encoding), which the source admits: remove it at the source, or map the column to bytea",
        DbCode::SqlState(s) if s == "22008" || s == "22007" => "the date or time has no PostgreSQL value (a MySQL zero or partly-zero date, a TIME below zero or beyond 24 hours): change it at the source, or map the column to text",
        DbCode::SqlState(s) if s.starts_with("23") => "the row violates a constraint on the target that the mapping cannot satisfy: adjust the constraint or the data",
        _ => "check the value against the target column's type, fix the mapping or the column",
    }
}

/// The error text stored with a dead letter on node `target`: the error, and how to bring the
/// change once the cause is fixed.
pub fn dead_letter_error(e: &ApplyError, target: &str) -> String {
    format!("{e}; once fixed, replay it: tandem dead-letter replay --node {target} <id>")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement over a MySQL/MariaDB target's max_allowed_packet is refused again if sent
    /// again: definite for the applier, while a reader's connection still retries it.
    #[test]
    fn a_packet_too_large_is_definite_on_a_target_only() {
        let code = DbCode::Mysql(super::super::mysql::PACKET_TOO_LARGE);
        assert_eq!(classify(&code), ErrorClass::Definite);
        assert!(fix_for(&code).contains("max_allowed_packet"));
        assert_eq!(
            crate::classify::mysql(super::super::mysql::PACKET_TOO_LARGE),
            Some(ErrorClass::Transient)
        );
    }

    #[test]
    fn classification_follows_the_codes() {
        for s in ["22001", "23505", "3D000", "3F000", "42P01", "42703"] {
            assert_eq!(
                classify(&DbCode::SqlState(s.into())),
                ErrorClass::Definite,
                "{s}"
            );
        }
        for s in ["40001", "40P01", "55P03", "57P01", "08006", "XX000"] {
            assert_eq!(
                classify(&DbCode::SqlState(s.into())),
                ErrorClass::Transient,
                "{s}"
            );
        }
        for n in [1406, 1264, 1048, 1146, 1054] {
            assert_eq!(classify(&DbCode::Mysql(n)), ErrorClass::Definite, "{n}");
        }
        for n in [1213, 1205, 2013, 9999] {
            assert_eq!(classify(&DbCode::Mysql(n)), ErrorClass::Transient, "{n}");
        }
        assert_eq!(classify(&DbCode::None), ErrorClass::Transient);
    }

    #[test]
    fn mysql_messages_name_their_column() {
        assert_eq!(
            mysql_column("Out of range value for column 'r' at row 1").as_deref(),
            Some("r")
        );
        assert_eq!(
            mysql_column("Incorrect decimal value: 'x' for column `desk`.`nums`.`n` at row 1")
                .as_deref(),
            Some("n")
        );
        assert_eq!(mysql_column("Duplicate entry 'x' for key 'PRIMARY'"), None);
    }

    #[test]
    fn server_messages_lose_their_quoted_values() {
        assert_eq!(
            scrub_values("invalid input syntax for type integer: \"abc\""),
            "invalid input syntax for type integer: \"…\""
        );
        assert_eq!(
            scrub_values("Duplicate entry 'a@b.c' for key 'email'"),
            "Duplicate entry '…' for key '…'"
        );
        assert_eq!(
            scrub_values("value too long for type character varying(5)"),
            "value too long for type character varying(5)"
        );
        // Names are kept: the reader needs the column; a value that happens to equal no name goes.
        assert_eq!(
            scrub_values_keeping(
                "column \"note\" of relation \"items\" does not exist",
                &["note", "items", "id"]
            ),
            "column \"note\" of relation \"items\" does not exist"
        );
        assert_eq!(
            scrub_values_keeping("Duplicate entry 'secret' for key 'email'", &["email"]),
            "Duplicate entry '…' for key 'email'"
        );
    }
}
