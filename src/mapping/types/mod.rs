//! Column types of both engines in one vocabulary, and whether a value survives the trip between two
//! of them.
//!
//! `tandem check` reads each mapped column's declared type from the live catalogs (PostgreSQL
//! `format_type()`, MySQL/MariaDB `information_schema.COLUMNS.COLUMN_TYPE`), parses it here, and asks
//! [`round_trip`] about every pair. The answer is one of:
//!
//! - `Exact`: every value of either side is held exactly by the other;
//! - `Conventional`: the engines have no exact counterpart and the usual mapping is used (PostgreSQL
//!   `boolean` as MySQL `TINYINT(1)`, an enum as a string); values outside the convention are refused at
//!   apply time (a warning);
//! - `Narrowing`: every value comes back unchanged, but some values of one side do not fit the other and
//!   are refused at apply time (dead letter or halt): a warning naming the fix (widen the column);
//! - `Lossy`: a value can come back different (rounded, truncated, padded, shifted): a two-way mapping
//!   would corrupt data or make endless false conflicts, so `check` refuses it.

mod fit;

pub use fit::fits;

use crate::model::schema::ColumnType;

/// The answer about one pair of column types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fit {
    Exact,
    Conventional(String),
    Narrowing(String),
    Lossy(String),
}

impl Fit {
    /// 0 (exact) to 3 (lossy): lower is better.
    pub fn rank(&self) -> u8 {
        match self {
            Fit::Exact => 0,
            Fit::Conventional(_) => 1,
            Fit::Narrowing(_) => 2,
            Fit::Lossy(_) => 3,
        }
    }

    /// The worse of two answers.
    fn worst(self, other: Fit) -> Fit {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }
}

fn int_range(bytes: u8, unsigned: bool) -> (i128, i128) {
    let bits = u32::from(bytes) * 8;
    if unsigned {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    }
}

