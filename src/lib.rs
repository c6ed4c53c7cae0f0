pub mod capture;
pub mod catalog;
pub mod cli;
pub mod config;
pub mod harness;
pub mod mapping;
pub mod model;
