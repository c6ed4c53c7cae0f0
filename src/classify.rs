//! The one classification of database errors, used by capture and apply alike (DESIGN rule 8).
//!
//! A server error is one of three kinds:
//! - **transient**, known to clear by itself: connection loss, deadlock, serialization failure, lock
//!   or statement timeout, server shutting down, resources exhausted. Retried with backoff forever;
//!   the link keeps its position.
//! - **definite**, known not to clear by retrying: bad data, constraint violations, missing objects,
//!   syntax, privileges and authentication, a trigger's own `RAISE`/`SIGNAL`, program limits. The row
//!   or transaction goes to the dead-letter table, or the link halts, per `on_error`.
//! - **unknown**: treated as transient (DESIGN: "unknown errors are transient until proven
//!   otherwise"), and proven otherwise when the same error recurs at the same position: after
//!   [`REPEATS_BEFORE_DEFINITE`] identical failures the applier treats it as definite.
//!
//! Codes come from the engines' manuals: PostgreSQL Appendix A ("PostgreSQL Error Codes"), MariaDB's
//! "MariaDB Error Codes" and MySQL's "Server Error Message Reference". Pure functions over the codes;
//! no driver types here.

/// What retrying an error can achieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Transient,
    Definite,
}

/// How many identical failures of an unknown error at the same position prove it definite.
pub const REPEATS_BEFORE_DEFINITE: u32 = 5;

/// A PostgreSQL SQLSTATE's class, or `None` when it is not known either way.
pub fn sqlstate(code: &str) -> Option<ErrorClass> {
    use ErrorClass::*;
    match code {
        // object_in_use (a slot still held by a dying walsender), lock_not_available (lock_timeout):
        // both clear by themselves.
        "55006" | "55P03" => return Some(Transient),
        // query_canceled by statement_timeout or an operator; admin/crash shutdown; cannot connect now.
        "57014" | "57P01" | "57P02" | "57P03" | "57P04" | "57P05" => return Some(Transient),
        // read_only_sql_transaction: a standby that may be promoted.
        "25006" => return Some(Transient),
        _ => {}
    }
    match code.get(..2)? {
        // connection exception, transaction rollback (serialization, deadlock), insufficient
        // resources, system error (I/O)
        "08" | "40" | "53" | "58" => Some(Transient),
        // triggered action, feature not supported, invalid grantor/role, cardinality, data
        // exception, integrity constraint, triggered data change, invalid authorization, catalog,
        // SQL routine and external routine exceptions, invalid schema, syntax or access rule, WITH
        // CHECK OPTION, program limit exceeded, object not in prerequisite state, PL/pgSQL RAISE
        "09" | "0A" | "0L" | "0P" | "21" | "22" | "23" | "27" | "28" | "2B" | "2F" | "38"
        | "39" | "3D" | "3F" | "42" | "44" | "54" | "55" | "P0" => Some(Definite),
        _ => None,
    }
}

/// A MySQL/MariaDB server error number's class, or `None` when it is not known either way.
pub fn mysql(code: u16) -> Option<ErrorClass> {
    use ErrorClass::*;
    match code {
        1205 // lock wait timeout
        | 1213 // deadlock
        | 1040 // too many connections
        | 1053 // server shutdown in progress
        | 1152 | 1153 | 1158 | 1159 | 1160 | 1161 // aborted connection, packet too large or timed out
        | 1290 // --read-only (a replica that may be promoted)
        | 1836 // read-only mode
        | 1969 // statement timeout (max_statement_time)
        | 3024 // MySQL max_execution_time
        | 2002 | 2003 | 2006 | 2013 | 2055 // client: cannot connect, server gone, lost connection
        => Some(Transient),
        1044 | 1045 | 1142 | 1143 | 1227 // access denied (database, user, table, column, privilege)
        | 1049 // unknown database
        | 1054 // unknown column
        | 1064 // syntax error
        | 1048 // column cannot be null
        | 1062 // duplicate entry (a unique key other than the row key)
        | 1136 // column count does not match
        | 1138 // invalid use of NULL
        | 1146 // table does not exist
        | 1216 | 1217 | 1451 | 1452 // foreign key
        | 1236 // binlog position purged (fatal reading the binlog)
        | 1264 // out of range
        | 1265 // data truncated
        | 1288 // target not updatable
        | 1263 // NULL supplied to a NOT NULL column
        | 1292 // incorrect datetime/value
        | 1300 // invalid character string
        | 1356 // view references invalid objects
        | 1364 // field has no default
        | 1366 | 1367 // incorrect value for column
        | 1406 // data too long
        | 1411 // incorrect value for function
        | 1416 // cannot get a geometry object from the data
        | 1644 // SIGNAL in a trigger or routine (unhandled user-defined exception)
        | 1690 // value out of range in expression
        | 3140 // invalid JSON
        | 3819 // MySQL CHECK constraint violated
        | 4025 // MariaDB CHECK constraint failed
        => Some(Definite),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_codes() {
        for s in [
            "22001", "23505", "3D000", "3F000", "42P01", "42703", "28P01", "28000", "P0001",
            "54000", "55000", "0A000", "42501",
        ] {
            assert_eq!(sqlstate(s), Some(ErrorClass::Definite), "{s}");
        }
        for s in [
            "40001", "40P01", "55P03", "55006", "57P01", "57014", "08006", "53300", "25006",
        ] {
            assert_eq!(sqlstate(s), Some(ErrorClass::Transient), "{s}");
        }
        for s in ["XX000", "", "Z", "HV000"] {
            assert_eq!(sqlstate(s), None, "{s}");
        }
    }

    #[test]
    fn mysql_codes() {
        for n in [
            1406, 1264, 1048, 1146, 1054, 3819, 4025, 1644, 1064, 1142, 1045, 1416,
        ] {
            assert_eq!(mysql(n), Some(ErrorClass::Definite), "{n}");
        }
        for n in [1213, 1205, 2013, 1290] {
            assert_eq!(mysql(n), Some(ErrorClass::Transient), "{n}");
        }
        assert_eq!(mysql(9999), None);
    }
}
