pub mod capture;
pub mod cli;
pub mod config;
pub mod harness;
pub mod mapping;
pub mod model;
pub mod conflict;
pub mod loopguard;
