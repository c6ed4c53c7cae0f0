//! Observability: what operators see of the links. Prometheus metrics and `/health` while
//! `tandem run` runs, the status probe `tandem status` prints (from the databases alone), and the
//! heartbeat writer that keeps lag honest on a quiet source.
//!
//! ```text
//!  run/ (each link) ── LinkMeter ──> counters, histogram ─┐
//!                   └─> health registry (state, last commit) ─> lag ticker ─┤─> /metrics, /health
//!  probe (checkpoint, conflicts, dead letters, slots, binlogs) every 5 s ───┘
//!  probe once ──> `tandem status`
//!  heartbeat writer ──> <schema>.heartbeat on each source ──> captured as progress, never as rows
//! ```
//!
//! Metric names live in [`names`] and nowhere else. Labels are `link`, `table`, `kind`, `decision`
//! and `stage`, all bounded by the file or the code. Row values never reach a metric or a log line
//! above debug level.

pub mod health;
pub mod heartbeat;
pub mod names;
pub mod probe;
mod record;
pub mod server;

pub use record::{
    apply_retry, columns_home, conflict, data_changes, dead_letter, is_heartbeat, table_paused,
    truncate, LinkMeter, HEARTBEAT_TABLE,
};

/// Now, in microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
