//! The engine-neutral change model.
//!
//! Everything a capture produces and an applier consumes is expressed in these types. The model imports
//! no database driver: `capture/postgres` and `capture/mysql` translate *into* it, `apply/postgres` and
//! `apply/mysql` translate *out of* it, and `mapping` and `conflict` work on it alone.
//!
//! ```text
//!  Transaction { origin, position, commit_time, marks, changes }
//!      changes: [Change { table, op, before: Option<RowImage>, after: Option<RowImage> }]
//!          RowImage { kind: Full | Key | Partial, fields: [Field { name, value: Value }] }
//! ```

pub mod digest;
pub mod ewkb;
pub mod json;
mod position;
pub mod schema;
pub mod spill;
pub mod time;
mod transaction;
mod value;
mod value_serde;

pub use position::{
    BinlogPosition, Lsn, MariaGtid, MariaGtidList, MysqlGtidSet, PgPosition, Position,
    PositionError,
};
pub use transaction::{
    Change, ChangeKind, ChangeSet, Field, ImageKind, LoopMarks, NodeId, Op, RowImage, TableRef,
    Transaction,
};
pub use value::{format_uuid, parse_uuid, Decimal, DecimalError, Value};
