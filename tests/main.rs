//! The one integration-test binary: every module below talks to real database servers started by
//! `tandem::harness`. Helpers live in `support/` and compile once.

mod apply_faults;
mod apply_mysql;
mod apply_pair;
mod apply_postgres;
mod apply_races;
mod apply_scenarios;
mod apply_support;
mod capture_mysql;
mod capture_postgres;
mod check_live;
mod cli;
mod conflicts_cli;
mod convergence;
mod convergence_fire;
mod demo;
mod faults;
mod governance;
mod harness;
mod initial_copy;
mod mapping_matrix;
mod names;
mod observability;
mod privacy;
mod quoting;
mod spill_files;
mod support;
mod tail;
mod tls;
mod tombstones;
mod topologies;
mod truncate;
mod two_way;
mod type_fidelity;
mod type_fidelity_cross;
mod type_fidelity_geometry;
