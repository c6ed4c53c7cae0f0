//! The one integration-test binary: every module below talks to real database servers started by
//! `tandem::harness`. Helpers live in `support/` and compile once.

mod capture_mysql;
mod capture_postgres;
mod check_live;
mod cli;
mod convergence;
mod demo;
mod harness;
mod support;
mod tail;
mod two_way;
