//! What a database declares about a table: its columns, their types in one engine-neutral vocabulary,
//! nullability, defaults and keys. Each engine's catalog reader (`catalog::postgres`,
//! `catalog::mysql`) fills a [`TableSchema`]; `tandem check`, the appliers, the initial copy and
//! verify all read tables through it. [`ColumnType`] is the declared type parsed ([`parse_postgres`]
//! from `format_type()`, [`parse_mysql`] from `COLUMN_TYPE`); `mapping::types` judges pairs of them.

use std::fmt;

mod parse;

pub use parse::{parse_mysql, parse_postgres};

use super::TableRef;

/// A column type, engine-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    Bool,
    /// Integer of `bytes` bytes (1, 2, 3, 4, 8). MySQL `TINYINT(1)` is `Int { bytes: 1, .. }` with
    /// `display_width` 1.
    Int {
        bytes: u8,
        unsigned: bool,
        display_width: Option<u32>,
    },
    /// Exact decimal; `None` precision is PostgreSQL's unconstrained `numeric`.
    Decimal {
        precision: Option<u32>,
        scale: u32,
    },
    Float {
        double: bool,
    },
    /// Character data; `max_chars` `None` is unbounded; `fixed` pads with spaces (CHAR).
    Text {
        max_chars: Option<u64>,
        fixed: bool,
    },
    Bytes {
        max_bytes: Option<u64>,
        fixed: bool,
    },
    Date,
    /// Time of day; `frac` fractional-second digits. `signed_hours` for MySQL's TIME (±838 h).
    Time {
        frac: u8,
        signed_hours: bool,
        tz: bool,
    },
    /// A date-time; `utc` for an instant (PostgreSQL timestamptz, MySQL TIMESTAMP), wall clock otherwise.
    Timestamp {
        frac: u8,
        utc: bool,
        min_year: i32,
        max_year: i32,
    },
    Interval,
    Json,
    Uuid,
    Enum {
        labels: Vec<String>,
    },
    Set {
        labels: Vec<String>,
    },
    Bits {
        len: u32,
        varying: bool,
    },
    Year,
    /// A MySQL/MariaDB spatial type (GEOMETRY, POINT, …).
    Geometry,
    Array(Box<ColumnType>),
    /// Anything else, by its declared name.
    Other(String),
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ColumnType::Bool => f.write_str("boolean"),
            ColumnType::Int {
                bytes, unsigned, ..
            } => {
                let name = match bytes {
                    1 => "tinyint",
                    2 => "smallint",
                    3 => "mediumint",
                    4 => "integer",
                    _ => "bigint",
                };
                write!(f, "{name}{}", if *unsigned { " unsigned" } else { "" })
            }
            ColumnType::Decimal {
                precision: Some(p),
                scale,
            } => write!(f, "decimal({p},{scale})"),
            ColumnType::Decimal {
                precision: None, ..
            } => f.write_str("numeric"),
            ColumnType::Float { double } => f.write_str(if *double { "double" } else { "float" }),
            ColumnType::Text {
                max_chars: Some(n),
                fixed,
            } => write!(f, "{}({n})", if *fixed { "char" } else { "varchar" }),
            ColumnType::Text {
                max_chars: None, ..
            } => f.write_str("text"),
            ColumnType::Bytes {
                max_bytes: Some(n),
                fixed,
            } => write!(f, "{}({n})", if *fixed { "binary" } else { "varbinary" }),
            ColumnType::Bytes {
                max_bytes: None, ..
            } => f.write_str("bytes"),
            ColumnType::Date => f.write_str("date"),
            ColumnType::Time { frac, tz, .. } => write!(
                f,
                "time({frac}){}",
                if *tz { " with time zone" } else { "" }
            ),
            ColumnType::Timestamp { frac, utc, .. } => write!(
                f,
                "timestamp({frac}){}",
                if *utc { " with time zone" } else { "" }
            ),
            ColumnType::Interval => f.write_str("interval"),
            ColumnType::Json => f.write_str("json"),
            ColumnType::Uuid => f.write_str("uuid"),
            ColumnType::Enum { labels } => write!(f, "enum({})", labels.join(",")),
            ColumnType::Set { labels } => write!(f, "set({})", labels.join(",")),
            ColumnType::Bits { len, varying } => {
                write!(f, "bit{}({len})", if *varying { " varying" } else { "" })
            }
            ColumnType::Year => f.write_str("year"),
            ColumnType::Geometry => f.write_str("geometry"),
            ColumnType::Array(inner) => write!(f, "{inner}[]"),
            ColumnType::Other(name) => f.write_str(name),
        }
    }
}

/// One column as the database declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnSchema {
    pub name: String,
    /// The type as the catalog prints it (`character varying(20)`, `int(10) unsigned`).
    pub declared: String,
    pub ty: ColumnType,
    pub nullable: bool,
    /// Has a default, is an identity / auto-increment column, or is generated.
    pub has_default: bool,
    /// A MySQL/MariaDB character column's character set (`utf8mb3`, `latin1`, …); `None` elsewhere.
    pub charset: Option<String>,
    /// The type's name without modifiers, lower case: PostgreSQL `format_type(oid, NULL)`
    /// (`character varying`, `integer[]`), MySQL/MariaDB `DATA_TYPE` (`varchar`; `json` also for
    /// MariaDB's JSON, a LONGTEXT with a `json_valid` check). What the appliers bind and cast by.
    pub base: String,
    /// A computed column (`GENERATED … AS`): its values are the server's, never written.
    pub generated: bool,
    /// PostgreSQL `GENERATED ALWAYS AS IDENTITY`: an insert that gives it a value must say
    /// `OVERRIDING SYSTEM VALUE`.
    pub identity_always: bool,
    /// PostgreSQL: the type's OID, for decoding values of it; `None` elsewhere.
    pub type_oid: Option<u32>,
    /// PostgreSQL array columns: the element type's delimiter in array literals (`,`, but `;` for
    /// `box` and `:` for PostGIS `geometry`); `,` elsewhere.
    pub array_delim: char,
}

/// One table as the database declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSchema {
    pub table: TableRef,
    /// In the table's column order.
    pub columns: Vec<ColumnSchema>,
    pub primary_key: Vec<String>,
    /// Unique keys other than the primary key.
    pub unique_keys: Vec<Vec<String>>,
}

impl TableSchema {
    pub fn column(&self, name: &str) -> Option<&ColumnSchema> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Whether `key` (in any order) is the primary key or a unique key whose columns are all NOT NULL.
    pub fn is_unique_key(&self, key: &[String]) -> bool {
        let same = |k: &Vec<String>| k.len() == key.len() && key.iter().all(|c| k.contains(c));
        same(&self.primary_key)
            || self.unique_keys.iter().any(|k| {
                same(k)
                    && k.iter()
                        .all(|c| self.column(c).is_some_and(|c| !c.nullable))
            })
    }
}
