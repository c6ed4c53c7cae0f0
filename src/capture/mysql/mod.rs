//! MySQL/MariaDB capture: the binlog, read as a replica, turned into model [`Transaction`]s.
//!
//! ```text
//!  server ──binlog dump──> stream (connection, resume, backoff)
//!                            └─> assemble (transaction boundaries, positions, table filter, spill)
//!                                  ├─> events   (QUERY, XID, ROTATE, GTID incl. MariaDB GTID/GTID_LIST)
//!                                  ├─> metadata (TABLE_MAP + information_schema -> TableMeta)
//!                                  └─> decode   (rows events v1/v2) ─> types (values), jsonb (MySQL JSON)
//!  setup: prerequisite checks and the current position; server: plain queries
//! ```
//!
//! Positions emitted: the kind of the start position. With no start position, MariaDB streams report
//! `Position::MariaGtid` (the GTID state after each transaction, as `@slave_connect_state` takes it;
//! `Position::Binlog` while the server has written no GTID yet) and MySQL streams `Position::Binlog`
//! (file and end offset of the commit event). A MySQL GTID set
//! start gives `Position::MysqlGtid`. Every emitted position is one a dump can resume after.
//!
//! Loop marks: `Transaction.marks.skip_replication` is set when any event of the transaction carries
//! `LOG_EVENT_SKIP_REPLICATION_F` (MariaDB `@@skip_replication`), and `marks.server_id` is the
//! `server_id` of its first event.
//!
//! Zero dates are `Value::Other { type_name: "zero_date", .. }` (see [`types`]). XA transactions
//! are not supported.
//!
//! [`Transaction`]: crate::model::Transaction

pub mod assemble;
mod decimal;
pub mod decode;
mod error;
pub mod events;
pub mod fixtures;
pub mod jsonb;
pub mod metadata;
mod reader;
mod server;
mod setup;
mod stream;
pub mod temporal;
pub mod types;

pub use error::MysqlCaptureError;
pub use setup::{check_prerequisites, current_position, Problem, Severity};
pub use stream::{MysqlSource, MysqlSourceOptions};