/// Whether a two-way mapping between `a` and `b` is safe: the worse of both directions.
pub fn round_trip(a: &ColumnType, b: &ColumnType) -> Fit {
    fits(a, b).worst(fits(b, a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::{parse_mysql, parse_postgres};

    fn int(bytes: u8, unsigned: bool) -> ColumnType {
        ColumnType::Int {
            bytes,
            unsigned,
            display_width: None,
        }
    }

    #[test]
    fn parses_catalog_type_names() {
        assert_eq!(
            parse_postgres("numeric(65,30)", None),
            ColumnType::Decimal {
                precision: Some(65),
                scale: 30
            }
        );
        assert_eq!(
            parse_postgres("character varying(20)", None),
            ColumnType::Text {
                max_chars: Some(20),
                fixed: false
            }
        );
        assert_eq!(
            parse_postgres("timestamp(3) with time zone", None),
            ColumnType::Timestamp {
                frac: 3,
                utc: true,
                min_year: -4713,
                max_year: 294_276
            }
        );
        assert_eq!(
            parse_postgres("integer[]", None),
            ColumnType::Array(Box::new(int(4, false)))
        );
        assert_eq!(
            parse_mysql("int(10) unsigned", false),
            ColumnType::Int {
                bytes: 4,
                unsigned: true,
                display_width: Some(10)
            }
        );
        assert_eq!(
            parse_mysql("enum('a','it''s')", false),
            ColumnType::Enum {
                labels: vec!["a".into(), "it's".into()]
            }
        );
        assert_eq!(
            parse_mysql("datetime(6)", false),
            ColumnType::Timestamp {
                frac: 6,
                utc: false,
                min_year: 1000,
                max_year: 9999
            }
        );
        assert_eq!(parse_mysql("longtext", true), ColumnType::Json);
    }

    #[test]
    fn typical_pairs_across_engines() {
        let pg = |t| parse_postgres(t, None);
        let my = |t| parse_mysql(t, false);
        assert_eq!(round_trip(&pg("integer"), &my("int(11)")), Fit::Exact);
        assert_eq!(round_trip(&pg("bigint"), &my("bigint(20)")), Fit::Exact);
        assert_eq!(
            round_trip(&pg("numeric(10,2)"), &my("decimal(10,2)")),
            Fit::Exact
        );
        assert_eq!(round_trip(&pg("text"), &my("longtext")), Fit::Exact);
        assert_eq!(round_trip(&pg("bytea"), &my("longblob")), Fit::Exact);
        assert_eq!(round_trip(&pg("jsonb"), &my("json")), Fit::Exact);
        assert_eq!(round_trip(&pg("uuid"), &my("binary(16)")), Fit::Exact);
        assert!(matches!(
            round_trip(&pg("timestamp(6) with time zone"), &my("datetime(6)")),
            Fit::Conventional(_) | Fit::Narrowing(_)
        ));
        assert!(
            matches!(
                round_trip(&pg("numeric"), &my("decimal(65,30)")),
                Fit::Lossy(_)
            ),
            "unconstrained numeric rounds in DECIMAL(65,30)"
        );
        assert!(
            matches!(
                round_trip(&pg("timestamp(6) without time zone"), &my("datetime")),
                Fit::Lossy(_)
            ),
            "microseconds are lost in DATETIME(0)"
        );
    }

    #[test]
    fn the_conventional_pairs() {
        let tinyint1 = ColumnType::Int {
            bytes: 1,
            unsigned: false,
            display_width: Some(1),
        };
        assert!(matches!(
            round_trip(&ColumnType::Bool, &tinyint1),
            Fit::Conventional(_)
        ));
        let varchar = ColumnType::Text {
            max_chars: Some(20),
            fixed: false,
        };
        assert!(matches!(
            round_trip(
                &ColumnType::Enum {
                    labels: vec!["a".into()]
                },
                &varchar
            ),
            Fit::Conventional(_)
        ));
    }

    #[test]
    fn integers_by_range() {
        assert_eq!(round_trip(&int(4, false), &int(4, false)), Fit::Exact);
        assert!(matches!(
            round_trip(&int(8, false), &int(4, false)),
            Fit::Narrowing(_)
        ));
        assert!(matches!(
            round_trip(&int(8, true), &int(8, false)),
            Fit::Narrowing(_)
        ));
        assert_eq!(fits(&int(4, true), &int(8, false)), Fit::Exact);
        assert_eq!(
            fits(
                &int(8, true),
                &ColumnType::Decimal {
                    precision: Some(20),
                    scale: 0
                }
            ),
            Fit::Exact
        );
    }

    #[test]
    fn lossy_pairs_are_refused() {
        let ts = |frac, utc| ColumnType::Timestamp {
            frac,
            utc,
            min_year: 1000,
            max_year: 9999,
        };
        assert!(matches!(
            round_trip(&ts(6, true), &ts(0, true)),
            Fit::Lossy(_)
        ));
        assert!(matches!(
            round_trip(
                &ColumnType::Float { double: true },
                &ColumnType::Float { double: false }
            ),
            Fit::Lossy(_)
        ));
        let dec = |p, s| ColumnType::Decimal {
            precision: Some(p),
            scale: s,
        };
        assert!(matches!(
            round_trip(&dec(10, 4), &dec(10, 2)),
            Fit::Lossy(_)
        ));
        assert!(matches!(
            round_trip(
                &ColumnType::Text {
                    max_chars: Some(5),
                    fixed: true
                },
                &ColumnType::Text {
                    max_chars: Some(5),
                    fixed: false
                }
            ),
            Fit::Lossy(_)
        ));
        assert!(matches!(
            round_trip(&ColumnType::Json, &ColumnType::Uuid),
            Fit::Lossy(_)
        ));
    }

    #[test]
    fn narrowing_lengths_and_precision() {
        let v = |n| ColumnType::Text {
            max_chars: Some(n),
            fixed: false,
        };
        assert!(matches!(round_trip(&v(20), &v(50)), Fit::Narrowing(_)));
        let unbounded = ColumnType::Decimal {
            precision: None,
            scale: 30,
        };
        assert!(matches!(
            round_trip(
                &unbounded,
                &ColumnType::Decimal {
                    precision: Some(65),
                    scale: 30
                }
            ),
            Fit::Narrowing(_)
        ));
    }
}
