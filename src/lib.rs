pub mod capture;
pub mod config;
pub mod harness;
pub mod model;
