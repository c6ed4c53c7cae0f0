//! Apply errors, and the one place that decides whether an error is transient or definite.

use std::fmt;

use crate::mapping::MappingError;

/// Transient errors are retried with backoff, keeping the link's position; definite errors send the
/// transaction to the dead-letter table or halt the link, per `on_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    Definite,
}

/// A database's own error identity: PostgreSQL SQLSTATE, MySQL/MariaDB error number, or none (I/O,
/// protocol, a closed connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbCode {
    SqlState(String),
    Mysql(u16),
    None,
}

impl fmt::Display for DbCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DbCode::SqlState(s) => write!(f, "SQLSTATE {s}"),
            DbCode::Mysql(n) => write!(f, "error {n}"),
            DbCode::None => f.write_str("no error code"),
        }
    }
}

/// The classification, decided once for every engine. PostgreSQL: classes 22 (data exception), 23
/// (integrity constraint), 3D (invalid catalog), 3F (invalid schema), 42 (syntax or access rule:
/// missing table or column), 0A (feature not supported) and 2B/2F/44 are definite. MySQL/MariaDB: the
/// data, constraint and missing-object errors listed below. Everything else (connection loss,
/// deadlock, serialization failure, lock wait timeout, and any error not known) is transient.
pub fn classify(code: &DbCode) -> ErrorClass {
    let definite = match code {
        DbCode::SqlState(s) => {
            matches!(
                s.get(..2),
                Some("22" | "23" | "3D" | "3F" | "42" | "0A" | "2B" | "2F" | "44")
            )
        }
        DbCode::Mysql(n) => matches!(
            n,
            1048 // column cannot be null
                | 1054 // unknown column
                | 1062 // duplicate entry (a unique key other than the row key)
                | 1146 // table does not exist
                | 1049 // unknown database
                | 1264 // out of range
                | 1265 // data truncated
                | 1292 // incorrect datetime/value
                | 1138 // invalid use of NULL
                | 1263 // NULL supplied to a NOT NULL column
                | 1300 // invalid character string
                | 1364 // field has no default
                | 1366 // incorrect value for column
                | 1367 // illegal value for type
                | 1406 // data too long
                | 1411 // incorrect value for a function
                | 1416 // cannot get a geometry object from the data
                | 1451 | 1452 // foreign key
                | 1690 // value out of range in expression
                | 3140 // invalid JSON
                | 4025 // CHECK constraint failed
        ),
        DbCode::None => false,
    };
    if definite {
        ErrorClass::Definite
    } else {
        ErrorClass::Transient
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
            DriverError::Mysql(mysql_async::Error::Server(s)) => {
                let (_, rest) = s.message.split_once("column '")?;
                rest.split_once('\'').map(|(c, _)| c.to_string())
            }
            DriverError::Mysql(_) => None,
        }
    }
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
    #[error("table {table}, key {key}{}: {message} ({code}); fix: {fix}", column.as_ref().map(|c| format!(", column {c}")).unwrap_or_default())]
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
}

impl ApplyError {
    pub fn class(&self) -> ErrorClass {
        match self {
            // Retrying cannot fix a URL or a certificate; anything else may be the network.
            ApplyError::Connect { cause, .. } if cause.is_tls_or_config() => ErrorClass::Definite,
            ApplyError::Connect { .. } | ApplyError::Spill(_) => ErrorClass::Transient,
            ApplyError::Database { code, .. } => classify(code),
            ApplyError::Row { class, .. } => *class,
            ApplyError::Mapping(_) | ApplyError::Checkpoint { .. } | ApplyError::Invalid(_) => {
                ErrorClass::Definite
            }
        }
    }

