//! PostgreSQL capture: a logical replication slot read with the pgoutput plugin over the streaming
//! replication protocol, turned into model transactions.
//!
//! ```text
//!  conn.rs      replication connection: TCP/TLS, startup, auth, simple queries, CopyBoth framing
//!    │ XLogData payloads, keepalives
//!  decode.rs    pgoutput bytes -> PgOutput messages (pure)
//!    │
//!  assemble.rs  messages -> whole Transactions (spill past the budget, streamed xacts, filtering)
//!    │  types.rs: text values -> model Values
//!  stream.rs    PgSource: drives the above, acknowledges confirmed positions, reconnects
//!  setup.rs     prerequisite checks, publication and slot creation
//! ```
//!
//! Use: [`check_prerequisites`] and [`setup()`] (`tandem check` / `tandem setup`) prepare a node; a
//! [`PgSource`] per outgoing link then yields [`crate::capture::CaptureEvent`]s in commit order, and
//! the caller calls [`PgSource::confirm`] with a position once the target committed it. A new slot's
//! exported snapshot ([`PgSource::snapshot_name`]) serves an initial copy until the first `next()`.

mod array;
pub mod assemble;
pub mod conn;
pub mod decode;
mod error;
pub mod setup;
mod stream;
mod tls;
pub mod types;

pub use error::{sqlstate_is_transient, PgCaptureError};
pub use setup::{check_origin_filter, check_prerequisites, check_slot_moved, setup, Problem, Slot};
pub(crate) use stream::type_info;
pub use stream::{PgSource, PgSourceOptions};
pub(crate) use tls::{catalog_client, ConnParams};
