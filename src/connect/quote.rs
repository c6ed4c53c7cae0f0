//! Writing names and text into SQL: one identifier function and one literal function per engine,
//! for every statement tandem builds as text (setup's DDL and trigger bodies, catalog queries,
//! `check --sample`, checkpoint seeds, the keys of the conflict probe's `JSON_OBJECT`). Row values
//! travel as parameters and never pass through here.
//!
//! MySQL/MariaDB: every session tandem opens runs with `NO_BACKSLASH_ESCAPES` ([`super::mysql`] adds
//! it to whatever the server's default mode is; the applier's fixed `sql_mode` names it too), so a
//! literal is the standard form, quotes doubled and nothing else. Escaping backslashes instead
//! would make a literal's meaning depend on the server's global `sql_mode`: a server that enables
//! `NO_BACKSLASH_ESCAPES` for its applications would read `'k\\'` as two backslashes. The triggers
//! setup creates store the session's mode and parse their bodies under it, so they agree too.
//!
//! PostgreSQL: a text containing a backslash is written as an escape string (`E'…'`), whose meaning
//! does not depend on `standard_conforming_strings`; any other text is a plain literal.

/// MySQL/MariaDB.
pub mod mysql {
    /// `` `name` `` with embedded backticks doubled.
    pub fn ident(s: &str) -> String {
        format!("`{}`", s.replace('`', "``"))
    }

    /// `'text'` with embedded quotes doubled, for a session with `NO_BACKSLASH_ESCAPES`.
    pub fn literal(s: &str) -> String {
        format!("'{}'", s.replace('\'', "''"))
    }

    /// The session setting [`literal`] needs, added to the server's default mode.
    pub const NO_BACKSLASH_ESCAPES: &str = "SET SESSION sql_mode = \
        CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_BACKSLASH_ESCAPES')";
}

/// PostgreSQL.
pub mod postgres {
    /// `"name"` with embedded double quotes doubled.
    pub fn ident(s: &str) -> String {
        format!("\"{}\"", s.replace('"', "\"\""))
    }

    /// `'text'` with embedded quotes doubled, or `E'…'` with backslashes doubled too when the text
    /// holds one (so that `standard_conforming_strings = off` cannot change it).
    pub fn literal(s: &str) -> String {
        let quoted = s.replace('\'', "''");
        if s.contains('\\') {
            format!("E'{}'", quoted.replace('\\', "\\\\"))
        } else {
            format!("'{quoted}'")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(mysql::ident("a`b"), "`a``b`");
        assert_eq!(mysql::literal("k\\'q"), "'k\\''q'");
        assert_eq!(postgres::ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(postgres::literal("it's"), "'it''s'");
        assert_eq!(postgres::literal("k\\'"), "E'k\\\\'''");
    }
}