    pub fn is_transient(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// The database error code, where there is one.
    pub fn code(&self) -> DbCode {
        match self {
            ApplyError::Database { code, .. } | ApplyError::Row { code, .. } => code.clone(),
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

/// A server message with every quoted value replaced by `…`: servers quote the offending value
/// (`invalid input syntax for type integer: "abc"`, `Duplicate entry 'x'`), and row values must not
/// reach logs. A quoted name is kept: a part right after a word that introduces one (`column 'k'`,
/// `for key 'email'`, `constraint "t_pkey"`, `relation "t"`), since it tells the reader where to look.
pub fn scrub_values(message: &str) -> String {
    const NAMES: [&str; 12] = [
        "column",
        "key",
        "table",
        "constraint",
        "relation",
        "index",
        "field",
        "database",
        "schema",
        "function",
        "sequence",
        "trigger",
    ];
    let mut out = String::with_capacity(message.len());
    let mut quote: Option<char> = None;
    let mut keep = false;
    for c in message.chars() {
        match quote {
            Some(q) if c == q => {
                if !keep {
                    out.push('…');
                }
                out.push(c);
                quote = None;
            }
            Some(_) if keep => out.push(c),
            Some(_) => {}
            None if c == '\'' || c == '"' => {
                let before = out.trim_end().rsplit(' ').next().unwrap_or_default();
                keep = out.ends_with(' ') && NAMES.contains(&before.to_ascii_lowercase().as_str());
                out.push(c);
                quote = Some(c);
            }
            None => out.push(c),
        }
    }
    if quote.is_some() && !keep {
        out.push('…');
    }
    out
}

/// What to suggest for a definite error, by code.
pub fn fix_for(code: &DbCode) -> &'static str {
    match code {
        DbCode::SqlState(s) if s == "22001" => "widen the target column or map the value to a shorter one, then replay the dead letter",
        DbCode::Mysql(1406) => "widen the target column or map the value to a shorter one, then replay the dead letter",
        DbCode::SqlState(s) if s == "22003" => "widen the target column's type, then replay the dead letter",
        DbCode::Mysql(1264 | 1690) => "widen the target column's type, then replay the dead letter",
        DbCode::SqlState(s) if s == "23502" => "give the target column a default or map a value for it",
        DbCode::Mysql(1048 | 1364) => "give the target column a default or map a value for it",
        DbCode::SqlState(s) if s == "42P01" || s == "3F000" => "create the table on the target or correct its name under tables.on in the file",
        DbCode::Mysql(1146 | 1049) => "create the table on the target or correct its name under tables.on in the file",
        DbCode::SqlState(s) if s == "42703" => "add the column on the target or map it under tables.columns in the file",
        DbCode::Mysql(1054) => "add the column on the target or map it under tables.columns in the file",
        DbCode::SqlState(s) if s.starts_with("23") => "the row violates a constraint on the target that the mapping cannot satisfy: adjust the constraint or the data, then replay",
        _ => "check the value against the target column's type, fix the mapping or the column, then replay the dead letter",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for n in [1406, 1264, 1048, 1146, 1054, 1300, 1416] {
            assert_eq!(classify(&DbCode::Mysql(n)), ErrorClass::Definite, "{n}");
        }
        for n in [1213, 1205, 2013, 9999] {
            assert_eq!(classify(&DbCode::Mysql(n)), ErrorClass::Transient, "{n}");
        }
        assert_eq!(classify(&DbCode::None), ErrorClass::Transient);
    }

    #[test]
    fn server_messages_lose_their_quoted_values() {
        assert_eq!(
            scrub_values("invalid input syntax for type integer: \"abc\""),
            "invalid input syntax for type integer: \"…\""
        );
        assert_eq!(
            scrub_values("Duplicate entry 'a@b.c' for key 'email'"),
            "Duplicate entry '…' for key 'email'"
        );
        assert_eq!(
            scrub_values("Incorrect integer value: 'abc' for column 'n' at row 1"),
            "Incorrect integer value: '…' for column 'n' at row 1"
        );
        assert_eq!(
            scrub_values(
                "null value in column \"name\" of relation \"t\" violates not-null constraint"
            ),
            "null value in column \"name\" of relation \"t\" violates not-null constraint"
        );
        assert_eq!(
            scrub_values("invalid input value for enum mood: \"column\""),
            "invalid input value for enum mood: \"…\""
        );
        assert_eq!(
            scrub_values("Data truncated for column 'k' at row 1 near 'x'"),
            "Data truncated for column 'k' at row 1 near '…'"
        );
        assert_eq!(
            scrub_values("value too long for type character varying(5)"),
            "value too long for type character varying(5)"
        );
    }
}
